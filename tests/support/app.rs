//! The real `mediagate` binary as a child process, and `Stack`: redis (optional) + mediagate +
//! nginx in one temporary directory, with helpers for the admin API and public URLs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::http::{self, Response};
use super::nginx::{self, Nginx};
use super::redis::RedisServer;
use super::s3::S3Server;
use super::topology::{RedisCluster, SentinelSet};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct MediaGate {
    pub auth_port: u16,
    pub admin_port: u16,
    dir: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl MediaGate {
    /// Starts the binary with `env` on top of the test defaults, and waits for `/healthz`.
    pub fn start(dir: &Path, env: Vec<(String, String)>) -> Self {
        std::fs::create_dir_all(dir).expect("app dir");
        let mut app = Self {
            auth_port: 0,
            admin_port: 0,
            dir: dir.to_path_buf(),
            env,
            child: None,
        };
        let started = super::on_a_free_port(|auth_port| {
            app.auth_port = auth_port;
            app.admin_port = loop {
                let p = super::free_port();
                if p != auth_port {
                    break p;
                }
            };
            match app.try_spawn() {
                Ok(()) => Some(()),
                Err(log) if log.contains("cannot bind") => None,
                Err(log) => panic!("mediagate did not start; log:\n{log}"),
            }
        });
        if started.is_none() {
            panic!("mediagate found no free ports; log:\n{}", app.log());
        }
        app
    }

    fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("mediagate did not start; log:\n{log}");
        }
    }

    /// Starts the binary and waits for `/healthz`; on an early exit, returns its log.
    fn try_spawn(&mut self) -> Result<(), String> {
        let log_path = self.dir.join("app.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("app log");
        let start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let child = Command::new(env!("CARGO_BIN_EXE_mediagate"))
            .arg("serve")
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "debug")
            .env(
                "MEDIAGATE__SERVER__AUTH_LISTEN",
                format!("127.0.0.1:{}", self.auth_port),
            )
            .env(
                "MEDIAGATE__SERVER__ADMIN_LISTEN",
                format!("127.0.0.1:{}", self.admin_port),
            )
            .env("MEDIAGATE__SERVER__WORKERS", "2")
            .env("MEDIAGATE__ADMIN__TOKEN", ADMIN_TOKEN)
            // Two cores run many stacks at once in CI: a generous bound (still under nginx's
            // 1 s) keeps load from turning decisions into 503s. Fault tests set the default
            // 250 ms themselves.
            .env("MEDIAGATE__STORE__TIMEOUT_MS", "900")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn mediagate");
        self.child = Some(child);
        let port = self.admin_port;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                let all = self.log();
                return Err(all.get(start as usize..).unwrap_or(&all).to_owned());
            }
            // Only our child's listeners count: another test's mediagate may hold a port this
            // one was about to fail to bind, and would answer /healthz in its place.
            // A unix-socket auth listener has no port to check; the admin one still proves
            // the process is ours.
            let unix = self
                .env
                .iter()
                .any(|(k, v)| k == "MEDIAGATE__SERVER__AUTH_LISTEN" && v.starts_with("unix:"));
            let ours = self.child.as_ref().is_some_and(|c| {
                (unix || super::listens_on(c.id(), self.auth_port))
                    && super::listens_on(c.id(), port)
            });
            if ours && http::send(port, "GET", b"/healthz", &[], b"").is_ok_and(|r| r.status == 200)
            {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!("no /healthz within 20 s\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_ready(&self) {
        let port = self.admin_port;
        super::eventually("mediagate /readyz", Duration::from_secs(20), || {
            http::send(port, "GET", b"/readyz", &[], b"")
                .ok()
                .filter(|r| r.status == 200)
        });
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: a crash.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the exit; returns its status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        super::signal(c.id(), "TERM");
        let status = super::eventually("mediagate to exit", Duration::from_secs(20), || {
            c.try_wait().ok().flatten()
        });
        status.code()
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Restarts with `env` overriding the variables it was started with; an empty value
    /// removes the variable.
    pub fn restart_with(&mut self, env: Vec<(String, String)>) {
        for (k, v) in env {
            self.env.retain(|(old, _)| *old != k);
            if !v.is_empty() {
                self.env.push((k, v));
            }
        }
        self.restart();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("app.log")).unwrap_or_default()
    }
}

