//! Our stack as an app backend: the runtime's per-core [`runtime::Context`]s
//! with mTCP's calls, one epoll instance per context, every socket
//! non-blocking and registered edge-triggered (the same contract as the
//! kernel backend).
//!
//! A [`OurStack`] owns the [`Runtime`] and lends its contexts to app threads;
//! a context comes back to the stack when the [`OurContext`] is dropped, so
//! one stack serves several runs (a server, then a client, then a demo).

use crate::net::{Event, Fd, NetContext, NetStack};
use packet_io::{mem_pair, MemConfig};
use runtime::{
    Context, Errno, Error, Events, Runtime, RuntimeConfig, Shutdown, SockOpt, SockOptName,
};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Events taken per epoll_wait.
const EVENT_CAPACITY: usize = 1024;

type Slots = Arc<Mutex<Vec<Option<Context>>>>;

/// Our stack, started from a runtime configuration.
pub struct OurStack {
    runtime: Mutex<Option<Runtime>>,
    contexts: Slots,
    cores: usize,
    label: &'static str,
}

impl std::fmt::Debug for OurStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OurStack")
            .field("cores", &self.cores)
            .field("label", &self.label)
            .finish()
    }
}

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl OurStack {
    fn from_parts(runtime: Runtime, contexts: Vec<Context>, label: &'static str) -> Self {
        OurStack {
            cores: contexts.len(),
            runtime: Mutex::new(Some(runtime)),
            contexts: Arc::new(Mutex::new(contexts.into_iter().map(Some).collect())),
            label,
        }
    }

    /// Starts the runtime described by `config` (AF_XDP: on the interface
    /// in the calling thread's network namespace).
    pub fn start(config: RuntimeConfig) -> io::Result<Self> {
        let (rt, ctxs) = Runtime::start(config).map_err(err)?;
        Ok(OurStack::from_parts(rt, ctxs, "mtcp-rs"))
    }

    /// Two stacks in this process joined back to back by in-memory queue
    /// pairs (queue k of one to queue k of the other): our stack at both
    /// ends, no root and no NIC needed. Returns (server, client).
    pub fn memory_pair(
        server_ip: Ipv4Addr,
        client_ip: Ipv4Addr,
        cores: usize,
        tweak: impl Fn(&mut RuntimeConfig),
    ) -> io::Result<(OurStack, OurStack)> {
        let cores = cores.max(1);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..cores {
            let (x, y) = mem_pair(&MemConfig {
                frames: 8192,
                link_capacity: 8192,
                ..MemConfig::default()
            })?;
            a.push(x);
            b.push(y);
        }
        let config = |ip, mac: &str| {
            let mut c = RuntimeConfig::memory(ip, cores);
            c.net.mac = Some(mac.into());
            tweak(&mut c);
            c
        };
        let (srt, sctx) =
            Runtime::start_memory(config(server_ip, "02:00:00:00:00:01"), a).map_err(err)?;
        let (crt, cctx) =
            Runtime::start_memory(config(client_ip, "02:00:00:00:00:02"), b).map_err(err)?;
        Ok((
            OurStack::from_parts(srt, sctx, "mtcp-rs (memory)"),
            OurStack::from_parts(crt, cctx, "mtcp-rs (memory)"),
        ))
    }

    /// Per-core counters of the contexts not lent out at the moment.
    pub fn stats(&self) -> Vec<runtime::CoreStats> {
        self.contexts
            .lock()
            .map(|c| c.iter().flatten().map(Context::stats).collect())
            .unwrap_or_default()
    }
}

impl Drop for OurStack {
    fn drop(&mut self) {
        if let Ok(mut c) = self.contexts.lock() {
            c.clear();
        }
        if let Some(rt) = self.runtime.lock().ok().and_then(|mut r| r.take()) {
            rt.shutdown();
        }
    }
}

impl NetStack for OurStack {
    type Context = OurContext;

