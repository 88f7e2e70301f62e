//! Secret and semi-secret identifiers: URL tokens and session ids (the ids of users and files
//! are in `ids`).
//!
//! Every value that reaches the store or a log goes through a newtype here, so that parsing
//! happens once at the edge and the inner code never sees a raw string. URL tokens and session
//! ids come from the operating system's CSPRNG; comparisons of secret values use
//! `subtle::ConstantTimeEq`; `Debug` prints a short fingerprint, never the value.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Bytes of entropy in a URL token (user or file): 128 bits, rendered as 32 lowercase hex digits.
const URL_TOKEN_BYTES: usize = 16;
/// Bytes of a file id (a UUID).
pub(crate) const FILE_ID_BYTES: usize = 16;
/// Bytes of entropy in a session id: 256 bits, rendered as 64 lowercase hex digits.
const SESSION_ID_BYTES: usize = 32;

/// Why a string is not a valid token or id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not the token's length.
    #[error("wrong length")]
    Length,
    /// Not lowercase hex.
    #[error("character outside the allowed alphabet")]
    Alphabet,
}

/// The operating system's random source failed: nothing safe can be generated.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed: {0}")]
pub struct RandomError(String);

fn random_hex<const N: usize>() -> Result<String, RandomError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Accepts exactly `len` lowercase hex digits. Upper case is refused, so that a URL has one
/// spelling only and a case-folded token can never match.
pub(crate) fn parse_lower_hex(s: &str, len: usize) -> Result<(), TokenError> {
    if s.len() != len {
        return Err(TokenError::Length);
    }
    if !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(TokenError::Alphabet);
    }
    Ok(())
}

/// The bytes behind a value that its constructor checked to be lowercase hex of twice their
/// length, so the decoding cannot fail.
pub(crate) fn hex_bytes<const N: usize>(checked: &str) -> [u8; N] {
    let mut out = [0u8; N];
    let _ = hex::decode_to_slice(checked, &mut out);
    out
}

// `from_hex_bytes` serves both kinds of value.
const _: () = assert!(URL_TOKEN_BYTES == 16 && FILE_ID_BYTES == 16);

/// The value of 16 bytes (a URL token's or a file id's) as the lowercase hex the types hold;
/// `None` for another length.
pub(crate) fn from_hex_bytes(bytes: &[u8]) -> Option<String> {
    let bytes: &[u8; 16] = bytes.try_into().ok()?;
    // Into a buffer of the right size: `hex::encode` collects chars one by one, and a
    // decision reads a file id from its record's bytes.
    let mut hex = [0u8; 32];
    hex::encode_to_slice(bytes, &mut hex).ok()?;
    String::from_utf8(hex.to_vec()).ok()
}

/// Constant-time equality of two secrets: the one comparison every token and the admin token
/// go through (lengths are not secret). HMAC signatures are checked by `Mac::verify_slice`,
/// which is constant-time as well.
pub fn ct_eq(a: &[u8], b: &[u8]) -> subtle::Choice {
    #[cfg(test)]
    CT_CALLS.with(|c| c.set(c.get() + 1));
    a.ct_eq(b)
}

#[cfg(test)]
thread_local! {
    /// How often `ct_eq` ran on this thread: lets tests prove a comparison used it.
    pub static CT_CALLS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// First 8 hex digits of SHA-256: enough to correlate log lines, useless to an attacker.
fn fingerprint_of(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    hex::encode(&digest[..4])
}

macro_rules! url_token {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The ", $what, " token in a public media URL: 128 random bits as 32 lowercase hex digits.")]
        #[derive(Clone, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl TryFrom<String> for $name {
            type Error = TokenError;
            fn try_from(s: String) -> Result<Self, TokenError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(t: $name) -> String {
                t.0
            }
        }

        impl $name {
            /// A fresh token from the OS CSPRNG.
            pub fn generate() -> Result<Self, RandomError> {
                random_hex::<URL_TOKEN_BYTES>().map(Self)
            }

            /// Parses a token exactly as it must appear in a URL (no decoding, no case folding).
            pub fn parse(s: &str) -> Result<Self, TokenError> {
                parse_lower_hex(s, URL_TOKEN_BYTES * 2)?;
                Ok(Self(s.to_owned()))
            }

            /// The token as it stands in URLs.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The token's 16 bytes, as the store's binary layout holds it.
            pub fn to_bytes(&self) -> [u8; URL_TOKEN_BYTES] {
                hex_bytes(&self.0)
            }

            /// The token of 16 stored bytes; an error for any other length.
            pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
                from_hex_bytes(bytes)
                    .map(Self)
                    .ok_or(TokenError::Length)
            }

            /// Short non-reversible tag for logs.
            pub fn fingerprint(&self) -> String {
                fingerprint_of(&self.0)
            }
        }

        /// Constant-time, so that a lookup hit followed by a check does not leak by timing
        /// how many leading characters matched.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                ct_eq(self.0.as_bytes(), other.0.as_bytes()).into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "(fp={})"), self.fingerprint())
            }
        }
    };
}

