//! Linux parity: the same scenarios run against Linux's epoll on kernel TCP sockets
//! (loopback) and against this crate driven by a model socket, and the `epoll_ctl`
//! results and `epoll_wait` outputs (data and event mask, in order) must be equal.
//!
//! The model socket stands for what the socket layer will do: after each action it
//! reports its readiness level and the wake-up Linux's TCP would raise (`sk_data_ready`
//! on arrival: IN; `sk_write_space` when space frees: OUT; `sk_state_change` on FIN,
//! RST and shutdown: every bit). The kernel side is made deterministic by waiting,
//! after each action, until the kernel socket reached the state the action leads to
//! (bytes queued, TCP state), so that no wake-up lands after the next `epoll_wait`.
//!
//! The last tests run mutated versions of our side (ET treated as LT, ONESHOT ignored,
//! no wake-up on new data, no wake-up on state changes) and check that the comparison
//! catches each one.
// The kernel side needs raw system calls; the crate itself stays free of `unsafe`.
#![allow(unsafe_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use epoll_events::{CtlOp, EpollContext, EpollId, Event, Events, Fd, Limits};

// ---- scenarios ----------------------------------------------------------------------

/// What happens to a connection between two looks at the epoll instances. "App" is the
/// socket watched by epoll, "peer" the other end.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// The peer sends this many bytes.
    PeerWrite(usize),
    /// The application reads this many bytes (all of them must be there).
    AppRead(usize),
    /// The application sends this many bytes (must fit in the send buffer).
    AppWrite(usize),
    /// The peer sends a FIN (`shutdown(SHUT_WR)`).
    PeerShutdown,
    /// The application sends a FIN (`shutdown(SHUT_WR)`).
    AppShutdown,
    /// The peer aborts: `SO_LINGER` zero and close, so an RST arrives.
    PeerReset,
    /// The application reads and so clears the pending error (`SO_ERROR`).
    TakeError,
    /// The application writes until its send buffer is full (the peer does not read).
    AppFill,
    /// The peer reads everything the application sent, until all of it is acknowledged.
    PeerDrain,
    /// The application closes the socket.
    AppClose,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// A new epoll instance; instances are numbered 0, 1, ... in creation order.
    Create,
    /// A new established connection; connections are numbered 0, 1, ...
    Connect,
    /// `epoll_ctl(instance, op, connection, mask)`, data = connection number.
    Ctl(usize, CtlOp, usize, Events),
    /// Something happens on a connection.
    Do(usize, Action),
    /// `epoll_wait(instance, maxevents, timeout 0)`.
    Wait(usize, usize),
}

use Action::*;
use Step::{Connect, Create, Do, Wait};

const IN: Events = Events::IN;
const OUT: Events = Events::OUT;
const RDHUP: Events = Events::RDHUP;
const ET: Events = Events::ET;
const ONESHOT: Events = Events::ONESHOT;

fn add(ep: usize, conn: usize, events: Events) -> Step {
    Step::Ctl(ep, CtlOp::Add, conn, events)
}
fn modify(ep: usize, conn: usize, events: Events) -> Step {
    Step::Ctl(ep, CtlOp::Mod, conn, events)
}
fn del(ep: usize, conn: usize) -> Step {
    Step::Ctl(ep, CtlOp::Del, conn, Events::EMPTY)
}
fn wait(ep: usize) -> Step {
    Wait(ep, 16)
}

