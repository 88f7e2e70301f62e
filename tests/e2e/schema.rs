//! The admin API under schemathesis, driven by its own OpenAPI document: no 5xx, every answer
//! matches the document, undeclared methods get 405; and every documented call without the
//! bearer token is 401.

use std::process::Command;

use crate::support::app::{ADMIN_TOKEN, Stack, StoreKind};
use crate::support::http;

fn schemathesis() -> std::path::PathBuf {
    let st =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/clients-venv/bin/st");
    assert!(
        st.exists(),
        "schemathesis is not installed: run scripts/clients.sh (make test does)"
    );
    st
}

fn stack() -> Stack {
    let env = vec![
        (
            "MEDIAGATE__LINKS__SECRET".to_owned(),
            "link-key-0123456789abcdef0123456789".to_owned(),
        ),
        (
            "MEDIAGATE__UPLOAD__MAX_BYTES".to_owned(),
            "100000".to_owned(),
        ),
    ];
    Stack::start_with(StoreKind::Embedded, env, |c| c)
}

#[test]
fn schemathesis_finds_nothing() {
    let s = stack();
    let doc = s.admin("GET", "/v1/openapi.json", &[], b"");
    assert_eq!(doc.status, 200);
    let schema = s.dir.path().join("openapi.json");
    std::fs::write(&schema, &doc.body).unwrap();
    let out = Command::new(schemathesis())
        .arg("run")
        .arg(&schema)
        .args(["--url", &format!("http://127.0.0.1:{}", s.app.admin_port)])
        .args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
        .args([
            "--checks",
            "all",
            "--max-examples",
            "25",
            "--seed",
            "1",
            // One worker: hypothesis parses its lambdas' source with `ast` while it draws, and
            // CPython 3.11's parser is not safe across threads ("AST constructor recursion depth
            // mismatch" as a schemathesis runtime error, now and then).
            "--workers",
            "1",
        ])
        .current_dir(s.dir.path())
        .output()
        .expect("run schemathesis");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis failed:\n{report}\n{}",
        s.logs()
    );
    assert!(report.contains("passed"), "{report}");
    assert!(
        !s.app.log().contains("Admin call failed"),
        "a 5xx was logged:\n{}",
        s.logs()
    );
}

#[test]
fn every_documented_call_without_the_token_is_401() {
    let s = stack();
    let doc = s.admin("GET", "/v1/openapi.json", &[], b"").json();
    let mut calls = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{user_id}", "alice")
            .replace("{file_id}", "0123456789abcdef0123456789abcdef")
            .replace("{session_id}", &"a".repeat(64))
            .replace("{upload_id}", "0123456789abcdef0123456789abcdef");
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_uppercase();
            for auth in [
                None,
                Some("Bearer not-the-token-0123456789"),
                Some(ADMIN_TOKEN),
            ] {
                let headers: Vec<(&str, &str)> =
                    auth.map(|a| vec![("Authorization", a)]).unwrap_or_default();
                let r =
                    http::send(s.app.admin_port, &m, concrete.as_bytes(), &headers, b"").unwrap();
                assert_eq!(r.status, 401, "{m} {concrete} with {auth:?}");
                assert_eq!(r.header("WWW-Authenticate"), Some("Bearer"));
            }
            calls += 1;
        }
    }
    assert_eq!(calls, 19);
    let r = http::send(s.app.admin_port, "GET", b"/v1/openapi.json", &[], b"").unwrap();
    assert_eq!(r.status, 401);
}
