//! Tests of the policy sources: pure, set files come from memory (or from a
//! scratch directory where real paths matter).

mod errors;
mod example;
mod labels;
mod sets;
mod summary;
mod values;

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
};

use super::{LoadedPolicy, PolicyError, file::load_policy_str_with};
use crate::model::Policy;

/// Where the test policy file pretends to live.
const POLICY_PATH: &str = "/etc/dockfw/policy.toml";

/// Parses `text` as `/etc/dockfw/policy.toml`, with set files from `files`
/// (absolute path -> contents; anything else is "not found").
fn load_with(text: &str, files: &[(&str, &str)]) -> Result<LoadedPolicy, PolicyError> {
    let files: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), (*text).to_owned()))
        .collect();
    let read = move |path: &Path| {
        files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    };
    load_policy_str_with(text, Path::new(POLICY_PATH), &read)
}

/// Parses `text` with no set files; panics naming the problems on failure.
fn parse_ok(text: &str) -> Policy {
    match load_with(text, &[]) {
        Ok(loaded) => loaded.policy,
        Err(error) => panic!("policy should parse, but:\n{error}"),
    }
}

/// The problems of an invalid policy, one `path:line[:col]: message` each.
fn problems_with(text: &str, files: &[(&str, &str)]) -> Vec<String> {
    match load_with(text, files) {
        Ok(loaded) => panic!(
            "policy should be refused, but parsed to {:#?}",
            loaded.policy
        ),
        Err(error) => error.problems().iter().map(ToString::to_string).collect(),
    }
}

/// [`problems_with`] without set files.
fn problems(text: &str) -> Vec<String> {
    problems_with(text, &[])
}

/// Asserts that exactly one problem is reported and that it starts with
/// `location` (`line` or `line:col`) and contains `fragment`.
#[track_caller]
fn assert_one_problem(text: &str, location: &str, fragment: &str) {
    let found = problems(text);
    assert_eq!(found.len(), 1, "expected one problem, got {found:#?}");
    let expected_start = format!("{POLICY_PATH}:{location}: ");
    assert!(
        found[0].starts_with(&expected_start) && found[0].contains(fragment),
        "expected a problem at {location} containing {fragment:?}, got {:?}",
        found[0]
    );
}
