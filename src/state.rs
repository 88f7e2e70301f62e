//! Process-wide state shared by both listeners: the store, the schema gate, draining.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::audit::Audit;
use crate::ids::{FileId, UserId};
use crate::metrics::Metrics;
use crate::model::{Event, EventDecision, EventKind};
use crate::storage::Storage;
use crate::store::{Store, StoreError, migrate};

/// How long a starting or unready server waits for a migration another process is running.
const MIGRATE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the store's schema is one this binary may read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Schema {
    /// Not yet known (the store was unreachable when last asked).
    Unknown = 0,
    /// The schema this binary reads and writes.
    Current = 1,
    /// Older than this binary needs: run `mediagate migrate` (or start with `--migrate`).
    Old = 2,
    /// Newer than this binary: it refuses to read or write.
    TooNew = 3,
}

/// Cheap to read on every decision (one atomic load).
#[derive(Debug, Default)]
pub struct SchemaGate(AtomicU8);

impl SchemaGate {
    /// The gate's state.
    pub fn get(&self) -> Schema {
        match self.0.load(Ordering::Acquire) {
            1 => Schema::Current,
            2 => Schema::Old,
            3 => Schema::TooNew,
            _ => Schema::Unknown,
        }
    }

    /// Sets the gate's state.
    pub fn set(&self, s: Schema) {
        self.0.store(s as u8, Ordering::Release);
    }

    /// Whether decisions and writes may go ahead.
    pub fn is_current(&self) -> bool {
        self.get() == Schema::Current
    }
}

/// Shared by both listeners.
pub struct Shared {
    /// The store both listeners use.
    pub store: Arc<dyn Store>,
    /// Whether the store's schema is one this binary may use.
    pub schema: SchemaGate,
    /// Set on SIGTERM: readiness fails so load balancers stop sending, while in-flight
    /// requests finish.
    pub draining: AtomicBool,
    /// Apply pending migrations by itself (`serve --migrate`).
    pub auto_migrate: bool,
    /// Every metric.
    pub metrics: Arc<Metrics>,
    /// Where audit events are queued.
    pub audit: Audit,
    /// Where the file bytes are.
    pub storage: Storage,
}

/// Builds an audit event stamped with the current time.
pub fn event(
    kind: EventKind,
    user_id: Option<&UserId>,
    file_id: Option<&FileId>,
    decision: Option<EventDecision>,
    client: Option<String>,
) -> Event {
    event_at(
        crate::clock::now_ms(),
        kind,
        user_id,
        file_id,
        decision,
        client,
    )
}

/// [`event`] stamped `at_ms`, for a caller that has read the clock already.
pub fn event_at(
    at_ms: i64,
    kind: EventKind,
    user_id: Option<&UserId>,
    file_id: Option<&FileId>,
    decision: Option<EventDecision>,
    client: Option<String>,
) -> Event {
    Event {
        at_ms,
        kind,
        user_id: user_id.cloned(),
        file_id: file_id.cloned(),
        decision,
        client,
        download: false,
    }
}

impl Shared {
    /// Reads the store's version and updates the gate; migrates a fresh store (and an old one
    /// when `auto_migrate`). Safe to call repeatedly.
    pub async fn reconcile_schema(&self) -> Result<Schema, StoreError> {
        let version = match self.store.schema_version().await {
            Ok(v) => v,
            Err(e) => {
                self.schema.set(Schema::Unknown);
                return Err(e);
            }
        };
        let state = if version == migrate::CURRENT {
            Schema::Current
        } else if version > migrate::CURRENT {
            Schema::TooNew
        } else if version == 0 || self.auto_migrate {
            // Not the long wait of `mediagate migrate`: while another process runs a long
            // migration, this one starts unready and asks again each second.
            self.store.migrate_within(MIGRATE_WAIT).await?;
            Schema::Current
        } else {
            Schema::Old
        };
        self.schema.set(state);
        Ok(state)
    }
}
