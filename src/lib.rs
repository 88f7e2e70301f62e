#![deny(missing_docs)]
//! mediagate: lets nginx serve private, user-uploaded files only to the people allowed to read
//! them. nginx asks, through `auth_request`, one question per request; mediagate answers from
//! its store, and nginx moves every byte.
//!
//! The modules read one way, from the binary (`main`, `startup`) through the HTTP routes, the
//! decision and its inputs (`sessions`, `policy`, `links`), shared state and the store, down to
//! plain data (`model`, `ids`, `tokens`, `paths`) and leaves (`config`, `clock`). The module
//! map, the layers and the auth path are in `docs/architecture.md`; each module's header says
//! what it owns.

pub mod admin_tokens;
pub mod audit;
pub mod clock;
pub mod config;
pub mod decision_cache;
pub mod disposition;
pub mod filenames;
pub mod ids;
pub mod links;
pub mod media_type;
pub mod metrics;
pub mod model;
pub mod nginx;
pub mod paths;
pub mod policy;
pub mod routes;
pub mod sessions;
pub mod socket;
pub mod startup;
pub mod state;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod tokens;

/// Installs the TLS provider the HTTP clients (the bucket's, the forward source's) use: they
/// are built without one of their own and use ring, as `rediss://` does. A provider installed
/// before is kept.
pub(crate) fn use_ring_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
