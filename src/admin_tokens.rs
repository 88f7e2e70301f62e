//! The admin API's bearer tokens: from `admin.token` and `admin.token_file`, checked in
//! constant time, and re-read from the file on SIGHUP.
//!
//! The file is what a Kubernetes Secret mounted as a volume gives: one token per line. Blank
//! lines and `#` comments are skipped, and every token must be at least [`MIN_LEN`] characters,
//! so a comment can never become a token. Re-reading it on SIGHUP lets an operator revoke a
//! leaked token without a restart; a file that no longer reads, or holds a short token, leaves
//! the tokens as they were and says why in the log.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use secrecy::{ExposeSecret, SecretString};

use crate::config::{ADMIN_TOKEN_MIN_LEN as MIN_LEN, AdminSettings, Tokens};

/// The accepted tokens; empty disables the admin API.
pub struct AdminTokens {
    /// `admin.token`, fixed for the life of the process.
    inline: Vec<SecretString>,
    file: Option<PathBuf>,
    /// `inline` followed by the file's tokens as last read.
    current: RwLock<Arc<Vec<SecretString>>>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AdminTokens({} tokens)", self.snapshot().len())
    }
}

impl AdminTokens {
    /// Reads `admin.token_file` once; `admin.token` has been checked with the rest of the
    /// settings. The error is one line naming the key.
    pub fn load(settings: &AdminSettings) -> Result<Self, String> {
        let inline = match &settings.token {
            None => Vec::new(),
            Some(Tokens::One(t)) => vec![t.clone()],
            Some(Tokens::Many(ts)) => ts.clone(),
        };
        let tokens = Self {
            current: RwLock::new(Arc::new(inline.clone())),
            inline,
            file: settings.token_file.clone(),
        };
        tokens.reload()?;
        Ok(tokens)
    }

    /// A set of tokens with no file behind it (tests, tools).
    pub fn fixed(tokens: Vec<SecretString>) -> Self {
        Self {
            current: RwLock::new(Arc::new(tokens.clone())),
            inline: tokens,
            file: None,
        }
    }

    /// Reads `admin.token_file` again; on any problem the tokens stay as they were.
    /// Returns how many tokens are now accepted.
    pub fn reload(&self) -> Result<usize, String> {
        let mut tokens = self.inline.clone();
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("admin.token_file: cannot read {}: {e}", path.display()))?;
            tokens.extend(parse_file(&text).map_err(|line| {
                format!(
                    "admin.token_file: {} line {line}: a token must be at least {MIN_LEN} characters",
                    path.display()
                )
            })?);
        }
        let n = tokens.len();
        match self.current.write() {
            Ok(mut current) => *current = Arc::new(tokens),
            // A writer cannot panic half-way through replacing an `Arc`: the value is whole.
            Err(poisoned) => *poisoned.into_inner() = Arc::new(tokens),
        }
        Ok(n)
    }

    fn snapshot(&self) -> Arc<Vec<SecretString>> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Whether no token is accepted (the admin API then refuses every call).
    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    /// True if `presented` equals any accepted token. Every token is compared, in constant
    /// time, so neither the match position nor the matching prefix shows in the timing.
    pub fn matches(&self, presented: &str) -> bool {
        !presented.is_empty()
            && bool::from(
                self.snapshot()
                    .iter()
                    .fold(subtle::Choice::from(0), |acc, t| {
                        acc | crate::tokens::ct_eq(
                            t.expose_secret().as_bytes(),
                            presented.as_bytes(),
                        )
                    }),
            )
    }
}

/// The tokens of a token file; `Err(line number)` for a token that is too short.
fn parse_file(text: &str) -> Result<Vec<SecretString>, usize> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| {
            if l.len() < MIN_LEN {
                Err(n)
            } else {
                Ok(SecretString::from(l.to_owned()))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(tokens: &[&str]) -> AdminTokens {
        AdminTokens::fixed(
            tokens
                .iter()
                .map(|t| SecretString::from(t.to_string()))
                .collect(),
        )
    }

    #[test]
    fn any_configured_token_matches_and_nothing_else() {
        let tokens = fixed(&["first-token-0123456789", "second-token-0123456789"]);
        assert!(tokens.matches("first-token-0123456789"));
        assert!(tokens.matches("second-token-0123456789"));
        assert!(!tokens.matches("first-token-012345678"));
        assert!(!tokens.matches(""));
        assert!(!fixed(&[]).matches("first-token-0123456789"));
    }

    #[test]
    fn the_check_is_constant_time_against_every_token() {
        let tokens = fixed(&["first-token-0123456789", "second-token-0123456789"]);
        let before = crate::tokens::CT_CALLS.with(|c| c.get());
        // A match on the first token still compares the second: no early exit.
        assert!(tokens.matches("first-token-0123456789"));
        assert_eq!(crate::tokens::CT_CALLS.with(|c| c.get()) - before, 2);
    }

    #[test]
    fn comments_and_blank_lines_are_not_tokens() {
        let text = "# a comment that is long enough to pass\n\n  token-one-0123456789  \n#x\n";
        let tokens = parse_file(text).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].expose_secret(), "token-one-0123456789");
        assert_eq!(parse_file("token-one-0123456789\nshort\n").err(), Some(2));
    }

    #[test]
    fn a_reload_replaces_the_files_tokens_and_a_bad_file_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(&path, "old-token-0123456789\n").unwrap();
        let tokens = AdminTokens::load(&AdminSettings {
            token: Some(Tokens::One("inline-token-0123456789".to_owned().into())),
            token_file: Some(path.clone()),
        })
        .unwrap();
        assert!(tokens.matches("old-token-0123456789"));
        std::fs::write(&path, "# rotated\nnew-token-0123456789\n").unwrap();
        assert_eq!(tokens.reload(), Ok(2));
        assert!(!tokens.matches("old-token-0123456789"));
        assert!(tokens.matches("new-token-0123456789"));
        assert!(tokens.matches("inline-token-0123456789"));
        std::fs::write(&path, "short\n").unwrap();
        assert!(tokens.reload().unwrap_err().contains("line 1"));
        std::fs::remove_file(&path).unwrap();
        assert!(tokens.reload().unwrap_err().contains("cannot read"));
        assert!(
            tokens.matches("new-token-0123456789"),
            "kept after failed reloads"
        );
    }
}