/// A named scenario.
struct Scenario {
    name: &'static str,
    steps: Vec<Step>,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "level-triggered IN: reported while data is unread",
            steps: vec![
                Create,
                Connect,
                add(0, 0, IN),
                wait(0),
                Do(0, PeerWrite(100)),
                wait(0),
                wait(0),
                Do(0, AppRead(60)),
                wait(0),
                Do(0, AppRead(40)),
                wait(0),
                Do(0, PeerWrite(1)),
                wait(0),
            ],
        },
        Scenario {
            name: "edge-triggered IN: once per arrival, again on new data while readable",
            steps: vec![
                Create,
                Connect,
                add(0, 0, IN | ET),
                wait(0),
                Do(0, PeerWrite(100)),
                wait(0),
                wait(0),
                Do(0, PeerWrite(10)),
                wait(0),
                wait(0),
                Do(0, AppRead(110)),
                wait(0),
                Do(0, PeerWrite(5)),
                Do(0, PeerWrite(5)),
                wait(0),
                wait(0),
            ],
        },
        Scenario {
            name: "edge-triggered IN|OUT: an arrival reports both; own writes report nothing",
            steps: vec![
                Create,
                Connect,
                add(0, 0, IN | OUT | ET),
                wait(0),
                wait(0),
                Do(0, PeerWrite(20)),
                wait(0),
                Do(0, AppWrite(100)),
                wait(0),
                Do(0, AppRead(20)),
                wait(0),
                Do(0, PeerWrite(1)),
                wait(0),
            ],
        },
        Scenario {
            name: "level-triggered OUT: send buffer filled, then drained by the peer",
            steps: vec![
                Create,
                Connect,
                add(0, 0, OUT),
                wait(0),
                wait(0),
                Do(0, AppFill),
                wait(0),
                Do(0, PeerDrain),
                wait(0),
                wait(0),
            ],
        },
        Scenario {
            name: "edge-triggered OUT: send buffer filled, then drained by the peer",
            steps: vec![
                Create,
                Connect,
                add(0, 0, OUT | ET),
                wait(0),
                wait(0),
                Do(0, AppFill),
                wait(0),
                Do(0, PeerDrain),
                wait(0),
                wait(0),
                Do(0, AppFill),
                Do(0, PeerDrain),
                wait(0),
            ],
        },
        Scenario {
            name: "ONESHOT: one report, silent until MOD re-arms",
            steps: vec![
                Create,
                Connect,
                add(0, 0, IN | ONESHOT),
                Do(0, PeerWrite(10)),
                wait(0),
                wait(0),
                Do(0, PeerWrite(10)),
                wait(0),
                modify(0, 0, IN | ONESHOT),
                wait(0),
                wait(0),
                Do(0, AppRead(20)),
                modify(0, 0, IN | ONESHOT),
                wait(0),
                Do(0, PeerWrite(3)),
                wait(0),
                wait(0),
                modify(0, 0, IN | ONESHOT | ET),
                wait(0),
            ],
        },
        Scenario {
            name: "RDHUP and IN on a peer FIN, level- and edge-triggered",
            steps: vec![
                Create,
                Connect,
                Connect,
                add(0, 0, IN | RDHUP),
                add(0, 1, IN | ET),
                Do(0, PeerWrite(10)),
                wait(0),
                Do(0, PeerShutdown),
                Do(1, PeerShutdown),
                wait(0),
                Do(0, AppRead(10)),
                wait(0),
                wait(0),
            ],
        },
        Scenario {
            name: "state change wakes an OUT-only edge-triggered watcher; HUP after both FINs",
            steps: vec![
                Create,
                Connect,
                Connect,
                add(0, 0, IN | OUT | RDHUP),
                add(0, 1, OUT | ET),
                wait(0),
                wait(0),
                Do(0, PeerShutdown),
                Do(1, PeerShutdown),
                wait(0),
                Do(0, AppShutdown),
                Do(1, AppShutdown),
                wait(0),
                wait(0),
            ],
        },
        Scenario {
            name: "application shuts down first, then the peer",
            steps: vec![
                Create,
                Connect,
                add(0, 0, IN | OUT | RDHUP | ET),
                wait(0),
                Do(0, AppShutdown),
                wait(0),
                wait(0),
                Do(0, PeerWrite(7)),
                wait(0),
                Do(0, PeerShutdown),
                wait(0),
                wait(0),
            ],
        },
        Scenario {
            name: "peer reset: ERR and HUP without asking, until the error is taken",
            steps: vec![
                Create,
                Connect,
                Connect,
                add(0, 0, IN | ET),
                add(0, 1, Events::EMPTY),
                wait(0),
                Do(0, PeerReset),
                Do(1, PeerReset),
                wait(0),
                wait(0),
                Do(0, TakeError),
                Do(1, TakeError),
                wait(0),
                modify(0, 0, IN | OUT | RDHUP),
                wait(0),
            ],
        },
        Scenario {
            name: "MOD: changes interest and data, reports a ready descriptor at once",
            steps: vec![
                Create,
                Connect,
                add(0, 0, IN | ET),
                Do(0, PeerWrite(10)),
                wait(0),
                wait(0),
                modify(0, 0, IN | ET),
                wait(0),
                modify(0, 0, OUT),
                wait(0),
                wait(0),
                modify(0, 0, IN | OUT | ET),
                wait(0),
                Do(0, AppRead(10)),
                modify(0, 0, IN),
                wait(0),
                Do(0, PeerWrite(1)),
                wait(0),
            ],
        },
        Scenario {
            name: "DEL drops a pending report; ctl errors match",
            steps: vec![
                Create,
                Connect,
                add(0, 0, IN),
                Do(0, PeerWrite(10)),
                del(0, 0),
                wait(0),
                del(0, 0),
                modify(0, 0, IN),
                add(0, 0, IN),
                add(0, 0, IN | OUT),
                wait(0),
                del(0, 0),
                Do(0, PeerWrite(10)),
                wait(0),
            ],
        },
        Scenario {
            name: "three instances on one socket: LT, ET and ONESHOT",
            steps: vec![
                Create,
                Create,
                Create,
                Connect,
                add(0, 0, IN),
                add(1, 0, IN | OUT | ET),
                add(2, 0, IN | RDHUP | ONESHOT),
                wait(0),
                wait(1),
                wait(2),
                Do(0, PeerWrite(10)),
                wait(0),
                wait(1),
                wait(2),
                Do(0, PeerWrite(10)),
                wait(0),
                wait(1),
                wait(2),
                Do(0, PeerShutdown),
                wait(0),
                wait(1),
                wait(2),
                modify(2, 0, IN | RDHUP | ONESHOT),
                wait(2),
                del(0, 0),
                wait(0),
                wait(1),
            ],
        },
        Scenario {
            name: "short wait buffers rotate level-triggered items; ET ones are consumed",
            steps: vec![
                Create,
                Create,
                Connect,
                Connect,
                Connect,
                add(0, 0, IN),
                add(0, 1, IN),
                add(0, 2, IN),
                add(1, 0, IN | ET),
                add(1, 1, IN | ET),
                add(1, 2, IN | ET),
                Do(0, PeerWrite(1)),
                Do(1, PeerWrite(1)),
                Do(2, PeerWrite(1)),
                Wait(0, 2),
                Wait(0, 2),
                Wait(0, 2),
                Wait(0, 1),
                Do(1, AppRead(1)),
                Wait(0, 2),
                Wait(0, 2),
                Wait(1, 1),
                Wait(1, 1),
                Do(0, PeerWrite(1)),
                Wait(1, 1),
                Wait(1, 1),
                Wait(1, 1),
            ],
        },
        Scenario {
            name: "a disarmed ONESHOT registration stays silent even on RST",
            steps: vec![
                Create,
                Connect,
                add(0, 0, IN | ONESHOT),
                Do(0, PeerWrite(4)),
                wait(0),
                Do(0, PeerReset),
                wait(0),
                modify(0, 0, IN | ONESHOT),
                wait(0),
                wait(0),
                Do(0, TakeError),
                modify(0, 0, OUT | ONESHOT | ET),
                wait(0),
            ],
        },
        Scenario {
            name: "two instances, LT and ET, on a send buffer filled and drained; DEL in one",
            steps: vec![
                Create,
                Create,
                Connect,
                add(0, 0, IN | OUT),
                add(1, 0, IN | OUT | ET),
                wait(0),
                wait(1),
                Do(0, AppFill),
                wait(0),
                wait(1),
                Do(0, PeerWrite(3)),
                wait(0),
                wait(1),
                Do(0, PeerDrain),
                wait(0),
                wait(1),
                del(0, 0),
                Do(0, PeerWrite(3)),
                wait(0),
                wait(1),
                wait(1),
            ],
        },
        Scenario {
            name: "closing the socket removes it from every instance",
            steps: vec![
                Create,
                Create,
                Connect,
                Connect,
                add(0, 0, IN),
                add(1, 0, IN | ET),
                add(0, 1, IN),
                Do(0, PeerWrite(5)),
                Do(1, PeerWrite(5)),
                Do(0, AppClose),
                wait(0),
                wait(1),
            ],
        },
    ]
}

