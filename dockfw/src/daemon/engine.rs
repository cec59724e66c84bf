//! The daemon's state and every change to it, synchronous so it can be
//! driven (and tested) without an event loop: sources of intent in, one
//! compile, one generation flip out.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
};

use dockfw_common::{Config, config_flag};
use ipnet::IpNet;
use tracing::{info, warn};

use super::{DaemonError, policy_source::PolicySource, state::PersistedState};
use crate::{
    bans::{BanSet, NEVER, expiry_after, monotonic_ns},
    compile::{CompileInput, CompiledPolicy, StatRegistry, compile},
    control::BanEntry,
    dataplane::{
        Attachment, Capacities, Dataplane, GenerationWriter, LoadOptions, RequestedMode,
        attach::attach,
        bans::{read_bans, resync_bans, write_bans},
    },
    model::{Policy, PublishedPort},
    policy::{merge, rules_from_labels_with_sets},
};

/// What the engine is started with.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Interfaces to attach to.
    pub ifaces: Vec<String>,
    /// Requested attach mode.
    pub mode: RequestedMode,
    /// Pin directory (`None` keeps everything private to the process).
    pub pin_dir: Option<PathBuf>,
    /// Where the persisted state lives (`None`: not persisted).
    pub state_file: Option<PathBuf>,
    /// Policy file, if any.
    pub policy_file: Option<PathBuf>,
    /// Global audit.
    pub audit: bool,
    /// Replace foreign XDP programs.
    pub force: bool,
    /// Map capacities for maps that get created.
    pub capacities: Capacities,
    /// Sampled events per second per statistic id (0 = off).
    pub events_per_second: u32,
    /// Mirror DOCKER-USER into the fast path (`None`: off).
    pub mirror: Option<crate::mirror::daemon::MirrorOptions>,
}

/// The running enforcer.
pub struct Engine {
    /// Held while the engine runs ([`crate::dataplane::pins::WriterLock`]).
    _writer_lock: Option<crate::dataplane::pins::WriterLock>,
    pub(super) config: EngineConfig,
    pub(super) dataplane: Dataplane,
    writer: GenerationWriter,
    pub(super) registry: StatRegistry,
    pub(super) attachments: Vec<Attachment>,
    pub(super) ifaces: BTreeMap<String, u32>,
    pub(super) bans: BanSet,
    pub(super) source: PolicySource,
    pub(super) ports: Vec<PublishedPort>,
    pub(super) ports_known: bool,
    pub(super) policy: Policy,
    pub(super) compiled: CompiledPolicy,
    pub(super) applies: u64,
    pub(super) active_slot: u32,
    /// Where the active policy's source tables went.
    pub(super) tries: crate::dataplane::TrieUsage,
    pub(super) last_error: Option<String>,
    /// Policy loads and compiles that failed
    /// (`dockfw_policy_reload_errors_total`).
    pub(super) reload_errors: u64,
    /// Whether the policy file has loaded at least once: until then the
    /// pinned generation of a previous run stays active untouched.
    policy_loaded: bool,
    /// The DOCKER-USER mirror, when enabled.
    pub(super) mirror: Option<crate::mirror::daemon::MirrorState>,
    /// The host's local addresses for wildcard ports.
    pub(super) local: super::local::LocalAddresses,
}

