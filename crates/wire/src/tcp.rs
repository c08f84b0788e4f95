//! TCP header (RFC 9293 section 3.1) and options.
//!
//! [`TcpPacket`] is the zero-copy view, [`TcpRepr`] the validated owned header
//! with a borrowed payload, [`TcpOptionIter`] the raw option reader and
//! [`TcpOptions`] the options mtcp-rs understands. Option handling follows
//! RFC 9293 section 3.2 and 3.7.1: the mandatory set EOL, NOP and MSS plus
//! window scale and timestamps (RFC 7323) and SACK (RFC 2018) are parsed
//! (MUST-4); options are accepted in any segment (MUST-5); unknown kinds are
//! skipped by their length byte (MUST-6, MUST-68); options need not be aligned
//! (MUST-64); an illegal length makes the segment an [`Error::BadOption`]
//! (MUST-7) for the caller to drop; emitted headers end on a 32-bit boundary
//! without padding bytes (MUST-69).

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};
use std::net::Ipv4Addr;

use crate::checksum;
use crate::Error;

/// A TCP sequence number: arithmetic modulo 2^32 (RFC 9293 section 3.4).
///
/// Ordering compares by signed 32-bit distance, so it is only meaningful for
/// numbers less than 2^31 apart, which TCP's windows guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance `self - other` in sequence space.
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// The larger of two sequence numbers (by sequence-space ordering).
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self >= other {
            self
        } else {
            other
        }
    }

    /// The smaller of two sequence numbers (by sequence-space ordering).
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self <= other {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SeqNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        self.diff(*other).cmp(&0)
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<usize> for SeqNumber {
    fn add_assign(&mut self, rhs: usize) {
        *self = *self + rhs;
    }
}

impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, rhs: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(rhs as u32))
    }
}

impl Sub for SeqNumber {
    type Output = usize;
    /// Distance from `rhs` forward to `self`. Callers must know `self >= rhs`;
    /// a negative distance saturates to 0 rather than panicking.
    fn sub(self, rhs: SeqNumber) -> usize {
        let d = self.diff(rhs);
        if d < 0 {
            0
        } else {
            d as usize
        }
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// TCP control bits (RFC 9293 section 3.1, RFC 3168 for ECE/CWR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// No flags set.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }
    /// True when every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// True when any flag of `other` is set in `self`.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
    /// Shorthand for `contains(SYN)`.
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    /// Shorthand for `contains(ACK)`.
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
    /// Shorthand for `contains(FIN)`.
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    /// Shorthand for `contains(RST)`.
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    /// Shorthand for `contains(PSH)`.
    pub const fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

/// Most SACK blocks that fit in the option space (RFC 2018 section 3:
/// at most 4, or 3 together with timestamps).
pub const MAX_SACK_BLOCKS: usize = 4;

/// The TCP options mtcp-rs understands. Unknown options are skipped by their
/// length on input (RFC 9293 MUST-68) and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2, RFC 9293 section 3.7.1); only valid on SYN.
    pub mss: Option<u16>,
    /// Window scale shift (kind 3, RFC 7323 section 2); only valid on SYN.
    pub window_scale: Option<u8>,
    /// SACK permitted (kind 4, RFC 2018); only valid on SYN.
    pub sack_permitted: bool,
    /// SACK blocks (kind 5, RFC 2018): `[left, right)` edges; the first
    /// `sack_count` entries are valid.
    pub sack_blocks: [(SeqNumber, SeqNumber); MAX_SACK_BLOCKS],
    /// Number of valid entries in `sack_blocks`.
    pub sack_count: u8,
    /// Timestamps (kind 8, RFC 7323 section 3): `(TSval, TSecr)`.
    pub timestamps: Option<(u32, u32)>,
}

impl TcpOptions {
    /// The valid SACK blocks.
    pub fn sack(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.sack_blocks[..usize::from(self.sack_count).min(MAX_SACK_BLOCKS)]
    }
}

/// An owned, validated TCP segment header with a borrowed payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpRepr<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first octet (or of the SYN).
    pub seq: SeqNumber,
    /// Acknowledgment number; meaningful only when `flags` has ACK.
    pub ack: SeqNumber,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field as sent (unscaled).
    pub window: u16,
    /// Urgent pointer; meaningful only when `flags` has URG.
    pub urgent: u16,
    /// Options present in the header.
    pub options: TcpOptions,
    /// Segment data.
    pub payload: &'a [u8],
}

