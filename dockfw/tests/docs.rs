//! Every example in the documentation is executed, so the docs cannot drift
//! from the code. The conventions (also in `docs/README.md`):
//!
//! - ```` ```toml ````: a complete policy file; it must pass `dockfw check`.
//!   When the next block is a ```` ```console ```` block starting with
//!   `$ dockfw check --policy policy.toml`, the rest of that block must be
//!   exactly what `dockfw check` prints.
//! - ```` ```toml invalid ````: a policy file that must be rejected; the next
//!   block must be such a console block, holding the exact error lines.
//! - ```` ```text file=NAME ````: a file (a set file) written next to
//!   `policy.toml` before the policy examples of the same page are checked.
//! - ```` ```yaml ```` (compose files): the `dockfw.*` labels of the block must
//!   give rules; ```` ```yaml invalid ```` must be refused, with the exact
//!   message in the following ```` ```text ```` block.
//! - ```` ```console ```` (commands after `$ `, output lines after them),
//!   ```` ```sh ````, and blocks without an info string: every command line
//!   `dockfw ...` (or `cargo xtask run -- ...`) must parse with dockfw's
//!   command line.
//! - ```` ```promql ````: every `dockfw_*` metric named must be listed in
//!   `docs/metrics.md`.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on a broken checkout, like the tests themselves"
)]

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use clap::Parser as _;
use dockfw::{
    cli::Cli,
    model::ContainerRef,
    policy::{check_summary, load_policy_file, rules_from_labels_with_sets},
};

/// A fenced code block.
#[derive(Debug)]
struct Block {
    /// The info string's words (`toml`, `invalid`, `file=x`).
    info: Vec<String>,
    /// 1-based line of the opening fence.
    line: usize,
    /// The content.
    text: String,
}

impl Block {
    fn lang(&self) -> &str {
        self.info.first().map_or("", String::as_str)
    }

    fn has(&self, word: &str) -> bool {
        self.info.iter().skip(1).any(|info| info == word)
    }

    fn attribute(&self, key: &str) -> Option<&str> {
        self.info
            .iter()
            .find_map(|info| info.strip_prefix(key)?.strip_prefix('='))
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The Markdown files: README.md and everything under docs/.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                out.push(path);
            }
        }
    }
    let root = repo_root();
    let mut pages = vec![root.join("README.md")];
    walk(&root.join("docs"), &mut pages);
    pages.sort();
    pages
}

fn blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        info: info.split_whitespace().map(str::to_owned).collect(),
                        line: index + 1,
                        text: String::new(),
                    });
                }
            }
            Some(block) => {
                if trimmed.starts_with("```") {
                    blocks.extend(open.take());
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "an unclosed code block");
    blocks
}

/// Splits a command line into words: spaces separate, single and double
/// quotes group, a backslash escapes the next character.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            // A comment starts at a `#` that begins a word.
            (None, '#') if !in_word => break,
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The dockfw command line in a shell line, if it is one.
fn dockfw_command(line: &str) -> Option<Vec<String>> {
    let line = line.trim();
    let line = line
        .strip_prefix("$ ")
        .or_else(|| line.strip_prefix("# "))
        .unwrap_or(line);
    let line = line.strip_prefix("sudo ").unwrap_or(line);
    // A pipe or redirection ends the command.
    let line = line.split(['|', '>']).next().unwrap_or(line);
    if let Some(args) = line.strip_prefix("cargo xtask run -- ") {
        let mut words = vec!["dockfw".to_owned()];
        words.extend(shell_words(args));
        return Some(words);
    }
    line.starts_with("dockfw ").then(|| shell_words(line))
}

/// `policy.toml`-relative messages: the temporary directory removed.
fn relative(text: &str, dir: &Path) -> String {
    text.replace(&format!("{}/", dir.display()), "")
}

/// What `dockfw check --policy policy.toml` prints for the file in `dir`.
fn check_output(dir: &Path) -> Result<String, String> {
    let path = dir.join("policy.toml");
    match load_policy_file(&path) {
        Ok(loaded) => Ok(relative(
            &format!("{}policy.toml: OK\n", check_summary(&loaded.policy)),
            dir,
        )),
        Err(error) => Err(relative(&format!("{error}\n"), dir)),
    }
}

/// The expected output of a console block that runs `dockfw check`.
fn expected_check(block: Option<&Block>) -> Option<String> {
    let block = block.filter(|block| block.lang() == "console")?;
    let rest = block
        .text
        .strip_prefix("$ dockfw check --policy policy.toml\n")?;
    Some(rest.to_owned())
}

