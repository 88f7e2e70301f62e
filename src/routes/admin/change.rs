//! The one shape of an admin change: refused unless the store's schema is the one this binary
//! writes, and recorded in the audit log with the admin caller's address once it is done.

use actix_web::HttpRequest;

use super::error::AdminError;
use crate::ids::{FileId, UserId};
use crate::model::EventKind;
use crate::state::{Schema, Shared, event};

/// A change under way: made by [`Change::begin`], recorded by [`Change::record`].
pub(super) struct Change<'a> {
    shared: &'a Shared,
    /// The admin caller's address, for the audit events.
    client: Option<String>,
}

impl<'a> Change<'a> {
    /// Writes need the schema this binary was built for: on an older or newer one nothing is
    /// written (503 `schema_not_current`).
    pub fn begin(shared: &'a Shared, req: &HttpRequest) -> Result<Self, AdminError> {
        match shared.schema.get() {
            Schema::Current => Ok(Self::unstored(shared, req)),
            _ => Err(AdminError::SchemaNotCurrent),
        }
    }

    /// For a call that writes nothing to the store but is audited (a share link is signed, not
    /// stored): no schema check.
    pub fn unstored(shared: &'a Shared, req: &HttpRequest) -> Self {
        Self {
            shared,
            client: req.peer_addr().map(|a| a.ip().to_string()),
        }
    }

    /// Records what was changed, for whom, and on which file.
    pub fn record(&self, kind: EventKind, user: Option<&UserId>, file: Option<&FileId>) {
        self.shared
            .audit
            .record(event(kind, user, file, None, self.client.clone()));
    }
}
