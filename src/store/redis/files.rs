//! Files: registration, the record the decision reads, changes made by compare-and-swap under
//! the file's lease, and deletion.

use redis::{AsyncCommands, Script};

use super::conn::Conn;
use super::intent::FileIntent;
use super::lease::{self, Lease};
use super::{READ_ATTEMPTS, RedisStore, record, unavailable};
use crate::ids::FileId;
use crate::model::{FileChange, FileRecord};
use crate::store::{FileStore, StoreError, Written};
use crate::tokens::FileToken;

#[async_trait::async_trait]
impl FileStore for RedisStore {
    async fn insert_file(&self, file: &FileRecord) -> Result<Written, StoreError> {
        // The owner's lease: a deletion of the owner cannot miss this file.
        self.as_user_writer(&file.owner, async |conn, lease| {
            if !self.user_exists(conn, &file.owner).await? {
                return Ok(Written::NoSuchUser);
            }
            let ftok = self.keys.file_token(&file.token);
            let taken: bool = conn.exists(&ftok).await.map_err(unavailable)?;
            if taken {
                return Err(StoreError::Conflict);
            }
            lease.check()?;
            // The id first, so a crash leaves at most an id that names no record; the token
            // key, which grants access, last.
            let id = file.file_id.to_bytes();
            let fresh: bool = conn
                .hset_nx(
                    self.keys.file_ids(&file.file_id),
                    &id,
                    &file.token.to_bytes(),
                )
                .await
                .map_err(unavailable)?;
            if !fresh {
                return Err(StoreError::Conflict);
            }
            let _: () = conn
                .hset(self.keys.user_files(&file.owner), &id, "")
                .await
                .map_err(unavailable)?;
            lease.check()?;
            let _: () = conn
                .set(&ftok, record::encode(file)?)
                .await
                .map_err(unavailable)?;
            Ok(Written::Done)
        })
        .await
    }

    async fn file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
        Ok(self
            .current_file(&mut self.conn()?, id)
            .await?
            .map(|(_, _, record)| record))
    }

    async fn update_file(
        &self,
        id: &FileId,
        change: &FileChange,
    ) -> Result<Option<FileRecord>, StoreError> {
        // A grant or revocation also holds the grantee's lease (users before files, always),
        // so it cannot interleave with that user's deletion.
        match change {
            FileChange::Grant(u) | FileChange::Revoke(u) => {
                self.as_user_writer(u, async |conn, _| self.change_file(conn, id, change).await)
                    .await
            }
            _ => self.change_file(&mut self.conn()?, id, change).await,
        }
    }

    async fn delete_file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
        let mut conn = self.conn()?;
        let (lease, completed) = self.lock_file(&mut conn, id).await?;
        let result = async {
            if completed.is_some() {
                return Ok(completed);
            }
            let Some((_, _, record)) = self.current_file(&mut conn, id).await? else {
                return Ok(None);
            };
            let delete = FileIntent::Delete {
                record: record.clone(),
            };
            self.begin_file(&mut conn, &lease, id, &delete).await?;
            Ok(Some(record))
        }
        .await;
        lease::release(&mut conn, lease).await;
        result
    }

    async fn downloads(&self, id: &FileId) -> Result<u64, StoreError> {
        let n: Option<u64> = self
            .conn()?
            .get(self.keys.downloads(id))
            .await
            .map_err(unavailable)?;
        Ok(n.unwrap_or(0))
    }
}

impl RedisStore {
    /// Takes the file's lease and completes any change left behind, returning the record of
    /// a deletion it completed.
    pub(super) async fn lock_file(
        &self,
        conn: &mut Conn,
        id: &FileId,
    ) -> Result<(Lease, Option<FileRecord>), StoreError> {
        let lease =
            lease::acquire(conn, self.keys.file_lock(id), lease::LEASE, lease::WAIT).await?;
        match self.settle_file(conn, &lease, id).await {
            Ok(deleted) => Ok((lease, deleted)),
            Err(e) => {
                lease::release(conn, lease).await;
                Err(e)
            }
        }
    }

