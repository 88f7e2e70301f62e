//! `[policy]`, `[upload]` and `[links]`: who may read every file, what may be uploaded, and
//! how share links are signed.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Roles whose sessions may read every file.
    pub read_all_roles: Vec<String>,
}

/// `[upload]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSettings {
    /// Largest accepted upload; larger ones get 413 and leave nothing on disk.
    pub max_bytes: u64,
    /// Accepted content types (`image/png`, or `image/*`); empty accepts every type.
    pub allowed_types: Vec<String>,
}

/// `[links]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSettings {
    /// HMAC-SHA256 key of share links (at least 32 characters). Without it, links are off.
    pub secret: Option<SecretString>,
    /// Former keys, still accepted while links signed with them expire (key rotation).
    pub old_secrets: Vec<SecretString>,
    /// Longest lifetime a share link may be given.
    pub max_ttl_secs: u64,
}

impl UploadSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.max_bytes == 0 {
            problems.push("upload.max_bytes: must be positive".into());
        }
        for t in &self.allowed_types {
            let ok = t.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty() && !b.is_empty() && !t.contains(char::is_whitespace)
            });
            if !ok {
                problems.push(format!(
                    "upload.allowed_types: {t:?} is not a type like image/png or image/*"
                ));
            }
        }
    }
}

impl LinkSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        let short = |s: &SecretString| s.expose_secret().len() < 32;
        if self.secret.as_ref().is_some_and(short) || self.old_secrets.iter().any(short) {
            problems.push("links.secret: every link key must be at least 32 characters".into());
        }
        if self.secret.is_none() && !self.old_secrets.is_empty() {
            problems.push(
                "links.old_secrets: set links.secret too; without it links are off, and old keys would still open links"
                    .into(),
            );
        }
        if self.max_ttl_secs == 0 {
            problems.push("links.max_ttl_secs: must be positive".into());
        }
    }
}
