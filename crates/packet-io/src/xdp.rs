//! The AF_XDP backend, on xsk-rs 0.11.
//!
//! One [`XdpQueue`] per device queue: its own UMEM (nothing shared between
//! queues), fill and completion rings, RX and TX rings, bound in copy mode
//! with `XDP_USE_NEED_WAKEUP`. The socket is opened with libxdp's program
//! load inhibited and inserted into the XSKMAP of the [`Steering`] program.
//!
//! Buffer life cycle: a buffer is either in the free pool, in the fill ring
//! (the kernel may write it), in the TX ring until it completes (the kernel
//! reads it), or held by the application as a [`Frame`]. `slots[i]` keeps the
//! xsk-rs descriptor (address and length) of buffer `i`.
#![allow(unsafe_code)]

use crate::frame::{Frame, FrameBatch, OwnerId};
use crate::queue::{Armed, Counters, FrameError, Interest, PacketQueue};
use crate::steer::{AttachMode, SteerConfig, SteerError, Steering};
use crate::sys;
use std::os::fd::AsRawFd;
use xsk_rs::config::{
    BindFlags, FrameSize, Interface, LibxdpFlags, QueueSize, SocketConfig, UmemConfig,
};
use xsk_rs::umem::frame::FrameDesc;
use xsk_rs::{CompQueue, FillQueue, RxQueue, TxQueue, Umem};

/// Sizes and modes of an AF_XDP queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XdpConfig {
    /// Buffers in the queue's UMEM (a power of two).
    pub frames: u32,
    /// Size of each buffer: 2048 or 4096.
    pub frame_size: u32,
    /// Entries of the RX and TX rings (a power of two).
    pub ring_size: u32,
    /// Buffers kept in the fill ring; the rest serve transmission.
    pub fill_target: u32,
    /// Largest burst moved between a ring and the application at once.
    pub batch: usize,
    /// Where the steering program runs.
    pub mode: AttachMode,
}

impl Default for XdpConfig {
    fn default() -> Self {
        XdpConfig {
            frames: 8192,
            frame_size: 2048,
            ring_size: 2048,
            fill_target: 4096,
            batch: 256,
            mode: AttachMode::NativeOrGeneric,
        }
    }
}

/// Errors of opening an AF_XDP queue.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// A size in the configuration is not accepted.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Creating the UMEM failed.
    #[error("creating the UMEM: {0}")]
    Umem(String),
    /// Creating or binding the socket failed.
    #[error("creating the AF_XDP socket on {ifname} queue {queue_id}: {reason}")]
    Socket {
        /// The interface.
        ifname: String,
        /// The queue.
        queue_id: u32,
        /// The error of xsk-rs/libxdp.
        reason: String,
    },
    /// Steering failed.
    #[error(transparent)]
    Steer(#[from] SteerError),
    /// Querying the interface failed.
    #[error("querying {ifname}: {source}")]
    Interface {
        /// The interface.
        ifname: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Attaches the steering program to `ifname` and opens one queue per device
/// queue (`queue_ids`, or every receive queue of the interface when `None`),
/// one after another: creating them at once fails with EBUSY on veth.
pub fn open_queues(
    ifname: &str,
    queue_ids: Option<&[u32]>,
    config: &XdpConfig,
    steer: &SteerConfig,
) -> Result<(Steering, Vec<XdpQueue>), XdpError> {
    let ids: Vec<u32> = match queue_ids {
        Some(ids) => ids.to_vec(),
        None => (0..rx_queue_count(ifname)?).collect(),
    };
    let steering = Steering::attach(ifname, steer, config.mode)?;
    let mut queues = Vec::with_capacity(ids.len());
    for id in ids {
        queues.push(XdpQueue::open(ifname, id, config, &steering)?);
    }
    Ok((steering, queues))
}

/// The number of receive queues of `ifname` (in the calling thread's namespace).
pub fn rx_queue_count(ifname: &str) -> Result<u32, XdpError> {
    sys::rx_queue_count(ifname).map_err(|source| XdpError::Interface {
        ifname: ifname.to_owned(),
        source,
    })
}

/// Where a buffer is (checked in debug builds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Free,
    Fill,
    Tx,
    App,
}

/// One AF_XDP socket and its UMEM: a device queue driven by one core.
pub struct XdpQueue {
    owner: OwnerId,
    queue_id: u32,
    umem: Umem,
    fill: FillQueue,
    comp: CompQueue,
    rx: RxQueue,
    tx: TxQueue,
    slots: Vec<FrameDesc>,
    state: Vec<Owner>,
    free: Vec<u32>,
    /// Scratch descriptors for one ring operation.
    scratch: Vec<FrameDesc>,
    frame_size: usize,
    capacity: usize,
    fill_target: usize,
    ring_size: usize,
    batch: usize,
    in_fill: usize,
    in_tx: usize,
    counters: Counters,
    _steering: Steering,
}

impl std::fmt::Debug for XdpQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpQueue")
            .field("queue_id", &self.queue_id)
            .field("fd", &self.rx.fd().as_raw_fd())
            .field("free", &self.free.len())
            .field("in_fill", &self.in_fill)
            .field("in_tx", &self.in_tx)
            .finish()
    }
}

