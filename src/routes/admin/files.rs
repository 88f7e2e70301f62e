//! `/v1/files/{file_id}`: a file's metadata, its visibility and disposition, its token, its
//! deletion.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::change::Change;
use super::error::{AdminError, ErrorBody, Missing, OrMissing};
use super::params::FilePath;
use super::{AdminConfig, remove_bytes, url_of};
use crate::disposition::DispositionKind;
use crate::model::{EventKind, FileChange, FileRecord, Visibility};
use crate::state::Shared;
use crate::tokens::FileToken;

#[derive(Serialize, ToSchema)]
pub struct FileBody {
    file_id: String,
    user_id: String,
    filename: String,
    /// The current public path, percent-encoded.
    url: String,
    size: u64,
    content_type: String,
    visibility: Visibility,
    /// As stored; only passive types (raster images, audio, video, PDF, plain text) are ever
    /// sent inline, whatever this says.
    disposition: DispositionKind,
    /// Users the file is shared with.
    grants: Vec<String>,
    /// Allowed GET requests so far (each Range request counts).
    downloads: u64,
    /// RFC 3339.
    created_at: String,
}

pub(super) async fn file_body(
    shared: &Shared,
    config: &AdminConfig,
    f: FileRecord,
) -> Result<FileBody, AdminError> {
    let url = url_of(shared, config, &f).await?;
    let downloads = shared.store.downloads(&f.file_id).await?;
    Ok(FileBody {
        file_id: f.file_id.to_string(),
        user_id: f.owner.to_string(),
        filename: f.filename,
        url,
        size: f.size,
        content_type: f.content_type,
        visibility: f.visibility,
        disposition: f.disposition,
        grants: f.grants.iter().map(ToString::to_string).collect(),
        downloads,
        created_at: crate::clock::rfc3339(f.created_at),
    })
}

/// A file's metadata, current URL and download count.
#[utoipa::path(get, path = "/v1/files/{file_id}", tag = "files",
    params(FilePath),
    responses((status = 200, body = FileBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn get_file(
    path: web::Path<FilePath>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = path.file_id()?;
    let f = shared.store.file(&id).await?.or_missing(Missing::File)?;
    Ok(HttpResponse::Ok().json(file_body(&shared, &config, f).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    visibility: Option<Visibility>,
    disposition: Option<DispositionKind>,
}

/// Change who may read a file besides its owner, and how browsers present it.
#[utoipa::path(patch, path = "/v1/files/{file_id}", tag = "files",
    params(FilePath), request_body = PatchRequest,
    responses((status = 200, body = FileBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn patch_file(
    req: HttpRequest,
    path: web::Path<FilePath>,
    body: web::Json<PatchRequest>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = path.file_id()?;
    let body = body.into_inner();
    let mut changes = Vec::new();
    if let Some(v) = body.visibility {
        changes.push((FileChange::Visibility(v), EventKind::Visibility));
    }
    if let Some(d) = body.disposition {
        changes.push((FileChange::Disposition(d), EventKind::Disposition));
    }
    if changes.is_empty() {
        return Err(AdminError::InvalidInput(
            "give visibility, disposition, or both".into(),
        ));
    }
    let change = Change::begin(&shared, &req)?;
    let mut latest = None;
    for (what, kind) in &changes {
        let f = shared
            .store
            .update_file(&id, what)
            .await?
            .or_missing(Missing::File)?;
        change.record(*kind, Some(&f.owner), Some(&id));
        latest = Some(f);
    }
    let f = latest.or_missing(Missing::File)?;
    Ok(HttpResponse::Ok().json(file_body(&shared, &config, f).await?))
}

/// Delete a file: its token dies when this returns, then its bytes are removed.
#[utoipa::path(delete, path = "/v1/files/{file_id}", tag = "files",
    params(FilePath),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(super) async fn delete_file(
    req: HttpRequest,
    path: web::Path<FilePath>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = path.file_id()?;
    let change = Change::begin(&shared, &req)?;
    let f = shared
        .store
        .delete_file(&id)
        .await?
        .or_missing(Missing::File)?;
    remove_bytes(&shared, &f.storage_path).await;
    change.record(EventKind::DeleteFile, Some(&f.owner), Some(&id));
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct RotatedFileBody {
    file_id: String,
    file_token: String,
    /// The new public path.
    url: String,
}

/// Give the file a new token: the old URL and every share link stop working when this
/// returns. No bytes move.
#[utoipa::path(post, path = "/v1/files/{file_id}/rotate-token", tag = "files",
    params(FilePath),
    responses((status = 200, body = RotatedFileBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub(super) async fn rotate_file_token(
    req: HttpRequest,
    path: web::Path<FilePath>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = path.file_id()?;
    let change = Change::begin(&shared, &req)?;
    let f = shared
        .store
        .update_file(&id, &FileChange::Rotate(FileToken::generate()?))
        .await?
        .or_missing(Missing::File)?;
    change.record(EventKind::RotateFileToken, Some(&f.owner), Some(&id));
    Ok(HttpResponse::Ok().json(RotatedFileBody {
        file_id: id.to_string(),
        file_token: f.token.as_str().to_owned(),
        url: url_of(&shared, &config, &f).await?,
    }))
}
