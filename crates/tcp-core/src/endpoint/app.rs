//! The application side of the [`Endpoint`]: RFC 9293 section 3.10.1 to
//! 3.10.6 (OPEN, SEND, RECEIVE, CLOSE, ABORT, STATUS) on socket handles.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddrV4};

use core::time::Duration;

use super::{valid_unicast, Endpoint, FlowKey, Listener, Socket, SocketHandle};
use crate::config::{ConnOptions, KeepAlive};
use crate::conn::{Conn, Owner};
use crate::error::{
    AcceptError, ConnError, ConnectError, ListenError, RecvError, SendError, SocketError,
};
use crate::event::EventKind;
use crate::info::ConnInfo;
use crate::time::Instant;
use crate::State;

impl Endpoint {
    // ------------------------------------------------------------------
    // Application calls
    // ------------------------------------------------------------------

    /// Passive OPEN (RFC 9293 section 3.10.1): listen on `local` (address
    /// 0.0.0.0 for any local address) with at most `backlog` established
    /// connections waiting for `accept`. Listeners never interfere with each
    /// other or with connections (MUST-41, MUST-42).
    pub fn listen(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
    ) -> Result<SocketHandle, ListenError> {
        self.listen_opts(local, backlog, None)
    }

    /// [`listen`](Self::listen) whose connections are created with `opts`
    /// (clamped by [`ConnOptions::clamped`]) instead of the configuration's
    /// defaults: the buffer sizes, MSS and window scale offered in the
    /// SYN-ACK, Nagle, keep-alive and user timeout of every accepted
    /// connection.
    pub fn listen_with(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        opts: &ConnOptions,
    ) -> Result<SocketHandle, ListenError> {
        self.listen_opts(local, backlog, Some(*opts))
    }

    fn listen_opts(
        &mut self,
        local: SocketAddrV4,
        backlog: usize,
        opts: Option<ConnOptions>,
    ) -> Result<SocketHandle, ListenError> {
        if local.port() == 0 {
            return Err(ListenError::Unaddressable);
        }
        if backlog == 0 {
            return Err(ListenError::InvalidBacklog);
        }
        if self.listeners.contains_key(&local) {
            return Err(ListenError::AddrInUse);
        }
        let idx = self.insert_socket(
            Socket::Listener(Listener {
                local,
                backlog,
                accept_queue: VecDeque::new(),
                syn_queue_len: 0,
                events_queued: 0,
                opts,
            }),
            false,
        );
        self.listeners.insert(local, idx);
        Ok(self.handle_of(idx))
    }

    /// Established connections waiting in a listener's accept queue.
    pub fn accept_queue_len(&self, listener: SocketHandle) -> Result<usize, SocketError> {
        match self.entry(listener).map(|e| &e.socket) {
            Some(Socket::Listener(l)) => Ok(l.accept_queue.len()),
            Some(Socket::Conn(_)) => Err(SocketError::NotSupported),
            None => Err(SocketError::InvalidHandle),
        }
    }

    /// Change a listener's backlog (most established connections waiting
    /// for `accept`), as `listen` on a listening socket does. A smaller
    /// backlog drops nothing already queued; new handshakes wait until the
    /// queue is below it. A backlog of 0 counts as 1.
    pub fn set_listener_backlog(
        &mut self,
        listener: SocketHandle,
        backlog: usize,
    ) -> Result<(), SocketError> {
        match self.entry_mut(listener).map(|e| &mut e.socket) {
            Some(Socket::Listener(l)) => {
                l.backlog = backlog.max(1);
                Ok(())
            }
            Some(Socket::Conn(_)) => Err(SocketError::NotSupported),
            None => Err(SocketError::InvalidHandle),
        }
    }

    /// Take an established connection from a listener's accept queue.
    pub fn accept(&mut self, listener: SocketHandle) -> Result<SocketHandle, AcceptError> {
        let lidx = listener.index as usize;
        let entry = self.entry_mut(listener).ok_or(AcceptError::InvalidHandle)?;
        let Socket::Listener(l) = &mut entry.socket else {
            return Err(AcceptError::NotListening);
        };
        let idx = l.accept_queue.pop_front().ok_or(AcceptError::WouldBlock)?;
        let (readable, fin, err) = match self.conn_at(idx) {
            Some(c) if c.owner == Owner::Listener(lidx) => {
                c.owner = Owner::App;
                (c.recv_buf.readable() > 0, c.fin_received, c.error)
            }
            // Not a connection of this listener: a bug elsewhere, never a panic.
            _ => return Err(AcceptError::WouldBlock),
        };
        self.push_event(idx, EventKind::Writable);
        if readable {
            self.push_event(idx, EventKind::Readable);
        }
        if fin {
            self.push_event(idx, EventKind::PeerFin);
        }
        if let Some(e) = err {
            self.push_event(idx, EventKind::Error(e));
        }
        Ok(self.handle_of(idx))
    }

