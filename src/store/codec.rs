//! JSON records in the store: written by [`encode`], read back by [`decode`], and anything
//! else under a key is corruption, never a panic.

use serde::Serialize;

use super::StoreError;

/// Parses a JSON record read from the store under `key`.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    key: &str,
    raw: &str,
) -> Result<T, StoreError> {
    decode_bytes(key, raw.as_bytes())
}

/// [`decode`] for a value read as bytes.
pub(crate) fn decode_bytes<T: serde::de::DeserializeOwned>(
    key: &str,
    raw: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(raw).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}

/// Serializes a record for the store. Our records always serialize; an error here would be a
/// bug in a derive, reported as corruption rather than a panic.
pub(crate) fn encode<T: Serialize>(key: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Corrupt {
        key: key.to_owned(),
        source,
    })
}
