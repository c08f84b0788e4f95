//! Retransmission timer (RFC 6298), Karn's rule, R1/R2 and SYN retries,
//! zero-window probing, keep-alive, user timeout.

use super::*;
use crate::{ConnError, KeepAlive};

#[test]
fn rto_retransmits_with_exponential_backoff_rfc6298() {
    let mut e = established();
    e.b.ep.send(e.b.now, e.h, b"data").unwrap();
    let first = e.b.drain();
    assert_eq!(data_segments(&first).len(), 1);
    let t0 = e.b.now;
    let mut times = Vec::new();
    for _ in 0..4 {
        // Find the next retransmission.
        let mut out = Vec::new();
        while out.is_empty() {
            out = e.b.advance(Duration::from_millis(100));
        }
        assert_eq!(out[0].payload, b"data");
        assert_eq!(out[0].seq, e.our_nxt);
        times.push((e.b.now - t0).as_millis());
    }
    // 1 s initial RTO (RFC 6298 2.1), doubled each time (5.5): 1, 3, 7, 15 s.
    let expect = [1000u128, 3000, 7000, 15000];
    for (t, x) in times.iter().zip(expect) {
        assert!(t.abs_diff(x) <= 100, "{times:?}");
    }
    assert_eq!(e.b.ep.info(e.h).unwrap().retransmits, 4);
    // The endpoint-wide counter sums the connections' retransmissions.
    assert_eq!(e.b.ep.info(e.h).unwrap().total_retransmits, 4);
    assert_eq!(e.b.ep.stats().retransmits, 4);
}

#[test]
fn rtt_sample_sets_rto_and_karn_ignores_retransmitted_must_18() {
    let mut e = established();
    e.b.ep.send(e.b.now, e.h, b"a").unwrap();
    e.b.drain();
    e.b.advance(Duration::from_millis(100));
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        ..e.seg()
    });
    e.our_nxt += 1;
    let info = e.b.ep.info(e.h).unwrap();
    // The handshake measured 0 ms; SRTT = 7/8 * 0 + 1/8 * 100 ms (RFC 6298 2.3).
    let srtt = info.srtt.expect("sampled");
    assert_eq!(srtt, Duration::from_micros(12_500));
    // A retransmitted segment gives no sample (Karn).
    e.b.ep.send(e.b.now, e.h, b"b").unwrap();
    e.b.drain();
    e.b.advance(Duration::from_millis(1500));
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        ..e.seg()
    });
    let after = e.b.ep.info(e.h).unwrap();
    assert_eq!(after.srtt, info.srtt, "no sample from a retransmission");
    assert_eq!(after.retransmits, 0, "new data acked resets the count");
}

#[test]
fn r2_exhausted_times_out_with_rst_must_20() {
    let mut cfg = plain_config();
    cfg.r2 = 3;
    let mut e = established_with(cfg);
    e.b.ep.send(e.b.now, e.h, b"data").unwrap();
    e.b.drain();
    let out = e.b.advance(Duration::from_secs(60));
    let rexmits = data_segments(&out).len();
    assert_eq!(rexmits, 3);
    assert!(out.last().unwrap().flags.rst());
    assert_eq!(e.b.state(e.h), State::Closed);
    assert!(e
        .b
        .events_for(e.h)
        .contains(&EventKind::Error(ConnError::TimedOut)));
    assert_eq!(e.b.ep.take_error(e.h), Ok(Some(ConnError::TimedOut)));
}

#[test]
fn syn_retries_then_timed_out_must_22() {
    let mut cfg = plain_config();
    cfg.syn_retries = 2;
    let (mut b, h, iss) = syn_sent(cfg);
    let out = b.advance(Duration::from_secs(30));
    assert_eq!(out.len(), 2, "two SYN retransmissions: {out:?}");
    assert!(out.iter().all(|o| o.flags == SYN && o.seq == iss));
    assert_eq!(b.state(h), State::Closed);
    assert_eq!(b.ep.take_error(h), Ok(Some(ConnError::TimedOut)));
}

#[test]
fn syn_ack_is_retransmitted_and_half_open_connection_expires() {
    let mut cfg = plain_config();
    cfg.syn_retries = 1;
    let (mut b, _l, iss) = syn_received(cfg);
    let out = b.advance(Duration::from_millis(1001));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].flags, SYN_ACK);
    assert_eq!(out[0].seq, iss);
    b.advance(Duration::from_secs(10));
    assert_eq!(b.ep.connection_count(), 0, "SYN queue entry freed");
}

