//! Congestion control through the engine: slow start, fast retransmit, NewReno
//! fast recovery with partial ACKs (RFC 5681, RFC 6582), RTO loss window, and
//! SACK-guided retransmission (RFC 2018).

use super::*;

const MSS: usize = 1460;

/// Established connection with `n` full segments sent and unacknowledged.
fn in_flight(cfg: Config, n: usize) -> (Established, Vec<Out>) {
    let mut e = established_with(cfg);
    e.b.ep.send(e.b.now, e.h, &pattern(n * MSS)).unwrap();
    let out = e.b.drain();
    (e, out)
}

fn dup_ack(e: &Established) -> TcpRepr<'static> {
    TcpRepr {
        ack: e.our_nxt,
        ..e.seg()
    }
}

#[test]
fn initial_window_is_ten_segments_rfc6928() {
    let (_e, out) = in_flight(plain_config(), 20);
    assert_eq!(data_segments(&out).len(), 10);
}

#[test]
fn slow_start_grows_cwnd_per_ack_must_19() {
    let (mut e, _) = in_flight(plain_config(), 30);
    let cwnd0 = e.b.ep.info(e.h).unwrap().cwnd;
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + 2 * MSS,
        ..e.seg()
    });
    let cwnd1 = e.b.ep.info(e.h).unwrap().cwnd;
    assert_eq!(cwnd1, cwnd0 + 2 * MSS, "RFC 3465 L=2*SMSS");
    // Two segments acked, cwnd grew by two: four new segments go out.
    assert_eq!(data_segments(&out).len(), 4);
}

#[test]
fn three_dup_acks_fast_retransmit_and_newreno_rfc6582() {
    let (mut e, _) = in_flight(plain_config(), 10);
    // Segment 1 lost: the peer ACKs segment 0 and then sends duplicates.
    e.b.send(TcpRepr {
        ack: e.our_nxt + MSS,
        ..e.seg()
    });
    e.our_nxt += MSS;
    let cwnd_before = e.b.ep.info(e.h).unwrap().cwnd;
    let flight = e.b.ep.info(e.h).unwrap().bytes_in_flight;
    assert!(e.b.send(dup_ack(&e)).is_empty());
    assert!(e.b.send(dup_ack(&e)).is_empty());
    let out = e.b.send(dup_ack(&e));
    let segs = data_segments(&out);
    assert_eq!(segs.len(), 1, "fast retransmit on the third duplicate");
    assert_eq!(segs[0].seq, e.our_nxt);
    let info = e.b.ep.info(e.h).unwrap();
    assert!(info.in_recovery);
    // ssthresh = max(FlightSize/2, 2*SMSS); cwnd = ssthresh + 3*SMSS.
    assert_eq!(info.ssthresh, (flight / 2).max(2 * MSS));
    assert_eq!(info.cwnd, info.ssthresh + 3 * MSS);
    assert!(info.cwnd < cwnd_before + 3 * MSS);
    // Partial ACK (segment 1 done, segment 3 also lost): retransmit at once.
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + 2 * MSS,
        ..e.seg()
    });
    e.our_nxt += 2 * MSS;
    let segs = data_segments(&out);
    assert!(!segs.is_empty());
    assert_eq!(segs[0].seq, e.our_nxt, "partial ACK retransmits next hole");
    assert!(e.b.ep.info(e.h).unwrap().in_recovery);
    // Full ACK: recovery ends.
    let all = e.iss + 1 + 10 * MSS;
    e.b.send(TcpRepr {
        ack: all,
        ..e.seg()
    });
    let info = e.b.ep.info(e.h).unwrap();
    assert!(!info.in_recovery);
    assert!(info.cwnd <= info.ssthresh + MSS);
}

#[test]
fn rto_collapses_cwnd_to_loss_window() {
    let (mut e, _) = in_flight(plain_config(), 10);
    let out = e.b.advance(Duration::from_millis(1001));
    assert_eq!(data_segments(&out).len(), 1, "one segment after RTO");
    let info = e.b.ep.info(e.h).unwrap();
    assert_eq!(info.cwnd, MSS);
    assert_eq!(info.ssthresh, 5 * MSS);
    // Go-back-N: the next ACK releases the following segments.
    let out = e.b.send(TcpRepr {
        ack: e.our_nxt + MSS,
        ..e.seg()
    });
    let segs = data_segments(&out);
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0].seq, e.our_nxt + MSS);
}

