//! End-to-end tests: real nginx (configured by `mediagate nginx-config`), the real mediagate
//! binary, and a real redis-server where the store is Redis. Every behaviour test runs on the
//! embedded store, on one redis-server, and on a six-node Redis Cluster.

#[path = "../support/mod.rs"]
mod support;

/// Runs one test body against a fresh stack on each store.
macro_rules! on_every_store {
    ($name:ident, |$stack:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($stack: crate::support::app::Stack) $body
            #[test]
            fn embedded() {
                run(crate::support::app::Stack::start(crate::support::app::StoreKind::Embedded))
            }
            #[test]
            fn redis() {
                run(crate::support::app::Stack::start(crate::support::app::StoreKind::Redis))
            }
            #[test]
            fn cluster() {
                run(crate::support::app::Stack::start(crate::support::app::StoreKind::Cluster))
            }
        }
    };
}

mod admin;
mod audit;
mod bucket;
mod cached;
mod chart;
mod chart_bucket;
mod cli;
mod content_types;
mod decision_cache;
mod django_forward;
mod faults;
mod forward;
mod gate;
mod harness;
mod hostile;
mod lifecycle;
mod roundtrips;
mod schema;
mod secrets;
mod sharing;
mod soak;
mod sources;
mod tokens;
mod topologies;
mod unix_socket;
