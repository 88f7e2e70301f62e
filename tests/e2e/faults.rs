//! Faults under load: Redis killed or slow, mediagate killed or stopped, the embedded store
//! killed mid-write, the disk missing, read-only or full. Not one denied request may get a
//! 200; every failure is fast and closed; recovery needs no restart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::gate::{ALICE_BYTES, Fixture, fixture};
use crate::support::app::{Stack, StoreKind};
use crate::support::proxy::Proxy;
use crate::support::redis::RedisServer;

/// One answer seen under load.
#[derive(Debug, Clone)]
struct Seen {
    /// Whether this caller may read the file.
    allowed: bool,
    status: u16,
    at: Instant,
    took: Duration,
}

/// Runs owner, stranger and anonymous reads from two threads until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(s: &Arc<Stack>, f: &crate::gate::Fixture) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut threads = Vec::new();
        for _ in 0..2 {
            let (s, stop, seen) = (s.clone(), stop.clone(), seen.clone());
            let callers = [
                (true, Some(f.alice.clone())),
                (false, Some(f.bob.clone())),
                (false, None),
            ];
            let url = f.alice_url.clone();
            threads.push(std::thread::spawn(move || {
                // Bounded: at most 20,000 requests per thread, whatever happens.
                for i in 0..20_000usize {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (allowed, session) = &callers[i % 3];
                    let started = Instant::now();
                    let r = crate::support::http::send(
                        s.nginx.port,
                        "GET",
                        url.as_bytes(),
                        &session
                            .as_deref()
                            .map(|c| vec![("Cookie", format!("mediagate_session={c}"))])
                            .unwrap_or_default()
                            .iter()
                            .map(|(k, v)| (*k, v.as_str()))
                            .collect::<Vec<_>>(),
                        b"",
                    );
                    let Ok(r) = r else { continue };
                    if r.status == 200 {
                        assert_eq!(r.body, ALICE_BYTES);
                    }
                    seen.lock().unwrap().push(Seen {
                        allowed: *allowed,
                        status: r.status,
                        at: started,
                        took: started.elapsed(),
                    });
                }
            }));
        }
        Self {
            stop,
            seen,
            threads,
        }
    }

    fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load thread");
        }
        Arc::try_unwrap(self.seen)
            .expect("sole owner")
            .into_inner()
            .unwrap()
    }
}

/// The shipped bound on a decision's store call (the harness raises it for ordinary tests).
fn default_bound() -> Vec<(String, String)> {
    vec![("MEDIAGATE__STORE__TIMEOUT_MS".into(), "250".into())]
}

fn never_allows_the_denied(seen: &[Seen]) {
    let leaked: Vec<&Seen> = seen
        .iter()
        .filter(|x| !x.allowed && x.status == 200)
        .collect();
    assert!(leaked.is_empty(), "denied requests got 200: {leaked:?}");
    assert!(
        seen.iter()
            .all(|x| matches!(x.status, 200 | 401 | 403 | 503)),
        "{:?}",
        seen.iter()
            .map(|x| x.status)
            .collect::<std::collections::BTreeSet<_>>()
    );
}