impl Drop for MediaGate {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Which store a stack runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Embedded,
    Redis,
    /// Three masters with a replica each.
    Cluster,
    /// A master and a replica behind three Sentinels.
    Sentinel,
}

/// redis (for `StoreKind::Redis`) + mediagate + nginx.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub redis: Option<RedisServer>,
    pub cluster: Option<RedisCluster>,
    pub sentinel: Option<SentinelSet>,
    pub app: MediaGate,
    pub nginx: Nginx,
    pub storage_root: PathBuf,
    /// The bucket the bytes are in, when the stack runs on object storage.
    pub s3: Option<S3Server>,
}

impl Stack {
    pub fn start(kind: StoreKind) -> Self {
        Self::start_with(kind, Vec::new(), |c| c)
    }

    /// `edit` may change the rendered nginx config (e.g. add a location to the server).
    pub fn start_with(
        kind: StoreKind,
        env: Vec<(String, String)>,
        edit: impl Fn(String) -> String,
    ) -> Self {
        Self::start_configured(kind, env, "", edit)
    }

    /// As `start_with`, with `config` as the app's `mediagate.toml` (for settings only a file
    /// can hold, such as `[[session.sources]]`). `{STORE_URL}` in it is replaced.
    pub fn start_configured(
        kind: StoreKind,
        env: Vec<(String, String)>,
        config: &str,
        edit: impl Fn(String) -> String,
    ) -> Self {
        Self::start_full(kind, false, env, config, edit)
    }

    /// A stack whose bytes are in a bucket of a real S3 server (s3s-fs).
    pub fn on_bucket(kind: StoreKind, env: Vec<(String, String)>) -> Self {
        Self::start_full(kind, true, env, "", |c| c)
    }

    /// Every way to start a stack: on `kind`, with the bytes in a bucket or not.
    pub fn start_full(
        kind: StoreKind,
        bucket: bool,
        mut env: Vec<(String, String)>,
        config: &str,
        edit: impl Fn(String) -> String,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let s3 = bucket.then(|| {
            let s3 = S3Server::start(&dir.path().join("s3"));
            env.extend(s3.env());
            s3
        });
        let storage_root = dir.path().join("media");
        std::fs::create_dir_all(&storage_root).expect("storage root");
        let store_given = env.iter().any(|(k, _)| k == "MEDIAGATE__STORE__URL");
        let (mut cluster, mut sentinel) = (None, None);
        let redis = match kind {
            // A test may point the store elsewhere (e.g. at a proxy in front of its Redis).
            _ if store_given => None,
            StoreKind::Redis => {
                let r = RedisServer::start(&dir.path().join("redis"));
                env.push(("MEDIAGATE__STORE__URL".into(), r.url()));
                Some(r)
            }
            StoreKind::Cluster => {
                let c = RedisCluster::start(&dir.path().join("cluster"));
                env.push(("MEDIAGATE__STORE__URL".into(), c.url()));
                cluster = Some(c);
                None
            }
            StoreKind::Sentinel => {
                let set = SentinelSet::start(&dir.path().join("sentinel"));
                env.push(("MEDIAGATE__STORE__URL".into(), set.url()));
                sentinel = Some(set);
                None
            }
            StoreKind::Embedded => {
                env.push((
                    "MEDIAGATE__STORE__URL".into(),
                    format!(
                        "embedded:{}",
                        dir.path().join("store/mediagate.db").display()
                    ),
                ));
                None
            }
        };
        env.push((
            "MEDIAGATE__STORAGE__ROOT".into(),
            storage_root.to_string_lossy().into_owned(),
        ));
        if !config.is_empty() {
            let store_url = env
                .iter()
                .find(|(k, _)| k == "MEDIAGATE__STORE__URL")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            std::fs::create_dir_all(dir.path().join("app")).expect("app dir");
            std::fs::write(
                dir.path().join("app/mediagate.toml"),
                config.replace("{STORE_URL}", &store_url),
            )
            .expect("write mediagate.toml");
        }
        let app = MediaGate::start(&dir.path().join("app"), env.clone());
        app.wait_ready();
        let auth_port = app.auth_port;
        let root = storage_root.clone();
        let nginx = Nginx::start(&dir.path().join("nginx"), |port| {
            edit(nginx::render(port, &root, auth_port, &env))
        });
        Self {
            dir,
            redis,
            cluster,
            sentinel,
            app,
            nginx,
            storage_root,
            s3,
        }
    }

