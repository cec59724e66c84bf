//! One connection to the engine: connect, full sync, then turn events into
//! the ids of containers whose ports may have changed. The watcher owns the
//! retry loop around it.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    time::Duration,
};

use bollard::{
    API_DEFAULT_VERSION, Docker,
    models::{EventMessage, EventMessageTypeEnum},
    query_parameters::{EventsOptions, ListContainersOptions},
};
use futures_util::Stream;
use tracing::{debug, warn};

use super::{DockerError, DockerHost, ports::published_ports, since::events_since};
use crate::model::PublishedPort;

/// Container actions after which its published ports may differ.
const CONTAINER_ACTIONS: &[&str] = &[
    "start", "restart", "die", "stop", "kill", "destroy", "pause", "unpause", "rename", "update",
];
/// Network actions that change a container's addresses.
const NETWORK_ACTIONS: &[&str] = &["connect", "disconnect"];

/// Published ports per container id: the watcher's working copy.
pub(crate) type PortsById = BTreeMap<String, Vec<PublishedPort>>;

/// A connected engine.
pub(crate) struct Session {
    docker: Docker,
    host: String,
}

impl Session {
    /// Builds a client, negotiates the API version (dockerd 20.10 speaks
    /// 1.41, bollard defaults to 1.53 and the engine rejects newer clients)
    /// and so proves the engine answers.
    pub(crate) async fn connect(host: &DockerHost, timeout: Duration) -> Result<Self, DockerError> {
        let url = host.url();
        let client = match host {
            DockerHost::Unix(_) => {
                Docker::connect_with_unix(&url, timeout.as_secs().max(1), API_DEFAULT_VERSION)
            }
            DockerHost::Tcp(_) => {
                Docker::connect_with_http(&url, timeout.as_secs().max(1), API_DEFAULT_VERSION)
            }
        }
        .map_err(|source| DockerError::Client {
            host: url.clone(),
            source,
        })?;
        let docker = client
            .negotiate_version()
            .await
            .map_err(|source| DockerError::Api {
                call: "GET /version",
                host: url.clone(),
                source,
            })?;
        Ok(Self { docker, host: url })
    }

    fn api_error(&self, call: &'static str) -> impl FnOnce(bollard::errors::Error) -> DockerError {
        let host = self.host.clone();
        move |source| DockerError::Api { call, host, source }
    }

    /// The `since` for the event stream, from the engine's clock; `None`
    /// when the engine does not report its time (events then start now).
    pub(crate) async fn events_since(&self) -> Result<Option<String>, DockerError> {
        let info = self
            .docker
            .info()
            .await
            .map_err(self.api_error("GET /info"))?;
        let since = info.system_time.as_deref().and_then(events_since);
        if since.is_none() {
            warn!(host = %self.host, "engine reports no usable SystemTime; events start from now");
        }
        Ok(since)
    }

    /// The engine's events that concern published ports, from `since` on.
    pub(crate) fn events(
        &self,
        since: Option<String>,
    ) -> impl Stream<Item = Result<EventMessage, bollard::errors::Error>> + use<> {
        let filters = HashMap::from([
            (
                "type".to_owned(),
                vec!["container".to_owned(), "network".to_owned()],
            ),
            (
                "event".to_owned(),
                CONTAINER_ACTIONS
                    .iter()
                    .chain(NETWORK_ACTIONS)
                    .map(|a| (*a).to_owned())
                    .collect(),
            ),
        ]);
        self.docker.events(Some(EventsOptions {
            since,
            until: None,
            filters: Some(filters),
        }))
    }

    /// Every running (or paused) container's ports.
    pub(crate) async fn full_sync(&self) -> Result<PortsById, DockerError> {
        let listed = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: false,
                ..Default::default()
            }))
            .await
            .map_err(self.api_error("GET /containers/json"))?;
        let ids: BTreeSet<String> = listed
            .into_iter()
            .filter_map(|summary| summary.id)
            .collect();
        let mut ports = PortsById::new();
        self.refresh(&mut ports, ids).await?;
        Ok(ports)
    }

    /// Re-inspects `ids` and updates their entries: a container that is gone
    /// or publishes nothing is removed.
    pub(crate) async fn refresh(
        &self,
        ports: &mut PortsById,
        ids: BTreeSet<String>,
    ) -> Result<(), DockerError> {
        for id in ids {
            match self.docker.inspect_container(&id, None).await {
                Ok(inspect) => {
                    let published = published_ports(&inspect);
                    // Inspect answers for a name or a short id too: key by the full id.
                    let full_id = inspect.id.unwrap_or(id);
                    if published.is_empty() {
                        ports.remove(&full_id);
                    } else {
                        ports.insert(full_id, published);
                    }
                }
                Err(source) => {
                    let error = self.api_error("GET /containers/{id}/json")(source);
                    if !error.is_not_found() {
                        return Err(error);
                    }
                    debug!(container = %id, "container is gone");
                    ports.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// The engine's URL.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }
}

/// The container an event is about, if it can change published ports.
pub(crate) fn affected_container(event: &EventMessage) -> Option<String> {
    // Actions may carry a detail after a colon (`exec_start: sh`).
    let action = event.action.as_deref()?.split(':').next()?.trim();
    let actor = event.actor.as_ref()?;
    let id = match event.typ? {
        EventMessageTypeEnum::CONTAINER if CONTAINER_ACTIONS.contains(&action) => actor.id.clone(),
        EventMessageTypeEnum::NETWORK if NETWORK_ACTIONS.contains(&action) => {
            actor.attributes.as_ref()?.get("container").cloned()
        }
        _ => None,
    }?;
    (!id.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> EventMessage {
        match serde_json::from_str(json) {
            Ok(event) => event,
            Err(error) => panic!("bad test event: {error}"),
        }
    }

    #[test]
    fn container_and_network_events_name_the_container() {
        // Captured from dockerd 20.10.
        let start = event(
            r#"{"status":"start","id":"4c2e","from":"dockfw-test/busybox","Type":"container","Action":"start","Actor":{"ID":"4c2e","Attributes":{"image":"dockfw-test/busybox","name":"web"}},"scope":"local","time":1795734541,"timeNano":1795734541239279142}"#,
        );
        assert_eq!(affected_container(&start).as_deref(), Some("4c2e"));
        let connect = event(
            r#"{"Type":"network","Action":"connect","Actor":{"ID":"38e9","Attributes":{"container":"4c2e","name":"bridge","type":"bridge"}},"scope":"local","time":1795734541,"timeNano":1795734541391325603}"#,
        );
        assert_eq!(affected_container(&connect).as_deref(), Some("4c2e"));
    }

    #[test]
    fn unrelated_events_are_ignored() {
        for json in [
            r#"{"Type":"container","Action":"exec_start: sh","Actor":{"ID":"4c2e"}}"#,
            r#"{"Type":"container","Action":"create","Actor":{"ID":"4c2e"}}"#,
            r#"{"Type":"image","Action":"tag","Actor":{"ID":"sha256:87"}}"#,
            r#"{"Type":"network","Action":"create","Actor":{"ID":"38e9","Attributes":{"name":"n"}}}"#,
            r#"{"Type":"network","Action":"connect","Actor":{"ID":"38e9","Attributes":{}}}"#,
        ] {
            assert_eq!(affected_container(&event(json)), None, "{json}");
        }
    }
}
