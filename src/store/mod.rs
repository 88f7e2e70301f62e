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

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::disposition::DispositionKind;
use crate::paths::StoragePath;
use crate::tokens::{FileId, FileToken, SessionKey, UserId, UserToken};
pub use audit_log::{AuditLog, Cursor, Logged, Position};

/// Who may read a file besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    #[default]
    Private,
    Authenticated,
    Public,
}

/// A user known to mediagate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    #[serde(rename = "u")]
    pub user_id: UserId,
    #[serde(rename = "t")]
    pub token: UserToken,
    #[serde(rename = "c")]
    pub created_at: i64,
}

/// A stored file. Field names are short on purpose: this record exists once per file and the
/// keyspace must stay small at millions of files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    #[serde(rename = "i")]
    pub file_id: FileId,
    #[serde(rename = "o")]
    pub owner: UserId,
    #[serde(rename = "t")]
    pub token: FileToken,
    #[serde(rename = "n")]
    pub filename: String,
    #[serde(rename = "p")]
    pub storage_path: StoragePath,
    #[serde(rename = "s")]
    pub size: u64,
    #[serde(rename = "m")]
    pub content_type: String,
    #[serde(rename = "v", default)]
    pub visibility: Visibility,
    #[serde(rename = "d")]
    pub disposition: DispositionKind,
    #[serde(rename = "c")]
    pub created_at: i64,
    /// Users this file is shared with (besides the owner). Kept in the record so that the
    /// decision stays one read; bounded by [`MAX_GRANTS`].
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<UserId>,
}

/// Most users one file can be shared with. A file meant for more people should use
/// `visibility = authenticated` or share links.
pub const MAX_GRANTS: usize = 1000;

/// A change to one file's record, applied atomically by the store.
#[derive(Debug, Clone, PartialEq)]
pub enum FileChange {
    /// A new file token: the old URL, and every share link bound to it, stop working.
    Rotate(FileToken),
    Visibility(Visibility),
    Disposition(DispositionKind),
    Grant(UserId),
    Revoke(UserId),
}

/// Why a change could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("a file can be shared with at most 1000 users")]
    TooManyGrants,
}

impl FileChange {
    /// Applies the change to a record; the one implementation both stores use.
    pub fn apply(&self, f: &mut FileRecord) -> Result<(), ChangeError> {
        match self {
            Self::Rotate(t) => f.token = t.clone(),
            Self::Visibility(v) => f.visibility = *v,
            Self::Disposition(d) => f.disposition = *d,
            Self::Grant(u) => {
                if *u != f.owner && !f.grants.contains(u) {
                    if f.grants.len() >= MAX_GRANTS {
                        return Err(ChangeError::TooManyGrants);
                    }
                    f.grants.push(u.clone());
                }
            }
            Self::Revoke(u) => f.grants.retain(|g| g != u),
        }
        Ok(())
    }
}

/// What happened, for the audit log (`GET /v1/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Read,
    Upload,
    RotateUserToken,
    RotateFileToken,
    DeleteFile,
    DeleteUser,
    Grant,
    Revoke,
    Visibility,
    Disposition,
    Link,
    Logout,
    LogoutAll,
}

/// The outcome of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventDecision {
    Allow,
    Deny,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix milliseconds.
    #[serde(rename = "t")]
    pub at_ms: i64,
    #[serde(rename = "k")]
    pub kind: EventKind,
    /// The user acting (a reader's session, or the user an admin call concerns).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<EventDecision>,
    /// The client's address as nginx saw it, or the admin caller's.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Counts towards the file's download counter (an allowed GET).
    #[serde(skip)]
    pub download: bool,
}

/// An event as stored, with its cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub id: String,
    pub event: Event,
}

/// What deleting a user removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeletedUser {
    /// Storage paths whose bytes the caller must now remove.
    pub files: Vec<StoragePath>,
    pub sessions: u64,
}

/// A native session. Stored under the SHA-256 of its id (see [`SessionKey`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    #[serde(rename = "u")]
    pub user_id: UserId,
    #[serde(rename = "r", default)]
    pub roles: Vec<String>,
    /// Unix seconds. Also enforced by the policy, so a store that keeps an expired record
    /// (the embedded one until its purge) still denies.
    #[serde(rename = "e")]
    pub expires_at: i64,
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
}

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("store did not answer in time")]
    Timeout,
    #[error("corrupt record under {key}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("store schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("another writer holds the lease on this record or on the migration; try again")]
    Busy,
    #[error("a record with this id or token already exists")]
    Conflict,
    #[error("invalid store URL: {0}")]
    Url(String),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("invalid event cursor")]
    Cursor,
}

