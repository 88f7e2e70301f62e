//! Cached mode (`store.cache`): decisions are read from a per-thread copy that Redis keeps
//! honest with RESP3 invalidations. Two mediagate instances share one Redis; every revocation
//! must reach both within 100 ms, although the copies' own age limit is set to a minute here,
//! so only the invalidation can explain it. A store outage still fails closed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::gate::{ALICE_BYTES, fixture};
use crate::support::app::{MediaGate, Stack, StoreKind};
use crate::support::http;

/// Asks an auth listener directly, as nginx's subrequest does.
fn ask(port: u16, url: &str, session: Option<&str>) -> u16 {
    let cookie = session.map(|s| format!("mediagate_session={s}"));
    let mut headers = vec![
        ("X-Original-URI", url),
        ("X-Original-Method", "GET"),
        ("X-Original-Remote-Addr", "127.0.0.1"),
    ];
    if let Some(c) = &cookie {
        headers.push(("Cookie", c.as_str()));
    }
    http::send(port, "GET", b"/auth", &headers, b"")
        .expect("auth listener")
        .status
}

fn mgets(s: &Stack) -> u64 {
    let raw = s
        .redis
        .as_ref()
        .unwrap()
        .command(&["INFO", "commandstats"])
        .unwrap();
    let stats: BTreeMap<&str, u64> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name, calls.parse().ok()?))
        })
        .collect();
    stats.get("mget").copied().unwrap_or(0)
}

/// Every instance answers `expected` for a while (so every worker thread holds a copy).
fn warm(instances: &[u16], url: &str, session: Option<&str>, expected: u16) {
    for port in instances {
        for _ in 0..12 {
            assert_eq!(ask(*port, url, session), expected, "{url} on :{port}");
        }
    }
}

/// After a change has returned, every instance stops answering `before` within 100 ms.
fn dropped_everywhere(
    instances: &[u16],
    url: &str,
    session: Option<&str>,
    before: u16,
    what: &str,
) {
    let changed = Instant::now();
    for port in instances {
        loop {
            // Several asks per round: each may reach another worker thread, with its own copy.
            let answers: Vec<u16> = (0..4).map(|_| ask(*port, url, session)).collect();
            if answers.iter().all(|a| *a != before) {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_millis(100),
                "{what}: :{port} still answered {before} {:?} after the change",
                changed.elapsed()
            );
        }
    }
    eprintln!("{what}: dropped everywhere after {:?}", changed.elapsed());
}

#[test]
fn cached_decisions_are_dropped_on_every_instance_within_100_ms() {
    let env: Vec<(String, String)> = [
        ("MEDIAGATE__STORE__CACHE", "true"),
        ("MEDIAGATE__STORE__CACHE_MAX_AGE_MS", "60000"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let mut s = Stack::start_with(StoreKind::Redis, env.clone(), |c| c);
    let mut second_env = env;
    second_env.push((
        "MEDIAGATE__STORE__URL".into(),
        s.redis.as_ref().unwrap().url(),
    ));
    second_env.push((
        "MEDIAGATE__STORAGE__ROOT".into(),
        s.storage_root.to_string_lossy().into_owned(),
    ));
    let second = MediaGate::start(&s.dir.path().join("second"), second_env);
    second.wait_ready();
    let both = [s.app.auth_port, second.auth_port];
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).body, ALICE_BYTES);

    // The copies are used: once warm, decisions make next to no MGET.
    warm(&both, &f.alice_url, Some(&f.alice), 200);
    let before = mgets(&s);
    for port in both {
        for _ in 0..100 {
            assert_eq!(ask(port, &f.alice_url, Some(&f.alice)), 200);
        }
    }
    let made = mgets(&s) - before;
    assert!(made <= 4, "{made} MGETs for 200 warm decisions");

    // A grant revoked.
    let grant = format!("/v1/files/{id}/grants/bob");
    assert_eq!(s.admin("PUT", &grant, &[], b"").status, 200);
    warm(&both, &f.alice_url, Some(&f.bob), 200);
    assert_eq!(s.admin("DELETE", &grant, &[], b"").status, 204);
    dropped_everywhere(&both, &f.alice_url, Some(&f.bob), 200, "grant revoked");

    // Visibility narrowed.
    let file = format!("/v1/files/{id}");
    let r = s.admin_json("PATCH", &file, json!({"visibility": "authenticated"}));
    assert_eq!(r.status, 200, "{}", r.text());
    warm(&both, &f.alice_url, Some(&f.bob), 200);
    let r = s.admin_json("PATCH", &file, json!({"visibility": "private"}));
    assert_eq!(r.status, 200, "{}", r.text());
    dropped_everywhere(
        &both,
        &f.alice_url,
        Some(&f.bob),
        200,
        "visibility narrowed",
    );

    // One session logged out.
    let other = s.session("alice", 600, &[]);
    warm(&both, &f.alice_url, Some(&other), 200);
    let r = s.admin("DELETE", &format!("/v1/sessions/{other}"), &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    dropped_everywhere(&both, &f.alice_url, Some(&other), 200, "session logged out");

    // Every session of a user logged out.
    warm(&both, &f.bob_url, Some(&f.bob), 200);
    let r = s.admin("DELETE", "/v1/users/bob/sessions", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    dropped_everywhere(
        &both,
        &f.bob_url,
        Some(&f.bob),
        200,
        "logged out everywhere",
    );

    // The file token rotated.
    let r = s.admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"");
    assert_eq!(r.status, 200);
    let rotated = r.json()["url"].as_str().unwrap().to_owned();
    dropped_everywhere(
        &both,
        &f.alice_url,
        Some(&f.alice),
        200,
        "file token rotated",
    );

    // The user token rotated.
    warm(&both, &rotated, Some(&f.alice), 200);
    let r = s.admin("POST", "/v1/users/alice/rotate-token", &[], b"");
    assert_eq!(r.status, 200);
    dropped_everywhere(&both, &rotated, Some(&f.alice), 200, "user token rotated");

    // The file deleted.
    let current = s.admin("GET", &file, &[], b"").json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    warm(&both, &current, Some(&f.alice), 200);
    assert_eq!(s.admin("DELETE", &file, &[], b"").status, 204);
    dropped_everywhere(&both, &current, Some(&f.alice), 200, "file deleted");

    // Redis gone: no copy answers for it; every instance says 503 once it notices.
    let alice_url = s.upload("alice", "again.txt", "text/plain", b"again")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    warm(&both, &alice_url, Some(&f.alice), 200);
    s.redis.as_mut().unwrap().kill();
    let killed = Instant::now();
    let mut last_copy = Duration::ZERO;
    for port in both {
        loop {
            let answers: Vec<u16> = (0..4)
                .map(|_| ask(port, &alice_url, Some(&f.alice)))
                .collect();
            assert!(
                answers.iter().all(|a| *a == 200 || *a == 503),
                "{answers:?}"
            );
            if answers.contains(&200) {
                last_copy = killed.elapsed();
            }
            if answers.iter().all(|a| *a == 503) {
                break;
            }
            assert!(
                killed.elapsed() < Duration::from_secs(2),
                ":{port} gave no 503 {:?} after Redis died",
                killed.elapsed()
            );
        }
    }
    eprintln!(
        "Redis down: last copy served after {last_copy:?}, 503 everywhere after {:?}",
        killed.elapsed()
    );
    // The closed connection drops every copy at once (a new epoch), whatever their age.
    assert!(last_copy < Duration::from_millis(100), "{last_copy:?}");
}
