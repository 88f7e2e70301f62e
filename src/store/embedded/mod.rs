//! The embedded store: one redb database file, for a single node that needs no server.
//!
//! redb gives ACID transactions with `Durability::Immediate` (fsync on commit), so an
//! acknowledged write survives a crash, and its file lock keeps a second process out. Each
//! operation is one transaction, so multi-record writes are atomic as in the Redis store.
//! Reads are MVCC snapshots and never wait for a writer; writes (which fsync) run on the
//! blocking pool so they never stall the async workers.

use std::path::Path;
use std::sync::Arc;

mod audit;
mod files;
mod schema;
mod sessions;
mod uploads;
mod users;

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, TableDefinition,
    TableError,
};

use super::{Store, StoreError};

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
/// The forward source's kept answers (hash → JSON), their index by user, and when each user's
/// sessions were last ended (Unix ms).
pub(super) const FORWARDED: TableDefinition<&str, &str> = TableDefinition::new("fwd");
pub(super) const USER_FORWARDED: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("ufwd");
pub(super) const FORWARD_CUTS: TableDefinition<&str, i64> = TableDefinition::new("fwdcut");
/// Direct uploads under way, by file id.
pub(super) const UPLOADS: TableDefinition<&str, &str> = TableDefinition::new("uploads");

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
}
