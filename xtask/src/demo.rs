//! `cargo xtask demo`: the first thing to run.
//!
//! As root: builds the apps, makes two network namespaces joined by a veth
//! pair, starts epserver on our stack over AF_XDP in one, then from the
//! other fetches pages with curl and with a kernel-socket client (checking
//! every byte), runs a 10-second epwget load from our stack, prints a short
//! report and removes everything it made.
//!
//! ```text
//!   netns mtcpdemo-a                          netns mtcpdemo-b
//!   epserver (our stack, AF_XDP)  <== veth ==> curl, epwget --fetch --kernel (10.201.0.2)
//!   10.201.0.1                                 epwget (our stack, AF_XDP, 10.201.0.3)
//! ```
//!
//! Without root it runs the same apps on our stack at both ends in one
//! process over the runtime's in-memory backend, and says so.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NS_A: &str = "mtcpdemo-a";
const NS_B: &str = "mtcpdemo-b";
const SERVER_IP: &str = "10.201.0.1";
const KERNEL_IP: &str = "10.201.0.2";
const CLIENT_IP: &str = "10.201.0.3";
const MAC_A: &str = "02:00:00:00:d0:0a";
const MAC_B: &str = "02:00:00:00:d0:0b";

/// Runs the demo; `args` may hold `--secs N` (load duration, default 10).
pub fn demo(args: &[String]) -> Result<()> {
    let mut secs = 10u32;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--secs" {
            secs = it.next().and_then(|v| v.parse().ok()).unwrap_or(secs);
        }
    }
    eprintln!("demo: building the apps (release)");
    crate::cargo(&["build", "--release", "--quiet", "-p", "mtcp-apps"])?;
    let bin = target_dir().join("release");
    if !is_root() {
        return memory_demo(&bin, secs);
    }
    xdp_demo(&bin, secs)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::root().join("target"))
}

