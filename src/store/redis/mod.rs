//! The Redis store, for several replicas of mediagate sharing one keyspace, on one Redis
//! server, a Sentinel-watched master, or a Redis Cluster (see [`conn`]).
//!
//! One connection per thread, created lazily so that mediagate starts, unready, while Redis is
//! still down, and reconnects by itself. The decision's read is one round trip (`MGET`). Every script
//! touches a single key, so nothing here needs two keys in one hash slot; writes that span
//! keys take the record's lease ([`lease`]) and run as ordered, resumable steps ([`intent`]).

mod compact;
pub mod conn;
mod events;
mod intent;
mod lease;
pub mod record;
mod relayout;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::{AsyncCommands, Script};

use self::conn::{Conn, Target};
use self::intent::{FileIntent, UserIntent};
use self::lease::Lease;
use super::keys::Keys;
use super::migrate;
use super::{
    AuditLog, DeletedUser, Event, FileChange, FileRecord, Logged, Lookup, Position, SessionRecord,
    Store, StoreError, UserRecord, Written, decode, decode_bytes, encode,
};
use crate::tokens::{FileId, FileToken, SessionKey, UserId, UserToken};

/// How long a migration lock is held before another process may take over a crashed run.
const MIGRATION_LOCK: Duration = Duration::from_secs(30);

pub struct RedisStore {
    target: Target,
    timeout: Duration,
    /// One connection per thread. A connection's driver task runs on the runtime of the thread
    /// that made it, so each actix worker talks to Redis without waking another thread: two
    /// cross-thread wake-ups fewer per decision.
    conns: thread_local::ThreadLocal<RefCell<Option<ThreadConn>>>,
    keys: Keys,
    scripts: Scripts,
    /// Whether the server's version has been read (at the first schema check that reaches it).
    version_checked: AtomicBool,
}

/// The oldest Redis the audit stream works on: its script trims by id (`XTRIM MINID`, 6.2).
const OLDEST_REDIS: (u32, u32) = (6, 2);

/// `major.minor` of the `redis_version` line of `INFO server`.
fn redis_version(info: &str) -> Option<(u32, u32)> {
    let v = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))?
        .trim();
    let mut parts = v.split('.').map(str::parse::<u32>);
    Some((parts.next()?.ok()?, parts.next()?.ok()?))
}

/// The oldest version in an `INFO server` reply: one text from one server, or, from a
/// cluster (which asks every node), one text per node in a map or an array.
fn oldest_version(reply: &redis::Value) -> Option<(u32, u32)> {
    use redis::Value;
    match reply {
        Value::BulkString(b) => std::str::from_utf8(b).ok().and_then(redis_version),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => redis_version(s),
        Value::Array(items) | Value::Set(items) => items.iter().filter_map(oldest_version).min(),
        Value::Map(pairs) => pairs.iter().filter_map(|(_, v)| oldest_version(v)).min(),
        _ => None,
    }
}

/// A connection and the thread that made it. `ThreadLocal` hands an exited thread's slot to
/// the next new thread, and that connection's driver died with the old thread's runtime (an
/// actix worker's, at shutdown): without the check, the audit log's last batch, written after
/// the workers stop, failed on a dead connection.
struct ThreadConn {
    thread: std::thread::ThreadId,
    conn: Conn,
}

/// Scripts are hashed once; `invoke_async` uses EVALSHA and falls back to EVAL after a
/// `SCRIPT FLUSH` or a restart of Redis. Each touches exactly one key.
struct Scripts {
    cas_set: Script,
    cas_del: Script,
    take: Script,
    hdel_unchanged: Script,
    index_session: Script,
    append_events: Script,
}

impl Scripts {
    fn new() -> Self {
        Self {
            // ARGV: expected, new. Sets only over the expected value.
            cas_set: Script::new(
                r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
                  redis.call('SET', KEYS[1], ARGV[2])
                  return 1",
            ),
            // ARGV: expected. Deletes only the expected value.
            cas_del: Script::new(
                r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
                  return redis.call('DEL', KEYS[1])",
            ),
            // Deletes and returns the value (GETDEL, which Redis < 6.2 lacks).
            take: Script::new(
                r"local v = redis.call('GET', KEYS[1])
                  if v then redis.call('DEL', KEYS[1]) end
                  return v",
            ),
            // ARGV: field, expected value, field, expected value… Deletes each field that
            // still holds its expected value; returns how many it deleted.
            hdel_unchanged: Script::new(
                r"local n = 0
                  for i = 1, #ARGV, 2 do
                    if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
                      n = n + redis.call('HDEL', KEYS[1], ARGV[i])
                    end
                  end
                  return n",
            ),
            // KEYS: usess. ARGV: session key, ttl ms. The index outlives its longest session.
            index_session: Script::new(
                r"redis.call('SADD', KEYS[1], ARGV[1])
                  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
                    redis.call('PEXPIRE', KEYS[1], ARGV[2])
                  end
                  return 1",
            ),
            append_events: Script::new(events::APPEND),
        }
    }
}

