//! The OpenAPI 3 document of the admin API, generated from the route annotations of the
//! handlers (utoipa), so it cannot drift from the code. Served at `GET /v1/openapi.json` and
//! checked against real responses in the tests.

use actix_web::{HttpResponse, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::{AdminConfig, direct, events, files, reads, sessions, sharing, uploads, users};

/// The paths of the document: every handler of the admin API.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        users::put_user,
        users::rotate_user_token,
        users::delete_user,
        sessions::logout_everywhere,
        uploads::upload,
        direct::begin,
        direct::complete,
        files::get_file,
        files::patch_file,
        files::delete_file,
        files::rotate_file_token,
        reads::list_files,
        reads::file_content,
        sharing::put_grant,
        sharing::delete_grant,
        sharing::create_link,
        sessions::create_session,
        sessions::delete_session,
        events::events
    ),
    components(schemas(ErrorBody))
)]
pub struct AdminApi;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        doc.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "admin_token",
            Vec::<String>::new(),
        )]);
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = AdminApi::openapi();
    doc.info.title = "mediagate admin API".into();
    doc.info.description =
        Some("Users, files, tokens, sharing, sessions and audit of mediagate.".into());
    BearerToken.modify(&mut doc);
    doc
}

/// The document with this deployment's limits filled in (the TTL maxima are configuration).
pub fn document_for(max_session_ttl: u64, max_link_ttl: u64) -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    let schemas = &mut doc["components"]["schemas"];
    schemas["SessionRequest"]["properties"]["ttl_seconds"]["maximum"] = max_session_ttl.into();
    schemas["LinkRequest"]["properties"]["ttl_seconds"]["maximum"] = max_link_ttl.into();
    doc
}

/// `GET /v1/openapi.json`.
pub(super) async fn serve(config: web::Data<AdminConfig>) -> HttpResponse {
    HttpResponse::Ok().json(document_for(config.max_session_ttl, config.max_link_ttl))
}
