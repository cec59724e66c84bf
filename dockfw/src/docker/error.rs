//! Errors of the Docker adapter. Each variant names the engine and the call
//! so an operator can tell a wrong `DOCKER_HOST` from an engine that is down.

/// Why talking to the Docker engine failed.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The host URL has a scheme dockfw does not speak.
    #[error(
        "unsupported Docker host {url:?}: expected unix:///path/to/docker.sock or tcp://host:port"
    )]
    UnsupportedHost {
        /// The URL as given.
        url: String,
    },
    /// The client for the engine could not be built.
    #[error("cannot create a Docker client for {host}")]
    Client {
        /// The engine's URL.
        host: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// An API call failed (connection refused, timeout, server error, a
    /// response bollard could not decode).
    #[error(
        "Docker API call {call} on {host} failed; is dockerd running and the socket reachable?"
    )]
    Api {
        /// The call, e.g. `GET /containers/json`.
        call: &'static str,
        /// The engine's URL.
        host: String,
        /// What bollard reported.
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine closed the `/events` stream (it is shutting down or
    /// restarting).
    #[error("the Docker event stream from {host} ended")]
    EventsEnded {
        /// The engine's URL.
        host: String,
    },
}

impl DockerError {
    /// Whether this is the engine's "no such container" answer (HTTP 404),
    /// which during a sync means the container is gone, not that the engine is.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::Api {
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 404,
                    ..
                },
                ..
            }
        )
    }
}