#[test]
fn fin_is_retransmitted() {
    let mut e = established();
    e.b.ep.shutdown(e.b.now, e.h).unwrap();
    e.b.drain();
    let out = e.b.advance(Duration::from_millis(1001));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].base_flags(), FIN);
    assert_eq!(out[0].seq, e.our_nxt);
}

#[test]
fn zero_window_probes_back_off_and_never_time_out_must_35_36_37() {
    let mut cfg = plain_config();
    cfg.r2 = 3;
    let mut e = established_with(cfg);
    e.b.send(TcpRepr {
        window: 0,
        ..e.seg()
    });
    e.b.ep.send(e.b.now, e.h, b"hello").unwrap();
    assert!(data_segments(&e.b.drain()).is_empty());
    let t0 = e.b.now;
    let mut probe_times = Vec::new();
    // Far more probes than R2: the peer answers each, so no timeout.
    for _ in 0..8 {
        let mut out = Vec::new();
        while data_segments(&out).is_empty() {
            out = e.b.advance(Duration::from_millis(100));
        }
        let probe = data_segments(&out)[0].clone();
        assert_eq!(probe.payload.len(), 1, "one-byte probe");
        assert_eq!(probe.seq, e.our_nxt);
        probe_times.push((e.b.now - t0).as_secs_f64());
        // The peer's window is still zero: it ACKs without accepting.
        e.b.send(TcpRepr {
            window: 0,
            ..e.seg()
        });
    }
    // SHLD-29: first probe after one RTO; SHLD-30: exponential backoff
    // (capped at rto_max = 60 s).
    assert!((probe_times[0] - 1.0).abs() < 0.15, "{probe_times:?}");
    assert!((probe_times[1] - 3.0).abs() < 0.3, "{probe_times:?}");
    assert!((probe_times[2] - 7.0).abs() < 0.5, "{probe_times:?}");
    assert_eq!(e.b.state(e.h), State::Established);
    // The window opens: data flows at once.
    let out = e.b.send(TcpRepr {
        window: 1000,
        ..e.seg()
    });
    let segs = data_segments(&out);
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].payload, b"hello");
}

#[test]
fn zero_window_probes_unanswered_time_out() {
    let mut cfg = plain_config();
    cfg.r2 = 3;
    cfg.rto_max = Duration::from_secs(4);
    let mut e = established_with(cfg);
    e.b.send(TcpRepr {
        window: 0,
        ..e.seg()
    });
    e.b.ep.send(e.b.now, e.h, b"hello").unwrap();
    e.b.drain();
    e.b.advance(Duration::from_secs(60));
    assert_eq!(e.b.state(e.h), State::Closed);
    assert_eq!(e.b.ep.take_error(e.h), Ok(Some(ConnError::TimedOut)));
}

#[test]
fn keepalive_is_off_by_default_must_25() {
    let mut e = established();
    let out = e.b.advance(Duration::from_secs(3 * 3600));
    assert!(out.is_empty());
    assert_eq!(e.b.state(e.h), State::Established);
}

#[test]
fn keepalive_probes_and_drops_dead_peer_must_24_26_27_29() {
    let mut e = established();
    let ka = KeepAlive {
        idle: Duration::from_secs(60),
        interval: Duration::from_secs(10),
        count: 3,
    };
    e.b.ep.set_keepalive(e.h, Some(ka)).unwrap();
    let out = e.b.advance(Duration::from_secs(59));
    assert!(out.is_empty(), "only after idle");
    let out = e.b.advance(Duration::from_secs(2));
    assert_eq!(out.len(), 1);
    // SEQ = SND.NXT - 1, no data (SHLD-12).
    assert_eq!(out[0].seq, e.our_nxt - 1);
    assert!(out[0].payload.is_empty());
    // The peer answers: the connection lives on and idles again.
    e.b.send(e.seg());
    let out = e.b.advance(Duration::from_secs(59));
    assert!(out.is_empty());
    // Now the peer is gone: probes every 10 s, then the drop after 3.
    let out = e.b.advance(Duration::from_secs(60));
    assert_eq!(out.iter().filter(|o| o.flags == ACK).count(), 3, "{out:?}");
    assert_eq!(e.b.state(e.h), State::Closed);
    assert_eq!(e.b.ep.take_error(e.h), Ok(Some(ConnError::TimedOut)));
}

