//! The Helm chart, rendered offline by the real Helm engine: it lints, every manifest is valid
//! Kubernetes, broken values are refused, and the nginx.conf it renders is the same snippet
//! `mediagate nginx-config` prints, passing `nginx -t` and the gate's own checks.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::gate::{ALICE_BYTES, Fixture, fixture};
use crate::support::app::{Stack, StoreKind};
use crate::support::nginx::Nginx;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs check_chart.py; returns (success, stdout, stderr).
pub fn chart(args: &[&str]) -> (bool, String, String) {
    let python = repo().join("target/clients-venv/bin/python");
    assert!(
        python.exists(),
        "the chart tools are not installed: run scripts/clients.sh (make test does)"
    );
    let out = Command::new(python)
        .arg(repo().join("tests/clients/helm/check_chart.py"))
        .args(args)
        .output()
        .expect("run check_chart.py");
    let err: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.contains("found symbolic link"))
        .collect::<Vec<_>>()
        .join("\n");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        err,
    )
}

pub fn chart_dir() -> String {
    repo().join("helm/mediagate").to_string_lossy().into_owned()
}

#[test]
fn the_chart_lints_renders_and_validates() {
    let (ok, out, err) = chart(&["check", &chart_dir()]);
    assert!(ok, "{out}\n{err}");
    for kind in [
        "Deployment",
        "NetworkPolicy",
        "ConfigMap",
        "PersistentVolumeClaim",
    ] {
        assert!(out.contains(kind), "{out}");
    }
    for kind in [
        "Job",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
    ] {
        assert!(
            out.lines()
                .any(|l| l.starts_with("production") && l.contains(kind)),
            "{out}"
        );
    }
}

#[test]
fn the_chart_refuses_broken_values() {
    for (values, expected) in [
        (json!({"replicaCount": 2}), "shared store"),
        (json!({"autoscaling": {"enabled": true}}), "shared store"),
        (json!({"admin": {"token": "short"}}), "admin"),
        (json!({"store": {"url": "mysql://x"}}), "url"),
        (json!({"mediaPrefix": "media"}), "mediaPrefix"),
        (json!({"unknownKey": 1}), "unknownKey"),
        (
            json!({"nginx": {"decisionCacheSeconds": 61}}),
            "decisionCacheSeconds",
        ),
        (
            json!({"store": {"cache": {"enabled": true}}}),
            "needs a Redis store",
        ),
    ] {
        let (ok, _, err) = chart(&["render", &chart_dir(), &values.to_string()]);
        assert!(!ok, "{values} rendered");
        assert!(err.contains(expected), "{values}: {err}");
    }
    for url in [
        "redis://redis:6379/0",
        "redis+sentinel://s1:26379/mymaster",
        "redis+cluster://c1:6379,c2:6379",
    ] {
        let cached = json!({"store": {"url": url, "cache": {"enabled": true}}});
        let (ok, out, err) = chart(&["render", &chart_dir(), &cached.to_string()]);
        assert!(ok, "{url}: {err}");
        assert!(out.contains("cache = true"), "{out}");
    }
    // Every Redis form the binary takes, the chart takes too.
    for url in [
        "redis://redis:6379/0",
        "rediss://redis:6380/0",
        "redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0",
        "redis+cluster://c1:6379,c2:6379,c3:6379",
    ] {
        let values = json!({"replicaCount": 2, "store": {"url": url}});
        let (ok, _, err) = chart(&["render", &chart_dir(), &values.to_string()]);
        assert!(ok, "{url}: {err}");
    }
}

#[test]
fn the_chart_is_secure_by_default() {
    let (ok, out, err) = chart(&["render", &chart_dir(), &json!({}).to_string()]);
    assert!(ok, "{err}");
    let docs: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    for c in pod["containers"].as_array().unwrap() {
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], true,
            "{}",
            c["name"]
        );
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
        assert!(c["resources"]["limits"].is_object(), "{}", c["name"]);
    }
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert!(
        annotations["checksum/config"].is_string() && annotations["checksum/secret"].is_string()
    );
    let admin = docs
        .iter()
        .find(|d| {
            d["kind"] == "Service" && d["metadata"]["name"].as_str().unwrap().ends_with("-admin")
        })
        .unwrap();
    assert_eq!(admin["spec"]["type"], "ClusterIP");
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    assert!(
        config["data"]["mediagate.toml"]
            .as_str()
            .unwrap()
            .contains("auth_listen = \"unix:/run/mediagate/auth.sock\"")
    );
}

