//! The Redis store, for several replicas of mediagate sharing one keyspace, on one Redis
//! server, a Sentinel-watched master, or a Redis Cluster (see [`conn`]).
//!
//! One connection per thread, created lazily so that mediagate starts, unready, while Redis is
//! still down, and reconnects by itself. The decision's read is one round trip (`MGET`). Every script
//! touches a single key, so nothing here needs two keys in one hash slot; writes that span
//! keys take the record's lease ([`lease`]) and run as ordered, resumable steps ([`intent`]).

mod audit;
mod compact;
pub mod conn;
mod files;
mod intent;
mod lease;
pub mod record;
mod relayout;
mod schema;
mod scripts;
mod sessions;
mod uploads;
mod users;

use std::cell::RefCell;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use self::conn::{Conn, Target};
use self::scripts::Scripts;
use super::keys::Keys;
use super::{Store, StoreError};
use crate::config::StoreUrl;

/// The Redis store.
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

/// A connection and the thread that made it. `ThreadLocal` hands an exited thread's slot to
/// the next new thread, and that connection's driver died with the old thread's runtime (an
/// actix worker's, at shutdown): without the check, the audit log's last batch, written after
/// the workers stop, failed on a dead connection.
struct ThreadConn {
    thread: std::thread::ThreadId,
    conn: Conn,
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
        url: &StoreUrl,
        prefix: &str,
        timeout: Duration,
        cache: Option<conn::Cache>,
    ) -> Result<Self, StoreError> {
        let target = Target::new(url)
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
}

#[async_trait::async_trait]
impl Store for RedisStore {
    fn kind(&self) -> &'static str {
        self.target.kind()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.ping().await.map_err(unavailable)
    }
}

/// File records for the tests of the record codecs (layout 3's `record`, layouts 1 and 2's
/// `compact`).
#[cfg(test)]
mod samples {
    use proptest::prelude::*;

    use crate::disposition::DispositionKind;
    use crate::ids::{FileId, UserId};
    use crate::model::{FileRecord, Visibility};
    use crate::paths::StoragePath;
    use crate::tokens::FileToken;

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
