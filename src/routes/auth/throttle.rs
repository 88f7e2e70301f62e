//! Warnings of the auth listener, at most one a second per kind, with a count of the rest.

/// At most one warning per second per kind: a misconfigured caller or a store outage would
/// otherwise write a line per request. Returns how many were held back since the last one,
/// or `None` while still within the second.
pub struct Throttle {
    last: std::sync::atomic::AtomicU64,
    held: std::sync::atomic::AtomicU64,
}

impl Throttle {
    /// A throttle that lets the first warning through.
    pub const fn new() -> Self {
        Self {
            last: std::sync::atomic::AtomicU64::new(0),
            held: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(held back)` when a warning may be logged now.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(u64::try_from(crate::clock::now()).unwrap_or(0))
    }

    /// [`Throttle::allow`] at `now` (Unix seconds).
    fn allow_at(&self, now: u64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let last = self.last.load(Relaxed);
        if now > last
            && self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            Some(self.held.swap(0, Relaxed))
        } else {
            self.held.fetch_add(1, Relaxed);
            None
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Throttle;

    #[test]
    fn one_warning_per_second_and_a_count_of_the_rest() {
        let t = Throttle::new();
        assert_eq!(t.allow_at(1_000), Some(0));
        for _ in 0..5 {
            assert_eq!(t.allow_at(1_000), None);
        }
        // The next second releases one line carrying the count.
        assert_eq!(t.allow_at(1_001), Some(5));
        assert_eq!(t.allow_at(1_001), None);
        // A clock that went back holds lines back rather than repeating them.
        assert_eq!(t.allow_at(999), None);
        assert_eq!(t.allow_at(1_002), Some(2));
    }
}
