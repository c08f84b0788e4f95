//! The ARP cache of one core (RFC 826), with entry timeouts, request
//! rate-limiting and a bounded queue of packets waiting for a resolution.
//!
//! Every core keeps its own cache (nothing shared); an ARP frame that one core
//! receives is also handed to the others through the forwarding queues, so
//! every cache learns the same mappings.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// Most entries a cache holds; past it, the entry expiring first is evicted.
pub const MAX_ENTRIES: usize = 4096;

/// How often a request for the same address is repeated while unresolved.
pub const REQUEST_INTERVAL: Duration = Duration::from_millis(500);

/// An entry in use this close to its expiry is refreshed with a new request
/// while it is still valid, so a busy flow never waits for a resolution.
pub const REFRESH_BEFORE: Duration = Duration::from_secs(5);

/// How long a packet waits for its next hop to be resolved before it is
/// dropped (the transport retransmits; RFC 1122 section 2.3.2.2 asks for at
/// least one queued packet per destination, and a bounded queue).
pub const PENDING_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug)]
struct Entry {
    mac: [u8; 6],
    expires: Instant,
}

/// A packet held until its next hop resolves: the complete frame with the
/// destination MAC left to fill.
#[derive(Debug)]
pub struct Pending {
    /// The next hop whose MAC the frame needs.
    pub next_hop: Ipv4Addr,
    /// The frame bytes (Ethernet header included).
    pub frame: Vec<u8>,
    queued: Instant,
}

/// Counters of one cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArpStats {
    /// Requests sent.
    pub requests_sent: u64,
    /// Replies sent (to requests for our address).
    pub replies_sent: u64,
    /// Packets queued while resolving.
    pub queued: u64,
    /// Packets dropped: queue full or resolution timed out.
    pub dropped: u64,
}

/// One core's neighbour table.
#[derive(Debug)]
pub struct ArpCache {
    entries: HashMap<Ipv4Addr, Entry>,
    /// Last request sent per unresolved address.
    asked: HashMap<Ipv4Addr, Instant>,
    pending: VecDeque<Pending>,
    /// Frame buffers of released pending packets, reused.
    spare: Vec<Vec<u8>>,
    max_pending: usize,
    timeout: Duration,
    stats: ArpStats,
}

impl ArpCache {
    /// A cache whose entries live `timeout` and which holds at most
    /// `max_pending` packets awaiting resolution.
    pub fn new(timeout: Duration, max_pending: usize) -> Self {
        ArpCache {
            entries: HashMap::with_capacity(64),
            asked: HashMap::new(),
            pending: VecDeque::with_capacity(max_pending),
            spare: Vec::new(),
            max_pending,
            timeout,
            stats: ArpStats::default(),
        }
    }

    /// The MAC of `ip` if known and fresh.
    pub fn lookup(&self, ip: Ipv4Addr, now: Instant) -> Option<[u8; 6]> {
        self.entries
            .get(&ip)
            .filter(|e| e.expires > now)
            .map(|e| e.mac)
    }

    /// [`lookup`](Self::lookup), also saying whether the entry is close
    /// enough to its expiry ([`REFRESH_BEFORE`]) to be refreshed.
    pub fn lookup_refresh(&self, ip: Ipv4Addr, now: Instant) -> Option<([u8; 6], bool)> {
        self.entries.get(&ip).filter(|e| e.expires > now).map(|e| {
            (
                e.mac,
                e.expires.saturating_duration_since(now) < REFRESH_BEFORE,
            )
        })
    }

