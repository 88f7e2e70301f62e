//! The gate: who gets a file through nginx, and who does not.

use crate::support::app::Stack;
use crate::support::http;

pub const ALICE_BYTES: &[u8] = b"alice's private report\nline two\n";
pub const BOB_BYTES: &[u8] = b"bob's private notes\n";

/// Two users with one file each, and a session each.
pub struct Fixture {
    pub alice_url: String,
    pub bob_url: String,
    pub alice: String,
    pub bob: String,
    pub alice_upload: serde_json::Value,
}

pub fn fixture(s: &Stack) -> Fixture {
    s.user("alice");
    s.user("bob");
    let alice_upload = s.upload("alice", "report%20Q1.txt", "text/plain", ALICE_BYTES);
    let bob_upload = s.upload("bob", "notes.txt", "text/plain", BOB_BYTES);
    Fixture {
        alice_url: alice_upload["url"].as_str().unwrap().to_owned(),
        bob_url: bob_upload["url"].as_str().unwrap().to_owned(),
        alice: s.session("alice", 600, &[]),
        bob: s.session("bob", 600, &[]),
        alice_upload,
    }
}

/// Splits a public URL into its user token, file token and encoded filename.
pub fn parts(url: &str) -> (String, String, String) {
    let rest = url.strip_prefix("/media/").expect("media url");
    let mut it = rest.splitn(3, '/');
    (
        it.next().unwrap().to_owned(),
        it.next().unwrap().to_owned(),
        it.next().unwrap().to_owned(),
    )
}

on_every_store!(owner_gets_the_exact_bytes, |s| {
    let f = fixture(&s);
    let r = s.get(&f.alice_url, Some(&f.alice));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE_BYTES);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    assert_eq!(
        r.header("Content-Disposition"),
        Some("inline; filename=\"report Q1.txt\"; filename*=UTF-8''report%20Q1.txt")
    );
    assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
    assert!(r.header("ETag").is_some());
    assert_eq!(r.headers_named("Content-Type").len(), 1, "{:?}", r.headers);
    // What mediagate tells nginx stays between them.
    assert!(r.header("X-Media-Path").is_none());
    assert!(r.header("Content-Security-Policy").is_none());
    assert_eq!(f.alice_upload["size"], ALICE_BYTES.len());
    assert_eq!(f.alice_upload["content_type"], "text/plain");
});

on_every_store!(head_and_range_are_served_by_nginx, |s| {
    let f = fixture(&s);
    let r = s.media("HEAD", f.alice_url.as_bytes(), Some(&f.alice), &[]);
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(
        r.header("Content-Length"),
        Some(ALICE_BYTES.len().to_string().as_str())
    );
    assert!(r.body.is_empty());
    let r = s.media(
        "GET",
        f.alice_url.as_bytes(),
        Some(&f.alice),
        &[("Range", "bytes=2-6")],
    );
    assert_eq!(r.status, 206, "{}", s.logs());
    assert_eq!(r.body, &ALICE_BYTES[2..=6]);
    // Revalidation goes through the gate again and yields 304 for the owner only.
    let etag = s
        .get(&f.alice_url, Some(&f.alice))
        .header("ETag")
        .unwrap()
        .to_owned();
    let r = s.media(
        "GET",
        f.alice_url.as_bytes(),
        Some(&f.alice),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(r.status, 304);
    let r = s.media(
        "GET",
        f.alice_url.as_bytes(),
        Some(&f.bob),
        &[("If-None-Match", &etag)],
    );
    assert_eq!(r.status, 403);
});

on_every_store!(other_user_is_forbidden_and_anonymous_is_unauthorized, |s| {
    let f = fixture(&s);
    let r = s.get(&f.alice_url, Some(&f.bob));
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("alice"));
    let r = s.get(&f.alice_url, None);
    assert_eq!(r.status, 401);
    assert!(!r.text().contains("alice"));
    // An unknown or malformed session is no session.
    let r = s.get(&f.alice_url, Some(&"ab".repeat(32)));
    assert_eq!(r.status, 401);
    let r = s.get(&f.alice_url, Some("not-a-session"));
    assert_eq!(r.status, 401);
    // Bob still reads his own.
    assert_eq!(s.get(&f.bob_url, Some(&f.bob)).body, BOB_BYTES);
});

