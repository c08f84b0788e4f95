//! Model-based test of the connection API (proptest-state-machine): random
//! sequences of application calls on two endpoints joined by the simulated
//! network (`netsim/sim.rs`, a perfect 5 ms link that can be told to drop
//! segments), compared after every step with a small reference model.
//!
//! After each transition the network settles (10 s of virtual time, enough
//! for several retransmission timeouts), so the model can say exactly what
//! each side must see: the TCP state, the typed error of every call, how
//! many bytes `recv` returns and when it reports end of stream, which
//! handles are invalid, how many connections each endpoint holds and when
//! a released socket's `Closed` event comes. Lost segments (never RSTs)
//! change the timing only, so the model ignores them. Received bytes are
//! checked against what the peer sent: always a prefix, in order.
//!
//! The model follows RFC 9293 section 3.10 (OPEN, SEND, RECEIVE, CLOSE,
//! ABORT), section 3.6 (closing) and section 3.10.7 (RST handling).

#[path = "netsim/sim.rs"]
mod sim;

use std::net::SocketAddrV4;

use core::time::Duration;

use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use sim::{LinkConfig, Sim};
use tcp_core::{
    AcceptError, Config, ConnError, ConnectError, EventKind, ListenError, RecvError, SendError,
    SocketError, SocketHandle, State,
};

const SERVER_PORT: u16 = 80;
/// Receive buffer; the model keeps unread data below it so every send is
/// taken whole and delivered by the next settle.
const RECV_BUF: usize = 16 * 1024;
const MAX_UNREAD: usize = RECV_BUF - 4096;
const SETTLE: Duration = Duration::from_secs(10);
/// MSL: far longer than a whole test case of settles (60 x 10 s), so only
/// `Expire` ends TIME-WAIT and orphaned FIN-WAIT-2.
const MSL: Duration = Duration::from_secs(3600);
/// Longer than 2 * MSL and the FIN-WAIT-2 timeout of orphans.
const EXPIRE: Duration = Duration::from_secs(3 * 3600);

/// The client is host 0, the server host 1; `Side` indexes both.
type Side = usize;
const CLIENT: Side = 0;
const SERVER: Side = 1;

