//! The runtime configuration: a TOML file read once at start-up, like mTCP's
//! `mtcp.conf` given to `mtcp_init`.
//!
//! Every field has a default except the interface, the address and (for
//! `af_xdp`) the MAC address; `examples/mtcp.toml` documents each one.
//! [`RuntimeConfig::from_toml`] parses and validates, so a running stack
//! never meets an impossible setting.

use serde::Deserialize;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

/// Which packet I/O backend carries the frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// AF_XDP sockets on the interface's queues (one per core).
    #[default]
    AfXdp,
    /// In-memory queue pairs inside the process (tests, benchmarks of the
    /// stack alone). The peer ends are handed to the caller.
    Memory,
}

/// How the stack runs on each core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreadMode {
    /// mTCP's model: one stack thread per core, paired with the application
    /// thread on the same core; calls and events cross lock-free queues.
    #[default]
    Threaded,
    /// The application thread drives the stack itself between its calls (one
    /// thread per core, no queue crossing; lowest latency).
    RunToCompletion,
}

/// Where the XDP steering program runs (`af_xdp` backend).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum XdpAttach {
    /// Native, falling back to generic.
    #[default]
    NativeOrGeneric,
    /// Native (driver) XDP only.
    Native,
    /// Generic (SKB) XDP only.
    Generic,
}

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Interface and addressing.
    pub net: NetConfig,
    /// Per-core stack sizing and timeouts.
    #[serde(default)]
    pub stack: StackConfig,
}

/// The `[net]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetConfig {
    /// Packet I/O backend.
    #[serde(default)]
    pub backend: Backend,
    /// The interface whose queues the stack drives (`af_xdp`).
    #[serde(default)]
    pub interface: String,
    /// Our IPv4 address.
    pub address: Ipv4Addr,
    /// The netmask of the on-link subnet.
    #[serde(default = "default_netmask")]
    pub netmask: Ipv4Addr,
    /// The default gateway; destinations off the subnet go through it.
    #[serde(default)]
    pub gateway: Option<Ipv4Addr>,
    /// Our MAC address, `aa:bb:cc:dd:ee:ff` (the interface's).
    #[serde(default)]
    pub mac: Option<String>,
    /// Device queues to drive, one per core in order; default `0..cores`.
    #[serde(default)]
    pub queues: Option<Vec<u32>>,
    /// Where the XDP program runs.
    #[serde(default)]
    pub xdp_attach: XdpAttach,
    /// Buffers per AF_XDP queue (a power of two).
    #[serde(default = "default_xdp_frames")]
    pub xdp_frames: u32,
    /// Largest burst received or sent at once.
    #[serde(default = "default_batch")]
    pub batch: usize,
}

