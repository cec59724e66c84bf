//! Named address sets (`[sets.NAME]`): inline `cidrs`, a `file` of one CIDR
//! per line, and `@other` references to other sets. Rules and container
//! labels refer to them as `@NAME`.

use std::{
    collections::BTreeMap,
    io,
    ops::Range,
    path::{Path, PathBuf},
};

use ipnet::IpNet;
use toml::de::DeValue;

use super::{
    fields::{self, Text, Value},
    file_errors::{Problem, Reporter, did_you_mean},
    values::parse_net,
};

/// Reads a set file; `std::fs::read_to_string` outside tests.
pub(crate) type ReadFile<'r> = &'r dyn Fn(&Path) -> io::Result<String>;

/// Named sets, resolved to their prefixes.
pub type SetTable = BTreeMap<String, Vec<IpNet>>;

/// Junk lines reported per set file; past this one summary line stands for
/// the rest (a file in the wrong format would otherwise flood the output).
const MAX_PROBLEMS_PER_SET_FILE: usize = 20;

/// One entry of a set before references are resolved.
enum Entry {
    Net(IpNet),
    Ref { name: String, span: Range<usize> },
}

/// The sets read from `[sets]`, and every set file named (also those that
/// could not be read, so that a daemon can watch for them to appear).
pub(crate) struct Sets {
    pub nets: SetTable,
    pub files: Vec<PathBuf>,
}

/// Reads and resolves the `sets` table of a policy file.
pub(crate) fn read_sets(
    report: &mut Reporter<'_>,
    sets: Option<&Value<'_>>,
    read: ReadFile<'_>,
) -> Sets {
    let mut files = Vec::new();
    let mut definitions: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    let table = match sets.map(|value| (value.get_ref(), value.span())) {
        None => None,
        Some((DeValue::Table(table), _)) => Some(table),
        Some((other, span)) => {
            let found = fields::describe(other);
            report.at(span, format!("`sets` must be a table of named sets ([sets.NAME] with `cidrs` and/or `file`), found {found}"));
            None
        }
    };
    for (key, value) in table.into_iter().flat_map(|table| table.iter()) {
        let name = key.get_ref().as_ref();
        if !valid_set_name(name) {
            report.at(
                key.span(),
                format!("set name {name:?} may only use letters, digits, '_' and '-'"),
            );
            continue;
        }
        let DeValue::Table(set) = value.get_ref() else {
            let found = fields::describe(value.get_ref());
            report.at(
                value.span(),
                format!("`sets.{name}` must be a table with `cidrs` and/or `file`, found {found}"),
            );
            continue;
        };
        fields::check_keys(report, set, &["cidrs", "file"], &format!("[sets.{name}]"));
        let mut entries = Vec::new();
        let cidrs = set.get("cidrs");
        let expected = "CIDRs, addresses or @set";
        for item in cidrs
            .and_then(|cidrs| fields::strings(report, "cidrs", cidrs, expected))
            .unwrap_or_default()
        {
            match item.value.strip_prefix('@') {
                Some(other) => entries.push(Entry::Ref {
                    name: other.to_owned(),
                    span: item.span,
                }),
                None => match parse_net(&item.value) {
                    Ok(net) => entries.push(Entry::Net(net)),
                    Err(message) => report.at(item.span, message),
                },
            }
        }
        let file = set.get("file");
        if let Some(file) = file.and_then(|file| fields::string(report, "file", file, "a path")) {
            let path = resolve_path(report.path(), &file.value);
            entries.extend(
                read_set_file(report, name, &file, &path, read)
                    .into_iter()
                    .map(Entry::Net),
            );
            files.push(path);
        }
        if set.is_empty() {
            report.at_line(
                value.span(),
                format!("set `{name}` has neither `cidrs` nor `file`"),
            );
        }
        definitions.insert(name.to_owned(), entries);
    }
    let mut nets = SetTable::new();
    for name in definitions.keys() {
        resolve(report, name, &definitions, &mut nets, &mut Vec::new());
    }
    Sets { nets, files }
}

/// Set names are referred to as `@NAME` in lists and in comma-separated
/// labels, so they keep to a plain alphabet.
fn valid_set_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A set file path: relative paths are relative to the policy file's
/// directory, so a policy directory can be moved as a whole.
fn resolve_path(policy: &Path, file: &str) -> PathBuf {
    let file = Path::new(file);
    match policy.parent() {
        Some(dir) if file.is_relative() => dir.join(file),
        _ => file.to_path_buf(),
    }
}

