//! `[storage]` and `[media]`: where the bytes are, and the public URL prefix they are served
//! under.

use std::path::PathBuf;

use serde::Deserialize;

/// `[storage]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Directory holding file bytes; nginx serves it from its internal location.
    pub root: PathBuf,
}

/// `[media]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// Public URL prefix, starting and ending with `/`.
    pub prefix: String,
}

impl StorageSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.root.as_os_str().is_empty() {
            problems.push("storage.root: must not be empty".into());
        }
    }
}

impl MediaSettings {
    /// The prefix must be a path nginx's normalization leaves alone, so that the location it
    /// matches and the path mediagate parses are the same.
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        let p = &self.prefix;
        let prefix_ok = p.len() >= 2
            && p.starts_with('/')
            && p.ends_with('/')
            && !p.contains("//")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
            && !p.split('/').any(|s| s == "." || s == "..");
        if !prefix_ok {
            problems.push(format!(
                "media.prefix: {p:?} must start and end with '/' and contain only A-Z a-z 0-9 - . _ ~ in non-dot segments"
            ));
        }
    }
}
