//! The audit log's two streams, `{p}:events` (reads) and `{p}:changes` (admin changes): their
//! entries, and the ids and positions of the events in them (see `store::audit_log` for the
//! merged view).
//!
//! A batch of events is one stream entry, appended by one script
//! (`scripts/append_events.lua`): an entry per event cost Redis more than the decision's own
//! read (about 2 µs per `XADD`, pipelined, against under 1 for the `MGET`). An entry of `n`
//! events has the id of its last event, `M-S`; its events are `M-(S-n+1)` to `M-S`. So every
//! event keeps an id of its own, positions keep the `ms-seq` form, and trimming to the newest
//! `audit.max_events` counts events, not entries. Entries of one event (field `e`), written
//! before batches, are read as before.

use redis::AsyncCommands;

use super::{RedisStore, unavailable};
use crate::model::Event;
use crate::store::audit_log::parse_position;
use crate::store::{AuditLog, AuditStore, Logged, Position, StoreError, decode, encode};

#[async_trait::async_trait]
impl AuditStore for RedisStore {
    async fn append_events(&self, events: &[Event], max_len: u64) -> Result<(), StoreError> {
        let conn = self.conn()?;
        for log in [AuditLog::Reads, AuditLog::Changes] {
            let part: Vec<&Event> = events
                .iter()
                .filter(|e| AuditLog::of(e.kind) == log)
                .collect();
            if part.is_empty() {
                continue;
            }
            let stream = self.keys.audit_log(log);
            let _: String = self
                .scripts
                .append_events
                .key(&stream)
                .arg(max_len)
                .arg(part.len())
                .arg(encode(&stream, &part)?)
                .invoke_async(&mut conn.clone())
                .await
                .map_err(unavailable)?;
        }
        // Counters live in other slots than the stream: one command each, sent together.
        let counts = crate::store::download_counts(events);
        futures_util::future::try_join_all(counts.into_iter().map(|(file, n)| {
            let mut conn = conn.clone();
            let key = self.keys.downloads(file);
            async move { conn.incr::<_, _, i64>(key, n).await }
        }))
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn audit_page(
        &self,
        log: AuditLog,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<Logged>, StoreError> {
        // An entry's id is its last event's: entries after the cursor are those that may hold
        // events after it.
        let mut start = after.map_or_else(|| "-".to_owned(), |(ms, seq)| format!("({ms}-{seq}"));
        let stream = self.keys.audit_log(log);
        let mut conn = self.conn()?;
        let mut out = Vec::with_capacity(limit);
        let mut entries_read = 0;
        while out.len() < limit {
            let count = entries_to_read(limit - out.len(), entries_read, out.len());
            let entries: Vec<Entry> = redis::cmd("XRANGE")
                .arg(&stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let Some((last, _)) = entries.last() else {
                break;
            };
            start = format!("({last}");
            entries_read += entries.len();
            let short = entries.len() < count;
            unpack(&stream, entries, after, &mut out)?;
            if short {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

/// A stream entry as `XRANGE` returns it: id, then field–value pairs.
pub type Entry = (String, Vec<(String, String)>);

/// Entries to ask for next, when `wanted` events are still missing and the entries read so far
/// held `events` events in `entries` entries. A batch can hold thousands of events, so the
/// first ask is for one entry; after it, for as many as the entries seen so far suggest.
pub fn entries_to_read(wanted: usize, entries: usize, events: usize) -> usize {
    if entries == 0 || events == 0 {
        return 1;
    }
    wanted
        .div_ceil(events.div_ceil(entries))
        .clamp(1, wanted.max(1))
}

/// Appends the events of `entries` that come after the position `after` to `out`, in order,
/// each with its own id.
pub fn unpack(
    stream: &str,
    entries: Vec<Entry>,
    after: Option<Position>,
    out: &mut Vec<Logged>,
) -> Result<(), StoreError> {
    let is_new = |id: Position| after.is_none_or(|a| id > a);
    for (id, fields) in entries {
        let (ms, top) =
            parse_position(&id).ok_or_else(|| StoreError::corrupt(stream, "entry id"))?;
        let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        if let Some(batch) = field("b") {
            let events: Vec<Event> = decode(stream, batch)?;
            let Some(first) = (top + 1).checked_sub(events.len() as u64) else {
                return Err(StoreError::corrupt(stream, "more events than ids"));
            };
            if events.is_empty() {
                return Err(StoreError::corrupt(stream, "empty batch"));
            }
            for (seq, event) in (first..).zip(events) {
                if is_new((ms, seq)) {
                    out.push(((ms, seq), event));
                }
            }
        } else if let Some(one) = field("e") {
            if is_new((ms, top)) {
                out.push(((ms, top), decode(stream, one)?));
            }
        } else {
            return Err(StoreError::corrupt(stream, "entry without events"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventDecision, EventKind};
    use proptest::prelude::*;

    fn event(at_ms: i64) -> Event {
        Event {
            at_ms,
            kind: EventKind::Read,
            user_id: None,
            file_id: None,
            decision: Some(EventDecision::Deny),
            client: None,
            download: false,
        }
    }

    fn batch(id: &str, at: std::ops::Range<i64>) -> Entry {
        let events: Vec<Event> = at.map(event).collect();
        let json = serde_json::to_string(&events).unwrap();
        (
            id.to_owned(),
            vec![("c".into(), "9".into()), ("b".into(), json)],
        )
    }

    fn single(id: &str, at: i64) -> Entry {
        let json = serde_json::to_string(&event(at)).unwrap();
        (id.to_owned(), vec![("e".into(), json)])
    }

    fn ids(out: &[Logged]) -> Vec<String> {
        out.iter()
            .map(|((ms, seq), _)| format!("{ms}-{seq}"))
            .collect()
    }

    #[test]
    fn a_batch_gives_each_event_an_id_ending_at_the_entrys() {
        let mut out = vec![];
        let entries = vec![single("5-0", 0), batch("7-3", 1..4), batch("7-4", 4..5)];
        unpack("s", entries, None, &mut out).unwrap();
        assert_eq!(ids(&out), ["5-0", "7-1", "7-2", "7-3", "7-4"]);
        let at: Vec<i64> = out.iter().map(|(_, e)| e.at_ms).collect();
        assert_eq!(at, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_cursor_inside_a_batch_skips_what_was_read() {
        let mut out = vec![];
        unpack("s", vec![batch("7-3", 1..4)], Some((7, 1)), &mut out).unwrap();
        assert_eq!(ids(&out), ["7-2", "7-3"]);
    }

    #[test]
    fn refuses_entries_that_cannot_hold_their_events() {
        for entry in [
            batch("7-1", 0..3),
            batch("7-1", 0..0),
            ("x-1".to_owned(), vec![("e".into(), "{}".into())]),
            ("7-1".to_owned(), vec![("c".into(), "1".into())]),
            ("7-1".to_owned(), vec![("b".into(), "[{".into())]),
        ] {
            let mut out = vec![];
            assert!(
                matches!(
                    unpack("s", vec![entry.clone()], None, &mut out),
                    Err(StoreError::Corrupt { .. })
                ),
                "{entry:?}"
            );
        }
    }

    #[test]
    fn reads_few_entries_until_it_knows_their_size() {
        assert_eq!(entries_to_read(100, 0, 0), 1);
        // Batches of 500: one entry is enough for a page of 100.
        assert_eq!(entries_to_read(100, 2, 1000), 1);
        // One event each: as many entries as events are missing.
        assert_eq!(entries_to_read(100, 16, 16), 100);
    }

    proptest! {
        /// Whatever the batches and the cursor, the events after it come back once each, in
        /// order, and their ids strictly increase.
        #[test]
        fn paging_by_cursor_reads_every_event_once(
            sizes in proptest::collection::vec(1usize..6, 1..8),
            cut in 0usize..40,
        ) {
            let mut entries = vec![];
            let (mut top, mut at) = (0u64, 0i64);
            for n in &sizes {
                top += *n as u64;
                entries.push(batch(&format!("9-{top}"), at..at + *n as i64));
                at += *n as i64;
            }
            let mut all = vec![];
            unpack("s", entries.clone(), None, &mut all).unwrap();
            prop_assert_eq!(all.len() as i64, at);
            let cut = cut.min(all.len() - 1);
            let after = Some(all[cut].0);
            let mut rest = vec![];
            unpack("s", entries, after, &mut rest).unwrap();
            prop_assert_eq!(&rest[..], &all[cut + 1..]);
            let keys: Vec<_> = all.iter().map(|(p, _)| *p).collect();
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        }
    }
}
