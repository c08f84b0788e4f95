//! Start-up (mTCP's `mtcp_init` and `mtcp_create_context`), the per-core
//! [`Context`] handle with mTCP's call names, and the stack thread loop.

use crate::affinity::ForwardLink;
use crate::api::{self, Error, Op, Outcome, Reply};
use crate::app::AppSide;
use crate::bridge::{BufPool, Call, Msg, POOL_BUFFERS};
use crate::config::{Backend, RuntimeConfig, ThreadMode, XdpAttach};
use crate::driver::{lock, try_lock, Driver, BACKSTOP};
use crate::mailbox::Mailbox;
use crate::queue::AnyQueue;
use crate::stack::{CoreLinks, CoreStack, StackError};
use crate::stats::CoreStats;
use epoll_events::{CtlOp, Event, Events};
use packet_io::{AttachMode, MemQueue, SteerConfig, Steering, XdpConfig};
use socket_api::{Errno, Fd, MsgFlags, Shutdown, SockOpt, SockOptName};
use std::cell::RefCell;
use std::io::{IoSlice, IoSliceMut};
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Largest chunk one read or write moves; longer writes are split (each
/// chunk one call).
pub const MAX_CALL_BYTES: usize = 256 * 1024;

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Opening the AF_XDP queues failed.
    #[error("opening AF_XDP queues: {0}")]
    Xdp(#[from] packet_io::XdpError),
    /// A core's stack could not be built.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The number of queues given does not match the cores configured.
    #[error("{queues} queues for {cores} cores")]
    QueueCount {
        /// Queues given.
        queues: usize,
        /// Cores configured.
        cores: usize,
    },
    /// `net.mac` is not set and the interface's address could not be read.
    #[error("reading the interface's MAC address: {0}")]
    Mac(std::io::Error),
    /// A stack thread could not be spawned.
    #[error("spawning a stack thread: {0}")]
    Spawn(std::io::Error),
}

type Mb = Mailbox<Call, Msg>;

/// How long a threaded stack sleeps at most while its application is
/// running (not waiting on it) and just posted: calls posted in a burst do
/// not wake the stack, which takes them when the application next waits,
/// or after this. Doubled on each idle sleep, up to the maximum.
const POST_BACKSTOP: Duration = Duration::from_millis(1);
const POST_BACKSTOP_MAX: Duration = Duration::from_millis(64);

/// A busy threaded stack wakes its application after this many passes that
/// had more work (and always before it sleeps).
const WAKE_EVERY_PASSES: u32 = 4;

/// The running stacks: one thread per core in threaded mode (none in
/// run-to-completion mode, where the contexts carry the stacks). Dropping
/// it stops the stack threads.
#[derive(Debug)]
pub struct Runtime {
    shutdown: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    mailboxes: Vec<Arc<Mb>>,
    _steering: Option<Steering>,
}

impl Runtime {
    /// Starts the configured backend: for `af_xdp`, opens one queue per core
    /// on the interface (in the calling thread's network namespace) and
    /// attaches the steering program. Returns one [`Context`] per core, in
    /// the order of `stack.cores`. The `memory` backend needs its queues
    /// from the caller: use [`Runtime::start_with_queues`].
    pub fn start(mut config: RuntimeConfig) -> Result<(Runtime, Vec<Context>), StartError> {
        config.validate()?;
        if config.net.mac.is_none() && config.net.backend == Backend::AfXdp {
            // The interface's own address, as the kernel knows it.
            let mac = packet_io::interface_mac(&config.net.interface).map_err(StartError::Mac)?;
            config.net.mac = Some(wire::EthernetAddress(mac).to_string());
        }
        if config.net.backend == Backend::Memory {
            return Err(StartError::Config(crate::config::ConfigError::Invalid(
                "the memory backend needs Runtime::start_with_queues".into(),
            )));
        }
        let ids: Vec<u32> = match &config.net.queues {
            Some(q) => q.clone(),
            None => (0..config.core_count() as u32).collect(),
        };
        let xdp = XdpConfig {
            frames: config.net.xdp_frames,
            fill_target: config.net.xdp_frames / 2,
            ring_size: (config.net.xdp_frames / 2).max(64),
            batch: config.net.batch,
            mode: match config.net.xdp_attach {
                XdpAttach::NativeOrGeneric => AttachMode::NativeOrGeneric,
                XdpAttach::Native => AttachMode::Native,
                XdpAttach::Generic => AttachMode::Generic,
            },
            ..XdpConfig::default()
        };
        let (steering, queues) = packet_io::open_queues(
            &config.net.interface,
            Some(&ids),
            &xdp,
            // ICMP too: netif answers echo requests and hands ICMP errors
            // quoting our segments to the engine (RFC 9293 section 3.9.4).
            &SteerConfig::tcp(config.net.address).with_icmp(true),
        )?;
        let queues = queues.into_iter().map(AnyQueue::Xdp).collect();
        let (mut rt, ctxs) = Self::start_with_queues(config, queues)?;
        rt._steering = Some(steering);
        Ok((rt, ctxs))
    }

    /// Starts over in-memory queues, one per core (the memory backend).
    pub fn start_memory(
        config: RuntimeConfig,
        queues: Vec<MemQueue>,
    ) -> Result<(Runtime, Vec<Context>), StartError> {
        Self::start_with_queues(config, queues.into_iter().map(AnyQueue::Memory).collect())
    }

    /// Starts over the given queues, one per core.
    pub fn start_with_queues(
        config: RuntimeConfig,
        queues: Vec<AnyQueue>,
    ) -> Result<(Runtime, Vec<Context>), StartError> {
        config.validate()?;
        let cores = config.core_count();
        if queues.len() != cores {
            return Err(StartError::QueueCount {
                queues: queues.len(),
                cores,
            });
        }
        let epoch = Instant::now();
        let seed = if config.stack.seed == 0 {
            epoch.elapsed().as_nanos() as u64
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
        } else {
            config.stack.seed
        };
        let mut stacks = Vec::with_capacity(cores);
        for (core, q) in queues.into_iter().enumerate() {
            stacks.push(CoreStack::new(&config, core, q, epoch, seed)?);
        }
        // Per-pair forwarding links: links[from][to].
        let links: Vec<Vec<Option<Arc<ForwardLink>>>> = (0..cores)
            .map(|from| {
                (0..cores)
                    .map(|to| (from != to).then(|| ForwardLink::new(config.stack.forward_queue)))
                    .collect()
            })
            .collect();
        let wakers: Vec<_> = stacks.iter().map(|s| s.waker()).collect();
        for (core, stack) in stacks.iter_mut().enumerate() {
            stack.set_links(CoreLinks {
                inbound: (0..cores).map(|from| links[from][core].clone()).collect(),
                outbound: links[core].clone(),
                wakers: (0..cores)
                    .map(|c| (c != core).then(|| wakers[c].clone()))
                    .collect(),
            });
        }
        let shutdown = Arc::new(AtomicBool::new(false));
        let mut rt = Runtime {
            shutdown: Arc::clone(&shutdown),
            threads: Vec::new(),
            mailboxes: Vec::new(),
            _steering: None,
        };
        let mut contexts = Vec::with_capacity(cores);
        for (core, stack) in stacks.into_iter().enumerate() {
            let cpu = config.stack.cores[core];
            let pin = config.stack.pin;
            match config.stack.mode {
                ThreadMode::RunToCompletion => contexts.push(Context {
                    core,
                    cpu,
                    pin,
                    inner: RefCell::new(Inner::Direct(Box::new(stack))),
                }),
                ThreadMode::Threaded => {
                    let mb = Arc::new(Mb::new(stack.waker()));
                    let thread_mb = Arc::clone(&mb);
                    let stop = Arc::clone(&shutdown);
                    let pool = Arc::new(BufPool::new(POOL_BUFFERS));
                    let thread_pool = Arc::clone(&pool);
                    let max_fds = config.stack.max_concurrency + crate::stack::EXTRA_FDS;
                    let spin = Duration::from_micros(config.stack.spin_us);
                    let epoll = epoll_events::EpollContext::new(epoll_events::Limits {
                        max_instances: 16,
                        max_fds,
                        max_registrations: max_fds * 2,
                    })
                    .map_err(|e| StartError::Stack(StackError::Epoll(e)))?;
                    let driver = Arc::new(Mutex::new(Driver::new(stack, max_fds)));
                    let thread_driver = Arc::clone(&driver);
                    let handle = std::thread::Builder::new()
                        .name(format!("mtcp-stack-{core}"))
                        .spawn(move || {
                            if pin {
                                pin_to(cpu);
                            }
                            stack_thread(&thread_driver, &thread_mb, &stop, &thread_pool);
                        })
                        .map_err(StartError::Spawn)?;
                    rt.threads.push(handle);
                    rt.mailboxes.push(Arc::clone(&mb));
                    contexts.push(Context {
                        core,
                        cpu,
                        pin,
                        inner: RefCell::new(Inner::Threaded(Box::new(AppSide::new(
                            mb, pool, driver, spin, epoll, max_fds,
                        )))),
                    });
                }
            }
        }
        Ok((rt, contexts))
    }

    /// Stops the stack threads and waits for them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for mb in &self.mailboxes {
            mb.wake_stack();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pin_to(cpu: usize) -> bool {
    let ok = core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
    if !ok {
        tracing::warn!(cpu, "could not pin the thread to its CPU; running unpinned");
    }
    ok
}

/// The stack thread: the mTCP loop of one core (see the `driver` module for
/// who runs the passes when).
fn stack_thread(driver: &Mutex<Driver>, mb: &Mb, stop: &AtomicBool, pool: &BufPool) {
    let _exit = crate::mailbox::ExitGuard(mb);
    mb.register_stack_thread();
    let mut busy_passes = 0;
    let mut backstop = POST_BACKSTOP;
    // The application has not waited on the stack yet: until it does, this
    // thread watches the device.
    let mut app_started = false;
    // Woken from the device: run a pass at once.
    let mut woken = false;
    loop {
        if stop.load(Ordering::Acquire) {
            lock(driver).stop(mb);
            return;
        }
        app_started |= mb.app_parked() || mb.app_wants_driver();
        if app_started && !mb.app_parked() {
            // The application runs: it runs the passes itself when it
            // waits. Back it up for the time it works elsewhere.
            busy_passes = 0;
            if !std::mem::take(&mut woken) {
                mb.backstop_sleep(BACKSTOP);
            }
            if mb.app_parked() {
                continue;
            }
            let Some(mut d) = try_lock(driver) else {
                continue;
            };
            let now = Instant::now();
            if mb.is_closed() || d.pass(mb, pool, true, now) {
                d.wake_app(mb);
                continue;
            }
            d.wake_app(mb);
            if d.is_holding(mb, now) {
                // The application handles a batch; new input waits for its
                // answers (the device would only wake us for it again).
                continue;
            }
            // Nothing to do: watch the device (the application kicks us
            // when it waits and finds the driver held).
            sleep_on_device(&mut d, mb, &mut backstop);
            woken = true;
            continue;
        }
        let mut d = lock(driver);
        let had_calls = mb.has_calls();
        let work = d.pass(mb, pool, true, Instant::now());
        if had_calls {
            backstop = POST_BACKSTOP;
        }
        if work && !mb.app_wants_driver() {
            // More to do: the application, sharing our CPU, would take it
            // over if woken now; wake it every few passes only, so that it
            // gets bigger batches and we are not stopped mid-loop.
            busy_passes += 1;
            if busy_passes >= WAKE_EVERY_PASSES {
                busy_passes = 0;
                d.wake_app(mb);
            }
            continue;
        }
        busy_passes = 0;
        d.wake_app(mb);
        if (app_started && !mb.app_parked()) || mb.app_wants_driver() {
            // Woken (or running): it takes the passes over when it waits.
            continue;
        }
        sleep_on_device(&mut d, mb, &mut backstop);
    }
}

/// Step 7 of the loop: the stack thread's select-style wait on the device,
/// holding the driver, until input, a call (the application kicks), a
/// timer or the backstop for calls posted without a kick.
fn sleep_on_device(d: &mut Driver, mb: &Mb, backstop: &mut Duration) {
    if mb.stack_may_sleep() {
        let now = Instant::now();
        let (mut until, overflow) = d.wake_hints();
        if overflow {
            // The application drains its queue without telling us.
            until = Some(now + Duration::from_micros(100));
        } else if !mb.app_parked() {
            // The application is running and may post without waking us
            // (it wakes us when it waits): look at its calls now and then,
            // backing off while it posts nothing.
            let at = now + *backstop;
            until = Some(until.map_or(at, |u| u.min(at)));
            *backstop = (*backstop * 2).min(POST_BACKSTOP_MAX);
        }
        d.stack.wait(until);
    }
    mb.stack_awake();
}

enum Inner {
    /// The application's side of a threaded context.
    Threaded(Box<AppSide>),
    /// The stack itself (run-to-completion).
    Direct(Box<CoreStack>),
}

/// One per-core context (mTCP's `mctx_t`): the application's handle on the
/// stack of one core, with mTCP's call names. Calls take `&self`; a context
/// belongs to one application thread at a time (it is `Send`, not `Sync`).
///
/// In threaded mode reads, writes, accepts and epoll waits run on the
/// application's copy of its sockets and post what they did to the core's
/// stack thread, waiting only when the copy says the call would block;
/// calls only the stack can answer wait for its reply. In
/// run-to-completion mode the call runs on the calling thread, which also
/// drives the stack (every call runs a pass of the loop, and blocking calls
/// poll and sleep in the stack's wait).
pub struct Context {
    core: usize,
    cpu: usize,
    pin: bool,
    inner: RefCell<Inner>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("core", &self.core)
            .field("cpu", &self.cpu)
            .finish_non_exhaustive()
    }
}

macro_rules! expect_reply {
    ($r:expr, $pat:ident) => {
        match $r {
            Reply::$pat(v) => v,
            _ => Err(Error::Stopped),
        }
    };
}

impl Context {
    /// The core index of this context (0-based, order of `stack.cores`).
    pub fn core(&self) -> usize {
        self.core
    }

    /// The CPU this context runs on.
    pub fn cpu(&self) -> usize {
        self.cpu
    }

    /// Pins the calling thread to this context's CPU (mTCP pairs the
    /// application thread with its stack thread on one core). A no-op
    /// returning true when pinning is off in the configuration.
    pub fn pin_current_thread(&self) -> bool {
        !self.pin || pin_to(self.cpu)
    }

    fn call(&self, op: Op) -> Reply {
        let mut inner = self.inner.borrow_mut();
        match &mut *inner {
            Inner::Threaded(app) => app.sync(op),
            Inner::Direct(stack) => {
                let mut op = op;
                let waits = matches!(op, Op::EpollWait { .. });
                // Calls whose own output leaves at once (as on Linux) unless
                // a batch holds it (writes go through `direct_io`).
                let output = matches!(
                    op,
                    Op::Connect(..)
                        | Op::Shutdown(..)
                        | Op::Close(..)
                        | Op::CloseBlocking(..)
                        | Op::Abort(..)
                );
                if waits {
                    // What the engine owes since the last pass (ACKs of the
                    // input the application just handled) goes out now.
                    let now = Instant::now();
                    stack.flush(now);
                    // Then new input, so that events always reach an
                    // application whose epoll set is never empty (a socket
                    // level-triggered on EPOLLOUT).
                    stack.poll_input(now);
                }
                // The first deadline a blocked call got (SO_RCVTIMEO and
                // SO_SNDTIMEO count from the call's start).
                let mut first: Option<Option<Instant>> = None;
                loop {
                    match api::execute(stack, op) {
                        Outcome::Done(r) => {
                            // No pass per call: input waits for the next
                            // wait, and the output of a write, close or
                            // connect leaves with the ACKs owed for the input
                            // the application answered (one segment carries
                            // both).
                            stack.publish();
                            if waits {
                                stack.in_batch = matches!(r, Reply::Events(Ok(n), _) if n > 0);
                            } else if output {
                                send_output(stack, 0);
                            }
                            return r;
                        }
                        Outcome::Block(o, deadline) => {
                            let deadline = *first.get_or_insert(deadline);
                            if deadline.is_some_and(|d| Instant::now() >= d) {
                                return api::expire(stack, o);
                            }
                            // Output of the last input that no event of the
                            // application answered (SYN-ACKs, ACKs), and what
                            // its batch of events held, goes now; then new
                            // input.
                            stack.in_batch = false;
                            let now = Instant::now();
                            let sent = stack.flush(now);
                            if !stack.poll_input(now) && !sent && !stack.has_forwarded() {
                                stack.wait(deadline);
                            }
                            op = o;
                        }
                    }
                }
            }
        }
    }

    /// Runs one pass of the stack loop on the calling thread. Returns true
    /// when anything happened. In threaded mode it takes the stack from
    /// its thread for the pass, and ends the batch of events the
    /// application was handling, as [`flush`](Self::flush) does.
    pub fn poll(&self) -> bool {
        match &mut *self.inner.borrow_mut() {
            Inner::Direct(stack) => stack.cycle(),
            Inner::Threaded(app) => app.flush(),
        }
    }

    // ---- sockets ----

    /// `mtcp_socket(AF_INET, SOCK_STREAM, 0)`: a blocking TCP socket.
    pub fn socket(&self) -> Result<Fd, Error> {
        expect_reply!(self.call(Op::Socket { nonblocking: false }), Fd)
    }

    /// A TCP socket in non-blocking mode (`SOCK_NONBLOCK`).
    pub fn socket_nonblocking(&self) -> Result<Fd, Error> {
        expect_reply!(self.call(Op::Socket { nonblocking: true }), Fd)
    }

    /// `mtcp_socket(domain, type, protocol)` with raw values: `AF_INET`,
    /// `SOCK_STREAM` (with `SOCK_NONBLOCK`), protocol 0 or `IPPROTO_TCP`;
    /// anything else is `EAFNOSUPPORT`, `ESOCKTNOSUPPORT` or `EPROTONOSUPPORT`.
    pub fn socket_raw(&self, domain: i32, ty: i32, protocol: i32) -> Result<Fd, Error> {
        expect_reply!(
            self.call(Op::SocketRaw {
                domain,
                ty,
                protocol
            }),
            Fd
        )
    }

    /// `mtcp_socket_ioctl(fd, request)`: `FIONREAD` (bytes ready to read);
    /// other requests are `EINVAL`.
    pub fn ioctl(&self, fd: Fd, request: u64) -> Result<usize, Error> {
        expect_reply!(self.call(Op::Ioctl(fd, request)), Size)
    }

    /// `mtcp_bind`.
    pub fn bind(&self, fd: Fd, addr: SocketAddrV4) -> Result<(), Error> {
        expect_reply!(self.call(Op::Bind(fd, addr)), Unit)
    }

    /// `mtcp_listen`.
    pub fn listen(&self, fd: Fd, backlog: i32) -> Result<(), Error> {
        expect_reply!(self.call(Op::Listen(fd, backlog)), Unit)
    }

    /// `mtcp_accept`: blocks on a blocking socket until a connection is ready.
    pub fn accept(&self, fd: Fd) -> Result<(Fd, SocketAddrV4), Error> {
        if let Inner::Threaded(app) = &mut *self.inner.borrow_mut() {
            return app.accept(fd);
        }
        expect_reply!(self.call(Op::Accept(fd)), Accepted)
    }

    /// `mtcp_connect`: on a blocking socket, waits for the handshake and
    /// returns its result; on a non-blocking one, `EINPROGRESS`.
    pub fn connect(&self, fd: Fd, remote: SocketAddrV4) -> Result<(), Error> {
        if let Inner::Threaded(app) = &mut *self.inner.borrow_mut() {
            return app.connect(fd, remote);
        }
        expect_reply!(self.call(Op::Connect(fd, remote)), Unit)
    }

    /// `mtcp_recv(fd, buf, flags)` (`MSG_PEEK`, `MSG_DONTWAIT`).
    pub fn recv(&self, fd: Fd, buf: &mut [u8], flags: MsgFlags) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(MAX_CALL_BYTES);
        match &mut *self.inner.borrow_mut() {
            Inner::Threaded(app) => app.recv(fd, &mut buf[..len], flags),
            // No crossing: read straight into the caller's buffer.
            Inner::Direct(stack) => direct_io(stack, fd, flags, SockOptName::RcvTimeo, |s| {
                s.recv(fd, &mut buf[..len], flags)
            }),
        }
    }

    /// `mtcp_read`.
    pub fn read(&self, fd: Fd, buf: &mut [u8]) -> Result<usize, Error> {
        self.recv(fd, buf, MsgFlags::NONE)
    }

    /// `mtcp_readv`: fills the buffers in order.
    pub fn readv(&self, fd: Fd, bufs: &mut [IoSliceMut<'_>]) -> Result<usize, Error> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        match &mut *self.inner.borrow_mut() {
            Inner::Threaded(app) => app.readv(fd, bufs),
            Inner::Direct(stack) => {
                direct_io(stack, fd, MsgFlags::NONE, SockOptName::RcvTimeo, |s| {
                    s.readv(fd, bufs)
                })
            }
        }
    }

    /// `mtcp_send(fd, buf, flags)`: on a blocking socket, waits until at
    /// least part of `buf` is queued and returns how much (at most
    /// [`MAX_CALL_BYTES`]); use [`write_all`](Self::write_all) for all of it.
    pub fn send(&self, fd: Fd, buf: &[u8], flags: MsgFlags) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(MAX_CALL_BYTES);
        match &mut *self.inner.borrow_mut() {
            Inner::Threaded(app) => app.send(fd, &buf[..len], flags),
            Inner::Direct(stack) => direct_io(stack, fd, flags, SockOptName::SndTimeo, |s| {
                s.send(fd, &buf[..len], flags)
            }),
        }
    }

    /// `mtcp_write`.
    pub fn write(&self, fd: Fd, buf: &[u8]) -> Result<usize, Error> {
        self.send(fd, buf, MsgFlags::NONE)
    }

    /// Writes all of `buf` (blocking socket), looping over [`send`](Self::send).
    pub fn write_all(&self, fd: Fd, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            let n = self.write(fd, buf)?;
            buf = buf.get(n..).unwrap_or_default();
        }
        Ok(())
    }

    /// `mtcp_writev`: gathers the buffers and writes them as one call.
    pub fn writev(&self, fd: Fd, bufs: &[IoSlice<'_>]) -> Result<usize, Error> {
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        match &mut *self.inner.borrow_mut() {
            Inner::Threaded(app) => app.sendv(fd, bufs, MsgFlags::NONE),
            Inner::Direct(stack) => {
                direct_io(stack, fd, MsgFlags::NONE, SockOptName::SndTimeo, |s| {
                    s.writev(fd, bufs)
                })
            }
        }
    }

    /// `mtcp_shutdown`.
    pub fn shutdown(&self, fd: Fd, how: Shutdown) -> Result<(), Error> {
        if let Inner::Threaded(app) = &mut *self.inner.borrow_mut() {
            return app.shutdown(fd, how);
        }
        expect_reply!(self.call(Op::Shutdown(fd, how)), Unit)
    }

    /// `mtcp_close`: a socket or an epoll instance.
    pub fn close(&self, fd: Fd) -> Result<(), Error> {
        if let Inner::Threaded(app) = &mut *self.inner.borrow_mut() {
            return app.close(fd);
        }
        expect_reply!(self.call(Op::Close(fd)), Unit)
    }

    /// `mtcp_abort`: closes with a RST.
    pub fn abort(&self, fd: Fd) -> Result<(), Error> {
        if let Inner::Threaded(app) = &mut *self.inner.borrow_mut() {
            return app.abort(fd);
        }
        expect_reply!(self.call(Op::Abort(fd)), Unit)
    }

    /// `mtcp_getsockname`.
    pub fn getsockname(&self, fd: Fd) -> Result<SocketAddrV4, Error> {
        expect_reply!(self.call(Op::SockName(fd)), Addr)
    }

    /// `mtcp_getpeername`.
    pub fn getpeername(&self, fd: Fd) -> Result<SocketAddrV4, Error> {
        expect_reply!(self.call(Op::PeerName(fd)), Addr)
    }

    /// `mtcp_setsockopt`.
    pub fn setsockopt(&self, fd: Fd, opt: SockOpt) -> Result<(), Error> {
        expect_reply!(self.call(Op::SetOpt(fd, opt)), Unit)
    }

    /// `mtcp_getsockopt`.
    pub fn getsockopt(&self, fd: Fd, name: SockOptName) -> Result<SockOpt, Error> {
        expect_reply!(self.call(Op::GetOpt(fd, name)), Opt)
    }

    /// `mtcp_socket_ioctl(fd, FIONREAD)`: bytes ready to read.
    pub fn fionread(&self, fd: Fd) -> Result<usize, Error> {
        expect_reply!(self.call(Op::FionRead(fd)), Size)
    }

    /// `mtcp_setsock_nonblock` (and back to blocking with `false`).
    pub fn set_nonblocking(&self, fd: Fd, nonblocking: bool) -> Result<(), Error> {
        expect_reply!(self.call(Op::SetNonblocking(fd, nonblocking)), Unit)
    }

    /// Whether `fd` is in non-blocking mode.
    pub fn is_nonblocking(&self, fd: Fd) -> Result<bool, Error> {
        expect_reply!(self.call(Op::IsNonblocking(fd)), Bool)
    }

    // ---- epoll ----

    /// `mtcp_epoll_create`: an epoll instance, a descriptor in the socket space.
    pub fn epoll_create(&self) -> Result<Fd, Error> {
        if let Inner::Threaded(app) = &mut *self.inner.borrow_mut() {
            return app.epoll_create();
        }
        expect_reply!(self.call(Op::EpollCreate), Fd)
    }

    /// `mtcp_epoll_ctl`.
    pub fn epoll_ctl(&self, ep: Fd, op: CtlOp, fd: Fd, event: Event) -> Result<(), Error> {
        if let Inner::Threaded(app) = &mut *self.inner.borrow_mut() {
            return app.epoll_ctl(ep, op, fd, event);
        }
        expect_reply!(self.call(Op::EpollCtl { ep, op, fd, event }), Unit)
    }

    /// `mtcp_epoll_wait`: fills `events`, waiting up to `timeout` (`None`:
    /// forever; zero: no wait). Returns how many were filled.
    pub fn epoll_wait(
        &self,
        ep: Fd,
        events: &mut [Event],
        timeout: Option<Duration>,
    ) -> Result<usize, Error> {
        // The stack's event buffer, reused by every wait (no allocation per
        // call).
        let buf = match &mut *self.inner.borrow_mut() {
            Inner::Threaded(app) => return app.epoll_wait(ep, events, timeout),
            Inner::Direct(stack) => std::mem::take(&mut stack.event_buf),
        };
        // A timeout too large for the clock is no timeout at all.
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let (r, got) = match self.call(Op::EpollWait {
            ep,
            events: buf,
            max: events.len(),
            deadline,
        }) {
            Reply::Events(r, got) => (r, got),
            _ => return Err(Error::Stopped),
        };
        let r = r.inspect(|&n| events[..n].copy_from_slice(&got[..n]));
        if let Inner::Direct(stack) = &mut *self.inner.borrow_mut() {
            stack.event_buf = got;
        }
        r
    }

    /// Registers `fd` with `ep` for `events` (shorthand for `epoll_ctl` ADD
    /// with the descriptor as data).
    pub fn epoll_add(&self, ep: Fd, fd: Fd, events: Events) -> Result<(), Error> {
        self.epoll_ctl(ep, CtlOp::Add, fd, Event::new(events, u64::from(fd.0)))
    }

    /// Hands what this thread posted (writes, closes) to the stack now,
    /// and sends what the engine owes: ACKs held back until the
    /// application's next write or wait, and the output of the batch of
    /// events being handled (held until the next wait, for at most 5 ms).
    /// Threaded mode also batches the posted calls until the thread next
    /// waits on the stack (the stack thread takes them within a
    /// millisecond, and their output leaves at most 5 ms after the batch
    /// began); there this runs, on the calling thread, the pass that sends
    /// them. Call this before blocking or computing elsewhere when that
    /// matters.
    pub fn flush(&self) {
        match &mut *self.inner.borrow_mut() {
            Inner::Threaded(app) => {
                app.flush();
            }
            Inner::Direct(stack) => {
                stack.flush(Instant::now());
            }
        }
    }

    /// This core's counters.
    pub fn stats(&self) -> CoreStats {
        match self.call(Op::Stats) {
            Reply::Stats(s) => s,
            _ => CoreStats::default(),
        }
    }
}

