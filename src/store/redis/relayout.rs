//! The data step of migrations 2 and 3: rewrites what layouts 1 and 2 left (see `keys`) into
//! the current layout, by `SCAN` on the server or on every cluster master, each key on its own
//! (no two keys are in one script, so it runs unchanged on a cluster). Whichever layout a key
//! is in, it goes straight to the current one, so a layout 1 store is rewritten once.
//!
//! Every step writes the new form before it removes the old one, and removes the old one only
//! if it is still what was copied: the run after a crash (once the migration lock, renewed
//! while a run is alive, has expired) finds the rest to do and redoes nothing harmful. It runs
//! at every `migrate`, also with nothing pending, for keys that old instances wrote after the
//! last one. Instances of this version stay unready until the schema is current, so nothing
//! reads the keyspace half-converted; older instances still serving fail closed on it (a
//! record they look for under its old key is gone, or in a form they cannot parse: 403 or
//! 503).

use futures_util::{StreamExt, TryStreamExt};
use redis::AsyncCommands;

use super::conn::Conn;
use super::lease::{self, Lease};
use super::{RedisStore, compact, record, unavailable};
use crate::ids::{FileId, UserId};
use crate::store::StoreError;
use crate::tokens::FileToken;

/// Keys converted at once per page: enough to fill the pipe to Redis.
const IN_FLIGHT: usize = 64;

#[derive(Clone, Copy, Debug)]
enum Pass {
    /// Layout 1's `file:{id}` strings into the `ids:` buckets.
    V1Ids,
    /// Layout 2's `fids:` buckets (hex) into the `ids:` buckets (bytes).
    V2Ids,
    /// Layout 1's `ufiles:{user}` sets into `files:{user}` hashes.
    V1UserFiles,
    /// Layout 2's `uf:{user}` hashes (hex ids) into `files:{user}` hashes (bytes).
    V2UserFiles,
    /// `ftok:{hex token}` records, JSON objects or arrays, into binary `ft:{token}` records.
    Records,
}

