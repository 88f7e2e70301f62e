//! Direct uploads, for large files on object storage: `POST /v1/users/{user_id}/uploads` hands
//! the application a presigned `PUT` (bound to the declared type) that its client sends the bytes
//! to, straight into the bucket under a staging key; `POST /v1/uploads/{upload_id}/complete`
//! checks the object, moves it to the file's storage path and registers it as an upload would.
//! The URL stays valid after completion, so it never points at a registered file's object. A refused upload leaves no record and no object; one never
//! completed is swept when it expires (`startup`'s upkeep), its object with it.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AdminConfig;
use super::change::Change;
use super::error::{AdminError, ErrorBody, Missing, OrMissing};
use super::params::{UserPath, whole_number};
use super::uploads::{NewFile, register, type_allowed};
use crate::filenames;
use crate::ids::FileId;
use crate::media_type::MediaType;
use crate::model::PendingUpload;
use crate::paths::StoragePath;
use crate::state::Shared;
use crate::storage::{BucketStorage, Stored};
use crate::store::Written;

/// A direct upload to begin.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectRequest {
    /// The file's name (cleaned as for an upload).
    #[schema(pattern = r"^(.*[/\\])?[^/\\]*[^/\\\s.\x00-\x1f\x7f-\x9f][^/\\]*$")]
    filename: String,
    /// The file's type; the client must send it as the `PUT`'s `Content-Type`.
    #[schema(
        pattern = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+/[A-Za-z0-9!#$%&'*+.^_`|~-]+(; ?charset=[A-Za-z0-9_-]+)?$",
        max_length = 255
    )]
    content_type: String,
    /// Most bytes the client will send (at most `upload.max_bytes`).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "whole_number")]
    max_bytes: u64,
}

/// Where and how the client sends the bytes.
#[derive(Serialize, ToSchema)]
pub struct DirectBody {
    /// The upload's id, and the file's once completed.
    upload_id: String,
    /// The presigned URL the client sends the bytes to.
    url: String,
    /// Always `PUT`.
    method: &'static str,
    /// Headers the client must send with exactly these values.
    headers: std::collections::BTreeMap<&'static str, String>,
    /// RFC 3339: the URL stops working, and the upload can no longer be completed.
    expires_at: String,
}

/// `{upload_id}` in a path.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct UploadPath {
    /// The upload's id.
    #[param(pattern = r"^[0-9a-f]{32}$")]
    upload_id: String,
}

/// The bucket, or the refusal to do a direct upload without one.
fn bucket(shared: &Shared) -> Result<&BucketStorage, AdminError> {
    shared.storage.bucket().ok_or(AdminError::NoDirectUploads)
}

