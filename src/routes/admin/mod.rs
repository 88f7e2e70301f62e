//! The admin API (see `api.md`): JSON over the admin listener, behind a bearer token compared
//! in constant time.
//!
//! This module holds the route table; each resource has a module of its own (`users`,
//! `uploads`, `files`, `sharing`, `sessions`, `events`), and every change goes through one
//! skeleton (`change`): parse the ids (`params`), `Change::begin` (the schema must be current),
//! the store call, `or_missing` for what does not exist (`error`), `Change::record` for the
//! audit log, the JSON answer. Every handler is annotated for the OpenAPI document
//! (`openapi`), so the document is generated from the code and cannot drift from it.

mod change;
mod direct;
pub mod error;
mod events;
mod files;
mod guard;
pub mod openapi;
mod params;
mod reads;
mod sessions;
mod sharing;
mod uploads;
mod users;

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};

use crate::admin_tokens::AdminTokens;
use crate::filenames;
use crate::links::LinkKeys;
use crate::model::FileRecord;
use crate::paths::StoragePath;
use crate::state::Shared;
use crate::tokens::{FileToken, UserToken};
use error::{AdminError, Missing, OrMissing};
pub use guard::count_calls;

/// What the admin handlers need, built once at start-up.
pub struct AdminConfig {
    /// Accepted bearer tokens; none disables the API.
    pub tokens: Arc<AdminTokens>,
    /// The public URL prefix, for the URLs the API returns.
    pub media_prefix: String,
    /// `upload.max_bytes`.
    pub max_upload_bytes: u64,
    /// Accepted upload types (`image/png`, `image/*`); empty accepts all.
    pub allowed_types: Vec<String>,
    /// `session.max_ttl_secs`.
    pub max_session_ttl: u64,
    /// The keys share links are signed with.
    pub links: LinkKeys,
    /// `links.max_ttl_secs`.
    pub max_link_ttl: u64,
    /// `storage.s3.upload_secs`: how long a direct upload may take.
    pub direct_upload_secs: u64,
}

/// Mounts `/v1` behind the token guard, and how bad paths, queries and bodies are answered.
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
            .wrap(from_fn(guard::require_token))
            .service(resource("/openapi.json", "GET").route(web::get().to(openapi::serve)))
            .service(
                resource("/users/{user_id}", "PUT, DELETE")
                    .route(web::put().to(users::put_user))
                    .route(web::delete().to(users::delete_user)),
            )
            .service(
                resource("/users/{user_id}/rotate-token", "POST")
                    .route(web::post().to(users::rotate_user_token)),
            )
            .service(
                resource("/users/{user_id}/files", "POST").route(web::post().to(uploads::upload)),
            )
            .service(
                resource("/users/{user_id}/uploads", "POST").route(web::post().to(direct::begin)),
            )
            .service(
                resource("/uploads/{upload_id}/complete", "POST")
                    .route(web::post().to(direct::complete)),
            )
            .service(
                resource("/users/{user_id}/sessions", "DELETE")
                    .route(web::delete().to(sessions::logout_everywhere)),
            )
            .service(resource("/files", "GET").route(web::get().to(reads::list_files)))
            .service(
                resource("/files/{file_id}/content", "GET")
                    .route(web::get().to(reads::file_content)),
            )
            .service(
                resource("/files/{file_id}", "GET, PATCH, DELETE")
                    .route(web::get().to(files::get_file))
                    .route(web::patch().to(files::patch_file))
                    .route(web::delete().to(files::delete_file)),
            )
            .service(
                resource("/files/{file_id}/rotate-token", "POST")
                    .route(web::post().to(files::rotate_file_token)),
            )
            .service(
                resource("/files/{file_id}/grants/{user_id}", "PUT, DELETE")
                    .route(web::put().to(sharing::put_grant))
                    .route(web::delete().to(sharing::delete_grant)),
            )
            .service(
                resource("/files/{file_id}/links", "POST")
                    .route(web::post().to(sharing::create_link)),
            )
            .service(resource("/sessions", "POST").route(web::post().to(sessions::create_session)))
            .service(
                resource("/sessions/{session_id}", "DELETE")
                    .route(web::delete().to(sessions::delete_session)),
            )
            .service(resource("/events", "GET").route(web::get().to(events::events)))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(AdminError::NotFound(Missing::Route))
            })),
    );
}

/// A resource whose undeclared methods get 405 with `Allow` (not the scope's 404).
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(AdminError::MethodNotAllowed(allow))
    }))
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
pub(super) async fn remove_bytes(shared: &Shared, path: &StoragePath) {
    if let Err(e) = shared.storage.remove(path).await {
        tracing::error!(error = %e, path = path.as_str(), "Could not remove bytes no record points at; remove them by hand.");
    }
}

/// The owner's current URL of a file.
pub(super) async fn url_of(
    shared: &Shared,
    config: &AdminConfig,
    f: &FileRecord,
) -> Result<String, AdminError> {
    // The owner exists while its files do (deleting a user deletes its files first).
    let owner = shared
        .store
        .user(&f.owner)
        .await?
        .or_missing(Missing::File)?;
    Ok(public_url(
        &config.media_prefix,
        &owner.token,
        &f.token,
        &f.filename,
    ))
}

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
}
