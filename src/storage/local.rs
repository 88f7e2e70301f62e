//! File bytes on disk under the storage root (`storage.root`, or `storage.url = file:///PATH`).
//!
//! An upload streams into `{root}/.incoming/{uuid}`, is fsynced, then renamed to its final
//! storage path `{2 hex}/{file id}` and the directory fsynced. Only then is the file registered
//! in the store, so a token never points at a half-written file; on any failure the temporary
//! file is removed. The `.incoming` directory is inside the root so the rename is atomic (one
//! filesystem), yet no storage path can name it (see `paths::StoragePath`).
//!
//! A process killed mid-upload cannot remove its temporary file, so every writer holds an
//! exclusive lock (`flock`) on its file while it writes, and [`Storage::sweep_incoming`] (at
//! start, then hourly) removes the files nobody holds: the lock dies with its process, so a
//! replica sharing the volume never loses an upload it is still writing.

use std::path::{Path, PathBuf};

use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use super::{Stored, UploadError};
use crate::ids::FileId;
use crate::paths::StoragePath;

const INCOMING: &str = ".incoming";

/// A temporary file younger than this is left alone by the sweep, locked or not: it closes the
/// moment between a writer creating its file and locking it.
pub const SWEEP_MIN_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// A storage root on disk.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// The storage root at `root`; nothing is created until [`Storage::prepare`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the root and its incoming directory (at start-up, so errors surface early).
    pub fn prepare(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(self.root.join(INCOMING))
    }

    /// Streams `body` to disk as the bytes of `id`, refusing more than `max_bytes`.
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
        if !tokio::fs::metadata(&self.root)
            .await
            .is_ok_and(|m| m.is_dir())
        {
            return Err(UploadError::RootMissing(self.root.display().to_string()));
        }
        let incoming = self.root.join(INCOMING);
        create_dir(&incoming).await?;
        let tmp = incoming.join(uuid::Uuid::new_v4().simple().to_string());
        let result = async {
            let file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .await?
                .into_std()
                .await;
            // Held until the file is closed (or the process dies): the sweep's sign of life.
            file.try_lock().map_err(std::io::Error::other)?;
            let mut file = tokio::fs::File::from_std(file);
            let mut size: u64 = 0;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| UploadError::Body(e.to_string()))?;
                let bytes = chunk.as_ref();
                size += bytes.len() as u64;
                if size > max_bytes {
                    return Err(UploadError::TooLarge(max_bytes));
                }
                file.write_all(bytes).await?;
            }
            file.sync_all().await?;
            drop(file);
            let storage_path = StoragePath::for_file(id);
            let dest = self.root.join(storage_path.as_str());
            let dir = dest
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            tokio::fs::create_dir_all(&dir).await?;
            tokio::fs::rename(&tmp, &dest).await?;
            // Make the rename itself durable before the store points at the file.
            tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
                .await
                .map_err(std::io::Error::other)??;
            Ok(Stored { storage_path, size })
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Removes the temporary files of uploads that no process is writing any more (killed
    /// mid-upload), older than `min_age`. Returns how many were removed.
    pub async fn sweep_incoming(&self, min_age: std::time::Duration) -> std::io::Result<usize> {
        let incoming = self.root.join(INCOMING);
        tokio::task::spawn_blocking(move || sweep(&incoming, min_age))
            .await
            .map_err(std::io::Error::other)?
    }

    /// A file's bytes and size, read in chunks; `None` if there is no such file.
    pub async fn read(
        &self,
        path: &StoragePath,
    ) -> std::io::Result<Option<(super::ByteStream, u64)>> {
        let file = match tokio::fs::File::open(self.root.join(path.as_str())).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = file.metadata().await?.len();
        let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 64 * 1024];
            let n = file.read(&mut buf).await?;
            buf.truncate(n);
            Ok((n > 0).then(|| (bytes::Bytes::from(buf), file)))
        });
        Ok(Some((Box::pin(chunks), size)))
    }

    /// The storage paths of every file under the root (what `.incoming` holds is no file yet).
    pub fn files(&self) -> std::io::Result<Vec<StoragePath>> {
        let mut out = Vec::new();
        for dir in std::fs::read_dir(&self.root)? {
            let dir = dir?;
            if !dir.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(dir.path())? {
                let file = file?;
                let rel = format!(
                    "{}/{}",
                    dir.file_name().to_string_lossy(),
                    file.file_name().to_string_lossy()
                );
                if let (true, Ok(path)) = (file.file_type()?.is_file(), StoragePath::parse(&rel)) {
                    out.push(path);
                }
            }
        }
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(out)
    }

    /// Whether the root is there, as a directory.
    pub async fn ping(&self) -> std::io::Result<()> {
        let meta = tokio::fs::metadata(&self.root).await?;
        if meta.is_dir() {
            Ok(())
        } else {
            Err(std::io::Error::other("the storage root is not a directory"))
        }
    }

    /// Removes a file's bytes (after its registration failed, or on delete).
    pub async fn remove(&self, path: &StoragePath) -> std::io::Result<()> {
        match tokio::fs::remove_file(self.root.join(path.as_str())).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

fn sweep(incoming: &Path, min_age: std::time::Duration) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(incoming) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        other => other?,
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        // Only regular files (a symlink is not followed): nothing else is ours.
        if !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let stale = file
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age >= min_age));
        // A writer's lock makes `try_lock` fail: its upload is alive.
        if stale && file.try_lock().is_ok() {
            std::fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Creates one directory level inside the root (never the root itself, never a chain).
async fn create_dir(dir: &Path) -> std::io::Result<()> {
    match tokio::fs::create_dir(dir).await {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(
        parts: &[&'static [u8]],
    ) -> impl Stream<Item = Result<&'static [u8], std::io::Error>> + Unpin {
        futures_util::stream::iter(parts.iter().map(|p| Ok(*p)).collect::<Vec<_>>())
    }

    fn leftovers(root: &Path) -> Vec<PathBuf> {
        std::fs::read_dir(root.join(INCOMING))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    #[tokio::test]
    async fn writes_whole_file_at_its_storage_path() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        storage.prepare().unwrap();
        let id = FileId::generate();
        let stored = storage
            .write(&id, chunks(&[b"hello ", b"world"]), 100)
            .await
            .unwrap();
        assert_eq!(stored.size, 11);
        assert_eq!(
            std::fs::read(dir.path().join(stored.storage_path.as_str())).unwrap(),
            b"hello world"
        );
        assert!(leftovers(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn too_large_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        storage.prepare().unwrap();
        let id = FileId::generate();
        let err = storage
            .write(&id, chunks(&[b"12345", b"67890"]), 8)
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::TooLarge(8)));
        assert!(leftovers(dir.path()).is_empty());
        assert!(
            !dir.path()
                .join(StoragePath::for_file(&id).as_str())
                .exists()
        );
    }

    #[tokio::test]
    async fn a_missing_root_is_not_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("gone");
        let storage = LocalStorage::new(&root);
        let err = storage
            .write(&FileId::generate(), chunks(&[b"x"]), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::RootMissing(_)));
        assert!(!root.exists());
    }

    #[tokio::test]
    async fn the_sweep_removes_stale_files_nobody_writes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        storage.prepare().unwrap();
        let incoming = dir.path().join(INCOMING);
        let old = std::time::SystemTime::now() - 2 * SWEEP_MIN_AGE;
        let file = |name: &str, modified| {
            let f = std::fs::File::create(incoming.join(name)).unwrap();
            f.set_modified(modified).unwrap();
            f
        };
        drop(file("abandoned", old));
        drop(file("young", std::time::SystemTime::now()));
        // Another writer (here: this test) still holds this one.
        let live = file("live", old);
        live.try_lock().unwrap();
        assert_eq!(storage.sweep_incoming(SWEEP_MIN_AGE).await.unwrap(), 1);
        let mut left: Vec<_> = leftovers(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["live", "young"]);
        drop(live);
        assert_eq!(storage.sweep_incoming(SWEEP_MIN_AGE).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn body_error_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::new(dir.path());
        storage.prepare().unwrap();
        let body = futures_util::stream::iter(vec![
            Ok::<&[u8], std::io::Error>(b"abc"),
            Err(std::io::Error::other("client went away")),
        ]);
        let err = storage
            .write(&FileId::generate(), body, 100)
            .await
            .unwrap_err();
        assert!(matches!(err, UploadError::Body(_)));
        assert!(leftovers(dir.path()).is_empty());
    }
}