impl Engine {
    /// Loads (or re-adopts) the data plane, reads the policy and attaches.
    /// Fails without detaching anything: after a crash, the pinned links
    /// keep enforcing the previous policy while this is fixed.
    ///
    /// A broken policy file stops a fresh start; when pinned state from an
    /// earlier run exists, the daemon starts anyway with that policy in force
    /// (it stays active in the kernel) and reports the error, so a restart
    /// never loses Docker sync, bans or the control socket over a typo.
    pub fn start(config: EngineConfig) -> Result<Self, DaemonError> {
        let readopting = config.pin_dir.as_deref().is_some_and(|dir| {
            crate::dataplane::load::maps_pin_dir(dir)
                .join(dockfw_common::CONFIG_MAP)
                .exists()
        });
        let mut source = PolicySource::new(config.policy_file.clone());
        let mut last_error = None;
        if let Err(error) = source.load() {
            if !readopting {
                return Err(DaemonError::Policy(error.to_string()));
            }
            warn!(%error, "policy file rejected; the pinned policy of the previous run stays in force");
            last_error = Some(error.to_string());
        }

        let options = LoadOptions {
            pin_dir: config.pin_dir.clone(),
            capacities: config.capacities,
            trace: false,
        };
        let mut dataplane = Dataplane::load(&options)?;
        // The only writer of the pinned maps while it runs.
        let writer_lock = match &config.pin_dir {
            Some(dir) => Some(
                crate::dataplane::pins::lock_writer(dir, crate::dataplane::pins::WRITER_WAIT)
                    .map_err(|source| DaemonError::PinsBusy {
                        dir: dir.clone(),
                        source,
                    })?,
            ),
            None => None,
        };
        let mut current = dataplane.maps.config.get(&0, 0).unwrap_or_default();
        set_event_rate(&mut current, config.events_per_second);
        // A local-address map of another layout was replaced by an empty
        // one: the programs still attached read their old map, so the flags
        // that select its element go ("every address is local", the safe
        // side) until this version's programs are attached and the set is
        // written. Otherwise the set is written before attaching, so the
        // programs see the host's addresses from their first packet.
        let local_replaced = dataplane.replaced.contains(&dockfw_common::LOCAL_ADDRS_MAP);
        if local_replaced {
            current.flags &= !(config_flag::LOCAL_SET | config_flag::LOCAL_SET_ONE);
        }
        dataplane
            .maps
            .config
            .set(0, current, 0)
            .map_err(|source| DaemonError::Map {
                what: "writing the configuration",
                source,
            })?;
        let mut local = super::local::LocalAddresses::default();
        if !local_replaced {
            local.refresh(&mut dataplane.maps);
        }
        let bans = read_bans(&dataplane.maps)?;
        // Rewrite the shortcuts from the tries: a previous run may have died
        // half-way through an update.
        resync_bans(&mut dataplane.maps, &bans)?;
        let persisted = config
            .state_file
            .as_deref()
            .map(PersistedState::load)
            .unwrap_or_default();

        let mut attachments = Vec::new();
        let mut ifaces = BTreeMap::new();
        for iface in &config.ifaces {
            let attachment = attach(
                &mut dataplane,
                iface,
                config.mode,
                config.pin_dir.as_deref(),
                config.force,
            )?;
            ifaces.insert(iface.clone(), attachment.ifindex);
            attachments.push(attachment);
        }
        info!(bans = bans.len(), "data plane ready");
        let mirror = config.mirror.map(crate::mirror::daemon::MirrorState::new);
        let mut engine = Self {
            _writer_lock: writer_lock,
            active_slot: current.active_generation & 1,
            tries: crate::dataplane::TrieUsage::default(),
            config,
            dataplane,
            writer: GenerationWriter::new(),
            registry: persisted.registry,
            attachments,
            ifaces,
            bans,
            source,
            ports: Vec::new(),
            ports_known: false,
            policy: Policy::default(),
            compiled: CompiledPolicy::default(),
            applies: persisted.applies,
            reload_errors: u64::from(last_error.is_some()),
            policy_loaded: last_error.is_none(),
            last_error,
            mirror,
            local,
        };
        if local_replaced {
            engine.refresh_local();
        }
        Ok(engine)
    }

    /// Re-reads the host's local addresses and activates them for wildcard
    /// ports when they changed.
    pub fn refresh_local(&mut self) {
        self.local.refresh(&mut self.dataplane.maps);
    }

    /// New published ports from Docker. `synced` = they come from a full
    /// sync (until then the previous generation stays in force).
    pub fn set_ports(
        &mut self,
        ports: Vec<PublishedPort>,
        synced: bool,
    ) -> Result<(), DaemonError> {
        if !synced {
            return Ok(());
        }
        if self.ports_known && ports == self.ports {
            return Ok(());
        }
        self.ports = ports;
        self.ports_known = true;
        self.reconcile()
    }

    /// Re-reads the policy file if it changed (or always with `force`). A
    /// bad file is reported and the policy in force stays.
    pub fn reload_policy(&mut self, force: bool) -> Result<bool, DaemonError> {
        if !force && !self.source.changed() {
            return Ok(false);
        }
        match self.source.load() {
            Ok(()) => {
                info!(file = ?self.config.policy_file, "policy file loaded");
                self.last_error = None;
                self.policy_loaded = true;
                self.reconcile()?;
                Ok(true)
            }
            Err(error) => {
                let message = error.to_string();
                warn!(error = %message, "policy file rejected; the policy in force stays in force");
                self.reload_errors += 1;
                self.last_error = Some(message.clone());
                Err(DaemonError::Policy(message))
            }
        }
    }

    /// Builds the policy from every source, compiles it and activates it.
    /// Nothing is applied when compiling or a capacity check fails.
    pub fn reconcile(&mut self) -> Result<(), DaemonError> {
        if !self.ports_known || !self.policy_loaded {
            return Ok(());
        }
        let mut policy = self.assemble();
        let ports = self.with_mirror(&mut policy);
        let capacities = self
            .dataplane
            .maps
            .capacities()
            .map_err(|source| DaemonError::Map {
                what: "reading map capacities",
                source,
            })?;
        let mut registry = self.registry.clone();
        let input = CompileInput {
            policy: &policy,
            ports: &ports,
            ifaces: &self.ifaces,
            audit: self.config.audit,
            stats_capacity: capacities.stats,
        };
        let compiled =
            compile(&input, &mut registry).map_err(|error| self.failed(error.to_string()))?;
        let fresh = registry.take_fresh();
        let applied = self
            .writer
            .apply(&mut self.dataplane.maps, &compiled, &fresh)
            .map_err(|error| self.failed(error.to_string()))?;
        for warning in &compiled.warnings {
            warn!("{warning}");
        }
        self.registry = registry;
        self.active_slot = applied.generation;
        self.tries = applied.tries;
        self.applies += 1;
        if applied.tries.ports_in_levels > 0 {
            warn!(
                ports = applied.tries.ports_in_levels,
                nodes = applied.tries.nodes,
                "the source tables of some ports did not fit the trie nodes and use the \
                 slower hash/LPM tables; raise --max-source-trie-nodes"
            );
        }
        info!(
            generation = self.applies,
            ports = compiled.ports.len(),
            rules = policy.rules.len(),
            source_trie_nodes = applied.tries.nodes,
            "policy activated"
        );
        self.policy = policy;
        self.compiled = compiled;
        self.save_state();
        Ok(())
    }

