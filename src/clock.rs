//! Wall-clock time in Unix seconds, always read through these functions, so that every reading
//! has the same meaning and the same fallback before 1970. The decision reads it once per
//! request and passes it on; `policy` takes no time at all.

/// Time since the Unix epoch. A clock set before 1970 reads as 0: nothing then expires, but
/// nothing is purged either (a reading of "far future" would delete every session).
fn since_epoch() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    i64::try_from(since_epoch().as_secs()).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch, for audit events.
pub fn now_ms() -> i64 {
    i64::try_from(since_epoch().as_millis()).unwrap_or(i64::MAX)
}

/// When something asked to live `ttl` seconds from now expires, in Unix seconds. Expiry is
/// checked in whole seconds (expired once the current second reaches it), so the current
/// second is rounded up: from `now() + ttl`, a one-second session made late in a second
/// would have died a few milliseconds later.
pub fn expiry(ttl: u64) -> i64 {
    let since = since_epoch();
    let secs = since.as_secs() + u64::from(since.subsec_nanos() > 0);
    i64::try_from(secs.saturating_add(ttl)).unwrap_or(i64::MAX)
}

/// RFC 3339 (UTC, seconds) for API responses.
pub fn rfc3339(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expiry_is_never_sooner_than_its_ttl() {
        for ttl in [0, 1, 2, 3600] {
            let before = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            let at = expiry(ttl);
            assert!(at as f64 >= before + ttl as f64, "{at} < {before} + {ttl}");
            assert!((at as f64) < before + ttl as f64 + 2.0);
        }
        assert_eq!(expiry(u64::MAX), i64::MAX);
    }
}
