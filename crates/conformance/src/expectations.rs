//! The expectations file: which scripts are expected to fail, and why.
//!
//! Format, one entry per line:
//!
//! ```text
//! # comment
//! snd-syn/snd-syn-rtx-keepinit-ipv4.pkt   FreeBSD SYN backoff table; we double the RTO (RFC 6298 5.5)
//! ```
//!
//! The first word is the script's path relative to the directory it was
//! found under; the rest of the line is the reason (required). A script not
//! listed is expected to pass. The run fails when any outcome differs from
//! its expectation, so a fix (an unexpected pass) is seen as readily as a
//! regression (an unexpected failure).

use std::collections::BTreeMap;
use std::fmt;

/// A malformed expectations file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectationsError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ExpectationsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expectations line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ExpectationsError {}

/// The scripts expected to fail, each with its reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    expected_failures: BTreeMap<String, String>,
}

/// How an outcome compares with its expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Passed, as expected.
    Pass,
    /// Failed, and listed as expected to fail.
    ExpectedFailure,
    /// Failed, but not listed.
    UnexpectedFailure,
    /// Passed, but listed as expected to fail.
    UnexpectedPass,
}

impl Verdict {
    /// True when the outcome differs from the expectation.
    pub fn is_unexpected(self) -> bool {
        matches!(self, Verdict::UnexpectedFailure | Verdict::UnexpectedPass)
    }
}

impl Expectations {
    /// Parses the file's text.
    pub fn parse(text: &str) -> Result<Self, ExpectationsError> {
        let mut expected_failures = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, reason) = match line.split_once(char::is_whitespace) {
                Some((n, r)) if !r.trim().is_empty() => (n, r.trim()),
                _ => {
                    return Err(ExpectationsError {
                        line: i + 1,
                        message: format!("`{line}` has no reason"),
                    })
                }
            };
            if expected_failures
                .insert(name.to_string(), reason.to_string())
                .is_some()
            {
                return Err(ExpectationsError {
                    line: i + 1,
                    message: format!("`{name}` listed twice"),
                });
            }
        }
        Ok(Expectations { expected_failures })
    }

    /// The reason `name` is expected to fail, if it is.
    pub fn reason(&self, name: &str) -> Option<&str> {
        self.expected_failures.get(name).map(String::as_str)
    }

    /// Compares an outcome with the expectation for `name`.
    pub fn verdict(&self, name: &str, passed: bool) -> Verdict {
        match (passed, self.expected_failures.contains_key(name)) {
            (true, false) => Verdict::Pass,
            (true, true) => Verdict::UnexpectedPass,
            (false, true) => Verdict::ExpectedFailure,
            (false, false) => Verdict::UnexpectedFailure,
        }
    }

    /// Listed names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.expected_failures.keys().map(String::as_str)
    }

    /// Number of listed scripts.
    pub fn len(&self) -> usize {
        self.expected_failures.len()
    }

    /// True when nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.expected_failures.is_empty()
    }
}

/// Rewrites an expectations file after a run: the leading comment block is
/// kept; every failing script is listed, with its old reason when it had
/// one and otherwise with `fresh_reason(name)`; passing scripts are removed;
/// entries for scripts that were not run are kept.
pub fn rewrite(
    old_text: &str,
    old: &Expectations,
    outcomes: &[(String, bool)],
    fresh_reason: &dyn Fn(&str) -> String,
) -> String {
    let mut out = String::new();
    for line in old_text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
        } else {
            break;
        }
    }
    let ran: std::collections::HashSet<&str> = outcomes.iter().map(|(n, _)| n.as_str()).collect();
    let mut entries: BTreeMap<String, String> = old
        .expected_failures
        .iter()
        .filter(|(n, _)| !ran.contains(n.as_str()))
        .map(|(n, r)| (n.clone(), r.clone()))
        .collect();
    for (name, passed) in outcomes {
        if !passed {
            let reason = old
                .reason(name)
                .map_or_else(|| fresh_reason(name), str::to_string);
            entries.insert(name.clone(), reason.replace('\n', " "));
        }
    }
    for (name, reason) in entries {
        out.push_str(&format!("{name}  {reason}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_verdicts() {
        let e =
            Expectations::parse("# comment\n\na/b.pkt   some reason here\n  c.pkt\tother reason\n")
                .unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e.reason("a/b.pkt"), Some("some reason here"));
        assert_eq!(e.reason("c.pkt"), Some("other reason"));
        assert_eq!(e.reason("d.pkt"), None);
        let rows = [
            ("a/b.pkt", false, Verdict::ExpectedFailure),
            ("a/b.pkt", true, Verdict::UnexpectedPass),
            ("d.pkt", true, Verdict::Pass),
            ("d.pkt", false, Verdict::UnexpectedFailure),
        ];
        for (name, passed, want) in rows {
            assert_eq!(e.verdict(name, passed), want, "{name} {passed}");
        }
        assert!(Verdict::UnexpectedPass.is_unexpected());
        assert!(!Verdict::ExpectedFailure.is_unexpected());
    }

    #[test]
    fn rewrite_keeps_reasons_and_drops_passes() {
        let text = "# header\n\na.pkt  old reason a\nb.pkt  old reason b\nz.pkt  not run\n";
        let old = Expectations::parse(text).unwrap();
        let outcomes = vec![
            ("a.pkt".to_string(), false),
            ("b.pkt".to_string(), true),
            ("c.pkt".to_string(), false),
        ];
        let new = rewrite(text, &old, &outcomes, &|n| format!("new failure of {n}"));
        assert_eq!(
            new,
            "# header\n\na.pkt  old reason a\nc.pkt  new failure of c.pkt\nz.pkt  not run\n"
        );
        // The result parses and gives the same verdicts as the run.
        let e = Expectations::parse(&new).unwrap();
        assert_eq!(e.verdict("b.pkt", true), Verdict::Pass);
        assert_eq!(e.verdict("c.pkt", false), Verdict::ExpectedFailure);
    }

    #[test]
    fn rejects_missing_reason_and_duplicates() {
        assert_eq!(Expectations::parse("a.pkt\n").unwrap_err().line, 1);
        assert_eq!(Expectations::parse("a.pkt   \n").unwrap_err().line, 1);
        assert_eq!(
            Expectations::parse("a.pkt x\na.pkt y\n").unwrap_err().line,
            2
        );
    }
}
