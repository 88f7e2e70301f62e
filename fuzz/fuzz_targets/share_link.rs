//! Fuzzes share-link verification: any query on a fixed path is either not a link or an
//! invalid one; only the exact signed query verifies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::links::{LinkCheck, LinkKeys};
use mediagate::paths::MediaPath;
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let keys = LinkKeys::new(Some(SecretString::from("k".repeat(32))), vec![]);
    let raw = format!(
        "/media/0123456789abcdef0123456789abcdef/fedcba9876543210fedcba9876543210/a.txt?{query}"
    );
    let Ok(path) = MediaPath::parse(&raw, "/media/") else {
        return;
    };
    let signed = keys.sign(
        &path.user_token,
        &path.file_token,
        &path.filename,
        4_000_000_000,
    );
    if matches!(keys.check(&path, 0), LinkCheck::Valid { .. }) {
        assert_eq!(Some(query.to_owned()), signed);
    }
});
