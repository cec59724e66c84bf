//! One saved rule's tokens as conditions and a target. Everything not
//! understood becomes [`ClauseKind::Unknown`] (with what it was), never an
//! error: an unknown condition only makes the rule inexact, which the
//! translation handles soundly.

use super::{
    rule::{
        Clause, ClauseKind, Dir, HashLimitSpec, ParsedRule, ProtoMatch, RateSpec, SYN_FLAGS,
        Target, parse_flags, parse_net, parse_port_range, parse_proto, parse_rate,
    },
    save::Token,
};

/// Parses a rule's tokens; `None` tokens (unsplittable line) give an
/// unknown rule with an unknown target.
pub fn parse_rule(tokens: Option<&[Token]>) -> ParsedRule {
    let Some(tokens) = tokens else {
        return ParsedRule {
            clauses: vec![unknown("a line that could not be split into words")],
            target: Target::Named("?".into()),
        };
    };
    let mut parser = Parser {
        tokens,
        at: 0,
        clauses: Vec::new(),
        module: None,
        proto: None,
    };
    let target = parser.run();
    ParsedRule {
        clauses: parser.clauses,
        target,
    }
}

fn unknown(what: impl Into<String>) -> Clause {
    Clause {
        negated: false,
        kind: ClauseKind::Unknown(what.into()),
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    clauses: Vec<Clause>,
    module: Option<String>,
    proto: Option<ProtoMatch>,
}

impl Parser<'_> {
    fn next_text(&mut self) -> Option<String> {
        let token = self.tokens.get(self.at)?;
        self.at += 1;
        Some(token.text.clone())
    }

    fn is_boundary(token: &Token) -> bool {
        !token.quoted
            && matches!(
                token.text.as_str(),
                "-m" | "--match" | "-j" | "--jump" | "-g"
            )
    }

    /// Skips the rest of a module's options after something not understood.
    fn skip_module(&mut self) {
        while let Some(token) = self.tokens.get(self.at) {
            if Self::is_boundary(token) {
                break;
            }
            self.at += 1;
        }
    }

    fn push(&mut self, negated: bool, kind: ClauseKind) {
        self.clauses.push(Clause { negated, kind });
    }

    fn run(&mut self) -> Target {
        let mut negated = false;
        while let Some(token) = self.tokens.get(self.at).cloned() {
            self.at += 1;
            if token.quoted {
                self.clauses
                    .push(unknown(format!("stray word {:?}", token.text)));
                continue;
            }
            let option = token.text.as_str();
            if option == "!" {
                negated = true;
                continue;
            }
            let neg = std::mem::take(&mut negated);
            match option {
                "-j" | "--jump" => return self.target(),
                "-g" | "--goto" => {
                    return self
                        .next_text()
                        .map_or(Target::Named("?".into()), Target::Goto);
                }
                "-m" | "--match" => {
                    let module = self.next_text().unwrap_or_default();
                    if !matches!(
                        module.as_str(),
                        "tcp"
                            | "udp"
                            | "multiport"
                            | "iprange"
                            | "set"
                            | "conntrack"
                            | "state"
                            | "comment"
                            | "limit"
                            | "hashlimit"
                            | "addrtype"
                    ) {
                        self.clauses.push(unknown(format!("-m {module}")));
                        self.module = None;
                        self.skip_module();
                        continue;
                    }
                    if module == "comment" {
                        self.push(false, ClauseKind::Always);
                    }
                    if module == "limit" {
                        self.push(
                            false,
                            ClauseKind::Limit {
                                rate: RateSpec {
                                    count: 3,
                                    per_ns: 3_600_000_000_000,
                                },
                                burst: 5,
                            },
                        );
                    }
                    if module == "hashlimit" {
                        self.push(
                            false,
                            ClauseKind::HashLimit(HashLimitSpec {
                                above: false,
                                rate: None,
                                burst: 5,
                                mode: Vec::new(),
                                srcmask: None,
                            }),
                        );
                    }
                    self.module = Some(module);
                }
                "-s" | "--source" | "-d" | "--destination" => {
                    let value = self.next_text().unwrap_or_default();
                    let kind = match parse_net(&value) {
                        Some(net) if option.starts_with("-s") || option == "--source" => {
                            ClauseKind::Source(net)
                        }
                        Some(net) => ClauseKind::Dest(net),
                        None => ClauseKind::Unknown(format!("{option} {value}")),
                    };
                    self.push(neg, kind);
                }
                "-i" | "--in-interface" => {
                    let value = self.next_text().unwrap_or_default();
                    self.push(neg, ClauseKind::InIface(value));
                }
                "-o" | "--out-interface" => {
                    let value = self.next_text().unwrap_or_default();
                    self.push(neg, ClauseKind::OutIface(value));
                }
                "-p" | "--protocol" => {
                    let proto = parse_proto(&self.next_text().unwrap_or_default());
                    self.proto = Some(proto.clone());
                    self.push(neg, ClauseKind::Proto(proto));
                }
                "-f" | "--fragment" => self.push(neg, ClauseKind::Fragment),
                _ if option.starts_with("--") => self.module_option(option, neg),
                _ => {
                    self.clauses.push(unknown(format!("option {option}")));
                    self.skip_module();
                }
            }
        }
        Target::None
    }

    fn target(&mut self) -> Target {
        let name = self.next_text().unwrap_or_default();
        match name.as_str() {
            "ACCEPT" => Target::Accept,
            "DROP" => Target::Drop,
            "RETURN" => Target::Return,
            "REJECT" => Target::Reject,
            "DNAT" => {
                let mut to = None;
                while let Some(option) = self.next_text() {
                    if option == "--to-destination" {
                        to = self.next_text();
                    }
                }
                Target::Dnat(to)
            }
            _ => Target::Named(name),
        }
    }

    fn module_option(&mut self, option: &str, neg: bool) {
        let module = self
            .module
            .clone()
            .or_else(|| match self.proto {
                Some(ProtoMatch::Tcp) => Some("tcp".into()),
                Some(ProtoMatch::Udp) => Some("udp".into()),
                _ => None,
            })
            .unwrap_or_default();
        let kind = match module.as_str() {
            "tcp" | "udp" => self.port_option(&module, option),
            "multiport" => self.multiport_option(option),
            "iprange" => self.iprange_option(option),
            "set" => self.set_option(option),
            "conntrack" | "state" => self.conntrack_option(option),
            "comment" => {
                self.next_text();
                Some(ClauseKind::Always)
            }
            "limit" => return self.limit_option(option),
            "hashlimit" => return self.hashlimit_option(option),
            "addrtype" if option == "--dst-type" => self
                .next_text()
                .map(|types| ClauseKind::DstAddrType(split_upper(&types))),
            _ => None,
        };
        match kind {
            Some(kind) => self.push(neg, kind),
            None => {
                self.clauses
                    .push(unknown(format!("-m {module} {option}").replace("-m  ", "")));
                self.skip_module();
            }
        }
    }

    fn port_option(&mut self, module: &str, option: &str) -> Option<ClauseKind> {
        let proto = if module == "tcp" {
            ProtoMatch::Tcp
        } else {
            ProtoMatch::Udp
        };
        match option {
            "--dport" | "--destination-port" | "--sport" | "--source-port" => {
                let (low, high) = parse_port_range(&self.next_text()?)?;
                let dir = if matches!(option, "--dport" | "--destination-port") {
                    Dir::Dst
                } else {
                    Dir::Src
                };
                Some(ClauseKind::Port {
                    dir,
                    proto,
                    low,
                    high,
                })
            }
            "--tcp-flags" if module == "tcp" => {
                let mask = parse_flags(&self.next_text()?)?;
                let value = parse_flags(&self.next_text()?)?;
                Some(ClauseKind::TcpFlags { mask, value })
            }
            "--syn" if module == "tcp" => Some(ClauseKind::TcpFlags {
                mask: SYN_FLAGS.0,
                value: SYN_FLAGS.1,
            }),
            _ => None,
        }
    }

    fn multiport_option(&mut self, option: &str) -> Option<ClauseKind> {
        let dir = match option {
            "--dports" | "--destination-ports" => Some(Dir::Dst),
            "--sports" | "--source-ports" => Some(Dir::Src),
            "--ports" => None,
            _ => return None,
        };
        let list = self.next_text()?;
        let ranges = list
            .split(',')
            .map(parse_port_range)
            .collect::<Option<Vec<_>>>()?;
        Some(ClauseKind::MultiPort { dir, ranges })
    }

    fn iprange_option(&mut self, option: &str) -> Option<ClauseKind> {
        let dir = match option {
            "--src-range" => Dir::Src,
            "--dst-range" => Dir::Dst,
            _ => return None,
        };
        let value = self.next_text()?;
        let (low, high) = value.split_once('-')?;
        Some(ClauseKind::AddrRange {
            dir,
            low: low.parse().ok()?,
            high: high.parse().ok()?,
        })
    }

    fn set_option(&mut self, option: &str) -> Option<ClauseKind> {
        match option {
            "--match-set" => {
                let name = self.next_text()?;
                let dirs = self
                    .next_text()?
                    .split(',')
                    .map(|dir| match dir {
                        "src" => Some(Dir::Src),
                        "dst" => Some(Dir::Dst),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(ClauseKind::Set { name, dirs })
            }
            // Counter bookkeeping, no effect on matching.
            "--update-counters" | "--update-subcounters" => Some(ClauseKind::Always),
            _ => None,
        }
    }

    fn conntrack_option(&mut self, option: &str) -> Option<ClauseKind> {
        match option {
            "--ctstate" | "--state" => Some(ClauseKind::CtState(split_upper(&self.next_text()?))),
            "--ctorigsrc" | "--ctorigdst" => {
                let net = parse_net(&self.next_text()?)?;
                let dir = if option == "--ctorigsrc" {
                    Dir::Src
                } else {
                    Dir::Dst
                };
                Some(ClauseKind::CtOrigAddr(dir, net))
            }
            "--ctorigsrcport" | "--ctorigdstport" => {
                let (low, high) = parse_port_range(&self.next_text()?)?;
                let dir = if option == "--ctorigsrcport" {
                    Dir::Src
                } else {
                    Dir::Dst
                };
                Some(ClauseKind::CtOrigPort(dir, low, high))
            }
            "--ctdir" => match self.next_text()?.to_ascii_uppercase().as_str() {
                "ORIGINAL" => Some(ClauseKind::CtDirOriginal(true)),
                "REPLY" => Some(ClauseKind::CtDirOriginal(false)),
                _ => None,
            },
            "--ctproto" => Some(ClauseKind::CtProto(parse_proto(&self.next_text()?))),
            _ => None,
        }
    }

    fn limit_option(&mut self, option: &str) {
        let value = self.next_text().unwrap_or_default();
        let Some(Clause {
            kind: ClauseKind::Limit { rate, burst },
            ..
        }) = self.clauses.last_mut()
        else {
            return;
        };
        let parsed = match option {
            "--limit" => parse_rate(&value).map(|parsed| *rate = parsed),
            "--limit-burst" => value.parse().ok().map(|parsed| *burst = parsed),
            _ => None,
        };
        if parsed.is_none() {
            self.clauses
                .push(unknown(format!("-m limit {option} {value}")));
        }
    }

    fn hashlimit_option(&mut self, option: &str) {
        let value = self.next_text().unwrap_or_default();
        let Some(Clause {
            kind: ClauseKind::HashLimit(spec),
            ..
        }) = self.clauses.last_mut()
        else {
            return;
        };
        let understood = match option {
            "--hashlimit-upto" | "--hashlimit" | "--hashlimit-above" => {
                spec.above = option == "--hashlimit-above";
                spec.rate = parse_rate(&value);
                true
            }
            "--hashlimit-burst" => value.parse().map(|burst| spec.burst = burst).is_ok(),
            "--hashlimit-mode" => {
                spec.mode = value.split(',').map(str::to_owned).collect();
                true
            }
            "--hashlimit-srcmask" => value.parse().map(|mask| spec.srcmask = Some(mask)).is_ok(),
            // Table sizing and naming: no effect on which packets pass
            // while entries exist.
            "--hashlimit-name"
            | "--hashlimit-htable-size"
            | "--hashlimit-htable-max"
            | "--hashlimit-htable-expire"
            | "--hashlimit-htable-gcinterval" => true,
            _ => false,
        };
        if !understood {
            self.clauses
                .push(unknown(format!("-m hashlimit {option} {value}")));
        }
    }
}

fn split_upper(list: &str) -> Vec<String> {
    list.split(',')
        .map(|word| word.to_ascii_uppercase())
        .collect()
}
