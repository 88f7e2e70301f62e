//! A real S3 server for the object-storage tests: `s3s-fs` (crates.io), which keeps objects as
//! files and checks the SigV4 signature of every request, so a test that passes proves the
//! signing right. `make test` installs it into `target/tools` (scripts/tools.sh).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The credentials the server accepts; anything signed with others is refused.
pub const ACCESS_KEY: &str = "AKIDMEDIAGATETEST";
pub const SECRET_KEY: &str = "mediagate-test-secret-0123456789abcdef";
/// The bucket the tests use.
pub const BUCKET: &str = "media-bucket";

pub struct S3Server {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// The installed `s3s-fs`, or a failure that says how to install it (never a skip).
fn binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/bin/s3s-fs");
    assert!(
        bin.exists(),
        "the S3 test server is missing: run scripts/tools.sh (make test does), i.e. \
         cargo install --locked --root target/tools s3s-fs --version 0.14.1 --features binary"
    );
    bin
}

impl S3Server {
    /// Starts a server whose data lives in `dir`, with the test bucket in it.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join("data").join(BUCKET)).expect("s3 data dir");
        let mut server = Self {
            port: 0,
            dir: dir.to_path_buf(),
            child: None,
        };
        let started = super::on_a_free_port(|port| {
            server.port = port;
            server.spawn().then_some(())
        });
        assert!(started.is_some(), "s3s-fs did not start:\n{}", server.log());
        server
    }

    fn spawn(&mut self) -> bool {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("s3.log"))
            .expect("s3 log");
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(self.dir.join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn s3s-fs");
        self.child = Some(child);
        super::wait_listening(&mut self.child, self.port)
    }

    /// The URL of the endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What mediagate (and `nginx-config`) needs to use the bucket: `storage.url` and the AWS
    /// SDKs' variables.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("MEDIAGATE__STORAGE__URL", format!("s3://{BUCKET}/site")),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// The objects of the bucket, as paths relative to it (`site/ab/ab12…`).
    pub fn objects(&self) -> Vec<String> {
        let root = self.dir.join("data").join(BUCKET);
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&root) {
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    /// The bytes of an object (`site/ab/ab12…`).
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.join("data").join(BUCKET).join(key)).ok()
    }

    /// Where an object's bytes are on disk (to damage them on purpose).
    pub fn dir_of(&self, key: &str) -> PathBuf {
        self.dir.join("data").join(BUCKET).join(key)
    }

    /// SIGKILL: the bucket is gone.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Back on the same port, with the same data.
    pub fn restart(&mut self) {
        self.stop();
        assert!(self.spawn(), "s3s-fs did not come back:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("s3.log")).unwrap_or_default()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
