//! What `store.url` names, as redis-rs clients: one server, a cluster, or sentinels; and
//! cached mode's settings. Connections are made from it lazily, per thread.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::caching::{CacheConfig, CacheMode};
use redis::cluster::ClusterClient;
use redis::cluster::ClusterConfig;
use redis::{IntoConnectionInfo, ProtocolVersion, RedisError};

use super::heartbeat::{self, Liveness};
use super::memo::Memo;
use super::sentinel::{Locate, MasterConn, Sentinel};
use super::{Conn, cluster};
use crate::config::StoreUrl;

/// What a `store.url` names, checked without connecting.
pub struct Target {
    kind: Kind,
    cache: Option<Cache>,
}

enum Kind {
    Single(Box<redis::Client>),
    /// The client, and the seeds it was built from (cached mode builds one per thread).
    Cluster(Box<ClusterClient>, Vec<String>),
    Sentinel(Arc<Sentinel>),
}

/// Cached mode: the decision's reads are served from a per-connection copy that Redis keeps
/// honest (RESP3 client-side caching: Redis tracks the keys a connection read and pushes an
/// invalidation when any of them changes or expires). A reconnection drops every copy, since
/// invalidations may have been missed while the connection was down.
#[derive(Debug, Clone, Copy)]
pub struct Cache {
    /// A copy is never used past this age, invalidated or not.
    pub max_age: Duration,
    /// The most a copy may lag a change when invalidations stop arriving: on one server and
    /// behind Sentinel a heartbeat proves the connection live ([`super::heartbeat`]); on a
    /// cluster, whose copies sit on many node connections, it caps the copies' age instead.
    pub staleness: Duration,
    /// Most keys kept per connection (LRU).
    pub entries: std::num::NonZeroUsize,
}

impl Cache {
    /// The copies' settings where a heartbeat bounds staleness.
    pub(super) fn config(&self) -> CacheConfig {
        self.config_for(self.max_age)
    }

    /// The copies' settings where nothing but their age bounds staleness.
    pub(super) fn unproven_config(&self) -> CacheConfig {
        self.config_for(self.max_age.min(self.staleness))
    }

    /// An empty memo of whole reads, as many as the copies and as long-lived.
    pub(super) fn memo(&self) -> Memo {
        Memo::new(self.entries, self.max_age)
    }

    fn config_for(&self, ttl: Duration) -> CacheConfig {
        CacheConfig::new()
            .set_mode(CacheMode::OptIn)
            .set_size(self.entries)
            .set_default_client_ttl(ttl)
    }
}

/// A URL that is not one of the forms above, with the reason in words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(pub String);

impl Target {
    /// The clients for a parsed `store.url` (not an embedded one); nothing is sent.
    pub fn new(url: &StoreUrl) -> Result<Self, BadUrl> {
        let kind = match url {
            StoreUrl::Single(url) => Kind::Single(Box::new(
                redis::Client::open(url.as_str()).map_err(|e| BadUrl(e.to_string()))?,
            )),
            StoreUrl::Cluster { seeds } => {
                Kind::Cluster(Box::new(cluster::client(seeds, None)?), seeds.clone())
            }
            StoreUrl::Sentinel(s) => Kind::Sentinel(Arc::new(Sentinel::new(s)?)),
            StoreUrl::Embedded(_) => {
                return Err(BadUrl("an embedded store is not a Redis server".into()));
            }
        };
        Ok(Self::of(kind))
    }

    fn of(kind: Kind) -> Self {
        Self { kind, cache: None }
    }

    /// The same target in cached mode (with `Some`), which needs RESP3.
    pub fn cached(self, cache: Option<Cache>) -> Result<Self, BadUrl> {
        let Some(cache) = cache else { return Ok(self) };
        let bad = |e: RedisError| BadUrl(format!("cached mode: {e}"));
        let kind = match self.kind {
            Kind::Single(client) => Kind::Single(Box::new(resp3(&client).map_err(bad)?)),
            // These make their cached clients per connection, in `connect_lazy` (Sentinel: at
            // each failover; Cluster: one per thread). One server's is made here, so that a URL
            // that cannot speak RESP3 stops start-up.
            kind @ (Kind::Sentinel(_) | Kind::Cluster(..)) => kind,
        };
        Ok(Self {
            kind,
            cache: Some(cache),
        })
    }

