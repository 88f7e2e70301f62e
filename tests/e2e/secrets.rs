//! Logs never contain a session id, a URL token, a link signature or the admin token.

use serde_json::json;

use crate::gate::fixture;
use crate::support::app::{ADMIN_TOKEN, Stack, StoreKind};

#[test]
fn logs_of_a_full_run_hold_no_secret() {
    let env = vec![(
        "MEDIAGATE__LINKS__SECRET".to_owned(),
        "link-key-0123456789abcdef0123456789".to_owned(),
    )];
    let s = Stack::start_with(StoreKind::Redis, env, |c| c);
    let f = fixture(&s);
    let id = f.alice_upload["file_id"].as_str().unwrap().to_owned();
    let mut secrets = vec![
        ADMIN_TOKEN.to_owned(),
        f.alice.clone(),
        f.bob.clone(),
        "link-key-0123456789abcdef0123456789".to_owned(),
    ];
    let (ut, ft, _) = crate::gate::parts(&f.alice_url);
    secrets.extend([ut, ft]);
    // Every kind of request, allowed, denied and malformed.
    s.get(&f.alice_url, Some(&f.alice));
    s.get(&f.alice_url, Some(&f.bob));
    s.get(&f.alice_url, None);
    s.get(&format!("{}x", f.alice_url), Some(&f.alice));
    let link = s
        .admin_json(
            "POST",
            &format!("/v1/files/{id}/links"),
            json!({"ttl_seconds": 60}),
        )
        .json()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    s.get(&link, None);
    s.get(&format!("{link}0"), None);
    secrets.push(link.rsplit("sig=").next().unwrap().to_owned());
    let rotated = s
        .admin("POST", &format!("/v1/files/{id}/rotate-token"), &[], b"")
        .json();
    secrets.push(rotated["file_token"].as_str().unwrap().to_owned());
    s.admin("DELETE", &format!("/v1/sessions/{}", f.bob), &[], b"");
    let wrong = crate::support::http::send(
        s.app.admin_port,
        "GET",
        b"/v1/events",
        &[("Authorization", "Bearer wrong-but-secret-ish")],
        b"",
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    let log = s.app.log();
    assert!(
        log.contains("Decided."),
        "the run logged at debug level:\n{log}"
    );
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "the log holds a secret ({}…)",
            &secret[..6]
        );
    }
    assert!(!log.contains("wrong-but-secret-ish"));
    // nginx's access log, in the format `nginx-config` sets, has the paths but no query: no
    // link signature.
    let sig = link.rsplit("sig=").next().unwrap();
    let access = crate::support::eventually(
        "nginx's access log",
        std::time::Duration::from_secs(5),
        || {
            let a = s.nginx.access_log();
            a.contains("GET /media/").then_some(a)
        },
    );
    assert!(
        !access.contains(sig) && !access.contains("sig="),
        "{access}"
    );
}
