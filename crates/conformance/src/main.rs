//! `conformance [OPTIONS] [DIR|FILE...]`: runs packetdrill scripts against
//! tcp-core on a virtual clock and compares each outcome with the
//! expectations file. Exits non-zero when any outcome differs.
//!
//! Options:
//! - `--expectations PATH`: the expectations file (default: this crate's
//!   `expectations.txt`);
//! - `--define NAME`: a preprocessor name for `#ifdef` (default: `STANDARD`);
//! - `--verbose`: also print every expected failure with its details;
//! - `--update-expectations`: rewrite the expectations file to match this
//!   run (old reasons kept, new failures listed with their failure message,
//!   passing scripts removed), then exit successfully;
//! - `--list-rules`, `--list-sysctls`: print the normalisation rules or the
//!   sysctl mapping and exit.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;

use conformance::engine::EngineStack;
use conformance::expectations::{self, Expectations};
use conformance::{collect_scripts, normalise, suite, sysctl};

struct Args {
    dirs: Vec<PathBuf>,
    expectations: PathBuf,
    defines: HashSet<String>,
    verbose: bool,
    update: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        dirs: Vec::new(),
        expectations: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("expectations.txt"),
        defines: HashSet::new(),
        verbose: false,
        update: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--expectations" => {
                args.expectations = it.next().ok_or("--expectations needs a path")?.into()
            }
            "--define" => {
                args.defines
                    .insert(it.next().ok_or("--define needs a name")?);
            }
            "--verbose" | "-v" => args.verbose = true,
            "--update-expectations" => args.update = true,
            "--list-rules" => {
                for r in normalise::RULES {
                    println!(
                        "{:?}\n  compared: {}\n  reason:   {}",
                        r.rule, r.comparison, r.reason
                    );
                }
                return Ok(None);
            }
            "--list-sysctls" => {
                for s in sysctl::SYSCTLS {
                    println!("{}\n  {}", s.name, s.mapping);
                }
                println!("\nScript profile (no sysctl; tcp-core options the runner sets):");
                for p in sysctl::FREEBSD_PROFILE {
                    println!("{}\n  {}", p.field, p.reason);
                }
                return Ok(None);
            }
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            dir => args.dirs.push(dir.into()),
        }
    }
    if args.dirs.is_empty() {
        return Err(
            "usage: conformance [--expectations PATH] [--define NAME] [--verbose] DIR|FILE..."
                .into(),
        );
    }
    if args.defines.is_empty() {
        args.defines.insert("STANDARD".into());
    }
    Ok(Some(args))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = match std::fs::read_to_string(&args.expectations) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("conformance: {}: {e}", args.expectations.display());
            return ExitCode::FAILURE;
        }
    };
    let expectations = match Expectations::parse(&text) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("conformance: {}: {e}", args.expectations.display());
            return ExitCode::FAILURE;
        }
    };
    let files = match collect_scripts(&args.dirs) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("conformance: no .pkt scripts found");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("conformance: cannot list scripts: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Engine panics are caught and reported per script; keep the default
    // hook from printing each one.
    std::panic::set_hook(Box::new(|_| {}));
    let summary = suite::run_all(
        &files,
        &expectations,
        &args.defines,
        &mut EngineStack::build,
    );
    print!("{}", summary.report(args.verbose));
    if args.update {
        let outcomes: Vec<(String, bool)> = summary
            .results
            .iter()
            .map(|r| (r.name.clone(), r.outcome.is_ok()))
            .collect();
        let fresh = |name: &str| {
            summary
                .results
                .iter()
                .find(|r| r.name == name)
                .and_then(|r| r.outcome.as_ref().err())
                .map_or_else(String::new, |f| {
                    format!("line {}: {}: {}", f.line, f.kind, f.message)
                })
        };
        let new = expectations::rewrite(&text, &expectations, &outcomes, &fresh);
        if let Err(e) = std::fs::write(&args.expectations, new) {
            eprintln!("conformance: writing {}: {e}", args.expectations.display());
            return ExitCode::FAILURE;
        }
        println!("conformance: {} rewritten", args.expectations.display());
        return ExitCode::SUCCESS;
    }
    if summary.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
