//! A packetdrill-compatible conformance runner for the tcp-core engine.
//!
//! packetdrill scripts drive a socket with system calls and inject and expect
//! TCP segments on a timeline. This crate runs them against [`tcp_core`] on a
//! virtual clock, with no TUN device and no waiting in wall time:
//!
//! ```text
//! script text --script::parse--> Script (events)
//!   Script --runner--> per event: inject a segment into the Endpoint, call the
//!                      socket shim (fd table over Endpoint handles), expect a
//!                      segment from poll_transmit, advance the virtual clock
//!   expected vs sent segment --check--> Ok or a mismatch naming the field,
//!                      after the remapping and the normalisation rules of
//!                      `normalise` (the only place stack-specific values are
//!                      relaxed, each with its reason)
//!   outcomes --expectations--> unexpected passes/failures, summary line
//! ```
//!
//! FreeBSD `sysctl -w` lines map onto the engine's configuration in
//! [`sysctl`]; every name is either mapped, a documented no-op, or reported
//! as unsupported (which fails the script with that reason).

pub mod check;
pub mod engine;
pub mod expectations;
pub mod normalise;
pub mod runner;
pub mod script;
pub mod stack;
pub mod suite;
pub mod sysctl;
#[cfg(test)]
mod tests;

use std::io;
use std::path::{Path, PathBuf};

/// A script file found under one of the directories given to the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its path relative to the directory it was found under, `/`-separated
    /// (the key used by the expectations file).
    pub name: String,
}

/// Every `*.pkt` file under `dirs` (recursively; a file given directly is
/// taken as is), sorted by name for a stable order.
pub fn collect_scripts(dirs: &[PathBuf]) -> io::Result<Vec<ScriptFile>> {
    let mut out = Vec::new();
    for dir in dirs {
        if dir.is_file() {
            let name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(ScriptFile {
                path: dir.clone(),
                name,
            });
            continue;
        }
        walk(dir, dir, &mut out)?;
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.path.cmp(&b.path)));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<ScriptFile>) -> io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "pkt") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            let name = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push(ScriptFile { path, name });
        }
    }
    Ok(())
}
