//! The audit log, download counters, metrics, and the OpenAPI document against real answers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gate::fixture;
use crate::support::app::{Stack, StoreKind};
use crate::support::http;

/// All events, following `next` until a page is empty.
fn all_events(s: &Stack) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let target = match &after {
            Some(c) => format!("/v1/events?limit=3&after={c}"),
            None => "/v1/events?limit=3".to_owned(),
        };
        let page = s.admin("GET", &target, &[], b"").json();
        let events = page["events"].as_array().unwrap().clone();
        if events.is_empty() {
            assert_eq!(page["next"], Value::Null);
            return out;
        }
        after = Some(page["next"].as_str().unwrap().to_owned());
        out.extend(events);
    }
}

on_every_store!(reads_and_changes_are_audited_and_downloads_counted, |s| {
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    }
    assert_eq!(
        s.media("HEAD", f.alice_url.as_bytes(), Some(&f.alice), &[])
            .status,
        200
    );
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    assert_eq!(s.get(&f.alice_url, None).status, 401);
    s.admin("PUT", &format!("/v1/files/{id}/grants/bob"), &[], b"");
    s.admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"");

    let events = crate::support::eventually("events to be written", Duration::from_secs(5), || {
        let e = all_events(&s);
        (e.iter()
            .filter(|e| e["kind"] == "rotate_file_token")
            .count()
            == 1)
            .then_some(e)
    });
    let reads: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "read" && e["file_id"] == id.as_str())
        .collect();
    let allowed = reads.iter().filter(|e| e["decision"] == "allow").count();
    let denied: Vec<&&Value> = reads.iter().filter(|e| e["decision"] == "deny").collect();
    assert_eq!(allowed, 4, "{reads:#?}");
    assert_eq!(denied.len(), 2, "{reads:#?}");
    assert!(denied.iter().any(|e| e["user_id"] == "bob"));
    assert!(denied.iter().any(|e| e["user_id"].is_null()));
    assert!(reads.iter().all(|e| e["client"] == "127.0.0.1"));
    assert!(
        reads
            .iter()
            .all(|e| e["at"].as_str().unwrap().ends_with('Z'))
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "grant" && e["user_id"] == "bob" && e["file_id"] == id.as_str())
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "upload" && e["user_id"] == "alice")
    );
    // Downloads count allowed GETs (not HEAD, not denials).
    let file = s.admin("GET", &format!("/v1/files/{id}"), &[], b"").json();
    assert_eq!(file["downloads"], 3);
    assert_eq!(
        s.admin("GET", "/v1/events?after=garbage", &[], b"").status,
        400
    );
    assert_eq!(s.admin("GET", "/v1/events?limit=0", &[], b"").status, 400);
});

/// Events wait in memory (`audit.flush_ms`) to be written in batches: a SIGTERM in that
/// wait must still write them. The wait is made long here so that it is still running when
/// the signal comes.
fn events_queued_at_sigterm_are_written(kind: StoreKind) {
    let env = vec![("MEDIAGATE__AUDIT__FLUSH_MS".into(), "5000".into())];
    let mut s = Stack::start_with(kind, env, |c| c);
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    }
    let reads = |s: &Stack| {
        all_events(s)
            .iter()
            .filter(|e| e["kind"] == "read" && e["file_id"] == id.as_str())
            .count()
    };
    assert_eq!(reads(&s), 0, "still waiting to be written");
    assert_eq!(s.app.terminate(), Some(0), "{}", s.logs());
    s.app.restart();
    s.app.wait_ready();
    assert_eq!(reads(&s), 5, "{}", s.logs());
    let file = s.admin("GET", &format!("/v1/files/{id}"), &[], b"").json();
    assert_eq!(file["downloads"], 5);
}

#[test]
fn events_queued_at_sigterm_are_written_embedded() {
    events_queued_at_sigterm_are_written(StoreKind::Embedded);
}

#[test]
fn events_queued_at_sigterm_are_written_redis() {
    events_queued_at_sigterm_are_written(StoreKind::Redis);
}

/// The value of one metric line, e.g. `mediagate_refused_total{reason="bad_path"}`.
fn metric(s: &Stack, line: &str) -> u64 {
    let text = http::get(s.app.admin_port, "/metrics", &[]).text();
    text.lines()
        .find_map(|l| l.strip_prefix(line)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line} in\n{text}"))
}