    /// A file change under the file's lease (and, for grants, the caller holds the grantee's).
    pub(super) async fn change_file(
        &self,
        conn: &mut Conn,
        id: &FileId,
        change: &FileChange,
    ) -> Result<Option<FileRecord>, StoreError> {
        let (lease, _) = self.lock_file(conn, id).await?;
        let result = async {
            let Some((_, raw, old)) = self.current_file(conn, id).await? else {
                return Ok(None);
            };
            let mut new = old.clone();
            change.apply(&mut new)?;
            if let FileChange::Rotate(_) = change {
                let rotate = FileIntent::Rotate {
                    from: old,
                    to: new.clone(),
                };
                self.begin_file(conn, &lease, id, &rotate).await?;
                return Ok(Some(new));
            }
            // One key changes: the record the decision reads. A grant is indexed before it
            // takes effect, a revocation unindexed after, so the index (used to revoke
            // everything a deleted user was given) never misses a grant.
            if let FileChange::Grant(u) = change
                && new.grants.contains(u)
            {
                lease.check()?;
                let _: () = conn
                    .sadd(self.keys.user_grants(u), id.as_str())
                    .await
                    .map_err(unavailable)?;
            }
            let ftok = self.keys.file_token(&old.token);
            let stored = record::encode(&new)?;
            lease.check()?;
            if !self
                .cas(conn, &self.scripts.cas_set, &ftok, &[&raw, &stored])
                .await?
            {
                return Err(StoreError::Conflict);
            }
            if let FileChange::Revoke(u) = change {
                let _: () = conn
                    .srem(self.keys.user_grants(u), id.as_str())
                    .await
                    .map_err(unavailable)?;
            }
            Ok(Some(new))
        }
        .await;
        lease::release(conn, lease).await;
        result
    }

    /// The file's current token, the raw record and the parsed record.
    ///
    /// Two reads (id → token, token → record), without a lease. A change between them shows
    /// as a token that moved under us, and we read again; a change in progress is read from
    /// its intent; only a missing id, or a token that stays put with no record and no intent,
    /// means there is no file.
    pub(super) async fn current_file(
        &self,
        conn: &mut Conn,
        id: &FileId,
    ) -> Result<Option<(FileToken, Vec<u8>, FileRecord)>, StoreError> {
        let key = self.keys.file_ids(id);
        let field = id.to_bytes();
        let mut token: Option<Vec<u8>> = conn.hget(&key, &field).await.map_err(unavailable)?;
        for _ in 0..READ_ATTEMPTS {
            let Some(current) = token else {
                return Ok(None);
            };
            let parsed = FileToken::from_bytes(&current)
                .map_err(|_| StoreError::corrupt(&key, "not a file token"))?;
            let ftok = self.keys.file_token(&parsed);
            let raw: Option<Vec<u8>> = conn.get(&ftok).await.map_err(unavailable)?;
            if let Some(raw) = raw {
                let record = record::decode(&parsed, &raw)
                    .map_err(|e| e.under(&self.keys.file_token_name(&parsed)))?;
                return Ok(Some((parsed, raw, record)));
            }
            match self.file_intent(conn, id).await? {
                Some(FileIntent::Rotate { to, .. }) => {
                    let raw = record::encode(&to)?;
                    return Ok(Some((to.token.clone(), raw, to)));
                }
                Some(FileIntent::Delete { .. }) => return Ok(None),
                None => {}
            }
            let again: Option<Vec<u8>> = conn.hget(&key, &field).await.map_err(unavailable)?;
            if again.as_deref() == Some(current.as_slice()) {
                return Ok(None);
            }
            token = again;
        }
        Err(StoreError::Conflict)
    }

    /// Runs a compare-and-swap script (`cas_set` or `cas_del`) on one key; true if it applied.
    pub(super) async fn cas<K: redis::ToRedisArgs, A: redis::ToRedisArgs>(
        &self,
        conn: &mut Conn,
        script: &Script,
        key: K,
        args: &[A],
    ) -> Result<bool, StoreError> {
        let mut call = script.key(key);
        for a in args {
            call.arg(a);
        }
        let done: i64 = call.invoke_async(conn).await.map_err(unavailable)?;
        Ok(done == 1)
    }
}
