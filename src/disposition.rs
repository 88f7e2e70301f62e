//! How a file is presented: the `Content-Type`, `Content-Disposition` and sandbox nginx sends.
//!
//! Users upload the files, so a file can be HTML, SVG or script that would run on the site's
//! origin if a browser rendered it or loaded it as a script. The rule is an allowlist: only
//! passive types (raster images, audio, video, PDF, plain text) may be inline; everything else
//! is an attachment under `Content-Security-Policy: sandbox`; and a type a browser runs when a
//! page loads it (JavaScript, CSS) is sent as `text/plain`, whatever was recorded. Every file
//! also gets `nosniff` from the nginx snippet, which is what makes `text/plain` safe.

use serde::{Deserialize, Serialize};

use crate::media_type::MediaType;

/// How the browser should present a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DispositionKind {
    /// Shown in the browser (only ever for passive types).
    Inline,
    /// Downloaded.
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

/// How browsers treat a type, which decides how nginx sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Shown by the browser itself, never run: may be inline.
    Passive,
    /// Run or applied to a page when loaded as a subresource (`<script src>`, a worker, a
    /// stylesheet). Sent as `text/plain`, which nosniff keeps from being run, whatever was
    /// recorded: `attachment` and `sandbox` do not stop `<script src="/media/…">` on the site's
    /// own origin.
    Script,
    /// Everything else, HTML, SVG and XML included: an attachment, under `sandbox`.
    Other,
}

/// The passive types: raster images, audio, video, PDF and plain text. An allowlist, so a type
/// nobody thought of is an attachment.
const PASSIVE: [&str; 15] = [
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/apng",
    "image/bmp",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "image/tiff",
    "image/heic",
    "image/heif",
    "image/jxl",
    "application/pdf",
    "text/plain",
];

/// Every JavaScript MIME type essence of the WHATWG MIME Sniffing standard, and CSS.
const SCRIPT: [&str; 17] = [
    "application/ecmascript",
    "application/javascript",
    "application/x-ecmascript",
    "application/x-javascript",
    "text/ecmascript",
    "text/javascript",
    "text/javascript1.0",
    "text/javascript1.1",
    "text/javascript1.2",
    "text/javascript1.3",
    "text/javascript1.4",
    "text/javascript1.5",
    "text/jscript",
    "text/livescript",
    "text/x-ecmascript",
    "text/x-javascript",
    "text/css",
];

fn class(t: &MediaType) -> Class {
    let essence = t.essence();
    if SCRIPT.contains(&essence) {
        Class::Script
    } else if PASSIVE.contains(&essence) || matches!(t.kind(), "audio" | "video") {
        Class::Passive
    } else {
        Class::Other
    }
}

/// The disposition a new file gets: inline for passive types, attachment for the rest.
pub fn default_for(content_type: &MediaType) -> DispositionKind {
    match class(content_type) {
        Class::Passive => DispositionKind::Inline,
        Class::Script | Class::Other => DispositionKind::Attachment,
    }
}

/// What nginx sends with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    /// The `Content-Type`: the recorded type, rebuilt, or `text/plain` for a script type.
    pub content_type: String,
    /// Inline only for passive types, and only when the file's disposition says so.
    pub kind: DispositionKind,
    /// Whether `Content-Security-Policy: sandbox` goes with it.
    pub sandbox: bool,
}

