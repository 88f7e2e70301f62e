//! The ids of users and files: the application's user ids (any string of a safe alphabet, as
//! the application has them) and mediagate's file ids (random, not secret: the admin API uses
//! them, and they name the bytes on disk).

use std::fmt;

use crate::tokens::{FILE_ID_BYTES, TokenError, from_hex_bytes, hex_bytes, parse_lower_hex};

/// Maximum length of an application id (user ids), per the contract.
pub const MAX_ID_LEN: usize = 128;

/// Why an application id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty, or longer than 128 bytes.
    #[error("must be 1 to 128 characters long")]
    Length,
    /// A character outside `[A-Za-z0-9._@-]`.
    #[error("may contain only A-Z, a-z, 0-9, '.', '_', '@' and '-'")]
    Alphabet,
}

/// The application's own id for a user: 1–128 characters of `[A-Za-z0-9._@-]`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl TryFrom<String> for UserId {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}

impl From<UserId> for String {
    fn from(t: UserId) -> String {
        t.0
    }
}

/// Checks the id alphabet of the contract (`[A-Za-z0-9._@-]{1,128}`), which every id in an
/// admin URL must follow.
pub fn validate_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(IdError::Length);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'))
    {
        return Err(IdError::Alphabet);
    }
    Ok(())
}

impl UserId {
    /// An id of the application's, checked.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        validate_id(s)?;
        Ok(Self(s.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// mediagate's id for a stored file: a UUID v4 in simple form (32 lowercase hex digits). It is
/// not a secret (the admin API uses it), and it names the file on disk.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FileId(String);

impl TryFrom<String> for FileId {
    type Error = TokenError;
    fn try_from(s: String) -> Result<Self, TokenError> {
        Self::parse(&s)
    }
}

impl From<FileId> for String {
    fn from(t: FileId) -> String {
        t.0
    }
}

impl FileId {
    /// A fresh id (a UUID v4).
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string())
    }

    /// An id as the admin API or the store gave it.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        parse_lower_hex(s, FILE_ID_BYTES * 2)?;
        Ok(Self(s.to_owned()))
    }

    /// The id, 32 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's 16 bytes, as the store's binary layout holds it.
    pub fn to_bytes(&self) -> [u8; FILE_ID_BYTES] {
        hex_bytes(&self.0)
    }

    /// The id of 16 stored bytes; an error for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenError> {
        from_hex_bytes(bytes).map(Self).ok_or(TokenError::Length)
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_ids_round_trip_through_their_bytes() {
        let id = FileId::generate();
        assert_eq!(FileId::from_bytes(&id.to_bytes()).unwrap(), id);
        for len in [0, 15, 17, 32] {
            assert_eq!(
                FileId::from_bytes(&vec![7; len]).err(),
                Some(TokenError::Length)
            );
        }
    }

    #[test]
    fn user_ids_follow_the_contract() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("a.b_c-9").is_ok());
        assert_eq!(UserId::parse(""), Err(IdError::Length));
        assert_eq!(UserId::parse(&"a".repeat(129)), Err(IdError::Length));
        assert!(UserId::parse(&"a".repeat(128)).is_ok());
        for bad in ["a/b", "a b", "é", "a%2f", "..\\x", "a:b"] {
            assert_eq!(UserId::parse(bad), Err(IdError::Alphabet), "{bad}");
        }
    }
}
