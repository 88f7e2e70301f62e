//! The only place Redis key names are built.
//!
//! Layout (schema version 3, see `migrations/` and `super::redis::record`), `{p}` being
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
//! | `{p}:ft:{file_token's 16 bytes}` | string | the file's record, binary (the decision reads this) |
//! | `{p}:ids:{first 4 digits of file_id}` | hash | file id's 16 bytes → current file token's 16 bytes |
//! | `{p}:files:{user_id}` | hash | the user's file ids (16 bytes each) → `""` |
//! | `{p}:sess:{sha256(session id)}` | string | JSON `SessionRecord`, TTL = session lifetime |
//! | `{p}:usess:{user_id}` | set | the user's session keys |
//! | `{p}:fwd:{sha256(forwarded credentials)}` | string | JSON `ForwardedCaller`, TTL = the source's `cache_secs` |
//! | `{p}:ufwd:{user_id}` | set | the hashes of the user's kept forward answers |
//! | `{p}:fwdcut:{user_id}` | string | when the user's sessions were last ended (ms), with a TTL |
//! | `{p}:ugrants:{user_id}` | set | ids of files shared with the user |
//! | `{p}:dl:{file_id}` | string | download counter |
//! | `{p}:events` | stream | audit log, reads: one entry per batch (see `redis::audit`), capped by event count |
//! | `{p}:changes` | stream | audit log, admin changes: as `{p}:events`, capped apart from it |
//! | `{p}:upload:{file id}` | string (JSON) | a direct upload under way (`model::PendingUpload`) |
//! | `{p}:uploads` | sorted set | ids of direct uploads under way, scored by expiry (for the sweep) |
//! | `{p}:lock:user:{user_id}`, `{p}:lock:file:{file_id}` | string | a writer's lease, with a TTL |
//! | `{p}:upend:{user_id}` | string | JSON user change in progress (see `redis::intent`) |
//! | `{p}:fpend:{file_id}` | string | JSON file change in progress |
//!
//! The layouts exist for memory: a key costs Redis about 50 bytes before its name and value,
//! and Redis allocates in steps of 16 bytes. Version 2 put the id index into 65,536 hash
//! buckets and a user's files into one hash, both small enough for Redis' compact listpack
//! encoding (up to 128 entries a bucket: 8 million files), and left out of the record what its
//! key or its id already say (token, storage path). Version 3 holds what is per file in bytes
//! rather than hex or JSON: the record key's name fits Redis' smallest string header (under 32
//! bytes with the default prefix), and the record, the index entries and a user's file ids
//! are half the size. Version 2 had `{p}:ftok:{token}` keys with JSON-array records, and
//! `{p}:fids:` and `{p}:uf:` hashes keyed by hex ids; version 1 had `{p}:file:{file_id}`
//! strings, `{p}:ufiles:{user_id}` sets and JSON-object records.
//!
//! Every script and transaction touches one key, so the layout works unchanged on Redis
//! Cluster: no hash tags, no cross-slot operation. Changes that span keys are ordered steps
//! under a lease, recorded first as an intent that any later writer completes.

use super::AuditLog;
use crate::ids::{FileId, UserId};
use crate::tokens::{FileToken, ForwardKey, SessionKey, UserToken};

