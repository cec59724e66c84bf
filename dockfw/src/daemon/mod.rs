//! `dockfw run`: the enforcer daemon. One loop owns all state ([`Engine`])
//! and reacts to Docker, the policy file, the control socket, signals and
//! the clock; every change ends in at most one compile and one generation
//! flip.

pub mod engine;
mod local;
mod mirrored;
pub mod observe;
pub mod policy_source;
pub mod report;
pub mod state;

use std::{path::PathBuf, time::Duration};

use ipnet::IpNet;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::{mpsc, watch},
};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use self::engine::{Engine, EngineConfig};
use crate::{
    cli::{DEFAULT_POLICY, RunArgs},
    control::{Request, Response, server},
    docker::{DockerHost, DockerState, DockerWatcher},
    status::DockerStatus,
};

/// How often the policy file's stamp is checked.
const POLICY_POLL: Duration = Duration::from_millis(500);
/// How often expired bans are removed from the maps.
const BAN_SWEEP: Duration = Duration::from_secs(1);
/// How often the host's local addresses are re-read (an address that comes
/// or goes is followed within this).
const LOCAL_POLL: Duration = Duration::from_secs(1);

/// Why the daemon (or one of its operations) failed.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The data plane could not be loaded.
    #[error(transparent)]
    Load(#[from] crate::dataplane::LoadError),
    /// Attaching failed.
    #[error(transparent)]
    Attach(#[from] crate::dataplane::AttachError),
    /// Writing maps failed (nothing half-applied is active).
    #[error(transparent)]
    Write(#[from] crate::dataplane::WriteError),
    /// A map operation failed.
    #[error("{what}: {source}")]
    Map {
        /// What was attempted.
        what: &'static str,
        /// aya's error.
        #[source]
        source: aya::maps::MapError,
    },
    /// The policy was rejected; the one in force stays.
    #[error("{0}")]
    Policy(String),
    /// No such ban.
    #[error("{0} is not banned (unban takes the prefix exactly as banned; see `dockfw bans`)")]
    NoSuchBan(IpNet),
    /// The Docker host URL is invalid.
    #[error(transparent)]
    Docker(#[from] crate::docker::DockerError),
    /// The control socket could not be set up.
    #[error("control socket in {dir}: {source}")]
    Control {
        /// Run directory.
        dir: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The metrics address could not be bound.
    #[error("serving metrics on {addr}: {source} (choose another --metrics-addr)")]
    Metrics {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Another process writes the pinned maps.
    #[error(
        "another process is writing the maps pinned under {dir} (another dockfw daemon, or \
         `dockfw ban` without one): {source}"
    )]
    PinsBusy {
        /// The pin directory.
        dir: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("installing signal handlers failed: {0}")]
    Signals(#[source] std::io::Error),
}

/// The engine configuration for `dockfw run` arguments.
pub fn engine_config(args: &RunArgs) -> EngineConfig {
    let policy_file = args.policy.clone().or_else(|| {
        let default = PathBuf::from(DEFAULT_POLICY);
        default.exists().then_some(default)
    });
    EngineConfig {
        ifaces: args.ifaces.clone(),
        mode: args.mode,
        pin_dir: Some(args.pin_dir.clone()),
        state_file: Some(args.run_dir.join(state::STATE_FILE)),
        policy_file,
        audit: args.audit,
        force: args.force,
        capacities: args.capacities.capacities(),
        events_per_second: args.events_per_second,
        mirror: args
            .mirror_docker_user
            .then_some(crate::mirror::daemon::MirrorOptions {
                rate_limits: args.mirror_rate_limits,
            }),
    }
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> Result<(), DaemonError> {
    let host = match &args.docker_host {
        Some(url) => DockerHost::parse(url)?,
        None => DockerHost::from_env()?,
    };
    let (listener, socket) =
        server::bind(&args.run_dir).map_err(|source| DaemonError::Control {
            dir: args.run_dir.clone(),
            source,
        })?;
    let metrics_listener = crate::metrics::server::bind(args.metrics_addr)
        .await
        .map_err(|source| DaemonError::Metrics {
            addr: args.metrics_addr,
            source,
        })?;
    let mut engine = Engine::start(engine_config(&args))?;
    if args.audit {
        warn!("audit mode: dockfw counts would-be drops and drops nothing");
    }

    let shutdown = CancellationToken::new();
    let (docker_tx, mut docker_rx) = watch::channel(DockerState::default());
    let watcher = DockerWatcher::new(host.clone());
    let mut observer = observe::Observer::start(&mut engine, watcher.sync_errors());
    let docker_task = tokio::spawn(watcher.run(docker_tx, shutdown.clone()));
    let (control_tx, mut control_rx) = mpsc::channel(16);
    let control_task = tokio::spawn(server::serve(listener, control_tx, observer.hub.clone()));
    let (scrape_tx, mut scrape_rx) = mpsc::channel(4);
    let metrics_task = tokio::spawn(crate::metrics::server::serve(metrics_listener, scrape_tx));
    let mut mirror = mirrored::MirrorFeed::start(
        args.mirror_docker_user,
        args.ifaces.clone(),
        shutdown.clone(),
    );

    let mut hangup = signal(SignalKind::hangup()).map_err(DaemonError::Signals)?;
    let mut terminate = signal(SignalKind::terminate()).map_err(DaemonError::Signals)?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(DaemonError::Signals)?;
    let mut policy_poll = tokio::time::interval(POLICY_POLL);
    let mut ban_sweep = tokio::time::interval(BAN_SWEEP);
    let mut local_poll = tokio::time::interval(LOCAL_POLL);
    info!(socket = %socket.display(), docker = %host.url(), "dockfw running");
    info!(addr = %args.metrics_addr, "serving metrics on GET /metrics");

    let docker_status = |state: &DockerState| DockerStatus {
        host: host.url(),
        connected: state.connected,
        synced: state.synced,
    };
    loop {
        tokio::select! {
            changed = docker_rx.changed() => {
                if changed.is_err() {
                    continue;
                }
                let state = docker_rx.borrow_and_update().clone();
                if let Err(error) = engine.set_ports(state.ports, state.synced) {
                    error!(%error, "published ports changed but the policy could not be applied");
                }
            }
            changed = mirror.rx.changed() => {
                let snapshot = mirror.rx.borrow_and_update().clone();
                if let (Ok(()), Some(snapshot)) = (changed, snapshot)
                    && let Err(error) = engine.set_mirror_snapshot(snapshot)
                {
                    error!(%error, "DOCKER-USER changed but the policy could not be applied");
                }
            }
            _ = policy_poll.tick() => {
                // Errors are logged by the engine; the policy in force stays.
                let _ = engine.reload_policy(false);
            }
            _ = ban_sweep.tick() => {
                if let Err(error) = engine.sweep_bans() {
                    warn!(%error, "removing expired bans failed");
                }
            }
            _ = local_poll.tick() => engine.refresh_local(),
            _ = hangup.recv() => {
                info!("SIGHUP: reloading the policy");
                let _ = engine.reload_policy(true);
            }
            Some((request, reply)) = control_rx.recv() => {
                let status = docker_status(&docker_rx.borrow());
                let response = match request {
                    Request::Top => Response::Top {
                        top: Box::new(observer.top(&engine)),
                    },
                    request => answer(&mut engine, request, status),
                };
                let _ = reply.send(response);
            }
            Some(reply) = scrape_rx.recv() => {
                let _ = reply.send(observer.scrape(&engine));
            }
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
        }
        // Events name their port and rule with the labels of the policy in
        // force.
        observer.refresh(&engine);
    }
    info!(keep = args.keep_on_exit, "stopping");
    shutdown.cancel();
    control_task.abort();
    metrics_task.abort();
    observer.stop();
    let _ = docker_task.await;
    mirror.stop().await;
    let _ = std::fs::remove_file(&socket);
    engine.shutdown(args.keep_on_exit);
    Ok(())
}

/// Handles one control request.
fn answer(engine: &mut Engine, request: Request, docker: DockerStatus) -> Response {
    let result = match request {
        Request::Ban { cidr, seconds } => engine
            .ban(cidr, seconds)
            .map(|message| Response::Ok { message }),
        Request::Unban { cidr } => engine.unban(cidr).map(|message| Response::Ok { message }),
        Request::Bans => Ok(Response::Bans {
            bans: engine.list_bans(),
        }),
        Request::Status => Ok(Response::Status {
            status: Box::new(engine.status(docker)),
        }),
        Request::Reload => engine.reload_policy(true).map(|_| Response::Ok {
            message: "policy reloaded".into(),
        }),
        // Answered by the loop (top) or by the control server (events).
        Request::Top | Request::Events { .. } => Ok(Response::Error {
            message: "not a request for the engine".into(),
        }),
        Request::TraceContext => Ok(Response::TraceContext {
            context: Box::new(engine.trace_context()),
        }),
    };
    result.unwrap_or_else(|error| Response::Error {
        message: error.to_string(),
    })
}
