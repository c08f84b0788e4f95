//! Runner tests against a tiny scripted client-side stack, so that the
//! timing, remapping, socket-shim and reporting rules are checked without
//! the real engine.

use std::collections::{HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddrV4};

use wire::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};

use crate::runner::{FailureKind, LOCAL_IP, REMOTE_IP};
use crate::stack::{Errno, IcmpInput, Micros, SocketOptions, Stack, TcpState};
use crate::suite::run_text;
use crate::sysctl::Settings;

const ISN: u32 = 1_000;
const PORT: u16 = 40_000;

/// One client connection: SYN with retransmission (1 s, doubling), the
/// handshake, FIN handling, RST, data in both directions.
#[derive(Debug, Default)]
struct Fake {
    state: Option<TcpState>,
    remote: Option<SocketAddrV4>,
    snd_nxt: u32,
    rcv_nxt: u32,
    rto: Micros,
    deadline: Option<Micros>,
    out: VecDeque<(TcpFlags, u32, usize, bool)>,
    readable: usize,
    eof: bool,
    error: Option<Errno>,
    panic_on_segment: bool,
}

impl Fake {
    fn emit(&mut self, flags: TcpFlags, seq: u32, len: usize, syn_options: bool) {
        self.out.push_back((flags, seq, len, syn_options));
    }
}

impl Stack for Fake {
    type Handle = u32;

    fn update_settings(&mut self, _: &Settings) -> Result<(), String> {
        Err("fake".into())
    }

    fn handle_segment(&mut self, _now: Micros, src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) {
        assert!(!self.panic_on_segment, "fake engine panic");
        let seg =
            TcpRepr::parse_bytes(segment, src, dst, true).expect("runner builds valid segments");
        if seg.flags.rst() {
            self.state = Some(TcpState::Closed);
            self.error = Some(Errno::ECONNRESET);
            return;
        }
        match self.state {
            Some(TcpState::SynSent)
                if seg.flags.syn() && seg.flags.ack() && seg.ack.0 == ISN + 1 =>
            {
                self.state = Some(TcpState::Established);
                self.snd_nxt = ISN + 1;
                self.rcv_nxt = seg.seq.0.wrapping_add(1);
                self.deadline = None;
                self.emit(TcpFlags::ACK, self.snd_nxt, 0, false);
            }
            Some(TcpState::Established) if seg.seq.0 == self.rcv_nxt => {
                self.rcv_nxt = self.rcv_nxt.wrapping_add(seg.seq_len() as u32);
                self.readable += seg.payload.len();
                if seg.flags.fin() {
                    self.eof = true;
                    self.state = Some(TcpState::CloseWait);
                }
                if seg.seq_len() > 0 {
                    self.emit(TcpFlags::ACK, self.snd_nxt, 0, false);
                }
            }
            _ => {}
        }
    }

    fn handle_icmp(&mut self, _: Micros, _: &IcmpInput) {}

    fn handle_timeout(&mut self, now: Micros) {
        if self.deadline.is_some_and(|d| d <= now) {
            self.emit(TcpFlags::SYN, ISN, 0, true);
            self.rto *= 2;
            self.deadline = Some(now + self.rto);
        }
    }

    fn poll_timeout(&self) -> Option<Micros> {
        self.deadline
    }

    fn poll_transmit(
        &mut self,
        _now: Micros,
        buf: &mut [u8],
    ) -> Option<(Ipv4Addr, Ipv4Addr, usize)> {
        let (flags, seq, len, syn_options) = self.out.pop_front()?;
        let mut options = TcpOptions::default();
        if syn_options {
            options.mss = Some(1460);
            options.window_scale = Some(7);
            options.sack_permitted = true;
            options.timestamps = Some((5_000, 0));
        }
        let payload = vec![0u8; len];
        let repr = TcpRepr {
            src_port: PORT,
            dst_port: self.remote?.port(),
            seq: SeqNumber(seq),
            ack: SeqNumber(if flags.ack() { self.rcv_nxt } else { 0 }),
            flags,
            window: 1_000,
            urgent: 0,
            options,
            payload: &payload,
        };
        let n = repr.emit(buf, LOCAL_IP, REMOTE_IP).ok()?;
        Some((LOCAL_IP, REMOTE_IP, n))
    }

