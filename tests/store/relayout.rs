//! Migration 2 on a keyspace that a version-1 mediagate wrote: written here key by key as
//! that version wrote it (pinned, so a change to how layout 1 is read fails here), migrated,
//! then used through the store.

use std::sync::Arc;

use mediagate::store::{FileChange, Store, migrate};
use mediagate::tokens::{FileToken, UserToken};

use crate::suite::{file_for, uid};

/// Runs one command on whichever server holds `args[1]`'s key.
type Put<'a> = &'a dyn Fn(&[&str]) -> String;

struct Layout1 {
    alice: UserToken,
    bob: UserToken,
    files: Vec<mediagate::store::FileRecord>,
    broken: FileToken,
}

/// Two users, three files of alice's, the first shared with bob. The third is already in
/// layout 2, as a migration cut off half-way leaves it.
fn write_layout_1(p: &str, put: Put) -> Layout1 {
    let alice = UserToken::generate().unwrap();
    let bob = UserToken::generate().unwrap();
    for (user, token) in [("alice", &alice), ("bob", &bob)] {
        let record = serde_json::json!({"u": user, "t": token.as_str(), "c": 1_700_000_000});
        put(&["SET", &format!("{p}:user:{user}"), &record.to_string()]);
        put(&["SET", &format!("{p}:utok:{}", token.as_str()), user]);
    }
    let mut files = vec![
        file_for("alice", "shared.pdf"),
        file_for("alice", "b.txt"),
        file_for("alice", "c.txt"),
    ];
    files[0].grants.push(uid("bob"));
    for (i, f) in files.iter().enumerate() {
        let (id, token) = (f.file_id.as_str(), f.token.as_str());
        if i == 2 {
            let compact = format!(r#"["{id}","alice","c.txt",42,"text/plain",0,0,1700000000]"#);
            put(&["SET", &format!("{p}:ftok:{token}"), &compact]);
            put(&["HSET", &format!("{p}:fids:{}", &id[..4]), id, token]);
            put(&["HSET", &format!("{p}:uf:alice"), id, ""]);
            continue;
        }
        // Layout 1's record was the record's serde form, a JSON object.
        let v1 = serde_json::to_string(f).unwrap();
        put(&["SET", &format!("{p}:ftok:{token}"), &v1]);
        put(&["SET", &format!("{p}:file:{id}"), token]);
        put(&["SADD", &format!("{p}:ufiles:alice"), id]);
    }
    put(&[
        "SADD",
        &format!("{p}:ugrants:bob"),
        files[0].file_id.as_str(),
    ]);
    // A record no version can read: left as it is, not a reason to stop the upgrade.
    let broken = FileToken::generate().unwrap();
    put(&["SET", &format!("{p}:ftok:{}", broken.as_str()), "{\"i\":"]);
    put(&["HSET", &format!("{p}:migrations"), "1", "1700000000"]);
    put(&["SET", &format!("{p}:schema"), "1"]);
    Layout1 {
        alice,
        bob,
        files,
        broken,
    }
}

/// Migrates a layout 1 keyspace, checks what is left in Redis (`keys` lists every key on
/// every master), then uses the store.
pub async fn layout_1_becomes_layout_2(
    store: Arc<dyn Store>,
    p: &str,
    put: Put<'_>,
    keys: &dyn Fn(&str) -> Vec<String>,
) {
    let w = write_layout_1(p, put);
    assert_eq!(store.schema_version().await.unwrap(), 1);
    assert_eq!(store.migrate().await.unwrap(), vec![2]);
    assert_eq!(store.schema_version().await.unwrap(), migrate::CURRENT);
    assert_eq!(store.migrate().await.unwrap(), Vec::<u32>::new());

    for gone in ["file", "ufiles"] {
        let left = keys(&format!("{p}:{gone}:*"));
        assert!(left.is_empty(), "layout 1 keys left: {left:?}");
    }
    for f in &w.files {
        let raw = put(&["GET", &format!("{p}:ftok:{}", f.token.as_str())]);
        assert!(raw.contains("\r\n[\""), "not compact: {raw}");
        assert!(!raw.contains(f.token.as_str()), "{raw}");
        let l = store.lookup(&w.alice, &f.token, None).await.unwrap();
        assert_eq!(l.file.as_ref(), Some(f));
        assert_eq!(store.file(&f.file_id).await.unwrap().as_ref(), Some(f));
    }
    assert!(store.lookup(&w.alice, &w.broken, None).await.is_err());
    let shared = store.lookup(&w.bob, &w.files[0].token, None).await.unwrap();
    assert_eq!(shared.file.unwrap().grants, vec![uid("bob")]);

    // Writes work on the new layout: a rotation, then deleting the owner, which must find
    // every file through the converted index and revoke bob's grant.
    let rotated = store
        .update_file(
            &w.files[1].file_id,
            &FileChange::Rotate(FileToken::generate().unwrap()),
        )
        .await
        .unwrap()
        .unwrap();
    let old = store.lookup(&w.alice, &w.files[1].token, None).await;
    assert_eq!(old.unwrap().file, None);
    assert_eq!(
        store.file(&w.files[1].file_id).await.unwrap(),
        Some(rotated.clone())
    );
    let deleted = store.delete_user(&uid("alice")).await.unwrap().unwrap();
    let mut paths: Vec<_> = deleted
        .files
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    paths.sort();
    let mut want: Vec<_> = w
        .files
        .iter()
        .map(|f| f.storage_path.as_str().to_owned())
        .collect();
    want.sort();
    assert_eq!(paths, want);
    for f in &w.files {
        assert_eq!(store.file(&f.file_id).await.unwrap(), None);
    }
    let broken = format!("{p}:ftok:{}", w.broken.as_str());
    assert_eq!(keys(&format!("{p}:ftok:*")), vec![broken]);
    for gone in ["fids", "uf"] {
        let left = keys(&format!("{p}:{gone}:*"));
        assert!(left.is_empty(), "{gone} keys left after deleting: {left:?}");
    }
}
