//! The store: users, their URL tokens, files, and sessions.
//!
//! One trait, two implementations that pass one shared contract suite (`tests/store`):
//! [`redis::RedisStore`] for several replicas, [`embedded::EmbeddedStore`] (redb, on disk) for a
//! single node. Absence is `Ok(None)`; `Err` always means "could not find out", which the auth
//! listener turns into 503, never into an answer.
//!
//! Data is shaped so that a lost or half-applied write denies: access exists because a key is
//! present (a token mapping, a session), never because a marker is absent.

pub mod audit_log;
pub mod embedded;
pub mod keys;
pub mod migrate;
pub mod redis;

mod codec;
mod error;

use std::path::Path;
use std::sync::Arc;

use crate::config::StoreUrl;
use crate::ids::{FileId, UserId};
use crate::model::{
    Event, FileChange, FileRecord, ForwardedCaller, PendingUpload, SessionRecord, UserRecord,
};
use crate::paths::StoragePath;
use crate::tokens::{FileToken, ForwardKey, SessionKey, UserToken};
pub use audit_log::{AuditLog, Cursor, Logged, Position};
pub(crate) use codec::{decode, decode_bytes, encode};
pub use error::StoreError;

/// An event as stored, with its cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its cursor: pass it as `after` to read on after it.
    pub id: String,
    /// The event.
    pub event: Event,
}

/// What deleting a user removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeletedUser {
    /// Storage paths whose bytes the caller must now remove.
    pub files: Vec<StoragePath>,
    /// How many of the user's sessions ended.
    pub sessions: u64,
}

/// What one decision asks the store, in one round trip.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The path's user token.
    pub user_token: &'a UserToken,
    /// The path's file token.
    pub file_token: &'a FileToken,
    /// The native session the request carries.
    pub session: Option<&'a SessionKey>,
    /// What the `forward` source would forward, hashed: its cached answer, if any.
    pub forwarded: Option<&'a ForwardKey>,
}

/// Everything one decision needs, read in one store round trip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lookup {
    /// The user the path's user token belongs to.
    pub user_of_token: Option<UserId>,
    /// The file the path's file token names.
    pub file: Option<FileRecord>,
    /// The caller's session, if a session key was given and is known.
    pub session: Option<SessionRecord>,
    /// The `forward` source's kept answer for the request's credentials, if any. The embedded
    /// store keeps expired answers until its purge: the source checks `expires_at`.
    pub forwarded: Option<ForwardedCaller>,
}

/// Outcome of a write that needs its owner to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Written.
    Done,
    /// The user named as owner does not exist; nothing was written.
    NoSuchUser,
}

/// The store interface. Object-safe so that the app holds one `Arc<dyn Store>`; split by
/// resource into the traits below, which each store implements in a module per resource.
/// Their methods are callable on `dyn Store` without importing them.
#[async_trait::async_trait]
pub trait Store:
    SchemaStore + UserStore + FileStore + SessionStore + AuditStore + UploadStore + 'static
{
    /// `"redis"` or `"embedded"`, for logs and health output.
    fn kind(&self) -> &'static str;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The schema version and migrations.
#[async_trait::async_trait]
pub trait SchemaStore: Send + Sync {
    /// The applied schema version; 0 for a store nothing was ever written to.
    async fn schema_version(&self) -> Result<u32, StoreError>;

    /// Applies pending migrations in order, under a lock; returns the versions applied now.
    /// Refuses (`SchemaTooNew`) a store newer than `migrate::CURRENT`. On Redis it also
    /// converts, every time, what an instance of an older version wrote in an older layout.
    /// Waits as long as a migration another process is running may take ([`migrate::WAIT`]).
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        self.migrate_within(migrate::WAIT).await
    }

    /// [`SchemaStore::migrate`], waiting at most `wait` for a migration another process is running
    /// (then `Busy`): a server starting up retries each second rather than hang.
    async fn migrate_within(&self, wait: std::time::Duration) -> Result<Vec<u32>, StoreError>;
}

/// Users and their URL tokens.
#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    /// Returns the user, creating it with `fresh_token` if it does not exist. The bool tells
    /// whether it was created.
    async fn ensure_user(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
        now: i64,
    ) -> Result<(UserRecord, bool), StoreError>;

    /// The user, if it exists.
    async fn user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError>;

    /// Gives the user a new token; every URL with the old one stops working at once. `None`
    /// if the user does not exist.
    async fn rotate_user_token(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
    ) -> Result<Option<UserRecord>, StoreError>;

    /// Removes a user: token and sessions first (access ends), then files and the grants it
    /// holds. Each step denies on its own, so a failure half-way never leaves access granted,
    /// and a retry completes the rest. `None` if the user did not exist.
    async fn delete_user(&self, id: &UserId) -> Result<Option<DeletedUser>, StoreError>;
}

/// Files: their records, changes and download counts.
#[async_trait::async_trait]
pub trait FileStore: Send + Sync {
    /// Registers a file whose bytes are already durable at its storage path. Atomic: either the
    /// token mapping and the id index both exist afterwards, or neither.
    async fn insert_file(&self, file: &FileRecord) -> Result<Written, StoreError>;

    /// The file's current record, if it exists.
    async fn file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError>;

    /// Applies `change` atomically (compare-and-swap against concurrent changes); returns the
    /// new record, or `None` if the file does not exist.
    async fn update_file(
        &self,
        id: &FileId,
        change: &FileChange,
    ) -> Result<Option<FileRecord>, StoreError>;

