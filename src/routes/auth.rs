//! The auth listener: one handler for every request nginx's `auth_request` sends.
//!
//! It reads `X-Original-URI` (nginx's raw `$request_uri`), `X-Original-Method` and the
//! caller's cookie, asks the store once, runs the pure policy, and answers 200 (with the
//! storage path and response headers for nginx), 401, 403, or 503 when it cannot decide in
//! time. It never answers anything else, and never 200 in doubt.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::disposition;
use crate::paths::MediaPath;
use crate::policy::{self, Decision, DenyReason, Policy};
use crate::state::Shared;
use crate::store::FileRecord;
use crate::tokens::{SessionId, SessionKey};

/// What the decision handler needs, built once at start-up.
pub struct AuthConfig {
    pub media_prefix: String,
    pub session_cookie: String,
    pub policy: Policy,
    /// Bound on the store lookup; past it the answer is 503.
    pub timeout: Duration,
}

/// Longest `Cookie` header considered; beyond it the request has no session. Browsers cap a
/// cookie at 4 KiB, and nginx's default header buffer is 8 KiB.
const MAX_COOKIE_HEADER: usize = 8192;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(check));
}

/// The one place a decision becomes a status code.
fn respond(decision: &Decision<'_>) -> HttpResponse {
    match decision {
        Decision::Allow(file) => allow(file),
        Decision::NoCredential => HttpResponse::new(StatusCode::UNAUTHORIZED),
        Decision::Forbidden(_) => HttpResponse::new(StatusCode::FORBIDDEN),
    }
}

fn allow(file: &FileRecord) -> HttpResponse {
    let kind = disposition::effective(file.disposition, &file.content_type);
    let mut r = HttpResponse::Ok();
    r.insert_header(("X-Media-Path", file.storage_path.as_str()))
        .insert_header((
            "X-Media-Disposition",
            disposition::header_value(kind, &file.filename),
        ))
        .insert_header(("X-Media-Type", file.content_type.as_str()));
    if disposition::is_active_content(&file.content_type) {
        r.insert_header(("X-Media-CSP", "sandbox"));
    }
    r.finish()
}

fn unavailable() -> HttpResponse {
    HttpResponse::new(StatusCode::SERVICE_UNAVAILABLE)
}

/// The caller's native session key, if exactly one well-formed session cookie is present.
/// Several different values (cookie tossing from a sibling domain) count as none.
fn session_key(req: &HttpRequest, name: &str) -> Option<SessionKey> {
    let mut found: Option<SessionId> = None;
    let mut total = 0usize;
    for header in req.headers().get_all("cookie") {
        let raw = header.to_str().ok()?;
        total += raw.len();
        if total > MAX_COOKIE_HEADER {
            return None;
        }
        for cookie in cookie::Cookie::split_parse(raw).flatten() {
            if cookie.name() != name {
                continue;
            }
            let id = SessionId::parse(cookie.value()).ok()?;
            match &found {
                Some(prev) if prev.expose() != id.expose() => return None,
                _ => found = Some(id),
            }
        }
    }
    found.map(|id| id.key())
}

fn header<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

async fn check(
    req: HttpRequest,
    shared: web::Data<Shared>,
    config: web::Data<AuthConfig>,
) -> HttpResponse {
    let Some(uri) = header(&req, "x-original-uri") else {
        tracing::warn!(
            "Subrequest without X-Original-URI: the nginx snippet is not in use; denying."
        );
        return respond(&Decision::Forbidden(DenyReason::BadPath));
    };
    if !matches!(header(&req, "x-original-method"), Some("GET" | "HEAD")) {
        return respond(&Decision::Forbidden(DenyReason::Method));
    }
    let path = match MediaPath::parse(uri, &config.media_prefix) {
        Ok(p) => p,
        Err(e) => {
            tracing::debug!(reason = %e, "Refused malformed media path.");
            return respond(&Decision::Forbidden(DenyReason::BadPath));
        }
    };
    if !shared.schema.is_current() {
        return unavailable();
    }
    let session = session_key(&req, &config.session_cookie);
    let lookup = tokio::time::timeout(
        config.timeout,
        shared
            .store
            .lookup(&path.user_token, &path.file_token, session.as_ref()),
    )
    .await;
    let lookup = match lookup {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Store lookup failed; answering 503.");
            return unavailable();
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = config.timeout.as_millis() as u64,
                "Store lookup timed out; answering 503."
            );
            return unavailable();
        }
    };
    let decision = policy::decide(&config.policy, &path, &lookup, crate::clock::now());
    tracing::debug!(
        file = %path.file_token.fingerprint(),
        decision = ?std::mem::discriminant(&decision),
        reason = ?match &decision { Decision::Forbidden(r) => Some(*r), _ => None },
        "Decided."
    );
    respond(&decision)
}
