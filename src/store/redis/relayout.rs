//! Migration 2's data step: rewrites a layout 1 keyspace into layout 2 (see `keys`), by
//! `SCAN` on the server or on every cluster master, each key on its own (no two keys are in
//! one script, so it runs unchanged on a cluster).
//!
//! Every step writes the new form before it removes the old one, and removes the old one only
//! if it is still what was copied: a crash, or a second migrating process after the migration
//! lock expired, finds the rest to do and redoes nothing harmful. Instances of this version
//! stay unready until the schema says 2, so nothing reads the keyspace half-converted; older
//! instances still serving fail closed on a converted record (they cannot parse it: 503).

use futures_util::{StreamExt, TryStreamExt};
use redis::AsyncCommands;

use super::conn::Conn;
use super::{RedisStore, compact, unavailable};
use crate::store::StoreError;
use crate::tokens::{FileId, FileToken, UserId};

/// Keys converted at once per page: enough to fill the pipe to Redis.
const IN_FLIGHT: usize = 64;

#[derive(Clone, Copy, Debug)]
enum Pass {
    /// `file:{id}` strings into the `fids:` buckets.
    Ids,
    /// `ufiles:{user}` sets into `uf:{user}` hashes.
    UserFiles,
    /// JSON-object records into compact arrays.
    Records,
}

impl RedisStore {
    pub(super) async fn relayout(&self, conn: &mut Conn) -> Result<u64, StoreError> {
        let nodes = conn.scan_nodes().await.map_err(unavailable)?;
        let mut converted = 0;
        for (pass, pattern) in [
            (Pass::Ids, self.keys.v1_files()),
            (Pass::UserFiles, self.keys.v1_user_files()),
            (Pass::Records, self.keys.file_tokens()),
        ] {
            for node in &nodes {
                let mut cursor = 0;
                loop {
                    let (next, keys) = conn
                        .scan_page(node, cursor, &pattern)
                        .await
                        .map_err(unavailable)?;
                    let done: Vec<bool> = futures_util::stream::iter(keys)
                        .map(|key| {
                            let conn = conn.clone();
                            async move { self.convert(conn, pass, &key).await }
                        })
                        .buffer_unordered(IN_FLIGHT)
                        .try_collect()
                        .await?;
                    converted += done.iter().filter(|d| **d).count() as u64;
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            tracing::info!(?pass, converted, "Layout 2: pass done.");
        }
        Ok(converted)
    }

    /// Converts one layout 1 key; false if there was nothing to convert.
    async fn convert(&self, mut conn: Conn, pass: Pass, key: &str) -> Result<bool, StoreError> {
        let Some(suffix) = self.keys.suffix(key) else {
            return Ok(false);
        };
        let conn = &mut conn;
        match pass {
            Pass::Ids => {
                let Ok(id) = FileId::parse(suffix) else {
                    tracing::warn!(key, "Not a file id; left alone.");
                    return Ok(false);
                };
                let token: Option<String> = conn.get(key).await.map_err(unavailable)?;
                let Some(token) = token else { return Ok(false) };
                let _: () = conn
                    .hset(self.keys.file_ids(&id), id.as_str(), &token)
                    .await
                    .map_err(unavailable)?;
                self.cas(conn, &self.scripts.cas_del, key, &[&token]).await
            }
            Pass::UserFiles => {
                let Ok(user) = UserId::parse(suffix) else {
                    tracing::warn!(key, "Not a user id; left alone.");
                    return Ok(false);
                };
                let ids: Vec<String> = conn.smembers(key).await.map_err(unavailable)?;
                if ids.is_empty() {
                    return Ok(false);
                }
                let fields: Vec<(&str, &str)> = ids.iter().map(|i| (i.as_str(), "")).collect();
                let target = self.keys.user_files(&user);
                let _: () = conn
                    .hset_multiple(&target, &fields)
                    .await
                    .map_err(unavailable)?;
                // A file added to the set meanwhile would be lost by a plain DEL.
                let _: i64 = conn.srem(key, &ids).await.map_err(unavailable)?;
                Ok(true)
            }
            Pass::Records => {
                let Ok(token) = FileToken::parse(suffix) else {
                    tracing::warn!(key, "Not a file token; left alone.");
                    return Ok(false);
                };
                let raw: Option<String> = conn.get(key).await.map_err(unavailable)?;
                let Some(raw) = raw.filter(|r| compact::is_layout_1(r)) else {
                    return Ok(false);
                };
                // One unreadable record must not hold up the upgrade: it is left as it is,
                // and a decision on it stays a 503, as it was before.
                let record = match compact::decode_file(key, &token, &raw) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(key, error = %e, "Unreadable file record; left alone.");
                        return Ok(false);
                    }
                };
                let new = compact::encode(key, &record)?;
                self.cas(conn, &self.scripts.cas_set, key, &[&raw, &new])
                    .await
            }
        }
    }
}