#[test]
fn redis_killed_under_load_fails_closed_and_recovers_without_restart() {
    let s = Arc::new(Stack::start_with(StoreKind::Redis, default_bound(), |c| c));
    let f = fixture(&s);
    let load = Load::start(&s, &f);
    std::thread::sleep(Duration::from_millis(400));
    // The stack is shared with the load threads, so Redis is killed by pid, as a crash would.
    let redis_port = s.redis.as_ref().unwrap().port;
    let pid = redis_pid(redis_port);
    crate::support::signal(pid, "KILL");
    // The outage starts once the signal has been sent, which on a loaded machine (the whole
    // suite on two cores) can be well after the `kill` was asked for.
    let killed = Instant::now();
    std::thread::sleep(Duration::from_millis(800));
    let ready = crate::support::http::get(s.app.admin_port, "/readyz", &[]);
    assert_eq!(ready.status, 503, "readyz must track the outage");
    // The outage ends when Redis starts coming back: from then on, answers may be decisions.
    let reviving = Instant::now();
    let revived = RedisServer::start_on(&s.dir.path().join("redis"), redis_port);
    let back = Instant::now();
    let recovered = crate::support::eventually(
        "the first allowed read after Redis is back",
        Duration::from_secs(5),
        || (s.get(&f.alice_url, Some(&f.alice)).status == 200).then(Instant::now),
    );
    std::thread::sleep(Duration::from_millis(300));
    let seen = load.finish();
    never_allows_the_denied(&seen);
    let outage: Vec<&Seen> = seen
        .iter()
        .filter(|x| x.at > killed + Duration::from_millis(100) && x.at + x.took < reviving)
        .collect();
    assert!(
        outage.len() >= 4,
        "load ran during the outage: {}",
        outage.len()
    );
    assert!(
        outage.iter().all(|x| x.status == 503),
        "{:?}",
        outage.iter().map(|x| x.status).collect::<Vec<_>>()
    );
    let slowest = outage.iter().map(|x| x.took).max().unwrap();
    assert!(
        slowest < Duration::from_millis(900),
        "a failure took {slowest:?}"
    );
    let recovery = recovered - back;
    assert!(
        recovery < Duration::from_secs(1),
        "recovered after {recovery:?}"
    );
    // Readiness follows within the same second (each listener thread reconnects on its own).
    let ready_again = Instant::now();
    crate::support::eventually("readyz to recover", Duration::from_secs(1), || {
        (crate::support::http::get(s.app.admin_port, "/readyz", &[]).status == 200).then_some(())
    });
    eprintln!(
        "readyz recovered {:?} after decisions did",
        ready_again.elapsed()
    );
    drop(revived);
}

/// The pid of the redis-server listening on `port` (the stack owns the child handle).
fn redis_pid(port: u16) -> u32 {
    let out = std::process::Command::new("pgrep")
        .args(["-f", &format!("redis-server 127.0.0.1:{port}")])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("redis pid")
}

/// The gate's fixture on a stack whose Redis is reached through a proxy the test can stall
/// (the Redis server is returned to be kept for the test's length).
fn behind_a_stallable_proxy(dir: &std::path::Path) -> (RedisServer, Proxy, Stack, Fixture) {
    let redis = RedisServer::start(dir);
    let proxy = Proxy::start(redis.port);
    let mut env = default_bound();
    env.push(("MEDIAGATE__STORE__URL".into(), proxy.url()));
    let s = Stack::start_with(StoreKind::Embedded, env, |c| c);
    let f = fixture(&s);
    (redis, proxy, s, f)
}

#[test]
fn slow_redis_times_out_at_the_bound_and_the_pool_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, proxy, s, f) = behind_a_stallable_proxy(dir.path());
    proxy.stall(true);
    for session in [Some(f.alice.as_str()), Some(f.bob.as_str()), None] {
        let started = Instant::now();
        let r = s.get(&f.alice_url, session);
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{}", s.logs());
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_millis(900),
            "{took:?}"
        );
    }
    proxy.stall(false);
    let back = Instant::now();
    crate::support::eventually("decisions after the stall", Duration::from_secs(3), || {
        (s.get(&f.alice_url, Some(&f.alice)).status == 200).then_some(())
    });
    assert!(
        back.elapsed() < Duration::from_secs(1),
        "{:?}",
        back.elapsed()
    );
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    let metrics = crate::support::http::get(s.app.admin_port, "/metrics", &[]).text();
    assert!(
        metrics.contains("mediagate_store_errors_total 3"),
        "{metrics}"
    );
}

/// The admin API's reads, writes and scripts each wait for Redis: against a stalled server
/// every one answers 503 soon after the bound, and works again once Redis answers.
#[test]
fn a_stalled_redis_fails_admin_calls_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (_redis, proxy, s, f) = behind_a_stallable_proxy(dir.path());
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    let calls = [
        ("GET", format!("/v1/files/{id}")),
        ("PUT", "/v1/users/carol".to_owned()),
        ("POST", format!("/v1/files/{id}/rotate-token")),
    ];
    proxy.stall(true);
    for (method, target) in &calls {
        let started = Instant::now();
        let r = s.admin(method, target, &[], b"");
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{method} {target}: {}", s.logs());
        assert!(
            took < Duration::from_millis(1500),
            "{method} {target}: {took:?}"
        );
    }
    proxy.stall(false);
    crate::support::eventually(
        "admin calls after the stall",
        Duration::from_secs(3),
        || (s.admin("GET", &calls[0].1, &[], b"").status == 200).then_some(()),
    );
}

