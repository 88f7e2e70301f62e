//! The store contract: one suite, run against every implementation (embedded on disk,
//! embedded in memory, Redis on its own redis-server, a six-node Redis Cluster). All must
//! behave identically. And the storage contract (`storage`): the bytes on a local root and in
//! a bucket, alike.

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod relayout;
mod resume;
mod storage;
mod suite;

use std::sync::Arc;
use std::time::Duration;

use mediagate::store::{self, Store};
use support::redis::RedisServer;

const TIMEOUT: Duration = Duration::from_millis(500);

async fn embedded_file(dir: &std::path::Path) -> Arc<dyn Store> {
    store::open(
        &format!("embedded:{}", dir.join("db/mediagate.db").display()),
        "t",
        TIMEOUT,
    )
    .await
    .expect("open embedded")
}

async fn redis_store(r: &RedisServer, prefix: &str) -> Arc<dyn Store> {
    store::open(&r.url(), prefix, TIMEOUT)
        .await
        .expect("open redis")
}

#[tokio::test]
async fn embedded_on_disk_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite::run(embedded_file(dir.path()).await).await;
}

#[tokio::test]
async fn embedded_in_memory_passes_the_suite() {
    suite::run(
        store::open("embedded::memory:", "t", TIMEOUT)
            .await
            .unwrap(),
    )
    .await;
}

#[tokio::test]
async fn redis_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    suite::run(redis_store(&r, "suite").await).await;
    // A second prefix on the same server is a separate keyspace.
    suite::run(redis_store(&r, "other").await).await;
}

#[tokio::test]
async fn cluster_passes_every_suite() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::topology::RedisCluster::start(dir.path());
    let url = cluster.url();
    let open = |prefix: &'static str| store::open(&url, prefix, TIMEOUT);
    suite::run(open("suite").await.expect("open cluster")).await;
    suite::run_lifecycle(open("life").await.expect("open cluster")).await;
    suite::events_are_capped(open("cap").await.expect("open cluster"), false).await;
    let written = suite::write_sample(open("p").await.expect("open cluster")).await;
    suite::check_sample(open("p").await.expect("open cluster"), &written).await;
    migrate_together(&[open("m").await.unwrap(), open("m").await.unwrap()]).await;

    // Layouts 1 and 2 written across the masters, rewritten by SCAN on each.
    let put = |args: &[&str]| {
        let node = &cluster.nodes[cluster.master_for(args[1])];
        node.command(args).expect("command on the key's master")
    };
    let raw = |args: &[&[u8]]| {
        let node = &cluster.nodes[cluster.master_for(args[1])];
        node.command_bytes(args)
            .expect("command on the key's master")
    };
    let count = |pattern: &str| {
        cluster
            .nodes
            .iter()
            .filter(|n| n.info("replication", "role").as_deref() == Some("master"))
            .map(|n| support::redis::count_keys(n, pattern))
            .sum()
    };
    let ks = relayout::Keyspace {
        put: &put,
        raw: &raw,
        count: &count,
    };
    relayout::layout_1_becomes_current(open("v1").await.unwrap(), "v1", &ks).await;
    relayout::layout_2_becomes_current(open("v2").await.unwrap(), "v2", &ks).await;
}

/// Migrates a fresh keyspace from several processes at once: each migration is applied by
/// exactly one of them.
async fn migrate_together(stores: &[Arc<dyn Store>]) {
    let applied: Vec<u32> = futures_util::future::join_all(stores.iter().map(|s| s.migrate()))
        .await
        .into_iter()
        .flat_map(|r| r.expect("migrate"))
        .collect();
    let every: Vec<u32> = store::migrate::ALL.iter().map(|m| m.version).collect();
    assert_eq!(applied, every, "exactly one process applies each migration");
}