#[derive(Debug, Clone)]
enum Transition {
    Listen,
    CloseListener,
    Connect,
    Accept,
    Send(Side, usize),
    Recv(Side, usize),
    Shutdown(Side),
    Close(Side),
    Abort(Side),
    /// Both sides shut down before the network moves: the FINs cross.
    ShutdownBoth,
    /// Both sides close before the network moves.
    CloseBoth,
    /// The next `n` non-RST segments are lost: the next transition's
    /// segments then need retransmissions (applies to that settle only).
    Drop(u32),
    /// Let 3 h pass: TIME-WAIT and orphaned FIN-WAIT-2 end.
    Expire,
    /// Several calls on one side before the network moves: sends and
    /// receives, then possibly one Shutdown, Close or Abort (data and FIN in
    /// one flight, or data overtaken by the abort's RST). Calls on one side
    /// do not race with the network, so the model applies them in order.
    Burst(Vec<Transition>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Listener {
    None,
    Open,
    Closed,
}

/// What the model knows of one side of the connection.
#[derive(Debug, Clone, Default)]
struct SideModel {
    /// The side has a transmission control block (client: after connect;
    /// server: after the SYN reached an open listener).
    tcb: bool,
    /// The TCB was deleted.
    gone: bool,
    /// The application has a handle (server: accepted).
    handle: bool,
    /// The application closed or aborted its handle.
    released: bool,
    /// Bytes sent (all taken and, after a settle, delivered).
    sent: usize,
    /// Bytes the application read.
    read: usize,
    /// FIN sent (and, after a settle, acknowledged).
    shut: bool,
    /// Shut down first: TIME-WAIT once the peer's FIN arrives.
    time_wait: bool,
    /// TIME-WAIT or orphaned FIN-WAIT-2 ended by `Expire`.
    expired: bool,
    /// Ended by RST or refusal: state CLOSED with this error.
    error: Option<ConnError>,
    /// Ended by a RST in LAST-ACK: CLOSED, and no error to report (RFC
    /// 9293 section 3.10.7.4, "CLOSING, LAST-ACK, TIME-WAIT").
    rst_in_last_ack: bool,
    /// A `Closed` event is due (released and gone).
    closed_event: bool,
}

#[derive(Debug, Clone)]
struct Model {
    listener: Listener,
    connected: bool,
    sides: [SideModel; 2],
}

impl Model {
    /// The state a side's TCB is in after a settle.
    fn state(&self, s: Side) -> Option<State> {
        let me = &self.sides[s];
        let peer = &self.sides[1 - s];
        if !me.tcb || me.gone {
            return None;
        }
        if me.error.is_some() || me.rst_in_last_ack {
            return Some(State::Closed);
        }
        Some(match (me.shut, peer.shut) {
            (false, false) => State::Established,
            (true, false) => State::FinWait2,
            (false, true) => State::CloseWait,
            (true, true) if me.time_wait && !me.expired => State::TimeWait,
            (true, true) => State::Closed,
        })
    }

    /// Bytes waiting to be read on side `s`.
    fn unread(&self, s: Side) -> usize {
        self.sides[1 - s].sent - self.sides[s].read
    }

    /// Whether a segment carrying data or FIN from `from` finds a peer TCB
    /// that takes it (otherwise the answer is a RST).
    fn peer_takes_data(&self, from: Side) -> bool {
        let p = 1 - from;
        matches!(self.state(p), Some(State::Established | State::FinWait2))
            && !self.sides[p].released
    }

    fn peer_takes_fin(&self, from: Side) -> bool {
        matches!(
            self.state(1 - from),
            Some(State::Established | State::FinWait2)
        )
    }

    fn delete(&mut self, s: Side) {
        let me = &mut self.sides[s];
        if me.tcb && !me.gone {
            me.gone = true;
            if me.released {
                me.closed_event = true;
            }
        }
    }

    /// A RST from the other side reaches side `s` (RFC 9293 section
    /// 3.10.7.4: ESTABLISHED, FIN-WAIT and CLOSE-WAIT report a reset; the
    /// other states have no one to tell or ignore it). A connection waiting
    /// for `accept` keeps its TCB and the error, as Linux keeps it queued.
    fn rst_to(&mut self, s: Side) {
        if let Some(State::Established | State::FinWait2 | State::CloseWait) = self.state(s) {
            let me = &mut self.sides[s];
            if me.released {
                // Nobody to tell: the TCB is deleted.
                self.delete(s);
            } else {
                me.error = Some(ConnError::Reset);
            }
        }
    }

    /// Side `s` sends a RST (abort, or close with unread data).
    fn abort_tcb(&mut self, s: Side) {
        if matches!(
            self.state(s),
            Some(State::Established | State::FinWait2 | State::CloseWait)
        ) {
            self.rst_to(1 - s);
        }
        self.delete(s);
    }

    /// Side `s` sends FIN.
    fn fin(&mut self, s: Side) {
        let peer_shut = self.sides[1 - s].shut;
        if !self.peer_takes_fin(s) {
            // No TCB for it any more: the peer answers with RST.
            // From CLOSE-WAIT: LAST-ACK, then the RST closes it silently.
            self.sides[s].shut = true;
            if self.sides[s].released {
                self.delete(s);
            } else {
                self.sides[s].rst_in_last_ack = true;
            }
            return;
        }
        self.sides[s].shut = true;
        if peer_shut {
            // We close second: LAST-ACK then CLOSED; the peer is in TIME-WAIT.
            self.sides[1 - s].time_wait = true;
            if self.sides[s].released {
                self.delete(s);
            }
        }
    }

    /// Released TCBs that have reached CLOSED are deleted.
    fn reap(&mut self) {
        for s in 0..2 {
            if self.sides[s].released && self.state(s) == Some(State::Closed) {
                self.delete(s);
            }
        }
    }
}

struct ModelMachine;

impl ReferenceStateMachine for ModelMachine {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        Just(Model {
            listener: Listener::None,
            connected: false,
            sides: [SideModel::default(), SideModel::default()],
        })
        .boxed()
    }

    /// Only transitions whose preconditions hold are generated.
    fn transitions(m: &Model) -> BoxedStrategy<Transition> {
        let mut v: Vec<(u32, BoxedStrategy<Transition>)> = vec![
            (1, Just(Transition::Listen).boxed()),
            (2, (1u32..3).prop_map(Transition::Drop).boxed()),
            (1, Just(Transition::Expire).boxed()),
        ];
        if m.listener != Listener::None {
            v.push((1, Just(Transition::CloseListener).boxed()));
            v.push((4, Just(Transition::Accept).boxed()));
        } else {
            v.push((3, Just(Transition::Listen).boxed()));
        }
        if !m.connected {
            v.push((4, Just(Transition::Connect).boxed()));
        }
        for s in [CLIENT, SERVER] {
            if !m.sides[s].handle {
                continue;
            }
            let room = MAX_UNREAD.saturating_sub(m.unread(1 - s)).min(3000);
            if room > 0 {
                v.push((
                    10,
                    (1..=room).prop_map(move |n| Transition::Send(s, n)).boxed(),
                ));
            }
            v.push((
                8,
                (1usize..5000)
                    .prop_map(move |n| Transition::Recv(s, n))
                    .boxed(),
            ));
            v.push((2, Just(Transition::Shutdown(s)).boxed()));
            v.push((2, Just(Transition::Close(s)).boxed()));
            v.push((1, Just(Transition::Abort(s)).boxed()));
            let data_op = prop_oneof![
                3 => (1usize..1500).prop_map(move |n| Transition::Send(s, n)),
                2 => (1usize..3000).prop_map(move |n| Transition::Recv(s, n)),
            ];
            let end_op = prop_oneof![
                Just(None),
                Just(Some(Transition::Shutdown(s))),
                Just(Some(Transition::Close(s))),
                Just(Some(Transition::Abort(s))),
            ];
            v.push((
                3,
                (proptest::collection::vec(data_op, 1..=2), end_op)
                    .prop_map(|(mut ops, end)| {
                        ops.extend(end);
                        Transition::Burst(ops)
                    })
                    .boxed(),
            ));
        }
        if m.sides.iter().all(|s| s.handle && !s.released) {
            v.push((2, Just(Transition::ShutdownBoth).boxed()));
            v.push((2, Just(Transition::CloseBoth).boxed()));
        }
        proptest::strategy::Union::new_weighted(v).boxed()
    }

    fn preconditions(m: &Model, t: &Transition) -> bool {
        if let Transition::Burst(ops) = t {
            let mut m = m.clone();
            for (i, op) in ops.iter().enumerate() {
                // Shutdown, Close and Abort only last: after a FIN the local
                // state (FIN-WAIT-1, LAST-ACK) waits for the network.
                let last = i + 1 == ops.len();
                let ends = matches!(
                    op,
                    Transition::Shutdown(_) | Transition::Close(_) | Transition::Abort(_)
                );
                if (ends && !last)
                    || matches!(op, Transition::Burst(_))
                    || !Self::preconditions(&m, op)
                    || answered_by_rst(&m, op)
                {
                    return false;
                }
                m = Self::apply(m, op);
            }
            return true;
        }
        match t {
            Transition::Connect => !m.connected,
            Transition::Accept | Transition::CloseListener => m.listener != Listener::None,
            Transition::Send(s, n) => m.sides[*s].handle && m.unread(1 - *s) + n <= MAX_UNREAD,
            Transition::Recv(s, _)
            | Transition::Shutdown(s)
            | Transition::Close(s)
            | Transition::Abort(s) => m.sides[*s].handle,
            Transition::ShutdownBoth | Transition::CloseBoth => {
                m.sides.iter().all(|s| s.handle && !s.released)
            }
            _ => true,
        }
    }

    fn apply(mut m: Model, t: &Transition) -> Model {
        if let Transition::Burst(ops) = t {
            return ops.iter().fold(m, Self::apply);
        }
        for s in &mut m.sides {
            s.closed_event = false;
        }
        match *t {
            Transition::Listen => {
                if m.listener != Listener::Open {
                    m.listener = Listener::Open;
                }
            }
            Transition::CloseListener => {
                if m.listener == Listener::Open {
                    m.listener = Listener::Closed;
                    // Connections never accepted are reset.
                    if m.sides[SERVER].tcb && !m.sides[SERVER].handle && !m.sides[SERVER].gone {
                        m.abort_tcb(SERVER);
                    }
                }
            }
            Transition::Connect => {
                m.connected = true;
                m.sides[CLIENT].tcb = true;
                m.sides[CLIENT].handle = true;
                if m.listener == Listener::Open {
                    m.sides[SERVER].tcb = true;
                } else {
                    m.sides[CLIENT].error = Some(ConnError::Refused);
                }
            }
            Transition::Accept => {
                let srv = &m.sides[SERVER];
                if m.listener == Listener::Open && srv.tcb && !srv.gone && !srv.handle {
                    m.sides[SERVER].handle = true;
                }
            }
            Transition::Send(s, n) => {
                if !m.sides[s].released
                    && matches!(m.state(s), Some(State::Established | State::CloseWait))
                {
                    if m.peer_takes_data(s) {
                        m.sides[s].sent += n;
                    } else {
                        // Data for a closed or orphaned peer: RST back.
                        m.sides[s].sent += n;
                        if m.sides[1 - s].tcb && !m.sides[1 - s].gone {
                            m.abort_tcb(1 - s);
                        }
                        m.sides[s].error = Some(ConnError::Reset);
                    }
                }
            }
            Transition::Recv(s, n) => {
                if !m.sides[s].released && m.sides[s].error.is_none() {
                    let k = n.min(m.unread(s));
                    m.sides[s].read += k;
                }
            }
            Transition::Shutdown(s) => {
                if !m.sides[s].released
                    && matches!(m.state(s), Some(State::Established | State::CloseWait))
                {
                    m.fin(s);
                }
            }
            Transition::Close(s) => close(&mut m, s),
            Transition::Abort(s) => {
                if !m.sides[s].released {
                    m.sides[s].released = true;
                    m.abort_tcb(s);
                }
            }
            Transition::ShutdownBoth => {
                let can: Vec<bool> = (0..2)
                    .map(|s| matches!(m.state(s), Some(State::Established)))
                    .collect();
                if can[0] && can[1] {
                    // The FINs cross: both go through CLOSING to TIME-WAIT.
                    m.sides[0].shut = true;
                    m.sides[1].shut = true;
                    m.sides[0].time_wait = true;
                    m.sides[1].time_wait = true;
                } else {
                    for (s, can_shut) in can.into_iter().enumerate() {
                        if can_shut || matches!(m.state(s), Some(State::CloseWait)) {
                            m.fin(s);
                        }
                    }
                }
            }
            Transition::CloseBoth => {
                let both_est = (0..2)
                    .all(|s| matches!(m.state(s), Some(State::Established)) && m.unread(s) == 0);
                if both_est {
                    for s in 0..2 {
                        m.sides[s].released = true;
                        m.sides[s].shut = true;
                        m.sides[s].time_wait = true;
                    }
                } else {
                    close(&mut m, CLIENT);
                    close(&mut m, SERVER);
                }
            }
            Transition::Drop(_) | Transition::Burst(_) => {}
            Transition::Expire => {
                for s in 0..2 {
                    let st = m.state(s);
                    if st == Some(State::TimeWait) {
                        m.sides[s].expired = true;
                        m.reap();
                    } else if st == Some(State::FinWait2) && m.sides[s].released {
                        m.delete(s);
                    }
                }
            }
        }
        m.reap();
        m
    }
}

/// Whether `op` sends data or FIN that the peer answers with a RST: its
/// effect on our side shows only after the network moved, so such a call
/// cannot be followed by another in the same burst.
fn answered_by_rst(m: &Model, op: &Transition) -> bool {
    let open = |s: Side| {
        !m.sides[s].released && matches!(m.state(s), Some(State::Established | State::CloseWait))
    };
    match *op {
        Transition::Send(s, _) => open(s) && !m.peer_takes_data(s),
        Transition::Shutdown(s) => open(s) && !m.peer_takes_fin(s),
        Transition::Close(s) => open(s) && m.unread(s) == 0 && !m.peer_takes_fin(s),
        _ => false,
    }
}

/// CLOSE on side `s` (RFC 9293 section 3.10.4; unread data makes it an
/// abort, RFC 2525 section 2.17).
fn close(m: &mut Model, s: Side) {
    if m.sides[s].released {
        return;
    }
    m.sides[s].released = true;
    match m.state(s) {
        None | Some(State::Closed) => m.delete(s),
        Some(_) if m.unread(s) > 0 => m.abort_tcb(s),
        Some(State::Established | State::CloseWait) => m.fin(s),
        _ => {}
    }
}

/// The system under test and what it observed.
struct Sut {
    sim: Sim,
    /// The model before the current transition.
    pre: Model,
    listener: Option<SocketHandle>,
    /// Handles that were closed: every call on them must say InvalidHandle.
    stale_listeners: Vec<SocketHandle>,
    handles: [Option<SocketHandle>; 2],
    /// Bytes each side sent; bytes each side received (content checked).
    sent: [usize; 2],
    received: [usize; 2],
    closed_events: [u32; 2],
}

fn byte_at(side: Side, i: usize) -> u8 {
    (i.wrapping_mul(31).wrapping_add(side * 7) % 251) as u8
}

fn config() -> Config {
    Config {
        recv_buf: RECV_BUF,
        send_buf: RECV_BUF,
        rto_initial: Duration::from_millis(200),
        rto_min: Duration::from_millis(200),
        msl: MSL,
        fin_wait2_timeout: Some(MSL),
        ..Config::default()
    }
}

/// Expected result of `send` of `n` bytes on side `s`, from the model
/// before the call (RFC 9293 section 3.10.2).
fn expect_send(m: &Model, s: Side, n: usize) -> Result<usize, SendError> {
    let me = &m.sides[s];
    if me.released {
        return Err(SendError::InvalidHandle);
    }
    match m.state(s) {
        Some(State::Established | State::CloseWait) => Ok(n),
        Some(State::Closed) | None => {
            Err(me.error.map_or(SendError::NotConnected, SendError::Conn))
        }
        _ => Err(SendError::Closed),
    }
}

/// Expected result of `recv` into `n` bytes (RFC 9293 section 3.10.3);
/// `None` where the model allows several answers (data buffered when a RST
/// arrived may or may not be discarded).
fn expect_recv(m: &Model, s: Side, n: usize) -> Option<Result<usize, RecvError>> {
    let me = &m.sides[s];
    if me.released {
        return Some(Err(RecvError::InvalidHandle));
    }
    if let Some(e) = me.error {
        if m.unread(s) > 0 || m.sides[1 - s].shut {
            return None;
        }
        return Some(Err(RecvError::Conn(e)));
    }
    let unread = m.unread(s);
    Some(if unread > 0 {
        Ok(n.min(unread))
    } else if m.sides[1 - s].shut {
        Ok(0)
    } else {
        Err(RecvError::WouldBlock)
    })
}

/// Expected result of `shutdown` (RFC 9293 section 3.10.4, half-close).
fn expect_shutdown(m: &Model, s: Side) -> Result<(), SocketError> {
    if m.sides[s].released {
        return Err(SocketError::InvalidHandle);
    }
    match m.state(s) {
        Some(State::Closed) | None => Err(SocketError::NotConnected),
        _ => Ok(()),
    }
}

fn expect_release(m: &Model, s: Side) -> Result<(), SocketError> {
    if m.sides[s].released {
        Err(SocketError::InvalidHandle)
    } else {
        Ok(())
    }
}

impl Sut {
    fn handle(&self, s: Side) -> SocketHandle {
        self.handles[s].expect("precondition: the side has a handle")
    }

