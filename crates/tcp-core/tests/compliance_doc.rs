//! Keeps `docs/compliance.md` honest, and checks the RFC 9293 defaults of
//! [`Config`] that the document cites.
//!
//! * Every requirement line of `../shared/rfc9293-requirements.tsv` (path
//!   from the repository root) has a row with the same ID and requirement
//!   text, and a status among done, partial, not applicable, not yet.
//! * Every test the document names exists (`fn <name>` somewhere in the
//!   tree), every packetdrill script it names exists (when the suite is
//!   present), and every row marked done names at least one test or a
//!   passing script.
//! * The summary line's counts match the table.
//!
//! Without the shared TSV (a checkout without `../shared`), the document
//! checks print why and pass.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use core::time::Duration;

use tcp_core::{Config, KeepAlive};

const STATUSES: [&str; 4] = ["done", "partial", "not applicable", "not yet"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// One table row of the document.
#[derive(Debug)]
struct Row {
    id: String,
    requirement: String,
    status: String,
    tests: Vec<String>,
    conformance: String,
}

/// The backticked items of a cell.
fn backticked(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn parse_doc(text: &str) -> Vec<Row> {
    text.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Area") && !l.starts_with("|---"))
        .filter_map(|l| {
            let cells: Vec<&str> = l
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            if cells.len() < 8 || cells[1].is_empty() {
                return None;
            }
            Some(Row {
                id: cells[1].to_owned(),
                requirement: cells[3].to_owned(),
                status: cells[4].to_owned(),
                tests: backticked(cells[5]),
                conformance: cells[6].to_owned(),
            })
        })
        .collect()
}

/// Every `fn name` in the Rust sources of the tree (target dirs excluded).
fn function_names(root: &Path) -> std::collections::HashSet<String> {
    let mut names = std::collections::HashSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            let name = name.to_string_lossy();
            if p.is_dir() {
                if name != "target" && !name.starts_with('.') {
                    stack.push(p);
                }
            } else if name.ends_with(".rs") {
                if let Ok(src) = fs::read_to_string(&p) {
                    for part in src.split("fn ").skip(1) {
                        let ident: String = part
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if !ident.is_empty() {
                            names.insert(ident);
                        }
                    }
                }
            }
        }
    }
    names
}

#[test]
fn compliance_doc_covers_every_requirement_with_real_tests() {
    let root = repo_root();
    let tsv_path = root.join("../shared/rfc9293-requirements.tsv");
    let Ok(tsv) = fs::read_to_string(&tsv_path) else {
        eprintln!(
            "compliance_doc: {} not found; document checks skipped",
            tsv_path.display()
        );
        return;
    };
    let doc = fs::read_to_string(root.join("docs/compliance.md")).expect("docs/compliance.md");
    let rows = parse_doc(&doc);
    assert!(
        !rows.is_empty(),
        "no table rows found in docs/compliance.md"
    );

    // Every TSV requirement has its row.
    let mut missing = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 4 || cols[1].trim().is_empty() {
            continue;
        }
        let (id, req) = (cols[1].trim(), cols[3].trim());
        if !rows.iter().any(|r| r.id == id && r.requirement == req) {
            missing.push(format!("{id}: {req}"));
        }
    }
    assert!(
        missing.is_empty(),
        "requirements without a row: {missing:#?}"
    );

    // Statuses, evidence, and that everything named exists.
    let names = function_names(&root);
    let suite = root.join("../shared/conformance/freebsd-tcp-testsuite");
    let mut problems = Vec::new();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &rows {
        let Some(status) = STATUSES.iter().find(|s| **s == r.status) else {
            problems.push(format!("{}: unknown status {:?}", r.id, r.status));
            continue;
        };
        *counts.entry(status).or_default() += 1;
        let mut scripts: Vec<String> = r
            .tests
            .iter()
            .filter(|t| t.ends_with(".pkt"))
            .cloned()
            .collect();
        scripts.extend(backticked(&r.conformance));
        for t in r.tests.iter().filter(|t| !t.ends_with(".pkt")) {
            let name = t.rsplit("::").next().unwrap_or(t);
            if !names.contains(name) {
                problems.push(format!("{}: test `{name}` not found in the tree", r.id));
            }
        }
        if suite.is_dir() {
            for s in &scripts {
                if !suite.join(s).is_file() {
                    problems.push(format!("{}: script {s} not found", r.id));
                }
            }
        }
        let passing_script = r
            .conformance
            .split_whitespace()
            .next()
            .and_then(|c| c.split('/').next())
            .and_then(|n| n.parse::<u32>().ok())
            .is_some_and(|n| n > 0);
        if *status == "done" && r.tests.is_empty() && !passing_script {
            problems.push(format!("{}: marked done without a test", r.id));
        }
    }
    assert!(problems.is_empty(), "docs/compliance.md: {problems:#?}");

    // The summary line agrees with the table.
    let summary = format!(
        "Summary: {} rows done, {} partial, {} not yet, {} not applicable",
        counts.get("done").copied().unwrap_or(0),
        counts.get("partial").copied().unwrap_or(0),
        counts.get("not yet").copied().unwrap_or(0),
        counts.get("not applicable").copied().unwrap_or(0),
    );
    assert!(
        doc.contains(&summary),
        "the summary of docs/compliance.md should read {summary:?}"
    );
}

/// Sum of `n + 1` timeouts starting at `first`, doubling, capped at `max`.
fn backoff_total(first: Duration, max: Duration, n: u32) -> Duration {
    (0..=n)
        .map(|i| first.saturating_mul(1u32 << i.min(30)).min(max))
        .sum()
}

/// The defaults the compliance document relies on (RFC 9293 section 3.8.3,
/// 3.8.4, 3.8.6.3; RFC 1122 section 4.2.3.5).
#[test]
fn config_defaults_follow_rfc9293() {
    let c = Config::default();
    // SHLD-10: R1 of at least 3 retransmissions.
    assert_eq!(c.r1, 3);
    // SHLD-11: R2 of at least 100 seconds.
    assert!(backoff_total(c.rto_min, c.rto_max, c.r2) >= Duration::from_secs(100));
    // MUST-23: SYN retransmissions for at least 3 minutes.
    let syn = backoff_total(c.rto_initial, c.rto_max, c.syn_retries);
    assert!(
        syn >= Duration::from_secs(180),
        "SYN retries last only {syn:?}"
    );
    // MUST-40: delayed ACK below 0.5 s.
    assert!(c.delayed_ack < Duration::from_millis(500));
    // MUST-25: keep-alive off by default; MUST-28: at least two hours idle;
    // MUST-29: more than one unanswered probe before giving up.
    assert!(c.keepalive.is_none());
    let k = KeepAlive::default();
    assert!(k.idle >= Duration::from_secs(2 * 3600));
    assert!(k.count > 1);
}
