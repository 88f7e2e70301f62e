//! Who else may read: grants, visibility, read-all roles, share links; and how files are
//! presented and which uploads are accepted.

use serde_json::json;

use crate::gate::{ALICE_BYTES, fixture};
use crate::support::app::{Stack, StoreKind};

const LINK_KEY: &str = "link-key-0123456789abcdef0123456789";
const NEW_LINK_KEY: &str = "new-link-key-0123456789abcdef012345";

fn file_id(f: &crate::gate::Fixture) -> String {
    f.alice_upload["file_id"].as_str().unwrap().to_owned()
}

on_every_store!(grants_open_a_file_to_the_named_user_only, |s| {
    let f = fixture(&s);
    s.user("carol");
    let carol = s.session("carol", 600, &[]);
    let id = file_id(&f);
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    let r = s.admin("PUT", &format!("/v1/files/{id}/grants/bob"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json(), json!({"file_id": id, "user_id": "bob"}));
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).body, ALICE_BYTES);
    assert_eq!(s.get(&f.alice_url, Some(&carol)).status, 403);
    assert_eq!(s.get(&f.alice_url, None).status, 401);
    assert_eq!(
        s.admin("GET", &format!("/v1/files/{id}"), &[], b"").json()["grants"],
        json!(["bob"])
    );
    assert_eq!(
        s.admin("DELETE", &format!("/v1/files/{id}/grants/bob"), &[], b"")
            .status,
        204
    );
    assert_eq!(s.get(&f.alice_url, Some(&f.bob)).status, 403);
    let r = s.admin("PUT", &format!("/v1/files/{id}/grants/nobody"), &[], b"");
    assert_eq!(r.json()["error"]["code"], "user_not_found");
    let r = s.admin(
        "PUT",
        "/v1/files/0123456789abcdef0123456789abcdef/grants/bob",
        &[],
        b"",
    );
    assert_eq!(r.json()["error"]["code"], "file_not_found");
    assert_eq!(
        s.admin("PUT", &format!("/v1/files/{id}/grants/a%20b"), &[], b"")
            .status,
        400
    );
});

