//! Who is asking: the session sources of `[[session.sources]]`, tried in order; the first that
//! yields a user wins.
//!
//! * `native`: sessions made by `POST /v1/sessions`, read in the decision's one store round
//!   trip (see `store::SessionStore::ask`).
//! * `redis-json`: the application's own session record, JSON in Redis (express-session with
//!   connect-redis, Django's cache backend with django-redis' JSON serializer, …).
//! * `jwt`: a signed token in a cookie or in `Authorization: Bearer`.
//! * `forward`: an HTTP endpoint that says who the caller is; its kept answers are read in the
//!   decision's one store round trip too.
//!
//! A value that fails its signature, is expired, or cannot be parsed is no session (and is
//! logged at debug level without its secret parts). A source that cannot answer (its Redis is
//! down) is an error, which the auth listener turns into 503: it never guesses.

pub mod express;
pub mod forward;
pub mod jwt;
pub mod redis_json;

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpRequest;

use crate::config::{CookieFormat, SourceSettings};
use crate::ids::UserId;
use crate::model::{Caller, SessionRecord};
use crate::store::{Lookup, Store, StoreError};
use crate::tokens::{SessionId, SessionKey};

/// Longest cookie or token value considered; longer ones are no session.
pub const MAX_CREDENTIAL: usize = 4096;

/// A configured source, ready to use.
pub enum Source {
    /// `native`: sessions made by the admin API, read in the decision's one round trip.
    Native {
        /// The cookie holding the session id.
        cookie: String,
    },
    /// `redis-json`: the application's own sessions in Redis.
    RedisJson(Box<redis_json::RedisJsonSource>),
    /// `jwt`: a signed token.
    Jwt(Box<jwt::JwtSource>),
    /// `forward`: an HTTP endpoint's answer.
    Forward(Box<forward::ForwardSource>),
}

/// What a request carries that the decision's store read looks up.
#[derive(Default)]
pub struct Presented {
    /// The native session's key.
    pub native: Option<SessionKey>,
    /// What the `forward` source would forward.
    pub forwarded: Option<forward::Credentials>,
}

impl Presented {
    /// The forward key to read a kept answer under, when the source keeps answers.
    pub fn kept_key(&self, sources: &Sources) -> Option<&crate::tokens::ForwardKey> {
        let caches = sources.forward().is_some_and(|f| f.caches());
        self.forwarded.as_ref().filter(|_| caches).map(|c| &c.key)
    }
}

/// The configured sources, in order.
pub struct Sources {
    sources: Vec<Source>,
}

/// A source could not be built from its settings (stops start-up).
#[derive(Debug, thiserror::Error)]
#[error("session.sources[{index}] ({kind}): {message}")]
pub struct SourceConfigError {
    /// Which `[[session.sources]]` entry, from 0.
    pub index: usize,
    /// Its `type`.
    pub kind: &'static str,
    /// What is wrong with it.
    pub message: String,
}

impl Sources {
    /// Builds the sources. With none configured, `native` alone, on `default_cookie`.
    pub fn build(
        settings: &[SourceSettings],
        default_cookie: &str,
        store_url: &str,
        timeout: Duration,
    ) -> Result<Self, SourceConfigError> {
        if settings.is_empty() {
            return Ok(Self {
                sources: vec![Source::Native {
                    cookie: default_cookie.to_owned(),
                }],
            });
        }
        let mut sources = Vec::new();
        for (index, s) in settings.iter().enumerate() {
            let fail = |kind: &'static str| {
                move |message: String| SourceConfigError {
                    index,
                    kind,
                    message,
                }
            };
            sources.push(match s {
                SourceSettings::Native { cookie } => Source::Native {
                    cookie: cookie.clone().unwrap_or_else(|| default_cookie.to_owned()),
                },
                SourceSettings::RedisJson { .. } => Source::RedisJson(Box::new(
                    redis_json::RedisJsonSource::new(s, store_url, timeout)
                        .map_err(fail("redis-json"))?,
                )),
                SourceSettings::Jwt { .. } => {
                    Source::Jwt(Box::new(jwt::JwtSource::new(s).map_err(fail("jwt"))?))
                }
                SourceSettings::Forward { .. } => {
                    // One, so that its kept answer is the one the decision's read brings.
                    if sources.iter().any(|s| matches!(s, Source::Forward(_))) {
                        return Err(fail("forward")("at most one forward source".into()));
                    }
                    Source::Forward(Box::new(
                        forward::ForwardSource::new(s, timeout).map_err(fail("forward"))?,
                    ))
                }
            });
        }
        Ok(Self { sources })
    }

    fn forward(&self) -> Option<&forward::ForwardSource> {
        self.sources.iter().find_map(|s| match s {
            Source::Forward(f) => Some(&**f),
            _ => None,
        })
    }

    /// What the request carries for the sources that the store's one read serves.
    pub fn presented(&self, req: &HttpRequest) -> Presented {
        Presented {
            native: self.native_key(req),
            forwarded: self.forward().and_then(|f| f.credentials(req)),
        }
    }

    /// The cookie of the native source, if there is one: its session is read together with
    /// the tokens, in the decision's one store round trip.
    pub fn native_key(&self, req: &HttpRequest) -> Option<SessionKey> {
        self.sources.iter().find_map(|s| match s {
            Source::Native { cookie } => single_cookie(req, cookie)
                .and_then(|v| SessionId::parse(&v).ok())
                .map(|id| id.key()),
            _ => None,
        })
    }

    /// The caller, trying each source in order. `lookup` is what the store returned for
    /// [`Sources::presented`]; `store` keeps the forward source's new answers.
    pub async fn resolve(
        &self,
        req: &HttpRequest,
        presented: &Presented,
        lookup: &Lookup,
        now: i64,
        store: &Arc<dyn Store>,
    ) -> Result<Option<Caller>, StoreError> {
        for source in &self.sources {
            let caller = match source {
                Source::Native { .. } => {
                    lookup.session.as_ref().and_then(|s| native_caller(s, now))
                }
                Source::RedisJson(s) => s.resolve(req).await?,
                Source::Jwt(s) => s.resolve(req),
                Source::Forward(s) => {
                    let kept = lookup.forwarded.as_ref();
                    s.resolve(presented.forwarded.as_ref(), kept, now, store)
                        .await?
                }
            };
            if caller.is_some() {
                return Ok(caller);
            }
        }
        Ok(None)
    }
}

