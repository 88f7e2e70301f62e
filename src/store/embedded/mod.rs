//! The embedded store: one redb database file, for a single node that needs no server.
//!
//! redb gives ACID transactions with `Durability::Immediate` (fsync on commit), so an
//! acknowledged write survives a crash, and its file lock keeps a second process out. Each
//! operation is one transaction, so multi-record writes are atomic as in the Redis store.
//! Reads are MVCC snapshots and never wait for a writer; writes (which fsync) run on the
//! blocking pool so they never stall the async workers.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod audit;
mod files;
mod schema;
mod sessions;
mod users;

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, TableDefinition,
    TableError,
};

use super::{AuditLog, DeletedUser, Logged, Lookup, Position, Store, StoreError, Written};
use crate::ids::{FileId, UserId};
use crate::model::{Event, FileChange, FileRecord, SessionRecord, UserRecord};
use crate::tokens::{FileToken, SessionKey, UserToken};

pub(super) const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
pub(super) const MIGRATIONS: TableDefinition<u32, i64> = TableDefinition::new("migrations");
pub(super) const USERS: TableDefinition<&str, &str> = TableDefinition::new("users");
pub(super) const USER_TOKENS: TableDefinition<&str, &str> = TableDefinition::new("utok");
pub(super) const FILE_TOKENS: TableDefinition<&str, &str> = TableDefinition::new("ftok");
pub(super) const FILES: TableDefinition<&str, &str> = TableDefinition::new("files");
pub(super) const USER_FILES: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("ufiles");
pub(super) const SESSIONS: TableDefinition<&str, &str> = TableDefinition::new("sessions");
pub(super) const USER_SESSIONS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("usess");

pub(super) const USER_GRANTS: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("ugrants");
pub(super) const DOWNLOADS: TableDefinition<&str, u64> = TableDefinition::new("downloads");
/// The audit log's halves (see `store::audit_log`): reads keep the table the whole log had.
pub(super) const EVENTS: TableDefinition<u64, &str> = TableDefinition::new("events");
pub(super) const CHANGES: TableDefinition<u64, &str> = TableDefinition::new("changes");

pub(super) const SCHEMA_KEY: &str = "schema_version";

/// The redb store.
pub struct EmbeddedStore {
    db: Arc<Database>,
}

pub(super) fn err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::unavailable(e.into())
}

/// Reads one value from a table that may not exist yet (a store before its first migration).
pub(super) fn read_value(
    txn: &redb::ReadTransaction,
    table: TableDefinition<&str, &str>,
    key: &str,
) -> Result<Option<String>, StoreError> {
    match txn.open_table(table) {
        Ok(t) => Ok(t.get(key).map_err(err)?.map(|v| v.value().to_owned())),
        Err(TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

impl EmbeddedStore {
    /// Opens or creates the database file, creating its directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::unavailable)?;
        }
        let db = Database::create(path).map_err(err)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// A database in memory: the same code paths, for unit tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(err)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs a write transaction on the blocking pool; `f` returning `Err` aborts it.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&redb::WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || {
            let txn = db.begin_write().map_err(err)?;
            let out = f(&txn)?;
            txn.commit().map_err(err)?;
            Ok(out)
        })
        .await
        .map_err(StoreError::unavailable)?
    }

    fn read(&self) -> Result<redb::ReadTransaction, StoreError> {
        self.db.begin_read().map_err(err)
    }
}

/// Values of a multimap entry, collected inside a write transaction.
pub(super) fn members(
    txn: &redb::WriteTransaction,
    table: MultimapTableDefinition<&str, &str>,
    key: &str,
) -> Result<Vec<String>, StoreError> {
    let t = txn.open_multimap_table(table).map_err(err)?;
    let values = t.get(key).map_err(err)?;
    values
        .map(|v| v.map(|v| v.value().to_owned()).map_err(err))
        .collect()
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read().map(|_| ())
    }

    async fn schema_version(&self) -> Result<u32, StoreError> {
        schema::version(self).await
    }

    async fn migrate_within(&self, wait: Duration) -> Result<Vec<u32>, StoreError> {
        schema::migrate_within(self, wait).await
    }

    async fn ensure_user(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
        now: i64,
    ) -> Result<(UserRecord, bool), StoreError> {
        users::ensure(self, user_id, fresh_token, now).await
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        users::get(self, user_id).await
    }

    async fn insert_file(&self, file: &FileRecord) -> Result<Written, StoreError> {
        files::insert(self, file).await
    }

    async fn file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
        files::get(self, id).await
    }

    async fn lookup(
        &self,
        user_token: &UserToken,
        file_token: &FileToken,
        session: Option<&SessionKey>,
    ) -> Result<Lookup, StoreError> {
        sessions::lookup(self, user_token, file_token, session).await
    }

    async fn insert_session(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        now: i64,
    ) -> Result<Written, StoreError> {
        sessions::insert(self, key, record, now).await
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        sessions::delete(self, key).await
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        sessions::purge_expired(self, now).await
    }

    async fn rotate_user_token(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
    ) -> Result<Option<UserRecord>, StoreError> {
        users::rotate_token(self, user_id, fresh_token).await
    }

    async fn update_file(
        &self,
        id: &FileId,
        change: &FileChange,
    ) -> Result<Option<FileRecord>, StoreError> {
        files::update(self, id, change).await
    }

    async fn delete_file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
        files::delete(self, id).await
    }

    async fn delete_user(&self, id: &UserId) -> Result<Option<DeletedUser>, StoreError> {
        users::delete(self, id).await
    }

    async fn delete_user_sessions(&self, id: &UserId) -> Result<u64, StoreError> {
        sessions::delete_all_of(self, id).await
    }

    async fn append_events(&self, events: &[Event], max_len: u64) -> Result<(), StoreError> {
        audit::append(self, events, max_len).await
    }

    async fn audit_page(
        &self,
        log: AuditLog,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<Logged>, StoreError> {
        audit::page(self, log, after, limit).await
    }

    async fn downloads(&self, id: &FileId) -> Result<u64, StoreError> {
        files::downloads(self, id).await
    }
}
