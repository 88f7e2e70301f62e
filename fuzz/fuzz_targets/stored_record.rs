//! Fuzzes the reader of Redis' binary file records (layout 3): a stored value is untrusted,
//! so any bytes must be a record or `Corrupt`, never a panic, and a record read must name its
//! own storage path (derived from its id, inside the root) and survive being written again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::paths::StoragePath;
use mediagate::store::redis::record;
use mediagate::tokens::FileToken;

fuzz_target!(|data: &[u8]| {
    let token = FileToken::parse("0123456789abcdef0123456789abcdef").expect("a token");
    if let Ok(r) = record::decode(&token, data) {
        assert_eq!(r.storage_path, StoragePath::for_file(&r.file_id));
        assert!(!r.storage_path.as_str().contains(".."));
        let again = record::decode(&token, &record::encode(&r).expect("encode")).expect("re-read");
        assert_eq!(again, r);
    }
});
