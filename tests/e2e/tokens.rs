//! Rotation and revocation: a leaked URL dies in one call, and nothing else changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::gate::{ALICE_BYTES, BOB_BYTES, fixture};
use crate::support::app::{Stack, StoreKind};
use crate::support::redis::count_keys;

fn file_id(f: &crate::gate::Fixture) -> String {
    f.alice_upload["file_id"].as_str().unwrap().to_owned()
}

on_every_store!(rotating_a_file_token_kills_the_old_url_at_once, |s| {
    let f = fixture(&s);
    let id = file_id(&f);
    let stored = s.storage_root.join(&id[..2]).join(&id);
    let before = std::fs::metadata(&stored).unwrap();
    let r = s.admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let new_url = r.json()["url"].as_str().unwrap().to_owned();
    assert_ne!(new_url, f.alice_url);
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 403);
    assert_eq!(s.get(&new_url, Some(&f.alice)).body, ALICE_BYTES);
    assert_eq!(s.get(&new_url, Some(&f.bob)).status, 403);
    // No bytes moved or copied.
    let after = std::fs::metadata(&stored).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(before.ino(), after.ino());
    assert_eq!(
        s.admin("GET", &format!("/v1/files/{id}"), &[], b"").json()["url"],
        new_url.as_str()
    );
    let r = s.admin(
        "POST",
        "/v1/files/0123456789abcdef0123456789abcdef/rotate-token",
        &[],
        b"",
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "file_not_found");
});

on_every_store!(rotating_a_user_token_kills_every_url_of_the_user, |s| {
    let f = fixture(&s);
    let second = s.upload("alice", "second.txt", "text/plain", b"second file");
    let old_urls = [
        f.alice_url.clone(),
        second["url"].as_str().unwrap().to_owned(),
    ];
    let r = s.admin("POST", "/v1/users/alice/rotate-token", &[], b"");
    assert_eq!(r.status, 200);
    let new_token = r.json()["user_token"].as_str().unwrap().to_owned();
    for url in &old_urls {
        assert_eq!(s.get(url, Some(&f.alice)).status, 403, "{url}");
    }
    let id = file_id(&f);
    let new_url = s.admin("GET", &format!("/v1/files/{id}"), &[], b"").json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(new_url.contains(&new_token));
    assert_eq!(s.get(&new_url, Some(&f.alice)).body, ALICE_BYTES);
    assert_eq!(
        s.get(&f.bob_url, Some(&f.bob)).body,
        BOB_BYTES,
        "other users are untouched"
    );
    assert_eq!(
        s.admin("POST", "/v1/users/nobody/rotate-token", &[], b"")
            .status,
        404
    );
});

