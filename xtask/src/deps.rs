//! Installs the Debian packages the build and the tests need.
//!
//! xsk-rs builds libbpf and libxdp from source (libelf-dev, clang, m4,
//! libpcap-dev); the XDP steering program is compiled with clang; the
//! network-namespace tests use iproute2 and ethtool.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// Debian packages the workspace needs, checked one by one with `dpkg -s`.
pub const PACKAGES: &[&str] = &[
    "libelf-dev",
    "linux-libc-dev",
    "clang",
    "llvm",
    "m4",
    "libpcap-dev",
    "pkg-config",
    "zlib1g-dev",
    "ethtool",
    "iproute2",
    "curl",
    "python3",
    "iputils-ping",
];

fn installed(pkg: &str) -> bool {
    Command::new("dpkg")
        .args(["-s", pkg])
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains("Status: install ok installed")
        })
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs whatever of [`PACKAGES`] is missing (`apt-get update` first).
pub fn ensure() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_root() {
        bail!(
            "missing Debian packages: {}\n\
             run as root, or install them first: apt-get update && apt-get install -y {}",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing {}", missing.join(" "));
    let update = Command::new("apt-get")
        .args(["update", "-q"])
        .status()
        .context("running apt-get update")?;
    if !update.success() {
        bail!("apt-get update failed ({update})");
    }
    let install = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get install")?;
    if !install.success() {
        bail!("apt-get install {} failed ({install})", missing.join(" "));
    }
    Ok(())
}
