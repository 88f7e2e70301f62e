//! Session sources against real frameworks: the cookie an Express or Django login sets, or a
//! JWT minted by PyJWT, sent through nginx, must read that user's files and only those.

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};

use crate::support::app::{Stack, StoreKind};
use crate::support::clients::{Express, django_login, jwt, rsa_keys};
use crate::support::redis::RedisServer;

const ALICE: &[u8] = b"alice's file";
const BOB: &[u8] = b"bob's file";
const JWT_SECRET: &str = "jwt-secret-0123456789abcdef-0123456789";

/// Users `alice` and `bob` (or the given ids) with one file each; returns their URLs.
fn two_files(s: &Stack, a: &str, b: &str) -> (String, String) {
    s.user(a);
    s.user(b);
    let ua = s.upload(a, "a.txt", "text/plain", ALICE)["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let ub = s.upload(b, "b.txt", "text/plain", BOB)["url"]
        .as_str()
        .unwrap()
        .to_owned();
    (ua, ub)
}

fn with_cookie(s: &Stack, url: &str, cookie: &str) -> crate::support::http::Response {
    s.media("GET", url.as_bytes(), None, &[("Cookie", cookie)])
}

fn express_config(redis_url: Option<&str>) -> String {
    let url = redis_url
        .map(|u| format!("redis_url = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[policy]
read_all_roles = ["staff"]

[[session.sources]]
type = "native"

[[session.sources]]
type = "redis-json"
cookie = "connect.sid"
cookie_format = "express"
secret = ["a-newer-secret", "keyboard cat"]
{url}key = "sess:{{id}}"
user_pointer = "/userId"
roles_pointer = "/roles"
"#
    )
}

fn express(s: &Stack, app: &Express) {
    let (alice_url, bob_url) = two_files(s, "alice", "bob");
    let cookie = app.login("alice", "");
    assert!(cookie.starts_with("connect.sid=s%3A"), "{cookie}");
    let r = with_cookie(s, &alice_url, &cookie);
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE);
    assert_eq!(with_cookie(s, &bob_url, &cookie).status, 403);
    assert_eq!(s.get(&alice_url, None).status, 401);

    // A signature that does not verify, or another app's secret: no session.
    let (name, value) = cookie.split_once('=').unwrap();
    let tampered = format!("{name}={}", value.replacen("s%3A", "s%3AX", 1));
    assert_eq!(with_cookie(s, &alice_url, &tampered).status, 401);
    let unsigned = format!("{name}={}", value.split('.').next().unwrap());
    assert_eq!(with_cookie(s, &alice_url, &unsigned).status, 401);
    let oversized = format!("{name}=s%3A{}", "a".repeat(5000));
    assert_eq!(with_cookie(s, &alice_url, &oversized).status, 401);

    // Roles come from the session record.
    let staff = app.login("carol", "staff");
    s.user("carol");
    assert_eq!(with_cookie(s, &bob_url, &staff).body, BOB);

    // The app logs out: the session is gone from Redis, and so is access.
    app.logout(&cookie);
    assert_eq!(with_cookie(s, &alice_url, &cookie).status, 401);

    // Native sessions still work beside it.
    let native = s.session("bob", 600, &[]);
    assert_eq!(s.get(&bob_url, Some(&native)).body, BOB);
}

#[test]
fn express_sessions_in_the_apps_own_redis() {
    let app_redis_dir = tempfile::tempdir().unwrap();
    let app_redis = RedisServer::start(app_redis_dir.path());
    let config = express_config(Some(&app_redis.url()));
    let s = Stack::start_configured(StoreKind::Embedded, Vec::new(), &config, |c| c);
    // The app signs with the old secret: mediagate's list holds both (secret rotation).
    let app = Express::start(s.dir.path(), &app_redis.url(), "keyboard cat");
    express(&s, &app);
}

#[test]
fn express_sessions_in_the_store_redis() {
    let s = Stack::start_configured(StoreKind::Redis, Vec::new(), &express_config(None), |c| c);
    let url = s.redis.as_ref().unwrap().url();
    let app = Express::start(s.dir.path(), &url, "a-newer-secret,keyboard cat");
    express(&s, &app);
}

#[test]
fn django_cache_sessions() {
    let app_redis_dir = tempfile::tempdir().unwrap();
    let app_redis = RedisServer::start(app_redis_dir.path());
    let config = format!(
        r#"
[[session.sources]]
type = "redis-json"
cookie = "sessionid"
redis_url = "{}"
key = ":1:django.contrib.sessions.cache{{id}}"
user_pointer = "/_auth_user_id"
"#,
        app_redis.url()
    );
    let s = Stack::start_configured(StoreKind::Embedded, Vec::new(), &config, |c| c);
    let (alice_id, alice_cookie) = django_login(s.dir.path(), &app_redis.url(), "alice", false);
    let (bob_id, _) = django_login(s.dir.path(), &app_redis.url(), "bob", false);
    // mediagate's user ids are the application's: Django's primary keys.
    let (alice_url, bob_url) = two_files(&s, &alice_id, &bob_id);
    let cookie = format!("sessionid={alice_cookie}");
    let r = with_cookie(&s, &alice_url, &cookie);
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE);
    assert_eq!(with_cookie(&s, &bob_url, &cookie).status, 403);
    assert_eq!(s.get(&alice_url, None).status, 401);
    assert_eq!(
        with_cookie(
            &s,
            &alice_url,
            "sessionid=notasession0000000000000000000000"
        )
        .status,
        401
    );
    // Native sessions are off: only the configured source counts.
    let native = s.session(&alice_id, 600, &[]);
    assert_eq!(s.get(&alice_url, Some(&native)).status, 401);
    // A record mediagate cannot use is no session, never a crash.
    let key = format!(":1:django.contrib.sessions.cache{}", "x".repeat(32));
    for junk in ["not json", "{\"_auth_user_id\": {\"a\": 1}}", "{}", "[1,2]"] {
        app_redis.command(&["SET", &key, junk]).unwrap();
        let r = with_cookie(&s, &alice_url, &format!("sessionid={}", "x".repeat(32)));
        assert_eq!(r.status, 401, "{junk}");
    }
    // Logging out in Django ends access.
    let (_, gone) = django_login(s.dir.path(), &app_redis.url(), "alice", true);
    assert_eq!(
        with_cookie(&s, &alice_url, &format!("sessionid={gone}")).status,
        401
    );
}

