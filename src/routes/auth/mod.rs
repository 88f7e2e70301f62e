//! The auth listener: one handler for every request nginx's `auth_request` sends.
//!
//! It reads `X-Original-URI` (nginx's raw `$request_uri`), `X-Original-Method` and the
//! caller's cookie, asks the store once, runs the pure policy, and answers 200 (with the
//! storage path and response headers for nginx), 401, 403, or 503 when it cannot decide in
//! time. It never answers anything else, and never 200 in doubt.

mod answer;
mod record;
mod throttle;

use std::rc::Rc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use tokio::time::Instant;

use answer::{
    X_ACCEL_EXPIRES, X_MEDIA_ETAG, X_MEDIA_UPSTREAM, X_ORIGINAL_METHOD, X_ORIGINAL_URI, respond,
    unavailable,
};
use record::{audit, refuse};
pub use throttle::Throttle;

use crate::decision_cache;
use crate::links::{LinkCheck, LinkKeys};
use crate::metrics::{Outcome, Refusal};
use crate::paths::MediaPath;
use crate::policy::{self, Decision, DenyReason, Found, Policy};
use crate::sessions::Sources;
use crate::state::Shared;
use crate::store::Question;

/// What the decision handler needs, built once at start-up.
pub struct AuthConfig {
    /// The public URL prefix the paths must start with.
    pub media_prefix: String,
    /// Where the caller's session comes from.
    pub sources: Sources,
    /// The decision's settings (`policy.read_all_roles`).
    pub policy: Policy,
    /// Bound on the whole decision (the store lookup and any session source after it); past
    /// it the answer is 503.
    pub timeout: Duration,
    /// The keys share links are checked with.
    pub links: LinkKeys,
    /// nginx's decision cache: at most this many seconds per allow; 0 when it is off.
    pub decision_cache_secs: u32,
}

/// Routes every request to the decision. Both halves of its state are held in one `Rc` per
/// worker thread: cloning it per request touches no counter shared with the other workers,
/// where a `web::Data` extractor per half would look each up in the app's type map and bump
/// a shared atomic count.
pub fn configure(
    shared: web::Data<Shared>,
    config: web::Data<AuthConfig>,
) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        let state = Rc::new((shared, config));
        cfg.default_service(web::to(move |req: HttpRequest| {
            let state = Rc::clone(&state);
            async move { check(req, &state.0, &state.1).await }
        }));
    }
}

