//! Typed reads from the spanned TOML tree, reporting wrong types and unknown
//! keys instead of stopping at the first one (what `serde` with
//! `deny_unknown_fields` would do).

use std::ops::Range;

use toml::{
    Spanned,
    de::{DeTable, DeValue},
};

use super::file_errors::{Reporter, did_you_mean};

/// A value of the TOML tree with its span.
pub(crate) type Value<'i> = Spanned<DeValue<'i>>;

/// A string read from the file with the span of its value.
#[derive(Clone, Debug)]
pub(crate) struct Text {
    /// The string.
    pub value: String,
    /// Where it is in the file.
    pub span: Range<usize>,
}

/// Reports every key of `table` that is not in `known`, suggesting the
/// nearest known key. `context` names the table (`[[rules]]`, `[sets.office]`).
pub(crate) fn check_keys(
    report: &mut Reporter<'_>,
    table: &DeTable<'_>,
    known: &[&str],
    context: &str,
) {
    for (key, _) in table.iter() {
        let name = key.get_ref().as_ref();
        if known.contains(&name) {
            continue;
        }
        let hint = did_you_mean(name, known.iter().copied(), ("`", "`"));
        let listing = if hint.is_empty() {
            format!(" (expected one of: {})", known.join(", "))
        } else {
            hint
        };
        report.at(
            key.span(),
            format!("unknown key `{name}` in {context}{listing}"),
        );
    }
}

/// How a value is named in messages: `a string "400"`, `an integer (400)`.
pub(crate) fn describe(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(text) => format!("a string {:?}", text.as_ref()),
        DeValue::Integer(number) => format!("an integer ({number})"),
        DeValue::Float(number) => format!("a float ({number})"),
        DeValue::Boolean(flag) => format!("a boolean ({flag})"),
        DeValue::Datetime(when) => format!("a date-time ({when})"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

/// A string value; `expected` says what a good one looks like.
pub(crate) fn string(
    report: &mut Reporter<'_>,
    key: &str,
    value: &Value<'_>,
    expected: &str,
) -> Option<Text> {
    match value.get_ref() {
        DeValue::String(text) => Some(Text {
            value: text.to_string(),
            span: value.span(),
        }),
        other => {
            report.at(
                value.span(),
                format!(
                    "`{key}` must be a string ({expected}), found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// A boolean value.
pub(crate) fn boolean(report: &mut Reporter<'_>, key: &str, value: &Value<'_>) -> Option<bool> {
    match value.get_ref() {
        DeValue::Boolean(flag) => Some(*flag),
        DeValue::String(text) if matches!(text.as_ref(), "true" | "false") => {
            report.at(
                value.span(),
                format!(
                    "`{key}` must be a boolean, found {}; write {key} = {text} without quotes",
                    describe(value.get_ref())
                ),
            );
            None
        }
        other => {
            report.at(
                value.span(),
                format!(
                    "`{key}` must be a boolean (true or false), found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}

/// A non-negative integer value (counts, ports).
pub(crate) fn integer(report: &mut Reporter<'_>, key: &str, value: &Value<'_>) -> Option<u64> {
    match value.get_ref() {
        DeValue::Integer(number) => match u64::from_str_radix(number.as_str(), number.radix()) {
            Ok(number) => Some(number),
            Err(_) => {
                report.at(
                    value.span(),
                    format!("`{key}` must be a non-negative integer, found {number}"),
                );
                None
            }
        },
        DeValue::String(text) if text.trim().parse::<u64>().is_ok() => {
            report.at(
                value.span(),
                format!(
                    "`{key}` must be an integer, found {}; write {key} = {} without quotes",
                    describe(value.get_ref()),
                    text.trim()
                ),
            );
            None
        }
        other => {
            report.at(
                value.span(),
                format!("`{key}` must be an integer, found {}", describe(other)),
            );
            None
        }
    }
}

/// A list of strings; a single string is accepted as a list of one (so
/// `ports = "3306/tcp"` works like `ports = ["3306/tcp"]`). Elements of the
/// wrong type are reported one by one and skipped.
pub(crate) fn strings(
    report: &mut Reporter<'_>,
    key: &str,
    value: &Value<'_>,
    expected: &str,
) -> Option<Vec<Text>> {
    match value.get_ref() {
        DeValue::String(text) => Some(vec![Text {
            value: text.to_string(),
            span: value.span(),
        }]),
        DeValue::Array(items) => Some(
            items
                .iter()
                .filter_map(|item| match item.get_ref() {
                    DeValue::String(text) => Some(Text {
                        value: text.to_string(),
                        span: item.span(),
                    }),
                    other => {
                        report.at(
                            item.span(),
                            format!(
                                "elements of `{key}` must be strings ({expected}), found {}",
                                describe(other)
                            ),
                        );
                        None
                    }
                })
                .collect(),
        ),
        other => {
            report.at(
                value.span(),
                format!(
                    "`{key}` must be a string or a list of strings ({expected}), found {}",
                    describe(other)
                ),
            );
            None
        }
    }
}
