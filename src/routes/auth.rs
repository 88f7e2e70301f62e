//! The auth listener: one handler for every request nginx's `auth_request` sends.
//!
//! It reads `X-Original-URI` (nginx's raw `$request_uri`), `X-Original-Method` and the
//! caller's cookie, asks the store once, runs the pure policy, and answers 200 (with the
//! storage path and response headers for nginx), 401, 403, or 503 when it cannot decide in
//! time. It never answers anything else, and never 200 in doubt.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::decision_cache;
use crate::disposition;
use crate::links::{LinkCheck, LinkKeys};
use crate::metrics::{Outcome, Refusal};
use crate::model::Caller;
use crate::model::{EventDecision, EventKind, FileRecord};
use crate::paths::MediaPath;
use crate::policy::{self, Decision, DenyReason, Policy};
use crate::sessions::Sources;
use crate::state::{Shared, event_at};
use crate::store::Lookup;

/// What the decision handler needs, built once at start-up.
pub struct AuthConfig {
    pub media_prefix: String,
    /// Where the caller's session comes from.
    pub sources: Sources,
    pub policy: Policy,
    /// Bound on the whole decision (the store lookup and any session source after it); past
    /// it the answer is 503.
    pub timeout: Duration,
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

/// The one place a decision becomes a status code, and the outcome it is counted as.
fn respond(decision: &Decision<'_>) -> (HttpResponse, Outcome) {
    match decision {
        Decision::Allow(file) => (allow(file), Outcome::Allow),
        Decision::NoCredential => (
            HttpResponse::new(StatusCode::UNAUTHORIZED),
            Outcome::Unauthorized,
        ),
        Decision::Forbidden(_) => (HttpResponse::new(StatusCode::FORBIDDEN), Outcome::Forbidden),
    }
}

// Named once: a name given as `&str` is parsed and checked again on every request and response.
const X_MEDIA_PATH: HeaderName = HeaderName::from_static("x-media-path");
const X_MEDIA_DISPOSITION: HeaderName = HeaderName::from_static("x-media-disposition");
const X_MEDIA_TYPE: HeaderName = HeaderName::from_static("x-media-type");
const X_MEDIA_CSP: HeaderName = HeaderName::from_static("x-media-csp");
const X_ACCEL_EXPIRES: HeaderName = HeaderName::from_static("x-accel-expires");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_REMOTE_ADDR: HeaderName = HeaderName::from_static("x-original-remote-addr");

fn allow(file: &FileRecord) -> HttpResponse {
    let shown = disposition::present(&file.content_type, file.disposition);
    let mut r = HttpResponse::Ok();
    r.insert_header((X_MEDIA_PATH, file.storage_path.as_str()))
        .insert_header((
            X_MEDIA_DISPOSITION,
            disposition::header_value(shown.kind, &file.filename),
        ))
        .insert_header((X_MEDIA_TYPE, shown.content_type));
    if shown.sandbox {
        r.insert_header((X_MEDIA_CSP, "sandbox"));
    }
    r.finish()
}

/// The answer when the decision cannot be made.
fn unavailable() -> (HttpResponse, Outcome) {
    (
        HttpResponse::new(StatusCode::SERVICE_UNAVAILABLE),
        Outcome::Unavailable,
    )
}

fn header(req: &HttpRequest, name: HeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// At most one warning per second per kind: a misconfigured caller or a store outage would
/// otherwise write a line per request. Returns how many were held back since the last one,
/// or `None` while still within the second.
pub struct Throttle {
    last: std::sync::atomic::AtomicU64,
    held: std::sync::atomic::AtomicU64,
}

impl Throttle {
    pub const fn new() -> Self {
        Self {
            last: std::sync::atomic::AtomicU64::new(0),
            held: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = u64::try_from(crate::clock::now()).unwrap_or(0);
        let last = self.last.load(Relaxed);
        if now > last
            && self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_ok()
        {
            Some(self.held.swap(0, Relaxed))
        } else {
            self.held.fetch_add(1, Relaxed);
            None
        }
    }
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new()
    }
}

static NO_URI_WARNING: Throttle = Throttle::new();
static STORE_WARNING: Throttle = Throttle::new();

/// The client's address as nginx forwards it, if it is one (kept as nginx wrote it).
fn client(req: &HttpRequest) -> Option<String> {
    header(req, X_ORIGINAL_REMOTE_ADDR)
        .filter(|a| a.parse::<IpAddr>().is_ok())
        .map(str::to_owned)
}

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

/// Records a read of a real file, decided at `at_ms`, in the audit log; a refusal that named
/// no file is only counted (see [`Refusal`]).
fn audit(
    at_ms: i64,
    shared: &Shared,
    req: &HttpRequest,
    lookup: &Lookup,
    caller: Option<&Caller>,
    decision: &Decision<'_>,
    get: bool,
) {
    let (file, allowed) = match decision {
        Decision::Allow(f) => (&f.file_id, true),
        Decision::Forbidden(DenyReason::UnknownFile) => {
            return shared.metrics.refused(Refusal::UnknownFile);
        }
        _ => match &lookup.file {
            Some(f) => (&f.file_id, false),
            None => return shared.metrics.refused(Refusal::UnknownFile),
        },
    };
    let mut e = event_at(
        at_ms,
        EventKind::Read,
        caller.map(|c| &c.user_id),
        Some(file),
        Some(if allowed {
            EventDecision::Allow
        } else {
            EventDecision::Deny
        }),
        client(req),
    );
    e.download = allowed && get;
    shared.audit.record(e);
}

/// A refusal before the path named a file: counted, not audited.
fn refuse(shared: &Shared, why: Refusal, reason: DenyReason) -> (HttpResponse, Outcome) {
    shared.metrics.refused(why);
    respond(&Decision::Forbidden(reason))
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
    let native = config.sources.native_key(req);
    let lookup = tokio::time::timeout_at(
        deadline,
        shared
            .store
            .lookup(&path.user_token, &path.file_token, native.as_ref()),
    )
    .await;
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
    // Other sources cost a round trip (redis-json) or a signature check (jwt): only when the
    // tokens name a file at all.
    let caller = if lookup.file.is_some() {
        match tokio::time::timeout_at(
            deadline,
            config.sources.resolve(req, lookup.session.as_ref(), now),
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
    let decision = policy::decide(&config.policy, &path, &lookup, caller.as_ref(), link);
    let (mut response, outcome) = respond(&decision);
    if matches!(decision, Decision::Allow(_)) && config.decision_cache_secs > 0 {
        let link_expiry = match link {
            LinkCheck::Valid { expires_at } => Some(expires_at),
            _ => None,
        };
        let until = decision_cache::reuse_until(
            now,
            config.decision_cache_secs,
            [caller.as_ref().and_then(|c| c.expires_at), link_expiry],
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

#[cfg(test)]
mod tests {
    use super::{Throttle, client};
    use actix_web::test::TestRequest;

    #[test]
    fn the_client_address_is_kept_only_when_it_is_one_address() {
        let with = |v: &str| {
            client(
                &TestRequest::default()
                    .insert_header(("X-Original-Remote-Addr", v))
                    .to_http_request(),
            )
        };
        assert_eq!(with("203.0.113.7").as_deref(), Some("203.0.113.7"));
        assert_eq!(with("2001:db8::1").as_deref(), Some("2001:db8::1"));
        for bad in [
            "",
            "not an ip",
            "10.0.0.1, 10.0.0.2",
            "10.0.0.1:443",
            " 10.0.0.1",
        ] {
            assert_eq!(with(bad), None, "{bad:?}");
        }
        assert_eq!(client(&TestRequest::default().to_http_request()), None);
    }

    #[test]
    fn one_warning_per_second_and_a_count_of_the_rest() {
        let t = Throttle::new();
        assert_eq!(t.allow(), Some(0));
        for _ in 0..5 {
            assert_eq!(t.allow(), None);
        }
        // The next second releases one line carrying the count.
        t.last.store(0, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(t.allow(), Some(5));
    }
}
