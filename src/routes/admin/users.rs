//! `/v1/users/{user_id}`: ensure a user, rotate its token, delete it with everything it owns.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::change::Change;
use super::error::{AdminError, ErrorBody, Missing, OrMissing};
use super::params::UserPath;
use super::remove_bytes;
use crate::model::{EventKind, UserRecord};
use crate::state::Shared;
use crate::tokens::UserToken;

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    user_id: String,
    /// The first path segment of every URL of this user's files.
    user_token: String,
}

impl From<UserRecord> for UserBody {
    fn from(user: UserRecord) -> Self {
        Self {
            user_id: user.user_id.to_string(),
            user_token: user.token.as_str().to_owned(),
        }
    }
}

/// Ensure a user exists (idempotent).
#[utoipa::path(put, path = "/v1/users/{user_id}", tag = "users",
    params(UserPath),
    responses(
        (status = 200, description = "The user existed", body = UserBody),
        (status = 201, description = "The user was created", body = UserBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub(super) async fn put_user(
    req: HttpRequest,
    path: web::Path<UserPath>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = path.user_id()?;
    Change::begin(&shared, &req)?;
    let (user, created) = shared
        .store
        .ensure_user(&id, &UserToken::generate()?, crate::clock::now())
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(UserBody::from(user)))
}

/// Give the user a new token: every URL with the old one stops working when this returns.
#[utoipa::path(post, path = "/v1/users/{user_id}/rotate-token", tag = "users",
    params(UserPath),
    responses((status = 200, body = UserBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn rotate_user_token(
    req: HttpRequest,
    path: web::Path<UserPath>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = path.user_id()?;
    let change = Change::begin(&shared, &req)?;
    let user = shared
        .store
        .rotate_user_token(&id, &UserToken::generate()?)
        .await?
        .or_missing(Missing::User)?;
    change.record(EventKind::RotateUserToken, Some(&id), None);
    Ok(HttpResponse::Ok().json(UserBody::from(user)))
}

/// Delete the user, its files (and their bytes), the grants it holds, and its sessions.
#[utoipa::path(delete, path = "/v1/users/{user_id}", tag = "users",
    params(UserPath),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_user(
    req: HttpRequest,
    path: web::Path<UserPath>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = path.user_id()?;
    let change = Change::begin(&shared, &req)?;
    let deleted = shared
        .store
        .delete_user(&id)
        .await?
        .or_missing(Missing::User)?;
    for p in &deleted.files {
        remove_bytes(&shared, p).await;
    }
    change.record(EventKind::DeleteUser, Some(&id), None);
    tracing::info!(user = %id, files = deleted.files.len(), sessions = deleted.sessions, "User deleted.");
    Ok(HttpResponse::NoContent().finish())
}
