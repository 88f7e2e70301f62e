//! Redis Cluster: `redis+cluster://[user:pass@]host:port[,host:port…]`, any reachable seeds;
//! the client learns the slot map and follows failovers (redis-rs cluster-async). Multi-key
//! commands would span hash slots, so they go out as one command per key, sent together.

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, CommandCacheConfig, ProtocolVersion, RedisError, Value};

use super::Conn;
use super::target::{BadUrl, Cache};

/// A cluster client on `seeds`, in cached mode with `Some`.
///
/// A node that refuses connections a few times is dropped from the client's map until the next
/// topology refresh, which then finds the promoted replica; by default the client would keep
/// dialling a dead master for ever. In cached mode every node connection has its own copies
/// (redis-rs tags them with the connection's epoch), and a node's disconnection, pushed over
/// RESP3, makes the client reconnect, so a failed master's copies are not served again.
pub(super) fn client(seeds: &[String], cache: Option<&Cache>) -> Result<ClusterClient, BadUrl> {
    let mut builder = ClusterClientBuilder::new(seeds.to_vec())
        .max_connection_attempts(std::num::NonZeroUsize::MIN.saturating_add(2));
    if let Some(cache) = cache {
        builder = builder
            .use_protocol(ProtocolVersion::RESP3)
            .cache_config(cache.unproven_config());
    }
    builder
        .build()
        .map_err(|e| BadUrl(format!("redis+cluster URL: {e}")))
}

/// One `GET` per key, sent together; from the copies if `cached`.
pub(super) async fn gets(
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
pub(super) async fn per_key<T: redis::FromRedisValue, K: AsRef<[u8]>>(
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
