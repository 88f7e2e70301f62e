//! Redis behind Sentinel: the sentinels are asked for the current master, and asked again
//! (and the command sent once more) after a connection error or a `READONLY` answer from a
//! demoted master, so a failover costs the requests made while no master exists, which the
//! auth listener answers with 503, never with a stale grant.
//!
//! The same connection serves cached mode on one server, with the server as its fixed master:
//! it is a plain multiplexed connection, whose pushes (invalidations, its end) reach cached
//! mode's memo inside the connection's own task, before any later reply is delivered. (redis-rs'
//! `ConnectionManager` hands pushes to another task, so a decision could read a memo that an
//! invalidation already received had not yet dropped.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::caching::CacheConfig;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{AsyncConnectionConfig, ConnectionAddr, PushInfo, PushKind, RedisError};

use super::heartbeat::Liveness;
use super::memo::Memo;
use super::target::{BadUrl, resp3};
use super::{bounded, connection_lost};
use crate::config::SentinelUrl;

/// The sentinels, and the master name they watch.
pub struct Sentinel {
    /// Asked only to find the master; a mutex because redis-rs needs `&mut` for that.
    client: tokio::sync::Mutex<SentinelClient>,
}

impl Sentinel {
    /// The sentinels of a parsed URL; nothing is sent.
    pub fn new(url: &SentinelUrl) -> Result<Self, BadUrl> {
        let bad = |e: RedisError| BadUrl(format!("redis+sentinel URL: {e}"));
        let mut builder = SentinelClientBuilder::new(
            url.sentinels
                .iter()
                .map(|(host, port)| ConnectionAddr::Tcp(host.clone(), *port)),
            url.master.clone(),
            SentinelServerType::Master,
        )
        .map_err(bad)?;
        if let Some(db) = url.db {
            builder = builder.set_client_to_redis_db(db);
        }
        if let Some(user) = &url.user {
            builder = builder.set_client_to_redis_username(user.clone());
        }
        if let Some(pass) = &url.password {
            builder = builder.set_client_to_redis_password(pass.clone());
        }
        Ok(Self {
            client: tokio::sync::Mutex::new(builder.build().map_err(bad)?),
        })
    }
}

/// Where a [`MasterConn`] connects.
pub enum Locate {
    /// To whichever server the sentinels name master.
    Sentinels(Arc<Sentinel>),
    /// To the one server of the URL (cached mode on one server).
    Fixed(Box<redis::Client>),
}

/// The connection to the master: the server the sentinels last named, or the one server.
#[derive(Clone)]
pub struct MasterConn {
    pub(super) locate: Arc<Locate>,
    /// `None` until first use and after an error that may mean a failover.
    pub(super) master: Arc<Mutex<Option<Master>>>,
    pub(super) timeout: Duration,
    /// Cached mode: each master connection keeps its own copies, so a failover, which
    /// replaces the connection, starts from none.
    pub(super) cache: Option<CacheConfig>,
    /// Cached mode: whether the heartbeat has lately proven that invalidations arrive; the
    /// copies are used only then.
    pub(super) live: Option<Arc<Liveness>>,
    /// Cached mode: the memo of whole reads, dropped whenever the master connection is
    /// replaced or receives an invalidation.
    pub(super) memo: Option<Arc<Memo>>,
}

/// A connection to the master, and whether it is still open.
pub(super) struct Master {
    conn: MultiplexedConnection,
    /// Cleared by redis-rs' disconnection notice, in cached mode (without it, a command on a
    /// closed connection fails, and that failure sends `run` to the sentinels). This is what
    /// keeps a closed connection's copies, which no invalidation reaches any more, from being
    /// served: a cache hit never touches the socket, so no error would tell.
    open: Arc<AtomicBool>,
}

impl MasterConn {
    async fn master(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(conn) = self.current() {
            return Ok(conn);
        }
        // Boxed: asking the sentinels is a future of over 4 KiB, which every future awaiting
        // this one (the decision's lookup among them) would otherwise be sized for, and moved
        // and allocated at that size on every decision, on every kind of deployment.
        Box::pin(self.find_master()).await
    }

    /// Asks the sentinels for the master (if there are sentinels) and connects to it.
    async fn find_master(&self) -> Result<MultiplexedConnection, RedisError> {
        let resolve = async {
            let mut client = match &*self.locate {
                Locate::Sentinels(s) => s.client.lock().await.async_get_client().await?,
                Locate::Fixed(client) => (**client).clone(),
            };
            let mut config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout));
            let open = Arc::new(AtomicBool::new(true));
            if let Some(cache) = &self.cache {
                client = resp3(&client)?;
                // redis-rs passes pushes, its disconnection notice among them, on RESP3 only.
                let flag = open.clone();
                let memo = self.memo.clone();
                config = config
                    .set_cache_config(*cache)
                    .set_push_sender(move |push: PushInfo| {
                        if push.kind == PushKind::Disconnection {
                            flag.store(false, Ordering::Release);
                        }
                        if let Some(memo) = &memo
                            && matches!(push.kind, PushKind::Invalidate | PushKind::Disconnection)
                        {
                            memo.drop_all();
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
        // The new connection tracks none of the keys the memos were read from.
        if let Some(memo) = &self.memo {
            memo.drop_all();
        }
        Ok(conn)
    }

    /// A `PING` to the master, for the heartbeat.
    pub(super) async fn ping(&self) -> Result<(), RedisError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }

    /// The master connection, unless it has closed.
    pub(super) fn current(&self) -> Option<MultiplexedConnection> {
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
    pub(super) async fn run<T, F, Fut>(&self, mut send: F) -> Result<T, RedisError>
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
                    if let Some(memo) = &self.memo {
                        memo.drop_all();
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