impl XdpQueue {
    /// Opens queue `queue_id` of `ifname` (in the calling thread's namespace)
    /// and inserts its socket into `steering`'s map.
    pub fn open(
        ifname: &str,
        queue_id: u32,
        config: &XdpConfig,
        steering: &Steering,
    ) -> Result<Self, XdpError> {
        let bad = |what: String| XdpError::Config(what);
        if !config.frames.is_power_of_two() || config.frames < 64 {
            return Err(bad(format!(
                "frames {} is not a power of two >= 64",
                config.frames
            )));
        }
        if config.fill_target == 0 || config.fill_target >= config.frames {
            return Err(bad(format!(
                "fill_target {} must be in 1..frames",
                config.fill_target
            )));
        }
        if config.batch == 0 {
            return Err(bad("batch must be positive".into()));
        }
        let ring = QueueSize::new(config.ring_size).map_err(|e| bad(e.to_string()))?;
        let fill_ring = QueueSize::new(config.fill_target.next_power_of_two())
            .map_err(|e| bad(e.to_string()))?;
        let comp_ring = QueueSize::new(config.frames).map_err(|e| bad(e.to_string()))?;
        let frame_size = FrameSize::new(config.frame_size).map_err(|e| bad(e.to_string()))?;
        let umem_config = UmemConfig::builder()
            .frame_size(frame_size)
            .fill_queue_size(fill_ring)
            .comp_queue_size(comp_ring)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        let count =
            std::num::NonZeroU32::new(config.frames).ok_or_else(|| bad("no frames".into()))?;
        let (umem, descs) =
            Umem::new(umem_config, count, false).map_err(|e| XdpError::Umem(e.to_string()))?;
        let interface: Interface = ifname
            .parse()
            .map_err(|_| bad(format!("bad interface name {ifname:?}")))?;
        let socket_config = SocketConfig::builder()
            .rx_queue_size(ring)
            .tx_queue_size(ring)
            .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
            .bind_flags(BindFlags::XDP_USE_NEED_WAKEUP | BindFlags::XDP_COPY)
            .build();
        // Sockets created at the same time fail with EBUSY on veth: serialise
        // creation process-wide, whoever opens queues from which thread.
        static CREATE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let serial = CREATE.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: the UMEM is fresh and used by this socket only; its frames
        // are handed to the kernel only through the rings of this queue.
        let (tx, rx, rings) =
            unsafe { xsk_rs::Socket::new(socket_config, &umem, &interface, queue_id) }.map_err(
                |e| XdpError::Socket {
                    ifname: ifname.to_owned(),
                    queue_id,
                    reason: format!("{e}: {:?}", std::error::Error::source(&e)),
                },
            )?;
        drop(serial);
        let Some((fill, comp)) = rings else {
            return Err(XdpError::Socket {
                ifname: ifname.to_owned(),
                queue_id,
                reason: "xsk-rs returned no fill/completion rings for a fresh UMEM".into(),
            });
        };
        steering.insert(queue_id, rx.fd())?;
        // One kick per batch instead of one per 32 frames, where the kernel
        // lets us (Linux 6.17+); the kick loop copes with either.
        let budget = (config.batch as u32).clamp(32, config.ring_size);
        if let Err(e) = sys::set_xdp_tx_budget(rx.fd().as_raw_fd(), budget) {
            tracing::debug!(queue_id, "copy-mode TX budget stays at the default: {e}");
        }

        let n = descs.len();
        // The data segment of a buffer: what a frame may hold.
        let capacity = {
            let mut d = descs[0];
            // SAFETY: `d` describes buffer 0 of this UMEM, which no one else
            // accesses yet (nothing is in any ring).
            let mut data = unsafe { umem.data_mut(&mut d) };
            data.cursor().buf_len()
        };
        let mut queue = XdpQueue {
            owner: OwnerId::fresh(),
            queue_id,
            umem,
            fill,
            comp,
            rx,
            tx,
            slots: descs,
            state: vec![Owner::Free; n],
            free: (0..n as u32).rev().collect(),
            scratch: vec![FrameDesc::default(); config.batch.max(config.fill_target as usize)],
            frame_size: config.frame_size as usize,
            capacity,
            fill_target: config.fill_target as usize,
            ring_size: config.ring_size as usize,
            batch: config.batch,
            in_fill: 0,
            in_tx: 0,
            counters: Counters::default(),
            _steering: steering.clone(),
        };
        queue.refill();
        Ok(queue)
    }
}

