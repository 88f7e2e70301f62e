//! Migrations 2 and 3 on keyspaces that version 1 and version 2 of mediagate wrote: written
//! here key by key as those versions wrote them (pinned, so a change to how an older layout is
//! read fails here), migrated, then used through the store.

use std::sync::Arc;

use mediagate::store::{Store, migrate};

use mediagate::model::{FileChange, FileRecord};
use mediagate::tokens::{FileToken, UserToken};

use crate::suite::{file_for, uid};
use crate::support::redis::{RedisServer, count_keys, record_key};

/// Commands on the keyspace under test, each run on the server that holds its key.
pub struct Keyspace<'a> {
    /// A command with text arguments; the raw reply.
    pub put: &'a dyn Fn(&[&str]) -> String,
    /// A command with binary arguments; the raw reply.
    pub raw: &'a dyn Fn(&[&[u8]]) -> Vec<u8>,
    /// How many keys match a pattern, over every master.
    pub count: &'a dyn Fn(&str) -> usize,
}

struct Written {
    alice: UserToken,
    bob: UserToken,
    /// alice's files, the first shared with bob.
    files: Vec<FileRecord>,
    /// A record no version can read.
    broken: FileToken,
}

/// Two users, three files of alice's, the first shared with bob, and an unreadable record.
/// In layout 1, the third file is already in layout 2, as a migration cut off half-way left it.
fn write(p: &str, ks: &Keyspace, layout: u32) -> Written {
    let put = ks.put;
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
        if layout == 2 || i == 2 {
            let grants = if f.grants.is_empty() {
                ""
            } else {
                r#",["bob"]"#
            };
            let name = &f.filename;
            let compact =
                format!(r#"["{id}","alice","{name}",42,"text/plain",0,0,1700000000{grants}]"#);
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
    // Left as it is, not a reason to stop the upgrade.
    let broken = FileToken::generate().unwrap();
    put(&["SET", &format!("{p}:ftok:{}", broken.as_str()), "{\"i\":"]);
    for v in 1..=layout {
        put(&[
            "HSET",
            &format!("{p}:migrations"),
            &v.to_string(),
            "1700000000",
        ]);
    }
    put(&["SET", &format!("{p}:schema"), &layout.to_string()]);
    Written {
        alice,
        bob,
        files,
        broken,
    }
}

/// A keyspace of layout 1 goes to the current layout through migrations 2 and 3.
pub async fn layout_1_becomes_current(store: Arc<dyn Store>, p: &str, ks: &Keyspace<'_>) {
    let w = write(p, ks, 1);
    assert_eq!(store.schema_version().await.unwrap(), 1);
    assert_eq!(store.migrate().await.unwrap(), vec![2, 3]);
    is_current(store, p, ks, w).await;
}

/// A keyspace of layout 2 goes to layout 3.
pub async fn layout_2_becomes_current(store: Arc<dyn Store>, p: &str, ks: &Keyspace<'_>) {
    let w = write(p, ks, 2);
    assert_eq!(store.schema_version().await.unwrap(), 2);
    assert_eq!(store.migrate().await.unwrap(), vec![3]);
    is_current(store, p, ks, w).await;
}

/// Checks what the migration left in Redis, then uses the store.
async fn is_current(store: Arc<dyn Store>, p: &str, ks: &Keyspace<'_>, w: Written) {
    assert_eq!(store.schema_version().await.unwrap(), migrate::CURRENT);
    assert_eq!(store.migrate().await.unwrap(), Vec::<u32>::new());

    for gone in ["file", "ufiles", "fids", "uf"] {
        let left = (ks.count)(&format!("{p}:{gone}:*"));
        assert_eq!(left, 0, "{gone} keys left");
    }
    // Only the unreadable record stays in the old form, where nothing reads it.
    assert_eq!((ks.count)(&format!("{p}:ftok:*")), 1);
    let broken = format!("{p}:ftok:{}", w.broken.as_str());
    assert_eq!((ks.put)(&["EXISTS", &broken]), ":1\r\n");
    assert_eq!((ks.count)(&format!("{p}:ft:*")), w.files.len());
    for f in &w.files {
        // A binary record: its first byte says layout 3, and neither token nor id is in hex.
        let raw = (ks.raw)(&[b"GET", &record_key(p, f.token.as_str())]);
        let body = raw.splitn(2, |b| *b == b'\n').nth(1).unwrap_or_default();
        assert_eq!(body.first().map(|b| b >> 4), Some(3), "{raw:?}");
        for hex in [f.token.as_str(), f.file_id.as_str()] {
            assert!(!raw.windows(32).any(|w| w == hex.as_bytes()), "{raw:?}");
        }
        let l = store.lookup(&w.alice, &f.token, None).await.unwrap();
        assert_eq!(l.file.as_ref(), Some(f));
        assert_eq!(store.file(&f.file_id).await.unwrap().as_ref(), Some(f));
    }
    let l = store.lookup(&w.alice, &w.broken, None).await.unwrap();
    assert_eq!(l.file, None, "an unreadable record names no file");
    let shared = store.lookup(&w.bob, &w.files[0].token, None).await.unwrap();
    assert_eq!(shared.file.unwrap().grants, vec![uid("bob")]);

    // An upload through an instance of version 2 that still served after the migration (a
    // rolling update's old pod) is written in layout 2, where this version does not look;
    // the next `migrate` converts it, the schema being current.
    let late = file_for("alice", "late.txt");
    let (id, token) = (late.file_id.as_str(), late.token.as_str());
    let compact = format!(r#"["{id}","alice","late.txt",42,"text/plain",0,0,1700000000]"#);
    (ks.put)(&["SET", &format!("{p}:ftok:{token}"), &compact]);
    (ks.put)(&["HSET", &format!("{p}:fids:{}", &id[..4]), id, token]);
    (ks.put)(&["HSET", &format!("{p}:uf:alice"), id, ""]);
    let l = store.lookup(&w.alice, &late.token, None).await.unwrap();
    assert_eq!(l.file, None);
    assert_eq!(store.migrate().await.unwrap(), Vec::<u32>::new());
    let l = store.lookup(&w.alice, &late.token, None).await.unwrap();
    assert_eq!(l.file.as_ref(), Some(&late));
    assert_eq!(store.file(&late.file_id).await.unwrap(), Some(late.clone()));
    let mut files = w.files.clone();
    files.push(late);
    let w = Written { files, ..w };

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
    for gone in ["ft", "ids", "files"] {
        let left = (ks.count)(&format!("{p}:{gone}:*"));
        assert_eq!(left, 0, "{gone} keys left after deleting");
    }
    assert_eq!((ks.count)(&format!("{p}:ftok:*")), 1);
}

/// A migration whose lock is taken from it (as when it stalled past the lock's expiry and
/// another process took over) stops at its next page instead of converting alongside, and
/// loses nothing: the next run converts the rest.
pub async fn a_migration_that_loses_its_lock_stops_and_loses_nothing(
    store: Arc<dyn Store>,
    r: &RedisServer,
    p: &str,
) {
    const FILES: usize = 20_000;
    let client = redis::Client::open(r.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let alice = UserToken::generate().unwrap();
    let mut pipe = redis::pipe();
    let record = serde_json::json!({"u": "alice", "t": alice.as_str(), "c": 1_700_000_000});
    pipe.set(format!("{p}:user:alice"), record.to_string())
        .set(format!("{p}:utok:{}", alice.as_str()), "alice")
        .hset(format!("{p}:migrations"), 2, 1_700_000_000)
        .set(format!("{p}:schema"), 2);
    let () = pipe.query_async(&mut conn).await.unwrap();
    let files: Vec<FileRecord> = (0..FILES)
        .map(|i| file_for("alice", &format!("{i}.txt")))
        .collect();
    for chunk in files.chunks(1000) {
        let mut pipe = redis::pipe();
        for f in chunk {
            let (id, token) = (f.file_id.as_str(), f.token.as_str());
            let compact = format!(
                r#"["{id}","alice","{}",42,"text/plain",0,0,1700000000]"#,
                f.filename
            );
            pipe.set(format!("{p}:ftok:{token}"), compact)
                .hset(format!("{p}:fids:{}", &id[..4]), id, token)
                .hset(format!("{p}:uf:alice"), id, "");
        }
        let () = pipe.query_async(&mut conn).await.unwrap();
    }

    let migrating = tokio::spawn({
        let store = store.clone();
        async move { store.migrate().await }
    });
    let lock = format!("{p}:migrate:lock");
    loop {
        let held: bool = redis::cmd("EXISTS")
            .arg(&lock)
            .query_async(&mut conn)
            .await
            .unwrap();
        if held {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let () = redis::cmd("SET")
        .arg(&lock)
        .arg("another-process")
        .query_async(&mut conn)
        .await
        .unwrap();
    let stopped = migrating.await.unwrap();
    assert!(
        matches!(stopped, Err(mediagate::store::StoreError::Busy)),
        "{stopped:?}"
    );
    assert_eq!(store.schema_version().await.unwrap(), 2);
    // It stopped at a page soon after the lock went, not at the end: the records, converted
    // last, are nearly all still in layout 2.
    let left = count_keys(r, &format!("{p}:ftok:*"));
    assert!(left > FILES / 2, "{left} records left of {FILES}");

    let () = redis::cmd("DEL")
        .arg(&lock)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(store.migrate().await.unwrap(), vec![3]);
    assert_eq!(count_keys(r, &format!("{p}:ftok:*")), 0);
    for f in files.iter().step_by(97) {
        assert_eq!(store.file(&f.file_id).await.unwrap().as_ref(), Some(f));
        let l = store.lookup(&alice, &f.token, None).await.unwrap();
        assert_eq!(l.file.as_ref(), Some(f));
    }
    let owned: usize = redis::cmd("HLEN")
        .arg(format!("{p}:files:alice"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(owned, FILES);
}
