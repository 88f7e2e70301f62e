//! The admin API (see `api.md`): JSON over the admin listener, behind a bearer token compared
//! in constant time. This slice covers users, uploads and native sessions.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::disposition;
use crate::error::AdminError;
use crate::filenames;
use crate::state::{Schema, Shared};
use crate::storage::{Storage, UploadError};
use crate::store::{FileRecord, SessionRecord, Visibility, Written};
use crate::tokens::{FileId, FileToken, SessionId, UserId, UserToken};

/// What the admin handlers need, built once at start-up.
pub struct AdminConfig {
    /// Accepted bearer tokens; empty disables the API.
    pub tokens: Vec<SecretString>,
    pub media_prefix: String,
    pub storage: Storage,
    pub max_upload_bytes: u64,
    pub max_session_ttl: u64,
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
            .route("/users/{user_id}", web::put().to(put_user))
            .route("/users/{user_id}/files", web::post().to(upload))
            .route("/sessions", web::post().to(create_session))
            .route("/sessions/{session_id}", web::delete().to(delete_session))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(AdminError::NotFound("route"))
            })),
    );
}

/// True if `presented` equals any configured token. Every token is compared, in constant
/// time, so neither the match position nor the matching prefix shows in the timing.
fn token_matches(tokens: &[SecretString], presented: &str) -> bool {
    tokens
        .iter()
        .fold(subtle::Choice::from(0), |acc, t| {
            acc | t.expose_secret().as_bytes().ct_eq(presented.as_bytes())
        })
        .into()
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
    if presented.is_empty() || !token_matches(&config.tokens, presented) {
        return Err(AdminError::Unauthorized.into());
    }
    next.call(req).await
}

fn user_id(raw: &str) -> Result<UserId, AdminError> {
    UserId::parse(raw).map_err(|e| AdminError::InvalidInput(format!("user_id: {e}")))
}

/// Writes need the schema this binary was built for.
fn writable(shared: &Shared) -> Result<(), AdminError> {
    match shared.schema.get() {
        Schema::Current => Ok(()),
        _ => Err(AdminError::SchemaNotCurrent),
    }
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

#[derive(Serialize)]
struct UserBody {
    user_id: String,
    user_token: String,
}

/// `PUT /v1/users/{user_id}`: ensure the user exists. 201 when created, 200 when it was there.
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

#[derive(Deserialize)]
struct UploadQuery {
    filename: Option<String>,
}

#[derive(Serialize)]
struct UploadBody {
    file_id: String,
    file_token: String,
    url: String,
    size: u64,
    content_type: String,
}

/// The file's type: the request's `Content-Type`, or a guess from the name when the client
/// sent none or `application/octet-stream`. Parsed, so it is safe to hand to nginx as a header.
fn content_type(req: &HttpRequest, filename: &str) -> Result<String, AdminError> {
    let sent = req.headers().get("content-type").map(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.parse::<mime_guess::mime::Mime>().ok())
            .ok_or_else(|| {
                AdminError::InvalidInput("Content-Type is not a valid media type".into())
            })
    });
    let mime = match sent.transpose()? {
        Some(m) if m != mime_guess::mime::APPLICATION_OCTET_STREAM => m,
        _ => mime_guess::from_path(filename).first_or_octet_stream(),
    };
    Ok(mime.to_string())
}