// ---- the comparison ---------------------------------------------------------------

/// One observable result of a step.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// `epoll_ctl`: Ok or the errno.
    Ctl(Result<(), i32>),
    /// `epoll_wait`: (connection, mask) in order.
    Wait(Vec<(u64, u32)>),
}

/// Something that can play a scenario.
trait Backend {
    fn create(&mut self);
    fn connect(&mut self);
    fn ctl(&mut self, ep: usize, op: CtlOp, conn: usize, events: Events) -> Result<(), i32>;
    fn act(&mut self, conn: usize, action: Action);
    fn wait(&mut self, ep: usize, max: usize) -> Vec<(u64, u32)>;
}

fn play(backend: &mut dyn Backend, steps: &[Step]) -> Vec<(usize, Outcome)> {
    let mut transcript = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        match *step {
            Create => backend.create(),
            Connect => backend.connect(),
            Step::Ctl(ep, op, conn, events) => {
                transcript.push((i, Outcome::Ctl(backend.ctl(ep, op, conn, events))));
            }
            Do(conn, action) => backend.act(conn, action),
            Wait(ep, max) => transcript.push((i, Outcome::Wait(backend.wait(ep, max)))),
        }
    }
    transcript
}

fn show(steps: &[Step], transcript: &[(usize, Outcome)]) -> String {
    let mut s = String::new();
    for (i, outcome) in transcript {
        let shown = match outcome {
            Outcome::Ctl(r) => format!("{r:?}"),
            Outcome::Wait(evs) => {
                let evs: Vec<String> = evs
                    .iter()
                    .map(|(d, m)| format!("#{d} {:?}", Events::from_bits_truncate(*m)))
                    .collect();
                format!("[{}]", evs.join(", "))
            }
        };
        s += &format!("  step {i:2} {:?} -> {shown}\n", steps[*i]);
    }
    s
}