/// Anonymous traffic cannot wipe the audit log: refusals that name no file are counted, not
/// logged, and reads are capped apart from admin changes, so however many reads come, a
/// rotation made before them is still there.
fn anonymous_traffic_never_evicts_changes(kind: StoreKind) {
    let env = vec![("MEDIAGATE__AUDIT__MAX_EVENTS".to_owned(), "50".to_owned())];
    let s = Stack::start_with(kind, env, |c| c);
    let f = fixture(&s);
    assert_eq!(
        s.admin("POST", "/v1/users/bob/rotate-token", &[], b"")
            .status,
        200
    );
    let (_, ft, n) = crate::gate::parts(&f.alice_url);
    for i in 0..200 {
        assert_eq!(s.get(&format!("/media/junk{i}"), None).status, 403);
        let unknown = format!("/media/{:032x}/{ft}/{n}", i + 1);
        assert_eq!(s.get(&unknown, None).status, 403);
        assert_eq!(s.get(&f.alice_url, None).status, 401);
    }
    let events =
        crate::support::eventually("the reads to fill the log", Duration::from_secs(10), || {
            let e = all_events(&s);
            let reads = e.iter().filter(|e| e["kind"] == "read").count();
            (reads >= 50).then_some(e)
        });
    let reads = events.iter().filter(|e| e["kind"] == "read").count();
    // Redis trims whole nodes of its stream: about the cap, never all 200.
    assert!(reads < 200, "{reads} reads kept with a cap of 50");
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "rotate_user_token" && e["user_id"] == "bob"),
        "{events:#?}"
    );
    assert!(events.iter().any(|e| e["kind"] == "upload"), "{events:#?}");
    // Only reads of the real file were logged; the rest were counted.
    assert!(
        events
            .iter()
            .filter(|e| e["kind"] == "read")
            .all(|e| e["file_id"] == f.alice_upload["file_id"]),
        "{events:#?}"
    );
    assert_eq!(
        metric(&s, "mediagate_refused_total{reason=\"bad_path\"}"),
        200
    );
    assert_eq!(
        metric(&s, "mediagate_refused_total{reason=\"unknown_file\"}"),
        200
    );
}

#[test]
fn anonymous_traffic_never_evicts_changes_embedded() {
    anonymous_traffic_never_evicts_changes(StoreKind::Embedded);
}

#[test]
fn anonymous_traffic_never_evicts_changes_redis() {
    anonymous_traffic_never_evicts_changes(StoreKind::Redis);
}

#[test]
fn metrics_count_decisions_and_admin_calls() {
    let s = Stack::start(StoreKind::Embedded);
    let f = fixture(&s);
    s.get(&f.alice_url, Some(&f.alice));
    s.get(&f.alice_url, Some(&f.bob));
    s.get(&f.alice_url, None);
    let r = http::get(s.app.admin_port, "/metrics", &[]);
    assert_eq!(r.status, 200);
    let text = r.text();
    let value = |needle: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(needle))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{needle} missing:\n{text}"))
    };
    assert!(value("mediagate_decisions_total{outcome=\"allow\"}") >= 1.0);
    assert!(value("mediagate_decisions_total{outcome=\"forbidden\"}") >= 1.0);
    assert!(value("mediagate_decisions_total{outcome=\"unauthorized\"}") >= 1.0);
    assert_eq!(
        value("mediagate_decisions_total{outcome=\"unavailable\"}"),
        0.0
    );
    assert!(value("mediagate_decision_seconds_count") >= 3.0);
    assert_eq!(value("mediagate_store_errors_total"), 0.0);
    assert_eq!(
        value("mediagate_admin_calls_total{route=\"/v1/users/{user_id}\",status=\"201\"}"),
        2.0
    );
    assert!(value("mediagate_admin_calls_total{route=\"/v1/sessions\",status=\"201\"}") >= 2.0);
    // No concrete path, token or id in any label.
    assert!(!text.contains(&f.alice_url) && !text.contains(&f.alice));
}

/// Resolves a response schema of the document into a standalone JSON Schema.
fn response_schema(doc: &Value, path: &str, method: &str, status: u16) -> Option<Value> {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        !response.is_null(),
        "{method} {path} {status} is not documented"
    );
    let schema = response["content"]["application/json"]["schema"].clone();
    if schema.is_null() {
        return None;
    }
    let mut root = schema;
    root["components"] = doc["components"].clone();
    Some(root)
}

fn conforms(doc: &Value, path: &str, method: &str, r: &http::Response) {
    let Some(schema) = response_schema(doc, path, method, r.status) else {
        assert!(
            r.body.is_empty(),
            "{method} {path} {} has an undocumented body",
            r.status
        );
        return;
    };
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let body = r.json();
    let errors: Vec<String> = validator
        .iter_errors(&body)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {}: {errors:?}\n{body}",
        r.status
    );
}

