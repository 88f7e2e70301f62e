//! What the admin API reads from paths and bodies: ids, and whole numbers (seconds, bytes).

use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{AdminError, Missing};
use crate::ids::{FileId, UserId};

/// `{user_id}` in a path: the application's user id.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct UserPath {
    /// The application's user id.
    #[param(pattern = r"^[A-Za-z0-9._@-]{1,128}$")]
    user_id: String,
}

/// `{file_id}` in a path: mediagate's id of a file.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct FilePath {
    /// mediagate's id of the file.
    #[param(pattern = r"^[A-Za-z0-9._@-]{1,128}$")]
    file_id: String,
}

/// `{file_id}/grants/{user_id}`: a file and a user it is shared with.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub(super) struct GrantPath {
    /// mediagate's id of the file.
    #[param(pattern = r"^[A-Za-z0-9._@-]{1,128}$")]
    file_id: String,
    /// The application's id of the user.
    #[param(pattern = r"^[A-Za-z0-9._@-]{1,128}$")]
    user_id: String,
}

impl UserPath {
    pub fn user_id(&self) -> Result<UserId, AdminError> {
        user_id(&self.user_id)
    }
}

impl FilePath {
    pub fn file_id(&self) -> Result<FileId, AdminError> {
        file_id(&self.file_id)
    }
}

impl GrantPath {
    pub fn file_id(&self) -> Result<FileId, AdminError> {
        file_id(&self.file_id)
    }

    pub fn user_id(&self) -> Result<UserId, AdminError> {
        user_id(&self.user_id)
    }
}

/// A user id from a path or a body.
pub(super) fn user_id(raw: &str) -> Result<UserId, AdminError> {
    UserId::parse(raw).map_err(|e| AdminError::InvalidInput(format!("user_id: {e}")))
}

/// A file id from a URL: outside the id alphabet is invalid input; well-formed but not one
/// of ours cannot name a file.
pub(super) fn file_id(raw: &str) -> Result<FileId, AdminError> {
    crate::ids::validate_id(raw).map_err(|e| AdminError::InvalidInput(format!("file_id: {e}")))?;
    FileId::parse(raw).map_err(|_| AdminError::NotFound(Missing::File))
}

/// A count (of seconds, of bytes): a non-negative JSON integer, written `60` or `60.0` (JSON
/// Schema counts both as integers, so clients may send either).
pub(super) fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 9_007_199_254_740_992.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| serde::de::Error::custom("expected a whole, non-negative number"))
}

/// As `whole_number`; `null` (or no field) means "the default".
pub(super) fn whole_number_opt<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u64>, D::Error> {
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => whole_number(serde_json::Value::Number(n))
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}
