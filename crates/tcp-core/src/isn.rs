//! Initial sequence numbers, RFC 6528 (RFC 9293 section 3.4.1).
//!
//! `ISN = M + F(localip, localport, remoteip, remoteport, secretkey)` where M
//! is a timer ticking every 4 microseconds and F a keyed pseudo-random
//! function. F here is SipHash-2-4 with a 128-bit secret, which RFC 6528
//! section 3 allows ("F() MUST NOT be computable from the outside";
//! SipHash is a PRF designed for exactly this use). The secret comes from the
//! caller's random source, so the engine stays deterministic under test.

use core::hash::Hasher;
use std::net::SocketAddrV4;

use siphasher::sip::SipHasher24;
use wire::SeqNumber;

use crate::time::Instant;

/// Period of the ISN clock M: "M is the 4 microsecond timer" (RFC 6528
/// section 3, keeping the RFC 793 clock rate).
pub const ISN_CLOCK_PERIOD_US: u64 = 4;

/// Input appended to the 4-tuple for timestamp offsets, so that they are
/// unrelated to the ISNs of the same connection.
const TS_OFFSET_DOMAIN: &[u8] = b"tsval";

/// Generates RFC 6528 initial sequence numbers (and RFC 7323 timestamp
/// offsets) from a secret key.
#[derive(Clone)]
pub struct IsnGenerator {
    secret: [u8; 16],
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret: it is what keeps ISNs unpredictable.
        f.debug_struct("IsnGenerator").finish_non_exhaustive()
    }
}

impl IsnGenerator {
    /// A generator keyed with `secret`, which must be random and kept private
    /// (RFC 6528 section 3: "SHOULD be ... a cryptographically secure random
    /// number").
    pub fn new(secret: [u8; 16]) -> IsnGenerator {
        IsnGenerator { secret }
    }

    /// The ISN for a connection between `local` and `remote` at time `now`.
    ///
    /// Successive connections on one 4-tuple get increasing ISNs (the clock
    /// part), while different 4-tuples get unrelated ones (the hash part).
    pub fn isn(&self, now: Instant, local: SocketAddrV4, remote: SocketAddrV4) -> SeqNumber {
        // M wraps every 2^32 * 4 us (about 4.77 hours), as in RFC 793.
        let m = (now.as_micros() / ISN_CLOCK_PERIOD_US) as u32;
        SeqNumber(m.wrapping_add(self.hash(local, remote)))
    }

    /// The offset added to the millisecond timestamp clock for TSvals of
    /// the connection between `local` and `remote` (RFC 7323 section 5.4
    /// allows a per-connection offset; section 7.1 asks for one that does
    /// not leak the host's clock).
    ///
    /// Keyed on the 4-tuple like the ISN, not drawn at random: successive
    /// incarnations of one 4-tuple then send increasing TSvals, so the
    /// peer's PAWS check (RFC 7323 section 5.3) admits the new SYN and its
    /// TIME-WAIT can be reused by timestamp (RFC 6191 section 2). With a
    /// random offset per connection, about half of the SYNs that reuse a
    /// port still in the peer's TIME-WAIT look older than the last
    /// incarnation and wait out a SYN retransmission.
    pub fn ts_offset(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        self.keyed(TS_OFFSET_DOMAIN, local, remote)
    }

    /// F(): SipHash-2-4 of the 4-tuple under the secret, folded to 32 bits.
    fn hash(&self, local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        self.keyed(&[], local, remote)
    }

    /// SipHash-2-4 of `domain` and the 4-tuple under the secret, folded to
    /// 32 bits (distinct domains give unrelated values).
    fn keyed(&self, domain: &[u8], local: SocketAddrV4, remote: SocketAddrV4) -> u32 {
        let mut h = SipHasher24::new_with_key(&self.secret);
        let mut input = [0u8; 12];
        input[0..4].copy_from_slice(&local.ip().octets());
        input[4..6].copy_from_slice(&local.port().to_be_bytes());
        input[6..10].copy_from_slice(&remote.ip().octets());
        input[10..12].copy_from_slice(&remote.port().to_be_bytes());
        h.write(&input);
        h.write(domain);
        let v = h.finish();
        (v ^ (v >> 32)) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(a: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(10, 0, 0, a), port)
    }

    #[test]
    fn advances_with_the_4us_clock() {
        let g = IsnGenerator::new([7; 16]);
        let (l, r) = (addr(1, 80), addr(2, 40000));
        let a = g.isn(Instant::from_micros(1_000), l, r);
        let b = g.isn(Instant::from_micros(1_000 + 4 * 1234), l, r);
        assert_eq!(b.0.wrapping_sub(a.0), 1234);
        // Sub-tick differences do not change the ISN.
        assert_eq!(a, g.isn(Instant::from_micros(1_003), l, r));
    }

    #[test]
    fn depends_on_every_tuple_field_and_the_secret() {
        let g = IsnGenerator::new([7; 16]);
        let t = Instant::from_secs(5);
        let base = g.isn(t, addr(1, 80), addr(2, 40000));
        assert_ne!(base, g.isn(t, addr(3, 80), addr(2, 40000)));
        assert_ne!(base, g.isn(t, addr(1, 81), addr(2, 40000)));
        assert_ne!(base, g.isn(t, addr(1, 80), addr(4, 40000)));
        assert_ne!(base, g.isn(t, addr(1, 80), addr(2, 40001)));
        // Swapping ends is a different connection, hence a different ISN.
        assert_ne!(base, g.isn(t, addr(2, 40000), addr(1, 80)));
        let other = IsnGenerator::new([8; 16]);
        assert_ne!(base, other.isn(t, addr(1, 80), addr(2, 40000)));
        // Deterministic for a given secret.
        assert_eq!(base, g.isn(t, addr(1, 80), addr(2, 40000)));
    }

    #[test]
    fn timestamp_offsets_are_per_tuple_and_stable() {
        let g = IsnGenerator::new([7; 16]);
        let (l, r) = (addr(1, 80), addr(2, 40000));
        // The same 4-tuple always gets the same offset, so a new
        // incarnation's TSvals continue the old one's clock.
        assert_eq!(g.ts_offset(l, r), g.ts_offset(l, r));
        assert_ne!(g.ts_offset(l, r), g.ts_offset(l, addr(2, 40001)));
        assert_ne!(g.ts_offset(l, r), g.ts_offset(addr(3, 80), r));
        // Unrelated to the ISN hash of the same tuple, and keyed.
        let isn_at_zero = g.isn(Instant::from_micros(0), l, r).0;
        assert_ne!(g.ts_offset(l, r), isn_at_zero);
        assert_ne!(
            g.ts_offset(l, r),
            IsnGenerator::new([8; 16]).ts_offset(l, r)
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = format!("{:?}", IsnGenerator::new([0xab; 16]));
        assert!(!s.contains("171"), "{s}");
    }
}