impl XdpQueue {
    /// The AF_XDP socket's descriptor (for diagnostics).
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.rx.fd().as_raw_fd()
    }

    fn check(&self, frame: &Frame) -> Result<usize, FrameError> {
        if frame.owner() == self.owner {
            Ok(frame.index() as usize)
        } else {
            Err(FrameError::ForeignFrame)
        }
    }

    /// The buffer index of a descriptor the kernel returned.
    fn index_of(&self, desc: &FrameDesc) -> Option<usize> {
        let i = desc.addr() / self.frame_size;
        (i < self.slots.len()).then_some(i)
    }

    /// Tops the fill ring up to `fill_target` from the free pool.
    fn refill(&mut self) {
        let want = self
            .fill_target
            .saturating_sub(self.in_fill)
            .min(self.free.len());
        // Refill in bursts, not frame by frame.
        if want == 0 || (want < self.batch.min(self.fill_target) / 4 && self.in_fill > 0) {
            return;
        }
        let n = (self.fill.nb_free(want as u32) as usize)
            .min(want)
            .min(self.scratch.len());
        if n == 0 {
            return;
        }
        let start = self.free.len() - n;
        for (k, &i) in self.free[start..].iter().enumerate() {
            self.scratch[k] = self.slots[i as usize];
            debug_assert_eq!(self.state[i as usize], Owner::Free);
            self.state[i as usize] = Owner::Fill;
        }
        // SAFETY: the descriptors are buffers of this UMEM from the free pool:
        // no frame handle, ring or slice refers to them, so the kernel may write them.
        let produced = unsafe { self.fill.produce(&self.scratch[..n]) };
        if produced == n {
            self.free.truncate(start);
            self.in_fill += n;
        } else {
            for &i in &self.free[start..] {
                self.state[i as usize] = Owner::Free;
            }
        }
    }

    /// Moves completed transmissions back to the free pool.
    fn reap(&mut self) {
        while self.in_tx > 0 {
            let want = self.in_tx.min(self.scratch.len());
            // SAFETY: the completion ring returns descriptors of buffers of
            // this UMEM that the kernel has finished reading.
            let n = unsafe { self.comp.consume(&mut self.scratch[..want]) };
            if n == 0 {
                break;
            }
            for k in 0..n {
                if let Some(i) = self.index_of(&self.scratch[k]) {
                    debug_assert_eq!(self.state[i], Owner::Tx);
                    self.state[i] = Owner::Free;
                    self.free.push(i as u32);
                } else {
                    tracing::error!(addr = self.scratch[k].addr(), "completion outside the UMEM");
                }
            }
            self.in_tx -= n;
            self.counters.tx_completed += n as u64;
        }
    }

    /// Entries of the TX ring the kernel has not consumed yet.
    fn tx_unconsumed(&mut self) -> usize {
        self.ring_size
            .saturating_sub(self.tx.nb_free_exact() as usize)
    }

    /// Copy mode transmits only inside `sendto(2)`, and at most a small
    /// budget of frames per call: kick until the ring is drained or the
    /// kernel stops making progress.
    fn kick_tx(&mut self) {
        let mut pending = self.tx_unconsumed();
        let mut rounds = self.ring_size / 16 + 2;
        while pending > 0 && rounds > 0 {
            if !self.tx.needs_wakeup() {
                return;
            }
            if let Err(e) = self.tx.wakeup() {
                tracing::warn!(queue = self.queue_id, "TX wake-up failed: {e}");
                return;
            }
            self.counters.kicks += 1;
            let now = self.tx_unconsumed();
            if now >= pending {
                return;
            }
            pending = now;
            rounds -= 1;
        }
    }

    fn kernel_stats(&self) -> Option<xsk_rs::socket::XdpStatistics> {
        self.rx.fd().xdp_statistics().ok()
    }
}

