//! Resource limits, API misuse, and robustness against arbitrary segments.

use super::*;
use crate::{AcceptError, ConnectError, RecvError, SendError, SocketError};

#[test]
fn max_connections_refuses_connect_and_drops_syns() {
    let mut cfg = plain_config();
    cfg.max_connections = 2;
    let mut b = Bench::new(cfg);
    let l = b.ep.listen(LOCAL, 8).unwrap();
    let a = b.ep.connect(b.now, LOCAL, REMOTE).unwrap();
    b.ep.connect(b.now, LOCAL, SocketAddrV4::new(REMOTE_IP, 2))
        .unwrap();
    assert_eq!(
        b.ep.connect(b.now, LOCAL, SocketAddrV4::new(REMOTE_IP, 3)),
        Err(ConnectError::TooManyConnections)
    );
    b.drain();
    // A SYN for the listener is dropped silently (the peer retries later).
    let out = b.send(TcpRepr {
        src_port: 7777,
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert!(out.is_empty());
    assert_eq!(b.ep.stats().syns_dropped_limit, 1);
    // Releasing one makes room again.
    b.ep.abort(b.now, a).unwrap();
    b.drain();
    let out = b.send(TcpRepr {
        src_port: 7777,
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out[0].flags, SYN_ACK);
    let _ = l;
}

#[test]
fn syn_queue_is_bounded() {
    let mut cfg = plain_config();
    cfg.max_syn_backlog = 3;
    let (mut b, _l) = listening(cfg);
    for port in 1..=5u16 {
        b.send(TcpRepr {
            src_port: port,
            seq: PEER_ISS,
            flags: SYN,
            ..SEND
        });
    }
    assert_eq!(b.ep.connection_count(), 3);
    assert_eq!(b.ep.stats().syns_dropped_backlog, 2);
}

#[test]
fn stale_handles_are_rejected() {
    let mut e = established();
    let h = e.h;
    e.b.ep.abort(e.b.now, h).unwrap();
    e.b.drain();
    // The slot is reused by a new connection; the old handle must not reach it.
    let h2 =
        e.b.ep
            .connect(e.b.now, LOCAL, SocketAddrV4::new(REMOTE_IP, 9))
            .unwrap();
    assert_eq!(h2.index(), h.index());
    assert_ne!(h2, h);
    let mut buf = [0u8; 4];
    assert_eq!(e.b.ep.send(e.b.now, h, b"x"), Err(SendError::InvalidHandle));
    assert_eq!(e.b.ep.recv(h, &mut buf), Err(RecvError::InvalidHandle));
    assert_eq!(e.b.ep.close(e.b.now, h), Err(SocketError::InvalidHandle));
    assert_eq!(e.b.ep.abort(e.b.now, h), Err(SocketError::InvalidHandle));
    assert_eq!(e.b.ep.state(h), Err(SocketError::InvalidHandle));
    assert_eq!(e.b.ep.state(h2), Ok(State::SynSent));
}

#[test]
fn api_misuse_is_typed_never_a_panic() {
    let (mut b, l) = listening(plain_config());
    let mut buf = [0u8; 4];
    let now = b.now;
    assert_eq!(b.ep.send(now, l, b"x"), Err(SendError::InvalidHandle));
    assert_eq!(b.ep.recv(l, &mut buf), Err(RecvError::InvalidHandle));
    assert_eq!(b.ep.shutdown(now, l), Err(SocketError::InvalidHandle));
    assert_eq!(b.ep.set_nodelay(l, true), Err(SocketError::NotSupported));
    assert_eq!(b.ep.info(l).err(), Some(SocketError::NotSupported));
    assert_eq!(b.ep.peer_addr(l), Err(SocketError::NotSupported));
    let h = b.ep.connect(now, LOCAL, REMOTE).unwrap();
    assert_eq!(b.ep.accept(h), Err(AcceptError::NotListening));
    assert_eq!(b.ep.recv(h, &mut buf), Err(RecvError::WouldBlock));
    // Data queued in SYN-SENT goes after the handshake (RFC 9293 3.10.2).
    assert_eq!(b.ep.send(now, h, b"early"), Ok(5));
    b.ep.shutdown(now, h).unwrap();
    assert_eq!(b.ep.send(now, h, b"x"), Err(SendError::Closed));
    b.ep.close(now, h).unwrap();
    assert_eq!(b.ep.close(now, h), Err(SocketError::InvalidHandle));
    b.ep.close(now, l).unwrap();
    assert_eq!(b.ep.accept(l), Err(AcceptError::InvalidHandle));
}

#[test]
fn data_queued_in_syn_sent_is_sent_after_handshake() {
    let (mut b, h, iss) = syn_sent(plain_config());
    b.ep.send(b.now, h, b"early").unwrap();
    b.ep.shutdown(b.now, h).unwrap();
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        ack: iss + 1,
        flags: SYN_ACK,
        ..SEND
    });
    let segs = data_segments(&out);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].payload, b"early");
    assert!(segs[0].flags.fin(), "FIN rides on the data");
    assert_eq!(b.state(h), State::FinWait1);
}

