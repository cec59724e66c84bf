//! The client side of the control socket.

use std::{
    io::{self, BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{Request, Response, SOCKET_NAME};

/// How long a request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon listens (no socket, or nobody accepts).
    #[error("no dockfw daemon is running (no control socket at {0})")]
    NotRunning(PathBuf),
    /// The socket exists but talking failed.
    #[error("talking to the daemon at {path} failed: {source}")]
    Io {
        /// Socket path.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The daemon answered something unreadable.
    #[error("the daemon's answer could not be read: {0}")]
    Protocol(#[from] serde_json::Error),
}

/// The socket path in a run directory.
pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SOCKET_NAME)
}

/// Sends one request and waits for the answer.
pub fn request(run_dir: &Path, request: &Request) -> Result<Response, ClientError> {
    let path = socket_path(run_dir);
    let io_error = |source| ClientError::Io {
        path: path.clone(),
        source,
    };
    let stream = match UnixStream::connect(&path) {
        Ok(stream) => stream,
        Err(error)
            if matches!(
                error.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ClientError::NotRunning(path));
        }
        Err(error) => return Err(io_error(error)),
    };
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io_error)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io_error)?;
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(io_error)?;
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .map_err(io_error)?;
    Ok(serde_json::from_str(&answer)?)
}