impl TcpRepr<'_> {
    /// Sequence space the segment occupies: data plus one for SYN and FIN
    /// (RFC 9293 section 3.4, SEG.LEN).
    pub fn seq_len(&self) -> usize {
        self.payload.len() + usize::from(self.flags.syn()) + usize::from(self.flags.fin())
    }
}

/// Byte ranges of the fixed TCP header fields (RFC 9293 section 3.1, figure 1).
pub mod field {
    /// A byte range within the header.
    pub type Field = core::ops::Range<usize>;
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Field = 4..8;
    /// Acknowledgment number.
    pub const ACK_NUM: Field = 8..12;
    /// Data offset (high 4 bits) and reserved bits (low 4 bits).
    pub const DATA_OFFSET: usize = 12;
    /// Control bits CWR ECE URG ACK PSH RST SYN FIN.
    pub const FLAGS: usize = 13;
    /// Window.
    pub const WINDOW: Field = 14..16;
    /// Checksum.
    pub const CHECKSUM: Field = 16..18;
    /// Urgent pointer.
    pub const URGENT: Field = 18..20;
    /// Start of the options.
    pub const OPTIONS: usize = 20;
}

/// Length of the TCP header without options: data offset 5 (RFC 9293 section 3.1).
pub const HEADER_LEN: usize = 20;

/// Longest TCP header: data offset 15, i.e. 40 bytes of options (RFC 9293 section 3.1).
pub const MAX_HEADER_LEN: usize = 60;

/// Most option bytes a header can carry.
pub const MAX_OPTIONS_LEN: usize = MAX_HEADER_LEN - HEADER_LEN;

/// Largest window scale shift; a larger value received is treated as 14
/// (RFC 7323 section 2.3: "If a Window Scale option is received with a shift.cnt
/// value larger than 14, the TCP SHOULD log the error but MUST use 14").
pub const MAX_WINDOW_SCALE: u8 = 14;

/// TCP option kinds (IANA "TCP Option Kind Numbers").
pub mod option_kind {
    /// End of option list (RFC 9293 section 3.2).
    pub const EOL: u8 = 0;
    /// No-operation, used for alignment (RFC 9293 section 3.2).
    pub const NOP: u8 = 1;
    /// Maximum segment size (RFC 9293 section 3.7.1).
    pub const MSS: u8 = 2;
    /// Window scale (RFC 7323 section 2).
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted (RFC 2018 section 2).
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks (RFC 2018 section 3).
    pub const SACK: u8 = 5;
    /// Timestamps (RFC 7323 section 3).
    pub const TIMESTAMPS: u8 = 8;
}

/// One TCP option as read by [`TcpOptionIter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpOption<'a> {
    /// End of option list; the iterator stops after it (the rest is padding).
    EndOfList,
    /// No-operation.
    NoOperation,
    /// Maximum segment size.
    Mss(u16),
    /// Window scale shift exactly as received (not yet clamped to 14).
    WindowScale(u8),
    /// SACK permitted.
    SackPermitted,
    /// SACK blocks: the first `count` entries of `blocks` are valid.
    Sack {
        /// `[left, right)` edges.
        blocks: [(SeqNumber, SeqNumber); MAX_SACK_BLOCKS],
        /// Number of valid blocks (1 to 4).
        count: u8,
    },
    /// Timestamps `(TSval, TSecr)`.
    Timestamps(u32, u32),
    /// An option this crate does not know, skipped by its length
    /// (RFC 9293 MUST-6, MUST-68).
    Unknown {
        /// Option kind.
        kind: u8,
        /// Option data after the kind and length bytes.
        data: &'a [u8],
    },
}

/// Iterator over the options area of a TCP header.
///
/// Follows RFC 9293 section 3.2: options may begin on any byte (MUST-64); every
/// option except EOL and NOP carries a length byte that counts the kind and
/// length bytes (MUST-68), so unknown options are skipped by it (MUST-6). A
/// length below 2, a length running past the options area, or a wrong length
/// for a known kind is illegal (MUST-7): the iterator yields
/// `Err(Error::BadOption)` once and then stops.
#[derive(Debug, Clone)]
pub struct TcpOptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> TcpOptionIter<'a> {
    /// Iterate over `options`, the bytes between the fixed header and the data.
    pub fn new(options: &'a [u8]) -> Self {
        TcpOptionIter { rest: options }
    }
}

