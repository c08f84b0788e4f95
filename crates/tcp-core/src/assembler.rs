//! Out-of-order reassembly bookkeeping (RFC 9293 section 3.10.7.4: segments
//! beyond RCV.NXT "should be held for later processing"), and the SACK blocks
//! that describe it (RFC 2018).
//!
//! The [`Assembler`] stores no data. The bytes of an out-of-order segment are
//! written straight into the connection's [`RecvBuffer`](crate::buffer::RecvBuffer)
//! at their offset beyond RCV.NXT ([`write_at`](crate::buffer::RecvBuffer::write_at));
//! the assembler only remembers which byte ranges beyond RCV.NXT are present.
//! Its range table is allocated, with room for `max_ranges` ranges, when the
//! first out-of-order segment arrives, never grows beyond that, and is
//! released once no out-of-order data remains, so the many connections that
//! see no reordering or loss keep none.
//!
//! It is bounded two ways, so a peer cannot make it use unbounded memory or
//! time: at most `max_ranges` disjoint ranges (holes + 1) and at most
//! `max_bytes` bytes held beyond RCV.NXT. A segment that would exceed either
//! bound is refused with [`AssemblerFull`] and leaves the state unchanged:
//! the caller drops the segment (the peer retransmits it later) and still
//! sends the duplicate ACK that RFC 9293 section 3.10.7.4 and RFC 5681
//! section 4.2 call for. In-order data (offset 0) is never refused.
//!
//! Offsets are in bytes from RCV.NXT. The engine's receive path is:
//!
//! ```text
//! let len = clamp(segment to the receive window);       // caller's job
//! assembler.insert(offset, len)?;                       // Err: drop, ACK
//! rx.write_at(offset, &payload[..len]);
//! let ready = assembler.pop_contiguous();               // bytes now in order
//! rx.commit(ready); rcv_nxt += ready;
//! assembler.sack_blocks(rcv_nxt, &mut blocks);          // for the ACK
//! ```
//!
//! Refinement of the contract in TCP_API.md: since the data lives in the
//! receive buffer, [`Assembler::insert`] takes `(offset, len)` instead of
//! `(offset, data)`, and [`Assembler::pop_contiguous`] takes no argument and
//! returns the number of bytes that became in-order.

use wire::SeqNumber;

/// A segment was refused: holding it would exceed the byte or range bound.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("out-of-order queue full")]
pub struct AssemblerFull;

/// One present range `[start, end)` of offsets beyond RCV.NXT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Range {
    start: usize,
    end: usize,
    /// When the range last received data (larger is more recent), for the
    /// SACK block order of RFC 2018 section 4.
    stamp: u64,
}

/// Out-of-order byte ranges beyond RCV.NXT.
#[derive(Clone, Debug)]
pub struct Assembler {
    /// Disjoint, non-adjacent ranges sorted by `start`, all with `start > 0`
    /// (before [`pop_contiguous`](Self::pop_contiguous) is called, bytes at
    /// offset 0 are counted in `ready` instead). Capacity 0 until the first
    /// out-of-order segment, then `max_ranges`, never exceeded, kept until
    /// [`clear`](Self::clear) (when the connection gives its receive buffer
    /// back): a connection that sees reordering allocates the table once,
    /// not once per episode, and one that never does allocates nothing.
    ranges: Vec<Range>,
    /// Bytes contiguous from offset 0, not yet popped.
    ready: usize,
    /// Sum of the range lengths.
    held: usize,
    /// The bounds, stored in 32 bits (a TCP window is below 2^30 bytes) to
    /// keep connections small.
    max_bytes: u32,
    max_ranges: u32,
    clock: u64,
}

impl Assembler {
    /// An assembler holding at most `max_ranges` disjoint ranges and at most
    /// `max_bytes` out-of-order bytes. `max_ranges == 0` or `max_bytes == 0`
    /// refuses all out-of-order data.
    pub fn new(max_bytes: usize, max_ranges: usize) -> Assembler {
        Assembler {
            ranges: Vec::new(),
            ready: 0,
            held: 0,
            max_bytes: u32::try_from(max_bytes).unwrap_or(u32::MAX),
            max_ranges: u32::try_from(max_ranges).unwrap_or(u32::MAX),
            clock: 0,
        }
    }

