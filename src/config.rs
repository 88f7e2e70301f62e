//! Settings: defaults in code, then an optional TOML file, then `MEDIAGATE__SECTION__KEY`
//! environment variables. `Settings::load` returns every problem at once, in one line, naming
//! the key; it has no side effects beyond reading the files it is pointed at.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The whole configuration. `Debug` is safe to log: secrets are `SecretString`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub store: StoreSettings,
    pub storage: StorageSettings,
    pub media: MediaSettings,
    #[serde(default)]
    pub admin: AdminSettings,
    pub session: SessionSettings,
    pub policy: PolicySettings,
    pub upload: UploadSettings,
    pub links: LinkSettings,
    pub audit: AuditSettings,
    pub log: LogSettings,
    pub nginx: NginxSettings,
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// `redis://…`, `rediss://…`, `redis+unix://…`, `redis+sentinel://…`, `redis+cluster://…`,
    /// or `embedded:PATH`.
    pub url: String,
    /// Namespace for every Redis key.
    pub prefix: String,
    /// Bound on a decision's waits, the store lookup and a session source's round trip
    /// together; past it the answer is 503.
    pub timeout_ms: u64,
    /// Cached mode (Redis only): decisions read from an in-process copy that Redis keeps honest
    /// by invalidation (RESP3 client-side caching).
    pub cache: bool,
    /// No cached value is used after this age, invalidated or not: the bound on staleness if
    /// invalidations stop arriving (a network partition the connection has not noticed).
    pub cache_max_age_ms: u64,
    /// Most cached keys per worker thread.
    pub cache_entries: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// Directory holding file bytes; nginx serves it from its internal location.
    pub root: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// Public URL prefix, starting and ending with `/`.
    pub prefix: String,
}

/// One token, or several (several allow rotating the admin token without downtime).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Tokens {
    One(SecretString),
    Many(Vec<SecretString>),
}

