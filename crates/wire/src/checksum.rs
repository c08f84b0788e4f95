//! The Internet checksum (RFC 1071) and the IPv4 pseudo-header (RFC 9293
//! section 3.1, RFC 768).
//!
//! The one's-complement sum is independent of byte order and of the word width
//! used to accumulate it, as long as carries are folded back in (RFC 1071 section
//! 2 (B) and (C)). [`sum`] therefore adds 32-bit big-endian words into a 64-bit
//! accumulator and folds once at the end, which is about twice as fast as adding
//! 16-bit words and can never overflow for any buffer that fits in memory.

use std::net::Ipv4Addr;

/// Fold a wide one's-complement accumulator to 16 bits (end-around carry).
#[inline]
const fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The folded 16-bit one's-complement sum of `data`, not yet complemented.
///
/// An odd trailing byte is padded with a zero byte on the right, as RFC 1071
/// section 1 prescribes.
pub fn sum(data: &[u8]) -> u16 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    acc += u64::from(u32::from_be_bytes(tail));
    fold(acc)
}

/// One's-complement addition of partial sums (RFC 1071 section 2 (B)):
/// the result is the sum of the data the partial sums were computed over,
/// provided each part except the last had an even length.
pub fn combine(parts: &[u16]) -> u16 {
    fold(parts.iter().map(|&p| u64::from(p)).sum())
}

/// The partial sum of the IPv4 pseudo-header used by TCP and UDP checksums:
/// source address, destination address, zero, protocol, and the transport
/// length (header plus data) (RFC 9293 section 3.1, "Checksum").
///
/// `length` is a `u32` so that a caller never has to truncate; IPv4 itself
/// limits it to 16 bits.
pub fn pseudo_header_ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u32) -> u16 {
    let acc = u64::from(u32::from(src))
        + u64::from(u32::from(dst))
        + u64::from(protocol)
        + u64::from(length);
    fold(acc)
}

/// The checksum to write into a header: the complement of the sum of `parts`.
pub fn finish(parts: &[u16]) -> u16 {
    !combine(parts)
}

/// The checksum of `data` alone (as for the IPv4 header and ICMP), ready to write.
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// True when `data`, with its checksum field in place, verifies: the sum over
/// everything is all ones.
pub fn verify(data: &[u8]) -> bool {
    sum(data) == 0xffff
}

/// IANA protocol number of TCP, for the pseudo-header.
pub const PROTOCOL_TCP: u8 = 6;

/// The checksum of a TCP segment (`segment` is header, options and payload, with
/// the checksum field zeroed) over IPv4, ready to write.
pub fn tcp_ipv4(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    finish(&[
        pseudo_header_ipv4(src, dst, PROTOCOL_TCP, len),
        sum(segment),
    ])
}

/// True when a received TCP segment over IPv4 (checksum field in place) verifies.
pub fn verify_tcp_ipv4(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> bool {
    let len = u32::try_from(segment.len()).unwrap_or(u32::MAX);
    combine(&[
        pseudo_header_ipv4(src, dst, PROTOCOL_TCP, len),
        sum(segment),
    ]) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: add 16-bit words one by one with end-around carry.
    fn naive(data: &[u8]) -> u16 {
        let mut acc: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from_be_bytes([c[0], 0])
            };
            acc += u32::from(w);
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to dd f2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // A classic example header with checksum b861.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert!(verify(&hdr));
        let mut z = hdr;
        z[10] = 0;
        z[11] = 0;
        assert_eq!(checksum(&z), 0xb861);
    }

    #[test]
    fn odd_lengths_match_naive() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1031).collect();
        for n in 0..data.len() {
            assert_eq!(sum(&data[..n]), naive(&data[..n]), "len {n}");
        }
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0xff; 3]), naive(&[0xff; 3]));
    }

    #[test]
    fn combine_equals_whole() {
        let data: Vec<u8> = (0..200u8).map(|x| x.wrapping_mul(37)).collect();
        for split in (0..data.len()).step_by(2) {
            assert_eq!(
                combine(&[sum(&data[..split]), sum(&data[split..])]),
                sum(&data)
            );
        }
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let src = Ipv4Addr::new(10, 0, 0, 1);
        let dst = Ipv4Addr::new(192, 168, 200, 254);
        let mut ph = Vec::new();
        ph.extend_from_slice(&src.octets());
        ph.extend_from_slice(&dst.octets());
        ph.extend_from_slice(&[0, PROTOCOL_TCP]);
        ph.extend_from_slice(&1480u16.to_be_bytes());
        assert_eq!(pseudo_header_ipv4(src, dst, PROTOCOL_TCP, 1480), sum(&ph));
    }
}
