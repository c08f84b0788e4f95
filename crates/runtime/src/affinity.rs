//! Flow affinity: which core owns a flow, and the per-pair queues that carry
//! frames received by the wrong core to the owner.
//!
//! The rule is deterministic and computed from the segment alone, so every
//! core agrees without sharing state:
//!
//! * a flow whose local port lies in a core's slice of the ephemeral range
//!   ([`crate::config::ephemeral_slice`]) belongs to that core: `connect`
//!   on a core picks a port from its own slice, so replies to the
//!   connections a core opens come back to it;
//! * any other flow (passive opens to a listening port) belongs to the core
//!   `hash(remote address, remote port, local port) % cores`. Every core's
//!   application listens on the port, as with mTCP, and each accepts the
//!   flows it owns.
//!
//! The NIC (RSS; on veth, the sender's transmit queue) decides which queue
//! a frame arrives on; a frame that lands on a core that does not own its
//! flow is copied into a buffer of the [`ForwardLink`] from that core to the
//! owner, a lock-free single-producer single-consumer queue. Buffers come
//! back through a second queue, so nothing is allocated per frame once the
//! pool is warm.

use crate::config::{ephemeral_slice, EPHEMERAL_PORTS};
use crossbeam_queue::ArrayQueue;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The ownership rule for `cores` cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowAffinity {
    cores: usize,
}

impl FlowAffinity {
    /// The rule for `cores` cores (at least one).
    pub fn new(cores: usize) -> Self {
        FlowAffinity {
            cores: cores.max(1),
        }
    }

    /// Number of cores.
    pub fn cores(&self) -> usize {
        self.cores
    }

    /// The core owning the flow between our `local_port` and
    /// `remote_ip:remote_port`.
    pub fn owner(&self, local_port: u16, remote_ip: Ipv4Addr, remote_port: u16) -> usize {
        if self.cores == 1 {
            return 0;
        }
        if let Some(core) = self.ephemeral_owner(local_port) {
            return core;
        }
        let mut h = u64::from(u32::from(remote_ip));
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(remote_port);
        h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(local_port);
        h = (h ^ (h >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 32;
        (h % self.cores as u64) as usize
    }

    /// The core whose ephemeral slice holds `port`, if any: the inverse of
    /// [`ephemeral_slice`], computed rather than searched (it runs per segment).
    pub fn ephemeral_owner(&self, port: u16) -> Option<usize> {
        if !EPHEMERAL_PORTS.contains(&port) {
            return None;
        }
        // Every slice but the last is `per` ports wide; the last takes the rest.
        let first = ephemeral_slice(0, self.cores);
        let per = usize::from(first.end() - first.start()) + 1;
        let core = usize::from(port - EPHEMERAL_PORTS.start()) / per;
        Some(core.min(self.cores - 1))
    }
}

/// Counters of one forwarding link.
#[derive(Debug, Default)]
pub struct LinkCounters {
    /// Frames handed over.
    pub forwarded: AtomicU64,
    /// Frames dropped because the link was full.
    pub dropped: AtomicU64,
}

/// One direction between two cores: frames (copies) and the buffers coming back.
#[derive(Debug)]
pub struct ForwardLink {
    frames: ArrayQueue<Vec<u8>>,
    spare: ArrayQueue<Vec<u8>>,
    /// Counters.
    pub counters: LinkCounters,
}

impl ForwardLink {
    /// A link holding up to `capacity` frames.
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(ForwardLink {
            frames: ArrayQueue::new(capacity.max(1)),
            spare: ArrayQueue::new(capacity.max(1)),
            counters: LinkCounters::default(),
        })
    }

    /// Producer side: copies `frame` into a buffer and queues it. False
    /// (counted as a drop) when the link is full.
    pub fn push(&self, frame: &[u8]) -> bool {
        let mut buf = self.spare.pop().unwrap_or_else(|| Vec::with_capacity(2048));
        buf.clear();
        buf.extend_from_slice(frame);
        match self.frames.push(buf) {
            Ok(()) => {
                self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(buf) => {
                let _ = self.spare.push(buf);
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Consumer side: the oldest queued frame.
    pub fn pop(&self) -> Option<Vec<u8>> {
        self.frames.pop()
    }

    /// Consumer side: gives a buffer back to the producer.
    pub fn recycle(&self, buf: Vec<u8>) {
        let _ = self.spare.push(buf);
    }

    /// True when no frame is queued.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_we_open_come_back_to_their_core() {
        for cores in 1..=4 {
            let a = FlowAffinity::new(cores);
            for c in 0..cores {
                let r = ephemeral_slice(c, cores);
                for port in [*r.start(), *r.end()] {
                    assert_eq!(a.owner(port, Ipv4Addr::new(10, 0, 0, 2), 80), c);
                }
            }
        }
    }

    #[test]
    fn ephemeral_owner_is_the_slice_that_holds_the_port() {
        for cores in [1, 2, 3, 7, 32] {
            let a = FlowAffinity::new(cores);
            for port in 0..=u16::MAX {
                let searched = (0..cores).find(|&c| ephemeral_slice(c, cores).contains(&port));
                assert_eq!(
                    a.ephemeral_owner(port),
                    searched,
                    "port {port}, {cores} cores"
                );
            }
        }
    }

    #[test]
    fn passive_flows_spread_over_cores() {
        let a = FlowAffinity::new(2);
        let mut per_core = [0usize; 2];
        for port in 40_000..41_000u16 {
            let o = a.owner(8080, Ipv4Addr::new(10, 0, 0, 2), port);
            assert_eq!(o, a.owner(8080, Ipv4Addr::new(10, 0, 0, 2), port));
            per_core[o] += 1;
        }
        assert!(per_core.iter().all(|&n| n > 300), "{per_core:?}");
    }

    #[test]
    fn link_is_bounded_and_recycles_buffers() {
        let l = ForwardLink::new(2);
        assert!(l.push(b"a"));
        assert!(l.push(b"b"));
        assert!(!l.push(b"c"));
        assert_eq!(l.counters.dropped.load(Ordering::Relaxed), 1);
        let f = l.pop().unwrap();
        assert_eq!(f, b"a");
        l.recycle(f);
        assert!(l.push(b"d"));
        assert_eq!(l.pop().unwrap(), b"b");
        assert_eq!(l.pop().unwrap(), b"d");
        assert!(l.is_empty());
    }
}
