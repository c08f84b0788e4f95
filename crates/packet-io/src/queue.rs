//! The per-queue interface every backend implements.

use crate::frame::{Frame, FrameBatch};
use std::os::fd::RawFd;
use std::time::Instant;

/// Why a frame could not be used with a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame belongs to another queue.
    #[error("the frame belongs to another queue")]
    ForeignFrame,
    /// The requested length is larger than the frame's buffer.
    #[error("length {len} exceeds the frame capacity {capacity}")]
    TooLong {
        /// The length asked for.
        len: usize,
        /// The buffer size of a frame of this queue.
        capacity: usize,
    },
}

/// What a waiter waits for on a queue: received frames, room to transmit, or both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Interest {
    /// Wake when frames can be received.
    pub rx: bool,
    /// Wake when frames can be transmitted (room in the TX ring, completions to reap).
    pub tx: bool,
}

impl Interest {
    /// Received frames only.
    pub const RX: Interest = Interest {
        rx: true,
        tx: false,
    };
    /// Room to transmit only.
    pub const TX: Interest = Interest {
        rx: false,
        tx: true,
    };
    /// Both.
    pub const BOTH: Interest = Interest { rx: true, tx: true };
    /// Neither.
    pub const NONE: Interest = Interest {
        rx: false,
        tx: false,
    };

    /// True when neither direction is set.
    pub fn is_empty(self) -> bool {
        !self.rx && !self.tx
    }

    /// The directions set in both `self` and `other`.
    pub fn and(self, other: Interest) -> Interest {
        Interest {
            rx: self.rx && other.rx,
            tx: self.tx && other.tx,
        }
    }
}

/// How a queue sleeps in [`Waiter::wait`](crate::Waiter::wait).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Armed {
    /// Work arrived while arming: do not sleep.
    Ready(Interest),
    /// Sleep on `fd` (readable for `rx`, writable for `tx`), and not past `until`.
    Sleep {
        /// The descriptor to put into the poll set.
        fd: RawFd,
        /// Poll for readability.
        readable: bool,
        /// Poll for writability.
        writable: bool,
        /// A time at which the queue becomes ready without any event (delayed
        /// frames of the in-memory backend).
        until: Option<Instant>,
    },
}

/// Per-queue counters. Each queue keeps its own (plain integers owned by the
/// core that drives the queue); [`PacketQueue::counters`] returns a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames received.
    pub rx_packets: u64,
    /// Bytes received (Ethernet frames without FCS).
    pub rx_bytes: u64,
    /// Frames handed to the transmit ring.
    pub tx_packets: u64,
    /// Bytes handed to the transmit ring.
    pub tx_bytes: u64,
    /// Transmitted frames whose buffers came back (completion ring).
    pub tx_completed: u64,
    /// Frames dropped because the fill ring was empty (no buffer to receive into).
    pub rx_drop_fill_empty: u64,
    /// Frames dropped because the RX ring was full (the application fell behind).
    pub rx_drop_ring_full: u64,
    /// Frames refused by [`PacketQueue::send`] because the TX ring was full.
    pub tx_ring_full: u64,
    /// Wake-up system calls issued to the kernel (TX kicks, fill-ring wake-ups).
    pub kicks: u64,
    /// Times a waiter slept (blocked in `poll(2)`) with this queue in its set.
    pub sleeps: u64,
    /// Sleeps that ended with this queue ready.
    pub wakeups: u64,
}

/// One queue of a packet I/O backend, driven by one core.
///
/// Frames flow in batches: [`recv`](Self::recv) appends received frames (views
/// into the queue's memory, no copy), [`alloc`](Self::alloc) appends empty
/// frames to build packets in, [`send`](Self::send) hands frames to the
/// transmit ring and [`release`](Self::release) recycles frames that are not
/// sent. No method allocates or takes a lock per frame; system calls are made
/// at most once per batch.
pub trait PacketQueue {
    /// The index of the device queue this handle serves.
    fn queue_id(&self) -> u32;

    /// Size of the buffer of every frame (the largest frame length).
    fn frame_capacity(&self) -> usize;

    /// Appends up to `batch.spare()` received frames to `batch`; returns how many.
    fn recv(&mut self, batch: &mut FrameBatch) -> usize;

    /// Appends up to `min(n, batch.spare())` empty frames for transmission;
    /// returns how many (fewer when buffers are short).
    fn alloc(&mut self, batch: &mut FrameBatch, n: usize) -> usize;

    /// Hands frames from the front of `batch` to the transmit ring, as many as
    /// fit, and returns how many. Frames not taken stay in `batch` in order
    /// (retry later or [`release`](Self::release) them) and are counted in
    /// [`Counters::tx_ring_full`]. Fails without sending anything when a frame
    /// belongs to another queue.
    fn send(&mut self, batch: &mut FrameBatch) -> Result<usize, FrameError>;

    /// How many frames the next [`send`](Self::send) takes at least.
    fn tx_space(&mut self) -> usize;

    /// Recycles every frame of `batch` (received or allocated, not sent).
    /// Fails without releasing anything when a frame belongs to another queue.
    fn release(&mut self, batch: &mut FrameBatch) -> Result<(), FrameError>;

    /// The bytes of a frame.
    fn frame(&self, frame: &Frame) -> Result<&[u8], FrameError>;

    /// The bytes of a frame, writable.
    fn frame_mut(&mut self, frame: &mut Frame) -> Result<&mut [u8], FrameError>;

    /// Sets the length of a frame (at most [`frame_capacity`](Self::frame_capacity)).
    /// Bytes exposed by growing keep whatever the buffer held.
    fn set_len(&mut self, frame: &mut Frame, len: usize) -> Result<(), FrameError>;

    /// Reaps transmit completions, refills the receive side and kicks the
    /// kernel where a kick is pending. [`recv`](Self::recv),
    /// [`send`](Self::send) and the waiter call it; call it directly when a
    /// queue is idle but has frames in flight.
    fn maintain(&mut self);

    /// A snapshot of the counters.
    fn counters(&self) -> Counters;

    /// Which directions of `interest` can make progress now, without blocking.
    fn readiness(&mut self, interest: Interest) -> Interest;

    /// Prepares to sleep: arms the wake-ups the backend needs and says how to
    /// wait for this queue.
    fn arm(&mut self, interest: Interest) -> Armed;

    /// Undoes [`arm`](Self::arm); `slept` says whether the waiter blocked and
    /// `woke` whether the poll set reported this queue. Updates the sleep counters.
    fn disarm(&mut self, slept: bool, woke: bool);
}
