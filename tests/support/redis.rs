//! A real `redis-server` in a temporary directory, with AOF on so that a restart keeps data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    /// Given after the defaults (a cluster node's or a replica's settings).
    args: Vec<String>,
    /// A config file given first (a sentinel's, which Sentinel rewrites as it learns).
    conf: Option<PathBuf>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server whose files live in `dir` (created if needed).
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// As `start`, with more `redis-server` arguments.
    pub fn start_with(dir: &Path, args: &[&str]) -> Self {
        std::fs::create_dir_all(dir).expect("redis dir");
        let mut server = Self {
            port: 0,
            dir: dir.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            conf: None,
            child: None,
        };
        server.spawn_on_free_port();
        server
    }

    /// A Sentinel in `dir` with `conf` as its (writable) configuration.
    pub fn start_sentinel(dir: &Path, conf: &str) -> Self {
        std::fs::create_dir_all(dir).expect("sentinel dir");
        let path = dir.join("sentinel.conf");
        std::fs::write(&path, conf).expect("sentinel.conf");
        let mut server = Self {
            port: 0,
            dir: dir.to_path_buf(),
            args: vec!["--sentinel".into()],
            conf: Some(path),
            child: None,
        };
        server.spawn_on_free_port();
        server
    }

    /// Starts a server on a given port (to bring one back where it was).
    pub fn start_on(dir: &Path, port: u16) -> Self {
        std::fs::create_dir_all(dir).expect("redis dir");
        let mut server = Self {
            port,
            dir: dir.to_path_buf(),
            args: Vec::new(),
            conf: None,
            child: None,
        };
        for _ in 0..50 {
            if server.spawn() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "redis-server did not start on port {port}; log:\n{}",
            server.log()
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn spawn_on_free_port(&mut self) {
        let started = super::on_a_free_port(|port| {
            self.port = port;
            self.spawn().then_some(())
        });
        if started.is_none() {
            panic!("redis-server did not start; log:\n{}", self.log());
        }
    }

    fn spawn(&mut self) -> bool {
        let bin = super::require("redis-server");
        let child = Command::new(bin)
            .args(self.conf.iter())
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .args(["--logfile", "redis.log", "--protected-mode", "no"])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let port = self.port;
        super::wait_started(&mut self.child, port, || {
            command_on(port, &[b"PING"]).is_some_and(|r| r.starts_with(b"+PONG"))
        })
    }

    /// True if the server answers PING.
    pub fn ping(&self) -> bool {
        self.command(&["PING"]).is_some_and(|r| r.contains("PONG"))
    }

    /// Runs one command over RESP and returns the raw reply, or `None` if unreachable.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.command_bytes(&args)
            .map(|r| String::from_utf8_lossy(&r).into_owned())
    }

    /// [`RedisServer::command`] with binary arguments (layout 3 names file records by the
    /// token's bytes), and the reply as bytes.
    pub fn command_bytes(&self, args: &[&[u8]]) -> Option<Vec<u8>> {
        command_on(self.port, args)
    }

    /// The value of `field` in `INFO section`, e.g. `role` in `replication`.
    pub fn info(&self, section: &str, field: &str) -> Option<String> {
        let raw = self.command(&["INFO", section])?;
        raw.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(|v| v.trim().to_owned())
    }

    /// Kills the server at once (SIGKILL): what a crash or an OOM kill does.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port with the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "redis-server did not restart on port {}; log:\n{}",
            self.port,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One RESP command to the server on `port`; the raw reply, or `None` if unreachable.
fn command_on(port: u16, args: &[&[u8]]) -> Option<Vec<u8>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    s.write_all(&req).ok()?;
    let mut buf = vec![0u8; 65536];
    let n = s.read(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// The key of the record that `file_token` (hex, as in a URL) names under `prefix`, built by
/// mediagate's own key builder (layout 3 names it by the token's bytes).
pub fn record_key(prefix: &str, file_token: &str) -> Vec<u8> {
    let token = mediagate::tokens::FileToken::parse(file_token).expect("a file token");
    mediagate::store::keys::Keys::new(prefix).file_token(&token)
}

/// How many keys match `pattern` on `server`, from the length of the `KEYS` reply (key names
/// may be binary, so the reply is not read line by line).
pub fn count_keys(server: &RedisServer, pattern: &str) -> usize {
    let reply = server
        .command_bytes(&[b"KEYS", pattern.as_bytes()])
        .expect("KEYS");
    let header = reply.split(|b| *b == b'\r').next().unwrap_or_default();
    std::str::from_utf8(header)
        .ok()
        .and_then(|h| h.strip_prefix('*'))
        .and_then(|n| n.parse().ok())
        .expect("an array reply")
}
