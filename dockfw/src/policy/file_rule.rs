//! One `[[rules]]` table of the policy file -> [`Rule`].

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::{
    fields::{self, Text},
    file_errors::Reporter,
    sets::{self, SetTable},
    values::{self, ActionFields, FieldProblem},
};
use crate::model::{PortSpec, Rule};

/// Keys of a `[[rules]]` entry.
const RULE_KEYS: [&str; 18] = [
    "name",
    "ports",
    "container",
    "label",
    "from",
    "not_from",
    "iface",
    "syn_only",
    "source_ports",
    "tcp_flags",
    "action",
    "rate",
    "burst",
    "per",
    "total_rate",
    "total_burst",
    "audit",
    "fragments",
];

/// A `[[rules]]` table being read.
struct RuleTable<'a, 'i> {
    table: &'a DeTable<'i>,
}

impl RuleTable<'_, '_> {
    /// A string field.
    fn text(&self, report: &mut Reporter<'_>, key: &str, expected: &str) -> Option<Text> {
        let value = self.table.get(key)?;
        fields::string(report, key, value, expected)
    }

    /// A list-of-strings field (a single string is a list of one).
    fn list(&self, report: &mut Reporter<'_>, key: &str, expected: &str) -> Option<Vec<Text>> {
        let value = self.table.get(key)?;
        fields::strings(report, key, value, expected)
    }

    /// A boolean field, `false` when absent.
    fn flag(&self, report: &mut Reporter<'_>, key: &str) -> bool {
        self.table
            .get(key)
            .and_then(|value| fields::boolean(report, key, value))
            .unwrap_or(false)
    }

    /// A non-negative integer field.
    fn count(&self, report: &mut Reporter<'_>, key: &str) -> Option<u64> {
        let value = self.table.get(key)?;
        fields::integer(report, key, value)
    }

    /// Whether `key` is present but did not read (its type was reported).
    fn broken<T>(&self, key: &str, read: Option<&T>) -> bool {
        read.is_none() && self.table.get(key).is_some()
    }
}

/// One `[[rules]]` table onto `rule` (which has its name and origin); `None`
/// when anything in it is wrong (all of it reported).
pub(crate) fn read_rule(
    report: &mut Reporter<'_>,
    table: &DeTable<'_>,
    header: &Range<usize>,
    mut rule: Rule,
    sets: &SetTable,
) -> Option<Rule> {
    let problems_before = report.count();
    fields::check_keys(report, table, &RULE_KEYS, "[[rules]]");
    let fields = RuleTable { table };
    read_selector(report, &fields, &mut rule);
    read_conditions(report, &fields, &mut rule, sets);
    match read_action(report, &fields, header) {
        Some(action) => rule.action = action,
        None => return None,
    }
    report_fields(report, table, header, values::check_rule(&rule));
    (report.count() == problems_before).then_some(rule)
}

/// `ports`, `container`, `label`.
fn read_selector(report: &mut Reporter<'_>, fields: &RuleTable<'_, '_>, rule: &mut Rule) {
    if let Some(ports) = fields.list(report, "ports", "\"PORT/PROTO\" like \"3306/tcp\"") {
        if let Some(value) = fields.table.get("ports")
            && value
                .get_ref()
                .as_array()
                .is_some_and(|items| items.is_empty())
        {
            let message = "`ports` is empty; leave it out to select every published port";
            report.at(value.span(), message);
        }
        rule.ports.ports = each(report, ports, str::parse::<PortSpec>);
    }
    if let Some(container) = fields.text(report, "container", "a container name or id") {
        match container.value.trim() {
            "" => report.at(container.span, "`container` is empty"),
            name => rule.ports.container = Some(name.to_owned()),
        }
    }
    if let Some(label) = fields.text(report, "label", "\"key=value\" or \"key\"") {
        rule.ports.label = each(report, vec![label], values::parse_label_selector).pop();
    }
}

