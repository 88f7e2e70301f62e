//! Settings: defaults in code, then an optional TOML file, then `MEDIAGATE__SECTION__KEY`
//! environment variables. `Settings::load` returns every problem at once, in one line, naming
//! the key; it has no side effects beyond reading the file it is pointed at.
//!
//! One submodule per section, each with its structs and the checks of its values. This module
//! depends on nothing else of mediagate's: every other module may read settings.

mod access;
mod admin;
mod audit;
mod defaults;
mod log;
mod nginx;
mod server;
mod session;
mod storage;
mod store;

use std::collections::HashMap;
use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

pub use access::{LinkSettings, PolicySettings, UploadSettings};
pub use admin::{ADMIN_TOKEN_MIN_LEN, AdminSettings, Tokens};
pub use audit::AuditSettings;
pub use log::{LogFormat, LogSettings};
pub use nginx::{MAX_DECISION_CACHE_SECS, NginxSettings};
pub use server::{AuthListen, ServerSettings, parse_owner};
pub use session::{CookieFormat, SessionSettings, SourceSettings, cookie_name_ok};
pub use storage::{MediaSettings, S3Settings, StorageSettings, StorageUrl, endpoint_host};
pub use store::{SentinelUrl, StoreSettings, StoreUrl, redact_url};

/// The whole configuration. `Debug` is safe to log: secrets are `SecretString`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[server]`.
    pub server: ServerSettings,
    /// `[store]`.
    pub store: StoreSettings,
    /// `[storage]`.
    pub storage: StorageSettings,
    /// `[media]`.
    pub media: MediaSettings,
    /// `[admin]`.
    #[serde(default)]
    pub admin: AdminSettings,
    /// `[session]`.
    pub session: SessionSettings,
    /// `[policy]`.
    pub policy: PolicySettings,
    /// `[upload]`.
    pub upload: UploadSettings,
    /// `[links]`.
    pub links: LinkSettings,
    /// `[audit]`.
    pub audit: AuditSettings,
    /// `[log]`.
    pub log: LogSettings,
    /// `[nginx]`.
    pub nginx: NginxSettings,
}

/// The configuration could not be used. One line, every problem, each naming its key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Loads settings. `file`: an explicit config file (must exist) or `None` for
    /// `mediagate.toml` if present. `env`: `None` reads the process environment; tests pass a
    /// map so they never touch it.
    pub fn load(
        file: Option<&Path>,
        env: Option<HashMap<String, String>>,
    ) -> Result<Self, ConfigError> {
        let mut builder = Config::builder();
        for (key, value) in defaults::VALUES {
            builder = builder
                .set_default(*key, *value)
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        for list in defaults::LISTS {
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
        let mut env = Environment::with_prefix("MEDIAGATE")
            .prefix_separator("__")
            .separator("__")
            .list_separator(",")
            .try_parsing(true)
            .source(env);
        for list in defaults::LISTS {
            env = env.with_list_parse_key(list);
        }
        let settings: Settings = builder
            .add_source(env)
            .build()
            .and_then(Config::try_deserialize)
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Every problem, joined into one line.
    fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        self.server.check(&mut problems);
        self.media.check(&mut problems);
        self.store.check(&mut problems);
        self.nginx.check(&mut problems);
        self.session.check(&mut problems);
        self.upload.check(&mut problems);
        self.storage.check(&mut problems);
        self.links.check(&mut problems);
        self.audit.check(&mut problems);
        self.admin.check(&mut problems);
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
    use std::path::PathBuf;

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
        assert_eq!(s.server.auth_listen.port(), Some(7000));
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
            ("MEDIAGATE__STORE__CACHE_STALENESS_MS", "5"),
        ])
        .unwrap_err()
        .0;
        assert!(e.contains("store.cache: cached mode is for Redis"), "{e}");
        assert!(e.contains("store.cache_max_age_ms"), "{e}");
        assert!(e.contains("store.cache_staleness_ms"), "{e}");
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
