//! Redis beyond one node: the gate on a Redis Cluster (three masters, one replica each) and on
//! a Sentinel-watched master, each started by the test, before and after its master is killed
//! and a replica has taken over. While the failover runs, a denied request is never allowed:
//! it is denied, or 503 while the store cannot answer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::gate::{ALICE_BYTES, BOB_BYTES, Fixture, fixture, parts};
use crate::support::app::{Stack, StoreKind};

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
    let victim = cluster.master_for(&format!("mediagate:ftok:{file_token}"));
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
