//! Object storage through real nginx: the bytes in a bucket of a real S3 server (s3s-fs, which
//! checks every signature), fetched by nginx with the URL each allow carries.

use crate::gate::{ALICE_BYTES, BOB_BYTES, fixture, parts};
use crate::support::app::{Stack, StoreKind};
use crate::support::http;

/// The object key of an uploaded file (`site/{2 hex}/{file id}`).
fn key(upload: &serde_json::Value) -> String {
    let id = upload["file_id"].as_str().unwrap();
    format!("site/{}/{id}", &id[..2])
}

/// The S3 server checks signatures: what is unsigned, or signed with another secret, is
/// refused; so a test that reads through it proves mediagate's signing right.
#[test]
fn the_s3_server_refuses_what_is_not_signed() {
    use object_store::ObjectStoreExt;
    let dir = tempfile::tempdir().unwrap();
    let s = crate::support::s3::S3Server::start(dir.path());
    let target = format!("/{}/site/anything", crate::support::s3::BUCKET);
    for method in ["GET", "PUT", "HEAD"] {
        let r = http::send(s.port, method, target.as_bytes(), &[], b"x").unwrap();
        assert_eq!(r.status, 403, "{method} unsigned");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = |secret: &str| {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(s.endpoint())
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(crate::support::s3::BUCKET)
            .with_access_key_id(crate::support::s3::ACCESS_KEY)
            .with_secret_access_key(secret)
            .build()
            .unwrap()
    };
    let path = object_store::path::Path::from("site/probe");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let forged = client("another-secret-0123456789abcdef0123").put(&path, "x".into()).await;
        assert!(
            matches!(&forged, Err(e) if e.to_string().contains("403") || e.to_string().contains("Signature")),
            "{forged:?}"
        );
        client(crate::support::s3::SECRET_KEY).put(&path, "x".into()).await.expect("signed right");
    });
    assert_eq!(s.objects(), ["site/probe"]);
}

/// Every answer of the gate, from a bucket.
fn reads_from_a_bucket(kind: StoreKind) {
    let s = Stack::on_bucket(kind, Vec::new());
    let f = fixture(&s);
    let s3 = s.s3.as_ref().unwrap();
    assert_eq!(
        s3.object(&key(&f.alice_upload)).as_deref(),
        Some(ALICE_BYTES)
    );
    assert!(
        !s.storage_root.join(".incoming").exists()
            || std::fs::read_dir(s.storage_root.join(".incoming"))
                .unwrap()
                .next()
                .is_none(),
        "nothing on the local disk"
    );

    let r = s.get(&f.alice_url, Some(&f.alice));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE_BYTES);
    assert_eq!(r.headers_named("Content-Type"), ["text/plain"]);
    assert!(
        r.header("Content-Disposition")
            .unwrap()
            .starts_with("inline;")
    );
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(r.header("Cache-Control"), Some("private, no-cache"));
    // Nothing of the bucket reaches the client: no x-amz-* header, no presigned URL.
    for (name, value) in &r.headers {
        assert!(
            !name.to_ascii_lowercase().starts_with("x-amz"),
            "{name}: {value}"
        );
        assert!(
            !value.contains("X-Amz-") && !value.contains(crate::support::s3::BUCKET),
            "{name}: {value}"
        );
        assert!(!name.to_ascii_lowercase().starts_with("x-media"), "{name}");
    }
    let etag = r.header("ETag").unwrap().to_owned();

    // HEAD (a URL signed for HEAD), Range, and a revalidation.
    let head = s.media("HEAD", f.alice_url.as_bytes(), Some(&f.alice), &[]);
    assert_eq!(head.status, 200, "{}", s.logs());
    assert_eq!(
        head.header("Content-Length"),
        Some(ALICE_BYTES.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    let range = s.media(
        "GET",
        f.alice_url.as_bytes(),
        Some(&f.alice),
        &[("Range", "bytes=2-6")],
    );
    assert_eq!(range.status, 206, "{}", s.logs());
    assert_eq!(range.body, &ALICE_BYTES[2..=6]);
    assert_eq!(
        range.header("Content-Range"),
        Some(format!("bytes 2-6/{}", ALICE_BYTES.len()).as_str())
    );
    let unsatisfiable = s.media(
        "GET",
        f.alice_url.as_bytes(),
        Some(&f.alice),
        &[("Range", "bytes=9999-")],
    );
    assert_eq!(unsatisfiable.status, 416, "{}", s.logs());
    assert!(!String::from_utf8_lossy(&unsatisfiable.body).contains("<Error>"));
    let again = s.media(
        "GET",
        f.alice_url.as_bytes(),
        Some(&f.alice),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304, "{}", s.logs());
    assert!(again.body.is_empty());
    // A revalidation without a session is decided first: no 304 for a stranger.
    let stranger = s.media(
        "GET",
        f.alice_url.as_bytes(),
        None,
        &[("If-None-Match", &etag)],
    );
    assert_eq!(stranger.status, 401);

    // Everyone else, as on local storage.
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    assert_eq!(s.get(&f.alice_url, None).status, 401);
    let bob = s.get(&f.bob_url, Some(&f.bob));
    assert_eq!((bob.status, bob.body.as_slice()), (200, BOB_BYTES));

    // A rotation is in force at once; the object does not move.
    let id = f.alice_upload["file_id"].as_str().unwrap();
    let rotated = s
        .admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"")
        .json();
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 403);
    let new_url = rotated["url"].as_str().unwrap();
    assert_eq!(s.get(new_url, Some(&f.alice)).body, ALICE_BYTES);
    assert_eq!(
        s3.object(&key(&f.alice_upload)).as_deref(),
        Some(ALICE_BYTES)
    );

    // Deleting the file removes the object.
    assert_eq!(
        s.admin("DELETE", &format!("/v1/files/{id}"), &[], b"")
            .status,
        204
    );
    assert_eq!(s3.object(&key(&f.alice_upload)), None);
    assert_eq!(s.get(new_url, Some(&f.alice)).status, 403);
}

