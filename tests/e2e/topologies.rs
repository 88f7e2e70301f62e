//! Redis beyond one node: the gate on a Redis Cluster (three masters, one replica each) and on
//! a Sentinel-watched master, each started by the test, before and after its master is killed
//! and a replica has taken over. While the failover runs, a denied request is never allowed:
//! it is denied, or 503 while the store cannot answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::gate::{ALICE_BYTES, BOB_BYTES, Fixture, fixture, parts};
use crate::support::app::{Stack, StoreKind};
use crate::support::redis::record_key;

/// The decisions the gate promises, on the fixture's two users.
fn decisions_hold(s: &Stack, f: &Fixture) {
    let r = s.get(&f.alice_url, Some(&f.alice));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE_BYTES);
    assert_eq!(s.get(&f.bob_url, Some(&f.bob)).body, BOB_BYTES);
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    assert_eq!(s.get(&f.alice_url, None).status, 401);
    // Alice's user token with Bob's file token.
    let (alice_user, _, _) = parts(&f.alice_url);
    let (_, bob_file, bob_name) = parts(&f.bob_url);
    let swapped = format!("/media/{alice_user}/{bob_file}/{bob_name}");
    assert_eq!(s.get(&swapped, Some(&f.alice)).status, 403);
}

/// Writes that span keys in different slots: rotations, a grant and its revocation, logout.
/// Returns the fixture with the URLs and sessions valid afterwards.
fn writes_hold(s: &Stack, mut f: Fixture) -> Fixture {
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    let r = s.admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), s.logs());
    let rotated = r.json()["url"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 403);
    assert_eq!(s.get(&rotated, Some(&f.alice)).body, ALICE_BYTES);
    f.alice_url = rotated;

    let r = s.admin("POST", "/v1/users/alice/rotate-token", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 403);
    let r = s.admin("GET", &format!("/v1/files/{id}"), &[], b"");
    f.alice_url = r.json()["url"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);

    let grant = format!("/v1/files/{id}/grants/bob");
    assert_eq!(s.admin("PUT", &grant, &[], b"").status, 200);
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 200);
    assert_eq!(s.admin("DELETE", &grant, &[], b"").status, 204);
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);

    let second = s.session("alice", 600, &[]);
    let r = s.get(&f.alice_url, Some(&second));
    assert_eq!(r.status, 200, "{}", s.logs());
    let r = s.admin("DELETE", "/v1/users/alice/sessions", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get(&f.alice_url, Some(&second)).status, 401);
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 401);
    f.alice = s.session("alice", 600, &[]);
    decisions_hold(s, &f);
    f
}

/// Runs `failover` while two threads send requests that must never be allowed; returns how
/// many of them got 503.
fn denied_stays_denied(s: &Stack, f: &Fixture, failover: impl FnOnce()) -> usize {
    let done = AtomicBool::new(false);
    let unavailable = std::thread::scope(|scope| {
        let probes = [(Some(f.bob.as_str()), 403), (None, 401)].map(|(session, denied)| {
            let done = &done;
            scope.spawn(move || {
                let mut unavailable = 0;
                while !done.load(Ordering::Relaxed) {
                    let status = s.get(&f.alice_url, session).status;
                    assert!(
                        status == denied || status == 503,
                        "a denied request got {status} during the failover"
                    );
                    unavailable += usize::from(status == 503);
                    std::thread::sleep(Duration::from_millis(5));
                }
                unavailable
            })
        });
        // Stops the probes even if the failover panics (a scope waits for its threads).
        struct Stop<'a>(&'a AtomicBool);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let stop = Stop(&done);
        failover();
        drop(stop);
        probes.map(|p| p.join().expect("probe")).iter().sum()
    });
    // Decisions come back once the client has learned the new topology.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while s.get(&f.alice_url, Some(&f.alice)).status != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "no allowed read 15 s after the failover\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    unavailable
}

#[test]
fn cluster_runs_the_gate_and_survives_a_master_failover() {
    let mut s = Stack::start(StoreKind::Cluster);
    let f = fixture(&s);
    decisions_hold(&s, &f);
    let f = writes_hold(&s, f);

    // Kill the master that holds the key the owner's reads need.
    let mut cluster = s.cluster.take().expect("cluster");
    let (_, file_token, _) = parts(&f.alice_url);
    let victim = cluster.master_for(record_key("mediagate", &file_token));
    let unavailable = denied_stays_denied(&s, &f, || {
        cluster.fail_master(victim);
    });
    eprintln!("503 answers while the master was down: {unavailable}");
    decisions_hold(&s, &f);
    let f = writes_hold(&s, f);
    // New users and uploads land on the promoted node's slots too.
    s.user("carol");
    let carol = s.upload("carol", "c.txt", "text/plain", b"carol's");
    let carol_session = s.session("carol", 600, &[]);
    let url = carol["url"].as_str().unwrap();
    assert_eq!(s.get(url, Some(&carol_session)).body, b"carol's");
    assert_eq!(s.get(url, Some(&f.alice)).status, 403);
    s.cluster = Some(cluster);
}

#[test]
fn sentinel_runs_the_gate_and_follows_a_failover() {
    let mut s = Stack::start(StoreKind::Sentinel);
    let f = fixture(&s);
    decisions_hold(&s, &f);
    let f = writes_hold(&s, f);

    let mut set = s.sentinel.take().expect("sentinel set");
    let unavailable = denied_stays_denied(&s, &f, || set.fail_master());
    eprintln!("503 answers while the master was down: {unavailable}");
    decisions_hold(&s, &f);
    // Writes go to the new master (the old one is gone; a demoted one would say READONLY).
    let f = writes_hold(&s, f);
    decisions_hold(&s, &f);
    s.sentinel = Some(set);
}

/// A CA and a server certificate for 127.0.0.1, made with the openssl CLI.
fn tls_files(dir: &std::path::Path) -> (String, String, String) {
    let path = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let openssl = crate::support::require("openssl");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&openssl)
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=mediagate test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    (path("ca.pem"), path("server.pem"), path("server.key"))
}

#[test]
fn rediss_runs_the_gate_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = tls_files(dir.path());
    let tls_port = crate::support::free_port().to_string();
    // The plain port stays for the harness's own checks; mediagate gets only the TLS one.
    let redis = crate::support::redis::RedisServer::start_with(
        &dir.path().join("redis"),
        &[
            "--tls-port",
            &tls_port,
            "--tls-cert-file",
            &cert,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
    );
    let s = Stack::start_with(
        StoreKind::Redis,
        vec![
            (
                "MEDIAGATE__STORE__URL".into(),
                format!("rediss://127.0.0.1:{tls_port}/"),
            ),
            // rustls-native-certs reads the trusted roots from here.
            ("SSL_CERT_FILE".into(), ca),
        ],
        |c| c,
    );
    let f = fixture(&s);
    decisions_hold(&s, &f);
    writes_hold(&s, f);
    // Everything went over TLS: the plain port saw no client but the harness.
    let clients = redis.command(&["CLIENT", "LIST"]).unwrap();
    assert!(
        clients.contains(&format!("laddr=127.0.0.1:{tls_port}")),
        "{clients}"
    );
    let plain = format!(":{}", redis.port);
    assert!(
        clients
            .lines()
            .filter(|l| l.contains("cmd=") && !l.contains("cmd=client"))
            .all(|l| !l.contains(&format!("laddr=127.0.0.1{plain}"))),
        "{clients}"
    );
}
