//! The `Content-Disposition` and the safety headers nginx sends with a file.
//!
//! Users upload the files, so a file can be HTML, SVG or script that would run on the site's
//! origin if a browser rendered it inline. Such types are always sent as attachments and under
//! `Content-Security-Policy: sandbox`; everything gets `nosniff` from the nginx snippet.

use serde::{Deserialize, Serialize};

/// How the browser should present a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DispositionKind {
    Inline,
    Attachment,
}

impl DispositionKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::Attachment => "attachment",
        }
    }
}

/// The `type/subtype` of a content type, lower-cased, without parameters.
pub fn essence(content_type: &str) -> String {
    essence_as_sent(content_type).to_ascii_lowercase()
}

/// The `type/subtype` of a content type without parameters, in the case it was sent.
fn essence_as_sent(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or("").trim()
}

/// Content types a browser may execute or render as a document on our origin.
pub fn is_active_content(content_type: &str) -> bool {
    // Compared without lower-casing into a new string: this runs on every allowed read.
    let essence = essence_as_sent(content_type);
    ACTIVE_TYPES.iter().any(|t| essence.eq_ignore_ascii_case(t))
        || essence
            .len()
            .checked_sub(4)
            .is_some_and(|at| essence.as_bytes()[at..].eq_ignore_ascii_case(b"+xml"))
        || essence.is_empty()
}

const ACTIVE_TYPES: [&str; 15] = [
    "text/html",
    "application/xhtml+xml",
    "image/svg+xml",
    "text/xml",
    "application/xml",
    "text/xsl",
    "application/xslt+xml",
    "text/javascript",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "text/ecmascript",
    "application/x-shockwave-flash",
    "text/cache-manifest",
    "application/wasm",
];

/// The disposition a new file gets: inline for passive types, attachment for active ones.
pub fn default_for(content_type: &str) -> DispositionKind {
    if is_active_content(content_type) {
        DispositionKind::Attachment
    } else {
        DispositionKind::Inline
    }
}

/// The disposition actually sent, and whether the file is sandboxed: active content is never
/// inline, whatever was requested, and always gets `Content-Security-Policy: sandbox`.
pub fn effective(kind: DispositionKind, content_type: &str) -> (DispositionKind, bool) {
    let active = is_active_content(content_type);
    let kind = if active {
        DispositionKind::Attachment
    } else {
        kind
    };
    (kind, active)
}

/// RFC 5987 `attr-char`: what may stand unencoded in `filename*`.
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Builds the header value per RFC 6266: an ASCII `filename` fallback for old clients (quotes,
/// backslashes, controls and non-ASCII replaced by `_`) and the exact name in `filename*`.
/// The result never contains CR, LF or an unescaped quote, whatever the input.
pub fn header_value(kind: DispositionKind, filename: &str) -> String {
    let ascii = |c: char| {
        if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
            c
        } else {
            '_'
        }
    };
    // Sized once: the fixed parts are 42 bytes at most, the fallback is at most the name's
    // bytes and its percent-encoding three times them.
    let mut value = String::with_capacity(42 + 4 * filename.len());
    value.push_str(kind.as_str());
    value.push_str("; filename=\"");
    value.extend(filename.chars().map(ascii));
    value.push_str("\"; filename*=UTF-8''");
    value.extend(percent_encoding::utf8_percent_encode(filename, ATTR_CHAR));
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ascii_and_unicode_names() {
        assert_eq!(
            header_value(DispositionKind::Inline, "report.pdf"),
            "inline; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        assert_eq!(
            header_value(DispositionKind::Attachment, "Über \"x\".txt"),
            "attachment; filename=\"_ber _x_.txt\"; filename*=UTF-8''%C3%9Cber%20%22x%22.txt"
        );
    }

    #[test]
    fn active_types_are_attachments() {
        for t in [
            "text/html; charset=utf-8",
            "image/svg+xml",
            "application/xml",
            "TEXT/HTML",
            "Application/Atom+XML; q=1",
            " text/html ",
            "",
        ] {
            assert!(is_active_content(t), "{t}");
            assert_eq!(
                effective(DispositionKind::Inline, t),
                (DispositionKind::Attachment, true)
            );
        }
        for t in [
            "image/png",
            "text/plain",
            "video/mp4",
            "xml",
            "é+xm",
            "text/htmlx",
        ] {
            assert!(!is_active_content(t), "{t}");
            assert_eq!(default_for(t), DispositionKind::Inline);
        }
    }

    proptest! {
        #[test]
        fn header_never_breaks_out(name in ".*") {
            let v = header_value(DispositionKind::Inline, &name);
            prop_assert!(!v.contains('\r') && !v.contains('\n') && !v.contains('\0'));
            // Exactly the two quotes that delimit the fallback.
            prop_assert_eq!(v.matches('"').count(), 2);
        }

        #[test]
        fn activeness_ignores_case_and_parameters(t in "[a-zA-Z+/é ]{0,24}", p in "[ -~]{0,12}") {
            let active = is_active_content(&t);
            prop_assert_eq!(is_active_content(&t.to_uppercase()), active);
            prop_assert_eq!(is_active_content(&format!("{t};{p}")), active);
            prop_assert_eq!(active, {
                let e = essence(&t);
                e.is_empty() || e.ends_with("+xml") || ACTIVE_TYPES.contains(&e.as_str())
            });
        }
    }
}