fn unavailable(e: redis::RedisError) -> StoreError {
    if e.is_timeout() {
        StoreError::Timeout
    } else {
        StoreError::unavailable(e)
    }
}

/// Lock-free readers retry this often when a concurrent change moves a record under them.
const READ_ATTEMPTS: usize = 16;

impl RedisStore {
    /// Prepares the connections; nothing is sent until the first command.
    pub fn new(
        url: &str,
        prefix: &str,
        timeout: Duration,
        cache: Option<conn::Cache>,
    ) -> Result<Self, StoreError> {
        let target = Target::parse(url)
            .and_then(|t| t.cached(cache))
            .map_err(|e| StoreError::Url(e.to_string()))?;
        Ok(Self {
            target,
            timeout,
            conns: thread_local::ThreadLocal::new(),
            keys: Keys::new(prefix),
            scripts: Scripts::new(),
            version_checked: AtomicBool::new(false),
        })
    }

    /// This thread's connection, made (lazily: nothing is sent yet) on first use.
    fn conn(&self) -> Result<Conn, StoreError> {
        let slot = self.conns.get_or(|| RefCell::new(None));
        let mut slot = slot.borrow_mut();
        let here = std::thread::current().id();
        match slot.as_ref() {
            Some(tc) if tc.thread == here => Ok(tc.conn.clone()),
            _ => {
                let conn = self
                    .target
                    .connect_lazy(self.timeout)
                    .map_err(StoreError::unavailable)?;
                *slot = Some(ThreadConn {
                    thread: here,
                    conn: conn.clone(),
                });
                Ok(conn)
            }
        }
    }

    /// Applies the pending migrations under the migration lock `lock`, renewed while the
    /// data step runs.
    async fn apply_pending(
        &self,
        conn: &mut Conn,
        lock: &mut Lease,
    ) -> Result<Vec<u32>, StoreError> {
        let version = self.version_on(conn).await?;
        let pending = migrate::pending(version)?;
        // The data step no single script can do takes every key of an older layout to the
        // current one: before the scripts that stamp a new layout, and also when the schema
        // is current already, for what instances of an older version still wrote after the
        // last migration (a rolling update's old pods). A fresh store has nothing to convert.
        if version > 0 {
            let n = self.relayout(conn, lock).await?;
            tracing::info!(converted = n, "Rewrote the keys of older layouts.");
        }
        let mut applied = Vec::new();
        for m in pending {
            lease::renew(conn, lock, MIGRATION_LOCK).await?;
            let now = crate::clock::now();
            Script::new(m.redis_lua)
                .key(self.keys.meta())
                .arg(now)
                .invoke_async::<i64>(conn)
                .await
                .map_err(unavailable)?;
            // Recorded after the step, the version last (the two keys may be on different
            // cluster nodes): a crash in between re-runs an idempotent step.
            let _: () = conn
                .hset(self.keys.migrations(), m.version, now)
                .await
                .map_err(unavailable)?;
            let _: () = conn
                .set(self.keys.schema(), m.version)
                .await
                .map_err(unavailable)?;
            tracing::info!(version = m.version, name = m.name, "Applied migration.");
            applied.push(m.version);
        }
        Ok(applied)
    }

    async fn version_on(&self, conn: &mut Conn) -> Result<u32, StoreError> {
        let v: Option<u32> = conn.get(self.keys.schema()).await.map_err(unavailable)?;
        Ok(v.unwrap_or(0))
    }

    /// Runs a compare-and-swap script (`cas_set` or `cas_del`) on one key; true if it applied.
    async fn cas<K: redis::ToRedisArgs, A: redis::ToRedisArgs>(
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

    /// `major.minor` of the oldest server the store talks to (every node of a cluster), or
    /// `None` when `INFO` answers in a form without a version (a proxy, a denied command).
    pub async fn server_version(&self) -> Result<Option<(u32, u32)>, StoreError> {
        let reply: redis::Value = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.conn()?)
            .await
            .map_err(unavailable)?;
        Ok(oldest_version(&reply))
    }