on_every_store!(visibility_and_disposition_are_changed_by_patch, |s| {
    let f = fixture(&s);
    s.user("carol");
    let carol = s.session("carol", 600, &[]);
    let id = file_id(&f);
    let patch = |body: serde_json::Value| s.admin_json("PATCH", &format!("/v1/files/{id}"), body);
    let r = patch(json!({"visibility": "authenticated"}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["visibility"], "authenticated");
    assert_eq!(s.get(&f.alice_url, Some(&carol)).status, 200);
    assert_eq!(s.get(&f.alice_url, None).status, 401);
    patch(json!({"visibility": "public"}));
    assert_eq!(s.get(&f.alice_url, None).body, ALICE_BYTES);
    patch(json!({"visibility": "private"}));
    assert_eq!(s.get(&f.alice_url, None).status, 401);
    assert_eq!(s.get(&f.alice_url, Some(&carol)).status, 403);

    let r = patch(json!({"disposition": "attachment"}));
    assert_eq!(r.json()["disposition"], "attachment");
    let r = s.get(&f.alice_url, Some(&f.alice));
    assert!(
        r.header("Content-Disposition")
            .unwrap()
            .starts_with("attachment;")
    );
    for bad in [
        json!({}),
        json!({"visibility": "everyone"}),
        json!({"owner": "bob"}),
    ] {
        assert_eq!(patch(bad.clone()).status, 400, "{bad}");
    }
    // Active content never goes inline, whatever is asked.
    let html = s.upload(
        "alice",
        "page.html",
        "text/html",
        b"<script>alert(1)</script>",
    );
    let html_id = html["file_id"].as_str().unwrap();
    s.admin_json(
        "PATCH",
        &format!("/v1/files/{html_id}"),
        json!({"disposition": "inline"}),
    );
    let r = s.get(html["url"].as_str().unwrap(), Some(&f.alice));
    assert!(
        r.header("Content-Disposition")
            .unwrap()
            .starts_with("attachment;")
    );
    assert_eq!(r.header("Content-Security-Policy"), Some("sandbox"));
});

#[test]
fn read_all_roles_read_every_file() {
    let env = vec![(
        "MEDIAGATE__POLICY__READ_ALL_ROLES".to_owned(),
        "staff".to_owned(),
    )];
    let s = Stack::start_with(StoreKind::Redis, env, |c| c);
    let f = fixture(&s);
    s.user("carol");
    let staff = s.session("carol", 600, &["staff"]);
    let other = s.session("carol", 600, &["editor"]);
    assert_eq!(s.get(&f.alice_url, Some(&staff)).body, ALICE_BYTES);
    assert_eq!(s.get(&f.alice_url, Some(&other)).status, 403);
}

fn link_stack(kind: StoreKind, keys: &[(&str, &str)]) -> Stack {
    let env = keys
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Stack::start_with(kind, env, |c| c)
}

fn links(kind: StoreKind) {
    let mut s = link_stack(kind, &[("MEDIAGATE__LINKS__SECRET", LINK_KEY)]);
    let f = fixture(&s);
    let id = file_id(&f);
    let r = s.admin_json(
        "POST",
        &format!("/v1/files/{id}/links"),
        json!({"ttl_seconds": 600}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let link = r.json()["url"].as_str().unwrap().to_owned();
    assert!(link.starts_with(&format!("{}?exp=", f.alice_url)), "{link}");
    // Readable without a session, and by anyone holding it.
    assert_eq!(s.get(&link, None).body, ALICE_BYTES);
    assert_eq!(s.get(&link, Some(&f.bob)).body, ALICE_BYTES);

    // Tampered, truncated, reordered, moved: 403.
    let (path, query) = link.split_once('?').unwrap();
    let (exp, sig) = query.split_once('&').unwrap();
    let flipped = format!(
        "{}{}",
        &sig[..sig.len() - 1],
        if sig.ends_with('0') { '1' } else { '0' }
    );
    for bad in [
        format!("{path}?{exp}&{flipped}"),
        format!("{path}?{}&{sig}", exp.replace("exp=", "exp=9")),
        format!("{path}?{exp}&{}", &sig[..sig.len() - 4]),
        format!("{path}?{sig}&{exp}"),
        format!("{path}?{exp}"),
        format!("{path}?{query}&x=1"),
        format!("{}?{query}", f.bob_url),
        format!("{path}?{}", query.to_uppercase()),
    ] {
        let r = s.get(&bad, None);
        assert_eq!(r.status, 403, "{bad}\n{}", s.logs());
        // A bad link is refused even with the owner's session: one spelling, one meaning.
        assert_eq!(s.get(&bad, Some(&f.alice)).status, 403, "{bad}");
    }

    // Expiry: a link lives at least its ttl, though expiry is counted in whole seconds.
    let before = std::time::SystemTime::now();
    let r = s.admin_json(
        "POST",
        &format!("/v1/files/{id}/links"),
        json!({"ttl_seconds": 1}),
    );
    let expires = humantime::parse_rfc3339(r.json()["expires_at"].as_str().unwrap()).unwrap();
    assert!(expires >= before + std::time::Duration::from_secs(1));
    let short = r.json()["url"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&short, None).body, ALICE_BYTES);
    crate::support::eventually(
        "the 1 s link to expire",
        std::time::Duration::from_secs(5),
        || (s.get(&short, None).status == 403).then_some(()),
    );
    for bad in [
        json!({"ttl_seconds": 0}),
        json!({"ttl_seconds": 99_999_999}),
        json!({}),
    ] {
        let r = s.admin_json("POST", &format!("/v1/files/{id}/links"), bad.clone());
        assert_eq!(r.status, 400, "{bad}");
    }

    // Key rotation: the old key still verifies while configured as old.
    s.app.restart_with(vec![
        ("MEDIAGATE__LINKS__SECRET".into(), NEW_LINK_KEY.into()),
        ("MEDIAGATE__LINKS__OLD_SECRETS".into(), LINK_KEY.into()),
    ]);
    s.app.wait_ready();
    assert_eq!(s.get(&link, None).body, ALICE_BYTES);
    s.app.restart_with(vec![
        ("MEDIAGATE__LINKS__SECRET".into(), NEW_LINK_KEY.into()),
        ("MEDIAGATE__LINKS__OLD_SECRETS".into(), String::new()),
    ]);
    s.app.wait_ready();
    assert_eq!(s.get(&link, None).status, 403);

    // Rotating the file token kills every link.
    let r = s.admin_json(
        "POST",
        &format!("/v1/files/{id}/links"),
        json!({"ttl_seconds": 600}),
    );
    let fresh = r.json()["url"].as_str().unwrap().to_owned();
    assert_eq!(s.get(&fresh, None).status, 200);
    s.admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"");
    assert_eq!(s.get(&fresh, None).status, 403);
}

#[test]
fn share_links_on_embedded() {
    links(StoreKind::Embedded);
}

#[test]
fn share_links_on_redis() {
    links(StoreKind::Redis);
}

#[test]
fn links_are_off_without_a_key() {
    let s = Stack::start(StoreKind::Embedded);
    let f = fixture(&s);
    let id = file_id(&f);
    let r = s.admin_json(
        "POST",
        &format!("/v1/files/{id}/links"),
        json!({"ttl_seconds": 60}),
    );
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "links_disabled");
}

