//! The daemon side of `dockfw events`: one control connection becomes a
//! stream of JSON lines ([`StreamItem`]) until the client goes away.

use std::io;

use tokio::{io::AsyncWriteExt as _, net::unix::OwnedWriteHalf, sync::broadcast::error::RecvError};

use super::{EventHub, StreamItem};

async fn write_item(writer: &mut OwnedWriteHalf, item: &StreamItem) -> io::Result<()> {
    let mut line = serde_json::to_string(item).map_err(io::Error::other)?;
    line.push('\n');
    writer.write_all(line.as_bytes()).await
}

/// Returns once the peer closed its end (EOF, or an error reading).
async fn closed(writer: &OwnedWriteHalf) {
    let stream = writer.as_ref();
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        let mut bytes = [0u8; 64];
        match stream.try_read(&mut bytes) {
            Ok(0) => return,
            // The client has nothing more to say; ignore what it sends.
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Streams events to `writer`: the buffered ones first with `replay`, then
/// each new one, until the client disconnects.
pub async fn serve(mut writer: OwnedWriteHalf, hub: &EventHub, replay: bool) -> io::Result<()> {
    let (backlog, mut receiver) = hub.subscribe();
    if replay {
        for event in backlog {
            write_item(&mut writer, &StreamItem::Event(Box::new((*event).clone()))).await?;
        }
    }
    loop {
        let item = tokio::select! {
            received = receiver.recv() => match received {
                Ok(event) => StreamItem::Event(Box::new((*event).clone())),
                Err(RecvError::Lagged(lost)) => StreamItem::Lost(lost),
                Err(RecvError::Closed) => return writer.shutdown().await,
            },
            () = closed(&writer) => return Ok(()),
        };
        write_item(&mut writer, &item).await?;
    }
}
