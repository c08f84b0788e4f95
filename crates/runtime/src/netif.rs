//! The network layer of one core: Ethernet, ARP, IPv4 and ICMP around the
//! TCP engine.
//!
//! Input: [`NetIf::classify`] parses a received frame layer by layer (wire's
//! views and reprs; the IPv4 header checksum and the TCP checksum are
//! verified, RFC 1122 sections 3.2.1.2 and 4.2.2.7) and says what it is: a
//! TCP segment for us, an ICMP error quoting one of our segments, an ARP
//! packet, an echo request (answered in place by [`NetIf::echo_reply_in_place`])
//! or something to drop. Output: the engine writes a TCP segment at
//! [`HEADERS_LEN`] into a transmit frame and [`NetIf::frame_ipv4`] puts the
//! IPv4 and Ethernet headers in front of it, choosing the next hop (on-link
//! or the default gateway) and looking up its MAC in the [`ArpCache`].

use crate::arp::ArpCache;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant;
use tcp_core::{IcmpError, IcmpErrorKind};
use wire::{
    ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    IcmpPacket, IcmpRepr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpRepr,
};

/// Ethernet (14) plus IPv4 without options (20): where the TCP segment starts
/// in a frame we build.
pub const HEADERS_LEN: usize = wire::ethernet::HEADER_LEN + wire::ipv4::HEADER_LEN;

/// Default TTL of our datagrams (RFC 1700 recommends 64).
pub const DEFAULT_TTL: u8 = 64;

/// Why a received frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Not addressed to our MAC, broadcast or an ARP for us.
    NotForUs,
    /// Malformed, truncated or bad checksum.
    Malformed,
    /// IPv4 fragment (not reassembled; we send with DF set).
    Fragment,
    /// A protocol we do not handle (UDP, IPv6, ...).
    Unsupported,
}

/// What a received frame is.
#[derive(Debug)]
pub enum Classified<'a> {
    /// A TCP segment for our address.
    Tcp {
        /// The peer's address.
        src: Ipv4Addr,
        /// Our address.
        dst: Ipv4Addr,
        /// The parsed segment (payload borrowed from the frame).
        seg: TcpRepr<'a>,
    },
    /// An ICMP error about one of our TCP segments.
    IcmpError(IcmpError),
    /// An ARP packet (request or reply).
    Arp(ArpRepr),
    /// An ICMP echo request to our address.
    EchoRequest,
    /// Dropped.
    Drop(DropReason),
}

/// Where a segment goes once framed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framed {
    /// The frame is complete: send `len` bytes.
    Ready(usize),
    /// The next hop's MAC is unknown: hold the frame (of `len` bytes) and
    /// ask with ARP for `next_hop`.
    Unresolved {
        /// Frame length.
        len: usize,
        /// The address to resolve.
        next_hop: Ipv4Addr,
    },
    /// No route (off-link destination and no gateway) or a header error.
    Unroutable,
}

/// One core's interface state: addresses and the ARP cache.
#[derive(Debug)]
pub struct NetIf {
    mac: EthernetAddress,
    ip: Ipv4Addr,
    netmask: u32,
    gateway: Option<Ipv4Addr>,
    ident: u16,
    /// A next hop whose entry is in use and about to expire.
    refresh: Option<Ipv4Addr>,
    /// The neighbour table.
    pub arp: ArpCache,
}

impl NetIf {
    /// An interface with address `ip/netmask`, MAC `mac` and an optional gateway.
    pub fn new(
        mac: [u8; 6],
        ip: Ipv4Addr,
        netmask: Ipv4Addr,
        gateway: Option<Ipv4Addr>,
        arp: ArpCache,
    ) -> Self {
        NetIf {
            mac: EthernetAddress(mac),
            ip,
            netmask: u32::from(netmask),
            gateway,
            ident: 0,
            refresh: None,
            arp,
        }
    }

    /// Our IPv4 address.
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// Our MAC address.
    pub fn mac(&self) -> [u8; 6] {
        self.mac.0
    }

