//! Runs one script against a [`Stack`] on a virtual clock.
//!
//! The clock starts at 0 and moves only forward: to the time of the next
//! event, or to the engine's next timer deadline, whichever is first. Nothing
//! waits in wall time.
//!
//! Event timing follows packetdrill: an absolute time counts from the start;
//! a relative time counts from the actual time of the previous event (for an
//! outbound segment, when the stack sent it; for a blocking system call, when
//! it started). An outbound segment must be sent within
//! `[start - tolerance, end + tolerance]`; the segments the stack sends are
//! queued with their send time and each `>` line takes the oldest one, so an
//! extra segment shows up as a mismatch at the next `>` line.
//!
//! System calls go through a thin socket layer: packetdrill's fds map to
//! engine handles; `O_NONBLOCK` (fcntl) selects between `EAGAIN` /
//! `EINPROGRESS` and blocking. A blocking call that cannot finish at once
//! stays pending while later events run; it completes when the engine allows
//! (accept: a connection is ready; connect: established or failed; read:
//! data, EOF or error; write: all bytes queued) and must do so at the end of
//! its time range (`1.00...6.00 connect(...)` returns at 6.00), within the
//! tolerance, or at its start time when no range is given.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::check::{self, Flow, Sent, SeqMap};
use crate::script::{
    CodeBlock, Command, Direction, Event, EventKind, EventTime, IcmpSpec, PacketBody, PacketEvent,
    Script, SeqSpec, ShellCommand, TcpSpec,
};
use crate::stack::{IcmpInput, Micros, Stack, TcpState};
use crate::sysctl::{self, Settings, SysctlEffect};

/// The stack's address (packetdrill's default `--local_ip`).
pub const LOCAL_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
/// The script's address (packetdrill's default `--remote_ip`).
pub const REMOTE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// The script's port towards a listener (packetdrill picks an ephemeral one).
pub const REMOTE_PORT: u16 = 49_152;
/// The port `bind(fd, ..., ...)` binds (packetdrill's default `--bind_port`).
pub const BIND_PORT: u16 = 8080;
/// The script's port `connect(fd, ..., ...)` connects to (packetdrill's
/// default `--connect_port`).
pub const CONNECT_PORT: u16 = 8080;

/// The addresses and ports of a run (packetdrill's `--local_ip`,
/// `--remote_ip`, `--bind_port`, `--connect_port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Addrs {
    local_ip: Ipv4Addr,
    remote_ip: Ipv4Addr,
    bind_port: u16,
    connect_port: u16,
}
/// The script side's ISN. Far from 0 so that a missing remap shows, and
/// close enough to 2^32 that relative numbers wrap.
pub const REMOTE_ISN: u32 = 0xF000_0000;
/// packetdrill's default `--tolerance_usecs`.
pub const DEFAULT_TOLERANCE_US: Micros = 4_000;
/// How long a `*` outbound segment is waited for.
pub const ANY_TIME_WAIT_US: Micros = 600_000_000;
/// Most segments the engine may emit at one instant before the run is
/// declared runaway.
const MAX_SEGMENTS_PER_STEP: usize = 10_000;
/// Most timer firings at one instant before the run is declared runaway.
const MAX_TIMER_SPINS: usize = 10_000;

/// Why a script failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The stack's behaviour differs from the script.
    Mismatch,
    /// The script needs something the runner or tcp-core does not offer.
    Unsupported,
    /// The script could not be read or parsed.
    Script,
    /// The engine panicked or ran away.
    Crash,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Mismatch => "mismatch",
            FailureKind::Unsupported => "unsupported",
            FailureKind::Script => "script error",
            FailureKind::Crash => "crash",
        })
    }
}

/// A script failure: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// 1-based script line (0 when not tied to a line).
    pub line: usize,
    /// Kind of failure.
    pub kind: FailureKind,
    /// What went wrong.
    pub message: String,
    /// The script's expectation, when there is one.
    pub expected: Option<String>,
    /// What the stack did.
    pub actual: Option<String>,
}