    /// RFC 826's "merge" step for a packet that concerns us: updates a known
    /// entry, and adds a new one only while there is room or when we asked
    /// for that address. A full cache never evicts (nor scans) for an
    /// unsolicited sender, so a flood of spoofed requests costs O(1) each
    /// and cannot push out the entries in use.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: [u8; 6], now: Instant) {
        if self.entries.len() < MAX_ENTRIES
            || self.entries.contains_key(&ip)
            || self.asked.contains_key(&ip)
        {
            self.insert(ip, mac, now);
        }
    }

    /// Records `ip` at `mac`, evicting the entry nearest expiry when the
    /// cache is full (a reply we asked for must be kept).
    pub fn insert(&mut self, ip: Ipv4Addr, mac: [u8; 6], now: Instant) {
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&ip) {
            self.entries.retain(|_, e| e.expires > now);
            if self.entries.len() >= MAX_ENTRIES {
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.expires)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        self.entries.insert(
            ip,
            Entry {
                mac,
                expires: now + self.timeout,
            },
        );
        self.asked.remove(&ip);
    }

    /// True when a request for `ip` should go out now (none sent in the
    /// last [`REQUEST_INTERVAL`]); records it as sent.
    pub fn should_request(&mut self, ip: Ipv4Addr, now: Instant) -> bool {
        match self.asked.get(&ip) {
            Some(&t) if now.duration_since(t) < REQUEST_INTERVAL => false,
            _ => {
                if self.asked.len() >= MAX_ENTRIES {
                    self.asked.clear();
                }
                self.asked.insert(ip, now);
                self.stats.requests_sent += 1;
                true
            }
        }
    }

    /// Queues a copy of `frame` until `next_hop` resolves; false (and
    /// counted as dropped) when the queue is full.
    pub fn hold(&mut self, next_hop: Ipv4Addr, frame: &[u8], now: Instant) -> bool {
        if self.pending.len() >= self.max_pending {
            self.stats.dropped += 1;
            return false;
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(frame);
        self.pending.push_back(Pending {
            next_hop,
            frame: buf,
            queued: now,
        });
        self.stats.queued += 1;
        true
    }

    /// Moves the packets waiting for `ip` to `out`, oldest first.
    pub fn take_resolved(&mut self, ip: Ipv4Addr, out: &mut Vec<Pending>) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].next_hop == ip {
                if let Some(p) = self.pending.remove(i) {
                    out.push(p);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Gives a frame buffer back for reuse.
    pub fn recycle(&mut self, p: Pending) {
        if self.spare.len() < self.max_pending {
            self.spare.push(p.frame);
        }
    }

    /// Drops packets that waited longer than [`PENDING_TIMEOUT`]; returns
    /// the addresses still unresolved that want another request.
    pub fn expire(&mut self, now: Instant) {
        while let Some(p) = self.pending.front() {
            if now.duration_since(p.queued) < PENDING_TIMEOUT {
                break;
            }
            if let Some(p) = self.pending.pop_front() {
                self.stats.dropped += 1;
                self.recycle(p);
            }
        }
    }

    /// Addresses with packets waiting (to repeat requests for).
    pub fn waiting(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        self.pending.iter().map(|p| p.next_hop)
    }

    /// Packets waiting.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Counts a reply sent.
    pub fn count_reply(&mut self) {
        self.stats.replies_sent += 1;
    }

    /// Counters.
    pub fn stats(&self) -> ArpStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn entries_expire() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(Duration::from_secs(10), 4);
        assert_eq!(c.lookup(IP, t0), None);
        c.insert(IP, MAC, t0);
        assert_eq!(c.lookup(IP, t0 + Duration::from_secs(9)), Some(MAC));
        assert_eq!(c.lookup(IP, t0 + Duration::from_secs(10)), None);
    }

    #[test]
    fn entries_near_expiry_ask_for_a_refresh() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(Duration::from_secs(60), 4);
        c.insert(IP, MAC, t0);
        assert_eq!(c.lookup_refresh(IP, t0), Some((MAC, false)));
        assert_eq!(
            c.lookup_refresh(IP, t0 + Duration::from_secs(56)),
            Some((MAC, true))
        );
        // A reply renews it.
        c.insert(IP, MAC, t0 + Duration::from_secs(56));
        assert_eq!(
            c.lookup_refresh(IP, t0 + Duration::from_secs(57)),
            Some((MAC, false))
        );
    }

    #[test]
    fn requests_are_rate_limited() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(Duration::from_secs(10), 4);
        assert!(c.should_request(IP, t0));
        assert!(!c.should_request(IP, t0 + REQUEST_INTERVAL / 2));
        assert!(c.should_request(IP, t0 + REQUEST_INTERVAL));
        assert_eq!(c.stats().requests_sent, 2);
    }

    #[test]
    fn pending_queue_is_bounded_and_flushes_per_address() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(Duration::from_secs(10), 2);
        let other = Ipv4Addr::new(10, 0, 0, 3);
        assert!(c.hold(IP, b"one", t0));
        assert!(c.hold(other, b"two", t0));
        assert!(!c.hold(IP, b"three", t0), "third packet exceeds the bound");
        assert_eq!(c.stats().dropped, 1);
        let mut out = Vec::new();
        c.take_resolved(IP, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].frame, b"one");
        assert_eq!(c.pending_len(), 1);
        c.expire(t0 + PENDING_TIMEOUT);
        assert_eq!(c.pending_len(), 0);
        assert_eq!(c.stats().dropped, 2);
    }

    #[test]
    fn unsolicited_senders_never_evict_from_a_full_cache() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(Duration::from_secs(10), 2);
        for i in 0..MAX_ENTRIES as u32 {
            c.learn(Ipv4Addr::from(0x0a00_0000 + i), MAC, t0);
        }
        assert_eq!(c.entries.len(), MAX_ENTRIES);
        let stranger = Ipv4Addr::from(0x0b00_0001);
        c.learn(stranger, MAC, t0);
        assert_eq!(
            c.lookup(stranger, t0),
            None,
            "a full cache learns no stranger"
        );
        assert_eq!(c.lookup(Ipv4Addr::from(0x0a00_0000), t0), Some(MAC));
        // A known sender is still updated, and an address we asked for is learnt.
        c.learn(Ipv4Addr::from(0x0a00_0000), [2, 0, 0, 0, 0, 9], t0);
        assert_eq!(
            c.lookup(Ipv4Addr::from(0x0a00_0000), t0),
            Some([2, 0, 0, 0, 0, 9])
        );
        assert!(c.should_request(stranger, t0));
        c.learn(stranger, MAC, t0);
        assert_eq!(c.lookup(stranger, t0), Some(MAC));
        assert!(c.entries.len() <= MAX_ENTRIES);
    }

    #[test]
    fn cache_size_is_bounded() {
        let t0 = Instant::now();
        let mut c = ArpCache::new(Duration::from_secs(10), 2);
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            c.insert(Ipv4Addr::from(0x0a00_0000 + i), MAC, t0);
        }
        assert!(c.entries.len() <= MAX_ENTRIES);
    }
}
