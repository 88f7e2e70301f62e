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
//! | `{p}:events` | stream | audit events, capped (`XADD MAXLEN ~`) |
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

    pub fn schema(&self) -> String {
        format!("{}:schema", self.prefix)
    }
    pub fn migrations(&self) -> String {
        format!("{}:migrations", self.prefix)
    }
    pub fn migrate_lock(&self) -> String {
        format!("{}:migrate:lock", self.prefix)
    }
    pub fn meta(&self) -> String {
        format!("{}:meta", self.prefix)
    }
    pub fn user(&self, id: &UserId) -> String {
        format!("{}:user:{}", self.prefix, id.as_str())
    }
    pub fn user_token(&self, t: &UserToken) -> String {
        format!("{}:utok:{}", self.prefix, t.as_str())
    }
    pub fn file_token(&self, t: &FileToken) -> String {
        format!("{}:ftok:{}", self.prefix, t.as_str())
    }
    /// The bucket of the id index that holds `id` (its field is the whole id).
    pub fn file_ids(&self, id: &FileId) -> String {
        let id = id.as_str();
        format!("{}:fids:{}", self.prefix, id.get(..4).unwrap_or(id))
    }
    pub fn user_files(&self, id: &UserId) -> String {
        format!("{}:uf:{}", self.prefix, id.as_str())
    }
    /// Key patterns of layout 1, which migration 2 rewrites.
    pub fn v1_files(&self) -> String {
        format!("{}:file:*", self.prefix)
    }
    pub fn v1_user_files(&self) -> String {
        format!("{}:ufiles:*", self.prefix)
    }
    pub fn file_tokens(&self) -> String {
        format!("{}:ftok:*", self.prefix)
    }
    /// The id or token a key of `pattern` (one of the three above) ends with.
    pub fn suffix<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str())?
            .strip_prefix(':')?
            .split_once(':')
            .map(|(_, rest)| rest)
    }
    pub fn session(&self, k: &SessionKey) -> String {
        format!("{}:sess:{}", self.prefix, k.as_str())
    }
    pub fn user_sessions(&self, id: &UserId) -> String {
        format!("{}:usess:{}", self.prefix, id.as_str())
    }
    pub fn user_lock(&self, id: &UserId) -> String {
        format!("{}:lock:user:{}", self.prefix, id.as_str())
    }
    pub fn file_lock(&self, id: &FileId) -> String {
        format!("{}:lock:file:{}", self.prefix, id.as_str())
    }
    pub fn user_intent(&self, id: &UserId) -> String {
        format!("{}:upend:{}", self.prefix, id.as_str())
    }
    pub fn file_intent(&self, id: &FileId) -> String {
        format!("{}:fpend:{}", self.prefix, id.as_str())
    }
    pub fn user_grants(&self, id: &UserId) -> String {
        format!("{}:ugrants:{}", self.prefix, id.as_str())
    }
    pub fn downloads(&self, id: &FileId) -> String {
        format!("{}:dl:{}", self.prefix, id.as_str())
    }
    pub fn events(&self) -> String {
        format!("{}:events", self.prefix)
    }
}
