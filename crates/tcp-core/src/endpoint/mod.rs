//! The per-core [`Endpoint`]: connection table, flow lookup, listeners, timer
//! index, transmit scheduling and events. The application calls are in
//! [`app`].

mod app;

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, SocketAddrV4};

use rand::RngCore;
use siphasher::sip::SipHasher13;
use slab::Slab;
use wire::tcp::TcpPacket;
use wire::{SeqNumber, TcpFlags, TcpRepr};

use crate::config::Config;
use crate::conn::input::{Outcome, Signals};
use crate::conn::output::SegmentOut;
use crate::conn::{Conn, Owner};
use crate::event::{Event, EventKind, IcmpError, IcmpErrorKind};
use crate::info::EndpointStats;
use crate::isn::IsnGenerator;
use crate::pool::{reservation, BufferPool, PoolInfo};
use crate::time::Instant;
use crate::timer_queue::{TimerKey, TimerQueue, WheelQueue};
use crate::State;

/// Identifies a socket (listener or connection) of one [`Endpoint`]: a slot
/// index plus a generation, so a handle kept after its socket was released
/// can never reach the socket that reuses the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketHandle {
    index: u32,
    generation: u32,
}

impl SocketHandle {
    /// The slot index (dense, reused after release): handy as a key into the
    /// driver's own tables.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The generation of the slot when this handle was issued.
    pub fn generation(self) -> u32 {
        self.generation
    }
}

/// One segment written by [`Endpoint::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Source IPv4 address for the IP header.
    pub src: Ipv4Addr,
    /// Destination IPv4 address for the IP header.
    pub dst: Ipv4Addr,
    /// Bytes of the TCP segment written at the start of the buffer.
    pub len: usize,
    /// A segment without payload (SYN, SYN-ACK, FIN, RST, pure ACK).
    pub control: bool,
}

/// Key of the flow table: our address first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey {
    local: SocketAddrV4,
    remote: SocketAddrV4,
}

/// SipHash-1-3 with a random key: the flow table is keyed by values the
/// network chooses, so the hash must not be predictable (hash flooding).
#[derive(Debug, Clone, Copy)]
struct FlowHasher {
    k0: u64,
    k1: u64,
}

