//! Active open and SYN-SENT (RFC 9293 section 3.10.7.3), simultaneous open
//! and close, ICMP errors.

use super::*;
use crate::{ConnError, IcmpError, IcmpErrorKind};

#[test]
fn three_way_handshake_active() {
    let (mut b, h, iss) = syn_sent(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        ack: iss + 1,
        flags: SYN_ACK,
        ..SEND
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, ACK);
    assert_eq!(out[0].seq, iss + 1);
    assert_eq!(out[0].ack, PEER_ISS + 1);
    assert_eq!(b.state(h), State::Established);
    let ev = b.events_for(h);
    assert!(ev.contains(&EventKind::Connected), "{ev:?}");
}

#[test]
fn syn_carries_configured_options() {
    let (_b, _h, _iss) = syn_sent(plain_config());
    let mut b = Bench::new(Config::default());
    b.ep.connect(b.now, LOCAL, REMOTE).unwrap();
    let out = b.drain();
    let o = &out[0].options;
    assert_eq!(o.mss, Some(1460));
    assert_eq!(o.window_scale, Some(Config::default().recv_wscale()));
    assert!(o.sack_permitted);
    assert!(matches!(o.timestamps, Some((_, 0))));
}

#[test]
fn rst_ack_in_syn_sent_refuses() {
    let (mut b, h, iss) = syn_sent(plain_config());
    let out = b.send(TcpRepr {
        seq: SeqNumber(0),
        ack: iss + 1,
        flags: RST_ACK,
        ..SEND
    });
    assert!(out.is_empty());
    assert_eq!(b.state(h), State::Closed);
    assert!(b
        .events_for(h)
        .contains(&EventKind::Error(ConnError::Refused)));
    let mut buf = [0u8; 4];
    assert_eq!(
        b.ep.recv(h, &mut buf),
        Err(crate::RecvError::Conn(ConnError::Refused))
    );
    assert_eq!(b.ep.take_error(h), Ok(Some(ConnError::Refused)));
    b.ep.close(b.now, h).unwrap();
    assert_eq!(b.ep.connection_count(), 0);
}

#[test]
fn rst_without_ack_in_syn_sent_is_ignored() {
    let (mut b, h, _iss) = syn_sent(plain_config());
    b.send(TcpRepr {
        seq: SeqNumber(0),
        flags: RST,
        ..SEND
    });
    assert_eq!(b.state(h), State::SynSent);
}

#[test]
fn unacceptable_ack_in_syn_sent_gets_rst() {
    let (mut b, h, iss) = syn_sent(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        ack: iss + 5,
        flags: SYN_ACK,
        ..SEND
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, RST);
    assert_eq!(out[0].seq, iss + 5);
    assert_eq!(b.state(h), State::SynSent);
}

#[test]
fn simultaneous_open_must_10() {
    let (mut b, h, iss) = syn_sent(plain_config());
    // The peer's SYN crosses ours.
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert_eq!(b.state(h), State::SynReceived);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, SYN_ACK);
    assert_eq!(out[0].seq, iss);
    assert_eq!(out[0].ack, PEER_ISS + 1);
    // Its SYN-ACK arrives.
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        ack: iss + 1,
        flags: SYN_ACK,
        ..SEND
    });
    // In SYN-RECEIVED a SYN is a challenge-ACK case; the ACK half completes
    // with the next plain ACK.
    assert!(out.iter().all(|o| !o.flags.rst()));
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    assert_eq!(b.state(h), State::Established);
    assert!(b.events_for(h).contains(&EventKind::Connected));
}

