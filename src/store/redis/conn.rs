//! Connections to the three Redis deployments mediagate supports, behind one
//! [`ConnectionLike`], so the store's commands and scripts are written once:
//!
//! - one server: `redis://`, `rediss://`, `redis+unix://` (redis-rs `ConnectionManager`);
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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::caching::{CacheConfig, CacheMode};
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, CommandCacheConfig, ConnectionAddr, ErrorKind, IntoConnectionInfo,
    Pipeline, ProtocolVersion, PushInfo, PushKind, RedisError, RedisFuture, ServerErrorKind, Value,
};

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
    /// Most keys kept per connection (LRU).
    pub entries: std::num::NonZeroUsize,
}

impl Cache {
    fn config(&self) -> CacheConfig {
        CacheConfig::new()
            .set_mode(CacheMode::OptIn)
            .set_size(self.entries)
            .set_default_client_ttl(self.max_age)
    }
}

/// The sentinels, and the master name they watch.
pub struct Sentinel {
    /// Asked only to find the master; a mutex because redis-rs needs `&mut` for that.
    client: tokio::sync::Mutex<SentinelClient>,
}

/// A URL that is not one of the forms above, with the reason in words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(pub String);

impl Target {
    /// Parses `url`; nothing is sent.
    pub fn parse(url: &str) -> Result<Self, BadUrl> {
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let (auth, hosts) = split_auth(rest);
            let hosts = hosts.trim_end_matches('/');
            let seeds = host_list(hosts, "redis+cluster")?
                .into_iter()
                .map(|h| format!("redis://{auth}{h}"))
                .collect::<Vec<_>>();
            let client = cluster_client(&seeds, None)?;
            return Ok(Self::of(Kind::Cluster(Box::new(client), seeds)));
        }
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            let (auth, rest) = split_auth(rest);
            let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
            let mut parts = path.trim_end_matches('/').splitn(2, '/');
            let master = parts.next().unwrap_or_default();
            if master.is_empty() {
                return Err(BadUrl(
                    "redis+sentinel URL needs the master's name: redis+sentinel://host:port/NAME"
                        .into(),
                ));
            }
            let mut builder = SentinelClientBuilder::new(
                host_list(hosts, "redis+sentinel")?
                    .into_iter()
                    .map(|h| {
                        let (host, port) = h.rsplit_once(':').unwrap_or((h, "26379"));
                        let port = port.parse::<u16>().map_err(|_| {
                            BadUrl(format!("redis+sentinel URL: bad port in {h:?}"))
                        })?;
                        Ok(ConnectionAddr::Tcp(host.to_owned(), port))
                    })
                    .collect::<Result<Vec<_>, BadUrl>>()?,
                master,
                SentinelServerType::Master,
            )
            .map_err(|e| BadUrl(format!("redis+sentinel URL: {e}")))?;
            if let Some(db) = parts.next() {
                let db = db
                    .parse::<i64>()
                    .map_err(|_| BadUrl(format!("redis+sentinel URL: bad database {db:?}")))?;
                builder = builder.set_client_to_redis_db(db);
            }
            let (user, pass) = credentials(auth);
            if let Some(user) = user {
                builder = builder.set_client_to_redis_username(user);
            }
            if let Some(pass) = pass {
                builder = builder.set_client_to_redis_password(pass);
            }
            let client = builder
                .build()
                .map_err(|e| BadUrl(format!("redis+sentinel URL: {e}")))?;
            return Ok(Self::of(Kind::Sentinel(Arc::new(Sentinel {
                client: tokio::sync::Mutex::new(client),
            }))));
        }
        let client = redis::Client::open(url).map_err(|e| BadUrl(e.to_string()))?;
        Ok(Self::of(Kind::Single(Box::new(client))))
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
            // each failover; Cluster: one per thread).
            kind @ (Kind::Sentinel(_) | Kind::Cluster(..)) => kind,
        };
        Ok(Self {
            kind,
            cache: Some(cache),
        })
    }

    /// A connection that connects on first use and reconnects by itself. Every command is bound
    /// by `timeout`, so a stalled server is an error, never a hang; on one server, all but the
    /// decision's read (see [`Conn::lookup`]).
    pub fn connect_lazy(&self, timeout: Duration) -> Result<Conn, RedisError> {
        Ok(match &self.kind {
            Kind::Single(client) => {
                // No response timeout in redis-rs: `Conn` bounds each command itself, except the
                // decision's read, which the auth listener's deadline already bounds; a second
                // timer on it cost 2 to 6% of a decision.
                let mut config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(None)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500))
                    .set_number_of_retries(2);
                if let Some(cache) = &self.cache {
                    config = config.set_cache_config(cache.config());
                    return Ok(Conn::Cached(
                        ConnectionManager::new_lazy_with_config((**client).clone(), config)?,
                        timeout,
                    ));
                }
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
                        let own = cluster_client(seeds, Some(cache))
                            .map_err(|e| RedisError::from(std::io::Error::other(e.0)))?;
                        Conn::CachedCluster(own.get_pending_async_connection_with_config(config))
                    }
                    None => Conn::Cluster(client.get_pending_async_connection_with_config(config)),
                }
            }
            Kind::Sentinel(sentinel) => Conn::Sentinel(SentinelConn {
                sentinel: sentinel.clone(),
                master: Arc::new(Mutex::new(None)),
                timeout,
                cache: self.cache.as_ref().map(Cache::config),
            }),
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