    /// Everything a failing assertion should show.
    pub fn logs(&self) -> String {
        format!(
            "--- mediagate log ---\n{}\n--- nginx error.log ---\n{}\n--- redis log ---\n{}\n--- s3 log ---\n{}",
            tail(&self.app.log()),
            tail(&self.nginx.log()),
            self.redis
                .as_ref()
                .map(|r| tail(&r.log()))
                .unwrap_or_default(),
            self.s3.as_ref().map(|s| tail(&s.log())).unwrap_or_default()
        )
    }

    /// An admin call with the bearer token.
    pub fn admin(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(headers);
        http::send(self.app.admin_port, method, target.as_bytes(), &all, body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}\n{}", self.logs()))
    }

    /// An admin call that sets a test up, tried again while the answer is "try again": a 503
    /// (fault tests run with the production 250 ms store bound, which a loaded CI machine can
    /// exceed on a setup call) or a 409 (the timed-out try may still hold the record's lease,
    /// for up to its 10 s). What a test asserts goes through [`Stack::admin`], never this.
    fn setup(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let mut r = self.admin(method, target, headers, body);
        while matches!(r.status, 503 | 409) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            r = self.admin(method, target, headers, body);
        }
        r
    }

    /// An admin call with a JSON body.
    pub fn admin_json(&self, method: &str, target: &str, body: serde_json::Value) -> Response {
        self.admin(
            method,
            target,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// Creates (or fetches) a user; returns its user token.
    pub fn user(&self, id: &str) -> String {
        let r = self.setup("PUT", &format!("/v1/users/{id}"), &[], b"");
        assert!(
            matches!(r.status, 200 | 201),
            "PUT user: {} {}\n{}",
            r.status,
            r.text(),
            self.logs()
        );
        r.json()["user_token"]
            .as_str()
            .expect("user_token")
            .to_owned()
    }

    /// Uploads `bytes` for `user` under `filename` (raw, already URL-encoded for the query);
    /// returns the JSON answer.
    pub fn upload(
        &self,
        user: &str,
        filename_query: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> serde_json::Value {
        let r = self.setup(
            "POST",
            &format!("/v1/users/{user}/files?filename={filename_query}"),
            &[("Content-Type", content_type)],
            bytes,
        );
        assert_eq!(r.status, 201, "upload: {}\n{}", r.text(), self.logs());
        r.json()
    }

    /// A native session for `user`; returns the session id.
    pub fn session(&self, user: &str, ttl: u64, roles: &[&str]) -> String {
        let body =
            serde_json::json!({"user_id": user, "ttl_seconds": ttl, "roles": roles}).to_string();
        let r = self.setup(
            "POST",
            "/v1/sessions",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status, 201, "session: {}\n{}", r.text(), self.logs());
        r.json()["session_id"]
            .as_str()
            .expect("session_id")
            .to_owned()
    }

    /// A request through nginx with the session cookie (if any).
    pub fn media(
        &self,
        method: &str,
        target: &[u8],
        session: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Response {
        let cookie = session.map(|s| format!("mediagate_session={s}"));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(c) = &cookie {
            headers.push(("Cookie", c));
        }
        http::send(self.nginx.port, method, target, &headers, b"").unwrap_or_else(|e| {
            panic!(
                "{method} {}: {e}\n{}",
                String::from_utf8_lossy(target),
                self.logs()
            )
        })
    }

    pub fn get(&self, url: &str, session: Option<&str>) -> Response {
        self.media("GET", url.as_bytes(), session, &[])
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
