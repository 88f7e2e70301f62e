//! Content types: the one form mediagate stores and sends, built by mediagate from what a client
//! declared, never the client's text.
//!
//! A `Content-Type` is read twice: by mediagate at upload, and by a browser when nginx serves
//! the file. The two must not disagree. Browsers follow the WHATWG Fetch rule (quoted strings
//! with backslash escapes, comma-separated values, the last type wins), so a declared type such
//! as `text/plain; a="\"; b=",text/html` reads as `text/plain` to a simple parser and as
//! `text/html` to a browser. Rather than imitate every parser, the characters that make the
//! readings differ (`"`, `\`, `,`, controls, anything outside visible ASCII) are refused, and
//! what is kept is rebuilt as `type/subtype`, lower-cased, plus a `charset` only when it is one
//! of a known set. Every reader parses the result the same way.

use std::fmt;

/// Longest declared content type accepted. Far above any real one; it keeps the auth answer's
/// headers well inside nginx's buffer (a 6,000-byte type once made every read of its file 503).
pub const MAX_LEN: usize = 255;

/// Charsets kept in a stored type, by their canonical (WHATWG Encoding) label. Anything else is
/// dropped, UTF-7 above all: a browser that honoured it could read text as markup.
const CHARSETS: [&str; 29] = [
    "utf-8",
    "us-ascii",
    "utf-16",
    "utf-16le",
    "utf-16be",
    "iso-8859-1",
    "iso-8859-2",
    "iso-8859-3",
    "iso-8859-4",
    "iso-8859-5",
    "iso-8859-6",
    "iso-8859-7",
    "iso-8859-8",
    "iso-8859-9",
    "iso-8859-10",
    "iso-8859-13",
    "iso-8859-15",
    "windows-1250",
    "windows-1251",
    "windows-1252",
    "windows-1253",
    "windows-1254",
    "windows-1256",
    "koi8-r",
    "koi8-u",
    "shift_jis",
    "euc-jp",
    "euc-kr",
    "gb18030",
];

/// Why a declared content type was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MediaTypeError {
    /// More than [`MAX_LEN`] bytes.
    #[error("is longer than {MAX_LEN} bytes")]
    TooLong,
    /// A character browsers and servers could read differently.
    #[error("may not contain quotes, backslashes, commas, control characters or non-ASCII")]
    Forbidden,
    /// Not `type/subtype` of token characters.
    #[error("is not of the form type/subtype")]
    NotAType,
    /// A parameter that is not `name=value` of token characters.
    #[error("has a parameter that is not name=value")]
    BadParameter,
    /// Two `charset` parameters.
    #[error("names its charset twice")]
    TwoCharsets,
}

/// A content type in the one form mediagate stores: `type/subtype` of RFC 9110 token
/// characters, lower-cased, and at most a known `charset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    essence: String,
    charset: Option<&'static str>,
}

