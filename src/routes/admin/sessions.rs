//! Native sessions: created for an existing user, ended one by one or all of a user's at once.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AdminConfig;
use super::change::Change;
use super::error::{AdminError, ErrorBody, Missing};
use super::params::{UserPath, user_id, whole_number_opt};
use crate::model::{EventKind, SessionRecord};
use crate::state::Shared;
use crate::store::Written;
use crate::tokens::SessionId;

#[derive(Serialize, ToSchema)]
pub struct LogoutBody {
    /// How many sessions ended.
    sessions: u64,
}

/// Log the user out everywhere (native sessions).
#[utoipa::path(delete, path = "/v1/users/{user_id}/sessions", tag = "sessions",
    params(UserPath),
    responses((status = 200, body = LogoutBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn logout_everywhere(
    req: HttpRequest,
    path: web::Path<UserPath>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = path.user_id()?;
    let change = Change::begin(&shared, &req)?;
    if shared.store.user(&id).await?.is_none() {
        return Err(AdminError::NotFound(Missing::User));
    }
    let sessions = shared.store.delete_user_sessions(&id).await?;
    change.record(EventKind::LogoutAll, Some(&id), None);
    Ok(HttpResponse::Ok().json(LogoutBody { sessions }))
}

/// Default lifetime of a session when the call names none: one day.
const DEFAULT_SESSION_TTL: u64 = 86_400;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    #[schema(pattern = r"^[A-Za-z0-9._@-]{1,128}$")]
    user_id: String,
    /// Default one day; at most `session.max_ttl_secs`.
    #[schema(minimum = 1)]
    #[serde(default, deserialize_with = "whole_number_opt")]
    ttl_seconds: Option<u64>,
    /// Roles, e.g. `staff` (see `policy.read_all_roles`).
    #[serde(default)]
    #[schema(max_items = 32, inline)]
    roles: Vec<Role>,
}

/// A role name.
#[derive(Deserialize, ToSchema)]
#[schema(pattern = r"^[A-Za-z0-9._:-]{1,64}$")]
#[serde(transparent)]
pub struct Role(String);

#[derive(Serialize, ToSchema)]
pub struct SessionBody {
    /// Put this in the session cookie. It is shown once; the store keeps only its hash.
    session_id: String,
    /// RFC 3339.
    expires_at: String,
}

fn valid_role(r: &str) -> bool {
    (1..=64).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// Create a native session for an existing user.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = SessionRequest,
    responses((status = 201, body = SessionBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn create_session(
    req: HttpRequest,
    body: web::Json<SessionRequest>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let body = body.into_inner();
    let user = user_id(&body.user_id)?;
    let ttl = body.ttl_seconds.unwrap_or(DEFAULT_SESSION_TTL);
    if ttl == 0 || ttl > config.max_session_ttl {
        return Err(AdminError::InvalidInput(format!(
            "ttl_seconds: must be between 1 and {}",
            config.max_session_ttl
        )));
    }
    let roles: Vec<String> = body.roles.into_iter().map(|r| r.0).collect();
    if roles.len() > 32 || !roles.iter().all(|r| valid_role(r)) {
        return Err(AdminError::InvalidInput(
            "roles: at most 32, each 1-64 characters of A-Z a-z 0-9 . _ : -".into(),
        ));
    }
    Change::begin(&shared, &req)?;
    let now = crate::clock::now();
    let expires_at = crate::clock::expiry(ttl);
    let id = SessionId::generate()?;
    let record = SessionRecord {
        user_id: user,
        roles,
        expires_at,
    };
    match shared.store.insert_session(&id.key(), &record, now).await? {
        Written::Done => Ok(HttpResponse::Created().json(SessionBody {
            session_id: id.expose().to_owned(),
            expires_at: crate::clock::rfc3339(expires_at),
        })),
        Written::NoSuchUser => Err(AdminError::NotFound(Missing::User)),
    }
}

/// Log one session out; in force when this returns.
#[utoipa::path(delete, path = "/v1/sessions/{session_id}", tag = "sessions",
    params(("session_id" = String, Path, pattern = r"^[0-9a-f]{64}$")),
    responses((status = 204, description = "Logged out"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_session(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = SessionId::parse(&path)
        .map_err(|e| AdminError::InvalidInput(format!("session_id: {e}")))?;
    let change = Change::begin(&shared, &req)?;
    if shared.store.delete_session(&id.key()).await? {
        change.record(EventKind::Logout, None, None);
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(AdminError::NotFound(Missing::Session))
    }
}