#[test]
fn reads_from_a_bucket_embedded() {
    reads_from_a_bucket(StoreKind::Embedded);
}

#[test]
fn reads_from_a_bucket_redis() {
    reads_from_a_bucket(StoreKind::Redis);
}

#[test]
fn share_links_and_large_uploads_on_a_bucket() {
    let env = vec![(
        "MEDIAGATE__LINKS__SECRET".to_owned(),
        "link-key-0123456789abcdef0123456789".to_owned(),
    )];
    let s = Stack::on_bucket(StoreKind::Embedded, env);
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap();
    let link = s
        .admin_json(
            "POST",
            &format!("/v1/files/{id}/links"),
            serde_json::json!({"ttl_seconds": 60}),
        )
        .json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.get(&link, None);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, ALICE_BYTES),
        "{}",
        s.logs()
    );
    let (u, ft, n) = parts(&f.alice_url);
    assert_eq!(
        s.get(
            &format!("/media/{u}/{ft}/{n}?{}0", link.split('?').nth(1).unwrap()),
            None
        )
        .status,
        403
    );

    // Bigger than one part: a multipart upload, read back whole and by range.
    let big: Vec<u8> = (0..20u32 << 20).map(|i| (i % 251) as u8).collect();
    let up = s.upload("alice", "big.bin", "application/octet-stream", &big);
    assert_eq!(up["size"], big.len());
    assert_eq!(
        s.s3.as_ref().unwrap().object(&key(&up)).as_deref(),
        Some(big.as_slice())
    );
    let url = up["url"].as_str().unwrap();
    let r = s.get(url, Some(&f.alice));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert!(r.body == big, "the whole object, byte for byte");
    let tail = s.media(
        "GET",
        url.as_bytes(),
        Some(&f.alice),
        &[("Range", "bytes=20971000-")],
    );
    assert_eq!(
        (tail.status, tail.body.as_slice()),
        (206, &big[20_971_000..])
    );
}

#[test]
fn refused_uploads_leave_no_object() {
    let env = vec![(
        "MEDIAGATE__UPLOAD__MAX_BYTES".to_owned(),
        (10u64 << 20).to_string(),
    )];
    let s = Stack::on_bucket(StoreKind::Embedded, env);
    s.user("alice");
    for size in [(10 << 20) + 1, 12 << 20] {
        let body = vec![7u8; size];
        let auth = format!("Bearer {}", crate::support::app::ADMIN_TOKEN);
        let r = http::send_chunked(
            s.app.admin_port,
            "POST",
            "/v1/users/alice/files?filename=big.bin",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/octet-stream"),
            ],
            &body,
        )
        .unwrap();
        assert_eq!(r.status, 413, "{size}: {}", r.text());
    }
    assert!(
        s.s3.as_ref().unwrap().objects().is_empty(),
        "{:?}",
        s.s3.as_ref().unwrap().objects()
    );
}

#[test]
fn a_bucket_that_is_down_is_503_never_200() {
    let mut s = Stack::on_bucket(StoreKind::Embedded, Vec::new());
    let f = fixture(&s);
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    s.s3.as_mut().unwrap().stop();
    for _ in 0..3 {
        let r = s.get(&f.alice_url, Some(&f.alice));
        assert_eq!(r.status, 503, "{}", s.logs());
        assert_eq!(r.header("Retry-After"), Some("1"));
        assert!(!r.body.windows(ALICE_BYTES.len()).any(|w| w == ALICE_BYTES));
    }
    // Decisions still answer from the store: a stranger is refused as before.
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    assert_eq!(s.get(&f.alice_url, None).status, 401);
    let ready = http::get(s.app.admin_port, "/readyz", &[]);
    assert_eq!(ready.status, 503);
    assert_eq!(ready.json()["status"], "storage_unavailable");
    let up = s.admin(
        "POST",
        "/v1/users/alice/files?filename=x.txt",
        &[("Content-Type", "text/plain")],
        b"x",
    );
    assert_eq!(
        (up.status, up.json()["error"]["code"].as_str()),
        (503, Some("storage_unavailable"))
    );

    s.s3.as_mut().unwrap().restart();
    crate::support::eventually(
        "the bucket back",
        std::time::Duration::from_secs(10),
        || (s.get(&f.alice_url, Some(&f.alice)).status == 200).then_some(()),
    );
    assert_eq!(http::get(s.app.admin_port, "/readyz", &[]).status, 200);
}
