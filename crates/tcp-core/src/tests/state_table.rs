//! Table-driven tests: each RFC 9293 state x arriving segment, with the reply
//! and the next state, citing the requirement (RFC 9293 requirement IDs from
//! `rfc9293-requirements.tsv`, or the section and companion RFC).

use super::*;

/// A connection in some state, with both sides' next sequence numbers.
struct Ctx {
    b: Bench,
    /// Our ISS.
    iss: SeqNumber,
    /// Next sequence number the peer sends.
    peer: SeqNumber,
    /// Our SND.NXT (what the peer ACKs when it ACKs everything).
    ours: SeqNumber,
}

impl Ctx {
    fn seg(&self, flags: TcpFlags) -> TcpRepr<'static> {
        TcpRepr {
            seq: self.peer,
            ack: self.ours,
            flags,
            ..SEND
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    /// No socket at all (RFC "CLOSED" for an unknown 4-tuple).
    NoTcb,
    Is(State),
}

fn fixture(state: St) -> Ctx {
    let cfg = plain_config();
    match state {
        St::NoTcb => Ctx {
            b: Bench::new(cfg),
            iss: SeqNumber(0),
            peer: PEER_ISS,
            ours: SeqNumber(5555),
        },
        St::Is(State::Listen) => Ctx {
            b: listening(cfg).0,
            iss: SeqNumber(0),
            peer: PEER_ISS,
            ours: SeqNumber(5555),
        },
        St::Is(State::SynSent) => {
            let (b, _h, iss) = syn_sent(cfg);
            Ctx {
                b,
                iss,
                peer: PEER_ISS,
                ours: iss + 1,
            }
        }
        St::Is(State::SynReceived) => {
            let (b, _l, iss) = syn_received(cfg);
            Ctx {
                b,
                iss,
                peer: PEER_ISS + 1,
                ours: iss + 1,
            }
        }
        St::Is(s) => {
            let mut e = established_with(cfg);
            let h = e.h;
            match s {
                State::Established => {}
                State::FinWait1 | State::FinWait2 | State::Closing | State::TimeWait => {
                    e.b.ep.shutdown(e.b.now, h).unwrap();
                    assert_eq!(e.b.drain().len(), 1);
                    // Our FIN is out: SND.NXT is one past it.
                    e.our_nxt += 1;
                    if matches!(s, State::FinWait2 | State::TimeWait) {
                        e.b.send(e.seg());
                    } else if s == State::Closing {
                        // The peer's FIN must not ACK ours.
                        e.our_nxt = e.our_nxt - 1;
                    }
                    if matches!(s, State::Closing | State::TimeWait) {
                        e.b.send(TcpRepr {
                            flags: FIN,
                            ..e.seg()
                        });
                        e.peer_nxt += 1;
                    }
                    if s == State::Closing {
                        e.our_nxt += 1;
                    }
                }
                State::CloseWait | State::LastAck => {
                    e.b.send(TcpRepr {
                        flags: FIN,
                        ..e.seg()
                    });
                    e.peer_nxt += 1;
                    if s == State::LastAck {
                        e.b.ep.shutdown(e.b.now, h).unwrap();
                        e.our_nxt += 1;
                    }
                }
                _ => unreachable!("fixture for {s:?}"),
            }
            e.b.drain();
            assert_eq!(e.b.state(h), s);
            Ctx {
                b: e.b,
                iss: e.iss,
                peer: e.peer_nxt,
                ours: e.our_nxt,
            }
        }
    }
}

/// What the endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    Nothing,
    /// ACK with SEQ=SND.NXT, ACK=RCV.NXT.
    Ack,
    /// RST (no ACK) with SEQ=SEG.ACK.
    Rst,
    /// RST,ACK with SEQ=0, ACK=SEG.SEQ+SEG.LEN.
    RstAck,
    /// SYN,ACK.
    SynAck,
}

/// One row: state, segment, reply, state after, requirements shown.
struct Row {
    state: St,
    name: &'static str,
    seg: fn(&Ctx) -> TcpRepr<'static>,
    reply: Reply,
    next: St,
    reqs: &'static str,
}

const SN: St = St::NoTcb;
const fn is(s: State) -> St {
    St::Is(s)
}