/// Begin a direct upload: a presigned `PUT` straight into the bucket.
#[utoipa::path(post, path = "/v1/users/{user_id}/uploads", tag = "files",
    params(UserPath), request_body = DirectRequest,
    responses((status = 201, body = DirectBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn begin(
    req: HttpRequest,
    path: web::Path<UserPath>,
    body: web::Json<DirectRequest>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let owner = path.user_id()?;
    let body = body.into_inner();
    let bucket = bucket(&shared)?;
    let filename = filenames::sanitize(&body.filename)
        .map_err(|e| AdminError::InvalidInput(format!("filename: nothing usable is left ({e})")))?;
    let content_type = MediaType::parse(&body.content_type)
        .map_err(|e| AdminError::InvalidInput(format!("content_type {e}")))?;
    if !type_allowed(&config.allowed_types, &content_type) {
        return Err(AdminError::UnsupportedType(content_type.to_string()));
    }
    if body.max_bytes == 0 {
        return Err(AdminError::InvalidInput(
            "max_bytes: must be positive".into(),
        ));
    }
    if body.max_bytes > config.max_upload_bytes {
        return Err(AdminError::TooLarge(config.max_upload_bytes));
    }
    Change::begin(&shared, &req)?;
    let file_id = FileId::generate();
    let valid = config.direct_upload_secs;
    let url = bucket
        .upload_url(
            &file_id,
            &content_type.to_string(),
            std::time::Duration::from_secs(valid),
        )
        .await
        .map_err(bucket_error)?;
    let expires_at = crate::clock::expiry(valid);
    let pending = PendingUpload {
        file_id: file_id.clone(),
        owner,
        filename,
        content_type: content_type.to_string(),
        max_bytes: body.max_bytes,
        expires_at,
    };
    match shared.store.insert_upload(&pending).await? {
        Written::Done => {}
        Written::NoSuchUser => return Err(AdminError::NotFound(Missing::User)),
    }
    Ok(HttpResponse::Created().json(DirectBody {
        upload_id: file_id.to_string(),
        url,
        method: "PUT",
        headers: [("Content-Type", pending.content_type)].into(),
        expires_at: crate::clock::rfc3339(expires_at),
    }))
}

/// Complete a direct upload: the object is checked (there, not over its limits, of an accepted
/// type) and registered, answering as an upload does. A refusal removes the object; an object
/// not there yet leaves the upload as it was.
#[utoipa::path(post, path = "/v1/uploads/{upload_id}/complete", tag = "files",
    params(UploadPath),
    responses((status = 201, body = super::uploads::UploadBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn complete(
    req: HttpRequest,
    path: web::Path<UploadPath>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = FileId::parse(&path.upload_id).map_err(|_| AdminError::NotFound(Missing::Upload))?;
    let bucket = bucket(&shared)?;
    let change = Change::begin(&shared, &req)?;
    shared
        .store
        .upload(&id)
        .await?
        .filter(|p| p.expires_at > crate::clock::now())
        .or_missing(Missing::Upload)?;
    let Some(size) = bucket.staged_size(&id).await.map_err(bucket_error)? else {
        return Err(AdminError::UploadIncomplete);
    };
    // From here the upload ends, one way or the other, and only one caller gets to end it.
    let pending = shared
        .store
        .take_upload(&id)
        .await?
        .or_missing(Missing::Upload)?;
    let content_type =
        MediaType::parse(&pending.content_type).unwrap_or_else(|_| MediaType::octet_stream());
    let refusal = if size > pending.max_bytes.min(config.max_upload_bytes) {
        Some(AdminError::TooLarge(
            pending.max_bytes.min(config.max_upload_bytes),
        ))
    } else if !type_allowed(&config.allowed_types, &content_type) {
        Some(AdminError::UnsupportedType(content_type.to_string()))
    } else {
        None
    };
    let owner = shared.store.user(&pending.owner).await;
    let owner = match (refusal, owner) {
        (None, Ok(Some(owner))) => owner,
        (refusal, owner) => {
            if let Err(e) = bucket.remove_staged(&id).await {
                tracing::warn!(error = %e, upload = %id, "Could not remove a refused direct upload's object.");
            }
            return Err(match (refusal, owner) {
                (Some(r), _) => r,
                (None, Err(e)) => e.into(),
                (None, Ok(_)) => AdminError::NotFound(Missing::User),
            });
        }
    };
    // Out of the staging key, which the client's URL can still write to, into the file's own.
    let storage_path = StoragePath::for_file(&id);
    bucket
        .promote(&id, &storage_path)
        .await
        .map_err(bucket_error)?;
    register(
        &shared,
        &config,
        &change,
        &owner.token,
        NewFile {
            file_id: id,
            owner: pending.owner,
            filename: pending.filename,
            content_type,
            stored: Stored { storage_path, size },
        },
    )
    .await
}

pub(super) fn bucket_error(e: crate::storage::BucketError) -> AdminError {
    match e {
        crate::storage::BucketError::Store(e) | crate::storage::BucketError::Settings(e) => {
            AdminError::Bucket(e)
        }
    }
}