    fn listen(&mut self, _: SocketAddrV4, _: usize) -> Result<u32, Errno> {
        Err(Errno::EOPNOTSUPP)
    }

    fn accept(&mut self, _: u32) -> Result<u32, Errno> {
        Err(Errno::EINVAL)
    }

    fn connect(
        &mut self,
        now: Micros,
        _: SocketAddrV4,
        remote: SocketAddrV4,
        _: SocketOptions,
    ) -> Result<u32, Errno> {
        self.state = Some(TcpState::SynSent);
        self.remote = Some(remote);
        self.rto = 1_000_000;
        self.deadline = Some(now + self.rto);
        self.emit(TcpFlags::SYN, ISN, 0, true);
        Ok(7)
    }

    fn send(&mut self, _: Micros, _: u32, data: &[u8]) -> Result<usize, Errno> {
        if self.state != Some(TcpState::Established) && self.state != Some(TcpState::CloseWait) {
            return Err(Errno::ENOTCONN);
        }
        self.emit(
            TcpFlags::PSH | TcpFlags::ACK,
            self.snd_nxt,
            data.len(),
            false,
        );
        self.snd_nxt += data.len() as u32;
        Ok(data.len())
    }

    fn recv(&mut self, _: Micros, _: u32, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.readable > 0 {
            let n = self.readable.min(buf.len());
            self.readable -= n;
            Ok(n)
        } else if self.eof {
            Ok(0)
        } else if let Some(e) = self.error {
            Err(e)
        } else {
            Err(Errno::EAGAIN)
        }
    }

    fn shutdown_write(&mut self, _: Micros, _: u32) -> Result<(), Errno> {
        self.emit(TcpFlags::FIN | TcpFlags::ACK, self.snd_nxt, 0, false);
        self.snd_nxt += 1;
        Ok(())
    }

    fn close(&mut self, now: Micros, h: u32) -> Result<(), Errno> {
        if self.state == Some(TcpState::CloseWait) {
            self.shutdown_write(now, h)?;
            self.state = Some(TcpState::LastAck);
        }
        Ok(())
    }

    fn drop_connection(&mut self, _: Micros, _: u32) -> Result<(), Errno> {
        self.state = None;
        Ok(())
    }

    fn state(&self, _: u32) -> Option<TcpState> {
        self.state
    }

    fn local_addr(&self, _: u32) -> Option<SocketAddrV4> {
        Some(SocketAddrV4::new(LOCAL_IP, PORT))
    }

    fn take_error(&mut self, _: u32) -> Option<Errno> {
        self.error.take()
    }

    fn negotiated_options(&self, _: u32) -> Option<u8> {
        None
    }

    fn count_in_state(&self, state: TcpState, _: Option<u16>) -> Option<usize> {
        Some(usize::from(self.state == Some(state)))
    }

    fn connections_in_state(&self, state: TcpState) -> Vec<u32> {
        if self.state == Some(state) {
            vec![7]
        } else {
            Vec::new()
        }
    }
}

const PROLOGUE: &str = "\
--ip_version=ipv4
--tolerance_usecs=50000
 0.00 `sysctl -w net.inet.tcp.rfc1323=1`
+0.00 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0.00 fcntl(3, F_GETFL) = 0x02 (flags O_RDWR)
+0.00 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0.00 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0.00 > S  0:0(0)       win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>
";

const HANDSHAKE: &str = "\
+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>
+0.00 >  . 1:1(0) ack 1 win 65535
";

fn run(body: &str) -> Result<(), crate::runner::Failure> {
    run_with(body, Fake::default())
}

