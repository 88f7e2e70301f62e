//! The Redis store, for several replicas of mediagate sharing one keyspace.
//!
//! One multiplexed connection per thread (redis-rs `ConnectionManager`, created lazily so that
//! mediagate starts, unready, while Redis is still down, and reconnects by itself). Multi-key
//! writes are Lua scripts, so they are atomic; the decision's read is one pipelined round trip.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::keys::Keys;
use super::migrate;
use super::{
    DeletedUser, Event, FileChange, FileRecord, Lookup, SessionRecord, Store, StoreError,
    StoredEvent, UserRecord, Written, decode, encode,
};
use crate::tokens::{FileId, FileToken, SessionKey, UserId, UserToken};

/// How long a migration lock is held before another process may take over a crashed run.
const MIGRATION_LOCK_MS: u64 = 30_000;

pub struct RedisStore {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// One multiplexed connection per thread. A connection's driver task runs on the runtime
    /// of the thread that made it, so each actix worker talks to Redis without waking another
    /// thread: two cross-thread wake-ups fewer per decision.
    conns: thread_local::ThreadLocal<ConnectionManager>,
    keys: Keys,
    scripts: Scripts,
}

/// Scripts are hashed once; `invoke_async` uses EVALSHA and falls back to EVAL after a
/// `SCRIPT FLUSH` or a restart of Redis.
struct Scripts {
    ensure_user: Script,
    insert_file: Script,
    insert_session: Script,
    delete_session: Script,
    release_lock: Script,
    rotate_user: Script,
    update_file: Script,
    delete_file: Script,
    delete_sessions: Script,
    delete_user: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            // KEYS: user, utok. ARGV: user json, user id.
            ensure_user: Script::new(
                r"local cur = redis.call('GET', KEYS[1])
                  if cur then return {0, cur} end
                  redis.call('SET', KEYS[2], ARGV[2])
                  redis.call('SET', KEYS[1], ARGV[1])
                  return {1, ARGV[1]}",
            ),
            // KEYS: user, ftok, file, ufiles. ARGV: file json, file token, file id.
            insert_file: Script::new(
                r"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
                  if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('EXISTS', KEYS[3]) == 1 then
                    return -1
                  end
                  redis.call('SET', KEYS[2], ARGV[1])
                  redis.call('SET', KEYS[3], ARGV[2])
                  redis.call('SADD', KEYS[4], ARGV[3])
                  return 1",
            ),
            // KEYS: user, sess, usess. ARGV: session json, ttl ms, session key.
            insert_session: Script::new(
                r"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
                  redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
                  redis.call('SADD', KEYS[3], ARGV[3])
                  if redis.call('PTTL', KEYS[3]) < tonumber(ARGV[2]) then
                    redis.call('PEXPIRE', KEYS[3], ARGV[2])
                  end
                  return 1",
            ),
            // KEYS: sess. Returns the record so the caller can tidy the user's index.
            delete_session: Script::new(
                r"local v = redis.call('GET', KEYS[1])
                  if not v then return false end
                  redis.call('DEL', KEYS[1])
                  return v",
            ),
            // KEYS: lock. ARGV: holder. Deletes only our own lock.
            release_lock: Script::new(
                r"if redis.call('GET', KEYS[1]) == ARGV[1] then
                    return redis.call('DEL', KEYS[1])
                  end
                  return 0",
            ),
            // KEYS: user, old utok, new utok. ARGV: old json, new json, user id.
            // Compare-and-swap; the old token dies before the new one exists.
            rotate_user: Script::new(
                r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
                  redis.call('DEL', KEYS[2])
                  redis.call('SET', KEYS[3], ARGV[3])
                  redis.call('SET', KEYS[1], ARGV[2])
                  return 1",
            ),
            // KEYS: file, old ftok, new ftok, ugrants of the grantee (or any key).
            // ARGV: old token, old json, new json, new token, file id, 'add' | 'rem' | ''.
            // Compare-and-swap on both the id index and the record; on rotation the old token
            // is deleted before the new one is written.
            update_file: Script::new(
                r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
                  if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
                  if KEYS[2] ~= KEYS[3] then
                    redis.call('DEL', KEYS[2])
                    redis.call('SET', KEYS[3], ARGV[3])
                    redis.call('SET', KEYS[1], ARGV[4])
                  else
                    redis.call('SET', KEYS[2], ARGV[3])
                  end
                  if ARGV[6] == 'add' then redis.call('SADD', KEYS[4], ARGV[5])
                  elseif ARGV[6] == 'rem' then redis.call('SREM', KEYS[4], ARGV[5]) end
                  return 1",
            ),
            // KEYS: file, ftok, ufiles of owner, dl, then ugrants of each grantee.
            // ARGV: token, file id.
            delete_file: Script::new(
                r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
                  redis.call('DEL', KEYS[2], KEYS[1], KEYS[4])
                  redis.call('SREM', KEYS[3], ARGV[2])
                  for i = 5, #KEYS do redis.call('SREM', KEYS[i], ARGV[2]) end
                  return 1",
            ),
            // KEYS: usess. ARGV: session key prefix. Deletes every session of the user.
            delete_sessions: Script::new(
                r"local m = redis.call('SMEMBERS', KEYS[1])
                  for _, k in ipairs(m) do redis.call('DEL', ARGV[1] .. k) end
                  redis.call('DEL', KEYS[1])
                  return #m",
            ),
            // KEYS: user, ufiles, ugrants. ARGV: user json. The last step of a deletion: the
            // record goes only if no rotation happened meanwhile (that would leave a token).
            delete_user: Script::new(
                r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
                  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
                  return 1",
            ),
        }
    }
}

