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
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Content types a browser may execute or render as a document on our origin.
pub fn is_active_content(content_type: &str) -> bool {
    let essence = essence(content_type);
    matches!(
        essence.as_str(),
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "application/xslt+xml"
            | "text/javascript"
            | "application/javascript"
            | "application/x-javascript"
            | "application/ecmascript"
            | "text/ecmascript"
            | "application/x-shockwave-flash"
            | "text/cache-manifest"
            | "application/wasm"
    ) || essence.ends_with("+xml")
        || essence.is_empty()
}

/// The disposition a new file gets: inline for passive types, attachment for active ones.
pub fn default_for(content_type: &str) -> DispositionKind {
    if is_active_content(content_type) {
        DispositionKind::Attachment
    } else {
        DispositionKind::Inline
    }
}

/// The disposition actually sent: active content is never inline, whatever was requested.
pub fn effective(kind: DispositionKind, content_type: &str) -> DispositionKind {
    if is_active_content(content_type) {
        DispositionKind::Attachment
    } else {
        kind
    }
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
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact = percent_encoding::utf8_percent_encode(filename, ATTR_CHAR);
    format!(
        "{}; filename=\"{fallback}\"; filename*=UTF-8''{exact}",
        kind.as_str()
    )
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
            "",
        ] {
            assert!(is_active_content(t), "{t}");
            assert_eq!(
                effective(DispositionKind::Inline, t),
                DispositionKind::Attachment
            );
        }
        for t in ["image/png", "text/plain", "video/mp4"] {
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
    }
}