impl RedisStore {
    /// Converts every key of an older layout; returns how many ids, file lists and records
    /// it converted.
    ///
    /// The migration lock `lock` is renewed before every page, so that no second process
    /// converts alongside: a step that finds its old key changed or gone undoes its copy,
    /// which would be wrong if the change were another converter's.
    pub(super) async fn relayout(
        &self,
        conn: &mut Conn,
        lock: &mut Lease,
    ) -> Result<u64, StoreError> {
        let nodes = conn.scan_nodes().await.map_err(unavailable)?;
        let mut converted = 0;
        for (pass, pattern) in [
            (Pass::V1Ids, self.keys.v1_files()),
            (Pass::V2Ids, self.keys.v2_file_ids()),
            (Pass::V1UserFiles, self.keys.v1_user_files()),
            (Pass::V2UserFiles, self.keys.v2_user_files()),
            (Pass::Records, self.keys.v2_file_tokens()),
        ] {
            let before = converted;
            for node in &nodes {
                let mut cursor = 0;
                loop {
                    lease::renew(conn, lock, super::schema::MIGRATION_LOCK).await?;
                    let (next, keys) = conn
                        .scan_page(node, cursor, &pattern)
                        .await
                        .map_err(unavailable)?;
                    let done: Vec<u64> = futures_util::stream::iter(keys)
                        .map(|key| {
                            let conn = conn.clone();
                            async move { self.convert(conn, pass, &key).await }
                        })
                        .buffer_unordered(IN_FLIGHT)
                        .try_collect()
                        .await?;
                    converted += done.iter().sum::<u64>();
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            tracing::info!(
                ?pass,
                converted = converted - before,
                "Relayout: pass done."
            );
        }
        Ok(converted)
    }

    /// Converts one key of an older layout; returns how many entries it converted.
    async fn convert(&self, mut conn: Conn, pass: Pass, key: &str) -> Result<u64, StoreError> {
        let Some(suffix) = self.keys.suffix(key) else {
            return Ok(0);
        };
        let conn = &mut conn;
        match pass {
            Pass::V1Ids => {
                let Ok(id) = FileId::parse(suffix) else {
                    tracing::warn!(key, "Not a file id; left alone.");
                    return Ok(0);
                };
                let token: Option<String> = conn.get(key).await.map_err(unavailable)?;
                let Some(token) = token else { return Ok(0) };
                let Ok(parsed) = FileToken::parse(&token) else {
                    tracing::warn!(key, "Not a file token; left alone.");
                    return Ok(0);
                };
                let _: () = conn
                    .hset(self.keys.file_ids(&id), &id.to_bytes(), &parsed.to_bytes())
                    .await
                    .map_err(unavailable)?;
                let done = self
                    .cas(conn, &self.scripts.cas_del, key, &[&token])
                    .await?;
                Ok(u64::from(done))
            }
            Pass::V2Ids => {
                let old: Vec<(String, String)> = conn.hgetall(key).await.map_err(unavailable)?;
                let mut new = Vec::with_capacity(old.len());
                let mut copied = Vec::with_capacity(old.len() * 2);
                for (id, token) in &old {
                    let (Ok(parsed_id), Ok(parsed_token)) =
                        (FileId::parse(id), FileToken::parse(token))
                    else {
                        tracing::warn!(key, "Not a file id and token; left alone.");
                        continue;
                    };
                    // Every id of a bucket goes to the bucket of the same name.
                    new.push((
                        self.keys.file_ids(&parsed_id),
                        parsed_id.to_bytes(),
                        parsed_token.to_bytes(),
                    ));
                    copied.extend([id.as_str(), token.as_str()]);
                }
                let Some((bucket, _, _)) = new.first() else {
                    return Ok(0);
                };
                let fields: Vec<(&[u8], &[u8])> = new
                    .iter()
                    .map(|(_, id, token)| (id.as_slice(), token.as_slice()))
                    .collect();
                let _: () = conn
                    .hset_multiple(bucket, &fields)
                    .await
                    .map_err(unavailable)?;
                let mut call = self.scripts.hdel_unchanged.key(key);
                call.arg(&copied);
                let removed: u64 = call.invoke_async(conn).await.map_err(unavailable)?;
                Ok(removed)
            }
            Pass::V1UserFiles | Pass::V2UserFiles => {
                let Ok(user) = UserId::parse(suffix) else {
                    tracing::warn!(key, "Not a user id; left alone.");
                    return Ok(0);
                };
                let ids: Vec<String> = match pass {
                    Pass::V1UserFiles => conn.smembers(key).await,
                    _ => conn.hkeys(key).await,
                }
                .map_err(unavailable)?;
                let fields: Vec<(Vec<u8>, &str)> = ids
                    .iter()
                    .filter_map(|i| FileId::parse(i).ok())
                    .map(|i| (i.to_bytes().to_vec(), ""))
                    .collect();
                if fields.is_empty() {
                    return Ok(0);
                }
                let _: () = conn
                    .hset_multiple(self.keys.user_files(&user), &fields)
                    .await
                    .map_err(unavailable)?;
                // Only what was copied: a file added to the old index meanwhile would be lost
                // by a plain DEL.
                let _: i64 = match pass {
                    Pass::V1UserFiles => conn.srem(key, &ids).await,
                    _ => conn.hdel(key, &ids).await,
                }
                .map_err(unavailable)?;
                Ok(fields.len() as u64)
            }
            Pass::Records => {
                let Ok(token) = FileToken::parse(suffix) else {
                    tracing::warn!(key, "Not a file token; left alone.");
                    return Ok(0);
                };
                let new_key = self.keys.file_token(&token);
                for _ in 0..super::READ_ATTEMPTS {
                    let raw: Option<String> = conn.get(key).await.map_err(unavailable)?;
                    let Some(raw) = raw else { return Ok(0) };
                    // One unreadable record must not hold up the upgrade: it is left as it
                    // is, where no decision reads it any more (its token answers 403). The
                    // key holds the token: the log names its fingerprint.
                    let record = match compact::decode_file("ftok", &token, &raw) {
                        Ok(r) => r,
                        Err(e) => {
                            let error = std::error::Error::source(&e).map(ToString::to_string);
                            tracing::warn!(
                                token = %token.fingerprint(),
                                error,
                                "Unreadable layout 1 or 2 file record; left alone."
                            );
                            return Ok(0);
                        }
                    };
                    let _: () = conn
                        .set(&new_key, record::encode(&record)?)
                        .await
                        .map_err(unavailable)?;
                    if self.cas(conn, &self.scripts.cas_del, key, &[&raw]).await? {
                        return Ok(1);
                    }
                    // Changed or deleted since it was read (by an instance of the old version):
                    // the copy goes, so that a deleted file's token never comes back, and the
                    // record is read again.
                    let _: () = conn.del(&new_key).await.map_err(unavailable)?;
                }
                Err(StoreError::Conflict)
            }
        }
    }
}
