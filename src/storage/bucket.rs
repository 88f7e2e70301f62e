//! File bytes in an S3-compatible bucket (`storage.url = s3://BUCKET[/PREFIX]`), through
//! `object_store`: its S3 client writes and deletes, and its `Signer` presigns (SigV4) the URLs
//! nginx fetches objects with and the application's clients upload to.
//!
//! An object's key is `PREFIX/{storage path}`: the same `{2 hex}/{file id}` as on disk, so a
//! local root copied into a bucket keeps every URL. Credentials and endpoint come from the AWS
//! SDKs' environment variables, overridden by `[storage.s3]`.
//!
//! nginx asks for a presigned URL on every allowed read, so signing is on the decision's path.
//! A URL is reused, per worker thread, for half of its validity: the decision is still made on
//! every request, and the URL only ever lives inside nginx for one request.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::signer::{HeaderValue, Method, SignedUrlOptions, Signer};
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use secrecy::ExposeSecret;

use super::{Stored, UploadError};
use crate::config::S3Settings;
use crate::ids::FileId;
use crate::paths::StoragePath;

/// Bodies up to this size are one `PUT`; larger ones a multipart upload of parts this size.
const PART: usize = 8 << 20;
/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;
/// Presigned URLs kept per worker thread before the cache starts over.
const CACHED_URLS: usize = 10_000;
/// The key prefix (under `storage.s3.prefix`) of direct uploads not yet completed. A bucket
/// lifecycle rule on it can expire what a client sends after its upload has ended.
pub const STAGING: &str = ".incoming";

