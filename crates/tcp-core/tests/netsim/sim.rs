//! A deterministic simulated network for tcp-core: two endpoints, a virtual
//! clock, a seeded generator and a link model with loss, duplication,
//! reordering, delay with jitter, corruption and a bandwidth limit, in both
//! directions (the s2n-quic "I/O model" and smoltcp `netsim` idea).
//!
//! Everything is driven by one loop (`Sim::step`): the applications act, each
//! endpoint's output is drained onto its outgoing link, the clock jumps to the
//! next packet arrival or timer deadline, and everything due is delivered. A
//! segment arriving on a link is parsed with checksum verification, as a
//! driver would; corrupted segments must fail that check and are dropped.
//!
//! Shared by `netsim.rs`, `fuzz_input.rs` and `proptest_sm.rs` (each includes
//! it with `#[path]`), so not every item is used by every test crate.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, SocketAddrV4};

use core::time::Duration;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tcp_core::{Config, Endpoint, Instant};
use wire::TcpRepr;

/// Address of host 0.
pub const IP_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// Address of host 1.
pub const IP_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

/// Behaviour of one direction of the link.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet is delivered twice.
    pub dup: f64,
    /// Probability that a packet is held back by up to `reorder_extra`.
    pub reorder: f64,
    /// Most extra delay of a reordered packet.
    pub reorder_extra: Duration,
    /// Probability that a delivered copy has one byte flipped.
    pub corrupt: f64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Uniform random extra delay in `0..=jitter` (itself reorders a little).
    pub jitter: Duration,
    /// Bottleneck rate in bits per second (0: unlimited).
    pub bandwidth_bps: u64,
    /// Most queueing delay at the bottleneck before tail drop.
    pub max_queue: Duration,
}

impl LinkConfig {
    /// A perfect 5 ms link with no loss, no reordering and unlimited rate.
    pub fn ideal() -> LinkConfig {
        LinkConfig {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            reorder_extra: Duration::ZERO,
            corrupt: 0.0,
            delay: Duration::from_millis(5),
            jitter: Duration::ZERO,
            bandwidth_bps: 0,
            max_queue: Duration::from_secs(1),
        }
    }

    /// The lossy link of the loss sweep: `loss` plus 2% duplication, 5%
    /// reordering, 0.5% corruption, 5 ms +- 1 ms, 100 Mbit/s, 50 ms queue.
    pub fn lossy(loss: f64) -> LinkConfig {
        LinkConfig {
            loss,
            dup: 0.02,
            reorder: 0.05,
            reorder_extra: Duration::from_millis(8),
            corrupt: 0.005,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(1),
            bandwidth_bps: 100_000_000,
            max_queue: Duration::from_millis(50),
        }
    }
}

/// A packet on the wire: the TCP segment bytes and its IP addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Packet {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// The TCP segment (header, options, payload, checksum).
    pub bytes: Vec<u8>,
    /// The link flipped a byte of it.
    pub corrupted: bool,
}

/// Counters of one link direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkStats {
    /// Packets handed to the link.
    pub sent: u64,
    /// Packets lost at random.
    pub lost: u64,
    /// Packets tail-dropped at the bottleneck.
    pub queue_drops: u64,
    /// Extra copies made.
    pub duplicated: u64,
    /// Copies given a flipped byte.
    pub corrupted: u64,
    /// Corrupted copies that reached the receiver.
    pub corrupted_delivered: u64,
    /// Copies held back for reordering.
    pub reordered: u64,
    /// Copies delivered.
    pub delivered: u64,
    /// Delivered copies the receiver's parser rejected.
    pub rejected: u64,
}

/// One direction of the link.
#[derive(Debug)]
pub struct Link {
    /// Its behaviour (may be changed between steps).
    pub cfg: LinkConfig,
    queue: BinaryHeap<Reverse<(Instant, u64, Packet)>>,
    busy_until: Instant,
    counter: u64,
    /// Counters.
    pub stats: LinkStats,
}

impl Link {
    /// An empty link.
    pub fn new(cfg: LinkConfig) -> Link {
        Link {
            cfg,
            queue: BinaryHeap::new(),
            busy_until: Instant::ZERO,
            counter: 0,
            stats: LinkStats::default(),
        }
    }