    fn settle(&mut self, d: Duration) {
        self.sim.run_for(d);
        for s in 0..2 {
            while let Some(ev) = self.sim.eps[s].poll_event() {
                if ev.kind == EventKind::Closed {
                    assert_eq!(
                        Some(ev.socket),
                        self.handles[s],
                        "Closed event for a socket the application does not hold"
                    );
                    self.closed_events[s] += 1;
                }
            }
        }
    }

    fn send(&mut self, s: Side, n: usize) {
        let h = self.handle(s);
        let data: Vec<u8> = (self.sent[s]..self.sent[s] + n)
            .map(|i| byte_at(s, i))
            .collect();
        let now = self.sim.now;
        let r = self.sim.eps[s].send(now, h, &data);
        assert_eq!(r, expect_send(&self.pre, s, n), "send({n}) on side {s}");
        if let Ok(k) = r {
            self.sent[s] += k;
        }
    }

    fn recv(&mut self, s: Side, n: usize) {
        let h = self.handle(s);
        let mut buf = vec![0u8; n];
        let r = self.sim.eps[s].recv(h, &mut buf);
        if let Ok(k) = r {
            for (j, b) in buf[..k].iter().enumerate() {
                assert_eq!(
                    *b,
                    byte_at(1 - s, self.received[s] + j),
                    "side {s} received a byte the peer did not send at offset {}",
                    self.received[s] + j
                );
            }
            self.received[s] += k;
            assert!(
                self.received[s] <= self.sent[1 - s],
                "more received than sent"
            );
        }
        match expect_recv(&self.pre, s, n) {
            Some(want) => assert_eq!(r, want, "recv({n}) on side {s}"),
            None => {
                let e = self.pre.sides[s]
                    .error
                    .expect("lenient only after an error");
                assert!(
                    r.is_ok() || r == Err(RecvError::Conn(e)),
                    "recv after {e:?}: {r:?}"
                );
            }
        }
    }

