//! The network layer inside a running stack, seen from a raw peer on the
//! other end of a memory link: ARP both ways (requests, replies, the queue of
//! packets waiting for a resolution), the default gateway, ICMP echo, ICMP
//! errors reaching TCP, and garbage input that never hurts the stack.

use packet_io::{mem_pair, FrameBatch, MemConfig, MemQueue, PacketQueue};
use runtime::{Errno, Event, Events, Runtime, RuntimeConfig, SockOpt, SockOptName, ThreadMode};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};
use wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    IcmpPacket, IcmpQuote, IcmpRepr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpRepr,
};

const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 1);
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 7, 1];
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 2);
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 7, 2];
const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 7, 0, 254);

fn start() -> (Runtime, runtime::Context, MemQueue) {
    start_with(|_| {})
}

fn start_with(tweak: impl FnOnce(&mut RuntimeConfig)) -> (Runtime, runtime::Context, MemQueue) {
    let mut cfg = RuntimeConfig::memory(OUR_IP, 1);
    cfg.net.mac = Some("02:00:00:00:07:01".into());
    cfg.net.gateway = Some(GATEWAY);
    cfg.stack.mode = ThreadMode::Threaded;
    cfg.stack.rto_min_ms = 100;
    cfg.stack.rto_initial_ms = 200;
    tweak(&mut cfg);
    let (ours, peer) = mem_pair(&MemConfig::default()).unwrap();
    let (rt, mut ctxs) = Runtime::start_memory(cfg, vec![ours]).unwrap();
    (rt, ctxs.remove(0), peer)
}

