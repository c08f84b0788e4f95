//! Unit tests of [`CoreStack`] driven pass by pass over memory queues, with
//! a raw peer on the other end of each core's queue: what the cores do with
//! ARP between them, and that the counters match the frames on the link.

use super::*;
use packet_io::{mem_pair, MemConfig, MemQueue};
use std::net::Ipv4Addr;
use wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    IcmpRepr, IpProtocol, Ipv4Repr,
};

const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 6, 0, 1);
const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 6, 1];
const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 6, 0, 2);
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 6, 2];

/// `cores` stacks wired as the runtime wires them, each over its own
/// memory queue; returns them with the peer end of each queue.
fn stacks(cores: usize, mem: &MemConfig) -> (Vec<CoreStack>, Vec<MemQueue>) {
    let mut cfg = RuntimeConfig::memory(OUR_IP, cores);
    cfg.net.mac = Some("02:00:00:00:06:01".into());
    cfg.stack.max_concurrency = 64;
    let epoch = Instant::now();
    let mut stacks = Vec::new();
    let mut peers = Vec::new();
    for core in 0..cores {
        let (ours, peer) = mem_pair(mem).unwrap();
        stacks.push(CoreStack::new(&cfg, core, AnyQueue::Memory(ours), epoch, 7).unwrap());
        peers.push(peer);
    }
    let links: Vec<Vec<Option<Arc<ForwardLink>>>> = (0..cores)
        .map(|from| {
            (0..cores)
                .map(|to| (from != to).then(|| ForwardLink::new(64)))
                .collect()
        })
        .collect();
    let wakers: Vec<_> = stacks.iter().map(|s| s.waker()).collect();
    for (core, stack) in stacks.iter_mut().enumerate() {
        stack.set_links(CoreLinks {
            inbound: (0..cores).map(|from| links[from][core].clone()).collect(),
            outbound: links[core].clone(),
            wakers: (0..cores)
                .map(|c| (c != core).then(|| wakers[c].clone()))
                .collect(),
        });
    }
    (stacks, peers)
}

/// Sends `bytes` from the peer; false when the link is full.
fn peer_send(q: &mut MemQueue, bytes: &[u8]) -> bool {
    let mut b = FrameBatch::with_capacity(1);
    assert_eq!(q.alloc(&mut b, 1), 1);
    let mut f = b.pop().unwrap();
    q.set_len(&mut f, bytes.len()).unwrap();
    q.frame_mut(&mut f).unwrap().copy_from_slice(bytes);
    b.push(f);
    let sent = q.send(&mut b).unwrap() == 1;
    q.release(&mut b).unwrap();
    sent
}

/// Takes at most `max` frames off the peer's end of the link.
fn peer_recv(q: &mut MemQueue, max: usize) -> Vec<Vec<u8>> {
    let mut b = FrameBatch::with_capacity(max);
    q.recv(&mut b);
    let frames = b.iter().map(|f| q.frame(f).unwrap().to_vec()).collect();
    q.release(&mut b).unwrap();
    frames
}

fn arp_request() -> Vec<u8> {
    let mut f = vec![0u8; 60];
    EthernetRepr {
        src_addr: EthernetAddress(PEER_MAC),
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EtherType::Arp,
    }
    .emit(&mut f)
    .unwrap();
    ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: EthernetAddress(PEER_MAC),
        source_protocol_addr: PEER_IP,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: OUR_IP,
    }
    .emit(&mut f[14..])
    .unwrap();
    f
}

fn is_arp_reply(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    let Ok(eth) = EthernetRepr::parse(&eth) else {
        return false;
    };
    if eth.ethertype != EtherType::Arp {
        return false;
    }
    ArpPacket::new_checked(&frame[14..])
        .ok()
        .and_then(|p| ArpRepr::parse(&p).ok())
        .is_some_and(|a| a.operation == ArpOperation::Reply && a.source_protocol_addr == OUR_IP)
}

fn echo_request(data_len: usize) -> Vec<u8> {
    let data = vec![0x5a; data_len];
    let mut icmp = vec![0u8; 8 + data_len];
    let n = IcmpRepr::EchoRequest {
        ident: 1,
        seq_no: data_len as u16,
        data: &data,
    }
    .emit(&mut icmp)
    .unwrap();
    let mut f = vec![0u8; 34 + n];
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
        protocol: IpProtocol::Icmp,
        payload_len: n,
        ttl: 64,
        dscp_ecn: 0,
        ident: 1,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut f[14..])
    .unwrap();
    f[34..].copy_from_slice(&icmp[..n]);
    f
}

/// An ARP request that arrives on one core's queue is answered once, by
/// that core, and every core learns the sender (the copies handed to the
/// other cores are only learned from, never answered or counted).
#[test]
fn one_core_answers_an_arp_request_and_every_core_learns() {
    let (mut stacks, mut peers) = stacks(2, &MemConfig::default());
    assert!(peer_send(&mut peers[0], &arp_request()));
    for _ in 0..3 {
        for s in stacks.iter_mut() {
            s.cycle();
        }
    }
    let replies: usize = peers
        .iter_mut()
        .map(|p| peer_recv(p, 64).iter().filter(|f| is_arp_reply(f)).count())
        .sum();
    assert_eq!(replies, 1, "one reply on the links");
    let now = Instant::now();
    for (core, s) in stacks.iter().enumerate() {
        assert_eq!(
            s.netif.arp.stats().replies_sent,
            u64::from(core == 0),
            "core {core}: replies counted"
        );
        assert_eq!(
            s.netif.arp.lookup(PEER_IP, now),
            Some(PEER_MAC),
            "core {core} learned the sender"
        );
    }
    assert_eq!(stacks[1].stats.forwarded_in, 1, "core 1 got the copy");
}

/// The frame and byte counters are the frames that crossed the queue, each
/// counted once, also when the transmit ring takes only part of a batch.
#[test]
fn counters_match_the_frames_on_the_link() {
    let mem = MemConfig {
        link_capacity: 3,
        ..MemConfig::default()
    };
    let (mut stacks, mut peers) = stacks(1, &mem);
    let (stack, peer) = (&mut stacks[0], &mut peers[0]);
    let mut sent_bytes = 0u64;
    let mut received: Vec<Vec<u8>> = Vec::new();
    // Three echo requests fill the link each way; three more find our
    // transmit ring full, and the peer then takes the replies one by one,
    // so the stack sends a batch a frame at a time.
    for round in [[10, 300, 900], [20, 600, 1200]] {
        for len in round {
            let frame = echo_request(len);
            assert!(peer_send(peer, &frame));
            sent_bytes += frame.len() as u64;
        }
        stack.cycle();
    }
    for _ in 0..20 {
        received.extend(peer_recv(peer, 1));
        stack.cycle();
    }
    received.extend(peer_recv(peer, 64));
    assert_eq!(received.len(), 6, "every request answered");
    let stats = stack.stats();
    assert_eq!((stats.rx_packets, stats.rx_bytes), (6, sent_bytes));
    let got_bytes: u64 = received.iter().map(|f| f.len() as u64).sum();
    assert_eq!((stats.tx_packets, stats.tx_bytes), (6, got_bytes));
    assert!(stats.tx_ring_full > 0, "the ring was full at times");
    assert_eq!(stats.echo_replies, 6);
    // Counted once: another snapshot (as the periodic report takes) adds
    // nothing.
    assert_eq!(stack.stats(), stats);
}
