//! Parses the URI nginx forwards in `X-Original-URI` (its raw `$request_uri`).
//!
//! nginx matches `location` blocks against a *normalized* URI (%XX decoded, `.`/`..` resolved,
//! slashes merged), but we decide on the raw one. Rather than re-implement nginx's normalizer
//! and hope both agree, we accept only URIs on which normalization is a no-op: exactly
//! `{prefix}{user_token}/{file_token}/{filename}`, tokens as raw lowercase hex, the filename
//! percent-decoded once and valid by [`crate::filenames::validate`]. Anything else is refused.
//! The file served is never derived from this path anyway: it is the storage path the store
//! holds for the token pair, checked by [`StoragePath::parse`].

use crate::filenames;
use crate::tokens::{FileToken, UserToken};

/// Longest raw URI considered at all; nginx's default large header buffer is 8k.
pub const MAX_URI_BYTES: usize = 4096;

/// Why a request URI was refused. Every variant leads to 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Longer than any URL mediagate makes.
    #[error("URI too long")]
    TooLong,
    /// Not under the media prefix.
    #[error("URI outside the media prefix")]
    Prefix,
    /// Not exactly user token, file token, filename.
    #[error("URI does not have exactly three segments after the prefix")]
    Shape,
    /// The first segment is not a user token.
    #[error("malformed user token")]
    UserToken,
    /// The second segment is not a file token.
    #[error("malformed file token")]
    FileToken,
    /// A `%` not followed by two hex digits.
    #[error("bad percent-encoding")]
    Encoding,
    /// The decoded filename is not UTF-8.
    #[error("filename is not valid UTF-8")]
    Utf8,
    /// A byte outside the accepted set (controls, `;`, `#`, `\\`, non-ASCII, …).
    #[error("forbidden byte in URI")]
    Byte,
    /// The decoded filename breaks a filename rule.
    #[error("invalid filename: {0}")]
    Filename(#[from] filenames::FilenameError),
}

/// A request for `filename` under a user token and a file token. The invariant: both tokens are
/// well-formed and the filename passes [`filenames::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPath {
    /// The first segment: names the owner.
    pub user_token: UserToken,
    /// The second segment: names the file.
    pub file_token: FileToken,
    /// The last segment, percent-decoded.
    pub filename: String,
    /// The raw query string, if any (share links carry their signature there).
    pub query: Option<String>,
}

impl MediaPath {
    /// Parses a raw request URI. `prefix` must start and end with `/` (checked by config).
    pub fn parse(raw: &str, prefix: &str) -> Result<Self, PathError> {
        if raw.len() > MAX_URI_BYTES {
            return Err(PathError::TooLong);
        }
        let (path, query) = match raw.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (raw, None),
        };
        // Raw bytes that nginx would not send unencoded, or that mean something else in a URL.
        if path
            .bytes()
            .any(|b| b.is_ascii_control() || matches!(b, b' ' | b'#' | b'\\' | b';'))
        {
            return Err(PathError::Byte);
        }
        let rest = path.strip_prefix(prefix).ok_or(PathError::Prefix)?;
        let mut segments = rest.split('/');
        let (Some(user), Some(file), Some(name), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(PathError::Shape);
        };
        let user_token = UserToken::parse(user).map_err(|_| PathError::UserToken)?;
        let file_token = FileToken::parse(file).map_err(|_| PathError::FileToken)?;
        let filename = decode_once(name)?;
        filenames::validate(&filename)?;
        Ok(Self {
            user_token,
            file_token,
            filename,
            query,
        })
    }
}

/// Percent-decodes exactly once. A `%` not followed by two hex digits is an error (the
/// `percent_encoding` crate would pass it through, which is one more spelling of the same name).
fn decode_once(segment: &str) -> Result<String, PathError> {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                return Err(PathError::Encoding);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    // `decode_utf8` is `str::from_utf8`, which rejects overlong forms and surrogates, so
    // `%C0%AF` never becomes `/`. It copies nothing for a name without escapes.
    percent_encoding::percent_decode(bytes)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| PathError::Utf8)
}

