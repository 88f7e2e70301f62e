//! The admin API (see `api.md`): JSON over the admin listener, behind a bearer token compared
//! in constant time. Every handler is annotated for the OpenAPI document (`crate::openapi`),
//! so the document is generated from the code and cannot drift from it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::admin_tokens::AdminTokens;
use crate::disposition::{self, DispositionKind};
use crate::error::{AdminError, ErrorBody};
use crate::filenames;
use crate::links::LinkKeys;
use crate::media_type::{self, MediaType};
use crate::model::{EventKind, FileChange, FileRecord, SessionRecord, Visibility};
use crate::paths::StoragePath;
use crate::state::{Schema, Shared, event};
use crate::storage::{Storage, UploadError};
use crate::store::Written;
use crate::tokens::{FileId, FileToken, SessionId, UserId, UserToken};

/// What the admin handlers need, built once at start-up.
pub struct AdminConfig {
    /// Accepted bearer tokens; none disables the API.
    pub tokens: std::sync::Arc<AdminTokens>,
    pub media_prefix: String,
    pub storage: Storage,
    pub max_upload_bytes: u64,
    /// Accepted upload types (`image/png`, `image/*`); empty accepts all.
    pub allowed_types: Vec<String>,
    pub max_session_ttl: u64,
    pub links: LinkKeys,
    pub max_link_ttl: u64,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(64 * 1024)
            .error_handler(|e, _| {
                AdminError::InvalidInput(format!("invalid JSON body: {e}")).into()
            }),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| AdminError::InvalidInput(e.to_string()).into()),
    )
    .app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| AdminError::InvalidInput(e.to_string()).into()),
    )
    .service(
        web::scope("/v1")
            .wrap(from_fn(require_token))
            .service(resource("/openapi.json", "GET").route(web::get().to(openapi)))
            .service(
                resource("/users/{user_id}", "PUT, DELETE")
                    .route(web::put().to(put_user))
                    .route(web::delete().to(delete_user)),
            )
            .service(
                resource("/users/{user_id}/rotate-token", "POST")
                    .route(web::post().to(rotate_user_token)),
            )
            .service(resource("/users/{user_id}/files", "POST").route(web::post().to(upload)))
            .service(
                resource("/users/{user_id}/sessions", "DELETE")
                    .route(web::delete().to(logout_everywhere)),
            )
            .service(
                resource("/files/{file_id}", "GET, PATCH, DELETE")
                    .route(web::get().to(get_file))
                    .route(web::patch().to(patch_file))
                    .route(web::delete().to(delete_file)),
            )
            .service(
                resource("/files/{file_id}/rotate-token", "POST")
                    .route(web::post().to(rotate_file_token)),
            )
            .service(
                resource("/files/{file_id}/grants/{user_id}", "PUT, DELETE")
                    .route(web::put().to(put_grant))
                    .route(web::delete().to(delete_grant)),
            )
            .service(resource("/files/{file_id}/links", "POST").route(web::post().to(create_link)))
            .service(resource("/sessions", "POST").route(web::post().to(create_session)))
            .service(
                resource("/sessions/{session_id}", "DELETE")
                    .route(web::delete().to(delete_session)),
            )
            .service(resource("/events", "GET").route(web::get().to(events)))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(AdminError::NotFound("route"))
            })),
    );
}

/// A resource whose undeclared methods get 405 with `Allow` (not the scope's 404).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(AdminError::MethodNotAllowed(allow))
    }))
}

async fn require_token(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let config = req
        .app_data::<web::Data<AdminConfig>>()
        .ok_or_else(|| actix_web::error::ErrorInternalServerError("admin config missing"))?;
    if config.tokens.is_empty() {
        return Err(AdminError::Disabled.into());
    }
    let presented = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !config.tokens.matches(presented) {
        return Err(AdminError::Unauthorized.into());
    }
    next.call(req).await
}