/// Compare-and-swap writes retry this often against concurrent writers before giving up.
const CAS_ATTEMPTS: usize = 16;

fn unavailable(e: redis::RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::unavailable(e)
    }
}

impl RedisStore {
    /// Prepares the connection; nothing is sent until the first command.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|e| StoreError::Url(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        Ok(Self {
            client,
            config,
            conns: thread_local::ThreadLocal::new(),
            keys: Keys::new(prefix),
            scripts: Scripts::new(),
        })
    }

    /// This thread's connection, made (lazily: nothing is sent yet) on first use.
    fn conn(&self) -> Result<ConnectionManager, StoreError> {
        self.conns
            .get_or_try(|| {
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
            })
            .cloned()
            .map_err(StoreError::unavailable)
    }

    async fn apply_pending(&self, conn: &mut ConnectionManager) -> Result<Vec<u32>, StoreError> {
        let version = self.version_on(conn).await?;
        if version > migrate::CURRENT {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: migrate::CURRENT,
            });
        }
        let mut applied = Vec::new();
        for m in migrate::pending(version) {
            let now = crate::clock::now();
            Script::new(m.redis_lua)
                .key(self.keys.meta())
                .arg(now)
                .invoke_async::<i64>(conn)
                .await
                .map_err(unavailable)?;
            // Recorded after the step: a crash in between re-runs an idempotent step.
            redis::pipe()
                .atomic()
                .hset(self.keys.migrations(), m.version, now)
                .set(self.keys.schema(), m.version)
                .query_async::<()>(conn)
                .await
                .map_err(unavailable)?;
            tracing::info!(version = m.version, name = m.name, "Applied migration.");
            applied.push(m.version);
        }
        Ok(applied)
    }

    async fn version_on(&self, conn: &mut ConnectionManager) -> Result<u32, StoreError> {
        let v: Option<u32> = conn.get(self.keys.schema()).await.map_err(unavailable)?;
        Ok(v.unwrap_or(0))
    }
}

