//! `[admin]`: the admin API's bearer tokens.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Shortest accepted admin token, inline or in `admin.token_file`.
pub const ADMIN_TOKEN_MIN_LEN: usize = 16;

/// One token, or several (several allow rotating the admin token without downtime).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Tokens {
    /// `token = "…"`.
    One(SecretString),
    /// `token = ["…", "…"]`.
    Many(Vec<SecretString>),
}

impl Tokens {
    /// Every token, in order.
    pub fn as_slice(&self) -> &[SecretString] {
        match self {
            Self::One(t) => std::slice::from_ref(t),
            Self::Many(ts) => ts,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// `admin.token`: accepted bearer tokens, fixed for the life of the process.
    pub token: Option<Tokens>,
    /// A file with one token per line (for Kubernetes Secrets mounted as files); blank lines
    /// and `#` comments are skipped. Read at start and again on SIGHUP (`admin_tokens`).
    pub token_file: Option<PathBuf>,
}

impl AdminSettings {
    /// The file is read by `admin_tokens` at start; here only what the settings hold.
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        let inline = self.token.as_ref().map_or(&[][..], Tokens::as_slice);
        if inline
            .iter()
            .any(|t| t.expose_secret().len() < ADMIN_TOKEN_MIN_LEN)
        {
            problems.push(format!(
                "admin.token: every token must be at least {ADMIN_TOKEN_MIN_LEN} characters"
            ));
        }
    }
}
