//! Users: their records, the token every URL of theirs begins with, and their deletion.
//!
//! Every change to a user runs as the user's writer (`as_user_writer`): under the user's lease,
//! after completing whatever change a crashed writer left behind.

use redis::AsyncCommands;

use super::conn::Conn;
use super::intent::UserIntent;
use super::lease::{self, Lease};
use super::{RedisStore, unavailable};
use crate::ids::{FileId, UserId};
use crate::model::{FileChange, UserRecord};
use crate::store::{DeletedUser, FileStore, StoreError, UserStore, decode};
use crate::tokens::UserToken;

#[async_trait::async_trait]
impl UserStore for RedisStore {
    async fn ensure_user(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
        now: i64,
    ) -> Result<(UserRecord, bool), StoreError> {
        self.as_user_writer(user_id, async |conn, lease| {
            let key = self.keys.user(user_id);
            let raw: Option<String> = conn.get(&key).await.map_err(unavailable)?;
            if let Some(raw) = raw {
                return Ok((decode(&key, &raw)?, false));
            }
            let record = UserRecord {
                user_id: user_id.clone(),
                token: fresh_token.clone(),
                created_at: now,
            };
            let create = UserIntent::Create {
                record: record.clone(),
            };
            self.begin_user(conn, lease, user_id, &create).await?;
            Ok((record, true))
        })
        .await
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let key = self.keys.user(user_id);
        let raw: Option<String> = self.conn()?.get(&key).await.map_err(unavailable)?;
        raw.map(|r| decode(&key, &r)).transpose()
    }

    async fn rotate_user_token(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.as_user_writer(user_id, async |conn, lease| {
            let key = self.keys.user(user_id);
            let raw: Option<String> = conn.get(&key).await.map_err(unavailable)?;
            let Some(raw) = raw else { return Ok(None) };
            let old: UserRecord = decode(&key, &raw)?;
            let rotate = UserIntent::Rotate {
                from: old.token.clone(),
                to: fresh_token.clone(),
            };
            self.begin_user(conn, lease, user_id, &rotate).await?;
            Ok(Some(UserRecord {
                token: fresh_token.clone(),
                ..old
            }))
        })
        .await
    }

    async fn delete_user(&self, id: &UserId) -> Result<Option<DeletedUser>, StoreError> {
        self.as_user_writer(id, async |conn, lease| {
            self.delete_user_locked(conn, lease, id).await
        })
        .await
    }
}

impl RedisStore {
    pub(super) async fn user_exists(
        &self,
        conn: &mut Conn,
        id: &UserId,
    ) -> Result<bool, StoreError> {
        conn.exists(self.keys.user(id)).await.map_err(unavailable)
    }

    /// Takes the user's lease and completes any change left behind.
    pub(super) async fn lock_user(
        &self,
        conn: &mut Conn,
        id: &UserId,
    ) -> Result<Lease, StoreError> {
        let lease =
            lease::acquire(conn, self.keys.user_lock(id), lease::LEASE, lease::WAIT).await?;
        match self.settle_user(conn, &lease, id).await {
            Ok(()) => Ok(lease),
            Err(e) => {
                lease::release(conn, lease).await;
                Err(e)
            }
        }
    }

    /// Runs `change` as the user's writer: under the user's lease (any change left behind
    /// completed first), which goes back whatever the outcome.
    pub(super) async fn as_user_writer<T>(
        &self,
        id: &UserId,
        change: impl AsyncFnOnce(&mut Conn, &Lease) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn()?;
        let lease = self.lock_user(&mut conn, id).await?;
        let result = change(&mut conn, &lease).await;
        lease::release(&mut conn, lease).await;
        result
    }

    /// Access ends first: every session, then the token every URL of the user needs. The
    /// record stays until the end, so a retry after a failure finds it and finishes.
    pub(super) async fn delete_user_locked(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        id: &UserId,
    ) -> Result<Option<DeletedUser>, StoreError> {
        let key = self.keys.user(id);
        let raw: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        let Some(raw) = raw else { return Ok(None) };
        let user: UserRecord = decode(&key, &raw)?;
        let sessions = self.delete_sessions_locked(conn, lease, id).await?;
        lease.check()?;
        let utok = self.keys.user_token(&user.token);
        self.cas(conn, &self.scripts.cas_del, &utok, &[id.as_str()])
            .await?;
        let mut deleted = DeletedUser {
            files: Vec::new(),
            sessions,
        };
        let owned: Vec<Vec<u8>> = conn
            .hkeys(self.keys.user_files(id))
            .await
            .map_err(unavailable)?;
        for f in owned.iter().filter_map(|f| FileId::from_bytes(f).ok()) {
            lease.check()?;
            if let Some(record) = self.delete_file(&f).await? {
                deleted.files.push(record.storage_path);
            }
        }
        let shared: Vec<String> = conn
            .smembers(self.keys.user_grants(id))
            .await
            .map_err(unavailable)?;
        for f in shared.iter().filter_map(|f| FileId::parse(f).ok()) {
            lease.check()?;
            self.change_file(conn, &f, &FileChange::Revoke(id.clone()))
                .await?;
        }
        lease.check()?;
        if !self.cas(conn, &self.scripts.cas_del, &key, &[&raw]).await? {
            return Err(StoreError::Conflict);
        }
        for index in [self.keys.user_files(id), self.keys.user_grants(id)] {
            let _: () = conn.del(index).await.map_err(unavailable)?;
        }
        Ok(Some(deleted))
    }
}
