//! [`Stack`] for tcp-core's [`Endpoint`], and the mapping from [`Settings`]
//! to its [`Config`].

use std::net::{Ipv4Addr, SocketAddrV4};

use tcp_core::{
    AcceptError, Config, ConnError, ConnectError, Endpoint, IcmpError, IcmpErrorKind, ListenError,
    RecvError, SendError, SocketError, SocketHandle, State,
};
use wire::{SeqNumber, TcpRepr};

use crate::stack::{tcpi_options, Errno, IcmpInput, Micros, SocketOptions, Stack, TcpState};
use crate::sysctl::Settings;

/// Virtual time 0 of a script is this engine instant, so that nothing in
/// the engine sees time zero (which some code may treat as "never").
const EPOCH_US: u64 = 1_000_000;

/// Seed of the engine's generator: runs are reproducible.
const SEED: u64 = 0x006d_7463_702d_7273;

fn at(t: Micros) -> tcp_core::Instant {
    tcp_core::Instant::from_micros(EPOCH_US + t)
}

fn micros(i: tcp_core::Instant) -> Micros {
    i.as_micros().saturating_sub(EPOCH_US)
}

/// The engine configuration for `settings`: tcp-core's defaults (RFC
/// values) overridden by what the script's sysctls mapped.
pub fn config_for(settings: &Settings) -> Config {
    let mut c = Config {
        window_scaling: settings.window_scaling,
        timestamps: settings.timestamps,
        sack: settings.sack,
        ..Config::default()
    };
    if let Some(v) = settings.mss {
        c.mss = v;
    }
    if let Some(v) = settings.recv_buf {
        // FreeBSD reserves the receive buffer rounded up to a multiple of the
        // MSS (the scripts check SO_RCVBUF = 65700 = 45 * 1460 after the
        // handshake), and that is its RCV.WND for the window tests.
        let mss = usize::from(c.mss.max(1));
        c.recv_buf = v.div_ceil(mss) * mss;
    }
    if let Some(v) = settings.send_buf {
        c.send_buf = v;
    }
    if let Some(v) = settings.rto_initial {
        c.rto_initial = v;
    }
    if let Some(v) = settings.rto_min {
        c.rto_min = v;
    }
    if let Some(v) = settings.icmp_may_abort {
        // FreeBSD's icmp_may_rst covers every hard error in SYN-SENT, time
        // exceeded (in transit) included.
        c.icmp_may_abort = v;
        c.icmp_time_exceeded_aborts = v;
    }
    if let Some(v) = settings.rfc5961_rst {
        c.rfc5961_rst = v;
    }
    if let Some(v) = settings.rfc5961_syn {
        c.rfc5961_syn = v;
    }
    if let Some(v) = settings.drop_syn_fin {
        c.drop_syn_fin = v;
    }
    if let Some(v) = settings.rfc1337 {
        c.rfc1337 = v;
    }
    if let Some(v) = settings.closing_resends_fin {
        c.closing_resends_fin = v;
    }
    if let Some(v) = settings.report_reset_after_fin {
        c.report_reset_after_fin = v;
    }
    if let Some(v) = settings.time_wait_reuse {
        c.time_wait_reuse = v;
    }
    c
}

/// tcp-core's Endpoint as a [`Stack`].
pub struct EngineStack {
    ep: Endpoint,
    settings: Settings,
    /// Connection handles given to the application (connect, accept) and
    /// not closed yet.
    app: Vec<SocketHandle>,
    /// Local ports of connections the application closed (they may live on
    /// in FIN-WAIT or TIME-WAIT without a handle).
    closed_ports: Vec<u16>,
}

impl std::fmt::Debug for EngineStack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineStack").field("ep", &self.ep).finish()
    }
}

impl EngineStack {
    /// A fresh endpoint for `settings`.
    pub fn build(settings: &Settings) -> Result<Self, String> {
        Ok(EngineStack {
            ep: Endpoint::with_seed(config_for(settings), SEED),
            settings: settings.clone(),
            app: Vec::new(),
            closed_ports: Vec::new(),
        })
    }

    /// Drops the application events: the shim asks the engine directly
    /// (state, accept, recv, take_error) instead, and the queue is bounded.
    fn drain_events(&mut self) {
        while self.ep.poll_event().is_some() {}
    }
}

fn conn_errno(e: ConnError) -> Errno {
    match e {
        ConnError::Refused => Errno::ECONNREFUSED,
        ConnError::Reset => Errno::ECONNRESET,
        ConnError::TimedOut => Errno::ETIMEDOUT,
        ConnError::Aborted => Errno::ECONNABORTED,
        ConnError::HostUnreachable => Errno::EHOSTUNREACH,
        ConnError::NetworkUnreachable => Errno::ENETUNREACH,
    }
}