/// The bulk strings of a raw RESP array reply.
fn resp_lines(raw: &str) -> Vec<String> {
    raw.lines()
        .filter(|l| !l.starts_with('*') && !l.starts_with('$') && !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn redis_rewrites_layouts_1_and_2() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let put = |args: &[&str]| r.command(args).expect("command");
    let raw = |args: &[&[u8]]| r.command_bytes(args).expect("command");
    let count = |pattern: &str| support::redis::count_keys(&r, pattern);
    let ks = relayout::Keyspace {
        put: &put,
        raw: &raw,
        count: &count,
    };
    relayout::layout_1_becomes_current(redis_store(&r, "v1").await, "v1", &ks).await;
    relayout::layout_2_becomes_current(redis_store(&r, "v2").await, "v2", &ks).await;
}

#[tokio::test]
async fn redis_migrate_waits_for_a_running_migration_and_a_server_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let store = redis_store(&r, "busy").await;
    // Another process's migration, alive past one lock's life (30 s) by renewing its lock:
    // here held for 2 s, with a TTL far longer.
    r.command(&[
        "SET",
        "busy:migrate:lock",
        "another-process",
        "PX",
        "600000",
    ])
    .unwrap();
    let server = store.migrate_within(Duration::from_millis(300)).await;
    assert!(matches!(server, Err(store::StoreError::Busy)), "{server:?}");
    let releaser = std::thread::spawn({
        let url = r.url();
        move || {
            std::thread::sleep(Duration::from_secs(2));
            let client = redis::Client::open(url).unwrap();
            let mut c = client.get_connection().unwrap();
            let () = redis::cmd("DEL")
                .arg("busy:migrate:lock")
                .query(&mut c)
                .unwrap();
        }
    });
    let started = std::time::Instant::now();
    let every: Vec<u32> = store::migrate::ALL.iter().map(|m| m.version).collect();
    assert_eq!(store.migrate().await.unwrap(), every);
    assert!(started.elapsed() >= Duration::from_secs(2));
    releaser.join().unwrap();
}

#[tokio::test]
async fn redis_migration_stops_when_it_loses_its_lock() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    relayout::a_migration_that_loses_its_lock_stops_and_loses_nothing(
        redis_store(&r, "lost").await,
        &r,
        "lost",
    )
    .await;
}

#[tokio::test]
async fn redis_audit_stream_reads_old_entries_and_counts_events() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let put = |args: &[&str]| r.command(args).expect("command");
    audit::entries_of_one_event_come_first(redis_store(&r, "old").await, "old", &put).await;
    audit::the_cap_counts_events(redis_store(&r, "cap").await, "cap", &put).await;
    audit::racing_writers_get_ids_of_their_own(
        redis_store(&r, "race").await,
        redis_store(&r, "race").await,
    )
    .await;
}

#[tokio::test]
async fn embedded_passes_the_lifecycle_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite::run_lifecycle(embedded_file(dir.path()).await).await;
    suite::events_are_capped(
        store::open("embedded::memory:", "t", TIMEOUT)
            .await
            .unwrap(),
        true,
    )
    .await;
}

#[tokio::test]
async fn redis_passes_the_lifecycle_suite() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    suite::run_lifecycle(redis_store(&r, "life").await).await;
    suite::events_are_capped(redis_store(&r, "cap").await, false).await;
}

#[tokio::test]
async fn embedded_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let written = suite::write_sample(embedded_file(dir.path()).await).await;
    // The first handle is dropped: the file lock is released, as at a process exit.
    suite::check_sample(embedded_file(dir.path()).await, &written).await;
}

#[tokio::test]
async fn redis_keeps_everything_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = RedisServer::start(dir.path());
    let written = suite::write_sample(redis_store(&r, "p").await).await;
    r.restart();
    suite::check_sample(redis_store(&r, "p").await, &written).await;
}

#[tokio::test]
async fn embedded_refuses_a_second_process() {
    let dir = tempfile::tempdir().unwrap();
    let _first = embedded_file(dir.path()).await;
    let second = store::open(
        &format!("embedded:{}", dir.path().join("db/mediagate.db").display()),
        "t",
        TIMEOUT,
    )
    .await;
    assert!(second.is_err());
}

