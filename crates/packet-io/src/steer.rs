//! Flow steering: the XDP program of `bpf/steer.bpf.c`, loaded with aya and
//! attached through a `bpf_link`.
//!
//! The program redirects to the AF_XDP socket of the receiving queue only ARP
//! for the configured address and IPv4 TCP (optionally UDP) to it, optionally
//! only to a set of destination ports, optionally IPv4 ICMP to it (echo
//! requests and errors quoting our segments), and passes everything else to
//! the kernel. Because the attachment is a `bpf_link` owned by this process, the
//! kernel detaches the program when the process exits or dies; nothing is
//! pinned and nothing outlives the process.

use crate::sys;
use aya::maps::{Array, MapData, PerCpuArray, XskMap};
use aya::programs::{Xdp, XdpMode};
use aya::{Ebpf, Pod};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

/// The compiled program (built by `build.rs` with `clang -target bpf`).
static PROGRAM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/steer.bpf.o"));

const PROGRAM_NAME: &str = "mtcp_steer";
const STEER_ALL_PORTS: u32 = 1;
const STEER_UDP: u32 = 2;
const STEER_ENABLED: u32 = 4;
const STEER_ICMP: u32 = 8;
/// Size of the XSKMAP: the largest queue index the program can steer to, plus one.
pub const MAX_QUEUES: u32 = 64;

/// Where the XDP program runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AttachMode {
    /// In the driver (native XDP); fails where the driver has no XDP support.
    Native,
    /// In the generic network stack (`XDP_FLAGS_SKB_MODE`); works everywhere, slower.
    Generic,
    /// Native, falling back to generic when native attach fails.
    #[default]
    NativeOrGeneric,
}

/// Which frames the program steers to the AF_XDP sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SteerConfig {
    /// The stack's IPv4 address: ARP asking for it and IPv4 traffic to it are ours.
    pub addr: Ipv4Addr,
    /// Destination ports steered; `None` steers every port.
    pub ports: Option<Vec<u16>>,
    /// Steer UDP to `addr` as well as TCP (benchmarks and tests).
    pub udp: bool,
    /// Steer IPv4 ICMP to `addr` as well: echo requests (RFC 792) and the
    /// destination-unreachable, time-exceeded and parameter-problem errors
    /// that quote our segments (RFC 9293 section 3.9.4, RFC 5927). ICMP has
    /// no ports, so `ports` does not restrict it, and every fragment of an
    /// ICMP datagram is steered. With it off, the kernel answers pings to
    /// `addr` (when it owns the address too) and ICMP errors for our flows
    /// are lost to us.
    pub icmp: bool,
}

impl SteerConfig {
    /// TCP and ICMP to `addr`, every port, plus ARP for `addr`: everything a
    /// TCP stack that owns `addr` needs. ICMP is on because such a stack also
    /// answers echo requests and must see the ICMP errors for its
    /// connections; set `icmp` to `false` to leave ICMP to the kernel.
    pub fn tcp(addr: Ipv4Addr) -> Self {
        SteerConfig {
            addr,
            ports: None,
            udp: false,
            icmp: true,
        }
    }

    /// Sets whether IPv4 ICMP to `addr` is steered (see [`SteerConfig::icmp`]).
    #[must_use]
    pub fn with_icmp(mut self, icmp: bool) -> Self {
        self.icmp = icmp;
        self
    }
}

/// Errors of loading, attaching or configuring the steering program.
#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    /// The interface does not exist in the calling thread's namespace.
    #[error("interface {name}: {source}")]
    Interface {
        /// The interface name.
        name: String,
        /// The lookup error.
        source: std::io::Error,
    },
    /// The kernel refused to load the program or create its maps.
    #[error("loading the XDP steering program: {0}")]
    Load(String),
    /// Attaching failed in every mode tried.
    #[error("attaching the XDP steering program to {name}: {reason}")]
    Attach {
        /// The interface name.
        name: String,
        /// Why, per mode tried.
        reason: String,
    },
    /// Writing a map failed.
    #[error("configuring the XDP steering program: {0}")]
    Map(String),
    /// The queue index is past the XSKMAP.
    #[error("queue {0} is past the steering map ({MAX_QUEUES} queues)")]
    QueueOutOfRange(u32),
}

#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct SteerCfg {
    addr: u32,
    flags: u32,
}

// SAFETY: two u32 with no padding; every bit pattern is valid.
#[allow(unsafe_code)]
unsafe impl Pod for SteerCfg {}

/// Counters of the steering program, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SteerStats {
    /// ARP frames redirected to a socket.
    pub redirected_arp: u64,
    /// IPv4 frames redirected to a socket.
    pub redirected_ip: u64,
    /// Frames passed to the kernel because they are not ours.
    pub passed: u64,
    /// Frames of ours that went to the kernel because no socket was bound on
    /// the receiving queue.
    pub no_socket: u64,
}

struct Inner {
    ebpf: Ebpf,
    xsks: XskMap<MapData>,
}

/// The attached steering program of one interface. Cloning shares it; the
/// program stays attached while any clone (or queue opened with it) lives.
#[derive(Clone)]
pub struct Steering {
    inner: Arc<Mutex<Inner>>,
    ifname: String,
    mode: AttachMode,
}