fn is_root() -> bool {
    // The effective uid, without libc: /proc/self/status "Uid: real effective ...".
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn memory_demo(bin: &Path, secs: u32) -> Result<()> {
    println!(
        "demo: NOT ROOT, so no namespaces and no AF_XDP: running epserver and epwget on our \
         stack at both ends in ONE process over the runtime's in-memory backend instead."
    );
    let out = Command::new(bin.join("epwget"))
        .args([
            "--memory",
            "-c",
            "64",
            "-d",
            &secs.to_string(),
            "--path",
            "/index.html",
        ])
        .output()
        .context("running epwget --memory")?;
    std::io::stderr().write_all(&out.stderr)?;
    if !out.status.success() {
        bail!("epwget --memory failed ({})", out.status);
    }
    println!("\n=== report (in-memory backend, our stack at both ends) ===");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    Ok(())
}

fn run(program: &str, args: &[&str]) -> Result<Vec<u8>> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

fn ip(args: &[&str]) -> Result<()> {
    run("ip", args).map(drop)
}

fn in_ns(ns: &str, program: &str, args: &[&str]) -> Result<Vec<u8>> {
    let mut all = vec!["netns", "exec", ns, program];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Everything the demo made, removed on drop (also on error).
struct Made {
    dir: PathBuf,
    server: Option<Child>,
}

impl Drop for Made {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        for ns in [NS_A, NS_B] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn config(path: &Path, ifname: &str, ip: &str, mac: &str, cpu: usize) -> Result<()> {
    let text = format!(
        "# written by cargo xtask demo\n[net]\nbackend = \"af_xdp\"\ninterface = \"{ifname}\"\n\
         address = \"{ip}\"\nnetmask = \"255.255.255.0\"\nmac = \"{mac}\"\n\n[stack]\n\
         cores = [{cpu}]\npin = true\nmode = \"threaded\"\nmax_concurrency = 65536\n\
         msl_ms = 500\nstats_interval_ms = 0\n"
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn xdp_demo(bin: &Path, secs: u32) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("mtcp-demo-{}", std::process::id()));
    let mut made = Made {
        dir: dir.clone(),
        server: None,
    };
    // Leftovers of an interrupted demo.
    for ns in [NS_A, NS_B] {
        let _ = Command::new("ip").args(["netns", "del", ns]).output();
    }
    eprintln!("demo: namespaces {NS_A} and {NS_B}, veth pair between them");
    ip(&["netns", "add", NS_A])?;
    ip(&["netns", "add", NS_B])?;
    ip(&[
        "link", "add", NS_A, "netns", NS_A, "type", "veth", "peer", "name", NS_B, "netns", NS_B,
    ])?;
    ip(&["-n", NS_A, "link", "set", NS_A, "address", MAC_A])?;
    ip(&["-n", NS_B, "link", "set", NS_B, "address", MAC_B])?;
    ip(&[
        "-n",
        NS_B,
        "addr",
        "add",
        &format!("{KERNEL_IP}/24"),
        "dev",
        NS_B,
    ])?;
    for (ns, dev) in [(NS_A, NS_A), (NS_B, NS_B)] {
        ip(&["-n", ns, "link", "set", "lo", "up"])?;
        // veth never computes checksums left to an offload.
        in_ns(ns, "ethtool", &["-K", dev, "tx", "off"])?;
        ip(&["-n", ns, "link", "set", dev, "up"])?;
    }

    std::fs::create_dir_all(dir.join("www"))?;
    let index = b"<!doctype html>\n<html><body><h1>Hello from mtcp-rs</h1>\n\
        <p>Served by epserver on a user-level TCP stack over AF_XDP.</p></body></html>\n"
        .to_vec();
    let big: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("www/index.html"), &index)?;
    std::fs::write(dir.join("www/big.bin"), &big)?;
    let (server_cfg, client_cfg) = (dir.join("server.toml"), dir.join("client.toml"));
    config(&server_cfg, NS_A, SERVER_IP, MAC_A, 0)?;
    config(&client_cfg, NS_B, CLIENT_IP, MAC_B, 1)?;

    eprintln!("demo: epserver on our stack (AF_XDP on {NS_A}, {SERVER_IP}:80)");
    let server_log = std::fs::File::create(dir.join("epserver.log"))?;
    let epserver = bin.join("epserver");
    let server = Command::new("ip")
        .args(["netns", "exec", NS_A])
        .arg(&epserver)
        .arg("--config")
        .arg(&server_cfg)
        .arg("--dir")
        .arg(dir.join("www"))
        .args(["--addr", &format!("{SERVER_IP}:80"), "--stdin-stop"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(server_log)
        .spawn()
        .context("starting epserver")?;
    made.server = Some(server);

    // curl, retried until the server is up.
    let url = format!("http://{SERVER_IP}/index.html");
    let start = Instant::now();
    let page = loop {
        match in_ns(NS_B, "curl", &["-s", "--fail", "--max-time", "5", &url]) {
            Ok(p) => break p,
            Err(e) if start.elapsed() < Duration::from_secs(15) => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                let log = std::fs::read_to_string(dir.join("epserver.log")).unwrap_or_default();
                bail!("curl {url}: {e:#}\nepserver log:\n{log}");
            }
        }
    };
    check("curl /index.html", &page, &index)?;
    let url = format!("http://{SERVER_IP}/big.bin");
    let got = in_ns(NS_B, "curl", &["-s", "--fail", "--max-time", "10", &url])?;
    check("curl /big.bin", &got, &big)?;
    let target = format!("{SERVER_IP}:80");
    let epwget = bin.join("epwget").display().to_string();
    let got = in_ns(
        NS_B,
        &epwget,
        &["--kernel", "--fetch", &target, "--path", "/big.bin"],
    )?;
    check("kernel socket (std::net) /big.bin", &got, &big)?;
    let missing = in_ns(
        NS_B,
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://{SERVER_IP}/nope"),
        ],
    )?;
    check("curl /nope status", &missing, b"404")?;

    eprintln!("demo: {secs}-second epwget load from our stack (AF_XDP on {NS_B}, {CLIENT_IP})");
    let load = Command::new("ip")
        .args(["netns", "exec", NS_B, &epwget, &target])
        .args(["--path", "/index.html", "-c", "64", "-d", &secs.to_string()])
        .arg("--config")
        .arg(&client_cfg)
        .output()
        .context("running epwget")?;

    // Stop the server: closing its stdin ends it and it prints its stats.
    let mut server = made.server.take().context("server handle")?;
    drop(server.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.try_wait()?.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if server.try_wait()?.is_none() {
        let _ = server.kill();
    }
    let out = server.wait_with_output()?;
    let server_stats = String::from_utf8_lossy(&out.stdout).into_owned();
    let server_log = std::fs::read_to_string(dir.join("epserver.log")).unwrap_or_default();

    println!("\n=== mtcp-rs demo report ===");
    println!("epserver: our stack, AF_XDP on veth {NS_A}, {SERVER_IP}:80, 1 core");
    println!("checks: curl /index.html, curl /big.bin (1 MB), kernel-socket GET /big.bin, 404: all bytes match");
    println!(
        "\nepwget: our stack, AF_XDP on veth {NS_B}, {CLIENT_IP}, 64 connections, {secs} s, \
         one GET per connection:"
    );
    print!("{}", String::from_utf8_lossy(&load.stdout));
    let load_err = String::from_utf8_lossy(&load.stderr);
    println!("epwget per-core (stack):");
    for l in load_err.lines().filter(|l| l.starts_with("core ")) {
        println!("  {l}");
    }
    println!("\nepserver per-core (application):");
    print!("{server_stats}");
    println!("epserver per-core (stack):");
    for l in server_log.lines().filter(|l| l.starts_with("core ")) {
        println!("  {l}");
    }
    if !load.status.success() {
        bail!("epwget failed ({}): {load_err}", load.status);
    }
    drop(made);
    println!(
        "\ndemo: removed the namespaces, the veth pair and {}",
        dir.display()
    );
    Ok(())
}

fn check(what: &str, got: &[u8], want: &[u8]) -> Result<()> {
    if got == want {
        eprintln!("demo: {what}: {} bytes, identical", got.len());
        Ok(())
    } else {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        bail!(
            "{what}: got {} bytes, expected {} (first difference at {:?})",
            got.len(),
            want.len(),
            first
        )
    }
}
