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

/// A PUT to a presigned URL, as the application's client sends it (`Host` with the port: it
/// is signed).
fn put(url: &str, content_type: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("the test bucket's URL");
    let (host, target) = rest.split_at(rest.find('/').unwrap());
    let mut conn = std::net::TcpStream::connect(host).unwrap();
    write!(
        conn,
        "PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(body).unwrap();
    let mut answer = String::new();
    let _ = conn.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn direct_uploads_go_straight_to_the_bucket_and_are_checked_at_completion() {
    let env = vec![("MEDIAGATE__UPLOAD__MAX_BYTES".to_owned(), "1000".to_owned())];
    let s = Stack::on_bucket(StoreKind::Redis, env);
    s.user("alice");
    let alice = s.session("alice", 600, &[]);
    let begin = |name: &str, ty: &str, max: u64| {
        s.admin_json(
            "POST",
            "/v1/users/alice/uploads",
            serde_json::json!({"filename": name, "content_type": ty, "max_bytes": max}),
        )
    };
    let r = begin("report.pdf", "application/pdf", 500);
    assert_eq!(r.status, 201, "{}", r.text());
    let up = r.json();
    let (id, url) = (
        up["upload_id"].as_str().unwrap(),
        up["url"].as_str().unwrap(),
    );
    assert_eq!(
        (
            up["method"].as_str(),
            up["headers"]["Content-Type"].as_str()
        ),
        (Some("PUT"), Some("application/pdf"))
    );
    let complete = |id: &str| s.admin("POST", &format!("/v1/uploads/{id}/complete"), &[], b"");

    // Not sent yet: the upload waits.
    let early = complete(id);
    assert_eq!(
        (early.status, early.json()["error"]["code"].as_str()),
        (409, Some("upload_incomplete"))
    );
    // The signature binds the declared type: another one is refused by the bucket.
    assert_eq!(put(url, "text/html", b"%PDF-1.7 x"), 403);
    assert_eq!(put(url, "application/pdf", b"%PDF-1.7 x"), 200);
    let done = complete(id);
    assert_eq!(done.status, 201, "{}", done.text());
    let file = done.json();
    assert_eq!(
        (file["file_id"].as_str(), file["size"].as_u64()),
        (Some(id), Some(10))
    );
    let r = s.get(file["url"].as_str().unwrap(), Some(&alice));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"%PDF-1.7 x"[..]),
        "{}",
        s.logs()
    );
    assert_eq!(r.header("Content-Type"), Some("application/pdf"));
    // Completed once.
    assert_eq!(complete(id).json()["error"]["code"], "upload_not_found");
    // The URL is still valid, but it writes to the staging key, never to the file's bytes.
    assert_eq!(put(url, "application/pdf", b"%PDF-1.7 replaced"), 200);
    let r = s.get(file["url"].as_str().unwrap(), Some(&alice));
    assert_eq!(r.body.as_slice(), &b"%PDF-1.7 x"[..]);

    // Over the declared size: refused, and the object is gone.
    let up = begin("big.bin", "application/octet-stream", 5).json();
    let (id, url) = (
        up["upload_id"].as_str().unwrap(),
        up["url"].as_str().unwrap(),
    );
    assert_eq!(put(url, "application/octet-stream", b"123456"), 200);
    assert_eq!(complete(id).status, 413);
    assert_eq!(complete(id).status, 404);
    let s3 = s.s3.as_ref().unwrap();
    assert_eq!(s3.object(&format!("site/.incoming/{id}")), None);
    assert_eq!(s3.object(&format!("site/{}/{id}", &id[..2])), None);

    // What an upload refuses, a direct upload refuses before anything is signed.
    assert_eq!(begin("x.bin", "application/octet-stream", 1001).status, 413);
    assert_eq!(
        begin("x.html", r#"text/html; a="\"; b=",x"#, 10).status,
        400
    );
    assert_eq!(begin("x.bin", "application/octet-stream", 0).status, 400);
    assert_eq!(
        s.admin_json(
            "POST",
            "/v1/users/nobody/uploads",
            serde_json::json!({"filename": "a", "content_type": "text/plain", "max_bytes": 1})
        )
        .status,
        404
    );
    assert_eq!(complete("0123456789abcdef0123456789abcdef").status, 404);
}

#[test]
fn a_direct_upload_never_completed_is_swept_with_its_object() {
    let env = vec![(
        "MEDIAGATE__STORAGE__S3__UPLOAD_SECS".to_owned(),
        "2".to_owned(),
    )];
    let s = Stack::on_bucket(StoreKind::Embedded, env);
    s.user("alice");
    let up = s
        .admin_json(
            "POST",
            "/v1/users/alice/uploads",
            serde_json::json!({"filename": "a.txt", "content_type": "text/plain", "max_bytes": 100}),
        )
        .json();
    let (id, url) = (
        up["upload_id"].as_str().unwrap(),
        up["url"].as_str().unwrap(),
    );
    assert_eq!(put(url, "text/plain", b"never completed"), 200);
    let key = format!("site/.incoming/{id}");
    assert!(s.s3.as_ref().unwrap().object(&key).is_some());
    crate::support::eventually("the sweep", std::time::Duration::from_secs(20), || {
        s.s3.as_ref().unwrap().object(&key).is_none().then_some(())
    });
    let r = s.admin("POST", &format!("/v1/uploads/{id}/complete"), &[], b"");
    assert_eq!(
        r.json()["error"]["code"],
        "upload_not_found",
        "{}",
        s.logs()
    );
}

#[test]
fn direct_uploads_need_a_bucket() {
    let s = Stack::start(StoreKind::Embedded);
    s.user("alice");
    let r = s.admin_json(
        "POST",
        "/v1/users/alice/uploads",
        serde_json::json!({"filename": "a.txt", "content_type": "text/plain", "max_bytes": 100}),
    );
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_str()),
        (409, Some("direct_uploads_unavailable"))
    );
}