fn syn(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        ack: SeqNumber(0),
        ..c.seg(SYN)
    }
}
fn syn_ack(c: &Ctx) -> TcpRepr<'static> {
    c.seg(SYN_ACK)
}
fn syn_ack_bad(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        ack: c.ours + 1000,
        ..c.seg(SYN_ACK)
    }
}
fn ack(c: &Ctx) -> TcpRepr<'static> {
    c.seg(ACK)
}
fn ack_bad(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        ack: c.ours + 1000,
        ..c.seg(ACK)
    }
}
fn ack_too_old(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        ack: c.ours - 200_000,
        ..c.seg(ACK)
    }
}
fn ack_out_of_window(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        seq: c.peer + 200_000,
        ..c.seg(ACK)
    }
}
fn ack_not_fin(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        ack: c.ours - 1,
        ..c.seg(ACK)
    }
}
fn fin(c: &Ctx) -> TcpRepr<'static> {
    c.seg(FIN)
}
fn fin_not_acking_ours(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        ack: c.ours - 1,
        ..c.seg(FIN)
    }
}
fn fin_again(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        seq: c.peer - 1,
        ..c.seg(FIN)
    }
}
fn rst(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        ack: SeqNumber(0),
        ..c.seg(RST)
    }
}
fn rst_in_window(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        seq: c.peer + 100,
        ..rst(c)
    }
}
fn rst_out_of_window(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        seq: c.peer + 200_000,
        ..rst(c)
    }
}
fn rst_ack(c: &Ctx) -> TcpRepr<'static> {
    c.seg(RST_ACK)
}
fn rst_ack_bad(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        ack: c.ours + 1000,
        ..c.seg(RST_ACK)
    }
}
fn data(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        payload: b"data",
        ..c.seg(PSH_ACK)
    }
}
fn data_out_of_window(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        seq: c.peer + 200_000,
        payload: b"data",
        ..c.seg(PSH_ACK)
    }
}
fn syn_higher(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        seq: c.peer + 100_000,
        ..syn(c)
    }
}
fn syn_same_as_irs(c: &Ctx) -> TcpRepr<'static> {
    TcpRepr {
        seq: c.peer - 1,
        ..syn(c)
    }
}

use State::*;

