//! The `forward` source: asks an HTTP endpoint who the caller is (the application's own
//! `whoami` view, or an identity proxy's `/oauth2/auth`), forwarding only the named cookies and,
//! when configured, `Authorization`.
//!
//! A 2xx naming a user is a session; 401 or 403 is none; anything else, or no answer within
//! the bound, is an error (503: closed). Positive answers are kept in the store under a hash of
//! what was forwarded, so that the decision's one round trip brings them back on every replica;
//! at most one request per credential is in flight, however many decisions wait for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::AUTHORIZATION;
use futures_util::future::{BoxFuture, FutureExt, Shared};

use super::{MAX_CREDENTIAL, SourceSettings, single_cookie};
use crate::config::cookie_name_ok;
use crate::ids::UserId;
use crate::model::{Caller, ForwardedCaller};
use crate::store::{Store, StoreError};
use crate::tokens::ForwardKey;

/// Longest `cache_secs`: past it a logout elsewhere would matter more than the saved requests.
pub const MAX_CACHE_SECS: u64 = 3600;

/// Most roles read from one answer, and the longest role name.
const MAX_ROLES: usize = 32;
const MAX_ROLE_LEN: usize = 64;

/// What one endpoint request ended with; shared by every decision waiting for it.
type Answer = Result<Option<ForwardedCaller>, String>;

/// What is forwarded for one request: its hash, and the headers themselves.
pub struct Credentials {
    /// The hash the answer is kept and shared under.
    pub key: ForwardKey,
    cookie: Option<String>,
    authorization: Option<String>,
}

/// A configured `forward` source.
pub struct ForwardSource {
    url: reqwest::Url,
    cookies: Vec<String>,
    forward_authorization: bool,
    user_header: String,
    roles_header: Option<String>,
    cache_secs: u64,
    client: reqwest::Client,
    in_flight: Arc<Mutex<HashMap<ForwardKey, Shared<BoxFuture<'static, Answer>>>>>,
}

