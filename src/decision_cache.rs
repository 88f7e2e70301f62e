//! nginx's decision cache (`nginx.decision_cache_secs`): how long nginx may answer from its
//! copy of an allow instead of asking again.
//!
//! mediagate says it in `X-Accel-Expires`, as `@T`: nginx may reuse the allow while its clock's
//! whole second is at most `T`. `T` is never past the configured time, nor past the expiry of
//! any credential the request presented (its session, its share link), so a copy never outlives
//! what it rested on. Every other answer says `0`, so nginx keeps nothing else. nginx's own
//! clock counts whole seconds; that is why the bound is in seconds.

use actix_web::http::header::HeaderValue;

/// The last whole second (Unix time) in which nginx may reuse an allow decided during second
/// `now`, for `secs` seconds at most, given the expiries of the credentials the request
/// carried (each valid while the clock is before it). `None`: not to be reused at all.
pub fn reuse_until(
    now: i64,
    secs: u32,
    expiries: impl IntoIterator<Item = Option<i64>>,
) -> Option<i64> {
    if secs == 0 {
        return None;
    }
    // Kept through second `now + secs - 1`, the copy is gone by `now + secs`: at most `secs`
    // after the decision. A credential valid before `e` may be relied on through `e - 1`.
    let until = expiries
        .into_iter()
        .flatten()
        .fold(now.saturating_add(i64::from(secs) - 1), |t, e| {
            t.min(e.saturating_sub(1))
        });
    (until >= now).then_some(until)
}

/// The `X-Accel-Expires` value for `reuse_until`'s answer.
pub fn header_value(until: Option<i64>) -> HeaderValue {
    match until {
        // Digits and `@` only: always a valid header value.
        Some(t) => HeaderValue::try_from(format!("@{t}")).unwrap_or(DO_NOT_KEEP),
        None => DO_NOT_KEEP,
    }
}

/// "Do not cache this answer".
pub const DO_NOT_KEEP: HeaderValue = HeaderValue::from_static("0");

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_configured_time_caps_and_credentials_cap_further() {
        assert_eq!(reuse_until(1000, 1, []), Some(1000));
        assert_eq!(reuse_until(1000, 5, [None]), Some(1004));
        // A session ending at 1003 is relied on through second 1002 only.
        assert_eq!(reuse_until(1000, 5, [Some(1003), None]), Some(1002));
        assert_eq!(reuse_until(1000, 5, [Some(1003), Some(1001)]), Some(1000));
        // Ending within this second (a JWT inside its leeway): not kept at all.
        assert_eq!(reuse_until(1000, 5, [Some(1000)]), None);
        assert_eq!(reuse_until(1000, 5, [Some(i64::MIN)]), None);
        assert_eq!(reuse_until(1000, 0, []), None);
        assert_eq!(header_value(Some(1002)), "@1002");
        assert_eq!(header_value(None), "0");
    }

    proptest! {
        // Never past the configured time, never into a second where a credential has expired,
        // and kept whenever the time allows it and every credential lasts the next second.
        #[test]
        fn never_beyond_the_time_or_a_credential(
            now in 0i64..4_000_000_000,
            secs in 0u32..=60,
            expiries in proptest::collection::vec(proptest::option::of(-10i64..4_000_000_100), 0..3),
        ) {
            match reuse_until(now, secs, expiries.clone()) {
                Some(t) => {
                    prop_assert!(secs > 0 && t >= now && t < now + i64::from(secs));
                    for e in expiries.iter().flatten() {
                        prop_assert!(t < *e);
                    }
                    let expected = format!("@{t}");
                    prop_assert_eq!(header_value(Some(t)), expected.as_str());
                }
                None => prop_assert!(secs == 0 || expiries.iter().flatten().any(|e| *e <= now)),
            }
        }
    }
}
