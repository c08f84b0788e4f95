//! Option negotiation and use: MSS, window scaling, timestamps with PAWS and
//! RTT measurement (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).

use super::*;
use crate::ConnOptions;

fn syn_with(options: TcpOptions) -> TcpRepr<'static> {
    TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        options,
        ..SEND
    }
}

const ALL_OPTS: TcpOptions = TcpOptions {
    mss: Some(1460),
    window_scale: Some(7),
    sack_permitted: true,
    timestamps: Some((5000, 0)),
    ..NO_OPTS
};

/// Passive open with every option offered by the peer; returns the
/// established fixture with timestamps tracked by the test.
fn established_all() -> (Established, u32) {
    let (mut b, l) = listening(Config::default());
    let out = b.send(syn_with(ALL_OPTS));
    let synack = &out[0];
    assert_eq!(
        synack.options.window_scale,
        Some(Config::default().recv_wscale())
    );
    assert!(synack.options.sack_permitted);
    let (tsval, tsecr) = synack.options.timestamps.expect("TS echoed");
    assert_eq!(tsecr, 5000);
    let iss = synack.seq;
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        window: 512, // scaled by 2^7 = 65536
        options: TcpOptions {
            timestamps: Some((5001, tsval)),
            ..NO_OPTS
        },
        ..SEND
    });
    let h = b.ep.accept(l).unwrap();
    (
        Established {
            b,
            h,
            iss,
            peer_nxt: PEER_ISS + 1,
            our_nxt: iss + 1,
        },
        5001,
    )
}

#[test]
fn all_options_negotiated_when_both_offer() {
    let (e, _) = established_all();
    let info = e.b.ep.info(e.h).unwrap();
    assert!(info.timestamps);
    assert!(info.sack);
    assert_eq!(info.wscale, Some((Config::default().recv_wscale(), 7)));
    assert_eq!(info.snd_wnd, 512 << 7, "peer window scaled");
    assert_eq!(info.smss, 1460 - 12, "timestamps take 12 option bytes");
}

#[test]
fn options_not_offered_by_peer_are_not_used() {
    let (mut b, l) = listening(Config::default());
    let out = b.send(syn_with(TcpOptions {
        mss: Some(1000),
        ..NO_OPTS
    }));
    let o = &out[0].options;
    assert_eq!(o.window_scale, None);
    assert!(!o.sack_permitted);
    assert_eq!(o.timestamps, None);
    let iss = out[0].seq;
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        window: 512,
        ..SEND
    });
    let h = b.ep.accept(l).unwrap();
    let info = b.ep.info(h).unwrap();
    assert_eq!(info.wscale, None);
    assert_eq!(info.snd_wnd, 512, "no scaling");
    assert_eq!(info.smss, 1000, "peer MSS honoured");
}

#[test]
fn options_not_configured_are_not_offered() {
    let (mut b, _l) = listening(plain_config());
    let out = b.send(syn_with(ALL_OPTS));
    let o = &out[0].options;
    assert_eq!(o.window_scale, None);
    assert!(!o.sack_permitted);
    assert_eq!(o.timestamps, None);
}

#[test]
fn our_window_field_is_scaled() {
    let (mut e, ts) = established_all();
    let out = e.b.send(TcpRepr {
        payload: b"x",
        options: TcpOptions {
            timestamps: Some((ts + 1, 0)),
            ..NO_OPTS
        },
        ..e.seg()
    });
    let _ = out;
    let out = e.b.advance(Duration::from_millis(50));
    let ack = &out[0];
    let shift = Config::default().recv_wscale();
    let advertised = usize::from(ack.window) << shift;
    let buf = Config::default().recv_buf;
    assert!(
        advertised <= buf && advertised + (1 << shift) + 1 >= buf - 1,
        "{advertised}"
    );
}

#[test]
fn timestamps_echo_and_measure_rtt_rfc7323() {
    let (mut e, ts) = established_all();
    e.b.ep.send(e.b.now, e.h, b"abc").unwrap();
    let out = e.b.drain();
    let (tsval, tsecr) = out[0].options.timestamps.unwrap();
    assert_eq!(tsecr, ts, "TS.Recent echoed");
    e.b.advance(Duration::from_millis(30));
    e.b.send(TcpRepr {
        ack: e.our_nxt + 3,
        options: TcpOptions {
            timestamps: Some((ts + 30, tsval)),
            ..NO_OPTS
        },
        ..e.seg()
    });
    let srtt = e.b.ep.info(e.h).unwrap().srtt.unwrap();
    // Handshake sample 0 ms, then 30 ms: 30/8 ms.
    assert_eq!(srtt, Duration::from_micros(3750));
}