/// How a file with the `recorded` type and disposition is sent. The recorded type is parsed
/// again, so a record written before types were rebuilt at upload (or tampered with) is sent as
/// `application/octet-stream` unless it parses, and never as anything but a rebuilt type.
pub fn present(recorded: &str, disposition: DispositionKind) -> Presentation {
    let t = MediaType::parse(recorded).unwrap_or_else(|_| MediaType::octet_stream());
    match class(&t) {
        Class::Passive => Presentation {
            content_type: t.to_string(),
            kind: disposition,
            sandbox: false,
        },
        Class::Script => Presentation {
            content_type: t.with_essence("text/plain").to_string(),
            kind: DispositionKind::Attachment,
            sandbox: true,
        },
        Class::Other => Presentation {
            content_type: t.to_string(),
            kind: DispositionKind::Attachment,
            sandbox: true,
        },
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

    fn shown(recorded: &str, d: DispositionKind) -> (String, DispositionKind, bool) {
        let p = present(recorded, d);
        (p.content_type, p.kind, p.sandbox)
    }

    #[test]
    fn only_passive_types_are_inline() {
        use DispositionKind::{Attachment, Inline};
        for t in [
            "image/png",
            "IMAGE/JPEG",
            "video/mp4",
            "audio/ogg",
            "application/pdf",
            "text/plain; charset=utf-8",
        ] {
            let (sent, kind, sandbox) = shown(t, Inline);
            assert_eq!((kind, sandbox), (Inline, false), "{t}");
            assert_eq!(sent, MediaType::parse(t).unwrap().to_string());
            assert_eq!(default_for(&MediaType::parse(t).unwrap()), Inline, "{t}");
            assert_eq!(shown(t, Attachment).1, Attachment, "{t}");
        }
        for t in [
            "text/html; charset=utf-8",
            "image/svg+xml",
            "application/xml",
            "application/atom+xml",
            "multipart/x-mixed-replace",
            "application/json",
            "application/octet-stream",
            "image/x-unknown",
            "application/wasm",
        ] {
            let (sent, kind, sandbox) = shown(t, Inline);
            assert_eq!((kind, sandbox), (Attachment, true), "{t}");
            assert_eq!(sent, MediaType::parse(t).unwrap().to_string());
            assert_eq!(
                default_for(&MediaType::parse(t).unwrap()),
                Attachment,
                "{t}"
            );
        }
    }

    #[test]
    fn script_types_are_sent_as_plain_text() {
        for t in SCRIPT {
            assert_eq!(
                shown(t, DispositionKind::Inline),
                ("text/plain".into(), DispositionKind::Attachment, true),
                "{t}"
            );
        }
        assert_eq!(
            shown("Text/JavaScript; charset=UTF-8", DispositionKind::Inline).0,
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn a_record_that_does_not_parse_is_an_octet_stream_attachment() {
        for t in [
            r#"text/plain; a="\"; b=",text/html;c=""#,
            "",
            "text/html, image/png",
            &"x".repeat(6000),
        ] {
            assert_eq!(
                shown(t, DispositionKind::Inline),
                (
                    "application/octet-stream".into(),
                    DispositionKind::Attachment,
                    true
                ),
                "{t}"
            );
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

        /// Whatever was recorded, what nginx sends is a type mediagate built; it is inline only
        /// when passive, never a type a browser runs, and sandboxed whenever it is not inline.
        #[test]
        fn nothing_recorded_is_sent_runnable_or_inline_unless_passive(
            recorded in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..80)
                    .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
                "(text|image|application|audio|video|multipart)/[a-zA-Z0-9.+-]{1,20}( ?; ?[a-z]{1,8}=[a-zA-Z0-9-]{1,10})?",
                proptest::sample::select(SCRIPT.to_vec()).prop_map(str::to_owned),
                proptest::sample::select(PASSIVE.to_vec()).prop_map(str::to_owned),
            ],
            inline in any::<bool>(),
        ) {
            let asked = if inline { DispositionKind::Inline } else { DispositionKind::Attachment };
            let p = present(&recorded, asked);
            let sent = MediaType::parse(&p.content_type).expect("sent types parse");
            prop_assert_eq!(sent.to_string(), p.content_type.clone());
            prop_assert!(!SCRIPT.contains(&sent.essence()));
            if p.kind == DispositionKind::Inline {
                prop_assert_eq!(class(&sent), Class::Passive);
                prop_assert!(!p.sandbox);
            } else {
                prop_assert!(p.sandbox || class(&sent) == Class::Passive);
            }
        }
    }
}
