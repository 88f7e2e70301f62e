//! The conformance suite every `Store` must pass.

use std::sync::Arc;

use mediagate::disposition::DispositionKind;
use mediagate::ids::{FileId, UserId};
use mediagate::model::{
    Event, EventDecision, EventKind, FileChange, FileRecord, ForwardedCaller, SessionRecord,
    Visibility,
};
use mediagate::paths::StoragePath;
use mediagate::store::{Question, Store, StoreError, Written, migrate};
use mediagate::tokens::{FileToken, ForwardKey, SessionId, UserToken};

pub fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

pub fn file_for(owner: &str, name: &str) -> FileRecord {
    let id = FileId::generate();
    FileRecord {
        storage_path: StoragePath::for_file(&id),
        file_id: id,
        owner: uid(owner),
        token: FileToken::generate().unwrap(),
        filename: name.into(),
        size: 42,
        content_type: "text/plain".into(),
        visibility: Visibility::Private,
        disposition: DispositionKind::Inline,
        created_at: 1_700_000_000,
        grants: Vec::new(),
    }
}

pub async fn run(store: Arc<dyn Store>) {
    // A fresh store is at version 0 and migrates to the current one, once.
    assert_eq!(store.schema_version().await.unwrap(), 0);
    let every: Vec<u32> = migrate::ALL.iter().map(|m| m.version).collect();
    assert_eq!(store.migrate().await.unwrap(), every);
    assert!(store.migrate().await.unwrap().is_empty());
    assert_eq!(store.schema_version().await.unwrap(), migrate::CURRENT);
    store.ping().await.unwrap();

    // Users: created once, then returned unchanged.
    let t1 = UserToken::generate().unwrap();
    let (alice, created) = store.ensure_user(&uid("alice"), &t1, 10).await.unwrap();
    assert!(created);
    assert_eq!(alice.token, t1);
    let (again, created) = store
        .ensure_user(&uid("alice"), &UserToken::generate().unwrap(), 20)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again, alice);
    assert_eq!(
        store.user(&uid("alice")).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(store.user(&uid("nobody")).await.unwrap(), None);

    // Files: only for existing owners; never two with one token or id.
    let orphan = file_for("nobody", "x.txt");
    assert_eq!(
        store.insert_file(&orphan).await.unwrap(),
        Written::NoSuchUser
    );
    assert_eq!(store.file(&orphan.file_id).await.unwrap(), None);
    let f = file_for("alice", "report Q1.txt");
    assert_eq!(store.insert_file(&f).await.unwrap(), Written::Done);
    assert_eq!(store.file(&f.file_id).await.unwrap(), Some(f.clone()));
    assert!(matches!(
        store.insert_file(&f).await,
        Err(StoreError::Conflict)
    ));
    let mut same_token = file_for("alice", "other.txt");
    same_token.token = f.token.clone();
    assert!(matches!(
        store.insert_file(&same_token).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.file(&same_token.file_id).await.unwrap(), None);

    // The decision's lookup.
    let l = store.lookup(&alice.token, &f.token, None).await.unwrap();
    assert_eq!(l.user_of_token, Some(uid("alice")));
    assert_eq!(l.file, Some(f.clone()));
    assert_eq!(l.session, None);
    let unknown = store
        .lookup(
            &UserToken::generate().unwrap(),
            &FileToken::generate().unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(unknown, Default::default());

    // Sessions: only for existing users; stored under the key, gone after delete.
    let sid = SessionId::generate().unwrap();
    let rec = SessionRecord {
        user_id: uid("alice"),
        roles: vec!["staff".into()],
        expires_at: mediagate::clock::now() + 600,
    };
    let ghost = SessionRecord {
        user_id: uid("nobody"),
        ..rec.clone()
    };
    assert_eq!(
        store
            .insert_session(&sid.key(), &ghost, mediagate::clock::now())
            .await
            .unwrap(),
        Written::NoSuchUser
    );
    assert_eq!(
        store
            .lookup(&alice.token, &f.token, Some(&sid.key()))
            .await
            .unwrap()
            .session,
        None
    );
    assert_eq!(
        store
            .insert_session(&sid.key(), &rec, mediagate::clock::now())
            .await
            .unwrap(),
        Written::Done
    );
    let l = store
        .lookup(&alice.token, &f.token, Some(&sid.key()))
        .await
        .unwrap();
    assert_eq!(l.session, Some(rec.clone()));
    assert!(store.delete_session(&sid.key()).await.unwrap());
    assert!(!store.delete_session(&sid.key()).await.unwrap());
    assert_eq!(
        store
            .lookup(&alice.token, &f.token, Some(&sid.key()))
            .await
            .unwrap()
            .session,
        None
    );

    // Expired sessions disappear: by TTL in Redis, by the purge in the embedded store.
    let short = SessionId::generate().unwrap();
    let now = mediagate::clock::now();
    let rec = SessionRecord {
        expires_at: now + 1,
        ..rec
    };
    store.insert_session(&short.key(), &rec, now).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        store.purge_expired(mediagate::clock::now()).await.unwrap();
        let gone = store
            .lookup(&alice.token, &f.token, Some(&short.key()))
            .await
            .unwrap()
            .session
            .is_none();
        if gone {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired session still stored"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    forward_answers(&store, &alice.token, &f.token).await;
}

/// The forward source's kept answers: read in the decision's one call, ended with the user's
/// sessions, and not kept when they were fetched before that end.
async fn forward_answers(store: &Arc<dyn Store>, ut: &UserToken, ft: &FileToken) {
    let ask = |key: &ForwardKey| {
        let key = key.clone();
        let (ut, ft) = (ut.clone(), ft.clone());
        let store = Arc::clone(store);
        async move {
            let q = Question {
                user_token: &ut,
                file_token: &ft,
                session: None,
                forwarded: Some(&key),
            };
            store.ask(&q).await.unwrap()
        }
    };
    let key = ForwardKey::of(&[b"http://app/whoami", b"sessionid=abc", b""]);
    let caller = ForwardedCaller {
        user_id: uid("alice"),
        roles: vec!["staff".into()],
        expires_at: mediagate::clock::now() + 60,
    };
    let l = ask(&key).await;
    assert_eq!(
        (l.forwarded, l.user_of_token.is_some(), l.file.is_some()),
        (None, true, true)
    );
    let asked_at = mediagate::clock::now_ms();
    store
        .cache_forwarded(&key, &caller, 60, asked_at)
        .await
        .unwrap();
    assert_eq!(ask(&key).await.forwarded, Some(caller.clone()));
    let other = ForwardKey::of(&[b"http://app/whoami", b"sessionid=abd", b""]);
    assert_eq!(ask(&other).await.forwarded, None);

    // Logging alice out everywhere ends the kept answer at once.
    store.delete_user_sessions(&uid("alice")).await.unwrap();
    assert_eq!(ask(&key).await.forwarded, None);
    // An answer fetched before that logout, arriving after it, is not kept.
    store
        .cache_forwarded(&key, &caller, 60, asked_at)
        .await
        .unwrap();
    assert_eq!(ask(&key).await.forwarded, None);
    // One fetched after it is.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let later = mediagate::clock::now_ms();
    store
        .cache_forwarded(&key, &caller, 60, later)
        .await
        .unwrap();
    assert_eq!(ask(&key).await.forwarded, Some(caller));
    store.delete_user_sessions(&uid("alice")).await.unwrap();
}

/// The lifecycle operations: rotation, updates, grants, deletions, logout, events.
pub async fn run_lifecycle(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    let now = mediagate::clock::now();
    let (alice, _) = store
        .ensure_user(&uid("alice"), &UserToken::generate().unwrap(), now)
        .await
        .unwrap();
    store
        .ensure_user(&uid("bob"), &UserToken::generate().unwrap(), now)
        .await
        .unwrap();
    let f = file_for("alice", "a.txt");
    store.insert_file(&f).await.unwrap();

    // User token rotation: the old token maps to nobody, the new one to alice.
    let fresh = UserToken::generate().unwrap();
    let rotated = store
        .rotate_user_token(&uid("alice"), &fresh)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rotated.token, fresh);
    assert_eq!(
        store
            .lookup(&alice.token, &f.token, None)
            .await
            .unwrap()
            .user_of_token,
        None
    );
    assert_eq!(
        store
            .lookup(&fresh, &f.token, None)
            .await
            .unwrap()
            .user_of_token,
        Some(uid("alice"))
    );
    assert_eq!(
        store
            .rotate_user_token(&uid("nobody"), &fresh)
            .await
            .unwrap(),
        None
    );

    // File token rotation: the old token names nothing, the record moved whole.
    let new_token = FileToken::generate().unwrap();
    let g = store
        .update_file(&f.file_id, &FileChange::Rotate(new_token.clone()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.token, new_token);
    assert_eq!(g.storage_path, f.storage_path);
    assert_eq!(
        store.lookup(&fresh, &f.token, None).await.unwrap().file,
        None
    );
    assert_eq!(
        store.lookup(&fresh, &new_token, None).await.unwrap().file,
        Some(g.clone())
    );
    assert_eq!(store.file(&f.file_id).await.unwrap(), Some(g.clone()));

    // Visibility, disposition, grants.
    let g = store
        .update_file(&f.file_id, &FileChange::Visibility(Visibility::Public))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.visibility, Visibility::Public);
    let g = store
        .update_file(
            &f.file_id,
            &FileChange::Disposition(DispositionKind::Attachment),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.disposition, DispositionKind::Attachment);
    let g = store
        .update_file(&f.file_id, &FileChange::Grant(uid("bob")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.grants, vec![uid("bob")]);
    let g = store
        .update_file(&f.file_id, &FileChange::Grant(uid("bob")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.grants, vec![uid("bob")], "granting twice is one grant");
    let g = store
        .update_file(&f.file_id, &FileChange::Grant(uid("alice")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.grants, vec![uid("bob")], "the owner needs no grant");
    let g = store
        .update_file(&f.file_id, &FileChange::Revoke(uid("bob")))
        .await
        .unwrap()
        .unwrap();
    assert!(g.grants.is_empty());
    let missing = FileId::generate();
    assert_eq!(
        store
            .update_file(&missing, &FileChange::Revoke(uid("bob")))
            .await
            .unwrap(),
        None
    );

    // Deleting bob removes the grants bob holds.
    store
        .update_file(&f.file_id, &FileChange::Grant(uid("bob")))
        .await
        .unwrap();
    let bob_file = file_for("bob", "b.txt");
    store.insert_file(&bob_file).await.unwrap();
    let bob_session = SessionId::generate().unwrap();
    let rec = SessionRecord {
        user_id: uid("bob"),
        roles: vec![],
        expires_at: now + 600,
    };
    store
        .insert_session(&bob_session.key(), &rec, now)
        .await
        .unwrap();
    let deleted = store.delete_user(&uid("bob")).await.unwrap().unwrap();
    assert_eq!(deleted.files, vec![bob_file.storage_path.clone()]);
    assert_eq!(deleted.sessions, 1);
    assert_eq!(store.user(&uid("bob")).await.unwrap(), None);
    assert_eq!(store.file(&bob_file.file_id).await.unwrap(), None);
    assert!(
        store
            .file(&f.file_id)
            .await
            .unwrap()
            .unwrap()
            .grants
            .is_empty()
    );
    assert_eq!(
        store
            .lookup(&fresh, &new_token, Some(&bob_session.key()))
            .await
            .unwrap()
            .session,
        None
    );
    assert_eq!(store.delete_user(&uid("bob")).await.unwrap(), None);

    // Logout everywhere.
    for _ in 0..3 {
        let s = SessionId::generate().unwrap();
        let rec = SessionRecord {
            user_id: uid("alice"),
            roles: vec![],
            expires_at: now + 600,
        };
        store.insert_session(&s.key(), &rec, now).await.unwrap();
    }
    assert_eq!(store.delete_user_sessions(&uid("alice")).await.unwrap(), 3);
    assert_eq!(store.delete_user_sessions(&uid("alice")).await.unwrap(), 0);

    // Events: appended in order, paged by cursor, downloads counted.
    let ev = |kind, download| Event {
        at_ms: 1,
        kind,
        user_id: Some(uid("alice")),
        file_id: Some(f.file_id.clone()),
        decision: Some(EventDecision::Allow),
        client: Some("127.0.0.1".into()),
        download,
    };
    let batch: Vec<Event> = (0..5).map(|i| ev(EventKind::Read, i % 2 == 0)).collect();
    store.append_events(&batch, 1000).await.unwrap();
    store
        .append_events(&[ev(EventKind::Grant, false)], 1000)
        .await
        .unwrap();
    let first = store.events(None, 4).await.unwrap();
    assert_eq!(first.len(), 4);
    // `download` only steers the counter; it is not stored.
    assert_eq!(
        first[0].event,
        Event {
            download: false,
            ..batch[0].clone()
        }
    );
    let rest = store.events(Some(&first[3].id), 100).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[1].event.kind, EventKind::Grant);
    assert!(
        store
            .events(Some(&rest[1].id), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.events(Some("not a cursor"), 10).await,
        Err(StoreError::Cursor)
    ));
    assert_eq!(store.downloads(&f.file_id).await.unwrap(), 3);

    // File deletion: nothing left, counters included.
    let gone = store.delete_file(&f.file_id).await.unwrap().unwrap();
    assert_eq!(gone.file_id, f.file_id);
    assert_eq!(store.file(&f.file_id).await.unwrap(), None);
    assert_eq!(
        store.lookup(&fresh, &new_token, None).await.unwrap().file,
        None
    );
    assert_eq!(store.downloads(&f.file_id).await.unwrap(), 0);
    assert_eq!(store.delete_file(&f.file_id).await.unwrap(), None);
}

/// A denied read by nobody, at `at_ms`: an event with nothing but its time to tell it apart.
pub fn denied_read(at_ms: i64) -> Event {
    Event {
        at_ms,
        kind: EventKind::Read,
        user_id: None,
        file_id: None,
        decision: Some(EventDecision::Deny),
        client: None,
        download: false,
    }
}

/// Events beyond `max_len` are dropped, oldest first.
pub async fn events_are_capped(store: Arc<dyn Store>, exact: bool) {
    store.migrate().await.unwrap();
    let e = denied_read(1);
    for _ in 0..20 {
        store
            .append_events(&vec![e.clone(); 50], 100)
            .await
            .unwrap();
    }
    let kept = store.events(None, 1000).await.unwrap().len();
    if exact {
        assert_eq!(kept, 100);
    } else {
        // Redis trims approximately (`XTRIM MINID ~`), whole nodes at a time, and counts
        // events, not entries: at most one more batch of 50.
        assert!((100..=150).contains(&kept), "{kept}");
    }
    // Changes are capped apart from reads: a change is not pushed out by any number of
    // reads after it, and both come back as one log, oldest first.
    let change = Event {
        at_ms: 2,
        kind: EventKind::RotateFileToken,
        ..denied_read(2)
    };
    store
        .append_events(std::slice::from_ref(&change), 100)
        .await
        .unwrap();
    for _ in 0..20 {
        store
            .append_events(&vec![denied_read(3); 50], 100)
            .await
            .unwrap();
    }
    let all = store.events(None, 1000).await.unwrap();
    let changes: Vec<_> = all
        .iter()
        .filter(|e| e.event.kind != EventKind::Read)
        .collect();
    assert_eq!(changes.len(), 1, "{all:?}");
    assert_eq!(changes[0].event, change);
    let times: Vec<i64> = all.iter().map(|e| e.event.at_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // Paging one at a time reads the same log.
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    while let Some(e) = store
        .events(after.as_deref(), 1)
        .await
        .unwrap()
        .into_iter()
        .next()
    {
        after = Some(e.id.clone());
        paged.push(e);
    }
    assert_eq!(paged, all);
}

/// What `write_sample` stored, to check after a restart.
pub struct Sample {
    user: UserToken,
    file: FileRecord,
    session: SessionId,
}

pub async fn write_sample(store: Arc<dyn Store>) -> Sample {
    store.migrate().await.unwrap();
    let (u, _) = store
        .ensure_user(&uid("persist"), &UserToken::generate().unwrap(), 1)
        .await
        .unwrap();
    let file = file_for("persist", "kept.txt");
    assert_eq!(store.insert_file(&file).await.unwrap(), Written::Done);
    let session = SessionId::generate().unwrap();
    let now = mediagate::clock::now();
    let rec = SessionRecord {
        user_id: uid("persist"),
        roles: vec![],
        expires_at: now + 3600,
    };
    assert_eq!(
        store
            .insert_session(&session.key(), &rec, now)
            .await
            .unwrap(),
        Written::Done
    );
    Sample {
        user: u.token,
        file,
        session,
    }
}

pub async fn check_sample(store: Arc<dyn Store>, s: &Sample) {
    assert_eq!(store.schema_version().await.unwrap(), migrate::CURRENT);
    let l = store
        .lookup(&s.user, &s.file.token, Some(&s.session.key()))
        .await
        .unwrap();
    assert_eq!(l.user_of_token, Some(uid("persist")));
    assert_eq!(l.file.as_ref(), Some(&s.file));
    assert_eq!(l.session.map(|x| x.user_id), Some(uid("persist")));
    assert_eq!(
        store.file(&s.file.file_id).await.unwrap().as_ref(),
        Some(&s.file)
    );
}
