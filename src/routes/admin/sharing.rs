//! Sharing: grants to other users, and signed, expiring share links.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::change::Change;
use super::error::{AdminError, ErrorBody, Missing, OrMissing};
use super::params::{FilePath, GrantPath, whole_number};
use super::{AdminConfig, public_url};
use crate::model::{EventKind, FileChange};
use crate::state::Shared;

#[derive(Serialize, ToSchema)]
pub struct GrantBody {
    file_id: String,
    user_id: String,
}

/// Share a file with another user (their sessions may then read it).
#[utoipa::path(put, path = "/v1/files/{file_id}/grants/{user_id}", tag = "sharing",
    params(GrantPath),
    responses((status = 200, body = GrantBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn put_grant(
    req: HttpRequest,
    path: web::Path<GrantPath>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let (id, grantee) = (path.file_id()?, path.user_id()?);
    let change = Change::begin(&shared, &req)?;
    if shared.store.user(&grantee).await?.is_none() {
        return Err(AdminError::NotFound(Missing::User));
    }
    shared
        .store
        .update_file(&id, &FileChange::Grant(grantee.clone()))
        .await?
        .or_missing(Missing::File)?;
    change.record(EventKind::Grant, Some(&grantee), Some(&id));
    Ok(HttpResponse::Ok().json(GrantBody {
        file_id: id.to_string(),
        user_id: grantee.to_string(),
    }))
}

/// Stop sharing a file with a user; in force when this returns.
#[utoipa::path(delete, path = "/v1/files/{file_id}/grants/{user_id}", tag = "sharing",
    params(GrantPath),
    responses((status = 204, description = "Not shared (any more)"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_grant(
    req: HttpRequest,
    path: web::Path<GrantPath>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let (id, grantee) = (path.file_id()?, path.user_id()?);
    let change = Change::begin(&shared, &req)?;
    shared
        .store
        .update_file(&id, &FileChange::Revoke(grantee.clone()))
        .await?
        .or_missing(Missing::File)?;
    change.record(EventKind::Revoke, Some(&grantee), Some(&id));
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Seconds until the link expires (at most `links.max_ttl_secs`).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "whole_number")]
    ttl_seconds: u64,
}

#[derive(Serialize, ToSchema)]
pub struct LinkBody {
    /// Path and query: readable without a session until it expires or the token rotates.
    url: String,
    /// RFC 3339.
    expires_at: String,
}

/// A signed, expiring share link to one file.
#[utoipa::path(post, path = "/v1/files/{file_id}/links", tag = "sharing",
    params(FilePath), request_body = LinkRequest,
    responses((status = 201, body = LinkBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn create_link(
    req: HttpRequest,
    path: web::Path<FilePath>,
    body: web::Json<LinkRequest>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = path.file_id()?;
    let ttl = body.ttl_seconds;
    if ttl == 0 || ttl > config.max_link_ttl {
        return Err(AdminError::InvalidInput(format!(
            "ttl_seconds: must be between 1 and {}",
            config.max_link_ttl
        )));
    }
    if !config.links.enabled() {
        return Err(AdminError::LinksDisabled);
    }
    // A link is signed, not stored: it needs no current schema, only its audit event.
    let change = Change::unstored(&shared, &req);
    let f = shared.store.file(&id).await?.or_missing(Missing::File)?;
    let owner = shared
        .store
        .user(&f.owner)
        .await?
        .or_missing(Missing::File)?;
    let expires_at = crate::clock::expiry(ttl);
    let query = config
        .links
        .sign(&owner.token, &f.token, &f.filename, expires_at)
        .ok_or(AdminError::LinksDisabled)?;
    change.record(EventKind::Link, Some(&f.owner), Some(&id));
    Ok(HttpResponse::Created().json(LinkBody {
        url: format!(
            "{}?{query}",
            public_url(&config.media_prefix, &owner.token, &f.token, &f.filename)
        ),
        expires_at: crate::clock::rfc3339(expires_at),
    }))
}
