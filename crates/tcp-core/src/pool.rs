//! A per-endpoint free list of data-buffer storage.
//!
//! Buffers allocate their storage lazily and grow it on demand
//! ([`crate::buffer`]), so a connection that moves little data allocates
//! little. Storage of released connections is kept here and handed to new
//! ones as is (a new buffer starts on it and grows from there if needed):
//! the ring buffers never expose bytes that were not written by the
//! connection that owns them, so the old contents need no clearing. The list
//! is bounded; beyond it storage is freed.

use crate::buffer::{RecvBuffer, SendBuffer};

/// Free storage for send and receive buffers.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    send: Vec<Box<[u8]>>,
    recv: Vec<Box<[u8]>>,
    max: usize,
}

impl BufferPool {
    /// A pool keeping at most `max` free buffers of each kind.
    pub fn new(max: usize) -> Self {
        BufferPool {
            send: Vec::new(),
            recv: Vec::new(),
            max,
        }
    }

    /// A send buffer of `capacity` bytes, reused when possible.
    pub fn send_buf(&mut self, capacity: usize) -> SendBuffer {
        match self.send.pop() {
            Some(s) => SendBuffer::with_storage(s, capacity),
            None => SendBuffer::new(capacity),
        }
    }

    /// A receive buffer of `capacity` bytes, reused when possible.
    pub fn recv_buf(&mut self, capacity: usize) -> RecvBuffer {
        match self.recv.pop() {
            Some(s) => RecvBuffer::with_storage(s, capacity),
            None => RecvBuffer::new(capacity),
        }
    }

    /// Take back a send buffer's storage.
    pub fn put_send(&mut self, buf: SendBuffer) {
        let s = buf.into_storage();
        if !s.is_empty() && self.send.len() < self.max {
            self.send.push(s);
        }
    }

    /// Take back a receive buffer's storage.
    pub fn put_recv(&mut self, buf: RecvBuffer) {
        let s = buf.into_storage();
        if !s.is_empty() && self.recv.len() < self.max {
            self.recv.push(s);
        }
    }
}
