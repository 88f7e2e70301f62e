//! The keyspace migrations, in order. Append-only: a shipped migration is never edited; a
//! change of layout is a new numbered file in `migrations/`.
//!
//! Each migration has a Redis script (run once per migration under the migration lock) and an
//! embedded step (run inside the single redb write transaction that records it).

/// One numbered migration.
#[derive(Debug)]
pub struct Migration {
    /// Its number, in order of application.
    pub version: u32,
    /// What it does, for logs.
    pub name: &'static str,
    /// Lua run with `KEYS[1] = {p}:meta` and `ARGV[1] = now` (unix seconds). Idempotent.
    pub redis_lua: &'static str,
}

/// Every migration this binary knows, oldest first.
pub const ALL: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        redis_lua: include_str!("../../migrations/V0001__init.lua"),
    },
    Migration {
        version: 2,
        name: "compact",
        redis_lua: include_str!("../../migrations/V0002__compact.lua"),
    },
    Migration {
        version: 3,
        name: "binary",
        redis_lua: include_str!("../../migrations/V0003__binary.lua"),
    },
];

/// The schema version this binary reads and writes.
pub const CURRENT: u32 = 3;

/// How long `mediagate migrate` waits for a migration another process is running. The
/// running one renews its lock, so this bounds how long a live migration may take (a dead
/// one's lock expires within seconds); the waiting one then finds nothing left and exits 0.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The migrations a store at `version` still needs; a store newer than this binary is refused,
/// since this binary would write records in a layout the store has left behind.
pub fn pending(
    version: u32,
) -> Result<impl Iterator<Item = &'static Migration>, super::StoreError> {
    if version > CURRENT {
        return Err(super::StoreError::SchemaTooNew {
            found: version,
            supported: CURRENT,
        });
    }
    Ok(ALL.iter().filter(move |m| m.version > version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_consecutive_and_end_at_current() {
        for (i, m) in ALL.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1, "{}", m.name);
        }
        assert_eq!(ALL.last().map(|m| m.version), Some(CURRENT));
    }
}
