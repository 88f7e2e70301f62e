//! mediagate: lets nginx serve private, user-uploaded files only to the people allowed to read
//! them. nginx asks, through `auth_request`, one question per request; mediagate answers from
//! its store, and nginx moves every byte.
//!
//! # Layout
//!
//! * `config`: settings from defaults, a TOML file and `MEDIAGATE__…` variables.
//! * `startup`: builds the store and both listeners; `Application` is what `main` runs.
//! * `routes`: `auth` (nginx's subrequests), `admin` (the JSON API), `health`.
//! * `paths`: strict parsing of the public URL and of storage paths.
//! * `tokens`: URL tokens, session ids and ids, generated from the OS CSPRNG.
//! * `policy`: the pure decision.
//! * `sessions`: who is asking (native sessions, the app's own Redis sessions, JWTs).
//! * `store`: the `Store` trait, its Redis and embedded implementations, and migrations.
//! * `storage`: file bytes on disk, written atomically.
//! * `filenames`, `media_type`, `disposition`: what a file may be called, the one form of its
//!   type, and how it is presented.
//! * `nginx`: renders the nginx snippets in `nginx/`.
//! * `links`: signed, expiring share links.
//! * `decision_cache`: how long nginx may reuse an allow, when its decision cache is on.
//! * `audit`, `metrics`: the event log and Prometheus metrics.
//! * `openapi`: the OpenAPI document, generated from the admin routes.

pub mod admin_tokens;
pub mod audit;
pub mod clock;
pub mod config;
pub mod decision_cache;
pub mod disposition;
pub mod filenames;
pub mod links;
pub mod media_type;
pub mod metrics;
pub mod model;
pub mod nginx;
pub mod paths;
pub mod policy;
pub mod routes;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod storage;
pub mod store;
pub mod telemetry;
pub mod tokens;
