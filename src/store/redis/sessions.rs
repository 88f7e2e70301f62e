//! Native sessions, the forward source's kept answers, and the decision's one read (`ask`):
//! the token pair, the session and the kept answer in one round trip.

use redis::AsyncCommands;

use super::conn::Conn;
use super::lease::Lease;
use super::{RedisStore, record, unavailable};
use crate::ids::UserId;
use crate::model::{ForwardedCaller, SessionRecord};
use crate::store::{
    Lookup, Question, SessionStore, StoreError, Written, decode, decode_bytes, encode,
};
use crate::tokens::{ForwardKey, SessionKey};

/// How long the mark of a logout is kept: longer than any endpoint request can take.
const CUT_SECS: u64 = 3600;

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    /// Redis expires sessions by itself (their TTL).
    async fn purge_expired(&self, _now: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn ask(&self, q: &Question<'_>) -> Result<Lookup, StoreError> {
        let ukey = self.keys.user_token(q.user_token);
        let fkey = self.keys.file_token(q.file_token);
        let skey = q.session.map(|s| self.keys.session(s));
        let wkey = q.forwarded.map(|k| self.keys.forwarded(k));
        // On the stack: a `Vec` grown per decision cost a reallocation each time.
        let mut keys: [&[u8]; 4] = [ukey.as_bytes(), fkey.as_slice(), &[], &[]];
        let mut n = 2;
        for k in [&skey, &wkey].into_iter().flatten() {
            keys[n] = k.as_bytes();
            n += 1;
        }
        let mut replies = self
            .conn()?
            .lookup(&keys[..n])
            .await
            .map_err(unavailable)?
            .into_iter();
        let user_raw = replies.next().flatten();
        let file_raw = replies.next().flatten();
        let session_raw = skey.as_ref().and_then(|_| replies.next().flatten());
        let forwarded_raw = wkey.as_ref().and_then(|_| replies.next().flatten());
        let user_of_token = user_raw
            .map(|u| {
                std::str::from_utf8(&u)
                    .ok()
                    .and_then(|u| UserId::parse(u).ok())
                    .ok_or_else(|| {
                        StoreError::corrupt(
                            &self.keys.user_token_name(q.user_token),
                            "not a user id",
                        )
                    })
            })
            .transpose()?;
        Ok(Lookup {
            user_of_token,
            file: file_raw
                .map(|r| {
                    record::decode(q.file_token, &r)
                        .map_err(|e| e.under(&self.keys.file_token_name(q.file_token)))
                })
                .transpose()?,
            session: match (&skey, session_raw) {
                (Some(k), Some(r)) => Some(decode_bytes(k, &r)?),
                _ => None,
            },
            forwarded: match (&wkey, forwarded_raw) {
                (Some(k), Some(r)) => Some(decode_bytes(k, &r)?),
                _ => None,
            },
        })
    }

    async fn cache_forwarded(
        &self,
        key: &ForwardKey,
        caller: &ForwardedCaller,
        ttl: u64,
        asked_at_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let wkey = self.keys.forwarded(key);
        let index = self.keys.user_forwarded(&caller.user_id);
        let ttl = ttl.max(1);
        // Indexed first, so that a logout running now finds the answer; the cut read after
        // the write catches a logout that ran while the endpoint was being asked.
        // Three calls, not a pipeline: on a cluster the index and the answer live in different
        // slots.
        let _: () = conn.sadd(&index, key.as_str()).await.map_err(unavailable)?;
        let _: () = conn
            .expire(&index, (ttl + 60) as i64)
            .await
            .map_err(unavailable)?;
        let _: () = conn
            .set_ex(&wkey, encode(&wkey, caller)?, ttl)
            .await
            .map_err(unavailable)?;
        let cut: Option<i64> = conn
            .get(self.keys.forward_cut(&caller.user_id))
            .await
            .map_err(unavailable)?;
        if cut.is_some_and(|cut| cut >= asked_at_ms) {
            let _: () = conn.del(&wkey).await.map_err(unavailable)?;
        }
        Ok(())
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
        self.end_forwarded(conn, id).await?;
        Ok(members.len() as u64)
    }

    /// Ends the forward answers kept for `id`, and marks when, so that an answer being
    /// fetched now is not kept after it.
    async fn end_forwarded(&self, conn: &mut Conn, id: &UserId) -> Result<(), StoreError> {
        let now_ms = crate::clock::now_ms();
        let _: () = conn
            .set_ex(self.keys.forward_cut(id), now_ms, CUT_SECS)
            .await
            .map_err(unavailable)?;
        let index = self.keys.user_forwarded(id);
        let members: Vec<String> = conn.smembers(&index).await.map_err(unavailable)?;
        let answers: Vec<String> = members
            .iter()
            .filter_map(|k| ForwardKey::from_stored(k).ok())
            .map(|k| self.keys.forwarded(&k))
            .collect();
        if !answers.is_empty() {
            conn.del_many(&answers).await.map_err(unavailable)?;
        }
        let _: () = conn.del(&index).await.map_err(unavailable)?;
        Ok(())
    }
}
