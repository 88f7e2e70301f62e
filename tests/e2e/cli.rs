//! The binary's command line: config file, environment, and the one-line configuration error.

use std::process::Command;

fn mediagate(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mediagate"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run mediagate")
}

#[test]
fn mediagate_toml_in_the_working_directory_is_read_and_env_wins() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mediagate.toml"),
        "[media]\nprefix = \"/files/\"\n[server]\nauth_listen = \"127.0.0.1:7001\"\n",
    )
    .unwrap();
    let out = mediagate(dir.path(), &["nginx-config", "--part", "full"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conf = String::from_utf8(out.stdout).unwrap();
    assert!(conf.contains("location ^~ /files/ {"), "{conf}");
    assert!(conf.contains("server 127.0.0.1:7001 max_fails=0;"));
    let out = mediagate(
        dir.path(),
        &["nginx-config"],
        &[("MEDIAGATE__SERVER__AUTH_LISTEN", "127.0.0.1:7002")],
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("server 127.0.0.1:7002 max_fails=0;"));
}

#[test]
fn a_bad_configuration_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = mediagate(
        dir.path(),
        &["serve"],
        &[
            ("MEDIAGATE__MEDIA__PREFIX", "media"),
            ("MEDIAGATE__STORE__TIMEOUT_MS", "0"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("media.prefix") && err.contains("store.timeout_ms"),
        "{err}"
    );
    let out = mediagate(dir.path(), &["serve", "--config", "missing.toml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
    // Nothing was created by a refused start.
    assert!(!dir.path().join("var").exists());
}

#[test]
fn the_generated_config_passes_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    let out = mediagate(
        dir.path(),
        &["nginx-config", "--storage-root", "/srv/media"],
        &[],
    );
    assert!(out.status.success());
    let conf = String::from_utf8(out.stdout).unwrap();
    crate::support::nginx::Nginx::check(&dir.path().join("nginx"), &conf).unwrap();
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["nginx-config", "--help"],
    ] {
        let out = mediagate(dir.path(), args, &[]);
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
}

#[test]
fn migrate_initialises_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("MEDIAGATE__STORE__URL", "embedded:./store.db")];
    let first = mediagate(dir.path(), &["migrate"], &env);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("Applied migrations [1, 2, 3]"));
    let second = mediagate(dir.path(), &["migrate"], &env);
    assert!(second.status.success());
    assert!(String::from_utf8_lossy(&second.stdout).contains("nothing to do"));
}
