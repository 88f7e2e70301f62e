//! Direct uploads under way, in one table; few are ever under way at once, so the sweep scans it.

use redb::{ReadableTable, TableError};

use super::{EmbeddedStore, UPLOADS, USERS, err, read_value};
use crate::ids::FileId;
use crate::model::PendingUpload;
use crate::store::{StoreError, UploadStore, Written, decode, encode};

#[async_trait::async_trait]
impl UploadStore for EmbeddedStore {
    async fn insert_upload(&self, upload: &PendingUpload) -> Result<Written, StoreError> {
        let upload = upload.clone();
        self.write(move |txn| {
            let exists = txn
                .open_table(USERS)
                .map_err(err)?
                .get(upload.owner.as_str())
                .map_err(err)?
                .is_some();
            if !exists {
                return Ok(Written::NoSuchUser);
            }
            txn.open_table(UPLOADS)
                .map_err(err)?
                .insert(
                    upload.file_id.as_str(),
                    encode("uploads", &upload)?.as_str(),
                )
                .map_err(err)?;
            Ok(Written::Done)
        })
        .await
    }

    async fn upload(&self, id: &FileId) -> Result<Option<PendingUpload>, StoreError> {
        let txn = self.read()?;
        read_value(&txn, UPLOADS, id.as_str())?
            .map(|raw| decode("uploads", &raw))
            .transpose()
    }

    async fn take_upload(&self, id: &FileId) -> Result<Option<PendingUpload>, StoreError> {
        let id = id.clone();
        self.write(move |txn| {
            let mut table = txn.open_table(UPLOADS).map_err(err)?;
            let raw = table
                .remove(id.as_str())
                .map_err(err)?
                .map(|v| v.value().to_owned());
            raw.map(|r| decode("uploads", &r)).transpose()
        })
        .await
    }

    async fn expired_uploads(&self, now: i64, limit: usize) -> Result<Vec<FileId>, StoreError> {
        let txn = self.read()?;
        let table = match txn.open_table(UPLOADS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (_, v) = entry.map_err(err)?;
            let upload: PendingUpload = decode("uploads", v.value())?;
            if upload.expires_at < now {
                out.push(upload.file_id);
                if out.len() == limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}
