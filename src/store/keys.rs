//! The only place Redis key names are built.
//!
//! Layout (schema version 2, see `migrations/` and `super::redis::compact`), `{p}` being
//! `store.prefix`:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{p}:schema` | string | applied schema version |
//! | `{p}:migrations` | hash | version → unix time applied |
//! | `{p}:migrate:lock` | string | holder's uuid, with a TTL |
//! | `{p}:meta` | hash | `created_at`, `layout` |
//! | `{p}:user:{user_id}` | string | JSON `UserRecord` |
//! | `{p}:utok:{user_token}` | string | user id |
//! | `{p}:ftok:{file_token}` | string | the file's record as a compact JSON array (the decision reads this) |
//! | `{p}:fids:{first 4 digits of file_id}` | hash | file id → current file token |
//! | `{p}:uf:{user_id}` | hash | the user's file ids → `""` |
//! | `{p}:sess:{sha256(session id)}` | string | JSON `SessionRecord`, TTL = session lifetime |
//! | `{p}:usess:{user_id}` | set | the user's session keys |
//! | `{p}:ugrants:{user_id}` | set | ids of files shared with the user |
//! | `{p}:dl:{file_id}` | string | download counter |
//! | `{p}:events` | stream | audit events, one entry per batch (see `redis::events`), capped by event count |
//! | `{p}:lock:user:{user_id}`, `{p}:lock:file:{file_id}` | string | a writer's lease, with a TTL |
//! | `{p}:upend:{user_id}` | string | JSON user change in progress (see `redis::intent`) |
//! | `{p}:fpend:{file_id}` | string | JSON file change in progress |
//!
//! Version 2 exists for memory: a key costs Redis about 100 bytes before its value, so the
//! id index lives in 65,536 hash buckets and a user's files in one hash, both small enough for
//! Redis' compact listpack encoding (up to 128 entries a bucket: 8 million files), and the
//! record leaves out what its key or its id already say (token, storage path). Version 1 had
//! `{p}:file:{file_id}` strings, `{p}:ufiles:{user_id}` sets and JSON-object records.
//!
//! Every script and transaction touches one key, so the layout works unchanged on Redis
//! Cluster: no hash tags, no cross-slot operation. Changes that span keys are ordered steps
//! under a lease, recorded first as an intent that any later writer completes.

use crate::tokens::{FileId, FileToken, SessionKey, UserId, UserToken};

/// Builds every key under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// `{p}:` and `parts` joined by `:`, in one allocation of the right size: the decision
    /// builds three keys, and `format!` spent more on growing them than on anything it read.
    fn join(&self, parts: &[&str]) -> String {
        let len = self.prefix.len() + parts.iter().map(|p| p.len() + 1).sum::<usize>();
        let mut key = String::with_capacity(len);
        key.push_str(&self.prefix);
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }
    /// The key of kind `kind` for the id or token `id`.
    fn key(&self, kind: &str, id: &str) -> String {
        self.join(&[kind, id])
    }
    /// A key of which there is one under the prefix.
    fn name(&self, name: &str) -> String {
        self.join(&[name])
    }

    pub fn schema(&self) -> String {
        self.name("schema")
    }
    pub fn migrations(&self) -> String {
        self.name("migrations")
    }
    pub fn migrate_lock(&self) -> String {
        self.name("migrate:lock")
    }
    pub fn meta(&self) -> String {
        self.name("meta")
    }
    pub fn user(&self, id: &UserId) -> String {
        self.key("user", id.as_str())
    }
    pub fn user_token(&self, t: &UserToken) -> String {
        self.key("utok", t.as_str())
    }
    pub fn file_token(&self, t: &FileToken) -> String {
        self.key("ftok", t.as_str())
    }
    /// The bucket of the id index that holds `id` (its field is the whole id).
    pub fn file_ids(&self, id: &FileId) -> String {
        let id = id.as_str();
        self.key("fids", id.get(..4).unwrap_or(id))
    }
    pub fn user_files(&self, id: &UserId) -> String {
        self.key("uf", id.as_str())
    }
    /// Key patterns of layout 1, which migration 2 rewrites.
    pub fn v1_files(&self) -> String {
        self.key("file", "*")
    }
    pub fn v1_user_files(&self) -> String {
        self.key("ufiles", "*")
    }
    pub fn file_tokens(&self) -> String {
        self.key("ftok", "*")
    }
    /// The id or token a key of `pattern` (one of the three above) ends with.
    pub fn suffix<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str())?
            .strip_prefix(':')?
            .split_once(':')
            .map(|(_, rest)| rest)
    }
    pub fn session(&self, k: &SessionKey) -> String {
        self.key("sess", k.as_str())
    }
    pub fn user_sessions(&self, id: &UserId) -> String {
        self.key("usess", id.as_str())
    }
    pub fn user_lock(&self, id: &UserId) -> String {
        self.key("lock:user", id.as_str())
    }
    pub fn file_lock(&self, id: &FileId) -> String {
        self.key("lock:file", id.as_str())
    }
    pub fn user_intent(&self, id: &UserId) -> String {
        self.key("upend", id.as_str())
    }
    pub fn file_intent(&self, id: &FileId) -> String {
        self.key("fpend", id.as_str())
    }
    pub fn user_grants(&self, id: &UserId) -> String {
        self.key("ugrants", id.as_str())
    }
    pub fn downloads(&self, id: &FileId) -> String {
        self.key("dl", id.as_str())
    }
    pub fn events(&self) -> String {
        self.name("events")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Key names are the stored layout: a changed one loses every existing record.
    #[test]
    fn keys_are_named_as_the_layout_says() {
        let k = Keys::new("mg");
        let user = UserId::parse("alice").unwrap();
        let file = FileId::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(k.schema(), "mg:schema");
        assert_eq!(k.migrate_lock(), "mg:migrate:lock");
        assert_eq!(k.user(&user), "mg:user:alice");
        assert_eq!(k.user_lock(&user), "mg:lock:user:alice");
        assert_eq!(k.file_ids(&file), "mg:fids:0123");
        assert_eq!(k.downloads(&file), "mg:dl:0123456789abcdef0123456789abcdef");
        assert_eq!(k.file_tokens(), "mg:ftok:*");
        assert_eq!(k.suffix("mg:ftok:abc"), Some("abc"));
        let ftok = FileToken::parse(&"f".repeat(32)).unwrap();
        assert_eq!(k.file_token(&ftok), format!("mg:ftok:{}", "f".repeat(32)));
    }
}
