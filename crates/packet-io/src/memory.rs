//! The in-memory backend: connected queue pairs in one process.
//!
//! [`mem_pair`] returns two [`MemQueue`]s joined like the two ends of a cable.
//! Each end owns an arena of buffers (its "UMEM"); each direction of the cable
//! is a bounded link holding frames in flight. Sending copies a frame into the
//! link (the wire), receiving copies it into a buffer of the receiver's
//! arena, so frames stay views into their queue's own memory exactly as with
//! AF_XDP. The two ends may live on different threads: a link is locked once
//! per batch, and a sleeping receiver is woken through its eventfd.
//!
//! Each direction injects faults from its own seeded ChaCha generator:
//! loss, duplication, reordering (a frame swaps places with the one queued
//! before it) and delay (fixed plus uniform jitter; frames are delivered in
//! queue order, so jitter delays but does not reorder). For a given seed and
//! sequence of sends the faults are the same on every run; with a
//! [`ManualClock`] the deliveries are too.

use crate::frame::{Frame, FrameBatch, OwnerId};
use crate::queue::{Armed, Counters, FrameError, Interest, PacketQueue};
use crate::sys::EventFd;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Faults injected on each direction of a memory link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Probability that a frame is lost.
    pub loss: f64,
    /// Probability that a frame is delivered twice.
    pub duplicate: f64,
    /// Probability that a frame swaps places with the frame queued before it.
    pub reorder: f64,
    /// Fixed delay of every frame.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`.
    pub jitter: Duration,
}

/// A clock the test advances by hand.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0
            .fetch_add(by.as_nanos().min(u64::MAX as u128) as u64, Ordering::AcqRel);
    }

    /// Time since the clock was created.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Acquire))
    }
}

/// The time base of a memory link.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// Monotonic wall-clock time.
    #[default]
    Real,
    /// A clock advanced by the test ([`ManualClock::advance`]).
    Manual(ManualClock),
}

/// Configuration of a memory queue pair (both ends, both directions).
#[derive(Clone, Debug)]
pub struct MemConfig {
    /// Buffers in each end's arena.
    pub frames: u32,
    /// Size of every buffer.
    pub frame_size: usize,
    /// Frames each direction holds in flight.
    pub link_capacity: usize,
    /// Faults of each direction.
    pub faults: Faults,
    /// Seed of the fault generators (each direction derives its own).
    pub seed: u64,
    /// Time base for delays.
    pub clock: Clock,
}

impl Default for MemConfig {
    fn default() -> Self {
        MemConfig {
            frames: 1024,
            frame_size: 2048,
            link_capacity: 1024,
            faults: Faults::default(),
            seed: 0,
            clock: Clock::Real,
        }
    }
}

/// What the fault injector did on one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Frames lost.
    pub lost: u64,
    /// Extra copies queued.
    pub duplicated: u64,
    /// Frames swapped with their predecessor.
    pub reordered: u64,
}

struct InFlight {
    slot: u32,
    len: u32,
    at: u64,
}

struct LinkState {
    bufs: Vec<u8>,
    free: Vec<u32>,
    queue: VecDeque<InFlight>,
    rng: ChaCha8Rng,
    stats: FaultStats,
}

/// One direction of the cable.
struct Link {
    state: Mutex<LinkState>,
    /// Frames in flight (read without the lock by readiness checks).
    queued: AtomicUsize,
    capacity: usize,
    frame_size: usize,
    faults: Faults,
    clock: Clock,
    epoch: Instant,
    /// The receiver sleeps and wants a signal.
    armed: AtomicBool,
    event: EventFd,
}