/// A cluster client on `seeds`, in cached mode with `Some`.
///
/// A node that refuses connections a few times is dropped from the client's map until the next
/// topology refresh, which then finds the promoted replica; by default the client would keep
/// dialling a dead master for ever. In cached mode every node connection has its own copies
/// (redis-rs tags them with the connection's epoch), and a node's disconnection, pushed over
/// RESP3, makes the client reconnect, so a failed master's copies are not served again.
fn cluster_client(seeds: &[String], cache: Option<&Cache>) -> Result<ClusterClient, BadUrl> {
    let mut builder = ClusterClientBuilder::new(seeds.to_vec())
        .max_connection_attempts(std::num::NonZeroUsize::MIN.saturating_add(2));
    if let Some(cache) = cache {
        builder = builder
            .use_protocol(ProtocolVersion::RESP3)
            .cache_config(cache.config());
    }
    builder
        .build()
        .map_err(|e| BadUrl(format!("redis+cluster URL: {e}")))
}

/// The same client speaking RESP3, which cached mode needs for Redis' invalidation pushes.
fn resp3(client: &redis::Client) -> Result<redis::Client, RedisError> {
    let info = client.get_connection_info().clone();
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    redis::Client::open(info.set_redis_settings(settings).into_connection_info()?)
}

/// `user:pass@hosts` → (`user:pass@`, `hosts`).
fn split_auth(rest: &str) -> (&str, &str) {
    match rest.rfind('@') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    }
}

/// `user:pass@` → (user, pass), each absent when empty.
fn credentials(auth: &str) -> (Option<String>, Option<String>) {
    let auth = auth.trim_end_matches('@');
    if auth.is_empty() {
        return (None, None);
    }
    let (user, pass) = auth.split_once(':').unwrap_or(("", auth));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    (
        Some(user).filter(|u| !u.is_empty()).map(decode),
        Some(pass).filter(|p| !p.is_empty()).map(decode),
    )
}

fn host_list<'a>(hosts: &'a str, scheme: &str) -> Result<Vec<&'a str>, BadUrl> {
    let list: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if list.iter().any(|h| h.is_empty() || h.contains('/')) {
        return Err(BadUrl(format!(
            "{scheme} URL needs a comma-separated list of host:port, got {hosts:?}"
        )));
    }
    Ok(list)
}

/// One connection, whatever the deployment. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub enum Conn {
    /// One server, and the bound on each command sent through [`ConnectionLike`].
    Single(ConnectionManager, Duration),
    /// A single server in cached mode: only the decision's read is served from the cache.
    Cached(ConnectionManager, Duration),
    Cluster(ClusterConnection),
    /// A cluster in cached mode: as `Cached`, only the decision's reads use the copies.
    CachedCluster(ClusterConnection),
    Sentinel(SentinelConn),
}

/// The connection to whichever server the sentinels last named master.
#[derive(Clone)]
pub struct SentinelConn {
    sentinel: Arc<Sentinel>,
    /// `None` until first use and after an error that may mean a failover.
    master: Arc<Mutex<Option<Master>>>,
    timeout: Duration,
    /// Cached mode: each master connection keeps its own copies, so a failover, which
    /// replaces the connection, starts from none.
    cache: Option<CacheConfig>,
}

/// A connection to the master, and whether it is still open.
struct Master {
    conn: MultiplexedConnection,
    /// Cleared by redis-rs' disconnection notice, in cached mode (without it, a command on a
    /// closed connection fails, and that failure sends `run` to the sentinels). This is what
    /// keeps a closed connection's copies, which no invalidation reaches any more, from being
    /// served: a cache hit never touches the socket, so no error would tell.
    open: Arc<AtomicBool>,
}

impl SentinelConn {
    async fn master(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        // Boxed: asking the sentinels is a future of over 4 KiB, which every future awaiting
        // this one (the decision's lookup among them) would otherwise be sized for, and moved
        // and allocated at that size on every decision, on every kind of deployment.
        Box::pin(self.find_master()).await
    }