/// Sources, interfaces, TCP and port conditions, fragments, audit.
fn read_conditions(
    report: &mut Reporter<'_>,
    fields: &RuleTable<'_, '_>,
    rule: &mut Rule,
    sets: &SetTable,
) {
    let expected_sources = "CIDRs, addresses or @set";
    let expand = |item: &str| sets::expand_source(item, sets);
    if let Some(items) = fields.list(report, "from", expected_sources) {
        rule.sources.from = Some(each(report, items, expand).into_iter().flatten().collect());
    }
    if let Some(items) = fields.list(report, "not_from", expected_sources) {
        rule.sources.not_from = each(report, items, expand).into_iter().flatten().collect();
    }
    if let Some(ifaces) = fields.list(report, "iface", "interface names like \"eth0\"") {
        rule.ifaces = each(report, ifaces, values::parse_iface);
    }
    rule.syn_only = fields.flag(report, "syn_only");
    rule.audit = fields.flag(report, "audit");
    if let Some(value) = fields.table.get("source_ports") {
        let parsed = match value.get_ref() {
            DeValue::Integer(_) => fields::integer(report, "source_ports", value).map(|port| {
                u16::try_from(port)
                    .map(|port| (port, port))
                    .map_err(|_| format!("source port {port} is above 65535"))
            }),
            _ => fields::string(
                report,
                "source_ports",
                value,
                "a port or range like \"1024-65535\"",
            )
            .map(|text| values::parse_source_ports(&text.value)),
        };
        match parsed {
            Some(Ok(range)) => rule.source_ports = Some(range),
            Some(Err(message)) => report.at(value.span(), message),
            None => {}
        }
    }
    if let Some(flags) = fields.text(report, "tcp_flags", "MASK/VALUE like \"SYN,ACK/SYN\"") {
        rule.tcp_flags = each(report, vec![flags], values::parse_tcp_flags).pop();
    }
    if let Some(fragments) = fields.text(report, "fragments", "\"pass\" or \"drop\"") {
        rule.fragments = each(report, vec![fragments], values::parse_fragments).pop();
    }
}

/// The action fields, read then checked together unless one of them had the
/// wrong type (already reported; checking the rest would only add noise
/// such as "rate-limit needs `rate`").
fn read_action(
    report: &mut Reporter<'_>,
    fields: &RuleTable<'_, '_>,
    header: &Range<usize>,
) -> Option<crate::model::Action> {
    let action = fields.text(report, "action", "\"drop\", \"pass\" or \"rate-limit\"");
    let rate = fields.text(report, "rate", "COUNT/UNIT like \"200/s\"");
    let per = fields.text(report, "per", "\"source\" or \"port\"");
    let total_rate = fields.text(report, "total_rate", "COUNT/UNIT like \"5000/s\"");
    let burst = fields.count(report, "burst");
    let total_burst = fields.count(report, "total_burst");
    let broken = fields.broken("action", action.as_ref())
        || fields.broken("rate", rate.as_ref())
        || fields.broken("per", per.as_ref())
        || fields.broken("total_rate", total_rate.as_ref())
        || fields.broken("burst", burst.as_ref())
        || fields.broken("total_burst", total_burst.as_ref());
    if broken {
        return None;
    }
    let action_fields = ActionFields {
        action: as_str(action.as_ref()),
        rate: as_str(rate.as_ref()),
        burst,
        per: as_str(per.as_ref()),
        total_rate: as_str(total_rate.as_ref()),
        total_burst,
    };
    values::build_action(&action_fields)
        .map_err(|problems| report_fields(report, fields.table, header, problems))
        .ok()
}

/// The string of an optional text.
fn as_str(text: Option<&Text>) -> Option<&str> {
    text.map(|text| text.value.as_str())
}

/// Parses each item with `parse`, reporting failures at the item.
fn each<T>(
    report: &mut Reporter<'_>,
    items: Vec<Text>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    items
        .into_iter()
        .filter_map(|item| {
            parse(&item.value)
                .map_err(|message| report.at(item.span, message))
                .ok()
        })
        .collect()
}

/// Reports field problems at the field's value, or at the rule's header
/// when the field is absent (a missing `action`, say).
fn report_fields(
    report: &mut Reporter<'_>,
    table: &DeTable<'_>,
    header: &Range<usize>,
    problems: Vec<FieldProblem>,
) {
    for problem in problems {
        match table.get(problem.field) {
            Some(value) => report.at(value.span(), problem.message),
            None => report.at_line(header.clone(), problem.message),
        }
    }
}