    fn shutdown(&mut self, s: Side) {
        let h = self.handle(s);
        let now = self.sim.now;
        let r = self.sim.eps[s].shutdown(now, h);
        assert_eq!(r, expect_shutdown(&self.pre, s), "shutdown on side {s}");
    }

    fn close(&mut self, s: Side) {
        let h = self.handle(s);
        let now = self.sim.now;
        let r = self.sim.eps[s].close(now, h);
        assert_eq!(r, expect_release(&self.pre, s), "close on side {s}");
    }

    fn abort(&mut self, s: Side) {
        let h = self.handle(s);
        let now = self.sim.now;
        let r = self.sim.eps[s].abort(now, h);
        assert_eq!(r, expect_release(&self.pre, s), "abort on side {s}");
    }
}

struct ApiTest;

impl StateMachineTest for ApiTest {
    type SystemUnderTest = Sut;
    type Reference = ModelMachine;

    fn init_test(ref_state: &Model) -> Sut {
        Sut {
            sim: Sim::new(7, [config(), config()], LinkConfig::ideal()),
            pre: ref_state.clone(),
            listener: None,
            stale_listeners: Vec::new(),
            handles: [None, None],
            sent: [0, 0],
            received: [0, 0],
            closed_events: [0, 0],
        }
    }