    fn failed(&mut self, message: String) -> DaemonError {
        self.reload_errors += 1;
        warn!(error = %message, "policy not applied; the policy in force stays in force");
        self.last_error = Some(message.clone());
        DaemonError::Policy(message)
    }

    /// File rules first, then the rules of container labels.
    fn assemble(&self) -> Policy {
        let file = self.source.policy();
        let mut label_rules = Vec::new();
        let mut seen = BTreeSet::new();
        for port in &self.ports {
            if !seen.insert(port.container.id.clone()) {
                continue;
            }
            match rules_from_labels_with_sets(&port.container, self.source.sets()) {
                Ok(rules) => label_rules.extend(rules),
                Err(error) => {
                    warn!(container = %port.container.name, %error, "ignoring the container's dockfw labels")
                }
            }
        }
        merge(file, label_rules)
    }

    fn save_state(&self) {
        if let Some(path) = &self.config.state_file {
            let state = PersistedState {
                registry: self.registry.clone(),
                applies: self.applies,
            };
            if let Err(error) = state.save(path) {
                warn!(path = %path.display(), %error, "could not save the daemon state");
            }
        }
    }

    /// Bans `cidr` for `seconds` (or forever).
    pub fn ban(&mut self, cidr: IpNet, seconds: Option<u64>) -> Result<String, DaemonError> {
        let mut next = self.bans.clone();
        let expiry = expiry_after(seconds.map(std::time::Duration::from_secs));
        next.insert(cidr, expiry);
        write_bans(&mut self.dataplane.maps, &self.bans, &next)?;
        self.bans = next;
        let until = seconds.map_or("until lifted".to_string(), |secs| format!("for {secs}s"));
        info!(%cidr, until, "banned");
        Ok(format!("banned {} {until}", cidr.trunc()))
    }

    /// Lifts the ban of exactly `cidr`.
    pub fn unban(&mut self, cidr: IpNet) -> Result<String, DaemonError> {
        let mut next = self.bans.clone();
        if !next.remove(&cidr) {
            return Err(DaemonError::NoSuchBan(cidr));
        }
        write_bans(&mut self.dataplane.maps, &self.bans, &next)?;
        self.bans = next;
        info!(%cidr, "unbanned");
        Ok(format!("unbanned {}", cidr.trunc()))
    }

    /// Removes expired bans from the maps (the data plane already ignores
    /// them).
    pub fn sweep_bans(&mut self) -> Result<usize, DaemonError> {
        let expired = self.bans.expired(monotonic_ns());
        if expired.is_empty() {
            return Ok(0);
        }
        let mut next = self.bans.clone();
        for net in &expired {
            next.remove(net);
        }
        write_bans(&mut self.dataplane.maps, &self.bans, &next)?;
        self.bans = next;
        info!(count = expired.len(), "expired bans removed");
        Ok(expired.len())
    }

    /// The bans with their remaining time.
    pub fn list_bans(&self) -> Vec<BanEntry> {
        ban_entries(&self.bans)
    }

    /// Detaches, or leaves enforcement pinned with `keep`.
    pub fn shutdown(self, keep: bool) {
        for attachment in self.attachments {
            let iface = attachment.iface.clone();
            if keep {
                attachment.keep();
                info!(iface, "left attached (--keep-on-exit)");
            } else if let Err(error) = attachment.detach() {
                warn!(iface, %error, "detaching failed");
            } else {
                info!(iface, "detached");
            }
        }
    }
}

/// Bans as listed, with the time left.
pub fn ban_entries(bans: &BanSet) -> Vec<BanEntry> {
    let now = monotonic_ns();
    bans.iter()
        .filter(|(_, expiry)| *expiry == NEVER || *expiry > now)
        .map(|(net, expiry)| BanEntry {
            cidr: *net,
            remaining_seconds: (expiry != NEVER).then(|| (expiry - now).div_ceil(1_000_000_000)),
        })
        .collect()
}

fn set_event_rate(config: &mut Config, per_second: u32) {
    if per_second == 0 {
        config.event_interval_ns = 0;
        config.event_burst_ns = 0;
    } else {
        config.event_interval_ns = 1_000_000_000 / u64::from(per_second);
        // One second's worth at once.
        config.event_burst_ns = config.event_interval_ns * u64::from(per_second);
    }
}
