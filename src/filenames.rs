//! What a stored file may be called.
//!
//! A filename appears in two places: in the public URL (percent-encoded, then matched exactly
//! against the registered name) and in the `Content-Disposition` header. It never reaches the
//! filesystem: bytes live at a storage path mediagate chooses. The rules still refuse anything
//! that could be read as a path or break a header, so the name is safe wherever it is echoed.

/// Longest accepted filename, in bytes of UTF-8 (the common filesystem limit).
pub const MAX_FILENAME_BYTES: usize = 255;

/// Why a filename was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FilenameError {
    /// Nothing usable is left.
    #[error("filename is empty")]
    Empty,
    /// More than [`MAX_FILENAME_BYTES`].
    #[error("filename is longer than 255 bytes")]
    TooLong,
    /// `.` or `..`.
    #[error("filename may not be '.' or '..'")]
    DotName,
    /// A path separator.
    #[error("filename may not contain '/' or '\\'")]
    Separator,
    /// A control character.
    #[error("filename may not contain control characters")]
    Control,
}

/// Checks a decoded filename. The same check runs on upload and on every request, so a name
/// that was accepted once always parses again.
pub fn validate(name: &str) -> Result<(), FilenameError> {
    if name.is_empty() {
        return Err(FilenameError::Empty);
    }
    if name.len() > MAX_FILENAME_BYTES {
        return Err(FilenameError::TooLong);
    }
    if name == "." || name == ".." {
        return Err(FilenameError::DotName);
    }
    if name.contains(['/', '\\']) {
        return Err(FilenameError::Separator);
    }
    // `char::is_control` covers C0, DEL and C1; NUL is C0.
    if name.chars().any(char::is_control) {
        return Err(FilenameError::Control);
    }
    Ok(())
}

/// Turns a client-supplied name into one that passes [`validate`]: keeps what follows the last
/// `/` or `\` (browsers send `C:\Users\x\a.pdf` this way), drops control characters, trims
/// spaces and dots at the ends, and shortens it to 255 bytes keeping the extension.
/// Fails only if nothing usable is left.
pub fn sanitize(raw: &str) -> Result<String, FilenameError> {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let trimmed = cleaned.trim_matches(|c: char| c.is_whitespace() || c == '.');
    let mut name = if trimmed.is_empty() {
        String::new()
    } else if cleaned.trim().starts_with('.') && !cleaned.trim().starts_with("..") {
        // A dotfile keeps its dot (".env" stays ".env").
        format!(".{trimmed}")
    } else {
        trimmed.to_owned()
    };
    if name.len() > MAX_FILENAME_BYTES {
        name = shorten(&name);
    }
    validate(&name)?;
    Ok(name)
}

/// Cuts a long name to the limit at a character boundary, keeping a short extension.
fn shorten(name: &str) -> String {
    let ext = name
        .rfind('.')
        .map(|i| &name[i..])
        .filter(|e| e.len() <= 16)
        .unwrap_or("");
    let mut stem_len = MAX_FILENAME_BYTES - ext.len();
    while !name.is_char_boundary(stem_len) {
        stem_len -= 1;
    }
    format!("{}{ext}", &name[..stem_len])
}

/// Characters left as they are in the URL path segment of a filename: RFC 3986 unreserved.
const URL_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The filename as it appears in a public URL.
pub fn url_segment(name: &str) -> String {
    percent_encoding::utf8_percent_encode(name, URL_SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_and_unicode_names() {
        for ok in [
            "report.pdf",
            "Ünïcödé 名前.txt",
            "100% done.md",
            "a\"b'c.txt",
            ".hidden",
        ] {
            assert_eq!(validate(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_paths_controls_and_dot_names() {
        assert_eq!(validate(""), Err(FilenameError::Empty));
        assert_eq!(validate("."), Err(FilenameError::DotName));
        assert_eq!(validate(".."), Err(FilenameError::DotName));
        assert_eq!(validate("a/b"), Err(FilenameError::Separator));
        assert_eq!(validate("a\\b"), Err(FilenameError::Separator));
        assert_eq!(validate("a\0b"), Err(FilenameError::Control));
        assert_eq!(validate("a\r\nSet-Cookie: x"), Err(FilenameError::Control));
        assert_eq!(validate("a\u{85}b"), Err(FilenameError::Control));
        assert_eq!(validate(&"x".repeat(256)), Err(FilenameError::TooLong));
    }

    #[test]
    fn sanitize_keeps_what_is_usable() {
        assert_eq!(sanitize("C:\\Users\\me\\report.pdf").unwrap(), "report.pdf");
        assert_eq!(sanitize("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(sanitize("a\r\nb.txt").unwrap(), "ab.txt");
        assert_eq!(sanitize("  spaced.txt  ").unwrap(), "spaced.txt");
        assert_eq!(sanitize(".env").unwrap(), ".env");
        assert_eq!(sanitize("Ünïcödé 名前.txt").unwrap(), "Ünïcödé 名前.txt");
        let long = format!("{}.pdf", "é".repeat(200));
        let short = sanitize(&long).unwrap();
        assert!(short.len() <= MAX_FILENAME_BYTES && short.ends_with(".pdf"));
        for nothing in ["", "..", "/", "a/", "\0\r", " . "] {
            assert!(sanitize(nothing).is_err(), "{nothing:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn sanitized_names_are_valid(raw in ".{0,300}") {
            if let Ok(name) = sanitize(&raw) {
                proptest::prop_assert!(validate(&name).is_ok());
            }
        }
    }

    #[test]
    fn url_segment_encodes_everything_but_unreserved() {
        assert_eq!(url_segment("a b/ü?#%.txt"), "a%20b%2F%C3%BC%3F%23%25.txt");
    }
}
