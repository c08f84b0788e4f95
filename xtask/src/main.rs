//! Project tasks for mtcp-rs, run as `cargo xtask <task>`.
//!
//! - `test`: install the Debian packages the build needs (when missing), then run
//!   every test in the workspace. `.ci/run` runs exactly this.
//! - `bench`: run the benchmarks and print their figures.
//! - `deps`: only install the Debian packages.

mod demo;
mod deps;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "test" => test(&rest),
        "bench" => bench(&rest),
        "conformance" => conformance(&rest),
        "deps" => deps::ensure(),
        "demo" => demo::demo(&rest),
        _ => {
            eprintln!(
                "usage: cargo xtask <task>\n\n\
                 tasks:\n  \
                 test    install build dependencies if missing, then run every test\n  \
                 bench   run the benchmarks (in-process figures)\n  \
                 conformance [DIR...]  run packetdrill scripts against tcp-core\n  \
                 deps    install the Debian packages the build needs\n  \
                 demo    epserver on our stack over AF_XDP, fetched and loaded from a namespace"
            );
            if task.is_empty() || task == "help" || task == "--help" {
                Ok(())
            } else {
                bail!("unknown task `{task}`")
            }
        }
    }
}

/// The workspace root (the parent of this crate's directory).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Runs `cargo <args>` in the workspace root, failing when it fails.
fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs the packetdrill suite, then every workspace test. The suite goes first
/// so that a run's closing lines are cargo's own test results; its summary
/// (`conformance: N passed, M failed`, M counting the failures listed as
/// expected) stays in the log, and any outcome that differs from the
/// expectations file fails the task.
fn test(extra: &[String]) -> Result<()> {
    deps::ensure()?;
    conformance(&[])?;
    let mut args = vec!["test", "--workspace", "--release"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)
}

/// The FreeBSD suite, kept in `../shared` beside the checkout.
fn default_conformance_dir() -> PathBuf {
    root().join("../shared/conformance/freebsd-tcp-testsuite")
}

fn conformance(dirs: &[String]) -> Result<()> {
    let dirs: Vec<String> = if dirs.is_empty() {
        vec![default_conformance_dir().display().to_string()]
    } else {
        dirs.to_vec()
    };
    let mut args = vec!["run", "--release", "--quiet", "-p", "conformance", "--"];
    args.extend(dirs.iter().map(String::as_str));
    cargo(&args)
}

/// Runs every benchmark binary of `benches/src/bin` in release mode.
fn bench(extra: &[String]) -> Result<()> {
    let dir = root().join("benches/src/bin");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".rs").map(str::to_owned)
        })
        .collect();
    names.sort();
    for name in names {
        eprintln!("xtask: bench {name}");
        let mut args = vec![
            "run",
            "--release",
            "--quiet",
            "-p",
            "mtcp-benches",
            "--bin",
            &name,
            "--",
        ];
        args.extend(extra.iter().map(String::as_str));
        cargo(&args)?;
    }
    Ok(())
}
