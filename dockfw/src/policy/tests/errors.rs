//! Each class of mistake is reported at the right `file:line[:col]` with a
//! message a user can act on, and problems are collected, not only the first.

use super::{POLICY_PATH, assert_one_problem, problems};

#[test]
fn syntax_errors_carry_line_and_column() {
    assert_one_problem(
        "[[rules]]\naction = drop\n",
        "2:10",
        "string values must be quoted",
    );
}

#[test]
fn unknown_keys_suggest_the_near_miss() {
    assert_one_problem(
        "[[rules]]\nnmae = \"x\"\naction = \"drop\"\n",
        "2:1",
        "unknown key `nmae` in [[rules]]; did you mean `name`?",
    );
    assert_one_problem(
        "[[rule]]\naction = \"drop\"\n",
        "1:3",
        "unknown key `rule` in the top level; did you mean `rules`?",
    );
    assert_one_problem(
        "[sets.office]\ncidr = [\"192.0.2.0/24\"]\n",
        "2:1",
        "unknown key `cidr` in [sets.office]; did you mean `cidrs`?",
    );
    // Far from every key: the known keys are listed instead.
    assert_one_problem(
        "[[rules]]\naction = \"drop\"\nzzzzzzzz = 1\n",
        "3:1",
        "expected one of: name, ports,",
    );
}

#[test]
fn wrong_types_say_what_to_write() {
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = \"10/s\"\nburst = \"400\"\n",
        "4:9",
        "`burst` must be an integer, found a string \"400\"; write burst = 400 without quotes",
    );
    assert_one_problem(
        "[[rules]]\naction = \"drop\"\nsyn_only = \"true\"\n",
        "3:12",
        "write syn_only = true without quotes",
    );
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = 200\n",
        "3:8",
        "`rate` must be a string (COUNT/UNIT like \"200/s\"), found an integer (200)",
    );
    assert_one_problem(
        "[[rules]]\nports = [3306]\naction = \"drop\"\n",
        "2:10",
        "elements of `ports` must be strings (\"PORT/PROTO\" like \"3306/tcp\"), found an integer (3306)",
    );
    assert_one_problem(
        "[rules]\naction = \"drop\"\n",
        "1",
        "write [[rules]] (double brackets)",
    );
    assert_one_problem(
        "sets = [\"office\"]\n",
        "1:8",
        "`sets` must be a table of named sets",
    );
}

#[test]
fn actions_are_checked() {
    assert_one_problem(
        "[[rules]]\naction = \"deny\"\n",
        "2:10",
        "unknown action \"deny\"; did you mean \"drop\"?",
    );
    assert_one_problem(
        "[[rules]]\naction = \"ratelimit\"\nrate = \"1/s\"\n",
        "2:10",
        "did you mean \"rate-limit\"?",
    );
    assert_one_problem(
        "[[rules]]\naction = \"frobnicate\"\n",
        "2:10",
        "expected \"drop\", \"pass\" or \"rate-limit\"",
    );
    assert_one_problem("[[rules]]\nports = \"80/tcp\"\n", "1", "missing `action`");
}

#[test]
fn rate_fields_must_fit_the_action() {
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\n",
        "2:10",
        "action \"rate-limit\" needs `rate`, e.g. \"200/s\"",
    );
    let found = problems("[[rules]]\naction = \"drop\"\nrate = \"10/s\"\nburst = 5\n");
    assert_eq!(
        found,
        [
            format!(
                "{POLICY_PATH}:3:8: `rate` only applies to action = \"rate-limit\" (this rule's action is \"drop\")"
            ),
            format!(
                "{POLICY_PATH}:4:9: `burst` only applies to action = \"rate-limit\" (this rule's action is \"drop\")"
            ),
        ]
    );
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = \"fast\"\n",
        "3:8",
        "rate \"fast\" is not COUNT/UNIT",
    );
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = \"5/s\"\nper = \"src\"\n",
        "4:7",
        "`per` must be \"source\" or \"port\", found \"src\"",
    );
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = \"5/s\"\nper = \"port\"\ntotal_rate = \"50/s\"\n",
        "5:14",
        "`total_rate` only applies with per = \"source\"",
    );
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = \"5/s\"\ntotal_burst = 9\n",
        "4:15",
        "`total_burst` needs `total_rate`",
    );
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = \"5/s\"\nburst = 0\n",
        "4:9",
        "`burst` must be at least 1",
    );
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = \"5/s\"\nburst = -3\n",
        "4:9",
        "`burst` must be a non-negative integer, found -3",
    );
    assert_one_problem(
        "[[rules]]\naction = \"rate-limit\"\nrate = \"5/s\"\nburst = 5000000000\n",
        "4:9",
        "`burst` 5000000000 is too large",
    );
}