    /// Asks the sentinels for the master and connects to it.
    async fn find_master(&self) -> Result<MultiplexedConnection, RedisError> {
        let resolve = async {
            let mut client = self.sentinel.client.lock().await.async_get_client().await?;
            let mut config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout));
            let open = Arc::new(AtomicBool::new(true));
            if let Some(cache) = &self.cache {
                client = resp3(&client)?;
                // redis-rs passes pushes, its disconnection notice among them, on RESP3 only.
                let flag = open.clone();
                config = config
                    .set_cache_config(*cache)
                    .set_push_sender(move |push: PushInfo| {
                        if push.kind == PushKind::Disconnection {
                            flag.store(false, Ordering::Release);
                        }
                        Ok::<(), std::convert::Infallible>(())
                    });
            }
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await
                .map(|conn| Master { conn, open })
        };
        let master = bounded(self.timeout, resolve).await?;
        let conn = master.conn.clone();
        if let Ok(mut slot) = self.master.lock() {
            *slot = Some(master);
        }
        Ok(conn)
    }

    /// The master connection, unless it has closed.
    fn current(&self) -> Option<MultiplexedConnection> {
        let slot = self.master.lock().ok()?;
        slot.as_ref()
            .filter(|m| m.open.load(Ordering::Acquire))
            .map(|m| m.conn.clone())
    }

    /// Runs `send` on the master. After an error that can mean the master moved (connection
    /// lost or refused, `READONLY` from a demoted master), asks the sentinels again and tries
    /// once more: a request never waits for a second failover, and never goes to a replica.
    /// A lost connection may have delivered the first try, so every write the store makes is
    /// safe to resend: SET, DEL and set commands are idempotent, a lease take recognises its
    /// own lease, a compare-and-swap that already applied reports a conflict (the caller
    /// retries), and the worst left is an audit event or a download counted twice.
    async fn run<T, F, Fut>(&self, mut send: F) -> Result<T, RedisError>
    where
        F: FnMut(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, RedisError>>,
    {
        let mut retried = false;
        loop {
            let result = match self.master().await {
                Ok(conn) => send(conn).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e) if connection_lost(&e) => {
                    if let Ok(mut slot) = self.master.lock() {
                        *slot = None;
                    }
                    if retried {
                        return Err(e);
                    }
                    retried = true;
                }
                other => return other,
            }
        }
    }
}

/// `fut`'s result, or after `bound` the timeout error redis-rs' own response timeout gives.
async fn bounded<T>(
    bound: Duration,
    fut: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(bound, fut)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::from(std::io::ErrorKind::TimedOut).into()))
}

