//! Direct uploads under way: a record per upload, and an index scored by expiry that the sweep
//! reads. The index is written first and cleared last, so the sweep finds every upload whose
//! record exists.

use redis::AsyncCommands;

use super::{RedisStore, unavailable};
use crate::ids::FileId;
use crate::model::PendingUpload;
use crate::store::{StoreError, UploadStore, Written, decode, encode};

#[async_trait::async_trait]
impl UploadStore for RedisStore {
    async fn insert_upload(&self, upload: &PendingUpload) -> Result<Written, StoreError> {
        // The owner's lease: a deletion of the owner cannot miss this upload's file.
        self.as_user_writer(&upload.owner, async |conn, lease| {
            if !self.user_exists(conn, &upload.owner).await? {
                return Ok(Written::NoSuchUser);
            }
            let key = self.keys.upload(&upload.file_id);
            lease.check()?;
            let _: () = conn
                .zadd(
                    self.keys.uploads(),
                    upload.file_id.as_str(),
                    upload.expires_at,
                )
                .await
                .map_err(unavailable)?;
            let _: () = conn
                .set(&key, encode(&key, upload)?)
                .await
                .map_err(unavailable)?;
            Ok(Written::Done)
        })
        .await
    }

    async fn upload(&self, id: &FileId) -> Result<Option<PendingUpload>, StoreError> {
        let key = self.keys.upload(id);
        let raw: Option<String> = self.conn()?.get(&key).await.map_err(unavailable)?;
        raw.map(|r| decode(&key, &r)).transpose()
    }

    async fn take_upload(&self, id: &FileId) -> Result<Option<PendingUpload>, StoreError> {
        let mut conn = self.conn()?;
        let key = self.keys.upload(id);
        let raw: Option<String> = self
            .scripts
            .take
            .key(&key)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let _: () = conn
            .zrem(self.keys.uploads(), id.as_str())
            .await
            .map_err(unavailable)?;
        raw.map(|r| decode(&key, &r)).transpose()
    }

    async fn expired_uploads(&self, now: i64, limit: usize) -> Result<Vec<FileId>, StoreError> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.uploads())
            .arg("-inf")
            .arg(format!("({now}"))
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn()?)
            .await
            .map_err(unavailable)?;
        ids.iter()
            .map(|i| {
                FileId::parse(i)
                    .map_err(|_| StoreError::corrupt(&self.keys.uploads(), "not a file id"))
            })
            .collect()
    }
}