pub(super) fn header(req: &HttpRequest, name: HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

static NO_URI_WARNING: Throttle = Throttle::new();
static STORE_WARNING: Throttle = Throttle::new();

async fn check(req: HttpRequest, shared: &Shared, config: &AuthConfig) -> HttpResponse {
    let started = Instant::now();
    // One deadline for every wait of the decision, so that the answer comes within the bound
    // even when a session source's round trip follows a slow lookup.
    let deadline = started + config.timeout;
    let (mut response, outcome) = decide(&req, shared, config, deadline).await;
    // With nginx's decision cache on, every answer but an allow (which `decide` marks with
    // how long it may be reused) says it is not to be kept, whatever nginx's own settings
    // would make of it.
    if config.decision_cache_secs > 0 && response.status() != StatusCode::OK {
        response
            .headers_mut()
            .insert(X_ACCEL_EXPIRES, decision_cache::DO_NOT_KEEP);
    }
    let m = &shared.metrics;
    m.decided(outcome);
    m.decision_seconds.observe(started.elapsed().as_secs_f64());
    response
}

/// The decision and its outcome for metrics.
async fn decide(
    req: &HttpRequest,
    shared: &Shared,
    config: &AuthConfig,
    deadline: Instant,
) -> (HttpResponse, Outcome) {
    // A header that is present but not visible ASCII (a raw byte nginx passed on) is a bad
    // path, not a missing header: only a missing one means the snippet is not in use.
    let Some(uri) = req.headers().get(X_ORIGINAL_URI) else {
        if let Some(held) = NO_URI_WARNING.allow() {
            tracing::warn!(
                suppressed = held,
                "Subrequest without X-Original-URI: the nginx snippet is not in use; denying."
            );
        }
        return refuse(shared, Refusal::BadPath, DenyReason::BadPath);
    };
    let method = header(req, X_ORIGINAL_METHOD);
    if !matches!(method, Some("GET" | "HEAD")) {
        return refuse(shared, Refusal::Method, DenyReason::Method);
    }
    let path = match uri
        .to_str()
        .map_err(|_| crate::paths::PathError::Byte)
        .and_then(|uri| MediaPath::parse(uri, &config.media_prefix))
    {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(reason = %e, "Refused malformed media path.");
            return refuse(shared, Refusal::BadPath, DenyReason::BadPath);
        }
    };
    if !shared.schema.is_current() {
        return unavailable();
    }
    let presented = config.sources.presented(req);
    let question = Question {
        user_token: &path.user_token,
        file_token: &path.file_token,
        session: presented.native.as_ref(),
        forwarded: presented.kept_key(&config.sources),
    };
    let lookup = tokio::time::timeout_at(deadline, shared.store.ask(&question)).await;
    let lookup = match lookup {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            shared.metrics.store_errors.inc();
            if let Some(held) = STORE_WARNING.allow() {
                let cause = std::error::Error::source(&e).map(ToString::to_string);
                tracing::warn!(error = %e, cause, suppressed = held, "Store lookup failed; answering 503.");
            }
            return unavailable();
        }
        Err(_) => {
            shared.metrics.store_errors.inc();
            if let Some(held) = STORE_WARNING.allow() {
                let timeout_ms = config.timeout.as_millis() as u64;
                tracing::warn!(
                    timeout_ms,
                    suppressed = held,
                    "Store lookup timed out; answering 503."
                );
            }
            return unavailable();
        }
    };
    // One reading of the wall clock for the expiries and the audit event's time.
    let now_ms = crate::clock::now_ms();
    let now = now_ms.div_euclid(1000);
    // Other sources cost a round trip (redis-json, forward) or a signature check (jwt): only when the
    // tokens name a file at all.
    let caller = if lookup.file.is_some() {
        match tokio::time::timeout_at(
            deadline,
            config
                .sources
                .resolve(req, &presented, &lookup, now, &shared.store),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                shared.metrics.store_errors.inc();
                if let Some(held) = STORE_WARNING.allow() {
                    tracing::warn!(error = %e, suppressed = held, "Session source failed; answering 503.");
                }
                return unavailable();
            }
            Err(_) => {
                shared.metrics.store_errors.inc();
                if let Some(held) = STORE_WARNING.allow() {
                    tracing::warn!(
                        suppressed = held,
                        "Session source timed out; answering 503."
                    );
                }
                return unavailable();
            }
        }
    } else {
        None
    };
    let link = config.links.check(&path, now);
    let found = Found {
        user_of_token: lookup.user_of_token.as_ref(),
        file: lookup.file.as_ref(),
    };
    let decision = policy::decide(&config.policy, &path, found, caller.as_ref(), link);
    // From a bucket, nginx fetches the object with a URL signed for this method.
    let upstream = match (&decision, shared.storage.bucket()) {
        (Decision::Allow(file), Some(bucket)) => {
            let head = method == Some("HEAD");
            match tokio::time::timeout_at(deadline, bucket.fetch_url(&file.storage_path, head))
                .await
                .map(|r| r.map(HeaderValue::try_from))
            {
                Ok(Ok(Ok(url))) => Some(url),
                failed => {
                    shared.metrics.store_errors.inc();
                    if let Some(held) = STORE_WARNING.allow() {
                        let error = match failed {
                            Ok(Err(e)) => e.to_string(),
                            Ok(Ok(Err(e))) => e.to_string(),
                            _ => "no URL in time".to_owned(),
                        };
                        tracing::warn!(
                            error,
                            suppressed = held,
                            "Could not sign the bucket URL; answering 503."
                        );
                    }
                    return unavailable();
                }
            }
        }
        _ => None,
    };
    let (mut response, outcome) = respond(&decision);
    if let (Some(url), Decision::Allow(file)) = (upstream, &decision) {
        let headers = response.headers_mut();
        headers.insert(X_MEDIA_UPSTREAM, url);
        // The bytes of a storage path never change: its file id is a strong validator.
        if let Ok(etag) = HeaderValue::try_from(format!("\"{}\"", file.file_id)) {
            headers.insert(X_MEDIA_ETAG, etag);
        }
    }
    if matches!(decision, Decision::Allow(_)) && config.decision_cache_secs > 0 {
        let link_expiry = match link {
            LinkCheck::Valid { expires_at } => Some(expires_at),
            _ => None,
        };
        // A kept allow must not outlive the bucket URL it carries (signed at most half its
        // validity ago).
        let url_expiry = shared
            .storage
            .bucket()
            .map(|b| now + i64::try_from(b.presign_secs() / 2).unwrap_or(0));
        let until = decision_cache::reuse_until(
            now,
            config.decision_cache_secs,
            [
                caller.as_ref().and_then(|c| c.expires_at),
                link_expiry,
                url_expiry,
            ],
        );
        response
            .headers_mut()
            .insert(X_ACCEL_EXPIRES, decision_cache::header_value(until));
    }
    tracing::debug!(
        file = %path.file_token.fingerprint(),
        decision = outcome.label(),
        reason = ?match &decision { Decision::Forbidden(r) => Some(*r), _ => None },
        "Decided."
    );
    audit(
        now_ms,
        shared,
        req,
        &lookup,
        caller.as_ref(),
        &decision,
        method == Some("GET"),
    );
    (response, outcome)
}
