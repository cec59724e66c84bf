//! The policy file (TOML) -> [`Policy`].
//!
//! The file is parsed into toml's spanned tree and walked by hand rather
//! than through `serde`, so that every problem is found in one pass (not
//! only the first) and each is reported as `path:line[:column]: message`.
//! The grammar is described in the [module documentation](super).

use std::{
    collections::BTreeMap,
    fs,
    ops::Range,
    path::{Path, PathBuf},
};

use toml::de::{DeTable, DeValue};

use super::{
    fields::{self, Value},
    file_errors::{PolicyError, Reporter},
    file_rule::read_rule,
    sets::{self, ReadFile, SetTable},
    values,
};
use crate::model::{Action, Policy, Rule, RuleOrigin};

/// Prefix of the names of rules made from container labels; reserved so
/// that file rules and label rules never share a name.
pub(crate) const LABEL_RULE_PREFIX: &str = "label:";

/// A policy file with what was read along with it.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedPolicy {
    /// The policy.
    pub policy: Policy,
    /// The named sets, resolved (container labels may refer to them).
    pub sets: SetTable,
    /// Every set file the policy names, resolved against the policy file's
    /// directory: a daemon watches these along with the policy file.
    pub set_files: Vec<PathBuf>,
}

/// Reads and parses a policy file, with the set files it names.
///
/// # Errors
///
/// [`PolicyError::Read`] if the file cannot be read, otherwise
/// [`PolicyError::Invalid`] listing every problem found, each located by
/// file and line.
pub fn parse_policy_file(path: &Path) -> Result<Policy, PolicyError> {
    load_policy_file(path).map(|loaded| loaded.policy)
}

/// Like [`parse_policy_file`], and also returns the named sets and the set
/// files read.
///
/// # Errors
///
/// As [`parse_policy_file`].
pub fn load_policy_file(path: &Path) -> Result<LoadedPolicy, PolicyError> {
    let text = fs::read_to_string(path).map_err(|error| PolicyError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    load_policy_str_with(&text, path, &|file| fs::read_to_string(file))
}

/// Parses policy text; `path` is used in messages and to resolve relative
/// set file paths (which are read from disk).
///
/// # Errors
///
/// [`PolicyError::Invalid`] listing every problem found.
pub fn parse_policy_str(text: &str, path: &Path) -> Result<Policy, PolicyError> {
    load_policy_str_with(text, path, &|file| fs::read_to_string(file)).map(|loaded| loaded.policy)
}

/// The parser, with set files read through `read`.
pub(crate) fn load_policy_str_with(
    text: &str,
    path: &Path,
    read: ReadFile<'_>,
) -> Result<LoadedPolicy, PolicyError> {
    let mut report = Reporter::new(path, text);
    let (document, syntax_errors) = DeTable::parse_recoverable(text);
    if !syntax_errors.is_empty() {
        for error in syntax_errors {
            report.at(error.span().unwrap_or_default(), error.message().to_owned());
        }
        return Err(PolicyError::Invalid {
            problems: report.into_problems(),
        });
    }
    let document = document.get_ref();
    fields::check_keys(
        &mut report,
        document,
        &["fragments", "sets", "rules"],
        "the top level",
    );

    let fragments = document
        .get("fragments")
        .and_then(|value| fields::string(&mut report, "fragments", value, "\"pass\" or \"drop\""))
        .and_then(|text| {
            values::parse_fragments(&text.value)
                .map_err(|message| report.at(text.span, message))
                .ok()
        })
        .unwrap_or_default();
    let sets = sets::read_sets(&mut report, document.get("sets"), read);
    let rules = read_rules(&mut report, document.get("rules"), &sets.nets);

    if !report.is_clean() {
        return Err(PolicyError::Invalid {
            problems: report.into_problems(),
        });
    }
    Ok(LoadedPolicy {
        policy: Policy { rules, fragments },
        sets: sets.nets,
        set_files: sets.files,
    })
}

/// All `[[rules]]` entries, in file order, with unique names.
fn read_rules(report: &mut Reporter<'_>, rules: Option<&Value<'_>>, sets: &SetTable) -> Vec<Rule> {
    let items = match rules.map(|value| (value.get_ref(), value.span())) {
        None => return Vec::new(),
        Some((DeValue::Array(items), _)) => items,
        Some((DeValue::Table(_), span)) => {
            report.at_line(span, "`rules` must be a list of tables: write [[rules]] (double brackets) before each rule");
            return Vec::new();
        }
        Some((other, span)) => {
            let found = fields::describe(other);
            report.at(
                span,
                format!("`rules` must be a list of [[rules]] tables, found {found}"),
            );
            return Vec::new();
        }
    };
    let mut rules = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let DeValue::Table(table) = item.get_ref() else {
            let found = fields::describe(item.get_ref());
            report.at(
                item.span(),
                format!("each entry of `rules` must be a table, found {found}"),
            );
            continue;
        };
        let line = report.line_of(item.span().start);
        let (name, name_span) = rule_name(report, table, index);
        match names.get(&name) {
            Some(first) => {
                let message = match &name_span {
                    Some(_) => format!(
                        "duplicate rule name {name:?} (the rule at line {first} has it too)"
                    ),
                    None => format!(
                        "this rule's default name {name:?} is already used by the rule at line {first}; give one of them a `name`"
                    ),
                };
                report.at_line(name_span.unwrap_or_else(|| item.span()), message);
            }
            None => {
                names.insert(name.clone(), line);
            }
        }
        let origin = RuleOrigin::PolicyFile {
            path: report.path().to_path_buf(),
            line,
        };
        if let Some(rule) = read_rule(
            report,
            table,
            &item.span(),
            Rule::new(name, origin, Action::Drop),
            sets,
        ) {
            rules.push(rule);
        }
    }
    rules
}

/// The rule's `name`, or `rule-<N>` (1-based) when it has none; with the
/// span of the written name.
fn rule_name(
    report: &mut Reporter<'_>,
    table: &DeTable<'_>,
    index: usize,
) -> (String, Option<Range<usize>>) {
    let default = format!("rule-{}", index + 1);
    let Some(text) = table
        .get("name")
        .and_then(|value| fields::string(report, "name", value, "a unique name"))
    else {
        return (default, None);
    };
    if text.value.trim().is_empty() || text.value.chars().any(char::is_control) {
        report.at(
            text.span.clone(),
            format!(
                "rule name {:?} must be non-empty printable text",
                text.value
            ),
        );
    } else if text.value.starts_with(LABEL_RULE_PREFIX) {
        report.at(
            text.span.clone(),
            format!("rule names starting with {LABEL_RULE_PREFIX:?} are reserved for rules from container labels"),
        );
    }
    (text.value, Some(text.span))
}