/// Runs a data call of run-to-completion mode: retried after passes of the
/// stack (sleeping in its wait when idle) while it would block on a
/// blocking socket.
fn direct_io(
    stack: &mut CoreStack,
    fd: Fd,
    flags: MsgFlags,
    timeout: SockOptName,
    mut f: impl FnMut(&mut socket_api::SocketTable) -> Result<usize, Errno>,
) -> Result<usize, Error> {
    let mut deadline: Option<Option<Instant>> = None;
    loop {
        match f(&mut stack.sockets) {
            Err(Errno::EAGAIN)
                if !flags.dontwait() && matches!(stack.sockets.is_nonblocking(fd), Ok(false)) =>
            {
                let until = *deadline.get_or_insert_with(|| api::timeout(stack, fd, timeout));
                if until.is_some_and(|d| Instant::now() >= d) {
                    return Err(Errno::EAGAIN.into());
                }
                stack.in_batch = false;
                if !stack.cycle() && !stack.has_forwarded() {
                    stack.wait(until);
                }
            }
            r => {
                stack.publish();
                if timeout == SockOptName::SndTimeo {
                    // A write that found no room sends what it could not
                    // add to at once.
                    match r {
                        Ok(n) => send_output(stack, n),
                        Err(_) => send_output(stack, HOLD_BYTES),
                    }
                } else if matches!(r, Err(Errno::EAGAIN)) {
                    // A non-blocking read that found nothing takes new
                    // input; what the engine owes goes out with the
                    // application's next write or wait, or within
                    // OWED_OUTPUT_DELAY for one that only polls.
                    //
                    // Inside a batch of events the next wait takes input:
                    // input taken here would have its ACKs sent by that
                    // wait's flush before the application saw its events
                    // (a pure ACK of each SYN-ACK, then the request in a
                    // second segment). A batch that polls for longer than
                    // BATCH_HOLD has ended. (Only this path reads the
                    // clock: a read that returns bytes does not.)
                    let now = Instant::now();
                    let since = now.saturating_duration_since(stack.flushed_at);
                    if !stack.in_batch || since > BATCH_HOLD {
                        stack.in_batch = false;
                        stack.poll_input(now);
                        if since > OWED_OUTPUT_DELAY {
                            stack.flush(now);
                        }
                    }
                }
                return r.map_err(Error::from);
            }
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // Whatever the application posted last goes out now.
        self.flush();
    }
}

/// Run-to-completion: sends the output of a write, close, shutdown or
/// connect, with the ACKs owed, unless the call is part of a batch of
/// events the application is handling.
///
/// Inside a batch (after an `epoll_wait` that returned events, until the
/// application waits or blocks again) output is held, so that the answers
/// to a whole batch of events leave in one transmit batch (one TX ring
/// kick), a close's FIN rides on the segment of the write before it, and a
/// reply carries the ACK of the request. This is how mTCP's batched
/// crossing behaves, and how poll-loop stacks send at the end of a loop
/// iteration. The hold lasts at most [`BATCH_HOLD`] after the batch
/// began, and covers at most [`HOLD_BYTES`] written: the first output call
/// past either sends everything. An application that handles events and
/// then blocks outside the stack calls [`Context::flush`] first. `written`
/// is what the call added to a send buffer.
fn send_output(stack: &mut CoreStack, written: usize) {
    let now = Instant::now();
    stack.held_bytes = stack.held_bytes.saturating_add(written);
    if stack.in_batch
        && stack.held_bytes < HOLD_BYTES
        && now.saturating_duration_since(stack.flushed_at) < BATCH_HOLD
    {
        return;
    }
    stack.flush(now);
}

/// The most bytes a batch of events writes before its output leaves
/// without waiting for the application's next `epoll_wait` (both modes;
/// threaded mode counts the bytes of the writes a pass takes). A batch of
/// small answers (requests, responses of a few hundred bytes, FINs) is
/// held whole; a bulk writer's segments leave as it writes, so the
/// receiver works while the sender copies, as in a pipeline (holding a
/// whole send buffer cost a fifth of the bulk rate). About eleven
/// full-sized segments.
pub(crate) const HOLD_BYTES: usize = 16 * 1024;

/// Run-to-completion: the longest an application that only polls
/// (non-blocking reads, never a write or a wait) holds back the ACKs and
/// window updates the engine owes.
const OWED_OUTPUT_DELAY: Duration = Duration::from_millis(1);

/// The longest a batch of events holds its output (see [`send_output`],
/// and `Driver::pass` for threaded mode). Longer than
/// [`OWED_OUTPUT_DELAY`]: at a thousand connections a batch takes a few
/// milliseconds to handle, and a flush in the middle of it sends a pure
/// ACK for every event not yet answered
/// (measured: 4.8 instead of 3 frames per short connection at c=1000 with
/// a 1 ms hold). mTCP's output of a batch likewise waits until the
/// application thread yields its core to the stack thread.
pub(crate) const BATCH_HOLD: Duration = Duration::from_millis(5);