#[test]
fn the_openapi_document_matches_real_answers() {
    let s = Stack::start_with(
        StoreKind::Embedded,
        vec![(
            "MEDIAGATE__LINKS__SECRET".into(),
            "link-key-0123456789abcdef0123456789".into(),
        )],
        |c| c,
    );
    let r = s.admin("GET", "/v1/openapi.json", &[], b"");
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let documented: std::collections::BTreeSet<String> =
        doc["paths"].as_object().unwrap().keys().cloned().collect();
    let expected: std::collections::BTreeSet<String> = [
        "/v1/users/{user_id}",
        "/v1/users/{user_id}/rotate-token",
        "/v1/users/{user_id}/files",
        "/v1/users/{user_id}/uploads",
        "/v1/uploads/{upload_id}/complete",
        "/v1/users/{user_id}/sessions",
        "/v1/files",
        "/v1/files/{file_id}",
        "/v1/files/{file_id}/content",
        "/v1/files/{file_id}/rotate-token",
        "/v1/files/{file_id}/grants/{user_id}",
        "/v1/files/{file_id}/links",
        "/v1/sessions",
        "/v1/sessions/{session_id}",
        "/v1/events",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(documented, expected);

    // Every call, with its real answer checked against the document.
    let check = |path: &str, method: &str, r: http::Response| {
        conforms(&doc, path, method, &r);
        r
    };
    check(
        "/v1/users/{user_id}",
        "put",
        s.admin("PUT", "/v1/users/alice", &[], b""),
    );
    check(
        "/v1/users/{user_id}",
        "put",
        s.admin("PUT", "/v1/users/alice", &[], b""),
    );
    check(
        "/v1/users/{user_id}",
        "put",
        s.admin("PUT", "/v1/users/bob", &[], b""),
    );
    check(
        "/v1/users/{user_id}",
        "put",
        s.admin("PUT", "/v1/users/a%20b", &[], b""),
    );
    let up = check(
        "/v1/users/{user_id}/files",
        "post",
        s.admin(
            "POST",
            "/v1/users/alice/files?filename=a.txt",
            &[("Content-Type", "text/plain")],
            b"x",
        ),
    );
    let id = up.json()["file_id"].as_str().unwrap().to_owned();
    check(
        "/v1/users/{user_id}/files",
        "post",
        s.admin("POST", "/v1/users/nobody/files?filename=a", &[], b"x"),
    );
    check(
        "/v1/files/{file_id}",
        "get",
        s.admin("GET", &format!("/v1/files/{id}"), &[], b""),
    );
    check(
        "/v1/files/{file_id}",
        "get",
        s.admin("GET", "/v1/files/nothing", &[], b""),
    );
    check(
        "/v1/files/{file_id}",
        "patch",
        s.admin_json(
            "PATCH",
            &format!("/v1/files/{id}"),
            json!({"visibility": "public"}),
        ),
    );
    check(
        "/v1/files/{file_id}",
        "patch",
        s.admin_json("PATCH", &format!("/v1/files/{id}"), json!({})),
    );
    check(
        "/v1/files/{file_id}/grants/{user_id}",
        "put",
        s.admin("PUT", &format!("/v1/files/{id}/grants/bob"), &[], b""),
    );
    check(
        "/v1/files/{file_id}/grants/{user_id}",
        "delete",
        s.admin("DELETE", &format!("/v1/files/{id}/grants/bob"), &[], b""),
    );
    check(
        "/v1/files/{file_id}/links",
        "post",
        s.admin_json(
            "POST",
            &format!("/v1/files/{id}/links"),
            json!({"ttl_seconds": 60}),
        ),
    );
    check(
        "/v1/files/{file_id}/rotate-token",
        "post",
        s.admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b""),
    );
    check(
        "/v1/users/{user_id}/rotate-token",
        "post",
        s.admin("POST", "/v1/users/alice/rotate-token", &[], b""),
    );
    let session = check(
        "/v1/sessions",
        "post",
        s.admin_json("POST", "/v1/sessions", json!({"user_id": "alice"})),
    );
    check(
        "/v1/sessions",
        "post",
        s.admin_json("POST", "/v1/sessions", json!({"user_id": "nobody"})),
    );
    let sid = session.json()["session_id"].as_str().unwrap().to_owned();
    check(
        "/v1/sessions/{session_id}",
        "delete",
        s.admin("DELETE", &format!("/v1/sessions/{sid}"), &[], b""),
    );
    check(
        "/v1/sessions/{session_id}",
        "delete",
        s.admin("DELETE", &format!("/v1/sessions/{sid}"), &[], b""),
    );
    check(
        "/v1/users/{user_id}/sessions",
        "delete",
        s.admin("DELETE", "/v1/users/alice/sessions", &[], b""),
    );
    // A page with events in it, once the writer has flushed them.
    let page = crate::support::eventually("events to be written", Duration::from_secs(10), || {
        let r = s.admin("GET", "/v1/events?limit=5", &[], b"");
        (r.status != 200 || r.json()["events"].as_array().is_some_and(|e| !e.is_empty()))
            .then_some(r)
    });
    check("/v1/events", "get", page);
    check(
        "/v1/files/{file_id}",
        "delete",
        s.admin("DELETE", &format!("/v1/files/{id}"), &[], b""),
    );
    check(
        "/v1/users/{user_id}",
        "delete",
        s.admin("DELETE", "/v1/users/bob", &[], b""),
    );
    check(
        "/v1/users/{user_id}",
        "delete",
        s.admin("DELETE", "/v1/users/bob", &[], b""),
    );
    let unauthorized = http::send(
        s.app.admin_port,
        "GET",
        b"/v1/events",
        &[("Authorization", "Bearer nope")],
        b"",
    )
    .unwrap();
    check("/v1/events", "get", unauthorized);
}
