//! What the auth listener answers nginx: the status of a decision, and on an allow the headers
//! nginx's snippet reads (`X-Media-*`, `X-Accel-Expires`).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::HeaderName;

use crate::disposition;
use crate::metrics::Outcome;
use crate::model::FileRecord;
use crate::policy::Decision;

// Named once: a name given as `&str` is parsed and checked again on every request and response.
pub(super) const X_MEDIA_PATH: HeaderName = HeaderName::from_static("x-media-path");
pub(super) const X_MEDIA_DISPOSITION: HeaderName = HeaderName::from_static("x-media-disposition");
pub(super) const X_MEDIA_TYPE: HeaderName = HeaderName::from_static("x-media-type");
pub(super) const X_MEDIA_CSP: HeaderName = HeaderName::from_static("x-media-csp");
/// The ETag nginx sends for an object from a bucket (in place of the bucket's).
pub(super) const X_MEDIA_ETAG: HeaderName = HeaderName::from_static("x-media-etag");
/// The presigned URL nginx fetches the object with, when the bytes are in a bucket.
pub(super) const X_MEDIA_UPSTREAM: HeaderName = HeaderName::from_static("x-media-upstream");
pub(super) const X_ACCEL_EXPIRES: HeaderName = HeaderName::from_static("x-accel-expires");
pub(super) const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
pub(super) const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
pub(super) const X_ORIGINAL_REMOTE_ADDR: HeaderName =
    HeaderName::from_static("x-original-remote-addr");

/// The one place a decision becomes a status code, and the outcome it is counted as.
pub(super) fn respond(decision: &Decision<'_>) -> (HttpResponse, Outcome) {
    match decision {
        Decision::Allow(file) => (allow(file), Outcome::Allow),
        Decision::NoCredential => (
            HttpResponse::new(StatusCode::UNAUTHORIZED),
            Outcome::Unauthorized,
        ),
        Decision::Forbidden(_) => (HttpResponse::new(StatusCode::FORBIDDEN), Outcome::Forbidden),
    }
}

fn allow(file: &FileRecord) -> HttpResponse {
    let shown = disposition::present(&file.content_type, file.disposition);
    let mut r = HttpResponse::Ok();
    r.insert_header((X_MEDIA_PATH, file.storage_path.as_str()))
        .insert_header((
            X_MEDIA_DISPOSITION,
            disposition::header_value(shown.kind, &file.filename),
        ))
        .insert_header((X_MEDIA_TYPE, shown.content_type));
    if shown.sandbox {
        r.insert_header((X_MEDIA_CSP, "sandbox"));
    }
    r.finish()
}

/// The answer when the decision cannot be made.
pub(super) fn unavailable() -> (HttpResponse, Outcome) {
    (
        HttpResponse::new(StatusCode::SERVICE_UNAVAILABLE),
        Outcome::Unavailable,
    )
}