impl BuildHasher for FlowHasher {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

/// A listening socket (RFC 9293 LISTEN).
#[derive(Debug)]
struct Listener {
    local: SocketAddrV4,
    /// Most established connections waiting for `accept`.
    backlog: usize,
    /// Established, not yet accepted connections (slot indices).
    accept_queue: VecDeque<usize>,
    /// SYN-RECEIVED connections created by this listener.
    syn_queue_len: usize,
    events_queued: u8,
    /// Options of the connections it creates; `None`: the configuration's
    /// at the time of each SYN.
    opts: Option<crate::config::ConnOptions>,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Socket {
    Listener(Listener),
    Conn(Conn),
}

#[derive(Debug)]
struct Entry {
    generation: u32,
    socket: Socket,
    /// The connection's live entry in the timer queue: (deadline, token).
    timer: Option<(Instant, <WheelQueue as TimerQueue>::Token)>,
    /// The connection holds a reservation of the buffer budget (its send
    /// plus receive buffer sizes), given back when its buffers are
    /// released or the slot is.
    reserved: bool,
}

/// A RST for a segment that has no connection (RFC 9293 section 3.10.7.1).
#[derive(Debug, Clone, Copy)]
struct RstOut {
    local: SocketAddrV4,
    remote: SocketAddrV4,
    seq: SeqNumber,
    /// `Some`: RST,ACK with this acknowledgment number.
    ack: Option<SeqNumber>,
}

/// A tiny deterministic generator (SplitMix64) for [`Endpoint::with_seed`].
#[derive(Debug, Clone)]
pub struct SeedRng(u64);

impl SeedRng {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SeedRng(seed)
    }
}

impl RngCore for SeedRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// Bit of each event kind in a socket's `events_queued` mask.
fn event_bit(kind: EventKind) -> u8 {
    match kind {
        EventKind::Connected => 1,
        EventKind::AcceptReady => 2,
        EventKind::Readable => 4,
        EventKind::Writable => 8,
        EventKind::PeerFin => 16,
        EventKind::Error(_) => 32,
        EventKind::Closed => 64,
    }
}

/// A sans-IO TCP endpoint: all connections and listeners of one core.
///
/// Driver side: feed it with [`handle_segment`](Self::handle_segment),
/// [`handle_icmp_error`](Self::handle_icmp_error) and
/// [`handle_timeout`](Self::handle_timeout); drain it with
/// [`poll_transmit`](Self::poll_transmit), [`poll_timeout`](Self::poll_timeout)
/// and [`poll_event`](Self::poll_event). Application side: the socket calls
/// below, on [`SocketHandle`]s. Nothing here reads a clock or does I/O; with
/// the same inputs (and seed) it produces the same outputs.
pub struct Endpoint {
    cfg: Config,
    rng: Box<dyn RngCore + Send>,
    isn: IsnGenerator,
    slots: Slab<Entry>,
    /// Next generation per slot index, kept across removals.
    generations: Vec<u32>,
    flows: HashMap<FlowKey, usize, FlowHasher>,
    listeners: HashMap<SocketAddrV4, usize>,
    timers: WheelQueue,
    expired: Vec<(<WheelQueue as TimerQueue>::Token, TimerKey)>,
    /// Connections that may have something to send, in order of arrival.
    tx_queue: VecDeque<(usize, u32)>,
    /// Entries of `tx_queue` before this index were asked for control
    /// segments already in the current round.
    ctl_cursor: usize,
    pending_rsts: VecDeque<RstOut>,
    events: VecDeque<Event>,
    conn_count: usize,
    stats: EndpointStats,
    pool: BufferPool,
}

impl core::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.conn_count)
            .field("listeners", &self.listeners.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with `config`, drawing randomness (hash keys, ephemeral
    /// port choice) from `rng`. ISNs (RFC 6528) and timestamp offsets
    /// (RFC 7323 section 5.4) are keyed hashes of the 4-tuple under
    /// `config.isn_secret`.
    pub fn new(config: Config, rng: impl RngCore + Send + 'static) -> Self {
        let mut rng: Box<dyn RngCore + Send> = Box::new(rng);
        let hasher = FlowHasher {
            k0: rng.next_u64(),
            k1: rng.next_u64(),
        };
        let mut ep = Endpoint {
            isn: IsnGenerator::new(config.isn_secret),
            pool: BufferPool::new(&config),
            cfg: config,
            rng,
            slots: Slab::new(),
            generations: Vec::new(),
            flows: HashMap::with_hasher(hasher),
            listeners: HashMap::new(),
            timers: WheelQueue::new(1000, Instant::ZERO),
            expired: Vec::new(),
            tx_queue: VecDeque::new(),
            ctl_cursor: 0,
            pending_rsts: VecDeque::new(),
            events: VecDeque::new(),
            conn_count: 0,
            stats: EndpointStats::default(),
        };
        ep.reserve_tables();
        ep
    }

    /// Socket slots reserved for listeners beyond
    /// [`Config::prealloc_connections`].
    pub const LISTENER_SLOTS: usize = 16;

    /// Allocates the tables for [`Config::prealloc_connections`]
    /// connections (nothing when they already hold that many).
    fn reserve_tables(&mut self) {
        let n = self.cfg.prealloc_connections;
        if n == 0 {
            return;
        }
        let slots = n.saturating_add(Self::LISTENER_SLOTS);
        self.slots.reserve(slots.saturating_sub(self.slots.len()));
        self.generations
            .reserve(slots.saturating_sub(self.generations.len()));
        self.flows.reserve(n.saturating_sub(self.flows.len()));
        self.timers.reserve(n);
        self.expired.reserve(n.saturating_sub(self.expired.len()));
        self.tx_queue.reserve(n.saturating_sub(self.tx_queue.len()));
        self.events.reserve(n.saturating_sub(self.events.len()));
        self.pending_rsts.reserve(
            self.cfg
                .max_pending_rsts
                .saturating_sub(self.pending_rsts.len()),
        );
    }

    /// The sizes and use of the per-core pools: slot table, connections,
    /// buffer budget and buffer cache.
    pub fn pool_info(&self) -> PoolInfo {
        let mut info = PoolInfo {
            slot_capacity: self.slots.capacity(),
            connections: self.conn_count,
            max_connections: self.cfg.max_connections,
            ..PoolInfo::default()
        };
        self.pool.fill_info(&mut info);
        info
    }

    /// [`new`](Self::new) with a deterministic generator seeded by `seed`.
    pub fn with_seed(config: Config, seed: u64) -> Self {
        Self::new(config, SeedRng::new(seed))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Replace the configuration (for example a sysctl-style change while
    /// running). It governs every later decision of every connection (timeouts,
    /// retry limits, RFC 5961 switches, ICMP policy) and the creation of new
    /// connections (buffer sizes, options offered); what existing connections
    /// already negotiated or allocated stays.
    pub fn set_config(&mut self, config: Config) {
        self.isn = IsnGenerator::new(config.isn_secret);
        self.pool.configure(&config);
        self.cfg = config;
        self.reserve_tables();
    }

    /// How many sockets are in `state`, whoever holds them (listeners for
    /// LISTEN; half-open and unaccepted connections included), like
    /// `sockstat`/`ss` would count them. O(number of sockets).
    pub fn count_in_state(&self, state: State) -> usize {
        self.slots
            .iter()
            .filter(|(_, e)| match &e.socket {
                Socket::Listener(_) => state == State::Listen,
                Socket::Conn(c) => c.state == state,
            })
            .count()
    }

    /// Counters.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Connections held (any state but LISTEN, including TIME-WAIT and
    /// closed ones the application has not released).
    pub fn connection_count(&self) -> usize {
        self.conn_count
    }

    // ------------------------------------------------------------------
    // Slots and handles
    // ------------------------------------------------------------------

    fn handle_of(&self, idx: usize) -> SocketHandle {
        let generation = self.slots.get(idx).map(|e| e.generation).unwrap_or(0);
        SocketHandle {
            index: idx as u32,
            generation,
        }
    }

    /// Stores `socket` in a free slot; `reserved`: it holds a reservation
    /// of the buffer budget.
    fn insert_socket(&mut self, socket: Socket, reserved: bool) -> usize {
        let idx = self.slots.vacant_key();
        if self.generations.len() <= idx {
            self.generations.resize(idx + 1, 0);
        }
        let generation = self.generations[idx];
        self.slots.insert(Entry {
            generation,
            socket,
            timer: None,
            reserved,
        })
    }

    fn entry(&self, h: SocketHandle) -> Option<&Entry> {
        self.slots
            .get(h.index as usize)
            .filter(|e| e.generation == h.generation)
    }

    fn entry_mut(&mut self, h: SocketHandle) -> Option<&mut Entry> {
        self.slots
            .get_mut(h.index as usize)
            .filter(|e| e.generation == h.generation)
    }

    /// The connection behind an application handle (not released).
    fn app_conn(&self, h: SocketHandle) -> Option<&Conn> {
        match self.entry(h).map(|e| &e.socket) {
            Some(Socket::Conn(c)) if c.owner == Owner::App => Some(c),
            _ => None,
        }
    }

    fn app_conn_mut(&mut self, h: SocketHandle) -> Option<&mut Conn> {
        match self.entry_mut(h).map(|e| &mut e.socket) {
            Some(Socket::Conn(c)) if c.owner == Owner::App => Some(c),
            _ => None,
        }
    }

    fn conn_at(&mut self, idx: usize) -> Option<&mut Conn> {
        match self.slots.get_mut(idx).map(|e| &mut e.socket) {
            Some(Socket::Conn(c)) => Some(c),
            _ => None,
        }
    }

    /// Free a slot; bumps its generation so old handles go stale.
    fn remove_slot(&mut self, idx: usize) {
        if let Some(entry) = self.slots.try_remove(idx) {
            if let Some((_, tok)) = entry.timer {
                self.timers.cancel(tok);
            }
            if let Some(g) = self.generations.get_mut(idx) {
                *g = g.wrapping_add(1);
            }
            if let Socket::Conn(c) = entry.socket {
                self.conn_count -= 1;
                self.stats.released += 1;
                if entry.reserved {
                    self.pool.unreserve(reservation(
                        c.send_buf_size as usize,
                        c.recv_buf_size as usize,
                    ));
                }
                self.pool.put_send(c.send_buf);
                self.pool.put_recv(c.recv_buf);
            }
        }
    }

    // ------------------------------------------------------------------
    // Events
    // ------------------------------------------------------------------

    fn push_event(&mut self, idx: usize, kind: EventKind) {
        let bit = event_bit(kind);
        let handle = self.handle_of(idx);
        let Some(entry) = self.slots.get_mut(idx) else {
            return;
        };
        let queued = match &mut entry.socket {
            Socket::Conn(c) => {
                if c.owner != Owner::App {
                    return;
                }
                &mut c.events_queued
            }
            Socket::Listener(l) => &mut l.events_queued,
        };
        if *queued & bit != 0 {
            return;
        }
        *queued |= bit;
        self.events.push_back(Event {
            socket: handle,
            kind,
        });
    }

    /// The next event, oldest first. Events queued for a handle before the
    /// application closed it may still be delivered (check the handle, or
    /// ignore events after `close`); [`EventKind::Closed`] comes last.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        if let Some(entry) = self.entry_mut(ev.socket) {
            let bit = event_bit(ev.kind);
            match &mut entry.socket {
                Socket::Conn(c) => c.events_queued &= !bit,
                Socket::Listener(l) => l.events_queued &= !bit,
            }
        }
        Some(ev)
    }

    fn signal(&mut self, idx: usize, sig: Signals) {
        if sig.connected {
            self.push_event(idx, EventKind::Connected);
            self.push_event(idx, EventKind::Writable);
        }
        if sig.readable {
            self.push_event(idx, EventKind::Readable);
        }
        if sig.writable {
            self.push_event(idx, EventKind::Writable);
        }
        if sig.peer_fin {
            self.push_event(idx, EventKind::PeerFin);
        }
        if let Some(e) = sig.error {
            self.push_event(idx, EventKind::Error(e));
        }
    }

    // ------------------------------------------------------------------
    // After any change to a connection
    // ------------------------------------------------------------------

    /// Bookkeeping after a connection was touched: transmit queue, timer
    /// index, release when finished, listener queues.
    fn after_change(&mut self, idx: usize) {
        let generation = match self.slots.get(idx) {
            Some(e) => e.generation,
            None => return,
        };
        let Some(entry) = self.slots.get_mut(idx) else {
            return;
        };
        let Socket::Conn(conn) = &mut entry.socket else {
            return;
        };
        conn.release_buffers(&mut self.pool);
        if entry.reserved
            && matches!(conn.state, State::TimeWait | State::Closed)
            && conn.send_buf.capacity() == 0
            && conn.recv_buf.capacity() == 0
        {
            // Both buffers are back: so is the connection's reservation.
            entry.reserved = false;
            self.pool.unreserve(reservation(
                conn.send_buf_size as usize,
                conn.recv_buf_size as usize,
            ));
        }
        let closed = conn.state == State::Closed;
        let error_event = closed && conn.error.is_some() && conn.owner == Owner::App;
        if !conn.tx_queued && !closed {
            conn.tx_queued = true;
            self.tx_queue.push_back((idx, generation));
        }
        if closed {
            let (local, remote, owner) = (conn.local, conn.remote, conn.owner);
            let key = FlowKey { local, remote };
            if self.flows.get(&key) == Some(&idx) {
                self.flows.remove(&key);
            }
            if error_event {
                self.stats.failed += 1;
            }
            match owner {
                Owner::App => {
                    // Keep the slot: the handle reports CLOSED and the error
                    // until the application closes it.
                    self.reschedule(idx);
                }
                Owner::Detached => self.remove_slot(idx),
                Owner::Orphan => {
                    let handle = self.handle_of(idx);
                    self.remove_slot(idx);
                    self.events.push_back(Event {
                        socket: handle,
                        kind: EventKind::Closed,
                    });
                }
                Owner::Listener(l) if self.in_accept_queue(l, idx) => {
                    // Ended (reset, timed out) while waiting for `accept`: it
                    // stays queued as Linux keeps it, and `accept` returns it
                    // with its error pending.
                    self.reschedule(idx);
                }
                Owner::Listener(l) => {
                    self.detach_from_listener(idx, l);
                    self.remove_slot(idx);
                }
            }
            return;
        }
        self.reschedule(idx);
    }

    /// Forget a listener-owned connection in its listener's queues.
    fn detach_from_listener(&mut self, idx: usize, listener: usize) {
        let state = match self.slots.get(idx).map(|e| &e.socket) {
            Some(Socket::Conn(c)) => c.state,
            _ => return,
        };
        let was_syn_rcvd = state == State::SynReceived || !self.in_accept_queue(listener, idx);
        if let Some(Socket::Listener(l)) = self.slots.get_mut(listener).map(|e| &mut e.socket) {
            if let Some(pos) = l.accept_queue.iter().position(|&i| i == idx) {
                l.accept_queue.remove(pos);
            } else if was_syn_rcvd {
                l.syn_queue_len = l.syn_queue_len.saturating_sub(1);
            }
        }
    }

    fn in_accept_queue(&self, listener: usize, idx: usize) -> bool {
        match self.slots.get(listener).map(|e| &e.socket) {
            Some(Socket::Listener(l)) => l.accept_queue.contains(&idx),
            _ => false,
        }
    }

    /// Keep the timer index entry at the connection's earliest deadline.
    fn reschedule(&mut self, idx: usize) {
        let Some(entry) = self.slots.get_mut(idx) else {
            return;
        };
        let generation = entry.generation;
        let next = match &entry.socket {
            Socket::Conn(c) => c.timers.next(),
            Socket::Listener(_) => None,
        };
        let current = entry.timer.map(|(at, _)| at);
        if current == next {
            return;
        }
        if let Some((_, tok)) = entry.timer.take() {
            self.timers.cancel(tok);
        }
        if let Some(at) = next {
            let tok = self.timers.insert(at, (idx, generation));
            if let Some(entry) = self.slots.get_mut(idx) {
                entry.timer = Some((at, tok));
            }
        }
    }

    // ------------------------------------------------------------------
    // Driver: input
    // ------------------------------------------------------------------

    /// Process one received TCP segment (already parsed and checksum
    /// verified: MUST-3) from `src` to `dst`.
    ///
    /// Replies are not sent from here: ACKs owed are only marked, and
    /// [`poll_transmit`](Self::poll_transmit) emits at most one ACK per
    /// connection for a whole batch of segments (MUST-58, MUST-59).
    pub fn handle_segment(
        &mut self,
        now: Instant,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        seg: &TcpRepr<'_>,
    ) {
        self.stats.segments_in += 1;
        // MUST-57, MUST-63: segments from or to broadcast/multicast
        // addresses, or with port 0, are silently discarded.
        if !valid_unicast(src) || !valid_unicast(dst) || seg.src_port == 0 || seg.dst_port == 0 {
            self.stats.dropped_invalid += 1;
            return;
        }
        let local = SocketAddrV4::new(dst, seg.dst_port);
        let remote = SocketAddrV4::new(src, seg.src_port);
        let flow = self.flows.get(&FlowKey { local, remote }).copied();
        if self.cfg.drop_syn_fin && seg.flags.syn() && seg.flags.fin() {
            let time_wait = flow.is_some_and(|idx| {
                matches!(self.slots.get(idx).map(|e| &e.socket),
                    Some(Socket::Conn(c)) if c.state == State::TimeWait)
            });
            if !time_wait {
                self.stats.dropped_syn_fin += 1;
                return;
            }
        }
        if let Some(idx) = flow {
            self.conn_input(now, idx, seg);
            return;
        }
        if let Some(l) = self.find_listener(local) {
            self.listen_input(now, l, local, remote, seg);
            return;
        }
        // RFC 9293 section 3.10.7.1, CLOSED: "all data in the incoming
        // segment is discarded. An incoming segment containing a RST is
        // discarded. An incoming segment not containing a RST causes a RST to
        // be sent in response."
        self.reply_rst(local, remote, seg);
    }

    fn find_listener(&self, local: SocketAddrV4) -> Option<usize> {
        self.listeners
            .get(&local)
            .or_else(|| {
                self.listeners
                    .get(&SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, local.port()))
            })
            .copied()
    }

    /// Queue the RST that answers `seg` (RFC 9293 section 3.10.7.1): "If the
    /// ACK bit is off, sequence number zero is used, <SEQ=0><ACK=SEG.SEQ+SEG.LEN>
    /// <CTL=RST,ACK>. If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>".
    fn reply_rst(&mut self, local: SocketAddrV4, remote: SocketAddrV4, seg: &TcpRepr<'_>) {
        if seg.flags.rst() {
            return;
        }
        if self.pending_rsts.len() >= self.cfg.max_pending_rsts {
            self.stats.rsts_dropped += 1;
            return;
        }
        let rst = if seg.flags.ack() {
            RstOut {
                local,
                remote,
                seq: seg.ack,
                ack: None,
            }
        } else {
            RstOut {
                local,
                remote,
                seq: SeqNumber(0),
                ack: Some(seg.seq + seg.seq_len()),
            }
        };
        self.pending_rsts.push_back(rst);
    }

    fn conn_input(&mut self, now: Instant, idx: usize, seg: &TcpRepr<'_>) {
        let cfg = &self.cfg;
        let Some(Socket::Conn(conn)) = self.slots.get_mut(idx).map(|e| &mut e.socket) else {
            return;
        };
        // A full accept queue holds the handshake in SYN-RECEIVED: the ACK is
        // dropped and the peer's retransmission (or ours of the SYN-ACK)
        // retries, as BSD and Linux do.
        if let (State::SynReceived, Owner::Listener(l)) = (conn.state, conn.owner) {
            if seg.flags.ack() && !seg.flags.rst() && !seg.flags.syn() {
                if let Some(Socket::Listener(lst)) = self.slots.get(l).map(|e| &e.socket) {
                    if lst.accept_queue.len() >= lst.backlog {
                        self.stats.acks_dropped_accept_queue += 1;
                        return;
                    }
                }
            }
        }
        let Some(Socket::Conn(conn)) = self.slots.get_mut(idx).map(|e| &mut e.socket) else {
            return;
        };
        let mut sig = Signals::default();
        let outcome = conn.on_segment(now, cfg, &mut self.pool, seg, &mut sig);
        let (local, remote, owner) = (conn.local, conn.remote, conn.owner);
        match outcome {
            Outcome::Done => {}
            Outcome::Reset => self.reply_rst(local, remote, seg),
            Outcome::Established => {
                if let Owner::Listener(l) = owner {
                    if let Some(Socket::Listener(lst)) =
                        self.slots.get_mut(l).map(|e| &mut e.socket)
                    {
                        lst.syn_queue_len = lst.syn_queue_len.saturating_sub(1);
                        lst.accept_queue.push_back(idx);
                    }
                    self.push_event(l, EventKind::AcceptReady);
                }
            }
            Outcome::Reopen => {
                // MAY-2: the TIME-WAIT connection gives way to a new one.
                if let Some(c) = self.conn_at(idx) {
                    c.enter_closed(None);
                }
                self.after_change(idx);
                if let Some(l) = self.find_listener(local) {
                    self.listen_input(now, l, local, remote, seg);
                } else {
                    self.reply_rst(local, remote, seg);
                }
                return;
            }
        }
        self.signal(idx, sig);
        self.after_change(idx);
    }

    /// RFC 9293 section 3.10.7.2, LISTEN.
    fn listen_input(
        &mut self,
        now: Instant,
        lidx: usize,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        seg: &TcpRepr<'_>,
    ) {
        // "first, check for a RST: An incoming RST segment could not be valid
        // since it could not have been sent in response to anything sent by
        // this incarnation of the connection. An incoming RST should be ignored."
        if seg.flags.rst() {
            return;
        }
        // "second, check for an ACK: ... <SEQ=SEG.ACK><CTL=RST>".
        if seg.flags.ack() {
            self.reply_rst(local, remote, seg);
            return;
        }
        // "third, check for a SYN" (anything else: "drop the segment").
        if !seg.flags.syn() {
            return;
        }
        let Some(Socket::Listener(lst)) = self.slots.get(lidx).map(|e| &e.socket) else {
            return;
        };
        // Bounded SYN queue and accept queue: excess SYNs are dropped
        // silently so that the peer retries with backoff.
        if lst.syn_queue_len >= self.cfg.max_syn_backlog || lst.accept_queue.len() >= lst.backlog {
            self.stats.syns_dropped_backlog += 1;
            return;
        }
        let lst_opts = lst.opts;
        if self.conn_count >= self.cfg.max_connections {
            self.stats.syns_dropped_limit += 1;
            return;
        }
        let (send, recv) = match &lst_opts {
            Some(o) => {
                let o = o.clamped(&self.cfg);
                (o.send_buf, o.recv_buf)
            }
            None => (self.cfg.send_buf, self.cfg.recv_buf),
        };
        if !self.pool.reserve(reservation(send, recv)) {
            self.stats.syns_dropped_buffers += 1;
            return;
        }
        let iss = self.isn.isn(now, local, remote);
        let ts_offset = self.isn.ts_offset(local, remote);
        let mut conn = Conn::new(
            now,
            &self.cfg,
            State::SynReceived,
            local,
            remote,
            iss,
            ts_offset,
        );
        if let Some(opts) = &lst_opts {
            conn.apply_options(&opts.clamped(&self.cfg));
        }
        conn.passive = true;
        conn.owner = Owner::Listener(lidx);
        // "Set RCV.NXT to SEG.SEQ+1, IRS is set to SEG.SEQ ... ISS should be
        // selected and a SYN segment sent of the form
        // <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>". "Any other control or text
        // should be queued for processing later": text is kept (not yet
        // acknowledged) and delivered when the handshake completes; a FIN on
        // the SYN is not (the peer repeats it).
        conn.irs = seg.seq;
        conn.rcv_nxt = seg.seq + 1;
        conn.rcv_adv = conn.rcv_nxt;
        conn.apply_syn_options(now, &self.cfg, &seg.options);
        conn.snd_wnd = u32::from(seg.window);
        conn.max_snd_wnd = conn.snd_wnd;
        conn.snd_wl1 = seg.seq;
        conn.snd_wl2 = iss;
        if !seg.payload.is_empty() && conn.recv_buf_size > 0 {
            conn.recv_buf = self.pool.recv_buf(conn.recv_buf_size as usize);
            let n = conn.recv_buf.write_at(0, seg.payload);
            conn.syn_data = u32::try_from(n).unwrap_or(0);
        }
        let idx = self.insert_socket(Socket::Conn(conn), true);
        self.conn_count += 1;
        self.stats.passive_opens += 1;
        self.flows.insert(FlowKey { local, remote }, idx);
        if let Some(Socket::Listener(lst)) = self.slots.get_mut(lidx).map(|e| &mut e.socket) {
            lst.syn_queue_len += 1;
        }
        self.after_change(idx);
    }

    /// Process an ICMP error that quotes one of our segments (RFC 9293
    /// section 3.9.2.2, RFC 1122 section 4.2.3.9, RFC 5927).
    ///
    /// * The quoted sequence number must lie in SND.UNA..SND.NXT, otherwise
    ///   the message is ignored (RFC 5927 section 4.1: blind attacks).
    /// * Source quench is ignored (MUST-55).
    /// * Fragmentation needed lowers the MSS (RFC 1191).
    /// * In SYN-SENT, hard errors (protocol or port unreachable,
    ///   administratively prohibited; time exceeded only with
    ///   [`Config::icmp_time_exceeded_aborts`], MUST-56) abort the attempt
    ///   with a typed error when [`Config::icmp_may_abort`] is set (RFC 5927
    ///   section 4.1; the FreeBSD behaviour). Otherwise, and in every synchronized
    ///   state, errors are only recorded as soft errors (MUST-56: no abort on
    ///   unreachable codes 0, 1, 5, time exceeded or parameter problem);
    ///   [`ConnInfo::soft_error`](crate::ConnInfo::soft_error) shows them (SHLD-25).
    pub fn handle_icmp_error(&mut self, now: Instant, err: IcmpError) {
        let key = FlowKey {
            local: err.local,
            remote: err.remote,
        };
        let Some(&idx) = self.flows.get(&key) else {
            return;
        };
        let may_abort = self.cfg.icmp_may_abort;
        let time_exceeded_aborts = self.cfg.icmp_time_exceeded_aborts;
        let Some(conn) = self.conn_at(idx) else {
            return;
        };
        if !(err.seq >= conn.snd_una && err.seq < conn.snd_max) {
            return;
        }
        match err.kind {
            IcmpErrorKind::SourceQuench => return,
            IcmpErrorKind::FragmentationNeeded { next_hop_mtu } => {
                // RFC 1191: the MSS follows the path MTU (IPv4 + TCP headers 40).
                if next_hop_mtu >= 68 {
                    let opts = if conn.ts.is_some() { 12 } else { 0 };
                    let mss = usize::from(next_hop_mtu)
                        .saturating_sub(40 + opts)
                        .max(usize::from(Config::MIN_PEER_MSS));
                    if mss < conn.smss {
                        conn.smss = mss;
                        conn.cc.set_mss(mss);
                        // Resend what was lost as too big.
                        conn.snd_nxt = conn.snd_una;
                    }
                }
            }
            kind => {
                let error = kind.conn_error();
                // MUST-56 when icmp_time_exceeded_aborts is off.
                let hard =
                    kind.is_hard() && (kind != IcmpErrorKind::TimeExceeded || time_exceeded_aborts);
                if conn.state == State::SynSent && hard && may_abort {
                    conn.enter_closed(error);
                    let _ = now;
                    self.stats.icmp_errors += 1;
                    if let Some(e) = error {
                        self.push_event(idx, EventKind::Error(e));
                    }
                    self.after_change(idx);
                    return;
                }
                conn.soft_error = error;
            }
        }
        self.stats.icmp_errors += 1;
        self.after_change(idx);
    }

    /// Run the timers due at `now` (call it at or after
    /// [`poll_timeout`](Self::poll_timeout)).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = core::mem::take(&mut self.expired);
        expired.clear();
        self.timers.advance(now, &mut expired);
        for &(tok, (idx, generation)) in &expired {
            let Some(entry) = self.slots.get_mut(idx) else {
                continue;
            };
            if entry.generation != generation || entry.timer.map(|(_, t)| t) != Some(tok) {
                continue;
            }
            entry.timer = None;
            let Socket::Conn(conn) = &mut entry.socket else {
                continue;
            };
            let before_err = conn.error;
            conn.on_timeout(now, &self.cfg);
            let new_err = if conn.error != before_err {
                conn.error
            } else {
                None
            };
            if let Some(e) = new_err {
                self.push_event(idx, EventKind::Error(e));
            }
            self.after_change(idx);
        }
        self.expired = expired;
    }

    /// When [`handle_timeout`](Self::handle_timeout) should be called next
    /// (never later than the earliest deadline plus one 1 ms tick).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    // ------------------------------------------------------------------
    // Driver: output
    // ------------------------------------------------------------------

    /// Write the next segment to send into `buf` (header, options, payload
    /// and checksum; `buf` should hold at least MSS + 60 bytes). Control
    /// segments of every connection (RSTs, SYN, SYN-ACK, FIN, pure ACK) come
    /// before data segments. Call until it returns `None`.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        if let Some(rst) = self.pending_rsts.pop_front() {
            let (flags, ack) = match rst.ack {
                Some(a) => (TcpFlags::RST | TcpFlags::ACK, a),
                None => (TcpFlags::RST, SeqNumber(0)),
            };
            let repr = TcpRepr {
                src_port: rst.local.port(),
                dst_port: rst.remote.port(),
                seq: rst.seq,
                ack,
                flags,
                window: 0,
                urgent: 0,
                options: Default::default(),
                payload: &[],
            };
            if let Ok(len) = repr.emit(buf, *rst.local.ip(), *rst.remote.ip()) {
                self.stats.rsts_sent += 1;
                self.stats.segments_out += 1;
                return Some(Transmit {
                    src: *rst.local.ip(),
                    dst: *rst.remote.ip(),
                    len,
                    control: true,
                });
            }
        }
        // Control phase.
        while self.ctl_cursor < self.tx_queue.len() {
            let (idx, generation) = self.tx_queue[self.ctl_cursor];
            if let Some(t) = self.poll_conn(now, idx, generation, buf, true) {
                return Some(t);
            }
            self.ctl_cursor += 1;
        }
        // Data phase.
        while let Some(&(idx, generation)) = self.tx_queue.front() {
            if let Some(t) = self.poll_conn(now, idx, generation, buf, false) {
                return Some(t);
            }
            if let Some(entry) = self.slots.get_mut(idx) {
                if entry.generation == generation {
                    if let Socket::Conn(c) = &mut entry.socket {
                        c.tx_queued = false;
                    }
                }
            }
            self.tx_queue.pop_front();
            self.ctl_cursor = self.ctl_cursor.saturating_sub(1);
        }
        self.ctl_cursor = 0;
        None
    }

    /// Ask one connection for a control segment (or, when `control_only` is
    /// false, any segment) and write it.
    fn poll_conn(
        &mut self,
        now: Instant,
        idx: usize,
        generation: u32,
        buf: &mut [u8],
        control_only: bool,
    ) -> Option<Transmit> {
        let cfg = &self.cfg;
        let entry = self.slots.get_mut(idx)?;
        if entry.generation != generation {
            return None;
        }
        let Socket::Conn(conn) = &mut entry.socket else {
            return None;
        };
        let max_len = buf.len();
        let rexmits_before = conn.total_retransmits;
        let seg = match conn.poll_control(now, cfg, max_len) {
            Some(s) => s,
            None if control_only => return None,
            None => match conn.poll_data(now, cfg, max_len) {
                Some(s) => s,
                None => {
                    // The sending policy may have armed the persist timer.
                    self.reschedule(idx);
                    return None;
                }
            },
        };
        let written = emit(conn, &seg, buf);
        let (src, dst) = (*conn.local.ip(), *conn.remote.ip());
        self.stats.retransmits += u64::from(conn.total_retransmits - rexmits_before);
        self.after_change(idx);
        let len = written?;
        self.stats.segments_out += 1;
        Some(Transmit {
            src,
            dst,
            len,
            control: seg.payload_len == 0,
        })
    }
}