#[tokio::test]
async fn concurrent_migrations_apply_once() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let stores: Vec<_> = futures_join(4, || redis_store(&r, "m")).await;
    migrate_together(&stores).await;
    assert_eq!(
        stores[0].schema_version().await.unwrap(),
        store::migrate::CURRENT
    );
    let log = r.command(&["HGETALL", "m:migrations"]).unwrap();
    assert!(log.contains("\r\n1\r\n"), "{log}");
}

#[tokio::test]
async fn redis_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    r.command(&["SET", "n:schema", "99"]).unwrap();
    let s = redis_store(&r, "n").await;
    assert!(matches!(
        s.migrate().await,
        Err(store::StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[tokio::test]
async fn a_corrupt_user_token_record_is_an_error_that_does_not_name_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let s = redis_store(&r, "c").await;
    s.migrate().await.unwrap();
    let t = mediagate::tokens::UserToken::generate().unwrap();
    let f = mediagate::tokens::FileToken::generate().unwrap();
    r.command(&["SET", &format!("c:utok:{}", t.as_str()), "not a user/id"])
        .unwrap();
    let e = s.lookup(&t, &f, None).await.expect_err("a corrupt record");
    assert!(matches!(e, store::StoreError::Corrupt { .. }), "{e:?}");
    // Errors end up in logs: the token would be a working URL part there.
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains(t.as_str()), "{shown}");
        assert!(shown.contains(&t.fingerprint()), "{shown}");
    }
}

#[tokio::test]
async fn redis_down_is_an_error_not_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = RedisServer::start(dir.path());
    let s = redis_store(&r, "d").await;
    s.migrate().await.unwrap();
    r.kill();
    let started = std::time::Instant::now();
    let t = mediagate::tokens::UserToken::generate().unwrap();
    let f = mediagate::tokens::FileToken::generate().unwrap();
    assert!(s.lookup(&t, &f, None).await.is_err());
    assert!(s.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
    r.restart();
    // The same handle reconnects by itself: no new store, no restart of the caller.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.ping().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the store did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(s.lookup(&t, &f, None).await.is_ok());
}

async fn futures_join<F, Fut>(n: usize, f: F) -> Vec<Arc<dyn Store>>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Store>>,
{
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(f().await);
    }
    out
}

/// Each thread has its own connection, driven by that thread's runtime. A thread that starts
/// after another exited must not inherit the exited one's connection, whose runtime is gone
/// (the thread-local slots are handed on): this is what an actix worker leaves behind at
/// shutdown, when the audit log writes its last batch.
#[test]
fn a_new_thread_does_not_inherit_an_exited_threads_connection() {
    let dir = tempfile::tempdir().unwrap();
    let r = RedisServer::start(dir.path());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt.block_on(redis_store(&r, "threads"));
    rt.block_on(store.migrate()).expect("migrate");
    for round in 0..3 {
        let store = Arc::clone(&store);
        let version = std::thread::spawn(move || {
            let own = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            own.block_on(store.schema_version())
        })
        .join()
        .expect("thread");
        assert_eq!(
            version.expect("a new thread's store call"),
            mediagate::store::migrate::CURRENT,
            "round {round}"
        );
    }
}

/// The version check reads a version from one server and from a cluster, where `INFO` is
/// answered by every node: a reply it cannot read would leave an old server unreported.
#[tokio::test]
async fn the_redis_version_is_read_from_a_server_and_from_a_cluster() {
    use mediagate::store::redis::RedisStore;
    let dir = tempfile::tempdir().unwrap();
    let single = RedisServer::start(&dir.path().join("one"));
    let cluster = support::topology::RedisCluster::start(&dir.path().join("cluster"));
    let installed = single
        .info("server", "redis_version")
        .and_then(|v| {
            let mut p = v.split('.').map(|n| n.parse::<u32>().ok());
            Some((p.next()??, p.next()??))
        })
        .expect("redis-server's own version");
    for url in [single.url(), cluster.url()] {
        let parsed = mediagate::config::StoreUrl::parse(&url).unwrap();
        let store = RedisStore::new(&parsed, "v", TIMEOUT, None).unwrap();
        assert_eq!(
            store.server_version().await.unwrap(),
            Some(installed),
            "{url}"
        );
    }
}
