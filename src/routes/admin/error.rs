//! Errors of the admin API, and their one mapping to HTTP.
//!
//! Every admin error is `{"error": {"code", "message"}}`. `code` is stable and meant for
//! programs; `message` is for people and never carries a secret or an internal cause (those go
//! to the log, with the whole cause chain).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::store::StoreError;

/// What an admin call named that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// A user id that names no user.
    User,
    /// A file id that names no file.
    File,
    /// A session id that names no session.
    Session,
    /// An upload id that names no direct upload under way.
    Upload,
    /// No route under `/v1` has this path.
    Route,
}

impl Missing {
    fn noun(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::File => "file",
            Self::Session => "session",
            Self::Upload => "upload",
            Self::Route => "route",
        }
    }
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.noun())
    }
}

/// `Option::ok_or` for the "not found" of an admin call.
pub trait OrMissing<T> {
    /// `Err(AdminError::NotFound(what))` for `None`.
    fn or_missing(self, what: Missing) -> Result<T, AdminError>;
}

impl<T> OrMissing<T> for Option<T> {
    fn or_missing(self, what: Missing) -> Result<T, AdminError> {
        self.ok_or(AdminError::NotFound(what))
    }
}

/// Every way an admin call fails, each with a stable `code` and one status.
#[derive(thiserror::Error)]
pub enum AdminError {
    /// 400: a bad id, query or body; the message says which.
    #[error("{0}")]
    InvalidInput(String),
    /// 401: no bearer token, or a wrong one.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// 401: no admin token is configured.
    #[error("the admin API is disabled: set admin.token or admin.token_file")]
    Disabled,
    /// 404.
    #[error("{0} not found")]
    NotFound(Missing),
    /// Carries the resource's methods, for the `Allow` header.
    #[error("method not allowed on this resource (allowed: {0})")]
    MethodNotAllowed(&'static str),
    /// 413: the upload is over `upload.max_bytes`.
    #[error("upload is larger than the limit of {0} bytes")]
    TooLarge(u64),
    /// 409: a concurrent change won; try again.
    #[error("a concurrent change to the same record won; try again")]
    Conflict,
    /// 409: the file is shared with the most users it can be.
    #[error("a file can be shared with at most 1000 users")]
    TooManyGrants,
    /// 415: the type is not in `upload.allowed_types`.
    #[error("content type {0} is not accepted (upload.allowed_types)")]
    UnsupportedType(String),
    /// 503: share links are off.
    #[error("share links are off: set links.secret")]
    LinksDisabled,
    /// 503: the store's schema is not the one this binary writes.
    #[error("the store schema is not current; run `mediagate migrate`")]
    SchemaNotCurrent,
    /// 503: the store could not answer.
    #[error("the store is unavailable")]
    Store(#[source] StoreError),
    /// 500: the storage root could not be written.
    #[error("the storage root could not be written")]
    Storage(#[source] std::io::Error),
    /// 409: direct uploads need the bytes in a bucket.
    #[error("direct uploads need object storage (storage.url = s3://…)")]
    NoDirectUploads,
    /// 409: the object of a direct upload is not in the bucket yet.
    #[error("the upload's object is not there yet: send the bytes, then complete again")]
    UploadIncomplete,
    /// 503: the bucket refused the bytes, or could not be reached.
    #[error("the bucket could not be written")]
    Bucket(#[source] object_store::Error),
    /// 500: the OS random number generator failed.
    #[error("the random number generator failed")]
    Random(#[from] crate::tokens::RandomError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict | StoreError::Busy => Self::Conflict,
            StoreError::Change(crate::model::ChangeError::TooManyGrants) => Self::TooManyGrants,
            StoreError::Cursor => {
                Self::InvalidInput("after: not a cursor from GET /v1/events".into())
            }
            other => Self::Store(other),
        }
    }
}

impl AdminError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidInput(_) => "invalid_input",
            Self::Unauthorized => "unauthorized",
            Self::Disabled => "admin_disabled",
            Self::NotFound(Missing::User) => "user_not_found",
            Self::NotFound(Missing::File) => "file_not_found",
            Self::NotFound(Missing::Session) => "session_not_found",
            Self::NotFound(Missing::Upload) => "upload_not_found",
            Self::NotFound(Missing::Route) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::TooLarge(_) => "payload_too_large",
            Self::Conflict => "conflict",
            Self::TooManyGrants => "too_many_grants",
            Self::UnsupportedType(_) => "unsupported_media_type",
            Self::LinksDisabled => "links_disabled",
            Self::SchemaNotCurrent => "schema_not_current",
            Self::Store(_) => "store_unavailable",
            Self::Storage(_) => "storage_error",
            Self::Bucket(_) => "storage_unavailable",
            Self::NoDirectUploads => "direct_uploads_unavailable",
            Self::UploadIncomplete => "upload_incomplete",
            Self::Random(_) => "internal",
        }
    }
}

/// Walks the `source()` chain, one "Caused by:" per link, for the operator's log.
pub fn error_chain_fmt(
    e: &impl std::error::Error,
    f: &mut std::fmt::Formatter<'_>,
) -> std::fmt::Result {
    writeln!(f, "{e}")?;
    let mut current = e.source();
    while let Some(cause) = current {
        writeln!(f, "Caused by:\n\t{cause}")?;
        current = cause.source();
    }
    Ok(())
}

/// The JSON body of every admin error.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// `{code, message}` of an admin error.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, for programs: `invalid_input`, `unauthorized`, `user_not_found`, …
    pub code: String,
    /// For people.
    pub message: String,
}

impl std::fmt::Debug for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        error_chain_fmt(self, f)
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidInput(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::Disabled => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict
            | Self::TooManyGrants
            | Self::NoDirectUploads
            | Self::UploadIncomplete => StatusCode::CONFLICT,
            Self::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::LinksDisabled => StatusCode::SERVICE_UNAVAILABLE,
            Self::SchemaNotCurrent | Self::Store(_) | Self::Bucket(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Storage(_) | Self::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error.cause_chain = ?self, "Admin call failed.");
        }
        let mut response = HttpResponse::build(status);
        if matches!(self, Self::Unauthorized | Self::Disabled) {
            response.insert_header(("WWW-Authenticate", "Bearer"));
        }
        if let Self::MethodNotAllowed(allow) = self {
            response.insert_header(("Allow", *allow));
        }
        response.json(ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message: self.to_string(),
            },
        })
    }
}