    fn name(&self) -> &'static str {
        self.label
    }

    fn cores(&self) -> usize {
        self.cores
    }

    fn context(&self, index: usize) -> io::Result<OurContext> {
        let ctx = self
            .contexts
            .lock()
            .map_err(|_| err("context table poisoned"))?
            .get_mut(index)
            .and_then(Option::take)
            .ok_or_else(|| err(format!("context {index} is in use or does not exist")))?;
        // mTCP pairs the application thread with its core's stack thread.
        ctx.pin_current_thread();
        OurContext::new(ctx, index, Arc::clone(&self.contexts))
    }

    fn cpu(&self, _index: usize) -> Option<usize> {
        // Pinned by Context::pin_current_thread, to the configured CPU.
        None
    }

    fn report(&self) -> Option<String> {
        let lines: Vec<String> = self
            .stats()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "core {i}: rx {} pkts / {} B, tx {} pkts / {} B, drops {} (device {}), \
                     retransmissions {}, listen drops {}, active flows {}, forwarded in/out {}/{}, app calls {}",
                    s.rx_packets,
                    s.rx_bytes,
                    s.tx_packets,
                    s.tx_bytes,
                    s.drops,
                    s.device_drops,
                    s.retransmissions,
                    s.listen_drops,
                    s.active_flows,
                    s.forwarded_in,
                    s.forwarded_out,
                    s.calls
                )
            })
            .collect();
        Some(lines.join("\n"))
    }
}

/// One core's context of our stack, with its epoll instance; goes back to
/// its [`OurStack`] when dropped.
pub struct OurContext {
    ctx: Option<Context>,
    index: usize,
    ep: runtime::Fd,
    events: Vec<runtime::Event>,
    home: Slots,
}

impl std::fmt::Debug for OurContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OurContext")
            .field("index", &self.index)
            .finish()
    }
}

fn v4(addr: SocketAddr) -> io::Result<SocketAddrV4> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "our stack speaks IPv4 only",
        )),
    }
}

fn rfd(fd: Fd) -> io::Result<runtime::Fd> {
    u32::try_from(fd.0)
        .map(runtime::Fd)
        .map_err(|_| io::Error::from_raw_os_error(9))
}

/// Edge-triggered read and write readiness, with hang-up.
fn et_both() -> Events {
    Events::IN
        .union(Events::OUT)
        .union(Events::RDHUP)
        .union(Events::ET)
}

impl OurContext {
    fn new(ctx: Context, index: usize, home: Slots) -> io::Result<Self> {
        let ep = match ctx.epoll_create() {
            Ok(ep) => ep,
            Err(e) => {
                if let Ok(mut h) = home.lock() {
                    h[index] = Some(ctx);
                }
                return Err(e.into());
            }
        };
        Ok(OurContext {
            ctx: Some(ctx),
            index,
            ep,
            events: vec![runtime::Event::new(Events::EMPTY, 0); EVENT_CAPACITY],
            home,
        })
    }

    fn ctx(&self) -> io::Result<&Context> {
        self.ctx.as_ref().ok_or_else(|| err("context gone"))
    }

    /// This core's counters.
    pub fn stats(&self) -> Option<runtime::CoreStats> {
        self.ctx.as_ref().map(Context::stats)
    }

    fn register(&self, fd: runtime::Fd, events: Events) -> io::Result<()> {
        let ctx = self.ctx()?;
        if let Err(e) = ctx.epoll_add(self.ep, fd, events) {
            let _ = ctx.close(fd);
            return Err(e.into());
        }
        Ok(())
    }
}

impl Drop for OurContext {
    fn drop(&mut self) {
        if let Some(ctx) = self.ctx.take() {
            let _ = ctx.close(self.ep);
            if let Ok(mut h) = self.home.lock() {
                if let Some(slot) = h.get_mut(self.index) {
                    *slot = Some(ctx);
                }
            }
        }
    }
}

impl NetContext for OurContext {
    fn listen(&mut self, addr: SocketAddr, backlog: u32) -> io::Result<Fd> {
        let addr = v4(addr)?;
        let ctx = self.ctx()?;
        let fd = ctx.socket_nonblocking()?;
        let setup = (|| -> Result<(), Error> {
            ctx.setsockopt(fd, SockOpt::ReuseAddr(true))?;
            ctx.setsockopt(fd, SockOpt::NoDelay(true))?;
            ctx.bind(fd, addr)?;
            ctx.listen(fd, backlog.min(i32::MAX as u32) as i32)
        })();
        if let Err(e) = setup {
            let _ = ctx.close(fd);
            return Err(e.into());
        }
        self.register(fd, Events::IN.union(Events::ET))?;
        Ok(Fd(fd.0 as usize))
    }

    fn local_addr(&mut self, fd: Fd) -> io::Result<SocketAddr> {
        Ok(self.ctx()?.getsockname(rfd(fd)?)?.into())
    }

