//! `[audit]`: how many events are kept, and how they are batched.

use serde::Deserialize;

/// An operator who wants fewer, larger audit writes gets them up to here; beyond it, events
/// would sit in memory long enough for a crash to lose a noticeable stretch of them.
const MAX_AUDIT_FLUSH_MS: u64 = 10_000;

/// `[audit]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Events kept in each half of the audit log (reads, changes); older ones are dropped.
    pub max_events: u64,
    /// Events waiting to be written; beyond it new events are dropped (and counted) rather
    /// than slowing decisions down.
    pub buffer: usize,
    /// How long the first queued event waits for others before a batch is written: events
    /// reach the store (and the events API) this much later, and the store gets one call per
    /// batch instead of one per decision. 0 writes whatever is queued at once.
    pub flush_ms: u64,
}

impl AuditSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.buffer == 0 || self.max_events == 0 {
            problems.push("audit.buffer and audit.max_events: must be positive".into());
        }
        if self.flush_ms > MAX_AUDIT_FLUSH_MS {
            problems.push(format!(
                "audit.flush_ms: at most {MAX_AUDIT_FLUSH_MS} (events wait this long in memory)"
            ));
        }
    }
}
