//! A real nginx, configured by the real `mediagate nginx-config` (the same snippet users get).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Nginx {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// Renders the full config with the real binary.
pub fn render(
    port: u16,
    storage_root: &Path,
    auth_port: u16,
    extra_env: &[(String, String)],
) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .args(["nginx-config", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--storage-root", &storage_root.to_string_lossy()])
        .args(["--auth-upstream", &format!("127.0.0.1:{auth_port}")])
        .envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(storage_root.parent().unwrap_or(storage_root))
        .output()
        .expect("run mediagate nginx-config");
    assert!(
        out.status.success(),
        "nginx-config failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("config is UTF-8")
}

impl Nginx {
    /// Starts nginx in `dir` with `config`; `{{PORT}}` in it is replaced by the chosen port.
    pub fn start(dir: &Path, config: impl Fn(u16) -> String) -> Self {
        std::fs::create_dir_all(dir).expect("nginx dir");
        super::on_a_free_port(|port| {
            std::fs::write(dir.join("nginx.conf"), config(port)).expect("write nginx.conf");
            let mut n = Self {
                port,
                dir: dir.to_path_buf(),
                child: None,
            };
            n.spawn().then_some(n)
        })
        .unwrap_or_else(|| panic!("nginx did not start; error.log:\n{}", Self::read_log(dir)))
    }

    fn spawn(&mut self) -> bool {
        let bin = super::require("nginx");
        let child = Command::new(bin)
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.join("startup.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        self.child = Some(child);
        super::wait_listening(&mut self.child, self.port)
    }

    fn read_log(dir: &Path) -> String {
        let a = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        let b = std::fs::read_to_string(dir.join("startup.log")).unwrap_or_default();
        format!("{b}{a}")
    }

    pub fn log(&self) -> String {
        Self::read_log(&self.dir)
    }

    /// The access log, as the full config's `access_log` writes it.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }

    /// Runs `nginx -t` on a config: for tests of the config itself.
    pub fn check(dir: &Path, config: &str) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("nginx.conf"), config).map_err(|e| e.to_string())?;
        let out = Command::new(super::require("nginx"))
            .arg("-t")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("startup.log"))
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}{}",
                String::from_utf8_lossy(&out.stderr),
                Self::read_log(dir)
            ))
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master stops its workers too; SIGKILL would orphan them.
        if let Some(mut c) = self.child.take() {
            super::signal(c.id(), "TERM");
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::time::Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