impl<'a> Iterator for TcpOptionIter<'a> {
    type Item = Result<TcpOption<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after_kind) = self.rest.split_first()?;
        match kind {
            option_kind::EOL => {
                self.rest = &[];
                return Some(Ok(TcpOption::EndOfList));
            }
            option_kind::NOP => {
                self.rest = after_kind;
                return Some(Ok(TcpOption::NoOperation));
            }
            _ => {}
        }
        let len = match after_kind.first() {
            Some(&l) if l >= 2 && usize::from(l) <= self.rest.len() => usize::from(l),
            _ => {
                self.rest = &[];
                return Some(Err(Error::BadOption));
            }
        };
        let data = &self.rest[2..len];
        self.rest = &self.rest[len..];
        let opt = match (kind, data.len()) {
            (option_kind::MSS, 2) => TcpOption::Mss(u16::from_be_bytes([data[0], data[1]])),
            (option_kind::WINDOW_SCALE, 1) => TcpOption::WindowScale(data[0]),
            (option_kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (option_kind::SACK, n) if n > 0 && n % 8 == 0 && n / 8 <= MAX_SACK_BLOCKS => {
                let mut blocks = [(SeqNumber(0), SeqNumber(0)); MAX_SACK_BLOCKS];
                for (slot, b) in blocks.iter_mut().zip(data.chunks_exact(8)) {
                    *slot = (
                        SeqNumber(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
                        SeqNumber(u32::from_be_bytes([b[4], b[5], b[6], b[7]])),
                    );
                }
                TcpOption::Sack {
                    blocks,
                    count: (n / 8) as u8,
                }
            }
            (option_kind::TIMESTAMPS, 8) => TcpOption::Timestamps(
                u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ),
            (
                option_kind::MSS
                | option_kind::WINDOW_SCALE
                | option_kind::SACK_PERMITTED
                | option_kind::SACK
                | option_kind::TIMESTAMPS,
                _,
            ) => {
                self.rest = &[];
                return Some(Err(Error::BadOption));
            }
            (kind, _) => TcpOption::Unknown { kind, data },
        };
        Some(Ok(opt))
    }
}

impl core::iter::FusedIterator for TcpOptionIter<'_> {}

