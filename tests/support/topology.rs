//! Redis beyond one node, started by the test itself on loopback: a Redis Cluster of three
//! masters with one replica each, and a master with a replica watched by three Sentinels.
//! Both can lose their master on purpose and wait until a replica has taken over.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::eventually;
use super::redis::RedisServer;

/// Six `redis-server --cluster-enabled yes` processes joined by `redis-cli --cluster create`.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
    /// Indexes of nodes killed on purpose.
    pub down: Vec<usize>,
}

impl RedisCluster {
    pub fn start(dir: &Path) -> Self {
        let nodes: Vec<RedisServer> = (0..6)
            .map(|i| {
                RedisServer::start_with(
                    &dir.join(format!("node{i}")),
                    &[
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        // Quick failure detection, so the failover test takes seconds.
                        "--cluster-node-timeout",
                        "1000",
                    ],
                )
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new(super::require("redis-cli"))
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = Self {
            nodes,
            down: Vec::new(),
        };
        cluster.wait_healthy();
        cluster
    }

    /// The URL mediagate takes: every node as a seed.
    pub fn url(&self) -> String {
        let seeds: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis+cluster://{}", seeds.join(","))
    }

    fn up(&self) -> impl Iterator<Item = (usize, &RedisServer)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.down.contains(i))
    }

    /// Every live node says the cluster is ok, and sees three masters serving all slots.
    pub fn wait_healthy(&self) {
        eventually("a healthy cluster", Duration::from_secs(30), || {
            self.up()
                .all(|(_, n)| {
                    n.command(&["CLUSTER", "INFO"])
                        .is_some_and(|i| i.contains("cluster_state:ok"))
                        && n.info("replication", "role").is_some()
                })
                .then_some(())
        });
    }

    /// The index of the live master that serves `key` (text, or a layout 3 record's bytes).
    pub fn master_for(&self, key: impl AsRef<[u8]>) -> usize {
        let (_, any) = self.up().next().expect("a live node");
        let slot: u16 = any
            .command_bytes(&[b"CLUSTER", b"KEYSLOT", key.as_ref()])
            .and_then(|r| {
                String::from_utf8_lossy(&r)
                    .trim()
                    .trim_start_matches(':')
                    .parse()
                    .ok()
            })
            .expect("CLUSTER KEYSLOT");
        let nodes = any.command(&["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        for line in nodes.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            let serves = f[8..].iter().any(|r| {
                let (a, b) = r.split_once('-').unwrap_or((r, r));
                matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= slot && slot <= b)
            });
            if serves {
                let port: u16 = f[1]
                    .split(['@', ':'])
                    .nth(1)
                    .and_then(|p| p.parse().ok())
                    .expect("node port");
                return self
                    .nodes
                    .iter()
                    .position(|n| n.port == port)
                    .expect("known node");
            }
        }
        panic!("no master serves slot {slot}:\n{nodes}");
    }

    /// Waits until every live master's replicas have everything it had written when called.
    pub fn wait_replicated(&self) {
        for (_, master) in self
            .up()
            .filter(|(_, n)| n.info("replication", "role").as_deref() == Some("master"))
        {
            wait_caught_up(master);
        }
    }

    /// Kills master `i` (after its writes reached its replica) and waits until a replica has
    /// taken its slots over and the cluster is ok again. Returns the promoted node's index.
    pub fn fail_master(&mut self, i: usize) -> usize {
        self.wait_replicated();
        let port = self.nodes[i].port.to_string();
        let replica = self
            .up()
            .find(|(_, n)| n.info("replication", "master_port").as_deref() == Some(&port))
            .map(|(j, _)| j)
            .expect("the master has a replica");
        self.nodes[i].kill();
        self.down.push(i);
        eventually("the replica's promotion", Duration::from_secs(30), || {
            (self.nodes[replica].info("replication", "role").as_deref() == Some("master"))
                .then_some(())
        });
        self.wait_healthy();
        replica
    }
}

/// Waits until the master's replicas have acknowledged the offset it has now (writes go on
/// meanwhile: the audit log of the requests a test is sending).
fn wait_caught_up(master: &RedisServer) {
    let offsets = |raw: &str| -> (u64, Vec<u64>) {
        let own = raw
            .lines()
            .find_map(|l| l.strip_prefix("master_repl_offset:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(u64::MAX);
        let replicas = raw
            .lines()
            .filter(|l| l.starts_with("slave") && l.contains("state=online"))
            .filter_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("offset=")))
            .filter_map(|v| v.trim().parse().ok())
            .collect();
        (own, replicas)
    };
    let target = master
        .command(&["INFO", "replication"])
        .map(|raw| offsets(&raw).0)
        .expect("the master answers");
    eventually("replicas caught up", Duration::from_secs(10), || {
        let raw = master.command(&["INFO", "replication"])?;
        let (_, replicas) = offsets(&raw);
        (!replicas.is_empty() && replicas.iter().all(|&o| o >= target)).then_some(())
    });
}

/// A master, its replica, and three Sentinels (quorum 2) that fail over within seconds.
pub struct SentinelSet {
    pub master: RedisServer,
    pub replica: RedisServer,
    pub sentinels: Vec<RedisServer>,
}

pub const SENTINEL_MASTER: &str = "mediagate";

impl SentinelSet {
    pub fn start(dir: &Path) -> Self {
        let master = RedisServer::start(&dir.join("master"));
        let port = master.port.to_string();
        let replica =
            RedisServer::start_with(&dir.join("replica"), &["--replicaof", "127.0.0.1", &port]);
        eventually("the replica's link", Duration::from_secs(10), || {
            (replica.info("replication", "master_link_status").as_deref() == Some("up"))
                .then_some(())
        });
        let conf = format!(
            "sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {port} 2\n\
             sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
             sentinel failover-timeout {SENTINEL_MASTER} 5000\n\
             sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
        );
        let sentinels: Vec<RedisServer> = (0..3)
            .map(|i| RedisServer::start_sentinel(&dir.join(format!("sentinel{i}")), &conf))
            .collect();
        // Every sentinel has found the replica and the other sentinels.
        eventually("sentinels in agreement", Duration::from_secs(20), || {
            sentinels
                .iter()
                .all(|s| {
                    s.command(&["SENTINEL", "MASTER", SENTINEL_MASTER])
                        .is_some_and(|r| {
                            r.contains("num-other-sentinels\r\n$1\r\n2\r\n")
                                && r.contains("num-slaves\r\n$1\r\n1\r\n")
                        })
                })
                .then_some(())
        });
        Self {
            master,
            replica,
            sentinels,
        }
    }

    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{SENTINEL_MASTER}", hosts.join(","))
    }

    /// Kills the master once the replica has its writes; waits until the Sentinels have
    /// promoted the replica and name it as master.
    pub fn fail_master(&mut self) {
        wait_caught_up(&self.master);
        self.master.kill();
        let port = self.replica.port.to_string();
        eventually("the promotion", Duration::from_secs(30), || {
            (self.replica.info("replication", "role").as_deref() == Some("master")
                && self.sentinels.iter().all(|s| {
                    s.command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", SENTINEL_MASTER])
                        .is_some_and(|r| r.contains(&port))
                }))
            .then_some(())
        });
    }
}
