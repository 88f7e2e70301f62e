//! The admin listener's two wrappers: the bearer-token guard on `/v1`, and the count of every
//! call by route pattern and status.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::AdminConfig;
use super::error::AdminError;
use crate::state::Shared;

pub(super) async fn require_token(
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
