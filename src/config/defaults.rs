//! The defaults, in code: what a key is when neither the file nor the environment sets it.
//! api.md's configuration table and README's are this list.

/// Every key with a default, as text (the `config` crate parses it like a file's value).
pub(super) const VALUES: &[(&str, &str)] = &[
    ("server.auth_listen", "127.0.0.1:9090"),
    ("server.admin_listen", "127.0.0.1:9091"),
    ("server.workers", "0"),
    ("server.shutdown_timeout_secs", "10"),
    ("store.url", "embedded:./var/mediagate.db"),
    ("store.prefix", "mediagate"),
    ("store.timeout_ms", "250"),
    ("store.cache", "false"),
    ("store.cache_max_age_ms", "60000"),
    ("store.cache_staleness_ms", "100"),
    ("store.cache_entries", "100000"),
    ("storage.root", "./var/media"),
    ("media.prefix", "/media/"),
    ("session.cookie", "mediagate_session"),
    ("session.max_ttl_secs", "2592000"),
    ("upload.max_bytes", "1073741824"),
    ("links.max_ttl_secs", "604800"),
    ("audit.max_events", "100000"),
    ("audit.buffer", "10000"),
    ("audit.flush_ms", "5"),
    ("log.format", "text"),
    ("log.level", "info"),
    ("nginx.decision_cache_secs", "0"),
    (
        "nginx.trusted_certificate",
        "/etc/ssl/certs/ca-certificates.crt",
    ),
];

/// Keys whose value is a list: empty by default, and comma-separated in the environment
/// (`MEDIAGATE__POLICY__READ_ALL_ROLES=staff,admin`).
pub(super) const LISTS: [&str; 3] = [
    "policy.read_all_roles",
    "upload.allowed_types",
    "links.old_secrets",
];
