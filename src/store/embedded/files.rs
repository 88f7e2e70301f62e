//! Files: registration, the records, changes and deletion, each one transaction.

use redb::{ReadableTable, TableError};

use super::{
    DOWNLOADS, EmbeddedStore, FILE_TOKENS, FILES, USER_FILES, USER_GRANTS, USERS, err, read_value,
};
use crate::ids::FileId;
use crate::model::{FileChange, FileRecord};
use crate::store::{FileStore, StoreError, Written, decode, encode};

#[async_trait::async_trait]
impl FileStore for EmbeddedStore {
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
        let Some(token) = read_value(&txn, FILES, id.as_str())? else {
            return Ok(None);
        };
        read_value(&txn, FILE_TOKENS, &token)?
            .map(|raw| decode(id.as_str(), &raw))
            .transpose()
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

/// The file's record inside a write transaction.
pub(super) fn file_in(
    txn: &redb::WriteTransaction,
    id: &FileId,
) -> Result<Option<FileRecord>, StoreError> {
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

pub(super) fn update_file_in(
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

pub(super) fn delete_file_in(
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
