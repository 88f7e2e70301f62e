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

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableMultimapTable, ReadableTable,
    ReadableTableMetadata, TableDefinition, TableError,
};

use super::migrate;
use super::{
    AuditLog, DeletedUser, Event, FileChange, FileRecord, Logged, Lookup, Position, SessionRecord,
    Store, StoreError, UserRecord, Written, decode, encode,
};
use crate::tokens::{FileId, FileToken, SessionKey, UserId, UserToken};

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const MIGRATIONS: TableDefinition<u32, i64> = TableDefinition::new("migrations");
const USERS: TableDefinition<&str, &str> = TableDefinition::new("users");
const USER_TOKENS: TableDefinition<&str, &str> = TableDefinition::new("utok");
const FILE_TOKENS: TableDefinition<&str, &str> = TableDefinition::new("ftok");
const FILES: TableDefinition<&str, &str> = TableDefinition::new("files");
const USER_FILES: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("ufiles");
const SESSIONS: TableDefinition<&str, &str> = TableDefinition::new("sessions");
const USER_SESSIONS: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("usess");

const USER_GRANTS: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("ugrants");
const DOWNLOADS: TableDefinition<&str, u64> = TableDefinition::new("downloads");
/// The audit log's halves (see `store::audit_log`): reads keep the table the whole log had.
const EVENTS: TableDefinition<u64, &str> = TableDefinition::new("events");
const CHANGES: TableDefinition<u64, &str> = TableDefinition::new("changes");

fn audit_table(log: AuditLog) -> TableDefinition<'static, u64, &'static str> {
    match log {
        AuditLog::Reads => EVENTS,
        AuditLog::Changes => CHANGES,
    }
}

const SCHEMA_KEY: &str = "schema_version";

pub struct EmbeddedStore {
    db: Arc<Database>,
}

fn err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::unavailable(e.into())
}

