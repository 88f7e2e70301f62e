//! Hostile paths through real nginx. Each case asserts the exact status for the owner's own
//! session; for every caller, no case ever yields another user's bytes or a file outside the
//! storage root. Expected statuses come from where the request stops: 400 when nginx rejects
//! the request line, 404 when nginx's normalized URI leaves the media prefix (or names an
//! internal location), 403 when mediagate refuses the raw URI, 200 only for spellings of the
//! owner's own URL that nginx and mediagate read as the same file.

use crate::gate::{ALICE_BYTES, BOB_BYTES, Fixture, fixture, parts};
use crate::support::app::Stack;

const OUTSIDE: &[u8] = b"TOP-SECRET-OUTSIDE-THE-STORAGE-ROOT";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn catalogue(u: &str, f: &str, n: &str, bob_f: &str, sp: &str) -> Vec<(Vec<u8>, u16)> {
    let up = u.to_uppercase();
    let fp = f.to_uppercase();
    let cases: Vec<(String, u16)> = vec![
        // The control, and spellings of the same URL.
        (format!("/media/{u}/{f}/{n}"), 200),
        (format!("/media/{u}/{f}/%72eport%20Q1.txt"), 200),
        (format!("/media/{u}/{f}/{n}?"), 200),
        (format!("/media/{u}/{f}/{n}?../../etc/passwd"), 200),
        (format!("http://127.0.0.1/media/{u}/{f}/{n}"), 200),
        // Dot segments, raw.
        (format!("/media/{u}/{f}/../../../etc/passwd"), 404),
        (format!("/media/{u}/{f}/../{n}"), 403),
        (format!("/media/{u}/{f}/./{n}"), 403),
        (format!("/media/{u}/./{f}/{n}"), 403),
        (format!("/media/{u}/{f}/{n}/.."), 403),
        (format!("/media/{u}/{f}/.."), 403),
        (format!("/media/{u}/{f}/."), 403),
        ("/media/../../secret.txt".to_string(), 400),
        // Dot segments, percent-encoded and double-encoded.
        (format!("/media/{u}/{f}/%2e%2e/%2e%2e/x"), 403),
        (
            format!("/media/{u}/{f}/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd"),
            403,
        ),
        (format!("/media/{u}/{f}/..%2f..%2fsecret.txt"), 403),
        (format!("/media/{u}/{f}/%2e"), 403),
        (format!("/media/{u}/{f}/%252e%252e"), 403),
        (format!("/media/{u}/{f}/%252e%252e%252fsecret.txt"), 403),
        (format!("/media/{u}/{f}/report%2520Q1.txt"), 403),
        // Encoded slashes and backslashes.
        (format!("/media/{u}/{f}/{n}%2f"), 403),
        (format!("/media/{u}/{f}%2f{n}"), 403),
        (format!("/media/{u}/{f}/..\\..\\secret.txt"), 403),
        (format!("/media/{u}/{f}/%5c..%5csecret.txt"), 403),
        (format!("/media/{u}/{f}/{n}\\"), 403),
        // NUL and control bytes.
        (format!("/media/{u}/{f}/{n}%00"), 400),
        (format!("/media/{u}/{f}/{n}%00.jpg"), 400),
        (format!("/media/{u}/{f}/{n}%0d%0aSet-Cookie:%20x=1"), 403),
        (format!("/media/{u}/{f}/{n}%7f"), 403),
        (format!("/media/{u}/{f}/{n}%09"), 403),
        // Overlong and invalid UTF-8.
        (format!("/media/{u}/{f}/%C0%AE%C0%AE"), 403),
        (format!("/media/{u}/{f}/%C0%AF"), 403),
        (format!("/media/{u}/{f}/%E0%80%AF"), 403),
        (format!("/media/{u}/{f}/%C3%28"), 403),
        (format!("/media/{u}/{f}/%F0%9F"), 403),
        (format!("/media/{u}/{f}/%ED%A0%80"), 403),
        // Bad percent sequences.
        (format!("/media/{u}/{f}/{n}%"), 400),
        (format!("/media/{u}/{f}/{n}%zz"), 400),
        // Empty segments and //.
        (format!("/media/{u}//{f}/{n}"), 403),
        (format!("/media//{u}/{f}/{n}"), 403),
        (format!("/media/{u}/{f}//{n}"), 403),
        (format!("//media/{u}/{f}/{n}"), 403),
        (format!("/media/{u}/{f}/{n}/"), 403),
        (format!("/media/{u}/{f}/"), 403),
        (format!("/media/{u}/{f}"), 403),
        (format!("/media/{u}/"), 403),
        ("/media/".to_string(), 403),
        ("/media".to_string(), 404),
        // ;params, # and %23, ? tricks.
        (format!("/media/{u}/{f}/{n};x=1"), 403),
        (format!("/media/{u}/{f};x=1/{n}"), 403),
        (format!("/media/{u}/{f}/{n}%3bx=1"), 403),
        (format!("/media/{u}/{f}/{n}%23"), 403),
        (format!("/media/{u}/{f}/{n}#frag"), 403),
        (format!("/media/{u}/{f}/{n}%3F"), 403),
        (format!("/media/{u}/{f}%3F/{n}"), 403),
        // Case changes.
        (format!("/MEDIA/{u}/{f}/{n}"), 404),
        (format!("/Media/{u}/{f}/{n}"), 404),
        (format!("/media/{up}/{f}/{n}"), 403),
        (format!("/media/{u}/{fp}/{n}"), 403),
        (format!("/media/{u}/{f}/REPORT%20Q1.TXT"), 403),
        (format!("/media/{u}/{f}/report%20q1.txt"), 403),
        // Tokens of the wrong length or alphabet.
        (format!("/media/{}/{f}/{n}", &u[1..]), 403),
        (format!("/media/{u}0/{f}/{n}"), 403),
        (format!("/media/{u}/{}/{n}", &f[1..]), 403),
        (format!("/media/{}g/{f}/{n}", &u[1..]), 403),
        (format!("/media/%3{}/{f}/{n}", &u[1..]), 403),
        // Someone else's file under this user's token, and trailing junk.
        (format!("/media/{u}/{bob_f}/notes.txt"), 403),
        (format!("/media/{u}/{f}/notes.txt"), 403),
        (format!("/media/{u}/{f}/{n}%20"), 403),
        (format!("/media/{u}/{f}/{n}."), 403),
        // The internal locations, directly and by traversal.
        (format!("/_mediagate/files/{sp}"), 404),
        (format!("/media/../_mediagate/files/{sp}"), 404),
        (format!("/media/%2e%2e/_mediagate/files/{sp}"), 404),
        ("/_mediagate/auth".to_string(), 404),
        ("/_mediagate/files/".to_string(), 404),
        (
            format!("/media/{u}/{f}/../../../_mediagate/files/{sp}"),
            404,
        ),
    ];
    let mut out: Vec<(Vec<u8>, u16)> = cases
        .into_iter()
        .map(|(t, s)| (t.into_bytes(), s))
        .collect();
    // Raw bytes nginx refuses in a request line.
    for raw in [&b"\0"[..], b"\x01", b"\x7f", b" x"] {
        let mut t = format!("/media/{u}/{f}/{n}").into_bytes();
        t.extend_from_slice(raw);
        out.push((t, 400));
    }
    // Raw bytes above ASCII, which nginx passes on: refused as a bad path, not mistaken for a
    // subrequest without X-Original-URI.
    for raw in [&b"\x80"[..], b"\xff", b"\xc3\xa9"] {
        let mut t = format!("/media/{u}/{f}/").into_bytes();
        t.extend_from_slice(raw);
        out.push((t, 403));
    }
    out
}