/// RFC 9110 `tchar`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl MediaType {
    /// `application/octet-stream`: what a file is when nothing better is known.
    pub fn octet_stream() -> Self {
        Self {
            essence: "application/octet-stream".into(),
            charset: None,
        }
    }

    /// Parses a declared type and rebuilds it; parameters other than a known charset are
    /// dropped. Refuses (rather than repairs) anything two parsers could read differently.
    pub fn parse(raw: &str) -> Result<Self, MediaTypeError> {
        if raw.len() > MAX_LEN {
            return Err(MediaTypeError::TooLong);
        }
        if raw
            .bytes()
            .any(|b| !(b' '..=b'~').contains(&b) || matches!(b, b'"' | b'\\' | b','))
        {
            return Err(MediaTypeError::Forbidden);
        }
        let mut parts = raw.split(';');
        let essence = parts.next().unwrap_or_default().trim_matches(' ');
        let (kind, subtype) = essence.split_once('/').ok_or(MediaTypeError::NotAType)?;
        if !is_token(kind) || !is_token(subtype) {
            return Err(MediaTypeError::NotAType);
        }
        let mut charset = None;
        let mut named_charset = false;
        for param in parts.map(|p| p.trim_matches(' ')).filter(|p| !p.is_empty()) {
            let (name, value) = param.split_once('=').ok_or(MediaTypeError::BadParameter)?;
            if !is_token(name) || !is_token(value) {
                return Err(MediaTypeError::BadParameter);
            }
            if name.eq_ignore_ascii_case("charset") {
                if named_charset {
                    return Err(MediaTypeError::TwoCharsets);
                }
                named_charset = true;
                charset = CHARSETS
                    .iter()
                    .find(|c| c.eq_ignore_ascii_case(value))
                    .copied();
            }
        }
        Ok(Self {
            essence: essence.to_ascii_lowercase(),
            charset,
        })
    }

    /// `type/subtype`, lower-cased.
    pub fn essence(&self) -> &str {
        &self.essence
    }

    /// The part before the `/`.
    pub fn kind(&self) -> &str {
        self.essence.split('/').next().unwrap_or_default()
    }

    /// The same type with another essence, keeping the charset (for a type sent in place of
    /// the recorded one).
    pub fn with_essence(&self, essence: &str) -> Self {
        Self {
            essence: essence.to_owned(),
            charset: self.charset,
        }
    }

    /// Whether an `upload.allowed_types` entry (`image/png`, or `image/*`) admits this type.
    pub fn matches(&self, pattern: &str) -> bool {
        pattern.eq_ignore_ascii_case(&self.essence)
            || pattern
                .strip_suffix("/*")
                .is_some_and(|k| k.eq_ignore_ascii_case(self.kind()))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.essence)?;
        if let Some(c) = self.charset {
            write!(f, "; charset={c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn normal(raw: &str) -> String {
        MediaType::parse(raw).unwrap().to_string()
    }

    #[test]
    fn rebuilds_the_type_and_keeps_only_a_known_charset() {
        assert_eq!(normal("image/png"), "image/png");
        assert_eq!(
            normal(" Text/HTML ; Charset=UTF-8 "),
            "text/html; charset=utf-8"
        );
        assert_eq!(normal("text/plain; charset=utf-7"), "text/plain");
        assert_eq!(normal("text/plain; format=flowed; q=1"), "text/plain");
        assert_eq!(normal("text/plain;"), "text/plain");
        assert_eq!(
            normal("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
    }

    #[test]
    fn refuses_what_browsers_and_parsers_read_differently() {
        use MediaTypeError::*;
        for (raw, why) in [
            (r#"text/plain; a="\"; b=",text/html;c=""#, Forbidden),
            (r#"image/png; a="\"; b=",text/html;c=""#, Forbidden),
            ("text/plain, text/html", Forbidden),
            ("text/plain\t", Forbidden),
            ("text/plain\r\nX: y", Forbidden),
            ("text/plaïn", Forbidden),
            ("text/plain; charset=\"utf-8\"", Forbidden),
            ("text", NotAType),
            ("/plain", NotAType),
            ("text/", NotAType),
            ("text/pl ain", NotAType),
            ("text/plain/x", NotAType),
            ("", NotAType),
            ("text/plain; charset", BadParameter),
            ("text/plain; =x", BadParameter),
            ("text/plain; a=b c", BadParameter),
            ("text/plain; charset=utf-8; charset=utf-7", TwoCharsets),
        ] {
            assert_eq!(MediaType::parse(raw), Err(why), "{raw:?}");
        }
        let long = format!("application/{}", "x".repeat(MAX_LEN - 12));
        assert_eq!(long.len(), MAX_LEN);
        assert!(MediaType::parse(&long).is_ok());
        assert_eq!(
            MediaType::parse(&format!("{long}x")),
            Err(MediaTypeError::TooLong)
        );
    }

    #[test]
    fn allowed_types_match_exactly_or_by_family() {
        let png = MediaType::parse("image/png").unwrap();
        assert!(png.matches("image/png") && png.matches("IMAGE/*") && !png.matches("image/gif"));
        assert!(!MediaType::parse("imagex/png").unwrap().matches("image/*"));
        assert!(
            MediaType::parse("application/pdf; charset=x")
                .unwrap()
                .matches("application/pdf")
        );
    }

    proptest! {
        /// Whatever the bytes, a type is refused or rebuilt into one that parses back to
        /// itself and holds nothing a browser could read as a second type or parameter.
        #[test]
        fn any_input_is_refused_or_rebuilt(raw in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            // Mostly type-shaped, so that many inputs reach the assertions.
            "[a-zA-Z0-9/;=+. ,\"\\\\\t-]{0,60}",
        ]) {
            if let Ok(t) = MediaType::parse(&raw) {
                let shown = t.to_string();
                prop_assert_eq!(MediaType::parse(&shown), Ok(t.clone()));
                prop_assert!(shown.len() <= MAX_LEN);
                prop_assert!(!shown.contains([',', '"', '\\']));
                prop_assert!(shown.bytes().all(|b| (b' '..=b'~').contains(&b)));
                prop_assert_eq!(shown.matches(';').count(), usize::from(shown.contains("charset")));
            }
        }

        /// Shapes that are types (with noise around them) are kept, lower-cased.
        #[test]
        fn real_types_survive(
            kind in "[a-zA-Z][a-zA-Z0-9.+-]{0,15}",
            sub in "[a-zA-Z0-9][a-zA-Z0-9.+-]{0,30}",
            params in proptest::collection::vec(("[a-z]{1,8}", "[a-zA-Z0-9-]{1,10}"), 0..3),
        ) {
            let mut raw = format!("{kind}/{sub}");
            for (n, v) in &params {
                raw.push_str(&format!("; {n}={v}"));
            }
            let t = MediaType::parse(&raw);
            let charsets = params.iter().filter(|(n, _)| n == "charset").count();
            if charsets > 1 {
                prop_assert_eq!(t, Err(MediaTypeError::TwoCharsets));
            } else {
                let expected = format!("{kind}/{sub}").to_ascii_lowercase();
                prop_assert_eq!(t.map(|t| t.essence().to_owned()), Ok(expected));
            }
        }
    }
}
