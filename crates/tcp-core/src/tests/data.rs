//! Data transfer: segmentation, delayed and aggregated ACKs, Nagle, silly
//! window avoidance, out-of-order data, zero windows, half-close, abort.

use super::*;
use crate::{RecvError, SendError};

fn full_segments(e: &Established, n: usize) -> Vec<(SeqNumber, Vec<u8>)> {
    let mss = 1460;
    let data = pattern(n * mss);
    (0..n)
        .map(|i| (e.peer_nxt + i * mss, data[i * mss..(i + 1) * mss].to_vec()))
        .collect()
}

#[test]
fn send_is_segmented_at_mss_must_16() {
    let mut e = established();
    let data = pattern(4000);
    assert_eq!(e.b.ep.send(e.b.now, e.h, &data), Ok(4000));
    let out = e.b.drain();
    let segs = data_segments(&out);
    // Peer offered MSS 1460; initial window is 10 segments, so all go.
    assert_eq!(
        segs.iter().map(|o| o.payload.len()).collect::<Vec<_>>(),
        vec![1460, 1460, 1080]
    );
    assert_eq!(segs[0].seq, e.our_nxt);
    assert_eq!(segs[1].seq, e.our_nxt + 1460);
    let joined: Vec<u8> = segs.iter().flat_map(|o| o.payload.clone()).collect();
    assert_eq!(joined, data);
    // PSH on the segment that empties the queue.
    assert!(segs[2].flags.psh());
    assert!(segs.iter().all(|o| !o.control));
}

#[test]
fn mss_536_when_peer_sends_no_option_must_15() {
    let (mut b, l) = listening(plain_config());
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    let iss = out[0].seq;
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    let h = b.ep.accept(l).unwrap();
    b.ep.send(b.now, h, &pattern(1000)).unwrap();
    let out = b.drain();
    assert_eq!(data_segments(&out)[0].payload.len(), 536);
}

#[test]
fn receive_in_order_and_delayed_ack_shld_18_must_40() {
    let mut e = established();
    let out = e.b.send(TcpRepr {
        payload: b"abc",
        ..e.seg()
    });
    assert!(out.is_empty(), "ACK is delayed: {out:?}");
    let out = e.b.advance(Duration::from_millis(39));
    assert!(out.is_empty());
    let out = e.b.advance(Duration::from_millis(2));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, ACK);
    assert_eq!(out[0].ack, e.peer_nxt + 3);
    let mut buf = [0u8; 8];
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"abc");
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Err(RecvError::WouldBlock));
}

#[test]
fn ack_every_second_full_segment_shld_19() {
    let mut e = established();
    let segs = full_segments(&e, 2);
    let out = e.b.send(TcpRepr {
        seq: segs[0].0,
        payload: &segs[0].1,
        ..e.seg()
    });
    assert!(out.is_empty());
    let out = e.b.send(TcpRepr {
        seq: segs[1].0,
        payload: &segs[1].1,
        ..e.seg()
    });
    assert_eq!(out.len(), 1, "second full segment is ACKed at once");
    assert_eq!(out[0].ack, e.peer_nxt + 2920);
}

#[test]
fn one_ack_per_batch_must_58_59() {
    let mut e = established();
    let segs = full_segments(&e, 6);
    let reprs: Vec<TcpRepr<'_>> = segs
        .iter()
        .map(|(seq, p)| TcpRepr {
            seq: *seq,
            payload: p,
            ..e.seg()
        })
        .collect();
    let out = e.b.send_batch(&reprs);
    assert_eq!(out.len(), 1, "one ACK for the whole batch: {out:?}");
    assert_eq!(out[0].ack, e.peer_nxt + 6 * 1460);
}

#[test]
fn zero_delayed_ack_acks_every_segment() {
    let mut cfg = plain_config();
    cfg.delayed_ack = Duration::ZERO;
    let mut e = established_with(cfg);
    let out = e.b.send(TcpRepr {
        payload: b"x",
        ..e.seg()
    });
    assert_eq!(out.len(), 1);
}

