//! The only place Redis key names are built.
//!
//! Layout (schema version 1, see `migrations/V0001__init.lua`), `{p}` being `store.prefix`:
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `{p}:schema` | string | applied schema version |
//! | `{p}:migrations` | hash | version → unix time applied |
//! | `{p}:migrate:lock` | string | holder's uuid, with a TTL |
//! | `{p}:meta` | hash | `created_at`, `layout` |
//! | `{p}:user:{user_id}` | string | JSON `UserRecord` |
//! | `{p}:utok:{user_token}` | string | user id |
//! | `{p}:ftok:{file_token}` | string | JSON `FileRecord` (the decision reads this) |
//! | `{p}:file:{file_id}` | string | current file token |
//! | `{p}:ufiles:{user_id}` | set | the user's file ids |
//! | `{p}:sess:{sha256(session id)}` | string | JSON `SessionRecord`, TTL = session lifetime |
//! | `{p}:usess:{user_id}` | set | the user's session keys |
//! | `{p}:ugrants:{user_id}` | set | ids of files shared with the user |
//! | `{p}:dl:{file_id}` | string | download counter |
//! | `{p}:events` | stream | audit events, capped (`XADD MAXLEN ~`) |
//! | `{p}:lock:user:{user_id}`, `{p}:lock:file:{file_id}` | string | a writer's lease, with a TTL |
//! | `{p}:upend:{user_id}` | string | JSON user change in progress (see `redis::intent`) |
//! | `{p}:fpend:{file_id}` | string | JSON file change in progress |
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
    pub fn file(&self, id: &FileId) -> String {
        format!("{}:file:{}", self.prefix, id.as_str())
    }
    pub fn user_files(&self, id: &UserId) -> String {
        format!("{}:ufiles:{}", self.prefix, id.as_str())
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