/// Checks one page; returns problems as `page:line: message`.
fn check_page(page: &Path) -> (usize, Vec<String>) {
    let text = fs::read_to_string(page).unwrap();
    let name = page
        .strip_prefix(repo_root())
        .unwrap_or(page)
        .display()
        .to_string();
    let blocks = blocks(&text);
    let dir = std::env::temp_dir().join(format!(
        "dfw-docs-{}-{}",
        std::process::id(),
        name.replace('/', "_")
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    for block in blocks.iter().filter(|block| block.lang() == "text") {
        if let Some(file) = block.attribute("file") {
            fs::write(dir.join(file), &block.text).unwrap();
        }
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut sets = BTreeMap::new();
    let mut report =
        |line: usize, message: String| problems.push(format!("{name}:{line}: {message}"));
    for (index, block) in blocks.iter().enumerate() {
        let next = blocks.get(index + 1);
        match block.lang() {
            "toml" => {
                checked += 1;
                fs::write(dir.join("policy.toml"), &block.text).unwrap();
                let result = check_output(&dir);
                let expected = expected_check(next);
                match (result, block.has("invalid"), expected) {
                    (Ok(output), false, Some(expected)) if output != expected => report(
                        block.line,
                        format!("`dockfw check` prints\n{output}but the docs show\n{expected}"),
                    ),
                    (Ok(_), false, _) => {
                        if let Ok(loaded) = load_policy_file(&dir.join("policy.toml")) {
                            sets = loaded.sets;
                        }
                    }
                    (Ok(_), true, _) => report(
                        block.line,
                        "marked invalid, but the policy is accepted".into(),
                    ),
                    (Err(error), false, _) => report(block.line, format!("rejected:\n{error}")),
                    (Err(_), true, None) => report(
                        block.line,
                        "an invalid example must be followed by a console block with \
                         `$ dockfw check --policy policy.toml` and the error"
                            .into(),
                    ),
                    (Err(error), true, Some(expected)) if error != expected => report(
                        block.line,
                        format!("`dockfw check` says\n{error}but the docs show\n{expected}"),
                    ),
                    (Err(_), true, Some(_)) => {}
                }
            }
            "yaml" => {
                checked += 1;
                let labels: BTreeMap<String, String> = block
                    .text
                    .lines()
                    .filter_map(|line| {
                        let item = line.trim().trim_start_matches("- ").trim_matches('"');
                        let item = item.strip_prefix("dockfw.")?;
                        let (key, value) =
                            item.split_once('=').or_else(|| item.split_once(": "))?;
                        Some((
                            format!("dockfw.{key}"),
                            value.trim().trim_matches('"').to_owned(),
                        ))
                    })
                    .collect();
                if labels.is_empty() {
                    report(block.line, "a yaml example without dockfw.* labels".into());
                    continue;
                }
                let container = ContainerRef {
                    id: "0123456789abcdef0123456789abcdef".into(),
                    name: "web".into(),
                    labels,
                };
                match (
                    rules_from_labels_with_sets(&container, &sets),
                    block.has("invalid"),
                ) {
                    (Ok(_), false) => {}
                    (Ok(_), true) => report(
                        block.line,
                        "marked invalid, but the labels are accepted".into(),
                    ),
                    (Err(error), false) => report(block.line, format!("labels rejected: {error}")),
                    (Err(error), true) => {
                        let shown = next
                            .filter(|next| next.lang() == "text")
                            .map(|next| next.text.trim_end().to_owned());
                        if shown.as_deref() != Some(error.to_string().as_str()) {
                            report(
                                block.line,
                                format!(
                                    "the labels are refused with\n{error}\nbut the docs show \
                                     {shown:?} (a ```text block right after)"
                                ),
                            );
                        }
                    }
                }
            }
            "console" | "sh" | "bash" | "" => {
                for (offset, line) in block.text.lines().enumerate() {
                    // In a console block, output lines follow the `$ ` ones.
                    if block.lang() == "console" && !line.starts_with("$ ") {
                        continue;
                    }
                    let Some(words) = dockfw_command(line) else {
                        continue;
                    };
                    checked += 1;
                    if let Err(error) = Cli::try_parse_from(&words) {
                        report(
                            block.line + 1 + offset,
                            format!("`{}` does not parse: {error}", line.trim()),
                        );
                    }
                }
            }
            "promql" => {
                checked += 1;
                let metrics =
                    fs::read_to_string(repo_root().join("docs/metrics.md")).unwrap_or_default();
                for word in block
                    .text
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .filter(|word| word.starts_with("dockfw_"))
                {
                    if !metrics.contains(&format!("`{word}`")) {
                        report(
                            block.line,
                            format!("metric {word} is not in docs/metrics.md"),
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let _ = fs::remove_dir_all(&dir);
    (checked, problems)
}

#[test]
fn every_example_in_the_docs_runs() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let (count, found) = check_page(&page);
        checked += count;
        problems.extend(found);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
    assert!(checked > 0, "no examples found under docs/");
}

#[test]
fn the_harness_reads_blocks_and_command_lines() {
    let page = "text\n```toml invalid\na = 1\n```\n\n```console\n$ dockfw status --json\n```\n";
    let found = blocks(page);
    assert_eq!(found.len(), 2);
    assert!(found[0].has("invalid"));
    assert_eq!(found[0].line, 2);
    assert_eq!(found[1].text, "$ dockfw status --json\n");
    assert_eq!(
        shell_words(r#"dockfw trace --from '198.51.100.7' --to "192.0.2.1:80/tcp" a\ b"#),
        [
            "dockfw",
            "trace",
            "--from",
            "198.51.100.7",
            "--to",
            "192.0.2.1:80/tcp",
            "a b"
        ]
    );
    assert_eq!(
        dockfw_command("$ sudo dockfw bans --json | jq ."),
        Some(vec![
            "dockfw".to_owned(),
            "bans".to_owned(),
            "--json".to_owned()
        ])
    );
    assert_eq!(
        dockfw_command("$ dockfw bans --json   # every ban, as JSON"),
        Some(vec!["dockfw".to_owned(), "bans".into(), "--json".into()])
    );
    assert_eq!(
        dockfw_command("cargo xtask run -- run --iface eth0"),
        Some(vec![
            "dockfw".to_owned(),
            "run".into(),
            "--iface".into(),
            "eth0".into()
        ])
    );
    assert_eq!(dockfw_command("iptables -S DOCKER-USER"), None);
}