#[test]
fn paws_drops_old_timestamps_with_an_ack() {
    let (mut e, ts) = established_all();
    let out = e.b.send(TcpRepr {
        payload: b"old",
        options: TcpOptions {
            timestamps: Some((ts - 100, 0)),
            ..NO_OPTS
        },
        ..e.seg()
    });
    assert_eq!(out.len(), 1, "ACK for the PAWS-rejected segment");
    assert_eq!(out[0].ack, e.peer_nxt);
    assert_eq!(e.b.ep.readable(e.h), Ok(0));
    // A RST is not subject to PAWS.
    e.b.send(TcpRepr {
        flags: RST,
        options: TcpOptions {
            timestamps: Some((ts - 100, 0)),
            ..NO_OPTS
        },
        ..e.seg()
    });
    assert_eq!(e.b.state(e.h), State::Closed);
}

#[test]
fn segments_without_timestamps_are_tolerated() {
    let (mut e, _ts) = established_all();
    e.b.send(TcpRepr {
        payload: b"plain",
        ..e.seg()
    });
    assert_eq!(e.b.ep.readable(e.h), Ok(5));
}

#[test]
fn sack_blocks_report_out_of_order_data_most_recent_first() {
    let (mut e, ts) = established_all();
    let opts = TcpOptions {
        timestamps: Some((ts, 0)),
        ..NO_OPTS
    };
    e.b.send(TcpRepr {
        seq: e.peer_nxt + 100,
        payload: &[1; 100],
        options: opts,
        ..e.seg()
    });
    let out = e.b.send(TcpRepr {
        seq: e.peer_nxt + 300,
        payload: &[1; 100],
        options: opts,
        ..e.seg()
    });
    let sack = out[0].options.sack();
    assert_eq!(
        sack,
        &[
            (e.peer_nxt + 300, e.peer_nxt + 400),
            (e.peer_nxt + 100, e.peer_nxt + 200)
        ]
    );
}

#[test]
fn mss_option_clamped_to_sane_minimum() {
    let (mut b, l) = listening(plain_config());
    let out = b.send(syn_with(TcpOptions {
        mss: Some(1),
        ..NO_OPTS
    }));
    let iss = out[0].seq;
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    let h = b.ep.accept(l).unwrap();
    assert_eq!(
        b.ep.info(h).unwrap().smss,
        usize::from(Config::MIN_PEER_MSS)
    );
}

#[test]
fn isn_differs_per_four_tuple_and_time_rfc6528() {
    let (mut b, _l) = listening(plain_config());
    let a = b.send(syn_with(NO_OPTS))[0].seq;
    let c = b.send(TcpRepr {
        src_port: REMOTE_PORT + 1,
        ..syn_with(NO_OPTS)
    })[0]
        .seq;
    assert_ne!(a, c);
}

/// Per-connection options (SO_RCVBUF, SO_SNDBUF, TCP_MAXSEG): the SYN's
/// window, window scale (RFC 7323 section 2.3) and MSS option (RFC 9293
/// section 3.7.1) follow the connection's own values, clamped by Config.
#[test]
fn connect_with_sets_buffers_mss_and_window_scale() {
    let cfg = Config {
        recv_buf: 1 << 20,
        send_buf: 1 << 20,
        ..Config::default()
    };
    let mut b = Bench::new(cfg.clone());
    // Defaults: the configuration's values.
    b.ep.connect(b.now, LOCAL, REMOTE).unwrap();
    let out = b.drain();
    assert_eq!(out[0].options.mss, Some(1460));
    assert_eq!(out[0].options.window_scale, Some(cfg.recv_wscale()));
    assert_eq!(out[0].window, 65535);
    // Smaller buffers and MSS for this connection.
    let opts = ConnOptions {
        recv_buf: 16 * 1024,
        send_buf: 8 * 1024,
        mss: 1000,
        nodelay: true,
        ..cfg.conn_options()
    };
    let h =
        b.ep.connect_with(b.now, LOCAL, SocketAddrV4::new(REMOTE_IP, 1234), &opts)
            .unwrap();
    let out = b.drain();
    assert_eq!(out[0].options.mss, Some(1000));
    assert_eq!(out[0].options.window_scale, Some(0));
    assert_eq!(out[0].window, 16 * 1024);
    assert_eq!(b.ep.writable(h).unwrap(), 8 * 1024);
    // Values above the configuration are clamped to it.
    let big = ConnOptions {
        recv_buf: 64 << 20,
        send_buf: 64 << 20,
        mss: 9000,
        ..opts
    };
    let h =
        b.ep.connect_with(b.now, LOCAL, SocketAddrV4::new(REMOTE_IP, 1235), &big)
            .unwrap();
    let out = b.drain();
    assert_eq!(out[0].options.mss, Some(1460));
    assert_eq!(out[0].options.window_scale, Some(cfg.recv_wscale()));
    assert_eq!(b.ep.writable(h).unwrap(), 1 << 20);
    assert_eq!(big.clamped(&cfg).recv_buf, 1 << 20);
    assert_eq!(
        ConnOptions {
            recv_buf: 1,
            ..opts
        }
        .clamped(&cfg)
        .recv_buf,
        ConnOptions::MIN_BUF
    );
}