#[test]
fn out_of_order_is_acked_at_once_and_hole_fill_too_shld_31() {
    let mut e = established();
    let segs = full_segments(&e, 3);
    // Segment 2 and 3 arrive before 1.
    let out = e.b.send(TcpRepr {
        seq: segs[1].0,
        payload: &segs[1].1,
        ..e.seg()
    });
    assert_eq!(out.len(), 1, "duplicate ACK at once");
    assert_eq!(out[0].ack, e.peer_nxt);
    let out = e.b.send(TcpRepr {
        seq: segs[2].0,
        payload: &segs[2].1,
        ..e.seg()
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, e.peer_nxt);
    assert_eq!(e.b.ep.readable(e.h), Ok(0));
    // The hole is filled: immediate cumulative ACK for everything.
    let out = e.b.send(TcpRepr {
        seq: segs[0].0,
        payload: &segs[0].1,
        ..e.seg()
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, e.peer_nxt + 3 * 1460);
    let mut buf = vec![0u8; 5000];
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(3 * 1460));
    assert_eq!(&buf[..3 * 1460], &pattern(3 * 1460)[..]);
}

#[test]
fn ooo_reassembly_is_bounded_by_ranges() {
    let mut cfg = plain_config();
    cfg.ooo_max_ranges = 2;
    let mut e = established_with(cfg);
    // Three separate islands: the third is refused, but still ACKed.
    for i in [2usize, 4, 6] {
        let out = e.b.send(TcpRepr {
            seq: e.peer_nxt + i * 100,
            payload: &[1u8; 50],
            ..e.seg()
        });
        assert_eq!(out.len(), 1);
    }
    // Fill everything up to the second island: the third island (refused)
    // is not there, so data stops at 450.
    let fill = vec![7u8; 200];
    e.b.send(TcpRepr {
        payload: &fill,
        ..e.seg()
    });
    e.b.send(TcpRepr {
        seq: e.peer_nxt + 250,
        payload: &fill[..150],
        ..e.seg()
    });
    assert_eq!(e.b.ep.readable(e.h), Ok(450));
}

#[test]
fn nagle_holds_small_segments_while_data_is_unacked_shld_7() {
    let mut e = established();
    e.b.ep.send(e.b.now, e.h, b"a").unwrap();
    let out = e.b.drain();
    assert_eq!(data_segments(&out).len(), 1);
    e.b.ep.send(e.b.now, e.h, b"b").unwrap();
    assert!(e.b.drain().is_empty(), "held by Nagle");
    // The ACK of "a" releases "b".
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        ..e.seg()
    });
    assert_eq!(data_segments(&out).len(), 1);
    assert_eq!(data_segments(&out)[0].payload, b"b");
}

#[test]
fn nodelay_disables_nagle_must_17() {
    let mut e = established();
    e.b.ep.set_nodelay(e.h, true).unwrap();
    e.b.ep.send(e.b.now, e.h, b"a").unwrap();
    e.b.drain();
    e.b.ep.send(e.b.now, e.h, b"b").unwrap();
    let out = e.b.drain();
    assert_eq!(data_segments(&out).len(), 1);
}

#[test]
fn sender_sws_waits_for_a_useful_window_must_38() {
    let mut e = established();
    // The peer shrinks its window to 100 bytes (while we have nothing in flight).
    e.b.send(TcpRepr {
        window: 100,
        ..e.seg()
    });
    e.b.ep.send(e.b.now, e.h, &pattern(1000)).unwrap();
    // 100 >= max window / 2 is false (max was 65535): nothing sent at once.
    let out = e.b.drain();
    assert!(data_segments(&out).is_empty(), "{out:?}");
    // The override (persist) timer eventually sends what fits.
    let out = e.b.advance(Duration::from_millis(1100));
    let segs = data_segments(&out);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].payload.len(), 100);
}

