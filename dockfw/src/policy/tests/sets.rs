//! Named sets: inline lists, set files (relative paths, comments, junk
//! lines, unreadable files), references between sets, IPv4 and IPv6.

use std::{
    fs,
    path::{Path, PathBuf},
};

use super::{POLICY_PATH, load_with, problems_with};
use crate::{
    model::Action,
    policy::{parse_policy_file, sets::parse_set_file},
};

fn net(text: &str) -> ipnet::IpNet {
    text.parse()
        .unwrap_or_else(|error| panic!("test CIDR {text}: {error}"))
}

#[test]
fn set_files_skip_comments_and_blank_lines() {
    let text = "# header\n\n203.0.113.5\n 198.51.100.0/24 ; SBL123\n2001:db8::/32 # v6\n::1\n";
    let (nets, problems) = parse_set_file(Path::new("list.txt"), text);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        nets,
        [
            net("203.0.113.5/32"),
            net("198.51.100.0/24"),
            net("2001:db8::/32"),
            net("::1/128")
        ]
    );
}

#[test]
fn junk_lines_in_a_set_file_are_reported_at_their_own_line() {
    let mut blocklist: String = (1..=16).map(|i| format!("192.0.2.{i}\n")).collect();
    blocklist.push_str("foo\n10.0.0.1/8\n");
    let policy = "[sets.blocklist]\nfile = \"blocklist.txt\"\n[[rules]]\nfrom = \"@blocklist\"\naction = \"drop\"\n";
    let found = problems_with(policy, &[("/etc/dockfw/blocklist.txt", &blocklist)]);
    assert_eq!(
        found,
        [
            "/etc/dockfw/blocklist.txt:17: \"foo\" is not an address or CIDR",
            "/etc/dockfw/blocklist.txt:18: \"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?",
        ]
    );
}

#[test]
fn a_set_file_in_the_wrong_format_is_not_listed_line_by_line() {
    let text: String = (0..100).map(|i| format!("host-{i}.example\n")).collect();
    let (nets, problems) = parse_set_file(Path::new("hosts.txt"), &text);
    assert!(nets.is_empty());
    assert_eq!(problems.len(), 21);
    assert!(
        problems[20].message.contains("more lines like the above"),
        "{:?}",
        problems[20]
    );
}

#[test]
fn an_unreadable_set_file_names_the_file_and_the_os_error() {
    let found = problems_with("[sets.blocklist]\nfile = \"missing.txt\"\n", &[]);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(&format!(
            "{POLICY_PATH}:2:8: cannot read the file of set `blocklist`, /etc/dockfw/missing.txt: "
        )) && found[0].contains("not found"),
        "{found:?}"
    );
}

#[test]
fn sets_can_include_other_sets_but_not_in_a_cycle() {
    let text = r#"[sets.office]
cidrs = ["203.0.113.0/24", "2001:db8:1::/48"]
[sets.vpn]
cidrs = "198.51.100.0/24"
[sets.trusted]
cidrs = ["@office", "@vpn", "192.0.2.1"]
[[rules]]
not_from = "@trusted"
action = "drop"
"#;
    let loaded = load_with(text, &[]).unwrap_or_else(|error| panic!("should parse:\n{error}"));
    assert_eq!(
        loaded.policy.rules[0].sources.not_from,
        [
            net("203.0.113.0/24"),
            net("2001:db8:1::/48"),
            net("198.51.100.0/24"),
            net("192.0.2.1/32")
        ]
    );

    let cyclic = "[sets.a]\ncidrs = [\"@b\"]\n[sets.b]\ncidrs = [\"10.0.0.0/8\", \"@a\"]\n";
    let found = problems_with(cyclic, &[]);
    assert_eq!(
        found,
        [format!(
            "{POLICY_PATH}:4:24: sets include each other in a cycle: @a -> @b -> @a"
        )]
    );

    let unknown = "[sets.a]\ncidrs = [\"@nope\"]\n";
    assert_eq!(
        problems_with(unknown, &[]),
        [format!(
            "{POLICY_PATH}:2:10: unknown set @nope (defined sets: a)"
        )]
    );
}

#[test]
fn set_definitions_are_checked() {
    assert_eq!(
        problems_with("[sets.empty]\n", &[]),
        [format!(
            "{POLICY_PATH}:1: set `empty` has neither `cidrs` nor `file`"
        )]
    );
    assert_eq!(
        problems_with("[sets.\"my set\"]\ncidrs = []\n", &[]),
        [format!(
            "{POLICY_PATH}:1:7: set name \"my set\" may only use letters, digits, '_' and '-'"
        )]
    );
    assert_eq!(
        problems_with("[sets]\noffice = \"192.0.2.0/24\"\n", &[]),
        [format!(
            "{POLICY_PATH}:2:10: `sets.office` must be a table with `cidrs` and/or `file`, found a string \"192.0.2.0/24\""
        )]
    );
}

#[test]
fn an_empty_set_file_gives_a_rule_that_never_matches() {
    let text = "[sets.blocklist]\nfile = \"/var/lib/blocklist\"\n[[rules]]\nfrom = \"@blocklist\"\naction = \"drop\"\n";
    let loaded = load_with(text, &[("/var/lib/blocklist", "# empty today\n")])
        .unwrap_or_else(|error| panic!("should parse:\n{error}"));
    assert_eq!(loaded.policy.rules[0].sources.from, Some(Vec::new()));
    assert_eq!(loaded.set_files, [PathBuf::from("/var/lib/blocklist")]);
}

/// A scratch directory removed on drop.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("dockfw-policy-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(path.join("lists"))
            .unwrap_or_else(|error| panic!("create {}: {error}", path.display()));
        Self(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, text).unwrap_or_else(|error| panic!("write {}: {error}", path.display()));
        path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn relative_set_files_are_read_from_the_policy_files_directory() {
    let dir = ScratchDir::new("relative");
    dir.write("lists/block.txt", "192.0.2.0/24\n2001:db8::/32\n");
    let policy_path = dir.write(
        "policy.toml",
        "[sets.block]\nfile = \"lists/block.txt\"\n[[rules]]\nfrom = \"@block\"\naction = \"drop\"\n",
    );
    let policy =
        parse_policy_file(&policy_path).unwrap_or_else(|error| panic!("should parse:\n{error}"));
    assert_eq!(
        policy.rules[0].sources.from,
        Some(vec![net("192.0.2.0/24"), net("2001:db8::/32")])
    );
    assert_eq!(policy.rules[0].action, Action::Drop);

    // The junk line is reported against the set file's own path.
    dir.write("lists/block.txt", "192.0.2.0/24\nnot-an-address\n");
    let error = match parse_policy_file(&policy_path) {
        Ok(policy) => panic!("should be refused: {policy:?}"),
        Err(error) => error,
    };
    let expected = format!(
        "{}:2: \"not-an-address\" is not an address or CIDR",
        dir.0.join("lists/block.txt").display()
    );
    assert_eq!(error.to_string(), expected);
}

#[test]
fn a_missing_policy_file_is_a_read_error() {
    let dir = ScratchDir::new("missing");
    let path = dir.0.join("nope.toml");
    match parse_policy_file(&path) {
        Err(crate::policy::PolicyError::Read { path: reported, .. }) => assert_eq!(reported, path),
        other => panic!("expected a read error, got {other:?}"),
    }
}
