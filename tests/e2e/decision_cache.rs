//! nginx's decision cache (`nginx.decision_cache_secs`), through the nginx that `mediagate
//! nginx-config` renders: an allow is reused only for the same request and credentials, never
//! a denial, never past its bound or a credential's expiry, and never once it is stale.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::gate::{ALICE_BYTES, fixture};
use crate::support::app::{Stack, StoreKind};
use crate::support::http;

const LINK_KEY: &str = "an-example-link-signing-key-0123456789";

fn stack(kind: StoreKind, secs: u32) -> Stack {
    Stack::start_with(
        kind,
        vec![
            (
                "MEDIAGATE__NGINX__DECISION_CACHE_SECS".into(),
                secs.to_string(),
            ),
            ("MEDIAGATE__LINKS__SECRET".into(), LINK_KEY.into()),
        ],
        |c| c,
    )
}

/// How many decisions of `outcome` mediagate itself has made.
fn decided(s: &Stack, outcome: &str) -> f64 {
    let text = http::get(s.app.admin_port, "/metrics", &[]).text();
    let needle = format!("mediagate_decisions_total{{outcome=\"{outcome}\"}}");
    text.lines()
        .find(|l| l.starts_with(&needle))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Asks mediagate's auth listener directly, as nginx's subrequest does.
fn direct(s: &Stack, uri: &str, cookie: &str) -> http::Response {
    http::get(
        s.app.auth_port,
        "/auth",
        &[
            ("X-Original-URI", uri),
            ("X-Original-Method", "GET"),
            ("Cookie", cookie),
        ],
    )
}

/// Requests `url` every 50 ms until the answer's status is `status`; how long that took.
fn until_status(s: &Stack, url: &str, session: Option<&str>, status: u16) -> Duration {
    let start = Instant::now();
    loop {
        let r = s.get(url, session);
        if r.status == status {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still {} after 10 s\n{}",
            r.status,
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn reused_only_for_the_same_request_and_credentials(kind: StoreKind) {
    let s = stack(kind, 5);
    let f = fixture(&s);
    let r = s.get(&f.alice_url, Some(&f.alice));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, ALICE_BYTES),
        "{}",
        s.logs()
    );
    // mediagate's own answers tell nginx what it may keep; the client sees none of it.
    assert!(r.header("x-accel-expires").is_none() && r.header("x-media-path").is_none());
    let cookie = format!("mediagate_session={}", f.alice);
    let until = direct(&s, &f.alice_url, &cookie);
    let until = until
        .header("x-accel-expires")
        .unwrap_or_default()
        .to_owned();
    assert!(until.starts_with('@'), "{until:?}");
    let bob_cookie = format!("mediagate_session={}", f.bob);
    let denied = direct(&s, &f.alice_url, &bob_cookie);
    assert_eq!(denied.status, 403);
    assert_eq!(denied.header("x-accel-expires"), Some("0"));

    // The same request again: answered by nginx, not asked again (a second boundary may pass).
    let allowed = decided(&s, "allow");
    for _ in 0..20 {
        let r = s.get(&f.alice_url, Some(&f.alice));
        assert_eq!((r.status, r.body.as_slice()), (200, ALICE_BYTES));
    }
    assert!(decided(&s, "allow") <= allowed + 1.0, "{}", s.logs());

    // Another session, none, a changed Cookie or Authorization header, another file: asked.
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    assert_eq!(s.get(&f.alice_url, None).status, 401);
    assert_eq!(s.get(&f.bob_url, Some(&f.alice)).status, 403);
    let allowed = decided(&s, "allow");
    let more = format!("{cookie}; theme=dark");
    for extra in [
        vec![("Cookie", more.as_str())],
        vec![("Cookie", cookie.as_str()), ("Authorization", "Bearer x")],
    ] {
        let r = http::send(s.nginx.port, "GET", f.alice_url.as_bytes(), &extra, b"").unwrap();
        assert_eq!(r.status, 200);
    }
    assert_eq!(decided(&s, "allow"), allowed + 2.0, "{}", s.logs());
    // The same characters moved from one header to the other are another key, and mediagate
    // (which reads a native session from the cookie only) refuses them.
    let moved = [("Cookie", ""), ("Authorization", cookie.as_str())];
    let r = http::send(s.nginx.port, "GET", f.alice_url.as_bytes(), &moved, b"").unwrap();
    assert_eq!(r.status, 401, "{}", s.logs());
    // Denials are never kept: each one is mediagate's.
    let forbidden = decided(&s, "forbidden");
    for _ in 0..3 {
        assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    }
    assert_eq!(decided(&s, "forbidden"), forbidden + 3.0);
}

#[test]
fn an_allow_is_reused_only_for_the_same_request_and_credentials_on_embedded() {
    reused_only_for_the_same_request_and_credentials(StoreKind::Embedded);
}

#[test]
fn an_allow_is_reused_only_for_the_same_request_and_credentials_on_redis() {
    reused_only_for_the_same_request_and_credentials(StoreKind::Redis);
}

#[test]
fn without_the_setting_nothing_is_kept() {
    let s = Stack::start(StoreKind::Embedded);
    let f = fixture(&s);
    let cookie = format!("mediagate_session={}", f.alice);
    let r = direct(&s, &f.alice_url, &cookie);
    assert_eq!(r.status, 200);
    assert!(r.header("x-accel-expires").is_none());
    let allowed = decided(&s, "allow");
    for _ in 0..5 {
        assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    }
    assert_eq!(decided(&s, "allow"), allowed + 5.0);
}

fn revocations_arrive_within_the_bound(kind: StoreKind) {
    let s = stack(kind, 2);
    let f = fixture(&s);
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    // A logout: nginx may go on answering from its copy, for 2 s at most.
    let r = s.admin("DELETE", &format!("/v1/sessions/{}", f.alice), &[], b"");
    assert_eq!(r.status, 204);
    let took = until_status(&s, &f.alice_url, Some(&f.alice), 401);
    assert!(took <= Duration::from_millis(2300), "{took:?}");
    for _ in 0..5 {
        assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 401);
    }
    // A leaked URL: after its file token is rotated, it dies within the bound too.
    let again = s.session("alice", 600, &[]);
    assert_eq!(s.get(&f.alice_url, Some(&again)).status, 200);
    let id = f.alice_upload["file_id"].as_str().unwrap();
    let r = s.admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let took = until_status(&s, &f.alice_url, Some(&again), 403);
    assert!(took <= Duration::from_millis(2300), "{took:?}");
}

#[test]
fn revocations_arrive_within_the_bound_on_embedded() {
    revocations_arrive_within_the_bound(StoreKind::Embedded);
}

#[test]
fn revocations_arrive_within_the_bound_on_redis() {
    revocations_arrive_within_the_bound(StoreKind::Redis);
}

#[test]
fn a_copy_never_outlives_the_link_or_session_it_rests_on() {
    // 30 s allowed, but the link and the session each end within 2 s.
    let s = stack(StoreKind::Embedded, 30);
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    let r = s.admin_json(
        "POST",
        &format!("/v1/files/{id}/links"),
        json!({"ttl_seconds": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let link = r.json()["url"].as_str().unwrap().to_owned();
    let expires = humantime::parse_rfc3339(r.json()["expires_at"].as_str().unwrap()).unwrap();
    let session = s.session("alice", 2, &[]);
    assert_eq!(s.get(&link, None).status, 200);
    assert_eq!(s.get(&f.alice_url, Some(&session)).status, 200);
    let after = |t: std::time::SystemTime| {
        let wait = t
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default();
        std::thread::sleep(wait + Duration::from_millis(100));
    };
    after(expires);
    assert_eq!(s.get(&link, None).status, 403, "{}", s.logs());
    // The session was made after the link, with 2 s: by 3 s after the link's expiry it is over.
    after(expires + Duration::from_secs(2));
    assert_eq!(
        s.get(&f.alice_url, Some(&session)).status,
        401,
        "{}",
        s.logs()
    );
}

#[test]
fn nothing_stale_is_served_when_mediagate_cannot_answer() {
    let mut s = stack(StoreKind::Embedded, 1);
    let f = fixture(&s);
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    s.app.kill();
    // The copy is gone within the second; past it nginx must ask, cannot, and refuses.
    std::thread::sleep(Duration::from_millis(2100));
    let r = s.get(&f.alice_url, Some(&f.alice));
    assert_eq!(r.status, 503, "{}", s.logs());
    assert_eq!(r.header("retry-after"), Some("1"));
    s.app.restart();
    s.app.wait_ready();
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
}