/// `POST /v1/users/{user_id}/files?filename=NAME`: streams the body to disk, then registers
/// it. The file is durable before any token points at it; on failure nothing is left.
async fn upload(
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<UploadQuery>,
    body: web::Payload,
    shared: web::Data<Shared>,
    config: web::Data<AdminConfig>,
) -> Result<HttpResponse, AdminError> {
    let owner = user_id(&path)?;
    let filename = query
        .filename
        .as_deref()
        .ok_or_else(|| AdminError::InvalidInput("query parameter `filename` is required".into()))?;
    filenames::validate(filename)
        .map_err(|e| AdminError::InvalidInput(format!("filename: {e}")))?;
    let content_type = content_type(&req, filename)?;
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
        })?;
    let record = FileRecord {
        file_id: file_id.clone(),
        owner: owner.clone(),
        token: FileToken::generate()?,
        filename: filename.to_owned(),
        storage_path: stored.storage_path.clone(),
        size: stored.size,
        disposition: disposition::default_for(&content_type),
        content_type,
        visibility: Visibility::Private,
        created_at: crate::clock::now(),
    };
    let registered = shared.store.insert_file(&record).await;
    if !matches!(registered, Ok(Written::Done)) {
        // Unregistered bytes are unreachable; remove them so nothing is left behind.
        if let Err(e) = config.storage.remove(&stored.storage_path).await {
            tracing::error!(error = %e, file_id = %file_id, "Could not remove the bytes of a failed upload.");
        }
    }
    match registered? {
        Written::Done => {}
        Written::NoSuchUser => return Err(AdminError::NotFound("user")),
    }
    tracing::info!(file_id = %file_id, owner = %owner, size = record.size, "File uploaded.");
    Ok(HttpResponse::Created().json(UploadBody {
        file_id: file_id.to_string(),
        file_token: record.token.as_str().to_owned(),
        url: public_url(&config.media_prefix, &user.token, &record.token, filename),
        size: record.size,
        content_type: record.content_type,
    }))
}

/// Default lifetime of a session when the call names none: one day.
const DEFAULT_SESSION_TTL: u64 = 86_400;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    user_id: String,
    ttl_seconds: Option<u64>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Serialize)]
struct SessionBody {
    session_id: String,
    expires_at: String,
}

fn valid_role(r: &str) -> bool {
    (1..=64).contains(&r.len())
        && r.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// `POST /v1/sessions`: a native session for an existing user.
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
    if body.roles.len() > 32 || !body.roles.iter().all(|r| valid_role(r)) {
        return Err(AdminError::InvalidInput(
            "roles: at most 32, each 1-64 characters of A-Z a-z 0-9 . _ : -".into(),
        ));
    }
    writable(&shared)?;
    let now = crate::clock::now();
    let expires_at = now.saturating_add(i64::try_from(ttl).unwrap_or(i64::MAX));
    let id = SessionId::generate()?;
    let record = SessionRecord {
        user_id: user,
        roles: body.roles,
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

/// `DELETE /v1/sessions/{session_id}`: log one session out; in force when this returns.
async fn delete_session(
    path: web::Path<String>,
    shared: web::Data<Shared>,
) -> Result<HttpResponse, AdminError> {
    let id = SessionId::parse(&path)
        .map_err(|e| AdminError::InvalidInput(format!("session_id: {e}")))?;
    writable(&shared)?;
    if shared.store.delete_session(&id.key()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(AdminError::NotFound("session"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_configured_token_matches_and_nothing_else() {
        let tokens = vec![
            SecretString::from("first-token-0123456789".to_owned()),
            SecretString::from("second-token-0123456789".to_owned()),
        ];
        assert!(token_matches(&tokens, "first-token-0123456789"));
        assert!(token_matches(&tokens, "second-token-0123456789"));
        assert!(!token_matches(&tokens, "first-token-012345678"));
        assert!(!token_matches(&tokens, ""));
        assert!(!token_matches(&[], "first-token-0123456789"));
    }

    #[test]
    fn public_urls_encode_the_name() {
        let u = UserToken::parse("0123456789abcdef0123456789abcdef").unwrap();
        let f = FileToken::parse("fedcba9876543210fedcba9876543210").unwrap();
        assert_eq!(
            public_url("/media/", &u, &f, "a b.pdf"),
            "/media/0123456789abcdef0123456789abcdef/fedcba9876543210fedcba9876543210/a%20b.pdf"
        );
    }
}