#[test]
fn sigterm_drains_an_in_flight_request() {
    let dir = tempfile::tempdir().unwrap();
    let redis = RedisServer::start(dir.path());
    let proxy = Proxy::start(redis.port);
    let mut s = Stack::start_with(
        StoreKind::Embedded,
        vec![("MEDIAGATE__STORE__URL".into(), proxy.url())],
        |c| c,
    );
    let f = fixture(&s);
    proxy.stall(true);
    let (port, url, cookie) = (
        s.nginx.port,
        f.alice_url.clone(),
        format!("mediagate_session={}", f.alice),
    );
    let in_flight =
        std::thread::spawn(move || crate::support::http::get(port, &url, &[("Cookie", &cookie)]));
    std::thread::sleep(Duration::from_millis(60));
    let pid = s.app.pid().unwrap();
    crate::support::signal(pid, "TERM");
    std::thread::sleep(Duration::from_millis(60));
    proxy.stall(false);
    let r = in_flight.join().unwrap();
    assert_eq!(
        r.status,
        200,
        "the in-flight request was cut off\n{}",
        s.logs()
    );
    assert_eq!(r.body, ALICE_BYTES);
    assert_eq!(s.app.terminate().or(Some(0)), Some(0));
}

#[test]
fn mediagate_killed_under_load_means_5xx_never_a_file() {
    let stack = Stack::start(StoreKind::Embedded);
    let f = fixture(&stack);
    let app_pid = stack.app.pid().unwrap();
    let s = Arc::new(stack);
    let load = Load::start(&s, &f);
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    crate::support::signal(app_pid, "KILL");
    std::thread::sleep(Duration::from_millis(500));
    let seen = load.finish();
    never_allows_the_denied(&seen);
    let outage: Vec<&Seen> = seen
        .iter()
        .filter(|x| x.at > killed + Duration::from_millis(50))
        .collect();
    assert!(outage.len() > 10);
    assert!(
        outage.iter().all(|x| x.status == 503),
        "{:?}",
        outage.iter().map(|x| x.status).collect::<Vec<_>>()
    );
    let mut s = Arc::try_unwrap(s).ok().expect("sole owner");
    s.app.restart();
    s.app.wait_ready();
    assert_eq!(
        s.get(&f.alice_url, Some(&f.alice)).body,
        ALICE_BYTES,
        "nothing lost"
    );
}

