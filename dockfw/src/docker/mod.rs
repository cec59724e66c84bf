//! Docker sync: the published-port map, read from the Docker Engine API
//! (bollard) and kept current by following its event stream.
//!
//! - [`ports`] turns one container's inspect response into
//!   [`PublishedPort`](crate::model::PublishedPort)s (pure, unit tested on
//!   captured JSON).
//! - [`watch`] runs the [`DockerWatcher`]: full sync, then events, then
//!   reconnect with backoff when the engine goes away, always keeping the
//!   last known ports in force.

mod error;
pub mod ports;
mod session;
mod since;
pub mod watch;

use std::{fmt, path::PathBuf, str::FromStr};

pub use error::DockerError;
pub use ports::published_ports;
pub use watch::{DockerState, DockerWatcher, WatchOptions};

/// Environment variable that names the engine, as the docker CLI reads it.
pub const DOCKER_HOST_ENV: &str = "DOCKER_HOST";

/// The engine's socket when neither the caller nor `DOCKER_HOST` names one.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Where the Docker engine listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DockerHost {
    /// A Unix socket (`unix:///var/run/docker.sock`).
    Unix(PathBuf),
    /// Plain HTTP over TCP (`tcp://host:port`), no TLS.
    Tcp(String),
}

impl DockerHost {
    /// Parses `unix:///path` or `tcp://host:port`.
    pub fn parse(url: &str) -> Result<Self, DockerError> {
        let unsupported = || DockerError::UnsupportedHost {
            url: url.to_owned(),
        };
        if let Some(path) = url.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(unsupported());
            }
            return Ok(Self::Unix(PathBuf::from(path)));
        }
        if let Some(authority) = url.strip_prefix("tcp://") {
            let authority = authority.trim_end_matches('/');
            if authority.is_empty() || authority.contains('/') {
                return Err(unsupported());
            }
            return Ok(Self::Tcp(authority.to_owned()));
        }
        Err(unsupported())
    }

    /// `DOCKER_HOST` when set and not empty, else [`DEFAULT_DOCKER_HOST`].
    pub fn from_env() -> Result<Self, DockerError> {
        match std::env::var(DOCKER_HOST_ENV) {
            Ok(url) if !url.is_empty() => Self::parse(&url),
            _ => Self::parse(DEFAULT_DOCKER_HOST),
        }
    }

    /// The URL form (`unix:///...`, `tcp://...`).
    pub fn url(&self) -> String {
        match self {
            Self::Unix(path) => format!("unix://{}", path.display()),
            Self::Tcp(authority) => format!("tcp://{authority}"),
        }
    }
}

impl fmt::Display for DockerHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

impl FromStr for DockerHost {
    type Err = DockerError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Self::parse(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_unix_and_tcp_hosts() {
        assert_eq!(
            DockerHost::parse("unix:///var/run/docker.sock").ok(),
            Some(DockerHost::Unix(PathBuf::from("/var/run/docker.sock")))
        );
        assert_eq!(
            DockerHost::parse("tcp://127.0.0.1:2375").ok(),
            Some(DockerHost::Tcp("127.0.0.1:2375".into()))
        );
        assert_eq!(
            DockerHost::parse("tcp://[::1]:2375/").ok(),
            Some(DockerHost::Tcp("[::1]:2375".into()))
        );
        for bad in [
            "",
            "/var/run/docker.sock",
            "unix://relative",
            "tcp://",
            "ssh://h",
            "npipe:////./pipe/docker",
        ] {
            assert!(DockerHost::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn url_round_trips() {
        for url in ["unix:///tmp/d/docker.sock", "tcp://10.0.0.1:2375"] {
            assert_eq!(
                DockerHost::parse(url).map(|h| h.url()).ok().as_deref(),
                Some(url)
            );
        }
    }
}