/// Sends one frame, waiting (and discarding what the stack sends) while the
/// link is full.
fn send(q: &mut MemQueue, bytes: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut b = FrameBatch::with_capacity(1);
        if q.alloc(&mut b, 1) == 1 {
            let mut f = b.pop().unwrap();
            q.set_len(&mut f, bytes.len()).unwrap();
            q.frame_mut(&mut f).unwrap().copy_from_slice(bytes);
            b.push(f);
            if q.send(&mut b).unwrap() == 1 {
                return;
            }
            q.release(&mut b).unwrap();
        }
        assert!(Instant::now() < deadline, "the link stayed full");
        let mut rx = FrameBatch::with_capacity(256);
        q.recv(&mut rx);
        q.release(&mut rx).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The next frame the stack sends for which `want` returns true, within 3 s.
fn expect<T>(q: &mut MemQueue, mut want: impl FnMut(&[u8]) -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut b = FrameBatch::with_capacity(64);
    loop {
        q.recv(&mut b);
        let mut found = None;
        for f in b.iter() {
            if found.is_none() {
                found = want(q.frame(f).unwrap());
            }
        }
        q.release(&mut b).unwrap();
        if let Some(t) = found {
            return t;
        }
        assert!(Instant::now() < deadline, "expected frame not seen");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn eth(frame: &[u8]) -> Option<(EthernetRepr, &[u8])> {
    let f = EthernetFrame::new_checked(frame).ok()?;
    Some((EthernetRepr::parse(&f).ok()?, &frame[14..]))
}

fn arp_frame(op: ArpOperation, target_mac: [u8; 6], target_ip: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    EthernetRepr {
        src_addr: EthernetAddress(PEER_MAC),
        dst_addr: if op == ArpOperation::Request {
            EthernetAddress::BROADCAST
        } else {
            EthernetAddress(target_mac)
        },
        ethertype: EtherType::Arp,
    }
    .emit(&mut f)
    .unwrap();
    ArpRepr {
        operation: op,
        source_hardware_addr: EthernetAddress(PEER_MAC),
        source_protocol_addr: PEER_IP,
        target_hardware_addr: EthernetAddress(target_mac),
        target_protocol_addr: target_ip,
    }
    .emit(&mut f[14..])
    .unwrap();
    f
}

fn ipv4_frame(proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 34 + payload.len()];
    EthernetRepr {
        src_addr: EthernetAddress(PEER_MAC),
        dst_addr: EthernetAddress(OUR_MAC),
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut f)
    .unwrap();
    Ipv4Repr {
        src_addr: PEER_IP,
        dst_addr: OUR_IP,
        protocol: proto,
        payload_len: payload.len(),
        ttl: 64,
        dscp_ecn: 0,
        ident: 9,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut f[14..])
    .unwrap();
    f[34..].copy_from_slice(payload);
    f
}

fn arp_request_for(frame: &[u8]) -> Option<Ipv4Addr> {
    let (e, p) = eth(frame)?;
    if e.ethertype != EtherType::Arp {
        return None;
    }
    let a = ArpRepr::parse(&ArpPacket::new_checked(p).ok()?).ok()?;
    (a.operation == ArpOperation::Request && a.source_hardware_addr.0 == OUR_MAC)
        .then_some(a.target_protocol_addr)
}

#[test]
fn arp_replies_to_unpadded_requests_are_padded_with_zeros() {
    // A request may arrive as 42 bytes (no Ethernet padding). The reply is
    // 60 bytes: its padding must be zeros, never bytes an earlier frame left
    // in the buffer. Garbage frames of 0xee first dirty the stack's buffers.
    let (_rt, _ctx, mut peer) = start();
    let request = arp_frame(ArpOperation::Request, [0; 6], OUR_IP);
    for _ in 0..5 {
        let mut garbage = vec![0xee; 60];
        garbage[..6].copy_from_slice(&OUR_MAC);
        garbage[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
        send(&mut peer, &garbage);
        send(&mut peer, &request[..42]);
        let padding = expect(&mut peer, |f| {
            let (e, _) = eth(f)?;
            (e.ethertype == EtherType::Arp && f.len() >= 42).then(|| f[42..].to_vec())
        });
        assert_eq!(padding.len(), 18, "reply padded to the Ethernet minimum");
        assert!(
            padding.iter().all(|&b| b == 0),
            "padding leaked {padding:02x?}"
        );
    }
}

#[test]
fn answers_arp_and_echo_requests() {
    let (_rt, _ctx, mut peer) = start();
    send(&mut peer, &arp_frame(ArpOperation::Request, [0; 6], OUR_IP));
    let reply = expect(&mut peer, |f| {
        let (e, p) = eth(f)?;
        let a = ArpRepr::parse(&ArpPacket::new_checked(p).ok()?).ok()?;
        (e.ethertype == EtherType::Arp && a.operation == ArpOperation::Reply).then_some((e, a))
    });
    assert_eq!(reply.0.dst_addr.0, PEER_MAC);
    assert_eq!(reply.1.source_hardware_addr.0, OUR_MAC);
    assert_eq!(reply.1.source_protocol_addr, OUR_IP);
    assert_eq!(reply.1.target_protocol_addr, PEER_IP);
    // A request for another address is not ours to answer.
    send(
        &mut peer,
        &arp_frame(ArpOperation::Request, [0; 6], Ipv4Addr::new(10, 7, 0, 9)),
    );
    // Echo.
    let mut icmp = vec![0u8; 8 + 32];
    let n = IcmpRepr::EchoRequest {
        ident: 77,
        seq_no: 3,
        data: &[0xab; 32],
    }
    .emit(&mut icmp)
    .unwrap();
    send(&mut peer, &ipv4_frame(IpProtocol::Icmp, &icmp[..n]));
    let (ident, seq_no, data) = expect(&mut peer, |f| {
        let (e, p) = eth(f)?;
        if e.ethertype != EtherType::Ipv4 {
            return None;
        }
        let ip = Ipv4Repr::parse(&Ipv4Packet::new_checked(p).ok()?, true).ok()?;
        if ip.protocol != IpProtocol::Icmp || ip.dst_addr != PEER_IP {
            return None;
        }
        match IcmpRepr::parse(
            &IcmpPacket::new_checked(&p[20..20 + ip.payload_len]).ok()?,
            true,
        )
        .ok()?
        {
            IcmpRepr::EchoReply {
                ident,
                seq_no,
                data,
            } => Some((ident, seq_no, data.to_vec())),
            _ => None,
        }
    });
    assert_eq!((ident, seq_no), (77, 3));
    assert_eq!(data, vec![0xab; 32]);
}

#[test]
fn connect_resolves_the_next_hop_and_icmp_unreachable_refuses_it() {
    let (_rt, ctx, mut peer) = start();
    let fd = ctx.socket_nonblocking().unwrap();
    let remote = SocketAddrV4::new(PEER_IP, 80);
    assert_eq!(
        ctx.connect(fd, remote).unwrap_err().socket_errno(),
        Some(Errno::EINPROGRESS)
    );
    // The SYN waits while we ask who PEER_IP is.
    let asked = expect(&mut peer, arp_request_for);
    assert_eq!(asked, PEER_IP);
    send(&mut peer, &arp_frame(ArpOperation::Reply, OUR_MAC, OUR_IP));
    // Then the held SYN goes out, to the MAC we learnt.
    let (ip_header, syn) = expect(&mut peer, |f| {
        let (e, p) = eth(f)?;
        if e.ethertype != EtherType::Ipv4 || e.dst_addr.0 != PEER_MAC {
            return None;
        }
        let ip = Ipv4Repr::parse(&Ipv4Packet::new_checked(p).ok()?, true).ok()?;
        let seg = TcpRepr::parse_bytes(&p[20..20 + ip.payload_len], ip.src_addr, ip.dst_addr, true)
            .ok()?;
        seg.flags
            .syn()
            .then(|| (p[..28].to_vec(), (seg.src_port, seg.seq)))
    });
    // The peer's host says the port is unreachable, quoting the SYN.
    let quoted_ip = Ipv4Repr::parse_quoted(&ip_header).unwrap().0;
    let mut icmp = vec![0u8; 8 + 28];
    let n = IcmpRepr::DstUnreachable {
        reason: wire::icmp::DstUnreachable::PortUnreachable,
        next_hop_mtu: 0,
        quote: IcmpQuote {
            header: quoted_ip,
            data: &ip_header[20..28],
        },
    }
    .emit(&mut icmp)
    .unwrap();
    assert_eq!(u16::from_be_bytes([ip_header[20], ip_header[21]]), syn.0);
    send(&mut peer, &ipv4_frame(IpProtocol::Icmp, &icmp[..n]));
    let ep = ctx.epoll_create().unwrap();
    ctx.epoll_add(ep, fd, Events::OUT).unwrap();
    let mut evs = [Event::default(); 1];
    assert_eq!(
        ctx.epoll_wait(ep, &mut evs, Some(Duration::from_secs(3)))
            .unwrap(),
        1
    );
    assert!(evs[0].events.contains(Events::ERR), "{:?}", evs[0].events);
    assert_eq!(
        ctx.getsockopt(fd, SockOptName::Error).unwrap(),
        SockOpt::Error(Some(Errno::ECONNREFUSED))
    );
}

#[test]
fn off_link_destinations_go_through_the_gateway() {
    let (_rt, ctx, mut peer) = start();
    let fd = ctx.socket_nonblocking().unwrap();
    let _ = ctx.connect(fd, SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 10), 443));
    assert_eq!(expect(&mut peer, arp_request_for), GATEWAY);
}

#[test]
fn garbage_frames_never_hurt_the_stack() {
    let (_rt, ctx, mut peer) = start();
    // A valid SYN to a closed port, to mutate.
    let syn = TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq: wire::SeqNumber(1),
        ack: wire::SeqNumber(0),
        flags: wire::TcpFlags::SYN,
        window: 1000,
        urgent: 0,
        options: Default::default(),
        payload: &[],
    };
    let mut seg = vec![0u8; 20];
    syn.emit(&mut seg, PEER_IP, OUR_IP).unwrap();
    let valid = ipv4_frame(IpProtocol::Tcp, &seg);
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..5000 {
        let frame: Vec<u8> = if i % 2 == 0 {
            let len = (next() % 200) as usize;
            (0..len).map(|_| next() as u8).collect()
        } else {
            let mut f = valid.clone();
            for _ in 0..(1 + next() % 4) {
                let at = (next() as usize) % f.len();
                f[at] ^= (next() as u8) | 1;
            }
            let cut = (next() as usize) % (f.len() + 1);
            f.truncate(cut.max(1));
            f
        };
        send(&mut peer, &frame);
        if i % 500 == 0 {
            // Drain what the stack sends (RSTs, ARP) so the link never fills.
            let mut b = FrameBatch::with_capacity(256);
            peer.recv(&mut b);
            peer.release(&mut b).unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let mut b = FrameBatch::with_capacity(1024);
    peer.recv(&mut b);
    peer.release(&mut b).unwrap();
    // Still alive and answering.
    send(&mut peer, &arp_frame(ArpOperation::Request, [0; 6], OUR_IP));
    expect(&mut peer, |f| {
        let (e, _) = eth(f)?;
        (e.ethertype == EtherType::Arp).then_some(())
    });
    let stats = ctx.stats();
    assert!(stats.drops > 1000, "{stats:?}");
    assert!(stats.rx_packets >= 5000, "{stats:?}");
}

#[test]
fn an_entry_in_use_is_refreshed_before_it_expires() {
    let (_rt, ctx, mut peer) = start_with(|c| c.stack.arp_timeout_ms = 5_500);
    let fd = ctx.socket_nonblocking().unwrap();
    let _ = ctx.connect(fd, SocketAddrV4::new(PEER_IP, 80));
    assert_eq!(expect(&mut peer, arp_request_for), PEER_IP);
    send(&mut peer, &arp_frame(ArpOperation::Reply, OUR_MAC, OUR_IP));
    // The unanswered SYN is retransmitted through the fresh entry; once the
    // entry has less than 5 s left, the stack asks again while it still
    // sends (the entry would only expire after 5.5 s).
    let t0 = Instant::now();
    assert_eq!(expect(&mut peer, arp_request_for), PEER_IP);
    assert!(t0.elapsed() < Duration::from_secs(3));
}
