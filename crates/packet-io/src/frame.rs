//! Frame handles and batches.
//!
//! A [`Frame`] names one buffer of a queue's memory (the UMEM for AF_XDP, an
//! arena for the in-memory backend). It is move-only: holding it is what gives
//! the application the right to read and write the buffer, and handing it back
//! to its queue ([`PacketQueue::send`](crate::PacketQueue::send) or
//! [`PacketQueue::release`](crate::PacketQueue::release)) gives that right up.
//! The bytes are reached through the queue that owns the frame
//! ([`PacketQueue::frame`](crate::PacketQueue::frame)), which checks that the
//! frame is its own; a frame of another queue is a typed error, never a wrong
//! buffer.

use std::sync::atomic::{AtomicU32, Ordering};

/// Identifies the queue object that owns a buffer. Unique per process for the
/// life of the process (a 32-bit counter; one queue object per id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct OwnerId(u32);

impl OwnerId {
    /// A fresh identifier, never handed out before in this process.
    pub(crate) fn fresh() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        OwnerId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A received or allocated frame: the right to one buffer of one queue.
///
/// Not `Clone`: there is exactly one handle per buffer the application holds.
/// Dropping a handle instead of returning it to its queue leaks the buffer
/// until the queue itself is dropped (no memory is unsafe to touch either way).
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a frame leaks its buffer unless it is sent or released"]
pub struct Frame {
    index: u32,
    owner: OwnerId,
}

impl Frame {
    pub(crate) fn new(index: u32, owner: OwnerId) -> Self {
        Frame { index, owner }
    }

    /// The buffer index inside the owning queue's memory.
    pub(crate) fn index(&self) -> u32 {
        self.index
    }

    pub(crate) fn owner(&self) -> OwnerId {
        self.owner
    }
}

/// An ordered batch of frames with a fixed working size.
///
/// Allocated once (with [`FrameBatch::with_capacity`]) and reused for every
/// burst: [`recv`](crate::PacketQueue::recv) and
/// [`alloc`](crate::PacketQueue::alloc) append at most
/// [`spare`](FrameBatch::spare) frames, [`send`](crate::PacketQueue::send)
/// and [`release`](crate::PacketQueue::release) take frames from the front.
#[derive(Debug, Default)]
pub struct FrameBatch {
    frames: Vec<Frame>,
    limit: usize,
}

impl FrameBatch {
    /// An empty batch that receives and allocates up to `limit` frames.
    pub fn with_capacity(limit: usize) -> Self {
        FrameBatch {
            frames: Vec::with_capacity(limit),
            limit,
        }
    }

    /// The working size given at construction.
    pub fn capacity(&self) -> usize {
        self.limit
    }

    /// Number of frames in the batch.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// True when the batch holds no frame.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// How many more frames `recv` or `alloc` will append.
    pub fn spare(&self) -> usize {
        self.limit.saturating_sub(self.frames.len())
    }

    /// The frames, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Frame> {
        self.frames.iter()
    }

    /// The frames, in order, mutably (to edit their bytes through the queue).
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Frame> {
        self.frames.iter_mut()
    }

    /// The frames as a slice.
    pub fn as_slice(&self) -> &[Frame] {
        &self.frames
    }

    /// The frames as a mutable slice.
    pub fn as_mut_slice(&mut self) -> &mut [Frame] {
        &mut self.frames
    }

    /// Appends a frame. Past the working size the batch grows (allocates).
    pub fn push(&mut self, frame: Frame) {
        self.frames.push(frame);
    }

    /// Removes and returns the last frame.
    pub fn pop(&mut self) -> Option<Frame> {
        self.frames.pop()
    }

    /// Moves every frame of `other` to the end of this batch.
    pub fn append(&mut self, other: &mut FrameBatch) {
        self.frames.append(&mut other.frames);
    }

    /// Moves the frames from position `at` on to the end of `other`.
    pub fn split_off_into(&mut self, at: usize, other: &mut FrameBatch) {
        if at < self.frames.len() {
            other.frames.extend(self.frames.drain(at..));
        }
    }

    /// Keeps the frames for which `keep` returns true, in order, and moves the
    /// others to the end of `rejected` (in no particular order). Linear time.
    pub fn retain_into(&mut self, rejected: &mut FrameBatch, mut keep: impl FnMut(&Frame) -> bool) {
        let mut kept = 0;
        for i in 0..self.frames.len() {
            if keep(&self.frames[i]) {
                self.frames.swap(i, kept);
                kept += 1;
            }
        }
        rejected.frames.extend(self.frames.drain(kept..));
    }

    pub(crate) fn frames_mut(&mut self) -> &mut Vec<Frame> {
        &mut self.frames
    }
}

impl<'a> IntoIterator for &'a FrameBatch {
    type Item = &'a Frame;
    type IntoIter = std::slice::Iter<'a, Frame>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter()
    }
}

impl<'a> IntoIterator for &'a mut FrameBatch {
    type Item = &'a mut Frame;
    type IntoIter = std::slice::IterMut<'a, Frame>;
    fn into_iter(self) -> Self::IntoIter {
        self.frames.iter_mut()
    }
}