impl Link {
    fn new(config: &MemConfig, seed: u64, epoch: Instant) -> io::Result<Self> {
        let cap = config.link_capacity.max(1);
        Ok(Link {
            state: Mutex::new(LinkState {
                bufs: vec![0; cap * config.frame_size],
                free: (0..cap as u32).rev().collect(),
                queue: VecDeque::with_capacity(cap),
                rng: ChaCha8Rng::seed_from_u64(seed),
                stats: FaultStats::default(),
            }),
            queued: AtomicUsize::new(0),
            capacity: cap,
            frame_size: config.frame_size,
            faults: config.faults,
            clock: config.clock.clone(),
            epoch,
            armed: AtomicBool::new(false),
            event: EventFd::new()?,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LinkState> {
        // A panic while holding the lock leaves consistent state (every
        // update is a push or pop), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> u64 {
        match &self.clock {
            Clock::Real => self.epoch.elapsed().as_nanos() as u64,
            Clock::Manual(c) => c.now().as_nanos() as u64,
        }
    }

    fn delays(&self) -> bool {
        !self.faults.delay.is_zero() || !self.faults.jitter.is_zero()
    }
}

/// Creates two connected in-memory queues (queue id 0 each).
pub fn mem_pair(config: &MemConfig) -> io::Result<(MemQueue, MemQueue)> {
    let epoch = Instant::now();
    let a_to_b = Arc::new(Link::new(config, config.seed, epoch)?);
    let b_to_a = Arc::new(Link::new(
        config,
        config.seed ^ 0x9e37_79b9_7f4a_7c15,
        epoch,
    )?);
    let a = MemQueue::new(config, Arc::clone(&a_to_b), Arc::clone(&b_to_a));
    let b = MemQueue::new(config, b_to_a, a_to_b);
    Ok((a, b))
}

/// One end of a memory queue pair.
pub struct MemQueue {
    owner: OwnerId,
    tx_link: Arc<Link>,
    rx_link: Arc<Link>,
    arena: Vec<u8>,
    lens: Vec<u32>,
    free: Vec<u32>,
    frame_size: usize,
    counters: Counters,
}

impl std::fmt::Debug for MemQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemQueue")
            .field("free", &self.free.len())
            .field("frames", &self.lens.len())
            .finish()
    }
}

impl MemQueue {
    fn new(config: &MemConfig, tx_link: Arc<Link>, rx_link: Arc<Link>) -> Self {
        let n = config.frames.max(1);
        MemQueue {
            owner: OwnerId::fresh(),
            tx_link,
            rx_link,
            arena: vec![0; n as usize * config.frame_size],
            lens: vec![0; n as usize],
            free: (0..n).rev().collect(),
            frame_size: config.frame_size,
            counters: Counters::default(),
        }
    }

    /// What the fault injector did to the frames this end sent.
    pub fn fault_stats(&self) -> FaultStats {
        self.tx_link.lock().stats
    }

    /// Buffers neither in flight nor held by the application.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    fn check(&self, frame: &Frame) -> Result<usize, FrameError> {
        if frame.owner() == self.owner {
            Ok(frame.index() as usize)
        } else {
            Err(FrameError::ForeignFrame)
        }
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        let start = i * self.frame_size;
        start..start + self.lens[i] as usize
    }

    /// The delivery time of the frame at the head of the receive link, if any.
    fn rx_head_due(&self) -> Option<u64> {
        if self.rx_link.queued.load(Ordering::Acquire) == 0 {
            return None;
        }
        if !self.rx_link.delays() {
            return Some(0);
        }
        self.rx_link.lock().queue.front().map(|f| f.at)
    }

    fn rx_ready(&self) -> bool {
        self.rx_head_due()
            .is_some_and(|at| at <= self.rx_link.now())
    }
}

impl PacketQueue for MemQueue {
    fn queue_id(&self) -> u32 {
        0
    }

    fn frame_capacity(&self) -> usize {
        self.frame_size
    }

    fn recv(&mut self, batch: &mut FrameBatch) -> usize {
        let spare = batch.spare();
        if spare == 0 || self.rx_link.queued.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let link = Arc::clone(&self.rx_link);
        let now = link.now();
        let mut st = link.lock();
        let mut got = 0;
        let mut popped = 0;
        let mut bytes = 0u64;
        let frames = batch.frames_mut();
        while got < spare {
            match st.queue.front() {
                Some(f) if f.at <= now => {}
                _ => break,
            }
            let Some(f) = st.queue.pop_front() else { break };
            popped += 1;
            let src = f.slot as usize * link.frame_size;
            let len = f.len as usize;
            if let Some(i) = self.free.pop() {
                let dst = i as usize * self.frame_size;
                self.arena[dst..dst + len].copy_from_slice(&st.bufs[src..src + len]);
                self.lens[i as usize] = f.len;
                frames.push(Frame::new(i, self.owner));
                got += 1;
                bytes += len as u64;
            } else {
                self.counters.rx_drop_fill_empty += 1;
            }
            st.free.push(f.slot);
        }
        link.queued.fetch_sub(popped, Ordering::AcqRel);
        drop(st);
        self.counters.rx_packets += got as u64;
        self.counters.rx_bytes += bytes;
        got
    }

    fn alloc(&mut self, batch: &mut FrameBatch, n: usize) -> usize {
        let n = n.min(batch.spare()).min(self.free.len());
        let frames = batch.frames_mut();
        for _ in 0..n {
            let Some(i) = self.free.pop() else { break };
            self.lens[i as usize] = 0;
            frames.push(Frame::new(i, self.owner));
        }
        n
    }

