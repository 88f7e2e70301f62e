//! The `redis-json` source: the application's own session record, read from its Redis.
//!
//! The cookie gives the session id (plain, or signed the express-session way); the key
//! template turns it into a key (`sess:{id}` for connect-redis,
//! `:1:django.contrib.sessions.cache{id}` for Django's cache backend); the record is JSON and
//! JSON pointers pick the user id and the roles. Expiry is Redis' own TTL, which both
//! frameworks set.

use std::time::Duration;

use actix_web::HttpRequest;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::SecretString;

use super::{
    Caller, CookieFormat, SourceSettings, express, roles_from_json, single_cookie, user_from_json,
};
use crate::config::Tokens;
use crate::store::StoreError;

/// A configured `redis-json` source.
pub struct RedisJsonSource {
    cookie: String,
    format: CookieFormat,
    secrets: Vec<SecretString>,
    conn: ConnectionManager,
    key_prefix: String,
    key_suffix: String,
    user_pointer: String,
    roles_pointer: Option<String>,
}

fn pointer_ok(p: &str) -> bool {
    p.is_empty() || p.starts_with('/')
}

/// Session ids both frameworks make: URL-safe characters only. Anything else never becomes
/// part of a key.
fn id_ok(id: &str) -> bool {
    (1..=256).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl RedisJsonSource {
    /// Builds the source (nothing is sent to Redis yet); the error names what is wrong.
    pub fn new(s: &SourceSettings, store_url: &str, timeout: Duration) -> Result<Self, String> {
        let SourceSettings::RedisJson {
            cookie,
            cookie_format,
            secret,
            redis_url,
            key,
            user_pointer,
            roles_pointer,
        } = s
        else {
            return Err("not a redis-json source".into());
        };
        let secrets = match secret {
            None => Vec::new(),
            Some(Tokens::One(t)) => vec![t.clone()],
            Some(Tokens::Many(ts)) => ts.clone(),
        };
        if *cookie_format == CookieFormat::Express && secrets.is_empty() {
            return Err("cookie_format = \"express\" needs `secret`".into());
        }
        let url = match redis_url {
            Some(u) => u.clone(),
            None if store_url.starts_with("redis") => store_url.to_owned(),
            None => return Err("`redis_url` is required when store.url is not Redis".into()),
        };
        let (prefix, suffix) = key
            .split_once("{id}")
            .ok_or_else(|| format!("key {key:?} must contain {{id}}"))?;
        if !pointer_ok(user_pointer) || !roles_pointer.as_deref().is_none_or(pointer_ok) {
            return Err("pointers must be RFC 6901 JSON pointers, starting with '/'".into());
        }
        if cookie.is_empty() {
            return Err("`cookie` must not be empty".into());
        }
        let client = redis::Client::open(url.as_str()).map_err(|e| format!("redis_url: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("redis_url: {e}"))?;
        Ok(Self {
            cookie: cookie.clone(),
            format: *cookie_format,
            secrets,
            conn,
            key_prefix: prefix.to_owned(),
            key_suffix: suffix.to_owned(),
            user_pointer: user_pointer.clone(),
            roles_pointer: roles_pointer.clone(),
        })
    }

    /// The session id the cookie carries, if it is well-formed (and correctly signed).
    fn session_id(&self, req: &HttpRequest) -> Option<String> {
        let raw = single_cookie(req, &self.cookie)?;
        let value = percent_encoding::percent_decode_str(&raw)
            .decode_utf8()
            .ok()?;
        let id = match self.format {
            CookieFormat::Plain => value.as_ref(),
            CookieFormat::Express => match express::unsign(&value, &self.secrets) {
                Some(id) => id,
                None => {
                    tracing::debug!(cookie = %self.cookie, "Session cookie signature does not verify; no session.");
                    return None;
                }
            },
        };
        id_ok(id).then(|| id.to_owned())
    }

    /// Reads the record. `Err` only when Redis cannot answer.
    pub async fn resolve(&self, req: &HttpRequest) -> Result<Option<Caller>, StoreError> {
        let Some(id) = self.session_id(req) else {
            return Ok(None);
        };
        let key = format!("{}{id}{}", self.key_prefix, self.key_suffix);
        let raw: Option<Vec<u8>> = self
            .conn
            .clone()
            .get(&key)
            .await
            .map_err(StoreError::unavailable)?;
        let Some(raw) = raw else { return Ok(None) };
        let Ok(record) = serde_json::from_slice::<serde_json::Value>(&raw) else {
            tracing::debug!(cookie = %self.cookie, "Session record is not JSON; no session.");
            return Ok(None);
        };
        let Some(user_id) = record.pointer(&self.user_pointer).and_then(user_from_json) else {
            tracing::debug!(cookie = %self.cookie, "Session record has no usable user id; no session.");
            return Ok(None);
        };
        let roles = roles_from_json(
            self.roles_pointer
                .as_deref()
                .and_then(|p| record.pointer(p)),
        );
        Ok(Some(Caller {
            user_id,
            roles,
            expires_at: None,
        }))
    }
}
