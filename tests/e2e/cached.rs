//! Cached mode (`store.cache`): decisions are read from a per-thread copy that Redis keeps
//! honest with RESP3 invalidations. Two mediagate instances share one Redis; every revocation
//! must reach both within 100 ms, although the copies' own age limit is set to a minute here,
//! so only the invalidation can explain it. A store outage still fails closed, and so does a
//! connection whose invalidations stop arriving: the heartbeat's bound, not the copies' age,
//! ends the use of its copies. Behind Sentinel
//! and on a Cluster, a failover replaces the connections to the failed master, and the copies
//! it tracked are gone with them: its invalidations will never come.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::gate::{ALICE_BYTES, Fixture, fixture};
use crate::support::app::{MediaGate, Stack, StoreKind};
use crate::support::http;
use crate::support::proxy::Proxy;
use crate::support::redis::{RedisServer, record_key};

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

/// `MGET`s the server has run so far.
fn mgets(redis: &RedisServer) -> u64 {
    calls(redis, "mget")
}

/// Calls of `command` the server has run so far.
fn calls(redis: &RedisServer, command: &str) -> u64 {
    let raw = redis.command(&["INFO", "commandstats"]).unwrap();
    let stats: BTreeMap<&str, u64> = raw
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?;
            Some((name, calls.parse().ok()?))
        })
        .collect();
    stats.get(command).copied().unwrap_or(0)
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

