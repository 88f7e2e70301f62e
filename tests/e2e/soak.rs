//! The soak, on demand (`make soak`, `SOAK_SECONDS`, default 300): nginx + mediagate + Redis
//! under a mixed load (owners, strangers and anonymous readers; rotations, uploads, deletes)
//! with Redis restarts injected. It reports requests, wrong decisions (must be 0), 5xx during
//! faults, recovery time, and mediagate's RSS and open files at start and end.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::app::{ADMIN_TOKEN, Stack, StoreKind};
use crate::support::http;

/// A file as the load knows it: its owner, bytes, and current URL.
#[derive(Clone)]
struct Known {
    owner: usize,
    bytes: Vec<u8>,
    url: String,
    id: String,
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    wrong: AtomicU64,
    unavailable: AtomicU64,
    unexpected_denials: AtomicU64,
}

struct World {
    files: Mutex<Vec<Known>>,
    /// URL -> when it stopped being valid (rotated or deleted).
    dead: Mutex<HashMap<String, Instant>>,
    sessions: Vec<String>,
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn admin(port: u16, method: &str, target: &str, body: &[u8]) -> Option<http::Response> {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    http::send(
        port,
        method,
        target.as_bytes(),
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        body,
    )
    .ok()
}

#[test]
#[ignore = "a long soak: run with `make soak`"]
fn soak() {
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let mut s = Stack::start(StoreKind::Redis);
    let (nginx, admin_port) = (s.nginx.port, s.app.admin_port);
    let users = 4;
    let mut files = Vec::new();
    let mut sessions = Vec::new();
    for u in 0..users {
        s.user(&format!("u{u}"));
        sessions.push(s.session(&format!("u{u}"), 86_400, &[]));
        for n in 0..5 {
            let bytes = format!("file {n} of user {u}").into_bytes();
            let up = s.upload(&format!("u{u}"), &format!("f{n}.txt"), "text/plain", &bytes);
            files.push(Known {
                owner: u,
                bytes,
                url: up["url"].as_str().unwrap().to_owned(),
                id: up["file_id"].as_str().unwrap().to_owned(),
            });
        }
    }
    let world = Arc::new(World {
        files: Mutex::new(files),
        dead: Mutex::new(HashMap::new()),
        sessions,
    });
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let pid = s.app.pid().unwrap();
    // Let the process settle before the baseline.
    for k in world.files.lock().unwrap().clone().iter().take(5) {
        http::get(
            nginx,
            &k.url,
            &[(
                "Cookie",
                &format!("mediagate_session={}", world.sessions[k.owner]),
            )],
        );
    }
    let (rss_start, fds_start) = (rss_kib(pid), fds(pid));
    let started = Instant::now();

    let mut threads = Vec::new();
    for t in 0..2u64 {
        let (world, tally, stop) = (world.clone(), tally.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut i: u64 = t;
            while !stop.load(Ordering::Relaxed) {
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let k = {
                    let files = world.files.lock().unwrap();
                    files[(i >> 33) as usize % files.len()].clone()
                };
                // Owner, stranger, or anonymous.
                let who = (i >> 20) % 3;
                let caller = match who {
                    0 => Some(k.owner),
                    1 => Some((k.owner + 1) % world.sessions.len()),
                    _ => None,
                };
                let cookie = caller.map(|c| format!("mediagate_session={}", world.sessions[c]));
                let headers: Vec<(&str, &str)> =
                    cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
                let sent = Instant::now();
                let Ok(r) = http::send(nginx, "GET", k.url.as_bytes(), &headers, b"") else {
                    continue;
                };
                tally.requests.fetch_add(1, Ordering::Relaxed);
                let died_before = world
                    .dead
                    .lock()
                    .unwrap()
                    .get(&k.url)
                    .is_some_and(|d| *d < sent);
                match r.status {
                    200 if who != 0 || died_before || r.body != k.bytes => {
                        tally.wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    503 => {
                        tally.unavailable.fetch_add(1, Ordering::Relaxed);
                    }
                    401 | 403 if who == 0 && !died_before => {
                        // A rotation between reading the URL and the request: not a leak.
                        tally.unexpected_denials.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
        }));
    }
    // Admin churn: rotations, uploads replacing deletes.
    {
        let (world, stop) = (world.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let k = {
                    let files = world.files.lock().unwrap();
                    files[(n as usize * 7) % files.len()].clone()
                };
                if n.is_multiple_of(5) {
                    // Delete, then upload a replacement for the same owner.
                    let deleted = admin(admin_port, "DELETE", &format!("/v1/files/{}", k.id), b"");
                    if deleted.is_some_and(|r| r.status == 204) {
                        world
                            .dead
                            .lock()
                            .unwrap()
                            .insert(k.url.clone(), Instant::now());
                        let bytes = format!("replacement {n}").into_bytes();
                        let target = format!("/v1/users/u{}/files?filename=r{n}.txt", k.owner);
                        let up = admin(admin_port, "POST", &target, &bytes);
                        let mut files = world.files.lock().unwrap();
                        let idx = files.iter().position(|f| f.id == k.id).unwrap();
                        match up.filter(|u| u.status == 201) {
                            Some(up) => {
                                let j = up.json();
                                files[idx] = Known {
                                    owner: k.owner,
                                    bytes,
                                    url: j["url"].as_str().unwrap().to_owned(),
                                    id: j["file_id"].as_str().unwrap().to_owned(),
                                };
                            }
                            None => {
                                files.remove(idx);
                            }
                        }
                    }
                } else {
                    let target = format!("/v1/files/{}/rotate-token", k.id);
                    let rotated =
                        admin(admin_port, "POST", &target, b"").filter(|r| r.status == 200);
                    if let Some(r) = rotated {
                        let url = r.json()["url"].as_str().unwrap().to_owned();
                        let mut files = world.files.lock().unwrap();
                        if let Some(f) = files.iter_mut().find(|f| f.id == k.id) {
                            let old = std::mem::replace(&mut f.url, url);
                            world.dead.lock().unwrap().insert(old, Instant::now());
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }

    // Faults: kill and restart Redis every 30 s (more often in short runs, so that every run
    // has a few); measure recovery to the first allowed read.
    let every = Duration::from_secs((seconds / 4).clamp(5, 30));
    let mut recoveries = Vec::new();
    let mut unavailable_in_faults = 0;
    let mut warm: Option<(u64, usize)> = None;
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(every);
        if started.elapsed() >= Duration::from_secs(seconds) {
            break;
        }
        let before = tally.unavailable.load(Ordering::Relaxed);
        s.redis.as_mut().unwrap().kill();
        std::thread::sleep(Duration::from_millis(500));
        s.redis.as_mut().unwrap().restart();
        let back = Instant::now();
        let k = world.files.lock().unwrap()[0].clone();
        let cookie = format!("mediagate_session={}", world.sessions[k.owner]);
        loop {
            if http::get(nginx, &k.url, &[("Cookie", &cookie)]).status == 200
                || back.elapsed() > Duration::from_secs(10)
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        recoveries.push(back.elapsed());
        if warm.is_none() {
            // After one full cycle of load and a fault, pools, buffers and caches have grown
            // to their working size: growth from here on would be a leak.
            warm = Some((rss_kib(pid), fds(pid)));
        }
        std::thread::sleep(Duration::from_millis(200));
        unavailable_in_faults += tally.unavailable.load(Ordering::Relaxed) - before;
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let (rss_end, fds_end) = (rss_kib(pid), fds(pid));
    let requests = tally.requests.load(Ordering::Relaxed);
    let wrong = tally.wrong.load(Ordering::Relaxed);
    let worst = recoveries.iter().max().copied().unwrap_or_default();
    let (rss_warm, fds_warm) = warm.unwrap_or((rss_start, fds_start));
    let growth = (rss_end as f64 - rss_warm as f64) / rss_warm.max(1) as f64 * 100.0;
    println!(
        "\nmediagate soak, {seconds} s, Redis store, 2 reader threads + admin churn, Redis killed and restarted every {} s\n",
        every.as_secs()
    );
    println!("| measure | value |\n| --- | --- |");
    println!(
        "| requests through nginx | {requests} ({:.0}/s) |",
        requests as f64 / started.elapsed().as_secs_f64()
    );
    println!(
        "| wrong decisions (a 200 for a stranger, for anonymous, on a dead URL, or with wrong bytes) | {wrong} |"
    );
    println!(
        "| 503 while Redis was down ({} restarts) | {unavailable_in_faults} |",
        recoveries.len()
    );
    println!(
        "| 503 in all | {} |",
        tally.unavailable.load(Ordering::Relaxed)
    );
    println!(
        "| owner denied on a URL rotated mid-request (not a leak) | {} |",
        tally.unexpected_denials.load(Ordering::Relaxed)
    );
    println!(
        "| recovery after Redis returned, worst | {} ms |",
        worst.as_millis()
    );
    println!(
        "| mediagate RSS at start / after warm-up (first fault cycle) / at end | {rss_start} / {rss_warm} / {rss_end} KiB ({growth:+.1}% since warm-up) |"
    );
    println!(
        "| mediagate open files at start / after warm-up / at end | {fds_start} / {fds_warm} / {fds_end} |"
    );

    assert_eq!(wrong, 0, "wrong decisions");
    assert!(worst < Duration::from_secs(2), "slow recovery: {worst:?}");
    assert!(
        growth <= 10.0,
        "RSS grew {growth:.1}% after warm-up: {rss_warm} -> {rss_end} KiB"
    );
    assert!(
        fds_end <= fds_warm + 4,
        "open files grew: {fds_warm} -> {fds_end}"
    );
}