/// Runs every scenario on Linux and on ours (mutated as asked); returns the names of the
/// scenarios whose transcripts differ, with both transcripts.
fn compare_all(mutation: Mutation) -> Vec<String> {
    let mut differing = Vec::new();
    for scenario in scenarios() {
        let linux = play(&mut Linux::new(), &scenario.steps);
        let ours = play(&mut Ours::new(mutation), &scenario.steps);
        // Shown with `cargo test -- --nocapture`.
        if mutation == Mutation::None {
            println!("{}\n{}", scenario.name, show(&scenario.steps, &linux));
        }
        if linux != ours {
            differing.push(format!(
                "{}\nLinux:\n{}ours ({mutation:?}):\n{}",
                scenario.name,
                show(&scenario.steps, &linux),
                show(&scenario.steps, &ours)
            ));
        }
    }
    differing
}

#[test]
fn ours_matches_linux_epoll_on_kernel_tcp_sockets() {
    let differing = compare_all(Mutation::None);
    assert!(
        differing.is_empty(),
        "differs from Linux:\n{}",
        differing.join("\n")
    );
}

/// Runs a mutated version of ours and checks that the scenarios written for the mutated
/// behaviour (named by their opening words) are among those that differ from Linux.
fn assert_caught(mutation: Mutation, expected: &[&str]) {
    let differing = compare_all(mutation);
    let names: Vec<&str> = differing
        .iter()
        .map(|d| d.lines().next().unwrap_or_default())
        .collect();
    println!("{mutation:?} caught by: {names:#?}");
    for want in expected {
        assert!(
            names.iter().any(|n| n.starts_with(want)),
            "{mutation:?} not caught by {want:?}"
        );
    }
}