    /// Says once, in words, that a server is too old for the audit stream: there, every batch
    /// would fail, and each failure's log line carries only Redis' raw script error. Decisions
    /// and the admin API work on it all the same, so it is a warning, not a refusal to start.
    /// Asked again at the next schema check if Redis could not be reached.
    async fn check_server_version(&self) {
        let version = match self.server_version().await {
            Ok(v) => v,
            Err(_) => return,
        };
        self.version_checked.store(true, Ordering::Relaxed);
        match version {
            Some(v) if v < OLDEST_REDIS => tracing::error!(
                version = format!("{}.{}", v.0, v.1),
                "Redis is older than 6.2: audit events cannot be written (their script trims \
                 the stream with XTRIM MINID). Decisions are not affected; upgrade Redis."
            ),
            Some(_) => {}
            None => tracing::debug!("Could not read the Redis server's version."),
        }
    }

    async fn user_exists(&self, conn: &mut Conn, id: &UserId) -> Result<bool, StoreError> {
        conn.exists(self.keys.user(id)).await.map_err(unavailable)
    }

    /// Takes the user's lease and completes any change left behind.
    async fn lock_user(&self, conn: &mut Conn, id: &UserId) -> Result<Lease, StoreError> {
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
    async fn as_user_writer<T>(
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

    /// Takes the file's lease and completes any change left behind, returning the record of
    /// a deletion it completed.
    async fn lock_file(
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
}

#[async_trait::async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        self.target.kind()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.ping().await.map_err(unavailable)
    }

    async fn schema_version(&self) -> Result<u32, StoreError> {
        let version = self.version_on(&mut self.conn()?).await?;
        if !self.version_checked.load(Ordering::Relaxed) {
            self.check_server_version().await;
        }
        Ok(version)
    }

    async fn migrate_within(&self, wait: Duration) -> Result<Vec<u32>, StoreError> {
        let mut conn = self.conn()?;
        // Another process migrating: wait for it, then find nothing left to do.
        let mut lease =
            lease::acquire(&mut conn, self.keys.migrate_lock(), MIGRATION_LOCK, wait).await?;
        let result = self.apply_pending(&mut conn, &mut lease).await;
        lease::release(&mut conn, lease).await;
        result
    }

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

    async fn purge_expired(&self, _now: i64) -> Result<u64, StoreError> {
        Ok(0)
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

    async fn delete_user(&self, id: &UserId) -> Result<Option<DeletedUser>, StoreError> {
        self.as_user_writer(id, async |conn, lease| {
            self.delete_user_locked(conn, lease, id).await
        })
        .await
    }

    async fn delete_user_sessions(&self, id: &UserId) -> Result<u64, StoreError> {
        self.as_user_writer(id, async |conn, lease| {
            self.delete_sessions_locked(conn, lease, id).await
        })
        .await
    }

    async fn append_events(&self, events: &[Event], max_len: u64) -> Result<(), StoreError> {
        let conn = self.conn()?;
        for log in [AuditLog::Reads, AuditLog::Changes] {
            let part: Vec<&Event> = events
                .iter()
                .filter(|e| AuditLog::of(e.kind) == log)
                .collect();
            if part.is_empty() {
                continue;
            }
            let stream = self.keys.audit_log(log);
            let _: String = self
                .scripts
                .append_events
                .key(&stream)
                .arg(max_len)
                .arg(part.len())
                .arg(encode(&stream, &part)?)
                .invoke_async(&mut conn.clone())
                .await
                .map_err(unavailable)?;
        }
        // Counters live in other slots than the stream: one command each, sent together.
        let counts = super::download_counts(events);
        futures_util::future::try_join_all(counts.into_iter().map(|(file, n)| {
            let mut conn = conn.clone();
            let key = self.keys.downloads(file);
            async move { conn.incr::<_, _, i64>(key, n).await }
        }))
        .await
        .map_err(unavailable)?;
        Ok(())
    }

    async fn audit_page(
        &self,
        log: AuditLog,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<Logged>, StoreError> {
        // An entry's id is its last event's: entries after the cursor are those that may hold
        // events after it.
        let mut start = after.map_or_else(|| "-".to_owned(), |(ms, seq)| format!("({ms}-{seq}"));
        let stream = self.keys.audit_log(log);
        let mut conn = self.conn()?;
        let mut out = Vec::with_capacity(limit);
        let mut entries_read = 0;
        while out.len() < limit {
            let count = events::entries_to_read(limit - out.len(), entries_read, out.len());
            let entries: Vec<events::Entry> = redis::cmd("XRANGE")
                .arg(&stream)
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            let Some((last, _)) = entries.last() else {
                break;
            };
            start = format!("({last}");
            entries_read += entries.len();
            let short = entries.len() < count;
            events::unpack(&stream, entries, after, &mut out)?;
            if short {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
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
    /// A file change under the file's lease (and, for grants, the caller holds the grantee's).
    async fn change_file(
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

    /// Access ends first: every session, then the token every URL of the user needs. The
    /// record stays until the end, so a retry after a failure finds it and finishes.
    async fn delete_user_locked(
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

    async fn delete_sessions_locked(
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

    /// The file's current token, the raw record and the parsed record.
    ///
    /// Two reads (id → token, token → record), without a lease. A change between them shows
    /// as a token that moved under us, and we read again; a change in progress is read from
    /// its intent; only a missing id, or a token that stays put with no record and no intent,
    /// means there is no file.
    async fn current_file(
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
}

/// File records for the tests of the record codecs (layout 3's `record`, layouts 1 and 2's
/// `compact`).
#[cfg(test)]
mod samples {
    use proptest::prelude::*;

    use crate::disposition::DispositionKind;
    use crate::paths::StoragePath;
    use crate::store::{FileRecord, Visibility};
    use crate::tokens::{FileId, FileToken, UserId};

    /// One record, with a quoted filename and the given grants.
    pub fn record(grants: Vec<UserId>) -> FileRecord {
        let file_id = FileId::generate();
        FileRecord {
            storage_path: StoragePath::for_file(&file_id),
            file_id,
            owner: UserId::parse("alice").unwrap(),
            token: FileToken::generate().unwrap(),
            filename: "report \"Q3\".pdf".into(),
            size: 4096,
            content_type: "application/pdf".into(),
            visibility: Visibility::Authenticated,
            disposition: DispositionKind::Attachment,
            created_at: 1_700_000_000,
            grants,
        }
    }

    /// Any record a writer could store.
    pub fn any_record() -> impl Strategy<Value = FileRecord> {
        (
            ".{0,300}",
            "[a-z]{1,10}/[a-z0-9.+-]{1,80}",
            any::<u64>(),
            any::<i64>(),
            prop_oneof![
                Just(Visibility::Private),
                Just(Visibility::Authenticated),
                Just(Visibility::Public)
            ],
            prop_oneof![
                Just(DispositionKind::Inline),
                Just(DispositionKind::Attachment)
            ],
            proptest::collection::vec("[a-z0-9_]{1,128}", 0..20),
        )
            .prop_map(
                |(filename, content_type, size, created_at, visibility, disposition, grants)| {
                    FileRecord {
                        filename,
                        content_type,
                        size,
                        created_at,
                        visibility,
                        disposition,
                        ..record(grants.iter().map(|g| UserId::parse(g).unwrap()).collect())
                    }
                },
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_version_is_read_from_info() {
        let info = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(redis_version(info), Some((7, 0)));
        assert_eq!(redis_version("redis_version:6.0.9\r\n"), Some((6, 0)));
        assert!(redis_version("redis_version:6.0.9\r\n").unwrap() < OLDEST_REDIS);
        assert!(redis_version("redis_version:6.2.0\r\n").unwrap() >= OLDEST_REDIS);
        assert!(redis_version("redis_version:10.0.0\r\n").unwrap() >= OLDEST_REDIS);
        // A cluster answers with every node's text; the oldest counts.
        let node = |v: &str| {
            redis::Value::BulkString(format!("# Server\r\nredis_version:{v}\r\n").into_bytes())
        };
        let cluster = redis::Value::Map(vec![
            (redis::Value::SimpleString("a:1".into()), node("7.0.15")),
            (redis::Value::SimpleString("b:2".into()), node("6.0.9")),
        ]);
        assert_eq!(oldest_version(&cluster), Some((6, 0)));
        assert_eq!(
            oldest_version(&redis::Value::Array(vec![node("7.2.4"), redis::Value::Nil])),
            Some((7, 2))
        );
        assert_eq!(oldest_version(&redis::Value::Int(7)), None);
        for unreadable in [
            "",
            "# Server\r\n",
            "redis_version:\r\n",
            "redis_version:seven.0\r\n",
        ] {
            assert_eq!(redis_version(unreadable), None, "{unreadable:?}");
        }
    }
}