/// The caller of a native session, unless it has expired (the embedded store keeps expired
/// records until its purge, so expiry is checked here, not only by Redis' TTL).
pub fn native_caller(s: &SessionRecord, now: i64) -> Option<Caller> {
    (s.expires_at > now).then(|| Caller {
        user_id: s.user_id.clone(),
        roles: s.roles.clone(),
        expires_at: Some(s.expires_at),
    })
}

/// The value of cookie `name` when the request carries exactly one distinct value for it.
/// Several different values (cookie tossing from a sibling domain) count as none, and so
/// does an oversized `Cookie` header.
pub fn single_cookie(req: &HttpRequest, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    let mut total = 0usize;
    for header in req.headers().get_all(actix_web::http::header::COOKIE) {
        let raw = header.to_str().ok()?;
        total += raw.len();
        if total > 2 * MAX_CREDENTIAL {
            return None;
        }
        for cookie in cookie::Cookie::split_parse(raw).flatten() {
            if cookie.name() != name {
                continue;
            }
            match &found {
                Some(prev) if prev != cookie.value() => return None,
                _ => found = Some(cookie.value().to_owned()),
            }
        }
    }
    found.filter(|v| v.len() <= MAX_CREDENTIAL)
}

/// A user id from a JSON value: a string, or an integer (Django's primary keys).
pub fn user_from_json(v: &serde_json::Value) -> Option<UserId> {
    match v {
        serde_json::Value::String(s) => UserId::parse(s).ok(),
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
            UserId::parse(&n.to_string()).ok()
        }
        _ => None,
    }
}

/// Roles from a JSON value: an array of strings (anything else is no roles).
pub fn roles_from_json(v: Option<&serde_json::Value>) -> Vec<String> {
    v.and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|r| r.as_str())
                .filter(|r| !r.is_empty() && r.len() <= 64)
                .map(str::to_owned)
                .take(32)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;
    use serde_json::json;

    #[test]
    fn user_ids_from_strings_and_integers_only() {
        assert_eq!(user_from_json(&json!("alice")), UserId::parse("alice").ok());
        assert_eq!(user_from_json(&json!(42)), UserId::parse("42").ok());
        for bad in [
            json!(null),
            json!(1.5),
            json!(-1.5),
            json!(["a"]),
            json!({"a": 1}),
            json!("a/b"),
            json!(""),
        ] {
            assert_eq!(user_from_json(&bad), None, "{bad}");
        }
    }

    #[test]
    fn roles_are_strings_in_an_array() {
        assert_eq!(
            roles_from_json(Some(&json!(["staff", 1, "", "x"]))),
            vec!["staff", "x"]
        );
        assert!(roles_from_json(Some(&json!("staff"))).is_empty());
        assert!(roles_from_json(None).is_empty());
    }

    #[test]
    fn one_cookie_value_or_none() {
        let req = TestRequest::default()
            .insert_header(("cookie", "a=1; b=2"))
            .to_http_request();
        assert_eq!(single_cookie(&req, "b").as_deref(), Some("2"));
        assert_eq!(single_cookie(&req, "c"), None);
        let req = TestRequest::default()
            .insert_header(("cookie", "a=1; a=1"))
            .to_http_request();
        assert_eq!(single_cookie(&req, "a").as_deref(), Some("1"));
        let req = TestRequest::default()
            .insert_header(("cookie", "a=1; a=2"))
            .to_http_request();
        assert_eq!(single_cookie(&req, "a"), None, "two values: cookie tossing");
        let big = format!("a={}", "x".repeat(MAX_CREDENTIAL + 1));
        let req = TestRequest::default()
            .insert_header(("cookie", big))
            .to_http_request();
        assert_eq!(single_cookie(&req, "a"), None);
    }

    #[test]
    fn native_sessions_expire() {
        let s = SessionRecord {
            user_id: UserId::parse("alice").unwrap(),
            roles: vec![],
            expires_at: 100,
        };
        assert!(native_caller(&s, 99).is_some());
        assert!(native_caller(&s, 100).is_none());
    }
}