/// A stack in cached mode (copies allowed to live a minute, even on a cluster, and a silent
/// connection trusted as long) and a second instance on the same store: the stack's `url` is
/// the store's.
fn two_cached(kind: StoreKind, url: impl Fn(&Stack) -> String) -> (Stack, MediaGate) {
    let env: Vec<(String, String)> = [
        ("MEDIAGATE__STORE__CACHE", "true"),
        ("MEDIAGATE__STORE__CACHE_MAX_AGE_MS", "60000"),
        ("MEDIAGATE__STORE__CACHE_STALENESS_MS", "60000"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let s = Stack::start_with(kind, env.clone(), |c| c);
    let mut second_env = env;
    second_env.push(("MEDIAGATE__STORE__URL".into(), url(&s)));
    second_env.push((
        "MEDIAGATE__STORAGE__ROOT".into(),
        s.storage_root.to_string_lossy().into_owned(),
    ));
    let second = MediaGate::start(&s.dir.path().join("second"), second_env);
    second.wait_ready();
    (s, second)
}

/// A grant given, used everywhere, revoked: dropped everywhere within 100 ms.
fn revoked_grant_is_dropped(s: &Stack, instances: &[u16], id: &str, url: &str, bob: &str) {
    let grant = format!("/v1/files/{id}/grants/bob");
    assert_eq!(s.admin("PUT", &grant, &[], b"").status, 200);
    warm(instances, url, Some(bob), 200);
    assert_eq!(s.admin("DELETE", &grant, &[], b"").status, 204);
    dropped_everywhere(instances, url, Some(bob), 200, "grant revoked");
}

/// Store reads (`reads`, a counter on the servers) made by 200 warm decisions, 100 on each
/// instance, all of which must allow.
fn reads_for_warm_decisions(
    instances: &[u16],
    url: &str,
    session: &str,
    reads: impl Fn() -> u64,
) -> u64 {
    warm(instances, url, Some(session), 200);
    let before = reads();
    for port in instances {
        for _ in 0..100 {
            assert_eq!(ask(*port, url, Some(session)), 200);
        }
    }
    reads() - before
}

/// `fail` kills the master that served the copies of bob's grant that every instance holds;
/// the grant, revoked on the promoted replica, must stop working everywhere within 100 ms (no
/// invalidation from the dead master will ever come), and the owner's decisions come back.
fn revocation_survives_a_failover(
    s: &mut Stack,
    instances: &[u16],
    f: &Fixture,
    fail: impl FnOnce(&mut Stack),
) {
    let id = f.alice_upload["file_id"].as_str().unwrap();
    let grant = format!("/v1/files/{id}/grants/bob");
    assert_eq!(s.admin("PUT", &grant, &[], b"").status, 200);
    warm(instances, &f.alice_url, Some(&f.bob), 200);
    fail(s);
    crate::support::eventually("the revocation", Duration::from_secs(15), || {
        let status = s.admin("DELETE", &grant, &[], b"").status;
        assert!(status == 204 || status == 503, "revoking: {status}");
        (status == 204).then_some(())
    });
    dropped_everywhere(
        instances,
        &f.alice_url,
        Some(&f.bob),
        200,
        "grant revoked across a failover",
    );
    crate::support::eventually(
        "decisions after the failover",
        Duration::from_secs(15),
        || {
            let answers: Vec<u16> = instances
                .iter()
                .flat_map(|p| (0..4).map(|_| ask(*p, &f.alice_url, Some(&f.alice))))
                .collect();
            assert!(
                answers.iter().all(|a| *a == 200 || *a == 503),
                "{answers:?}"
            );
            answers.iter().all(|a| *a == 200).then_some(())
        },
    );
}

#[test]
fn cached_decisions_are_dropped_on_every_instance_within_100_ms() {
    let (mut s, second) = two_cached(StoreKind::Redis, |s| s.redis.as_ref().unwrap().url());
    let both = [s.app.auth_port, second.auth_port];
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).body, ALICE_BYTES);

    // The copies are used: once warm, decisions make next to no MGET.
    let made = reads_for_warm_decisions(&both, &f.alice_url, &f.alice, || {
        mgets(s.redis.as_ref().unwrap())
    });
    assert!(made <= 4, "{made} MGETs for 200 warm decisions");

    revoked_grant_is_dropped(&s, &both, &id, &f.alice_url, &f.bob);

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

#[test]
fn cached_mode_behind_sentinel_stays_honest_across_a_failover() {
    let (mut s, second) = two_cached(StoreKind::Sentinel, |s| s.sentinel.as_ref().unwrap().url());
    let both = [s.app.auth_port, second.auth_port];
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();

    // The copies are used: once warm, decisions make next to no MGET on the master.
    let made = reads_for_warm_decisions(&both, &f.alice_url, &f.alice, || {
        mgets(&s.sentinel.as_ref().unwrap().master)
    });
    assert!(made <= 4, "{made} MGETs for 200 warm decisions");
    revoked_grant_is_dropped(&s, &both, &id, &f.alice_url, &f.bob);

    revocation_survives_a_failover(&mut s, &both, &f, |s| {
        let mut set = s.sentinel.take().expect("sentinel set");
        set.fail_master();
        s.sentinel = Some(set);
    });

    // The copies now come from the new master (a replica runs no MGET of its own), and its
    // invalidations reach both instances.
    let promoted = &s.sentinel.as_ref().unwrap().replica;
    assert!(mgets(promoted) > 0, "no decision read the new master");
    revoked_grant_is_dropped(&s, &both, &id, &f.alice_url, &f.bob);
}

#[test]
fn cached_mode_on_a_cluster_stays_honest_across_a_failover() {
    let (mut s, second) = two_cached(StoreKind::Cluster, |s| s.cluster.as_ref().unwrap().url());
    let both = [s.app.auth_port, second.auth_port];
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    let gets = |s: &Stack| -> u64 {
        let c = s.cluster.as_ref().unwrap();
        c.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !c.down.contains(i))
            .map(|(_, n)| calls(n, "get"))
            .sum()
    };

    // The copies are used: once warm, decisions send next to no GET (one per key otherwise).
    let made = reads_for_warm_decisions(&both, &f.alice_url, &f.alice, || gets(&s));
    assert!(made <= 12, "{made} GETs for 200 warm decisions");
    revoked_grant_is_dropped(&s, &both, &id, &f.alice_url, &f.bob);

    // The master that holds the file's record.
    let file_token = f.alice_url.split('/').nth(3).unwrap().to_owned();
    revocation_survives_a_failover(&mut s, &both, &f, |s| {
        let mut cluster = s.cluster.take().expect("cluster");
        let victim = cluster.master_for(record_key("mediagate", &file_token));
        cluster.fail_master(victim);
        s.cluster = Some(cluster);
    });
    revoked_grant_is_dropped(&s, &both, &id, &f.alice_url, &f.bob);
}