/// The `[stack]` table.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// CPUs to run on, one context per entry; default `[0]`.
    #[serde(default = "default_cores")]
    pub cores: Vec<usize>,
    /// Pin threads to their CPU.
    #[serde(default = "default_true")]
    pub pin: bool,
    /// Threaded (mTCP) or run-to-completion.
    #[serde(default)]
    pub mode: ThreadMode,
    /// Most connections per core (mTCP's `max_concurrency`); also the size
    /// of the descriptor table.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Receive buffer per connection, bytes.
    #[serde(default = "default_buf")]
    pub rcvbuf: usize,
    /// Send buffer per connection, bytes.
    #[serde(default = "default_buf")]
    pub sndbuf: usize,
    /// Connections per core whose state (slot, flow table entry, timer,
    /// queues) is allocated at start-up, so that opening up to this many
    /// grows no table on the packet path; default `max_concurrency`, at
    /// most `max_concurrency`. Reserved memory is touched only when used.
    #[serde(default)]
    pub prealloc: Option<usize>,
    /// Bytes of send plus receive buffer the connections of one core may
    /// hold at once; each connection reserves its `sndbuf + rcvbuf` when
    /// it is created and gives it back when its buffers are released
    /// (TIME-WAIT, close). A connection that does not fit is refused like
    /// one beyond `max_concurrency` (`connect`: `ENOBUFS`; a SYN: dropped,
    /// the peer retries). Default `max_concurrency * (rcvbuf + sndbuf)`.
    #[serde(default)]
    pub buffer_memory: Option<usize>,
    /// Bytes of released buffer storage each core keeps per kind (send,
    /// receive) for reuse by new connections; the rest is freed.
    #[serde(default = "default_buffer_cache")]
    pub buffer_cache: usize,
    /// Maximum segment lifetime in milliseconds (TIME-WAIT lasts two).
    #[serde(default = "default_msl_ms")]
    pub msl_ms: u64,
    /// Lower bound of the retransmission timeout, milliseconds.
    #[serde(default = "default_rto_min_ms")]
    pub rto_min_ms: u64,
    /// Initial retransmission timeout, milliseconds.
    #[serde(default = "default_rto_initial_ms")]
    pub rto_initial_ms: u64,
    /// Delayed-ACK timeout, milliseconds (0: ACK at once).
    #[serde(default = "default_delayed_ack_ms")]
    pub delayed_ack_ms: u64,
    /// SYN retransmissions before a connect fails.
    #[serde(default = "default_syn_retries")]
    pub syn_retries: u32,
    /// Give up on unacknowledged data after this many milliseconds (0: only
    /// the retransmission count limits it).
    #[serde(default)]
    pub user_timeout_ms: u64,
    /// Disable Nagle on every new connection.
    #[serde(default)]
    pub nodelay: bool,
    /// How long an ARP entry stays valid, milliseconds.
    #[serde(default = "default_arp_timeout_ms")]
    pub arp_timeout_ms: u64,
    /// Packets held per core while their next hop is being resolved
    /// (more are dropped, and TCP sends them again after its retransmission
    /// timeout). The default, 1024, holds the SYNs of a client that opens a
    /// thousand connections at once to a peer not yet resolved; 256 (about
    /// what Linux's `unres_qlen_bytes` holds) dropped 744 of them and cost
    /// each a 1 s SYN retransmission.
    #[serde(default = "default_arp_pending")]
    pub arp_pending: usize,
    /// Statistics line per core every this many milliseconds (0: never).
    #[serde(default)]
    pub stats_interval_ms: u64,
    /// Microseconds a thread waiting on the stack polls before it sleeps
    /// (the run-to-completion application, the threaded application running
    /// passes, an unpinned threaded stack thread).
    #[serde(default = "default_spin_us")]
    pub spin_us: u64,
    /// Frames each per-pair forwarding queue holds.
    #[serde(default = "default_forward_queue")]
    pub forward_queue: usize,
    /// Seed of the ISN secret and per-core generators (0: from the clock).
    #[serde(default)]
    pub seed: u64,
}