    fn accept(&mut self, listener: Fd) -> io::Result<Fd> {
        let ctx = self.ctx()?;
        let (fd, _) = ctx.accept(rfd(listener)?)?;
        if let Err(e) = ctx.set_nonblocking(fd, true) {
            let _ = ctx.close(fd);
            return Err(e.into());
        }
        self.register(fd, et_both())?;
        Ok(Fd(fd.0 as usize))
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<Fd> {
        let addr = v4(addr)?;
        let ctx = self.ctx()?;
        let fd = ctx.socket_nonblocking()?;
        match ctx.connect(fd, addr) {
            Ok(()) | Err(Error::Socket(Errno::EINPROGRESS)) => {}
            Err(e) => {
                let _ = ctx.close(fd);
                return Err(e.into());
            }
        }
        self.register(fd, et_both())?;
        Ok(Fd(fd.0 as usize))
    }

    fn connected(&mut self, fd: Fd) -> io::Result<bool> {
        let ctx = self.ctx()?;
        let fd = rfd(fd)?;
        // One call when the handshake is done (the common case), two otherwise.
        match ctx.getpeername(fd) {
            Ok(_) => Ok(true),
            Err(Error::Socket(Errno::ENOTCONN)) => match ctx.getsockopt(fd, SockOptName::Error)? {
                SockOpt::Error(Some(e)) => Err(e.into()),
                _ => Ok(false),
            },
            Err(e) => Err(e.into()),
        }
    }

    fn read(&mut self, fd: Fd, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.ctx()?.read(rfd(fd)?, buf)?)
    }

    fn write(&mut self, fd: Fd, buf: &[u8]) -> io::Result<usize> {
        Ok(self.ctx()?.write(rfd(fd)?, buf)?)
    }

    fn writev(&mut self, fd: Fd, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        Ok(self.ctx()?.writev(rfd(fd)?, bufs)?)
    }

    fn shutdown_write(&mut self, fd: Fd) -> io::Result<()> {
        Ok(self.ctx()?.shutdown(rfd(fd)?, Shutdown::Write)?)
    }

    fn set_nodelay(&mut self, fd: Fd, on: bool) -> io::Result<()> {
        Ok(self.ctx()?.setsockopt(rfd(fd)?, SockOpt::NoDelay(on))?)
    }

    fn close(&mut self, fd: Fd) -> io::Result<()> {
        // Closing the socket removes it from the epoll set.
        Ok(self.ctx()?.close(rfd(fd)?)?)
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        let ctx = self.ctx.as_ref().ok_or_else(|| err("context gone"))?;
        let n = ctx.epoll_wait(self.ep, &mut self.events, timeout)?;
        events.extend(self.events[..n].iter().map(|e| {
            let ev = e.events;
            Event {
                fd: Fd(e.data as usize),
                readable: ev.intersects(Events::IN.union(Events::RDHUP).union(Events::HUP)),
                writable: ev.intersects(Events::OUT),
                error: ev.intersects(Events::ERR.union(Events::HUP)),
            }
        }));
        Ok(())
    }
}

pub use runtime::{RuntimeConfig as Config, ThreadMode};

/// An AF_XDP configuration for one core of our stack on `interface`
/// (address `address/24`, MAC `mac`) pinned to `cpu`, sized for the
/// benchmarks: 64k connections per core, 16k AF_XDP buffers, and a
/// 1-second TIME-WAIT (MSL 500 ms), so that 10^4-10^5 short connections per second do not exhaust
/// the table with TIME-WAIT entries.
pub fn xdp_config(interface: &str, address: Ipv4Addr, mac: [u8; 6], cpu: usize) -> Config {
    let mut c = Config::memory(address, 1);
    c.net.backend = runtime::Backend::AfXdp;
    c.net.interface = interface.to_string();
    c.net.netmask = Ipv4Addr::new(255, 255, 255, 0);
    c.net.mac = Some(packet_io::testnet::mac_string(mac));
    c.stack.cores = vec![cpu];
    c.stack.pin = true;
    c.stack.max_concurrency = 65_536;
    c.stack.msl_ms = 500;
    c.stack.rcvbuf = 256 * 1024;
    c.stack.sndbuf = 256 * 1024;
    c.stack.stats_interval_ms = 0;
    // 8192-entry rings: at c=1000 a peer answers a whole batch of events at
    // once (over 2,000 frames while the application handles its own batch),
    // which overflowed the default 2048-entry receive ring (dropped SYN-ACKs
    // cost 1 s retransmission timeouts).
    c.net.xdp_frames = 16_384;
    c
}