/// A read/write view of a TCP segment in a byte buffer (RFC 9293 section 3.1).
///
/// The buffer must hold exactly one segment: header, options and data, as
/// delimited by the IPv4 total length. Accessors on a view built with
/// [`TcpPacket::new_unchecked`] may panic on a short buffer; build views of
/// untrusted bytes with [`TcpPacket::new_checked`], after which no accessor panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wrap a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wrap a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Check that the buffer holds the fixed header and all the options the
    /// data offset announces, and that the data offset is at least 5.
    ///
    /// # Errors
    /// [`Error::Truncated`] when the buffer is too short, [`Error::Malformed`]
    /// when the data offset is below 5 words.
    pub fn check_len(&self) -> Result<(), Error> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            Err(Error::Malformed)
        } else if hl > len {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// The underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole segment as bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn get_u16(&self, f: field::Field) -> u16 {
        let b = &self.buffer.as_ref()[f];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn get_u32(&self, f: field::Field) -> u32 {
        let b = &self.buffer.as_ref()[f];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.get_u16(field::SRC_PORT)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.get_u16(field::DST_PORT)
    }
    /// Sequence number.
    pub fn seq_number(&self) -> SeqNumber {
        SeqNumber(self.get_u32(field::SEQ_NUM))
    }
    /// Acknowledgment number.
    pub fn ack_number(&self) -> SeqNumber {
        SeqNumber(self.get_u32(field::ACK_NUM))
    }
    /// Data offset in 32-bit words.
    pub fn data_offset(&self) -> u8 {
        self.buffer.as_ref()[field::DATA_OFFSET] >> 4
    }
    /// Header length in bytes (data offset times 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.data_offset()) * 4
    }
    /// Control bits. The low bit of byte 12 (the former NS / AccECN AE bit)
    /// and the other reserved bits are not part of it; received reserved bits
    /// are ignored (RFC 9293 section 3.1, "Rsrvd").
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }
    /// Window field, unscaled.
    pub fn window_len(&self) -> u16 {
        self.get_u16(field::WINDOW)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.get_u16(field::CHECKSUM)
    }
    /// Urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        self.get_u16(field::URGENT)
    }
    /// Iterator over the options.
    pub fn options_iter(&self) -> TcpOptionIter<'_> {
        TcpOptionIter::new(&self.buffer.as_ref()[field::OPTIONS..self.header_len()])
    }
    /// Length of the data after the header.
    pub fn payload_len(&self) -> usize {
        self.buffer.as_ref().len() - self.header_len()
    }
    /// True when the checksum verifies over the pseudo-header and the whole buffer.
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        checksum::verify_tcp_ipv4(src, dst, self.buffer.as_ref())
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> TcpPacket<&'a T> {
    /// The options area, borrowed for the buffer's lifetime.
    pub fn options(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer.as_ref();
        &b[field::OPTIONS..self.header_len()]
    }
    /// The data, borrowed for the buffer's lifetime.
    pub fn payload(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer.as_ref();
        &b[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    fn set_u16(&mut self, f: field::Field, v: u16) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }
    fn set_u32(&mut self, f: field::Field, v: u32) {
        self.buffer.as_mut()[f].copy_from_slice(&v.to_be_bytes());
    }
    /// Set the source port.
    pub fn set_src_port(&mut self, v: u16) {
        self.set_u16(field::SRC_PORT, v);
    }
    /// Set the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        self.set_u16(field::DST_PORT, v);
    }
    /// Set the sequence number.
    pub fn set_seq_number(&mut self, v: SeqNumber) {
        self.set_u32(field::SEQ_NUM, v.0);
    }
    /// Set the acknowledgment number.
    pub fn set_ack_number(&mut self, v: SeqNumber) {
        self.set_u32(field::ACK_NUM, v.0);
    }
    /// Set the header length in bytes (rounded down to words) and zero the
    /// reserved bits, which must be zero in generated segments (RFC 9293 section 3.1).
    pub fn set_header_len(&mut self, len: usize) {
        let words = (len / 4).min(15) as u8;
        self.buffer.as_mut()[field::DATA_OFFSET] = words << 4;
    }
    /// Set the control bits.
    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }
    /// Set the window field.
    pub fn set_window_len(&mut self, v: u16) {
        self.set_u16(field::WINDOW, v);
    }
    /// Set the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        self.set_u16(field::CHECKSUM, v);
    }
    /// Set the urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        self.set_u16(field::URGENT, v);
    }
    /// The options area, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[field::OPTIONS..hl]
    }
    /// The data, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        &mut self.buffer.as_mut()[hl..]
    }
    /// Compute and write the checksum over the pseudo-header and the whole buffer.
    pub fn fill_checksum(&mut self, src: Ipv4Addr, dst: Ipv4Addr) {
        self.set_checksum(0);
        let c = checksum::tcp_ipv4(src, dst, self.buffer.as_ref());
        self.set_checksum(c);
    }
}

impl TcpOptions {
    /// Bytes the options take when emitted, padding included (a multiple of 4).
    ///
    /// Layout, as common stacks send it so that every field is word-aligned:
    /// MSS (4); SACK-permitted and timestamps together (12), or timestamps after
    /// two NOPs (12), or SACK-permitted after two NOPs (4); window scale after a NOP
    /// (4); SACK blocks after two NOPs (4 + 8 per block).
    pub fn emitted_len(&self) -> usize {
        let mut n = 0;
        if self.mss.is_some() {
            n += 4;
        }
        if self.timestamps.is_some() {
            n += 12;
        } else if self.sack_permitted {
            n += 4;
        }
        if self.window_scale.is_some() {
            n += 4;
        }
        let blocks = self.sack().len();
        if blocks > 0 {
            n += 4 + 8 * blocks;
        }
        n
    }

    /// How many SACK blocks still fit in the 40 option bytes next to the other
    /// options set here (at most 4; 3 next to timestamps, RFC 2018 section 3).
    /// The engine uses it to truncate its SACK list before emitting.
    pub fn sack_capacity(&self) -> usize {
        let others = TcpOptions {
            sack_count: 0,
            ..*self
        }
        .emitted_len();
        // Two NOPs, kind and length, then 8 bytes per block.
        (MAX_OPTIONS_LEN.saturating_sub(others + 4) / 8).min(MAX_SACK_BLOCKS)
    }