/// A connection with an 8 KiB receive buffer that the peer filled in one
/// batch (the ACK of it advertised a zero window); returns it with the data.
fn full_window_8k() -> (Established, Vec<u8>) {
    let mut cfg = plain_config();
    cfg.recv_buf = 8192;
    let mut e = established_with(cfg);
    let data = pattern(8192);
    let segs: Vec<TcpRepr<'_>> = (0..8)
        .map(|chunk| TcpRepr {
            seq: e.peer_nxt + chunk * 1024,
            payload: &data[chunk * 1024..(chunk + 1) * 1024],
            ..e.seg()
        })
        .collect();
    let out = e.b.send_batch(&segs);
    assert_eq!(out.last().expect("ACK").window, 0);
    e.peer_nxt += 8192;
    (e, data)
}

#[test]
fn receiver_sws_does_not_advertise_tiny_window_increases_must_39() {
    let (mut e, _) = full_window_8k();
    // Reading 100 bytes must not reopen the window by 100 bytes.
    let mut buf = [0u8; 100];
    e.b.ep.recv(e.h, &mut buf).unwrap();
    let out = e.b.send(TcpRepr {
        payload: b"",
        ..e.seg()
    });
    assert!(out.is_empty());
    // A keep-alive style probe gets an ACK showing the window still 0.
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt - 1,
        ..e.seg()
    });
    assert_eq!(out[0].window, 0);
    // Reading a full MSS (min(buf/2, MSS) = 1460) reopens it, with an
    // unsolicited window update.
    let mut big = [0u8; 2000];
    e.b.ep.recv(e.h, &mut big).unwrap();
    let out = e.b.drain();
    assert_eq!(out.len(), 1, "window update");
    assert!(out[0].window >= 1460, "{}", out[0].window);
}

/// Bytes read ahead of the application (`recv_ahead`, for a runtime that
/// keeps a copy on the application's side) keep the window closed until
/// `release_received` says the application consumed them; then the window
/// reopens with an update, as after a read (RCV.WND is the buffer space,
/// RFC 9293 section 3.3.1; receiver SWS avoidance, section 3.8.6.2.2).
#[test]
fn read_ahead_bytes_count_against_the_window_until_released() {
    let (mut e, data) = full_window_8k();
    // Everything moves to the application's side: no window update.
    let mut buf = vec![0u8; 8192];
    assert_eq!(e.b.ep.recv_ahead(e.h, &mut buf), Ok(8192));
    assert_eq!(&buf[..], &data[..]);
    assert!(
        e.b.drain().is_empty(),
        "no window update for bytes read ahead"
    );
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt - 1,
        ..e.seg()
    });
    assert_eq!(out[0].window, 0, "read-ahead bytes still hold the window");
    // The application consumes 100 bytes: too little to reopen (SWS).
    e.b.ep.release_received(e.h, 100).unwrap();
    assert!(e.b.drain().is_empty());
    // It consumes the rest: the window reopens with an update.
    e.b.ep.release_received(e.h, 8092).unwrap();
    let out = e.b.drain();
    assert_eq!(out.len(), 1, "window update");
    assert_eq!(out[0].window, 8192);
}

/// A short request read from a buffer larger than the window the SYN-ACK
/// could offer (65535: the field is unscaled there) owes no window update:
/// the peer's window is still most of what it was offered, so the ACK waits
/// (delayed ACK) and rides on the reply, which carries the wider window.
#[test]
fn reading_a_short_request_sends_no_window_update() {
    let mut cfg = plain_config();
    cfg.recv_buf = 256 * 1024;
    let mut e = established_with(cfg);
    let request = pattern(64);
    let out = e.b.send(TcpRepr {
        flags: PSH_ACK,
        payload: &request,
        ..e.seg()
    });
    assert!(out.is_empty(), "delayed ACK: {out:?}");
    e.peer_nxt += 64;
    let mut buf = [0u8; 128];
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(64));
    let out = e.b.drain();
    assert!(out.is_empty(), "no window update for 64 bytes: {out:?}");
    e.b.ep.send(e.b.now, e.h, &request).unwrap();
    let out = e.b.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].payload.len(), 64);
    assert_eq!(out[0].ack, e.peer_nxt, "the reply carries the ACK");
    assert_eq!(out[0].window, u16::MAX);
}