impl Failure {
    /// A failure with a message only.
    pub fn new(line: usize, kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            line,
            kind,
            message: message.into(),
            expected: None,
            actual: None,
        }
    }

    fn with(mut self, expected: impl Into<String>, actual: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self.actual = Some(actual.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(e) = &self.expected {
            write!(f, "\n    expected: {e}")?;
        }
        if let Some(a) = &self.actual {
            write!(f, "\n    actual:   {a}")?;
        }
        Ok(())
    }
}

type Res<T> = Result<T, Failure>;

mod shim;
use shim::{Pending, Sock};

/// Runs `script` against stacks built by `build` (called once, lazily, with
/// the settings in force when the first socket needs the stack).
pub fn run<S: Stack>(
    script: &Script,
    build: &mut dyn FnMut(&Settings) -> Result<S, String>,
) -> Result<(), Failure> {
    let mut runner = Runner::new(script, build)?;
    for event in &script.events {
        runner.event(event)?;
    }
    if let Some(p) = &runner.pending {
        return Err(Failure::new(
            p.line,
            FailureKind::Mismatch,
            format!("blocking {} never returned", p.call.name),
        ));
    }
    Ok(())
}

struct Runner<'b, S: Stack> {
    build: &'b mut dyn FnMut(&Settings) -> Result<S, String>,
    stack: Option<S>,
    settings: Settings,
    built_with: Option<Settings>,
    now: Micros,
    last_time: Micros,
    tolerance: Micros,
    map: SeqMap,
    flow_port: Option<u16>,
    fds: BTreeMap<i64, Sock<S::Handle>>,
    current_fd: Option<i64>,
    pending: Option<Pending>,
    queue: VecDeque<(Micros, Sent)>,
    buf: Vec<u8>,
    zeros: Vec<u8>,
    /// `CONFORMANCE_TRACE` set: print every event and every segment sent.
    trace: bool,
    addrs: Addrs,
    /// The script's port of the current flow.
    remote_port: u16,
}

impl<'b, S: Stack> Runner<'b, S> {
    fn new(script: &Script, build: &'b mut dyn FnMut(&Settings) -> Result<S, String>) -> Res<Self> {
        let opt_line = |name: &str| {
            script
                .options
                .iter()
                .rev()
                .find(|o| o.name == name)
                .map_or(0, |o| o.line)
        };
        let mut settings = Settings::freebsd();
        let mut tolerance = DEFAULT_TOLERANCE_US;
        let mut addrs = Addrs {
            local_ip: LOCAL_IP,
            remote_ip: REMOTE_IP,
            bind_port: BIND_PORT,
            connect_port: CONNECT_PORT,
        };
        let mut ts_tick_us = None;
        for o in &script.options {
            let value = o.value.as_deref().unwrap_or("");
            match o.name.as_str() {
                "ip_version" if value == "ipv4" => {}
                "ip_version" => {
                    return Err(Failure::new(
                        o.line,
                        FailureKind::Unsupported,
                        format!("--ip_version={value}: only ipv4 is supported"),
                    ))
                }
                "tolerance_usecs" => {
                    tolerance = value.parse().map_err(|_| {
                        Failure::new(o.line, FailureKind::Script, "bad --tolerance_usecs")
                    })?
                }
                "mtu" => {
                    let mtu: u32 = value
                        .parse()
                        .map_err(|_| Failure::new(o.line, FailureKind::Script, "bad --mtu"))?;
                    // IPv4 and TCP headers without options (RFC 9293 3.7.1).
                    let mss = mtu.checked_sub(40).and_then(|m| u16::try_from(m).ok());
                    settings.mss = Some(mss.ok_or_else(|| {
                        Failure::new(o.line, FailureKind::Unsupported, format!("--mtu={mtu}"))
                    })?);
                }
                "local_ip" | "remote_ip" => {
                    let ip: Ipv4Addr = value.parse().map_err(|_| {
                        Failure::new(
                            o.line,
                            FailureKind::Unsupported,
                            format!("--{}={value}: not an IPv4 address", o.name),
                        )
                    })?;
                    if o.name == "local_ip" {
                        addrs.local_ip = ip;
                    } else {
                        addrs.remote_ip = ip;
                    }
                }
                "bind_port" | "connect_port" => {
                    let port: u16 = value.parse().ok().filter(|&p| p != 0).ok_or_else(|| {
                        Failure::new(
                            o.line,
                            FailureKind::Script,
                            format!("--{}={value}: not a port", o.name),
                        )
                    })?;
                    if o.name == "bind_port" {
                        addrs.bind_port = port;
                    } else {
                        addrs.connect_port = port;
                    }
                }
                "tcp_ts_tick_usecs" => {
                    ts_tick_us = Some(value.parse::<u64>().ok().filter(|&t| t > 0).ok_or_else(
                        || Failure::new(o.line, FailureKind::Script, "bad --tcp_ts_tick_usecs"),
                    )?);
                }
                other => {
                    return Err(Failure::new(
                        opt_line(other),
                        FailureKind::Unsupported,
                        format!("unknown option --{other}"),
                    ))
                }
            }
        }
        Ok(Runner {
            build,
            stack: None,
            settings,
            built_with: None,
            now: 0,
            last_time: 0,
            tolerance,
            map: SeqMap {
                ts_val_check: ts_tick_us.map(|tick_us| crate::check::TsValCheck {
                    tick_us,
                    tolerance_us: tolerance,
                }),
                ..SeqMap::new(REMOTE_ISN)
            },
            flow_port: None,
            fds: BTreeMap::new(),
            current_fd: None,
            pending: None,
            queue: VecDeque::new(),
            buf: vec![0u8; 65_536 + 120],
            zeros: vec![0u8; 65_536],
            trace: std::env::var_os("CONFORMANCE_TRACE").is_some(),
            addrs,
            remote_port: REMOTE_PORT,
        })
    }

