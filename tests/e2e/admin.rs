//! The admin API slice of the gate: bearer auth, validation, uploads that leave nothing behind.

use crate::support::app::{ADMIN_TOKEN, Stack};
use crate::support::http;

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

on_every_store!(admin_calls_need_the_bearer_token, |s| {
    let port = s.app.admin_port;
    for (method, target) in [
        ("PUT", "/v1/users/alice"),
        ("POST", "/v1/sessions"),
        ("POST", "/v1/users/alice/files?filename=a"),
    ] {
        for auth in [
            None,
            Some("Bearer wrong-token-0123456789"),
            Some(ADMIN_TOKEN),
            Some("Basic dGVzdA=="),
        ] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
            let r = http::send(port, method, target.as_bytes(), &headers, b"").unwrap();
            assert_eq!(r.status, 401, "{method} {target} {auth:?}");
            assert_eq!(r.json()["error"]["code"], "unauthorized");
        }
    }
    // Health needs no token.
    assert_eq!(http::get(port, "/healthz", &[]).status, 200);
    assert_eq!(http::get(port, "/readyz", &[]).status, 200);
    // The auth listener has no admin API.
    let r = http::send(
        s.app.auth_port,
        "PUT",
        b"/v1/users/alice",
        &[("Authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        b"",
    )
    .unwrap();
    assert_eq!(r.status, 403);
});

on_every_store!(users_are_idempotent_and_ids_are_validated, |s| {
    let first = s.admin("PUT", "/v1/users/alice@example.com", &[], b"");
    assert_eq!(first.status, 201);
    let again = s.admin("PUT", "/v1/users/alice@example.com", &[], b"");
    assert_eq!(again.status, 200);
    assert_eq!(first.json(), again.json());
    assert_eq!(first.json()["user_token"].as_str().unwrap().len(), 32);
    let long = "a".repeat(129);
    for bad in ["a%20b", "a%2Fb", "%C3%A9", long.as_str(), "a:b"] {
        let r = s.admin("PUT", &format!("/v1/users/{bad}"), &[], b"");
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_input");
    }
});

on_every_store!(uploads_validate_and_leave_nothing_on_failure, |s| {
    s.user("alice");
    let r = s.admin(
        "POST",
        "/v1/users/nobody/files?filename=a.txt",
        &[],
        b"data",
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "user_not_found");
    // Nothing usable left: 400.
    for bad in ["", "..", "a%2F", "%00", "%2F%2F", "%20.%20", "x%5C"] {
        let r = s.admin(
            "POST",
            &format!("/v1/users/alice/files?filename={bad}"),
            &[],
            b"data",
        );
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_input");
    }
    let r = s.admin("POST", "/v1/users/alice/files", &[], b"data");
    assert_eq!(r.status, 400);
    let r = s.admin(
        "POST",
        "/v1/users/alice/files?filename=a.txt",
        &[("Content-Type", "not a type")],
        b"data",
    );
    assert_eq!(r.status, 400);
    assert!(
        files_under(&s.storage_root).is_empty(),
        "{:?}",
        files_under(&s.storage_root)
    );

    // Otherwise the name is cleaned: path parts and control characters go.
    for (raw, clean) in [
        ("a%2Fb.txt", "b.txt"),
        ("C%3A%5Cx%5Creport.pdf", "report.pdf"),
        ("a%0D%0Ab.txt", "ab.txt"),
        ("..%2F..%2Fetc%2Fpasswd", "passwd"),
    ] {
        let up = s.upload("alice", raw, "text/plain", b"data");
        let url = up["url"].as_str().unwrap();
        assert!(url.ends_with(&format!("/{clean}")), "{raw}: {url}");
    }
    for f in files_under(&s.storage_root) {
        std::fs::remove_file(f).unwrap();
    }

    // Type guessed from the name when the client sends octet-stream.
    let up = s.upload("alice", "photo.png", "application/octet-stream", b"\x89PNG");
    assert_eq!(up["content_type"], "image/png");
    assert_eq!(files_under(&s.storage_root).len(), 1);
    // The storage path holds no public token.
    let path = files_under(&s.storage_root).pop().unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, up["file_id"].as_str().unwrap());
    assert!(
        !path
            .to_string_lossy()
            .contains(up["file_token"].as_str().unwrap())
    );
});

#[test]
fn oversized_uploads_get_413_and_leave_nothing() {
    let s = Stack::start_with(
        crate::support::app::StoreKind::Embedded,
        vec![("MEDIAGATE__UPLOAD__MAX_BYTES".into(), "1000".into())],
        |c| c,
    );
    s.user("alice");
    let r = s.admin(
        "POST",
        "/v1/users/alice/files?filename=big.bin",
        &[],
        &[7u8; 1001],
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "payload_too_large");
    assert!(files_under(&s.storage_root).is_empty());
    // A body streamed without Content-Length is cut off at the limit as well.
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", s.app.admin_port)).unwrap();
    use std::io::{Read, Write};
    let chunk = format!("{:x}\r\n{}\r\n", 800, "x".repeat(800));
    let req = format!(
        "POST /v1/users/alice/files?filename=big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunk}{chunk}0\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(
        files_under(&s.storage_root).is_empty(),
        "{:?}",
        files_under(&s.storage_root)
    );
    assert_eq!(
        s.upload("alice", "ok.bin", "application/octet-stream", &[1u8; 1000])["size"],
        1000
    );
}

