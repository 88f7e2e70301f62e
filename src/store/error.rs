//! Why the store could not answer. Every variant means "could not find out", never "no":
//! absence is `Ok(None)`, and the auth listener turns any of these into 503.

use crate::model::ChangeError;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached, or refused the command.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store did not answer within its bound.
    #[error("store did not answer in time")]
    Timeout,
    /// A value that is not what mediagate writes.
    #[error("corrupt record under {key}")]
    Corrupt {
        /// The key it was found under.
        key: String,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// The store was migrated by a newer mediagate.
    #[error("store schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew {
        /// The store's version.
        found: u32,
        /// The newest this binary knows.
        supported: u32,
    },
    /// Another writer holds the lease.
    #[error("another writer holds the lease on this record or on the migration; try again")]
    Busy,
    /// A concurrent change, or a token or id that exists already.
    #[error("a record with this id or token already exists")]
    Conflict,
    /// `store.url` names no store.
    #[error("invalid store URL: {0}")]
    Url(String),
    /// The change cannot be applied to the record.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// An `after` that is not a cursor given out by `GET /v1/events`.
    #[error("invalid event cursor")]
    Cursor,
}

impl StoreError {
    /// [`StoreError::Unavailable`] with its cause.
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