const ROWS: &[Row] = &[
    // ---- CLOSED (no TCB): RFC 9293 3.10.7.1 ----
    Row {
        state: SN,
        name: "SYN",
        seg: syn,
        reply: Reply::RstAck,
        next: SN,
        reqs: "3.10.7.1",
    },
    Row {
        state: SN,
        name: "ACK",
        seg: ack,
        reply: Reply::Rst,
        next: SN,
        reqs: "3.10.7.1",
    },
    Row {
        state: SN,
        name: "FIN",
        seg: fin,
        reply: Reply::Rst,
        next: SN,
        reqs: "3.10.7.1",
    },
    Row {
        state: SN,
        name: "data",
        seg: data,
        reply: Reply::Rst,
        next: SN,
        reqs: "3.10.7.1",
    },
    Row {
        state: SN,
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.1",
    },
    Row {
        state: SN,
        name: "RST-ACK",
        seg: rst_ack,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.1",
    },
    // ---- LISTEN: 3.10.7.2 ----
    Row {
        state: is(Listen),
        name: "SYN",
        seg: syn,
        reply: Reply::SynAck,
        next: is(SynReceived),
        reqs: "3.10.7.2, MUST-14",
    },
    Row {
        state: is(Listen),
        name: "SYN-ACK",
        seg: syn_ack,
        reply: Reply::Rst,
        next: SN,
        reqs: "3.10.7.2",
    },
    Row {
        state: is(Listen),
        name: "ACK",
        seg: ack,
        reply: Reply::Rst,
        next: SN,
        reqs: "3.10.7.2",
    },
    Row {
        state: is(Listen),
        name: "FIN",
        seg: fin,
        reply: Reply::Rst,
        next: SN,
        reqs: "3.10.7.2",
    },
    Row {
        state: is(Listen),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.2",
    },
    Row {
        state: is(Listen),
        name: "RST-ACK",
        seg: rst_ack,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.2",
    },
    Row {
        state: is(Listen),
        name: "data",
        seg: data,
        reply: Reply::Rst,
        next: SN,
        reqs: "3.10.7.2",
    },
    // ---- SYN-SENT: 3.10.7.3 ----
    Row {
        state: is(SynSent),
        name: "SYN",
        seg: syn,
        reply: Reply::SynAck,
        next: is(SynReceived),
        reqs: "MUST-10",
    },
    Row {
        state: is(SynSent),
        name: "SYN-ACK",
        seg: syn_ack,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "3.10.7.3",
    },
    Row {
        state: is(SynSent),
        name: "SYN-ACK bad ack",
        seg: syn_ack_bad,
        reply: Reply::Rst,
        next: is(SynSent),
        reqs: "3.10.7.3",
    },
    Row {
        state: is(SynSent),
        name: "ACK",
        seg: ack,
        reply: Reply::Nothing,
        next: is(SynSent),
        reqs: "3.10.7.3",
    },
    Row {
        state: is(SynSent),
        name: "ACK bad",
        seg: ack_bad,
        reply: Reply::Rst,
        next: is(SynSent),
        reqs: "3.10.7.3",
    },
    Row {
        state: is(SynSent),
        name: "FIN",
        seg: fin,
        reply: Reply::Nothing,
        next: is(SynSent),
        reqs: "3.10.7.3",
    },
    Row {
        state: is(SynSent),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: is(SynSent),
        reqs: "3.10.7.3, RFC 5961 3.2",
    },
    Row {
        state: is(SynSent),
        name: "RST-ACK",
        seg: rst_ack,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.3, MUST-12",
    },
    Row {
        state: is(SynSent),
        name: "RST-ACK bad ack",
        seg: rst_ack_bad,
        reply: Reply::Nothing,
        next: is(SynSent),
        reqs: "3.10.7.3",
    },
    // ---- SYN-RECEIVED (passive) ----
    Row {
        state: is(SynReceived),
        name: "SYN retransmitted",
        seg: syn_same_as_irs,
        reply: Reply::SynAck,
        next: is(SynReceived),
        reqs: "3.10.7.4",
    },
    Row {
        state: is(SynReceived),
        name: "SYN new",
        seg: syn_higher,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.4 fourth",
    },
    Row {
        state: is(SynReceived),
        name: "ACK",
        seg: ack,
        reply: Reply::Nothing,
        next: is(Established),
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(SynReceived),
        name: "ACK bad",
        seg: ack_bad,
        reply: Reply::Rst,
        next: is(SynReceived),
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(SynReceived),
        name: "FIN",
        seg: fin,
        reply: Reply::Ack,
        next: is(CloseWait),
        reqs: "3.10.7.4 eighth",
    },
    Row {
        state: is(SynReceived),
        name: "data",
        seg: data,
        reply: Reply::Nothing,
        next: is(Established),
        reqs: "SHLD-18",
    },
    Row {
        state: is(SynReceived),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.4 second",
    },
    Row {
        state: is(SynReceived),
        name: "RST in window",
        seg: rst_in_window,
        reply: Reply::Ack,
        next: is(SynReceived),
        reqs: "RFC 5961 3.2",
    },
    Row {
        state: is(SynReceived),
        name: "RST out of window",
        seg: rst_out_of_window,
        reply: Reply::Nothing,
        next: is(SynReceived),
        reqs: "RFC 5961 3.2",
    },
    Row {
        state: is(SynReceived),
        name: "ACK out of window",
        seg: ack_out_of_window,
        reply: Reply::Ack,
        next: is(SynReceived),
        reqs: "3.10.7.4 first",
    },
    // ---- ESTABLISHED ----
    Row {
        state: is(Established),
        name: "SYN",
        seg: syn,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "RFC 5961 4.2, MAY-12",
    },
    Row {
        state: is(Established),
        name: "SYN out of window",
        seg: syn_higher,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "RFC 5961 4.2",
    },
    Row {
        state: is(Established),
        name: "SYN-ACK",
        seg: syn_ack,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "RFC 5961 4.2",
    },
    Row {
        state: is(Established),
        name: "ACK",
        seg: ack,
        reply: Reply::Nothing,
        next: is(Established),
        reqs: "3.10.7.4",
    },
    Row {
        state: is(Established),
        name: "ACK of unsent data",
        seg: ack_bad,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(Established),
        name: "ACK too old",
        seg: ack_too_old,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "RFC 5961 5.2",
    },
    Row {
        state: is(Established),
        name: "ACK out of window",
        seg: ack_out_of_window,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "3.10.7.4 first",
    },
    Row {
        state: is(Established),
        name: "data",
        seg: data,
        reply: Reply::Nothing,
        next: is(Established),
        reqs: "SHLD-18",
    },
    Row {
        state: is(Established),
        name: "data out of window",
        seg: data_out_of_window,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "3.10.7.4 first",
    },
    Row {
        state: is(Established),
        name: "FIN",
        seg: fin,
        reply: Reply::Ack,
        next: is(CloseWait),
        reqs: "3.10.7.4 eighth",
    },
    Row {
        state: is(Established),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "MUST-12",
    },
    Row {
        state: is(Established),
        name: "RST-ACK",
        seg: rst_ack,
        reply: Reply::Nothing,
        next: SN,
        reqs: "MUST-12",
    },
    Row {
        state: is(Established),
        name: "RST in window",
        seg: rst_in_window,
        reply: Reply::Ack,
        next: is(Established),
        reqs: "RFC 5961 3.2, MAY-12",
    },
    Row {
        state: is(Established),
        name: "RST out of window",
        seg: rst_out_of_window,
        reply: Reply::Nothing,
        next: is(Established),
        reqs: "RFC 5961 3.2",
    },
    // ---- FIN-WAIT-1 ----
    Row {
        state: is(FinWait1),
        name: "ACK of FIN",
        seg: ack,
        reply: Reply::Nothing,
        next: is(FinWait2),
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(FinWait1),
        name: "ACK not of FIN",
        seg: ack_not_fin,
        reply: Reply::Nothing,
        next: is(FinWait1),
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(FinWait1),
        name: "FIN",
        seg: fin_not_acking_ours,
        reply: Reply::Ack,
        next: is(Closing),
        reqs: "3.10.7.4 eighth",
    },
    Row {
        state: is(FinWait1),
        name: "FIN+ACK of FIN",
        seg: fin,
        reply: Reply::Ack,
        next: is(TimeWait),
        reqs: "3.10.7.4 eighth",
    },
    Row {
        state: is(FinWait1),
        name: "data",
        seg: data,
        reply: Reply::Nothing,
        next: is(FinWait2),
        reqs: "MAY-1",
    },
    Row {
        state: is(FinWait1),
        name: "SYN",
        seg: syn,
        reply: Reply::Ack,
        next: is(FinWait1),
        reqs: "RFC 5961 4.2",
    },
    Row {
        state: is(FinWait1),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "MUST-12",
    },
    Row {
        state: is(FinWait1),
        name: "RST in window",
        seg: rst_in_window,
        reply: Reply::Ack,
        next: is(FinWait1),
        reqs: "RFC 5961 3.2",
    },
    // ---- FIN-WAIT-2 ----
    Row {
        state: is(FinWait2),
        name: "FIN",
        seg: fin,
        reply: Reply::Ack,
        next: is(TimeWait),
        reqs: "3.10.7.4 eighth",
    },
    Row {
        state: is(FinWait2),
        name: "ACK",
        seg: ack,
        reply: Reply::Nothing,
        next: is(FinWait2),
        reqs: "3.10.7.4",
    },
    Row {
        state: is(FinWait2),
        name: "data",
        seg: data,
        reply: Reply::Nothing,
        next: is(FinWait2),
        reqs: "MAY-1",
    },
    Row {
        state: is(FinWait2),
        name: "SYN",
        seg: syn,
        reply: Reply::Ack,
        next: is(FinWait2),
        reqs: "RFC 5961 4.2",
    },
    Row {
        state: is(FinWait2),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "MUST-12",
    },
    Row {
        state: is(FinWait2),
        name: "RST out of window",
        seg: rst_out_of_window,
        reply: Reply::Nothing,
        next: is(FinWait2),
        reqs: "RFC 5961 3.2",
    },
    // ---- CLOSE-WAIT ----
    Row {
        state: is(CloseWait),
        name: "FIN again",
        seg: fin_again,
        reply: Reply::Ack,
        next: is(CloseWait),
        reqs: "3.10.7.4 first",
    },
    Row {
        state: is(CloseWait),
        name: "ACK",
        seg: ack,
        reply: Reply::Nothing,
        next: is(CloseWait),
        reqs: "3.10.7.4",
    },
    Row {
        state: is(CloseWait),
        name: "data after FIN",
        seg: data,
        reply: Reply::Ack,
        next: is(CloseWait),
        reqs: "3.10.7.4 seventh",
    },
    Row {
        state: is(CloseWait),
        name: "SYN",
        seg: syn,
        reply: Reply::Ack,
        next: is(CloseWait),
        reqs: "RFC 5961 4.2",
    },
    Row {
        state: is(CloseWait),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "MUST-12",
    },
    // ---- CLOSING ----
    Row {
        state: is(Closing),
        name: "ACK of FIN",
        seg: ack,
        reply: Reply::Nothing,
        next: is(TimeWait),
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(Closing),
        name: "ACK not of FIN",
        seg: ack_not_fin,
        reply: Reply::Nothing,
        next: is(Closing),
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(Closing),
        name: "FIN again",
        seg: fin_again,
        reply: Reply::Ack,
        next: is(Closing),
        reqs: "3.10.7.4 first",
    },
    Row {
        state: is(Closing),
        name: "SYN",
        seg: syn,
        reply: Reply::Ack,
        next: is(Closing),
        reqs: "RFC 5961 4.2",
    },
    Row {
        state: is(Closing),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.4 second",
    },
    // ---- LAST-ACK ----
    Row {
        state: is(LastAck),
        name: "ACK of FIN",
        seg: ack,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(LastAck),
        name: "ACK not of FIN",
        seg: ack_not_fin,
        reply: Reply::Nothing,
        next: is(LastAck),
        reqs: "3.10.7.4 fifth",
    },
    Row {
        state: is(LastAck),
        name: "FIN again",
        seg: fin_again,
        reply: Reply::Ack,
        next: is(LastAck),
        reqs: "3.10.7.4 first",
    },
    Row {
        state: is(LastAck),
        name: "SYN",
        seg: syn,
        reply: Reply::Ack,
        next: is(LastAck),
        reqs: "RFC 5961 4.2",
    },
    Row {
        state: is(LastAck),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.4 second",
    },
    // ---- TIME-WAIT ----
    Row {
        state: is(TimeWait),
        name: "FIN again",
        seg: fin_again,
        reply: Reply::Ack,
        next: is(TimeWait),
        reqs: "MUST-13",
    },
    Row {
        state: is(TimeWait),
        name: "ACK",
        seg: ack,
        reply: Reply::Nothing,
        next: is(TimeWait),
        reqs: "3.10.7.4",
    },
    Row {
        state: is(TimeWait),
        name: "SYN in window",
        seg: syn,
        reply: Reply::Ack,
        next: is(TimeWait),
        reqs: "RFC 5961 4.2",
    },
    Row {
        state: is(TimeWait),
        name: "SYN higher seq",
        seg: syn_higher,
        reply: Reply::SynAck,
        next: is(SynReceived),
        reqs: "MAY-2",
    },
    Row {
        state: is(TimeWait),
        name: "RST",
        seg: rst,
        reply: Reply::Nothing,
        next: SN,
        reqs: "3.10.7.4 second",
    },
    Row {
        state: is(TimeWait),
        name: "RST out of window",
        seg: rst_out_of_window,
        reply: Reply::Nothing,
        next: is(TimeWait),
        reqs: "RFC 5961 3.2",
    },
];