on_every_store!(expired_and_logged_out_sessions_are_unauthorized, |s| {
    let f = fixture(&s);
    // A session lives at least its ttl, though expiry is counted in whole seconds.
    let before = std::time::SystemTime::now();
    let r = s.admin_json(
        "POST",
        "/v1/sessions",
        serde_json::json!({"user_id": "alice", "ttl_seconds": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let expires = humantime::parse_rfc3339(r.json()["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires >= before + std::time::Duration::from_secs(1));
    let short = r.json()["session_id"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&f.alice_url, Some(&short)).status, 200);
    crate::support::eventually(
        "the 1 s session to expire",
        std::time::Duration::from_secs(5),
        || (s.get(&f.alice_url, Some(&short)).status == 401).then_some(()),
    );

    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    let r = s.admin("DELETE", &format!("/v1/sessions/{}", f.alice), &[], b"");
    assert_eq!(r.status, 204, "{}", r.text());
    assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 401);
    let r = s.admin("DELETE", &format!("/v1/sessions/{}", f.alice), &[], b"");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], "session_not_found");
});

on_every_store!(swapped_and_unknown_tokens_are_forbidden, |s| {
    let f = fixture(&s);
    let (au, af, an) = parts(&f.alice_url);
    let (bu, bf, bn) = parts(&f.bob_url);
    let random = "0123456789abcdef0123456789abcdef";
    for (url, who) in [
        (format!("/media/{au}/{bf}/{bn}"), &f.alice),
        (format!("/media/{au}/{bf}/{bn}"), &f.bob),
        (format!("/media/{bu}/{af}/{an}"), &f.alice),
        (format!("/media/{bu}/{af}/{an}"), &f.bob),
        (format!("/media/{af}/{au}/{an}"), &f.alice),
        (format!("/media/{random}/{af}/{an}"), &f.alice),
        (format!("/media/{au}/{random}/{an}"), &f.alice),
        (format!("/media/{au}/{af}/{bn}"), &f.alice),
        (format!("/media/{au}/{af}/Report%20Q1.txt"), &f.alice),
    ] {
        let r = s.get(&url, Some(who));
        assert_eq!(r.status, 403, "{url}\n{}", s.logs());
        assert!(!r.text().contains("private"), "{url}");
        // Anonymous callers learn nothing more: unknown tokens are 403 for them too.
        assert_eq!(s.get(&url, None).status, 403, "{url}");
    }
});

on_every_store!(client_sent_original_headers_change_nothing, |s| {
    let f = fixture(&s);
    // If nginx forwarded the client's X-Original-URI, mediagate would judge Bob's own file.
    let r = s.media(
        "GET",
        f.alice_url.as_bytes(),
        Some(&f.bob),
        &[
            ("X-Original-URI", &f.bob_url),
            ("X-Original-Method", "GET"),
            ("X-Media-Path", "../../etc/passwd"),
            ("X-Forwarded-For", "127.0.0.1"),
        ],
    );
    assert_eq!(r.status, 403, "{}", s.logs());
    let r = s.media(
        "GET",
        f.bob_url.as_bytes(),
        Some(&f.bob),
        &[("X-Original-URI", &f.alice_url)],
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.body, BOB_BYTES);
});

on_every_store!(methods_other_than_get_and_head_are_refused, |s| {
    let f = fixture(&s);
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "TRACE",
    ] {
        let r = s.media(method, f.alice_url.as_bytes(), Some(&f.alice), &[]);
        assert!(matches!(r.status, 403 | 405), "{method}: {}", r.status);
        assert!(!r.text().contains("private"), "{method}");
    }
    // And the service itself refuses them, whatever nginx does.
    let cookie = format!("mediagate_session={}", f.alice);
    let ask = |method: &str| {
        http::send(
            s.app.auth_port,
            "GET",
            b"/auth",
            &[
                ("X-Original-URI", &f.alice_url),
                ("X-Original-Method", method),
                ("Cookie", &cookie),
            ],
            b"",
        )
        .unwrap()
        .status
    };
    assert_eq!(ask("GET"), 200);
    assert_eq!(ask("HEAD"), 200);
    for method in ["POST", "PUT", "DELETE", "get", ""] {
        assert_eq!(ask(method), 403, "{method}");
    }
});

mod a_regex_location_cannot_shadow_the_media_prefix {
    use super::*;
    use crate::support::app::StoreKind;

    fn run(kind: StoreKind) {
        let s = Stack::start_with(kind, Vec::new(), |conf| {
            conf.replacen(
                "server_name _;",
                "server_name _;\n        location ~ \\.txt$ { return 200 \"shadowed\"; }",
                1,
            )
        });
        let f = fixture(&s);
        assert_eq!(s.get(&f.alice_url, None).status, 401, "{}", s.logs());
        assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
        assert_eq!(s.get(&f.alice_url, Some(&f.alice)).body, ALICE_BYTES);
        // The regex location is live for other URLs.
        assert_eq!(s.get("/elsewhere/x.txt", None).text(), "shadowed");
    }

    #[test]
    fn embedded() {
        run(StoreKind::Embedded)
    }

    #[test]
    fn redis() {
        run(StoreKind::Redis)
    }
}

on_every_store!(unicode_filenames_round_trip, |s| {
    s.user("alice");
    let alice = s.session("alice", 600, &[]);
    // "résumé ü 名前.pdf", percent-encoded in the query.
    let up = s.upload(
        "alice",
        "r%C3%A9sum%C3%A9%20%C3%BC%20%E5%90%8D%E5%89%8D.pdf",
        "application/pdf",
        b"%PDF-1.4",
    );
    let url = up["url"].as_str().unwrap();
    assert_eq!(
        url.rsplit('/').next().unwrap(),
        "r%C3%A9sum%C3%A9%20%C3%BC%20%E5%90%8D%E5%89%8D.pdf"
    );
    let r = s.get(url, Some(&alice));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(
        r.header("Content-Disposition"),
        Some(
            "inline; filename=\"r_sum_ _ __.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%C3%BC%20%E5%90%8D%E5%89%8D.pdf"
        )
    );
});
