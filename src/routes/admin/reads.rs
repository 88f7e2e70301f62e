//! Reads for the application's own pages and jobs: many files' metadata in one call (a page
//! that lists a hundred files makes one request, not a hundred), and a file's bytes.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AdminConfig;
use super::error::{AdminError, ErrorBody, Missing, OrMissing};
use super::files::{FileBody, file_body};
use super::params::{FilePath, file_id};
use crate::state::Shared;
use crate::storage::StorageError;

/// Most ids one `GET /v1/files` takes.
pub const MAX_IDS: usize = 100;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IdsQuery {
    /// File ids, comma-separated, at most 100 (more: 400); ids that name no file are left out.
    ids: String,
}

#[derive(serde::Serialize, ToSchema)]
pub struct FileList {
    /// The files that exist, in the order asked, each once; unknown ids are left out.
    files: Vec<FileBody>,
}

/// Several files' metadata and current URLs at once.
#[utoipa::path(get, path = "/v1/files", tag = "files", params(IdsQuery),
    responses((status = 200, body = FileList), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(super) async fn list_files(
    query: web::Query<IdsQuery>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    if query.ids.split(',').count() > MAX_IDS {
        return Err(AdminError::InvalidInput(format!(
            "ids: at most {MAX_IDS} per call"
        )));
    }
    let mut ids = Vec::new();
    // An id that is malformed or never issued names no file: left out, as an unknown one is.
    for id in query.ids.split(',').filter_map(|raw| file_id(raw).ok()) {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let mut files = Vec::with_capacity(ids.len());
    for id in &ids {
        if let Some(f) = shared.store.file(id).await? {
            files.push(file_body(&shared, &config, f).await?);
        }
    }
    Ok(HttpResponse::Ok().json(FileList { files }))
}

/// A file's bytes, for the application's own use (a thumbnail job, an export); readers get
/// them from nginx.
#[utoipa::path(get, path = "/v1/files/{file_id}/content", tag = "files", params(FilePath),
    responses((status = 200, description = "The bytes, with the file's content type"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(super) async fn file_content(
    path: web::Path<FilePath>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = path.file_id()?;
    let f = shared.store.file(&id).await?.or_missing(Missing::File)?;
    let (bytes, size) = shared
        .storage
        .read(&f.storage_path)
        .await
        .map_err(|e| match e {
            StorageError::Io(io) => AdminError::Storage(io),
            StorageError::Bucket(b) => super::direct::bucket_error(b),
        })?
        // A record whose bytes are gone reads as a missing file, not as empty content.
        .or_missing(Missing::File)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, f.content_type))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .no_chunking(size)
        .streaming(bytes))
}
