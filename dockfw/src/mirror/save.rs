//! `iptables-save` / `ip6tables-save` output as tables of chains of rules,
//! each rule kept as its tokens and its text. Works for the output of both
//! iptables-nft and iptables-legacy, with or without `-c` counters.

use std::collections::BTreeMap;

/// A token of a rule line; `quoted` tokens (`--comment "a b"`) are never
/// taken for options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The text without quotes and escapes.
    pub text: String,
    /// Whether it was written in double quotes.
    pub quoted: bool,
}

/// One `-A CHAIN ...` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedRule {
    /// The chain.
    pub chain: String,
    /// 1-based position in the chain (as `iptables -L --line-numbers`).
    pub position: usize,
    /// The line without a leading counter, as `iptables-save` printed it.
    pub text: String,
    /// The tokens after `-A CHAIN`, or `None` when the line could not be
    /// split (an unbalanced quote): such a rule is treated as unknown.
    pub args: Option<Vec<Token>>,
}

/// A chain: built-in chains have a policy, user chains `-`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    /// `ACCEPT`/`DROP` for built-in chains, `None` for user chains.
    pub policy: Option<String>,
    /// Rules in order.
    pub rules: Vec<SavedRule>,
}

/// One `*table` section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Chains by name.
    pub chains: BTreeMap<String, Chain>,
}

/// A whole `iptables-save` output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Tables by name (`filter`, `nat`, `raw`, `mangle`, `security`).
    pub tables: BTreeMap<String, Table>,
}

impl Ruleset {
    /// A chain of a table.
    pub fn chain(&self, table: &str, chain: &str) -> Option<&Chain> {
        self.tables.get(table)?.chains.get(chain)
    }

    /// The rules of a chain (empty when it does not exist).
    pub fn rules(&self, table: &str, chain: &str) -> &[SavedRule] {
        self.chain(table, chain)
            .map_or(&[], |chain| chain.rules.as_slice())
    }
}

/// Why a save output was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the iptables-save output: {problem}")]
pub struct SaveError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// Parses `iptables-save` output. Comment lines are ignored; a rule line
/// outside a table or for an undeclared chain is an error (the output is
/// not what iptables-save writes, so nothing of it is trusted).
pub fn parse(text: &str) -> Result<Ruleset, SaveError> {
    let mut ruleset = Ruleset::default();
    let mut current: Option<String> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let error = |problem: String| SaveError {
            line: line_no,
            problem,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            ruleset.tables.entry(name.to_owned()).or_default();
            current = Some(name.to_owned());
            continue;
        }
        if line == "COMMIT" {
            current = None;
            continue;
        }
        let Some(table_name) = current.as_deref() else {
            return Err(error(format!("{line:?} outside a *table section")));
        };
        let Some(table) = ruleset.tables.get_mut(table_name) else {
            return Err(error("table vanished".into()));
        };
        if let Some(decl) = line.strip_prefix(':') {
            let mut words = decl.split_whitespace();
            let name = words
                .next()
                .ok_or_else(|| error("chain declaration without a name".into()))?;
            let policy = words.next().filter(|policy| *policy != "-");
            table.chains.entry(name.to_owned()).or_default().policy = policy.map(str::to_owned);
            continue;
        }
        // `[packets:bytes] -A ...` with -c.
        let body = match line.strip_prefix('[') {
            Some(rest) => rest
                .split_once(']')
                .map(|(_, body)| body.trim_start())
                .ok_or_else(|| error("unterminated counter".into()))?,
            None => line,
        };
        let Some(rest) = body.strip_prefix("-A ") else {
            return Err(error(format!("unexpected line {line:?}")));
        };
        let (chain_name, args_text) = rest.trim_start().split_once(' ').unwrap_or((rest, ""));
        let Some(chain) = table.chains.get_mut(chain_name) else {
            return Err(error(format!("rule for undeclared chain {chain_name}")));
        };
        chain.rules.push(SavedRule {
            chain: chain_name.to_owned(),
            position: chain.rules.len() + 1,
            text: body.to_owned(),
            args: tokenize(args_text),
        });
    }
    Ok(ruleset)
}

/// Splits a rule's arguments as a shell would for iptables-save's quoting:
/// words, and `"..."` strings with `\"` and `\\` escapes.
pub fn tokenize(text: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Some(tokens);
        };
        let mut word = String::new();
        let mut quoted = false;
        if first == '"' {
            quoted = true;
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => word.push(chars.next()?),
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => word.push(c),
                }
            }
            if !closed {
                return None;
            }
            // A quote must end a word.
            if chars.peek().is_some_and(|c| !c.is_whitespace()) {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                word.push(c);
                chars.next();
            }
        }
        tokens.push(Token { text: word, quoted });
    }
}

/// The save output without what changes on every call (the `# Generated`
/// comments, chain counters): what change detection hashes.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with('#') {
            continue;
        }
        let line = match line.strip_prefix(':') {
            Some(decl) => {
                let mut words = decl.split_whitespace();
                let name = words.next().unwrap_or_default();
                let policy = words.next().unwrap_or("-");
                out.push(':');
                out.push_str(name);
                out.push(' ');
                out.push_str(policy);
                out.push('\n');
                continue;
            }
            None => match line.strip_prefix('[') {
                Some(rest) => rest.split_once(']').map_or(line, |(_, body)| body.trim()),
                None => line,
            },
        };
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# Generated by iptables-save v1.8.9 (nf_tables) on Thu Nov 26 23:49:29 2026
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [12:720]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
[3:180] -A DOCKER-USER -s 10.0.0.0/8 -m comment --comment \"block \\\"ten\\\" net\" -j DROP
-A DOCKER-USER -j RETURN
COMMIT
";

    #[test]
    fn parses_tables_chains_and_quoted_comments() {
        let ruleset = parse(SAMPLE).unwrap();
        let chain = ruleset.chain("filter", "DOCKER-USER").unwrap();
        assert_eq!(chain.policy, None);
        assert_eq!(
            ruleset
                .chain("filter", "FORWARD")
                .unwrap()
                .policy
                .as_deref(),
            Some("DROP")
        );
        let rule = &chain.rules[0];
        assert_eq!(rule.position, 1);
        assert!(rule.text.starts_with("-A DOCKER-USER -s 10.0.0.0/8"));
        let args = rule.args.as_ref().unwrap();
        let comment = args.iter().find(|token| token.quoted).unwrap();
        assert_eq!(comment.text, "block \"ten\" net");
        assert_eq!(chain.rules[1].position, 2);
    }

    #[test]
    fn refuses_what_is_not_save_output() {
        assert!(parse("-A FORWARD -j DROP\n").is_err());
        assert!(parse("*filter\n-A NOPE -j DROP\nCOMMIT\n").is_err());
        assert!(parse("*filter\nhello\nCOMMIT\n").is_err());
    }

    #[test]
    fn unbalanced_quotes_leave_the_rule_unknown() {
        let ruleset =
            parse("*filter\n:X - [0:0]\n-A X -m comment --comment \"open -j DROP\nCOMMIT\n")
                .unwrap();
        assert_eq!(ruleset.rules("filter", "X")[0].args, None);
    }

    #[test]
    fn normalizing_drops_what_changes_every_time() {
        let later = SAMPLE
            .replace("23:49:29", "23:50:00")
            .replace("[12:720]", "[99:9999]")
            .replace("[3:180] ", "[7:420] ");
        assert_eq!(normalize(SAMPLE), normalize(&later));
        assert_ne!(normalize(SAMPLE), normalize(&SAMPLE.replace("/8", "/16")));
    }
}