#[test]
fn dup_acks_below_recover_after_rto_do_not_start_recovery() {
    let (mut e, _) = in_flight(plain_config(), 10);
    e.b.advance(Duration::from_millis(1001));
    for _ in 0..3 {
        e.b.send(dup_ack(&e));
    }
    assert!(!e.b.ep.info(e.h).unwrap().in_recovery);
}

#[test]
fn sack_recovery_skips_sacked_segments_rfc2018() {
    let mut cfg = Config::default();
    cfg.timestamps = false;
    cfg.window_scaling = false;
    let (mut b, l) = listening(cfg);
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        options: TcpOptions {
            mss: Some(1460),
            sack_permitted: true,
            ..NO_OPTS
        },
        ..SEND
    });
    assert!(out[0].options.sack_permitted);
    let iss = out[0].seq;
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    let h = b.ep.accept(l).unwrap();
    assert!(b.ep.info(h).unwrap().sack);
    b.ep.send(b.now, h, &pattern(10 * MSS)).unwrap();
    b.drain();
    let base = iss + 1;
    // Segments 0 and 2 lost; the peer SACKs 1 and 3..10.
    let seg = |ack: SeqNumber, blocks: &[(usize, usize)]| {
        let mut options = NO_OPTS;
        for (i, &(l, r)) in blocks.iter().enumerate() {
            options.sack_blocks[i] = (base + l * MSS, base + r * MSS);
        }
        options.sack_count = blocks.len() as u8;
        TcpRepr {
            seq: PEER_ISS + 1,
            ack,
            flags: ACK,
            options,
            ..SEND
        }
    };
    b.send(seg(base, &[(1, 2)]));
    b.send(seg(base, &[(3, 4), (1, 2)]));
    let out = b.send(seg(base, &[(3, 5), (1, 2)]));
    let segs = data_segments(&out);
    assert_eq!(segs[0].seq, base, "fast retransmit of segment 0");
    // More duplicates with SACK info: once the pipe (RFC 6675 section 4:
    // segment 0 retransmitted, 6..9 in flight, 2 lost) leaves room under
    // cwnd = ssthresh = 5 segments, the next hole (segment 2) is resent and
    // segment 1 (SACKed) is skipped.
    let mut out = b.send(seg(base, &[(3, 6), (1, 2)]));
    out.extend(b.send(seg(base, &[(3, 7), (1, 2)])));
    let segs = data_segments(&out);
    assert!(!segs.is_empty(), "{out:?}");
    assert_eq!(segs[0].seq, base + 2 * MSS);
    assert!(segs.iter().all(|s| s.seq != base + MSS));
}

/// A congestion controller with a fixed window, to show the trait is used.
#[derive(Debug)]
struct Fixed;
impl crate::cc::CongestionControl for Fixed {
    fn window(&self) -> usize {
        2 * MSS
    }
    fn ssthresh(&self) -> usize {
        2 * MSS
    }
    fn mss(&self) -> usize {
        MSS
    }
    fn on_ack(&mut self, _: Instant, _: usize, _: usize) {}
    fn on_enter_recovery(&mut self, _: usize) {}
    fn on_dup_ack_in_recovery(&mut self) {}
    fn on_partial_ack(&mut self, _: usize) {}
    fn on_exit_recovery(&mut self, _: usize) {}
    fn on_rto(&mut self, _: usize) {}
    fn on_idle(&mut self, _: Instant, _: Duration) {}
    fn set_mss(&mut self, _: usize) {}
}

#[test]
fn congestion_control_is_pluggable_may_18() {
    let mut cfg = plain_config();
    cfg.congestion_control = |_, _| Box::new(Fixed);
    let (_e, out) = in_flight(cfg, 10);
    assert_eq!(data_segments(&out).len(), 2);
}

#[test]
fn endpoint_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Endpoint>();
}

#[test]
fn ssthresh_starts_arbitrarily_high_for_both_opens_rfc5681_3_1() {
    let e = established();
    let passive = e.b.ep.info(e.h).unwrap();
    assert!(passive.ssthresh >= 1 << 30, "{}", passive.ssthresh);
    let (mut b, h, iss) = syn_sent(plain_config());
    b.send(TcpRepr {
        seq: PEER_ISS,
        ack: iss + 1,
        flags: SYN_ACK,
        ..SEND
    });
    let active = b.ep.info(h).unwrap();
    assert!(active.ssthresh >= 1 << 30, "{}", active.ssthresh);
    assert_eq!(active.cwnd, crate::cc::initial_window(active.smss));
}