pub fn normalized(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// What `mediagate nginx-config` prints for the chart's layout, with nginx's decision cache set
/// to `cache_secs`.
fn printed(port: u16, storage_root: &Path, auth: u16, dir: &Path, cache_secs: u32) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .args(["nginx-config", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--storage-root", &storage_root.to_string_lossy()])
        .args(["--auth-upstream", &format!("127.0.0.1:{auth}")])
        .args(["--error-log", "stderr", "--access-log", "/dev/stdout"])
        .env(
            "MEDIAGATE__NGINX__DECISION_CACHE_SECS",
            cache_secs.to_string(),
        )
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_charts_decision_cache_is_the_same_snippet() {
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let values = json!({
        "nginx": {"bindAddress": "127.0.0.1", "port": 8080, "decisionCacheSeconds": 5},
        "authPort": 9090,
        "authSocket": "",
        "persistence": {"mountPath": dir.path().to_string_lossy()},
    });
    let (ok, conf, err) = chart(&["nginx", &chart_dir(), &values.to_string()]);
    assert!(ok, "{err}");
    assert!(conf.contains("proxy_cache mediagate_decisions;"), "{conf}");
    assert_eq!(
        normalized(&conf),
        normalized(&printed(8080, &media, 9090, dir.path(), 5))
    );
    Nginx::check(&dir.path().join("nginx-t"), &conf).unwrap();
}

#[test]
fn the_charts_nginx_conf_is_the_snippet_and_runs_the_gate() {
    let s = Stack::start(StoreKind::Embedded);
    let f = fixture(&s);
    let auth = s.app.auth_port;
    let mount = s.dir.path().to_string_lossy().into_owned();
    let render = |port: u16| {
        let values = json!({
            "nginx": {"bindAddress": "127.0.0.1", "port": port},
            "authPort": auth,
            "authSocket": "",
            "persistence": {"mountPath": mount},
        });
        let (ok, conf, err) = chart(&["nginx", &chart_dir(), &values.to_string()]);
        assert!(ok, "{err}");
        conf
    };
    let nginx = Nginx::start(&s.dir.path().join("chart-nginx"), render);
    // The same text `mediagate nginx-config` prints for the same values: one source.
    let conf = render(nginx.port);
    let printed = printed(nginx.port, &s.storage_root, auth, s.dir.path(), 0);
    assert_eq!(normalized(&conf), normalized(&printed));
    Nginx::check(&s.dir.path().join("chart-nginx-t"), &conf).unwrap();

    let get = |url: &str, session: Option<&str>| {
        let cookie = session.map(|c| format!("mediagate_session={c}"));
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
        crate::support::http::send(nginx.port, "GET", url.as_bytes(), &headers, b"").unwrap()
    };
    let r = get(&f.alice_url, Some(&f.alice));
    assert_eq!(r.status, 200, "{}", s.logs());
    assert_eq!(r.body, ALICE_BYTES);
    assert_eq!(get(&f.alice_url, None).status, 401);
    assert_eq!(get(&f.alice_url, Some(&f.bob)).status, 403);
    assert_eq!(
        get(&format!("{}/..", f.alice_url), Some(&f.alice)).status,
        403
    );
    assert_eq!(get("/_mediagate/auth", None).status, 404);
    let id = f.alice_upload["file_id"].as_str().unwrap();
    assert_eq!(
        get(&format!("/_mediagate/files/{}/{id}", &id[..2]), None).status,
        404
    );
}

#[test]
fn the_charts_mediagate_toml_loads_in_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    for values in [
        json!({}),
        json!({"store": {"url": "redis://redis:6379/0", "cache": {"enabled": true}}, "replicaCount": 2}),
        json!({"store": {"url": "redis+cluster://c1:6379,c2:6379"}, "replicaCount": 3}),
        json!({"nginx": {"decisionCacheSeconds": 5}}),
    ] {
        let (ok, out, err) = chart(&["render", &chart_dir(), &values.to_string()]);
        assert!(ok, "{err}");
        let docs: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
        let toml = config["data"]["mediagate.toml"].as_str().unwrap();
        let path = dir.path().join("mediagate.toml");
        std::fs::write(&path, toml).unwrap();
        // The store URL comes from the Secret as an environment variable in the pod.
        let url = values["store"]["url"]
            .as_str()
            .unwrap_or("embedded:/tmp/x.db");
        let loaded = Command::new(env!("CARGO_BIN_EXE_mediagate"))
            .arg("--config")
            .arg(&path)
            .args(["nginx-config", "--part", "http"])
            .env("MEDIAGATE__STORE__URL", url)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            loaded.status.success(),
            "{values}: {}\n{toml}",
            String::from_utf8_lossy(&loaded.stderr)
        );
    }
}

/// The chart's default hop: nginx and mediagate on a unix socket both containers mount. The
/// socket named in the values reaches both halves of the chart (the listener in mediagate.toml,
/// the upstream in nginx.conf), and a gate built from them decides through it.
#[test]
fn the_charts_socket_hop_runs_the_gate() {
    let sockets = tempfile::tempdir().unwrap();
    // nginx's workers run as another user: they must reach the socket.
    std::fs::set_permissions(sockets.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = sockets
        .path()
        .join("auth.sock")
        .to_string_lossy()
        .into_owned();
    let (ok, out, err) = chart(&[
        "render",
        &chart_dir(),
        &json!({"authSocket": socket}).to_string(),
    ]);
    assert!(ok, "{err}");
    let docs: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let config = docs.iter().find(|d| d["kind"] == "ConfigMap").unwrap();
    let toml = config["data"]["mediagate.toml"].as_str().unwrap();
    let listen = toml
        .lines()
        .find_map(|l| l.trim().strip_prefix("auth_listen = "))
        .expect("auth_listen")
        .trim_matches('"')
        .to_owned();
    assert_eq!(listen, format!("unix:{socket}"));

    let env = vec![("MEDIAGATE__SERVER__AUTH_LISTEN".to_owned(), listen)];
    let s = Stack::start_with(StoreKind::Embedded, env, |c| {
        crate::unix_socket::over_socket(c, &socket)
    });
    let f = fixture(&s);
    let mount = s.dir.path().to_string_lossy().into_owned();
    let render = |port: u16| {
        let values = json!({
            "nginx": {"bindAddress": "127.0.0.1", "port": port},
            "authSocket": socket,
            "persistence": {"mountPath": mount},
        });
        let (ok, conf, err) = chart(&["nginx", &chart_dir(), &values.to_string()]);
        assert!(ok, "{err}");
        conf
    };
    let nginx = Nginx::start(&s.dir.path().join("chart-nginx"), render);
    assert!(
        render(nginx.port).contains(&format!("server unix:{socket} max_fails=0;")),
        "the chart's nginx does not reach the socket"
    );
    owner_only_through(nginx.port, &s, &f);
}

/// Through the nginx on `port`: alice reads her file's exact bytes, bob is refused, and a
/// caller without a session is asked to log in.
pub fn owner_only_through(port: u16, s: &Stack, f: &Fixture) {
    let get = |session: Option<&str>| {
        let cookie = session.map(|c| format!("mediagate_session={c}"));
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
        crate::support::http::send(port, "GET", f.alice_url.as_bytes(), &headers, b"").unwrap()
    };
    let r = get(Some(&f.alice));
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, ALICE_BYTES),
        "{}",
        s.logs()
    );
    assert_eq!(get(None).status, 401);
    assert_eq!(get(Some(&f.bob)).status, 403);
}