impl PacketQueue for XdpQueue {
    fn queue_id(&self) -> u32 {
        self.queue_id
    }

    fn frame_capacity(&self) -> usize {
        self.capacity
    }

    fn recv(&mut self, batch: &mut FrameBatch) -> usize {
        self.refill();
        let want = batch.spare().min(self.scratch.len());
        if want == 0 {
            return 0;
        }
        // SAFETY: the RX ring returns descriptors of buffers of this UMEM
        // that the kernel has finished writing; from here they are ours.
        let n = unsafe { self.rx.consume(&mut self.scratch[..want]) };
        let mut bytes = 0;
        let frames = batch.frames_mut();
        for k in 0..n {
            let desc = self.scratch[k];
            let Some(i) = self.index_of(&desc) else {
                tracing::error!(addr = desc.addr(), "RX descriptor outside the UMEM");
                continue;
            };
            debug_assert_eq!(self.state[i], Owner::Fill);
            self.state[i] = Owner::App;
            self.slots[i] = desc;
            bytes += desc.lengths().data() as u64;
            frames.push(Frame::new(i as u32, self.owner));
        }
        self.in_fill = self.in_fill.saturating_sub(n);
        self.counters.rx_packets += n as u64;
        self.counters.rx_bytes += bytes;
        n
    }

    fn alloc(&mut self, batch: &mut FrameBatch, n: usize) -> usize {
        if self.free.len() < n {
            self.reap();
        }
        let n = n.min(batch.spare()).min(self.free.len());
        let frames = batch.frames_mut();
        for _ in 0..n {
            let Some(i) = self.free.pop() else { break };
            let slot = &mut self.slots[i as usize];
            // SAFETY: buffer `i` is in the free pool: no ring or slice refers to it.
            unsafe { self.umem.data_mut(slot) }.cursor().set_pos(0);
            self.state[i as usize] = Owner::App;
            frames.push(Frame::new(i, self.owner));
        }
        n
    }

    fn send(&mut self, batch: &mut FrameBatch) -> Result<usize, FrameError> {
        for f in batch.iter() {
            self.check(f)?;
        }
        self.reap();
        let mut sent = 0;
        while sent < batch.len() {
            let left = batch.len() - sent;
            let n = (self.tx.nb_free(left as u32) as usize)
                .min(left)
                .min(self.scratch.len());
            if n == 0 {
                break;
            }
            let mut bytes = 0;
            for (k, f) in batch.as_slice()[sent..sent + n].iter().enumerate() {
                let desc = self.slots[f.index() as usize];
                bytes += desc.lengths().data() as u64;
                self.scratch[k] = desc;
            }
            // SAFETY: every descriptor is a buffer of this UMEM held by the
            // application (checked above); its frame handle is removed from the
            // batch below, so nothing touches it until it completes.
            let produced = unsafe { self.tx.produce(&self.scratch[..n]) };
            if produced != n {
                break;
            }
            for f in &batch.as_slice()[sent..sent + n] {
                self.state[f.index() as usize] = Owner::Tx;
            }
            sent += n;
            self.in_tx += n;
            self.counters.tx_packets += n as u64;
            self.counters.tx_bytes += bytes;
        }
        batch.frames_mut().drain(..sent);
        self.counters.tx_ring_full += batch.len() as u64;
        if sent > 0 {
            self.kick_tx();
        }
        Ok(sent)
    }

