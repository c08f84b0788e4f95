//! Test and benchmark support: a pair of network namespaces joined by a veth
//! pair, plus small helpers (root check, CPU time, batched kernel UDP).
//!
//! ```text
//!   netns <name>a                          netns <name>b
//!   ┌─────────────────────────┐            ┌──────────────────────────┐
//!   │ <name>a  MAC ..:0a       │<== veth ==>│ <name>b  MAC ..:0b        │
//!   │ (ours: AF_XDP; no IP     │            │ 10.<x>.<y>.2/24 (kernel)  │
//!   │  unless kernel_ip)       │            │                          │
//!   └─────────────────────────┘            └──────────────────────────┘
//! ```
//!
//! Names are unique per process and call (`pio<pid>x<counter>`), so tests
//! running in parallel do not collide. Everything is deleted when the
//! [`VethPair`] is dropped, also while unwinding from a panic. Needs root and
//! the `ip` (iproute2) and `ethtool` commands.

use crate::sys;
use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// True when the process runs as root (the namespace tests need it).
pub fn is_root() -> bool {
    sys::geteuid() == 0
}

/// CPU time used so far by the whole process.
pub fn process_cpu_time() -> Duration {
    sys::process_cpu_time()
}

/// CPU time used so far by the calling thread.
pub fn thread_cpu_time() -> Duration {
    sys::thread_cpu_time()
}

/// Restricts the calling thread to CPU `cpu` (benchmarks pin generator and
/// server apart).
pub fn pin_thread_to_cpu(cpu: usize) -> io::Result<()> {
    sys::pin_thread(cpu)
}

/// The number of CPUs this process may run on.
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A named network namespace (`/var/run/netns/<name>`).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// The existing namespace `name` (not created, not deleted by this value).
    pub fn named(name: &str) -> Self {
        Netns {
            name: name.to_owned(),
        }
    }

    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the calling thread into this namespace (for good).
    pub fn enter(&self) -> io::Result<()> {
        let f = File::open(format!("/var/run/netns/{}", self.name))?;
        sys::setns_net(&f)
    }

    /// Runs `f` on a new thread inside this namespace.
    pub fn spawn<T, F>(&self, f: F) -> JoinHandle<io::Result<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = File::open(path)?;
            sys::setns_net(&file)?;
            Ok(f())
        })
    }

    /// Runs `ip -n <name> <args>`, failing on a non-zero exit.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// Runs a command inside the namespace (`ip netns exec`).
    pub fn exec(&self, program: &str, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }
}