/// Where a file's bytes live, relative to the storage root: `{2 hex}/{32 hex}`. Chosen by
/// mediagate at upload, immutable, and free of public tokens. Checked again whenever it is read
/// back from the store, so even a tampered store cannot point nginx outside the root.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StoragePath(String);

impl TryFrom<String> for StoragePath {
    type Error = PathError;
    fn try_from(s: String) -> Result<Self, PathError> {
        Self::parse(&s)
    }
}

impl From<StoragePath> for String {
    fn from(p: StoragePath) -> String {
        p.0
    }
}

impl StoragePath {
    /// The storage path for a new file id.
    pub fn for_file(id: &crate::ids::FileId) -> Self {
        let id = id.as_str();
        let mut path = String::with_capacity(id.len() + 3);
        path.push_str(&id[..2]);
        path.push('/');
        path.push_str(id);
        Self(path)
    }

    /// Checks a stored path (`{2 hex}/{32 hex}`) before it is handed to nginx.
    pub fn parse(s: &str) -> Result<Self, PathError> {
        let (dir, name) = s.split_once('/').ok_or(PathError::Shape)?;
        let lower_hex = |x: &str| x.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if dir.len() == 2
            && name.len() == 32
            && lower_hex(dir)
            && lower_hex(name)
            && name.starts_with(dir)
        {
            Ok(Self(s.to_owned()))
        } else {
            Err(PathError::Shape)
        }
    }

    /// The path relative to the storage root.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UT: &str = "0123456789abcdef0123456789abcdef";
    const FT: &str = "fedcba9876543210fedcba9876543210";

    fn p(raw: &str) -> Result<MediaPath, PathError> {
        MediaPath::parse(raw, "/media/")
    }

    #[test]
    fn accepts_the_canonical_form() {
        let m = p(&format!("/media/{UT}/{FT}/report%20Q1.pdf?x=1")).unwrap();
        assert_eq!(m.user_token.as_str(), UT);
        assert_eq!(m.file_token.as_str(), FT);
        assert_eq!(m.filename, "report Q1.pdf");
        assert_eq!(m.query.as_deref(), Some("x=1"));
        let m = p(&format!("/media/{UT}/{FT}/%C3%BC.txt")).unwrap();
        assert_eq!(m.filename, "ü.txt");
    }

    #[test]
    fn refuses_hostile_forms() {
        let cases: &[(&str, PathError)] = &[
            (
                "/media/{UT}/{FT}/..",
                PathError::Filename(filenames::FilenameError::DotName),
            ),
            (
                "/media/{UT}/{FT}/%2e%2e",
                PathError::Filename(filenames::FilenameError::DotName),
            ),
            (
                "/media/{UT}/{FT}/%2E%2E",
                PathError::Filename(filenames::FilenameError::DotName),
            ),
            (
                "/media/{UT}/{FT}/..%2fx",
                PathError::Filename(filenames::FilenameError::Separator),
            ),
            (
                "/media/{UT}/{FT}/a%2Fb",
                PathError::Filename(filenames::FilenameError::Separator),
            ),
            (
                "/media/{UT}/{FT}/a%5Cb",
                PathError::Filename(filenames::FilenameError::Separator),
            ),
            ("/media/{UT}/{FT}/a\\b", PathError::Byte),
            (
                "/media/{UT}/{FT}/a%00b",
                PathError::Filename(filenames::FilenameError::Control),
            ),
            ("/media/{UT}/{FT}/a\0b", PathError::Byte),
            ("/media/{UT}/{FT}/%C0%AF", PathError::Utf8),
            ("/media/{UT}/{FT}/%E0%80%AE", PathError::Utf8),
            ("/media/{UT}/{FT}/%zz", PathError::Encoding),
            ("/media/{UT}/{FT}/%2", PathError::Encoding),
            (
                "/media/{UT}/{FT}/",
                PathError::Filename(filenames::FilenameError::Empty),
            ),
            ("/media/{UT}/{FT}/a/b", PathError::Shape),
            ("/media/{UT}/{FT}", PathError::Shape),
            ("/media/{UT}//{FT}/a", PathError::Shape),
            ("/media//{UT}/{FT}/a", PathError::Shape),
            ("/media/../{UT}/{FT}/a", PathError::Shape),
            ("/media/{UT}/../{FT}/a", PathError::Shape),
            ("/media/{UT}/./a", PathError::FileToken),
            ("/Media/{UT}/{FT}/a", PathError::Prefix),
            ("/other/{UT}/{FT}/a", PathError::Prefix),
            ("media/{UT}/{FT}/a", PathError::Prefix),
            ("/media/{UTU}/{FT}/a", PathError::UserToken),
            ("/media/{UT}/{FTU}/a", PathError::FileToken),
            ("/media/%30{UT1}/{FT}/a", PathError::UserToken),
            ("/media/{UT}/{FT}/a;b", PathError::Byte),
            ("/media/{UT}/{FT}/a#b", PathError::Byte),
            ("/media/{UT}/{FT}/a b", PathError::Byte),
        ];
        for (raw, want) in cases {
            let raw = raw
                .replace("{UTU}", &UT.to_uppercase())
                .replace("{FTU}", &FT.to_uppercase())
                .replace("{UT1}", &UT[1..])
                .replace("{UT}", UT)
                .replace("{FT}", FT);
            assert_eq!(p(&raw).err(), Some(*want), "{raw}");
        }
        assert_eq!(
            p(&"x".repeat(MAX_URI_BYTES + 1)).err(),
            Some(PathError::TooLong)
        );
    }