/// `mediagate storage copy` with the stack's settings and the bucket's.
fn storage_copy(s: &Stack, s3: &crate::support::s3::S3Server, store_url: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .args([
            "storage",
            "copy",
            "--to",
            &format!("s3://{}/site", crate::support::s3::BUCKET),
        ])
        .env_clear()
        .envs(
            s3.env()
                .into_iter()
                .filter(|(k, _)| k != "MEDIAGATE__STORAGE__URL"),
        )
        .env("MEDIAGATE__STORAGE__ROOT", &s.storage_root)
        .env("MEDIAGATE__STORE__URL", store_url)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A local root moved into a bucket keeps every URL: the same tokens, links and records serve
/// the same bytes from the bucket. Copied twice, nothing is sent twice; a wrong object is sent
/// again; nothing on disk changes.
#[test]
fn a_local_root_copied_into_a_bucket_keeps_every_url() {
    let mut s = Stack::start(StoreKind::Redis);
    let f = fixture(&s);
    let big: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 241) as u8).collect();
    let big_url = s.upload("alice", "big.bin", "application/octet-stream", &big)["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = std::fs::read_dir(&s.storage_root).unwrap().count();
    let s3 = crate::support::s3::S3Server::start(&s.dir.path().join("s3"));
    let store_url = s.redis.as_ref().unwrap().url();

    let (ok, out) = storage_copy(&s, &s3, &store_url);
    assert!(ok, "{out}");
    assert!(
        out.contains("3 copied") && out.contains("0 failed"),
        "{out}"
    );
    assert_eq!(
        s3.object(&key(&f.alice_upload)).as_deref(),
        Some(ALICE_BYTES)
    );
    let (ok, out) = storage_copy(&s, &s3, &store_url);
    assert!(
        ok && out.contains("0 copied") && out.contains("3 already there"),
        "{out}"
    );
    // An object that is not its file (here: cut short) is sent again.
    let cut = s3.dir_of(&key(&f.alice_upload));
    std::fs::write(&cut, b"short").unwrap();
    let (ok, out) = storage_copy(&s, &s3, &store_url);
    assert!(
        ok && out.contains("1 copied") && out.contains("2 already there"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_dir(&s.storage_root).unwrap().count(),
        before,
        "the root is untouched"
    );

    // The same stack on the bucket: the same URLs serve the same bytes.
    s.app.restart_with(s3.env());
    let env: Vec<(String, String)> = s3.env();
    let root = s.storage_root.clone();
    let auth = s.app.auth_port;
    let nginx = crate::support::nginx::Nginx::start(&s.dir.path().join("nginx-bucket"), |port| {
        crate::support::nginx::render(port, &root, auth, &env)
    });
    assert!(
        std::fs::read_to_string(s.dir.path().join("nginx-bucket/nginx.conf"))
            .unwrap()
            .contains("@mediagate_bucket")
    );
    let get = |url: &str, session: &str| {
        let cookie = format!("mediagate_session={session}");
        http::send(
            nginx.port,
            "GET",
            url.as_bytes(),
            &[("Cookie", &cookie)],
            b"",
        )
        .unwrap()
    };
    // The local files are gone from nginx's reach: what it serves comes from the bucket.
    std::fs::rename(&s.storage_root, s.dir.path().join("media-moved")).unwrap();
    let r = get(&f.alice_url, &f.alice);
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, ALICE_BYTES),
        "{}",
        s.logs()
    );
    assert_eq!(get(&f.bob_url, &f.bob).body, BOB_BYTES);
    assert!(get(&big_url, &f.alice).body == big);
    assert_eq!(get(&f.alice_url, &f.bob).status, 403);
}
