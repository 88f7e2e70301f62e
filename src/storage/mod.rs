//! Where file bytes live: a local directory, or an S3-compatible bucket. Either way a file's
//! bytes are at its storage path (`{2 hex}/{file id}`), written whole before any token points at
//! them, and nginx serves them: from its internal location on disk, or by fetching the object
//! with a presigned URL mediagate gives it on each allow.

mod bucket;
pub mod copy;
mod local;

use futures_util::Stream;
use futures_util::stream::BoxStream;

pub use bucket::{BucketError, BucketStorage};
pub use local::{LocalStorage, SWEEP_MIN_AGE};

use crate::config::{StorageSettings, StorageUrl};
use crate::ids::FileId;
use crate::paths::StoragePath;

/// Why an upload could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// More than the limit was sent.
    #[error("upload exceeds {0} bytes")]
    TooLarge(u64),
    /// The root is gone (an unmounted volume, say). It is never re-created at upload time:
    /// that would write onto whatever lies beneath the mount point.
    #[error("the storage root {0} does not exist")]
    RootMissing(String),
    /// The client's body ended in an error.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// The storage root could not be written.
    #[error("writing to the storage root failed")]
    Io(#[from] std::io::Error),
    /// The bucket refused the object, or could not be reached.
    #[error("writing to the bucket failed")]
    Bucket(#[source] object_store::Error),
}

/// A file written durably at its final path, not yet registered.
#[derive(Debug)]
pub struct Stored {
    /// Where the bytes now are.
    pub storage_path: StoragePath,
    /// How many bytes were written.
    pub size: u64,
}

/// A file's bytes, in chunks; an error ends the stream.
pub type ByteStream = BoxStream<'static, Result<bytes::Bytes, std::io::Error>>;

/// Why the storage could not do what was asked (outside an upload).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage root could not be read or written.
    #[error("the storage root failed")]
    Io(#[from] std::io::Error),
    /// The bucket failed.
    #[error(transparent)]
    Bucket(#[from] BucketError),
}

/// The storage of this deployment.
#[derive(Debug, Clone)]
pub enum Storage {
    /// A directory nginx serves from.
    Local(LocalStorage),
    /// A bucket nginx fetches objects from.
    Bucket(std::sync::Arc<BucketStorage>),
}

impl Storage {
    /// The storage `storage.url` names (validated with the settings); nothing is sent or
    /// created yet.
    pub fn open(settings: &StorageSettings) -> Result<Self, StorageError> {
        match settings.location() {
            Ok(StorageUrl::Local(root)) => Ok(Self::Local(LocalStorage::new(root))),
            Ok(StorageUrl::Bucket { bucket, prefix }) => Ok(Self::Bucket(std::sync::Arc::new(
                BucketStorage::new(&bucket, &prefix, &settings.s3)?,
            ))),
            Err(why) => Err(StorageError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                why,
            ))),
        }
    }

    /// Where the bytes are, for messages.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(l) => l.root().display().to_string(),
            Self::Bucket(b) => b.describe(),
        }
    }

    /// The bucket, if the bytes are in one.
    pub fn bucket(&self) -> Option<&BucketStorage> {
        match self {
            Self::Local(_) => None,
            Self::Bucket(b) => Some(b),
        }
    }

    /// Creates what a local root needs (at start-up, so errors surface early).
    pub fn prepare(&self) -> std::io::Result<()> {
        match self {
            Self::Local(l) => l.prepare(),
            Self::Bucket(_) => Ok(()),
        }
    }

    /// Streams `body` to the bytes of `id`, refusing more than `max_bytes`; on any failure
    /// nothing is left.
    pub async fn write<S, B, E>(
        &self,
        id: &FileId,
        body: S,
        max_bytes: u64,
    ) -> Result<Stored, UploadError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        match self {
            Self::Local(l) => l.write(id, body, max_bytes).await,
            Self::Bucket(b) => b.write(id, body, max_bytes).await,
        }
    }

    /// Removes a file's bytes; bytes that are not there are no error.
    pub async fn remove(&self, path: &StoragePath) -> Result<(), StorageError> {
        match self {
            Self::Local(l) => Ok(l.remove(path).await?),
            Self::Bucket(b) => Ok(b.remove(path).await?),
        }
    }

    /// Removes what interrupted uploads left in a local root (a bucket keeps no half-written
    /// object: see `bucket`).
    pub async fn sweep_incoming(&self) -> std::io::Result<usize> {
        match self {
            Self::Local(l) => l.sweep_incoming(SWEEP_MIN_AGE).await,
            Self::Bucket(_) => Ok(0),
        }
    }

    /// A file's bytes, as a stream of chunks, and their size. `None` when they are not there.
    pub async fn read(
        &self,
        path: &StoragePath,
    ) -> Result<Option<(ByteStream, u64)>, StorageError> {
        match self {
            Self::Local(l) => Ok(l.read(path).await?),
            Self::Bucket(b) => Ok(b.read(path).await?),
        }
    }

    /// Whether the bytes can be reached: the root is a directory, the bucket answers.
    pub async fn ping(&self) -> Result<(), StorageError> {
        match self {
            Self::Local(l) => l.ping().await.map_err(StorageError::Io),
            Self::Bucket(b) => Ok(b.ping().await?),
        }
    }
}
