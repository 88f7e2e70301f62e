//! The `forward` session source against an endpoint that answers like oauth2-proxy's
//! `/oauth2/auth`: who may read what, which credentials are forwarded, the answers kept in the
//! store (and ended by logging a user out everywhere), one request per credential in flight,
//! and 503 whenever the endpoint cannot answer.

use std::time::Duration;

use serde_json::json;

use crate::support::app::{Stack, StoreKind};
use crate::support::clients::OAuth2Auth;
use crate::support::eventually;

const ALICE: &[u8] = b"alice's file";
const BOB: &[u8] = b"bob's file";

fn stack(kind: StoreKind, endpoint: &OAuth2Auth, cache_secs: u64) -> Stack {
    let config = format!(
        r#"
[policy]
read_all_roles = ["staff"]

[[session.sources]]
type = "forward"
url = "{}"
cookies = ["_oauth2_proxy"]
user_header = "X-Auth-Request-User"
roles_header = "X-Auth-Request-Groups"
cache_secs = {cache_secs}
"#,
        endpoint.url()
    );
    // A bound the test's own slow answers can exceed, and a loaded machine does not.
    let env = vec![("MEDIAGATE__STORE__TIMEOUT_MS".into(), "1000".into())];
    Stack::start_configured(kind, env, &config, |c| c)
}

fn url(s: &Stack, user: &str, bytes: &[u8]) -> String {
    s.user(user);
    s.upload(user, "f.txt", "text/plain", bytes)["url"]
        .as_str()
        .expect("url")
        .to_owned()
}

fn with(s: &Stack, url: &str, cookie: &str) -> crate::support::http::Response {
    s.media("GET", url.as_bytes(), None, &[("Cookie", cookie)])
}

fn sessions() -> serde_json::Value {
    json!({"sessions": {
        "tok-alice": {"user": "alice", "groups": ["readers"]},
        "tok-carol": {"user": "carol", "groups": ["staff", "readers"]},
    }})
}

fn decisions(kind: StoreKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = OAuth2Auth::start(dir.path());
    endpoint.control(sessions());
    let s = stack(kind, &endpoint, 30);
    let (alice_url, bob_url) = (url(&s, "alice", ALICE), url(&s, "bob", BOB));
    s.user("carol");

    let alice = "_oauth2_proxy=tok-alice";
    let r = with(
        &s,
        &alice_url,
        &format!("theme=dark; {alice}; csrftoken=secret"),
    );
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE);
    // Only the named cookie reached the endpoint.
    assert_eq!(endpoint.state()["cookie"], json!(alice));
    assert_eq!(with(&s, &bob_url, alice).status, 403);
    // Roles from the groups header.
    assert_eq!(with(&s, &bob_url, "_oauth2_proxy=tok-carol").body, BOB);
    // Unknown to the endpoint (401): no session. Nothing to forward: not even asked.
    assert_eq!(
        with(&s, &alice_url, "_oauth2_proxy=tok-mallory").status,
        401
    );
    let before = endpoint.count();
    assert_eq!(with(&s, &alice_url, "other=1").status, 401);
    assert_eq!(s.get(&alice_url, None).status, 401);
    assert_eq!(endpoint.count(), before);

    // The answer is kept in the store: asked again, the endpoint is not.
    eventually("alice's answer kept", Duration::from_secs(10), || {
        let before = endpoint.count();
        assert_eq!(with(&s, &alice_url, alice).status, 200);
        (endpoint.count() == before).then_some(())
    });
    // Logging alice out everywhere ends the kept answer at once: the endpoint is asked again,
    // and now says no.
    endpoint.control(json!({"sessions": {"tok-carol": {"user": "carol", "groups": []}}}));
    let r = s.admin("DELETE", "/v1/users/alice/sessions", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let before = endpoint.count();
    assert_eq!(with(&s, &alice_url, alice).status, 401);
    assert_eq!(endpoint.count(), before + 1);

    // Many decisions for one credential share one request.
    endpoint
        .control(json!({"sessions": {"tok-dave": {"user": "alice", "groups": []}}, "delay": 0.4}));
    let before = endpoint.count();
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| with(&s, &alice_url, "_oauth2_proxy=tok-dave").status))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    assert_eq!(answers, vec![200; 8], "{}", s.logs());
    assert_eq!(
        endpoint.count(),
        before + 1,
        "one request in flight per credential"
    );

    // An endpoint that cannot answer: 503, never a guess.
    endpoint.control(json!({"delay": 0.0, "status": 500}));
    assert_eq!(with(&s, &alice_url, "_oauth2_proxy=tok-x1").status, 503);
    endpoint.control(json!({"status": 302}));
    assert_eq!(with(&s, &alice_url, "_oauth2_proxy=tok-x2").status, 503);
    endpoint.control(json!({"status": null, "delay": 3.0}));
    let started = std::time::Instant::now();
    assert_eq!(with(&s, &alice_url, "_oauth2_proxy=tok-x3").status, 503);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "held past the bound"
    );
}

#[test]
fn forward_on_embedded() {
    decisions(StoreKind::Embedded);
}

#[test]
fn forward_on_redis() {
    decisions(StoreKind::Redis);
}

#[test]
fn forward_answers_are_shared_and_a_dead_endpoint_is_503() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut endpoint = OAuth2Auth::start(dir.path());
    endpoint.control(sessions());
    let s = stack(StoreKind::Redis, &endpoint, 30);
    let alice_url = url(&s, "alice", ALICE);
    assert_eq!(with(&s, &alice_url, "_oauth2_proxy=tok-alice").status, 200);
    // The kept answer lives in the store, hashed: no cookie value in any key.
    let redis = s.redis.as_ref().expect("redis");
    eventually("the answer in the store", Duration::from_secs(10), || {
        let keys = redis.command(&["KEYS", "*fwd:*"])?;
        (!keys.is_empty()).then_some(())
    });
    assert!(
        !redis
            .command(&["KEYS", "*tok-alice*"])
            .unwrap_or_default()
            .contains("tok")
    );
    // With the endpoint dead, the kept answer still reads; a new credential is 503.
    endpoint.kill();
    assert_eq!(with(&s, &alice_url, "_oauth2_proxy=tok-alice").status, 200);
    assert_eq!(with(&s, &alice_url, "_oauth2_proxy=tok-carol").status, 503);
}

#[test]
fn forward_without_a_cache_asks_every_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let endpoint = OAuth2Auth::start(dir.path());
    endpoint.control(sessions());
    let s = stack(StoreKind::Embedded, &endpoint, 0);
    let alice_url = url(&s, "alice", ALICE);
    let before = endpoint.count();
    for _ in 0..3 {
        assert_eq!(with(&s, &alice_url, "_oauth2_proxy=tok-alice").status, 200);
    }
    assert_eq!(endpoint.count(), before + 3);
}
