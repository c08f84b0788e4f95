//! The socket layer of the runner: packetdrill's fds and system call
//! semantics (blocking and non-blocking, errno names) over a [`Stack`].

use std::fmt;
use std::net::SocketAddrV4;
use std::time::Duration;

use super::{secs, Failure, FailureKind, Res, Runner, REMOTE_PORT};
use crate::script::{Expr, Syscall};
use crate::stack::{Errno, Micros, SocketOptions, Stack, TcpState};

/// A socket of the shim.
#[derive(Debug, Clone)]
pub(super) struct Sock<H> {
    nonblocking: bool,
    bound: Option<u16>,
    pub(super) handle: Option<H>,
    listener: bool,
    options: SocketOptions,
}

/// A blocking call waiting for the engine.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub(super) line: usize,
    pub(super) call: Syscall,
    fd: i64,
    kind: PendingKind,
    start: Micros,
    end: Option<Micros>,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum PendingKind {
    Accept,
    Connect,
    Read { len: usize },
    Write { remaining: usize, written: usize },
}

/// What a system call returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SysResult {
    ret: i64,
    errno: Option<Errno>,
}

impl SysResult {
    fn ok(ret: i64) -> Self {
        SysResult { ret, errno: None }
    }
    fn err(e: Errno) -> Self {
        SysResult {
            ret: -1,
            errno: Some(e),
        }
    }
}

impl fmt::Display for SysResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(e) => write!(f, "{} {e}", self.ret),
            None => write!(f, "{}", self.ret),
        }
    }
}

pub(super) enum CallOutcome {
    Done(SysResult),
    Block(PendingKind),
}

