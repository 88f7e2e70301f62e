//! The real framework clients of the session-source tests: an Express app (express-session +
//! connect-redis), a Django project (cache sessions on django-redis, JSON serializer) and
//! PyJWT. `scripts/clients.sh` (run by `make test`) installs their pinned dependencies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::http;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let p = repo().join("target/clients-venv/bin/python");
    assert!(
        p.exists(),
        "the Python test clients are not installed: run scripts/clients.sh (make test does)"
    );
    p
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run client");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// The Express app, logged-in users' sessions in the given Redis.
pub struct Express {
    pub port: u16,
    child: Child,
}

impl Express {
    /// `secrets`: comma-separated; the first signs.
    pub fn start(dir: &Path, redis_url: &str, secrets: &str) -> Self {
        let app = repo().join("tests/clients/express");
        assert!(
            app.join("node_modules").exists(),
            "the Express test client is not installed: run scripts/clients.sh (make test does)"
        );
        let log = dir.join("express.log");
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        super::on_a_free_port(|port| {
            let mut child = Some(
                Command::new("node")
                    .arg("server.js")
                    .current_dir(&app)
                    .env("PORT", port.to_string())
                    .env("REDIS_URL", redis_url)
                    .env("SESSION_SECRET", secrets)
                    .stdout(Stdio::from(std::fs::File::create(&log).expect("log")))
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn node"),
            );
            let up = super::wait_listening(&mut child, port);
            match child {
                Some(child) if up => Some(Self { port, child }),
                Some(mut child) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("express did not start within 10 s:\n{}", log_text());
                }
                None => None,
            }
        })
        .unwrap_or_else(|| panic!("express found no free port:\n{}", log_text()))
    }

    /// Logs `user` in; returns the `name=value` cookie the app set.
    pub fn login(&self, user: &str, roles: &str) -> String {
        let r = http::send(
            self.port,
            "POST",
            format!("/login?user={user}&roles={roles}").as_bytes(),
            &[],
            b"",
        )
        .expect("login");
        assert_eq!(r.status, 200, "{}", r.text());
        let set = r.header("Set-Cookie").expect("Set-Cookie");
        set.split(';').next().expect("cookie").to_owned()
    }

    /// Logs the session of `cookie` out (express-session destroys it in Redis).
    pub fn logout(&self, cookie: &str) {
        let r =
            http::send(self.port, "POST", b"/logout", &[("Cookie", cookie)], b"").expect("logout");
        assert_eq!(r.status, 200);
    }
}

