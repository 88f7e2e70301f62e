//! Why the store could not answer. Every variant means "could not find out", never "no":
//! absence is `Ok(None)`, and the auth listener turns any of these into 503.

use crate::model::ChangeError;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("store did not answer in time")]
    Timeout,
    #[error("corrupt record under {key}")]
    Corrupt {
        key: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("store schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew { found: u32, supported: u32 },
    #[error("another writer holds the lease on this record or on the migration; try again")]
    Busy,
    #[error("a record with this id or token already exists")]
    Conflict,
    #[error("invalid store URL: {0}")]
    Url(String),
    #[error(transparent)]
    Change(#[from] ChangeError),
    #[error("invalid event cursor")]
    Cursor,
}

impl StoreError {
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(e))
    }

    /// A value under `key` that is not what mediagate writes there, for a reason in words.
    pub(crate) fn corrupt(key: &str, what: &str) -> Self {
        Self::Corrupt {
            key: key.to_owned(),
            source: serde::de::Error::custom(what),
        }
    }
}
