//! Project tasks for mtcp-rs, run as `cargo xtask <task>`.
//!
//! - `test`: install the Debian packages the build needs (when missing), then run
//!   every test in the workspace. `.ci/run` runs exactly this.
//! - `bench [--quick] [--append] [ARGS]`: run every benchmark binary (each
//!   gets ARGS), then print the table of figures and where the JSON and SVG
//!   files are (`target/bench/latest.*`). The side-by-side `stacks` bench
//!   runs Linux (`linux`, `linux-busy`) and our three modes
//!   (`mtcp-rs-threaded`, `mtcp-rs-rtc`, `mtcp-rs-rtc-busy`) in both
//!   forms; `--quick` shortens every run so that the whole task stays
//!   within two minutes (it says so when it did not).
//! - `deps`: only install the Debian packages.

mod demo;
mod deps;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

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
                 bench [--quick] [--append]  run every benchmark; table, JSON, SVG in target/bench\n  \
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

/// Where the bench binaries write their figures: `$MTCP_BENCH_DIR`, else
/// `target/bench` in the workspace (as `mtcp_benches::record::bench_dir`).
fn bench_dir() -> PathBuf {
    std::env::var_os("MTCP_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/bench"))
}

/// Whether this process runs with effective uid 0 (from /proc/self/status).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// Builds the binaries of `mtcp-benches` in release mode and returns their
/// names and executables, sorted by name (from cargo's JSON messages, so
/// that `CARGO_TARGET_DIR` and the build profile's layout need no guessing).
fn build_bench_bins() -> Result<Vec<(String, PathBuf)>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = [
        "build",
        "--release",
        "--quiet",
        "-p",
        "mtcp-benches",
        "--bins",
        "--message-format=json-render-diagnostics",
    ];
    let out = Command::new(&cargo)
        .args(args)
        .current_dir(root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    if !out.status.success() {
        bail!("building the benches failed ({})", out.status);
    }
    const KEY: &str = "\"executable\":\"";
    let mut bins: Vec<(String, PathBuf)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"kind\":[\"bin\"]"))
        .filter_map(|l| {
            let rest = &l[l.find(KEY)? + KEY.len()..];
            let exe = PathBuf::from(&rest[..rest.find('"')?]);
            let name = exe.file_name()?.to_str()?.to_owned();
            Some((name, exe))
        })
        .collect();
    bins.sort();
    bins.dedup();
    if bins.is_empty() {
        bail!("cargo built no bench binaries");
    }
    Ok(bins)
}

/// What `cargo xtask bench --quick` may take for its runs, seconds (issue 6).
const QUICK_BUDGET_S: f64 = 120.0;

/// Runs every benchmark binary of `benches/src/bin` in release mode, each
/// with the same arguments, then prints the Markdown table of the figures
/// (`latest.md`) and where `latest.json` and `latest.svg` are.
///
/// Each invocation starts a new `latest.json` (the previous one is kept as
/// `previous.json`) so that the table holds exactly this run's figures;
/// `--append` merges into the existing file instead. A binary that fails
/// does not stop the others; the task fails at the end.
fn bench(extra: &[String]) -> Result<()> {
    let append = extra.iter().any(|a| a == "--append");
    let quick = extra.iter().any(|a| a == "--quick");
    let pass: Vec<&str> = extra
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--append")
        .collect();
    // Build once up front and run the executables themselves: the times
    // below are the runs' own, and every binary comes from the same build
    // even when the sources change meanwhile.
    let bins = build_bench_bins()?;
    let out = bench_dir();
    let (json, md, svg) = (
        out.join("latest.json"),
        out.join("latest.md"),
        out.join("latest.svg"),
    );
    if !append {
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        if json.exists() {
            std::fs::rename(&json, out.join("previous.json"))
                .with_context(|| format!("moving {} aside", json.display()))?;
        }
        for f in [&md, &svg] {
            let _ = std::fs::remove_file(f);
        }
    }
    if !is_root() {
        eprintln!(
            "xtask: not root: the benches that need network namespaces and AF_XDP \
             (packet_io, runtime_e2e, stacks) will say SKIPPED; the in-process ones run"
        );
    }

    let started = Instant::now();
    let mut times: Vec<(String, f64)> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for (i, (name, exe)) in bins.iter().enumerate() {
        eprintln!("xtask: bench {name} ({}/{})", i + 1, bins.len());
        let t = Instant::now();
        let status = Command::new(exe).args(&pass).current_dir(root()).status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => {
                eprintln!("xtask: bench {name} FAILED ({s})");
                failed.push(name.clone());
            }
            Err(e) => {
                eprintln!("xtask: bench {name} FAILED to start: {e}");
                failed.push(name.clone());
            }
        }
        times.push((name.clone(), t.elapsed().as_secs_f64()));
    }
    let total = started.elapsed().as_secs_f64();

    println!(
        "\n## Benchmark figures (`cargo xtask bench{}`)\n",
        if pass.is_empty() {
            String::new()
        } else {
            format!(" {}", pass.join(" "))
        }
    );
    match std::fs::read_to_string(&md) {
        Ok(table) => println!("{table}"),
        Err(_) => println!("(no figures were recorded)\n"),
    }
    println!("figures: {}", json.display());
    println!("table:   {}", md.display());
    println!("chart:   {}", svg.display());
    let each: Vec<String> = times.iter().map(|(n, t)| format!("{n} {t:.1} s")).collect();
    println!(
        "time: {total:.1} s for the runs{} ({})",
        if quick { " (--quick)" } else { "" },
        each.join(", ")
    );
    if quick && total > QUICK_BUDGET_S {
        eprintln!(
            "xtask: WARNING: --quick took {total:.0} s, over its {QUICK_BUDGET_S:.0} s budget \
             (a loaded machine? see the load average warnings above)"
        );
    }
    if !failed.is_empty() {
        bail!("bench binaries failed: {}", failed.join(", "));
    }
    Ok(())
}
