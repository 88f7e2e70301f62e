//! `[session]`: the native session cookie and the `[[session.sources]]` that say who is
//! asking. The settings only; `sessions` builds working sources from them.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::admin::Tokens;

/// `[session]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// Cookie holding a native session id.
    pub cookie: String,
    /// Longest lifetime `POST /v1/sessions` accepts.
    pub max_ttl_secs: u64,
    /// Where sessions come from, tried in order (`[[session.sources]]`); none = native.
    #[serde(default)]
    pub sources: Vec<SourceSettings>,
}

impl SessionSettings {
    pub(super) fn check(&self, problems: &mut Vec<String>) {
        if !cookie_name_ok(&self.cookie) {
            problems.push(format!(
                "session.cookie: {:?} is not a valid cookie name",
                self.cookie
            ));
        }
        if self.max_ttl_secs == 0 {
            problems.push("session.max_ttl_secs: must be positive".into());
        }
    }
}

/// Whether `name` is a cookie name (an RFC 6265 token).
pub fn cookie_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// How the session id sits in a `redis-json` cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CookieFormat {
    /// The cookie value is the id.
    #[default]
    Plain,
    /// `s:ID.SIGNATURE`, signed by express-session (cookie-signature, HMAC-SHA256).
    Express,
}

/// One `[[session.sources]]` entry, as configured.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceSettings {
    /// Sessions made by `POST /v1/sessions`.
    Native {
        /// Default: `session.cookie`.
        cookie: Option<String>,
    },
    /// The application's own sessions, stored as JSON in Redis.
    RedisJson {
        /// The application's session cookie.
        cookie: String,
        /// How the session id sits in the cookie.
        #[serde(default)]
        cookie_format: CookieFormat,
        /// express-session's secret(s), for `cookie_format = "express"`; any of them verifies.
        secret: Option<Tokens>,
        /// Where the sessions are; default `store.url`.
        redis_url: Option<String>,
        /// Key template with `{id}`, e.g. `sess:{id}`.
        key: String,
        /// RFC 6901 pointer to the user id, e.g. `/userId`.
        user_pointer: String,
        /// RFC 6901 pointer to an array of role names.
        roles_pointer: Option<String>,
    },
    /// A JWT in a cookie or in `Authorization: Bearer`.
    Jwt {
        /// Cookie holding the token; `Authorization: Bearer` is always read too.
        cookie: Option<String>,
        /// Accepted algorithms, all of one key type.
        algorithms: Vec<String>,
        /// For HS256/384/512.
        secret: Option<SecretString>,
        /// For RS*, PS*, ES*, EdDSA: a PEM public key.
        public_key_file: Option<PathBuf>,
        /// The claim holding the user id.
        #[serde(default = "default_user_claim")]
        user_claim: String,
        /// The claim holding an array of role names.
        roles_claim: Option<String>,
        /// Required and checked when set.
        issuer: Option<String>,
        /// Required and checked when set.
        audience: Option<String>,
        /// Clock skew allowed on `exp` and `nbf`.
        #[serde(default = "default_leeway")]
        leeway_secs: u64,
    },
    /// Asks an HTTP endpoint who the caller is (the application's own, or an identity
    /// proxy's).
    Forward {
        /// The endpoint, `http://` or `https://`.
        url: String,
        /// The cookies forwarded to it, each only when the request carries it.
        #[serde(default)]
        cookies: Vec<String>,
        /// Also forward the request's `Authorization` header.
        #[serde(default)]
        forward_authorization: bool,
        /// The answer's header naming the user.
        #[serde(default = "default_user_header")]
        user_header: String,
        /// The answer's header listing role names, comma-separated.
        roles_header: Option<String>,
        /// How long a positive answer is kept in the store, shared by every replica; 0: ask
        /// every time.
        #[serde(default = "default_cache_secs")]
        cache_secs: u64,
    },
}

fn default_user_header() -> String {
    "X-Mediagate-User".into()
}

fn default_cache_secs() -> u64 {
    10
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_leeway() -> u64 {
    10
}