fn check_reply(c: &Ctx, seg: &TcpRepr<'_>, reply: Reply, out: &[Out]) -> Result<(), String> {
    let first = out.first();
    let ok = match (reply, first) {
        (Reply::Nothing, None) => true,
        (Reply::Ack, Some(o)) => o.base_flags() == ACK && o.seq == c.ours && out.len() == 1,
        (Reply::Rst, Some(o)) => o.flags == RST && o.seq == seg.ack,
        (Reply::RstAck, Some(o)) => {
            o.flags == RST_ACK && o.seq == SeqNumber(0) && o.ack == seg.seq + seg.seq_len()
        }
        (Reply::SynAck, Some(o)) => o.flags == SYN_ACK,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {reply:?}, got {out:?}"))
    }
}

#[test]
fn state_by_segment_table() {
    let mut failures = Vec::new();
    for row in ROWS {
        let mut c = fixture(row.state);
        let seg = (row.seg)(&c);
        let out = c.b.send(seg);
        let label = format!("{:?} + {} [{}]", row.state, row.name, row.reqs);
        if let Err(e) = check_reply(&c, &seg, row.reply, &out) {
            failures.push(format!("{label}: {e}"));
            continue;
        }
        let after = match c.b.ep.flow_state(LOCAL, REMOTE) {
            None => SN,
            Some(s) => St::Is(s),
        };
        if after != row.next {
            failures.push(format!("{label}: state {after:?}, expected {:?}", row.next));
        }
        let _ = c.iss;
    }
    assert!(
        failures.is_empty(),
        "{} failing rows:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn challenge_acks_are_rate_limited_rfc5961_7() {
    let mut cfg = plain_config();
    cfg.challenge_ack_limit = 3;
    let mut e = established_with(cfg);
    let mut acks = 0;
    for i in 0..10 {
        let out = e.b.send(TcpRepr {
            seq: e.peer_nxt + 10 + i,
            flags: RST,
            ..SEND
        });
        acks += out.len();
    }
    assert_eq!(acks, 3);
    assert_eq!(e.b.state(e.h), State::Established);
    // A new second, a new budget.
    e.b.advance(Duration::from_millis(1001));
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt + 10,
        flags: RST,
        ..SEND
    });
    assert_eq!(out.len(), 1);
}

