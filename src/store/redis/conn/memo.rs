//! Cached mode's memo of whole decision reads: the values one `MGET` of a decision's keys gave,
//! kept per connection so that a warm decision skips redis-rs' command path (packing the
//! command, a lookup per key in its shared cache, building and converting the reply), which
//! cost more than a third of a cached decision.
//!
//! It is only ever a copy of copies that Redis keeps honest: every memo is dropped at once
//! (a new generation) whenever the connection receives any invalidation, is disconnected, or
//! fails a command (a reconnection may follow, and the new connection tracks nothing of the
//! old). A read records the generation before it is sent, so an invalidation that arrives
//! while it is in flight leaves its memo stale from the start. The heartbeat's bound and the
//! copies' age limit apply to memos as to the copies. Each push must reach [`Memo::drop_all`]
//! inside the connection's own task, before any later reply is delivered (see `sentinel`).
//!
//! Unlike redis-rs' copies, a memo does not know its keys' time to live, and a key that expires
//! unread may be invalidated only when Redis' background expiry finds it. That is safe because
//! every key a decision reads that can expire (a session, a kept forward answer) also carries
//! its expiry inside, and the decision checks it.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lru::LruCache;

/// Values of a decision's keys, in order, as `MGET` returns them.
pub type Values = Vec<Option<Vec<u8>>>;

/// The memos of one connection.
pub struct Memo {
    generation: AtomicU64,
    max_age: Duration,
    entries: Mutex<LruCache<Vec<u8>, Entry>>,
}

/// When a read was sent, and in which generation.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    generation: u64,
    sent: Instant,
}

struct Entry {
    generation: u64,
    at: Instant,
    values: Values,
}

impl Memo {
    /// At most `capacity` reads kept (least recently used go first), none past `max_age`.
    pub fn new(capacity: NonZeroUsize, max_age: Duration) -> Self {
        Self {
            generation: AtomicU64::new(0),
            max_age,
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// What to give [`Memo::keep`] for a read about to be sent.
    pub fn ticket(&self) -> Ticket {
        Ticket {
            generation: self.generation(),
            sent: Instant::now(),
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Every memo made so far is stale: an invalidation came, or the connection may have
    /// been replaced.
    pub fn drop_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The values read for exactly `keys`, if a memo of them is of the current generation
    /// and younger than the age limit.
    pub fn get(&self, keys: &[&[u8]]) -> Option<Values> {
        let generation = self.generation();
        let mut entries = self.entries.lock().ok()?;
        let entry = entries.get(&joined(keys))?;
        (entry.generation == generation && entry.at.elapsed() <= self.max_age)
            .then(|| entry.values.clone())
    }

    /// What a tracked read sent with `ticket` gave: its values are kept; a failure drops every
    /// memo (the connection may be replaced).
    pub fn keep<E>(&self, keys: &[&[u8]], ticket: Ticket, read: &Result<Values, E>) {
        match read {
            Ok(values) => self.put(keys, ticket, values),
            Err(_) => self.drop_all(),
        }
    }

    /// Keeps `values`, read for `keys` by a read sent with `ticket`. A read that an
    /// invalidation overtook is not kept; a kept one ages from when it was sent.
    fn put(&self, keys: &[&[u8]], ticket: Ticket, values: &Values) {
        if ticket.generation != self.generation() {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(
                joined(keys),
                Entry {
                    generation: ticket.generation,
                    at: ticket.sent,
                    values: values.clone(),
                },
            );
        }
    }
}

/// One map key for a list of Redis keys: each one's length, then its bytes, so that no two
/// lists share a spelling.
fn joined(keys: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(keys.iter().map(|k| k.len() + 4).sum());
    for k in keys {
        out.extend_from_slice(&u32::try_from(k.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(k);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn memo() -> Memo {
        Memo::new(NonZeroUsize::new(4).unwrap(), Duration::from_secs(60))
    }

    fn values(v: &str) -> Values {
        vec![Some(v.as_bytes().to_vec()), None]
    }

    #[test]
    fn kept_until_the_generation_moves() {
        let m = memo();
        let keys: [&[u8]; 2] = [b"u", b"f"];
        assert_eq!(m.get(&keys), None);
        m.keep(&keys, m.ticket(), &Ok::<_, ()>(values("a")));
        assert_eq!(m.get(&keys), Some(values("a")));
        m.drop_all();
        assert_eq!(m.get(&keys), None);
    }

    #[test]
    fn a_read_overtaken_by_an_invalidation_is_not_kept() {
        let m = memo();
        let keys: [&[u8]; 1] = [b"k"];
        let sent = m.ticket();
        m.drop_all();
        m.keep(&keys, sent, &Ok::<_, ()>(values("old")));
        assert_eq!(m.get(&keys), None);
        // A failed read drops what was kept.
        m.keep(&keys, m.ticket(), &Ok::<_, ()>(values("new")));
        m.keep(&[b"other"], m.ticket(), &Err::<Values, _>(()));
        assert_eq!(m.get(&keys), None);
    }

    #[test]
    fn none_past_the_age_limit() {
        let m = Memo::new(NonZeroUsize::new(4).unwrap(), Duration::ZERO);
        let keys: [&[u8]; 1] = [b"k"];
        m.keep(&keys, m.ticket(), &Ok::<_, ()>(values("a")));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(m.get(&keys), None);
    }

    proptest! {
        // Different lists of keys never share a memo, however their bytes line up.
        #[test]
        fn distinct_key_lists_never_collide(
            a in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..4),
            b in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..6), 0..4),
        ) {
            let ra: Vec<&[u8]> = a.iter().map(Vec::as_slice).collect();
            let rb: Vec<&[u8]> = b.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(joined(&ra) == joined(&rb), a == b);
        }
    }
}
