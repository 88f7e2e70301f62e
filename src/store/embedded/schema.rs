//! The schema version and migrations of the embedded store: one write transaction each.

use std::time::Duration;

use redb::ReadableTable;

use super::{
    DOWNLOADS, EVENTS, EmbeddedStore, FILE_TOKENS, FILES, META, MIGRATIONS, SCHEMA_KEY, SESSIONS,
    USER_FILES, USER_GRANTS, USER_SESSIONS, USER_TOKENS, USERS, err, read_value,
};
use crate::store::{SchemaStore, StoreError, migrate};

#[async_trait::async_trait]
impl SchemaStore for EmbeddedStore {
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
}

/// The embedded half of each migration, applied in the transaction that records it.
pub(super) fn embedded_step(version: u32, txn: &redb::WriteTransaction) -> Result<(), StoreError> {
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

pub(super) fn version_in(txn: &redb::ReadTransaction) -> Result<u32, StoreError> {
    version_of(read_value(txn, META, SCHEMA_KEY)?)
}

/// The schema version as stored; none is a store before its first migration.
pub(super) fn version_of(stored: Option<String>) -> Result<u32, StoreError> {
    stored.map_or(Ok(0), |v| {
        v.parse()
            .map_err(|_| StoreError::corrupt(SCHEMA_KEY, "not a number"))
    })
}