on_every_store!(hostile_paths_never_leak, |s| {
    let f = fixture(&s);
    std::fs::write(s.dir.path().join("secret.txt"), OUTSIDE).unwrap();
    let (u, fi, n) = parts(&f.alice_url);
    let (_, bob_f, _) = parts(&f.bob_url);
    let file_id = f.alice_upload["file_id"].as_str().unwrap();
    let sp = format!("{}/{}", &file_id[..2], file_id);
    let cases = catalogue(&u, &fi, &n, &bob_f, &sp);
    assert!(cases.len() >= 80, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for (target, expected) in &cases {
        let shown = String::from_utf8_lossy(target).into_owned();
        for (who, session) in [
            ("alice", Some(f.alice.as_str())),
            ("bob", Some(f.bob.as_str())),
            ("anonymous", None),
        ] {
            let r = s.media("GET", target, session, &[]);
            assert!(
                !contains(&r.body, OUTSIDE),
                "{shown} as {who}: outside file served"
            );
            assert!(
                !contains(&r.body, BOB_BYTES),
                "{shown} as {who}: bob's bytes served"
            );
            if who == "alice" {
                if r.status != *expected {
                    wrong.push(format!("{shown:?}: expected {expected}, got {}", r.status));
                }
                if r.status == 200 {
                    assert_eq!(r.body, ALICE_BYTES, "{shown}");
                }
            } else {
                assert_ne!(r.status, 200, "{shown} as {who}");
                assert!(
                    !contains(&r.body, ALICE_BYTES),
                    "{shown} as {who}: alice's bytes served"
                );
            }
        }
    }
    assert!(
        !s.app.log().contains("without X-Original-URI"),
        "a hostile path was taken for a misconfigured nginx\n{}",
        s.logs()
    );
    assert!(
        wrong.is_empty(),
        "{} cases differ:\n{}\n{}",
        wrong.len(),
        wrong.join("\n"),
        s.logs()
    );
});

/// Replaces alice's stored file by a symlink to a secret outside the storage root.
fn plant_symlink_over_alices_file(s: &Stack, f: &Fixture) {
    let outside = s.dir.path().join("secret.txt");
    std::fs::write(&outside, OUTSIDE).unwrap();
    let file_id = f.alice_upload["file_id"].as_str().unwrap();
    let stored = s.storage_root.join(&file_id[..2]).join(file_id);
    std::fs::remove_file(&stored).unwrap();
    std::os::unix::fs::symlink(&outside, &stored).unwrap();
}

on_every_store!(a_symlink_under_the_storage_root_is_not_followed, |s| {
    let f = fixture(&s);
    plant_symlink_over_alices_file(&s, &f);
    let r = s.get(&f.alice_url, Some(&f.alice));
    assert_eq!(r.status, 403, "{}", s.logs());
    assert!(!contains(&r.body, OUTSIDE));
});

// nginx keeps served files open (`open_file_cache`, per worker): a symlink planted over a file
// it already holds must not be followed either, neither from a cached descriptor nor after
// revalidation. Several requests each time, so that every worker has served and cached it.
on_every_store!(a_symlink_planted_over_a_served_file_is_not_followed, |s| {
    let f = fixture(&s);
    let original = s.get(&f.alice_url, Some(&f.alice));
    assert_eq!(original.status, 200, "{}", s.logs());
    for _ in 0..10 {
        assert_eq!(s.get(&f.alice_url, Some(&f.alice)).status, 200);
    }
    plant_symlink_over_alices_file(&s, &f);
    // Within the validation period a worker may still answer from the descriptor it holds: the
    // original bytes, never the link's target.
    for _ in 0..10 {
        let r = s.get(&f.alice_url, Some(&f.alice));
        assert!(!contains(&r.body, OUTSIDE));
        assert!(r.status == 403 || (r.status == 200 && r.body == original.body));
    }
    // After it (`open_file_cache_valid 1s`), the link is found and refused.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    for _ in 0..10 {
        let r = s.get(&f.alice_url, Some(&f.alice));
        assert_eq!(r.status, 403, "{}", s.logs());
        assert!(!contains(&r.body, OUTSIDE));
    }
});