/// Connection with SACK negotiated and `n` full segments in flight; returns
/// the bench, handle and the sequence number of the first segment.
fn sack_in_flight(n: usize) -> (Bench, SocketHandle, SeqNumber) {
    let mut cfg = Config::default();
    cfg.timestamps = false;
    cfg.window_scaling = false;
    let (mut b, l) = listening(cfg);
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        options: TcpOptions {
            mss: Some(1460),
            sack_permitted: true,
            ..NO_OPTS
        },
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
    b.ep.send(b.now, h, &pattern(n * MSS)).unwrap();
    let out = b.drain();
    assert_eq!(data_segments(&out).len(), n);
    (b, h, iss + 1)
}

fn sack_ack(base: SeqNumber, ack: usize, blocks: &[(usize, usize)]) -> TcpRepr<'static> {
    let mut options = NO_OPTS;
    for (i, &(l, r)) in blocks.iter().enumerate() {
        options.sack_blocks[i] = (base + l * MSS, base + r * MSS);
    }
    options.sack_count = blocks.len() as u8;
    TcpRepr {
        seq: PEER_ISS + 1,
        ack: base + ack * MSS,
        flags: ACK,
        options,
        ..SEND
    }
}

/// sim-findings F2, RFC 6675: a burst loss (segments 0..5 of 10) is
/// repaired while the duplicate ACKs of that same flight arrive (one RTT),
/// each hole once, paced by the pipe estimate under cwnd = ssthresh; not
/// one hole per partial ACK (per RTT) as NewReno does.
#[test]
fn sack_recovery_repairs_a_burst_loss_in_one_rtt_rfc6675() {
    let (mut b, h, base) = sack_in_flight(10);
    let mut out = Vec::new();
    for k in 6..=10 {
        out.extend(b.send(sack_ack(base, 0, &[(5, k)])));
        let info = b.ep.info(h).unwrap();
        if k >= 8 {
            assert!(info.in_recovery);
            // Never more in the pipe than cwnd (= ssthresh, 5 segments).
            assert!(info.ssthresh == 5 * MSS, "{info:?}");
        }
    }
    let mut rexmits: Vec<usize> = data_segments(&out)
        .iter()
        .map(|o| (o.seq - base) / MSS)
        .collect();
    rexmits.sort_unstable();
    assert_eq!(rexmits, vec![0, 1, 2, 3, 4], "every hole resent once");
    // The cumulative ACK for everything ends recovery.
    b.send(sack_ack(base, 10, &[]));
    let info = b.ep.info(h).unwrap();
    assert!(!info.in_recovery);
    assert_eq!(info.bytes_in_flight, 0);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Any sequence of cumulative and selective ACKs (RFC 2018, RFC 6675):
    /// no panic, every segment sent lies in the data in flight and above
    /// the cumulative ACK, and a final full ACK ends recovery.
    #[test]
    fn sack_recovery_is_safe_for_any_ack_sequence(
        steps in proptest::collection::vec(
            (0usize..3, proptest::collection::vec((0usize..10, 1usize..5), 0..4)),
            1..40,
        )
    ) {
        let n = 10;
        let (mut b, h, base) = sack_in_flight(n);
        let mut acked = 0usize;
        for (adv, blocks) in steps {
            acked = (acked + adv).min(n - 1);
            let blocks: Vec<(usize, usize)> = blocks
                .into_iter()
                .map(|(l, len)| {
                    let l = l.max(acked + 1).min(n - 1);
                    (l, (l + len).min(n))
                })
                .filter(|(l, r)| l < r)
                .take(4)
                .collect();
            let out = b.send(sack_ack(base, acked, &blocks));
            for o in data_segments(&out) {
                let start = o.seq - base;
                proptest::prop_assert!(start >= acked * MSS, "{start} below ack {acked}");
                proptest::prop_assert!(start + o.payload.len() <= n * MSS);
            }
            b.advance(Duration::from_millis(5));
        }
        b.send(sack_ack(base, n, &[]));
        let info = b.ep.info(h).unwrap();
        proptest::prop_assert!(!info.in_recovery);
        proptest::prop_assert_eq!(info.bytes_in_flight, 0);
    }
}