#[test]
fn zero_window_acceptability_and_rst_must_66() {
    let mut cfg = plain_config();
    cfg.recv_buf = 1000;
    let mut e = established_with(cfg);
    e.b.send(TcpRepr {
        payload: &pattern(1000),
        ..e.seg()
    });
    e.b.advance(Duration::from_millis(50));
    e.peer_nxt += 1000;
    // Data with a zero window is not acceptable: ACKed, dropped.
    let out = e.b.send(TcpRepr {
        payload: b"zz",
        ..e.seg()
    });
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ack, e.peer_nxt);
    assert_eq!(out[0].window, 0);
    assert_eq!(e.b.ep.readable(e.h), Ok(1000));
    // But its ACK field is still processed.
    e.b.ep.send(e.b.now, e.h, b"q").unwrap();
    e.b.drain();
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        payload: b"z",
        ..e.seg()
    });
    assert_eq!(e.b.ep.info(e.h).unwrap().bytes_in_flight, 0);
    // RST at RCV.NXT is processed with a zero window.
    e.b.send(TcpRepr {
        flags: RST,
        ..e.seg()
    });
    assert_eq!(e.b.state(e.h), State::Closed);
}

#[test]
fn half_close_keeps_receiving_may_1() {
    let mut e = established();
    e.b.ep.shutdown(e.b.now, e.h).unwrap();
    e.b.drain();
    e.our_nxt += 1;
    assert_eq!(e.b.ep.send(e.b.now, e.h, b"x"), Err(SendError::Closed));
    e.b.send(TcpRepr {
        payload: b"still here",
        ..e.seg()
    });
    assert_eq!(e.b.state(e.h), State::FinWait2);
    let mut buf = [0u8; 32];
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(10));
}

#[test]
fn close_with_unread_data_sends_rst_shld_3() {
    let mut e = established();
    e.b.send(TcpRepr {
        payload: b"unread",
        ..e.seg()
    });
    e.b.ep.close(e.b.now, e.h).unwrap();
    let out = e.b.drain();
    assert_eq!(out.len(), 1);
    assert!(out[0].flags.rst());
    assert_eq!(out[0].seq, e.our_nxt);
    assert_eq!(e.b.ep.connection_count(), 0);
}

#[test]
fn data_after_close_is_answered_with_rst() {
    let mut e = established();
    e.b.ep.close(e.b.now, e.h).unwrap();
    let out = e.b.drain();
    assert_eq!(out[0].base_flags(), FIN);
    let out = e.b.send(TcpRepr {
        payload: b"late",
        ..e.seg()
    });
    assert!(out.iter().any(|o| o.flags.rst()), "{out:?}");
    assert_eq!(e.b.ep.connection_count(), 0);
}

#[test]
fn abort_sends_rst_and_releases() {
    let mut e = established();
    e.b.ep.abort(e.b.now, e.h).unwrap();
    let out = e.b.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, RST_ACK);
    assert_eq!(out[0].seq, e.our_nxt);
    assert_eq!(e.b.ep.connection_count(), 0);
    assert_eq!(e.b.ep.state(e.h), Err(crate::SocketError::InvalidHandle));
    assert!(e.b.events().iter().any(|ev| ev.kind == EventKind::Closed));
}

#[test]
fn peer_reset_is_reported_must_12() {
    let mut e = established();
    e.b.send(TcpRepr {
        flags: RST,
        ..e.seg()
    });
    assert_eq!(e.b.state(e.h), State::Closed);
    assert!(e
        .b
        .events_for(e.h)
        .contains(&EventKind::Error(crate::ConnError::Reset)));
    assert_eq!(
        e.b.ep.send(e.b.now, e.h, b"x"),
        Err(SendError::Conn(crate::ConnError::Reset))
    );
}

