//! The client side of a streamed control request: one request line out,
//! then one JSON line in per item until the daemon or the caller stops.

use std::{
    io::{self, BufRead as _, BufReader, Write as _},
    os::unix::net::UnixStream,
    path::Path,
};

use super::StreamItem;
use crate::control::{
    Request,
    client::{ClientError, socket_path},
};

/// What to do after an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Read the next one.
    Continue,
    /// Hang up.
    Stop,
}

/// Sends `request` and hands every streamed item to `on_item` until it
/// says stop or the daemon closes the stream.
pub fn stream(
    run_dir: &Path,
    request: &Request,
    mut on_item: impl FnMut(StreamItem) -> io::Result<Flow>,
) -> Result<(), ClientError> {
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
    let mut line = serde_json::to_string(request)?;
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(io_error)?;
    for line in BufReader::new(&stream).lines() {
        let line = line.map_err(io_error)?;
        if line.is_empty() {
            continue;
        }
        let item: StreamItem = serde_json::from_str(&line)?;
        match on_item(item) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Stop) => break,
            // A closed stdout (`dockfw events | head`) ends the stream
            // quietly.
            Err(error) if error.kind() == io::ErrorKind::BrokenPipe => break,
            Err(error) => return Err(io_error(error)),
        }
    }
    Ok(())
}
