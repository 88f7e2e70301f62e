//! The audit log's two tables, `events` (reads) and `changes` (admin changes), each capped on
//! its own (see `store::audit_log`).

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition, TableError};

use super::{CHANGES, DOWNLOADS, EVENTS, EmbeddedStore, err};
use crate::model::Event;
use crate::store::{AuditLog, AuditStore, Logged, Position, StoreError, decode, encode};

#[async_trait::async_trait]
impl AuditStore for EmbeddedStore {
    async fn append_events(&self, events: &[Event], max_len: u64) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let events = events.to_vec();
        self.write(move |txn| {
            for log in [AuditLog::Reads, AuditLog::Changes] {
                let mut part = events
                    .iter()
                    .filter(|e| AuditLog::of(e.kind) == log)
                    .peekable();
                if part.peek().is_none() {
                    continue;
                }
                let mut table = txn.open_table(audit_table(log)).map_err(err)?;
                let mut next = table
                    .last()
                    .map_err(err)?
                    .map(|(k, _)| k.value() + 1)
                    .unwrap_or(1);
                for e in part {
                    table
                        .insert(next, encode("events", e)?.as_str())
                        .map_err(err)?;
                    next += 1;
                }
                // Keep the newest `max_len`.
                let len = table.len().map_err(err)?;
                if len > max_len {
                    let cut = next - max_len;
                    table.retain_in(..cut, |_, _| false).map_err(err)?;
                }
            }
            let mut downloads = txn.open_table(DOWNLOADS).map_err(err)?;
            for (file, n) in crate::store::download_counts(&events) {
                let current = downloads
                    .get(file.as_str())
                    .map_err(err)?
                    .map(|v| v.value())
                    .unwrap_or(0);
                downloads.insert(file.as_str(), current + n).map_err(err)?;
            }
            Ok(())
        })
        .await
    }

    async fn audit_page(
        &self,
        log: AuditLog,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<Logged>, StoreError> {
        let start = after.map_or(0, |(n, _)| n);
        let txn = self.read()?;
        let table = match txn.open_table(audit_table(log)) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(err(e)),
        };
        let mut out = Vec::new();
        for entry in table
            .range(start.saturating_add(1)..)
            .map_err(err)?
            .take(limit)
        {
            let (k, v) = entry.map_err(err)?;
            out.push(((k.value(), 0), decode("events", v.value())?));
        }
        Ok(out)
    }
}

pub(super) fn audit_table(log: AuditLog) -> TableDefinition<'static, u64, &'static str> {
    match log {
        AuditLog::Reads => EVENTS,
        AuditLog::Changes => CHANGES,
    }
}
