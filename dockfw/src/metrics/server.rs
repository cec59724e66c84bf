//! The metrics listener: a minimal HTTP/1.1 server with one resource,
//! `GET /metrics` (404 for anything else). It is dockfw's only network
//! listener; each scrape asks the daemon's loop for a [`Snapshot`] and
//! encodes it off the loop.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
    sync::{mpsc, oneshot},
};
use tracing::{debug, warn};

use super::{
    exposition::{Format, encode},
    snapshot::Snapshot,
};

/// A scrape: the loop answers with the current snapshot.
pub type ScrapeRequest = oneshot::Sender<Snapshot>;

/// Longest request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the loop may take to answer (it is busy at most for one
/// policy apply).
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);

/// Binds the metrics address.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves scrapes until the loop's receiver goes away.
pub async fn serve(listener: TcpListener, scrapes: mpsc::Sender<ScrapeRequest>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(%error, "metrics accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let scrapes = scrapes.clone();
        tokio::spawn(async move {
            if let Err(error) = handle(stream, scrapes).await {
                debug!(%peer, %error, "metrics connection ended with an error");
            }
        });
    }
}

/// A parsed request head.
#[derive(Debug, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// Method.
    pub method: &'a str,
    /// Path without the query string.
    pub path: &'a str,
    /// The `Accept` header, if any.
    pub accept: Option<&'a str>,
}

/// Parses an HTTP/1.x request head (request line and headers).
pub fn parse_head(head: &str) -> Option<RequestHead<'_>> {
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?;
    let target = request_line.next()?;
    let version = request_line.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    let path = target.split('?').next().unwrap_or(target);
    let accept = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("accept"))
        .map(|(_, value)| value.trim());
    Some(RequestHead {
        method,
        path,
        accept,
    })
}

/// Status line, content type and body of the answer to a request head.
enum Answer {
    Metrics(Format),
    Status(&'static str, &'static str),
}

fn route(head: Option<&RequestHead<'_>>) -> Answer {
    match head {
        None => Answer::Status("400 Bad Request", "bad request\n"),
        Some(head) if head.path == "/metrics" && matches!(head.method, "GET" | "HEAD") => {
            Answer::Metrics(Format::negotiate(head.accept))
        }
        Some(_) => Answer::Status(
            "404 Not Found",
            "not found: dockfw serves only GET /metrics\n",
        ),
    }
}

async fn read_head(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(head);
        }
        head.extend_from_slice(&buffer[..read]);
        if head.windows(4).any(|window| window == b"\r\n\r\n") || head.len() > MAX_HEAD {
            return Ok(head);
        }
    }
}

async fn handle(mut stream: TcpStream, scrapes: mpsc::Sender<ScrapeRequest>) -> io::Result<()> {
    let head = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request head timed out"))??;
    if head.is_empty() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&head);
    let parsed = parse_head(&text);
    let is_head = parsed.as_ref().is_some_and(|head| head.method == "HEAD");
    let (status, content_type, body) = match route(parsed.as_ref()) {
        Answer::Status(status, body) => (status, "text/plain; charset=utf-8", body.to_string()),
        Answer::Metrics(format) => match snapshot(&scrapes).await {
            Some(snapshot) => {
                let snapshot = Arc::new(snapshot);
                let body = tokio::task::spawn_blocking(move || encode(snapshot, format))
                    .await
                    .map_err(io::Error::other)?;
                ("200 OK", format.content_type(), body)
            }
            None => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                "the daemon did not answer\n".to_string(),
            ),
        },
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if !is_head {
        stream.write_all(body.as_bytes()).await?;
    }
    stream.shutdown().await
}

async fn snapshot(scrapes: &mpsc::Sender<ScrapeRequest>) -> Option<Snapshot> {
    let (reply, answer) = oneshot::channel();
    scrapes.send(reply).await.ok()?;
    tokio::time::timeout(SNAPSHOT_TIMEOUT, answer)
        .await
        .ok()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_heads_parse() {
        let head = parse_head(
            "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\naccept: application/openmetrics-text\r\n\r\n",
        )
        .unwrap();
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/metrics");
        assert_eq!(head.accept, Some("application/openmetrics-text"));
        assert_eq!(parse_head("GET /metrics SPDY/3\r\n\r\n"), None);
        assert_eq!(parse_head("nonsense"), None);
    }

    #[test]
    fn only_get_metrics_is_served() {
        let get = parse_head("GET /metrics HTTP/1.1\r\n\r\n");
        assert!(matches!(route(get.as_ref()), Answer::Metrics(Format::Text)));
        let other = parse_head("GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(
            route(other.as_ref()),
            Answer::Status("404 Not Found", _)
        ));
        let post = parse_head("POST /metrics HTTP/1.1\r\n\r\n");
        assert!(matches!(
            route(post.as_ref()),
            Answer::Status("404 Not Found", _)
        ));
        assert!(matches!(route(None), Answer::Status("400 Bad Request", _)));
    }
}