url_token!(UserToken, "user");
url_token!(FileToken, "file");

/// A session id as the browser holds it in its cookie. Never stored: the store keeps only
/// [`SessionKey`], its SHA-256, so a dump of the store hands out no live cookie.
#[derive(Clone)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh session id from the OS CSPRNG.
    pub fn generate() -> Result<Self, RandomError> {
        random_hex::<SESSION_ID_BYTES>().map(Self)
    }

    /// A session id as a client sent it.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        parse_lower_hex(s, SESSION_ID_BYTES * 2)?;
        Ok(Self(s.to_owned()))
    }

    /// The value to hand to the application (once, at creation).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Its hash, which is what the store keeps.
    pub fn key(&self) -> SessionKey {
        // Into a buffer of the right size: `hex::encode` collects chars one by one, and this
        // runs on every decision. Two digits per byte always fit, and are always UTF-8.
        let mut hex = [0u8; 64];
        let _ = hex::encode_to_slice(Sha256::digest(self.0.as_bytes()), &mut hex);
        SessionKey(String::from_utf8_lossy(&hex).into_owned())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId(fp={})", fingerprint_of(&self.0))
    }
}

/// The store's name for a session: hex SHA-256 of the session id. Safe to log in part.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

impl SessionKey {
    /// The hash, hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a key read back from the store's own index.
    pub fn from_stored(s: &str) -> Result<Self, TokenError> {
        parse_lower_hex(s, 64)?;
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({}…)", &self.0[..8])
    }
}

/// What the `forward` session source forwarded for one credential, hashed (SHA-256, hex): the
/// key its cached answer is kept under, so the store holds no cookie or token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ForwardKey(String);

impl ForwardKey {
    /// The key of `parts` (the source's URL, the cookies, the Authorization header), each
    /// length-prefixed so that no two inputs share a key.
    pub fn of(parts: &[&[u8]]) -> Self {
        let mut hash = Sha256::new();
        for p in parts {
            hash.update((p.len() as u64).to_be_bytes());
            hash.update(p);
        }
        Self(hex::encode(hash.finalize()))
    }

    /// The hash, hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Rebuilds a key read back from the store's own index.
    pub fn from_stored(s: &str) -> Result<Self, TokenError> {
        parse_lower_hex(s, 64)?;
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Debug for ForwardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ForwardKey({}…)", &self.0[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back_and_differ() {
        let a = FileToken::generate().unwrap();
        let b = FileToken::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(FileToken::parse(a.as_str()).unwrap(), a);
        assert_eq!(a.as_str().len(), 32);
        let s = SessionId::generate().unwrap();
        assert_eq!(s.expose().len(), 64);
        assert!(SessionId::parse(s.expose()).is_ok());
    }

    #[test]
    fn tokens_refuse_other_case_length_and_alphabet() {
        let t = UserToken::generate().unwrap();
        assert_eq!(
            UserToken::parse(&t.as_str().to_uppercase()).err(),
            if t.as_str().bytes().any(|b| b.is_ascii_alphabetic()) {
                Some(TokenError::Alphabet)
            } else {
                None
            }
        );
        assert_eq!(UserToken::parse("abc").err(), Some(TokenError::Length));
        assert_eq!(
            UserToken::parse("0123456789abcdef0123456789abcdeg").err(),
            Some(TokenError::Alphabet)
        );
        assert_eq!(
            UserToken::parse("0123456789ABCDEF0123456789abcdef").err(),
            Some(TokenError::Alphabet)
        );
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let s = SessionId::generate().unwrap();
        assert!(!format!("{s:?}").contains(s.expose()));
        let t = FileToken::generate().unwrap();
        assert!(!format!("{t:?}").contains(t.as_str()));
        assert!(!format!("{:?}", s.key()).contains(s.key().as_str()));
    }

    #[test]
    fn token_comparison_is_constant_time() {
        let a = FileToken::generate().unwrap();
        let b = FileToken::parse(a.as_str()).unwrap();
        let before = CT_CALLS.with(|c| c.get());
        assert!(a == b);
        assert!(a != FileToken::generate().unwrap());
        let u = UserToken::generate().unwrap();
        assert!(u == u.clone());
        assert_eq!(CT_CALLS.with(|c| c.get()) - before, 3);
    }

    #[test]
    fn tokens_round_trip_through_their_bytes() {
        let t = FileToken::generate().unwrap();
        assert_eq!(FileToken::from_bytes(&t.to_bytes()).unwrap(), t);
        let u = UserToken::parse("00ff0123456789abcdef0123456789ab").unwrap();
        assert_eq!(u.to_bytes()[..2], [0x00, 0xff]);
        assert_eq!(UserToken::from_bytes(&u.to_bytes()).unwrap(), u);
        for len in [0, 15, 17, 32] {
            assert!(FileToken::from_bytes(&vec![7; len]).is_err());
        }
    }

    #[test]
    fn session_key_is_sha256_of_the_id() {
        let s = SessionId::parse(&"a".repeat(64)).unwrap();
        assert_eq!(
            s.key().as_str(),
            "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"
        );
    }
}
