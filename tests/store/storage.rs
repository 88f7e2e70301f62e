//! The storage contract: the bytes of files, on a local root and in a bucket of a real S3
//! server (s3s-fs), behave alike: what is written reads back exactly, a refused or broken
//! upload leaves nothing, removal is idempotent, and an unreachable storage says so.

use futures_util::StreamExt;
use mediagate::config::{S3Settings, StorageSettings};
use mediagate::ids::FileId;
use mediagate::storage::{Storage, UploadError};

use crate::support::s3::S3Server;

/// A storage of each kind, and how to list what it holds.
struct Case {
    storage: Storage,
    holds: Box<dyn Fn() -> Vec<String>>,
}

fn files_under(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn local(dir: &std::path::Path) -> Case {
    let root = dir.join("media");
    let storage = Storage::Local(mediagate::storage::LocalStorage::new(&root));
    storage.prepare().unwrap();
    Case {
        storage,
        holds: Box::new(move || files_under(&root)),
    }
}

fn bucket_storage(s3: &S3Server) -> Storage {
    let settings = StorageSettings {
        root: "./unused".into(),
        url: Some(format!("s3://{}/contract", crate::support::s3::BUCKET)),
        s3: S3Settings {
            endpoint: Some(s3.endpoint()),
            allow_http: Some(true),
            region: Some("us-east-1".into()),
            access_key_id: Some(crate::support::s3::ACCESS_KEY.into()),
            secret_access_key: Some(crate::support::s3::SECRET_KEY.to_owned().into()),
            ..S3Settings::default()
        },
    };
    Storage::open(&settings).unwrap()
}

fn bucket(s3: &'static S3Server) -> Case {
    Case {
        storage: bucket_storage(s3),
        holds: Box::new(move || s3.objects()),
    }
}

fn body(
    parts: Vec<Vec<u8>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Unpin {
    futures_util::stream::iter(parts.into_iter().map(Ok))
}

async fn read_all(storage: &Storage, path: &mediagate::paths::StoragePath) -> Option<Vec<u8>> {
    let (mut stream, size) = storage.read(path).await.unwrap()?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(out.len() as u64, size);
    Some(out)
}

async fn contract(case: Case) {
    let s = &case.storage;
    s.ping().await.unwrap();
    // Small, and bigger than a part of a multipart upload: read back byte for byte.
    for size in [0usize, 5, 9 << 20] {
        let data: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        let id = FileId::generate();
        let parts = data.chunks(1 << 16).map(<[u8]>::to_vec).collect();
        let stored = s.write(&id, body(parts), 1 << 30).await.unwrap();
        assert_eq!(stored.size, size as u64);
        assert_eq!(
            read_all(s, &stored.storage_path).await.as_deref(),
            Some(data.as_slice())
        );
        s.remove(&stored.storage_path).await.unwrap();
        s.remove(&stored.storage_path)
            .await
            .expect("removing twice is no error");
        assert_eq!(read_all(s, &stored.storage_path).await, None);
    }
    assert!((case.holds)().is_empty(), "{:?}", (case.holds)());

    // Over the limit, small or multipart: refused, nothing left.
    for size in [11usize, 10 << 20] {
        let parts = vec![vec![1u8; size / 2], vec![2u8; size - size / 2]];
        let err = s
            .write(&FileId::generate(), body(parts), size as u64 - 1)
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::TooLarge(_)), "{err:?}");
    }
    // A body that breaks off, before and after the first part: nothing left.
    for before in [3usize, 9 << 20] {
        let broken = futures_util::stream::iter(vec![
            Ok(vec![5u8; before]),
            Err(std::io::Error::other("client went away")),
        ]);
        let err = s
            .write(&FileId::generate(), broken, 1 << 30)
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::Body(_)), "{err:?}");
    }
    assert!(
        (case.holds)().is_empty(),
        "left behind: {:?}",
        (case.holds)()
    );
}

#[tokio::test]
async fn a_local_root_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    contract(local(dir.path())).await;
}

#[tokio::test]
async fn a_bucket_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s3: &'static S3Server = Box::leak(Box::new(S3Server::start(dir.path())));
    contract(bucket(s3)).await;
}

#[tokio::test]
async fn an_unreachable_storage_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let case = local(dir.path());
    std::fs::remove_dir_all(dir.path().join("media")).unwrap();
    assert!(case.storage.ping().await.is_err());
    let err = case
        .storage
        .write(&FileId::generate(), body(vec![vec![1]]), 10)
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::RootMissing(_)), "{err:?}");
    assert!(
        !dir.path().join("media").exists(),
        "a missing root is not re-created"
    );

    let mut s3 = S3Server::start(&dir.path().join("s3"));
    let storage = bucket_storage(&s3);
    storage.ping().await.unwrap();
    s3.stop();
    assert!(storage.ping().await.is_err());
    let err = storage
        .write(&FileId::generate(), body(vec![vec![1]]), 10)
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::Bucket(_)), "{err:?}");
}