fn run_with(body: &str, fake: Fake) -> Result<(), crate::runner::Failure> {
    let defines: HashSet<String> = ["STANDARD".to_string()].into_iter().collect();
    let text = format!("{PROLOGUE}{body}");
    let mut fake = Some(fake);
    run_text(&text, &defines, &mut |_: &Settings| {
        fake.take().ok_or_else(|| "built twice".to_string())
    })
}

/// Line numbers in the combined script: PROLOGUE has 8 lines.
const FIRST_BODY_LINE: usize = 9;

#[test]
fn handshake_and_teardown_pass() {
    let body = format!(
        "{HANDSHAKE}\
+0.00 getsockopt(3, SOL_SOCKET, SO_RCVBUF, [65700], [4]) = 0
+0.00 %{{ assert tcpi_state == TCPI_ESTABLISHED }}%
+0.10 < P. 1:11(10) ack 1 win 32767
+0.00 > . 1:1(0) ack 11 win 65535
+0.00 read(3, ..., 100) = 10
+0.00 read(3, ..., 100) = -1 EWOULDBLOCK (Operation would block)
+0.10 < F. 11:11(0) ack 1 win 32767
+0.00 > . 1:1(0) ack 12 win 65535
+0.00 read(3, ..., 100) = 0
+0.00 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0
+0.00 close(3) = 0
+0.00 > F. 1:1(0) ack 12 win 65535
"
    );
    run(&body).unwrap();
}

#[test]
fn mismatches_report_line_and_segments() {
    let body = "+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>\n+0.00 >  . 1:1(0) ack 2 win 65535\n";
    let f = run(body).unwrap_err();
    assert_eq!(f.kind, FailureKind::Mismatch);
    assert_eq!(f.line, FIRST_BODY_LINE + 1);
    assert!(f.message.contains("ack"), "{f}");
    assert_eq!(f.expected.as_deref(), Some("> . 1:1(0) ack 2 win 65535"));
    assert!(
        f.actual
            .as_deref()
            .unwrap()
            .starts_with("> . 1:1(0) ack 1 win 1000"),
        "{f}"
    );
}

#[test]
fn syn_retransmission_timing() {
    // RTO 1 s then 2 s: on time within the tolerance.
    run("+1.00 > S 0:0(0) win 65535 <...>\n+2.03 > S 0:0(0) win 65535 <...>\n").unwrap();
    // Expected too early: nothing is sent by 0.5 s + tolerance.
    let f = run("+0.50 > S 0:0(0) win 65535 <...>\n").unwrap_err();
    assert!(f.message.contains("not sent"), "{f}");
    assert_eq!(f.line, FIRST_BODY_LINE);
    // Expected too late: the segment comes at 1.0 s, before 1.2 s - tolerance.
    let f = run("+1.20 > S 0:0(0) win 65535 <...>\n").unwrap_err();
    assert!(f.message.contains("sent at 1.000000s"), "{f}");
    // `*` takes the next one whenever it comes.
    run("* > S 0:0(0) win 65535 <...>\n* > S 0:0(0) win 65535 <...>\n").unwrap();
    // A range.
    run("+0.9...1.1 > S 0:0(0) win 65535 <...>\n").unwrap();
}

#[test]
fn extra_segments_are_caught_at_the_next_expectation() {
    // After the handshake the fake sends an ACK; a script expecting a FIN
    // first sees that ACK.
    let body = "+0.10 < S. 0:0(0) ack 1 win 32767 <mss 1460,sackOK,eol,eol>\n+0.00 > F. 1:1(0) ack 1 win 65535\n";
    let f = run(body).unwrap_err();
    assert!(f.message.contains("flags"), "{f}");
}

