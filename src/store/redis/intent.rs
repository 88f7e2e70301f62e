//! Changes that span keys, as intents that any later writer completes.
//!
//! On Redis Cluster a user's record and its URL token, or a file's old and new token, live in
//! different hash slots, so no script can change them together. Such a change is written first
//! as an intent under the record's own key (`upend:`/`fpend:`), then applied as single-key
//! steps, in an order where every intermediate state grants no more than the state before or
//! the state after, and access that ends always ends before new access begins. The intent is
//! deleted last. Whoever next takes the record's lease finds a leftover intent and applies it
//! again: every step is idempotent, so a crash or an outage half-way is completed by the next
//! write (a retry of the same call, or any other) and never undone.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::RedisStore;
use super::conn::Conn;
use super::lease::Lease;
use super::{record, unavailable};
use crate::ids::{FileId, UserId};
use crate::model::{FileRecord, UserRecord};
use crate::store::{StoreError, decode, encode};
use crate::tokens::UserToken;
use redis::AsyncCommands;

/// A user change in progress.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum UserIntent {
    /// The token key is written before the record, so a record never names a token that does
    /// not work; the intent means a crash in between leaves no orphan token.
    Create { record: UserRecord },
    /// The old token stops working first; the record, then the new token's key, follow.
    Rotate { from: UserToken, to: UserToken },
}

/// A file change in progress.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FileIntent {
    Rotate {
        from: FileRecord,
        to: FileRecord,
    },
    /// Access ends first (the token key), then the indexes, then the id.
    Delete {
        record: FileRecord,
    },
}

impl RedisStore {
    /// Writes an intent under its record's key, before the change's first step.
    async fn record_intent(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        key: &str,
        intent: &impl Serialize,
    ) -> Result<(), StoreError> {
        lease.check()?;
        let _: () = conn
            .set(key, encode(key, intent)?)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn read_intent<T: DeserializeOwned>(
        &self,
        conn: &mut Conn,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        let raw: Option<String> = conn.get(key).await.map_err(unavailable)?;
        raw.map(|r| decode(key, &r)).transpose()
    }

    pub(super) async fn begin_user(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        id: &UserId,
        intent: &UserIntent,
    ) -> Result<(), StoreError> {
        self.record_intent(conn, lease, &self.keys.user_intent(id), intent)
            .await?;
        self.apply_user(conn, lease, id, intent).await
    }

    /// Completes a user change a crashed or failed writer left behind.
    pub(super) async fn settle_user(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        id: &UserId,
    ) -> Result<(), StoreError> {
        let key = self.keys.user_intent(id);
        let Some(intent) = self.read_intent::<UserIntent>(conn, &key).await? else {
            return Ok(());
        };
        tracing::info!(
            user_id = id.as_str(),
            "Completing an interrupted user change."
        );
        self.apply_user(conn, lease, id, &intent).await
    }

    async fn apply_user(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        id: &UserId,
        intent: &UserIntent,
    ) -> Result<(), StoreError> {
        let ukey = self.keys.user(id);
        match intent {
            UserIntent::Create { record } => {
                lease.check()?;
                let _: () = conn
                    .set(self.keys.user_token(&record.token), id.as_str())
                    .await
                    .map_err(unavailable)?;
                let _: bool = conn
                    .set_nx(&ukey, encode(&ukey, record)?)
                    .await
                    .map_err(unavailable)?;
            }
            UserIntent::Rotate { from, to } => {
                lease.check()?;
                let utok = self.keys.user_token(from);
                self.cas(conn, &self.scripts.cas_del, &utok, &[id.as_str()])
                    .await?;
                let raw: Option<String> = conn.get(&ukey).await.map_err(unavailable)?;
                // A record that is gone, or names neither token, takes no new token.
                let Some(raw) = raw else {
                    return self.end_intent(conn, &self.keys.user_intent(id)).await;
                };
                let mut record: UserRecord = decode(&ukey, &raw)?;
                if record.token == *from {
                    record.token = to.clone();
                    lease.check()?;
                    let json = encode(&ukey, &record)?;
                    self.cas(conn, &self.scripts.cas_set, &ukey, &[&raw, &json])
                        .await?;
                }
                if record.token == *to {
                    lease.check()?;
                    let _: () = conn
                        .set(self.keys.user_token(to), id.as_str())
                        .await
                        .map_err(unavailable)?;
                }
            }
        }
        self.end_intent(conn, &self.keys.user_intent(id)).await
    }

    pub(super) async fn begin_file(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        id: &FileId,
        intent: &FileIntent,
    ) -> Result<(), StoreError> {
        self.record_intent(conn, lease, &self.keys.file_intent(id), intent)
            .await?;
        self.apply_file(conn, lease, id, intent).await
    }

    /// Completes a file change left behind; returns the record of a deletion it completed, so
    /// that a retried delete still hands back the bytes to remove.
    pub(super) async fn settle_file(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        id: &FileId,
    ) -> Result<Option<FileRecord>, StoreError> {
        let Some(intent) = self.file_intent(conn, id).await? else {
            return Ok(None);
        };
        tracing::info!(
            file_id = id.as_str(),
            "Completing an interrupted file change."
        );
        self.apply_file(conn, lease, id, &intent).await?;
        Ok(match intent {
            FileIntent::Delete { record } => Some(record),
            FileIntent::Rotate { .. } => None,
        })
    }

    pub(super) async fn file_intent(
        &self,
        conn: &mut Conn,
        id: &FileId,
    ) -> Result<Option<FileIntent>, StoreError> {
        self.read_intent(conn, &self.keys.file_intent(id)).await
    }

    async fn apply_file(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        id: &FileId,
        intent: &FileIntent,
    ) -> Result<(), StoreError> {
        match intent {
            FileIntent::Rotate { from, to } => {
                let new_key = self.keys.file_token(&to.token);
                lease.check()?;
                let _: () = conn
                    .del(self.keys.file_token(&from.token))
                    .await
                    .map_err(unavailable)?;
                lease.check()?;
                let _: () = conn
                    .set(&new_key, record::encode(to)?)
                    .await
                    .map_err(unavailable)?;
                lease.check()?;
                let _: () = conn
                    .hset(self.keys.file_ids(id), &id.to_bytes(), &to.token.to_bytes())
                    .await
                    .map_err(unavailable)?;
            }
            FileIntent::Delete { record } => {
                lease.check()?;
                let _: () = conn
                    .del(self.keys.file_token(&record.token))
                    .await
                    .map_err(unavailable)?;
                let _: () = conn
                    .hdel(self.keys.user_files(&record.owner), &id.to_bytes())
                    .await
                    .map_err(unavailable)?;
                for g in &record.grants {
                    let _: () = conn
                        .srem(self.keys.user_grants(g), id.as_str())
                        .await
                        .map_err(unavailable)?;
                }
                let _: () = conn
                    .del(self.keys.downloads(id))
                    .await
                    .map_err(unavailable)?;
                let _: () = conn
                    .hdel(self.keys.file_ids(id), &id.to_bytes())
                    .await
                    .map_err(unavailable)?;
            }
        }
        self.end_intent(conn, &self.keys.file_intent(id)).await
    }

    async fn end_intent(&self, conn: &mut Conn, key: &str) -> Result<(), StoreError> {
        let _: () = conn.del(key).await.map_err(unavailable)?;
        Ok(())
    }
}