#[test]
fn broadcast_and_multicast_segments_are_discarded_must_57() {
    let (mut b, _l) = listening(plain_config());
    let syn = TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    };
    b.ep.handle_segment(b.now, REMOTE_IP, Ipv4Addr::BROADCAST, &syn);
    b.ep.handle_segment(b.now, Ipv4Addr::new(224, 0, 0, 5), LOCAL_IP, &syn);
    b.ep.handle_segment(b.now, Ipv4Addr::UNSPECIFIED, LOCAL_IP, &syn);
    assert!(b.drain().is_empty());
    assert_eq!(b.ep.connection_count(), 0);
    assert_eq!(b.ep.stats().dropped_invalid, 3);
}

#[test]
fn rst_replies_are_bounded() {
    let mut cfg = plain_config();
    cfg.max_pending_rsts = 4;
    let mut b = Bench::new(cfg);
    for i in 0..10u16 {
        b.ep.handle_segment(
            b.now,
            REMOTE_IP,
            LOCAL_IP,
            &TcpRepr {
                src_port: 1000 + i,
                seq: PEER_ISS,
                flags: SYN,
                ..SEND
            },
        );
    }
    assert_eq!(b.drain().len(), 4);
    assert_eq!(b.ep.stats().rsts_dropped, 6);
}

/// A small deterministic generator for the robustness test.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn random_segments_never_panic_and_never_touch_other_connections() {
    let mut rng = Lcg(42);
    for round in 0..40 {
        let mut e = established_with(if round % 2 == 0 {
            plain_config()
        } else {
            Config::default()
        });
        // A second, unrelated connection that must stay intact.
        let other_remote = SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, 3), 5000);
        let out = e.b.send(TcpRepr {
            src_port: 5000,
            seq: SeqNumber(777),
            flags: SYN,
            ..SEND
        });
        let _ = out;
        e.b.ep.handle_segment(
            e.b.now,
            Ipv4Addr::new(10, 0, 0, 3),
            LOCAL_IP,
            &TcpRepr {
                src_port: 5000,
                seq: SeqNumber(777),
                flags: SYN,
                ..SEND
            },
        );
        e.b.drain();
        let other_state = e.b.ep.flow_state(LOCAL, other_remote);
        let payload = pattern(3000);
        for _ in 0..200 {
            let flags = TcpFlags((rng.next() & 0xff) as u8);
            let near = rng.next() % 2 == 0;
            let seq = if near {
                e.peer_nxt + (rng.next() % 70_000) as usize - 35_000
            } else {
                SeqNumber(rng.next() as u32)
            };
            let ack = if near {
                e.our_nxt + (rng.next() % 70_000) as usize - 35_000
            } else {
                SeqNumber(rng.next() as u32)
            };
            let len = (rng.next() % 3000) as usize;
            let mut options = NO_OPTS;
            if rng.next() % 3 == 0 {
                options.timestamps = Some((rng.next() as u32, rng.next() as u32));
            }
            if rng.next() % 4 == 0 {
                options.sack_count = (rng.next() % 5) as u8;
                for b in options.sack_blocks.iter_mut() {
                    *b = (
                        ack + (rng.next() % 5000) as usize,
                        ack + (rng.next() % 9000) as usize,
                    );
                }
            }
            if rng.next() % 8 == 0 {
                options.mss = Some(rng.next() as u16);
                options.window_scale = Some((rng.next() % 20) as u8);
            }
            let seg = TcpRepr {
                seq,
                ack,
                flags,
                window: rng.next() as u16,
                options,
                payload: &payload[..len],
                ..SEND
            };
            e.b.send(seg);
            if rng.next() % 10 == 0 {
                e.b.advance(Duration::from_millis(rng.next() % 3000));
            }
            if rng.next() % 10 == 0 {
                let _ = e.b.ep.send(e.b.now, e.h, &payload[..len]);
            }
            if rng.next() % 10 == 0 {
                let mut buf = [0u8; 512];
                let _ = e.b.ep.recv(e.h, &mut buf);
            }
        }
        // The unrelated half-open connection was not affected by any of it.
        assert_eq!(e.b.ep.flow_state(LOCAL, other_remote), other_state);
        e.b.advance(Duration::from_secs(600));
    }
}

