//! Micro-benchmark of the hot wire paths: checksum, TCP parse and emit, and a
//! whole-frame parse. Run with `cargo run -p wire --release --example wire_bench`.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Instant;

use wire::ethernet::{EtherType, EthernetAddress};
use wire::ipv4::IpProtocol;
use wire::{
    checksum, EthernetFrame, EthernetRepr, Ipv4Packet, Ipv4Repr, SeqNumber, TcpFlags, TcpOptions,
    TcpRepr,
};

/// Run `f` `iters` times and return nanoseconds per call.
fn time(iters: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn main() {
    let src = Ipv4Addr::new(10, 0, 0, 1);
    let dst = Ipv4Addr::new(10, 0, 0, 2);
    let payload: Vec<u8> = (0..1448u32).map(|i| (i * 7) as u8).collect();
    let data = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq: SeqNumber(1),
        ack: SeqNumber(2),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 512,
        urgent: 0,
        options: TcpOptions {
            timestamps: Some((1, 2)),
            ..TcpOptions::default()
        },
        payload: &payload,
    };
    let syn = TcpRepr {
        flags: TcpFlags::SYN,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            ..TcpOptions::default()
        },
        payload: &[],
        ..data
    };

    for len in [64usize, 1500, 9000] {
        let buf = vec![0xa5u8; len];
        let ns = time(200_000, || {
            black_box(checksum::sum(black_box(&buf)));
        });
        println!(
            "checksum::sum {len:>5} B: {ns:8.1} ns  {:6.2} GB/s",
            len as f64 / ns
        );
    }

    let mut seg = vec![0u8; 1600];
    for (name, repr) in [("SYN (40 B)", syn), ("data (1480 B)", data)] {
        let n = repr.emit(&mut seg, src, dst).unwrap();
        let ns_emit = time(200_000, || {
            black_box(black_box(&repr).emit(&mut seg, src, dst).unwrap());
        });
        let ns_parse = time(200_000, || {
            black_box(TcpRepr::parse_bytes(black_box(&seg[..n]), src, dst, true).unwrap());
        });
        let ns_parse_nock = time(200_000, || {
            black_box(TcpRepr::parse_bytes(black_box(&seg[..n]), src, dst, false).unwrap());
        });
        println!(
            "TCP {name:<14} emit {ns_emit:7.1} ns  parse+verify {ns_parse:7.1} ns  parse (offloaded checksum) {ns_parse_nock:6.1} ns"
        );
    }

    // Whole frame: Ethernet -> IPv4 (header checksum) -> TCP (checksum).
    let ip = Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::Tcp,
        payload_len: data.buffer_len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 0,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    };
    let eth = EthernetRepr {
        src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
        dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
        ethertype: EtherType::Ipv4,
    };
    let mut frame = vec![0u8; 14 + ip.buffer_len()];
    let mut n = eth.emit(&mut frame).unwrap();
    n += ip.emit(&mut frame[n..]).unwrap();
    data.emit(&mut frame[n..], src, dst).unwrap();
    let ns = time(200_000, || {
        let f = EthernetFrame::new_checked(black_box(&frame[..])).unwrap();
        let _ = EthernetRepr::parse(&f).unwrap();
        let p = Ipv4Packet::new_checked(f.payload()).unwrap();
        let ir = Ipv4Repr::parse(&p, true).unwrap();
        black_box(TcpRepr::parse_bytes(p.payload(), ir.src_addr, ir.dst_addr, true).unwrap());
    });
    println!(
        "frame {} B eth+ipv4+tcp parse with checksums: {ns:7.1} ns",
        frame.len()
    );
}
