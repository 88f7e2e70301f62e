//! The Lua scripts the store runs, each in a file of its own under `scripts/`. Each touches
//! exactly one key, so none needs two keys in one hash slot.

use redis::Script;

/// Scripts are hashed once; `invoke_async` uses EVALSHA and falls back to EVAL after a
/// `SCRIPT FLUSH` or a restart of Redis.
pub(super) struct Scripts {
    /// Sets a key only over the expected value.
    pub cas_set: Script,
    /// Deletes a key only while it holds the expected value.
    pub cas_del: Script,
    /// Deletes and returns a value (GETDEL, which Redis < 6.2 lacks).
    pub take: Script,
    /// Deletes each hash field that still holds its expected value.
    pub hdel_unchanged: Script,
    /// Indexes a session under its user, the index outliving its longest session.
    pub index_session: Script,
    /// Appends a batch of audit events to a stream (see `events`).
    pub append_events: Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            cas_set: Script::new(include_str!("scripts/cas_set.lua")),
            cas_del: Script::new(include_str!("scripts/cas_del.lua")),
            take: Script::new(include_str!("scripts/take.lua")),
            hdel_unchanged: Script::new(include_str!("scripts/hdel_unchanged.lua")),
            index_session: Script::new(include_str!("scripts/index_session.lua")),
            append_events: Script::new(include_str!("scripts/append_events.lua")),
        }
    }
}
