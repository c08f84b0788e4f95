//! Passive open, accept, close from the passive side (RFC 9293 sections
//! 3.5, 3.6, 3.10.7.2).

use super::*;
use crate::ConnError;

#[test]
fn three_way_handshake_passive() {
    let (mut b, l, iss) = syn_received(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    assert!(out.is_empty());
    assert_eq!(b.events_for(l), vec![EventKind::AcceptReady]);
    let h = b.ep.accept(l).unwrap();
    assert_eq!(b.state(h), State::Established);
    assert_eq!(b.ep.peer_addr(h).unwrap(), REMOTE);
    assert_eq!(b.ep.local_addr(h).unwrap(), LOCAL);
    assert_eq!(b.ep.accept(l), Err(crate::AcceptError::WouldBlock));
}

#[test]
fn syn_ack_carries_mss_option_must_14() {
    let (mut b, _l) = listening(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out[0].options.mss, Some(1460));
    // Options the peer did not offer are not sent back (RFC 7323, RFC 2018).
    assert_eq!(out[0].options.window_scale, None);
    assert!(!out[0].options.sack_permitted);
    assert_eq!(out[0].options.timestamps, None);
}

#[test]
fn data_on_handshake_ack_is_delivered() {
    let (mut b, l, iss) = syn_received(plain_config());
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: PSH_ACK,
        payload: b"hello",
        ..SEND
    });
    let h = b.ep.accept(l).unwrap();
    let ev = b.events_for(h);
    assert!(ev.contains(&EventKind::Readable), "{ev:?}");
    let mut buf = [0u8; 16];
    assert_eq!(b.ep.recv(h, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
}

#[test]
fn retransmitted_syn_in_syn_received_gets_syn_ack_again() {
    let (mut b, _l, iss) = syn_received(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, SYN_ACK);
    assert_eq!(out[0].seq, iss);
}

#[test]
fn bad_ack_in_syn_received_gets_rst() {
    // RFC 9293 3.10.7.4 SYN-RECEIVED: unacceptable ACK -> <SEQ=SEG.ACK><CTL=RST>.
    let (mut b, _l, iss) = syn_received(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 100,
        flags: ACK,
        ..SEND
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, RST);
    assert_eq!(out[0].seq, iss + 100);
}

#[test]
fn rst_in_syn_received_from_passive_open_returns_to_listen() {
    let (mut b, l, _iss) = syn_received(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS + 1,
        flags: RST,
        ..SEND
    });
    assert!(out.is_empty());
    assert_eq!(b.ep.connection_count(), 0);
    assert_eq!(b.state(l), State::Listen);
    // The listener still accepts a new SYN.
    let out = b.send(TcpRepr {
        seq: PEER_ISS + 500,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out[0].flags, SYN_ACK);
}

#[test]
fn passive_close_close_wait_last_ack() {
    let mut e = established();
    // Peer sends FIN.
    let out = e.b.send(TcpRepr {
        flags: FIN,
        ..e.seg()
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, e.peer_nxt + 1);
    e.peer_nxt += 1;
    assert_eq!(e.b.state(e.h), State::CloseWait);
    assert!(e.b.events_for(e.h).contains(&EventKind::PeerFin));
    let mut buf = [0u8; 8];
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(0));
    // Half-close: we can still send in CLOSE-WAIT.
    assert_eq!(e.b.ep.send(e.b.now, e.h, b"bye"), Ok(3));
    let out = e.b.drain();
    assert_eq!(out[0].payload, b"bye");
    e.our_nxt += 3;
    e.b.ep.close(e.b.now, e.h).unwrap();
    let out = e.b.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].base_flags(), FIN);
    assert_eq!(out[0].seq, e.our_nxt);
    // The handle is released by close.
    assert_eq!(e.b.ep.state(e.h), Err(crate::SocketError::InvalidHandle));
    // Peer ACKs our FIN: connection released.
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        ..e.seg()
    });
    assert!(out.is_empty());
    assert_eq!(e.b.ep.connection_count(), 0);
    assert!(e.b.events().iter().any(|ev| ev.kind == EventKind::Closed));
}

#[test]
fn accept_queue_full_drops_handshake_ack_then_completes() {
    let mut b = Bench::new(plain_config());
    let l = b.ep.listen(LOCAL, 1).unwrap();
    let mut isses = Vec::new();
    for port in [1000u16, 1001] {
        let out = b.send(TcpRepr {
            src_port: port,
            seq: PEER_ISS,
            flags: SYN,
            ..SEND
        });
        isses.push(out[0].seq);
    }
    // Complete the first: accept queue has 1 = backlog.
    b.send(TcpRepr {
        src_port: 1000,
        seq: PEER_ISS + 1,
        ack: isses[0] + 1,
        flags: ACK,
        ..SEND
    });
    // The second ACK is dropped while the queue is full.
    b.send(TcpRepr {
        src_port: 1001,
        seq: PEER_ISS + 1,
        ack: isses[1] + 1,
        flags: ACK,
        ..SEND
    });
    assert_eq!(b.ep.stats().acks_dropped_accept_queue, 1);
    let h1 = b.ep.accept(l).unwrap();
    assert_eq!(b.ep.peer_addr(h1).unwrap().port(), 1000);
    assert_eq!(b.ep.accept(l), Err(crate::AcceptError::WouldBlock));
    // Retried ACK now completes.
    b.send(TcpRepr {
        src_port: 1001,
        seq: PEER_ISS + 1,
        ack: isses[1] + 1,
        flags: ACK,
        ..SEND
    });
    let h2 = b.ep.accept(l).unwrap();
    assert_eq!(b.ep.peer_addr(h2).unwrap().port(), 1001);
}