/// Shortest accepted admin token, inline or in `admin.token_file`.
pub const ADMIN_TOKEN_MIN_LEN: usize = 16;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub token: Option<Tokens>,
    /// A file with one token per line (for Kubernetes Secrets mounted as files); blank lines
    /// and `#` comments are skipped. Read at start and again on SIGHUP (`admin_tokens`).
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// Cookie holding a native session id.
    pub cookie: String,
    /// Longest lifetime `POST /v1/sessions` accepts.
    pub max_ttl_secs: u64,
    /// Where sessions come from, tried in order (`[[session.sources]]`); none = native.
    #[serde(default)]
    pub sources: Vec<crate::sessions::SourceSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Roles whose sessions may read every file.
    pub read_all_roles: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadSettings {
    /// Largest accepted upload; larger ones get 413 and leave nothing on disk.
    pub max_bytes: u64,
    /// Accepted content types (`image/png`, or `image/*`); empty accepts every type.
    pub allowed_types: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSettings {
    /// HMAC-SHA256 key of share links (at least 32 characters). Without it, links are off.
    pub secret: Option<SecretString>,
    /// Former keys, still accepted while links signed with them expire (key rotation).
    pub old_secrets: Vec<SecretString>,
    /// Longest lifetime a share link may be given.
    pub max_ttl_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Events kept in the store; older ones are dropped.
    pub max_events: u64,
    /// Events waiting to be written; beyond it new events are dropped (and counted) rather
    /// than slowing decisions down.
    pub buffer: usize,
    /// How long the first queued event waits for others before a batch is written: events
    /// reach the store (and the events API) this much later, and the store gets one call per
    /// batch instead of one per decision. 0 writes whatever is queued at once.
    pub flush_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxSettings {
    /// nginx's decision cache: for up to this many seconds nginx reuses an allow for the same
    /// method, URI and credentials without asking again (0, the default, turns it off). It is
    /// the bound on how long a rotation, revocation or logout can take to reach such a reader,
    /// and those reads are not in the audit log or the download counts.
    pub decision_cache_secs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `mediagate=debug`. `RUST_LOG` overrides it.
    pub level: String,
}

/// The configuration could not be used. One line, every problem, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// An operator who wants fewer, larger audit writes gets them up to here; beyond it, events
/// would sit in memory long enough for a crash to lose a noticeable stretch of them.
const MAX_AUDIT_FLUSH_MS: u64 = 10_000;

const DEFAULTS: &[(&str, &str)] = &[
    ("server.auth_listen", "127.0.0.1:9090"),
    ("server.admin_listen", "127.0.0.1:9091"),
    ("server.workers", "0"),
    ("server.shutdown_timeout_secs", "10"),
    ("store.url", "embedded:./var/mediagate.db"),
    ("store.prefix", "mediagate"),
    ("store.timeout_ms", "250"),
    ("store.cache", "false"),
    ("store.cache_max_age_ms", "100"),
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
];

/// Longest `nginx.decision_cache_secs`: past a minute, a revoked reader could go on reading
/// long enough for the delay to stop being a detail.
pub const MAX_DECISION_CACHE_SECS: u32 = 60;

impl Settings {
    /// Loads settings. `file`: an explicit config file (must exist) or `None` for
    /// `mediagate.toml` if present. `env`: `None` reads the process environment; tests pass a
    /// map so they never touch it.
    pub fn load(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let mut builder = Config::builder();
        for (key, value) in DEFAULTS {
            builder = builder
                .set_default(*key, *value)
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        for list in [
            "policy.read_all_roles",
            "upload.allowed_types",
            "links.old_secrets",
        ] {
            builder = builder
                .set_default(list, Vec::<String>::new())
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        builder = match file {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError(format!(
                        "config file {} not found",
                        path.display()
                    )));
                }
                builder.add_source(File::from(path).format(FileFormat::Toml))
            }
            None => {
                builder.add_source(File::new("mediagate.toml", FileFormat::Toml).required(false))
            }
        };
        let settings: Settings = builder
            .add_source(
                Environment::with_prefix("MEDIAGATE")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("policy.read_all_roles")
                    .with_list_parse_key("upload.allowed_types")
                    .with_list_parse_key("links.old_secrets")
                    .try_parsing(true)
                    .source(env),
            )
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Every problem, joined into one line.
    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let p = &self.media.prefix;
        let prefix_ok = p.len() >= 2
            && p.starts_with('/')
            && p.ends_with('/')
            && !p.contains("//")
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/-._~".contains(&b))
            && !p.split('/').any(|s| s == "." || s == "..");
        if !prefix_ok {
            problems.push(format!(
                "media.prefix: {p:?} must start and end with '/' and contain only A-Z a-z 0-9 - . _ ~ in non-dot segments"
            ));
        }
        let url = &self.store.url;
        if let Err(why) = crate::store::check_url(url) {
            let shown = crate::startup::redact_url(url);
            problems.push(format!("store.url: {shown:?}: {why}"));
        }
        if self.store.cache && url.starts_with("embedded:") {
            problems.push(
                "store.cache: cached mode is for Redis stores; the embedded store is local already"
                    .into(),
            );
        }
        if !(1..=60_000).contains(&self.store.cache_max_age_ms) {
            problems.push("store.cache_max_age_ms: must be between 1 and 60000".into());
        }
        if self.store.cache_entries == 0 {
            problems.push("store.cache_entries: must be at least 1".into());
        }
        if self.store.prefix.is_empty() || self.store.prefix.contains(char::is_whitespace) {
            problems.push("store.prefix: must be non-empty and have no spaces".into());
        }
        if self.nginx.decision_cache_secs > MAX_DECISION_CACHE_SECS {
            problems.push(format!(
                "nginx.decision_cache_secs: must be between 0 (off) and {MAX_DECISION_CACHE_SECS}"
            ));
        }
        if !(1..=60_000).contains(&self.store.timeout_ms) {
            problems.push("store.timeout_ms: must be between 1 and 60000".into());
        }
        let cookie_ok = !self.session.cookie.is_empty()
            && self
                .session
                .cookie
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !cookie_ok {
            problems.push(format!(
                "session.cookie: {:?} is not a valid cookie name",
                self.session.cookie
            ));
        }
        if self.session.max_ttl_secs == 0 {
            problems.push("session.max_ttl_secs: must be positive".into());
        }
        if self.upload.max_bytes == 0 {
            problems.push("upload.max_bytes: must be positive".into());
        }
        if self.storage.root.as_os_str().is_empty() {
            problems.push("storage.root: must not be empty".into());
        }
        if self.server.auth_listen == self.server.admin_listen
            && self.server.auth_listen.port() != 0
        {
            problems.push("server.admin_listen: must differ from server.auth_listen".into());
        }
        let short = |s: &SecretString| s.expose_secret().len() < 32;
        if self.links.secret.as_ref().is_some_and(short) || self.links.old_secrets.iter().any(short)
        {
            problems.push("links.secret: every link key must be at least 32 characters".into());
        }
        if self.links.secret.is_none() && !self.links.old_secrets.is_empty() {
            problems.push(
                "links.old_secrets: set links.secret too; without it links are off, and old keys would still open links"
                    .into(),
            );
        }
        if self.links.max_ttl_secs == 0 {
            problems.push("links.max_ttl_secs: must be positive".into());
        }
        for t in &self.upload.allowed_types {
            let ok = t.split_once('/').is_some_and(|(a, b)| {
                !a.is_empty() && !b.is_empty() && !t.contains(char::is_whitespace)
            });
            if !ok {
                problems.push(format!(
                    "upload.allowed_types: {t:?} is not a type like image/png or image/*"
                ));
            }
        }
        if self.audit.buffer == 0 || self.audit.max_events == 0 {
            problems.push("audit.buffer and audit.max_events: must be positive".into());
        }
        if self.audit.flush_ms > MAX_AUDIT_FLUSH_MS {
            problems.push(format!(
                "audit.flush_ms: at most {MAX_AUDIT_FLUSH_MS} (events wait this long in memory)"
            ));
        }
        let inline = match &self.admin.token {
            None => &[][..],
            Some(Tokens::One(t)) => std::slice::from_ref(t),
            Some(Tokens::Many(ts)) => ts.as_slice(),
        };
        if inline
            .iter()
            .any(|t| t.expose_secret().len() < ADMIN_TOKEN_MIN_LEN)
        {
            problems.push(format!(
                "admin.token: every token must be at least {ADMIN_TOKEN_MIN_LEN} characters"
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::load(None, Some(map))
    }

    #[test]
    fn defaults_follow_the_contract() {
        let s = load(&[]).unwrap();
        assert_eq!(s.server.auth_listen.to_string(), "127.0.0.1:9090");
        assert_eq!(s.server.admin_listen.to_string(), "127.0.0.1:9091");
        assert_eq!(s.store.url, "embedded:./var/mediagate.db");
        assert_eq!(s.storage.root, PathBuf::from("./var/media"));
        assert_eq!(s.media.prefix, "/media/");
        assert_eq!(s.session.cookie, "mediagate_session");
        assert_eq!(s.audit.flush_ms, 5);
        assert_eq!(
            s.nginx.decision_cache_secs, 0,
            "nginx's decision cache is opt-in"
        );
        assert!(s.admin.token.is_none() && s.admin.token_file.is_none());
    }

    #[test]
    fn env_overrides_with_double_underscores() {
        let s = load(&[
            ("MEDIAGATE__SERVER__AUTH_LISTEN", "127.0.0.1:7000"),
            ("MEDIAGATE__STORE__URL", "redis://127.0.0.1:6400/"),
            ("MEDIAGATE__ADMIN__TOKEN", "0123456789abcdef-long"),
            ("MEDIAGATE__POLICY__READ_ALL_ROLES", "staff,admin"),
        ])
        .unwrap();
        assert_eq!(s.server.auth_listen.port(), 7000);
        assert_eq!(s.store.url, "redis://127.0.0.1:6400/");
        assert!(matches!(s.admin.token, Some(Tokens::One(_))));
        assert_eq!(s.policy.read_all_roles, vec!["staff", "admin"]);
    }

    #[test]
    fn bad_values_name_their_keys_all_at_once() {
        let e = load(&[
            ("MEDIAGATE__MEDIA__PREFIX", "media"),
            ("MEDIAGATE__STORE__URL", "mysql://x"),
            ("MEDIAGATE__ADMIN__TOKEN", "short"),
        ])
        .unwrap_err()
        .0;
        assert!(e.contains("media.prefix"), "{e}");
        assert!(e.contains("store.url"), "{e}");
        assert!(e.contains("admin.token"), "{e}");
        assert!(!e.contains('\n'));
        let e = load(&[("MEDIAGATE__SERVER__AUTH_LISTEN", "nowhere")])
            .unwrap_err()
            .0;
        assert!(e.contains("auth_listen"), "{e}");
        let e = load(&[
            ("MEDIAGATE__STORE__CACHE", "true"),
            ("MEDIAGATE__STORE__CACHE_MAX_AGE_MS", "0"),
        ])
        .unwrap_err()
        .0;
        assert!(e.contains("store.cache: cached mode is for Redis"), "{e}");
        assert!(e.contains("store.cache_max_age_ms"), "{e}");
        for url in [
            "redis+cluster://10.0.0.1:7000",
            "redis+sentinel://10.0.0.1:26379/m",
        ] {
            load(&[
                ("MEDIAGATE__STORE__URL", url),
                ("MEDIAGATE__STORE__CACHE", "true"),
            ])
            .expect("cached mode on every Redis deployment");
        }
        let e = load(&[(
            "MEDIAGATE__STORE__URL",
            "redis+sentinel://u:hunter2@10.0.0.1:x/m",
        )])
        .unwrap_err()
        .0;
        assert!(e.contains("bad port") && !e.contains("hunter2"), "{e}");
        let e = load(&[("MEDIAGATE__AUDIT__FLUSH_MS", "60000")])
            .unwrap_err()
            .0;
        assert!(e.contains("audit.flush_ms: at most 10000"), "{e}");
        load(&[("MEDIAGATE__AUDIT__FLUSH_MS", "0")]).expect("0 writes at once");
        let e = load(&[("MEDIAGATE__NGINX__DECISION_CACHE_SECS", "61")])
            .unwrap_err()
            .0;
        assert!(e.contains("nginx.decision_cache_secs"), "{e}");
        let e = load(&[("MEDIAGATE__LINKS__OLD_SECRETS", &"k".repeat(32))])
            .unwrap_err()
            .0;
        assert!(e.contains("links.old_secrets: set links.secret too"), "{e}");
        let s = load(&[("MEDIAGATE__NGINX__DECISION_CACHE_SECS", "60")]).unwrap();
        assert_eq!(s.nginx.decision_cache_secs, 60);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = load(&[("MEDIAGATE__SERVER__AUTH_LISTNE", "127.0.0.1:1")])
            .unwrap_err()
            .0;
        assert!(e.contains("auth_listne"), "{e}");
    }
}
