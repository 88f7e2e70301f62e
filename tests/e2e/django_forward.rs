//! Issue 23 section 3, end to end: a real Django project on its default database sessions
//! (which mediagate cannot read) adopts mediagate through the `forward` source and the
//! `mediagate` Python package. Logins go through Django's own login form, files are saved
//! through `MediagateStorage`, and `FieldFile.url` is read through real nginx.

use crate::support::app::{ADMIN_TOKEN, Stack, StoreKind};
use crate::support::clients::DjangoForward;

/// What serve.py saves for alice, and what it imports from her django-tools tree.
const DOCUMENT: &[u8] = b"alice's report \x00\xff\r\n end";
const IMPORTED: &[u8] = b"alice's old django-tools file";

/// mediagate asks Django's whoami, forwarding only `sessionid`; Django's port must be in the
/// config before Django starts (Django needs mediagate's admin listener), so both start per
/// try and a taken port means a new try.
fn start(kind: StoreKind, dir: &std::path::Path) -> (Stack, DjangoForward) {
    crate::support::on_a_free_port(|port| {
        let config = format!(
            r#"
[policy]
read_all_roles = ["staff"]

[[session.sources]]
type = "forward"
url = "http://127.0.0.1:{port}/mediagate/whoami"
cookies = ["sessionid"]
user_header = "X-Mediagate-User"
roles_header = "X-Mediagate-Roles"
cache_secs = 30
"#
        );
        // The bound on the whoami call too: roomy enough for runserver on a loaded machine.
        let env = vec![("MEDIAGATE__STORE__TIMEOUT_MS".into(), "1000".into())];
        let s = Stack::start_configured(kind, env, &config, |c| c);
        let admin = format!("http://127.0.0.1:{}", s.app.admin_port);
        DjangoForward::start(dir, port, &admin, ADMIN_TOKEN).map(|d| (s, d))
    })
    .expect("no free port for the Django app")
}

fn adopts(kind: StoreKind) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (s, mut django) = start(kind, dir.path());
    let url = django.state["document_url"]
        .as_str()
        .expect("document_url")
        .to_owned();
    let imported = django.state["imported_url"]
        .as_str()
        .expect("imported_url")
        .to_owned();
    let alice_id = django.state["users"]["alice"]
        .as_str()
        .expect("alice")
        .to_owned();
    let get = |url: &str, cookies: Option<&str>| {
        let headers: Vec<(&str, &str)> = cookies.map(|c| ("Cookie", c)).into_iter().collect();
        s.media("GET", url.as_bytes(), None, &headers)
    };
    let why = |django: &DjangoForward| format!("{}\n--- django ---\n{}", s.logs(), django.log());

    let (alice, bob, staff) = (
        django.login("alice"),
        django.login("bob"),
        django.login("staff"),
    );
    let r = get(&url, Some(&alice));
    assert_eq!(r.status, 200, "{}", why(&django));
    assert_eq!(r.body, DOCUMENT);
    assert_eq!(get(&url, Some(&bob)).status, 403, "{}", why(&django));
    // is_staff → the `staff` role → read_all_roles.
    let r = get(&url, Some(&staff));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, DOCUMENT),
        "{}",
        why(&django)
    );
    assert_eq!(get(&url, None).status, 401);
    assert_eq!(
        get(&url, Some("sessionid=not-a-django-session")).status,
        401
    );

    // The imported django-tools file: its owner only (staff aside).
    let r = get(&imported, Some(&alice));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, IMPORTED),
        "{}",
        why(&django)
    );
    assert_eq!(get(&imported, Some(&bob)).status, 403);
    assert_eq!(get(&imported, None).status, 401);

    // Django's logout deletes the session row; logging alice out everywhere in mediagate
    // ends the answer it kept for 30 s. Together: 401 at once, no waiting for the cache.
    django.logout(&alice);
    let r = s.admin(
        "DELETE",
        &format!("/v1/users/{alice_id}/sessions"),
        &[],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&url, Some(&alice)).status, 401, "{}", why(&django));

    // whoami down: a login mediagate has not seen yet cannot be decided, so 503, never a
    // guess. (bob logs in again first: his first cookie's answer is kept for 30 s.)
    let fresh = django.login("bob");
    django.kill();
    assert_eq!(get(&url, Some(&fresh)).status, 503, "{}", s.logs());
}

#[test]
fn django_adopts_mediagate_through_forward() {
    adopts(StoreKind::Embedded);
}

#[test]
fn django_adopts_mediagate_through_forward_on_redis() {
    adopts(StoreKind::Redis);
}