/// Why the bucket could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BucketError {
    /// The bucket's client could not be built from the settings.
    #[error("storage.s3: {0}")]
    Settings(#[source] object_store::Error),
    /// The bucket answered with an error, or could not be reached.
    #[error("the bucket failed")]
    Store(#[from] object_store::Error),
}

/// A bucket, as mediagate's storage.
#[derive(Debug)]
pub struct BucketStorage {
    /// Every operation but presigning uploads.
    store: Arc<AmazonS3>,
    /// Presigns direct uploads for the endpoint the application's clients reach.
    uploads: Arc<AmazonS3>,
    prefix: String,
    bucket: String,
    /// Validity of the URLs nginx fetches objects with.
    presign: Duration,
}

impl BucketStorage {
    /// The bucket's clients; nothing is sent yet.
    pub fn new(bucket: &str, prefix: &str, s3: &S3Settings) -> Result<Self, BucketError> {
        crate::use_ring_tls();
        let builder = |endpoint: Option<&String>| {
            // Bounded, so that a bucket that is down is an error within seconds (an upload's
            // 503, readiness failing), not after object_store's default three minutes. Set
            // before the AWS_* variables are read: client options given later would replace
            // those the variables set (AWS_ALLOW_HTTP among them).
            let mut b = AmazonS3Builder::new()
                .with_client_options(
                    ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(2))
                        .with_timeout(Duration::from_secs(60)),
                )
                .with_retry(RetryConfig {
                    max_retries: 2,
                    retry_timeout: Duration::from_secs(10),
                    ..RetryConfig::default()
                });
            for (key, value) in std::env::vars() {
                if let Some(key) = key
                    .strip_prefix("AWS_")
                    .and_then(|_| key.to_ascii_lowercase().parse().ok())
                {
                    b = b.with_config(key, value);
                }
            }
            b = b.with_bucket_name(bucket);
            if let Some(r) = &s3.region {
                b = b.with_region(r);
            }
            if let Some(e) = endpoint {
                b = b.with_endpoint(e);
            }
            if let Some(k) = &s3.access_key_id {
                b = b.with_access_key_id(k);
            }
            if let Some(k) = &s3.secret_access_key {
                b = b.with_secret_access_key(k.expose_secret());
            }
            if let Some(t) = &s3.session_token {
                b = b.with_token(t.expose_secret());
            }
            if let Some(h) = s3.allow_http {
                b = b.with_allow_http(h);
            }
            b.build().map(Arc::new).map_err(BucketError::Settings)
        };
        let store = builder(s3.endpoint.as_ref())?;
        let uploads = match &s3.upload_endpoint {
            Some(e) => builder(Some(e))?,
            None => Arc::clone(&store),
        };
        Ok(Self {
            store,
            uploads,
            prefix: prefix.to_owned(),
            bucket: bucket.to_owned(),
            presign: Duration::from_secs(s3.presign_secs),
        })
    }

    /// The bucket's name and prefix, for messages.
    pub fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// Validity of the URLs nginx fetches objects with, in seconds.
    pub fn presign_secs(&self) -> u64 {
        self.presign.as_secs()
    }

    /// Where a direct upload's bytes land before it is completed: apart from every storage
    /// path, so that its presigned `PUT`, still valid after completion, can never reach a
    /// registered file's object.
    fn staging_key(&self, id: &FileId) -> ObjectPath {
        let key = format!("{STAGING}/{}", id.as_str());
        if self.prefix.is_empty() {
            ObjectPath::from(key)
        } else {
            ObjectPath::from(format!("{}/{key}", self.prefix))
        }
    }

    /// The object key of a storage path.
    fn key(&self, path: &StoragePath) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(path.as_str())
        } else {
            ObjectPath::from(format!("{}/{}", self.prefix, path.as_str()))
        }
    }

    /// Streams `body` into the object of `id`, refusing more than `max_bytes`. A refused or
    /// broken upload leaves no object: a single `PUT` is sent only once the whole body is in,
    /// and a multipart upload is aborted.
    pub async fn write<S, B, E>(
        &self,
        id: &FileId,
        mut body: S,
        max_bytes: u64,
    ) -> Result<Stored, UploadError>
    where
        S: Stream<Item = Result<B, E>> + Unpin,
        B: AsRef<[u8]>,
        E: std::fmt::Display,
    {
        let storage_path = StoragePath::for_file(id);
        let key = self.key(&storage_path);
        let mut first = Vec::new();
        let mut size: u64 = 0;
        let next =
            |chunk: Option<Result<B, E>>, size: &mut u64| -> Result<Option<B>, UploadError> {
                match chunk {
                    None => Ok(None),
                    Some(Err(e)) => Err(UploadError::Body(e.to_string())),
                    Some(Ok(c)) => {
                        *size += c.as_ref().len() as u64;
                        if *size > max_bytes {
                            return Err(UploadError::TooLarge(max_bytes));
                        }
                        Ok(Some(c))
                    }
                }
            };
        // Up to one part in memory: most uploads end there, and are one request.
        while first.len() < PART {
            match next(body.next().await, &mut size)? {
                Some(c) => first.extend_from_slice(c.as_ref()),
                None => {
                    self.store
                        .put(&key, PutPayload::from(first))
                        .await
                        .map_err(bucket)?;
                    return Ok(Stored { storage_path, size });
                }
            }
        }
        let upload = self.store.put_multipart(&key).await.map_err(bucket)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        writer.write(&first);
        drop(first);
        let result = async {
            while let Some(c) = next(body.next().await, &mut size)? {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(bucket)?;
                writer.write(c.as_ref());
            }
            Ok::<_, UploadError>(())
        }
        .await;
        match result {
            Ok(()) => {
                writer.finish().await.map_err(bucket)?;
                Ok(Stored { storage_path, size })
            }
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(error = %abort, "Could not abort a multipart upload; a lifecycle rule (AbortIncompleteMultipartUpload) removes its parts.");
                }
                Err(e)
            }
        }
    }

    /// Removes an object; one that is not there is no error.
    pub async fn remove(&self, path: &StoragePath) -> Result<(), BucketError> {
        match self.store.delete(&self.key(path)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The size of an object, `None` if there is none.
    pub async fn size(&self, path: &StoragePath) -> Result<Option<u64>, BucketError> {
        match self.store.head(&self.key(path)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// An object's bytes and size; `None` if there is no object.
    pub async fn read(
        &self,
        path: &StoragePath,
    ) -> Result<Option<(super::ByteStream, u64)>, BucketError> {
        match self.store.get(&self.key(path)).await {
            Ok(got) => {
                let size = got.meta.size;
                let stream = got.into_stream().map(|c| c.map_err(std::io::Error::other));
                Ok(Some((Box::pin(stream), size)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the bucket answers: a `HEAD` of a key that is never written, which any reachable
    /// bucket answers with "not found".
    pub async fn ping(&self) -> Result<(), BucketError> {
        let probe = if self.prefix.is_empty() {
            ObjectPath::from(".mediagate-ready")
        } else {
            ObjectPath::from(format!("{}/.mediagate-ready", self.prefix))
        };
        match self.store.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The URL nginx fetches the object at `path` with, for a `GET` or (`head`) a `HEAD`: the
    /// signature binds the method, so a HEAD gets a URL of its own.
    pub async fn fetch_url(&self, path: &StoragePath, head: bool) -> Result<String, BucketError> {
        let reuse = self.presign / 2;
        let now = Instant::now();
        let hit = URLS.with(|urls| {
            urls.borrow()[usize::from(head)]
                .get(path.as_str())
                .filter(|(_, at)| now.duration_since(*at) < reuse)
                .map(|(url, _)| url.clone())
        });
        if let Some(url) = hit {
            return Ok(url);
        }
        let method = if head { Method::HEAD } else { Method::GET };
        let url = self
            .store
            .signed_url(method, &self.key(path), self.presign)
            .await?
            .to_string();
        URLS.with(|urls| {
            let urls = &mut urls.borrow_mut()[usize::from(head)];
            if urls.len() >= CACHED_URLS {
                urls.clear();
            }
            urls.insert(path.as_str().to_owned(), (url.clone(), now));
        });
        Ok(url)
    }

    /// The size of direct upload `id`'s staged object, `None` if none was sent.
    pub async fn staged_size(&self, id: &FileId) -> Result<Option<u64>, BucketError> {
        match self.store.head(&self.staging_key(id)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves direct upload `id`'s staged object to the file's storage path: a server-side copy,
    /// then the staged object's removal. Once the copy is made the file is whole, so a failed
    /// removal is only logged (the `.incoming/` lifecycle rule takes the leftover); failing
    /// there would refuse an upload whose bytes are already in place.
    pub async fn promote(&self, id: &FileId, path: &StoragePath) -> Result<(), BucketError> {
        self.store
            .copy(&self.staging_key(id), &self.key(path))
            .await?;
        if let Err(e) = self.remove_staged(id).await {
            tracing::warn!(error = %e, upload = %id, "Could not remove a completed direct upload's staged object.");
        }
        Ok(())
    }

    /// Removes direct upload `id`'s staged object; one that is not there is no error.
    pub async fn remove_staged(&self, id: &FileId) -> Result<(), BucketError> {
        match self.store.delete(&self.staging_key(id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// A presigned `PUT` for direct upload `id` (to its staging key), valid for `valid`, which
    /// the client must send with exactly this `Content-Type`.
    pub async fn upload_url(
        &self,
        id: &FileId,
        content_type: &str,
        valid: Duration,
    ) -> Result<String, BucketError> {
        let value = HeaderValue::from_str(content_type).map_err(|e| {
            BucketError::Store(object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })
        })?;
        let options = SignedUrlOptions::default().with_signed_header(
            object_store::signer::HeaderName::from_static("content-type"),
            value,
        );
        Ok(self
            .uploads
            .signed_url_opts(Method::PUT, &self.staging_key(id), valid, &options)
            .await?
            .to_string())
    }
}

/// Presigned URLs by storage path, with when they were signed.
type Urls = HashMap<String, (String, Instant)>;

thread_local! {
    /// This thread's presigned fetch URLs: `[GET, HEAD]`.
    static URLS: RefCell<[Urls; 2]> = RefCell::new([Urls::new(), Urls::new()]);
}

fn bucket(e: object_store::Error) -> UploadError {
    UploadError::Bucket(e)
}