/// The invalidation path cut without the connection closing (every reply from Redis held back
/// by a proxy): the copies, allowed to live a minute, are not used once no heartbeat has been
/// answered for `store.cache_staleness_ms` (100 ms), so a grant revoked meanwhile is never
/// honoured past that; decisions fail closed until the path is back, then see the revocation.
#[test]
fn a_silent_connection_stops_its_copies_within_the_staleness_bound() {
    let s = Stack::start_with(
        StoreKind::Redis,
        vec![("MEDIAGATE__STORE__CACHE".into(), "true".into())],
        |c| c,
    );
    let proxy = Proxy::start(s.redis.as_ref().unwrap().port);
    let cut = MediaGate::start(
        &s.dir.path().join("cut"),
        vec![
            ("MEDIAGATE__STORE__URL".into(), proxy.url()),
            ("MEDIAGATE__STORE__CACHE".into(), "true".into()),
            ("MEDIAGATE__STORE__CACHE_MAX_AGE_MS".into(), "60000".into()),
            ("MEDIAGATE__STORE__CACHE_STALENESS_MS".into(), "100".into()),
            // A decision's bound: each one that cannot use its copy waits this long for Redis.
            ("MEDIAGATE__STORE__TIMEOUT_MS".into(), "250".into()),
            (
                "MEDIAGATE__STORAGE__ROOT".into(),
                s.storage_root.to_string_lossy().into_owned(),
            ),
        ],
    );
    cut.wait_ready();
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap();
    let grant = format!("/v1/files/{id}/grants/bob");
    assert_eq!(s.admin("PUT", &grant, &[], b"").status, 200);
    let port = [cut.auth_port];

    // With the path live, copies outlast the staleness bound many times over: a second of
    // decisions makes next to no MGET (copies that lived 100 ms would need one in each of the 10
    // rounds at least; the slack is for a heartbeat late on a loaded machine).
    warm(&port, &f.alice_url, Some(&f.bob), 200);
    let redis = s.redis.as_ref().unwrap();
    let before = mgets(redis);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        warm(&port, &f.alice_url, Some(&f.bob), 200);
    }
    let made = mgets(redis) - before;
    assert!(made <= 6, "{made} MGETs for a second of warm decisions");

    proxy.stall(true);
    let stalled = Instant::now();
    assert_eq!(s.admin("DELETE", &grant, &[], b"").status, 204);
    let mut answers = Vec::new();
    while stalled.elapsed() < Duration::from_millis(1200) {
        let asked = stalled.elapsed();
        answers.push((asked, ask(cut.auth_port, &f.alice_url, Some(&f.bob))));
    }
    let late: Vec<_> = answers
        .iter()
        .filter(|(asked, _)| *asked > Duration::from_millis(105))
        .collect();
    assert!(!late.is_empty(), "{answers:?}");
    assert!(late.iter().all(|(_, a)| *a == 503), "{answers:?}");

    // The path back: the held invalidation arrives before any later reply, so the revocation
    // is seen, and the owner's reads are served again.
    proxy.stall(false);
    crate::support::eventually(
        "decisions after the path is back",
        Duration::from_secs(5),
        || (ask(cut.auth_port, &f.alice_url, Some(&f.alice)) == 200).then_some(()),
    );
    for _ in 0..12 {
        assert_eq!(ask(cut.auth_port, &f.alice_url, Some(&f.bob)), 403);
    }
}