impl StoreError {
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }

    /// A value under `key` that is not what mediagate writes there, for a reason in words.
    pub(crate) fn corrupt(key: &str, what: &str) -> Self {
        Self::Corrupt {
            key: key.to_owned(),
            source: serde::de::Error::custom(what),
        }
    }
}

/// Outcome of a write that needs its owner to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Done,
    /// The user named as owner does not exist; nothing was written.
    NoSuchUser,
}

/// The store interface. Object-safe so that the app holds one `Arc<dyn Store>`.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// `"redis"` or `"embedded"`, for logs and health output.
    fn kind(&self) -> &'static str;

    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The applied schema version; 0 for a store nothing was ever written to.
    async fn schema_version(&self) -> Result<u32, StoreError>;

    /// Applies pending migrations in order, under a lock; returns the versions applied now.
    /// Refuses (`SchemaTooNew`) a store newer than `migrate::CURRENT`. On Redis it also
    /// converts, every time, what an instance of an older version wrote in an older layout.
    /// Waits as long as a migration another process is running may take ([`migrate::WAIT`]).
    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        self.migrate_within(migrate::WAIT).await
    }

    /// [`Store::migrate`], waiting at most `wait` for a migration another process is running
    /// (then `Busy`): a server starting up retries each second rather than hang.
    async fn migrate_within(&self, wait: std::time::Duration) -> Result<Vec<u32>, StoreError>;

    /// Returns the user, creating it with `fresh_token` if it does not exist. The bool tells
    /// whether it was created.
    async fn ensure_user(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
        now: i64,
    ) -> Result<(UserRecord, bool), StoreError>;

    async fn user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError>;

    /// Registers a file whose bytes are already durable at its storage path. Atomic: either the
    /// token mapping and the id index both exist afterwards, or neither.
    async fn insert_file(&self, file: &FileRecord) -> Result<Written, StoreError>;

    async fn file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError>;

    /// The decision's read: one round trip for the token pair and the session. The caller
    /// bounds it (the auth listener, by its deadline): on a single Redis server the store sets
    /// no timer of its own on this read, as it does on every other call (`store.timeout_ms`).
    async fn lookup(
        &self,
        user_token: &UserToken,
        file_token: &FileToken,
        session: Option<&SessionKey>,
    ) -> Result<Lookup, StoreError>;

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

    /// Gives the user a new token; every URL with the old one stops working at once. `None`
    /// if the user does not exist.
    async fn rotate_user_token(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
    ) -> Result<Option<UserRecord>, StoreError>;

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

    /// Removes a user: token and sessions first (access ends), then files and the grants it
    /// holds. Each step denies on its own, so a failure half-way never leaves access granted,
    /// and a retry completes the rest. `None` if the user did not exist.
    async fn delete_user(&self, id: &UserId) -> Result<Option<DeletedUser>, StoreError>;

    /// Logs a user out everywhere; returns how many sessions ended.
    async fn delete_user_sessions(&self, id: &UserId) -> Result<u64, StoreError>;

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

    /// The file's download counter.
    async fn downloads(&self, id: &FileId) -> Result<u64, StoreError>;
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

/// The schemes `store.url` accepts, for messages.
const SCHEMES: &str =
    "redis://, rediss://, redis+unix://, redis+sentinel://, redis+cluster:// or embedded:PATH";

/// Checks `store.url` without opening anything, so a bad URL stops start-up with one line.
pub fn check_url(url: &str) -> Result<(), String> {
    if let Some(path) = url.strip_prefix("embedded:") {
        if path.is_empty() {
            return Err("embedded: needs a path, e.g. embedded:./var/mediagate.db".into());
        }
        return Ok(());
    }
    if !url.starts_with("redis") {
        return Err(format!("must start with {SCHEMES}"));
    }
    redis::conn::Target::parse(url)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Opens the store named by `store.url`: one of [`SCHEMES`], or `embedded::memory:` (in
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
    check_url(url).map_err(StoreError::Url)?;
    if let Some(path) = url.strip_prefix("embedded:") {
        let store = if path == ":memory:" {
            embedded::EmbeddedStore::in_memory()?
        } else {
            embedded::EmbeddedStore::open(std::path::Path::new(path))?
        };
        return Ok(Arc::new(store));
    }
    Ok(Arc::new(redis::RedisStore::new(
        url, prefix, timeout, cache,
    )?))
}

/// Parses a JSON record read from the store under `key`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    key: &str,
    raw: &str,
) -> Result<T, StoreError> {
    decode_bytes(key, raw.as_bytes())
}

/// [`decode`] for a value read as bytes.
pub(crate) fn decode_bytes<T: serde::de::DeserializeOwned>(
    key: &str,
    raw: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}

/// Serializes a record for the store. Our records always serialize; an error here would be a
/// bug in a derive, reported as corruption rather than a panic.
pub(crate) fn encode<T: Serialize>(key: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}
