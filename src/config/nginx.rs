//! `[nginx]`: how the nginx config mediagate prints behaves.

use serde::Deserialize;

/// Longest `nginx.decision_cache_secs`: past a minute, a revoked reader could go on reading
/// long enough for the delay to stop being a detail.
pub const MAX_DECISION_CACHE_SECS: u32 = 60;

/// `[nginx]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxSettings {
    /// nginx's decision cache: for up to this many seconds nginx reuses an allow for the same
    /// method, URI and credentials without asking again (0, the default, turns it off). It is
    /// the bound on how long a rotation, revocation or logout can take to reach such a reader,
    /// and those reads are not in the audit log or the download counts.
    pub decision_cache_secs: u32,
    /// nginx's `resolver`, which it needs to fetch objects from a bucket whose endpoint is a
    /// host name (its `proxy_pass` takes the URL from a variable). Default: the nameservers of
    /// `/etc/resolv.conf` when `nginx-config` renders.
    pub resolver: Option<String>,
    /// The CA bundle nginx verifies an `https` bucket endpoint with.
    pub trusted_certificate: String,
}

impl NginxSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if self.decision_cache_secs > MAX_DECISION_CACHE_SECS {
            problems.push(format!(
                "nginx.decision_cache_secs: must be between 0 (off) and {MAX_DECISION_CACHE_SECS}"
            ));
        }
    }
}