/// Request headers, the expected status, and what the case is about.
type HeaderCase<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);

on_every_store!(hostile_headers_and_cookies_change_nothing, |s| {
    let f = fixture(&s);
    let alice_cookie = format!("mediagate_session={}", f.alice);
    let bob_cookie = format!("mediagate_session={}", f.bob);
    let both = format!("{alice_cookie}; {bob_cookie}");
    let twice = format!("{alice_cookie}; {alice_cookie}");
    let junk_then_alice = format!("x=1; mediagate_session=; {alice_cookie}");
    let big_cookie = format!("pad={}; {alice_cookie}", "p".repeat(9000));
    let big_header = "h".repeat(9000);
    let cases: Vec<HeaderCase> = vec![
        // Several session values: cookie tossing. None counts.
        (vec![("Cookie", &both)], 401, "alice and bob cookies"),
        (
            vec![("Cookie", &junk_then_alice)],
            401,
            "an empty and a real value",
        ),
        (vec![("Cookie", &twice)], 200, "the same value twice"),
        // Oversized cookies and headers: nginx refuses the request.
        (vec![("Cookie", &big_cookie)], 400, "a 9 KB cookie"),
        (
            vec![("X-Big", &big_header), ("Cookie", &alice_cookie)],
            400,
            "a 9 KB header",
        ),
        // Headers a client might hope mediagate or nginx trusts.
        (vec![("X-Original-URI", &f.bob_url)], 401, "X-Original-URI"),
        (
            vec![
                ("X-Original-Method", "GET"),
                ("X-Original-Remote-Addr", "10.0.0.1"),
            ],
            401,
            "X-Original-*",
        ),
        (
            vec![
                ("X-Forwarded-For", "127.0.0.1"),
                ("X-Forwarded-User", "alice"),
                ("X-Real-IP", "127.0.0.1"),
            ],
            401,
            "X-Forwarded-*",
        ),
        (
            vec![
                ("X-Media-Path", "../../etc/passwd"),
                ("X-Media-Disposition", "inline"),
            ],
            401,
            "X-Media-*",
        ),
        (
            vec![
                ("Authorization", "Bearer x"),
                ("X-Auth-Request-User", "alice"),
            ],
            401,
            "auth headers",
        ),
        (
            vec![("Cookie", &bob_cookie), ("X-Original-URI", &f.bob_url)],
            403,
            "bob pointing at his own file",
        ),
    ];
    for (headers, expected, what) in &cases {
        let r = s.media("GET", f.alice_url.as_bytes(), None, headers);
        assert_eq!(r.status, *expected, "{what}\n{}", s.logs());
        if *expected != 200 {
            assert!(!contains(&r.body, ALICE_BYTES), "{what}");
        }
    }
});

on_every_store!(filenames_never_inject_headers, |s| {
    s.user("alice");
    let alice = s.session("alice", 600, &[]);
    for (query, fallback) in [
        ("a%22b.txt", "a_b.txt"),
        ("a%0D%0AX-Injected%3A%201.txt", "aX-Injected: 1.txt"),
        ("%22%3B%20filename%3Devil.exe", "_; filename=evil.exe"),
        ("%E2%80%AEtxt.exe", "_txt.exe"),
        // A backslash is a path separator: only what follows the last one is kept.
        ("%5C%22quoted%5C%22.txt", "_.txt"),
    ] {
        let up = s.upload("alice", query, "text/plain", b"x");
        let r = s.get(up["url"].as_str().unwrap(), Some(&alice));
        assert_eq!(r.status, 200, "{query}");
        assert!(r.header("X-Injected").is_none(), "{query}");
        assert_eq!(r.headers_named("Content-Disposition").len(), 1, "{query}");
        let cd = r.header("Content-Disposition").unwrap();
        assert!(
            cd.starts_with(&format!(
                "inline; filename=\"{fallback}\"; filename*=UTF-8''"
            )),
            "{query}: {cd}"
        );
    }
});
