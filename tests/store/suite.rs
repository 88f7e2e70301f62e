//! The conformance suite every `Store` must pass.

use std::sync::Arc;

use mediagate::disposition::DispositionKind;
use mediagate::paths::StoragePath;
use mediagate::store::{
    FileRecord, SessionRecord, Store, StoreError, Visibility, Written, migrate,
};
use mediagate::tokens::{FileId, FileToken, SessionId, UserId, UserToken};

fn uid(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn file_for(owner: &str, name: &str) -> FileRecord {
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
    assert_eq!(store.migrate().await.unwrap(), vec![migrate::CURRENT]);
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