    fn stack(&mut self, line: usize) -> Res<&mut S> {
        if self.stack.is_none() {
            let s = (self.build)(&self.settings)
                .map_err(|e| Failure::new(line, FailureKind::Unsupported, e))?;
            self.stack = Some(s);
            self.built_with = Some(self.settings.clone());
        }
        Ok(self.stack.as_mut().expect("stack was just built"))
    }

    fn event(&mut self, ev: &Event) -> Res<()> {
        let (start, end) = match ev.time {
            EventTime::Absolute(t) => (t, t),
            EventTime::Relative(d) => (self.last_time + d, self.last_time + d),
            EventTime::AbsoluteRange(a, b) => (a, b),
            EventTime::RelativeRange(a, b) => (self.last_time + a, self.last_time + b),
            EventTime::Any => (self.now, Micros::MAX),
        };
        let any = ev.time == EventTime::Any;
        if self.trace {
            eprintln!("[{}] line {}: {:?}", secs(self.now), ev.line, ev.kind);
        }
        if let EventKind::Packet(p) = &ev.kind {
            if p.direction == Direction::Outbound {
                return self.expect_outbound(ev.line, p, start, end, any);
            }
        }
        self.advance(start.max(self.now))?;
        self.last_time = self.now;
        match &ev.kind {
            EventKind::Packet(p) => self.inbound(ev.line, p)?,
            EventKind::Syscall(sc) => {
                let ranged = matches!(
                    ev.time,
                    EventTime::AbsoluteRange(..) | EventTime::RelativeRange(..)
                );
                self.syscall(ev.line, sc, start, ranged.then_some(end))?
            }
            EventKind::Command(c) => self.command(ev.line, c)?,
            EventKind::Code(c) => self.code(ev.line, c)?,
        }
        self.settle()
    }

    // ---- clock ----------------------------------------------------------

    /// Collects what the stack sends now and completes a pending call.
    fn settle(&mut self) -> Res<()> {
        self.drain()?;
        self.service_pending()
    }

    /// Moves the clock to `to`, firing the engine's timers on the way.
    fn advance(&mut self, to: Micros) -> Res<()> {
        self.settle()?;
        let mut spins = 0;
        while self.now < to || spins == 0 {
            let next = self
                .stack
                .as_ref()
                .and_then(|s| s.poll_timeout())
                .map(|t| t.max(self.now));
            match next {
                Some(t) if t <= to => {
                    if t == self.now {
                        spins += 1;
                        if spins > MAX_TIMER_SPINS {
                            return Err(Failure::new(
                                0,
                                FailureKind::Crash,
                                format!("engine timer stays due at {} us", self.now),
                            ));
                        }
                    } else {
                        spins = 1;
                    }
                    self.now = t;
                    if let Some(s) = self.stack.as_mut() {
                        s.handle_timeout(t);
                    }
                    self.settle()?;
                }
                _ => {
                    self.now = self.now.max(to);
                    self.settle()?;
                    break;
                }
            }
        }
        Ok(())
    }

