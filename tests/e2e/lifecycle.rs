//! Restarts and outages: nothing is lost, and nothing is served without a decision.

use std::time::{Duration, Instant};

use crate::gate::{ALICE_BYTES, fixture};
use crate::support::app::{Stack, StoreKind};

on_every_store!(data_survives_a_restart, |s| {
    let mut s = s;
    let f = fixture(&s);
    s.app.restart();
    if let Some(redis) = s.redis.as_mut() {
        redis.restart();
    }
    s.app.wait_ready();
    let r = s.get(&f.alice_url, Some(&f.alice));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE_BYTES);
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    // The user keeps its token: PUT again returns the same one.
    let (user_token, _, _) = crate::gate::parts(&f.alice_url);
    assert_eq!(s.user("alice"), user_token);
});

on_every_store!(mediagate_down_means_503_never_a_file, |s| {
    let mut s = s;
    let f = fixture(&s);
    s.app.kill();
    for session in [Some(f.alice.as_str()), Some(f.bob.as_str()), None] {
        let r = s.get(&f.alice_url, session);
        assert_eq!(r.status, 503, "{}", s.logs());
        assert_eq!(r.header("Retry-After"), Some("1"));
        assert!(!r.text().contains("private"));
    }
    s.app.restart();
    s.app.wait_ready();
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).body, ALICE_BYTES);
});

#[test]
fn redis_down_fails_closed_and_recovers_by_itself() {
    let mut s = Stack::start(StoreKind::Redis);
    let f = fixture(&s);
    s.redis.as_mut().unwrap().kill();
    let started = Instant::now();
    for session in [Some(f.alice.as_str()), Some(f.bob.as_str()), None] {
        let r = s.get(&f.alice_url, session);
        assert_eq!(r.status, 503, "{}", s.logs());
        assert!(!r.text().contains("private"));
    }
    // Three refusals, each bounded by the store timeout (250 ms), not by nginx's 1 s.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let ready = crate::support::http::get(s.app.admin_port, "/readyz", &[]);
    assert_eq!(ready.status, 503);
    s.redis.as_mut().unwrap().restart();
    crate::support::eventually("decisions to recover", Duration::from_secs(5), || {
        (s.get(&f.alice_url, Some(&f.alice)).status == 200).then_some(())
    });
    // Every worker thread has its own connection: once one decides again, all do, and none
    // answers 503 for having been the first to notice that the old connection was gone.
    for _ in 0..10 {
        assert_eq!(
            s.get(&f.alice_url, Some(&f.bob)).status,
            403,
            "{}",
            s.logs()
        );
        assert_eq!(
            s.get(&f.alice_url, Some(&f.alice)).status,
            200,
            "{}",
            s.logs()
        );
    }
    s.app.wait_ready();
}

#[test]
fn sigterm_stops_cleanly() {
    let mut s = Stack::start(StoreKind::Embedded);
    fixture(&s);
    assert_eq!(s.app.terminate(), Some(0), "{}", s.logs());
    assert!(s.app.log().contains("draining"), "{}", s.logs());
}

#[test]
fn a_fresh_store_is_initialised_and_ready() {
    let s = Stack::start(StoreKind::Redis);
    let redis = s.redis.as_ref().unwrap();
    let version = redis.command(&["GET", "mediagate:schema"]).unwrap();
    let current = mediagate::store::migrate::CURRENT;
    assert!(version.contains(&format!("\r\n{current}\r\n")), "{version}");
    let r = crate::support::http::get(s.app.admin_port, "/readyz", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["schema"], current);
}

#[test]
fn a_store_from_a_newer_binary_is_refused() {
    let mut s = Stack::start(StoreKind::Redis);
    let f = fixture(&s);
    s.redis
        .as_ref()
        .unwrap()
        .command(&["SET", "mediagate:schema", "99"])
        .unwrap();
    s.app.restart();
    let r = crate::support::http::get(s.app.admin_port, "/readyz", &[]);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["status"], "schema_too_new");
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 503);
    assert_eq!(s.admin("PUT", "/v1/users/carol", &[], b"").status, 503);
}
