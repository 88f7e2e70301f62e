//! Fuzzes how long nginx may reuse an allow: whatever the clock, the setting and the
//! credentials' expiries, a copy never lasts past the setting nor into a second in which one of
//! them has expired, and the header says exactly that.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::decision_cache::{header_value, reuse_until};

fuzz_target!(|data: &[u8]| {
    let word = |i: usize| {
        data.get(i * 8..i * 8 + 8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    };
    let (Some(now), Some(secs)) = (word(0), word(1)) else {
        return;
    };
    let secs = (secs.rem_euclid(70)) as u32;
    let expiries: Vec<Option<i64>> = (2..5).map(|i| word(i).filter(|e| e % 3 != 0)).collect();
    match reuse_until(now, secs, expiries.iter().copied()) {
        Some(t) => {
            assert!(secs > 0 && t >= now && t - now < i64::from(secs));
            assert!(expiries.iter().flatten().all(|e| t < *e));
            assert_eq!(header_value(Some(t)), format!("@{t}").as_str());
        }
        None => {
            assert!(secs == 0 || expiries.iter().flatten().any(|e| *e <= now));
            assert_eq!(header_value(None), "0");
        }
    }
});