    /// The address whose MAC a datagram to `dst` needs: `dst` itself when it
    /// is on the local subnet, the gateway otherwise.
    pub fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if (u32::from(dst) ^ u32::from(self.ip)) & self.netmask == 0 {
            Some(dst)
        } else {
            self.gateway
        }
    }

    /// Parses a received frame.
    pub fn classify<'a>(&self, frame: &'a [u8]) -> Classified<'a> {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Classified::Drop(DropReason::Malformed);
        };
        let Ok(er) = EthernetRepr::parse(&eth) else {
            return Classified::Drop(DropReason::Malformed);
        };
        let for_us = er.dst_addr == self.mac || er.dst_addr.is_broadcast();
        let payload = &frame[wire::ethernet::HEADER_LEN..];
        match er.ethertype {
            EtherType::Arp => {
                let Ok(arp) = ArpRepr::parse(&ArpPacket::new_unchecked(payload)) else {
                    return Classified::Drop(DropReason::Malformed);
                };
                Classified::Arp(arp)
            }
            EtherType::Ipv4 if for_us => self.classify_ipv4(payload),
            EtherType::Ipv4 => Classified::Drop(DropReason::NotForUs),
            _ => Classified::Drop(DropReason::Unsupported),
        }
    }

    fn classify_ipv4<'a>(&self, bytes: &'a [u8]) -> Classified<'a> {
        let Ok(pkt) = Ipv4Packet::new_checked(bytes) else {
            return Classified::Drop(DropReason::Malformed);
        };
        let Ok(ip) = Ipv4Repr::parse(&pkt, true) else {
            return Classified::Drop(DropReason::Malformed);
        };
        if ip.dst_addr != self.ip {
            return Classified::Drop(DropReason::NotForUs);
        }
        if ip.is_fragment() {
            return Classified::Drop(DropReason::Fragment);
        }
        let hl = pkt.header_len();
        let Some(payload) = bytes.get(hl..hl + ip.payload_len) else {
            return Classified::Drop(DropReason::Malformed);
        };
        match ip.protocol {
            IpProtocol::Tcp => {
                match TcpRepr::parse_bytes(payload, ip.src_addr, ip.dst_addr, true) {
                    Ok(seg) => Classified::Tcp {
                        src: ip.src_addr,
                        dst: ip.dst_addr,
                        seg,
                    },
                    Err(_) => Classified::Drop(DropReason::Malformed),
                }
            }
            IpProtocol::Icmp => self.classify_icmp(payload),
            _ => Classified::Drop(DropReason::Unsupported),
        }
    }

    fn classify_icmp(&self, bytes: &[u8]) -> Classified<'static> {
        let Ok(pkt) = IcmpPacket::new_checked(bytes) else {
            return Classified::Drop(DropReason::Malformed);
        };
        let Ok(icmp) = IcmpRepr::parse(&pkt, true) else {
            return Classified::Drop(DropReason::Malformed);
        };
        let (ty, code, mtu, quote) = match icmp {
            IcmpRepr::EchoRequest { .. } => return Classified::EchoRequest,
            IcmpRepr::EchoReply { .. } => return Classified::Drop(DropReason::Unsupported),
            IcmpRepr::DstUnreachable {
                reason,
                next_hop_mtu,
                quote,
            } => (3, reason.code(), next_hop_mtu, quote),
            IcmpRepr::TimeExceeded { reason, quote } => (11, reason.code(), 0, quote),
        };
        let (Some(tcp), Some(kind)) = (quote.tcp(), IcmpErrorKind::from_type_code(ty, code, mtu))
        else {
            return Classified::Drop(DropReason::Unsupported);
        };
        if quote.header.src_addr != self.ip {
            return Classified::Drop(DropReason::NotForUs);
        }
        Classified::IcmpError(IcmpError {
            kind,
            local: SocketAddrV4::new(quote.header.src_addr, tcp.src_port),
            remote: SocketAddrV4::new(quote.header.dst_addr, tcp.dst_port),
            seq: tcp.seq,
        })
    }

    /// Handles an ARP packet: learns the sender when the packet concerns us
    /// (RFC 826's merge, [`learn_arp`](Self::learn_arp)), and turns a
    /// request for our address into the reply in place. Returns true when
    /// `frame` now holds a reply to send.
    pub fn handle_arp(&mut self, arp: &ArpRepr, frame: &mut [u8], now: Instant) -> bool {
        let (sender_ok, for_us) = self.learn_arp(arp, now);
        if arp.operation != ArpOperation::Request || !for_us || !sender_ok {
            return false;
        }
        self.arp_reply(arp, frame)
    }

    /// The learning half of [`handle_arp`](Self::handle_arp), for the
    /// copies of an ARP packet that the receiving core hands to the other
    /// cores: every core learns the mapping, only the receiving one
    /// answers. Returns (the sender is a valid unicast host, the packet
    /// targets our address).
    pub fn learn_arp(&mut self, arp: &ArpRepr, now: Instant) -> (bool, bool) {
        let sender_ok = arp.source_hardware_addr.is_unicast()
            && !arp.source_protocol_addr.is_unspecified()
            && !arp.source_protocol_addr.is_broadcast();
        let for_us = arp.target_protocol_addr == self.ip;
        if sender_ok && (for_us || self.arp.lookup(arp.source_protocol_addr, now).is_some()) {
            self.arp
                .learn(arp.source_protocol_addr, arp.source_hardware_addr.0, now);
        } else if sender_ok && arp.operation == ArpOperation::Reply {
            // A reply to one of our requests (gratuitous replies to others are ignored
            // unless we are waiting for the address).
            if self.arp.waiting().any(|ip| ip == arp.source_protocol_addr) {
                self.arp
                    .insert(arp.source_protocol_addr, arp.source_hardware_addr.0, now);
            }
        }
        (sender_ok, for_us)
    }

    /// Writes the reply to the request `arp` into `frame` (counted).
    fn arp_reply(&mut self, arp: &ArpRepr, frame: &mut [u8]) -> bool {
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: self.mac,
            source_protocol_addr: self.ip,
            target_hardware_addr: arp.source_hardware_addr,
            target_protocol_addr: arp.source_protocol_addr,
        };
        let eth = EthernetRepr {
            src_addr: self.mac,
            dst_addr: arp.source_hardware_addr,
            ethertype: EtherType::Arp,
        };
        if frame.len() < wire::ethernet::HEADER_LEN + reply.buffer_len()
            || eth.emit(frame).is_err()
            || reply
                .emit(&mut frame[wire::ethernet::HEADER_LEN..])
                .is_err()
        {
            return false;
        }
        // Pad to the Ethernet minimum with zeros, not the request's bytes.
        let end = frame.len().min(60);
        let start = (wire::ethernet::HEADER_LEN + reply.buffer_len()).min(end);
        frame[start..end].fill(0);
        self.arp.count_reply();
        true
    }

    /// Writes an ARP request for `target` into `buf`; returns its length.
    pub fn arp_request(&self, target: Ipv4Addr, buf: &mut [u8]) -> Option<usize> {
        let req = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: self.mac,
            source_protocol_addr: self.ip,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: target,
        };
        let eth = EthernetRepr {
            src_addr: self.mac,
            dst_addr: EthernetAddress::BROADCAST,
            ethertype: EtherType::Arp,
        };
        let n = eth.emit(buf).ok()?;
        let m = req.emit(buf.get_mut(n..)?).ok()?;
        // Minimum Ethernet payload: pad to 60 bytes.
        let len = (n + m).max(60).min(buf.len());
        buf[n + m..len].fill(0);
        Some(len)
    }

    /// Turns the echo request in `frame` (of `len` bytes, already classified
    /// as [`Classified::EchoRequest`]) into its reply in place (RFC 792,
    /// RFC 1122 section 3.2.2.6). Returns the reply's length.
    pub fn echo_reply_in_place(&mut self, frame: &mut [u8]) -> Option<usize> {
        let eth_len = wire::ethernet::HEADER_LEN;
        let (src_mac, ip_bytes) = {
            let eth = EthernetFrame::new_checked(&frame[..]).ok()?;
            (eth.src_addr(), eth.payload())
        };
        let ip = Ipv4Repr::parse(&Ipv4Packet::new_checked(ip_bytes).ok()?, false).ok()?;
        let hl = Ipv4Packet::new_unchecked(ip_bytes).header_len();
        let icmp_start = eth_len + hl;
        let icmp_end = icmp_start + ip.payload_len;
        if ip.protocol != IpProtocol::Icmp
            || ip.payload_len < wire::icmp::HEADER_LEN
            || hl < wire::ipv4::HEADER_LEN
            || icmp_end > frame.len()
        {
            return None;
        }
        // Move the ICMP message right behind a 20-byte header (drop IP options).
        let new_start = HEADERS_LEN;
        frame.copy_within(icmp_start..icmp_end, new_start);
        let icmp_len = ip.payload_len;
        {
            let mut p = IcmpPacket::new_unchecked(&mut frame[new_start..new_start + icmp_len]);
            p.set_msg_type(0);
            p.set_msg_code(0);
            p.fill_checksum();
        }
        let reply = Ipv4Repr {
            src_addr: self.ip,
            dst_addr: ip.src_addr,
            protocol: IpProtocol::Icmp,
            payload_len: icmp_len,
            ttl: DEFAULT_TTL,
            dscp_ecn: 0,
            ident: self.next_ident(),
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        };
        reply.emit(&mut frame[eth_len..]).ok()?;
        EthernetRepr {
            src_addr: self.mac,
            dst_addr: src_mac,
            ethertype: EtherType::Ipv4,
        }
        .emit(frame)
        .ok()?;
        Some(new_start + icmp_len)
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// Writes the Ethernet and IPv4 headers in front of a `payload_len`-byte
    /// TCP segment already at [`HEADERS_LEN`] in `frame`.
    pub fn frame_ipv4(
        &mut self,
        frame: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload_len: usize,
        now: Instant,
    ) -> Framed {
        let Some(next_hop) = self.next_hop(dst) else {
            return Framed::Unroutable;
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            protocol: IpProtocol::Tcp,
            payload_len,
            ttl: DEFAULT_TTL,
            dscp_ecn: 0,
            ident: self.next_ident(),
            // RFC 1191: we never fragment; ICMP "fragmentation needed"
            // lowers the MSS instead.
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
        };
        let len = HEADERS_LEN + payload_len;
        if frame.len() < len || ip.emit(&mut frame[wire::ethernet::HEADER_LEN..]).is_err() {
            return Framed::Unroutable;
        }
        let dst_mac = match self.arp.lookup_refresh(next_hop, now) {
            Some((mac, refresh)) => {
                if refresh {
                    self.refresh = Some(next_hop);
                }
                Some(mac)
            }
            None => None,
        };
        let eth = EthernetRepr {
            src_addr: self.mac,
            dst_addr: EthernetAddress(dst_mac.unwrap_or([0; 6])),
            ethertype: EtherType::Ipv4,
        };
        if eth.emit(frame).is_err() {
            return Framed::Unroutable;
        }
        match dst_mac {
            Some(_) => Framed::Ready(len),
            None => Framed::Unresolved { len, next_hop },
        }
    }

    /// A next hop to re-resolve before its entry expires (taken once).
    pub fn take_refresh(&mut self) -> Option<Ipv4Addr> {
        self.refresh.take()
    }

    /// Fills the destination MAC of a held frame once resolved.
    pub fn set_dst_mac(frame: &mut [u8], mac: [u8; 6]) {
        if frame.len() >= 6 {
            frame[..6].copy_from_slice(&mac);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use wire::{SeqNumber, TcpFlags};

    const OUR_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const PEER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
    const GW: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 254);

    fn netif() -> NetIf {
        NetIf::new(
            OUR_MAC,
            OUR_IP,
            Ipv4Addr::new(255, 255, 255, 0),
            Some(GW),
            ArpCache::new(Duration::from_secs(60), 8),
        )
    }

    fn syn_frame(n: &mut NetIf, now: Instant) -> Vec<u8> {
        let seg = TcpRepr {
            src_port: 1234,
            dst_port: 80,
            seq: SeqNumber(7),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: 1000,
            urgent: 0,
            options: Default::default(),
            payload: &[],
        };
        let mut f = vec![0u8; 128];
        let len = seg.emit(&mut f[HEADERS_LEN..], PEER_IP, OUR_IP).unwrap();
        // Build it as if the peer sent it: frame with swapped roles.
        let mut peer = NetIf::new(
            PEER_MAC,
            PEER_IP,
            Ipv4Addr::new(255, 255, 255, 0),
            None,
            ArpCache::new(Duration::from_secs(60), 8),
        );
        peer.arp.insert(OUR_IP, OUR_MAC, now);
        let _ = n;
        match peer.frame_ipv4(&mut f, PEER_IP, OUR_IP, len, now) {
            Framed::Ready(l) => f.truncate(l),
            other => panic!("{other:?}"),
        }
        f
    }

    #[test]
    fn tcp_frames_are_classified_and_checksums_checked() {
        let now = Instant::now();
        let mut n = netif();
        let mut f = syn_frame(&mut n, now);
        match n.classify(&f) {
            Classified::Tcp { src, dst, seg } => {
                assert_eq!((src, dst), (PEER_IP, OUR_IP));
                assert_eq!(seg.dst_port, 80);
                assert!(seg.flags.syn());
            }
            other => panic!("{other:?}"),
        }
        let last = f.len() - 1;
        f[last] ^= 0xff;
        assert!(matches!(
            n.classify(&f),
            Classified::Drop(DropReason::Malformed)
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let n = netif();
        let mut f = vec![0u8; 0];
        for len in 0..80 {
            f.resize(len, 0xa5);
            let _ = n.classify(&f);
        }
    }

    #[test]
    fn echo_reply_of_any_frame_never_panics() {
        let mut n = netif();
        let now = Instant::now();
        let mut base = syn_frame(&mut n, now);
        base[14 + 9] = 1; // protocol ICMP, checksum now wrong: still no panic
        for len in 0..base.len() {
            let mut f = base[..len].to_vec();
            let _ = n.echo_reply_in_place(&mut f);
        }
        let mut garbage = vec![0x45u8; 80];
        let _ = n.echo_reply_in_place(&mut garbage);
    }

    #[test]
    fn next_hop_is_on_link_or_gateway() {
        let n = netif();
        assert_eq!(n.next_hop(PEER_IP), Some(PEER_IP));
        assert_eq!(n.next_hop(Ipv4Addr::new(8, 8, 8, 8)), Some(GW));
        let mut no_gw = netif();
        no_gw.gateway = None;
        assert_eq!(no_gw.next_hop(Ipv4Addr::new(8, 8, 8, 8)), None);
    }

    #[test]
    fn unresolved_next_hop_then_arp_reply() {
        let now = Instant::now();
        let mut n = netif();
        let mut f = vec![0u8; 100];
        assert_eq!(
            n.frame_ipv4(&mut f, OUR_IP, PEER_IP, 20, now),
            Framed::Unresolved {
                len: HEADERS_LEN + 20,
                next_hop: PEER_IP
            }
        );
        let mut req = vec![0u8; 64];
        let len = n.arp_request(PEER_IP, &mut req).unwrap();
        assert_eq!(len, 60);
        // The peer's reply teaches us its MAC.
        let reply = ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(PEER_MAC),
            source_protocol_addr: PEER_IP,
            target_hardware_addr: EthernetAddress(OUR_MAC),
            target_protocol_addr: OUR_IP,
        };
        let mut buf = vec![0u8; 60];
        assert!(!n.handle_arp(&reply, &mut buf, now));
        assert_eq!(
            n.frame_ipv4(&mut f, OUR_IP, PEER_IP, 20, now),
            Framed::Ready(HEADERS_LEN + 20)
        );
        assert_eq!(&f[..6], &PEER_MAC);
    }

    #[test]
    fn arp_request_for_us_is_answered_in_place() {
        let now = Instant::now();
        let mut n = netif();
        let req = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress(PEER_MAC),
            source_protocol_addr: PEER_IP,
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: OUR_IP,
        };
        let mut f = vec![0u8; 60];
        assert!(n.handle_arp(&req, &mut f, now));
        match n.classify(&f) {
            Classified::Arp(a) => {
                assert_eq!(a.operation, ArpOperation::Reply);
                assert_eq!(a.source_hardware_addr.0, OUR_MAC);
                assert_eq!(a.target_protocol_addr, PEER_IP);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(n.arp.lookup(PEER_IP, now), Some(PEER_MAC));
        // A request for someone else is not answered.
        let other = ArpRepr {
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 9),
            ..req
        };
        assert!(!n.handle_arp(&other, &mut f, now));
    }

    #[test]
    fn echo_request_gets_a_valid_reply() {
        let mut n = netif();
        let echo = IcmpRepr::EchoRequest {
            ident: 5,
            seq_no: 9,
            data: b"ping-data",
        };
        let mut f = vec![0u8; 128];
        let icmp_len = echo.emit(&mut f[HEADERS_LEN..]).unwrap();
        Ipv4Repr {
            src_addr: PEER_IP,
            dst_addr: OUR_IP,
            protocol: IpProtocol::Icmp,
            payload_len: icmp_len,
            ttl: 64,
            dscp_ecn: 0,
            ident: 1,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
        }
        .emit(&mut f[14..])
        .unwrap();
        EthernetRepr {
            src_addr: EthernetAddress(PEER_MAC),
            dst_addr: EthernetAddress(OUR_MAC),
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut f)
        .unwrap();
        f.truncate(HEADERS_LEN + icmp_len);
        assert!(matches!(n.classify(&f), Classified::EchoRequest));
        let len = n.echo_reply_in_place(&mut f).unwrap();
        let eth = EthernetFrame::new_checked(&f[..len]).unwrap();
        assert_eq!(eth.dst_addr().0, PEER_MAC);
        let ip = Ipv4Repr::parse(&Ipv4Packet::new_checked(eth.payload()).unwrap(), true).unwrap();
        assert_eq!(ip.dst_addr, PEER_IP);
        let icmp = IcmpRepr::parse_bytes(&eth.payload()[20..20 + ip.payload_len], true).unwrap();
        assert_eq!(
            icmp,
            IcmpRepr::EchoReply {
                ident: 5,
                seq_no: 9,
                data: b"ping-data"
            }
        );
    }
}
