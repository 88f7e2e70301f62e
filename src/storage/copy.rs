//! `mediagate storage copy --to s3://…`: moves a local storage root into a bucket without
//! changing any URL. An object's key is the file's storage path, the same as on disk, so once
//! the copy is done `storage.url` can point at the bucket and every token, link and record stays.
//!
//! Resumable: a file whose object is already there with its size is not sent again. Checked:
//! every object it sends is read back and compared, byte for byte (by SHA-256), with the file.
//! Nothing on disk is changed or removed.

use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::{BucketStorage, ByteStream, LocalStorage, StorageError};
use crate::ids::FileId;
use crate::paths::StoragePath;

/// What a copy did.
#[derive(Debug, Default)]
pub struct CopyReport {
    /// Files sent and verified.
    pub copied: u64,
    /// Files whose object was there already, with the same size.
    pub already: u64,
    /// Bytes sent.
    pub bytes: u64,
    /// Files that could not be copied or did not read back the same, with why.
    pub failed: Vec<(String, String)>,
}

/// Copies every file under `from` into `to`; `progress` hears of each file as it is done.
pub async fn copy_root(
    from: &LocalStorage,
    to: &BucketStorage,
    mut progress: impl FnMut(&StoragePath, &str),
) -> Result<CopyReport, StorageError> {
    let mut report = CopyReport::default();
    for path in from.files()? {
        match copy_one(from, to, &path).await {
            Ok(Some(size)) => {
                report.copied += 1;
                report.bytes += size;
                progress(&path, "copied");
            }
            Ok(None) => {
                report.already += 1;
                progress(&path, "already there");
            }
            Err(why) => {
                progress(&path, &format!("FAILED: {why}"));
                report.failed.push((path.as_str().to_owned(), why));
            }
        }
    }
    Ok(report)
}

/// Sends one file unless its object is there with its size; `Some(size)` when sent and
/// verified.
async fn copy_one(
    from: &LocalStorage,
    to: &BucketStorage,
    path: &StoragePath,
) -> Result<Option<u64>, String> {
    let (bytes, size) = from
        .read(path)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the file went away")?;
    if to.size(path).await.map_err(|e| e.to_string())? == Some(size) {
        return Ok(None);
    }
    let id = file_id(path)?;
    let stored = to
        .write(&id, bytes, u64::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let (local, _) = from
        .read(path)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the file went away")?;
    let (remote, _) = to
        .read(path)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the object is not there after the copy")?;
    if stored.size != size || digest(local).await? != digest(remote).await? {
        // What is there is not the file: leave no object behind to be taken for it.
        let _ = to.remove(path).await;
        return Err("the object does not read back as the file".into());
    }
    Ok(Some(size))
}

/// The file id a storage path ends with.
fn file_id(path: &StoragePath) -> Result<FileId, String> {
    let name = path.as_str().rsplit('/').next().unwrap_or_default();
    FileId::parse(name).map_err(|e| format!("not a file's path: {e}"))
}

async fn digest(mut bytes: ByteStream) -> Result<[u8; 32], String> {
    let mut hash = Sha256::new();
    while let Some(chunk) = bytes.next().await {
        hash.update(chunk.map_err(|e| e.to_string())?);
    }
    Ok(hash.finalize().into())
}