#[test]
fn send_buffer_limit_refuses_cleanly() {
    let mut cfg = plain_config();
    cfg.send_buf = 1000;
    let mut e = established_with(cfg);
    assert_eq!(e.b.ep.send(e.b.now, e.h, &pattern(1500)), Ok(1000));
    assert_eq!(e.b.ep.writable(e.h), Ok(0));
    assert_eq!(e.b.ep.send(e.b.now, e.h, b"x"), Err(SendError::WouldBlock));
    e.b.drain();
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1000,
        ..e.seg()
    });
    assert_eq!(e.b.ep.writable(e.h), Ok(1000));
    assert!(e.b.events_for(e.h).contains(&EventKind::Writable));
}

#[test]
fn peek_does_not_consume() {
    let mut e = established();
    e.b.send(TcpRepr {
        payload: b"peek",
        ..e.seg()
    });
    let mut buf = [0u8; 8];
    assert_eq!(e.b.ep.peek(e.h, &mut buf), Ok(4));
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(4));
    assert_eq!(e.b.ep.peek(e.h, &mut buf), Err(RecvError::WouldBlock));
}

#[test]
fn ring_wrap_segments_are_byte_exact() {
    let mut cfg = plain_config();
    cfg.send_buf = 3000;
    let mut e = established_with(cfg);
    let data = pattern(9000);
    let mut sent = 0;
    let mut received = Vec::new();
    while received.len() < data.len() {
        if sent < data.len() {
            sent += e.b.ep.send(e.b.now, e.h, &data[sent..]).unwrap_or(0);
        }
        let out = e.b.drain();
        for o in data_segments(&out) {
            assert_eq!(o.seq, e.iss + 1 + received.len());
            received.extend_from_slice(&o.payload);
        }
        e.our_nxt = e.iss + 1 + received.len();
        e.b.send(TcpRepr {
            ack: e.our_nxt,
            ..e.seg()
        });
    }
    assert_eq!(received, data);
}

#[test]
fn control_segments_leave_before_data_segments() {
    let (mut b, l) = listening(plain_config());
    // Two connections: A will have data queued, B owes a FIN ACK.
    let mut isses = Vec::new();
    for port in [1000u16, 1001] {
        let out = b.send(TcpRepr {
            src_port: port,
            seq: PEER_ISS,
            flags: SYN,
            ..SEND
        });
        let iss = out[0].seq;
        isses.push(iss);
        b.send(TcpRepr {
            src_port: port,
            seq: PEER_ISS + 1,
            ack: iss + 1,
            flags: ACK,
            ..SEND
        });
    }
    let a = b.ep.accept(l).unwrap();
    let _b2 = b.ep.accept(l).unwrap();
    b.ep.send(b.now, a, &pattern(5000)).unwrap();
    b.ep.handle_segment(
        b.now,
        REMOTE_IP,
        LOCAL_IP,
        &TcpRepr {
            src_port: 1001,
            seq: PEER_ISS + 1,
            ack: isses[1] + 1,
            flags: FIN,
            ..SEND
        },
    );
    let out = b.drain();
    assert!(out.len() >= 2);
    assert!(out[0].control, "{:?}", out[0]);
    assert_eq!(out[0].dst_port, 1001);
    assert!(out[1..].iter().all(|o| !o.control));
}

#[test]
fn partial_gap_fill_is_acked_at_once_rfc5681_4_2() {
    let mut e = established();
    e.b.send(TcpRepr {
        seq: e.peer_nxt + 3000,
        payload: &[1; 1000],
        ..e.seg()
    });
    let out = e.b.send(TcpRepr {
        payload: &[1; 1000],
        ..e.seg()
    });
    assert_eq!(out.len(), 1, "partial fill ACKed at once");
    assert_eq!(out[0].ack, e.peer_nxt + 1000);
}

