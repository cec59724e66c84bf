//! Sources of intent written by people: the policy file and container
//! labels, each turned into [`Rule`]s of the [model](crate::model).
//!
//! # Precedence
//!
//! Rules are evaluated in order and the first match wins. [`merge`] puts
//! the policy file's rules first, in file order, then the rules of container
//! labels (containers in the order given, each container's rules in index
//! order). The operator's file therefore always wins over what a container
//! asks for: a file rule `action = "pass"` for some sources cannot be undone
//! by a label, and a global file rule (say, dropping `@blocklist`) applies
//! before any label rule. A label rule only ever selects the ports of the
//! container that carries it (by container id), so one container cannot
//! change the treatment of another's ports.
//!
//! # The policy file (TOML)
//!
//! ```toml
//! fragments = "pass"            # non-first fragments: "pass" (default) | "drop"
//!
//! [sets.office]
//! cidrs = ["203.0.113.0/24", "2001:db8:1::/48", "@vpn"]  # may include other sets
//! [sets.blocklist]
//! file = "blocklist.txt"        # relative to the policy file's directory
//!
//! [[rules]]
//! name = "db-office-only"       # optional: default "rule-<N>" (1-based)
//! ports = ["3306/tcp"]          # "PORT/PROTO" or "LOW-HIGH/PROTO"
//! not_from = ["@office"]
//! action = "drop"
//! ```
//!
//! Top level: `fragments`, `sets` (table of `[sets.NAME]`), `rules` (array of
//! `[[rules]]`). A set has `cidrs` (list of CIDRs, bare addresses and
//! `@other` sets) and/or `file` (one CIDR or address per line; `#` and `;`
//! start comments; blank lines are ignored). Set names use letters, digits,
//! `_` and `-`.
//!
//! Rule keys (all optional but `action`; conditions must all hold; a string is
//! accepted wherever a list is, as a list of one):
//!
//! | key | value |
//! |---|---|
//! | `name` | unique text; names starting with `label:` are reserved |
//! | `ports` | list of `"PORT/tcp"`, `"LOW-HIGH/udp"`; absent = every published port |
//! | `container` | container name or id (prefix of 12+ characters) |
//! | `label` | `"key=value"` or `"key"`: containers carrying that label |
//! | `from`, `not_from` | lists of CIDRs, addresses, `@set`: in `from` and not in `not_from` |
//! | `iface` | list of ingress interface names |
//! | `syn_only` | `true`: only TCP SYN without ACK |
//! | `source_ports` | `"1024-65535"`, `"53"` or `53` |
//! | `tcp_flags` | `"MASK/VALUE"` (or `"MASK VALUE"`), flags FIN SYN RST PSH ACK URG ECE CWR, or ALL / NONE: `flags & MASK == VALUE` |
//! | `fragments` | `"pass"` or `"drop"`, for the ports this rule selects |
//! | `action` | `"drop"`, `"pass"` (stop evaluating, hand to netfilter), `"rate-limit"` |
//! | `rate` | rate-limit only: `"COUNT/s"`, `/m`, `/h` |
//! | `burst` | rate-limit only: integer >= 1; default the rate's count |
//! | `per` | rate-limit only: `"source"` (default) or `"port"` |
//! | `total_rate`, `total_burst` | rate-limit with `per = "source"`: aggregate cap over all sources of a port; burst defaults to the rate's count |
//! | `audit` | `true`: count would-be drops, drop nothing |
//!
//! Container labels use the same value grammar; see [`labels`].

pub mod file;
pub mod file_errors;
pub mod labels;
pub mod sets;
pub mod summary;

mod fields;
mod file_rule;
mod values;

#[cfg(test)]
mod tests;

pub use file::{LoadedPolicy, load_policy_file, parse_policy_file, parse_policy_str};
pub use file_errors::{PolicyError, Problem};
pub use labels::{LabelError, LabelProblem, rules_from_labels, rules_from_labels_with_sets};
pub use sets::SetTable;
pub use summary::{check_summary, describe_rule};

use crate::model::{Policy, Rule};

/// The policy in force: the file's rules first, then the label rules (see
/// [Precedence](self#precedence)); the file's fragment default stays.
#[must_use]
pub fn merge(file: Policy, label_rules: Vec<Rule>) -> Policy {
    let mut policy = file;
    policy.rules.extend(label_rules);
    policy
}