on_every_store!(sessions_are_validated, |s| {
    s.user("alice");
    let post = |body: &str| {
        s.admin(
            "POST",
            "/v1/sessions",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };
    assert_eq!(post(r#"{"user_id":"nobody","ttl_seconds":60}"#).status, 404);
    for bad in [
        "{",
        r#"{"user_id":"alice","ttl_seconds":0}"#,
        r#"{"user_id":"alice","ttl_seconds":99999999999}"#,
        r#"{"user_id":"alice","roles":["bad role"]}"#,
        r#"{"user_id":"a/b"}"#,
        r#"{"user_id":"alice","extra":1}"#,
        r#"{"ttl_seconds":60}"#,
    ] {
        let r = post(bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
        assert_eq!(r.json()["error"]["code"], "invalid_input");
    }
    let r = post(r#"{"user_id":"alice","ttl_seconds":60,"roles":["staff"]}"#);
    assert_eq!(r.status, 201);
    assert_eq!(r.json()["session_id"].as_str().unwrap().len(), 64);
    assert!(r.json()["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        s.admin("DELETE", "/v1/sessions/not-a-session", &[], b"")
            .status,
        400
    );
});

#[test]
fn session_ids_are_stored_hashed() {
    let s = Stack::start(crate::support::app::StoreKind::Redis);
    s.user("alice");
    let id = s.session("alice", 600, &[]);
    let redis = s.redis.as_ref().unwrap();
    let keys = redis.command(&["KEYS", "*"]).unwrap();
    assert!(!keys.contains(&id), "{keys}");
    let dump = redis.command(&["KEYS", "mediagate:sess:*"]).unwrap();
    assert!(dump.contains("mediagate:sess:"), "{dump}");
    for key in dump.lines().filter(|l| l.starts_with("mediagate:")) {
        let value = redis.command(&["GET", key]).unwrap();
        assert!(!value.contains(&id));
    }
}

/// `admin.token_file` as a mounted Secret: `#` comments are not tokens, and a SIGHUP reads the
/// file again, so a leaked token is revoked without a restart (a bad file keeps what was read).
#[test]
fn the_token_file_skips_comments_and_is_read_again_on_sighup() {
    let keys = tempfile::tempdir().unwrap();
    let file = keys.path().join("admin-tokens");
    let comment = "# rotated on 2026-12-07 by the on-call engineer";
    std::fs::write(&file, format!("{comment}\n\nfile-token-0123456789\n")).unwrap();
    let env = vec![(
        "MEDIAGATE__ADMIN__TOKEN_FILE".to_owned(),
        file.to_string_lossy().into_owned(),
    )];
    let s = Stack::start_with(crate::support::app::StoreKind::Embedded, env, |c| c);
    let status = |token: &str| {
        let auth = format!("Bearer {token}");
        http::send(
            s.app.admin_port,
            "GET",
            b"/v1/events",
            &[("Authorization", &auth)],
            b"",
        )
        .unwrap()
        .status
    };
    assert_eq!(status(comment), 401);
    assert_eq!(status(&comment[2..]), 401);
    assert_eq!(status("file-token-0123456789"), 200);
    assert_eq!(status(ADMIN_TOKEN), 200);

    std::fs::write(&file, "new-file-token-0123456789\n").unwrap();
    crate::support::signal(s.app.pid().unwrap(), "HUP");
    crate::support::eventually(
        "the file to be read again",
        std::time::Duration::from_secs(10),
        || (status("file-token-0123456789") == 401).then_some(()),
    );
    assert_eq!(status("new-file-token-0123456789"), 200);
    assert_eq!(status(ADMIN_TOKEN), 200, "admin.token stays");

    // A short token in the file: refused as a whole, the tokens stay as they were.
    std::fs::write(&file, "short\n").unwrap();
    crate::support::signal(s.app.pid().unwrap(), "HUP");
    crate::support::eventually(
        "the refusal to be logged",
        std::time::Duration::from_secs(10),
        || {
            s.app
                .log()
                .contains("admin tokens kept as they were")
                .then_some(())
        },
    );
    assert_eq!(status("new-file-token-0123456789"), 200);
    assert_eq!(status("short"), 401);
}

/// An upload cut off by a crash leaves its temporary file in `.incoming`; the next start
/// removes it (once it is older than a minute, so that a replica sharing the volume keeps
/// the uploads it is writing: those hold a lock the sweep respects).
#[test]
fn a_crash_mid_upload_leaves_nothing_after_the_next_start() {
    use std::io::Write;
    let mut s = Stack::start(crate::support::app::StoreKind::Embedded);
    s.user("alice");
    let incoming = s.storage_root.join(".incoming");
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", s.app.admin_port)).unwrap();
    write!(
        conn,
        "POST /v1/users/alice/files?filename=big.bin HTTP/1.1\r\nHost: x\r\n\
         Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: 10000000\r\n\r\n"
    )
    .unwrap();
    conn.write_all(&[7u8; 100_000]).unwrap();
    let partial = crate::support::eventually(
        "the upload's temporary file",
        std::time::Duration::from_secs(10),
        || files_under(&incoming).pop(),
    );
    s.app.kill();
    drop(conn);
    assert!(partial.exists(), "a killed upload leaves its file");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options()
        .write(true)
        .open(&partial)
        .unwrap()
        .set_modified(old)
        .unwrap();
    s.app.restart();
    assert!(!partial.exists(), "{}", s.logs());
    assert!(
        files_under(&s.storage_root).is_empty(),
        "{:?}",
        files_under(&s.storage_root)
    );
    assert!(
        s.app
            .log()
            .contains("Removed temporary files of interrupted uploads.")
    );
}
