//! Running many scripts, comparing outcomes with the expectations file and
//! printing the report.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::panic::{self, AssertUnwindSafe};

use crate::expectations::{Expectations, Verdict};
use crate::runner::{self, Failure, FailureKind};
use crate::script;
use crate::stack::Stack;
use crate::sysctl::Settings;
use crate::ScriptFile;

/// The outcome of one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptResult {
    /// The script's name (relative path).
    pub name: String,
    /// `Ok` when it passed.
    pub outcome: Result<(), Failure>,
    /// How that compares with the expectation.
    pub verdict: Verdict,
}

/// The outcomes of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Every script, in order.
    pub results: Vec<ScriptResult>,
    /// Listed expectations that named no script of this run.
    pub stale_expectations: Vec<String>,
}

impl Summary {
    /// Scripts that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.outcome.is_ok()).count()
    }

    /// Scripts that failed, expected or not.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Outcomes that differ from their expectation.
    pub fn unexpected(&self) -> impl Iterator<Item = &ScriptResult> {
        self.results.iter().filter(|r| r.verdict.is_unexpected())
    }

    /// True when every outcome is as expected.
    pub fn ok(&self) -> bool {
        self.unexpected().next().is_none()
    }

    /// The final line: `conformance: N passed, M failed`.
    pub fn summary_line(&self) -> String {
        format!(
            "conformance: {} passed, {} failed",
            self.passed(),
            self.failed()
        )
    }

    /// Failures grouped by cause (the failure message with its numbers
    /// blanked out), most frequent first.
    pub fn causes(&self) -> Vec<(String, usize)> {
        let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
        for r in &self.results {
            if let Err(f) = &r.outcome {
                let mut key = format!("{}: ", f.kind);
                let mut rest = f.message.as_str();
                while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
                    key.push_str(&rest[..start]);
                    let digits = &rest[start..];
                    let len = digits
                        .find(|c: char| !c.is_ascii_digit())
                        .unwrap_or(digits.len());
                    // Keep document numbers (RFC 5961 section 3), blank values.
                    if key.ends_with("RFC ") || key.ends_with("section ") {
                        key.push_str(&digits[..len]);
                    } else {
                        key.push('N');
                    }
                    rest = &digits[len..];
                }
                key.push_str(rest);
                *counts.entry(key).or_default() += 1;
            }
        }
        let mut v: Vec<(String, usize)> = counts.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }

    /// The report: every unexpected outcome with its details, then the
    /// summary line. With `verbose`, expected failures are listed too.
    pub fn report(&self, verbose: bool) -> String {
        let mut out = String::new();
        for r in &self.results {
            let show = r.verdict.is_unexpected() || (verbose && r.outcome.is_err());
            if !show {
                continue;
            }
            match (&r.outcome, r.verdict) {
                (Ok(()), _) => {
                    let _ = writeln!(
                        out,
                        "UNEXPECTED PASS {}: listed in the expectations file; remove it",
                        r.name
                    );
                }
                (Err(f), v) => {
                    let tag = if v == Verdict::ExpectedFailure {
                        "expected failure"
                    } else {
                        "UNEXPECTED FAILURE"
                    };
                    let _ = writeln!(out, "{tag} {}:{}: {f}", r.name, f.line);
                }
            }
        }
        for s in &self.stale_expectations {
            let _ = writeln!(
                out,
                "note: expectation for {s} matches no script in this run"
            );
        }
        let causes = self.causes();
        if !causes.is_empty() {
            let _ = writeln!(out, "failures by cause:");
            for (cause, n) in causes {
                let _ = writeln!(out, "  {n:4}  {cause}");
            }
        }
        let unexpected: Vec<&str> = self.unexpected().map(|r| r.name.as_str()).collect();
        if !unexpected.is_empty() {
            let _ = writeln!(out, "unexpected outcomes ({}):", unexpected.len());
            for n in unexpected {
                let _ = writeln!(out, "  {n}");
            }
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }
}

/// Runs one script's text: parse, then run against stacks from `build`;
/// a panic in the engine becomes a [`FailureKind::Crash`].
pub fn run_text<S: Stack>(
    text: &str,
    defines: &HashSet<String>,
    build: &mut dyn FnMut(&Settings) -> Result<S, String>,
) -> Result<(), Failure> {
    let script = script::parse(text, defines)
        .map_err(|e| Failure::new(e.line, FailureKind::Script, e.message))?;
    match panic::catch_unwind(AssertUnwindSafe(|| runner::run(&script, build))) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(Failure::new(0, FailureKind::Crash, format!("panic: {msg}")))
        }
    }
}

/// Runs every script and compares with `expectations`.
pub fn run_all<S: Stack>(
    files: &[ScriptFile],
    expectations: &Expectations,
    defines: &HashSet<String>,
    build: &mut dyn FnMut(&Settings) -> Result<S, String>,
) -> Summary {
    let mut summary = Summary::default();
    for f in files {
        let outcome = match std::fs::read_to_string(&f.path) {
            Ok(text) => run_text(&text, defines, build),
            Err(e) => Err(Failure::new(
                0,
                FailureKind::Script,
                format!("cannot read: {e}"),
            )),
        };
        let verdict = expectations.verdict(&f.name, outcome.is_ok());
        summary.results.push(ScriptResult {
            name: f.name.clone(),
            outcome,
            verdict,
        });
    }
    let names: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
    summary.stale_expectations = expectations
        .names()
        .filter(|n| !names.contains(n))
        .map(str::to_string)
        .collect();
    summary
}