/// The same header name rule as the HTTP crate's, checked at start-up.
fn header_ok(name: &str) -> bool {
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

impl ForwardSource {
    /// Builds the source (nothing is sent yet); the error names what is wrong. `timeout`
    /// bounds each request to the endpoint.
    pub fn new(s: &SourceSettings, timeout: Duration) -> Result<Self, String> {
        let SourceSettings::Forward {
            url,
            cookies,
            forward_authorization,
            user_header,
            roles_header,
            cache_secs,
        } = s
        else {
            return Err("not a forward source".into());
        };
        let url = reqwest::Url::parse(url).map_err(|e| format!("url {url:?}: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(format!(
                "url {url}: must be http:// or https:// with a host"
            ));
        }
        if cookies.is_empty() && !forward_authorization {
            return Err("nothing to forward: name `cookies`, or set forward_authorization".into());
        }
        if let Some(bad) = cookies.iter().find(|c| !cookie_name_ok(c)) {
            return Err(format!("cookies: {bad:?} is not a valid cookie name"));
        }
        if let Some(bad) = std::iter::once(user_header)
            .chain(roles_header)
            .find(|h| !header_ok(h))
        {
            return Err(format!("{bad:?} is not a valid header name"));
        }
        if *cache_secs > MAX_CACHE_SECS {
            return Err(format!("cache_secs: at most {MAX_CACHE_SECS}"));
        }
        crate::use_ring_tls();
        let client = reqwest::Client::builder()
            // The endpoint answers who is asking; a redirect (to a login page) is no answer.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            url,
            cookies: cookies.clone(),
            forward_authorization: *forward_authorization,
            user_header: user_header.clone(),
            roles_header: roles_header.clone(),
            cache_secs: *cache_secs,
            client,
            in_flight: Arc::default(),
        })
    }

    /// What this request would forward, or `None` when it carries nothing to forward (no
    /// session, without asking).
    pub fn credentials(&self, req: &HttpRequest) -> Option<Credentials> {
        let pairs: Vec<(&str, String)> = self
            .cookies
            .iter()
            .filter_map(|name| single_cookie(req, name).map(|v| (name.as_str(), v)))
            .collect();
        let authorization = self
            .forward_authorization
            .then(|| req.headers().get(AUTHORIZATION)?.to_str().ok())
            .flatten()
            .filter(|a| a.len() <= MAX_CREDENTIAL)
            .map(str::to_owned);
        if pairs.is_empty() && authorization.is_none() {
            return None;
        }
        let cookie = (!pairs.is_empty()).then(|| {
            pairs
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let key = ForwardKey::of(&[
            self.url.as_str().as_bytes(),
            cookie.as_deref().unwrap_or_default().as_bytes(),
            authorization.as_deref().unwrap_or_default().as_bytes(),
        ]);
        Some(Credentials {
            key,
            cookie,
            authorization,
        })
    }

    /// Whether answers are kept in the store (and so read in the decision's round trip).
    pub fn caches(&self) -> bool {
        self.cache_secs > 0
    }

    /// The caller: the store's kept answer when there is one, else the endpoint's.
    pub async fn resolve(
        &self,
        creds: Option<&Credentials>,
        kept: Option<&ForwardedCaller>,
        now: i64,
        store: &Arc<dyn Store>,
    ) -> Result<Option<Caller>, StoreError> {
        let Some(creds) = creds else { return Ok(None) };
        if let Some(kept) = kept.filter(|k| k.expires_at > now) {
            return Ok(Some(caller_of(kept)));
        }
        let answer = self.ask(creds, now, store).await;
        let answer = answer.map_err(|e| StoreError::unavailable(ForwardError(e)))?;
        Ok(answer.as_ref().map(caller_of))
    }

    /// The endpoint's answer for `creds`: joins the request already in flight for them, or
    /// starts one. The request runs as a task of its own, so that it ends (and leaves the
    /// in-flight table) even when every decision waiting for it has given up.
    async fn ask(&self, creds: &Credentials, now: i64, store: &Arc<dyn Store>) -> Answer {
        let shared = {
            let mut in_flight = self
                .in_flight
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(running) = in_flight.get(&creds.key) {
                running.clone()
            } else {
                let request = self.request(creds);
                let (key, table) = (creds.key.clone(), Arc::clone(&self.in_flight));
                let (store, cache_secs) = (Arc::clone(store), self.cache_secs);
                let asked_at_ms = crate::clock::now_ms();
                let task = tokio::spawn(async move {
                    let answer = request.await.map(|found| {
                        found.map(|(user_id, roles)| ForwardedCaller {
                            user_id,
                            roles,
                            expires_at: now + cache_secs.max(1) as i64,
                        })
                    });
                    if let (Ok(Some(caller)), true) = (&answer, cache_secs > 0)
                        && let Err(e) = store
                            .cache_forwarded(&key, caller, cache_secs, asked_at_ms)
                            .await
                    {
                        tracing::debug!(error = %e, "Could not keep a forward answer.");
                    }
                    table
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&key);
                    answer
                });
                let joined = async move {
                    task.await
                        .unwrap_or_else(|e| Err(format!("the request task failed: {e}")))
                }
                .boxed()
                .shared();
                in_flight.insert(creds.key.clone(), joined.clone());
                joined
            }
        };
        shared.await
    }

    /// One request to the endpoint, read into a user and roles.
    fn request(
        &self,
        creds: &Credentials,
    ) -> impl Future<Output = Result<Option<(UserId, Vec<String>)>, String>> + Send + 'static {
        let mut req = self.client.get(self.url.clone());
        if let Some(c) = &creds.cookie {
            req = req.header(reqwest::header::COOKIE, c);
        }
        if let Some(a) = &creds.authorization {
            req = req.header(AUTHORIZATION.as_str(), a);
        }
        let (user_header, roles_header) = (self.user_header.clone(), self.roles_header.clone());
        async move {
            let response = req.send().await.map_err(|e| e.to_string())?;
            let status = response.status();
            let headers = response.headers();
            let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            match status.as_u16() {
                200..=299 => {
                    let user = value(&user_header).and_then(|u| UserId::parse(u.trim()).ok());
                    let roles = roles_header.as_deref().and_then(value).map(parse_roles);
                    // Read to the end so that the connection goes back to the pool.
                    let _ = response.bytes().await;
                    Ok(user.map(|u| (u, roles.unwrap_or_default())))
                }
                401 | 403 => Ok(None),
                other => Err(format!("the endpoint answered {other}")),
            }
        }
    }
}

fn caller_of(c: &ForwardedCaller) -> Caller {
    Caller {
        user_id: c.user_id.clone(),
        roles: c.roles.clone(),
        // nginx keeps an allow no longer than the answer it rests on.
        expires_at: Some(c.expires_at),
    }
}

/// Role names from a comma-separated header: trimmed, non-empty, at most 64 bytes each and 32
/// in all; the rest ignored.
pub fn parse_roles(raw: &str) -> Vec<String> {
    raw.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty() && r.len() <= MAX_ROLE_LEN)
        .take(MAX_ROLES)
        .map(str::to_owned)
        .collect()
}

/// The endpoint could not answer.
#[derive(Debug, thiserror::Error)]
#[error("forward session source: {0}")]
struct ForwardError(String);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the endpoint sends, the roles are few, short, trimmed and comma-free.
        #[test]
        fn any_roles_header_is_bounded(raw in "[ -~]{0,4000}") {
            let roles = parse_roles(&raw);
            prop_assert!(roles.len() <= MAX_ROLES);
            for r in &roles {
                prop_assert!(!r.is_empty() && r.len() <= MAX_ROLE_LEN);
                prop_assert!(!r.contains(',') && r.trim() == r);
            }
        }
    }

    #[test]
    fn roles_are_trimmed_and_bounded() {
        assert_eq!(parse_roles(" staff, ,Editors ,"), vec!["staff", "Editors"]);
        let many = vec!["r"; 40].join(",");
        assert_eq!(parse_roles(&many).len(), MAX_ROLES);
        let long = "x".repeat(MAX_ROLE_LEN + 1);
        assert!(parse_roles(&long).is_empty());
    }
}