    /// Records that bytes `[offset, offset + len)` beyond RCV.NXT arrived.
    ///
    /// Overlaps with ranges already present are fine (retransmissions,
    /// repacketization). Data at offset 0, or touching the bytes contiguous
    /// from 0, is always accepted. Otherwise, if the result would need more
    /// than `max_ranges` ranges or hold more than `max_bytes` bytes, nothing
    /// changes and `AssemblerFull` is returned.
    pub fn insert(&mut self, offset: usize, len: usize) -> Result<(), AssemblerFull> {
        if len == 0 {
            return Ok(());
        }
        let start = offset;
        let end = offset.saturating_add(len);
        self.clock += 1;

        if start <= self.ready {
            // Extends the in-order prefix, swallowing any ranges it reaches.
            let mut prefix = self.ready.max(end);
            let swallowed = self.ranges.iter().take_while(|r| r.start <= prefix).count();
            for r in self.ranges.drain(..swallowed) {
                prefix = prefix.max(r.end);
                self.held -= r.end - r.start;
            }
            self.ready = prefix;
            return Ok(());
        }

        // Ranges that overlap or touch [start, end) merge with it: indices
        // first..last (exclusive), found by scanning the sorted list.
        let first = self.ranges.partition_point(|r| r.end < start);
        let last = first + self.ranges[first..].partition_point(|r| r.start <= end);
        let (mut new_start, mut new_end) = (start, end);
        let mut merged_len = 0;
        if first < last {
            new_start = new_start.min(self.ranges[first].start);
            new_end = new_end.max(self.ranges[last - 1].end);
            merged_len = self.ranges[first..last]
                .iter()
                .map(|r| r.end - r.start)
                .sum();
        }
        let new_held = self.held - merged_len + (new_end - new_start);
        let new_count = self.ranges.len() - (last - first) + 1;
        if new_held > self.max_bytes() || new_count > self.max_ranges() {
            return Err(AssemblerFull);
        }
        let range = Range {
            start: new_start,
            end: new_end,
            stamp: self.clock,
        };
        if first < last {
            self.ranges[first] = range;
            self.ranges.drain(first + 1..last);
        } else {
            // new_count <= max_ranges == capacity: no reallocation.
            if self.ranges.capacity() == 0 {
                self.ranges.reserve_exact(self.max_ranges());
            }
            self.ranges.insert(first, range);
        }
        self.held = new_held;
        Ok(())
    }

    /// Takes the bytes that are now contiguous from RCV.NXT: returns how many
    /// (possibly 0) and re-bases the remaining ranges on RCV.NXT + that
    /// amount. The caller commits that many bytes in the receive buffer and
    /// advances RCV.NXT by it.
    pub fn pop_contiguous(&mut self) -> usize {
        let n = self.ready;
        if n > 0 {
            for r in &mut self.ranges {
                r.start -= n;
                r.end -= n;
            }
            self.ready = 0;
        }
        n
    }

    /// Writes the SACK blocks describing the ranges into `out`, most recently
    /// changed range first (RFC 2018 section 4: "The first SACK block ...
    /// MUST specify the contiguous block of data containing the segment
    /// which triggered this ACK", then the most recently reported ones);
    /// returns how many were written (at most `out.len()`; a TCP header has
    /// room for 4, or 3 with timestamps). Each block is
    /// `(left edge, right edge)`: the first byte and the byte after the last.
    /// `rcv_nxt` is the RCV.NXT the offsets are relative to: the new one
    /// after [`pop_contiguous`](Self::pop_contiguous) (call that first).
    pub fn sack_blocks(&self, rcv_nxt: SeqNumber, out: &mut [(SeqNumber, SeqNumber)]) -> usize {
        let mut written = 0;
        // Selection by decreasing stamp; ranges and out are both small.
        let mut below = u64::MAX;
        while written < out.len() {
            let Some(r) = self
                .ranges
                .iter()
                .filter(|r| r.stamp < below)
                .max_by_key(|r| r.stamp)
            else {
                break;
            };
            out[written] = (rcv_nxt + r.start, rcv_nxt + r.end);
            written += 1;
            below = r.stamp;
        }
        written
    }

