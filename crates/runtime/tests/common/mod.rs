//! Shared set-up of the AF_XDP end-to-end tests: a veth pair between two
//! namespaces made by the test (packet_io::testnet), our runtime on one end,
//! the Linux kernel on the other.
#![allow(dead_code)]

use packet_io::testnet::{mac_string, VethOptions, VethPair};
use runtime::{Context, Runtime, RuntimeConfig, ThreadMode};
use std::net::SocketAddrV4;
use std::time::{Duration, Instant};

/// Skips (true) when not root, saying why.
pub fn skip_unless_root(test: &str) -> bool {
    if packet_io::testnet::is_root() {
        return false;
    }
    eprintln!("SKIP {test}: needs root to create network namespaces and AF_XDP sockets");
    true
}

/// The veth pair and our runtime on it.
pub struct Net {
    pub pair: VethPair,
    pub rt: Option<Runtime>,
    pub ctxs: Vec<Context>,
}

impl Drop for Net {
    fn drop(&mut self) {
        // Stop the stack threads before the namespaces go away.
        self.ctxs.clear();
        if let Some(rt) = self.rt.take() {
            rt.shutdown();
        }
    }
}

/// The test configuration of our side of `pair`.
pub fn config(pair: &VethPair, cores: usize, mode: ThreadMode) -> RuntimeConfig {
    let text = format!(
        "[net]\nbackend = \"af_xdp\"\ninterface = \"{}\"\naddress = \"{}\"\nnetmask = \"255.255.255.0\"\nmac = \"{}\"\n\
         [stack]\ncores = {:?}\npin = false\nmode = \"{}\"\nmax_concurrency = 1024\nrcvbuf = 262144\nsndbuf = 262144\n\
         msl_ms = 1000\nrto_min_ms = 200\nrto_initial_ms = 1000\nseed = 42\n",
        pair.our_if,
        pair.our_ip,
        mac_string(pair.our_mac),
        (0..cores).collect::<Vec<_>>(),
        match mode {
            ThreadMode::Threaded => "threaded",
            ThreadMode::RunToCompletion => "run_to_completion",
        }
    );
    RuntimeConfig::from_toml(&text).expect("test configuration")
}

/// A veth pair with `cores` queues and our runtime on it, configured by
/// [`config`] then `tweak`.
pub fn start(cores: usize, mode: ThreadMode, tweak: impl FnOnce(&mut RuntimeConfig)) -> Net {
    let pair = VethPair::new(&VethOptions {
        queues: cores as u32,
        kernel_ip_on_ours: false,
        static_arp: false,
    })
    .expect("veth pair");
    let mut cfg = config(&pair, cores, mode);
    tweak(&mut cfg);
    let (rt, ctxs) = pair
        .ours
        .spawn(move || Runtime::start(cfg))
        .join()
        .expect("start thread")
        .expect("enter namespace")
        .expect("runtime start");
    Net {
        pair,
        rt: Some(rt),
        ctxs,
    }
}

impl Net {
    /// Our address on `port`.
    pub fn ours(&self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.pair.our_ip, port)
    }

    /// The kernel's address on `port`.
    pub fn peer(&self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.pair.peer_ip, port)
    }

    /// Takes context `i` out (to move it to an application thread).
    pub fn take_ctx(&mut self) -> Context {
        self.ctxs.remove(0)
    }
}

/// Connects a kernel socket, retrying while our listener is not up yet.
pub fn kernel_connect(addr: SocketAddrV4) -> std::net::TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::net::TcpStream::connect_timeout(&addr.into(), Duration::from_secs(2)) {
            Ok(s) => return s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("kernel connect to {addr}: {e}"),
        }
    }
}

/// Deterministic test data.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(seed as u32 % 32) as u8
                ^ seed
        })
        .collect()
}
