//! HTTP routes. The auth listener answers nginx's subrequests only; the admin listener holds
//! the admin API, health and readiness. Each module exposes its own `configure`.

pub mod admin;
pub mod auth;
pub mod health;
