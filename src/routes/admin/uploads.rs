//! `POST /v1/users/{user_id}/files`: an upload streamed to the storage root, its type rebuilt
//! (`media_type`) and checked against `upload.allowed_types`.

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::change::Change;
use super::error::{AdminError, ErrorBody, Missing, OrMissing};
use super::params::UserPath;
use super::{AdminConfig, public_url, remove_bytes};
use crate::disposition::{self};
use crate::filenames;
use crate::ids::FileId;
use crate::ids::UserId;
use crate::media_type::{self, MediaType};
use crate::model::{EventKind, FileRecord, Visibility};
use crate::state::Shared;
use crate::storage::{Stored, UploadError};
use crate::store::Written;
use crate::tokens::{FileToken, UserToken};

#[derive(Deserialize)]
pub(super) struct UploadQuery {
    filename: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UploadBody {
    file_id: String,
    file_token: String,
    /// The public path, percent-encoded.
    url: String,
    size: u64,
    content_type: String,
}

/// The file's type: the request's `Content-Type`, or a guess from the name when the client
/// sent none or `application/octet-stream`. Always rebuilt by [`MediaType::parse`], so what is
/// stored (and later sent by nginx) is never the client's text.
pub(super) fn content_type(req: &HttpRequest, filename: &str) -> Result<MediaType, AdminError> {
    let invalid = |why: String| AdminError::InvalidInput(format!("Content-Type {why}"));
    let sent = match req.headers().get("content-type") {
        None => None,
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| invalid(media_type::MediaTypeError::Forbidden.to_string()))?;
            Some(MediaType::parse(text).map_err(|e| invalid(e.to_string()))?)
        }
    };
    match sent {
        Some(t) if t.essence() != "application/octet-stream" => Ok(t),
        _ => Ok(mime_guess::from_path(filename)
            .first()
            .and_then(|m| MediaType::parse(m.as_ref()).ok())
            .unwrap_or_else(MediaType::octet_stream)),
    }
}

/// `image/png` matches `image/png` and `image/*`; an empty list accepts every type.
pub(super) fn type_allowed(allowed: &[String], content_type: &MediaType) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| content_type.matches(a))
}

/// Upload a file: the raw request body, streamed to disk.
///
/// The file is durable (fsynced, renamed into place) before any token points at it; on
/// failure nothing is left on disk.
#[utoipa::path(post, path = "/v1/users/{user_id}/files", tag = "files",
    params(UserPath,
        ("filename" = String, Query, description = "The file's name: path parts and control characters are removed, and something usable must be left",
            pattern = r"^(.*[/\\])?[^/\\]*[^/\\\s.\x00-\x1f\x7f-\x9f][^/\\]*$")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes; its Content-Type header is the file's type"),
    responses((status = 201, body = UploadBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub(super) async fn upload(
    req: HttpRequest,
    path: web::Path<UserPath>,
    query: web::Query<UploadQuery>,
    body: web::Payload,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> HttpResponse {
    match store_upload(&req, &path, &query, body, &shared, &config).await {
        Ok(created) => created,
        // A refusal may leave the body unread, and the connection could not carry another
        // request after it: close it, whatever the client asked for.
        Err(e) => {
            let mut refused = e.error_response();
            refused
                .head_mut()
                .set_connection_type(actix_web::http::ConnectionType::Close);
            refused
        }
    }
}

async fn store_upload(
    req: &HttpRequest,
    path: &UserPath,
    query: &UploadQuery,
    body: web::Payload,
    shared: &Shared,
    config: &AdminConfig,
) -> Result<HttpResponse, AdminError> {
    let owner = path.user_id()?;
    let raw_name = query
        .filename
        .as_deref()
        .ok_or_else(|| AdminError::InvalidInput("query parameter `filename` is required".into()))?;
    let filename = filenames::sanitize(raw_name)
        .map_err(|e| AdminError::InvalidInput(format!("filename: nothing usable is left ({e})")))?;
    let content_type = content_type(req, &filename)?;
    if !type_allowed(&config.allowed_types, &content_type) {
        return Err(AdminError::UnsupportedType(content_type.to_string()));
    }
    let change = Change::begin(shared, req)?;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_upload_bytes) {
        return Err(AdminError::TooLarge(config.max_upload_bytes));
    }
    let user = shared.store.user(&owner).await?.or_missing(Missing::User)?;

    let file_id = FileId::generate();
    let stored = shared
        .storage
        .write(&file_id, body, config.max_upload_bytes)
        .await
        .map_err(|e| match e {
            UploadError::TooLarge(n) => AdminError::TooLarge(n),
            UploadError::Body(m) => AdminError::InvalidInput(format!("request body: {m}")),
            UploadError::Io(io) => AdminError::Storage(io),
            UploadError::Bucket(e) => AdminError::Bucket(e),
            UploadError::RootMissing(root) => AdminError::Storage(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("storage root {root} is missing"),
            )),
        })?;
    register(
        shared,
        config,
        &change,
        &user.token,
        NewFile {
            file_id,
            owner,
            filename,
            content_type,
            stored,
        },
    )
    .await
}

/// A file whose bytes are stored, to be registered.
pub(super) struct NewFile {
    pub file_id: FileId,
    pub owner: UserId,
    pub filename: String,
    pub content_type: MediaType,
    pub stored: Stored,
}

/// Registers a file whose bytes are stored, and answers as an upload does (201). If it cannot
/// be registered, the bytes are removed: unregistered bytes are unreachable.
pub(super) async fn register(
    shared: &Shared,
    config: &AdminConfig,
    change: &Change<'_>,
    owner_token: &UserToken,
    new: NewFile,
) -> Result<HttpResponse, AdminError> {
    let NewFile {
        file_id,
        owner,
        filename,
        content_type,
        stored,
    } = new;
    let record = FileRecord {
        file_id: file_id.clone(),
        owner: owner.clone(),
        token: FileToken::generate()?,
        filename: filename.clone(),
        storage_path: stored.storage_path.clone(),
        size: stored.size,
        disposition: disposition::default_for(&content_type),
        content_type: content_type.to_string(),
        visibility: Visibility::Private,
        created_at: crate::clock::now(),
        grants: Vec::new(),
    };
    let registered = shared.store.insert_file(&record).await;
    if !matches!(registered, Ok(Written::Done)) {
        remove_bytes(shared, &stored.storage_path).await;
    }
    match registered? {
        Written::Done => {}
        Written::NoSuchUser => return Err(AdminError::NotFound(Missing::User)),
    }
    change.record(EventKind::Upload, Some(&owner), Some(&file_id));
    tracing::info!(file_id = %file_id, owner = %owner, size = record.size, "File uploaded.");
    Ok(HttpResponse::Created().json(UploadBody {
        file_id: file_id.to_string(),
        file_token: record.token.as_str().to_owned(),
        url: public_url(&config.media_prefix, owner_token, &record.token, &filename),
        size: record.size,
        content_type: record.content_type,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_types_match_exactly_or_by_family() {
        let allowed = vec!["image/*".to_owned(), "application/pdf".to_owned()];
        let t = |s: &str| MediaType::parse(s).unwrap();
        assert!(type_allowed(&allowed, &t("image/png")));
        assert!(type_allowed(&allowed, &t("application/pdf; charset=x")));
        assert!(!type_allowed(&allowed, &t("text/html")));
        assert!(!type_allowed(&allowed, &t("imagex/png")));
        assert!(type_allowed(&[], &t("text/html")));
    }
}