#[test]
fn embedded_store_keeps_every_acknowledged_write_across_kill_9() {
    let mut s = Stack::start(StoreKind::Embedded);
    let acked = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let port = s.app.admin_port;
    let writers: Vec<_> = (0..3)
        .map(|t| {
            let (acked, stop) = (acked.clone(), stop.clone());
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let auth = format!("Bearer {}", crate::support::app::ADMIN_TOKEN);
                    let target = format!("/v1/users/u{t}-{i}");
                    match crate::support::http::send(
                        port,
                        "PUT",
                        target.as_bytes(),
                        &[("Authorization", &auth)],
                        b"",
                    ) {
                        Ok(r) if r.status == 201 => {
                            let token = r.json()["user_token"].as_str().unwrap().to_owned();
                            acked.lock().unwrap().push((format!("u{t}-{i}"), token));
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    s.app.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "the burst wrote {} users", acked.len());
    s.app.restart();
    s.app.wait_ready();
    for (user, token) in &acked {
        let r = s.admin("PUT", &format!("/v1/users/{user}"), &[], b"");
        assert_eq!(r.status, 200, "{user} was acknowledged but is gone");
        assert_eq!(r.json()["user_token"], token.as_str(), "{user}");
    }
}

/// A tmpfs mounted over a directory for the length of a test.
struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(dir: &std::path::Path, size: &str) -> Self {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "mounting a tmpfs failed: the disk-fault tests need root (CI runs as root)"
        );
        Self(dir.to_path_buf())
    }

    fn read_only(&self) {
        let ok = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount read-only failed");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            if e.path().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

fn upload_fails_cleanly(s: &Stack, bytes: &[u8]) {
    let r = s.admin("POST", "/v1/users/alice/files?filename=x.bin", &[], bytes);
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "storage_error");
    // No record was made: no upload event, and the user's next upload is the first file.
    std::thread::sleep(Duration::from_millis(150));
    let events = s.admin("GET", "/v1/events", &[], b"").json();
    assert!(
        !events["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "upload"),
        "{events}"
    );
}

#[test]
fn disk_trouble_on_upload_is_a_clear_5xx_and_leaves_nothing() {
    let s = Stack::start(StoreKind::Embedded);
    s.user("alice");
    // Missing: never re-created at upload time.
    let mounted = s.storage_root.clone();
    std::fs::remove_dir_all(&mounted).unwrap();
    upload_fails_cleanly(&s, b"data");
    assert!(!mounted.exists());
    std::fs::create_dir(&mounted).unwrap();

    // Full: a 64 KiB filesystem and a 200 KiB upload.
    {
        let _disk = Mount::tmpfs(&mounted, "64k");
        upload_fails_cleanly(&s, &[7u8; 200 * 1024]);
        assert_eq!(files_under(&mounted), 0, "no partial file left");
        // Space is back: a small upload works.
        assert_eq!(
            s.upload("alice", "small.txt", "text/plain", b"fits")["size"],
            4
        );
    }
    // Read-only.
    {
        let disk = Mount::tmpfs(&mounted, "1m");
        disk.read_only();
        let r = s.admin("POST", "/v1/users/alice/files?filename=x.bin", &[], b"data");
        assert_eq!(r.status, 500, "{}", r.text());
        assert_eq!(r.json()["error"]["code"], "storage_error");
    }
}

/// The bound covers the whole decision: a session source's round trip that follows a slow
/// lookup gets only what is left of it, so the answer still comes within the bound.
#[test]
fn a_slow_lookup_then_a_stalled_session_source_answer_within_one_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (store, app) = (
        RedisServer::start(&dir.path().join("store")),
        RedisServer::start(&dir.path().join("app")),
    );
    let (store_proxy, app_proxy) = (Proxy::start(store.port), Proxy::start(app.port));
    let config = format!(
        "[[session.sources]]\ntype = \"redis-json\"\ncookie = \"sid\"\nredis_url = \"{}\"\nkey = \"sess:{{id}}\"\nuser_pointer = \"/u\"\n",
        app_proxy.url()
    );
    let env = vec![
        ("MEDIAGATE__STORE__URL".into(), store_proxy.url()),
        // Under nginx's own 1 s, which would otherwise cut the subrequest first.
        ("MEDIAGATE__STORE__TIMEOUT_MS".into(), "400".into()),
    ];
    let s = Stack::start_configured(StoreKind::Embedded, env, &config, |c| c);
    s.user("alice");
    let url = s.upload("alice", "a.txt", "text/plain", b"alice's")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    app.command(&["SET", "sess:abc", r#"{"u":"alice"}"#])
        .unwrap();
    let cookie = [("Cookie", "sid=abc")];
    assert_eq!(s.media("GET", url.as_bytes(), None, &cookie).status, 200);

    // The lookup answers after 350 ms of the 400; the session source never does.
    store_proxy.stall(true);
    app_proxy.stall(true);
    let started = Instant::now();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(350));
        store_proxy.stall(false);
        store_proxy
    });
    let r = s.media("GET", url.as_bytes(), None, &cookie);
    let took = started.elapsed();
    let _store_proxy = release.join().unwrap();
    assert_eq!(r.status, 503, "{}", s.logs());
    // Two bounds one after the other take at least 750 ms (350 + 400).
    assert!(
        took >= Duration::from_millis(390) && took < Duration::from_millis(740),
        "{took:?}"
    );
    app_proxy.stall(false);
    crate::support::eventually("the source after the stall", Duration::from_secs(3), || {
        (s.media("GET", url.as_bytes(), None, &cookie).status == 200).then_some(())
    });
}