fn run(program: &str, args: &[&str]) -> io::Result<String> {
    let out = Command::new(program).args(args).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(io::Error::other(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Options of a [`VethPair`].
#[derive(Clone, Debug)]
pub struct VethOptions {
    /// RX and TX queues of each veth end.
    pub queues: u32,
    /// Give our side the kernel address too (for kernel-stack baselines).
    pub kernel_ip_on_ours: bool,
    /// A permanent neighbour entry on the kernel side for our address, so the
    /// kernel sends without asking ARP first.
    pub static_arp: bool,
}

impl Default for VethOptions {
    fn default() -> Self {
        VethOptions {
            queues: 1,
            kernel_ip_on_ours: false,
            static_arp: true,
        }
    }
}

/// Two namespaces joined by a veth pair; removed on drop.
#[derive(Debug)]
pub struct VethPair {
    /// Our namespace (side `a`).
    pub ours: Netns,
    /// The kernel peer's namespace (side `b`).
    pub peer: Netns,
    /// Our interface (in `ours`).
    pub our_if: String,
    /// The peer's interface (in `peer`).
    pub peer_if: String,
    /// Our MAC address.
    pub our_mac: [u8; 6],
    /// The peer's MAC address.
    pub peer_mac: [u8; 6],
    /// Our IPv4 address (the address steered to us).
    pub our_ip: Ipv4Addr,
    /// The peer's IPv4 address (configured on its interface).
    pub peer_ip: Ipv4Addr,
}

/// Deletes the namespaces (and with them the veth ends) of pairs whose
/// process is gone: a test or benchmark killed by a signal never runs its
/// `Drop`. The name carries the creator's pid; `/proc/<pid>` tells whether
/// it still runs.
fn sweep_stale_pairs() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if stale_pair_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// The creator's pid in a pair namespace's name (`pio<pid>x<n>a` or `...b`).
fn stale_pair_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("pio")?;
    let (pid, tail) = rest.split_once('x')?;
    let n = tail.strip_suffix('a').or_else(|| tail.strip_suffix('b'))?;
    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Formats a MAC address the way `ip` wants it.
pub fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl VethPair {
    /// Creates the namespaces and the veth pair and configures both ends.
    pub fn new(options: &VethOptions) -> io::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // "pio" + pid (at most 7 digits) + "x" + 3 digits + "a" fits the
        // 15 bytes of an interface name.
        let base = format!("pio{pid}x{}", n % 1000);
        let (a, b) = (format!("{base}a"), format!("{base}b"));
        sweep_stale_pairs();
        // A stale pair with these names can only be left by a dead process
        // that had our pid: remove it.
        for ns in [&a, &b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        run("ip", &["netns", "add", &a])?;
        let pair = VethPair {
            ours: Netns { name: a.clone() },
            peer: Netns { name: b.clone() },
            our_if: a.clone(),
            peer_if: b.clone(),
            our_mac: [0x02, 0, 0, 0, 0, 0x0a],
            peer_mac: [0x02, 0, 0, 0, 0, 0x0b],
            // Distinct subnets per pair keep captures readable; the namespaces
            // separate them anyway.
            our_ip: Ipv4Addr::new(10, 200, (n % 250) as u8, 1),
            peer_ip: Ipv4Addr::new(10, 200, (n % 250) as u8, 2),
        };
        // From here on, Drop cleans up whatever was created.
        run("ip", &["netns", "add", &b])?;
        let q = options.queues.max(1).to_string();
        run(
            "ip",
            &[
                "link",
                "add",
                &a,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "netns",
                &a,
                "type",
                "veth",
                "peer",
                "name",
                &b,
                "numtxqueues",
                &q,
                "numrxqueues",
                &q,
                "netns",
                &b,
            ],
        )?;
        let (our_mac, peer_mac) = (mac_string(pair.our_mac), mac_string(pair.peer_mac));
        let (our_cidr, peer_cidr) = (
            format!("{}/24", pair.our_ip),
            format!("{}/24", pair.peer_ip),
        );
        pair.ours.ip(&["link", "set", &a, "address", &our_mac])?;
        pair.peer.ip(&["link", "set", &b, "address", &peer_mac])?;
        pair.ours.ip(&["link", "set", "lo", "up"])?;
        pair.peer.ip(&["link", "set", "lo", "up"])?;
        pair.peer.ip(&["addr", "add", &peer_cidr, "dev", &b])?;
        if options.kernel_ip_on_ours {
            pair.ours.ip(&["addr", "add", &our_cidr, "dev", &a])?;
            pair.ours.ip(&[
                "neigh",
                "replace",
                &pair.peer_ip.to_string(),
                "lladdr",
                &peer_mac,
                "dev",
                &a,
                "nud",
                "permanent",
            ])?;
        }
        if options.static_arp {
            pair.peer.ip(&[
                "neigh",
                "replace",
                &pair.our_ip.to_string(),
                "lladdr",
                &our_mac,
                "dev",
                &b,
                "nud",
                "permanent",
            ])?;
        }
        // The kernel otherwise leaves checksums to an offload veth never does.
        pair.peer.exec("ethtool", &["-K", &b, "tx", "off"])?;
        pair.ours.exec("ethtool", &["-K", &a, "tx", "off"])?;
        pair.ours.ip(&["link", "set", &a, "up"])?;
        pair.peer.ip(&["link", "set", &b, "up"])?;
        Ok(pair)
    }

    /// `ip -d link show` of our interface (shows an attached XDP program).
    pub fn our_link_details(&self) -> io::Result<String> {
        self.ours.ip(&["-d", "link", "show", "dev", &self.our_if])
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting the namespaces deletes the veth pair with them.
        for ns in [&self.ours.name, &self.peer.name] {
            if let Err(e) = run("ip", &["netns", "del", ns]) {
                eprintln!("testnet: cleaning up {ns}: {e}");
            }
        }
    }
}

/// A UDP socket driven in batches with `recvmmsg(2)`/`sendmmsg(2)`: the
/// kernel baseline of the benchmarks.
pub struct UdpBatch {
    socket: std::net::UdpSocket,
    mmsg: sys::Mmsg,
}

impl std::fmt::Debug for UdpBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpBatch")
            .field("socket", &self.socket)
            .finish()
    }
}

impl UdpBatch {
    /// Wraps `socket` with buffers for `batch` datagrams of up to `buf_size` bytes.
    pub fn new(socket: std::net::UdpSocket, batch: usize, buf_size: usize) -> Self {
        UdpBatch {
            socket,
            mmsg: sys::Mmsg::new(batch, buf_size),
        }
    }

    /// The socket.
    pub fn socket(&self) -> &std::net::UdpSocket {
        &self.socket
    }

    /// Receives a batch (blocking for the first datagram if the socket blocks,
    /// honouring its read timeout); zero on timeout.
    pub fn recv(&mut self) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        match self
            .mmsg
            .recv(self.socket.as_raw_fd(), libc::MSG_WAITFORONE)
        {
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    /// Datagram `i` of the last batch received.
    pub fn datagram(&self, i: usize) -> &[u8] {
        self.mmsg.buf(i)
    }

    /// Sends datagrams `0..n` of the last batch back to their sources.
    pub fn echo(&mut self, n: usize) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        self.mmsg.send(self.socket.as_raw_fd(), n, true)
    }

    /// Sets datagram `i` to `payload` (for [`send_connected`](Self::send_connected)).
    pub fn set_datagram(&mut self, i: usize, payload: &[u8]) {
        let buf = self.mmsg.buf_mut(i, payload.len());
        let n = buf.len();
        buf.copy_from_slice(&payload[..n]);
    }

    /// Sends datagrams `0..n` on the connected socket.
    pub fn send_connected(&mut self, n: usize) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        self.mmsg.send(self.socket.as_raw_fd(), n, false)
    }
}

#[cfg(test)]
mod tests {
    use super::stale_pair_pid;

    #[test]
    fn pair_names_carry_the_creator_pid() {
        for (name, pid) in [
            ("pio4194303x999a", Some(4_194_303)),
            ("pio12x0b", Some(12)),
            ("pio12x0", None),
            ("pio12x0c", None),
            ("piox0a", None),
            ("pio12xa", None),
            ("other", None),
            ("pio12x3ab", None),
        ] {
            assert_eq!(stale_pair_pid(name), pid, "{name}");
        }
    }
}