    /// Moves the queue of sent segments forward by polling the engine.
    fn drain(&mut self) -> Res<()> {
        let Some(stack) = self.stack.as_mut() else {
            return Ok(());
        };
        for _ in 0..MAX_SEGMENTS_PER_STEP {
            let Some((src, dst, len)) = stack.poll_transmit(self.now, &mut self.buf) else {
                return Ok(());
            };
            let bytes = self.buf.get(..len).ok_or_else(|| {
                Failure::new(
                    0,
                    FailureKind::Crash,
                    format!("poll_transmit reported {len} bytes"),
                )
            })?;
            let sent = Sent::decode(bytes, src, dst)
                .map_err(|e| Failure::new(0, FailureKind::Mismatch, e.to_string()))?;
            if src != self.addrs.local_ip || dst != self.addrs.remote_ip {
                return Err(Failure::new(
                    0,
                    FailureKind::Mismatch,
                    format!(
                        "segment sent from {src} to {dst}, expected {} to {}",
                        self.addrs.local_ip, self.addrs.remote_ip
                    ),
                ));
            }
            if self.trace {
                eprintln!("[{}]   sent {}", secs(self.now), sent.to_script(&self.map));
            }
            self.queue.push_back((self.now, sent));
        }
        Err(Failure::new(
            0,
            FailureKind::Crash,
            format!(
                "engine sent more than {MAX_SEGMENTS_PER_STEP} segments at {} us",
                self.now
            ),
        ))
    }

    // ---- packets --------------------------------------------------------

    fn expect_outbound(
        &mut self,
        line: usize,
        p: &PacketEvent,
        start: Micros,
        end: Micros,
        any: bool,
    ) -> Res<()> {
        self.check_ip_annotation(line, p)?;
        let spec = match &p.body {
            PacketBody::Tcp(t) => t,
            PacketBody::Icmp(_) => {
                return Err(Failure::new(
                    line,
                    FailureKind::Unsupported,
                    "outbound ICMP (tcp-core sends none)",
                ))
            }
        };
        let expected_text = check::spec_text('>', spec);
        let deadline = if any {
            self.now.saturating_add(ANY_TIME_WAIT_US)
        } else {
            end.saturating_add(self.tolerance)
        };
        let early = start.saturating_sub(self.tolerance);
        loop {
            if let Some((t, sent)) = self.queue.pop_front() {
                return self.match_outbound(line, spec, &expected_text, t, &sent, early, end, any);
            }
            if self.now >= deadline {
                return Err(Failure::new(
                    line,
                    FailureKind::Mismatch,
                    format!(
                        "expected segment not sent by {} (waited until {})",
                        secs(end),
                        secs(deadline)
                    ),
                )
                .with(expected_text, "nothing"));
            }
            self.advance_once(deadline)?;
        }
    }

