//! One core's stack: its device queue, network layer, socket table, epoll
//! instances and forwarding links, and the loop phases that drive them.
//!
//! A pass of the loop ([`CoreStack::receive`], [`CoreStack::run_timers`],
//! [`CoreStack::publish`], application calls, [`CoreStack::transmit`]) is
//! the same in both thread modes; only who calls it differs (the stack
//! thread, or the application thread itself in run-to-completion mode).

use crate::affinity::{FlowAffinity, ForwardLink};
use crate::arp::{ArpCache, Pending};
use crate::config::RuntimeConfig;
use crate::netif::{Classified, DropReason, Framed, NetIf, HEADERS_LEN};
use crate::queue::AnyQueue;
use crate::stats::{CoreStats, StatsReporter};
use epoll_events::{EpollContext, EpollId, Events, Limits};
use packet_io::{FrameBatch, Interest, PacketQueue, Ready, WaitConfig, Waiter, Waker};
use socket_api::{SocketConfig, SocketTable};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tcp_core::Endpoint;

/// Descriptors beyond `max_concurrency` for listeners and epoll instances.
pub const EXTRA_FDS: usize = 64;

/// The forwarding wiring of one core, built by the runtime.
#[derive(Debug, Default)]
pub struct CoreLinks {
    /// Links from each other core to this one (`None` for itself).
    pub inbound: Vec<Option<Arc<ForwardLink>>>,
    /// Links from this core to each other core.
    pub outbound: Vec<Option<Arc<ForwardLink>>>,
    /// The wakers of the other cores' stacks.
    pub wakers: Vec<Option<Waker>>,
}

/// What to do with a frame after the network layer looked at it.
enum Action {
    /// Consumed (or dropped): release the frame.
    Release,
    /// The frame now holds a reply of `len` bytes: send it.
    Reply(usize),
    /// Another core owns the flow.
    Forward(usize),
}

/// One core's stack.
pub struct CoreStack {
    core: usize,
    queue: AnyQueue,
    netif: NetIf,
    pub(crate) sockets: SocketTable,
    pub(crate) epoll: EpollContext,
    /// Epoll instances by the descriptor reserved for them.
    pub(crate) epoll_fds: HashMap<u32, EpollId>,
    waiter: Waiter,
    affinity: FlowAffinity,
    links: CoreLinks,
    /// Cores to wake after this pass's forwarding (bit per core).
    forwarded_to: u64,
    rx: FrameBatch,
    tx: FrameBatch,
    /// Built frames the TX ring did not take yet (sent first next pass).
    backlog: FrameBatch,
    /// Allocated empty frames kept between passes (no alloc/release churn
    /// when the engine has nothing to send).
    spare: FrameBatch,
    /// The last transmit stopped for lack of ring space.
    tx_blocked: bool,
    resolved: Vec<Pending>,
    batch: usize,
    epoch: Instant,
    pub(crate) stats: CoreStats,
    reporter: StatsReporter,
    arp_retry_at: Option<Instant>,
    /// When [`flush`](Self::flush) last sent what the engine owed
    /// (run-to-completion measures its holds from it).
    pub(crate) flushed_at: Instant,
    /// Run-to-completion: the application is handling the events its last
    /// `epoll_wait` returned (its output is held until it waits again).
    pub(crate) in_batch: bool,
    /// Run-to-completion: bytes written since the last flush.
    pub(crate) held_bytes: usize,
    /// Run-to-completion: the buffer `epoll_wait` fills, kept between calls.
    pub(crate) event_buf: Vec<epoll_events::Event>,
}

impl std::fmt::Debug for CoreStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreStack")
            .field("core", &self.core)
            .field("queue", &self.queue)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Errors of building a core's stack.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// The wait's eventfd could not be created.
    #[error("creating the waiter: {0}")]
    Waiter(std::io::Error),
    /// The epoll tables could not be sized.
    #[error("sizing epoll: {0}")]
    Epoll(epoll_events::Error),
}