#[test]
fn rfc793_rst_and_syn_rules_when_rfc5961_is_off() {
    let mut cfg = plain_config();
    cfg.rfc5961_rst = false;
    cfg.rfc5961_syn = false;
    // In-window RST resets.
    let mut e = established_with(cfg.clone());
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt + 100,
        flags: RST,
        ..SEND
    });
    assert!(out.is_empty());
    assert_eq!(e.b.state(e.h), State::Closed);
    // In-window SYN: RST and the connection is reset.
    let mut e = established_with(cfg.clone());
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt + 100,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.rst());
    assert_eq!(e.b.state(e.h), State::Closed);
    assert_eq!(e.b.ep.take_error(e.h), Ok(Some(crate::ConnError::Reset)));
    // Out-of-window SYN: a plain ACK.
    let mut e = established_with(cfg);
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt + 200_000,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, ACK);
    assert_eq!(e.b.state(e.h), State::Established);
}

#[test]
fn time_wait_reuse_can_be_disabled() {
    let mut c = fixture(is(TimeWait));
    let mut cfg = plain_config();
    cfg.time_wait_reuse = false;
    c.b.ep.set_config(cfg);
    let out = c.b.send(syn_higher(&c));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, ACK, "challenge ACK instead of reopening");
    assert_eq!(c.b.ep.flow_state(LOCAL, REMOTE), Some(TimeWait));
    assert_eq!(c.b.ep.count_in_state(TimeWait), 1);
    assert_eq!(c.b.ep.count_in_state(Listen), 1);
}

