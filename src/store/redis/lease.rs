//! Per-record leases: the writers of one user, or of one file, take turns.
//!
//! A change that spans several keys (a rotation touches the old and the new token) cannot be
//! one atomic script on Redis Cluster, where the keys live in different slots. It is a
//! sequence of single-key steps instead, and the lease keeps two writers from interleaving
//! their steps. A lease expires by itself, so a crashed writer blocks its record for at most
//! [`LEASE`]; a holder stops writing once half of that has passed, so its steps can never
//! overlap with the next holder's.

use std::time::Duration;

use redis::Script;
use tokio::time::Instant;

use super::conn::Conn;
use super::unavailable;
use crate::store::StoreError;

/// How long a record's lease lasts if its holder never releases it.
pub const LEASE: Duration = Duration::from_secs(10);
/// How long a writer waits for a busy record before answering "conflict, try again".
pub const WAIT: Duration = Duration::from_secs(3);

/// A held lease. Release it with [`release`]; dropping it lets it expire.
pub struct Lease {
    key: String,
    holder: String,
    /// After this, the holder must not start another write.
    deadline: Instant,
}

impl Lease {
    /// Fails once the lease may be near its end, before the next write step.
    pub fn check(&self) -> Result<(), StoreError> {
        if Instant::now() >= self.deadline {
            return Err(StoreError::Timeout);
        }
        Ok(())
    }
}

/// Takes a lease, or finds it already ours: a connection layer may resend a command whose
/// answer it lost (`conn` does after a Sentinel failover), and the resent take must not find
/// our own lease and wait for it to expire.
static TAKE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
    Script::new(
        r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
          if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
          return 0",
    )
});

/// Takes the lease on `key` for `lease`, waiting up to `wait` for the current holder.
pub async fn acquire(
    conn: &mut Conn,
    key: String,
    lease: Duration,
    wait: Duration,
) -> Result<Lease, StoreError> {
    let holder = uuid::Uuid::new_v4().to_string();
    let give_up = Instant::now() + wait;
    let mut pause = Duration::from_millis(2);
    loop {
        let started = Instant::now();
        let got: i64 = TAKE
            .key(&key)
            .arg(&holder)
            .arg(lease.as_millis() as u64)
            .invoke_async(conn)
            .await
            .map_err(unavailable)?;
        if got == 1 {
            return Ok(Lease {
                key,
                holder,
                deadline: started + lease / 2,
            });
        }
        if Instant::now() >= give_up {
            return Err(StoreError::Busy);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Extends a held lease to `lease` from now, for work longer than one lease (a migration's
/// data step); an error if it is no longer ours, so that the holder stops before another
/// process's steps can interleave with its own.
pub async fn renew(conn: &mut Conn, held: &mut Lease, lease: Duration) -> Result<(), StoreError> {
    static RENEW: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
        Script::new(
            r"if redis.call('GET', KEYS[1]) == ARGV[1] then
                return redis.call('PEXPIRE', KEYS[1], ARGV[2])
              end
              return 0",
        )
    });
    held.check()?;
    let started = Instant::now();
    let renewed: i64 = RENEW
        .key(&held.key)
        .arg(&held.holder)
        .arg(lease.as_millis() as u64)
        .invoke_async(conn)
        .await
        .map_err(unavailable)?;
    if renewed != 1 {
        return Err(StoreError::Busy);
    }
    held.deadline = started + lease / 2;
    Ok(())
}

/// Gives the lease back, if it is still ours.
pub async fn release(conn: &mut Conn, lease: Lease) {
    static RELEASE: std::sync::LazyLock<Script> = std::sync::LazyLock::new(|| {
        Script::new(
            r"if redis.call('GET', KEYS[1]) == ARGV[1] then
                return redis.call('DEL', KEYS[1])
              end
              return 0",
        )
    });
    let released = RELEASE
        .key(&lease.key)
        .arg(&lease.holder)
        .invoke_async::<i64>(conn)
        .await;
    if let Err(e) = released {
        // It expires by itself; the change it guarded already succeeded or failed.
        tracing::warn!(error = %e, key = %lease.key, "Could not release a lease; it will expire.");
    }
}