#[test]
fn socket_errors_and_results() {
    let body = format!("{HANDSHAKE}+0.10 < R 1:1(0) win 0\n+0.00 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNRESET], [4]) = 0\n");
    run(&body).unwrap();
    let body = format!("{HANDSHAKE}+0.10 < R 1:1(0) win 0\n+0.00 getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = 0\n");
    let f = run(&body).unwrap_err();
    assert_eq!(
        (f.expected.as_deref(), f.actual.as_deref()),
        (Some("0"), Some("ECONNRESET"))
    );
    let body = format!("{HANDSHAKE}+0.00 read(3, ..., 10) = 0\n");
    let f = run(&body).unwrap_err();
    assert_eq!(f.actual.as_deref(), Some("read = -1 EAGAIN"));
    let f = run(&format!(
        "{HANDSHAKE}+0 %{{ assert tcpi_state == TCPI_CLOSE_WAIT }}%\n"
    ))
    .unwrap_err();
    assert_eq!(f.actual.as_deref(), Some("TCPI_ESTABLISHED"));
}

#[test]
fn blocking_read_waits_for_data() {
    // fd back to blocking; read blocks until the data segment at +0.3.
    let body = format!(
        "{HANDSHAKE}+0.00 fcntl(3, F_SETFL, O_RDWR) = 0\n\
         +0.00...0.30 read(3, ..., 100) = 5\n\
         +0.30 < P. 1:6(5) ack 1 win 32767\n\
         +0.00 > . 1:1(0) ack 6 win 65535\n"
    );
    run(&body).unwrap();
    // Without the range the call must return at once: it returns 0.3 s late.
    let body = format!(
        "{HANDSHAKE}+0.00 fcntl(3, F_SETFL, O_RDWR) = 0\n\
         +0.00 read(3, ..., 100) = 5\n\
         +0.30 < P. 1:6(5) ack 1 win 32767\n"
    );
    let f = run(&body).unwrap_err();
    assert!(f.message.contains("returned at"), "{f}");
    // A call that never returns.
    let body =
        format!("{HANDSHAKE}+0.00 fcntl(3, F_SETFL, O_RDWR) = 0\n+0.00 read(3, ..., 100) = 5\n");
    let f = run(&body).unwrap_err();
    assert!(f.message.contains("never returned"), "{f}");
}

#[test]
fn unsupported_and_crashes_are_reported_as_such() {
    let f = run("+0 `sysctl -w net.inet.tcp.insecure_rst=1`\n").unwrap_err();
    assert_eq!(f.kind, FailureKind::Unsupported);
    let f = run("+0 `rm -rf /`\n").unwrap_err();
    assert_eq!(f.kind, FailureKind::Unsupported);
    let f = run("+0 frobnicate(3) = 0\n").unwrap_err();
    assert_eq!(f.kind, FailureKind::Unsupported);
    let fake = Fake {
        panic_on_segment: true,
        ..Fake::default()
    };
    let f = run_with(HANDSHAKE, fake).unwrap_err();
    assert_eq!(f.kind, FailureKind::Crash);
    assert!(f.message.contains("fake engine panic"), "{f}");
    let f = run("+0 bogus line here\n").unwrap_err();
    assert_eq!(f.kind, FailureKind::Script);
}

#[test]
fn address_options() {
    // The fake answers to whatever port it was asked to connect to.
    let defines: HashSet<String> = HashSet::new();
    let script = |opts: &str| format!("{opts}\n{PROLOGUE}{HANDSHAKE}");
    let mut fake = Some(Fake::default());
    run_text(
        &script("--connect_port=9999"),
        &defines,
        &mut |_: &Settings| fake.take().ok_or_else(|| "built twice".to_string()),
    )
    .unwrap();
    // The fake always sends from 192.168.0.1 to 192.0.2.1: another
    // --remote_ip makes every segment it sends a mismatch.
    let mut fake = Some(Fake::default());
    let f = run_text(
        &script("--remote_ip=10.0.0.2"),
        &defines,
        &mut |_: &Settings| fake.take().ok_or_else(|| "built twice".to_string()),
    )
    .unwrap_err();
    assert!(
        f.message.contains("expected 192.168.0.1 to 10.0.0.2"),
        "{f}"
    );
    let mut fake = Some(Fake::default());
    let f = run_text(
        &script("--bogus_option=1"),
        &defines,
        &mut |_: &Settings| fake.take().ok_or_else(|| "built twice".to_string()),
    )
    .unwrap_err();
    assert_eq!(f.kind, FailureKind::Unsupported);
}