impl Drop for Express {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logs `user` into the Django project (through django.contrib.auth); returns Django's user
/// id and the `sessionid` cookie value. With `logout`, the session is logged out afterwards.
pub fn django_login(dir: &Path, redis_url: &str, user: &str, logout: bool) -> (String, String) {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/clients/django/login.py"))
        .arg(user)
        .env("DJANGO_DB", dir.join("django.sqlite3"))
        .env("REDIS_URL", redis_url);
    if logout {
        cmd.arg("logout");
    }
    let v: serde_json::Value = serde_json::from_str(&run(&mut cmd)).expect("login.py JSON");
    (
        v["user_id"].as_str().expect("user_id").to_owned(),
        v["sessionid"].as_str().expect("sessionid").to_owned(),
    )
}

/// A token minted by PyJWT (`mint.py token …`).
pub fn jwt(args: &[&str]) -> String {
    run(Command::new(python())
        .arg(repo().join("tests/clients/jwt/mint.py"))
        .arg("token")
        .args(args))
}

/// An RSA key pair in `dir`: (private.pem, public.pem).
pub fn rsa_keys(dir: &Path) -> (PathBuf, PathBuf) {
    run(Command::new(python())
        .arg(repo().join("tests/clients/jwt/mint.py"))
        .arg("keys")
        .arg(dir));
    (dir.join("private.pem"), dir.join("public.pem"))
}

/// The endpoint that answers like oauth2-proxy's `/oauth2/auth` (`forward/oauth2_auth.py`).
pub struct OAuth2Auth {
    pub port: u16,
    child: Child,
}

impl OAuth2Auth {
    pub fn start(dir: &Path) -> Self {
        let log = dir.join("oauth2_auth.log");
        super::on_a_free_port(|port| {
            let mut child = Some(
                Command::new(python())
                    .arg(repo().join("tests/clients/forward/oauth2_auth.py"))
                    .arg(port.to_string())
                    .stdout(Stdio::null())
                    .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
                    .spawn()
                    .expect("spawn oauth2_auth.py"),
            );
            super::wait_listening(&mut child, port).then(|| Self {
                port,
                child: child.expect("child"),
            })
        })
        .unwrap_or_else(|| {
            panic!(
                "oauth2_auth.py did not start:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/oauth2/auth", self.port)
    }

    /// Merges `change` into the endpoint's state (`sessions`, `delay`, `status`).
    pub fn control(&self, change: serde_json::Value) {
        let r = http::send(
            self.port,
            "POST",
            b"/control",
            &[("Content-Type", "application/json")],
            change.to_string().as_bytes(),
        )
        .expect("control");
        assert_eq!(r.status, 204);
    }

    /// How often it was asked, and what it last received.
    pub fn state(&self) -> serde_json::Value {
        http::send(self.port, "GET", b"/state", &[], b"")
            .expect("state")
            .json()
    }

    pub fn count(&self) -> u64 {
        self.state()["count"].as_u64().expect("count")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OAuth2Auth {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The venv where `clients/python` (the `mediagate` package, Django, httpx) is installed
/// editable: the Django app that adopts mediagate runs on the package under test.
pub fn python_client() -> PathBuf {
    let p = repo().join("target/python-client-venv/bin/python");
    assert!(
        p.exists(),
        "the mediagate Python package's venv is missing ({}): run scripts/clients.sh (make test does)",
        p.display()
    );
    p
}

/// The Django project of `tests/clients/django_forward` (default database sessions, files on
/// `MediagateStorage`), prepared and served by its `serve.py`.
pub struct DjangoForward {
    pub port: u16,
    /// `state.json`: the users' pks and the files' URLs.
    pub state: serde_json::Value,
    log: PathBuf,
    child: Option<Child>,
}

impl DjangoForward {
    /// Starts it on `port` against mediagate's admin listener. `None` when another process
    /// took the port (the caller retries on another one); panics on any other failure.
    pub fn start(dir: &Path, port: u16, admin_url: &str, token: &str) -> Option<Self> {
        // A directory per try: a failed try leaves its users and files behind.
        let dir = dir.join(format!("django-{port}"));
        std::fs::create_dir_all(&dir).expect("django dir");
        let log = dir.join("django.log");
        let file = std::fs::File::create(&log).expect("log");
        let mut child = Command::new(python_client())
            .arg(repo().join("tests/clients/django_forward/serve.py"))
            .arg(port.to_string())
            .env("DJANGO_DIR", &dir)
            .env("MEDIAGATE_ADMIN_URL", admin_url)
            .env("MEDIAGATE_TOKEN", token)
            .stdout(Stdio::from(file.try_clone().expect("log")))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn serve.py");
        let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
        // Preparing (migrate, uploads, the import) comes before listening and may take a
        // while on a loaded machine: a longer wait than `wait_started`'s.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if super::listens_on(child.id(), port) {
                break;
            }
            if let Ok(Some(_)) = child.try_wait() {
                let text = log_text();
                if text.contains("already in use") {
                    return None;
                }
                panic!("the Django app exited:\n{text}");
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("the Django app did not listen within 60 s:\n{}", log_text());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let state = std::fs::read_to_string(dir.join("state.json")).expect("state.json");
        Some(Self {
            port,
            state: serde_json::from_str(&state).expect("state.json JSON"),
            log,
            child: Some(child),
        })
    }

    pub fn whoami_url(&self) -> String {
        format!("http://127.0.0.1:{}/mediagate/whoami", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Logs `user` in through Django's own login form, as a browser does: GET the form (the
    /// csrftoken cookie and the form's token), POST the credentials. Returns the cookies to
    /// send from then on, `sessionid=…; csrftoken=…` (Django rotates the CSRF token at login).
    pub fn login(&self, user: &str) -> String {
        let form = http::send(self.port, "GET", b"/accounts/login/", &[], b"").expect("GET login");
        assert_eq!(form.status, 200, "{}\n{}", form.text(), self.log());
        let csrf = cookie(&form, "csrftoken").expect("csrftoken cookie");
        let html = form.text();
        let token = html
            .split("name=\"csrfmiddlewaretoken\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("csrfmiddlewaretoken in the form");
        let body = format!("csrfmiddlewaretoken={token}&username={user}&password=password");
        let r = http::send(
            self.port,
            "POST",
            b"/accounts/login/",
            &[
                ("Cookie", &csrf),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            body.as_bytes(),
        )
        .expect("POST login");
        assert_eq!(
            r.status,
            302,
            "login as {user}: {}\n{}",
            r.text(),
            self.log()
        );
        let session = cookie(&r, "sessionid").expect("sessionid cookie");
        let csrf = cookie(&r, "csrftoken").unwrap_or(csrf);
        format!("{session}; {csrf}")
    }

    /// Logs out through Django's LogoutView (a POST with the CSRF token); the session row is
    /// deleted from the database.
    pub fn logout(&self, cookies: &str) {
        let token = cookies
            .split("; ")
            .find_map(|c| c.strip_prefix("csrftoken="))
            .expect("csrftoken");
        let r = http::send(
            self.port,
            "POST",
            b"/accounts/logout/",
            &[
                ("Cookie", cookies),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            format!("csrfmiddlewaretoken={token}").as_bytes(),
        )
        .expect("POST logout");
        assert_eq!(r.status, 302, "logout: {}\n{}", r.text(), self.log());
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for DjangoForward {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `name=value` of the cookie `name` that the answer sets.
fn cookie(r: &http::Response, name: &str) -> Option<String> {
    r.headers_named("Set-Cookie")
        .into_iter()
        .filter_map(|c| c.split(';').next())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}