/// Reads one set file, reporting an unreadable file at the `file = ` line
/// and junk lines at their own line of the set file.
fn read_set_file(
    report: &mut Reporter<'_>,
    set: &str,
    file: &Text,
    path: &Path,
    read: ReadFile<'_>,
) -> Vec<IpNet> {
    match read(path) {
        Ok(text) => {
            let (nets, problems) = parse_set_file(path, &text);
            for problem in problems {
                report.push(problem);
            }
            nets
        }
        Err(error) => {
            report.at(
                file.span.clone(),
                format!(
                    "cannot read the file of set `{set}`, {}: {error}",
                    path.display()
                ),
            );
            Vec::new()
        }
    }
}

/// Parses a set file: one CIDR or bare address per line; `#` (and `;`, as
/// in published drop lists) starts a comment; blank lines are ignored.
pub(crate) fn parse_set_file(path: &Path, text: &str) -> (Vec<IpNet>, Vec<Problem>) {
    let mut nets = Vec::new();
    let mut problems = Vec::new();
    let mut junk = 0usize;
    for (index, line) in text.lines().enumerate() {
        let entry = line.split(['#', ';']).next().unwrap_or_default().trim();
        if entry.is_empty() {
            continue;
        }
        match parse_net(entry) {
            Ok(net) => nets.push(net),
            Err(message) => {
                junk += 1;
                if junk <= MAX_PROBLEMS_PER_SET_FILE {
                    problems.push(Problem {
                        path: path.to_path_buf(),
                        line: index + 1,
                        column: None,
                        message,
                    });
                } else if junk == MAX_PROBLEMS_PER_SET_FILE + 1 {
                    problems.push(Problem {
                        path: path.to_path_buf(),
                        line: index + 1,
                        column: None,
                        message: "more lines like the above follow (not listed); is this a file of one CIDR per line?"
                            .to_owned(),
                    });
                }
            }
        }
    }
    (nets, problems)
}

/// Resolves a set's references depth first; `stack` holds the sets being
/// resolved, to name a cycle.
fn resolve(
    report: &mut Reporter<'_>,
    name: &str,
    definitions: &BTreeMap<String, Vec<Entry>>,
    done: &mut SetTable,
    stack: &mut Vec<String>,
) -> Vec<IpNet> {
    if let Some(nets) = done.get(name) {
        return nets.clone();
    }
    stack.push(name.to_owned());
    let mut nets = Vec::new();
    for entry in definitions.get(name).into_iter().flatten() {
        match entry {
            Entry::Net(net) => nets.push(*net),
            Entry::Ref { name: other, span } if stack.contains(other) => {
                let cycle: Vec<String> = stack
                    .iter()
                    .chain([other])
                    .map(|set| format!("@{set}"))
                    .collect();
                report.at(
                    span.clone(),
                    format!("sets include each other in a cycle: {}", cycle.join(" -> ")),
                );
            }
            Entry::Ref { name: other, span } if !definitions.contains_key(other) => {
                report.at(
                    span.clone(),
                    unknown_set(other, definitions.keys().map(String::as_str)),
                );
            }
            Entry::Ref { name: other, .. } => {
                nets.extend(resolve(report, other, definitions, done, stack));
            }
        }
    }
    stack.pop();
    done.insert(name.to_owned(), nets.clone());
    nets
}

/// The message for an `@name` that names no set.
pub(crate) fn unknown_set<'a>(name: &str, known: impl Iterator<Item = &'a str> + Clone) -> String {
    let hint = did_you_mean(name, known.clone(), ("@", ""));
    if !hint.is_empty() {
        return format!("unknown set @{name}{hint}");
    }
    let known: Vec<&str> = known.collect();
    if known.is_empty() {
        format!("unknown set @{name} (no sets are defined; define it under [sets.{name}])")
    } else {
        format!("unknown set @{name} (defined sets: {})", known.join(", "))
    }
}

/// A list of sources (`from`, `not_from`): CIDRs, bare addresses and `@set`
/// references, expanded to prefixes. Each bad item is an error.
pub(crate) fn expand_source(item: &str, sets: &SetTable) -> Result<Vec<IpNet>, String> {
    match item.trim().strip_prefix('@') {
        Some(name) => sets
            .get(name)
            .cloned()
            .ok_or_else(|| unknown_set(name, sets.keys().map(String::as_str))),
        None => parse_net(item).map(|net| vec![net]),
    }
}