    /// Active OPEN (RFC 9293 section 3.10.1): connect from `local` (port 0
    /// picks an ephemeral port; the address must be given, MUST-44/45) to
    /// `remote`. Returns at once; [`EventKind::Connected`] or
    /// [`EventKind::Error`] follows.
    pub fn connect(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Result<SocketHandle, ConnectError> {
        let opts = self.cfg.conn_options();
        self.connect_with(now, local, remote, &opts)
    }

    /// [`connect`](Self::connect) with per-connection options (clamped by
    /// [`ConnOptions::clamped`]): buffer sizes (so the window and the
    /// window scale offered follow `recv_buf`), MSS, Nagle, keep-alive,
    /// user timeout.
    pub fn connect_with(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
        opts: &ConnOptions,
    ) -> Result<SocketHandle, ConnectError> {
        // MUST-46: reject OPEN to broadcast/multicast or unspecified addresses.
        if !valid_unicast(*remote.ip()) || remote.port() == 0 {
            return Err(ConnectError::Unaddressable);
        }
        if local.ip().is_unspecified() {
            return Err(ConnectError::NoLocalAddr);
        }
        if !valid_unicast(*local.ip()) {
            return Err(ConnectError::Unaddressable);
        }
        if self.conn_count >= self.cfg.max_connections {
            return Err(ConnectError::TooManyConnections);
        }
        let local = if local.port() == 0 {
            self.pick_ephemeral(*local.ip(), remote)?
        } else {
            if self.flows.contains_key(&FlowKey { local, remote }) {
                return Err(ConnectError::AddrInUse);
            }
            local
        };
        let opts = opts.clamped(&self.cfg);
        if !self
            .pool
            .reserve(crate::pool::reservation(opts.send_buf, opts.recv_buf))
        {
            return Err(ConnectError::NoBufferSpace);
        }
        let iss = self.isn.isn(now, local, remote);
        let ts_offset = self.isn.ts_offset(local, remote);
        let mut conn = Conn::new(
            now,
            &self.cfg,
            State::SynSent,
            local,
            remote,
            iss,
            ts_offset,
        );
        conn.apply_options(&opts);
        conn.ensure_buffers(&self.cfg, &mut self.pool);
        let idx = self.insert_socket(Socket::Conn(conn), true);
        self.conn_count += 1;
        self.stats.active_opens += 1;
        self.flows.insert(FlowKey { local, remote }, idx);
        self.after_change(idx);
        Ok(self.handle_of(idx))
    }

    fn pick_ephemeral(
        &mut self,
        ip: Ipv4Addr,
        remote: SocketAddrV4,
    ) -> Result<SocketAddrV4, ConnectError> {
        let lo = *self.cfg.ephemeral_ports.start();
        let hi = *self.cfg.ephemeral_ports.end();
        if hi < lo || lo == 0 {
            return Err(ConnectError::NoFreePorts);
        }
        let span = u32::from(hi - lo) + 1;
        let start = self.rng.next_u32() % span;
        for i in 0..span {
            let port = lo + ((start + i) % span) as u16;
            let local = SocketAddrV4::new(ip, port);
            if !self.flows.contains_key(&FlowKey { local, remote })
                && !self.listeners.contains_key(&local)
            {
                return Ok(local);
            }
        }
        Err(ConnectError::NoFreePorts)
    }

    /// SEND (RFC 9293 section 3.10.2): queue as much of `data` as fits;
    /// returns the number of bytes taken. Allowed in SYN-SENT and
    /// SYN-RECEIVED (queued until ESTABLISHED), ESTABLISHED and CLOSE-WAIT.
    pub fn send(&mut self, now: Instant, h: SocketHandle, data: &[u8]) -> Result<usize, SendError> {
        let _ = now;
        let conn = self.app_conn_mut(h).ok_or(SendError::InvalidHandle)?;
        match conn.state {
            State::SynSent | State::SynReceived | State::Established | State::CloseWait => {}
            State::Closed => {
                return Err(conn.error.map_or(SendError::NotConnected, SendError::Conn));
            }
            State::Listen => return Err(SendError::NotConnected),
            _ => return Err(SendError::Closed),
        }
        if conn.fin_queued {
            return Err(SendError::Closed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = conn.send_buf.write(data);
        if n == 0 {
            return Err(SendError::WouldBlock);
        }
        self.after_change(h.index as usize);
        Ok(n)
    }

    /// SEND with the URGENT flag (RFC 9293 section 3.10.2, 3.8.5; MUST-30,
    /// MUST-31): like [`send`](Self::send), and the bytes taken are urgent:
    /// every segment sent while they are unacknowledged carries URG with the
    /// urgent pointer at the octet after the last urgent byte (MUST-62).
    /// Urgent data of any length can be sent, in several calls; the
    /// receiver gets it inline (RFC 6093 section 4). Returns the bytes taken.
    pub fn send_urgent(
        &mut self,
        now: Instant,
        h: SocketHandle,
        data: &[u8],
    ) -> Result<usize, SendError> {
        let n = self.send(now, h, data)?;
        if n > 0 {
            if let Some(conn) = self.app_conn_mut(h) {
                conn.snd_up = Some(conn.data_end());
            }
        }
        Ok(n)
    }

    /// RECEIVE (RFC 9293 section 3.10.3): read buffered in-order data.
    /// `Ok(0)` means end of stream (the peer's FIN was received and
    /// everything before it read).
    pub fn recv(&mut self, h: SocketHandle, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.read_buffered(h, buf, false)
    }

    /// [`recv`](Self::recv) for a runtime that moves received bytes to
    /// the application's side ahead of its reads: the bytes taken keep
    /// counting against the window until
    /// [`release_received`](Self::release_received) says the application
    /// consumed them, so the peer is never offered more than the receive
    /// buffer holds, here and there together. No window update is sent.
    pub fn recv_ahead(&mut self, h: SocketHandle, buf: &mut [u8]) -> Result<usize, RecvError> {
        self.read_buffered(h, buf, true)
    }

    /// Reads buffered in-order data; `ahead`: the bytes keep holding the
    /// window (see [`recv_ahead`](Self::recv_ahead)).
    fn read_buffered(
        &mut self,
        h: SocketHandle,
        buf: &mut [u8],
        ahead: bool,
    ) -> Result<usize, RecvError> {
        let conn = self.app_conn_mut(h).ok_or(RecvError::InvalidHandle)?;
        if conn.recv_buf.readable() == 0 {
            return recv_empty_result(conn);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = conn.recv_buf.read(buf);
        if ahead {
            conn.rcv_held = conn
                .rcv_held
                .saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
        } else if conn.window_update_due() {
            // The window opened enough to tell the peer now (receiver SWS
            // avoidance keeps this from happening per byte).
            conn.ack_now();
            self.after_change(h.index as usize);
        }
        Ok(n)
    }

    /// The application consumed `n` bytes taken by
    /// [`recv_ahead`](Self::recv_ahead): the window may offer their room
    /// again, and a window update goes out when it opened enough (receiver
    /// SWS avoidance, RFC 9293 section 3.8.6.2.2), as after a read.
    pub fn release_received(&mut self, h: SocketHandle, n: usize) -> Result<(), RecvError> {
        let conn = self.app_conn_mut(h).ok_or(RecvError::InvalidHandle)?;
        conn.rcv_held = conn
            .rcv_held
            .saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
        if conn.window_update_due() {
            conn.ack_now();
            self.after_change(h.index as usize);
        }
        Ok(())
    }

    /// Like [`recv`](Self::recv) but leaves the data in the buffer.
    pub fn peek(&mut self, h: SocketHandle, buf: &mut [u8]) -> Result<usize, RecvError> {
        let conn = self.app_conn(h).ok_or(RecvError::InvalidHandle)?;
        if conn.recv_buf.readable() > 0 {
            return Ok(conn.recv_buf.peek(buf));
        }
        recv_empty_result(conn)
    }

    /// Half-close: no more data will be sent; a FIN follows the queued data
    /// (RFC 9293 section 3.10.4, MAY-1). ESTABLISHED goes to FIN-WAIT-1 and
    /// CLOSE-WAIT to LAST-ACK; in SYN-SENT and SYN-RECEIVED the FIN waits for
    /// ESTABLISHED. Reading stays possible.
    pub fn shutdown(&mut self, now: Instant, h: SocketHandle) -> Result<(), SocketError> {
        let _ = now;
        let conn = self.app_conn_mut(h).ok_or(SocketError::InvalidHandle)?;
        match conn.state {
            State::SynSent | State::SynReceived => conn.queue_fin(),
            State::Established => {
                conn.queue_fin();
                conn.set_state(State::FinWait1);
            }
            State::CloseWait => {
                conn.queue_fin();
                conn.set_state(State::LastAck);
            }
            State::Closed | State::Listen => return Err(SocketError::NotConnected),
            // Already shut down.
            _ => return Ok(()),
        }
        self.after_change(h.index as usize);
        Ok(())
    }

    /// CLOSE (RFC 9293 section 3.10.4): shut down writing and release the
    /// handle; the connection finishes on its own (FIN handshake,
    /// TIME-WAIT) and [`EventKind::Closed`] reports when its resources are
    /// released. Unread received data makes this an abort with RST (RFC 9293
    /// SHLD-3, RFC 2525 section 2.17). Closing a listener resets its
    /// connections that were never accepted. In SYN-SENT the attempt is
    /// dropped at once.
    pub fn close(&mut self, now: Instant, h: SocketHandle) -> Result<(), SocketError> {
        let entry = self.entry(h).ok_or(SocketError::InvalidHandle)?;
        match &entry.socket {
            Socket::Listener(_) => {
                self.close_listener(now, h);
                return Ok(());
            }
            Socket::Conn(c) if c.owner != Owner::App => return Err(SocketError::InvalidHandle),
            Socket::Conn(_) => {}
        }
        let idx = h.index as usize;
        let unread = self
            .app_conn(h)
            .is_some_and(|c| c.recv_buf.readable() > 0 && c.state != State::Closed);
        if unread {
            return self.abort(now, h);
        }
        let fin_wait2_timeout = self.cfg.fin_wait2_timeout;
        let Some(conn) = self.app_conn_mut(h) else {
            return Err(SocketError::InvalidHandle);
        };
        conn.owner = Owner::Orphan;
        conn.events_queued = 0;
        match conn.state {
            State::SynSent | State::Closed => conn.enter_closed(None),
            State::SynReceived => conn.queue_fin(),
            State::Established => {
                conn.queue_fin();
                conn.set_state(State::FinWait1);
            }
            State::CloseWait => {
                conn.queue_fin();
                conn.set_state(State::LastAck);
            }
            State::FinWait2 => {
                if let Some(t) = fin_wait2_timeout {
                    conn.timers.set(crate::conn::TimerKind::TimeWait, now + t);
                }
            }
            _ => {}
        }
        self.after_change(idx);
        Ok(())
    }

    fn close_listener(&mut self, now: Instant, h: SocketHandle) {
        let lidx = h.index as usize;
        let local = match self.slots.get(lidx).map(|e| &e.socket) {
            Some(Socket::Listener(l)) => l.local,
            _ => return,
        };
        self.listeners.remove(&local);
        // Reset every connection this listener still owns.
        let owned: Vec<usize> = self
            .slots
            .iter()
            .filter_map(|(i, e)| match &e.socket {
                Socket::Conn(c) if c.owner == Owner::Listener(lidx) => Some(i),
                _ => None,
            })
            .collect();
        for idx in owned {
            if let Some(c) = self.conn_at(idx) {
                // Never accepted: no handle was given out, so no Closed
                // event either.
                c.owner = Owner::Detached;
                c.rst_due = true;
            }
            self.after_change(idx);
        }
        let _ = now;
        self.remove_slot(lidx);
    }

    /// ABORT (RFC 9293 section 3.10.5): send RST in SYN-RECEIVED and the
    /// synchronized states (except TIME-WAIT, CLOSING, LAST-ACK, where the
    /// TCB is just deleted), drop all queued data, release the handle.
    pub fn abort(&mut self, now: Instant, h: SocketHandle) -> Result<(), SocketError> {
        let _ = now;
        let entry = self.entry(h).ok_or(SocketError::InvalidHandle)?;
        if let Socket::Listener(_) = entry.socket {
            self.close_listener(now, h);
            return Ok(());
        }
        let conn = self.app_conn_mut(h).ok_or(SocketError::InvalidHandle)?;
        conn.owner = Owner::Orphan;
        conn.events_queued = 0;
        conn.recv_buf.clear();
        match conn.state {
            State::SynReceived
            | State::Established
            | State::FinWait1
            | State::FinWait2
            | State::CloseWait => conn.rst_due = true,
            _ => conn.enter_closed(None),
        }
        self.after_change(h.index as usize);
        Ok(())
    }

    /// State of the connection on a 4-tuple, whoever holds it (tests).
    #[cfg(test)]
    pub(crate) fn flow_state(&self, local: SocketAddrV4, remote: SocketAddrV4) -> Option<State> {
        let idx = *self.flows.get(&FlowKey { local, remote })?;
        match self.slots.get(idx).map(|e| &e.socket) {
            Some(Socket::Conn(c)) => Some(c.state),
            _ => None,
        }
    }

    /// Buffer capacities (send, receive) of the connection on a 4-tuple (tests).
    #[cfg(test)]
    pub(crate) fn flow_buffers(
        &self,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Option<(usize, usize)> {
        let idx = *self.flows.get(&FlowKey { local, remote })?;
        match self.slots.get(idx).map(|e| &e.socket) {
            Some(Socket::Conn(c)) => Some((c.send_buf.capacity(), c.recv_buf.capacity())),
            _ => None,
        }
    }

    /// The connection state (LISTEN for listeners).
    pub fn state(&self, h: SocketHandle) -> Result<State, SocketError> {
        match self.entry(h).map(|e| &e.socket) {
            Some(Socket::Listener(_)) => Ok(State::Listen),
            Some(Socket::Conn(c)) if c.owner == Owner::App => Ok(c.state),
            _ => Err(SocketError::InvalidHandle),
        }
    }

    /// For a handle the application has closed (or aborted): the state of
    /// the connection still finishing on its own, `None` once it is
    /// released (then [`EventKind::Closed`] was queued). Lets a layer above
    /// implement a lingering close (`SO_LINGER`): all data and the FIN are
    /// acknowledged once this is FIN-WAIT-2, TIME-WAIT or `None` after a
    /// close from ESTABLISHED, TIME-WAIT or `None` after one from
    /// CLOSE-WAIT. Handles the application still holds give `None` too
    /// (use [`state`](Self::state)).
    pub fn orphan_state(&self, h: SocketHandle) -> Option<State> {
        match self.entry(h).map(|e| &e.socket) {
            Some(Socket::Conn(c)) if c.owner == Owner::Orphan => Some(c.state),
            _ => None,
        }
    }

    /// Our address and port.
    pub fn local_addr(&self, h: SocketHandle) -> Result<SocketAddrV4, SocketError> {
        match self.entry(h).map(|e| &e.socket) {
            Some(Socket::Listener(l)) => Ok(l.local),
            Some(Socket::Conn(c)) if c.owner == Owner::App => Ok(c.local),
            _ => Err(SocketError::InvalidHandle),
        }
    }

    /// The peer's address and port.
    pub fn peer_addr(&self, h: SocketHandle) -> Result<SocketAddrV4, SocketError> {
        match self.entry(h).map(|e| &e.socket) {
            Some(Socket::Listener(_)) => Err(SocketError::NotSupported),
            Some(Socket::Conn(c)) if c.owner == Owner::App => Ok(c.remote),
            _ => Err(SocketError::InvalidHandle),
        }
    }

    /// Turn the Nagle algorithm off (`true`) or on (MUST-17).
    pub fn set_nodelay(&mut self, h: SocketHandle, nodelay: bool) -> Result<(), SocketError> {
        let conn = self.conn_for_setter(h)?;
        conn.nodelay = nodelay;
        self.after_change(h.index as usize);
        Ok(())
    }

    /// Enable, change or disable keep-alive (MUST-24).
    pub fn set_keepalive(
        &mut self,
        h: SocketHandle,
        keepalive: Option<KeepAlive>,
    ) -> Result<(), SocketError> {
        let conn = self.conn_for_setter(h)?;
        conn.keepalive = keepalive.map(Into::into);
        conn.keepalives_unanswered = 0;
        conn.rearm_keepalive();
        self.after_change(h.index as usize);
        Ok(())
    }

    /// Set the user timeout (RFC 9293 section 3.9.1; MUST-21 lets the
    /// application influence R2 this way). `None` leaves only R2.
    pub fn set_user_timeout(
        &mut self,
        h: SocketHandle,
        timeout: Option<Duration>,
    ) -> Result<(), SocketError> {
        let conn = self.conn_for_setter(h)?;
        conn.user_timeout = timeout;
        conn.timers.cancel(crate::conn::TimerKind::UserTimeout);
        if let (Some(t), Some(since)) = (timeout, conn.oldest_unacked_since) {
            conn.timers
                .set(crate::conn::TimerKind::UserTimeout, since + t);
        }
        self.after_change(h.index as usize);
        Ok(())
    }

    fn conn_for_setter(&mut self, h: SocketHandle) -> Result<&mut Conn, SocketError> {
        match self.entry_mut(h).map(|e| &mut e.socket) {
            Some(Socket::Listener(_)) => Err(SocketError::NotSupported),
            Some(Socket::Conn(c)) if c.owner == Owner::App => Ok(c),
            _ => Err(SocketError::InvalidHandle),
        }
    }

    /// Transmission details of a connection.
    pub fn info(&self, h: SocketHandle) -> Result<ConnInfo, SocketError> {
        let c = match self.entry(h).map(|e| &e.socket) {
            Some(Socket::Listener(_)) => return Err(SocketError::NotSupported),
            Some(Socket::Conn(c)) if c.owner == Owner::App => c,
            _ => return Err(SocketError::InvalidHandle),
        };
        Ok(ConnInfo {
            state: c.state,
            cwnd: c.cc.window(),
            ssthresh: c.cc.ssthresh(),
            srtt: c.rtt.srtt(),
            rttvar: c.rtt.rttvar(),
            rto: c.rtt.rto(),
            smss: c.smss,
            snd_wnd: c.snd_wnd,
            rcv_wnd: c.rcv_wnd(),
            bytes_in_flight: c.flight_size(),
            retransmits: c.retransmits,
            total_retransmits: u64::from(c.total_retransmits),
            in_recovery: c.in_recovery,
            timestamps: c.ts.is_some(),
            sack: c.sack_ok,
            wscale: c.wscale_ok.then_some((c.rcv_wscale, c.snd_wscale)),
            soft_error: c.soft_error,
        })
    }

    /// The error that ended the connection, if any (like `SO_ERROR`, it is
    /// cleared by reading it).
    pub fn take_error(&mut self, h: SocketHandle) -> Result<Option<ConnError>, SocketError> {
        match self.entry_mut(h).map(|e| &mut e.socket) {
            Some(Socket::Listener(_)) => Ok(None),
            Some(Socket::Conn(c)) if c.owner == Owner::App => Ok(c.error.take()),
            _ => Err(SocketError::InvalidHandle),
        }
    }

    /// Urgent data (RFC 9293 section 3.8.5; receive side of MUST-30..33,
    /// RFC 6093). Urgent bytes are delivered inline, in sequence with the
    /// rest of the stream, as Linux does with `SO_OOBINLINE` (RFC 6093
    /// section 4 recommends inline delivery; there is no out-of-band byte).
    /// While the peer's urgent pointer is ahead of what the application has
    /// read, this returns `Some(n)`: after reading `n` more bytes the
    /// application is at the end of the urgent data (the "mark" of
    /// `SIOCATMARK`). `n` may exceed [`readable`](Self::readable) while
    /// urgent data is still arriving (urgent data of any length, MUST-31).
    /// A segment that starts urgent mode queues [`EventKind::Readable`]
    /// even when it carries no new data (the asynchronous signal of
    /// MUST-32). `None`: no urgent data pending. Sending urgent data is not
    /// supported (the URG bit is never set).
    pub fn urgent_remaining(&self, h: SocketHandle) -> Result<Option<usize>, SocketError> {
        Ok(self
            .app_conn(h)
            .ok_or(SocketError::InvalidHandle)?
            .urgent_remaining())
    }

    /// Bytes ready to read.
    pub fn readable(&self, h: SocketHandle) -> Result<usize, SocketError> {
        Ok(self
            .app_conn(h)
            .ok_or(SocketError::InvalidHandle)?
            .recv_buf
            .readable())
    }

    /// Bytes [`send`](Self::send) would take now.
    pub fn writable(&self, h: SocketHandle) -> Result<usize, SocketError> {
        Ok(self
            .app_conn(h)
            .ok_or(SocketError::InvalidHandle)?
            .writable())
    }
}

/// What `recv` returns when nothing is buffered.
fn recv_empty_result(conn: &Conn) -> Result<usize, RecvError> {
    if conn.fin_received {
        return Ok(0);
    }
    match conn.state {
        State::Closed => Err(conn.error.map_or(RecvError::NotConnected, RecvError::Conn)),
        State::Listen => Err(RecvError::NotConnected),
        _ => Err(RecvError::WouldBlock),
    }
}
