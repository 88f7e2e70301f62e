//! express-session's signed cookies: `s:` + id + `.` + signature, where the signature is
//! base64 (no padding) of HMAC-SHA256(secret, id), as the `cookie-signature` package makes it.
//! Any of the configured secrets may verify (secret rotation); the check is constant-time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

/// The session id inside a signed cookie value (already percent-decoded), if any secret
/// verifies it.
pub fn unsign<'a>(value: &'a str, secrets: &[SecretString]) -> Option<&'a str> {
    let signed = value.strip_prefix("s:")?;
    let (id, sig) = signed.rsplit_once('.')?;
    let sig = STANDARD_NO_PAD.decode(sig.trim_end_matches('=')).ok()?;
    let valid = secrets.iter().any(|secret| {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) else {
            return false;
        };
        mac.update(id.as_bytes());
        mac.verify_slice(&sig).is_ok()
    });
    valid.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secrets(s: &[&str]) -> Vec<SecretString> {
        s.iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect()
    }

    /// A vector from cookie-signature itself: sign('hello', 'tobiiscool').
    const SIGNED: &str = "s:hello.DGDUkGlIkCzPz+C0B064FNgHdEjox7ch8tOBGslZ5QI";

    #[test]
    fn verifies_cookie_signature_output() {
        assert_eq!(unsign(SIGNED, &secrets(&["tobiiscool"])), Some("hello"));
        assert_eq!(
            unsign(SIGNED, &secrets(&["other", "tobiiscool"])),
            Some("hello")
        );
        assert_eq!(unsign(SIGNED, &secrets(&["luna"])), None);
        assert_eq!(
            unsign(&SIGNED.replace("hello", "hellp"), &secrets(&["tobiiscool"])),
            None
        );
        assert_eq!(unsign(&SIGNED[2..], &secrets(&["tobiiscool"])), None);
        assert_eq!(unsign("s:hello", &secrets(&["tobiiscool"])), None);
        assert_eq!(unsign(SIGNED, &[]), None);
    }

    proptest! {
        #[test]
        fn never_panics_and_never_verifies_garbage(v in ".{0,200}") {
            prop_assume!(v != SIGNED);
            prop_assert_eq!(unsign(&v, &secrets(&["tobiiscool"])), None);
        }
    }
}
