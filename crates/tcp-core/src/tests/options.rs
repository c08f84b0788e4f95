//! Option negotiation and use: MSS, window scaling, timestamps with PAWS and
//! RTT measurement (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).

use super::*;

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