#[test]
fn parity_test_catches_edge_triggered_treated_as_level_triggered() {
    assert_caught(
        Mutation::EtAsLt,
        &[
            "edge-triggered IN:",
            "edge-triggered OUT:",
            "three instances",
        ],
    );
}

#[test]
fn parity_test_catches_oneshot_ignored() {
    assert_caught(Mutation::OneshotIgnored, &["ONESHOT:", "three instances"]);
}

#[test]
fn parity_test_catches_missing_wake_on_new_data() {
    assert_caught(Mutation::NoArrivalWake, &["edge-triggered IN:"]);
}

#[test]
fn parity_test_catches_missing_state_change_wake() {
    assert_caught(
        Mutation::NoStateChangeWake,
        &["state change wakes", "application shuts down first"],
    );
}

// ---- ours: EpollContext driven by a model socket -----------------------------------

/// A deliberate bug in our side, to show the comparison can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mutation {
    None,
    /// ET stripped from every interest.
    EtAsLt,
    /// ONESHOT stripped from every interest.
    OneshotIgnored,
    /// New data raises only the level, no wake-up of its own.
    NoArrivalWake,
    /// FIN, RST and shutdown raise only level edges, no key-less wake-up.
    NoStateChangeWake,
}

/// What the socket layer will know about one connection.
#[derive(Clone, Copy, Debug, Default)]
struct ModelSocket {
    unread: usize,
    /// A FIN arrived (`RCV_SHUTDOWN`).
    read_shut: bool,
    /// We sent a FIN (`SEND_SHUTDOWN`).
    write_shut: bool,
    /// An RST arrived and the error was not read yet.
    error: bool,
    /// The send buffer is full.
    send_full: bool,
}

impl ModelSocket {
    /// What Linux's `tcp_poll` would say.
    fn readiness(&self) -> Events {
        let mut r = Events::EMPTY;
        if self.unread > 0 || self.read_shut {
            r |= IN;
        }
        if self.read_shut {
            r |= RDHUP;
        }
        if !self.send_full || self.write_shut {
            r |= OUT;
        }
        if self.read_shut && self.write_shut {
            r |= Events::HUP;
        }
        if self.error {
            r |= Events::ERR;
        }
        r
    }
}

struct Ours {
    cx: EpollContext,
    eps: Vec<EpollId>,
    socks: Vec<ModelSocket>,
    mutation: Mutation,
}

impl Ours {
    fn new(mutation: Mutation) -> Ours {
        Ours {
            cx: EpollContext::new(Limits::default()).unwrap(),
            eps: Vec::new(),
            socks: Vec::new(),
            mutation,
        }
    }
}

impl Backend for Ours {
    fn create(&mut self) {
        self.eps.push(self.cx.epoll_create().unwrap());
    }

    fn connect(&mut self) {
        let sock = ModelSocket::default();
        let fd = Fd(self.socks.len() as u32);
        self.cx.open_fd(fd, sock.readiness()).unwrap();
        self.socks.push(sock);
    }

    fn ctl(&mut self, ep: usize, op: CtlOp, conn: usize, mut events: Events) -> Result<(), i32> {
        match self.mutation {
            Mutation::EtAsLt => events = events - ET,
            Mutation::OneshotIgnored => events = events - ONESHOT,
            _ => {}
        }
        let event = Event::new(events, conn as u64);
        self.cx
            .epoll_ctl(self.eps[ep], op, Fd(conn as u32), event)
            .map_err(|e| e.errno())
    }