#[test]
fn listen_with_applies_options_to_accepted_connections() {
    let cfg = plain_config();
    let mut b = Bench::new(cfg.clone());
    let opts = ConnOptions {
        recv_buf: 8192,
        send_buf: 4096,
        mss: 1200,
        ..cfg.conn_options()
    };
    let l = b.ep.listen_with(LOCAL, 4, &opts).unwrap();
    let out = b.send(TcpRepr {
        seq: PEER_ISS,
        flags: SYN,
        options: TcpOptions {
            mss: Some(1460),
            ..NO_OPTS
        },
        ..SEND
    });
    assert_eq!(out[0].flags, SYN_ACK);
    assert_eq!(out[0].options.mss, Some(1200));
    assert_eq!(out[0].window, 8192);
    let iss = out[0].seq;
    assert_eq!(b.ep.accept_queue_len(l), Ok(0));
    b.send(TcpRepr {
        seq: PEER_ISS + 1,
        ack: iss + 1,
        flags: ACK,
        ..SEND
    });
    assert_eq!(b.ep.accept_queue_len(l), Ok(1));
    let h = b.ep.accept(l).unwrap();
    assert_eq!(b.ep.accept_queue_len(l), Ok(0));
    assert_eq!(
        b.ep.accept_queue_len(h),
        Err(crate::SocketError::NotSupported)
    );
    assert_eq!(b.ep.writable(h).unwrap(), 4096);
    // Our send MSS is capped by our own MSS (1200), not the peer's 1460.
    assert_eq!(b.ep.info(h).unwrap().smss, 1200);
    b.ep.send(b.now, h, &pattern(3000)).unwrap();
    let out = b.drain();
    assert!(data_segments(&out).iter().all(|o| o.payload.len() <= 1200));
    assert_eq!(b.ep.info(h).unwrap().rcv_wnd, 8192);
}

#[test]
fn listener_backlog_can_be_changed() {
    let (mut b, l) = listening(plain_config());
    b.ep.set_listener_backlog(l, 1).unwrap();
    for (i, port) in [1000u16, 1001].into_iter().enumerate() {
        let out = b.send(TcpRepr {
            src_port: port,
            seq: PEER_ISS,
            flags: SYN,
            ..SEND
        });
        if i == 0 {
            let iss = out[0].seq;
            b.send(TcpRepr {
                src_port: port,
                seq: PEER_ISS + 1,
                ack: iss + 1,
                flags: ACK,
                ..SEND
            });
        } else {
            // The accept queue (backlog 1) is full: the SYN is dropped.
            assert!(out.is_empty(), "{out:?}");
        }
    }
    assert_eq!(b.ep.accept_queue_len(l), Ok(1));
    b.ep.set_listener_backlog(l, 2).unwrap();
    let out = b.send(TcpRepr {
        src_port: 1001,
        seq: PEER_ISS,
        flags: SYN,
        ..SEND
    });
    assert_eq!(out[0].flags, SYN_ACK);
}