fn socket_errno(e: SocketError) -> Errno {
    match e {
        SocketError::InvalidHandle => Errno::EBADF,
        SocketError::NotConnected => Errno::ENOTCONN,
        SocketError::NotSupported => Errno::EOPNOTSUPP,
    }
}

fn engine_state(s: TcpState) -> State {
    match s {
        TcpState::Closed => State::Closed,
        TcpState::Listen => State::Listen,
        TcpState::SynSent => State::SynSent,
        TcpState::SynReceived => State::SynReceived,
        TcpState::Established => State::Established,
        TcpState::FinWait1 => State::FinWait1,
        TcpState::FinWait2 => State::FinWait2,
        TcpState::CloseWait => State::CloseWait,
        TcpState::Closing => State::Closing,
        TcpState::LastAck => State::LastAck,
        TcpState::TimeWait => State::TimeWait,
    }
}

fn state(s: State) -> TcpState {
    match s {
        State::Closed => TcpState::Closed,
        State::Listen => TcpState::Listen,
        State::SynSent => TcpState::SynSent,
        State::SynReceived => TcpState::SynReceived,
        State::Established => TcpState::Established,
        State::FinWait1 => TcpState::FinWait1,
        State::FinWait2 => TcpState::FinWait2,
        State::CloseWait => TcpState::CloseWait,
        State::Closing => TcpState::Closing,
        State::LastAck => TcpState::LastAck,
        State::TimeWait => TcpState::TimeWait,
    }
}

impl Stack for EngineStack {
    type Handle = SocketHandle;

    fn update_settings(&mut self, settings: &Settings) -> Result<(), String> {
        // The new configuration applies from the next event on, as a sysctl
        // write does in FreeBSD.
        self.ep.set_config(config_for(settings));
        self.settings = settings.clone();
        Ok(())
    }

    fn handle_segment(&mut self, now: Micros, src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) {
        // The runner builds valid segments; a parse failure would be a wire
        // bug, and dropping the segment is what a driver does with it.
        if let Ok(repr) = TcpRepr::parse_bytes(segment, src, dst, true) {
            self.ep.handle_segment(at(now), src, dst, &repr);
        }
        self.drain_events();
    }

    fn handle_icmp(&mut self, now: Micros, icmp: &IcmpInput) {
        if let Some(kind) = IcmpErrorKind::from_type_code(icmp.icmp_type, icmp.code, icmp.mtu) {
            self.ep.handle_icmp_error(
                at(now),
                IcmpError {
                    kind,
                    local: icmp.local,
                    remote: icmp.remote,
                    seq: SeqNumber(icmp.seq),
                },
            );
        }
        self.drain_events();
    }

    fn handle_timeout(&mut self, now: Micros) {
        self.ep.handle_timeout(at(now));
        self.drain_events();
    }

    fn poll_timeout(&self) -> Option<Micros> {
        self.ep.poll_timeout().map(micros)
    }

    fn poll_transmit(
        &mut self,
        now: Micros,
        buf: &mut [u8],
    ) -> Option<(Ipv4Addr, Ipv4Addr, usize)> {
        let t = self.ep.poll_transmit(at(now), buf)?;
        Some((t.src, t.dst, t.len))
    }

    fn listen(&mut self, local: SocketAddrV4, backlog: usize) -> Result<SocketHandle, Errno> {
        self.ep.listen(local, backlog).map_err(|e| match e {
            ListenError::Unaddressable | ListenError::InvalidBacklog => Errno::EINVAL,
            ListenError::AddrInUse => Errno::EADDRINUSE,
        })
    }

    fn accept(&mut self, listener: SocketHandle) -> Result<SocketHandle, Errno> {
        let r = self.ep.accept(listener).map_err(|e| match e {
            AcceptError::InvalidHandle => Errno::EBADF,
            AcceptError::NotListening => Errno::EINVAL,
            AcceptError::WouldBlock => Errno::EAGAIN,
        });
        if let Ok(h) = r {
            self.app.push(h);
        }
        self.drain_events();
        r
    }