fn default_netmask() -> Ipv4Addr {
    Ipv4Addr::new(255, 255, 255, 0)
}
fn default_xdp_frames() -> u32 {
    4096
}
fn default_batch() -> usize {
    64
}
fn default_cores() -> Vec<usize> {
    vec![0]
}
fn default_true() -> bool {
    true
}
fn default_max_concurrency() -> usize {
    10_000
}
fn default_buf() -> usize {
    64 * 1024
}
fn default_buffer_cache() -> usize {
    8 << 20
}
fn default_msl_ms() -> u64 {
    30_000
}
fn default_rto_min_ms() -> u64 {
    200
}
fn default_rto_initial_ms() -> u64 {
    1_000
}
fn default_delayed_ack_ms() -> u64 {
    40
}
fn default_syn_retries() -> u32 {
    6
}
fn default_arp_timeout_ms() -> u64 {
    60_000
}
fn default_arp_pending() -> usize {
    1024
}
fn default_spin_us() -> u64 {
    50
}
fn default_forward_queue() -> usize {
    1024
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            cores: default_cores(),
            pin: true,
            mode: ThreadMode::default(),
            max_concurrency: default_max_concurrency(),
            rcvbuf: default_buf(),
            sndbuf: default_buf(),
            prealloc: None,
            buffer_memory: None,
            buffer_cache: default_buffer_cache(),
            msl_ms: default_msl_ms(),
            rto_min_ms: default_rto_min_ms(),
            rto_initial_ms: default_rto_initial_ms(),
            delayed_ack_ms: default_delayed_ack_ms(),
            syn_retries: default_syn_retries(),
            user_timeout_ms: 0,
            nodelay: false,
            arp_timeout_ms: default_arp_timeout_ms(),
            arp_pending: default_arp_pending(),
            stats_interval_ms: 0,
            spin_us: default_spin_us(),
            forward_queue: default_forward_queue(),
            seed: 0,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown or mistyped fields.
    #[error("parsing the configuration: {0}")]
    Parse(#[from] toml::de::Error),
    /// A value is out of range or inconsistent with another.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The most cores one runtime drives (the width of the wait sets).
pub const MAX_CORES: usize = 32;

/// The port range `connect` draws from, split into one slice per core.
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

impl RuntimeConfig {
    /// Parses and validates a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let cfg: RuntimeConfig = toml::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// A configuration for the memory backend with `cores` contexts
    /// (tests and benchmarks).
    pub fn memory(address: Ipv4Addr, cores: usize) -> Self {
        RuntimeConfig {
            net: NetConfig {
                backend: Backend::Memory,
                interface: String::new(),
                address,
                netmask: default_netmask(),
                gateway: None,
                mac: Some("02:00:00:00:00:01".into()),
                queues: None,
                xdp_attach: XdpAttach::default(),
                xdp_frames: default_xdp_frames(),
                batch: default_batch(),
            },
            stack: StackConfig {
                cores: (0..cores).collect(),
                pin: false,
                ..StackConfig::default()
            },
        }
    }

    /// Checks every value; the error names the first bad one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |s: String| Err(ConfigError::Invalid(s));
        let n = &self.net;
        let s = &self.stack;
        if n.backend == Backend::AfXdp && n.interface.is_empty() {
            return bad("net.interface is required with the af_xdp backend".into());
        }
        // Absent: the interface's own (Runtime::start reads it) or, for the
        // memory backend, 02:00:00:00:00:01.
        if let Some(m) = &n.mac {
            if parse_mac(m).is_none() {
                return bad(format!("net.mac {m:?} is not aa:bb:cc:dd:ee:ff"));
            }
        }
        if n.address.is_unspecified() || n.address.is_broadcast() || n.address.is_multicast() {
            return bad(format!(
                "net.address {} is not a unicast address",
                n.address
            ));
        }
        let mask = u32::from(n.netmask);
        if mask.leading_ones() + mask.trailing_zeros() != 32 {
            return bad(format!("net.netmask {} is not contiguous", n.netmask));
        }
        if let Some(gw) = n.gateway {
            if (u32::from(gw) ^ u32::from(n.address)) & mask != 0 {
                return bad(format!("net.gateway {gw} is not on the local subnet"));
            }
        }
        if n.batch == 0 || n.batch > 1024 {
            return bad("net.batch must be in 1..=1024".into());
        }
        if !n.xdp_frames.is_power_of_two() || n.xdp_frames < 256 {
            return bad("net.xdp_frames must be a power of two >= 256".into());
        }
        if s.cores.is_empty() || s.cores.len() > MAX_CORES {
            return bad(format!("stack.cores must list 1..={MAX_CORES} CPUs"));
        }
        if let Some(q) = &n.queues {
            if q.len() != s.cores.len() {
                return bad("net.queues must have one entry per core".into());
            }
        }
        if s.max_concurrency == 0 || s.max_concurrency > 1 << 20 {
            return bad("stack.max_concurrency must be in 1..=1048576".into());
        }
        if !(1024..=64 << 20).contains(&s.rcvbuf) || !(1024..=64 << 20).contains(&s.sndbuf) {
            return bad("stack.rcvbuf and stack.sndbuf must be in 1 KiB..=64 MiB".into());
        }
        if s.prealloc.is_some_and(|p| p > s.max_concurrency) {
            return bad("stack.prealloc must not exceed stack.max_concurrency".into());
        }
        if s.buffer_memory.is_some_and(|m| m < s.rcvbuf + s.sndbuf) {
            return bad("stack.buffer_memory must hold one connection's rcvbuf + sndbuf".into());
        }
        if s.rto_min_ms == 0 || s.rto_initial_ms < s.rto_min_ms {
            return bad("stack.rto_min_ms must be > 0 and <= rto_initial_ms".into());
        }
        if s.delayed_ack_ms >= 500 {
            return bad("stack.delayed_ack_ms must be below 500 (RFC 1122 4.2.3.2)".into());
        }
        if s.arp_pending == 0 || s.forward_queue == 0 {
            return bad("stack.arp_pending and stack.forward_queue must be positive".into());
        }
        let span = usize::from(EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start()) + 1;
        if span / s.cores.len() < 64 {
            return bad("too many cores for the ephemeral port range".into());
        }
        Ok(())
    }

    /// Our MAC address (validated).
    pub fn mac(&self) -> [u8; 6] {
        self.net
            .mac
            .as_deref()
            .and_then(parse_mac)
            .unwrap_or([2, 0, 0, 0, 0, 1])
    }

    /// Connections per core whose state is allocated at start-up
    /// (`stack.prealloc`, default `stack.max_concurrency`).
    pub fn prealloc(&self) -> usize {
        let s = &self.stack;
        s.prealloc.unwrap_or(s.max_concurrency)
    }

    /// Bytes of send plus receive buffer one core's connections may
    /// reserve (`stack.buffer_memory`, default enough for
    /// `max_concurrency` connections with full buffers).
    pub fn buffer_memory(&self) -> usize {
        let s = &self.stack;
        s.buffer_memory.unwrap_or_else(|| {
            s.max_concurrency
                .saturating_mul(s.rcvbuf.saturating_add(s.sndbuf))
        })
    }

    /// Number of per-core contexts.
    pub fn core_count(&self) -> usize {
        self.stack.cores.len()
    }

    /// The ephemeral ports of core `core` (a disjoint slice per core, so the
    /// port of a flow we open names the core that owns it).
    pub fn ephemeral_ports(&self, core: usize) -> std::ops::RangeInclusive<u16> {
        ephemeral_slice(core, self.core_count())
    }

    /// The tcp-core configuration of core `core`.
    pub fn tcp_config(&self, core: usize) -> tcp_core::Config {
        let s = &self.stack;
        let ms = Duration::from_millis;
        let mut isn_secret = [0u8; 16];
        isn_secret[..8].copy_from_slice(&s.seed.to_le_bytes());
        isn_secret[8..].copy_from_slice(&(!s.seed).to_le_bytes());
        tcp_core::Config {
            recv_buf: s.rcvbuf,
            send_buf: s.sndbuf,
            max_connections: s.max_concurrency,
            max_syn_backlog: s.max_concurrency.min(1024),
            prealloc_connections: self.prealloc(),
            buffer_budget: self.buffer_memory(),
            buffer_cache_bytes: s.buffer_cache,
            msl: ms(s.msl_ms),
            delayed_ack: ms(s.delayed_ack_ms),
            rto_initial: ms(s.rto_initial_ms),
            rto_min: ms(s.rto_min_ms),
            syn_retries: s.syn_retries,
            user_timeout: (s.user_timeout_ms > 0).then(|| ms(s.user_timeout_ms)),
            nodelay: s.nodelay,
            ooo_max_bytes: s.rcvbuf,
            isn_secret,
            ephemeral_ports: self.ephemeral_ports(core),
            ..tcp_core::Config::default()
        }
    }
}

/// Slice `core` of `cores` of [`EPHEMERAL_PORTS`].
pub fn ephemeral_slice(core: usize, cores: usize) -> std::ops::RangeInclusive<u16> {
    let lo = u32::from(*EPHEMERAL_PORTS.start());
    let span = u32::from(*EPHEMERAL_PORTS.end()) - lo + 1;
    let cores = cores.max(1) as u32;
    let per = span / cores;
    let core = (core as u32).min(cores - 1);
    let start = lo + core * per;
    let end = if core + 1 == cores {
        u32::from(*EPHEMERAL_PORTS.end())
    } else {
        start + per - 1
    };
    (start as u16)..=(end as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../examples/mtcp.toml");

    #[test]
    fn example_file_parses() {
        let c = RuntimeConfig::from_toml(EXAMPLE).unwrap();
        assert_eq!(c.net.backend, Backend::AfXdp);
        assert_eq!(c.core_count(), 2);
        assert_eq!(c.mac(), [0x02, 0, 0, 0, 0, 0x0a]);
    }

    #[test]
    fn minimal_file_takes_defaults() {
        let c = RuntimeConfig::from_toml(
            "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\n",
        )
        .unwrap();
        assert_eq!(c.stack.cores, vec![0]);
        assert_eq!(c.stack.max_concurrency, 10_000);
        assert_eq!(c.stack.mode, ThreadMode::Threaded);
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let cases = [
            ("[net]\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\n", "interface"),
            ("[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"zz\"\n", "mac"),
            (
                "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\nnetmask = \"255.0.255.0\"\n",
                "netmask",
            ),
            (
                "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\ngateway = \"10.9.0.1\"\n",
                "gateway",
            ),
            (
                "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\n[stack]\ncores = []\n",
                "cores",
            ),
            (
                "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\n[stack]\nmax_concurrency = 0\n",
                "max_concurrency",
            ),
            (
                "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\nbogus = 1\n",
                "bogus",
            ),
            (
                "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\n[stack]\nmax_concurrency = 10\nprealloc = 11\n",
                "prealloc",
            ),
            (
                "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\n[stack]\nrcvbuf = 4096\nsndbuf = 4096\nbuffer_memory = 8191\n",
                "buffer_memory",
            ),
        ];
        for (text, what) in cases {
            let err = RuntimeConfig::from_toml(text).unwrap_err().to_string();
            assert!(err.contains(what), "{what}: {err}");
        }
    }

    /// The pool keys reach the engine of every core, and the engine's
    /// pools take the sizes they name.
    #[test]
    fn pool_sizes_come_from_the_configuration() {
        let base = "[net]\nbackend = \"memory\"\naddress = \"10.0.0.1\"\nmac = \"02:00:00:00:00:01\"\n[stack]\ncores = [0, 1]\nmax_concurrency = 300\nrcvbuf = 4096\nsndbuf = 8192\n";
        // Defaults: everything max_concurrency connections need.
        let c = RuntimeConfig::from_toml(base).unwrap();
        for core in 0..2 {
            let t = c.tcp_config(core);
            assert_eq!(t.max_connections, 300);
            assert_eq!(t.prealloc_connections, 300);
            assert_eq!(t.buffer_budget, 300 * (4096 + 8192));
            assert_eq!(t.buffer_cache_bytes, 8 << 20);
        }
        // Explicit sizes.
        let c = RuntimeConfig::from_toml(&format!(
            "{base}prealloc = 100\nbuffer_memory = 1000000\nbuffer_cache = 65536\n"
        ))
        .unwrap();
        let t = c.tcp_config(1);
        assert_eq!(
            (
                t.prealloc_connections,
                t.buffer_budget,
                t.buffer_cache_bytes
            ),
            (100, 1_000_000, 65536)
        );
        let ep = tcp_core::Endpoint::with_seed(t, 1);
        let info = ep.pool_info();
        assert!(info.slot_capacity >= 100 + tcp_core::Endpoint::LISTENER_SLOTS);
        assert!(info.slot_capacity < 300, "prealloc, not max_concurrency");
        assert_eq!(info.max_connections, 300);
        assert_eq!(info.buffer_budget, 1_000_000);
        assert_eq!(info.cache_limit, 65536);
    }

    #[test]
    fn ephemeral_slices_are_disjoint_and_cover_the_range() {
        for cores in 1..=8 {
            let mut next = *EPHEMERAL_PORTS.start();
            for c in 0..cores {
                let r = ephemeral_slice(c, cores);
                assert_eq!(*r.start(), next);
                next = r.end() + 1;
            }
            assert_eq!(next - 1, *EPHEMERAL_PORTS.end());
        }
    }
}