#[test]
fn summary_and_verdicts() {
    use crate::expectations::{Expectations, Verdict};
    use crate::suite::{ScriptResult, Summary};
    let e = Expectations::parse("b.pkt known bug\nc.pkt fixed since\n").unwrap();
    let fail = || Err(crate::runner::Failure::new(3, FailureKind::Mismatch, "x"));
    let s = Summary {
        results: vec![
            ScriptResult {
                name: "a.pkt".into(),
                outcome: Ok(()),
                verdict: e.verdict("a.pkt", true),
            },
            ScriptResult {
                name: "b.pkt".into(),
                outcome: fail(),
                verdict: e.verdict("b.pkt", false),
            },
            ScriptResult {
                name: "c.pkt".into(),
                outcome: Ok(()),
                verdict: e.verdict("c.pkt", true),
            },
            ScriptResult {
                name: "d.pkt".into(),
                outcome: fail(),
                verdict: e.verdict("d.pkt", false),
            },
        ],
        stale_expectations: vec![],
    };
    assert_eq!(s.results[2].verdict, Verdict::UnexpectedPass);
    assert!(!s.ok());
    let report = s.report(false);
    assert!(
        report.ends_with("conformance: 2 passed, 2 failed\n"),
        "{report}"
    );
    assert!(report.contains("UNEXPECTED PASS c.pkt"), "{report}");
    assert!(report.contains("UNEXPECTED FAILURE d.pkt:3"), "{report}");
    assert!(!report.contains("b.pkt:3"), "{report}");
    assert_eq!(s.causes(), vec![("mismatch: x".to_string(), 2)]);
    assert!(
        report.contains("failures by cause:\n     2  mismatch: x\n"),
        "{report}"
    );
}

mod engine_fuzz {
    //! Mutated scripts against the real engine: the runner must return a
    //! result (pass or failure), and neither it nor tcp-core may panic.
    use super::*;
    use crate::engine::EngineStack;
    use proptest::prelude::*;

    const FLAGS: &[&str] = &["S", "S.", ".", "P.", "F.", "F", "R", "R.", "SF", "FP."];
    const CALLS: &[&str] = &[
        "read(3, ..., 1000) = ...",
        "write(3, ..., 500) = ...",
        "shutdown(3, SHUT_WR) = ...",
        "getsockopt(3, SOL_SOCKET, SO_ERROR, [0], [4]) = ...",
        "close(3) = 0",
    ];

    fn event() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (0..FLAGS.len(), 0u32..70_000, 0u32..3, 0u32..70_000, 0u32..2, 0u32..65_536)
                .prop_map(|(f, seq, len, ack, has_ack, win)| {
                    let ack = if has_ack == 1 { format!(" ack {ack}") } else { String::new() };
                    format!("+0.01 < {} {seq}:{}({len}){ack} win {win}\n", FLAGS[f], seq.wrapping_add(len))
                }),
            1 => (0..CALLS.len()).prop_map(|c| format!("+0.01 {}\n", CALLS[c])),
            1 => (0u32..3, 0u32..2).prop_map(|(c, q)| format!("+0.01 < icmp unreachable {} [{q}:{q}(0)]\n",
                ["port_unreachable", "net_unreachable", "host_prohibited"][c as usize])),
            1 => (1u32..5000).prop_map(|ms| format!("+{}.{:03} `sockstat -4 -P tcp -s | grep -c TIME_WAIT | grep 0`\n", ms / 1000, ms % 1000)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        /// Random segments, calls, ICMP and waits after an active or passive
        /// open: the runner returns an outcome and nothing panics.
        #[test]
        fn random_events_never_panic(passive in any::<bool>(), events in proptest::collection::vec(event(), 1..25)) {
            let open = if passive {
                "--tolerance_usecs=50000\n 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 5\n+0 bind(5, ..., ...) = 0\n+0 listen(5, 1) = 0\n+0 < S 0:0(0) win 32767 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7>\n+0 > S. 0:0(0) ack 1 <...>\n+0.01 < . 1:1(0) ack 1 win 32767\n+0 accept(5, ..., ...) = 3\n+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0\n"
            } else {
                "--tolerance_usecs=50000\n 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3\n+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0\n+0 connect(3, ..., ...) = -1 EINPROGRESS (x)\n+0 > S 0:0(0) <...>\n+0.01 < S. 0:0(0) ack 1 win 32767 <mss 1460>\n+0 > . 1:1(0) ack 1\n"
            };
            let text = format!("{open}{}", events.concat());
            let script = crate::script::parse(&text, &HashSet::new()).expect("generated scripts parse");
            // Not inside catch_unwind: a panic fails the test.
            let _ = crate::runner::run(&script, &mut EngineStack::build);
        }
    }
}