impl<S: Stack> Runner<'_, S> {
    // ---- system calls ---------------------------------------------------

    pub(super) fn syscall(
        &mut self,
        line: usize,
        sc: &Syscall,
        start: Micros,
        end: Option<Micros>,
    ) -> Res<()> {
        if let Some(p) = &self.pending {
            return Err(Failure::new(
                line,
                FailureKind::Mismatch,
                format!(
                    "{} called while the blocking {} of line {} has not returned",
                    sc.name, p.call.name, p.line
                ),
            ));
        }
        let fd = sc.args.first().and_then(Expr::as_int);
        match self.dispatch(line, sc)? {
            CallOutcome::Done(r) => {
                check_result(line, sc, r)?;
                if let Some(end) = end {
                    if end.saturating_sub(start) > self.tolerance {
                        return Err(Failure::new(
                            line,
                            FailureKind::Mismatch,
                            format!(
                                "{} returned at once ({}), expected to block until {}",
                                sc.name,
                                secs(self.now),
                                secs(end)
                            ),
                        ));
                    }
                }
            }
            CallOutcome::Block(kind) => {
                self.pending = Some(Pending {
                    line,
                    call: sc.clone(),
                    fd: fd.unwrap_or(-1),
                    kind,
                    start,
                    end,
                });
            }
        }
        Ok(())
    }

    fn sock(&mut self, line: usize, sc: &Syscall) -> Res<(i64, &mut Sock<S::Handle>)> {
        let fd = sc.args.first().and_then(Expr::as_int).ok_or_else(|| {
            Failure::new(
                line,
                FailureKind::Script,
                format!("{}: first argument must be an fd", sc.name),
            )
        })?;
        self.current_fd = Some(fd);
        match self.fds.get_mut(&fd) {
            Some(s) => Ok((fd, s)),
            None => Err(Failure::new(
                line,
                FailureKind::Script,
                format!("{}: fd {fd} is not open", sc.name),
            )),
        }
    }

    pub(super) fn unsupported(line: usize, what: impl Into<String>) -> Failure {
        Failure::new(line, FailureKind::Unsupported, what)
    }

    fn arg(line: usize, sc: &Syscall, i: usize) -> Res<&Expr> {
        sc.args.get(i).ok_or_else(|| {
            Failure::new(
                line,
                FailureKind::Script,
                format!("{}: missing argument {}", sc.name, i + 1),
            )
        })
    }

    fn int_arg(line: usize, sc: &Syscall, i: usize) -> Res<i64> {
        Self::arg(line, sc, i)?.as_int().ok_or_else(|| {
            Failure::new(
                line,
                FailureKind::Script,
                format!("{}: argument {} must be a number", sc.name, i + 1),
            )
        })
    }

    fn dispatch(&mut self, line: usize, sc: &Syscall) -> Res<CallOutcome> {
        use CallOutcome::Done;
        let now = self.now;
        let addrs = self.addrs;
        match sc.name.as_str() {
            "socket" => {
                if Self::arg(line, sc, 1)?.as_ident() != Some("SOCK_STREAM") {
                    return Err(Self::unsupported(line, "only SOCK_STREAM sockets"));
                }
                let fd = sc.result.as_int().filter(|&fd| fd >= 0).ok_or_else(|| {
                    Failure::new(
                        line,
                        FailureKind::Script,
                        "socket() must be expected to return an fd",
                    )
                })?;
                if self.fds.contains_key(&fd) {
                    return Err(Failure::new(
                        line,
                        FailureKind::Script,
                        format!("fd {fd} already open"),
                    ));
                }
                self.fds.insert(
                    fd,
                    Sock {
                        nonblocking: false,
                        bound: None,
                        handle: None,
                        listener: false,
                        options: SocketOptions::default(),
                    },
                );
                self.current_fd = Some(fd);
                Ok(Done(SysResult::ok(fd)))
            }
            "fcntl" => {
                let cmd = Self::arg(line, sc, 1)?.as_ident().unwrap_or("").to_string();
                let (_, sock) = self.sock(line, sc)?;
                // FreeBSD fcntl.h: O_RDWR 0x0002, O_NONBLOCK 0x0004.
                match cmd.as_str() {
                    "F_GETFL" => Ok(Done(SysResult::ok(
                        0x02 | if sock.nonblocking { 0x04 } else { 0 },
                    ))),
                    "F_SETFL" => {
                        let flags = Self::arg(line, sc, 2)?;
                        let names = flags.idents();
                        sock.nonblocking = names.contains(&"O_NONBLOCK")
                            || flags.as_int().is_some_and(|v| v & 0x04 != 0);
                        Ok(Done(SysResult::ok(0)))
                    }
                    other => Err(Self::unsupported(line, format!("fcntl {other}"))),
                }
            }
            "bind" => {
                let (_, sock) = self.sock(line, sc)?;
                sock.bound = Some(addrs.bind_port);
                self.flow_port = Some(addrs.bind_port);
                self.remote_port = REMOTE_PORT;
                Ok(Done(SysResult::ok(0)))
            }
            "listen" => {
                let backlog = Self::int_arg(line, sc, 1)?.max(1) as usize;
                let (fd, sock) = self.sock(line, sc)?;
                let port = *sock.bound.get_or_insert(addrs.bind_port);
                let r = self
                    .stack(line)?
                    .listen(SocketAddrV4::new(addrs.local_ip, port), backlog);
                match r {
                    Ok(h) => {
                        let sock = self.fds.get_mut(&fd).expect("fd checked above");
                        sock.handle = Some(h);
                        sock.listener = true;
                        self.flow_port = Some(port);
                        Ok(Done(SysResult::ok(0)))
                    }
                    Err(e) => Ok(Done(SysResult::err(e))),
                }
            }
            "accept" => {
                let (_, sock) = self.sock(line, sc)?;
                let (Some(h), true) = (sock.handle, sock.listener) else {
                    return Ok(Done(SysResult::err(Errno::EINVAL)));
                };
                let nonblocking = sock.nonblocking;
                match self.stack(line)?.accept(h) {
                    Ok(nh) => self.accepted(line, sc, nh).map(Done),
                    Err(Errno::EAGAIN) if !nonblocking => {
                        Ok(CallOutcome::Block(PendingKind::Accept))
                    }
                    Err(e) => Ok(Done(SysResult::err(e))),
                }
            }
            "connect" => {
                let default_timeout = self.settings.connect_timeout;
                let (fd, sock) = self.sock(line, sc)?;
                if sock.handle.is_some() {
                    return Ok(Done(SysResult::err(Errno::EISCONN)));
                }
                let local = SocketAddrV4::new(addrs.local_ip, sock.bound.unwrap_or(0));
                let mut options = sock.options;
                if options.connect_timeout.is_none() {
                    options.connect_timeout = default_timeout;
                }
                let nonblocking = sock.nonblocking;
                let remote = SocketAddrV4::new(addrs.remote_ip, addrs.connect_port);
                self.remote_port = addrs.connect_port;
                let stack = self.stack(line)?;
                match stack.connect(now, local, remote, options) {
                    Ok(h) => {
                        let port = stack.local_addr(h).map(|a| a.port());
                        self.flow_port = port.or(self.flow_port);
                        self.fds.get_mut(&fd).expect("fd checked above").handle = Some(h);
                        if nonblocking {
                            Ok(Done(SysResult::err(Errno::EINPROGRESS)))
                        } else {
                            Ok(CallOutcome::Block(PendingKind::Connect))
                        }
                    }
                    Err(e) => Ok(Done(SysResult::err(e))),
                }
            }
            "read" | "recv" => {
                let len = Self::int_arg(line, sc, 2)?.max(0) as usize;
                let (_, sock) = self.sock(line, sc)?;
                let (nonblocking, h) = (sock.nonblocking, sock.handle);
                let Some(h) = h else {
                    return Ok(Done(SysResult::err(Errno::ENOTCONN)));
                };
                match self.try_read(line, h, len)? {
                    Some(r) => Ok(Done(r)),
                    None if nonblocking => Ok(Done(SysResult::err(Errno::EAGAIN))),
                    None => Ok(CallOutcome::Block(PendingKind::Read { len })),
                }
            }
            "write" | "send" => {
                let len = Self::int_arg(line, sc, 2)?.max(0) as usize;
                let (_, sock) = self.sock(line, sc)?;
                let (nonblocking, h) = (sock.nonblocking, sock.handle);
                let Some(h) = h else {
                    return Ok(Done(SysResult::err(Errno::ENOTCONN)));
                };
                match self.try_write(line, h, len)? {
                    Ok(n) if n == len || nonblocking => Ok(Done(SysResult::ok(n as i64))),
                    Ok(n) => Ok(CallOutcome::Block(PendingKind::Write {
                        remaining: len - n,
                        written: n,
                    })),
                    Err(Errno::EAGAIN) if !nonblocking => {
                        Ok(CallOutcome::Block(PendingKind::Write {
                            remaining: len,
                            written: 0,
                        }))
                    }
                    Err(e) => Ok(Done(SysResult::err(e))),
                }
            }
            "close" => {
                let (fd, sock) = self.sock(line, sc)?;
                let h = sock.handle;
                self.fds.remove(&fd);
                if let Some(h) = h {
                    // close(2) succeeds for any open fd; the engine's view of
                    // the connection (already reset, say) does not change that.
                    let _ = self.stack(line)?.close(now, h);
                }
                Ok(Done(SysResult::ok(0)))
            }
            "shutdown" => {
                let how = Self::arg(line, sc, 1)?.as_ident().unwrap_or("").to_string();
                let (_, sock) = self.sock(line, sc)?;
                let h = sock.handle;
                if how != "SHUT_WR" {
                    return Err(Self::unsupported(line, format!("shutdown {how}")));
                }
                let Some(h) = h else {
                    return Ok(Done(SysResult::err(Errno::ENOTCONN)));
                };
                match self.stack(line)?.shutdown_write(now, h) {
                    Ok(()) => Ok(Done(SysResult::ok(0))),
                    Err(e) => Ok(Done(SysResult::err(e))),
                }
            }
            "getsockopt" => self.getsockopt(line, sc).map(Done),
            "setsockopt" => self.setsockopt(line, sc).map(Done),
            other => Err(Self::unsupported(line, format!("system call {other}"))),
        }
    }

    fn accepted(&mut self, line: usize, sc: &Syscall, h: S::Handle) -> Res<SysResult> {
        let fd = sc.result.as_int().filter(|&fd| fd >= 0).ok_or_else(|| {
            Failure::new(
                line,
                FailureKind::Mismatch,
                format!("accept returned a connection, expected {}", sc.result),
            )
        })?;
        if self.fds.contains_key(&fd) {
            return Err(Failure::new(
                line,
                FailureKind::Script,
                format!("fd {fd} already open"),
            ));
        }
        self.fds.insert(
            fd,
            Sock {
                nonblocking: false,
                bound: Some(self.addrs.bind_port),
                handle: Some(h),
                listener: false,
                options: SocketOptions::default(),
            },
        );
        self.current_fd = Some(fd);
        Ok(SysResult::ok(fd))
    }

    fn try_read(&mut self, line: usize, h: S::Handle, len: usize) -> Res<Option<SysResult>> {
        let now = self.now;
        let mut buf = vec![0u8; len];
        Ok(match self.stack(line)?.recv(now, h, &mut buf) {
            Ok(n) => Some(SysResult::ok(n as i64)),
            Err(Errno::EAGAIN) => None,
            Err(e) => Some(SysResult::err(e)),
        })
    }

    fn try_write(&mut self, line: usize, h: S::Handle, len: usize) -> Res<Result<usize, Errno>> {
        let now = self.now;
        let data = self.zeros[..len.min(self.zeros.len())].to_vec();
        if len > data.len() {
            return Err(Self::unsupported(
                line,
                format!("write of {len} bytes (at most {})", data.len()),
            ));
        }
        Ok(self.stack(line)?.send(now, h, &data))
    }

    fn getsockopt(&mut self, line: usize, sc: &Syscall) -> Res<SysResult> {
        let level = Self::arg(line, sc, 1)?.as_ident().unwrap_or("").to_string();
        let name = Self::arg(line, sc, 2)?.as_ident().unwrap_or("").to_string();
        let want = Self::arg(line, sc, 3)?.clone();
        let (_, sock) = self.sock(line, sc)?;
        let h = sock.handle;
        match (level.as_str(), name.as_str()) {
            ("SOL_SOCKET", "SO_ERROR") => {
                let err = match h {
                    Some(h) => self.stack(line)?.take_error(h),
                    None => None,
                };
                let got = err.map_or("0".to_string(), |e| e.name().to_string());
                let want_text = match &want {
                    Expr::Array(v) if v.len() == 1 => v[0].to_string(),
                    other => other.to_string(),
                };
                let want_errno = if want_text == "0" {
                    None
                } else {
                    Some(Errno::from_name(&want_text).ok_or_else(|| {
                        Failure::new(
                            line,
                            FailureKind::Script,
                            format!("unknown errno {want_text}"),
                        )
                    })?)
                };
                if want_errno != err {
                    return Err(Failure::new(
                        line,
                        FailureKind::Mismatch,
                        "SO_ERROR differs".to_string(),
                    )
                    .with(want_text, got));
                }
                Ok(SysResult::ok(0))
            }
            // normalise::Rule::SocketBufferSize: the value is FreeBSD's
            // buffer accounting; only the call's success is compared.
            ("SOL_SOCKET", "SO_RCVBUF" | "SO_SNDBUF") => Ok(SysResult::ok(0)),
            _ => Err(Self::unsupported(
                line,
                format!("getsockopt {level} {name}"),
            )),
        }
    }

    fn setsockopt(&mut self, line: usize, sc: &Syscall) -> Res<SysResult> {
        let level = Self::arg(line, sc, 1)?.as_ident().unwrap_or("").to_string();
        let name = Self::arg(line, sc, 2)?.as_ident().unwrap_or("").to_string();
        let value = Self::arg(line, sc, 3)?.as_int();
        let built = self.stack.is_some();
        let (_, sock) = self.sock(line, sc)?;
        match (level.as_str(), name.as_str(), value) {
            // tcp-core lets a listener bind while TIME-WAIT connections hold
            // the port, which is what SO_REUSEADDR asks of FreeBSD.
            ("SOL_SOCKET", "SO_REUSEADDR", Some(_)) => Ok(SysResult::ok(0)),
            ("IPPROTO_TCP", "TCP_NODELAY", Some(v)) => {
                sock.options.nodelay = v != 0;
                Ok(SysResult::ok(0))
            }
            ("IPPROTO_TCP", "TCP_KEEPINIT", Some(v)) if v > 0 => {
                sock.options.connect_timeout = Some(Duration::from_secs(v as u64));
                Ok(SysResult::ok(0))
            }
            // TCP_NOOPT: FreeBSD sends no options at all. The nearest
            // tcp-core setting turns off the negotiable options for the
            // Endpoint (one per script), so it must come before the stack is
            // built; the MSS option stays, which the segment check shows.
            ("IPPROTO_TCP", "TCP_NOOPT", Some(v)) if !built => {
                if v != 0 {
                    self.settings.window_scaling = false;
                    self.settings.timestamps = false;
                    self.settings.sack = false;
                }
                Ok(SysResult::ok(0))
            }
            _ => Err(Self::unsupported(
                line,
                format!("setsockopt {level} {name} {:?}", value),
            )),
        }
    }

    /// Tries to complete the pending blocking call at the current time.
    pub(super) fn service_pending(&mut self) -> Res<()> {
        let Some(p) = self.pending.clone() else {
            return Ok(());
        };
        let Some(h) = self.fds.get(&p.fd).and_then(|s| s.handle) else {
            return Err(Failure::new(
                p.line,
                FailureKind::Mismatch,
                format!("fd of the blocking {} went away", p.call.name),
            ));
        };
        let result = match p.kind {
            PendingKind::Accept => match self.stack(p.line)?.accept(h) {
                Ok(nh) => Some(self.accepted(p.line, &p.call, nh)?),
                Err(Errno::EAGAIN) => None,
                Err(e) => Some(SysResult::err(e)),
            },
            PendingKind::Connect => {
                let stack = self.stack(p.line)?;
                match stack.state(h) {
                    Some(TcpState::SynSent | TcpState::SynReceived) => None,
                    Some(TcpState::Closed) | None => Some(SysResult::err(
                        stack.take_error(h).unwrap_or(Errno::ECONNREFUSED),
                    )),
                    Some(_) => Some(SysResult::ok(0)),
                }
            }
            PendingKind::Read { len } => self.try_read(p.line, h, len)?,
            PendingKind::Write { remaining, written } => {
                match self.try_write(p.line, h, remaining)? {
                    Ok(n) if n == remaining => Some(SysResult::ok((written + n) as i64)),
                    Ok(n) => {
                        if let Some(pp) = self.pending.as_mut() {
                            pp.kind = PendingKind::Write {
                                remaining: remaining - n,
                                written: written + n,
                            };
                        }
                        None
                    }
                    Err(Errno::EAGAIN) => None,
                    Err(e) if written == 0 => Some(SysResult::err(e)),
                    Err(_) => Some(SysResult::ok(written as i64)),
                }
            }
        };
        let Some(r) = result else {
            return Ok(());
        };
        self.pending = None;
        check_result(p.line, &p.call, r)?;
        let want = p.end.unwrap_or(p.start);
        if self.now.abs_diff(want) > self.tolerance {
            return Err(Failure::new(
                p.line,
                FailureKind::Mismatch,
                format!(
                    "blocking {} returned at {}, expected at {} (tolerance {} us)",
                    p.call.name,
                    secs(self.now),
                    secs(want),
                    self.tolerance
                ),
            ));
        }
        Ok(())
    }
}

/// Compares a call's result with the script's `= ret [ERRNO]`.
fn check_result(line: usize, sc: &Syscall, r: SysResult) -> Res<()> {
    let expected = match (&sc.result, &sc.errno) {
        (Expr::Ellipsis, _) => return Ok(()),
        (Expr::Int(v), None) => SysResult::ok(*v),
        (Expr::Int(v), Some(name)) => SysResult {
            ret: *v,
            errno: Some(Errno::from_name(name).ok_or_else(|| {
                Failure::new(line, FailureKind::Script, format!("unknown errno {name}"))
            })?),
        },
        (other, _) => {
            return Err(Failure::new(
                line,
                FailureKind::Script,
                format!("cannot compare a result with {other}"),
            ))
        }
    };
    if expected != r {
        return Err(Failure::new(
            line,
            FailureKind::Mismatch,
            format!("{} returned {r}", sc.name),
        )
        .with(
            format!("{} = {expected}", sc.name),
            format!("{} = {r}", sc.name),
        ));
    }
    Ok(())
}
