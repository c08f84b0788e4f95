//! Frame builders and checkers shared by the integration tests.
#![allow(dead_code)]

use packet_io::{FrameBatch, PacketQueue};
use std::net::Ipv4Addr;
use wire::checksum;

pub const ETH_IPV4: [u8; 2] = [0x08, 0x00];
pub const ETH_ARP: [u8; 2] = [0x08, 0x06];

/// Skips the test (returns true) when not root, saying why.
pub fn skip_unless_root(test: &str) -> bool {
    if packet_io::testnet::is_root() {
        return false;
    }
    eprintln!("SKIP {test}: needs root to create network namespaces and AF_XDP sockets");
    true
}

/// An Ethernet/IPv4/UDP frame with valid checksums.
pub fn udp_frame(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(42 + payload.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETH_IPV4);
    let total = (20 + 8 + payload.len()) as u16;
    let mut ip = [0u8; 20];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.0.octets());
    ip[16..20].copy_from_slice(&dst.0.octets());
    let c = checksum::checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    let ulen = (8 + payload.len()) as u16;
    let mut udp = Vec::with_capacity(ulen as usize);
    udp.extend_from_slice(&src.1.to_be_bytes());
    udp.extend_from_slice(&dst.1.to_be_bytes());
    udp.extend_from_slice(&ulen.to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(payload);
    let pseudo = checksum::pseudo_header_ipv4(src.0, dst.0, 17, u32::from(ulen));
    let mut c = checksum::finish(&[pseudo, checksum::sum(&udp)]);
    if c == 0 {
        c = 0xffff;
    }
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&udp);
    f
}

/// A parsed IPv4/UDP frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Udp {
    pub src: (Ipv4Addr, u16),
    pub dst: (Ipv4Addr, u16),
    pub payload: Vec<u8>,
    pub ip_checksum_ok: bool,
    /// `None`: no checksum (zero).
    pub udp_checksum_ok: Option<bool>,
}

pub fn parse_udp(f: &[u8]) -> Option<Udp> {
    if f.len() < 42 || f[12..14] != ETH_IPV4 || f[23] != 17 {
        return None;
    }
    let ihl = usize::from(f[14] & 0xf) * 4;
    let ip = f.get(14..14 + ihl)?;
    let total = usize::from(u16::from_be_bytes([f[16], f[17]]));
    let udp = f.get(14 + ihl..14 + total)?;
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    let ulen = usize::from(u16::from_be_bytes([udp[4], udp[5]]));
    let udp = udp.get(..ulen)?;
    let csum = u16::from_be_bytes([udp[6], udp[7]]);
    let udp_checksum_ok = (csum != 0).then(|| {
        let pseudo = checksum::pseudo_header_ipv4(src, dst, 17, ulen as u32);
        checksum::finish(&[pseudo, checksum::sum(udp)]) == 0
    });
    Some(Udp {
        src: (src, u16::from_be_bytes([udp[0], udp[1]])),
        dst: (dst, u16::from_be_bytes([udp[2], udp[3]])),
        payload: udp[8..].to_vec(),
        ip_checksum_ok: checksum::verify(ip),
        udp_checksum_ok,
    })
}

/// If `f` is an ARP request for `ip`, turns it into the reply from `mac` in
/// place and returns true.
pub fn answer_arp(f: &mut [u8], ip: Ipv4Addr, mac: [u8; 6]) -> bool {
    if f.len() < 42 || f[12..14] != ETH_ARP || f[20..22] != [0, 1] || f[38..42] != ip.octets() {
        return false;
    }
    let sha: [u8; 6] = f[22..28].try_into().unwrap();
    let spa: [u8; 4] = f[28..32].try_into().unwrap();
    f[0..6].copy_from_slice(&sha);
    f[6..12].copy_from_slice(&mac);
    f[21] = 2;
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    f[32..38].copy_from_slice(&sha);
    f[38..42].copy_from_slice(&spa);
    true
}

/// Sends `bytes` as one frame allocated from `q`; true when the queue took it.
pub fn send_bytes<Q: PacketQueue>(q: &mut Q, bytes: &[u8]) -> bool {
    let mut b = FrameBatch::with_capacity(1);
    if q.alloc(&mut b, 1) != 1 {
        return false;
    }
    let mut f = b.pop().unwrap();
    q.set_len(&mut f, bytes.len()).unwrap();
    q.frame_mut(&mut f).unwrap().copy_from_slice(bytes);
    b.push(f);
    let sent = q.send(&mut b).unwrap();
    q.release(&mut b).unwrap();
    sent == 1
}