#[test]
fn user_timeout_ends_connection_with_unacked_data() {
    let mut e = established();
    e.b.ep
        .set_user_timeout(e.h, Some(Duration::from_secs(5)))
        .unwrap();
    e.b.ep.send(e.b.now, e.h, b"x").unwrap();
    e.b.drain();
    e.b.advance(Duration::from_millis(4900));
    assert_eq!(e.b.state(e.h), State::Established);
    e.b.advance(Duration::from_millis(200));
    assert_eq!(e.b.state(e.h), State::Closed);
    assert_eq!(e.b.ep.take_error(e.h), Ok(Some(ConnError::TimedOut)));
}

#[test]
fn orphaned_fin_wait_2_is_bounded() {
    let mut e = established();
    e.b.ep.close(e.b.now, e.h).unwrap();
    e.b.drain();
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        ..e.seg()
    });
    assert_eq!(e.b.ep.connection_count(), 1);
    e.b.advance(Duration::from_secs(61));
    assert_eq!(e.b.ep.connection_count(), 0);
}

#[test]
fn poll_timeout_reports_the_earliest_deadline() {
    let mut e = established();
    assert_eq!(e.b.ep.poll_timeout(), None);
    e.b.send(TcpRepr {
        payload: b"a",
        ..e.seg()
    });
    let t = e.b.ep.poll_timeout().expect("delayed ACK armed");
    let d = t.saturating_duration_since(e.b.now);
    assert!(d <= Duration::from_millis(41), "{d:?}");
}

#[test]
fn keepalive_enabled_late_probes_once_not_all_at_once() {
    let mut e = established();
    e.b.advance(Duration::from_secs(1000));
    e.b.ep
        .set_keepalive(
            e.h,
            Some(KeepAlive {
                idle: Duration::from_secs(60),
                interval: Duration::from_secs(10),
                count: 3,
            }),
        )
        .unwrap();
    let out = e.b.advance(Duration::from_millis(10));
    assert_eq!(out.len(), 1, "one probe");
    assert_eq!(e.b.state(e.h), State::Established);
    e.b.send(e.seg());
    let out = e.b.advance(Duration::from_secs(59));
    assert!(out.is_empty());
}

#[test]
fn default_syn_retries_last_at_least_three_minutes_must_23() {
    let (mut b, h, _iss) = syn_sent(Config::default());
    b.advance(Duration::from_secs(179));
    assert_eq!(b.state(h), State::SynSent);
    b.advance(Duration::from_secs(10));
    assert_eq!(b.state(h), State::Closed);
}

#[test]
fn rto_restarted_later_does_not_fire_at_the_old_deadline_rfc6298() {
    // A timer restarted for a later deadline must not fire at the old one.
    let mut e = established();
    e.b.ep.set_nodelay(e.h, true).unwrap();
    e.b.ep.send(e.b.now, e.h, b"a").unwrap();
    assert_eq!(data_segments(&e.b.drain()).len(), 1);
    let t0 = e.b.now;
    e.b.advance(Duration::from_millis(500));
    e.b.ep.send(e.b.now, e.h, b"b").unwrap();
    assert_eq!(data_segments(&e.b.drain()).len(), 1);
    e.b.advance(Duration::from_millis(100));
    // "a" acknowledged: the timer restarts for "b" (RFC 6298 section 5.3).
    e.b.send(TcpRepr {
        ack: e.our_nxt + 1,
        ..e.seg()
    });
    let acked_at = e.b.now;
    // The old deadline (1 s after "a") passes without a retransmission.
    let out = e.b.advance(Duration::from_millis(600));
    assert!(data_segments(&out).is_empty(), "{out:?}");
    assert!((e.b.now - t0).as_millis() >= 1200);
    let next = e.b.ep.poll_timeout().expect("retransmission timer armed");
    assert!(next > e.b.now);
    let mut out = Vec::new();
    while out.is_empty() {
        out = e.b.advance(Duration::from_millis(10));
    }
    assert_eq!(out[0].payload, b"b");
    // One RTO after the ACK: the 1 s minimum (RFC 6298 section 2.4).
    let waited = (e.b.now - acked_at).as_millis();
    assert!((1000..=1020).contains(&waited), "{waited} ms");
}