    fn act(&mut self, conn: usize, action: Action) {
        let s = &mut self.socks[conn];
        let state_change = if self.mutation == Mutation::NoStateChangeWake {
            Events::EMPTY
        } else {
            Events::READINESS
        };
        let wake = match action {
            PeerWrite(n) => {
                s.unread += n;
                if self.mutation == Mutation::NoArrivalWake {
                    Events::EMPTY
                } else {
                    IN
                }
            }
            AppRead(n) => {
                s.unread -= n;
                Events::EMPTY
            }
            AppWrite(_) => Events::EMPTY,
            PeerShutdown => {
                s.read_shut = true;
                state_change
            }
            AppShutdown => {
                s.write_shut = true;
                state_change
            }
            PeerReset => {
                s.read_shut = true;
                s.write_shut = true;
                s.error = true;
                state_change
            }
            TakeError => {
                s.error = false;
                Events::EMPTY
            }
            AppFill => {
                s.send_full = true;
                Events::EMPTY
            }
            PeerDrain => {
                s.send_full = false;
                OUT
            }
            AppClose => {
                self.cx.close_fd(Fd(conn as u32)).unwrap();
                return;
            }
        };
        let readiness = s.readiness();
        self.cx.notify(Fd(conn as u32), readiness, wake).unwrap();
    }

    fn wait(&mut self, ep: usize, max: usize) -> Vec<(u64, u32)> {
        let mut out = vec![Event::default(); max];
        let n = self.cx.epoll_wait(self.eps[ep], &mut out).unwrap();
        out[..n].iter().map(|e| (e.data, e.events.bits())).collect()
    }
}

// ---- Linux: epoll on kernel TCP sockets over loopback ------------------------------

/// Thin wrappers over the system calls (shared with the runtime's epoll parity test);
/// every `unsafe` of this file is there.
#[path = "common/linux_sys.rs"]
mod sys;

/// `tcpi_state` values (include/net/tcp_states.h).
const TCP_FIN_WAIT2: u8 = 5;
const TCP_CLOSE: u8 = 7;
const TCP_CLOSE_WAIT: u8 = 8;

/// Small buffers make "fill the send buffer" quick.
const PEER_RCVBUF: libc::c_int = 4096;
const APP_SNDBUF: libc::c_int = 4096;

struct KernelConn {
    /// None once closed.
    app: Option<TcpStream>,
    /// None once reset.
    peer: Option<TcpStream>,
    app_fd: RawFd,
    /// Bytes the application wrote that the peer has not read.
    in_flight: usize,
}

struct Linux {
    listener: TcpListener,
    eps: Vec<OwnedFd>,
    conns: Vec<KernelConn>,
}

impl Linux {
    fn new() -> Linux {
        Linux {
            listener: TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind loopback"),
            eps: Vec::new(),
            conns: Vec::new(),
        }
    }
}