    /// Put a packet on the link at `now`.
    pub fn push(&mut self, now: Instant, mut pkt: Packet, rng: &mut impl Rng) {
        self.stats.sent += 1;
        let cfg = self.cfg;
        if cfg.loss > 0.0 && rng.gen_bool(cfg.loss) {
            self.stats.lost += 1;
            return;
        }
        // Bandwidth: the bottleneck serialises packets one after another.
        let start = self.busy_until.max(now);
        if start.saturating_duration_since(now) > cfg.max_queue {
            self.stats.queue_drops += 1;
            return;
        }
        // IP header included in what the wire carries; 0 bit/s: no limit.
        let bits = (pkt.bytes.len() as u64 + 20) * 8;
        let tx = Duration::from_nanos(
            (bits * 1_000_000_000)
                .checked_div(cfg.bandwidth_bps)
                .unwrap_or(0),
        );
        self.busy_until = start + tx;
        let mut arrival = self.busy_until + cfg.delay + random_up_to(rng, cfg.jitter);
        if cfg.reorder > 0.0 && rng.gen_bool(cfg.reorder) {
            self.stats.reordered += 1;
            arrival += random_up_to(rng, cfg.reorder_extra);
        }
        if cfg.dup > 0.0 && rng.gen_bool(cfg.dup) {
            self.stats.duplicated += 1;
            let mut copy = pkt.clone();
            self.maybe_corrupt(&mut copy, rng);
            let later = arrival + random_up_to(rng, cfg.delay);
            self.enqueue(later, copy);
        }
        self.maybe_corrupt(&mut pkt, rng);
        self.enqueue(arrival, pkt);
    }

    fn maybe_corrupt(&mut self, pkt: &mut Packet, rng: &mut impl Rng) {
        if self.cfg.corrupt > 0.0 && !pkt.bytes.is_empty() && rng.gen_bool(self.cfg.corrupt) {
            // One byte changed by a non-zero XOR: a one's-complement sum
            // always detects a change confined to one byte (it moves the sum
            // by a non-zero multiple of 0x01 or 0x100 smaller than 0xffff).
            let i = rng.gen_range(0..pkt.bytes.len());
            let x: u8 = rng.gen_range(1..=255);
            pkt.bytes[i] ^= x;
            pkt.corrupted = true;
            self.stats.corrupted += 1;
        }
    }

    fn enqueue(&mut self, at: Instant, pkt: Packet) {
        self.counter += 1;
        self.queue.push(Reverse((at, self.counter, pkt)));
    }

    /// Arrival time of the next packet.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Take the next packet due at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<Packet> {
        if self.next_arrival()? <= now {
            self.stats.delivered += 1;
            let p = self.queue.pop().map(|Reverse((_, _, p))| p)?;
            self.stats.corrupted_delivered += u64::from(p.corrupted);
            Some(p)
        } else {
            None
        }
    }

    /// Packets in flight.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// Drop everything in flight.
    pub fn clear(&mut self) {
        self.queue.clear();
    }
}

fn random_up_to(rng: &mut impl Rng, max: Duration) -> Duration {
    let us = max.as_micros() as u64;
    if us == 0 {
        Duration::ZERO
    } else {
        Duration::from_micros(rng.gen_range(0..=us))
    }
}

/// Two endpoints, their addresses and the two link directions.
pub struct Sim {
    /// The virtual clock.
    pub now: Instant,
    /// The link's generator (the endpoints have their own).
    pub rng: ChaCha8Rng,
    /// Host 0 (`IP_A`) and host 1 (`IP_B`).
    pub eps: [Endpoint; 2],
    /// Addresses of the hosts.
    pub ips: [Ipv4Addr; 2],
    /// `links[i]` carries what host `i` sends.
    pub links: [Link; 2],
    /// Segments handed to each endpoint.
    pub delivered_to: [u64; 2],
    /// Drop this many of the next segments sent (RSTs excepted: they are
    /// never retransmitted, so losing one changes the outcome, not only the
    /// timing).
    pub drop_next: u32,
    buf: Vec<u8>,
}

