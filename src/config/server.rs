//! `[server]`: the two listeners and the worker threads.

use std::net::SocketAddr;

use serde::Deserialize;

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// nginx's subrequests come here. Keep it on loopback or a pod-local address.
    pub auth_listen: SocketAddr,
    /// Admin API, health and metrics.
    pub admin_listen: SocketAddr,
    /// Worker threads for the auth listener; 0 = one per CPU.
    pub workers: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    pub shutdown_timeout_secs: u64,
}

impl ServerSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.auth_listen == self.admin_listen && self.auth_listen.port() != 0 {
            problems.push("server.admin_listen: must differ from server.auth_listen".into());
        }
    }
}
