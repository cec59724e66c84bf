//! The daemon side of the control socket: accepts connections, reads one
//! request each and forwards it to the daemon's loop, which owns all state.

use std::{
    fs, io,
    os::unix::fs::{DirBuilderExt, PermissionsExt},
    path::{Path, PathBuf},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};
use tracing::{debug, warn};

use super::{Request, Response, SOCKET_NAME};

/// A request with the channel its answer goes back on.
pub type Envelope = (Request, oneshot::Sender<Response>);

/// Longest request line accepted.
const MAX_REQUEST: usize = 64 * 1024;

/// Creates the run directory (0700) and binds the socket (0600). A stale
/// socket from a dead daemon is replaced; a live one is an error.
pub fn bind(run_dir: &Path) -> io::Result<(UnixListener, PathBuf)> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(run_dir)?;
    fs::set_permissions(run_dir, fs::Permissions::from_mode(0o700))?;
    let path = run_dir.join(SOCKET_NAME);
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another dockfw daemon is listening on {}", path.display()),
            ));
        }
        fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

/// Serves connections until the receiver of `requests` goes away.
pub async fn serve(
    listener: UnixListener,
    requests: mpsc::Sender<Envelope>,
    events: crate::events::EventHub,
) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                warn!(%error, "control socket accept failed");
                continue;
            }
        };
        let requests = requests.clone();
        let events = events.clone();
        tokio::spawn(async move {
            if let Err(error) = handle(stream, requests, events).await {
                debug!(%error, "control connection ended with an error");
            }
        });
    }
}

async fn handle(
    stream: UnixStream,
    requests: mpsc::Sender<Envelope>,
    events: crate::events::EventHub,
) -> io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut line = String::new();
    let read = BufReader::new(reader.take(MAX_REQUEST as u64))
        .read_line(&mut line)
        .await?;
    let response = if read == 0 {
        return Ok(());
    } else {
        match serde_json::from_str::<Request>(&line) {
            Err(error) => Response::Error {
                message: format!("unreadable request: {error}"),
            },
            // A stream, answered here rather than by the daemon's loop.
            Ok(Request::Events { replay }) => {
                return crate::events::stream::serve(writer, &events, replay).await;
            }
            Ok(request) => {
                let (reply, answer) = oneshot::channel();
                if requests.send((request, reply)).await.is_err() {
                    Response::Error {
                        message: "the daemon is shutting down".into(),
                    }
                } else {
                    answer.await.unwrap_or(Response::Error {
                        message: "the daemon dropped the request".into(),
                    })
                }
            }
        }
    };
    let mut text = serde_json::to_string(&response).map_err(io::Error::other)?;
    text.push('\n');
    writer.write_all(text.as_bytes()).await?;
    writer.shutdown().await
}