fn jwt_stack(algorithm: &str, key_line: &str) -> Stack {
    let config = format!(
        r#"
[policy]
read_all_roles = ["staff"]

[[session.sources]]
type = "jwt"
cookie = "access_token"
algorithms = ["{algorithm}"]
{key_line}
issuer = "tests"
audience = "mediagate"
roles_claim = "roles"
"#
    );
    Stack::start_configured(StoreKind::Embedded, Vec::new(), &config, |c| c)
}

fn bearer(s: &Stack, url: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    s.media("GET", url.as_bytes(), None, &[("Authorization", &auth)])
        .status
}

/// A token signed by hand: for what PyJWT rightly refuses to make.
fn forge(header: &str, claims: &serde_json::Value, hmac_key: Option<&[u8]>) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = match hmac_key {
        Some(k) => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(k).unwrap();
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        }
        None => String::new(),
    };
    format!("{signing_input}.{sig}")
}

fn claims(sub: &str) -> serde_json::Value {
    let now = mediagate::clock::now();
    serde_json::json!({"sub": sub, "exp": now + 600, "iss": "tests", "aud": "mediagate"})
}

#[test]
fn jwt_hs256_from_pyjwt() {
    let s = jwt_stack("HS256", &format!("secret = \"{JWT_SECRET}\""));
    let (alice_url, bob_url) = two_files(&s, "alice", "bob");
    let mint = |extra: &[&str]| {
        let mut args = vec![
            "--alg",
            "HS256",
            "--key",
            JWT_SECRET,
            "--sub",
            "alice",
            "--iss",
            "tests",
            "--aud",
            "mediagate",
        ];
        args.extend_from_slice(extra);
        jwt(&args)
    };
    let token = mint(&[]);
    let r = with_cookie(&s, &alice_url, &format!("access_token={token}"));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE);
    assert_eq!(bearer(&s, &alice_url, &token), 200);
    assert_eq!(bearer(&s, &bob_url, &token), 403);
    assert_eq!(bearer(&s, &bob_url, &mint(&["--roles", "staff"])), 200);
    // Expired beyond the leeway, not yet valid, wrong audience, issuer or key, no exp: 401.
    assert_eq!(bearer(&s, &alice_url, &mint(&["--exp-in", "-120"])), 401);
    assert_eq!(bearer(&s, &alice_url, &mint(&["--nbf-in", "3600"])), 401);
    assert_eq!(bearer(&s, &alice_url, &mint(&["--no-exp"])), 401);
    let wrong_aud = jwt(&[
        "--alg", "HS256", "--key", JWT_SECRET, "--sub", "alice", "--iss", "tests", "--aud", "other",
    ]);
    assert_eq!(bearer(&s, &alice_url, &wrong_aud), 401);
    let wrong_iss = jwt(&[
        "--alg",
        "HS256",
        "--key",
        JWT_SECRET,
        "--sub",
        "alice",
        "--iss",
        "evil",
        "--aud",
        "mediagate",
    ]);
    assert_eq!(bearer(&s, &alice_url, &wrong_iss), 401);
    // A configured issuer or audience is required: a token without the claim is refused.
    let no_iss = jwt(&[
        "--alg",
        "HS256",
        "--key",
        JWT_SECRET,
        "--sub",
        "alice",
        "--aud",
        "mediagate",
    ]);
    assert_eq!(bearer(&s, &alice_url, &no_iss), 401);
    let no_aud = jwt(&[
        "--alg", "HS256", "--key", JWT_SECRET, "--sub", "alice", "--iss", "tests",
    ]);
    assert_eq!(bearer(&s, &alice_url, &no_aud), 401);
    let neither = jwt(&["--alg", "HS256", "--key", JWT_SECRET, "--sub", "alice"]);
    assert_eq!(bearer(&s, &alice_url, &neither), 401);
    let other_key = jwt(&[
        "--alg",
        "HS256",
        "--key",
        "another-secret-0123456789abcdef-0123",
        "--sub",
        "alice",
        "--iss",
        "tests",
        "--aud",
        "mediagate",
    ]);
    assert_eq!(bearer(&s, &alice_url, &other_key), 401);
    // alg=none, unsigned: refused.
    let none = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims("alice"), None);
    assert_eq!(bearer(&s, &alice_url, &none), 401);
    assert_eq!(bearer(&s, &alice_url, "not.a.jwt"), 401);
    assert_eq!(bearer(&s, &alice_url, &"a".repeat(5000)), 401);
}

