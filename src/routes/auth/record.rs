//! What a decision leaves behind: a read of a real file goes to the audit log (with the
//! client's address as nginx saw it); a refusal that named no file is only counted, so that no
//! amount of junk traffic pushes real events out of the log.

use std::net::IpAddr;

use actix_web::{HttpRequest, HttpResponse};

use super::answer::{X_ORIGINAL_REMOTE_ADDR, respond};
use super::header;
use crate::metrics::{Outcome, Refusal};
use crate::model::{Caller, EventDecision, EventKind};
use crate::policy::{Decision, DenyReason};
use crate::state::{Shared, event_at};
use crate::store::Lookup;

/// The client's address as nginx forwards it, if it is one (kept as nginx wrote it).
pub(super) fn client(req: &HttpRequest) -> Option<String> {
    header(req, X_ORIGINAL_REMOTE_ADDR)
        .filter(|a| a.parse::<IpAddr>().is_ok())
        .map(str::to_owned)
}

/// Records a read of a real file, decided at `at_ms`, in the audit log; a refusal that named
/// no file is only counted (see [`Refusal`]).
pub(super) fn audit(
    at_ms: i64,
    shared: &Shared,
    req: &HttpRequest,
    lookup: &Lookup,
    caller: Option<&Caller>,
    decision: &Decision<'_>,
    get: bool,
) {
    let (file, allowed) = match decision {
        Decision::Allow(f) => (&f.file_id, true),
        Decision::Forbidden(DenyReason::UnknownFile) => {
            return shared.metrics.refused(Refusal::UnknownFile);
        }
        _ => match &lookup.file {
            Some(f) => (&f.file_id, false),
            None => return shared.metrics.refused(Refusal::UnknownFile),
        },
    };
    let mut e = event_at(
        at_ms,
        EventKind::Read,
        caller.map(|c| &c.user_id),
        Some(file),
        Some(if allowed {
            EventDecision::Allow
        } else {
            EventDecision::Deny
        }),
        client(req),
    );
    e.download = allowed && get;
    shared.audit.record(e);
}

/// A refusal before the path named a file: counted, not audited.
pub(super) fn refuse(shared: &Shared, why: Refusal, reason: DenyReason) -> (HttpResponse, Outcome) {
    shared.metrics.refused(why);
    respond(&Decision::Forbidden(reason))
}

#[cfg(test)]
mod tests {
    use super::client;
    use actix_web::test::TestRequest;

    #[test]
    fn the_client_address_is_kept_only_when_it_is_one_address() {
        let with = |v: &str| {
            client(
                &TestRequest::default()
                    .insert_header(("X-Original-Remote-Addr", v))
                    .to_http_request(),
            )
        };
        assert_eq!(with("203.0.113.7").as_deref(), Some("203.0.113.7"));
        assert_eq!(with("2001:db8::1").as_deref(), Some("2001:db8::1"));
        for bad in [
            "",
            "not an ip",
            "10.0.0.1, 10.0.0.2",
            "10.0.0.1:443",
            " 10.0.0.1",
        ] {
            assert_eq!(with(bad), None, "{bad:?}");
        }
        assert_eq!(client(&TestRequest::default().to_http_request()), None);
    }
}