#[test]
fn connection_block_is_small() {
    // Idle memory per connection excluding data buffers: the block plus the
    // congestion controller and the assembler's range table.
    let size = core::mem::size_of::<crate::conn::Conn>();
    eprintln!("size_of::<Conn>() = {size}");
    assert!(size <= 700, "{size}");
}

#[test]
fn half_open_and_time_wait_connections_hold_no_data_buffers() {
    let (mut b, l, iss) = syn_received(plain_config());
    assert_eq!(
        b.ep.flow_buffers(LOCAL, REMOTE),
        Some((0, 0)),
        "SYN flood costs no buffers"
    );
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    let cfg = plain_config();
    assert_eq!(
        b.ep.flow_buffers(LOCAL, REMOTE),
        Some((cfg.send_buf, cfg.recv_buf))
    );
    let h = b.ep.accept(l).unwrap();
    b.ep.close(b.now, h).unwrap();
    b.drain();
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 2,
        flags: FIN,
        ..SEND
    });
    assert_eq!(b.ep.flow_state(LOCAL, REMOTE), Some(State::TimeWait));
    assert_eq!(b.ep.flow_buffers(LOCAL, REMOTE), Some((0, 0)));
}

#[test]
fn syn_fin_is_dropped_only_when_configured() {
    let syn_fin = TcpRepr {
        seq: PEER_ISS,
        flags: TcpFlags(TcpFlags::SYN.0 | TcpFlags::FIN.0),
        ..SEND
    };
    // Default: RFC 9293 section 3.10.7.2, a SYN (the FIN is dropped) opens.
    let (mut b, _l) = listening(plain_config());
    let out = b.send(syn_fin);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, SYN_ACK);
    // drop_syn_fin (FreeBSD net.inet.tcp.drop_synfin): silence, at a
    // listener, a connection and a closed port alike.
    let mut cfg = plain_config();
    cfg.drop_syn_fin = true;
    let (mut b, _l) = listening(cfg.clone());
    assert!(b.send(syn_fin).is_empty());
    assert_eq!(b.ep.connection_count(), 0);
    assert!(b
        .send(TcpRepr {
            dst_port: LOCAL_PORT + 1,
            ..syn_fin
        })
        .is_empty());
    let mut e = established_with(cfg);
    assert!(e
        .b
        .send(TcpRepr {
            flags: TcpFlags(TcpFlags::SYN.0 | TcpFlags::FIN.0 | TcpFlags::ACK.0),
            ..e.seg()
        })
        .is_empty());
    assert_eq!(e.b.state(e.h), State::Established);
    assert_eq!(e.b.ep.stats().dropped_syn_fin, 1);
    assert_eq!(b.ep.stats().dropped_syn_fin, 2);
    // TIME-WAIT still answers (challenge ACK, RFC 5961 section 4).
    e.b.ep.shutdown(e.b.now, e.h).unwrap();
    e.b.drain();
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        flags: FIN,
        ..e.seg()
    });
    assert_eq!(e.b.state(e.h), State::TimeWait);
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt,
        flags: TcpFlags(TcpFlags::SYN.0 | TcpFlags::FIN.0),
        ..SEND
    });
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags, ACK);
    assert_eq!(e.b.ep.stats().dropped_syn_fin, 1);
}
