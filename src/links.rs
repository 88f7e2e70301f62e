//! Share links: a public URL plus `?exp=UNIX&sig=HEX`, where `sig` is HMAC-SHA256 over the
//! user token, the file token, the filename and the expiry, keyed by `links.secret`.
//!
//! The signature binds the link to the file's *current* tokens: rotating the file (or user)
//! token changes the path, so every link made before stops verifying. Verification tries the
//! current key and every old key, each in constant time (`Mac::verify_slice`). The query must
//! be exactly `exp=…&sig=…`: any other spelling of link parameters is refused, so a link has
//! one form only.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::paths::MediaPath;
use crate::tokens::{FileToken, UserToken};

type HmacSha256 = Hmac<Sha256>;

/// Hex digits of a signature (SHA-256 output).
const SIG_HEX: usize = 64;

/// The keys links are signed and checked with.
#[derive(Clone, Default)]
pub struct LinkKeys {
    /// Signs new links; `None` turns share links off.
    current: Option<SecretString>,
    /// Still accepted while the links they signed expire.
    old: Vec<SecretString>,
}

impl std::fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LinkKeys(enabled={}, old={})",
            self.current.is_some(),
            self.old.len()
        )
    }
}

/// What a request's query says about a share link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkCheck {
    /// No link parameters: decided by session alone.
    Absent,
    /// A valid, unexpired link for exactly this path, valid while the clock is before
    /// `expires_at` (Unix seconds).
    /// The link opens the file until `expires_at`.
    Valid {
        /// Unix seconds.
        expires_at: i64,
    },
    /// Link parameters that are malformed, expired, or signed for something else.
    Invalid,
}

fn message(user: &str, file: &str, filename: &str, exp: i64) -> Vec<u8> {
    // Newlines cannot occur in tokens or filenames, so the fields cannot run into each other.
    format!("mediagate-link-v1\n{user}\n{file}\n{filename}\n{exp}").into_bytes()
}

fn mac(key: &SecretString) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <HmacSha256 as Mac>::new_from_slice(key.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"))
}

impl LinkKeys {
    /// The keys of `links.secret` (`None`: links off) and `links.old_secrets`.
    pub fn new(current: Option<SecretString>, old: Vec<SecretString>) -> Self {
        Self { current, old }
    }

    /// Whether links can be made (a current key is set).
    pub fn enabled(&self) -> bool {
        self.current.is_some()
    }

    /// The query string (`exp=…&sig=…`) of a link valid until `exp`; `None` if links are off.
    pub fn sign(
        &self,
        user: &UserToken,
        file: &FileToken,
        filename: &str,
        exp: i64,
    ) -> Option<String> {
        let key = self.current.as_ref()?;
        let mut m = mac(key);
        m.update(&message(user.as_str(), file.as_str(), filename, exp));
        Some(format!(
            "exp={exp}&sig={}",
            hex::encode(m.finalize().into_bytes())
        ))
    }

    /// Checks the link parameters of a request for `path` at time `now`.
    pub fn check(&self, path: &MediaPath, now: i64) -> LinkCheck {
        let Some(query) = path.query.as_deref() else {
            return LinkCheck::Absent;
        };
        // Any spelling of the link parameters counts as an attempt at a link (and a wrong
        // spelling is then refused), so that a tampered link always gets 403.
        let mentions_link = query.split('&').any(|p| {
            let p = p.as_bytes();
            p.len() >= 4
                && (p[..4].eq_ignore_ascii_case(b"exp=") || p[..4].eq_ignore_ascii_case(b"sig="))
        });
        if !mentions_link {
            return LinkCheck::Absent;
        }
        // Links are off without a current key, old keys or not: every link is refused.
        let Some(current) = &self.current else {
            return LinkCheck::Invalid;
        };
        let Some((exp, sig)) = parse_query(query) else {
            return LinkCheck::Invalid;
        };
        if exp <= now {
            return LinkCheck::Invalid;
        }
        let Ok(sig) = hex::decode(sig) else {
            return LinkCheck::Invalid;
        };
        let msg = message(
            path.user_token.as_str(),
            path.file_token.as_str(),
            &path.filename,
            exp,
        );
        let valid = std::iter::once(current).chain(&self.old).any(|key| {
            let mut m = mac(key);
            m.update(&msg);
            m.verify_slice(&sig).is_ok()
        });
        if valid {
            LinkCheck::Valid { expires_at: exp }
        } else {
            LinkCheck::Invalid
        }
    }
}