    fn tx_space(&mut self) -> usize {
        self.tx.nb_free(self.ring_size as u32) as usize
    }

    fn release(&mut self, batch: &mut FrameBatch) -> Result<(), FrameError> {
        for f in batch.iter() {
            self.check(f)?;
        }
        for f in batch.frames_mut().drain(..) {
            let i = f.index();
            self.state[i as usize] = Owner::Free;
            self.free.push(i);
        }
        self.refill();
        Ok(())
    }

    fn frame(&self, frame: &Frame) -> Result<&[u8], FrameError> {
        let i = self.check(frame)?;
        // SAFETY: buffer `i` is held by the application (a handle of this
        // queue exists), so neither ring refers to it; `&self` excludes writers.
        Ok(unsafe { self.umem.data(&self.slots[i]) }.contents())
    }

    fn frame_mut(&mut self, frame: &mut Frame) -> Result<&mut [u8], FrameError> {
        let i = self.check(frame)?;
        // SAFETY: as in `frame`, and `&mut self` excludes every other access.
        let (ptr, len) = {
            let mut data = unsafe { self.umem.data_mut(&mut self.slots[i]) };
            let contents = data.contents_mut();
            (contents.as_mut_ptr(), contents.len())
        };
        // SAFETY: `ptr..ptr+len` is buffer `i` inside the UMEM mapping owned by
        // `self.umem`, which outlives the returned borrow of `self`; the
        // exclusive borrow of `self` keeps the slice unaliased.
        Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
    }

    fn set_len(&mut self, frame: &mut Frame, len: usize) -> Result<(), FrameError> {
        let i = self.check(frame)?;
        if len > self.capacity {
            return Err(FrameError::TooLong {
                len,
                capacity: self.capacity,
            });
        }
        // SAFETY: as in `frame_mut`.
        unsafe { self.umem.data_mut(&mut self.slots[i]) }
            .cursor()
            .set_pos(len);
        Ok(())
    }

    fn maintain(&mut self) {
        self.reap();
        self.refill();
        if self.tx_unconsumed() > 0 {
            self.kick_tx();
        }
    }

    fn counters(&self) -> Counters {
        let mut c = self.counters;
        if let Some(k) = self.kernel_stats() {
            c.rx_drop_fill_empty = k.rx_fill_ring_empty_descs();
            c.rx_drop_ring_full = k.rx_ring_full() + k.rx_dropped();
        }
        c
    }

    fn readiness(&mut self, interest: Interest) -> Interest {
        let mut ready = Interest::NONE;
        if interest.rx {
            if self.rx.nb_avail(1) > 0 {
                ready.rx = true;
            } else {
                self.refill();
                // A driver that stopped for want of fill entries resumes only
                // when woken (poll(2)). Copy mode never sets the flag; drivers
                // in zero-copy mode do.
                if self.in_fill > 0 && self.fill.needs_wakeup() {
                    let _ = self.fill.wakeup(self.rx.fd_mut(), 0);
                    self.counters.kicks += 1;
                }
            }
        }
        if interest.tx {
            self.reap();
            if self.tx_unconsumed() > 0 {
                self.kick_tx();
            }
            ready.tx = self.tx.nb_free(1) > 0 && !self.free.is_empty();
        }
        ready
    }

    fn arm(&mut self, interest: Interest) -> Armed {
        let ready = self.readiness(interest);
        if !ready.is_empty() {
            return Armed::Ready(ready);
        }
        Armed::Sleep {
            fd: self.rx.fd().as_raw_fd(),
            readable: interest.rx,
            writable: interest.tx,
            until: None,
        }
    }

    fn disarm(&mut self, slept: bool, woke: bool) {
        if !slept {
            return;
        }
        self.counters.sleeps += 1;
        if woke {
            self.counters.wakeups += 1;
        }
    }
}
