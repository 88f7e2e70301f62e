//! `[store]`: where users, tokens, files and sessions are kept, and the grammar of `store.url`.
//!
//! The URL is parsed here, into a plain [`StoreUrl`], so that a bad one stops start-up with the
//! rest of the configuration's problems and the store only builds clients from a URL already
//! known to be well formed.

use std::time::Duration;

use serde::Deserialize;

/// `[store]`.
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
    /// No cached value is used after this age, invalidated or not.
    pub cache_max_age_ms: u64,
    /// The most a cached value may lag a change if invalidations stop arriving (a partition
    /// the connection has not noticed, a stalled server): a heartbeat must have proven the
    /// connection live within this time, or decisions read Redis itself.
    pub cache_staleness_ms: u64,
    /// Most cached keys per worker thread.
    pub cache_entries: usize,
}

impl StoreSettings {
    /// The decision's bound, `timeout_ms`.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub(super) fn check(&self, problems: &mut Vec<String>) {
        let url = &self.url;
        match StoreUrl::parse(url) {
            Err(why) => problems.push(format!("store.url: {:?}: {why}", redact_url(url))),
            Ok(StoreUrl::Embedded(_)) if self.cache => problems.push(
                "store.cache: cached mode is for Redis stores; the embedded store is local already"
                    .into(),
            ),
            Ok(_) => {}
        }
        if !(1..=3_600_000).contains(&self.cache_max_age_ms) {
            problems.push("store.cache_max_age_ms: must be between 1 and 3600000".into());
        }
        // A heartbeat every quarter of it: below 10 ms that is a ping every 2 ms per thread.
        if !(10..=60_000).contains(&self.cache_staleness_ms) {
            problems.push("store.cache_staleness_ms: must be between 10 and 60000".into());
        }
        if self.cache_entries == 0 {
            problems.push("store.cache_entries: must be at least 1".into());
        }
        if self.prefix.is_empty() || self.prefix.contains(char::is_whitespace) {
            problems.push("store.prefix: must be non-empty and have no spaces".into());
        }
        if !(1..=60_000).contains(&self.timeout_ms) {
            problems.push("store.timeout_ms: must be between 1 and 60000".into());
        }
    }
}

/// The schemes `store.url` accepts, for messages.
const SCHEMES: &str =
    "redis://, rediss://, redis+unix://, redis+sentinel://, redis+cluster:// or embedded:PATH";

/// What a `store.url` names, parsed without connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `embedded:PATH`; `embedded::memory:` keeps everything in memory (tests).
    Embedded(String),
    /// `redis://`, `rediss://` or `redis+unix://`: one server, the URL as redis-rs reads it.
    Single(String),
    /// `redis+cluster://[user:pass@]host:port[,host:port…]`: seed URLs, one per host.
    /// `redis+cluster://[user:pass@]host:port[,host:port…]`: seed URLs, one per host.
    Cluster {
        /// `redis://[user:pass@]host:port`, one per seed.
        seeds: Vec<String>,
    },
    /// `redis+sentinel://[user:pass@]host:port[,…]/master-name[/db]`.
    Sentinel(SentinelUrl),
}

/// The parts of a `redis+sentinel://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct SentinelUrl {
    /// The sentinels, `(host, port)`.
    pub sentinels: Vec<(String, u16)>,
    /// The name of the master they watch.
    pub master: String,
    /// The database on the master.
    pub db: Option<i64>,
    /// Credentials for the master (percent-decoded).
    pub user: Option<String>,
    /// The password for the master (percent-decoded; `Debug` hides it).
    pub password: Option<String>,
}