#[test]
fn data_on_syn_in_syn_sent_is_queued_until_established() {
    let (mut b, h, iss) = syn_sent(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        payload: b"abc",
        ..SEND
    });
    assert_eq!(out[0].flags, SYN_ACK);
    assert_eq!(out[0].ack, PEER_ISS + 1, "text not acknowledged yet");
    let mut buf = [0u8; 8];
    assert_eq!(b.ep.recv(h, &mut buf), Err(crate::RecvError::WouldBlock));
    b.send(TcpRepr {
        seq: PEER_ISS + 4,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    assert_eq!(b.state(h), State::Established);
    assert_eq!(b.ep.recv(h, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"abc");
}

#[test]
fn text_from_a_syn_is_acked_with_the_delayed_ack() {
    // RFC 5681 section 4.2: the text queued from the SYN is in-order data
    // once ESTABLISHED is reached; its ACK may be delayed (and ride on the
    // FIN of an immediate close, as in the FreeBSD suite's
    // rcv-syn-with-data-syn-sent).
    let (mut b, h, iss) = syn_sent(plain_config());
    b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        payload: b"abc",
        ..SEND
    });
    let out = b.send(TcpRepr {
        seq: PEER_ISS + 4,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    assert!(out.is_empty(), "ACK delayed: {out:?}");
    let mut buf = [0u8; 8];
    assert_eq!(b.ep.recv(h, &mut buf), Ok(3));
    b.ep.close(b.now, h).unwrap();
    let out = b.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].base_flags(), FIN);
    assert_eq!(out[0].ack, PEER_ISS + 4, "the FIN carries the ACK");
    // Without a close, the delayed-ACK timer sends it.
    let (mut b, _h, iss) = syn_sent(plain_config());
    b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        payload: b"abc",
        ..SEND
    });
    b.send(TcpRepr {
        seq: PEER_ISS + 4,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    let out = b.advance(Duration::from_millis(50));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].ack, PEER_ISS + 4);
}