/// Counts every call on the admin listener by route pattern and status.
pub async fn count_calls(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let shared = req.app_data::<web::Data<Shared>>().cloned();
    let result = next.call(req).await;
    let status = match &result {
        Ok(r) => r.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    if let Some(shared) = shared {
        shared
            .metrics
            .admin_calls
            .with_label_values(&[route.as_str(), status.as_str()])
            .inc();
    }
    result
}

fn user_id(raw: &str) -> Result<UserId, AdminError> {
    UserId::parse(raw).map_err(|e| AdminError::InvalidInput(format!("user_id: {e}")))
}

/// A file id from a URL: outside the id alphabet is invalid input; well-formed but not one
/// of ours cannot name a file.
fn file_id(raw: &str) -> Result<FileId, AdminError> {
    crate::tokens::validate_id(raw)
        .map_err(|e| AdminError::InvalidInput(format!("file_id: {e}")))?;
    FileId::parse(raw).map_err(|_| AdminError::NotFound("file"))
}

/// Writes need the schema this binary was built for.
fn writable(shared: &Shared) -> Result<(), AdminError> {
    match shared.schema.get() {
        Schema::Current => Ok(()),
        _ => Err(AdminError::SchemaNotCurrent),
    }
}

/// The admin caller's address, for audit events.
fn caller(req: &HttpRequest) -> Option<String> {
    req.peer_addr().map(|a| a.ip().to_string())
}

/// The public path of a file, percent-encoded.
pub fn public_url(prefix: &str, user: &UserToken, file: &FileToken, filename: &str) -> String {
    format!(
        "{prefix}{}/{}/{}",
        user.as_str(),
        file.as_str(),
        filenames::url_segment(filename)
    )
}

/// Removes bytes no record points at any more. The deletion (or the failed upload) is already
/// in force in the store, so a failure here cannot be undone or retried through the API: it
/// is logged for the operator, with the path to remove by hand.
async fn remove_bytes(config: &AdminConfig, path: &StoragePath) {
    if let Err(e) = config.storage.remove(path).await {
        tracing::error!(error = %e, path = path.as_str(), "Could not remove bytes no record points at; remove them by hand.");
    }
}

/// The owner's current URL of a file.
async fn url_of(
    shared: &Shared,
    config: &AdminConfig,
    f: &FileRecord,
) -> Result<String, AdminError> {
    // The owner exists while its files do (deleting a user deletes its files first).
    let owner = shared
        .store
        .user(&f.owner)
        .await?
        .ok_or(AdminError::NotFound("file"))?;
    Ok(public_url(
        &config.media_prefix,
        &owner.token,
        &f.token,
        &f.filename,
    ))
}

async fn openapi(config: web::Data<AdminConfig>) -> HttpResponse {
    HttpResponse::Ok().json(crate::openapi::document_for(
        config.max_session_ttl,
        config.max_link_ttl,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct UserBody {
    user_id: String,
    /// The first path segment of every URL of this user's files.
    user_token: String,
}

/// Ensure a user exists (idempotent).
#[utoipa::path(put, path = "/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "The application's user id", pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses(
        (status = 200, description = "The user existed", body = UserBody),
        (status = 201, description = "The user was created", body = UserBody),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn put_user(
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = user_id(&path)?;
    writable(&shared)?;
    let (user, created) = shared
        .store
        .ensure_user(&id, &UserToken::generate()?, crate::clock::now())
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(HttpResponse::build(status).json(UserBody {
        user_id: user.user_id.to_string(),
        user_token: user.token.as_str().to_owned(),
    }))
}

/// Give the user a new token: every URL with the old one stops working when this returns.
#[utoipa::path(post, path = "/v1/users/{user_id}/rotate-token", tag = "users",
    params(("user_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses((status = 200, body = UserBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rotate_user_token(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = user_id(&path)?;
    writable(&shared)?;
    let user = shared
        .store
        .rotate_user_token(&id, &UserToken::generate()?)
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    shared.audit.record(event(
        EventKind::RotateUserToken,
        Some(&id),
        None,
        None,
        caller(&req),
    ));
    Ok(HttpResponse::Ok().json(UserBody {
        user_id: user.user_id.to_string(),
        user_token: user.token.as_str().to_owned(),
    }))
}

/// Delete the user, its files (and their bytes), the grants it holds, and its sessions.
#[utoipa::path(delete, path = "/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_user(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = user_id(&path)?;
    writable(&shared)?;
    let deleted = shared
        .store
        .delete_user(&id)
        .await?
        .ok_or(AdminError::NotFound("user"))?;
    for p in &deleted.files {
        remove_bytes(&config, p).await;
    }
    shared.audit.record(event(
        EventKind::DeleteUser,
        Some(&id),
        None,
        None,
        caller(&req),
    ));
    tracing::info!(user = %id, files = deleted.files.len(), sessions = deleted.sessions, "User deleted.");
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct LogoutBody {
    /// How many sessions ended.
    sessions: u64,
}

/// Log the user out everywhere (native sessions).
#[utoipa::path(delete, path = "/v1/users/{user_id}/sessions", tag = "sessions",
    params(("user_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses((status = 200, body = LogoutBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn logout_everywhere(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = user_id(&path)?;
    writable(&shared)?;
    if shared.store.user(&id).await?.is_none() {
        return Err(AdminError::NotFound("user"));
    }
    let sessions = shared.store.delete_user_sessions(&id).await?;
    shared.audit.record(event(
        EventKind::LogoutAll,
        Some(&id),
        None,
        None,
        caller(&req),
    ));
    Ok(HttpResponse::Ok().json(LogoutBody { sessions }))
}

#[derive(Deserialize)]
struct UploadQuery {
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
fn content_type(req: &HttpRequest, filename: &str) -> Result<MediaType, AdminError> {
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
fn type_allowed(allowed: &[String], content_type: &MediaType) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| content_type.matches(a))
}

/// Upload a file: the raw request body, streamed to disk.
///
/// The file is durable (fsynced, renamed into place) before any token points at it; on
/// failure nothing is left on disk.
#[utoipa::path(post, path = "/v1/users/{user_id}/files", tag = "files",
    params(("user_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$"),
        ("filename" = String, Query, description = "The file's name: path parts and control characters are removed, and something usable must be left",
            pattern = r"^(.*[/\\])?[^/\\]*[^/\\\s.\x00-\x1f\x7f-\x9f][^/\\]*$")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file's bytes; its Content-Type header is the file's type"),
    responses((status = 201, body = UploadBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn upload(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<UploadQuery>,
    body: web::Payload,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let owner = user_id(&path)?;
    let raw_name = query
        .filename
        .as_deref()
        .ok_or_else(|| AdminError::InvalidInput("query parameter `filename` is required".into()))?;
    let filename = filenames::sanitize(raw_name)
        .map_err(|e| AdminError::InvalidInput(format!("filename: nothing usable is left ({e})")))?;
    let content_type = content_type(&req, &filename)?;
    if !type_allowed(&config.allowed_types, &content_type) {
        return Err(AdminError::UnsupportedType(content_type.to_string()));
    }
    writable(&shared)?;
    let declared = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > config.max_upload_bytes) {
        return Err(AdminError::TooLarge(config.max_upload_bytes));
    }
    let user = shared
        .store
        .user(&owner)
        .await?
        .ok_or(AdminError::NotFound("user"))?;

    let file_id = FileId::generate();
    let stored = config
        .storage
        .write(&file_id, body, config.max_upload_bytes)
        .await
        .map_err(|e| match e {
            UploadError::TooLarge(n) => AdminError::TooLarge(n),
            UploadError::Body(m) => AdminError::InvalidInput(format!("request body: {m}")),
            UploadError::Io(io) => AdminError::Storage(io),
            UploadError::RootMissing(root) => AdminError::Storage(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("storage root {root} is missing"),
            )),
        })?;
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
        // Unregistered bytes are unreachable; remove them so nothing is left behind.
        remove_bytes(&config, &stored.storage_path).await;
    }
    match registered? {
        Written::Done => {}
        Written::NoSuchUser => return Err(AdminError::NotFound("user")),
    }
    shared.audit.record(event(
        EventKind::Upload,
        Some(&owner),
        Some(&file_id),
        None,
        caller(&req),
    ));
    tracing::info!(file_id = %file_id, owner = %owner, size = record.size, "File uploaded.");
    Ok(HttpResponse::Created().json(UploadBody {
        file_id: file_id.to_string(),
        file_token: record.token.as_str().to_owned(),
        url: public_url(&config.media_prefix, &user.token, &record.token, &filename),
        size: record.size,
        content_type: record.content_type,
    }))
}

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

async fn file_body(
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
    params(("file_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses((status = 200, body = FileBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_file(
    path: web::Path<String>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = file_id(&path)?;
    let f = shared
        .store
        .file(&id)
        .await?
        .ok_or(AdminError::NotFound("file"))?;
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
    params(("file_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")), request_body = PatchRequest,
    responses((status = 200, body = FileBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn patch_file(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PatchRequest>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = file_id(&path)?;
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
    writable(&shared)?;
    let mut latest = None;
    for (change, kind) in &changes {
        let f = shared
            .store
            .update_file(&id, change)
            .await?
            .ok_or(AdminError::NotFound("file"))?;
        shared
            .audit
            .record(event(*kind, Some(&f.owner), Some(&id), None, caller(&req)));
        latest = Some(f);
    }
    let f = latest.ok_or(AdminError::NotFound("file"))?;
    Ok(HttpResponse::Ok().json(file_body(&shared, &config, f).await?))
}

/// Delete a file: its token dies when this returns, then its bytes are removed.
#[utoipa::path(delete, path = "/v1/files/{file_id}", tag = "files",
    params(("file_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_file(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = file_id(&path)?;
    writable(&shared)?;
    let f = shared
        .store
        .delete_file(&id)
        .await?
        .ok_or(AdminError::NotFound("file"))?;
    remove_bytes(&config, &f.storage_path).await;
    shared.audit.record(event(
        EventKind::DeleteFile,
        Some(&f.owner),
        Some(&id),
        None,
        caller(&req),
    ));
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
    params(("file_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses((status = 200, body = RotatedFileBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rotate_file_token(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = file_id(&path)?;
    writable(&shared)?;
    let f = shared
        .store
        .update_file(&id, &FileChange::Rotate(FileToken::generate()?))
        .await?
        .ok_or(AdminError::NotFound("file"))?;
    shared.audit.record(event(
        EventKind::RotateFileToken,
        Some(&f.owner),
        Some(&id),
        None,
        caller(&req),
    ));
    Ok(HttpResponse::Ok().json(RotatedFileBody {
        file_id: id.to_string(),
        file_token: f.token.as_str().to_owned(),
        url: url_of(&shared, &config, &f).await?,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct GrantBody {
    file_id: String,
    user_id: String,
}

/// Share a file with another user (their sessions may then read it).
#[utoipa::path(put, path = "/v1/files/{file_id}/grants/{user_id}", tag = "sharing",
    params(("file_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$"), ("user_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses((status = 200, body = GrantBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn put_grant(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let (file, user) = path.into_inner();
    let (id, grantee) = (file_id(&file)?, user_id(&user)?);
    writable(&shared)?;
    if shared.store.user(&grantee).await?.is_none() {
        return Err(AdminError::NotFound("user"));
    }
    shared
        .store
        .update_file(&id, &FileChange::Grant(grantee.clone()))
        .await?
        .ok_or(AdminError::NotFound("file"))?;
    shared.audit.record(event(
        EventKind::Grant,
        Some(&grantee),
        Some(&id),
        None,
        caller(&req),
    ));
    Ok(HttpResponse::Ok().json(GrantBody {
        file_id: id.to_string(),
        user_id: grantee.to_string(),
    }))
}

/// Stop sharing a file with a user; in force when this returns.
#[utoipa::path(delete, path = "/v1/files/{file_id}/grants/{user_id}", tag = "sharing",
    params(("file_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$"), ("user_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")),
    responses((status = 204, description = "Not shared (any more)"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_grant(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let (file, user) = path.into_inner();
    let (id, grantee) = (file_id(&file)?, user_id(&user)?);
    writable(&shared)?;
    shared
        .store
        .update_file(&id, &FileChange::Revoke(grantee.clone()))
        .await?
        .ok_or(AdminError::NotFound("file"))?;
    shared.audit.record(event(
        EventKind::Revoke,
        Some(&grantee),
        Some(&id),
        None,
        caller(&req),
    ));
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// Seconds until the link expires (at most `links.max_ttl_secs`).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "whole_seconds")]
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
    params(("file_id" = String, Path, pattern = r"^[A-Za-z0-9._@-]{1,128}$")), request_body = LinkRequest,
    responses((status = 201, body = LinkBody), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_link(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<LinkRequest>,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let id = file_id(&path)?;
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
    let f = shared
        .store
        .file(&id)
        .await?
        .ok_or(AdminError::NotFound("file"))?;
    let owner = shared
        .store
        .user(&f.owner)
        .await?
        .ok_or(AdminError::NotFound("file"))?;
    let expires_at = crate::clock::expiry(ttl);
    let query = config
        .links
        .sign(&owner.token, &f.token, &f.filename, expires_at)
        .ok_or(AdminError::LinksDisabled)?;
    shared.audit.record(event(
        EventKind::Link,
        Some(&f.owner),
        Some(&id),
        None,
        caller(&req),
    ));
    Ok(HttpResponse::Created().json(LinkBody {
        url: format!(
            "{}?{query}",
            public_url(&config.media_prefix, &owner.token, &f.token, &f.filename)
        ),
        expires_at: crate::clock::rfc3339(expires_at),
    }))
}

/// A count of seconds: a non-negative JSON integer, written `60` or `60.0` (JSON Schema counts
/// both as integers, so clients may send either).
fn whole_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9_007_199_254_740_992.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| serde::de::Error::custom("expected a whole, non-negative number of seconds"))
}

/// As `whole_seconds`; `null` (or no field) means "the default".
fn whole_seconds_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole_seconds(serde_json::Value::Number(n))
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
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
    #[serde(default, deserialize_with = "whole_seconds_opt")]
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
async fn create_session(
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
    writable(&shared)?;
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
        Written::NoSuchUser => Err(AdminError::NotFound("user")),
    }
}

/// Log one session out; in force when this returns.
#[utoipa::path(delete, path = "/v1/sessions/{session_id}", tag = "sessions",
    params(("session_id" = String, Path, pattern = r"^[0-9a-f]{64}$")),
    responses((status = 204, description = "Logged out"), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn delete_session(
    req: HttpRequest,
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = SessionId::parse(&path)
        .map_err(|e| AdminError::InvalidInput(format!("session_id: {e}")))?;
    writable(&shared)?;
    if shared.store.delete_session(&id.key()).await? {
        shared
            .audit
            .record(event(EventKind::Logout, None, None, None, caller(&req)));
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(AdminError::NotFound("session"))
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct EventBody {
    /// Cursor of this event.
    id: String,
    /// RFC 3339 with milliseconds.
    at: String,
    kind: EventKind,
    user_id: Option<String>,
    file_id: Option<String>,
    /// `allow` or `deny` for reads; null otherwise.
    decision: Option<crate::model::EventDecision>,
    client: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EventsBody {
    events: Vec<EventBody>,
    /// Pass as `after` for the next page; null when this page is empty.
    next: Option<String>,
}

fn rfc3339_ms(ms: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// Audit events, oldest first.
#[utoipa::path(get, path = "/v1/events", tag = "audit",
    params(("after" = Option<String>, Query, description = "The `next` of the previous page", pattern = r"^[0-9]{1,19}-[0-9]{1,19}(\.[0-9]{1,19}-[0-9]{1,19})?$"),
        ("limit" = Option<usize>, Query, description = "Default 100", minimum = 1, maximum = 1000)),
    responses((status = 200, body = EventsBody), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn events(
    query: web::Query<EventsQuery>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AdminError::InvalidInput(
            "limit: must be between 1 and 1000".into(),
        ));
    }
    let page = shared.store.events(query.after.as_deref(), limit).await?;
    let next = page.last().map(|e| e.id.clone());
    let events = page
        .into_iter()
        .map(|s| EventBody {
            id: s.id,
            at: rfc3339_ms(s.event.at_ms),
            kind: s.event.kind,
            user_id: s.event.user_id.map(|u| u.to_string()),
            file_id: s.event.file_id.map(|f| f.to_string()),
            decision: s.event.decision,
            client: s.event.client,
        })
        .collect();
    Ok(HttpResponse::Ok().json(EventsBody { events, next }))
}

/// The paths of the OpenAPI document (see `crate::openapi`).
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        put_user,
        rotate_user_token,
        delete_user,
        logout_everywhere,
        upload,
        get_file,
        patch_file,
        delete_file,
        rotate_file_token,
        put_grant,
        delete_grant,
        create_link,
        create_session,
        delete_session,
        events
    ),
    components(schemas(ErrorBody))
)]
pub struct AdminApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_urls_encode_the_name() {
        let u = UserToken::parse("0123456789abcdef0123456789abcdef").unwrap();
        let f = FileToken::parse("fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(
            public_url("/media/", &u, &f, "a b.pdf"),
            "/media/0123456789abcdef0123456789abcdef/fedcba9876543210fedcba9876543210/a%20b.pdf"
        );
    }

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