/// Unicast, specified, not broadcast or multicast (MUST-46, MUST-57, MUST-63).
pub(crate) fn valid_unicast(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast())
}

/// Serialize `seg` of `conn` into `buf`; `None` if it does not fit.
fn emit(conn: &Conn, seg: &SegmentOut, buf: &mut [u8]) -> Option<usize> {
    let (first, second) = conn.send_buf.slices(seg.payload_offset, seg.payload_len);
    let src = *conn.local.ip();
    let dst = *conn.remote.ip();
    let mut repr = TcpRepr {
        src_port: conn.local.port(),
        dst_port: conn.remote.port(),
        seq: seg.seq,
        ack: if seg.flags.ack() {
            seg.ack
        } else {
            SeqNumber(0)
        },
        flags: seg.flags,
        window: seg.window,
        urgent: 0,
        options: seg.options,
        payload: first,
    };
    if seg.flags.ack() && !seg.flags.rst() && !seg.flags.syn() {
        if let Some(up) = conn.urgent_for(seg.seq) {
            repr.flags |= TcpFlags::URG;
            repr.urgent = up;
        }
    }
    if second.is_empty() {
        return repr.emit(buf, src, dst).ok();
    }
    // The payload wraps around the ring: write the header, copy both
    // pieces, then checksum the whole segment.
    repr.payload = &[];
    let hl = repr.emit(buf, src, dst).ok()?;
    let total = hl + first.len() + second.len();
    let out = buf.get_mut(..total)?;
    out[hl..hl + first.len()].copy_from_slice(first);
    out[hl + first.len()..].copy_from_slice(second);
    TcpPacket::new_unchecked(out).fill_checksum(src, dst);
    Some(total)
}
