//! Native sessions, and the decision's one read (`lookup`): the token pair and the session in
//! one round trip.

use redis::AsyncCommands;

use super::conn::Conn;
use super::lease::Lease;
use super::{RedisStore, record, unavailable};
use crate::ids::UserId;
use crate::model::SessionRecord;
use crate::store::{Lookup, SessionStore, StoreError, Written, decode, decode_bytes, encode};
use crate::tokens::{FileToken, SessionKey, UserToken};

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    /// Redis expires sessions by itself (their TTL).
    async fn purge_expired(&self, _now: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn lookup(
        &self,
        user_token: &UserToken,
        file_token: &FileToken,
        session: Option<&SessionKey>,
    ) -> Result<Lookup, StoreError> {
        let ukey = self.keys.user_token(user_token);
        let fkey = self.keys.file_token(file_token);
        let skey = session.map(|s| self.keys.session(s));
        // On the stack: a `Vec` of two grown to three cost a reallocation per decision.
        let keys = [
            ukey.as_bytes(),
            fkey.as_slice(),
            skey.as_deref().unwrap_or_default().as_bytes(),
        ];
        let keys = &keys[..if skey.is_some() { 3 } else { 2 }];
        let mut replies = self.conn()?.lookup(keys).await.map_err(unavailable)?;
        let session_raw = if skey.is_some() {
            replies.pop().flatten()
        } else {
            None
        };
        let file_raw = replies.pop().flatten();
        let user_raw = replies.pop().flatten();
        let user_of_token = user_raw
            .map(|u| {
                std::str::from_utf8(&u)
                    .ok()
                    .and_then(|u| UserId::parse(u).ok())
                    .ok_or_else(|| {
                        StoreError::corrupt(&self.keys.user_token_name(user_token), "not a user id")
                    })
            })
            .transpose()?;
        Ok(Lookup {
            user_of_token,
            file: file_raw
                .map(|r| {
                    record::decode(file_token, &r)
                        .map_err(|e| e.under(&self.keys.file_token_name(file_token)))
                })
                .transpose()?,
            session: match (&skey, session_raw) {
                (Some(k), Some(r)) => Some(decode_bytes(k, &r)?),
                _ => None,
            },
        })
    }

    async fn insert_session(
        &self,
        key: &SessionKey,
        record: &SessionRecord,
        now: i64,
    ) -> Result<Written, StoreError> {
        self.as_user_writer(&record.user_id, async |conn, lease| {
            if !self.user_exists(conn, &record.user_id).await? {
                return Ok(Written::NoSuchUser);
            }
            let skey = self.keys.session(key);
            let ttl_ms = (record.expires_at - now).max(1) * 1000;
            lease.check()?;
            // Indexed before it exists, so "log out everywhere" always finds it.
            let _: i64 = self
                .scripts
                .index_session
                .key(self.keys.user_sessions(&record.user_id))
                .arg(key.as_str())
                .arg(ttl_ms)
                .invoke_async(conn)
                .await
                .map_err(unavailable)?;
            lease.check()?;
            let _: () = redis::cmd("SET")
                .arg(&skey)
                .arg(encode(&skey, record)?)
                .arg("PX")
                .arg(ttl_ms)
                .query_async(conn)
                .await
                .map_err(unavailable)?;
            Ok(Written::Done)
        })
        .await
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let skey = self.keys.session(key);
        let raw: Option<String> = self
            .scripts
            .take
            .key(&skey)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let Some(raw) = raw else { return Ok(false) };
        // The session is already gone (the revocation); the index entry is housekeeping.
        if let Ok(record) = decode::<SessionRecord>(&skey, &raw) {
            let _: Result<i64, _> = conn
                .srem(self.keys.user_sessions(&record.user_id), key.as_str())
                .await;
        }
        Ok(true)
    }

    async fn delete_user_sessions(&self, id: &UserId) -> Result<u64, StoreError> {
        self.as_user_writer(id, async |conn, lease| {
            self.delete_sessions_locked(conn, lease, id).await
        })
        .await
    }
}

impl RedisStore {
    pub(super) async fn delete_sessions_locked(
        &self,
        conn: &mut Conn,
        lease: &Lease,
        id: &UserId,
    ) -> Result<u64, StoreError> {
        let index = self.keys.user_sessions(id);
        let members: Vec<String> = conn.smembers(&index).await.map_err(unavailable)?;
        let sessions: Vec<String> = members
            .iter()
            .filter_map(|k| SessionKey::from_stored(k).ok())
            .map(|k| self.keys.session(&k))
            .collect();
        lease.check()?;
        if !sessions.is_empty() {
            conn.del_many(&sessions).await.map_err(unavailable)?;
        }
        let _: () = conn.del(&index).await.map_err(unavailable)?;
        Ok(members.len() as u64)
    }
}