    #[test]
    fn storage_paths_are_strict() {
        let id = crate::ids::FileId::generate();
        let sp = StoragePath::for_file(&id);
        assert_eq!(StoragePath::parse(sp.as_str()).unwrap(), sp);
        for bad in [
            "../etc/passwd",
            "ab/../../x",
            "/ab/abcd",
            "ab",
            "zz/zz0123456789abcdef0123456789ab",
        ] {
            assert!(StoragePath::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Any input: a refusal, or tokens of the one valid form and a filename that cannot be
        /// read as a path.
        #[test]
        fn parse_is_refusal_or_safe(raw in prop_oneof![
            "(/media/)?[0-9a-fA-F%./\\\\;?#\0 a-z\u{80}-\u{10ffff}]{0,120}",
            // The accepted shape, each part valid or damaged, so that many inputs parse and
            // reach the assertions below.
            (
                prop_oneof![Just(UT.to_owned()), "[0-9a-fA-F%.]{31,33}"],
                prop_oneof![Just(FT.to_owned()), "[0-9a-fA-F%.]{31,33}"],
                "([a-z0-9._ -]|%[0-9a-fA-F]{2}|%|/|\\\\|;|\\?|#){1,30}",
            )
                .prop_map(|(u, f, name)| format!("/media/{u}/{f}/{name}")),
        ]) {
            if let Ok(m) = p(&raw) {
                prop_assert!(UserToken::parse(m.user_token.as_str()).is_ok());
                prop_assert!(FileToken::parse(m.file_token.as_str()).is_ok());
                prop_assert!(filenames::validate(&m.filename).is_ok());
                prop_assert!(!m.filename.contains('/') && !m.filename.contains('\0'));
                prop_assert!(m.filename != ".." && m.filename != ".");
            }
        }

        /// Tokens embedded in arbitrary surroundings: the only accepted filename is the one that
        /// re-encodes to the same URL (one spelling per file, up to optional encoding).
        #[test]
        fn accepted_filenames_round_trip(name in "[^/\\\\\0-\x1f\x7f-\u{9f}]{1,60}") {
            prop_assume!(name != "." && name != "..");
            let raw = format!("/media/{UT}/{FT}/{}", filenames::url_segment(&name));
            let m = p(&raw).unwrap();
            prop_assert_eq!(m.filename, name);
        }

        /// Any string: a storage path is refused, or it is relative, has no dot segment and
        /// stays inside the root when joined to it.
        #[test]
        fn storage_path_never_escapes(s in ".{0,64}") {
            if let Ok(sp) = StoragePath::parse(&s) {
                let root = std::path::Path::new("/srv/media");
                let joined = root.join(sp.as_str());
                prop_assert!(!sp.as_str().starts_with('/'));
                prop_assert!(!sp.as_str().split('/').any(|c| c == ".." || c == "." || c.is_empty()));
                prop_assert!(joined.starts_with(root));
            }
        }
    }
}