    fn apply(mut sut: Sut, post: &Model, t: Transition) -> Sut {
        let pre = sut.pre.clone();
        let now = sut.sim.now;
        match t {
            Transition::Listen => {
                let addr = sut.sim.addr(SERVER, SERVER_PORT);
                let r = sut.sim.eps[SERVER].listen(addr, 4);
                if pre.listener == Listener::Open {
                    assert_eq!(r, Err(ListenError::AddrInUse));
                } else {
                    sut.listener = Some(r.expect("listen"));
                }
            }
            Transition::CloseListener => {
                let l = sut.listener.expect("precondition");
                let r = sut.sim.eps[SERVER].close(now, l);
                if pre.listener == Listener::Open {
                    assert_eq!(r, Ok(()));
                    sut.stale_listeners.push(l);
                } else {
                    assert_eq!(r, Err(SocketError::InvalidHandle));
                }
            }
            Transition::Connect => {
                let local = SocketAddrV4::new(sut.sim.ips[CLIENT], 0);
                let remote = sut.sim.addr(SERVER, SERVER_PORT);
                let r = sut.sim.eps[CLIENT].connect(now, local, remote);
                let h: Result<SocketHandle, ConnectError> = r;
                sut.handles[CLIENT] = Some(h.expect("connect"));
            }
            Transition::Accept => {
                let l = sut.listener.expect("precondition");
                let r = sut.sim.eps[SERVER].accept(l);
                match pre.listener {
                    Listener::Open => {
                        if post.sides[SERVER].handle && !pre.sides[SERVER].handle {
                            sut.handles[SERVER] = Some(r.expect("accept"));
                        } else {
                            assert_eq!(r, Err(AcceptError::WouldBlock), "accept");
                        }
                    }
                    _ => assert_eq!(
                        r,
                        Err(AcceptError::InvalidHandle),
                        "accept on a closed listener"
                    ),
                }
            }
            Transition::Send(s, n) => sut.send(s, n),
            Transition::Recv(s, n) => sut.recv(s, n),
            Transition::Shutdown(s) => sut.shutdown(s),
            Transition::Close(s) => sut.close(s),
            Transition::Abort(s) => sut.abort(s),
            Transition::ShutdownBoth => {
                sut.shutdown(CLIENT);
                sut.shutdown(SERVER);
            }
            Transition::CloseBoth => {
                sut.close(CLIENT);
                // The server's close is judged on the model after the
                // client's close, before the network moved: only the
                // handle matters for its result.
                sut.close(SERVER);
            }
            Transition::Drop(n) => sut.sim.drop_next = n,
            Transition::Expire => {}
            Transition::Burst(ref ops) => {
                // Each call is judged on the model after the calls before it.
                let mut m = pre.clone();
                for op in ops {
                    sut.pre = m.clone();
                    match *op {
                        Transition::Send(s, n) => sut.send(s, n),
                        Transition::Recv(s, n) => sut.recv(s, n),
                        Transition::Shutdown(s) => sut.shutdown(s),
                        Transition::Close(s) => sut.close(s),
                        Transition::Abort(s) => sut.abort(s),
                        _ => unreachable!("bursts hold single-side calls"),
                    }
                    m = ModelMachine::apply(m, op);
                }
            }
        }
        if !matches!(t, Transition::Drop(_)) {
            let d = if matches!(t, Transition::Expire) {
                EXPIRE
            } else {
                SETTLE
            };
            sut.settle(d);
            // Losses apply to the settle after the Drop transition only.
            sut.sim.drop_next = 0;
        }
        sut.pre = post.clone();
        sut
    }

