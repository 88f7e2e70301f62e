//! The auth listener on a unix socket: nginx decides through it exactly as over TCP, the socket
//! gets its mode, a second server on the same path is refused, and a stale socket left by a
//! killed server is replaced at the next start.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::app::{Stack, StoreKind};

/// nginx's upstream pointed at the socket instead of the TCP port the harness renders.
pub fn over_socket(config: String, socket: &str) -> String {
    config
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("server 127.0.0.1:") && l.contains("max_fails=0") {
                format!("        server unix:{socket} max_fails=0;")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn nginx_decides_over_a_unix_socket() {
    let sockets = tempfile::tempdir().expect("tempdir");
    // nginx's workers run as another user: they must reach the socket.
    std::fs::set_permissions(sockets.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let socket = sockets.path().join("auth.sock");
    let socket_str = socket.to_string_lossy().into_owned();
    let listen = format!("unix:{socket_str}");
    let env = vec![
        ("MEDIAGATE__SERVER__AUTH_LISTEN".to_owned(), listen.clone()),
        (
            "MEDIAGATE__SERVER__AUTH_SOCKET_MODE".to_owned(),
            "0666".to_owned(),
        ),
    ];
    let mut s = Stack::start_with(StoreKind::Redis, env, |c| over_socket(c, &socket_str));
    let conf = std::fs::read_to_string(s.dir.path().join("nginx/nginx.conf")).expect("nginx.conf");
    assert!(
        conf.contains(&format!("server unix:{socket_str} max_fails=0;")),
        "{conf}"
    );
    let mode = std::fs::metadata(&socket)
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o666);

    s.user("alice");
    s.user("bob");
    let url = s.upload("alice", "a.txt", "text/plain", b"over the socket")["url"]
        .as_str()
        .expect("url")
        .to_owned();
    let alice = s.session("alice", 600, &[]);
    let bob = s.session("bob", 600, &[]);
    let r = s.get(&url, Some(&alice));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"over the socket"[..]),
        "{}",
        s.logs()
    );
    assert_eq!(s.get(&url, Some(&bob)).status, 403);
    assert_eq!(s.get(&url, None).status, 401);

    // A second server on the same socket is refused, and the first keeps answering.
    let other = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .arg("serve")
        .current_dir(other.path())
        .env_clear()
        .env("MEDIAGATE__SERVER__AUTH_LISTEN", &listen)
        .env("MEDIAGATE__SERVER__ADMIN_LISTEN", "127.0.0.1:0")
        .env(
            "MEDIAGATE__ADMIN__TOKEN",
            "a-second-server-admin-token-0123456789",
        )
        .env(
            "MEDIAGATE__STORE__URL",
            format!("embedded:{}/store.db", other.path().display()),
        )
        .env("MEDIAGATE__STORAGE__ROOT", other.path().join("media"))
        .output()
        .expect("run a second mediagate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("a live server already listens there"),
        "{stderr}"
    );
    assert_eq!(s.get(&url, Some(&alice)).status, 200);

    // Killed, it leaves its socket behind; the next start replaces it.
    s.app.kill();
    assert!(socket.exists());
    assert_eq!(s.get(&url, Some(&alice)).status, 503);
    s.app.restart();
    let r = s.get(&url, Some(&alice));
    assert_eq!(r.status, 200, "{}", s.logs());
}

#[test]
fn nginx_config_renders_a_unix_upstream() {
    let out = Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .args(["nginx-config", "--part", "http"])
        .args(["--auth-upstream", "unix:/run/mediagate/auth.sock"])
        .env_clear()
        .output()
        .expect("run nginx-config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("server unix:/run/mediagate/auth.sock max_fails=0;"),
        "{text}"
    );
    // And from the configuration alone.
    let out = Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .args(["nginx-config", "--part", "http"])
        .env_clear()
        .env(
            "MEDIAGATE__SERVER__AUTH_LISTEN",
            "unix:/run/mediagate/auth.sock",
        )
        .output()
        .expect("run nginx-config");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("server unix:/run/mediagate/auth.sock max_fails=0;"),
        "{text}"
    );
}
