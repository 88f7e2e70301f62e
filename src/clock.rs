//! Wall-clock time in Unix seconds, read in one place so that everything else takes time as a
//! parameter (the policy is pure; tests pass the time they need).

/// Seconds since the Unix epoch. A clock before 1970 reads as 0, which only makes sessions
/// look expired: the safe direction.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// RFC 3339 (UTC, seconds) for API responses.
pub fn rfc3339(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    humantime::format_rfc3339_seconds(t).to_string()
}