#[test]
fn addresses_and_sets_are_checked() {
    assert_one_problem(
        "[[rules]]\nfrom = [\"192.0.2.0/24\", \"10.0.0.1/8\"]\naction = \"drop\"\n",
        "2:25",
        "\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?",
    );
    assert_one_problem(
        "[[rules]]\nnot_from = [\"2001:db8::1/32\"]\naction = \"drop\"\n",
        "2:13",
        "did you mean 2001:db8::/32?",
    );
    assert_one_problem(
        "[[rules]]\nfrom = \"10.0.0.300\"\naction = \"drop\"\n",
        "2:8",
        "\"10.0.0.300\" is not an address or CIDR",
    );
    assert_one_problem(
        "[sets.office]\ncidrs = [\"192.0.2.0/24\"]\n[[rules]]\nfrom = [\"@offce\"]\naction = \"drop\"\n",
        "4:9",
        "unknown set @offce; did you mean @office?",
    );
    assert_one_problem(
        "[[rules]]\nfrom = [\"@office\"]\naction = \"drop\"\n",
        "2:9",
        "unknown set @office (no sets are defined; define it under [sets.office])",
    );
    assert_one_problem(
        "[[rules]]\nfrom = [\"192.0.2.0/33\"]\naction = \"drop\"\n",
        "2:9",
        "/33 is too long for an IPv4 prefix (at most /32)",
    );
}

#[test]
fn ports_and_conditions_are_checked() {
    assert_one_problem(
        "[[rules]]\nports = [\"3306\"]\naction = \"drop\"\n",
        "2:10",
        "needs a protocol",
    );
    assert_one_problem(
        "[[rules]]\nports = [\"70000/tcp\"]\naction = \"drop\"\n",
        "2:10",
        "is not a number 1-65535",
    );
    assert_one_problem(
        "[[rules]]\nports = [\"90-80/udp\"]\naction = \"drop\"\n",
        "2:10",
        "runs backwards",
    );
    assert_one_problem(
        "[[rules]]\nports = []\naction = \"drop\"\n",
        "2:9",
        "leave it out to select every published port",
    );
    assert_one_problem(
        "[[rules]]\nports = \"53/udp\"\nsyn_only = true\naction = \"drop\"\n",
        "3:12",
        "`syn_only` matches only TCP, but `ports` selects only UDP ports",
    );
    assert_one_problem(
        "[[rules]]\naction = \"pass\"\naudit = true\n",
        "3:9",
        "`audit` has no effect with action = \"pass\"",
    );
    assert_one_problem(
        "[[rules]]\niface = \"eth+\"\naction = \"drop\"\n",
        "2:9",
        "wildcards are not supported",
    );
    assert_one_problem(
        "[[rules]]\nsource_ports = 70000\naction = \"drop\"\n",
        "2:16",
        "above 65535",
    );
    assert_one_problem(
        "[[rules]]\nsource_ports = \"9-1\"\naction = \"drop\"\n",
        "2:16",
        "runs backwards",
    );
    assert_one_problem(
        "[[rules]]\ntcp_flags = \"SYN,AKC/SYN\"\naction = \"drop\"\n",
        "2:13",
        "unknown TCP flag \"AKC\"",
    );
    assert_one_problem(
        "[[rules]]\nfragments = \"dorp\"\naction = \"drop\"\n",
        "2:13",
        "did you mean \"drop\"?",
    );
    assert_one_problem(
        "fragments = \"keep\"\n",
        "1:13",
        "fragments must be \"pass\" or \"drop\"",
    );
    assert_one_problem(
        "[[rules]]\nlabel = \"=x\"\naction = \"drop\"\n",
        "2:9",
        "has no key",
    );
}

#[test]
fn rule_names_must_be_unique_and_not_reserved() {
    assert_one_problem(
        "[[rules]]\nname = \"a\"\naction = \"drop\"\n\n[[rules]]\nname = \"a\"\naction = \"pass\"\n",
        "6",
        "duplicate rule name \"a\" (the rule at line 1 has it too)",
    );
    assert_one_problem(
        "[[rules]]\nname = \"rule-2\"\naction = \"drop\"\n[[rules]]\naction = \"drop\"\n",
        "4",
        "this rule's default name \"rule-2\" is already used by the rule at line 1",
    );
    assert_one_problem(
        "[[rules]]\nname = \"label:web\"\naction = \"drop\"\n",
        "2:8",
        "reserved for rules from container labels",
    );
    assert_one_problem(
        "[[rules]]\nname = \"  \"\naction = \"drop\"\n",
        "2:8",
        "must be non-empty printable text",
    );
}

#[test]
fn all_problems_are_reported_in_line_order() {
    let text = r#"[[rules]]
action = "deny"

[[rules]]
ports = ["80"]
from = ["@nowhere"]
action = "rate-limit"
rate = "5/s"
colour = "red"
"#;
    let found = problems(text);
    assert_eq!(found.len(), 4, "{found:#?}");
    let lines: Vec<&str> = found
        .iter()
        .filter_map(|problem| problem.split(':').nth(1))
        .collect();
    assert_eq!(lines, ["2", "5", "6", "9"]);
}

#[test]
fn the_error_display_lists_every_problem_one_per_line() {
    let error = match super::load_with(
        "[[rules]]\naction = \"deny\"\n[[rules]]\naction = \"nope\"\n",
        &[],
    ) {
        Ok(loaded) => panic!("should be refused: {loaded:?}"),
        Err(error) => error,
    };
    let text = error.to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with(&format!("{POLICY_PATH}:2:10: unknown action \"deny\"")),
        "{text}"
    );
    assert!(
        lines[1].starts_with(&format!("{POLICY_PATH}:4:10: unknown action \"nope\"")),
        "{text}"
    );
}