#[test]
fn jwt_rs256_from_pyjwt_and_no_algorithm_confusion() {
    let keys = tempfile::tempdir().unwrap();
    let (private, public) = rsa_keys(keys.path());
    let s = jwt_stack(
        "RS256",
        &format!("public_key_file = \"{}\"", public.display()),
    );
    let (alice_url, _) = two_files(&s, "alice", "bob");
    let private = private.to_string_lossy().into_owned();
    let token = jwt(&[
        "--alg",
        "RS256",
        "--key",
        &private,
        "--sub",
        "alice",
        "--iss",
        "tests",
        "--aud",
        "mediagate",
    ]);
    assert_eq!(bearer(&s, &alice_url, &token), 200, "{}", s.logs());
    let expired = jwt(&[
        "--alg",
        "RS256",
        "--key",
        &private,
        "--sub",
        "alice",
        "--iss",
        "tests",
        "--aud",
        "mediagate",
        "--exp-in",
        "-120",
    ]);
    assert_eq!(bearer(&s, &alice_url, &expired), 401);
    // The classic confusion: an HS256 token whose HMAC key is the RSA public key.
    let pem = std::fs::read(&public).unwrap();
    let confused = forge(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims("alice"),
        Some(&pem),
    );
    assert_eq!(bearer(&s, &alice_url, &confused), 401);
}

fn start_error(config: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mediagate.toml"), config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("MEDIAGATE__SERVER__AUTH_LISTEN", "127.0.0.1:0")
        .env("MEDIAGATE__SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{config}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

#[test]
fn bad_source_configuration_stops_start_up_with_one_line() {
    let e = start_error("[[session.sources]]\ntype = \"ldap\"\n");
    assert!(e.contains("ldap"), "{e}");
    let e = start_error(
        "[[session.sources]]\ntype = \"redis-json\"\ncookie = \"c\"\ncookie_format = \"express\"\nredis_url = \"redis://127.0.0.1:1/\"\nkey = \"sess:{id}\"\nuser_pointer = \"/u\"\n",
    );
    assert!(
        e.contains("session.sources[0]") && e.contains("secret"),
        "{e}"
    );
    let e = start_error(
        "[[session.sources]]\ntype = \"jwt\"\nalgorithms = [\"RS256\"]\npublic_key_file = \"/nonexistent.pem\"\n",
    );
    assert!(e.contains("/nonexistent.pem"), "{e}");
    let e = start_error(&format!(
        "[[session.sources]]\ntype = \"jwt\"\nalgorithms = [\"HS256\", \"RS256\"]\nsecret = \"{JWT_SECRET}\"\n"
    ));
    assert!(e.contains("one kind of key"), "{e}");
    let e = start_error(
        "[[session.sources]]\ntype = \"jwt\"\nalgorithms = [\"none\"]\nsecret = \"x\"\n",
    );
    assert!(e.contains("none"), "{e}");
    let e = start_error(
        "[[session.sources]]\ntype = \"redis-json\"\ncookie = \"c\"\nkey = \"sess:{id}\"\nuser_pointer = \"/u\"\n",
    );
    assert!(e.contains("redis_url"), "{e}");
}