#[test]
fn simultaneous_close_goes_through_closing() {
    let mut e = established();
    e.b.ep.shutdown(e.b.now, e.h).unwrap();
    let out = e.b.drain();
    assert_eq!(out[0].base_flags(), FIN);
    assert_eq!(e.b.state(e.h), State::FinWait1);
    // The peer's FIN crosses ours (it has not seen our FIN).
    let out = e.b.send(TcpRepr {
        flags: FIN,
        ..e.seg()
    });
    assert_eq!(e.b.state(e.h), State::Closing);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, e.peer_nxt + 1);
    e.peer_nxt += 1;
    // Now it ACKs our FIN.
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        ..e.seg()
    });
    assert_eq!(e.b.state(e.h), State::TimeWait);
}

#[test]
fn active_close_fin_wait_2_time_wait_must_13() {
    let mut e = established();
    e.b.ep.shutdown(e.b.now, e.h).unwrap();
    e.b.drain();
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        ..e.seg()
    });
    assert_eq!(e.b.state(e.h), State::FinWait2);
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        flags: FIN,
        ..e.seg()
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, e.peer_nxt + 1);
    assert_eq!(e.b.state(e.h), State::TimeWait);
    e.b.ep.close(e.b.now, e.h).unwrap();
    // A retransmitted FIN is ACKed again in TIME-WAIT and restarts 2 MSL.
    e.b.advance(Duration::from_secs(50));
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        flags: FIN,
        ..e.seg()
    });
    assert_eq!(out.len(), 1);
    assert_eq!(e.b.ep.connection_count(), 1);
    e.b.advance(Duration::from_secs(59));
    assert_eq!(e.b.ep.connection_count(), 1, "2*MSL = 60 s not over yet");
    e.b.advance(Duration::from_secs(2));
    assert_eq!(e.b.ep.connection_count(), 0, "released after 2*MSL");
}

#[test]
fn connect_validates_addresses_must_46() {
    let mut b = Bench::new(plain_config());
    let now = b.now;
    let bcast = SocketAddrV4::new(Ipv4Addr::BROADCAST, 80);
    let mcast = SocketAddrV4::new(Ipv4Addr::new(224, 0, 0, 1), 80);
    assert_eq!(
        b.ep.connect(now, LOCAL, bcast),
        Err(crate::ConnectError::Unaddressable)
    );
    assert_eq!(
        b.ep.connect(now, LOCAL, mcast),
        Err(crate::ConnectError::Unaddressable)
    );
    assert_eq!(
        b.ep.connect(now, LOCAL, SocketAddrV4::new(REMOTE_IP, 0)),
        Err(crate::ConnectError::Unaddressable)
    );
    assert_eq!(
        b.ep.connect(now, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0), REMOTE),
        Err(crate::ConnectError::NoLocalAddr)
    );
    b.ep.connect(now, LOCAL, REMOTE).unwrap();
    assert_eq!(
        b.ep.connect(now, LOCAL, REMOTE),
        Err(crate::ConnectError::AddrInUse)
    );
}

#[test]
fn ephemeral_ports_are_distinct_and_in_range() {
    let mut cfg = plain_config();
    cfg.ephemeral_ports = 40000..=40003;
    let mut b = Bench::new(cfg);
    let local = SocketAddrV4::new(LOCAL_IP, 0);
    let mut ports = Vec::new();
    for _ in 0..4 {
        let h = b.ep.connect(b.now, local, REMOTE).unwrap();
        ports.push(b.ep.local_addr(h).unwrap().port());
    }
    ports.sort_unstable();
    assert_eq!(ports, vec![40000, 40001, 40002, 40003]);
    assert_eq!(
        b.ep.connect(b.now, local, REMOTE),
        Err(crate::ConnectError::NoFreePorts)
    );
}

fn icmp(kind: IcmpErrorKind, seq: SeqNumber) -> IcmpError {
    IcmpError {
        kind,
        local: LOCAL,
        remote: REMOTE,
        seq,
    }
}