/// sim-findings F3: after a retransmission timeout, an ACK echoing the TSval
/// of the original transmission (its ACK was lost) gives no RTT sample, or
/// SRTT would absorb the whole timeout (RFC 6298 section 3, Karn; RFC 7323
/// section 4.1). A later fresh echo is sampled again.
#[test]
fn no_rtt_sample_from_an_echo_older_than_the_rto() {
    let (mut e, ts) = established_all();
    let srtt0 = e.b.ep.info(e.h).unwrap().srtt;
    e.b.ep.send(e.b.now, e.h, b"data").unwrap();
    let first = e.b.drain();
    let (old_tsval, _) = first[0].options.timestamps.unwrap();
    let out = e.b.advance(Duration::from_millis(1500));
    let rexmit = data_segments(&out)[0];
    assert_eq!(rexmit.payload, b"data");
    let ack = |tsecr: u32, tsval: u32, ack: SeqNumber| TcpRepr {
        seq: PEER_ISS + 1,
        ack,
        flags: ACK,
        window: 512,
        options: TcpOptions {
            timestamps: Some((tsval, tsecr)),
            ..NO_OPTS
        },
        ..SEND
    };
    e.b.now += Duration::from_millis(10);
    e.b.send(ack(old_tsval, ts + 1, e.our_nxt + 4));
    let info = e.b.ep.info(e.h).unwrap();
    assert_eq!(info.bytes_in_flight, 0);
    assert_eq!(info.srtt, srtt0, "stale echo must not be sampled");
    // New data, echoed at once: a 20 ms sample is taken.
    e.b.ep.send(e.b.now, e.h, b"more").unwrap();
    let out = e.b.drain();
    let (tsval, _) = out[0].options.timestamps.unwrap();
    e.b.now += Duration::from_millis(20);
    e.b.send(ack(tsval, ts + 2, e.our_nxt + 8));
    assert_ne!(e.b.ep.info(e.h).unwrap().srtt, srtt0);
    assert!(e.b.ep.info(e.h).unwrap().srtt.unwrap() < Duration::from_millis(100));
}

/// BSD TCP_NOOPT ([`ConnOptions::no_options`]): no options in our SYN or
/// SYN-ACK, none used whatever the peer offers, its MSS still honoured.
#[test]
fn no_options_sends_and_uses_none() {
    let cfg = Config::default();
    let opts = ConnOptions {
        no_options: true,
        ..cfg.conn_options()
    };
    // Active open.
    let mut b = Bench::new(cfg.clone());
    let h = b.ep.connect_with(b.now, LOCAL, REMOTE, &opts).unwrap();
    let out = b.drain();
    assert_eq!(out[0].flags, SYN);
    assert_eq!(out[0].options, NO_OPTS, "bare SYN");
    let iss = out[0].seq;
    b.send(TcpRepr {
        seq: PEER_ISS,
        ack: iss + 1,
        flags: SYN_ACK,
        options: ALL_OPTS,
        ..SEND
    });
    let info = b.ep.info(h).unwrap();
    assert_eq!(info.state, State::Established);
    assert!(!info.timestamps && !info.sack && info.wscale.is_none());
    assert_eq!(info.smss, 1460, "peer MSS honoured");
    // Passive open.
    let mut b = Bench::new(cfg.clone());
    b.ep.listen_with(LOCAL, 4, &opts).unwrap();
    let out = b.send(syn_with(ALL_OPTS));
    assert_eq!(out[0].flags, SYN_ACK);
    assert_eq!(out[0].options, NO_OPTS, "bare SYN-ACK");
    // Default: options offered.
    assert!(!cfg.conn_options().no_options);
}

/// SHLD-4 / RFC 6191 section 2: with timestamps on both incarnations, a SYN
/// with a newer timestamp reopens a TIME-WAIT connection even with a lower
/// sequence number; an older timestamp does not (challenge ACK).
#[test]
fn time_wait_reuse_by_timestamp_rfc6191_shld_4() {
    for (ts_delta, reopen) in [(1000u32, true), (0, false)] {
        let (mut e, ts) = established_all();
        e.b.ep.shutdown(e.b.now, e.h).unwrap();
        e.b.drain();
        e.b.send(TcpRepr {
            ack: e.our_nxt + 1,
            flags: FIN,
            window: 512,
            options: TcpOptions {
                timestamps: Some((ts + 1, 0)),
                ..NO_OPTS
            },
            ..e.seg()
        });
        assert_eq!(e.b.state(e.h), State::TimeWait);
        let out = e.b.send(TcpRepr {
            seq: PEER_ISS - 100_000,
            flags: SYN,
            options: TcpOptions {
                timestamps: Some((ts + 1 + ts_delta, 0)),
                ..ALL_OPTS
            },
            ..SEND
        });
        assert_eq!(out.len(), 1, "{out:?}");
        if reopen {
            assert_eq!(out[0].flags, SYN_ACK, "newer timestamp reopens");
            assert_eq!(out[0].ack, PEER_ISS - 100_000 + 1);
        } else {
            assert_eq!(out[0].flags, ACK, "older timestamp: challenge ACK");
            assert_eq!(e.b.state(e.h), State::TimeWait);
        }
    }
}
