//! One type over both packet I/O backends, so that a context is not generic
//! over its queue (a `match` per batch call, nothing per frame).

use packet_io::{
    Armed, Counters, Frame, FrameBatch, FrameError, Interest, MemQueue, PacketQueue, XdpQueue,
};

/// A device queue of either backend.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per core, never moved on hot paths
pub enum AnyQueue {
    /// An AF_XDP socket on a device queue.
    Xdp(XdpQueue),
    /// One end of an in-memory queue pair.
    Memory(MemQueue),
}

macro_rules! each {
    ($self:ident, $q:ident => $e:expr) => {
        match $self {
            AnyQueue::Xdp($q) => $e,
            AnyQueue::Memory($q) => $e,
        }
    };
}

impl PacketQueue for AnyQueue {
    fn queue_id(&self) -> u32 {
        each!(self, q => q.queue_id())
    }
    fn frame_capacity(&self) -> usize {
        each!(self, q => q.frame_capacity())
    }
    fn recv(&mut self, batch: &mut FrameBatch) -> usize {
        each!(self, q => q.recv(batch))
    }
    fn alloc(&mut self, batch: &mut FrameBatch, n: usize) -> usize {
        each!(self, q => q.alloc(batch, n))
    }
    fn send(&mut self, batch: &mut FrameBatch) -> Result<usize, FrameError> {
        each!(self, q => q.send(batch))
    }
    fn tx_space(&mut self) -> usize {
        each!(self, q => q.tx_space())
    }
    fn release(&mut self, batch: &mut FrameBatch) -> Result<(), FrameError> {
        each!(self, q => q.release(batch))
    }
    fn frame(&self, frame: &Frame) -> Result<&[u8], FrameError> {
        each!(self, q => q.frame(frame))
    }
    fn frame_mut(&mut self, frame: &mut Frame) -> Result<&mut [u8], FrameError> {
        each!(self, q => q.frame_mut(frame))
    }
    fn set_len(&mut self, frame: &mut Frame, len: usize) -> Result<(), FrameError> {
        each!(self, q => q.set_len(frame, len))
    }
    fn maintain(&mut self) {
        each!(self, q => q.maintain())
    }
    fn counters(&self) -> Counters {
        each!(self, q => q.counters())
    }
    fn readiness(&mut self, interest: Interest) -> Interest {
        each!(self, q => q.readiness(interest))
    }
    fn arm(&mut self, interest: Interest) -> Armed {
        each!(self, q => q.arm(interest))
    }
    fn disarm(&mut self, slept: bool, woke: bool) {
        each!(self, q => q.disarm(slept, woke))
    }
}