/// Exactly `exp=DIGITS&sig=64 lowercase hex`.
fn parse_query(query: &str) -> Option<(i64, &str)> {
    let (exp, sig) = query.strip_prefix("exp=")?.split_once("&sig=")?;
    // No leading zero: one spelling per expiry.
    if exp.is_empty()
        || exp.len() > 12
        || exp.starts_with('0')
        || !exp.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if sig.len() != SIG_HEX || !sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some((exp.parse().ok()?, sig))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UT: &str = "0123456789abcdef0123456789abcdef";
    const FT: &str = "fedcba9876543210fedcba9876543210";

    fn keys(current: &str, old: &[&str]) -> LinkKeys {
        LinkKeys::new(
            Some(SecretString::from(current.to_owned())),
            old.iter()
                .map(|k| SecretString::from(k.to_string()))
                .collect(),
        )
    }

    fn path(query: Option<String>, filename: &str) -> MediaPath {
        MediaPath {
            user_token: UserToken::parse(UT).unwrap(),
            file_token: FileToken::parse(FT).unwrap(),
            filename: filename.into(),
            query,
        }
    }

    fn signed(k: &LinkKeys, exp: i64) -> String {
        k.sign(
            &UserToken::parse(UT).unwrap(),
            &FileToken::parse(FT).unwrap(),
            "a.txt",
            exp,
        )
        .unwrap()
    }

    #[test]
    fn valid_until_expiry() {
        let k = keys(&"k".repeat(32), &[]);
        let q = signed(&k, 1000);
        assert_eq!(
            k.check(&path(Some(q.clone()), "a.txt"), 999),
            LinkCheck::Valid { expires_at: 1000 }
        );
        assert_eq!(k.check(&path(Some(q), "a.txt"), 1000), LinkCheck::Invalid);
        assert_eq!(k.check(&path(None, "a.txt"), 0), LinkCheck::Absent);
        assert_eq!(
            k.check(&path(Some("v=2".into()), "a.txt"), 0),
            LinkCheck::Absent
        );
    }

    #[test]
    fn bound_to_the_path_and_the_key() {
        let k = keys(&"k".repeat(32), &[]);
        let q = signed(&k, 1000);
        assert_eq!(
            k.check(&path(Some(q.clone()), "b.txt"), 0),
            LinkCheck::Invalid
        );
        let other = keys(&"o".repeat(32), &[]);
        assert_eq!(
            other.check(&path(Some(q.clone()), "a.txt"), 0),
            LinkCheck::Invalid
        );
        // Key rotation: the old key still verifies, and signs nothing new.
        let rotated = keys(&"n".repeat(32), &[&"k".repeat(32)]);
        assert_eq!(
            rotated.check(&path(Some(q.clone()), "a.txt"), 0),
            LinkCheck::Valid { expires_at: 1000 }
        );
        assert_ne!(signed(&rotated, 1000), q);
        // Links off (no current key): old keys open nothing.
        let off = LinkKeys::new(None, vec![SecretString::from("k".repeat(32))]);
        assert!(!off.enabled());
        assert_eq!(off.check(&path(Some(q), "a.txt"), 0), LinkCheck::Invalid);
    }

    #[test]
    fn tampered_truncated_and_reordered_are_invalid() {
        let k = keys(&"k".repeat(32), &[]);
        let q = signed(&k, 1000);
        let (exp, sig) = q.split_once('&').unwrap();
        let variants = [
            q.replace("exp=1000", "exp=2000"),
            format!("{}0", &q[..q.len() - 1]),
            q[..q.len() - 2].to_owned(),
            format!("{sig}&{exp}"),
            format!("{q}&x=1"),
            format!("x=1&{q}"),
            q.to_uppercase(),
            exp.to_owned(),
            sig.to_owned(),
            format!("{q}&{q}"),
            q.replace("exp=1000", "exp=01000"),
        ];
        for v in variants {
            assert_eq!(
                k.check(&path(Some(v.clone()), "a.txt"), 0),
                LinkCheck::Invalid,
                "{v}"
            );
        }
    }

    #[test]
    fn disabled_without_a_key() {
        let k = LinkKeys::default();
        assert!(!k.enabled());
        assert!(
            k.sign(
                &UserToken::parse(UT).unwrap(),
                &FileToken::parse(FT).unwrap(),
                "a",
                1
            )
            .is_none()
        );
        let q = signed(&keys(&"k".repeat(32), &[]), 1000);
        assert_eq!(k.check(&path(Some(q), "a.txt"), 0), LinkCheck::Invalid);
    }

    proptest! {
        /// Any query: a link is valid only if it is the exact signed one.
        #[test]
        fn only_the_signed_query_verifies(query in "[a-z0-9=&]{0,100}") {
            let k = keys(&"k".repeat(32), &[]);
            prop_assume!(query != signed(&k, 1000));
            let valid = matches!(k.check(&path(Some(query), "a.txt"), 0), LinkCheck::Valid { .. });
            prop_assert!(!valid);
        }
    }
}