    /// A connection that connects on first use and reconnects by itself. Every command is bound
    /// by `timeout`, so a stalled server is an error, never a hang; on one server outside
    /// cached mode, all but the decision's read (see [`Conn::lookup`]).
    pub fn connect_lazy(&self, timeout: Duration) -> Result<Conn, RedisError> {
        Ok(match &self.kind {
            // Cached mode needs each push handled inside the connection's own task, which
            // `ConnectionManager` does not do (see `sentinel`): the server is a fixed master.
            Kind::Single(client) if self.cache.is_some() => {
                self.master(Locate::Fixed(client.clone()), timeout)
            }
            Kind::Single(client) => {
                // No response timeout in redis-rs: `Conn` bounds each command itself, except the
                // decision's read, which the auth listener's deadline already bounds; a second
                // timer on it cost 2 to 6% of a decision.
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(None)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500))
                    .set_number_of_retries(2);
                Conn::Single(
                    ConnectionManager::new_lazy_with_config((**client).clone(), config)?,
                    timeout,
                )
            }
            Kind::Cluster(client, seeds) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                match &self.cache {
                    // A client's node connections share its copies, each under its own epoch,
                    // so threads sharing one client would keep replacing each other's copies:
                    // each thread gets a client of its own, as it gets a connection elsewhere.
                    Some(cache) => {
                        let own = cluster::client(seeds, Some(cache))
                            .map_err(|e| RedisError::from(std::io::Error::other(e.0)))?;
                        Conn::CachedCluster(own.get_pending_async_connection_with_config(config))
                    }
                    None => Conn::Cluster(client.get_pending_async_connection_with_config(config)),
                }
            }
            Kind::Sentinel(sentinel) => self.master(Locate::Sentinels(sentinel.clone()), timeout),
        })
    }

    /// A connection to the master `locate` finds, connected on first use; in cached mode with
    /// its heartbeat and its memo.
    fn master(&self, locate: Locate, timeout: Duration) -> Conn {
        let conn = MasterConn {
            locate: Arc::new(locate),
            master: Arc::new(Mutex::new(None)),
            timeout,
            cache: self.cache.as_ref().map(Cache::config),
            live: None,
            memo: self.cache.as_ref().map(|c| Arc::new(c.memo())),
        };
        let Some(cache) = &self.cache else {
            return Conn::Master(conn);
        };
        let live = Liveness::new(cache.staleness);
        // The heartbeat's clone holds no `live`, so that it stops with the decisions'
        // connection.
        let beating = conn.clone();
        heartbeat::spawn(&live, move || {
            let beating = beating.clone();
            async move { beating.ping().await }
        });
        Conn::Master(MasterConn {
            live: Some(live),
            ..conn
        })
    }

    /// `"redis"`, `"redis-cluster"` or `"redis-sentinel"`, for logs and health output.
    pub fn kind(&self) -> &'static str {
        match (&self.kind, self.cache.is_some()) {
            (Kind::Single(_), false) => "redis",
            (Kind::Single(_), true) => "redis-cached",
            (Kind::Cluster(..), false) => "redis-cluster",
            (Kind::Cluster(..), true) => "redis-cluster-cached",
            (Kind::Sentinel(_), false) => "redis-sentinel",
            (Kind::Sentinel(_), true) => "redis-sentinel-cached",
        }
    }
}

/// The same client speaking RESP3, which cached mode needs for Redis' invalidation pushes.
pub(super) fn resp3(client: &redis::Client) -> Result<redis::Client, RedisError> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(settings).into_connection_info()?)
}
