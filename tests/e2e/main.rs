//! End-to-end tests: real nginx (configured by `mediagate nginx-config`), the real mediagate
//! binary, and a real redis-server where the store is Redis. Every behaviour test runs on both
//! stores.

#[path = "../support/mod.rs"]
mod support;

/// Runs one test body against a fresh stack on the embedded store and on Redis.
macro_rules! on_both_stores {
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
        }
    };
}

mod admin;
mod audit;
mod chart;
mod cli;
mod faults;
mod gate;
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