    fn check_invariants(sut: &Sut, m: &Model) {
        for s in 0..2 {
            let me = &m.sides[s];
            // State through the handle.
            if let Some(h) = sut.handles[s] {
                let st = sut.sim.eps[s].state(h);
                if me.released {
                    assert_eq!(
                        st,
                        Err(SocketError::InvalidHandle),
                        "side {s}: released handle"
                    );
                } else {
                    assert_eq!(st.ok(), m.state(s), "side {s}: state; model {m:#?}");
                }
            }
            // Closed events: one per released socket, once its TCB is gone.
            let want = u32::from(me.released && (me.gone || !me.tcb));
            assert_eq!(
                sut.closed_events[s], want,
                "side {s}: Closed events; model {m:#?}"
            );
            // Received data is a prefix of what the peer sent; after a
            // settle, everything sent was delivered and the counts agree.
            assert!(sut.received[s] <= sut.sent[1 - s]);
            if me.error.is_none() {
                assert_eq!(sut.received[s], me.read, "side {s}: bytes read");
            }
            assert_eq!(sut.sent[s], me.sent, "side {s}: bytes sent");
        }
        for l in &sut.stale_listeners {
            assert_eq!(
                sut.sim.eps[SERVER].state(*l),
                Err(SocketError::InvalidHandle)
            );
        }
        // Connections held: every TCB the model says exists, no more.
        for s in 0..2 {
            let tcbs = usize::from(m.sides[s].tcb && !m.sides[s].gone);
            assert_eq!(
                sut.sim.eps[s].connection_count(),
                tcbs,
                "host {s}: connection count; model {m:#?}"
            );
        }
    }
}

fn cases() -> ProptestConfig {
    let n = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        // Transitions failing their preconditions are drawn again.
        max_local_rejects: 10_000_000,
        ..ProptestConfig::default()
    }
}

prop_state_machine! {
    #![proptest_config(cases())]

    /// Random API call sequences against the reference model.
    #[test]
    fn connection_api_matches_model(sequential 1..60 => ApiTest);
}