    fn send(&mut self, batch: &mut FrameBatch) -> Result<usize, FrameError> {
        for f in batch.iter() {
            self.check(f)?;
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let link = Arc::clone(&self.tx_link);
        let faults = link.faults;
        let jitter_ns = faults.jitter.as_nanos() as u64;
        let base_at = link.now() + faults.delay.as_nanos() as u64;
        let mut st = link.lock();
        let mut sent = 0;
        let mut queued = 0;
        let mut bytes = 0u64;
        for f in batch.as_slice() {
            if st.free.is_empty() {
                break;
            }
            // Four draws per frame whatever the outcome, so that one frame's
            // fate does not shift the next one's.
            let lose = st.rng.gen::<f64>() < faults.loss;
            let reorder = st.rng.gen::<f64>() < faults.reorder;
            let duplicate = st.rng.gen::<f64>() < faults.duplicate;
            let jitter = if jitter_ns > 0 {
                st.rng.gen_range(0..=jitter_ns)
            } else {
                let _ = st.rng.gen::<u64>();
                0
            };
            let i = f.index() as usize;
            let len = self.lens[i];
            sent += 1;
            bytes += u64::from(len);
            if lose {
                st.stats.lost += 1;
                continue;
            }
            let copies = if duplicate { 2 } else { 1 };
            for copy in 0..copies {
                let Some(slot) = st.free.pop() else { break };
                let dst = slot as usize * link.frame_size;
                let src = i * self.frame_size;
                st.bufs[dst..dst + len as usize]
                    .copy_from_slice(&self.arena[src..src + len as usize]);
                st.queue.push_back(InFlight {
                    slot,
                    len,
                    at: base_at + jitter,
                });
                queued += 1;
                if copy == 1 {
                    st.stats.duplicated += 1;
                }
            }
            if reorder && st.queue.len() >= 2 {
                let n = st.queue.len();
                st.queue.swap(n - 1, n - 2);
                st.stats.reordered += 1;
            }
        }
        link.queued.fetch_add(queued, Ordering::AcqRel);
        drop(st);
        for f in batch.frames_mut().drain(..sent) {
            self.free.push(f.index());
        }
        self.counters.tx_packets += sent as u64;
        self.counters.tx_bytes += bytes;
        self.counters.tx_completed += sent as u64;
        self.counters.tx_ring_full += batch.len() as u64;
        if queued > 0 && link.armed.load(Ordering::SeqCst) {
            link.event.signal();
            self.counters.kicks += 1;
        }
        Ok(sent)
    }

    fn tx_space(&mut self) -> usize {
        // Duplicates may take a second slot; count conservatively.
        let left = self.tx_link.capacity
            - self
                .tx_link
                .queued
                .load(Ordering::Acquire)
                .min(self.tx_link.capacity);
        if self.tx_link.faults.duplicate > 0.0 {
            left / 2
        } else {
            left
        }
    }

    fn release(&mut self, batch: &mut FrameBatch) -> Result<(), FrameError> {
        for f in batch.iter() {
            self.check(f)?;
        }
        for f in batch.frames_mut().drain(..) {
            self.free.push(f.index());
        }
        Ok(())
    }

    fn frame(&self, frame: &Frame) -> Result<&[u8], FrameError> {
        let i = self.check(frame)?;
        Ok(&self.arena[self.range(i)])
    }

    fn frame_mut(&mut self, frame: &mut Frame) -> Result<&mut [u8], FrameError> {
        let i = self.check(frame)?;
        let r = self.range(i);
        Ok(&mut self.arena[r])
    }

    fn set_len(&mut self, frame: &mut Frame, len: usize) -> Result<(), FrameError> {
        let i = self.check(frame)?;
        if len > self.frame_size {
            return Err(FrameError::TooLong {
                len,
                capacity: self.frame_size,
            });
        }
        self.lens[i] = len as u32;
        Ok(())
    }

    fn maintain(&mut self) {}

    fn counters(&self) -> Counters {
        self.counters
    }

    fn readiness(&mut self, interest: Interest) -> Interest {
        Interest {
            rx: interest.rx && self.rx_ready(),
            tx: interest.tx
                && !self.free.is_empty()
                && self.tx_link.queued.load(Ordering::Acquire) < self.tx_link.capacity,
        }
    }

    fn arm(&mut self, interest: Interest) -> Armed {
        self.rx_link.armed.store(true, Ordering::SeqCst);
        let ready = self.readiness(interest);
        if !ready.is_empty() {
            return Armed::Ready(ready);
        }
        let mut until = None;
        if let (true, Clock::Real) = (interest.rx, &self.rx_link.clock) {
            if let Some(at) = self.rx_head_due() {
                until = Some(self.rx_link.epoch + Duration::from_nanos(at));
            }
        }
        if interest.tx && until.is_none() {
            // The peer does not signal freed link space: re-check soon.
            until = Some(Instant::now() + Duration::from_micros(100));
        }
        Armed::Sleep {
            fd: self.rx_link.event.raw(),
            readable: true,
            writable: false,
            until,
        }
    }

    fn disarm(&mut self, slept: bool, woke: bool) {
        self.rx_link.armed.store(false, Ordering::SeqCst);
        self.rx_link.event.drain();
        if slept {
            self.counters.sleeps += 1;
            if woke {
                self.counters.wakeups += 1;
            }
        }
    }
}
