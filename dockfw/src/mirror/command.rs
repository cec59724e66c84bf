//! `dockfw mirror --explain`: what the daemon would enforce from
//! DOCKER-USER, without enforcing anything.

use std::{process::ExitCode, time::Duration};

use anyhow::{Context as _, bail};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{source::Snapshot, translate};
use crate::{
    cli::MirrorArgs,
    control::{Request, Response, client::request},
    docker::{DockerHost, DockerState, DockerWatcher},
    model::PublishedPort,
};

/// How long to wait for Docker's published ports.
const DOCKER_TIMEOUT: Duration = Duration::from_secs(10);

/// `dockfw mirror --explain`.
pub fn run(args: &MirrorArgs) -> anyhow::Result<ExitCode> {
    if !args.explain {
        bail!("`dockfw mirror` only previews for now: run `dockfw mirror --explain`");
    }
    let mut notes = Vec::new();
    let ifaces = if args.ifaces.is_empty() {
        let ifaces = daemon_ifaces(&args.client);
        if ifaces.is_empty() {
            notes.push(
                "no --iface given and no daemon running: rules with -i are shown as if \
                 dockfw were attached to no interface"
                    .to_owned(),
            );
        }
        ifaces
    } else {
        args.ifaces.clone()
    };
    let mut snapshot = Snapshot::read(&ifaces);
    let ports = match docker_ports(args.docker_host.as_deref()) {
        Ok(ports) => ports,
        Err(error) => {
            snapshot
                .errors
                .push(format!("{error:#}; no published port is known"));
            Vec::new()
        }
    };
    let translation = translate(&snapshot.input(&ports, args.rate_limits));
    if args.client.json {
        println!("{}", serde_json::to_string_pretty(&translation.report)?);
    } else {
        for note in notes {
            println!("note: {note}");
        }
        print!("{}", translation.report.render());
        println!(
            "\n{} rule(s) enforced in XDP, {} netfilter-only; {} data-plane rule(s)",
            translation.report.enforced(),
            translation.report.netfilter_only(),
            translation.rules.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The interfaces the running daemon is attached to (none without one).
fn daemon_ifaces(client: &crate::cli::ClientArgs) -> Vec<String> {
    match request(&client.run_dir, &Request::Status) {
        Ok(Response::Status { status }) => status
            .interfaces
            .iter()
            .map(|iface| iface.name.clone())
            .collect(),
        _ => Vec::new(),
    }
}

/// One full sync of the published ports.
fn docker_ports(url: Option<&str>) -> anyhow::Result<Vec<PublishedPort>> {
    let host = match url {
        Some(url) => DockerHost::parse(url)?,
        None => DockerHost::from_env()?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let (tx, mut rx) = watch::channel(DockerState::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(DockerWatcher::new(host.clone()).run(tx, stop.clone()));
        let synced = tokio::time::timeout(DOCKER_TIMEOUT, async {
            while rx.changed().await.is_ok() {
                let state = rx.borrow_and_update().clone();
                if state.synced {
                    return Some(state.ports);
                }
            }
            None
        })
        .await;
        stop.cancel();
        let _ = task.await;
        match synced {
            Ok(Some(ports)) => Ok(ports),
            _ => bail!(
                "the Docker engine at {} did not answer within {DOCKER_TIMEOUT:?}",
                host.url()
            ),
        }
    })
}