/// Stops the reader threads however the test ends, so that a failing assertion cannot leave
/// them running (and holding the stack, whose processes would then outlive the test).
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The status of a read, asking again while the answer is a 503 (a decision deferred under
/// load). Never accepts a 503 as the answer.
fn decided(s: &Stack, url: &str, session: &str) -> u16 {
    for _ in 0..20 {
        let status = s.get(url, Some(session)).status;
        if status != 503 {
            return status;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{url}: no decision in 20 tries\n{}", s.logs());
}

/// Rotations race reads and each other: once a rotation call has returned, its old URL is
/// refused; no URL ever yields another file's bytes; at the end exactly one URL works.
fn rotation_races_reads(kind: StoreKind) {
    let s = Arc::new(Stack::start(kind));
    let f = fixture(&s);
    let id = file_id(&f);
    let done = Arc::new(AtomicBool::new(false));
    let _stop = StopOnDrop(done.clone());
    let latest = Arc::new(std::sync::Mutex::new(f.alice_url.clone()));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (s, done, latest, alice, bob_url, bob) = (
            s.clone(),
            done.clone(),
            latest.clone(),
            f.alice.clone(),
            f.bob_url.clone(),
            f.bob.clone(),
        );
        readers.push(std::thread::spawn(move || {
            let mut allowed = 0;
            while !done.load(Ordering::Relaxed) {
                let url = latest.lock().unwrap().clone();
                let r = s.get(&url, Some(&alice));
                // 503 is a decision deferred under load (fail closed), never a leak.
                assert!(matches!(r.status, 200 | 403 | 503), "{}", r.status);
                if r.status == 200 {
                    assert_eq!(r.body, ALICE_BYTES);
                    allowed += 1;
                }
                let r = s.get(&bob_url, Some(&bob));
                assert!(matches!(r.status, 200 | 503), "{}", r.status);
                if r.status == 200 {
                    assert_eq!(r.body, BOB_BYTES);
                }
            }
            allowed
        }));
    }
    let mut rotators = Vec::new();
    for _ in 0..2 {
        let (s, id, latest, alice) = (s.clone(), id.clone(), latest.clone(), f.alice.clone());
        rotators.push(std::thread::spawn(move || {
            let mut seen: Vec<String> = Vec::new();
            for _ in 0..25 {
                let r = s.admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"");
                assert_eq!(r.status, 200, "{}", r.text());
                let url = r.json()["url"].as_str().unwrap().to_owned();
                *latest.lock().unwrap() = url.clone();
                // Every URL this thread saw before the call is dead now.
                for old in &seen {
                    assert_eq!(decided(&s, old, &alice), 403, "{old} still works");
                }
                seen.push(url);
            }
            seen
        }));
    }
    let mut all_urls: Vec<String> = rotators
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    done.store(true, Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(reads > 0, "readers never saw a current URL");
    all_urls.push(f.alice_url.clone());
    let current = s.admin("GET", &format!("/v1/files/{id}"), &[], b"").json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let working: Vec<&String> = all_urls
        .iter()
        .filter(|u| decided(&s, u, &f.alice) == 200)
        .collect();
    assert_eq!(working, vec![&current], "exactly the current URL works");
    if let Some(redis) = &s.redis {
        assert_eq!(count_keys(redis, "mediagate:ft:*"), 2, "one token per file");
    }
}

#[test]
fn rotation_races_reads_on_embedded() {
    rotation_races_reads(StoreKind::Embedded);
}

#[test]
fn rotation_races_reads_on_redis() {
    rotation_races_reads(StoreKind::Redis);
}

#[test]
fn rotation_races_reads_on_cluster() {
    rotation_races_reads(StoreKind::Cluster);
}

on_every_store!(deleting_a_file_kills_its_url_and_removes_its_bytes, |s| {
    let f = fixture(&s);
    let id = file_id(&f);
    let stored = s.storage_root.join(&id[..2]).join(&id);
    assert!(stored.exists());
    assert_eq!(
        s.admin("DELETE", &format!("/v1/files/{id}"), &[], b"")
            .status,
        204
    );
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 403);
    assert!(!stored.exists());
    assert_eq!(
        s.admin("GET", &format!("/v1/files/{id}"), &[], b"").status,
        404
    );
    assert_eq!(
        s.admin("DELETE", &format!("/v1/files/{id}"), &[], b"")
            .status,
        404
    );
    assert_eq!(s.get(&f.bob_url, Some(&f.bob)).body, BOB_BYTES);
});

on_every_store!(deleting_a_user_removes_files_grants_and_sessions, |s| {
    let f = fixture(&s);
    let bob_id = s.upload("bob", "shared.txt", "text/plain", b"bob shares this");
    let bob_file = bob_id["file_id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.admin(
            "PUT",
            &format!("/v1/files/{bob_file}/grants/alice"),
            &[],
            b""
        )
        .status,
        200
    );
    let shared_url = bob_id["url"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&shared_url, Some(&f.alice)).status, 200);
    let id = file_id(&f);

    assert_eq!(s.admin("DELETE", "/v1/users/alice", &[], b"").status, 204);
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 403);
    assert_eq!(
        s.get(&shared_url, Some(&f.alice)).status,
        401,
        "alice's session is gone"
    );
    assert!(!s.storage_root.join(&id[..2]).join(&id).exists());
    assert_eq!(
        s.admin("GET", &format!("/v1/files/{id}"), &[], b"").status,
        404
    );
    let bob_record = s
        .admin("GET", &format!("/v1/files/{bob_file}"), &[], b"")
        .json();
    assert_eq!(bob_record["grants"], serde_json::json!([]));
    assert_eq!(s.admin("DELETE", "/v1/users/alice", &[], b"").status, 404);
    // A new alice starts from nothing: no old file, no inherited grant.
    s.user("alice");
    let again = s.session("alice", 600, &[]);
    assert_eq!(s.get(&shared_url, Some(&again)).status, 403);
    assert_eq!(s.get(&f.bob_url, Some(&f.bob)).body, BOB_BYTES);
});

on_every_store!(logout_everywhere_ends_every_session, |s| {
    let f = fixture(&s);
    let second = s.session("alice", 600, &[]);
    let r = s.admin("DELETE", "/v1/users/alice/sessions", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["sessions"], 2);
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 401);
    assert_eq!(s.get(&f.alice_url, Some(&second)).status, 401);
    assert_eq!(s.get(&f.bob_url, Some(&f.bob)).status, 200);
    assert_eq!(
        s.admin("DELETE", "/v1/users/nobody/sessions", &[], b"")
            .status,
        404
    );
});
