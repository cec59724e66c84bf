//! Building `dockfw status` from the engine.

use crate::{
    compile::StatOwner,
    dataplane::counters::{StatCounters, read_globals, read_stat},
    status::{DockerStatus, InterfaceStatus, PolicyStatus, PortStatus, RuleStatus, Status},
};

use super::engine::Engine;

/// The warning for a host with more local prefixes than the data plane's set
/// holds.
pub fn local_overflow() -> String {
    format!(
        "the host has more local prefixes than dockfw's set holds (host addresses in {} IPv4 \
         and {} IPv6 hash slots, {} IPv4 and {} IPv6 other prefixes or slot collisions); \
         for that family, wildcard ports match every destination, including traffic \
         the host routes to other machines",
        dockfw_common::LOCAL_SLOTS_V4,
        dockfw_common::LOCAL_SLOTS_V6,
        dockfw_common::MAX_LOCAL_V4,
        dockfw_common::MAX_LOCAL_V6
    )
}

impl Engine {
    /// The last compile's warnings, and whether some ports' source tables
    /// missed the fast path.
    fn warnings(&self) -> Vec<String> {
        let mut warnings = self.compiled.warnings.clone();
        if let Some(error) = &self.local.error {
            warnings.push(format!(
                "the host's local addresses are unknown ({error}); wildcard ports use the last set read"
            ));
        }
        if self.local.overflowing() {
            warnings.push(local_overflow());
        }
        if self.tries.ports_in_levels > 0 {
            warnings.push(format!(
                "{} port(s) have source tables that did not fit the trie nodes ({} in use) \
                 and use slower hash/LPM lookups; raise --max-source-trie-nodes",
                self.tries.ports_in_levels, self.tries.nodes
            ));
        }
        warnings
    }

    /// The status as `dockfw status` shows it.
    pub fn status(&self, docker: DockerStatus) -> Status {
        let stat = |owner: &StatOwner| -> StatCounters {
            self.registry
                .get(owner)
                .and_then(|id| read_stat(&self.dataplane.maps, id).ok())
                .unwrap_or_default()
        };
        let ports = self
            .compiled
            .ports
            .iter()
            .map(|port| {
                let key = port.port.key;
                PortStatus {
                    port: key.label(),
                    family: match key.family {
                        crate::model::Family::V4 => "ipv4".into(),
                        crate::model::Family::V6 => "ipv6".into(),
                    },
                    container: port.port.container.name.clone(),
                    container_id: port.port.container.id.chars().take(12).collect(),
                    container_port: port.port.container_port,
                    unmatched: stat(&StatOwner::Unmatched(key)),
                    banned: stat(&StatOwner::Banned(key)),
                    fragments: stat(&StatOwner::Fragments(key)),
                    rules: port
                        .rules
                        .iter()
                        .enumerate()
                        .map(|(index, rule)| {
                            let source = self.policy.rules.get(rule.rule);
                            RuleStatus {
                                index,
                                name: rule.name.clone(),
                                action: source.map_or("?", |rule| rule.action.name()).into(),
                                origin: source
                                    .map(|rule| rule.origin.to_string())
                                    .unwrap_or_default(),
                                audit: rule.action.flags & dockfw_common::rule_flag::AUDIT != 0,
                                counters: stat(&StatOwner::Rule(key, rule.name.clone())),
                            }
                        })
                        .collect(),
                }
            })
            .collect();
        let global = read_globals(&self.dataplane.maps)
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, totals)| totals.packets > 0)
            .map(|(code, totals)| (dockfw_common::reason::name(code).to_string(), totals))
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION").into(),
            pid: std::process::id(),
            interfaces: self
                .attachments
                .iter()
                .map(|attachment| InterfaceStatus {
                    name: attachment.iface.clone(),
                    ifindex: attachment.ifindex,
                    mode: attachment.mode,
                    adopted: attachment.adopted,
                })
                .collect(),
            policy_generation: self.applies,
            active_slot: self.active_slot,
            audit: self.config.audit,
            docker,
            policy: PolicyStatus {
                file: self.source.path().map(|path| path.display().to_string()),
                rules: self.policy.rules.len(),
                last_error: self.last_error.clone(),
            },
            bans: self.bans.len(),
            ports,
            global,
            warnings: self.warnings(),
            mirror: self.mirror_status(),
            local_addresses: self
                .local
                .prefixes
                .iter()
                .flatten()
                .map(ToString::to_string)
                .collect(),
        }
    }

    /// What `dockfw trace` needs to name the data plane's decisions.
    pub fn trace_context(&self) -> crate::trace::TraceContext {
        let mut context = crate::trace::TraceContext::from_compiled(&self.compiled, &self.policy);
        context.policy_generation = Some(self.applies);
        context.active_slot = Some(self.active_slot);
        context.audit = self.config.audit;
        context.interfaces = self
            .attachments
            .iter()
            .map(|attachment| (attachment.iface.clone(), attachment.ifindex))
            .collect();
        context.mirror = self.mirror_trace_context();
        context
    }
}
