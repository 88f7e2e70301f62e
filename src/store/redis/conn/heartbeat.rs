//! Cached mode's proof that invalidations still arrive, so that a copy can live for minutes
//! while staleness stays within `store.cache_staleness_ms`.
//!
//! Redis writes an invalidation into a tracking connection's stream before the reply to any
//! command it runs later on that connection. So a `PING` sent at `s` and answered proves that
//! every change made before `s` has been seen, and its copy dropped. A heartbeat pings every
//! quarter of the bound; copies are used only while an answered ping was sent within the bound.
//! When the connection falls silent (a partition it has not noticed, a stalled server), the
//! copies are bypassed and every decision reads Redis, where a silent connection fails closed;
//! the connection that replaces it starts with no copies, and no memo of the old one is used.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use redis::RedisError;
use tokio::time::MissedTickBehavior;

/// When a connection last proved that it delivers invalidations.
#[derive(Debug)]
pub struct Liveness {
    origin: Instant,
    /// Nanoseconds from `origin` to the sending of the latest answered ping, plus one; 0: none
    /// answered yet.
    proven: AtomicU64,
    bound: Duration,
}

impl Liveness {
    /// No proof yet: copies are not used until the first ping is answered.
    pub fn new(bound: Duration) -> Arc<Self> {
        Arc::new(Self {
            origin: Instant::now(),
            proven: AtomicU64::new(0),
            bound,
        })
    }

    /// Whether copies may be used now.
    pub fn fresh(&self) -> bool {
        self.fresh_at(Instant::now())
    }

    fn fresh_at(&self, now: Instant) -> bool {
        match self.proven.load(Ordering::Acquire) {
            0 => false,
            p => {
                let since = nanos(now.saturating_duration_since(self.origin));
                since <= (p - 1).saturating_add(nanos(self.bound))
            }
        }
    }

    /// A ping sent at `sent` was answered. Proofs arriving out of order never move it back.
    fn prove(&self, sent: Instant) {
        let at = nanos(sent.saturating_duration_since(self.origin)).saturating_add(1);
        self.proven.fetch_max(at, Ordering::AcqRel);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Pings every quarter of `live`'s bound (at most once a millisecond) for as long as anyone
/// holds `live`, recording each answer. `ping` must hold no strong reference to `live`, or the
/// heartbeat would never stop.
pub fn spawn<F, Fut>(live: &Arc<Liveness>, mut ping: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), RedisError>> + Send,
{
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        // Nothing to beat on: copies stay unused (every read goes to Redis), never stale.
        tracing::warn!("cached mode: no runtime for the heartbeat; the cache is not used");
        return;
    };
    let weak: Weak<Liveness> = Arc::downgrade(live);
    let period = (live.bound / 4).max(Duration::from_millis(1));
    runtime.spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if weak.strong_count() == 0 {
                return;
            }
            let sent = Instant::now();
            match ping().await {
                Ok(()) => match weak.upgrade() {
                    Some(live) => live.prove(sent),
                    None => return,
                },
                Err(e) => tracing::debug!(error = %e, "cached mode: heartbeat unanswered"),
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unproven_until_a_ping_is_answered_then_for_the_bound_only() {
        let live = Liveness::new(Duration::from_millis(100));
        let t0 = live.origin;
        assert!(!live.fresh_at(t0));
        live.prove(t0);
        assert!(live.fresh_at(t0 + Duration::from_millis(100)));
        assert!(!live.fresh_at(t0 + Duration::from_millis(101)));
        // An older answer arriving late does not move the proof back.
        live.prove(t0 + Duration::from_millis(50));
        live.prove(t0 + Duration::from_millis(10));
        assert!(live.fresh_at(t0 + Duration::from_millis(150)));
        assert!(!live.fresh_at(t0 + Duration::from_millis(151)));
    }

    #[tokio::test]
    async fn the_heartbeat_proves_and_stops_with_its_connection() {
        let live = Liveness::new(Duration::from_millis(20));
        let pings = Arc::new(AtomicU64::new(0));
        let counted = pings.clone();
        spawn(&live, move || {
            counted.fetch_add(1, Ordering::Relaxed);
            async { Ok(()) }
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(live.fresh());
        drop(live);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after_drop = pings.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert_eq!(pings.load(Ordering::Relaxed), after_drop, "still beating");
    }

    #[tokio::test]
    async fn unanswered_pings_prove_nothing() {
        let live = Liveness::new(Duration::from_millis(20));
        spawn(&live, || async {
            Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into())
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!live.fresh());
    }

    proptest! {
        // Fresh exactly when the latest answered ping was sent at most the bound ago.
        #[test]
        fn fresh_iff_the_latest_proof_is_within_the_bound(
            bound_ms in 1u64..1000,
            sends in proptest::collection::vec(0u64..10_000, 0..5),
            now_ms in 0u64..12_000,
        ) {
            let live = Liveness::new(Duration::from_millis(bound_ms));
            let t0 = live.origin;
            for s in &sends {
                live.prove(t0 + Duration::from_millis(*s));
            }
            let expected = sends.iter().max().is_some_and(|s| now_ms <= s + bound_ms);
            prop_assert_eq!(live.fresh_at(t0 + Duration::from_millis(now_ms)), expected);
        }
    }
}
