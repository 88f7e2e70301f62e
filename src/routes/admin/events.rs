//! `GET /v1/events`: the audit log, both halves merged, page by page.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{AdminError, ErrorBody};
use crate::model::EventKind;
use crate::state::Shared;

#[derive(Deserialize)]
pub(super) struct EventsQuery {
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
pub(super) async fn events(
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
