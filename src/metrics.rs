//! Prometheus metrics, served as text on the admin listener's `/metrics`.
//!
//! Labels are bounded: decision outcomes are four fixed words, admin routes are the route
//! patterns (`/v1/files/{file_id}`), never the concrete path.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};

/// How a decision ended: the `outcome` label of `mediagate_decisions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200.
    Allow = 0,
    /// 401.
    Unauthorized = 1,
    /// 403.
    Forbidden = 2,
    /// 503: the decision could not be made.
    Unavailable = 3,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Allow,
        Outcome::Unauthorized,
        Outcome::Forbidden,
        Outcome::Unavailable,
    ];

    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::Unavailable => "unavailable",
        }
    }
}

/// Why a request was refused before it named a file: the `reason` label of
/// `mediagate_refused_total`. Such refusals are counted, not audited, so that no amount of
/// junk traffic pushes real events out of the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a path of the one accepted form (or not visible ASCII).
    BadPath = 0,
    /// Not GET or HEAD.
    Method = 1,
    /// Tokens and name that name no file.
    UnknownFile = 2,
}

impl Refusal {
    const ALL: [Refusal; 3] = [Refusal::BadPath, Refusal::Method, Refusal::UnknownFile];

    fn label(self) -> &'static str {
        match self {
            Refusal::BadPath => "bad_path",
            Refusal::Method => "method",
            Refusal::UnknownFile => "unknown_file",
        }
    }
}

/// Every metric mediagate exports.
pub struct Metrics {
    registry: Registry,
    /// One counter per [`Outcome`], looked up once: finding a labelled counter hashes its
    /// label and takes a lock, which cost a decision more than counting it.
    decisions: [IntCounter; 4],
    /// One counter per [`Refusal`], for the same reason.
    refused: [IntCounter; 3],
    /// `mediagate_decision_seconds`.
    pub decision_seconds: Histogram,
    /// `mediagate_store_errors_total`.
    pub store_errors: IntCounter,
    /// `route` (pattern) and `status`.
    pub admin_calls: IntCounterVec,
    /// `mediagate_audit_dropped_total`.
    pub audit_dropped: IntCounter,
    /// `mediagate_audit_write_errors_total`.
    pub audit_write_errors: IntCounter,
}

impl Metrics {
    /// Registers every metric in a registry of its own.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let decisions = IntCounterVec::new(
            Opts::new(
                "mediagate_decisions_total",
                "Decisions of the auth listener, by outcome.",
            ),
            &["outcome"],
        )?;
        let decision_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "mediagate_decision_seconds",
                "Time to decide one subrequest.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0,
            ]),
        )?;
        let store_errors = IntCounter::new(
            "mediagate_store_errors_total",
            "Decisions that could not be made because the store failed or was too slow.",
        )?;
        let admin_calls = IntCounterVec::new(
            Opts::new(
                "mediagate_admin_calls_total",
                "Admin API calls, by route and status.",
            ),
            &["route", "status"],
        )?;
        let audit_dropped = IntCounter::new(
            "mediagate_audit_dropped_total",
            "Audit events dropped because the write buffer was full.",
        )?;
        let audit_write_errors = IntCounter::new(
            "mediagate_audit_write_errors_total",
            "Batches of audit events the store refused.",
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "mediagate_refused_total",
                "Requests refused (403) before they named a file, by reason; not in the audit log.",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(decisions.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(decision_seconds.clone()))?;
        registry.register(Box::new(store_errors.clone()))?;
        registry.register(Box::new(admin_calls.clone()))?;
        registry.register(Box::new(audit_dropped.clone()))?;
        registry.register(Box::new(audit_write_errors.clone()))?;
        // Every outcome appears from the start, so a rate() over it is defined.
        let decisions = Outcome::ALL.map(|o| decisions.with_label_values(&[o.label()]));
        let refused = Refusal::ALL.map(|r| refused.with_label_values(&[r.label()]));
        Ok(Self {
            registry,
            decisions,
            refused,
            decision_seconds,
            store_errors,
            admin_calls,
            audit_dropped,
            audit_write_errors,
        })
    }

    /// Counts one decision.
    pub fn decided(&self, outcome: Outcome) {
        self.decisions[outcome as usize].inc();
    }

    /// Counts one refusal (the decision itself is counted by [`Metrics::decided`]).
    pub fn refused(&self, why: Refusal) {
        self.refused[why as usize].inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec only fails on a metric family the registry would not have.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "Could not encode metrics.");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The counters are resolved once, so a wrong index would count under another outcome's
    // label without any error.
    #[test]
    fn each_outcome_counts_under_its_own_label() {
        let m = Metrics::new().unwrap();
        m.decided(Outcome::Unauthorized);
        m.decided(Outcome::Unauthorized);
        m.decided(Outcome::Unavailable);
        m.refused(Refusal::UnknownFile);
        let text = m.render();
        for (reason, n) in [("bad_path", 0), ("method", 0), ("unknown_file", 1)] {
            let line = format!("mediagate_refused_total{{reason=\"{reason}\"}} {n}\n");
            assert!(text.contains(&line), "{line:?} in\n{text}");
        }
        for (outcome, n) in [
            ("allow", 0),
            ("unauthorized", 2),
            ("forbidden", 0),
            ("unavailable", 1),
        ] {
            let line = format!("mediagate_decisions_total{{outcome=\"{outcome}\"}} {n}\n");
            assert!(text.contains(&line), "{line:?} in\n{text}");
        }
    }
}