    /// Parse an options area, as found between the fixed header and the data.
    ///
    /// Unknown options are skipped (RFC 9293 MUST-6); a repeated option keeps
    /// its last value. A window scale above 14 is recorded as 14 (RFC 7323
    /// section 2.3). Options that RFCs allow only on SYN segments (MSS, window
    /// scale, SACK-permitted) are recorded whatever the flags: the engine decides
    /// whether to honour them.
    ///
    /// # Errors
    /// [`Error::BadOption`] for an illegal option length (RFC 9293 MUST-7).
    pub fn parse(options: &[u8]) -> Result<TcpOptions, Error> {
        let mut out = TcpOptions::default();
        for opt in TcpOptionIter::new(options) {
            match opt? {
                TcpOption::EndOfList | TcpOption::NoOperation | TcpOption::Unknown { .. } => {}
                TcpOption::Mss(m) => out.mss = Some(m),
                TcpOption::WindowScale(s) => out.window_scale = Some(s.min(MAX_WINDOW_SCALE)),
                TcpOption::SackPermitted => out.sack_permitted = true,
                TcpOption::Sack { blocks, count } => {
                    out.sack_blocks = blocks;
                    out.sack_count = count;
                }
                TcpOption::Timestamps(v, e) => out.timestamps = Some((v, e)),
            }
        }
        Ok(out)
    }

    /// Write the options into `buf` in the layout [`emitted_len`](Self::emitted_len)
    /// describes and return the bytes written. Alignment comes from NOPs placed
    /// before options, so the list always ends on a 32-bit boundary and no
    /// trailing padding is needed (were it needed, RFC 9293 MUST-69 would
    /// require zeros). Options are emitted whatever the flags; which ones a
    /// segment carries (MSS, window scale, SACK-permitted only on SYN) is the
    /// engine's decision.
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] when they exceed 40 bytes,
    /// [`Error::BufferTooSmall`] when `buf` is shorter than they are.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let len = self.emitted_len();
        if len > MAX_OPTIONS_LEN {
            return Err(Error::Unrepresentable);
        }
        let buf = buf.get_mut(..len).ok_or(Error::BufferTooSmall)?;
        let mut w = Writer { buf, pos: 0 };
        if let Some(mss) = self.mss {
            w.put(&[option_kind::MSS, 4]);
            w.put(&mss.to_be_bytes());
        }
        if let Some((val, ecr)) = self.timestamps {
            if self.sack_permitted {
                w.put(&[option_kind::SACK_PERMITTED, 2]);
            } else {
                w.put(&[option_kind::NOP, option_kind::NOP]);
            }
            w.put(&[option_kind::TIMESTAMPS, 10]);
            w.put(&val.to_be_bytes());
            w.put(&ecr.to_be_bytes());
        } else if self.sack_permitted {
            w.put(&[
                option_kind::NOP,
                option_kind::NOP,
                option_kind::SACK_PERMITTED,
                2,
            ]);
        }
        if let Some(shift) = self.window_scale {
            w.put(&[option_kind::NOP, option_kind::WINDOW_SCALE, 3, shift]);
        }
        let blocks = self.sack();
        if !blocks.is_empty() {
            // At most 4 blocks, so the length is at most 34.
            let olen = (2 + 8 * blocks.len()) as u8;
            w.put(&[option_kind::NOP, option_kind::NOP, option_kind::SACK, olen]);
            for (l, r) in blocks {
                w.put(&l.0.to_be_bytes());
                w.put(&r.0.to_be_bytes());
            }
        }
        debug_assert_eq!(w.pos, len);
        Ok(len)
    }
}

/// A cursor over a buffer whose length was checked beforehand.
struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
}

impl<'a> TcpRepr<'a> {
    /// Parse a checked view. With `verify_checksum` the checksum is verified
    /// over the IPv4 pseudo-header built from `src` and `dst`; pass `false`
    /// only when the NIC has verified it already.
    ///
    /// Reserved header bits are ignored. Options are parsed as
    /// [`TcpOptions::parse`] describes (RFC 9293 MUST-4..7, MUST-64, MUST-68);
    /// a window scale above 14 is recorded as 14 (RFC 7323 section 2.3).
    ///
    /// # Errors
    /// [`Error::BadChecksum`], or [`Error::BadOption`] for an illegal option
    /// length (RFC 9293 MUST-7). A view built with `new_unchecked` over a buffer
    /// that fails [`TcpPacket::check_len`] gives that error.
    pub fn parse(
        packet: &TcpPacket<&'a [u8]>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>, Error> {
        packet.check_len()?;
        if verify_checksum && !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq: packet.seq_number(),
            ack: packet.ack_number(),
            flags: packet.flags(),
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options: TcpOptions::parse(packet.options())?,
            payload: packet.payload(),
        })
    }

    /// [`TcpPacket::new_checked`] then [`TcpRepr::parse`]: `bytes` is exactly the
    /// TCP segment (the IPv4 payload).
    pub fn parse_bytes(
        bytes: &'a [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        verify_checksum: bool,
    ) -> Result<TcpRepr<'a>, Error> {
        Self::parse(&TcpPacket::new_checked(bytes)?, src, dst, verify_checksum)
    }
}