/// Old keys verify only beside a current one: links off means every link is refused, so a
/// configuration with old keys alone is refused at start, and a link made while links were on
/// no longer opens once they are off.
#[test]
fn old_link_keys_alone_open_nothing() {
    let mut s = link_stack(
        StoreKind::Embedded,
        &[("MEDIAGATE__LINKS__SECRET", LINK_KEY)],
    );
    let f = fixture(&s);
    let id = file_id(&f);
    let link = s
        .admin_json(
            "POST",
            &format!("/v1/files/{id}/links"),
            json!({"ttl_seconds": 600}),
        )
        .json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.get(&link, None).status, 200);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .arg("serve")
        .env_clear()
        .env("MEDIAGATE__LINKS__OLD_SECRETS", LINK_KEY)
        .env("MEDIAGATE__SERVER__AUTH_LISTEN", "127.0.0.1:0")
        .env("MEDIAGATE__SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .current_dir(s.dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("links.old_secrets: set links.secret too"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    s.app
        .restart_with(vec![("MEDIAGATE__LINKS__SECRET".into(), String::new())]);
    assert_eq!(s.get(&link, None).status, 403, "{}", s.logs());
}

#[test]
fn upload_types_outside_the_allowed_list_get_415_and_leave_nothing() {
    let env = vec![(
        "MEDIAGATE__UPLOAD__ALLOWED_TYPES".to_owned(),
        "image/*,application/pdf".to_owned(),
    )];
    let s = Stack::start_with(StoreKind::Embedded, env, |c| c);
    s.user("alice");
    let r = s.admin(
        "POST",
        "/v1/users/alice/files?filename=x.html",
        &[("Content-Type", "text/html")],
        b"<p>",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "unsupported_media_type");
    let r = s.admin(
        "POST",
        "/v1/users/alice/files?filename=x.svg",
        &[],
        b"<svg/>",
    );
    assert_eq!(r.status, 201, "image/svg+xml is an image/*: {}", r.text());
    s.upload("alice", "x.pdf", "application/pdf", b"%PDF");
    let files: Vec<_> = walk(&s.storage_root);
    assert_eq!(files.len(), 2, "{files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}
