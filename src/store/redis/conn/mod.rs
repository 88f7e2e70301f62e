//! Connections to the three Redis deployments mediagate supports, behind one
//! [`ConnectionLike`], so the store's commands and scripts are written once:
//!
//! - one server: `redis://`, `rediss://`, `redis+unix://` (redis-rs `ConnectionManager`; in
//!   cached mode the master connection of [`sentinel`], with the server as its fixed master);
//! - Redis Cluster: `redis+cluster://[user:pass@]host:port[,host:port…]`, any reachable
//!   seeds; the client learns the slot map and follows failovers (redis-rs cluster-async);
//! - Sentinel: `redis+sentinel://[user:pass@]host:port[,host:port…]/master-name[/db]`: the
//!   sentinels are asked for the current master, and asked again (and the command sent once
//!   more) after a connection error or a `READONLY` answer from a demoted master, so a
//!   failover costs the requests made while no master exists, which the auth listener answers
//!   with 503, never with a stale grant.
//!
//! Every connection is made lazily: mediagate starts, unready, while Redis is down. Cached
//! mode ([`Cache`]) works on all three.
//!
//! [`target`] turns `store.url` into clients; [`sentinel`] and [`cluster`] hold what is
//! particular to those deployments.

mod cluster;
mod heartbeat;
mod memo;
mod sentinel;
mod target;

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{
    Cmd, CommandCacheConfig, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind, Value,
};

pub use cluster::ScanNode;
use sentinel::MasterConn;
pub use target::{BadUrl, Cache, Target};

/// One connection, whatever the deployment. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub enum Conn {
    /// One server, and the bound on each command sent through [`ConnectionLike`].
    Single(ConnectionManager, Duration),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
    /// A cluster in cached mode: only the decision's reads use the copies.
    CachedCluster(ClusterConnection),
    /// The master the sentinels name, or in cached mode the one server: in cached mode only the
    /// decision's read is served from the copies (its memo first), and only while the
    /// heartbeat proves that invalidations arrive.
    Master(MasterConn),
}

/// `fut`'s result, or after `bound` the timeout error redis-rs' own response timeout gives.
pub(super) async fn bounded<T>(
    bound: Duration,
    fut: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(bound, fut)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))
}

/// An error after which the connection, or the master, must be found again. Timeouts are not
/// among them: the server may be busy, and a timed-out write may yet be applied.
pub(super) fn connection_lost(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
        )
}

impl Conn {
    /// The decision's read, once more if the first attempt found the connection lost: each
    /// worker thread has its own connection, and the first request on a thread after an outage
    /// would otherwise be the one that notices, and get 503 although Redis is back. Reads are
    /// safe to repeat. On one server nothing here bounds it: the caller does (the auth
    /// listener's deadline covers both attempts), and a timer of ours would be a second one.
    pub async fn lookup(&mut self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
        match self.lookup_once(keys).await {
            Err(e) if self.reconnects_silently() && connection_lost(&e) => {
                self.lookup_once(keys).await
            }
            done => done,
        }
    }

    /// A connection manager that answers the request which finds its connection lost with
    /// that error, and reconnects for the next one. (The master connection, behind Sentinel or
    /// in cached mode, resends by itself, and the cluster client retries internally.)
    fn reconnects_silently(&self) -> bool {
        matches!(self, Self::Single(..))
    }

    /// A `PING`, repeated as [`Conn::lookup`] is.
    pub async fn ping(&mut self) -> Result<(), RedisError> {
        let ping = redis::cmd("PING");
        match ping.query_async::<String>(&mut *self).await {
            Err(e) if self.reconnects_silently() && connection_lost(&e) => {
                ping.query_async::<String>(self).await.map(|_| ())
            }
            done => done.map(|_| ()),
        }
    }

    /// [`Conn::get_many`], served from the cache in cached mode.
    async fn lookup_once(&mut self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
        let cached_mget = || {
            let mut mget = mget(keys);
            mget.set_cache_config(CommandCacheConfig::new());
            mget
        };
        match self {
            // Straight to the connection, past the bound of `ConnectionLike for Conn`: the
            // caller bounds the decision.
            Self::Single(c, _) => mget(keys).query_async(c).await,
            Self::CachedCluster(c) => cluster::gets(c, keys, true).await,
            Self::Master(s) if s.live.as_ref().is_some_and(|l| l.fresh()) => {
                if let Some(values) = s.memo.as_ref().and_then(|m| m.get(keys)) {
                    return Ok(values);
                }
                let ticket = s.memo.as_ref().map(|m| m.ticket());
                let mget = cached_mget();
                let read = s
                    .run(|mut c| {
                        let mget = &mget;
                        async move { mget.query_async(&mut c).await }
                    })
                    .await;
                if let (Some(memo), Some(ticket)) = (&s.memo, ticket) {
                    memo.keep(keys, ticket, &read);
                }
                read
            }
            _ => self.get_many(keys).await,
        }
    }

    /// The values of `keys`, in order, in one round trip: one `MGET`, or on a cluster one
    /// `GET` per key sent together. (redis-rs splits a cross-slot `MGET` itself, but after a
    /// node was lost its split answers can come back miscounted for good; seen with 1.8.)
    pub async fn get_many(&mut self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
        match self {
            Self::Cluster(c) | Self::CachedCluster(c) => cluster::gets(c, keys, false).await,
            _ => mget(keys).query_async(self).await,
        }
    }

    /// Deletes `keys` in one round trip, as [`Conn::get_many`] reads them.
    pub async fn del_many(&mut self, keys: &[String]) -> Result<(), RedisError> {
        match self {
            Self::Cluster(c) | Self::CachedCluster(c) => {
                cluster::per_key::<i64, _>(c, keys, |k| {
                    let mut del = redis::cmd("DEL");
                    del.arg(k);
                    del
                })
                .await?;
                Ok(())
            }
            _ => redis::cmd("DEL").arg(keys).query_async(self).await,
        }
    }
}

/// `MGET keys`, sized once: the decision sends it every time.
fn mget(keys: &[&[u8]]) -> Cmd {
    let mut mget = Cmd::with_capacity(
        1 + keys.len(),
        4 + keys.iter().map(|k| k.len()).sum::<usize>(),
    );
    mget.arg("MGET").arg(keys);
    mget
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c, bound) => Box::pin(bounded(*bound, c.req_packed_command(cmd))),
            Self::Cluster(c) | Self::CachedCluster(c) => c.req_packed_command(cmd),
            Self::Master(s) => Box::pin(async move {
                s.run(|mut conn| async move { conn.req_packed_command(cmd).await })
                    .await
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c, bound) => Box::pin(bounded(
                *bound,
                c.req_packed_commands(pipeline, offset, count),
            )),
            Self::Cluster(c) | Self::CachedCluster(c) => {
                c.req_packed_commands(pipeline, offset, count)
            }
            Self::Master(s) => Box::pin(async move {
                s.run(|mut conn| async move {
                    conn.req_packed_commands(pipeline, offset, count).await
                })
                .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c, _) => c.get_db(),
            Self::Cluster(c) | Self::CachedCluster(c) => c.get_db(),
            Self::Master(s) => s.current().map(|c| c.get_db()).unwrap_or(0),
        }
    }
}
