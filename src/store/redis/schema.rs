//! The schema version, migrations under the migration lock, and the server version check.

use std::sync::atomic::Ordering;
use std::time::Duration;

use redis::{AsyncCommands, Script};

use super::conn::Conn;
use super::lease::{self, Lease};
use super::{RedisStore, unavailable};
use crate::store::SchemaStore;
use crate::store::StoreError;
use crate::store::migrate;

/// How long a migration lock is held before another process may take over a crashed run.
pub(super) const MIGRATION_LOCK: Duration = Duration::from_secs(30);

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

#[async_trait::async_trait]
impl SchemaStore for RedisStore {
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
}

impl RedisStore {
    /// Applies the pending migrations under the migration lock `lock`, renewed while the
    /// data step runs.
    pub(super) async fn apply_pending(
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

    pub(super) async fn version_on(&self, conn: &mut Conn) -> Result<u32, StoreError> {
        let v: Option<u32> = conn.get(self.keys.schema()).await.map_err(unavailable)?;
        Ok(v.unwrap_or(0))
    }

    /// Says once, in words, that a server is too old for the audit stream: there, every batch
    /// would fail, and each failure's log line carries only Redis' raw script error. Decisions
    /// and the admin API work on it all the same, so it is a warning, not a refusal to start.
    /// Asked again at the next schema check if Redis could not be reached.
    pub(super) async fn check_server_version(&self) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn the_server_version_is_read_from_info() {
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
