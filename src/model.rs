//! The records mediagate keeps and judges: users, files, sessions, callers and audit events.
//!
//! Plain data shared by the store (which keeps them), the session sources (which produce a
//! [`Caller`]) and the decision (which judges them), so that none of those depends on another
//! for its types: `policy` imports this module, never the store.

use serde::{Deserialize, Serialize};

use crate::disposition::DispositionKind;
use crate::ids::{FileId, UserId};
use crate::paths::StoragePath;
use crate::tokens::{FileToken, UserToken};

/// Who may read a file besides its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// The owner, grantees and read-all roles.
    #[default]
    Private,
    /// Any valid session.
    Authenticated,
    /// Anyone holding the URL.
    Public,
}

/// A user known to mediagate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The application's user id.
    #[serde(rename = "u")]
    pub user_id: UserId,
    /// The first path segment of every URL of the user's files.
    #[serde(rename = "t")]
    pub token: UserToken,
    /// Unix seconds.
    #[serde(rename = "c")]
    pub created_at: i64,
}

/// A stored file. Field names are short on purpose: this record exists once per file and the
/// keyspace must stay small at millions of files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileRecord {
    /// mediagate's id of the file; it also names the bytes' storage path.
    #[serde(rename = "i")]
    pub file_id: FileId,
    /// The user who owns the file.
    #[serde(rename = "o")]
    pub owner: UserId,
    /// The second path segment of the file's URL.
    #[serde(rename = "t")]
    pub token: FileToken,
    /// The registered name: the URL's last segment must be exactly this.
    #[serde(rename = "n")]
    pub filename: String,
    /// Where the bytes are, relative to the storage root; never changes.
    #[serde(rename = "p")]
    pub storage_path: StoragePath,
    /// Bytes.
    #[serde(rename = "s")]
    pub size: u64,
    /// The type mediagate built at upload (`media_type`).
    #[serde(rename = "m")]
    pub content_type: String,
    /// Who may read it besides its owner.
    #[serde(rename = "v", default)]
    pub visibility: Visibility,
    /// How browsers are asked to present it (inline only for passive types).
    #[serde(rename = "d")]
    pub disposition: DispositionKind,
    /// Unix seconds.
    #[serde(rename = "c")]
    pub created_at: i64,
    /// Users this file is shared with (besides the owner). Kept in the record so that the
    /// decision stays one read; bounded by [`MAX_GRANTS`].
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<UserId>,
}

/// Most users one file can be shared with. A file meant for more people should use
/// `visibility = authenticated` or share links.
pub const MAX_GRANTS: usize = 1000;

/// A change to one file's record, applied atomically by the store.
#[derive(Debug, Clone, PartialEq)]
pub enum FileChange {
    /// A new file token: the old URL, and every share link bound to it, stop working.
    Rotate(FileToken),
    /// Who may read the file besides its owner.
    Visibility(Visibility),
    /// How browsers are asked to present it.
    Disposition(DispositionKind),
    /// Share it with a user.
    Grant(UserId),
    /// Stop sharing it with a user.
    Revoke(UserId),
}

/// Why a change could not be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The file is already shared with [`MAX_GRANTS`] users.
    #[error("a file can be shared with at most 1000 users")]
    TooManyGrants,
}

impl FileChange {
    /// Applies the change to a record; the one implementation both stores use.
    pub fn apply(&self, f: &mut FileRecord) -> Result<(), ChangeError> {
        match self {
            Self::Rotate(t) => f.token = t.clone(),
            Self::Visibility(v) => f.visibility = *v,
            Self::Disposition(d) => f.disposition = *d,
            Self::Grant(u) => {
                if *u != f.owner && !f.grants.contains(u) {
                    if f.grants.len() >= MAX_GRANTS {
                        return Err(ChangeError::TooManyGrants);
                    }
                    f.grants.push(u.clone());
                }
            }
            Self::Revoke(u) => f.grants.retain(|g| g != u),
        }
        Ok(())
    }
}

/// What happened, for the audit log (`GET /v1/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A decision about a file (allowed or denied).
    Read,
    /// A file was uploaded.
    Upload,
    /// A user's token was rotated.
    RotateUserToken,
    /// A file's token was rotated.
    RotateFileToken,
    /// A file was deleted.
    DeleteFile,
    /// A user was deleted.
    DeleteUser,
    /// A file was shared with a user.
    Grant,
    /// A file stopped being shared with a user.
    Revoke,
    /// A file's visibility changed.
    Visibility,
    /// A file's disposition changed.
    Disposition,
    /// A share link was made.
    Link,
    /// One session was logged out.
    Logout,
    /// Every session of a user was logged out.
    LogoutAll,
}

/// The outcome of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventDecision {
    /// The read was allowed.
    Allow,
    /// The read was denied.
    Deny,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unix milliseconds.
    #[serde(rename = "t")]
    pub at_ms: i64,
    /// What happened.
    #[serde(rename = "k")]
    pub kind: EventKind,
    /// The user acting (a reader's session, or the user an admin call concerns).
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    /// The file it concerns.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<FileId>,
    /// For reads: allowed or denied.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<EventDecision>,
    /// The client's address as nginx saw it, or the admin caller's.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// Counts towards the file's download counter (an allowed GET).
    #[serde(skip)]
    pub download: bool,
}

/// A native session. Stored under the SHA-256 of its id (see [`SessionKey`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Whose session it is.
    #[serde(rename = "u")]
    pub user_id: UserId,
    /// Its roles (see `policy.read_all_roles`).
    #[serde(rename = "r", default)]
    pub roles: Vec<String>,
    /// Unix seconds. Also checked when the session is read (`sessions::native_caller`), so a
    /// store that keeps an expired record (the embedded one until its purge) still denies.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// A direct upload under way: the application's client sends the bytes straight to the bucket
/// with a presigned `PUT`, then the application completes it. Its id is the id the file will
/// have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingUpload {
    /// The upload's id, and the file's once completed; it names the object.
    #[serde(rename = "i")]
    pub file_id: FileId,
    /// Who the file will belong to.
    #[serde(rename = "o")]
    pub owner: UserId,
    /// The name it will be registered under.
    #[serde(rename = "n")]
    pub filename: String,
    /// The type mediagate built from the declared one (and the one the `PUT` must send).
    #[serde(rename = "m")]
    pub content_type: String,
    /// Most bytes the object may have.
    #[serde(rename = "s")]
    pub max_bytes: u64,
    /// Unix seconds: after it the upload cannot be completed, and its object is removed.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// An answer of a `forward` session source's endpoint, kept for `cache_secs` so that every
/// replica reuses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardedCaller {
    /// The user the endpoint named.
    #[serde(rename = "u")]
    pub user_id: UserId,
    /// The roles it named.
    #[serde(rename = "r", default)]
    pub roles: Vec<String>,
    /// Unix seconds: the answer is not used after this.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

/// A caller with a valid session from any source. The policy judges only this.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The application's user id.
    pub user_id: UserId,
    /// Roles, compared with `policy.read_all_roles`.
    pub roles: Vec<String>,
    /// When the session ends (Unix seconds), where its source says: a native session's expiry,
    /// a JWT's `exp`. `None` for an application's own session, which may end at any time.
    pub expires_at: Option<i64>,
}