impl std::fmt::Debug for Steering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Steering")
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Steering {
    /// Loads the program, writes `config` into its maps and attaches it to
    /// `ifname` (in the calling thread's network namespace) through a bpf_link.
    pub fn attach(
        ifname: &str,
        config: &SteerConfig,
        mode: AttachMode,
    ) -> Result<Self, SteerError> {
        let if_index = sys::if_nametoindex(ifname).map_err(|source| SteerError::Interface {
            name: ifname.to_owned(),
            source,
        })?;
        let mut ebpf = Ebpf::load(PROGRAM).map_err(|e| SteerError::Load(e.to_string()))?;
        write_config(&mut ebpf, config)?;
        let program: &mut Xdp = ebpf
            .program_mut(PROGRAM_NAME)
            .ok_or_else(|| SteerError::Load(format!("no program {PROGRAM_NAME} in the object")))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| SteerError::Load(e.to_string()))?;
        program
            .load()
            .map_err(|e| SteerError::Load(e.to_string()))?;
        let tries: &[(AttachMode, XdpMode)] = match mode {
            AttachMode::Native => &[(AttachMode::Native, XdpMode::Driver)],
            AttachMode::Generic => &[(AttachMode::Generic, XdpMode::Skb)],
            AttachMode::NativeOrGeneric => &[
                (AttachMode::Native, XdpMode::Driver),
                (AttachMode::Generic, XdpMode::Skb),
            ],
        };
        let mut reasons = Vec::new();
        let mut attached = None;
        for &(ours, theirs) in tries {
            match program.attach_to_if_index(if_index, theirs) {
                Ok(_link) => {
                    attached = Some(ours);
                    break;
                }
                Err(e) => reasons.push(format!("{ours:?}: {e}")),
            }
        }
        let Some(mode) = attached else {
            return Err(SteerError::Attach {
                name: ifname.to_owned(),
                reason: reasons.join("; "),
            });
        };
        let xsks = ebpf
            .take_map("xsks")
            .ok_or_else(|| SteerError::Load("no map xsks in the object".into()))?;
        let xsks = XskMap::try_from(xsks).map_err(|e| SteerError::Load(e.to_string()))?;
        tracing::debug!(ifname, ?mode, "XDP steering attached");
        Ok(Steering {
            inner: Arc::new(Mutex::new(Inner { ebpf, xsks })),
            ifname: ifname.to_owned(),
            mode,
        })
    }

    /// The interface the program is attached to.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The mode the program was attached in.
    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    /// Points queue `queue_id` of the map at the AF_XDP socket `fd`.
    pub(crate) fn insert(&self, queue_id: u32, fd: &impl AsRawFd) -> Result<(), SteerError> {
        if queue_id >= MAX_QUEUES {
            return Err(SteerError::QueueOutOfRange(queue_id));
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .xsks
            .set(queue_id, fd.as_raw_fd(), 0)
            .map_err(|e| SteerError::Map(e.to_string()))
    }

    /// The program's counters, summed over CPUs.
    pub fn stats(&self) -> Result<SteerStats, SteerError> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let map = inner
            .ebpf
            .map("stats")
            .ok_or_else(|| SteerError::Map("no map stats".into()))?;
        let stats: PerCpuArray<_, u64> =
            PerCpuArray::try_from(map).map_err(|e| SteerError::Map(e.to_string()))?;
        let sum = |i: u32| -> Result<u64, SteerError> {
            let v = stats
                .get(&i, 0)
                .map_err(|e| SteerError::Map(e.to_string()))?;
            Ok(v.iter().sum())
        };
        Ok(SteerStats {
            redirected_arp: sum(0)?,
            redirected_ip: sum(1)?,
            passed: sum(2)?,
            no_socket: sum(3)?,
        })
    }
}

/// The port bitmap of the program: bit `p & 63` of word `p >> 6` is set for
/// every port `p` steered.
fn port_words(ports: &[u16]) -> Box<[u64; 1024]> {
    let mut words = Box::new([0u64; 1024]);
    for &p in ports {
        words[usize::from(p >> 6)] |= 1 << (p & 63);
    }
    words
}

fn write_config(ebpf: &mut Ebpf, config: &SteerConfig) -> Result<(), SteerError> {
    let map_err = |e: aya::maps::MapError| SteerError::Map(e.to_string());
    let mut flags = STEER_ENABLED;
    if config.udp {
        flags |= STEER_UDP;
    }
    if config.icmp {
        flags |= STEER_ICMP;
    }
    match &config.ports {
        None => flags |= STEER_ALL_PORTS,
        Some(ports) => {
            let words = port_words(ports);
            let map = ebpf
                .map_mut("ports")
                .ok_or_else(|| SteerError::Load("no map ports".into()))?;
            let mut array: Array<_, u64> = Array::try_from(map).map_err(map_err)?;
            for (i, w) in words.iter().enumerate() {
                if *w != 0 {
                    array.set(i as u32, *w, 0).map_err(map_err)?;
                }
            }
        }
    }
    let map = ebpf
        .map_mut("cfg")
        .ok_or_else(|| SteerError::Load("no map cfg".into()))?;
    let mut cfg: Array<_, SteerCfg> = Array::try_from(map).map_err(map_err)?;
    let value = SteerCfg {
        addr: u32::from_ne_bytes(config.addr.octets()),
        flags,
    };
    cfg.set(0, value, 0).map_err(map_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::port_words;

    #[test]
    fn port_bitmap_matches_the_program_lookup() {
        let w = port_words(&[0, 1, 63, 64, 80, 443, 65535]);
        let steered = |p: u16| (w[usize::from(p >> 6)] >> (p & 63)) & 1 == 1;
        for p in [0, 1, 63, 64, 80, 443, 65535] {
            assert!(steered(p), "port {p}");
        }
        for p in [2, 62, 65, 79, 81, 442, 444, 65534] {
            assert!(!steered(p), "port {p}");
        }
        assert_eq!(w.iter().map(|x| x.count_ones()).sum::<u32>(), 7);
    }
}