/// Waits until `done` holds; the kernel works on loopback segments in softirq context
/// and delayed ACKs take up to ~40 ms, so this is normally immediate and always short.
fn settle(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "kernel never reached: {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl Backend for Linux {
    fn create(&mut self) {
        self.eps.push(sys::epoll_create());
    }

    fn connect(&mut self) {
        let addr = match self.listener.local_addr().expect("local_addr") {
            std::net::SocketAddr::V4(a) => a,
            std::net::SocketAddr::V6(_) => unreachable!("bound to IPv4"),
        };
        let peer =
            sys::connect_with_rcvbuf(SocketAddrV4::new(*addr.ip(), addr.port()), PEER_RCVBUF);
        let (app, _) = self.listener.accept().expect("accept");
        app.set_nonblocking(true).expect("nonblocking");
        peer.set_nonblocking(true).expect("nonblocking");
        let app_fd = app.as_raw_fd();
        sys::set_int_option(app_fd, libc::SOL_SOCKET, libc::SO_SNDBUF, APP_SNDBUF);
        self.conns.push(KernelConn {
            app: Some(app),
            peer: Some(peer),
            app_fd,
            in_flight: 0,
        });
    }

    fn ctl(&mut self, ep: usize, op: CtlOp, conn: usize, events: Events) -> Result<(), i32> {
        let op = match op {
            CtlOp::Add => libc::EPOLL_CTL_ADD,
            CtlOp::Mod => libc::EPOLL_CTL_MOD,
            CtlOp::Del => libc::EPOLL_CTL_DEL,
        };
        let fd = self.conns[conn].app_fd;
        sys::epoll_ctl(self.eps[ep].as_raw_fd(), op, fd, events.bits(), conn as u64)
    }

    fn act(&mut self, conn: usize, action: Action) {
        let c = &mut self.conns[conn];
        let fd = c.app_fd;
        match action {
            PeerWrite(n) => {
                let before = sys::unread(fd);
                c.peer
                    .as_mut()
                    .unwrap()
                    .write_all(&vec![b'p'; n])
                    .expect("peer write");
                settle("data arrived", || sys::unread(fd) == before + n);
            }
            AppRead(n) => {
                let mut buf = vec![0; n];
                c.app
                    .as_mut()
                    .unwrap()
                    .read_exact(&mut buf)
                    .expect("app read");
            }
            AppWrite(n) => {
                let wrote = c
                    .app
                    .as_mut()
                    .unwrap()
                    .write(&vec![b'a'; n])
                    .expect("app write");
                assert_eq!(wrote, n, "AppWrite must fit in the send buffer");
                c.in_flight += n;
            }
            PeerShutdown => {
                let target = if sys::tcp_state(fd) == TCP_FIN_WAIT2 {
                    TCP_CLOSE
                } else {
                    TCP_CLOSE_WAIT
                };
                c.peer
                    .as_ref()
                    .unwrap()
                    .shutdown(std::net::Shutdown::Write)
                    .expect("peer shutdown");
                settle("FIN arrived", || sys::tcp_state(fd) == target);
            }
            AppShutdown => {
                let target = if sys::tcp_state(fd) == TCP_CLOSE_WAIT {
                    TCP_CLOSE
                } else {
                    TCP_FIN_WAIT2
                };
                c.app
                    .as_ref()
                    .unwrap()
                    .shutdown(std::net::Shutdown::Write)
                    .expect("app shutdown");
                settle("our FIN acknowledged", || sys::tcp_state(fd) == target);
            }
            PeerReset => {
                let peer = c.peer.take().unwrap();
                sys::set_linger_zero(peer.as_raw_fd());
                drop(peer);
                settle("RST arrived", || sys::tcp_state(fd) == TCP_CLOSE);
            }
            TakeError => {
                sys::int_option(fd, libc::SOL_SOCKET, libc::SO_ERROR);
            }
            AppFill => {
                // Fill until a write has kept failing for longer than a delayed ACK, so
                // that no late acknowledgment frees space after the next epoll_wait.
                let app = c.app.as_mut().unwrap();
                let chunk = [b'f'; 1024];
                let mut quiet_since = Instant::now();
                while quiet_since.elapsed() < Duration::from_millis(60) {
                    match app.write(&chunk) {
                        Ok(n) => {
                            c.in_flight += n;
                            quiet_since = Instant::now();
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(e) => panic!("app write: {e}"),
                    }
                }
            }
            PeerDrain => {
                let peer = c.peer.as_mut().unwrap();
                let mut buf = [0; 4096];
                let in_flight = &mut c.in_flight;
                settle("peer read everything and it was acknowledged", || {
                    loop {
                        match peer.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => *in_flight -= n,
                            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(e) => panic!("peer read: {e}"),
                        }
                    }
                    *in_flight == 0 && sys::unacked(fd) == 0
                });
            }
            AppClose => {
                c.app = None;
            }
        }
    }

    fn wait(&mut self, ep: usize, max: usize) -> Vec<(u64, u32)> {
        sys::epoll_wait(self.eps[ep].as_raw_fd(), max, 0)
    }
}
