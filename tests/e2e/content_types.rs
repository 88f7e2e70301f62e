//! What a file's type can make a browser do, through real nginx. A declared type is refused or
//! rebuilt by mediagate; only passive types are inline; everything else is an attachment under
//! `sandbox`; a type a browser runs (JavaScript, CSS) is sent as `text/plain`. What nginx sends
//! is read back by Node's WHATWG Fetch implementation, the rule browsers follow.

use std::process::Command;

use crate::support::app::{Stack, StoreKind};

const BODY: &[u8] = b"<script>alert(document.domain)</script>";

/// The WHATWG reading of each `Content-Type` value: `new Response(..).blob().type`.
fn as_browsers_read(values: &[String]) -> Vec<String> {
    let script = "const vs = JSON.parse(process.argv[1]); \
        Promise.all(vs.map(v => new Response('', {headers: {'content-type': v}}).blob() \
        .then(b => b.type))).then(t => console.log(JSON.stringify(t)));";
    let node = crate::support::require("node");
    let out = Command::new(node)
        .args(["-e", script, &serde_json::to_string(values).unwrap()])
        .output()
        .expect("run node (apt-get install nodejs)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("node's answer")
}

/// The upload's answer (status, JSON) for a raw `Content-Type`.
fn upload(s: &Stack, name: &str, content_type: &str) -> (u16, serde_json::Value) {
    let r = s.admin(
        "POST",
        &format!("/v1/users/alice/files?filename={name}"),
        &[("Content-Type", content_type)],
        BODY,
    );
    let body = if r.body.is_empty() {
        serde_json::Value::Null
    } else {
        r.json()
    };
    (r.status, body)
}

fn nothing_stored(s: &Stack) {
    let files: Vec<_> = walk(&s.storage_root);
    assert!(files.is_empty(), "left behind: {files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn crafted_content_types_are_refused_and_leave_nothing() {
    let s = Stack::start(StoreKind::Embedded);
    s.user("alice");
    let refused = [
        // Read as text/plain by a naive parser, as text/html by a browser.
        r#"text/plain; a="\"; b=",text/html;c=""#.to_owned(),
        "text/plain, text/html".to_owned(),
        "text/plain; charset=\"utf-8\"".to_owned(),
        "text/html\\".to_owned(),
        format!("application/{}", "x".repeat(244)),
        format!("text/plain; a={}", "b".repeat(6000)),
        "texthtml".to_owned(),
    ];
    for t in &refused {
        let (status, body) = upload(&s, "x.txt", t);
        assert_eq!(status, 400, "{t:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_input", "{t:?}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Content-Type ")
        );
    }
    nothing_stored(&s);
    // The longest accepted type is read back like any other.
    let longest = format!("application/{}", "x".repeat(243));
    let (status, up) = upload(&s, "x.bin", &longest);
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["content_type"], longest.as_str());
    let alice = s.session("alice", 600, &[]);
    let r = s.get(up["url"].as_str().unwrap(), Some(&alice));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.header("Content-Type"), Some(longest.as_str()));
}

#[test]
fn the_allowed_types_cannot_be_passed_with_a_second_type() {
    let env = vec![(
        "MEDIAGATE__UPLOAD__ALLOWED_TYPES".to_owned(),
        "image/*".to_owned(),
    )];
    let s = Stack::start_with(StoreKind::Embedded, env, |c| c);
    s.user("alice");
    let (status, _) = upload(&s, "x.png", r#"image/png; a="\"; b=",text/html;c=""#);
    assert_eq!(status, 400);
    let (status, body) = upload(&s, "x.html", "text/html");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    nothing_stored(&s);
    assert_eq!(upload(&s, "x.png", "IMAGE/PNG; q=1").0, 201);
}

/// `(declared type, what nginx must send, inline?)`; not inline means attachment + sandbox.
const CASES: &[(&str, &str, bool)] = &[
    ("image/png", "image/png", true),
    ("image/jpeg", "image/jpeg", true),
    ("video/mp4", "video/mp4", true),
    ("audio/mpeg", "audio/mpeg", true),
    ("application/pdf", "application/pdf", true),
    (
        "Text/Plain; Charset=UTF-8; format=flowed",
        "text/plain; charset=utf-8",
        true,
    ),
    ("text/plain; charset=utf-7", "text/plain", true),
    (
        "text/html; charset=utf-8",
        "text/html; charset=utf-8",
        false,
    ),
    ("application/xhtml+xml", "application/xhtml+xml", false),
    ("image/svg+xml", "image/svg+xml", false),
    ("application/xml", "application/xml", false),
    (
        "multipart/x-mixed-replace; boundary=x",
        "multipart/x-mixed-replace",
        false,
    ),
    ("application/json", "application/json", false),
    ("application/x-unknown", "application/x-unknown", false),
    // Types a browser runs when a page loads them: never sent as such.
    ("text/javascript", "text/plain", false),
    ("application/javascript", "text/plain", false),
    ("text/x-javascript", "text/plain", false),
    ("application/x-ecmascript", "text/plain", false),
    ("text/jscript", "text/plain", false),
    ("text/livescript", "text/plain", false),
    ("text/javascript1.0", "text/plain", false),
    ("text/javascript1.5", "text/plain", false),
    ("text/css", "text/plain", false),
];

#[test]
fn what_nginx_sends_is_never_run_by_a_browser() {
    let s = Stack::start(StoreKind::Embedded);
    s.user("alice");
    let alice = s.session("alice", 600, &[]);
    let mut served = Vec::new();
    for (i, (declared, sent, inline)) in CASES.iter().enumerate() {
        let (status, up) = upload(&s, &format!("f{i}"), declared);
        assert_eq!(status, 201, "{declared}: {up}");
        let id = up["file_id"].as_str().unwrap().to_owned();
        // The app asks for inline on everything: only passive types get it.
        let patched = s.admin_json(
            "PATCH",
            &format!("/v1/files/{id}"),
            serde_json::json!({"disposition": "inline"}),
        );
        assert_eq!(patched.status, 200);
        let r = s.get(up["url"].as_str().unwrap(), Some(&alice));
        assert_eq!(r.status, 200, "{declared}\n{}", s.logs());
        assert_eq!(r.body, BODY);
        assert_eq!(r.headers_named("Content-Type"), [*sent], "{declared}");
        let cd = r.header("Content-Disposition").unwrap();
        let csp = r.header("Content-Security-Policy");
        if *inline {
            assert!(cd.starts_with("inline;"), "{declared}: {cd}");
            assert_eq!(csp, None, "{declared}");
        } else {
            assert!(cd.starts_with("attachment;"), "{declared}: {cd}");
            assert_eq!(csp, Some("sandbox"), "{declared}");
        }
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
        served.push((r.header("Content-Type").unwrap().to_owned(), *inline));
    }
    // Read as browsers read them: nothing that runs, nothing that renders markup inline.
    let read = as_browsers_read(&served.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>());
    for ((sent, inline), whatwg) in served.iter().zip(&read) {
        let essence = whatwg.split(';').next().unwrap().to_owned();
        assert_eq!(essence, sent.split(';').next().unwrap(), "{sent}");
        assert!(
            !essence.contains("javascript") && !essence.contains("ecmascript"),
            "{sent}"
        );
        assert!(!["text/css", "text/jscript", "text/livescript"].contains(&essence.as_str()));
        if *inline {
            assert!(
                !essence.contains("html") && !essence.contains("xml"),
                "{sent}"
            );
        }
    }
}