mod engine_shim {
    //! The socket shim's blocking calls against the real engine.
    use super::*;
    use crate::engine::EngineStack;

    fn run_engine(text: &str) -> Result<(), crate::runner::Failure> {
        let script = crate::script::parse(text, &HashSet::new()).expect("parses");
        crate::runner::run(&script, &mut EngineStack::build)
    }

    #[test]
    fn blocking_accept_returns_when_the_handshake_completes() {
        let text = "\
--tolerance_usecs=10000
 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 bind(3, ..., ...) = 0
+0 listen(3, 1) = 0
+0...0.2 accept(3, ..., ...) = 4
+0.1 < S 0:0(0) win 32767 <mss 1460>
+0 > S. 0:0(0) ack 1 <...>
+0.1 < . 1:1(0) ack 1 win 32767
+0 %{ assert tcpi_state == TCPI_ESTABLISHED }%
";
        run_engine(text).unwrap();
        // Expected to return at 0.1 s: it cannot, the ACK comes at 0.2 s.
        let early = text.replace("+0...0.2 accept", "+0...0.1 accept");
        let f = run_engine(&early).unwrap_err();
        assert!(
            f.message.contains("blocking accept returned at 0.200000s"),
            "{f}"
        );
    }

    #[test]
    fn blocking_connect_returns_on_the_syn_ack() {
        let text = "\
--tolerance_usecs=10000
 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0...0.3 connect(3, ..., ...) = 0
+0 > S 0:0(0) <...>
+0.3 < S. 0:0(0) ack 1 win 32767 <mss 1460>
+0 > . 1:1(0) ack 1
";
        run_engine(text).unwrap();
        // A RST instead: connect fails with ECONNREFUSED at that time.
        let refused = text
            .replace("= 0\n+0 > S", "= -1 ECONNREFUSED\n+0 > S")
            .replace(
                "< S. 0:0(0) ack 1 win 32767 <mss 1460>\n+0 > . 1:1(0) ack 1",
                "< R. 0:0(0) ack 1 win 0",
            );
        run_engine(&refused).unwrap();
        // Non-blocking: EINPROGRESS at once, then SO_ERROR after the RST.
        let nonblocking = "\
--tolerance_usecs=10000
 0 socket(..., SOCK_STREAM, IPPROTO_TCP) = 3
+0 fcntl(3, F_SETFL, O_RDWR | O_NONBLOCK) = 0
+0 connect(3, ..., ...) = -1 EINPROGRESS (Operation now in progress)
+0 > S 0:0(0) <...>
+0.1 < R. 0:0(0) ack 1 win 0
+0 getsockopt(3, SOL_SOCKET, SO_ERROR, [ECONNREFUSED], [4]) = 0
+0 read(3, ..., 10) = -1 ENOTCONN
";
        let r = run_engine(nonblocking);
        // The errno of a read on a refused socket is the stack's choice; the
        // SO_ERROR line before it must pass.
        if let Err(f) = r {
            assert_eq!(f.line, 8, "{f}");
        }
    }
}