#[test]
fn icmp_hard_errors_abort_syn_sent_only_for_quoted_iss() {
    // freebsd-tcp-testsuite rcv-icmp/*: the quoted sequence number must be
    // in SND.UNA..SND.NXT (ISS-1 and ISS+1 are ignored).
    for (kind, err) in [
        (IcmpErrorKind::PortUnreachable, ConnError::Refused),
        (IcmpErrorKind::ProtocolUnreachable, ConnError::Refused),
        (IcmpErrorKind::AdminProhibited, ConnError::Refused),
        // Only with Config::icmp_time_exceeded_aborts (FreeBSD icmp_may_rst).
        (IcmpErrorKind::TimeExceeded, ConnError::HostUnreachable),
    ] {
        let mut cfg = plain_config();
        cfg.icmp_time_exceeded_aborts = true;
        let (mut b, h, iss) = syn_sent(cfg);
        b.ep.handle_icmp_error(b.now, icmp(kind, iss - 1));
        b.ep.handle_icmp_error(b.now, icmp(kind, iss + 1));
        assert_eq!(b.state(h), State::SynSent, "{kind:?}");
        assert_eq!(b.ep.take_error(h), Ok(None));
        b.ep.handle_icmp_error(b.now, icmp(kind, iss));
        assert_eq!(b.state(h), State::Closed, "{kind:?}");
        assert_eq!(b.ep.take_error(h), Ok(Some(err)), "{kind:?}");
    }
}

#[test]
fn icmp_soft_errors_are_recorded_not_fatal_must_56() {
    for kind in [
        IcmpErrorKind::NetUnreachable,
        IcmpErrorKind::HostUnreachable,
        IcmpErrorKind::SourceRouteFailed,
        IcmpErrorKind::ParameterProblem,
        // Fragment reassembly timeout (type 11 code 1) says nothing about
        // reachability: soft even in SYN-SENT.
        IcmpErrorKind::from_type_code(11, 1, 0).unwrap(),
    ] {
        let (mut b, h, iss) = syn_sent(plain_config());
        b.ep.handle_icmp_error(b.now, icmp(kind, iss));
        assert_eq!(b.state(h), State::SynSent, "{kind:?}");
        assert!(b.ep.info(h).unwrap().soft_error.is_some(), "{kind:?}");
    }
    // Hard errors in a synchronized state are soft too.
    let mut e = established();
    e.b.ep.send(e.b.now, e.h, b"x").unwrap();
    e.b.drain();
    e.b.ep
        .handle_icmp_error(e.b.now, icmp(IcmpErrorKind::PortUnreachable, e.our_nxt));
    assert_eq!(e.b.state(e.h), State::Established);
    assert_eq!(
        e.b.ep.info(e.h).unwrap().soft_error,
        Some(ConnError::Refused)
    );
}

#[test]
fn icmp_ignored_when_not_allowed_to_abort() {
    let mut cfg = plain_config();
    cfg.icmp_may_abort = false;
    let (mut b, h, iss) = syn_sent(cfg);
    b.ep.handle_icmp_error(b.now, icmp(IcmpErrorKind::PortUnreachable, iss));
    assert_eq!(b.state(h), State::SynSent);
}

#[test]
fn icmp_source_quench_is_discarded_must_55() {
    let (mut b, h, iss) = syn_sent(plain_config());
    b.ep.handle_icmp_error(b.now, icmp(IcmpErrorKind::SourceQuench, iss));
    assert_eq!(b.state(h), State::SynSent);
    assert_eq!(b.ep.info(h).unwrap().soft_error, None);
}

#[test]
fn icmp_frag_needed_lowers_mss() {
    let mut e = established();
    e.b.ep.send(e.b.now, e.h, &pattern(3000)).unwrap();
    e.b.drain();
    let before = e.b.ep.info(e.h).unwrap().smss;
    e.b.ep.handle_icmp_error(
        e.b.now,
        icmp(
            IcmpErrorKind::FragmentationNeeded { next_hop_mtu: 576 },
            e.our_nxt,
        ),
    );
    let after = e.b.ep.info(e.h).unwrap().smss;
    assert!(after < before);
    assert_eq!(after, 536);
    // What is resent now fits the new MSS.
    let out = e.b.drain();
    assert!(data_segments(&out).iter().all(|o| o.payload.len() <= 536));
}