impl Sim {
    /// A simulation of two endpoints configured with `cfgs` over links
    /// configured with `link` (both directions), seeded with `seed`.
    pub fn new(seed: u64, cfgs: [Config; 2], link: LinkConfig) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let [mut c0, mut c1] = cfgs;
        rng.fill_bytes(&mut c0.isn_secret);
        rng.fill_bytes(&mut c1.isn_secret);
        let e0 = Endpoint::new(c0, ChaCha8Rng::seed_from_u64(rng.next_u64()));
        let e1 = Endpoint::new(c1, ChaCha8Rng::seed_from_u64(rng.next_u64()));
        Sim {
            now: Instant::from_secs(1),
            rng,
            eps: [e0, e1],
            ips: [IP_A, IP_B],
            links: [Link::new(link), Link::new(link)],
            delivered_to: [0, 0],
            drop_next: 0,
            buf: vec![0; 65_536 + 120],
        }
    }

    /// The socket address of host `i` at `port`.
    pub fn addr(&self, i: usize, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.ips[i], port)
    }

    /// Drain both endpoints' output onto their links.
    pub fn flush(&mut self) {
        for i in 0..2 {
            while let Some(t) = self.eps[i].poll_transmit(self.now, &mut self.buf) {
                assert_eq!(t.src, self.ips[i], "segment from a foreign address");
                assert_eq!(t.dst, self.ips[1 - i], "segment to an unknown address");
                let rst = t.len > 13 && self.buf[13] & 0x04 != 0;
                if self.drop_next > 0 && !rst {
                    self.drop_next -= 1;
                    continue;
                }
                let pkt = Packet {
                    src: t.src,
                    dst: t.dst,
                    bytes: self.buf[..t.len].to_vec(),
                    corrupted: false,
                };
                self.links[i].push(self.now, pkt, &mut self.rng);
            }
        }
    }

    /// The next instant something happens (packet arrival or endpoint
    /// timer), strictly after `now`; `None` when nothing is pending.
    pub fn next_event(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| {
            // Wheel deadlines are lower bounds rounded to its tick: never let
            // the clock stand still.
            let t = t.max(self.now + Duration::from_micros(1));
            next = Some(next.map_or(t, |n: Instant| n.min(t)));
        };
        for l in &self.links {
            if let Some(t) = l.next_arrival() {
                consider(t);
            }
        }
        for e in &self.eps {
            if let Some(t) = e.poll_timeout() {
                consider(t);
            }
        }
        next
    }

    /// Move the clock to `to` (not backwards), deliver every packet due and
    /// run the endpoints' timers.
    pub fn advance_to(&mut self, to: Instant) {
        if to > self.now {
            self.now = to;
        }
        for i in 0..2 {
            let dst = 1 - i;
            while let Some(pkt) = self.links[i].pop_due(self.now) {
                match TcpRepr::parse_bytes(&pkt.bytes, pkt.src, pkt.dst, true) {
                    Ok(seg) => {
                        assert!(
                            !pkt.corrupted,
                            "a corrupted segment passed the checksum: {seg:?}"
                        );
                        // MUST-65: MSS (and the other SYN-only options,
                        // RFC 7323 section 2.2, RFC 2018 section 2) only on SYNs.
                        assert!(
                            seg.flags.syn()
                                || (seg.options.mss.is_none()
                                    && seg.options.window_scale.is_none()
                                    && !seg.options.sack_permitted),
                            "SYN-only option on a non-SYN segment: {seg:?}"
                        );
                        self.delivered_to[dst] += 1;
                        self.eps[dst].handle_segment(self.now, pkt.src, pkt.dst, &seg);
                    }
                    Err(e) => {
                        assert!(
                            pkt.corrupted,
                            "an intact segment failed to parse: {e:?} {:02x?}",
                            pkt.bytes
                        );
                        self.links[i].stats.rejected += 1;
                    }
                }
            }
        }
        for e in &mut self.eps {
            if e.poll_timeout().is_some_and(|t| t <= self.now) {
                e.handle_timeout(self.now);
            }
        }
    }

    /// Flush output and advance to the next event; `false` when nothing is
    /// pending anywhere.
    pub fn step(&mut self) -> bool {
        self.flush();
        match self.next_event() {
            Some(t) => {
                self.advance_to(t);
                true
            }
            None => false,
        }
    }

    /// Run everything due within `limit` of virtual time, then set the
    /// clock to the end of it (later deadlines stay pending).
    pub fn run_for(&mut self, limit: Duration) {
        let end = self.now + limit;
        loop {
            self.flush();
            match self.next_event() {
                Some(t) if t <= end => self.advance_to(t),
                _ => break,
            }
        }
        self.advance_to(end);
        self.flush();
    }
}