/// An error after which the connection, or the master, must be found again. Timeouts are not
/// among them: the server may be busy, and a timed-out write may yet be applied.
fn connection_lost(e: &RedisError) -> bool {
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
    /// that error, and reconnects for the next one. (The Sentinel connection resends by itself,
    /// and the cluster client retries internally.)
    fn reconnects_silently(&self) -> bool {
        matches!(self, Self::Single(..) | Self::Cached(..))
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
            Self::Cached(c, _) => cached_mget().query_async(c).await,
            Self::CachedCluster(c) => cluster_gets(c, keys, true).await,
            Self::Sentinel(s) if s.cache.is_some() => {
                let mget = cached_mget();
                s.run(|mut c| {
                    let mget = &mget;
                    async move { mget.query_async(&mut c).await }
                })
                .await
            }
            _ => self.get_many(keys).await,
        }
    }

    /// The values of `keys`, in order, in one round trip: one `MGET`, or on a cluster one
    /// `GET` per key sent together. (redis-rs splits a cross-slot `MGET` itself, but after a
    /// node was lost its split answers can come back miscounted for good; seen with 1.8.)
    pub async fn get_many(&mut self, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
        match self {
            Self::Cluster(c) | Self::CachedCluster(c) => cluster_gets(c, keys, false).await,
            _ => mget(keys).query_async(self).await,
        }
    }

    /// Deletes `keys` in one round trip, as [`Conn::get_many`] reads them.
    pub async fn del_many(&mut self, keys: &[String]) -> Result<(), RedisError> {
        match self {
            Self::Cluster(c) | Self::CachedCluster(c) => {
                per_key::<i64, _>(c, keys, |k| {
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

/// One `GET` per key, sent together; from the copies if `cached`.
async fn cluster_gets(
    c: &ClusterConnection,
    keys: &[&[u8]],
    cached: bool,
) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
    per_key(c, keys, |k| {
        let mut get = redis::cmd("GET");
        get.arg(k);
        if cached {
            get.set_cache_config(CommandCacheConfig::new());
        }
        get
    })
    .await
}

/// `command(key)` for each key, sent together, each to the node that holds its key: a
/// multi-key command would span hash slots.
async fn per_key<T: redis::FromRedisValue, K: AsRef<[u8]>>(
    c: &ClusterConnection,
    keys: &[K],
    command: impl Fn(&[u8]) -> Cmd,
) -> Result<Vec<T>, RedisError> {
    futures_util::future::try_join_all(keys.iter().map(|k| {
        let mut c = c.clone();
        let cmd = command(k.as_ref());
        async move { cmd.query_async(&mut c).await }
    }))
    .await
}

/// A server a keyspace scan visits: the one server (`None`), or a cluster master by address.
pub type ScanNode = Option<(String, u16)>;

impl Conn {
    /// Where a `SCAN` of the whole keyspace must run: every master of a cluster, else the one
    /// server this connection talks to.
    pub async fn scan_nodes(&mut self) -> Result<Vec<ScanNode>, RedisError> {
        let (Self::Cluster(c) | Self::CachedCluster(c)) = self else {
            return Ok(vec![None]);
        };
        let slots = c
            .route_command(
                redis::cmd("CLUSTER").arg("SLOTS").clone(),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            )
            .await?;
        let mut masters = Vec::new();
        // Each range: [start, end, [host, port, id…], replicas…].
        for range in redis::from_redis_value::<Vec<Vec<Value>>>(slots)? {
            if let Some(master) = range.get(2) {
                let node: (String, u16) = match master {
                    Value::Array(n) if n.len() >= 2 => (
                        redis::from_redis_value_ref(&n[0])?,
                        redis::from_redis_value_ref(&n[1])?,
                    ),
                    _ => continue,
                };
                if !masters.contains(&Some(node.clone())) {
                    masters.push(Some(node));
                }
            }
        }
        Ok(masters)
    }

    /// One page of `SCAN cursor MATCH pattern` on `node`; a returned cursor of 0 ends it.
    pub async fn scan_page(
        &mut self,
        node: &ScanNode,
        cursor: u64,
        pattern: &str,
    ) -> Result<(u64, Vec<String>), RedisError> {
        let mut scan = redis::cmd("SCAN");
        scan.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000);
        match (self, node) {
            (Self::Cluster(c) | Self::CachedCluster(c), Some((host, port))) => {
                let page = c
                    .route_command(
                        scan,
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        }),
                    )
                    .await?;
                Ok(redis::from_redis_value(page)?)
            }
            (conn, _) => scan.query_async(conn).await,
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c, bound) | Self::Cached(c, bound) => {
                let bound = *bound;
                Box::pin(bounded(bound, c.req_packed_command(cmd)))
            }
            Self::Cluster(c) | Self::CachedCluster(c) => c.req_packed_command(cmd),
            Self::Sentinel(s) => Box::pin(async move {
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
            Self::Single(c, bound) | Self::Cached(c, bound) => {
                let bound = *bound;
                Box::pin(bounded(
                    bound,
                    c.req_packed_commands(pipeline, offset, count),
                ))
            }
            Self::Cluster(c) | Self::CachedCluster(c) => {
                c.req_packed_commands(pipeline, offset, count)
            }
            Self::Sentinel(s) => Box::pin(async move {
                s.run(|mut conn| async move {
                    conn.req_packed_commands(pipeline, offset, count).await
                })
                .await
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c, _) | Self::Cached(c, _) => c.get_db(),
            Self::Cluster(c) | Self::CachedCluster(c) => c.get_db(),
            Self::Sentinel(s) => s.current().map(|c| c.get_db()).unwrap_or(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        for ok in [
            "redis://127.0.0.1:6379/0",
            "redis+unix:///run/redis.sock",
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7000",
            "redis+cluster://:secret@10.0.0.1:7000/",
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster",
            "redis+sentinel://user:p%40ss@10.0.0.1:26379/mymaster/2",
            "redis+sentinel://10.0.0.1/mymaster",
        ] {
            assert!(Target::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_malformed_forms_with_a_reason() {
        for (bad, says) in [
            ("redis+sentinel://10.0.0.1:26379", "master's name"),
            ("redis+sentinel://10.0.0.1:26379/", "master's name"),
            ("redis+sentinel://10.0.0.1:x/m", "bad port"),
            ("redis+sentinel://10.0.0.1:26379/m/x", "bad database"),
            (
                "redis+cluster://10.0.0.1:7000,,10.0.0.2:7000",
                "comma-separated",
            ),
            ("redis+cluster://", "comma-separated"),
        ] {
            match Target::parse(bad) {
                Err(BadUrl(m)) => assert!(m.contains(says), "{bad}: {m}"),
                Ok(_) => panic!("{bad} accepted"),
            }
        }
    }

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(
            credentials("u:p%40ss@"),
            (Some("u".into()), Some("p@ss".into()))
        );
        assert_eq!(credentials(":pw@"), (None, Some("pw".into())));
        assert_eq!(credentials(""), (None, None));
    }
}
