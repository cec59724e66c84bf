//! Problems found in a policy file (or a set file it names), each located by
//! file and line so that an operator can go straight to it.

use std::{
    fmt, io,
    ops::Range,
    path::{Path, PathBuf},
};

/// One problem, located: `path:line[:column]: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The policy file, or the set file the problem is in.
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters), where it helps.
    pub column: Option<usize>,
    /// What is wrong and, where possible, what to write instead.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.path.display(), self.line)?;
        if let Some(column) = self.column {
            write!(f, ":{column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Why a policy file could not be turned into a [`Policy`](crate::model::Policy).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file itself could not be read.
    #[error("{}: cannot read the policy file: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The file was read but has problems; every problem found is listed,
    /// one per line.
    #[error("{}", ProblemList(problems))]
    Invalid {
        /// The problems, in file order.
        problems: Vec<Problem>,
    },
}

impl PolicyError {
    /// The located problems (empty for [`PolicyError::Read`]).
    #[must_use]
    pub fn problems(&self) -> &[Problem] {
        match self {
            Self::Read { .. } => &[],
            Self::Invalid { problems } => problems,
        }
    }
}

/// Display helper: one problem per line.
struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Collects the problems of one policy file, turning byte spans of its text
/// into lines and columns.
pub(crate) struct Reporter<'t> {
    path: &'t Path,
    text: &'t str,
    problems: Vec<Problem>,
}

impl<'t> Reporter<'t> {
    /// A reporter for the policy file `path` whose contents are `text`.
    pub(crate) fn new(path: &'t Path, text: &'t str) -> Self {
        Self {
            path,
            text,
            problems: Vec::new(),
        }
    }

    /// The policy file's path.
    pub(crate) fn path(&self) -> &'t Path {
        self.path
    }

    /// A problem at a value or key: line and column.
    pub(crate) fn at(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.push(Problem {
            path: self.path.to_path_buf(),
            line,
            column: Some(column),
            message: message.into(),
        });
    }

    /// A problem about a whole table (`[[rules]]`, `[sets.x]`): its line only.
    pub(crate) fn at_line(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, _) = line_column(self.text, span.start);
        self.push(Problem {
            path: self.path.to_path_buf(),
            line,
            column: None,
            message: message.into(),
        });
    }

    /// The 1-based line of a byte offset in the policy file.
    pub(crate) fn line_of(&self, offset: usize) -> usize {
        line_column(self.text, offset).0
    }

    /// A problem located elsewhere (a set file); duplicates are dropped
    /// (toml's error recovery can report one mistake twice).
    pub(crate) fn push(&mut self, problem: Problem) {
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    /// How many problems were reported so far.
    pub(crate) fn count(&self) -> usize {
        self.problems.len()
    }

    /// Whether anything was reported.
    pub(crate) fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems, the policy file's own first and in line order, then
    /// those of set files (each file in line order).
    pub(crate) fn into_problems(self) -> Vec<Problem> {
        let main = self.path;
        let mut problems = self.problems;
        problems.sort_by(|a, b| {
            (a.path != main, &a.path, a.line, a.column).cmp(&(
                b.path != main,
                &b.path,
                b.line,
                b.column,
            ))
        });
        problems
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// `; did you mean `x`?` when one of `candidates` is close to `word`, else
/// an empty string. `quote` wraps the suggestion (`` ` `` for keys, `"` for
/// values, `@` prefixes set names).
pub(crate) fn did_you_mean<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    quote: (&str, &str),
) -> String {
    closest(word, candidates).map_or_else(String::new, |best| {
        format!("; did you mean {}{best}{}?", quote.0, quote.1)
    })
}

/// The candidate closest to `word` if it is close enough to be a typo:
/// same letters ignoring case, or an edit distance of at most a third of
/// the word's length (at least 1, at most 3).
pub(crate) fn closest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let word_lower = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|candidate| {
            let distance = edit_distance(&word_lower, &candidate.to_ascii_lowercase());
            (distance, candidate)
        })
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Edit distance counting an insertion, deletion, substitution or swap of
/// two neighbouring characters as one edit (optimal string alignment), so
/// that `nmae` is one edit from `name`.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitute = rows[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut best = substitute.min(rows[i - 1][j] + 1).min(rows[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}