    /// One step of the clock towards `limit`: to the next timer or to `limit`.
    fn advance_once(&mut self, limit: Micros) -> Res<()> {
        let next = self
            .stack
            .as_ref()
            .and_then(|s| s.poll_timeout())
            .map(|t| t.max(self.now));
        match next {
            Some(t) if t <= limit => {
                // A timer due now that leaves nothing to send would spin: step
                // at least one microsecond.
                let t = if t == self.now { t + 1 } else { t };
                self.advance(t.min(limit))
            }
            _ => self.advance(limit),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn match_outbound(
        &mut self,
        line: usize,
        spec: &TcpSpec,
        expected_text: &str,
        t: Micros,
        sent: &Sent,
        early: Micros,
        end: Micros,
        any: bool,
    ) -> Res<()> {
        let actual_text = format!("{} at {}", sent.to_script(&self.map), secs(t));
        if !any && t < early {
            return Err(Failure::new(
                line,
                FailureKind::Mismatch,
                format!(
                    "segment sent at {}, expected at {} (tolerance {} us)",
                    secs(t),
                    secs(end),
                    self.tolerance
                ),
            )
            .with(expected_text, actual_text));
        }
        if sent.dst_port != self.remote_port || self.flow_port.is_some_and(|p| p != sent.src_port) {
            return Err(Failure::new(
                line,
                FailureKind::Mismatch,
                format!(
                    "segment sent from port {} to {}, expected from {:?} to {}",
                    sent.src_port, sent.dst_port, self.flow_port, self.remote_port
                ),
            )
            .with(expected_text, actual_text));
        }
        if self.flow_port.is_none() {
            self.flow_port = Some(sent.src_port);
        }
        check::check_outbound(spec, sent, &mut self.map).map_err(|m| {
            Failure::new(
                line,
                FailureKind::Mismatch,
                format!("segment differs in {m}"),
            )
            .with(
                expected_text,
                format!("{} at {}", sent.to_script(&self.map), secs(t)),
            )
        })?;
        self.last_time = t;
        // The match may have let a pending call complete (nothing changed in
        // the stack, but keep the order of effects simple).
        self.service_pending()
    }

    fn check_ip_annotation(&self, line: usize, p: &PacketEvent) -> Res<()> {
        match p.ip_annotation.as_deref() {
            None | Some("noecn") => Ok(()),
            Some(other) => Err(Failure::new(
                line,
                FailureKind::Unsupported,
                format!("IP ECN codepoint [{other}]: tcp-core has no ECN (RFC 3168)"),
            )),
        }
    }

    fn flow(&self) -> Flow {
        Flow {
            remote: SocketAddrV4::new(self.addrs.remote_ip, self.remote_port),
            local: SocketAddrV4::new(
                self.addrs.local_ip,
                self.flow_port.unwrap_or(self.addrs.bind_port),
            ),
        }
    }

    fn inbound(&mut self, line: usize, p: &PacketEvent) -> Res<()> {
        self.check_ip_annotation(line, p)?;
        match &p.body {
            PacketBody::Tcp(spec) => self.inbound_tcp(line, spec),
            PacketBody::Icmp(icmp) => self.inbound_icmp(line, icmp),
        }
    }

    fn inbound_tcp(&mut self, line: usize, spec: &TcpSpec) -> Res<()> {
        let flow = self.flow();
        let mut buf = vec![0u8; 60 + spec.seq.len() as usize];
        let n = check::build_inbound(spec, &self.map, flow, &self.zeros, &mut buf)
            .map_err(|e| Failure::new(line, FailureKind::Script, e.to_string()))?;
        let now = self.now;
        self.stack(line)?.handle_segment(
            now,
            flow.remote.ip().to_owned(),
            flow.local.ip().to_owned(),
            &buf[..n],
        );
        Ok(())
    }

    fn inbound_icmp(&mut self, line: usize, icmp: &IcmpSpec) -> Res<()> {
        let seq = match icmp.quoted {
            Some(SeqSpec::Range { start, .. }) => {
                start.wrapping_add(self.map.local_isn.unwrap_or(0))
            }
            _ => {
                return Err(Failure::new(
                    line,
                    FailureKind::Script,
                    "an ICMP message needs the quoted segment's sequence number",
                ))
            }
        };
        let flow = self.flow();
        let input = IcmpInput {
            icmp_type: icmp.icmp_type,
            code: icmp.code,
            mtu: icmp.mtu.map_or(0, |m| m.min(u32::from(u16::MAX)) as u16),
            local: flow.local,
            remote: flow.remote,
            seq,
        };
        let now = self.now;
        self.stack(line)?.handle_icmp(now, &input);
        Ok(())
    }

    // ---- shell and code -------------------------------------------------

    fn command(&mut self, line: usize, c: &Command) -> Res<()> {
        for part in &c.parts {
            match part {
                ShellCommand::Sysctl(settings) => {
                    for (name, value) in settings {
                        match sysctl::apply(&mut self.settings, name, value) {
                            SysctlEffect::Mapped | SysctlEffect::NoOp(_) => {}
                            SysctlEffect::Unsupported(why) => {
                                return Err(Self::unsupported(line, format!("sysctl: {why}")))
                            }
                        }
                    }
                    if self
                        .built_with
                        .as_ref()
                        .is_some_and(|b| *b != self.settings)
                    {
                        let settings = self.settings.clone();
                        self.stack(line)?.update_settings(&settings).map_err(|e| {
                            Self::unsupported(line, format!("sysctl in mid-script: {e}"))
                        })?;
                        self.built_with = Some(settings);
                    }
                }
                ShellCommand::SockstatCount { state, port, count } => {
                    let st = state_by_sockstat_name(state).ok_or_else(|| {
                        Failure::new(line, FailureKind::Script, format!("unknown state {state}"))
                    })?;
                    let got = match self.stack.as_ref() {
                        None => 0,
                        Some(s) => s.count_in_state(st, *port).ok_or_else(|| {
                            Self::unsupported(
                                line,
                                format!("sockstat: the engine cannot count connections in {state} that no handle reaches"),
                            )
                        })?,
                    };
                    if got != *count as usize {
                        return Err(Failure::new(
                            line,
                            FailureKind::Mismatch,
                            format!(
                                "connections in {state}{}",
                                port.map_or(String::new(), |p| format!(" on port {p}"))
                            ),
                        )
                        .with(count.to_string(), got.to_string()));
                    }
                }
                ShellCommand::TcpDrop { state } => {
                    let st = state_by_sockstat_name(state).ok_or_else(|| {
                        Failure::new(line, FailureKind::Script, format!("unknown state {state}"))
                    })?;
                    let now = self.now;
                    if let Some(stack) = self.stack.as_mut() {
                        for h in stack.connections_in_state(st) {
                            let _ = stack.drop_connection(now, h);
                        }
                    }
                }
                ShellCommand::Other(text) => {
                    return Err(Self::unsupported(line, format!("shell command `{text}`")))
                }
            }
        }
        Ok(())
    }

    fn code(&mut self, line: usize, c: &CodeBlock) -> Res<()> {
        let Some((lhs, rhs)) = &c.assert_eq else {
            return Err(Self::unsupported(line, format!("code block `{}`", c.text)));
        };
        let fd = self
            .current_fd
            .ok_or_else(|| Failure::new(line, FailureKind::Script, "tcp_info of no socket"))?;
        let h = self.fds.get(&fd).and_then(|s| s.handle);
        match lhs.as_str() {
            "tcpi_state" => {
                let st = match h {
                    Some(h) => self
                        .stack
                        .as_ref()
                        .and_then(|s| s.state(h))
                        .unwrap_or(TcpState::Closed),
                    None => TcpState::Closed,
                };
                if st.tcpi_name() != rhs {
                    return Err(
                        Failure::new(line, FailureKind::Mismatch, "tcpi_state differs")
                            .with(rhs.clone(), st.tcpi_name()),
                    );
                }
                Ok(())
            }
            "tcpi_options" => {
                let want: u8 = rhs.parse().map_err(|_| {
                    Failure::new(line, FailureKind::Script, format!("tcpi_options == {rhs}"))
                })?;
                let got = h
                    .and_then(|h| self.stack.as_ref().and_then(|s| s.negotiated_options(h)))
                    .ok_or_else(|| {
                        Self::unsupported(
                            line,
                            "tcpi_options: the engine does not report negotiated options",
                        )
                    })?;
                if got != want {
                    return Err(
                        Failure::new(line, FailureKind::Mismatch, "tcpi_options differs")
                            .with(want.to_string(), got.to_string()),
                    );
                }
                Ok(())
            }
            other => Err(Self::unsupported(line, format!("tcp_info field {other}"))),
        }
    }
}

fn state_by_sockstat_name(name: &str) -> Option<TcpState> {
    use TcpState::*;
    [
        Closed,
        Listen,
        SynSent,
        SynReceived,
        Established,
        FinWait1,
        FinWait2,
        CloseWait,
        Closing,
        LastAck,
        TimeWait,
    ]
    .into_iter()
    .find(|s| s.sockstat_name() == name)
}

fn secs(t: Micros) -> String {
    if t == Micros::MAX {
        return "any time".into();
    }
    format!("{}.{:06}s", t / 1_000_000, t % 1_000_000)
}
