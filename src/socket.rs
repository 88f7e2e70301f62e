//! The auth listener's unix socket: a stale one (left by a crash) is removed, one a live server
//! answers on is refused, anything else at the path is left alone and refused; the new socket
//! gets its configured mode and owner.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A server answers on the path: two instances must not share it.
    #[error("{0}: a live server already listens there")]
    Live(String),
    /// The path holds something that is not a socket; it is never removed.
    #[error("{0}: exists and is not a socket")]
    NotASocket(String),
    /// Binding, or setting the mode or owner, failed.
    #[error("{path}: {source}")]
    Io {
        /// The socket's path.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Binds the socket at `path` with `mode` and, when given, the numeric owner.
pub fn bind(
    path: &Path,
    mode: u32,
    owner: Option<(Option<u32>, Option<u32>)>,
) -> Result<UnixListener, SocketError> {
    let shown = path.display().to_string();
    let io = |source| SocketError::Io {
        path: shown.clone(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(SocketError::Live(shown));
            }
            std::fs::remove_file(path).map_err(io)?;
        }
        Ok(_) => return Err(SocketError::NotASocket(shown)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    // Until here the socket has the umask's mode: under the usual 022 no other user can connect
    // (connecting needs write permission), so a stricter configured mode has no open window.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, uid, gid).map_err(io)?;
    }
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_sockets_go_live_ones_and_files_stay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.sock");
        let live = bind(&path, 0o660, None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert!(matches!(
            bind(&path, 0o660, None),
            Err(SocketError::Live(_))
        ));
        drop(live);
        // Closed, but the file is still there: a crash's leftover, replaced.
        assert!(path.exists());
        let _again = bind(&path, 0o600, None).unwrap();
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "keep me").unwrap();
        assert!(matches!(
            bind(&file, 0o660, None),
            Err(SocketError::NotASocket(_))
        ));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    }
}