impl std::fmt::Debug for SentinelUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelUrl")
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("db", &self.db)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl StoreUrl {
    /// Parses `store.url`; the error says what is wrong, in words, without the password.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("embedded:") {
            if path.is_empty() {
                return Err("embedded: needs a path, e.g. embedded:./var/mediagate.db".into());
            }
            return Ok(Self::Embedded(path.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("redis+cluster://") {
            let (auth, hosts) = split_auth(rest);
            let seeds = host_list(hosts.trim_end_matches('/'), "redis+cluster")?
                .into_iter()
                .map(|h| format!("redis://{auth}{h}"))
                .collect::<Vec<_>>();
            for seed in &seeds {
                check_single(seed).map_err(|e| format!("redis+cluster URL: {e}"))?;
            }
            return Ok(Self::Cluster { seeds });
        }
        if let Some(rest) = url.strip_prefix("redis+sentinel://") {
            return sentinel(rest).map(Self::Sentinel);
        }
        if !url.starts_with("redis") {
            return Err(format!("must start with {SCHEMES}"));
        }
        check_single(url)?;
        Ok(Self::Single(url.to_owned()))
    }
}

/// A one-server URL as redis-rs reads it (`redis://`, `rediss://`, `redis+unix://`).
fn check_single(url: &str) -> Result<(), String> {
    redis::IntoConnectionInfo::into_connection_info(url)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn sentinel(rest: &str) -> Result<SentinelUrl, String> {
    let (auth, rest) = split_auth(rest);
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut parts = path.trim_end_matches('/').splitn(2, '/');
    let master = parts.next().unwrap_or_default();
    if master.is_empty() {
        return Err(
            "redis+sentinel URL needs the master's name: redis+sentinel://host:port/NAME".into(),
        );
    }
    let sentinels = host_list(hosts, "redis+sentinel")?
        .into_iter()
        .map(|h| {
            let (host, port) = h.rsplit_once(':').unwrap_or((h, "26379"));
            let port = port
                .parse::<u16>()
                .map_err(|_| format!("redis+sentinel URL: bad port in {h:?}"))?;
            Ok((host.to_owned(), port))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let db = parts
        .next()
        .map(|db| {
            db.parse::<i64>()
                .map_err(|_| format!("redis+sentinel URL: bad database {db:?}"))
        })
        .transpose()?;
    let (user, password) = credentials(auth);
    Ok(SentinelUrl {
        sentinels,
        master: master.to_owned(),
        db,
        user,
        password,
    })
}

/// `user:pass@hosts` → (`user:pass@`, `hosts`).
fn split_auth(rest: &str) -> (&str, &str) {
    match rest.rfind('@') {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => ("", rest),
    }
}

/// `user:pass@` → (user, pass), each absent when empty.
fn credentials(auth: &str) -> (Option<String>, Option<String>) {
    let auth = auth.trim_end_matches('@');
    if auth.is_empty() {
        return (None, None);
    }
    let (user, pass) = auth.split_once(':').unwrap_or(("", auth));
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    (
        Some(user).filter(|u| !u.is_empty()).map(decode),
        Some(pass).filter(|p| !p.is_empty()).map(decode),
    )
}

fn host_list<'a>(hosts: &'a str, scheme: &str) -> Result<Vec<&'a str>, String> {
    let list: Vec<&str> = hosts.split(',').map(str::trim).collect();
    if list.iter().any(|h| h.is_empty() || h.contains('/')) {
        return Err(format!(
            "{scheme} URL needs a comma-separated list of host:port, got {hosts:?}"
        ));
    }
    Ok(list)
}

/// A URL for messages: the password, if any, replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_form() {
        assert_eq!(
            StoreUrl::parse("embedded:./var/x.db"),
            Ok(StoreUrl::Embedded("./var/x.db".into()))
        );
        for single in [
            "redis://127.0.0.1:6379/0",
            "rediss://user:pass@redis.example:6380/1",
            "redis+unix:///run/redis.sock?db=2",
        ] {
            assert_eq!(StoreUrl::parse(single), Ok(StoreUrl::Single(single.into())));
        }
        assert_eq!(
            StoreUrl::parse("redis+cluster://u:p@10.0.0.1:7000,10.0.0.2:7001/"),
            Ok(StoreUrl::Cluster {
                seeds: vec![
                    "redis://u:p@10.0.0.1:7000".into(),
                    "redis://u:p@10.0.0.2:7001".into()
                ]
            })
        );
        let Ok(StoreUrl::Sentinel(s)) =
            StoreUrl::parse("redis+sentinel://app:p%40ss@s1:26379,s2/mymaster/3")
        else {
            panic!("a sentinel URL");
        };
        assert_eq!(
            s.sentinels,
            [("s1".to_owned(), 26379), ("s2".to_owned(), 26379)]
        );
        assert_eq!((s.master.as_str(), s.db), ("mymaster", Some(3)));
        assert_eq!(
            (s.user.as_deref(), s.password.as_deref()),
            (Some("app"), Some("p@ss"))
        );
        assert!(!format!("{s:?}").contains("p@ss"));
        for ok in [
            "redis+cluster://:secret@10.0.0.1:7000/",
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/mymaster",
            "redis+sentinel://10.0.0.1/mymaster",
        ] {
            assert!(StoreUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn credentials_are_percent_decoded() {
        assert_eq!(
            credentials("u:p%40ss@"),
            (Some("u".into()), Some("p@ss".into()))
        );
        assert_eq!(credentials(":pw@"), (None, Some("pw".into())));
        assert_eq!(credentials(""), (None, None));
    }

    #[test]
    fn refuses_malformed_forms_with_a_reason() {
        for (url, why) in [
            ("mysql://x", "must start with"),
            ("embedded:", "needs a path"),
            ("redis+sentinel://s1:26379", "master's name"),
            ("redis+sentinel://s1:26379/", "master's name"),
            ("redis+sentinel://s1:x/m", "bad port"),
            ("redis+sentinel://s1/m/x", "bad database"),
            ("redis+cluster://", "host:port"),
            ("redis+cluster://a:1,,b:2", "host:port"),
            ("redis://host:notaport/0", ""),
        ] {
            let e = StoreUrl::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://user:hunter2@10.0.0.1:6379/0"),
            "redis://***@10.0.0.1:6379/0"
        );
        assert_eq!(redact_url("embedded:./x.db"), "embedded:./x.db");
    }
}
