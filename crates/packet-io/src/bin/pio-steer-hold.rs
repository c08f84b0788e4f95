//! Test helper: enters network namespace `NS`, attaches the steering program
//! to `IFNAME` and opens its queues, prints `READY`, then sleeps until killed.
//! The kill test checks that the kernel detached the program (bpf_link).
//!
//! usage: pio-steer-hold NS IFNAME IPV4

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ns, ifname, ip] = args.as_slice() else {
        eprintln!("usage: pio-steer-hold NS IFNAME IPV4");
        std::process::exit(2);
    };
    let Ok(ip) = ip.parse() else {
        eprintln!("bad IPv4 address {ip}");
        std::process::exit(2);
    };
    let file = match std::fs::File::open(format!("/var/run/netns/{ns}")) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("netns {ns}: {e}");
            std::process::exit(1);
        }
    };
    drop(file);
    let netns = packet_io::testnet::Netns::named(ns);
    if let Err(e) = netns.enter() {
        eprintln!("entering {ns}: {e}");
        std::process::exit(1);
    }
    let config = packet_io::XdpConfig {
        frames: 256,
        fill_target: 128,
        ring_size: 128,
        batch: 32,
        ..Default::default()
    };
    let _kept =
        match packet_io::open_queues(ifname, None, &config, &packet_io::SteerConfig::tcp(ip)) {
            Ok(k) => k,
            Err(e) => {
                eprintln!("open: {e}");
                std::process::exit(1);
            }
        };
    println!("READY");
    let _ = std::io::stdout().flush();
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