#[async_trait::async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn schema_version(&self) -> Result<u32, StoreError> {
        self.version_on(&mut self.conn()?).await
    }

    async fn migrate(&self) -> Result<Vec<u32>, StoreError> {
        let mut conn = self.conn()?;
        let holder = uuid::Uuid::new_v4().to_string();
        let lock = self.keys.migrate_lock();
        // Another process migrating: wait for it, then find nothing left to do.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(MIGRATION_LOCK_MS);
        loop {
            let got: Option<String> = redis::cmd("SET")
                .arg(&lock)
                .arg(&holder)
                .arg("NX")
                .arg("PX")
                .arg(MIGRATION_LOCK_MS)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if got.is_some() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::MigrationLocked);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let result = self.apply_pending(&mut conn).await;
        let released = self
            .scripts
            .release_lock
            .key(&lock)
            .arg(&holder)
            .invoke_async::<i64>(&mut conn)
            .await;
        if let Err(e) = released {
            // The lock expires by itself; the migration's own result matters more.
            tracing::warn!(error = %e, "Could not release the migration lock; it will expire.");
        }
        result
    }

    async fn ensure_user(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
        now: i64,
    ) -> Result<(UserRecord, bool), StoreError> {
        let key = self.keys.user(user_id);
        let fresh = UserRecord {
            user_id: user_id.clone(),
            token: fresh_token.clone(),
            created_at: now,
        };
        let (created, raw): (i64, String) = self
            .scripts
            .ensure_user
            .key(&key)
            .key(self.keys.user_token(fresh_token))
            .arg(encode(&key, &fresh)?)
            .arg(user_id.as_str())
            .invoke_async(&mut self.conn()?)
            .await
            .map_err(unavailable)?;
        Ok((decode(&key, &raw)?, created == 1))
    }

    async fn user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let key = self.keys.user(user_id);
        let raw: Option<String> = self.conn()?.get(&key).await.map_err(unavailable)?;
        raw.map(|r| decode(&key, &r)).transpose()
    }

    async fn insert_file(&self, file: &FileRecord) -> Result<Written, StoreError> {
        let ftok = self.keys.file_token(&file.token);
        let outcome: i64 = self
            .scripts
            .insert_file
            .key(self.keys.user(&file.owner))
            .key(&ftok)
            .key(self.keys.file(&file.file_id))
            .key(self.keys.user_files(&file.owner))
            .arg(encode(&ftok, file)?)
            .arg(file.token.as_str())
            .arg(file.file_id.as_str())
            .invoke_async(&mut self.conn()?)
            .await
            .map_err(unavailable)?;
        match outcome {
            1 => Ok(Written::Done),
            0 => Ok(Written::NoSuchUser),
            _ => Err(StoreError::Conflict),
        }
    }

    async fn file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
        Ok(self
            .current_file(&mut self.conn()?, id)
            .await?
            .map(|(_, _, record)| record))
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
        let mut pipe = redis::pipe();
        pipe.get(&ukey).get(&fkey);
        if let Some(skey) = &skey {
            pipe.get(skey);
        }
        let mut replies: Vec<Option<String>> = pipe
            .query_async(&mut self.conn()?)
            .await
            .map_err(unavailable)?;
        let session_raw = if skey.is_some() {
            replies.pop().flatten()
        } else {
            None
        };
        let file_raw = replies.pop().flatten();
        let user_raw = replies.pop().flatten();
        let user_of_token = user_raw
            .map(|u| {
                UserId::parse(&u).map_err(|_| StoreError::Corrupt {
                    key: ukey.clone(),
                    source: serde::de::Error::custom("not a user id"),
                })
            })
            .transpose()?;
        Ok(Lookup {
            user_of_token,
            file: file_raw.map(|r| decode(&fkey, &r)).transpose()?,
            session: match (&skey, session_raw) {
                (Some(k), Some(r)) => Some(decode(k, &r)?),
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
        let skey = self.keys.session(key);
        let ttl_ms = (record.expires_at - now).max(1) * 1000;
        let outcome: i64 = self
            .scripts
            .insert_session
            .key(self.keys.user(&record.user_id))
            .key(&skey)
            .key(self.keys.user_sessions(&record.user_id))
            .arg(encode(&skey, record)?)
            .arg(ttl_ms)
            .arg(key.as_str())
            .invoke_async(&mut self.conn()?)
            .await
            .map_err(unavailable)?;
        Ok(if outcome == 1 {
            Written::Done
        } else {
            Written::NoSuchUser
        })
    }

    async fn delete_session(&self, key: &SessionKey) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let skey = self.keys.session(key);
        let raw: Option<String> = self
            .scripts
            .delete_session
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

    async fn purge_expired(&self, _now: i64) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn rotate_user_token(
        &self,
        user_id: &UserId,
        fresh_token: &UserToken,
    ) -> Result<Option<UserRecord>, StoreError> {
        let mut conn = self.conn()?;
        let key = self.keys.user(user_id);
        for _ in 0..CAS_ATTEMPTS {
            let raw: Option<String> = conn.get(&key).await.map_err(unavailable)?;
            let Some(raw) = raw else { return Ok(None) };
            let old: UserRecord = decode(&key, &raw)?;
            let new = UserRecord {
                token: fresh_token.clone(),
                ..old.clone()
            };
            let done: i64 = self
                .scripts
                .rotate_user
                .key(&key)
                .key(self.keys.user_token(&old.token))
                .key(self.keys.user_token(fresh_token))
                .arg(&raw)
                .arg(encode(&key, &new)?)
                .arg(user_id.as_str())
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if done == 1 {
                return Ok(Some(new));
            }
        }
        Err(StoreError::Conflict)
    }

    async fn update_file(
        &self,
        id: &FileId,
        change: &FileChange,
    ) -> Result<Option<FileRecord>, StoreError> {
        let mut conn = self.conn()?;
        let fkey = self.keys.file(id);
        for _ in 0..CAS_ATTEMPTS {
            let Some((token, raw, old)) = self.current_file(&mut conn, id).await? else {
                return Ok(None);
            };
            let mut new = old.clone();
            change.apply(&mut new)?;
            let (grant_key, op) = match change {
                FileChange::Grant(u) => (self.keys.user_grants(u), "add"),
                FileChange::Revoke(u) => (self.keys.user_grants(u), "rem"),
                _ => (self.keys.user_grants(&old.owner), ""),
            };
            let new_ftok = self.keys.file_token(&new.token);
            let done: i64 = self
                .scripts
                .update_file
                .key(&fkey)
                .key(self.keys.file_token(&token))
                .key(&new_ftok)
                .key(grant_key)
                .arg(token.as_str())
                .arg(&raw)
                .arg(encode(&new_ftok, &new)?)
                .arg(new.token.as_str())
                .arg(id.as_str())
                .arg(op)
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if done == 1 {
                return Ok(Some(new));
            }
        }
        Err(StoreError::Conflict)
    }

    async fn delete_file(&self, id: &FileId) -> Result<Option<FileRecord>, StoreError> {
        let mut conn = self.conn()?;
        for _ in 0..CAS_ATTEMPTS {
            let Some((token, _, record)) = self.current_file(&mut conn, id).await? else {
                return Ok(None);
            };
            let mut script = self.scripts.delete_file.prepare_invoke();
            script
                .key(self.keys.file(id))
                .key(self.keys.file_token(&token))
                .key(self.keys.user_files(&record.owner))
                .key(self.keys.downloads(id));
            for g in &record.grants {
                script.key(self.keys.user_grants(g));
            }
            let done: i64 = script
                .arg(token.as_str())
                .arg(id.as_str())
                .invoke_async(&mut conn)
                .await
                .map_err(unavailable)?;
            if done == 1 {
                return Ok(Some(record));
            }
        }
        Err(StoreError::Conflict)
    }

    async fn delete_user(&self, id: &UserId) -> Result<Option<DeletedUser>, StoreError> {
        let mut conn = self.conn()?;
        let key = self.keys.user(id);
        let raw: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        let Some(raw) = raw else { return Ok(None) };
        let user: UserRecord = decode(&key, &raw)?;
        // Access ends first: every session, then the token every URL of the user needs.
        // The record stays until the end, so a retry after a failure finds it and finishes.
        let sessions = self.delete_user_sessions(id).await?;
        let _: () = conn
            .del(self.keys.user_token(&user.token))
            .await
            .map_err(unavailable)?;
        let mut deleted = DeletedUser {
            files: Vec::new(),
            sessions,
        };
        let owned: Vec<String> = conn
            .smembers(self.keys.user_files(id))
            .await
            .map_err(unavailable)?;
        for f in owned.iter().filter_map(|f| FileId::parse(f).ok()) {
            if let Some(record) = self.delete_file(&f).await? {
                deleted.files.push(record.storage_path);
            }
        }
        let shared: Vec<String> = conn
            .smembers(self.keys.user_grants(id))
            .await
            .map_err(unavailable)?;
        for f in shared.iter().filter_map(|f| FileId::parse(f).ok()) {
            self.update_file(&f, &FileChange::Revoke(id.clone()))
                .await?;
        }
        let done: i64 = self
            .scripts
            .delete_user
            .key(&key)
            .key(self.keys.user_files(id))
            .key(self.keys.user_grants(id))
            .arg(&raw)
            .invoke_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if done != 1 {
            return Err(StoreError::Conflict);
        }
        Ok(Some(deleted))
    }

    async fn delete_user_sessions(&self, id: &UserId) -> Result<u64, StoreError> {
        let n: u64 = self
            .scripts
            .delete_sessions
            .key(self.keys.user_sessions(id))
            .arg(self.keys.session_prefix())
            .invoke_async(&mut self.conn()?)
            .await
            .map_err(unavailable)?;
        Ok(n)
    }

    async fn append_events(&self, events: &[Event], max_len: u64) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let stream = self.keys.events();
        let mut pipe = redis::pipe();
        for e in events {
            let json = encode(&stream, e)?;
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(max_len)
                .arg("*")
                .arg("e")
                .arg(json)
                .ignore();
        }
        for (file, n) in super::download_counts(events) {
            pipe.incr(self.keys.downloads(file), n).ignore();
        }
        pipe.query_async::<()>(&mut self.conn()?)
            .await
            .map_err(unavailable)
    }

    async fn events(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let start = match after {
            None => "-".to_owned(),
            Some(c) => {
                let valid = super::parse_cursor(c).is_some();
                if !valid {
                    return Err(StoreError::Cursor);
                }
                format!("({c}")
            }
        };
        let stream = self.keys.events();
        let reply: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(limit)
            .query_async(&mut self.conn()?)
            .await
            .map_err(unavailable)?;
        reply
            .into_iter()
            .map(|(id, fields)| {
                let json = fields
                    .into_iter()
                    .find(|(k, _)| k == "e")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                Ok(StoredEvent {
                    event: decode(&stream, &json)?,
                    id,
                })
            })
            .collect()
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
    /// The file's current token, the raw record and the parsed record.
    ///
    /// Two reads (id → token, token → record); a rotation between them deletes the token we
    /// just read. That shows as a token that changed under us, and we read again; only a
    /// missing id, or a token that stays put with no record, means there is no file.
    async fn current_file(
        &self,
        conn: &mut ConnectionManager,
        id: &FileId,
    ) -> Result<Option<(FileToken, String, FileRecord)>, StoreError> {
        let key = self.keys.file(id);
        let mut token: Option<String> = conn.get(&key).await.map_err(unavailable)?;
        for _ in 0..CAS_ATTEMPTS {
            let Some(current) = token else {
                return Ok(None);
            };
            let parsed = FileToken::parse(&current).map_err(|_| StoreError::Corrupt {
                key: key.clone(),
                source: serde::de::Error::custom("not a file token"),
            })?;
            let ftok = self.keys.file_token(&parsed);
            let raw: Option<String> = conn.get(&ftok).await.map_err(unavailable)?;
            if let Some(raw) = raw {
                let record = decode(&ftok, &raw)?;
                return Ok(Some((parsed, raw, record)));
            }
            let again: Option<String> = conn.get(&key).await.map_err(unavailable)?;
            if again.as_deref() == Some(current.as_str()) {
                return Ok(None);
            }
            token = again;
        }
        Err(StoreError::Conflict)
    }
}