/// Reads one value from a table that may not exist yet (a store before its first migration).
fn get(
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

/// The embedded half of each migration, applied in the transaction that records it.
fn embedded_step(version: u32, txn: &redb::WriteTransaction) -> Result<(), StoreError> {
    match version {
        1 => {
            txn.open_table(USERS).map_err(err)?;
            txn.open_table(USER_TOKENS).map_err(err)?;
            txn.open_table(FILE_TOKENS).map_err(err)?;
            txn.open_table(FILES).map_err(err)?;
            txn.open_multimap_table(USER_FILES).map_err(err)?;
            txn.open_table(SESSIONS).map_err(err)?;
            txn.open_multimap_table(USER_SESSIONS).map_err(err)?;
            txn.open_multimap_table(USER_GRANTS).map_err(err)?;
            txn.open_table(DOWNLOADS).map_err(err)?;
            txn.open_table(EVENTS).map_err(err)?;
            Ok(())
        }
        // Layouts 2 and 3 are Redis' alone: the embedded tables were compact already.
        2 | 3 => Ok(()),
        other => Err(StoreError::SchemaTooNew {
            found: other,
            supported: migrate::CURRENT,
        }),
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

/// The file's record inside a write transaction.
fn file_in(txn: &redb::WriteTransaction, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
    let token = txn
        .open_table(FILES)
        .map_err(err)?
        .get(id.as_str())
        .map_err(err)?
        .map(|t| t.value().to_owned());
    let Some(token) = token else { return Ok(None) };
    let raw = txn
        .open_table(FILE_TOKENS)
        .map_err(err)?
        .get(token.as_str())
        .map_err(err)?
        .map(|r| r.value().to_owned());
    raw.map(|r| decode(id.as_str(), &r)).transpose()
}

fn update_file_in(
    txn: &redb::WriteTransaction,
    id: &FileId,
    change: &FileChange,
) -> Result<Option<FileRecord>, StoreError> {
    let Some(old) = file_in(txn, id)? else {
        return Ok(None);
    };
    let mut new = old.clone();
    change.apply(&mut new)?;
    let mut ftok = txn.open_table(FILE_TOKENS).map_err(err)?;
    if new.token != old.token {
        ftok.remove(old.token.as_str()).map_err(err)?;
        txn.open_table(FILES)
            .map_err(err)?
            .insert(id.as_str(), new.token.as_str())
            .map_err(err)?;
    }
    ftok.insert(new.token.as_str(), encode(id.as_str(), &new)?.as_str())
        .map_err(err)?;
    match change {
        FileChange::Grant(u) => {
            txn.open_multimap_table(USER_GRANTS)
                .map_err(err)?
                .insert(u.as_str(), id.as_str())
                .map_err(err)?;
        }
        FileChange::Revoke(u) => {
            txn.open_multimap_table(USER_GRANTS)
                .map_err(err)?
                .remove(u.as_str(), id.as_str())
                .map_err(err)?;
        }
        _ => {}
    }
    Ok(Some(new))
}

fn delete_file_in(
    txn: &redb::WriteTransaction,
    id: &FileId,
) -> Result<Option<FileRecord>, StoreError> {
    let Some(record) = file_in(txn, id)? else {
        return Ok(None);
    };
    txn.open_table(FILE_TOKENS)
        .map_err(err)?
        .remove(record.token.as_str())
        .map_err(err)?;
    txn.open_table(FILES)
        .map_err(err)?
        .remove(id.as_str())
        .map_err(err)?;
    txn.open_table(DOWNLOADS)
        .map_err(err)?
        .remove(id.as_str())
        .map_err(err)?;
    txn.open_multimap_table(USER_FILES)
        .map_err(err)?
        .remove(record.owner.as_str(), id.as_str())
        .map_err(err)?;
    let mut grants = txn.open_multimap_table(USER_GRANTS).map_err(err)?;
    for g in &record.grants {
        grants.remove(g.as_str(), id.as_str()).map_err(err)?;
    }
    Ok(Some(record))
}

fn delete_sessions_in(txn: &redb::WriteTransaction, id: &UserId) -> Result<u64, StoreError> {
    let keys: Vec<String> = txn
        .open_multimap_table(USER_SESSIONS)
        .map_err(err)?
        .remove_all(id.as_str())
        .map_err(err)?
        .map(|k| k.map(|k| k.value().to_owned()).map_err(err))
        .collect::<Result<_, _>>()?;
    let mut sessions = txn.open_table(SESSIONS).map_err(err)?;
    for k in &keys {
        sessions.remove(k.as_str()).map_err(err)?;
    }
    Ok(keys.len() as u64)
}

/// Values of a multimap entry, collected inside a write transaction.
fn members(
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

fn version_in(txn: &redb::ReadTransaction) -> Result<u32, StoreError> {
    version_of(get(txn, META, SCHEMA_KEY)?)
}

/// The schema version as stored; none is a store before its first migration.
fn version_of(stored: Option<String>) -> Result<u32, StoreError> {
    stored.map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| StoreError::corrupt(SCHEMA_KEY, "not a number"))
    })
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
        version_in(&self.read()?)
    }

    async fn migrate_within(&self, _wait: Duration) -> Result<Vec<u32>, StoreError> {
        // redb allows one write transaction at a time: that is the migration lock (and its
        // file lock keeps out other processes altogether).
        self.write(|txn| {
            let version = {
                let meta = txn.open_table(META).map_err(err)?;
                let stored = meta
                    .get(SCHEMA_KEY)
                    .map_err(err)?
                    .map(|v| v.value().to_owned());
                version_of(stored)?
            };
            let mut applied = Vec::new();
            for m in migrate::pending(version)? {
                embedded_step(m.version, txn)?;
                txn.open_table(MIGRATIONS)
                    .map_err(err)?
                    .insert(m.version, crate::clock::now())
                    .map_err(err)?;
                txn.open_table(META)
                    .map_err(err)?
                    .insert(SCHEMA_KEY, m.version.to_string().as_str())
                    .map_err(err)?;
                tracing::info!(version = m.version, name = m.name, "Applied migration.");
                applied.push(m.version);
            }
            Ok(applied)
        })
        .await
    }

    async fn ensure_user(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
        now: i64,
    ) -> Result<(UserRecord, bool), StoreError> {
        let fresh = UserRecord {
            user_id: user_id.clone(),
            token: fresh_token.clone(),
            created_at: now,
        };
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(err)?;
            let id = fresh.user_id.as_str();
            if let Some(raw) = users.get(id).map_err(err)? {
                return Ok((decode(id, raw.value())?, false));
            }
            users
                .insert(id, encode(id, &fresh)?.as_str())
                .map_err(err)?;
            txn.open_table(USER_TOKENS)
                .map_err(err)?
                .insert(fresh.token.as_str(), id)
                .map_err(err)?;
            Ok((fresh, true))
        })
        .await
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let txn = self.read()?;
        get(&txn, USERS, user_id.as_str())?
            .map(|raw| decode(user_id.as_str(), &raw))
            .transpose()
    }

    async fn insert_file(&self, file: &FileRecord) -> Result<Written, StoreError> {
        let file = file.clone();
        self.write(move |txn| {
            if txn
                .open_table(USERS)
                .map_err(err)?
                .get(file.owner.as_str())
                .map_err(err)?
                .is_none()
            {
                return Ok(Written::NoSuchUser);
            }
            let mut ftok = txn.open_table(FILE_TOKENS).map_err(err)?;
            let mut files = txn.open_table(FILES).map_err(err)?;
            if ftok.get(file.token.as_str()).map_err(err)?.is_some()
                || files.get(file.file_id.as_str()).map_err(err)?.is_some()
            {
                return Err(StoreError::Conflict);
            }
            let json = encode(file.file_id.as_str(), &file)?;
            ftok.insert(file.token.as_str(), json.as_str())
                .map_err(err)?;
            files
                .insert(file.file_id.as_str(), file.token.as_str())
                .map_err(err)?;
            txn.open_multimap_table(USER_FILES)
                .map_err(err)?
                .insert(file.owner.as_str(), file.file_id.as_str())
                .map_err(err)?;
            Ok(Written::Done)
        })
        .await
    }

    async fn file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
        let txn = self.read()?;
        let Some(token) = get(&txn, FILES, id.as_str())? else {
            return Ok(None);
        };
        get(&txn, FILE_TOKENS, &token)?
            .map(|raw| decode(id.as_str(), &raw))
            .transpose()
    }

    async fn lookup(
        &self,
        user_token: &UserToken,
        file_token: &FileToken,
        session: Option<&SessionKey>,
    ) -> Result<Lookup, StoreError> {
        let txn = self.read()?;
        let user_of_token = get(&txn, USER_TOKENS, user_token.as_str())?
            .map(|u| UserId::parse(&u).map_err(|_| StoreError::corrupt("utok", "not a user id")))
            .transpose()?;
        let file = get(&txn, FILE_TOKENS, file_token.as_str())?
            .map(|raw| decode("ftok", &raw))
            .transpose()?;
        let session = match session {
            Some(k) => get(&txn, SESSIONS, k.as_str())?
                .map(|raw| decode("session", &raw))
                .transpose()?,
            None => None,
        };
        Ok(Lookup {
            user_of_token,
            file,
            session,
        })
    }

    async fn insert_session(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        _now: i64,
    ) -> Result<Written, StoreError> {
        let (key, record) = (key.clone(), record.clone());
        self.write(move |txn| {
            let user = record.user_id.as_str();
            if txn
                .open_table(USERS)
                .map_err(err)?
                .get(user)
                .map_err(err)?
                .is_none()
            {
                return Ok(Written::NoSuchUser);
            }
            txn.open_table(SESSIONS)
                .map_err(err)?
                .insert(key.as_str(), encode("session", &record)?.as_str())
                .map_err(err)?;
            txn.open_multimap_table(USER_SESSIONS)
                .map_err(err)?
                .insert(user, key.as_str())
                .map_err(err)?;
            Ok(Written::Done)
        })
        .await
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let key = key.clone();
        self.write(move |txn| {
            let removed = txn
                .open_table(SESSIONS)
                .map_err(err)?
                .remove(key.as_str())
                .map_err(err)?
                .map(|v| v.value().to_owned());
            let Some(raw) = removed else { return Ok(false) };
            let record: SessionRecord = decode("session", &raw)?;
            txn.open_multimap_table(USER_SESSIONS)
                .map_err(err)?
                .remove(record.user_id.as_str(), key.as_str())
                .map_err(err)?;
            Ok(true)
        })
        .await
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.write(move |txn| {
            let mut expired: Vec<(String, String)> = Vec::new();
            {
                let sessions = txn.open_table(SESSIONS).map_err(err)?;
                for entry in sessions.iter().map_err(err)? {
                    let (k, v) = entry.map_err(err)?;
                    // An unreadable record can grant nothing; drop it with the expired ones.
                    match decode::<SessionRecord>("session", v.value()) {
                        Ok(r) if r.expires_at > now => {}
                        Ok(r) => expired.push((k.value().to_owned(), r.user_id.to_string())),
                        Err(_) => expired.push((k.value().to_owned(), String::new())),
                    }
                }
            }
            let mut sessions = txn.open_table(SESSIONS).map_err(err)?;
            let mut index = txn.open_multimap_table(USER_SESSIONS).map_err(err)?;
            for (k, user) in &expired {
                sessions.remove(k.as_str()).map_err(err)?;
                if !user.is_empty() {
                    index.remove(user.as_str(), k.as_str()).map_err(err)?;
                }
            }
            Ok(expired.len() as u64)
        })
        .await
    }

    async fn rotate_user_token(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
    ) -> Result<Option<UserRecord>, StoreError> {
        let (id, fresh) = (user_id.clone(), fresh_token.clone());
        self.write(move |txn| {
            let mut users = txn.open_table(USERS).map_err(err)?;
            let raw = users
                .get(id.as_str())
                .map_err(err)?
                .map(|r| r.value().to_owned());
            let Some(raw) = raw else { return Ok(None) };
            let old: UserRecord = decode(id.as_str(), &raw)?;
            let new = UserRecord {
                token: fresh,
                ..old.clone()
            };
            let mut utok = txn.open_table(USER_TOKENS).map_err(err)?;
            utok.remove(old.token.as_str()).map_err(err)?;
            utok.insert(new.token.as_str(), id.as_str()).map_err(err)?;
            users
                .insert(id.as_str(), encode(id.as_str(), &new)?.as_str())
                .map_err(err)?;
            Ok(Some(new))
        })
        .await
    }

    async fn update_file(
        &self,
        id: &FileId,
        change: &FileChange,
    ) -> Result<Option<FileRecord>, StoreError> {
        let (id, change) = (id.clone(), change.clone());
        self.write(move |txn| update_file_in(txn, &id, &change))
            .await
    }

    async fn delete_file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
        let id = id.clone();
        self.write(move |txn| delete_file_in(txn, &id)).await
    }

    async fn delete_user(&self, id: &UserId) -> Result<Option<DeletedUser>, StoreError> {
        let id = id.clone();
        // One transaction: all of it happens, or none.
        self.write(move |txn| {
            let raw = txn
                .open_table(USERS)
                .map_err(err)?
                .remove(id.as_str())
                .map_err(err)?
                .map(|r| r.value().to_owned());
            let Some(raw) = raw else { return Ok(None) };
            let user: UserRecord = decode(id.as_str(), &raw)?;
            txn.open_table(USER_TOKENS)
                .map_err(err)?
                .remove(user.token.as_str())
                .map_err(err)?;
            let mut deleted = DeletedUser {
                files: Vec::new(),
                sessions: delete_sessions_in(txn, &id)?,
            };
            for f in members(txn, USER_FILES, id.as_str())? {
                let Ok(f) = FileId::parse(&f) else { continue };
                if let Some(record) = delete_file_in(txn, &f)? {
                    deleted.files.push(record.storage_path);
                }
            }
            for f in members(txn, USER_GRANTS, id.as_str())? {
                let Ok(f) = FileId::parse(&f) else { continue };
                update_file_in(txn, &f, &FileChange::Revoke(id.clone()))?;
            }
            txn.open_multimap_table(USER_FILES)
                .map_err(err)?
                .remove_all(id.as_str())
                .map_err(err)?;
            txn.open_multimap_table(USER_GRANTS)
                .map_err(err)?
                .remove_all(id.as_str())
                .map_err(err)?;
            Ok(Some(deleted))
        })
        .await
    }

    async fn delete_user_sessions(&self, id: &UserId) -> Result<u64, StoreError> {
        let id = id.clone();
        self.write(move |txn| delete_sessions_in(txn, &id)).await
    }

    async fn append_events(&self, events: &[Event], max_len: u64) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let events = events.to_vec();
        self.write(move |txn| {
            for log in [AuditLog::Reads, AuditLog::Changes] {
                let mut part = events
                    .iter()
                    .filter(|e| AuditLog::of(e.kind) == log)
                    .peekable();
                if part.peek().is_none() {
                    continue;
                }
                let mut table = txn.open_table(audit_table(log)).map_err(err)?;
                let mut next = table
                    .last()
                    .map_err(err)?
                    .map(|(k, _)| k.value() + 1)
                    .unwrap_or(1);
                for e in part {
                    table
                        .insert(next, encode("events", e)?.as_str())
                        .map_err(err)?;
                    next += 1;
                }
                // Keep the newest `max_len`.
                let len = table.len().map_err(err)?;
                if len > max_len {
                    let cut = next - max_len;
                    table.retain_in(..cut, |_, _| false).map_err(err)?;
                }
            }
            let mut downloads = txn.open_table(DOWNLOADS).map_err(err)?;
            for (file, n) in super::download_counts(&events) {
                let current = downloads
                    .get(file.as_str())
                    .map_err(err)?
                    .map(|v| v.value())
                    .unwrap_or(0);
                downloads.insert(file.as_str(), current + n).map_err(err)?;
            }
            Ok(())
        })
        .await
    }

    async fn audit_page(
        &self,
        log: AuditLog,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<Logged>, StoreError> {
        let start = after.map_or(0, |(n, _)| n);
        let txn = self.read()?;
        let table = match txn.open_table(audit_table(log)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut out = Vec::new();
        for entry in table
            .range(start.saturating_add(1)..)
            .map_err(err)?
            .take(limit)
        {
            let (k, v) = entry.map_err(err)?;
            out.push(((k.value(), 0), decode("events", v.value())?));
        }
        Ok(out)
    }

    async fn downloads(&self, id: &FileId) -> Result<u64, StoreError> {
        let txn = self.read()?;
        match txn.open_table(DOWNLOADS) {
            Ok(t) => Ok(t
                .get(id.as_str())
                .map_err(err)?
                .map(|v| v.value())
                .unwrap_or(0)),
            Err(TableError::TableDoesNotExist(_)) => Ok(0),
            Err(e) => Err(err(e)),
        }
    }
}
