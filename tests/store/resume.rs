//! Redis changes that span keys, interrupted half-way and completed by the next writer.
//!
//! A crash is simulated by writing what a writer leaves behind when it dies after a given
//! step (its intent, and the steps done so far), straight into Redis. The layout of an intent
//! is the store's own business; these tests pin it so that a binary that reads it differently
//! fails here, not in production.

use std::sync::Arc;

use mediagate::store::Store;

use mediagate::model::{FileChange, Visibility};
use mediagate::tokens::{FileToken, UserToken};

use crate::suite::{file_for, uid};
use crate::support::redis::{RedisServer, record_key};

async fn setup(r: &RedisServer) -> (Arc<dyn Store>, mediagate::model::FileRecord, UserToken) {
    let store = crate::redis_store(r, "r").await;
    store.migrate().await.unwrap();
    let (alice, _) = store
        .ensure_user(&uid("alice"), &UserToken::generate().unwrap(), 1)
        .await
        .unwrap();
    let f = file_for("alice", "a.txt");
    store.insert_file(&f).await.unwrap();
    (store, f, alice.token)
}

#[tokio::test]
async fn a_file_rotation_cut_off_after_revoking_is_completed_never_undone() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let (store, f, user_token) = setup(&r).await;
    let mut to = f.clone();
    to.token = FileToken::generate().unwrap();
    let intent = serde_json::json!({"op": "rotate", "from": f, "to": to});
    let id = f.file_id.as_str();
    // The writer died after its first step: the old token's key is gone.
    r.command(&["SET", &format!("r:fpend:{id}"), &intent.to_string()])
        .unwrap();
    r.command_bytes(&[b"DEL", &record_key("r", f.token.as_str())])
        .unwrap();

    // The old URL is dead; the new one does not work yet; readers see the file as it will be.
    let l = store.lookup(&user_token, &f.token, None).await.unwrap();
    assert_eq!(l.file, None);
    let l = store.lookup(&user_token, &to.token, None).await.unwrap();
    assert_eq!(l.file, None);
    assert_eq!(store.file(&f.file_id).await.unwrap(), Some(to.clone()));

    // Any next change completes the rotation first, then applies itself.
    let changed = store
        .update_file(
            &f.file_id,
            &FileChange::Visibility(Visibility::Authenticated),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed.token, to.token);
    let l = store.lookup(&user_token, &to.token, None).await.unwrap();
    assert_eq!(l.file, Some(changed));
    let l = store.lookup(&user_token, &f.token, None).await.unwrap();
    assert_eq!(l.file, None);
    assert_eq!(
        r.command(&["EXISTS", &format!("r:fpend:{id}")]).unwrap(),
        ":0\r\n"
    );
}

#[tokio::test]
async fn a_user_rotation_cut_off_half_way_is_completed_by_the_retry() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let (store, f, old) = setup(&r).await;
    let half = UserToken::generate().unwrap();
    let intent = serde_json::json!({"op": "rotate", "from": old, "to": half});
    r.command(&["SET", "r:upend:alice", &intent.to_string()])
        .unwrap();
    r.command(&["DEL", &format!("r:utok:{}", old.as_str())])
        .unwrap();
    let l = store.lookup(&old, &f.token, None).await.unwrap();
    assert_eq!(
        l.user_of_token, None,
        "the old token died in the first step"
    );

    // The caller saw an error and retries: the retry finishes the first rotation, then its own.
    let fresh = UserToken::generate().unwrap();
    let user = store
        .rotate_user_token(&uid("alice"), &fresh)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.token, fresh);
    for dead in [&old, &half] {
        let l = store.lookup(dead, &f.token, None).await.unwrap();
        assert_eq!(l.user_of_token, None);
    }
    let l = store.lookup(&fresh, &f.token, None).await.unwrap();
    assert_eq!(l.user_of_token, Some(uid("alice")));
}

#[tokio::test]
async fn a_deletion_cut_off_half_way_still_hands_back_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let (store, f, user_token) = setup(&r).await;
    let intent = serde_json::json!({"op": "delete", "record": f});
    let id = f.file_id.as_str();
    r.command(&["SET", &format!("r:fpend:{id}"), &intent.to_string()])
        .unwrap();
    r.command_bytes(&[b"DEL", &record_key("r", f.token.as_str())])
        .unwrap();
    assert_eq!(store.file(&f.file_id).await.unwrap(), None);
    assert_eq!(
        store
            .lookup(&user_token, &f.token, None)
            .await
            .unwrap()
            .file,
        None
    );
    // The retried DELETE completes it and returns the record, so its bytes are removed.
    assert_eq!(
        store.delete_file(&f.file_id).await.unwrap(),
        Some(f.clone())
    );
    assert_eq!(store.delete_file(&f.file_id).await.unwrap(), None);
    assert_eq!(
        r.command_bytes(&[
            b"HEXISTS",
            format!("r:ids:{}", &id[..4]).as_bytes(),
            &f.file_id.to_bytes()
        ])
        .unwrap(),
        b":0\r\n"
    );
}

#[tokio::test]
async fn concurrent_rotations_leave_exactly_one_working_token() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let (store, f, first) = setup(&r).await;
    let tokens: Vec<UserToken> = (0..12).map(|_| UserToken::generate().unwrap()).collect();
    let alice = uid("alice");
    let results =
        futures_util::future::join_all(tokens.iter().map(|t| store.rotate_user_token(&alice, t)))
            .await;
    assert!(
        results.iter().all(|r| matches!(r, Ok(Some(_)))),
        "{results:?}"
    );
    let current = store.user(&uid("alice")).await.unwrap().unwrap().token;
    let mut working = 0;
    for t in tokens.iter().chain([&first]) {
        let l = store.lookup(t, &f.token, None).await.unwrap();
        if l.user_of_token.is_some() {
            working += 1;
            assert_eq!(*t, current);
        }
    }
    assert_eq!(working, 1);
}
