//! Fuzzes the content type a client declares at upload and the type a record holds at read:
//! whatever the bytes, the stored type is one mediagate built, and what nginx is told to send
//! is never a type a browser runs, nor inline unless passive.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::disposition::{DispositionKind, present};
use mediagate::media_type::{MAX_LEN, MediaType};

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(t) = MediaType::parse(&raw) {
        let stored = t.to_string();
        assert!(stored.len() <= MAX_LEN);
        assert!(!stored.contains([',', '"', '\\']));
        assert_eq!(MediaType::parse(&stored), Ok(t));
    }
    for asked in [DispositionKind::Inline, DispositionKind::Attachment] {
        let shown = present(&raw, asked);
        let sent = MediaType::parse(&shown.content_type).expect("a sent type parses");
        assert_eq!(sent.to_string(), shown.content_type);
        let essence = sent.essence();
        assert!(!essence.contains("javascript") && !essence.contains("ecmascript"));
        assert!(!["text/css", "text/jscript", "text/livescript"].contains(&essence));
        if shown.kind == DispositionKind::Inline {
            assert!(!shown.sandbox);
            assert!(!essence.contains("html") && !essence.contains("xml"));
        }
    }
});
