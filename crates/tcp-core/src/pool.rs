//! Per-endpoint buffer accounting and a free list of data-buffer storage.
//!
//! Buffers allocate their storage lazily and grow it on demand
//! ([`crate::buffer`]), so a connection that moves little data allocates
//! little. Two bounds come from the configuration:
//!
//! * The **budget** ([`Config::buffer_budget`](crate::Config::buffer_budget)):
//!   every connection reserves its full send plus receive buffer sizes
//!   when it is created and gives them back when its buffers are released.
//!   Storage never exceeds a buffer's capacity, so the storage of live
//!   buffers never exceeds the budget. A connection whose reservation does
//!   not fit is refused ([`BufferPool::reserve`] returns `false`).
//! * The **cache** ([`Config::buffer_cache_bytes`](crate::Config::buffer_cache_bytes)):
//!   storage of released connections is kept here and handed to new ones
//!   as is (a new buffer starts on it and grows from there if needed). The
//!   ring buffers never expose bytes that were not written by the
//!   connection that owns them, so the old contents need no clearing. The
//!   list is bounded in bytes per kind and in entries (the bytes over
//!   [`MIN_STORAGE`]); beyond that storage is freed.

use crate::buffer::{RecvBuffer, SendBuffer, MIN_STORAGE};
use crate::config::Config;

/// Bytes a connection with buffers of `send` and `recv` bytes reserves
/// (each size as the connection stores it, at most `u32::MAX`).
pub(crate) fn reservation(send: usize, recv: usize) -> usize {
    let cap = |v: usize| v.min(u32::MAX as usize);
    cap(send).saturating_add(cap(recv))
}

/// Sizes and use of an endpoint's per-core pools
/// ([`Endpoint::pool_info`](crate::Endpoint::pool_info)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolInfo {
    /// Socket slots (connections and listeners) the slot table holds
    /// without growing.
    pub slot_capacity: usize,
    /// Connections held now.
    pub connections: usize,
    /// Most connections ([`Config::max_connections`](crate::Config::max_connections)).
    pub max_connections: usize,
    /// Bytes of buffer reserved by live connections.
    pub buffer_reserved: usize,
    /// The buffer budget ([`Config::buffer_budget`](crate::Config::buffer_budget)).
    pub buffer_budget: usize,
    /// Bytes of released send-buffer storage kept for reuse.
    pub cached_send_bytes: usize,
    /// Bytes of released receive-buffer storage kept for reuse.
    pub cached_recv_bytes: usize,
    /// Most bytes kept per kind
    /// ([`Config::buffer_cache_bytes`](crate::Config::buffer_cache_bytes)).
    pub cache_limit: usize,
}

/// Free storage for send and receive buffers, and the buffer budget.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    send: Vec<Box<[u8]>>,
    recv: Vec<Box<[u8]>>,
    /// Bytes held in `send` and in `recv`.
    send_bytes: usize,
    recv_bytes: usize,
    /// Most entries per list.
    max_entries: usize,
    /// Most bytes per list.
    max_bytes: usize,
    /// Bytes reserved by live connections, and the most that may be.
    reserved: usize,
    budget: usize,
}

impl BufferPool {
    /// A pool sized by `cfg`: its buffer budget and cache size; with
    /// [`Config::prealloc_connections`] the free lists' own storage is
    /// allocated up front too.
    pub fn new(cfg: &Config) -> Self {
        let mut p = BufferPool::default();
        p.configure(cfg);
        p
    }

    /// Applies `cfg`'s sizes (a smaller cache frees nothing at once: the
    /// lists shrink as they are used; reservations already made stay).
    pub fn configure(&mut self, cfg: &Config) {
        self.max_bytes = cfg.buffer_cache_bytes;
        self.max_entries = cfg.buffer_cache_bytes / MIN_STORAGE;
        self.budget = cfg.buffer_budget;
        let want = self.max_entries.min(cfg.prealloc_connections);
        for list in [&mut self.send, &mut self.recv] {
            list.reserve(want.saturating_sub(list.len()));
        }
    }

    /// Reserves `bytes` of the budget for a new connection; `false` (and
    /// nothing reserved) when they do not fit.
    #[must_use]
    pub fn reserve(&mut self, bytes: usize) -> bool {
        match self.reserved.checked_add(bytes) {
            Some(total) if total <= self.budget => {
                self.reserved = total;
                true
            }
            _ => false,
        }
    }

    /// Gives back a reservation made with [`reserve`](Self::reserve).
    pub fn unreserve(&mut self, bytes: usize) {
        self.reserved = self.reserved.saturating_sub(bytes);
    }

    /// Fills the pool's part of `info`.
    pub fn fill_info(&self, info: &mut PoolInfo) {
        info.buffer_reserved = self.reserved;
        info.buffer_budget = self.budget;
        info.cached_send_bytes = self.send_bytes;
        info.cached_recv_bytes = self.recv_bytes;
        info.cache_limit = self.max_bytes;
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
            && self.send.len() < self.max_entries
            && self.send_bytes + s.len() <= self.max_bytes
        {
            self.send_bytes += s.len();
            self.send.push(s);
        }
    }

    /// Take back a receive buffer's storage.
    pub fn put_recv(&mut self, buf: RecvBuffer) {
        let s = buf.into_storage();
        if !s.is_empty()
            && self.recv.len() < self.max_entries
            && self.recv_bytes + s.len() <= self.max_bytes
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
        let mut p = BufferPool::new(&Config {
            buffer_cache_bytes: 3 * MIN_STORAGE,
            ..Config::default()
        });
        // Empty storage (a buffer that never held data) is not kept.
        p.put_send(SendBuffer::new(100));
        assert!(p.send.is_empty());
        for _ in 0..5 {
            let mut b = SendBuffer::new(4096);
            b.write(&[1; 700]);
            p.put_send(b);
        }
        // The entry bound (3 KiB / MIN_STORAGE) comes before the byte bound.
        assert_eq!((p.send.len(), p.send_bytes), (3, 3 * 1024));
        // Reused storage keeps its size; the capacity is the new one.
        let b = p.send_buf(8192);
        assert_eq!((b.allocated(), b.capacity(), b.len()), (1024, 8192, 0));
        assert_eq!(p.send_bytes, 2 * 1024);
        // The byte bound.
        let cache = 1 << 20;
        let mut p = BufferPool::new(&Config {
            buffer_cache_bytes: cache,
            ..Config::default()
        });
        let big = cache / 2 + 1;
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

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn reservations_stay_within_the_budget() {
        let mut p = BufferPool::new(&Config {
            buffer_budget: 10,
            ..Config::default()
        });
        assert!(p.reserve(4));
        assert!(p.reserve(6));
        assert!(!p.reserve(1), "the budget is full");
        p.unreserve(6);
        assert!(!p.reserve(7));
        assert!(p.reserve(6));
        // An overflowing request is refused, not wrapped.
        assert!(!p.reserve(usize::MAX));
        let mut info = PoolInfo::default();
        p.fill_info(&mut info);
        assert_eq!((info.buffer_reserved, info.buffer_budget), (10, 10));
        assert_eq!(reservation(usize::MAX, 1), u32::MAX as usize + 1);
    }

    #[test]
    fn prealloc_reserves_the_free_lists() {
        let p = BufferPool::new(&Config {
            prealloc_connections: 100,
            ..Config::default()
        });
        assert!(p.send.capacity() >= 100 && p.recv.capacity() >= 100);
        let p = BufferPool::new(&Config::default());
        assert_eq!(p.send.capacity(), 0);
    }
}
