//! A per-endpoint free list of data-buffer storage.
//!
//! Buffers allocate their storage lazily and grow it on demand
//! ([`crate::buffer`]), so a connection that moves little data allocates
//! little. Storage of released connections is kept here and handed to new
//! ones as is (a new buffer starts on it and grows from there if needed):
//! the ring buffers never expose bytes that were not written by the
//! connection that owns them, so the old contents need no clearing. The list
//! is bounded both in entries and in bytes ([`MAX_POOL_BYTES`] per kind);
//! beyond that storage is freed.

use crate::buffer::{RecvBuffer, SendBuffer};

/// Most bytes of free storage kept per kind (send, receive): bounds the
/// memory a burst of closed connections leaves behind.
pub(crate) const MAX_POOL_BYTES: usize = 8 << 20;

/// Free storage for send and receive buffers.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    send: Vec<Box<[u8]>>,
    recv: Vec<Box<[u8]>>,
    /// Bytes held in `send` and in `recv`.
    send_bytes: usize,
    recv_bytes: usize,
    max: usize,
}

impl BufferPool {
    /// A pool keeping at most `max` free buffers of each kind.
    pub fn new(max: usize) -> Self {
        BufferPool {
            send: Vec::new(),
            recv: Vec::new(),
            send_bytes: 0,
            recv_bytes: 0,
            max,
        }
    }

    /// A send buffer of `capacity` bytes, reused when possible.
    pub fn send_buf(&mut self, capacity: usize) -> SendBuffer {
        match self.send.pop() {
            Some(s) => {
                self.send_bytes -= s.len();
                SendBuffer::with_storage(s, capacity)
            }
            None => SendBuffer::new(capacity),
        }
    }

    /// A receive buffer of `capacity` bytes, reused when possible.
    pub fn recv_buf(&mut self, capacity: usize) -> RecvBuffer {
        match self.recv.pop() {
            Some(s) => {
                self.recv_bytes -= s.len();
                RecvBuffer::with_storage(s, capacity)
            }
            None => RecvBuffer::new(capacity),
        }
    }

    /// Take back a send buffer's storage.
    pub fn put_send(&mut self, buf: SendBuffer) {
        let s = buf.into_storage();
        if !s.is_empty()
            && self.send.len() < self.max
            && self.send_bytes + s.len() <= MAX_POOL_BYTES
        {
            self.send_bytes += s.len();
            self.send.push(s);
        }
    }

    /// Take back a receive buffer's storage.
    pub fn put_recv(&mut self, buf: RecvBuffer) {
        let s = buf.into_storage();
        if !s.is_empty()
            && self.recv.len() < self.max
            && self.recv_bytes + s.len() <= MAX_POOL_BYTES
        {
            self.recv_bytes += s.len();
            self.recv.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_is_bounded_by_entries_and_bytes() {
        let mut p = BufferPool::new(3);
        // Empty storage (a buffer that never held data) is not kept.
        p.put_send(SendBuffer::new(100));
        assert!(p.send.is_empty());
        for _ in 0..5 {
            let mut b = SendBuffer::new(4096);
            b.write(&[1; 2000]);
            p.put_send(b);
        }
        assert_eq!((p.send.len(), p.send_bytes), (3, 3 * 2000));
        // Reused storage keeps its size; the capacity is the new one.
        let b = p.send_buf(8192);
        assert_eq!((b.allocated(), b.capacity(), b.len()), (2000, 8192, 0));
        assert_eq!(p.send_bytes, 2 * 2000);
        // The byte bound.
        let mut p = BufferPool::new(usize::MAX);
        let big = MAX_POOL_BYTES / 2 + 1;
        for _ in 0..2 {
            let mut b = RecvBuffer::new(big);
            b.write_at(big - 1, &[1]);
            p.put_recv(b);
        }
        assert_eq!((p.recv.len(), p.recv_bytes), (1, big));
        assert_eq!(p.recv_buf(big).allocated(), big);
        assert_eq!(p.recv_bytes, 0);
    }
}