    /// Whether no out-of-order data is held (and nothing awaits popping).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.ready == 0
    }

    /// Number of disjoint out-of-order ranges held.
    pub fn range_count(&self) -> usize {
        self.ranges.len()
    }

    /// Out-of-order bytes held (not counting bytes awaiting
    /// [`pop_contiguous`](Self::pop_contiguous)).
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// End offset of the highest range (0 if none): everything the peer sent
    /// up to there is known, in order or not.
    pub fn highest_offset(&self) -> usize {
        self.ranges.last().map_or(self.ready, |r| r.end)
    }

    /// The bound on held bytes.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes as usize
    }

    /// The bound on the number of ranges.
    pub fn max_ranges(&self) -> usize {
        self.max_ranges as usize
    }

    /// Forgets everything and frees the range table (on reset or abort, and
    /// when the connection's receive buffer goes back to the pool).
    pub fn clear(&mut self) {
        self.ranges = Vec::new();
        self.ready = 0;
        self.held = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn blocks(a: &Assembler, rcv_nxt: u32) -> Vec<(u32, u32)> {
        let mut out = [(s(0), s(0)); 8];
        let n = a.sack_blocks(s(rcv_nxt), &mut out);
        out[..n].iter().map(|(l, r)| (l.0, r.0)).collect()
    }

    #[test]
    fn in_order_data_passes_through() {
        let mut a = Assembler::new(100, 4);
        a.insert(0, 10).unwrap();
        assert_eq!(a.pop_contiguous(), 10);
        assert_eq!(a.pop_contiguous(), 0);
        assert!(a.is_empty());
    }

    #[test]
    fn range_table_is_allocated_once_and_kept_until_clear() {
        let mut a = Assembler::new(100, 4);
        a.insert(0, 10).unwrap();
        assert_eq!(a.ranges.capacity(), 0, "in-order data needs no table");
        assert_eq!(a.pop_contiguous(), 10);
        a.insert(20, 5).unwrap();
        assert_eq!(a.ranges.capacity(), 4);
        let table = a.ranges.as_ptr();
        a.insert(0, 20).unwrap();
        assert_eq!(a.pop_contiguous(), 25);
        assert!(a.is_empty());
        // The next reordering episode reuses the same table.
        a.insert(5, 1).unwrap();
        assert_eq!(a.ranges.as_ptr(), table, "no reallocation per episode");
        assert_eq!(a.ranges.capacity(), 4);
        a.clear();
        assert_eq!(a.ranges.capacity(), 0, "freed with the receive buffer");
    }

    #[test]
    fn hole_fill_releases_everything_behind_it() {
        let mut a = Assembler::new(100, 4);
        a.insert(10, 5).unwrap();
        a.insert(20, 5).unwrap();
        assert_eq!(a.pop_contiguous(), 0);
        assert_eq!(a.range_count(), 2);
        assert_eq!(a.held_bytes(), 10);
        a.insert(0, 10).unwrap();
        assert_eq!(a.pop_contiguous(), 15);
        // The remaining range is re-based on the new RCV.NXT.
        assert_eq!(blocks(&a, 1015), vec![(1020, 1025)]);
        a.insert(0, 5).unwrap();
        assert_eq!(a.pop_contiguous(), 10);
        assert!(a.is_empty());
        assert_eq!(a.held_bytes(), 0);
    }

    #[test]
    fn overlapping_and_adjacent_segments_merge() {
        let mut a = Assembler::new(100, 4);
        a.insert(10, 5).unwrap();
        a.insert(15, 5).unwrap(); // adjacent
        a.insert(12, 2).unwrap(); // inside
        a.insert(25, 5).unwrap();
        a.insert(18, 8).unwrap(); // bridges both
        assert_eq!(a.range_count(), 1);
        assert_eq!(a.held_bytes(), 20);
        assert_eq!(blocks(&a, 0), vec![(10, 30)]);
    }

    #[test]
    fn sack_blocks_most_recent_first_rfc2018() {
        // RFC 2018 section 4 example flavour: blocks reported newest first.
        let mut a = Assembler::new(10_000, 8);
        a.insert(1000, 500).unwrap();
        a.insert(3000, 500).unwrap();
        a.insert(2000, 500).unwrap();
        assert_eq!(
            blocks(&a, 5000),
            vec![(7000, 7500), (8000, 8500), (6000, 6500)]
        );
        // Extending an old range makes it the most recent.
        a.insert(1500, 100).unwrap();
        assert_eq!(
            blocks(&a, 5000),
            vec![(6000, 6600), (7000, 7500), (8000, 8500)]
        );
        // Room for only 2 blocks: the two newest.
        let mut out = [(s(0), s(0)); 2];
        assert_eq!(a.sack_blocks(s(5000), &mut out), 2);
        assert_eq!(out, [(s(6000), s(6600)), (s(7000), s(7500))]);
    }

    #[test]
    fn sack_blocks_wrap_sequence_space() {
        let mut a = Assembler::new(100, 4);
        a.insert(10, 10).unwrap();
        assert_eq!(blocks(&a, u32::MAX - 4), vec![(5, 15)]);
    }

    #[test]
    fn full_by_ranges_refuses_without_change() {
        let mut a = Assembler::new(1000, 2);
        a.insert(10, 1).unwrap();
        a.insert(20, 1).unwrap();
        assert_eq!(a.insert(30, 1), Err(AssemblerFull));
        assert_eq!(a.insert(5, 1), Err(AssemblerFull));
        assert_eq!(blocks(&a, 0), vec![(20, 21), (10, 11)]);
        // Merging into an existing range needs no new one.
        a.insert(11, 5).unwrap();
        a.insert(21, 5).unwrap();
        // In-order data is always accepted.
        a.insert(0, 3).unwrap();
        assert_eq!(a.pop_contiguous(), 3);
    }

    #[test]
    fn full_by_bytes_refuses_without_change() {
        let mut a = Assembler::new(10, 8);
        a.insert(10, 8).unwrap();
        assert_eq!(a.insert(30, 3), Err(AssemblerFull));
        // Overlap counts only the new bytes: 8 held + 2 new = 10.
        a.insert(12, 8).unwrap();
        assert_eq!(a.held_bytes(), 10);
        assert_eq!(a.insert(19, 2), Err(AssemblerFull));
        assert_eq!(blocks(&a, 0), vec![(10, 20)]);
    }

    #[test]
    fn zero_bounds_refuse_all_out_of_order_data() {
        let mut a = Assembler::new(0, 0);
        assert_eq!(a.insert(1, 1), Err(AssemblerFull));
        a.insert(0, 5).unwrap();
        a.insert(3, 5).unwrap();
        assert_eq!(a.pop_contiguous(), 8);
        assert_eq!(a.insert(usize::MAX, usize::MAX), Err(AssemblerFull));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(usize, usize),
        Pop,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0usize..64, 0usize..16).prop_map(|(o, l)| Op::Insert(o, l)),
            1 => Just(Op::Pop),
        ]
    }

    /// Ranges of set bits in `bits[from..]`, as `(start, end)` offsets.
    fn runs(bits: &[bool]) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < bits.len() {
            if bits[i] {
                let start = i;
                while i < bits.len() && bits[i] {
                    i += 1;
                }
                out.push((start, i));
            } else {
                i += 1;
            }
        }
        out
    }

    proptest! {
        /// Against a bitmap of received offsets: acceptance decisions, popped
        /// counts, ranges and byte counts agree after every step.
        #[test]
        fn matches_bitmap_model(max_bytes in 0usize..48, max_ranges in 0usize..6,
                                ops in proptest::collection::vec(op(), 0..80)) {
            let mut a = Assembler::new(max_bytes, max_ranges);
            let mut bits = vec![false; 128];
            for op in ops {
                match op {
                    Op::Insert(o, l) => {
                        let mut next = bits.clone();
                        for b in &mut next[o..o + l] { *b = true; }
                        let prefix = next.iter().take_while(|b| **b).count();
                        let rest = runs(&next[prefix..]);
                        let held: usize = rest.iter().map(|(s, e)| e - s).sum();
                        let ok = l == 0 || o <= bits.iter().take_while(|b| **b).count()
                            || (rest.len() <= max_ranges && held <= max_bytes);
                        let got = a.insert(o, l);
                        prop_assert_eq!(got.is_ok(), ok, "insert({}, {})", o, l);
                        if ok { bits = next; }
                    }
                    Op::Pop => {
                        let prefix = bits.iter().take_while(|b| **b).count();
                        prop_assert_eq!(a.pop_contiguous(), prefix);
                        bits.drain(..prefix);
                        bits.resize(128, false);
                    }
                }
                let prefix = bits.iter().take_while(|b| **b).count();
                let rest: Vec<(usize, usize)> = runs(&bits[prefix..])
                    .into_iter().map(|(s, e)| (s + prefix, e + prefix)).collect();
                prop_assert_eq!(a.range_count(), rest.len());
                prop_assert_eq!(a.held_bytes(), rest.iter().map(|(s, e)| e - s).sum::<usize>());
                prop_assert!(a.range_count() <= max_ranges);
                prop_assert!(a.held_bytes() <= max_bytes);
                let mut got = blocks(&a, 0);
                got.sort();
                let want: Vec<(u32, u32)> = rest.iter().map(|&(s, e)| (s as u32, e as u32)).collect();
                prop_assert_eq!(got, want);
                let cap = a.ranges.capacity();
                prop_assert!(cap == 0 || cap == max_ranges, "capacity {}", cap);
            }
        }
    }
}