impl CoreStack {
    /// Builds core `core` of `config` over `queue`. `epoch` is the runtime's
    /// time origin, shared by every core.
    pub fn new(
        config: &RuntimeConfig,
        core: usize,
        queue: AnyQueue,
        epoch: Instant,
        seed: u64,
    ) -> Result<Self, StackError> {
        let s = &config.stack;
        let spin = if config.stack.mode == crate::config::ThreadMode::Threaded && s.pin {
            // The application thread shares the CPU: polling would only delay it.
            Duration::ZERO
        } else {
            Duration::from_micros(s.spin_us)
        };
        let waiter = Waiter::new(WaitConfig { spin }).map_err(StackError::Waiter)?;
        let max_fds = s.max_concurrency + EXTRA_FDS;
        let endpoint = Endpoint::with_seed(
            config.tcp_config(core),
            seed ^ (core as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let sockets = SocketTable::new(
            endpoint,
            SocketConfig {
                max_fds: max_fds as u32,
                local_ips: vec![config.net.address],
                ephemeral_ports: config.ephemeral_ports(core),
                port_policy: None,
                max_backlog: 4096,
                port_seed: seed as u32 ^ core as u32,
            },
        );
        let epoll = EpollContext::new(Limits {
            max_instances: 16,
            max_fds,
            max_registrations: max_fds * 2,
        })
        .map_err(StackError::Epoll)?;
        let netif = NetIf::new(
            config.mac(),
            config.net.address,
            config.net.netmask,
            config.net.gateway,
            ArpCache::new(Duration::from_millis(s.arp_timeout_ms), s.arp_pending),
        );
        let batch = config.net.batch;
        Ok(CoreStack {
            core,
            queue,
            netif,
            sockets,
            epoll,
            epoll_fds: HashMap::new(),
            waiter,
            affinity: FlowAffinity::new(config.core_count()),
            links: CoreLinks::default(),
            forwarded_to: 0,
            rx: FrameBatch::with_capacity(batch),
            tx: FrameBatch::with_capacity(batch),
            backlog: FrameBatch::with_capacity(batch),
            spare: FrameBatch::with_capacity(batch),
            tx_blocked: false,
            resolved: Vec::new(),
            batch,
            epoch,
            stats: CoreStats::default(),
            reporter: StatsReporter::new(Duration::from_millis(s.stats_interval_ms), epoch),
            arp_retry_at: None,
            flushed_at: epoch,
            in_batch: false,
            held_bytes: 0,
            event_buf: Vec::new(),
        })
    }

    /// Wires the forwarding links (done by the runtime once every core exists).
    pub fn set_links(&mut self, links: CoreLinks) {
        self.links = links;
    }

    /// The waker of this core's wait.
    pub fn waker(&self) -> Waker {
        self.waiter.waker()
    }

    /// This core's index.
    pub fn core(&self) -> usize {
        self.core
    }

    /// The engine's time for `t`.
    pub fn tcp_now(&self, t: Instant) -> tcp_core::Instant {
        tcp_core::Instant::from_micros(t.saturating_duration_since(self.epoch).as_micros() as u64)
    }

    fn std_instant(&self, t: tcp_core::Instant) -> Instant {
        self.epoch + Duration::from_micros(t.as_micros())
    }

    /// Counts a pass of the loop run by a stack thread.
    pub(crate) fn count_pass(&mut self) {
        self.stats.passes += 1;
    }

    /// Counters (engine and device figures refreshed).
    pub fn stats(&mut self) -> CoreStats {
        let dev = self.queue.counters();
        self.stats_with(&dev)
    }

    /// [`stats`](Self::stats) from a snapshot `dev` of the queue's
    /// counters. Frames and bytes received and sent are the device queue's
    /// own counts (taken once, where the frames cross the queue), not
    /// counted again per frame here.
    fn stats_with(&mut self, dev: &packet_io::Counters) -> CoreStats {
        self.stats.active_flows = self.sockets.endpoint().connection_count() as u64;
        let engine = self.sockets.endpoint().stats();
        self.stats.retransmissions = engine.retransmits;
        self.stats.listen_drops = engine.syns_dropped_backlog
            + engine.syns_dropped_limit
            + engine.syns_dropped_buffers
            + engine.acks_dropped_accept_queue;
        self.stats.rx_packets = dev.rx_packets;
        self.stats.rx_bytes = dev.rx_bytes;
        self.stats.tx_packets = dev.tx_packets;
        self.stats.tx_bytes = dev.tx_bytes;
        self.stats.tx_ring_full = dev.tx_ring_full;
        self.stats.device_drops = dev.rx_drop_fill_empty + dev.rx_drop_ring_full;
        self.stats
    }

    /// One whole pass without application calls: receive, timers, publish,
    /// transmit. Returns true when anything happened.
    pub fn cycle(&mut self) -> bool {
        let now = Instant::now();
        let input = self.poll_input(now);
        self.flush(now) || input
    }

    /// The input half of a pass: receive a batch (and forwarded frames),
    /// run expired timers, publish readiness. What the engine owes in reply
    /// (ACKs, SYN-ACKs) stays queued until [`flush`](Self::flush).
    ///
    /// Run-to-completion mode can hand the events to the application
    /// between the two halves: what it writes or closes in answer then
    /// leaves in the same segments as the ACKs (one data segment carrying
    /// the ACK of a SYN-ACK or of a request, data and FIN together), and
    /// the pass sends one batch. Returns true when anything arrived or a
    /// timer fired.
    pub fn poll_input(&mut self, now: Instant) -> bool {
        self.stats.passes += 1;
        let mut work = self.receive(now);
        work |= self.run_timers(now);
        self.publish();
        work
    }

    /// The output half of a pass: transmit everything the engine has to
    /// send, in batches, then housekeeping (ARP). Returns true when a frame
    /// was sent.
    pub fn flush(&mut self, now: Instant) -> bool {
        self.flushed_at = now;
        self.held_bytes = 0;
        let work = self.transmit(now);
        self.housekeeping(now);
        work
    }

    // ------------------------------------------------------------------
    // Receive
    // ------------------------------------------------------------------

    /// Receives one batch from the device queue and every frame other cores
    /// forwarded, and runs them through the network layer and the engine.
    pub fn receive(&mut self, now: Instant) -> bool {
        let tnow = self.tcp_now(now);
        self.sockets.set_now(tnow);
        let mut work = false;
        let n = self.queue.recv(&mut self.rx);
        if n > 0 {
            work = true;
            let mut actions: [u8; 1024] = [0; 1024];
            let core = self.core;
            let mut rx = std::mem::take(&mut self.rx);
            for (i, f) in rx.iter_mut().enumerate() {
                let action = {
                    let Ok(bytes) = self.queue.frame(f) else {
                        continue;
                    };
                    input(
                        &mut self.netif,
                        &mut self.sockets,
                        &self.affinity,
                        core,
                        bytes,
                        tnow,
                        now,
                        &mut self.stats,
                    )
                };
                let action = match action {
                    Input::Done(a) => a,
                    Input::Arp(arp) => {
                        // Every core learns what one core hears.
                        if let Ok(bytes) = self.queue.frame(f) {
                            for (c, l) in self.links.outbound.iter().enumerate() {
                                if let Some(l) = l {
                                    if l.push(bytes) {
                                        self.forwarded_to |= 1 << c;
                                    }
                                }
                            }
                        }
                        // The reply is padded to the Ethernet minimum of 60
                        // bytes; a request can arrive unpadded (42 bytes), so
                        // the frame is lengthened first and handle_arp zeroes
                        // the padding instead of sending old buffer bytes.
                        let padded = 60.min(self.queue.frame_capacity());
                        let reply = self.queue.set_len(f, padded).is_ok()
                            && match self.queue.frame_mut(f) {
                                Ok(bytes) => self.netif.handle_arp(&arp, bytes, now),
                                Err(_) => false,
                            };
                        self.flush_resolved(arp.source_protocol_addr);
                        if reply {
                            Action::Reply(padded)
                        } else {
                            Action::Release
                        }
                    }
                    Input::Echo => match self.queue.frame_mut(f) {
                        Ok(bytes) => match self.netif.echo_reply_in_place(bytes) {
                            Some(len) => {
                                self.stats.echo_replies += 1;
                                Action::Reply(len)
                            }
                            None => Action::Release,
                        },
                        Err(_) => Action::Release,
                    },
                };
                match action {
                    Action::Release => {}
                    Action::Reply(len) => {
                        if self.queue.set_len(f, len).is_ok() && i < actions.len() {
                            actions[i] = 1;
                        }
                    }
                    Action::Forward(owner) => {
                        if let (Some(Some(l)), Ok(bytes)) =
                            (self.links.outbound.get(owner), self.queue.frame(f))
                        {
                            if l.push(bytes) {
                                self.stats.forwarded_out += 1;
                                self.forwarded_to |= 1 << owner;
                            } else {
                                self.stats.drops += 1;
                            }
                        }
                    }
                }
            }
            self.rx = rx;
            let mut idx = 0;
            self.rx.retain_into(&mut self.tx, |_| {
                let keep = actions.get(idx).map_or(true, |&a| a == 0);
                idx += 1;
                keep
            });
            let _ = self.queue.release(&mut self.rx);
            if !self.tx.is_empty() {
                self.send_tx();
            }
        }
        work |= self.receive_forwarded(now);
        self.wake_forwarded();
        work
    }

    fn receive_forwarded(&mut self, now: Instant) -> bool {
        let tnow = self.tcp_now(now);
        let mut work = false;
        for c in 0..self.links.inbound.len() {
            let Some(link) = self.links.inbound[c].clone() else {
                continue;
            };
            let mut budget = self.batch * 4;
            while budget > 0 {
                let Some(buf) = link.pop() else {
                    break;
                };
                budget -= 1;
                work = true;
                self.stats.forwarded_in += 1;
                match input(
                    &mut self.netif,
                    &mut self.sockets,
                    &FlowAffinity::new(1),
                    0,
                    &buf,
                    tnow,
                    now,
                    &mut self.stats,
                ) {
                    Input::Arp(arp) => {
                        // The receiving core answered; here we only learn.
                        let _ = self.netif.learn_arp(&arp, now);
                        self.flush_resolved(arp.source_protocol_addr);
                    }
                    Input::Done(_) | Input::Echo => {}
                }
                link.recycle(buf);
            }
        }
        work
    }

    fn wake_forwarded(&mut self) {
        let mut bits = std::mem::take(&mut self.forwarded_to);
        while bits != 0 {
            let c = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Some(Some(w)) = self.links.wakers.get(c) {
                w.wake();
            }
        }
    }

    /// Sends the frames held for `ip` now that its MAC is known.
    fn flush_resolved(&mut self, ip: std::net::Ipv4Addr) {
        let Some(mac) = self.netif.arp.lookup(ip, Instant::now()) else {
            return;
        };
        let mut resolved = std::mem::take(&mut self.resolved);
        self.netif.arp.take_resolved(ip, &mut resolved);
        for mut p in resolved.drain(..) {
            NetIf::set_dst_mac(&mut p.frame, mac);
            let mut one = FrameBatch::with_capacity(1);
            if self.queue.alloc(&mut one, 1) == 1 {
                if let Some(mut f) = one.pop() {
                    let ok = self.queue.set_len(&mut f, p.frame.len()).is_ok()
                        && match self.queue.frame_mut(&mut f) {
                            Ok(b) => {
                                b.copy_from_slice(&p.frame);
                                true
                            }
                            Err(_) => false,
                        };
                    if ok {
                        self.backlog.push(f);
                    } else {
                        one.push(f);
                        let _ = self.queue.release(&mut one);
                    }
                }
            } else {
                self.stats.drops += 1;
            }
            self.netif.arp.recycle(p);
        }
        self.resolved = resolved;
    }

    // ------------------------------------------------------------------
    // Timers and events
    // ------------------------------------------------------------------

    /// Runs the engine's expired timers.
    pub fn run_timers(&mut self, now: Instant) -> bool {
        let tnow = self.tcp_now(now);
        match self.sockets.poll_timeout() {
            Some(t) if t <= tnow => {
                self.sockets.handle_timeout(tnow);
                true
            }
            _ => false,
        }
    }

    /// Hands readiness changes to the epoll instances.
    pub fn publish(&mut self) {
        let epoll = &mut self.epoll;
        self.sockets.drain_changes(|fd, level, wake| {
            let _ = epoll.notify(
                epoll_events::Fd(fd.0),
                Events::from_bits_truncate(level.bits()),
                Events::from_bits_truncate(wake.bits()),
            );
        });
    }

    // ------------------------------------------------------------------
    // Transmit
    // ------------------------------------------------------------------

    /// Hands `tx` to the device queue (which counts the frames and bytes
    /// it takes, see [`stats`](Self::stats)).
    fn send_tx(&mut self) {
        if self.queue.send(&mut self.tx).is_err() {
            let _ = self.queue.release(&mut self.tx);
        }
        // What the ring did not take waits for the next pass, in order.
        if !self.tx.is_empty() {
            self.backlog.append(&mut self.tx);
        }
    }

    /// Sends what the engine has to send (control segments first: the
    /// engine orders them), in batches. Returns true when a frame was sent.
    pub fn transmit(&mut self, now: Instant) -> bool {
        let tnow = self.tcp_now(now);
        let mut work = false;
        if !self.backlog.is_empty() {
            std::mem::swap(&mut self.backlog, &mut self.tx);
            self.send_tx();
            work = true;
            if !self.backlog.is_empty() {
                // The ring is full: generate nothing more this pass.
                return work;
            }
        }
        self.tx_blocked = false;
        loop {
            let space = self.queue.tx_space();
            if space == 0 {
                // The engine may have more: wake when the ring drains.
                self.tx_blocked = true;
                break;
            }
            let want = space.min(self.batch);
            // Empty frames left over from the last pass are used first.
            self.tx.append(&mut self.spare);
            let have = self.tx.len();
            if have < want {
                self.queue.alloc(&mut self.tx, want - have);
            }
            if self.tx.is_empty() {
                break;
            }
            let cap = self.queue.frame_capacity();
            let mut used = 0;
            let mut exhausted = false;
            for f in self.tx.iter_mut() {
                if self.queue.set_len(f, cap).is_err() {
                    continue;
                }
                let Ok(buf) = self.queue.frame_mut(f) else {
                    continue;
                };
                let Some(t) = self
                    .sockets
                    .poll_transmit(tnow, buf.get_mut(HEADERS_LEN..).unwrap_or_default())
                else {
                    exhausted = true;
                    break;
                };
                let len = match self.netif.frame_ipv4(buf, t.src, t.dst, t.len, now) {
                    Framed::Ready(len) => len,
                    Framed::Unresolved { len, next_hop } => {
                        if !self.netif.arp.hold(next_hop, &buf[..len], now) {
                            self.stats.drops += 1;
                        }
                        self.arp_retry_at.get_or_insert(now);
                        if self.netif.arp.should_request(next_hop, now) {
                            // Reuse this frame for the request.
                            self.netif.arp_request(next_hop, buf).unwrap_or(0)
                        } else {
                            0
                        }
                    }
                    Framed::Unroutable => {
                        self.stats.drops += 1;
                        0
                    }
                };
                if self.queue.set_len(f, len).is_err() {
                    let _ = self.queue.set_len(f, 0);
                }
                used += 1;
            }
            // Frames past `used` were not written, and frames left empty (a
            // segment held for ARP) are kept for the next pass.
            self.tx.split_off_into(used, &mut self.spare);
            let queue = &self.queue;
            self.tx.retain_into(&mut self.spare, |f| {
                queue.frame(f).is_ok_and(|b| !b.is_empty())
            });
            if !self.tx.is_empty() {
                work = true;
                self.send_tx();
            }
            if exhausted || !self.backlog.is_empty() {
                break;
            }
        }
        self.queue.maintain();
        work
    }

    /// Sends an ARP request for `ip` in a frame of its own (into the backlog,
    /// which goes out first on the next transmit).
    fn send_arp_request(&mut self, ip: std::net::Ipv4Addr) {
        let mut one = FrameBatch::with_capacity(1);
        if self.queue.alloc(&mut one, 1) != 1 {
            return;
        }
        let Some(mut f) = one.pop() else {
            return;
        };
        let cap = self.queue.frame_capacity();
        let len = match (
            self.queue.set_len(&mut f, cap),
            self.queue.frame_mut(&mut f),
        ) {
            (Ok(()), Ok(b)) => self.netif.arp_request(ip, b).unwrap_or(0),
            _ => 0,
        };
        let _ = self.queue.set_len(&mut f, len);
        if len > 0 {
            self.backlog.push(f);
        } else {
            one.push(f);
            let _ = self.queue.release(&mut one);
        }
    }

    pub(crate) fn housekeeping(&mut self, now: Instant) {
        if let Some(ip) = self.netif.take_refresh() {
            if self.netif.arp.should_request(ip, now) {
                self.send_arp_request(ip);
            }
        }
        if let Some(at) = self.arp_retry_at {
            if now >= at + crate::arp::REQUEST_INTERVAL {
                self.netif.arp.expire(now);
                self.arp_retry_at = (self.netif.arp.pending_len() > 0).then_some(now);
                let waiting: Vec<_> = self.netif.arp.waiting().collect();
                for ip in waiting {
                    if self.netif.arp.should_request(ip, now) {
                        self.send_arp_request(ip);
                    }
                }
            }
        }
        if self.reporter.next_due().is_some_and(|d| now >= d) {
            let dev = self.queue.counters();
            let stats = self.stats_with(&dev);
            self.reporter.maybe_report(self.core, now, &stats, &dev);
        }
    }

    // ------------------------------------------------------------------
    // Wait
    // ------------------------------------------------------------------

    /// True when forwarded frames wait on an inbound link.
    pub fn has_forwarded(&self) -> bool {
        self.links.inbound.iter().flatten().any(|l| !l.is_empty())
    }

    /// The select-style wait: until a frame arrives, a waker fires, the next
    /// engine timer or `until` (whichever is first).
    pub fn wait(&mut self, until: Option<Instant>) -> Ready {
        self.stats.waits += 1;
        let now = Instant::now();
        let mut deadline = self.sockets.poll_timeout().map(|t| self.std_instant(t));
        for d in [
            until,
            self.reporter.next_due(),
            self.arp_retry_at.map(|a| a + crate::arp::REQUEST_INTERVAL),
        ]
        .into_iter()
        .flatten()
        {
            deadline = Some(deadline.map_or(d, |x| x.min(d)));
        }
        let timeout = deadline.map(|d| d.saturating_duration_since(now));
        let interest = if self.backlog.is_empty() && !self.tx_blocked {
            Interest::RX
        } else {
            Interest::BOTH
        };
        self.waiter
            .wait(std::slice::from_mut(&mut self.queue), &[interest], timeout)
            .unwrap_or_default()
    }
}

/// What [`input`] found.
enum Input {
    Done(Action),
    Arp(wire::ArpRepr),
    Echo,
}

/// Runs one received frame through the network layer; TCP segments and ICMP
/// errors of flows this core owns go into the engine.
#[allow(clippy::too_many_arguments)]
fn input(
    netif: &mut NetIf,
    sockets: &mut SocketTable,
    affinity: &FlowAffinity,
    core: usize,
    bytes: &[u8],
    tnow: tcp_core::Instant,
    _now: Instant,
    stats: &mut CoreStats,
) -> Input {
    match netif.classify(bytes) {
        Classified::Tcp { src, dst, seg } => {
            let owner = affinity.owner(seg.dst_port, src, seg.src_port);
            if owner != core {
                return Input::Done(Action::Forward(owner));
            }
            sockets.handle_segment(tnow, src, dst, &seg);
            Input::Done(Action::Release)
        }
        Classified::IcmpError(err) => {
            let owner = affinity.owner(err.local.port(), *err.remote.ip(), err.remote.port());
            if owner != core {
                return Input::Done(Action::Forward(owner));
            }
            sockets.handle_icmp_error(tnow, err);
            Input::Done(Action::Release)
        }
        Classified::Arp(arp) => Input::Arp(arp),
        Classified::EchoRequest => Input::Echo,
        Classified::Drop(reason) => {
            if reason != DropReason::NotForUs {
                stats.drops += 1;
            }
            Input::Done(Action::Release)
        }
    }
}

#[cfg(test)]
#[path = "stack_tests.rs"]
mod tests;
