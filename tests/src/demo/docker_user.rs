//! The operator's rule today: drop the attacker's network at the published
//! port in DOCKER-USER, matched on conntrack's original destination port
//! as Docker's documentation shows (DOCKER-USER runs after DNAT, where the
//! port is already the container's). Every packet it drops has been
//! through conntrack, the nat table's DNAT and a route lookup first.

use dockfw_tests::netns::NetNs;

use super::{
    receiver::run_in,
    topology::{ATTACK_NET, WEB_PORT},
};

/// Comment on the rule, so its counter can be read back (iptables-nft
/// keeps comments as rule metadata: no per-packet cost).
const COMMENT: &str = "dfw-demo-attacker";

/// The rule's arguments after `-I DOCKER-USER`.
fn rule() -> Vec<String> {
    [
        "-s",
        ATTACK_NET,
        "-p",
        "tcp",
        "-m",
        "conntrack",
        "--ctorigdstport",
        &WEB_PORT.to_string(),
        "-m",
        "comment",
        "--comment",
        COMMENT,
        "-j",
        "DROP",
    ]
    .map(String::from)
    .to_vec()
}

/// The rule as an operator would type it, in two lines (for the screen).
pub const SHOWN: [&str; 2] = [
    "iptables -I DOCKER-USER -s 10.77.128.0/17 -p tcp \\",
    "-m conntrack --ctorigdstport 8080 -j DROP",
];

/// Inserts the rule at the top of DOCKER-USER in the host namespace. It is
/// not removed: it stays in phase 2 (dockfw mirrors it, and it remains the
/// fallback), and it goes with the namespace.
pub fn install(host: &NetNs) -> Result<(), String> {
    let rule = rule();
    let mut args = vec!["-w", "-I", "DOCKER-USER"];
    args.extend(rule.iter().map(String::as_str));
    run_in(host, "inserting the DOCKER-USER rule", "iptables", &args).map(drop)
}

/// Packets the rule has dropped so far.
pub fn dropped(host: &NetNs) -> Result<u64, String> {
    let text = run_in(
        host,
        "reading the DOCKER-USER counters",
        "iptables",
        &["-w", "-L", "DOCKER-USER", "-v", "-x", "-n"],
    )?;
    Ok(text
        .lines()
        .filter(|line| line.contains(COMMENT))
        .filter_map(|line| line.split_whitespace().next()?.parse::<u64>().ok())
        .sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_shown_is_the_rule_installed() {
        let shown = SHOWN.join(" ").replace("\\ ", "");
        let installed = rule().join(" ");
        let without_comment = installed.replace(&format!(" -m comment --comment {COMMENT}"), "");
        assert_eq!(shown, format!("iptables -I DOCKER-USER {without_comment}"));
    }
}