    /// Removes a file's record, token and counters; returns it so the caller can remove the
    /// bytes. `None` if it did not exist.
    async fn delete_file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError>;

    /// The file's download counter.
    async fn downloads(&self, id: &FileId) -> Result<u64, StoreError>;
}

/// Native sessions, and the decision's one read.
#[async_trait::async_trait]
pub trait SessionStore: Send + Sync {
    /// The decision's read: one round trip for the token pair, the native session and the
    /// forward source's cached answer. The caller bounds it (the auth listener, by its
    /// deadline): on a single Redis server the store sets no timer of its own on this read, as
    /// it does on every other call (`store.timeout_ms`).
    async fn ask(&self, question: &Question<'_>) -> Result<Lookup, StoreError>;

    /// [`SessionStore::ask`] with no forwarded credentials.
    async fn lookup(
        &self,
        user_token: &UserToken,
        file_token: &FileToken,
        session: Option<&SessionKey>,
    ) -> Result<Lookup, StoreError> {
        self.ask(&Question {
            user_token,
            file_token,
            session,
            forwarded: None,
        })
        .await
    }

    /// Keeps a forward source's answer under `key` for `ttl` seconds, and indexes it under its
    /// user so that ending the user's sessions ends it. An answer fetched before such an end
    /// (`asked_at_ms`, when its request started) is not kept.
    async fn cache_forwarded(
        &self,
        key: &ForwardKey,
        caller: &ForwardedCaller,
        ttl: u64,
        asked_at_ms: i64,
    ) -> Result<(), StoreError>;

    /// Stores a session that lives until `record.expires_at` (`now` gives the TTL).
    async fn insert_session(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        now: i64,
    ) -> Result<Written, StoreError>;

    /// Logs one session out. `Ok(false)` if it did not exist.
    async fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError>;

    /// Drops sessions that expired before `now`; Redis does this itself (TTL) and returns 0.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;

    /// Logs a user out everywhere: every native session, and every answer a forward source
    /// keeps for the user (none fetched before this is kept after it). Returns how many native
    /// sessions ended.
    async fn delete_user_sessions(&self, id: &UserId) -> Result<u64, StoreError>;
}

/// Direct uploads under way (object storage only).
#[async_trait::async_trait]
pub trait UploadStore: Send + Sync {
    /// Records a direct upload; its owner must exist.
    async fn insert_upload(&self, upload: &PendingUpload) -> Result<Written, StoreError>;

    /// The upload, if it is under way.
    async fn upload(&self, id: &FileId) -> Result<Option<PendingUpload>, StoreError>;

    /// Removes the upload and returns it: of two callers, one gets it, so an upload is
    /// completed (or swept) once.
    async fn take_upload(&self, id: &FileId) -> Result<Option<PendingUpload>, StoreError>;

    /// At most `limit` uploads that expired before `now`, for the sweep to take.
    async fn expired_uploads(&self, now: i64, limit: usize) -> Result<Vec<FileId>, StoreError>;
}

/// The audit log.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends audit events, each to its half of the log ([`AuditLog::of`]), keeping at most
    /// `max_len` in each half, and adds their downloads to the per-file counters.
    async fn append_events(&self, events: &[Event], max_len: u64) -> Result<(), StoreError>;

    /// At most `limit` events of one half of the audit log after `after` (exclusive), in the
    /// order they were appended, each with its position.
    async fn audit_page(
        &self,
        log: AuditLog,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<Logged>, StoreError>;

    /// Events after `cursor` (exclusive), oldest first, at most `limit`: both halves of the
    /// audit log as one (see [`audit_log`]).
    async fn events(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let from = match after {
            None => Cursor::default(),
            Some(c) => Cursor::parse(c).ok_or(StoreError::Cursor)?,
        };
        let (reads, changes) = futures_util::future::try_join(
            self.audit_page(AuditLog::Reads, from.reads, limit),
            self.audit_page(AuditLog::Changes, from.changes, limit),
        )
        .await?;
        Ok(audit_log::merge(from, reads, changes, limit))
    }
}

/// Downloads per file in a batch of events.
pub(crate) fn download_counts(events: &[Event]) -> Vec<(&FileId, u64)> {
    let mut counts: Vec<(&FileId, u64)> = Vec::new();
    for e in events.iter().filter(|e| e.download) {
        let Some(f) = &e.file_id else { continue };
        match counts.iter_mut().find(|(id, _)| *id == f) {
            Some((_, n)) => *n += 1,
            None => counts.push((f, 1)),
        }
    }
    counts
}

/// Opens the store named by `store.url` (see `config::StoreUrl`), or `embedded::memory:` (in
/// memory, for tests).
pub async fn open(
    url: &str,
    prefix: &str,
    timeout: std::time::Duration,
) -> Result<Arc<dyn Store>, StoreError> {
    open_cached(url, prefix, timeout, None).await
}

/// As [`open`], in cached mode when `cache` is given (Redis only).
pub async fn open_cached(
    url: &str,
    prefix: &str,
    timeout: std::time::Duration,
    cache: Option<redis::conn::Cache>,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(match StoreUrl::parse(url).map_err(StoreError::Url)? {
        StoreUrl::Embedded(path) if path == ":memory:" => {
            Arc::new(embedded::EmbeddedStore::in_memory()?)
        }
        StoreUrl::Embedded(path) => Arc::new(embedded::EmbeddedStore::open(Path::new(&path))?),
        redis => Arc::new(redis::RedisStore::new(&redis, prefix, timeout, cache)?),
    })
}