#[test]
fn closing_listener_resets_unaccepted_connections() {
    let (mut b, l, iss) = syn_received(plain_config());
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    b.ep.close(b.now, l).unwrap();
    let out = b.drain();
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.rst());
    assert_eq!(b.ep.connection_count(), 0);
    // The reset connections were never accepted, so their handles were
    // never given out: no Closed event (sim-findings F4; the event contract
    // says Closed ends a handle the application held).
    let closed: Vec<_> = b
        .events()
        .into_iter()
        .filter(|e| e.kind == EventKind::Closed)
        .collect();
    assert!(closed.is_empty(), "{closed:?}");
    // New SYNs now hit a closed port.
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out[0].flags, RST_ACK);
}

#[test]
fn connection_reset_before_accept_stays_queued_with_its_error() {
    // As Linux: a queued connection that ends before `accept` is still
    // returned by it, its error pending, instead of vanishing from the queue
    // (which left nothing to tell the listener's readiness changed).
    let (mut b, l, iss) = syn_received(plain_config());
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    assert_eq!(b.events_for(l), vec![EventKind::AcceptReady]);
    let out = b.send(TcpRepr {
        seq: PEER_ISS + 1,
        flags: RST,
        ..SEND
    });
    assert!(out.is_empty());
    assert_eq!(b.ep.accept_queue_len(l), Ok(1));
    assert_eq!(b.ep.connection_count(), 1);
    let h = b.ep.accept(l).unwrap();
    assert_eq!(b.state(h), State::Closed);
    assert_eq!(b.ep.peer_addr(h).unwrap(), REMOTE);
    let ev = b.events_for(h);
    assert!(ev.contains(&EventKind::Error(ConnError::Reset)), "{ev:?}");
    assert_eq!(b.ep.take_error(h), Ok(Some(ConnError::Reset)));
    assert_eq!(b.ep.accept_queue_len(l), Ok(0));
    assert_eq!(b.ep.accept(l), Err(crate::AcceptError::WouldBlock));
    b.ep.close(b.now, h).unwrap();
    assert!(
        b.drain().is_empty(),
        "nothing to send for an ended connection"
    );
    assert_eq!(b.ep.connection_count(), 0);
}

#[test]
fn queued_connection_reset_keeps_its_data_for_the_reader() {
    // Linux reads the data a queued connection received before its reset,
    // then reports the reset.
    let (mut b, l, iss) = syn_received(plain_config());
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: PSH_ACK,
        payload: b"hello",
        ..SEND
    });
    b.send(TcpRepr {
        seq: PEER_ISS + 6,
        flags: RST,
        ..SEND
    });
    let h = b.ep.accept(l).unwrap();
    assert_eq!(b.state(h), State::Closed);
    let mut buf = [0u8; 16];
    assert_eq!(b.ep.recv(h, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"hello");
    assert!(b.ep.recv(h, &mut buf).is_err(), "then the reset");
    assert_eq!(b.ep.take_error(h), Ok(Some(ConnError::Reset)));
}

#[test]
fn closing_listener_releases_a_queued_connection_that_was_reset() {
    let (mut b, l, iss) = syn_received(plain_config());
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        flags: RST,
        ..SEND
    });
    b.ep.close(b.now, l).unwrap();
    assert!(
        b.drain().is_empty(),
        "no RST for a connection already reset"
    );
    assert_eq!(b.ep.connection_count(), 0);
}

#[test]
fn wildcard_listener_answers_on_the_segment_destination_must_45() {
    let mut b = Bench::new(plain_config());
    b.ep.listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, LOCAL_PORT), 4)
        .unwrap();
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out[0].src, LOCAL_IP);
    assert_eq!(out[0].dst, REMOTE_IP);
}

#[test]
fn second_listen_on_same_address_fails_but_other_ports_work_must_42() {
    let mut b = Bench::new(plain_config());
    b.ep.listen(LOCAL, 4).unwrap();
    assert_eq!(b.ep.listen(LOCAL, 4), Err(crate::ListenError::AddrInUse));
    assert!(b.ep.listen(SocketAddrV4::new(LOCAL_IP, 81), 4).is_ok());
    assert_eq!(
        b.ep.listen(SocketAddrV4::new(LOCAL_IP, 0), 4),
        Err(crate::ListenError::Unaddressable)
    );
    assert_eq!(
        b.ep.listen(SocketAddrV4::new(LOCAL_IP, 82), 0),
        Err(crate::ListenError::InvalidBacklog)
    );
}

#[test]
fn text_on_syn_at_listener_is_queued_until_established() {
    let (mut b, l) = listening(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        payload: b"early",
        ..SEND
    });
    assert_eq!(out[0].ack, PEER_ISS + 1, "queued, not acknowledged yet");
    let iss = out[0].seq;
    // The peer does not know the text was kept: it sends it again.
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: PSH_ACK,
        payload: b"early",
        ..SEND
    });
    let h = b.ep.accept(l).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(b.ep.recv(h, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"early");
    assert_eq!(b.ep.recv(h, &mut buf), Err(crate::RecvError::WouldBlock));
}