impl TcpRepr<'_> {
    /// Header length in bytes when emitted: 20 plus the options, padded to a
    /// multiple of 4. Above 60 when the options do not fit, in which case
    /// [`emit`](Self::emit) fails with [`Error::Unrepresentable`].
    pub fn header_len(&self) -> usize {
        HEADER_LEN + self.options.emitted_len()
    }

    /// Bytes [`emit`](Self::emit) writes: header plus payload.
    pub fn buffer_len(&self) -> usize {
        self.header_len() + self.payload.len()
    }

    /// Write the segment (header, options, payload and checksum over the IPv4
    /// pseudo-header) into the start of `buf` and return its length.
    /// Reserved bits are written as zero (RFC 9293 section 3.1).
    ///
    /// # Errors
    /// [`Error::Unrepresentable`] when the options exceed 40 bytes or the
    /// segment exceeds 65535 bytes; [`Error::BufferTooSmall`] when `buf` is
    /// shorter than [`buffer_len`](Self::buffer_len). Nothing is guaranteed
    /// about the contents of `buf` after an error.
    pub fn emit(&self, buf: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<usize, Error> {
        let hl = self.header_len();
        let total = hl + self.payload.len();
        if hl > MAX_HEADER_LEN || total > usize::from(u16::MAX) {
            return Err(Error::Unrepresentable);
        }
        let buf = buf.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        let mut p = TcpPacket::new_unchecked(buf);
        p.set_src_port(self.src_port);
        p.set_dst_port(self.dst_port);
        p.set_seq_number(self.seq);
        p.set_ack_number(self.ack);
        p.set_header_len(hl);
        p.set_flags(self.flags);
        p.set_window_len(self.window);
        p.set_urgent_at(self.urgent);
        self.options.emit(p.options_mut())?;
        p.payload_mut().copy_from_slice(self.payload);
        p.fill_checksum(src, dst);
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 168, 1, 10);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

    /// A Linux-style SYN: MSS 1460, SACK-permitted, timestamps, NOP, WS 7,
    /// 192.168.1.10:50000 -> 10.0.0.1:80. The checksum 0x5127 was computed
    /// outside this crate (a 16-bit-word one's-complement sum over the
    /// pseudo-header and segment).
    const SYN_BYTES: [u8; 40] = [
        0xc3, 0x50, 0x00, 0x50, // ports 50000 -> 80
        0x12, 0x34, 0x56, 0x78, // seq
        0x00, 0x00, 0x00, 0x00, // ack
        0xa0, 0x02, 0xfa, 0xf0, // doff 10, SYN, window 64240
        0x51, 0x27, 0x00, 0x00, // checksum, urgent
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, 0x08, 0x0a, // SACK-permitted, TS kind/len
        0x00, 0x00, 0x03, 0xe8, // TSval 1000
        0x00, 0x00, 0x00, 0x00, // TSecr 0
        0x01, 0x03, 0x03, 0x07, // NOP, WS 7
    ];

    fn syn_bytes() -> [u8; 40] {
        SYN_BYTES
    }

    fn syn_repr() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 50000,
            dst_port: 80,
            seq: SeqNumber(0x1234_5678),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: 64240,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((1000, 0)),
                ..TcpOptions::default()
            },
            payload: &[],
        }
    }

    #[test]
    fn parse_known_syn() {
        let b = syn_bytes();
        let r = TcpRepr::parse_bytes(&b, SRC, DST, true).unwrap();
        assert_eq!(r, syn_repr());
        assert_eq!(r.seq_len(), 1);
    }

    #[test]
    fn emit_known_syn_is_byte_exact() {
        let r = syn_repr();
        assert_eq!(r.header_len(), 40);
        let mut buf = [0u8; 64];
        let n = r.emit(&mut buf, SRC, DST).unwrap();
        assert_eq!(n, 40);
        assert_eq!(buf[..n], syn_bytes());
    }

    #[test]
    fn view_accessors() {
        let b = syn_bytes();
        let p = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.src_port(), 50000);
        assert_eq!(p.dst_port(), 80);
        assert_eq!(p.data_offset(), 10);
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.window_len(), 64240);
        assert!(p.flags().syn() && !p.flags().ack());
        assert_eq!(p.payload(), &[] as &[u8]);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(SRC, Ipv4Addr::new(10, 0, 0, 2)));
        let opts: Vec<_> = p.options_iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(
            opts,
            vec![
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps(1000, 0),
                TcpOption::NoOperation,
                TcpOption::WindowScale(7),
            ]
        );
    }

    #[test]
    fn round_trip_data_segment_with_sack() {
        let payload = b"hello, world";
        let mut opts = TcpOptions {
            timestamps: Some((7, 9)),
            sack_count: 3,
            ..TcpOptions::default()
        };
        opts.sack_blocks[0] = (SeqNumber(100), SeqNumber(200));
        opts.sack_blocks[1] = (SeqNumber(300), SeqNumber(400));
        opts.sack_blocks[2] = (SeqNumber(u32::MAX - 5), SeqNumber(10));
        let r = TcpRepr {
            src_port: 1,
            dst_port: 65535,
            seq: SeqNumber(u32::MAX),
            ack: SeqNumber(42),
            flags: TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN,
            window: 0,
            urgent: 0,
            options: opts,
            payload,
        };
        assert_eq!(r.header_len(), 60);
        let mut buf = [0u8; 128];
        let n = r.emit(&mut buf, SRC, DST).unwrap();
        assert_eq!(n, 60 + payload.len());
        let back = TcpRepr::parse_bytes(&buf[..n], SRC, DST, true).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.seq_len(), payload.len() + 1);
    }

    #[test]
    fn emit_errors() {
        let mut r = syn_repr();
        let mut small = [0u8; 39];
        assert_eq!(r.emit(&mut small, SRC, DST), Err(Error::BufferTooSmall));
        // MSS + TS + 4 SACK blocks = 4 + 12 + 36 > 40.
        r.options.sack_count = 4;
        assert_eq!(r.header_len(), 20 + 4 + 12 + 4 + 36);
        let mut big = [0u8; 128];
        assert_eq!(r.emit(&mut big, SRC, DST), Err(Error::Unrepresentable));
        // An out-of-range sack_count is clamped to 4, never panics.
        r.options = TcpOptions {
            sack_count: 200,
            ..TcpOptions::default()
        };
        assert_eq!(r.emit(&mut big, SRC, DST), Ok(20 + 36));
        let huge = vec![0u8; 70_000];
        r.payload = &huge;
        let mut out = vec![0u8; 80_000];
        assert_eq!(r.emit(&mut out, SRC, DST), Err(Error::Unrepresentable));
    }

    #[test]
    fn truncated_and_bad_offset() {
        let b = syn_bytes();
        for n in 0..40 {
            assert_eq!(
                TcpRepr::parse_bytes(&b[..n], SRC, DST, false),
                Err(Error::Truncated),
                "len {n}"
            );
        }
        for doff in 0..5u8 {
            let mut m = b;
            m[12] = doff << 4;
            assert_eq!(
                TcpPacket::new_checked(&m[..]).err(),
                Some(Error::Malformed),
                "doff {doff}"
            );
        }
        let mut m = b;
        m[12] = 0xf0; // 60-byte header in a 40-byte buffer
        assert_eq!(TcpPacket::new_checked(&m[..]).err(), Some(Error::Truncated));
        // An unchecked view given to parse is checked there.
        assert_eq!(
            TcpRepr::parse(&TcpPacket::new_unchecked(&m[..]), SRC, DST, false),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn checksum_detected() {
        let mut b = syn_bytes();
        b[30] ^= 0x01;
        assert_eq!(
            TcpRepr::parse_bytes(&b, SRC, DST, true),
            Err(Error::BadChecksum)
        );
        assert!(TcpRepr::parse_bytes(&b, SRC, DST, false).is_ok());
    }

    /// `(options area, expected)` rows for the option parser.
    #[test]
    fn option_table() {
        let bad = Err(Error::BadOption);
        let rows: &[(&[u8], Result<TcpOptions, Error>)] = &[
            (&[], Ok(TcpOptions::default())),
            (&[1, 1, 1, 1], Ok(TcpOptions::default())),
            // EOL ends the list: whatever follows is padding (MUST-69 says zero,
            // but garbage after EOL is not interpreted).
            (&[0, 2, 4, 5, 0xb4], Ok(TcpOptions::default())),
            // MSS at an odd offset (MUST-64).
            (
                &[1, 2, 4, 0x05, 0xb4, 0, 0, 0],
                Ok(TcpOptions {
                    mss: Some(1460),
                    ..TcpOptions::default()
                }),
            ),
            // Unknown kind 30 (MPTCP), length 6, skipped (MUST-6, MUST-68).
            (
                &[30, 6, 1, 2, 3, 4, 3, 3, 2, 0],
                Ok(TcpOptions {
                    window_scale: Some(2),
                    ..TcpOptions::default()
                }),
            ),
            // Window scale 15 clamped to 14 (RFC 7323 section 2.3).
            (
                &[3, 3, 15, 0],
                Ok(TcpOptions {
                    window_scale: Some(14),
                    ..TcpOptions::default()
                }),
            ),
            (
                &[3, 3, 255, 0],
                Ok(TcpOptions {
                    window_scale: Some(14),
                    ..TcpOptions::default()
                }),
            ),
            // Illegal lengths (MUST-7).
            (&[30, 0, 0, 0], bad),
            (&[30, 1, 0, 0], bad),
            (&[30, 5, 0, 0], bad),
            (&[2], bad),
            (&[2, 4, 5], bad),
            (&[2, 3, 5, 0], bad),
            (&[3, 4, 1, 0], bad),
            (&[4, 3, 0, 0], bad),
            (&[8, 8, 0, 0, 0, 0, 0, 0], bad),
            (&[5, 2, 0, 0], bad),
            (&[5, 6, 0, 0, 0, 0], bad),
        ];
        for (i, (bytes, want)) in rows.iter().enumerate() {
            assert_eq!(&TcpOptions::parse(bytes), want, "row {i}: {bytes:?}");
        }
    }

    #[test]
    fn option_iter_stops_after_error() {
        let mut it = TcpOptionIter::new(&[1, 30, 0, 1, 1]);
        assert_eq!(it.next(), Some(Ok(TcpOption::NoOperation)));
        assert_eq!(it.next(), Some(Err(Error::BadOption)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn sack_capacity_table() {
        let ts = Some((1, 2));
        let rows = [
            (TcpOptions::default(), 4),
            (
                TcpOptions {
                    timestamps: ts,
                    ..TcpOptions::default()
                },
                3,
            ),
            (
                TcpOptions {
                    timestamps: ts,
                    sack_count: 3,
                    ..TcpOptions::default()
                },
                3,
            ),
            (
                TcpOptions {
                    mss: Some(1460),
                    timestamps: ts,
                    window_scale: Some(7),
                    sack_permitted: true,
                    ..TcpOptions::default()
                },
                2,
            ),
        ];
        for (o, want) in rows {
            assert_eq!(o.sack_capacity(), want, "{o:?}");
            let filled = TcpOptions {
                sack_count: want as u8,
                ..o
            };
            assert!(filled.emitted_len() <= MAX_OPTIONS_LEN);
            if want < MAX_SACK_BLOCKS {
                let over = TcpOptions {
                    sack_count: want as u8 + 1,
                    ..o
                };
                assert!(over.emitted_len() > MAX_OPTIONS_LEN);
            }
        }
    }

    #[test]
    fn emitted_layouts_are_aligned() {
        for mss in [None, Some(536)] {
            for ws in [None, Some(0)] {
                for sp in [false, true] {
                    for ts in [None, Some((1, 2))] {
                        for blocks in 0..=4u8 {
                            let o = TcpOptions {
                                mss,
                                window_scale: ws,
                                sack_permitted: sp,
                                timestamps: ts,
                                sack_count: blocks,
                                ..TcpOptions::default()
                            };
                            let len = o.emitted_len();
                            assert_eq!(len % 4, 0);
                            let mut buf = [0u8; 40];
                            match o.emit(&mut buf) {
                                Ok(n) => {
                                    assert_eq!(n, len);
                                    assert_eq!(TcpOptions::parse(&buf[..n]), Ok(o));
                                }
                                Err(e) => {
                                    assert_eq!(e, Error::Unrepresentable);
                                    assert!(len > 40);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
