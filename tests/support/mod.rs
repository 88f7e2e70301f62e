//! Test support shared by the test binaries: real `redis-server`, real `nginx` and the real
//! `mediagate` binary, each on free loopback ports in its own temporary directory, killed on
//! drop. No test uses a shared server or a fixed port.
#![allow(dead_code)]

pub mod app;
pub mod clients;
pub mod http;
pub mod nginx;
pub mod proxy;
pub mod redis;
pub mod s3;
pub mod topology;

use std::net::TcpListener;
use std::time::{Duration, Instant};

/// A loopback port that was free a moment ago. nginx and redis-server cannot take port 0, so
/// the harness picks one and retries the start if another process took it in between.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Starts something on a port that was free a moment ago: `start` gets a fresh port on each of
/// up to five tries and returns `None` when its process exited because another one took the
/// port first (tests run in parallel).
pub fn on_a_free_port<T>(start: impl FnMut(u16) -> Option<T>) -> Option<T> {
    (0..5).map(|_| free_port()).find_map(start)
}

/// Polls `f` until it returns `Some`, or panics with `what` after `patience`.
pub fn eventually<T>(what: &str, patience: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {patience:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fails loudly when a tool the tests need is missing: a skipped test is a test that did not
/// run. `make test` installs them first.
pub fn require(program: &str) -> String {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/sbin",
        "/bin",
    ] {
        let p = format!("{dir}/{program}");
        if std::path::Path::new(&p).exists() {
            return p;
        }
    }
    panic!(
        "`{program}` is not installed: run `make deps` (apt-get install nginx redis-server) first"
    );
}

/// [`wait_started`] for a server that serves as soon as it listens (nginx, Express).
pub fn wait_listening(child: &mut Option<std::process::Child>, port: u16) -> bool {
    wait_started(child, port, || true)
}

/// Waits up to 10 s until the child itself listens on `port` and `ready()` holds. Returns
/// false, and forgets the child, if it exited first (e.g. its port was taken), so that the
/// caller can retry on another port. `ready()` alone is not enough: when another test's process
/// took the port in between, it would answer for a child that is about to fail its bind.
pub fn wait_started(
    child: &mut Option<std::process::Child>,
    port: u16,
    ready: impl Fn() -> bool,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let pid = child.as_ref().map(std::process::Child::id);
        if pid.is_some_and(|pid| listens_on(pid, port)) && ready() {
            return true;
        }
        if let Some(Ok(Some(_))) = child.as_mut().map(std::process::Child::try_wait) {
            *child = None;
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// True if process `pid` holds a socket listening on 127.0.0.1:`port`: the socket's inode,
/// from `/proc/net/tcp`, is among the process' open files.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let wanted = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let inodes: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // Fields: sl local rem st tx:rx tr:when retrnsmt uid timeout inode …; 0A is LISTEN.
            (f.len() > 9 && f[1] == wanted && f[3] == "0A").then(|| format!("socket:[{}]", f[9]))
        })
        .collect();
    if inodes.is_empty() {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
    })
}

/// Sends a signal to a child process by pid.
pub fn signal(pid: u32, sig: &str) {
    let _ = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status();
}