#[test]
fn rfc793_mode_old_syn_straddling_rcv_nxt_is_not_a_reset() {
    // RFC 9293 section 3.10.7.4 "first": of a segment straddling RCV.NXT
    // only the new part is processed; a SYN left of RCV.NXT is old, so it
    // is not "in the window" (RFC 793 "fourth"): an ACK, no reset.
    let mut cfg = plain_config();
    cfg.rfc5961_syn = false;
    let mut e = established_with(cfg);
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt - 1,
        flags: TcpFlags(TcpFlags::SYN.0 | TcpFlags::FIN.0),
        ..SEND
    });
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags, ACK, "{out:?}");
    assert_eq!(out[0].ack, e.peer_nxt);
    assert_eq!(e.b.state(e.h), State::Established);
    assert_eq!(e.b.ep.take_error(e.h), Ok(None));
}

#[test]
fn rfc1337_ignores_rst_in_time_wait() {
    // RFC 1337 section 3 (F1): with the switch on, neither an exact RST nor
    // one elsewhere in the window ends TIME-WAIT, and no challenge ACK goes
    // out; without it the table row "TIME-WAIT RST" (closes) applies.
    for seq_off in [0usize, 10] {
        let mut c = fixture(is(TimeWait));
        let mut cfg = plain_config();
        cfg.rfc1337 = true;
        c.b.ep.set_config(cfg);
        let out = c.b.send(TcpRepr {
            seq: c.peer + seq_off,
            flags: RST,
            ..SEND
        });
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(c.b.ep.flow_state(LOCAL, REMOTE), Some(TimeWait));
    }
}

#[test]
fn reset_in_last_ack_is_reported_only_when_configured() {
    for report in [false, true] {
        let mut cfg = plain_config();
        cfg.report_reset_after_fin = report;
        let mut e = established_with(cfg);
        e.b.send(TcpRepr {
            flags: FIN,
            ..e.seg()
        });
        e.peer_nxt += 1;
        e.b.ep.shutdown(e.b.now, e.h).unwrap();
        e.b.drain();
        assert_eq!(e.b.state(e.h), LastAck);
        let out = e.b.send(TcpRepr {
            seq: e.peer_nxt,
            flags: RST,
            ..SEND
        });
        assert!(out.is_empty());
        assert_eq!(e.b.state(e.h), Closed);
        // RFC 9293 3.10.7.4: no signal; BSD/Linux: ECONNRESET.
        let expect = report.then_some(crate::ConnError::Reset);
        assert_eq!(e.b.ep.take_error(e.h), Ok(expect), "report={report}");
    }
}

#[test]
fn time_wait_window_is_the_advertised_field_once_buffers_are_released() {
    // Buffer 65700 without window scaling: ESTABLISHED accepts up to the
    // buffer space, but in TIME-WAIT (buffers released) RCV.WND is the
    // 65535 the ACK of the FIN advertised: a SYN-ACK at RCV.NXT + 65535 is
    // outside (ACK), one at RCV.NXT + 65534 inside (RFC 793 mode: RST).
    let mut cfg = plain_config();
    cfg.recv_buf = 65_700;
    cfg.rfc5961_syn = false;
    for (off, reset) in [(65_535usize, false), (65_534, true)] {
        let mut e = established_with(cfg.clone());
        e.b.ep.shutdown(e.b.now, e.h).unwrap();
        e.b.drain();
        let out = e.b.send(TcpRepr {
            ack: e.our_nxt + 1,
            flags: FIN,
            ..e.seg()
        });
        e.peer_nxt += 1;
        assert_eq!(out[0].window, 65535);
        assert_eq!(e.b.state(e.h), TimeWait);
        let out = e.b.send(TcpRepr {
            seq: e.peer_nxt + off,
            ack: e.our_nxt + 1,
            flags: SYN_ACK,
            ..SEND
        });
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].flags.rst(), reset, "offset {off}: {out:?}");
    }
}
