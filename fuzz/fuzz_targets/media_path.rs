//! Fuzzes everything that reads an attacker's URI or names a file: the media path parser, the
//! storage path check, filename validation and the Content-Disposition builder. Beyond "no
//! panic", it asserts the invariants the gate relies on.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediagate::disposition::{DispositionKind, header_value};
use mediagate::filenames;
use mediagate::paths::{MediaPath, StoragePath};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(m) = MediaPath::parse(raw, "/media/") {
        assert!(filenames::validate(&m.filename).is_ok());
        assert!(!m.filename.contains('/') && !m.filename.contains('\0'));
        let header = header_value(DispositionKind::Inline, &m.filename);
        assert!(!header.contains('\r') && !header.contains('\n'));
        // The canonical URL of an accepted path parses back to the same path.
        let canonical = format!(
            "/media/{}/{}/{}",
            m.user_token.as_str(),
            m.file_token.as_str(),
            filenames::url_segment(&m.filename)
        );
        let again = MediaPath::parse(&canonical, "/media/").expect("canonical form parses");
        assert_eq!(again.filename, m.filename);
    }
    if let Ok(sp) = StoragePath::parse(raw) {
        assert!(!sp.as_str().starts_with('/'));
        assert!(
            !sp.as_str()
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty())
        );
    }
});
