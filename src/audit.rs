//! The audit log: every read decision and every change made through the admin API.
//!
//! Recording must never slow a decision or fail it: `record` is a non-blocking channel send,
//! and a background task writes batches to the store (a capped Redis stream, or a capped
//! table in the embedded store) together with the per-file download counters. When the
//! buffer is full, events are dropped and counted in `mediagate_audit_dropped_total`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::AuditSettings;
use crate::metrics::Metrics;
use crate::model::Event;
use crate::store::Store;

/// Most events written in one store call.
const BATCH: usize = 512;

/// The sending side, shared by every worker.
pub struct Audit {
    tx: mpsc::Sender<Event>,
    stop: watch::Sender<bool>,
    metrics: Arc<Metrics>,
}

/// The writer task; `finish` flushes what is buffered and waits for it.
pub struct AuditWriter {
    handle: JoinHandle<()>,
}

impl Audit {
    /// Starts the writer on the current runtime.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        settings: &AuditSettings,
    ) -> (Self, AuditWriter) {
        let (tx, rx) = mpsc::channel(settings.buffer);
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(write_batches(
            rx,
            stopped,
            store,
            Arc::clone(&metrics),
            settings.max_events,
            Duration::from_millis(settings.flush_ms),
        ));
        (Self { tx, stop, metrics }, AuditWriter { handle })
    }

    /// Queues an event without waiting; if the buffer is full it is dropped and counted.
    pub fn record(&self, event: Event) {
        if self.tx.try_send(event).is_err() {
            self.metrics.audit_dropped.inc();
        }
    }

    /// Asks the writer to flush and stop.
    pub fn close(&self) {
        let _ = self.stop.send(true);
    }
}

impl AuditWriter {
    /// Waits (bounded) for the writer to flush after `Audit::close`.
    pub async fn finish(self, patience: Duration) {
        let _ = tokio::time::timeout(patience, self.handle).await;
    }
}

async fn write_batches(
    mut rx: mpsc::Receiver<Event>,
    mut stopped: watch::Receiver<bool>,
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    max_events: u64,
    linger: Duration,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut stopping = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n == 0,
            _ = stopped.changed() => true,
        };
        // Let a batch gather before writing it. Written one by one, as they arrive, every
        // decision paid for waking this task and for a store round trip of its own; while
        // this task sleeps on a timer, queuing an event wakes nobody.
        if !stopping && batch.len() < BATCH && !linger.is_zero() {
            stopping = tokio::select! {
                () = tokio::time::sleep(linger) => false,
                _ = stopped.changed() => true,
            };
        }
        let most = if stopping { BATCH * 16 } else { BATCH };
        while batch.len() < most {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.append_events(&batch, max_events).await {
                metrics.audit_write_errors.inc();
                tracing::warn!(error = %e, events = batch.len(), "Could not write audit events; they are lost.");
            }
            batch.clear();
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;
    use crate::state::event;
    use crate::store::embedded::EmbeddedStore;

    fn settings(buffer: usize, flush_ms: u64) -> AuditSettings {
        AuditSettings {
            max_events: 100_000,
            buffer,
            flush_ms,
        }
    }

    async fn stored(store: &dyn Store) -> usize {
        store.events(None, 100_000).await.unwrap().len()
    }

    // Every thread's events reach the store, however many threads record at once, and a close
    // writes what was still buffered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_from_every_thread_are_written() {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory().unwrap());
        let metrics = Arc::new(Metrics::new().unwrap());
        let (audit, writer) = Audit::start(Arc::clone(&store), metrics, &settings(1000, 5));
        let audit = Arc::new(audit);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let audit = Arc::clone(&audit);
                std::thread::spawn(move || {
                    for _ in 0..250 {
                        audit.record(event(EventKind::Logout, None, None, None, None));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // They are written with no close to flush them: the first event woke the writer...
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while stored(&*store).await < 1000 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(stored(&*store).await, 1000);
        // ...and what is buffered at close is written before `finish` returns.
        for _ in 0..10 {
            audit.record(event(EventKind::Logout, None, None, None, None));
        }
        audit.close();
        writer.finish(Duration::from_secs(5)).await;
        assert_eq!(stored(&*store).await, 1010);
    }

    // A full buffer drops, counts, and never blocks. On this one-thread runtime the writer
    // cannot take anything out of the buffer until the test awaits.
    #[tokio::test]
    async fn a_full_buffer_drops_and_counts() {
        let store: Arc<dyn Store> = Arc::new(EmbeddedStore::in_memory().unwrap());
        let metrics = Arc::new(Metrics::new().unwrap());
        let (audit, writer) = Audit::start(
            Arc::clone(&store),
            Arc::clone(&metrics),
            &settings(3, 60_000),
        );
        for _ in 0..5 {
            audit.record(event(EventKind::Logout, None, None, None, None));
        }
        assert_eq!(metrics.audit_dropped.get(), 2);
        audit.close();
        writer.finish(Duration::from_secs(5)).await;
        assert_eq!(stored(&*store).await, 3);
    }
}