/// Builds every key under one prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
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

    /// `{p}:schema`: the applied schema version.
    pub fn schema(&self) -> String {
        self.name("schema")
    }
    /// `{p}:migrations`: when each migration was applied.
    pub fn migrations(&self) -> String {
        self.name("migrations")
    }
    /// `{p}:migrate:lock`: the migration lock.
    pub fn migrate_lock(&self) -> String {
        self.name("migrate:lock")
    }
    /// `{p}:meta`: the layout marker.
    pub fn meta(&self) -> String {
        self.name("meta")
    }
    /// `{p}:user:{id}`: the user's record.
    pub fn user(&self, id: &UserId) -> String {
        self.key("user", id.as_str())
    }
    /// The key of a user token: its owner's id.
    pub fn user_token(&self, t: &UserToken) -> String {
        self.key("utok", t.as_str())
    }
    /// The key of a file token's record: binary, so its name is the token's bytes.
    pub fn file_token(&self, t: &FileToken) -> Vec<u8> {
        let mut key = Vec::with_capacity(self.prefix.len() + 4 + 16);
        key.extend_from_slice(self.prefix.as_bytes());
        key.extend_from_slice(b":ft:");
        key.extend_from_slice(&t.to_bytes());
        key
    }
    /// What errors and logs call [`Keys::file_token`]'s key: the token's fingerprint, never
    /// the token.
    pub fn file_token_name(&self, t: &FileToken) -> String {
        self.fingerprinted("ft", &t.fingerprint())
    }
    /// What errors and logs call [`Keys::user_token`]'s key, as [`Keys::file_token_name`].
    pub fn user_token_name(&self, t: &UserToken) -> String {
        self.fingerprinted("utok", &t.fingerprint())
    }
    fn fingerprinted(&self, part: &str, fingerprint: &str) -> String {
        self.key(part, &format!("(token {fingerprint})"))
    }
    /// The bucket of the id index that holds `id` (its field is the whole id's bytes).
    pub fn file_ids(&self, id: &FileId) -> String {
        let id = id.as_str();
        self.key("ids", id.get(..4).unwrap_or(id))
    }
    /// `{p}:files:{id}`: the ids of the user's files.
    pub fn user_files(&self, id: &UserId) -> String {
        self.key("files", id.as_str())
    }
    /// Key patterns of layouts 1 and 2, which the migrations rewrite, and the id or token a
    /// key of each ends with (see [`Keys::suffix`]).
    pub fn v1_files(&self) -> String {
        self.key("file", "*")
    }
    /// Layout 1's per-user file sets, for the relayout's scan.
    pub fn v1_user_files(&self) -> String {
        self.key("ufiles", "*")
    }
    /// Layout 2's file-id keys, for the relayout's scan.
    pub fn v2_file_ids(&self) -> String {
        self.key("fids", "*")
    }
    /// Layout 2's per-user file sets, for the relayout's scan.
    pub fn v2_user_files(&self) -> String {
        self.key("uf", "*")
    }
    /// Layout 1 and 2 file records (`{p}:ftok:{hex token}`).
    pub fn v2_file_tokens(&self) -> String {
        self.key("ftok", "*")
    }
    /// The id or token a key of one of the patterns above ends with.
    pub fn suffix<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str())?
            .strip_prefix(':')?
            .split_once(':')
            .map(|(_, rest)| rest)
    }
    /// `{p}:sess:{sha256}`: a native session, under its id's hash.
    pub fn session(&self, k: &SessionKey) -> String {
        self.key("sess", k.as_str())
    }
    /// `{p}:usess:{id}`: the user's sessions, for logging out everywhere.
    pub fn user_sessions(&self, id: &UserId) -> String {
        self.key("usess", id.as_str())
    }
    /// The lease of a change to a user.
    pub fn user_lock(&self, id: &UserId) -> String {
        self.key("lock:user", id.as_str())
    }
    /// The lease of a change to a file.
    pub fn file_lock(&self, id: &FileId) -> String {
        self.key("lock:file", id.as_str())
    }
    /// A change to a user in progress (see `redis::intent`).
    pub fn user_intent(&self, id: &UserId) -> String {
        self.key("upend", id.as_str())
    }
    /// A change to a file in progress.
    pub fn file_intent(&self, id: &FileId) -> String {
        self.key("fpend", id.as_str())
    }
    /// `{p}:ugrants:{id}`: the files shared with the user.
    pub fn user_grants(&self, id: &UserId) -> String {
        self.key("ugrants", id.as_str())
    }
    /// `{p}:fwd:{hash}`: a forward source's answer for one credential.
    pub fn forwarded(&self, k: &ForwardKey) -> String {
        self.key("fwd", k.as_str())
    }
    /// `{p}:ufwd:{user}`: the hashes of the user's kept forward answers.
    pub fn user_forwarded(&self, id: &UserId) -> String {
        self.key("ufwd", id.as_str())
    }
    /// `{p}:fwdcut:{user}`: when the user's sessions were last ended (Unix ms); an answer asked
    /// for before it is not kept.
    pub fn forward_cut(&self, id: &UserId) -> String {
        self.key("fwdcut", id.as_str())
    }
    /// `{p}:upload:{file id}`: a direct upload under way.
    pub fn upload(&self, id: &FileId) -> String {
        self.key("upload", id.as_str())
    }
    /// `{p}:uploads`: the direct uploads under way, scored by when they expire.
    pub fn uploads(&self) -> String {
        self.name("uploads")
    }
    /// `{p}:dl:{file id}`: the file's download counter.
    pub fn downloads(&self, id: &FileId) -> String {
        self.key("dl", id.as_str())
    }
    /// The stream of one half of the audit log (see `store::audit_log`). The reads keep the
    /// name the whole log had before the halves were split.
    pub fn audit_log(&self, log: AuditLog) -> String {
        match log {
            AuditLog::Reads => self.name("events"),
            AuditLog::Changes => self.name("changes"),
        }
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
        assert_eq!(k.file_ids(&file), "mg:ids:0123");
        assert_eq!(k.user_files(&user), "mg:files:alice");
        assert_eq!(k.downloads(&file), "mg:dl:0123456789abcdef0123456789abcdef");
        assert_eq!(k.v2_file_tokens(), "mg:ftok:*");
        assert_eq!(k.suffix("mg:ftok:abc"), Some("abc"));
        let ftok = FileToken::parse(&format!("0a{}", "f".repeat(30))).unwrap();
        let mut want = b"mg:ft:\x0a".to_vec();
        want.extend([0xff; 15]);
        assert_eq!(k.file_token(&ftok), want);
        assert!(!k.file_token_name(&ftok).contains(ftok.as_str()));
        let utok = UserToken::parse(&"9a".repeat(16)).unwrap();
        assert!(k.user_token(&utok).contains(utok.as_str()));
        assert!(!k.user_token_name(&utok).contains(utok.as_str()));
        assert!(!k.user_token_name(&utok).contains(&"9a".repeat(8)));
        // The record's key fits Redis' smallest string header (under 32 bytes) with the
        // default prefix: 16 bytes of memory per file.
        assert!(Keys::new("mediagate").file_token(&ftok).len() < 32);
    }
}