    fn connect(
        &mut self,
        now: Micros,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        options: SocketOptions,
    ) -> Result<SocketHandle, Errno> {
        let h = self
            .ep
            .connect(at(now), local, remote)
            .map_err(|e| match e {
                ConnectError::Unaddressable | ConnectError::NoLocalAddr => Errno::EINVAL,
                ConnectError::AddrInUse | ConnectError::NoFreePorts => Errno::EADDRINUSE,
                ConnectError::TooManyConnections | ConnectError::NoBufferSpace => Errno::ENOBUFS,
            })?;
        self.app.push(h);
        if options.nodelay {
            let _ = self.ep.set_nodelay(h, true);
        }
        if let Some(t) = options.connect_timeout {
            let _ = self.ep.set_user_timeout(h, Some(t));
        }
        self.drain_events();
        Ok(h)
    }

    fn send(&mut self, now: Micros, h: SocketHandle, data: &[u8]) -> Result<usize, Errno> {
        let r = self.ep.send(at(now), h, data).map_err(|e| match e {
            SendError::InvalidHandle => Errno::EBADF,
            SendError::NotConnected => Errno::ENOTCONN,
            SendError::Closed => Errno::EPIPE,
            SendError::WouldBlock => Errno::EAGAIN,
            SendError::Conn(c) => conn_errno(c),
        });
        self.drain_events();
        r
    }

    fn recv(&mut self, _now: Micros, h: SocketHandle, buf: &mut [u8]) -> Result<usize, Errno> {
        let r = self.ep.recv(h, buf).map_err(|e| match e {
            RecvError::InvalidHandle => Errno::EBADF,
            RecvError::NotConnected => Errno::ENOTCONN,
            RecvError::WouldBlock => Errno::EAGAIN,
            RecvError::Conn(c) => conn_errno(c),
        });
        self.drain_events();
        r
    }

    fn shutdown_write(&mut self, now: Micros, h: SocketHandle) -> Result<(), Errno> {
        let r = self.ep.shutdown(at(now), h).map_err(socket_errno);
        self.drain_events();
        r
    }

    fn close(&mut self, now: Micros, h: SocketHandle) -> Result<(), Errno> {
        if let Ok(a) = self.ep.local_addr(h) {
            if self.app.contains(&h) && !self.closed_ports.contains(&a.port()) {
                self.closed_ports.push(a.port());
            }
        }
        let r = self.ep.close(at(now), h).map_err(socket_errno);
        self.app.retain(|&a| a != h);
        self.drain_events();
        r
    }

    fn drop_connection(&mut self, now: Micros, h: SocketHandle) -> Result<(), Errno> {
        if let Ok(a) = self.ep.local_addr(h) {
            if self.app.contains(&h) && !self.closed_ports.contains(&a.port()) {
                self.closed_ports.push(a.port());
            }
        }
        let r = self.ep.abort(at(now), h).map_err(socket_errno);
        self.app.retain(|&a| a != h);
        self.drain_events();
        r
    }

    fn state(&self, h: SocketHandle) -> Option<TcpState> {
        self.ep.state(h).ok().map(state)
    }

    fn local_addr(&self, h: SocketHandle) -> Option<SocketAddrV4> {
        self.ep.local_addr(h).ok()
    }

    fn take_error(&mut self, h: SocketHandle) -> Option<Errno> {
        self.ep.take_error(h).ok().flatten().map(conn_errno)
    }

    fn negotiated_options(&self, h: SocketHandle) -> Option<u8> {
        let info = self.ep.info(h).ok()?;
        let mut bits = 0;
        if info.timestamps {
            bits |= tcpi_options::TIMESTAMPS;
        }
        if info.sack {
            bits |= tcpi_options::SACK;
        }
        if info.wscale.is_some() {
            bits |= tcpi_options::WSCALE;
        }
        Some(bits)
    }

    fn count_in_state(&self, want: TcpState, port: Option<u16>) -> Option<usize> {
        let all = self.ep.count_in_state(engine_state(want));
        let Some(port) = port else {
            return Some(all);
        };
        // The census has no port filter. Connections the application holds
        // are filtered here; the others are on a listener's port (SYN queue)
        // or orphaned by close, whose port only `closed_ports` knows.
        if self.closed_ports.iter().any(|&p| p != port) {
            return None;
        }
        let elsewhere = self
            .app
            .iter()
            .filter(|&&h| self.ep.state(h).ok().map(state) == Some(want))
            .filter(|&&h| self.ep.local_addr(h).is_ok_and(|a| a.port() != port))
            .count();
        Some(all - elsewhere.min(all))
    }

    fn connections_in_state(&self, want: TcpState) -> Vec<SocketHandle> {
        self.app
            .iter()
            .copied()
            .filter(|&h| self.ep.state(h).ok().map(state) == Some(want))
            .collect()
    }
}