/// RCV.WND is the buffer space in every state (RFC 9293 section 3.3.1),
/// also when the window field of a SYN cannot express it (65535 at most,
/// RFC 7323 section 2.2): after a simultaneous open, a RST beyond 65535 but
/// inside the buffer is in the window (challenge ACK, RFC 5961 section 3.2).
#[test]
fn syn_received_window_is_the_buffer_space_not_the_clamped_field() {
    let mut cfg = plain_config();
    cfg.recv_buf = 65_700;
    let (mut b, h, iss) = syn_sent(cfg);
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out[0].flags, SYN_ACK);
    assert_eq!(out[0].window, 65535);
    assert_eq!(b.ep.info(h).unwrap().rcv_wnd, 65_700);
    let out = b.send(TcpRepr {
        seq: PEER_ISS + 1 + 65_600,
        flags: RST,
        ..SEND
    });
    assert_eq!(out.len(), 1, "challenge ACK: {out:?}");
    assert_eq!(out[0].flags, ACK);
    assert_eq!(out[0].ack, PEER_ISS + 1);
    assert_eq!(out[0].seq, iss + 1);
    assert_eq!(b.state(h), State::SynReceived);
}

#[test]
fn closing_resends_fin_when_configured() {
    for resend in [false, true] {
        let mut cfg = plain_config();
        cfg.closing_resends_fin = resend;
        let mut e = established_with(cfg);
        e.b.ep.shutdown(e.b.now, e.h).unwrap();
        let out = e.b.drain();
        assert_eq!(out[0].base_flags(), FIN);
        let fin_seq = out[0].seq;
        let out = e.b.send(TcpRepr {
            flags: FIN,
            ..e.seg()
        });
        assert_eq!(e.b.state(e.h), State::Closing);
        assert_eq!(out.len(), 1, "one segment: {out:?}");
        assert_eq!(out[0].ack, e.peer_nxt + 1);
        if resend {
            // BSD: the ACK carries our FIN again, at the FIN's sequence number.
            assert_eq!(out[0].base_flags(), FIN);
            assert_eq!(out[0].seq, fin_seq);
        } else {
            // RFC 9293 3.10.7.4: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>.
            assert_eq!(out[0].base_flags(), ACK);
            assert_eq!(out[0].seq, fin_seq + 1);
        }
        e.peer_nxt += 1;
        // The peer ACKs our FIN: TIME-WAIT either way, nothing more sent.
        let out = e.b.send(TcpRepr {
            ack: e.our_nxt + 1,
            ..e.seg()
        });
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(e.b.state(e.h), State::TimeWait);
    }
}

#[test]
fn icmp_time_exceeded_is_soft_by_default_must_56() {
    // MUST-56 (the default, icmp_time_exceeded_aborts = false): a soft
    // error, the attempt goes on.
    let (mut b, h, iss) = syn_sent(plain_config());
    b.ep.handle_icmp_error(b.now, icmp(IcmpErrorKind::TimeExceeded, iss));
    assert_eq!(b.state(h), State::SynSent);
    assert_eq!(
        b.ep.info(h).unwrap().soft_error,
        Some(ConnError::HostUnreachable)
    );
    // FreeBSD's icmp_may_rst: a hard error in SYN-SENT.
    let mut cfg = plain_config();
    cfg.icmp_time_exceeded_aborts = true;
    let (mut b, h, iss) = syn_sent(cfg);
    b.ep.handle_icmp_error(b.now, icmp(IcmpErrorKind::TimeExceeded, iss));
    assert_eq!(b.state(h), State::Closed);
    assert_eq!(b.ep.take_error(h), Ok(Some(ConnError::HostUnreachable)));
}
