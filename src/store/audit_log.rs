//! The audit log's two halves, and the one cursor that pages through both.
//!
//! Reads (every decision about a real file) and changes (every admin call) are kept in two
//! logs, each capped at `audit.max_events` on its own: however much traffic the public URLs
//! get, it can push out older reads, never a rotation, a deletion or a grant. `GET /v1/events`
//! shows them as one log, oldest first, merged by time.
//!
//! A cursor is the position reached in each log: `R` (a position in the reads log, written
//! `N-M` as a Redis stream id is) while no change has been read, `R.C` after. An `N-M` cursor
//! given out before the logs were split is therefore a reads position, and reads on correctly:
//! every change before the split is in the reads log, every change after it is new to the
//! reader.

use std::fmt;

use super::StoredEvent;
use crate::model::{Event, EventKind};

/// One half of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLog {
    /// Decisions about files.
    Reads,
    /// Admin API calls.
    Changes,
}

impl AuditLog {
    /// The half an event belongs to.
    pub fn of(kind: EventKind) -> Self {
        match kind {
            EventKind::Read => Self::Reads,
            _ => Self::Changes,
        }
    }
}

/// A position in one log: the id of the last event read there (`N-M`; the embedded store
/// writes `N-0`).
pub type Position = (u64, u64);

/// Where a page starts: the position reached in each log, `None` before its first event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    /// Where the reads were left off.
    pub reads: Option<Position>,
    /// Where the changes were left off.
    pub changes: Option<Position>,
}

/// One position, `N-M`; both parts fit in u64.
pub(crate) fn parse_position(c: &str) -> Option<Position> {
    let (a, b) = c.split_once('-')?;
    let digits = |x: &str| !x.is_empty() && x.len() <= 19 && x.bytes().all(|d| d.is_ascii_digit());
    if !digits(a) || !digits(b) {
        return None;
    }
    Some((a.parse().ok()?, b.parse().ok()?))
}

impl Cursor {
    /// `R` or `R.C`; `None` for anything else.
    pub fn parse(c: &str) -> Option<Self> {
        let (reads, changes) = match c.split_once('.') {
            Some((r, c)) => (r, Some(parse_position(c)?)),
            None => (c, None),
        };
        let reads = parse_position(reads)?;
        Some(Self {
            reads: (reads != (0, 0)).then_some(reads),
            changes,
        })
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (ms, seq) = self.reads.unwrap_or((0, 0));
        write!(f, "{ms}-{seq}")?;
        if let Some((ms, seq)) = self.changes {
            write!(f, ".{ms}-{seq}")?;
        }
        Ok(())
    }
}

/// An event of one log with its position there.
pub type Logged = (Position, Event);

/// Merges a page of each log (each in its own order, both after `from`) into one page of at
/// most `limit`, oldest first; each event's id is the cursor that reads on after it. On equal
/// times a read comes first.
pub fn merge(
    from: Cursor,
    reads: Vec<Logged>,
    changes: Vec<Logged>,
    limit: usize,
) -> Vec<StoredEvent> {
    let mut out = Vec::with_capacity(limit.min(reads.len() + changes.len()));
    let mut cursor = from;
    let (mut reads, mut changes) = (reads.into_iter().peekable(), changes.into_iter().peekable());
    while out.len() < limit {
        let take_read = match (reads.peek(), changes.peek()) {
            (Some((_, r)), Some((_, c))) => r.at_ms <= c.at_ms,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let (position, event) = if take_read {
            reads.next()
        } else {
            changes.next()
        }
        .unwrap_or_else(|| unreachable!("peeked"));
        if take_read {
            cursor.reads = Some(position);
        } else {
            cursor.changes = Some(position);
        }
        out.push(StoredEvent {
            id: cursor.to_string(),
            event,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event(at_ms: i64, kind: EventKind) -> Event {
        Event {
            at_ms,
            kind,
            user_id: None,
            file_id: None,
            decision: None,
            client: None,
            download: false,
        }
    }

    #[test]
    fn cursors_read_both_forms_and_nothing_else() {
        assert_eq!(
            Cursor::parse("5-2"),
            Some(Cursor {
                reads: Some((5, 2)),
                changes: None
            })
        );
        assert_eq!(
            Cursor::parse("0-0.7-1"),
            Some(Cursor {
                reads: None,
                changes: Some((7, 1))
            })
        );
        for bad in [
            "",
            "5",
            "5-",
            "-2",
            "5-2.",
            "5-2.x-1",
            "5-2.3-4.5-6",
            "a-b",
            "5-2 ",
            "+5-2",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
        for c in ["5-2", "0-0.7-1", "5-2.7-1"] {
            assert_eq!(Cursor::parse(c).unwrap().to_string(), c);
        }
    }

    #[test]
    fn a_page_interleaves_by_time_and_ids_read_on() {
        let reads = vec![
            ((1, 0), event(10, EventKind::Read)),
            ((2, 0), event(30, EventKind::Read)),
        ];
        let changes = vec![
            ((1, 0), event(20, EventKind::Grant)),
            ((2, 0), event(30, EventKind::Link)),
        ];
        let page = merge(Cursor::default(), reads, changes, 3);
        let ids: Vec<&str> = page.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["1-0", "1-0.1-0", "2-0.1-0"]);
    }

    proptest! {
        /// However the two logs interleave and whatever the page size, following `next` reads
        /// every event of both once, and each log's events in their own order.
        #[test]
        fn paging_reads_every_event_once(
            reads in proptest::collection::vec(0i64..50, 0..20),
            changes in proptest::collection::vec(0i64..50, 0..20),
            page in 1usize..7,
        ) {
            let log = |times: &[i64], kind| -> Vec<Logged> {
                times.iter().enumerate().map(|(i, t)| ((i as u64 + 1, 0), event(*t, kind))).collect()
            };
            let after = |all: &[Logged], p: Option<Position>| -> Vec<Logged> {
                all.iter().filter(|(pos, _)| p.is_none_or(|p| *pos > p)).take(page).cloned().collect()
            };
            let (r, c) = (log(&reads, EventKind::Read), log(&changes, EventKind::Grant));
            let mut cursor = Cursor::default();
            let mut seen = Vec::new();
            loop {
                let got = merge(cursor, after(&r, cursor.reads), after(&c, cursor.changes), page);
                let Some(last) = got.last() else { break };
                cursor = Cursor::parse(&last.id).unwrap();
                seen.extend(got.into_iter().map(|e| e.event));
            }
            let of = |kind| seen.iter().filter(|e| e.kind == kind).map(|e| e.at_ms).collect::<Vec<_>>();
            prop_assert_eq!(of(EventKind::Read), reads);
            prop_assert_eq!(of(EventKind::Grant), changes);
        }
    }
}