#[test]
fn ooo_reassembly_is_bounded_by_bytes() {
    let mut cfg = plain_config();
    cfg.ooo_max_bytes = 1000;
    let mut e = established_with(cfg);
    // 800 bytes out of order fit; 800 more do not (1600 > 1000).
    e.b.send(TcpRepr {
        seq: e.peer_nxt + 100,
        payload: &[1; 800],
        ..e.seg()
    });
    e.b.send(TcpRepr {
        seq: e.peer_nxt + 2000,
        payload: &[2; 800],
        ..e.seg()
    });
    // Filling [0, 100) releases only the first island.
    e.b.send(TcpRepr {
        payload: &[0; 100],
        ..e.seg()
    });
    assert_eq!(e.b.ep.readable(e.h), Ok(900));
}

fn urg(e: &Established, off: usize, payload: &'static [u8], up: u16) -> TcpRepr<'static> {
    TcpRepr {
        seq: e.peer_nxt + off,
        flags: TcpFlags(TcpFlags::URG.0 | TcpFlags::ACK.0),
        urgent: up,
        payload,
        ..e.seg()
    }
}

/// RFC 9293 section 3.8.5 / 3.10.7.4 "sixth" (MUST-31..33, MUST-62): the
/// urgent pointer marks the octet after the urgent data; the data is read
/// inline and the application learns how far the urgent data reaches.
#[test]
fn urgent_data_is_inline_and_its_end_is_reported_must_62_33() {
    let mut e = established();
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(None));
    e.b.send(urg(&e, 0, b"abcdef", 3));
    assert!(e.b.events_for(e.h).contains(&EventKind::Readable));
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(Some(3)));
    let mut buf = [0u8; 2];
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(2));
    assert_eq!(&buf, b"ab");
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(Some(1)));
    let mut buf = [0u8; 8];
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"cdef", "urgent byte delivered inline");
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(None));
}

/// MUST-31: urgent data of any length: the pointer may run ahead of the
/// data received; later segments of the same urgent sequence do not signal
/// again, a pointer alone (no data) starts urgent mode with a signal (MUST-32).
#[test]
fn urgent_pointer_ahead_of_data_and_signal_once_must_31_32() {
    let mut e = established();
    e.b.send(urg(&e, 0, b"abc", 1000));
    e.b.events();
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(Some(1000)));
    // Same urgent sequence continued: data but no second urgent signal
    // beyond the usual Readable of new data; the pointer stays.
    e.b.send(urg(&e, 3, b"def", 997));
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(Some(1000)));
    let mut buf = [0u8; 16];
    assert_eq!(e.b.ep.recv(e.h, &mut buf), Ok(6));
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(Some(994)));
    e.b.events();
    // A fresh connection: a bare ACK with URG moves the pointer ahead and
    // queues Readable although no data came.
    let mut e = established();
    let out = e.b.send(urg(&e, 0, b"", 5));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(e.b.events_for(e.h), vec![EventKind::Readable]);
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(Some(5)));
    assert_eq!(e.b.ep.readable(e.h), Ok(0));
}

/// After the peer's FIN, URG "should not occur ... ignore the URG".
#[test]
fn urgent_ignored_after_peer_fin() {
    let mut e = established();
    e.b.send(TcpRepr {
        flags: FIN,
        ..e.seg()
    });
    e.peer_nxt += 1;
    assert_eq!(e.b.state(e.h), State::CloseWait);
    e.b.send(urg(&e, 0, b"", 5));
    assert_eq!(e.b.ep.urgent_remaining(e.h), Ok(None));
}

/// A closed handle's connection can be followed until it is released
/// (for a lingering close above the engine).
#[test]
fn orphan_state_follows_a_closed_connection() {
    let mut e = established();
    assert_eq!(e.b.ep.orphan_state(e.h), None, "held by the application");
    e.b.ep.send(e.b.now, e.h, b"bye").unwrap();
    e.b.ep.close(e.b.now, e.h).unwrap();
    e.b.drain();
    assert_eq!(e.b.ep.orphan_state(e.h), Some(State::FinWait1));
    // Data and FIN acknowledged.
    e.b.send(TcpRepr {
        ack: e.our_nxt + 4,
        ..e.seg()
    });
    assert_eq!(e.b.ep.orphan_state(e.h), Some(State::FinWait2));
    e.b.send(TcpRepr {
        ack: e.our_nxt + 4,
        flags: FIN,
        ..e.seg()
    });
    assert_eq!(e.b.ep.orphan_state(e.h), Some(State::TimeWait));
    e.b.advance(Duration::from_secs(61));
    assert_eq!(e.b.ep.orphan_state(e.h), None, "released");
}

/// MUST-30, MUST-62: urgent data sent: URG set and the pointer at the octet
/// after the last urgent byte, on every segment until it is acknowledged.
#[test]
fn send_urgent_sets_urg_and_pointer_must_30_62() {
    let mut cfg = plain_config();
    cfg.nodelay = true;
    let mut e = established_with(cfg);
    e.b.ep.send(e.b.now, e.h, b"ab").unwrap();
    e.b.ep.send_urgent(e.b.now, e.h, b"!").unwrap();
    let out = e.b.drain();
    let segs = data_segments(&out);
    assert_eq!(segs.len(), 1);
    assert!(segs[0].flags.contains(TcpFlags::URG), "{:?}", segs[0]);
    assert_eq!(segs[0].payload, b"ab!");
    // SEG.SEQ + SEG.UP = the octet after the urgent byte.
    assert_eq!(segs[0].urgent, 3);
    // The retransmission carries it too.
    let out = e.b.advance(Duration::from_millis(1100));
    let re = data_segments(&out);
    assert!(re[0].flags.contains(TcpFlags::URG));
    // Acknowledged: urgent mode ends, later data has no URG.
    e.b.send(TcpRepr {
        ack: e.our_nxt + 3,
        ..e.seg()
    });
    e.b.ep.send(e.b.now, e.h, b"x").unwrap();
    let out = e.b.drain();
    let segs = data_segments(&out);
    assert!(!segs[0].flags.contains(TcpFlags::URG));
}

/// SHLD-14 (RFC 9293 section 3.8.6.2.2): the right edge we advertise
/// (SEG.ACK + SEG.WND) never moves back while the application reads
/// nothing and the buffer fills.
#[test]
fn advertised_right_edge_never_moves_back_shld_14() {
    let mut cfg = plain_config();
    cfg.recv_buf = 8 * 1024;
    cfg.delayed_ack = Duration::ZERO;
    let mut e = established_with(cfg);
    let mut edge = 0usize;
    let data = pattern(1000);
    for _ in 0..10 {
        let out = e.b.send(TcpRepr {
            payload: &data,
            ..e.seg()
        });
        let ack = out.last().expect("an ACK");
        let right = (ack.ack - PEER_ISS) + usize::from(ack.window);
        assert!(right >= edge, "edge moved back: {right} < {edge}");
        edge = right;
        e.peer_nxt = ack.ack;
    }
    // The buffer is full: the window is closed but the edge stayed.
    assert_eq!(e.b.ep.readable(e.h), Ok(8 * 1024));
}

/// SHLD-15, MUST-34: the peer shrinks its window below data already in
/// flight; we send no new data beyond SND.UNA + SND.WND, keep the
/// connection, and go on when the window opens again.
#[test]
fn peer_shrinking_its_window_is_survived_shld_15_must_34() {
    let mut cfg = plain_config();
    cfg.nodelay = true;
    let mut e = established_with(cfg);
    e.b.ep.send(e.b.now, e.h, &pattern(20 * 1460)).unwrap();
    let out = e.b.drain();
    let sent = data_segments(&out).len();
    assert_eq!(sent, 10, "initial window");
    // ACK one segment with a window that ends inside what is in flight.
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + 1460,
        window: 2000,
        ..e.seg()
    });
    assert!(
        data_segments(&out).is_empty(),
        "nothing beyond the edge: {out:?}"
    );
    assert_eq!(e.b.state(e.h), State::Established);
    // The window opens: everything outstanding is ACKed, the rest flows.
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + 10 * 1460,
        window: 65535,
        ..e.seg()
    });
    let segs = data_segments(&out);
    assert!(!segs.is_empty());
    assert_eq!(segs[0].seq, e.our_nxt + 10 * 1460);
}
