//! Fixed-capacity byte rings for a connection's send and receive data.
//!
//! Both buffers have a fixed capacity (the configured buffer size, which
//! bounds the window) but allocate their storage lazily: a buffer starts
//! with no storage (or with reused storage from the endpoint's pool) and
//! grows, by at least doubling, only when data needs the room, up to the
//! capacity. So a connection that exchanges 64 bytes never allocates or
//! zeroes 64 KiB, and a buffer allocates at most about
//! `log2(capacity / MIN_STORAGE) + 1` times in its life, never per segment
//! once it has reached the size its traffic needs. No operation panics;
//! out-of-range arguments are clamped and the return value says how much
//! was done.
//!
//! * [`SendBuffer`] holds the bytes from SND.UNA onwards: sent but
//!   unacknowledged data followed by data not yet sent (RFC 9293 section
//!   3.3.1). The engine reads segments out of it at offsets from SND.UNA and
//!   drops bytes from the front when they are acknowledged.
//! * [`RecvBuffer`] holds bytes that are in order and readable by the
//!   application, and, in the free space behind them, out-of-order bytes at
//!   their offset from RCV.NXT. Its free space is the receive window
//!   (RFC 9293 section 3.8.6.2). Out-of-order bytes become readable with
//!   [`RecvBuffer::commit`] once the [`crate::assembler::Assembler`] says they
//!   are contiguous.

/// Copies `data` into the ring `buf` starting at physical position `pos`,
/// wrapping around the end. The caller guarantees `data.len() <= buf.len()`.
fn ring_write(buf: &mut [u8], pos: usize, data: &[u8]) {
    let first = data.len().min(buf.len() - pos);
    buf[pos..pos + first].copy_from_slice(&data[..first]);
    buf[..data.len() - first].copy_from_slice(&data[first..]);
}

/// Copies `dst.len()` bytes out of the ring `buf` starting at physical
/// position `pos`. The caller guarantees `dst.len() <= buf.len()`.
fn ring_read(buf: &[u8], pos: usize, dst: &mut [u8]) {
    let first = dst.len().min(buf.len() - pos);
    dst[..first].copy_from_slice(&buf[pos..pos + first]);
    let rest = dst.len() - first;
    dst[first..].copy_from_slice(&buf[..rest]);
}

/// The two contiguous pieces of `len` bytes at physical position `pos`.
/// The caller guarantees `len <= buf.len()` and `pos < buf.len()` (or both 0).
fn ring_slices(buf: &[u8], pos: usize, len: usize) -> (&[u8], &[u8]) {
    let first = len.min(buf.len() - pos);
    (&buf[pos..pos + first], &buf[..len - first])
}

/// Smallest storage a buffer allocates when it first needs room: small
/// enough that zeroing it costs little next to a short connection's other
/// work, large enough that a request/response exchange does not regrow.
pub const MIN_STORAGE: usize = 1024;

/// Grows the ring `buf` (whose logical content starts at physical `head`)
/// so that it holds at least `needed` bytes (`needed <= cap`): the new size
/// is at least double the old one and at least [`MIN_STORAGE`], at most
/// `cap`. The first `keep` logical bytes are moved to the front of the new
/// storage in order (the caller resets its head to 0).
fn ring_grow(buf: &mut Box<[u8]>, head: usize, keep: usize, needed: usize, cap: usize) {
    let old = buf.len();
    if needed <= old {
        return;
    }
    let size = needed.max(old.saturating_mul(2)).max(MIN_STORAGE).min(cap);
    let mut new = vec![0u8; size].into_boxed_slice();
    let keep = keep.min(old);
    if keep > 0 {
        ring_read(buf, head, &mut new[..keep]);
    }
    *buf = new;
}

/// Physical position `offset` bytes after `head` in a ring of `cap` bytes.
/// The caller guarantees `head < cap` and `offset <= cap` (or `cap == 0`).
fn ring_pos(head: usize, offset: usize, cap: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let p = head + offset;
    if p >= cap {
        p - cap
    } else {
        p
    }
}

/// Bytes from SND.UNA onwards: in flight, then not yet sent.
///
/// Offsets in this API are relative to SND.UNA (offset 0 is the oldest
/// unacknowledged byte).
#[derive(Debug)]
pub struct SendBuffer {
    /// The ring's storage: at most `cap` bytes, grown on demand.
    buf: Box<[u8]>,
    /// Capacity: the most bytes the buffer holds.
    cap: usize,
    /// Physical position of the byte at SND.UNA.
    head: usize,
    /// Bytes stored.
    len: usize,
}

impl SendBuffer {
    /// A buffer over `storage`, whose length is the capacity and whose
    /// contents are ignored (never readable before being written): lets the
    /// engine reuse a released connection's memory without allocating or
    /// zeroing it.
    pub fn from_storage(storage: Box<[u8]>) -> SendBuffer {
        SendBuffer {
            cap: storage.len(),
            buf: storage,
            head: 0,
            len: 0,
        }
    }

    /// A buffer of `capacity` bytes starting on `storage` (reused, contents
    /// ignored), which grows when data needs more room. Storage larger than
    /// `capacity` is dropped and the buffer starts empty.
    pub fn with_storage(storage: Box<[u8]>, capacity: usize) -> SendBuffer {
        let buf = if storage.len() <= capacity {
            storage
        } else {
            Box::default()
        };
        SendBuffer {
            buf,
            cap: capacity,
            head: 0,
            len: 0,
        }
    }

    /// The storage, for reuse by [`from_storage`](Self::from_storage).
    pub fn into_storage(self) -> Box<[u8]> {
        self.buf
    }

    /// A buffer of `capacity` bytes. Nothing is allocated until data is
    /// written; storage then grows as needed, up to `capacity`.
    pub fn new(capacity: usize) -> SendBuffer {
        SendBuffer {
            buf: Box::default(),
            cap: capacity,
            head: 0,
            len: 0,
        }
    }

    /// Total capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes of storage allocated now (at most the capacity).
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Bytes stored (unacknowledged plus unsent).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no bytes are stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free space: how many more bytes [`write`](Self::write) would accept.
    pub fn free(&self) -> usize {
        self.cap - self.len
    }

    /// Appends as much of `data` as fits; returns the number of bytes taken.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.free());
        if n > 0 {
            if self.len + n > self.buf.len() {
                ring_grow(&mut self.buf, self.head, self.len, self.len + n, self.cap);
                self.head = 0;
            }
            let pos = ring_pos(self.head, self.len, self.buf.len());
            ring_write(&mut self.buf, pos, &data[..n]);
            self.len += n;
        }
        n
    }

    /// Drops `n` bytes from the front (they were acknowledged: SND.UNA moved
    /// by `n`). Clamped to [`len`](Self::len); returns the number dropped.
    pub fn ack(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        self.len -= n;
        if self.len == 0 {
            // Restarting at the front keeps later segments contiguous.
            self.head = 0;
        } else {
            self.head = ring_pos(self.head, n, self.buf.len());
        }
        n
    }

    /// The longest contiguous slice of at most `max` bytes starting `offset`
    /// bytes after SND.UNA. It is shorter than `max` when the data ends or the
    /// ring wraps; empty when `offset >= len()`. Use
    /// [`slices`](Self::slices) or [`copy_out`](Self::copy_out) to get the
    /// bytes past the wrap as well.
    pub fn get(&self, offset: usize, max: usize) -> &[u8] {
        self.slices(offset, max).0
    }

    /// The at most `max` bytes starting `offset` bytes after SND.UNA, as two
    /// slices (the second is non-empty only when the ring wraps).
    pub fn slices(&self, offset: usize, max: usize) -> (&[u8], &[u8]) {
        if offset >= self.len {
            return (&[], &[]);
        }
        let n = max.min(self.len - offset);
        let pos = ring_pos(self.head, offset, self.buf.len());
        ring_slices(&self.buf, pos, n)
    }

    /// Copies the bytes starting `offset` bytes after SND.UNA into `dst`;
    /// returns how many were copied (fewer than `dst.len()` at the end of the
    /// data).
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) -> usize {
        let (a, b) = self.slices(offset, dst.len());
        dst[..a.len()].copy_from_slice(a);
        dst[a.len()..a.len() + b.len()].copy_from_slice(b);
        a.len() + b.len()
    }

    /// Drops every byte (on abort or reset).
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// In-order readable bytes, followed (in the free space) by out-of-order bytes
/// placed at their offset from RCV.NXT.
///
/// "Offset" in [`write_at`](Self::write_at) and [`commit`](Self::commit) is
/// relative to the readable tail, i.e. to RCV.NXT.
#[derive(Debug)]
pub struct RecvBuffer {
    /// The ring's storage: at most `cap` bytes, grown on demand.
    buf: Box<[u8]>,
    /// Capacity: readable plus window bytes.
    cap: usize,
    /// Physical position of the first readable byte.
    head: usize,
    /// Readable bytes.
    len: usize,
}

impl RecvBuffer {
    /// A buffer over `storage` (see [`SendBuffer::from_storage`]): nothing is
    /// readable until written and committed.
    pub fn from_storage(storage: Box<[u8]>) -> RecvBuffer {
        RecvBuffer {
            cap: storage.len(),
            buf: storage,
            head: 0,
            len: 0,
        }
    }

    /// A buffer of `capacity` bytes starting on `storage` (see
    /// [`SendBuffer::with_storage`]).
    pub fn with_storage(storage: Box<[u8]>, capacity: usize) -> RecvBuffer {
        let buf = if storage.len() <= capacity {
            storage
        } else {
            Box::default()
        };
        RecvBuffer {
            buf,
            cap: capacity,
            head: 0,
            len: 0,
        }
    }

    /// Makes the storage hold at least `needed` bytes from the head
    /// (`needed <= cap`), keeping every byte's offset from the head.
    fn reserve(&mut self, needed: usize) {
        if needed > self.buf.len() {
            let old = self.buf.len();
            ring_grow(&mut self.buf, self.head, old, needed, self.cap);
            self.head = 0;
        }
    }

    /// The storage, for reuse by [`from_storage`](Self::from_storage).
    pub fn into_storage(self) -> Box<[u8]> {
        self.buf
    }

    /// A buffer of `capacity` bytes. Nothing is allocated until data
    /// arrives; storage then grows as needed, up to `capacity`.
    pub fn new(capacity: usize) -> RecvBuffer {
        RecvBuffer {
            buf: Box::default(),
            cap: capacity,
            head: 0,
            len: 0,
        }
    }

    /// Total capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.cap
    }

    /// Bytes of storage allocated now (at most the capacity).
    pub fn allocated(&self) -> usize {
        self.buf.len()
    }

    /// Bytes the application can read now.
    pub fn readable(&self) -> usize {
        self.len
    }

    /// Whether nothing is readable.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free space after the readable bytes: the receive window to advertise
    /// (before window scaling and silly-window avoidance, which are the
    /// engine's job).
    pub fn window(&self) -> usize {
        self.cap - self.len
    }

    /// Copies readable bytes into `dst` and consumes them; returns how many.
    pub fn read(&mut self, dst: &mut [u8]) -> usize {
        let n = self.peek(dst);
        self.consume(n)
    }

    /// Copies readable bytes into `dst` without consuming them; returns how
    /// many.
    pub fn peek(&self, dst: &mut [u8]) -> usize {
        let n = dst.len().min(self.len);
        ring_read(&self.buf, self.head, &mut dst[..n]);
        n
    }

    /// The readable bytes as two slices (the second is non-empty only when
    /// the ring wraps), for zero-copy reads followed by
    /// [`consume`](Self::consume).
    pub fn peek_slices(&self) -> (&[u8], &[u8]) {
        ring_slices(&self.buf, self.head, self.len)
    }

    /// Discards up to `n` readable bytes; returns how many were discarded.
    pub fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        self.len -= n;
        self.head = ring_pos(self.head, n, self.buf.len());
        n
    }

    /// Writes `data` at `offset` bytes after the readable tail (RCV.NXT),
    /// without making it readable. Bytes that would fall outside the window
    /// are not written; returns how many leading bytes of `data` were written
    /// (0 if `offset >= window()`).
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let room = self.window().saturating_sub(offset);
        let n = data.len().min(room);
        if n > 0 {
            self.reserve(self.len + offset + n);
            let pos = ring_pos(self.head, self.len + offset, self.buf.len());
            ring_write(&mut self.buf, pos, &data[..n]);
        }
        n
    }

    /// Makes the `n` bytes after the readable tail readable (RCV.NXT advanced
    /// by `n`). Clamped to [`window`](Self::window); returns how many became
    /// readable.
    pub fn commit(&mut self, n: usize) -> usize {
        let n = n.min(self.window());
        self.reserve(self.len + n);
        self.len += n;
        n
    }

    /// Appends in-order bytes: [`write_at`](Self::write_at) at offset 0 then
    /// [`commit`](Self::commit). Returns how many were taken.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let n = self.write_at(0, data);
        self.commit(n)
    }

    /// Drops every byte (on abort or reset).
    pub fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[test]
    fn send_buffer_wraps() {
        let mut b = SendBuffer::new(8);
        assert_eq!(b.write(b"abcdef"), 6);
        assert_eq!(b.ack(4), 4);
        assert_eq!(b.write(b"ghijklmno"), 6);
        assert_eq!(b.free(), 0);
        assert_eq!(b.len(), 8);
        // Physical layout now: "ijkl" at 0..4, "efgh" at 4..8.
        assert_eq!(b.get(0, 100), b"efgh");
        assert_eq!(b.slices(1, 100), (&b"fgh"[..], &b"ijkl"[..]));
        let mut out = [0u8; 16];
        assert_eq!(b.copy_out(2, &mut out), 6);
        assert_eq!(&out[..6], b"ghijkl");
        assert_eq!(b.get(8, 1), b"");
        assert_eq!(b.ack(100), 8);
        assert!(b.is_empty());
        // An empty buffer restarts at the front: a full write is contiguous.
        assert_eq!(b.write(b"12345678"), 8);
        assert_eq!(b.get(0, 8), b"12345678");
    }

    #[test]
    fn zero_capacity_buffers_accept_nothing() {
        let mut s = SendBuffer::new(0);
        assert_eq!(s.write(b"x"), 0);
        assert_eq!(s.ack(1), 0);
        assert_eq!(s.get(0, 1), b"");
        let mut r = RecvBuffer::new(0);
        assert_eq!(r.window(), 0);
        assert_eq!(r.write_at(0, b"x"), 0);
        assert_eq!(r.commit(1), 0);
        assert_eq!(r.read(&mut [0; 4]), 0);
    }

    #[test]
    fn storage_grows_lazily_up_to_capacity() {
        let mut s = SendBuffer::new(64 * 1024);
        assert_eq!((s.allocated(), s.free()), (0, 64 * 1024));
        assert_eq!(s.write(&[7; 64]), 64);
        assert_eq!(s.allocated(), MIN_STORAGE);
        // Wrapped content survives growth in order.
        assert_eq!(s.ack(60), 60);
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert_eq!(s.write(&data[..1000]), 1000);
        assert_eq!(s.allocated(), MIN_STORAGE);
        assert_eq!(s.write(&data[1000..]), 2000);
        assert_eq!(s.allocated(), 3004);
        let mut out = vec![0u8; 3004];
        assert_eq!(s.copy_out(0, &mut out), 3004);
        assert_eq!(&out[..4], &[7; 4]);
        assert_eq!(&out[4..], &data[..]);
        assert_eq!(s.write(&vec![1; 70_000]), 64 * 1024 - 3004);
        assert_eq!(s.allocated(), 64 * 1024);

        let mut r = RecvBuffer::new(10_000);
        assert_eq!((r.allocated(), r.window()), (0, 10_000));
        // Out-of-order bytes far beyond the tail grow the storage to cover
        // them, and keep their offset when it grows again.
        assert_eq!(r.write_at(5000, b"xyz"), 3);
        assert_eq!(r.allocated(), 5003);
        assert_eq!(r.write(&[1; 5000]), 5000);
        assert_eq!(r.read(&mut [0; 4000]), 4000);
        assert_eq!(r.write_at(3, &[2; 6000]), 6000);
        assert_eq!(r.allocated(), 10_000);
        assert_eq!(r.commit(3), 3);
        let mut out = [0u8; 1004];
        assert_eq!(r.read(&mut out), 1003);
        assert_eq!(&out[999..1003], b"\x01xyz");
        // Reused storage larger than the capacity is not used.
        let b = SendBuffer::with_storage(vec![0; 100].into_boxed_slice(), 10);
        assert_eq!((b.allocated(), b.capacity()), (0, 10));
        let b = RecvBuffer::with_storage(vec![0; 100].into_boxed_slice(), 1000);
        assert_eq!((b.allocated(), b.capacity()), (100, 1000));
    }

    #[test]
    fn recv_buffer_out_of_order_then_commit() {
        let mut r = RecvBuffer::new(8);
        assert_eq!(r.write_at(3, b"def"), 3);
        assert_eq!(r.readable(), 0);
        assert_eq!(r.write_at(0, b"abc"), 3);
        assert_eq!(r.commit(6), 6);
        assert_eq!(r.window(), 2);
        // Outside the window: clamped.
        assert_eq!(r.write_at(1, b"xyz"), 1);
        assert_eq!(r.write_at(2, b"xyz"), 0);
        let mut out = [0u8; 4];
        assert_eq!(r.peek(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.read(&mut out), 4);
        assert_eq!(r.peek_slices(), (&b"ef"[..], &b""[..]));
        assert_eq!(r.write(b"ghijklmn"), 6);
        assert_eq!(r.peek_slices(), (&b"efgh"[..], &b"ijkl"[..]));
        assert_eq!(r.commit(1), 0);
        assert_eq!(r.consume(100), 8);
    }

    #[derive(Debug, Clone)]
    enum SendOp {
        Write(Vec<u8>),
        Ack(usize),
        Get(usize, usize),
        CopyOut(usize, usize),
    }

    fn send_op() -> impl Strategy<Value = SendOp> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(SendOp::Write),
            (0usize..40).prop_map(SendOp::Ack),
            (0usize..40, 0usize..40).prop_map(|(o, m)| SendOp::Get(o, m)),
            (0usize..40, 0usize..40).prop_map(|(o, m)| SendOp::CopyOut(o, m)),
        ]
    }

    proptest! {
        #[test]
        fn send_buffer_matches_vecdeque(cap in 0usize..33, ops in proptest::collection::vec(send_op(), 0..60)) {
            let mut b = SendBuffer::new(cap);
            let mut model: VecDeque<u8> = VecDeque::new();
            for op in ops {
                match op {
                    SendOp::Write(d) => {
                        let n = b.write(&d);
                        let expect = d.len().min(cap - model.len());
                        prop_assert_eq!(n, expect);
                        model.extend(&d[..n]);
                    }
                    SendOp::Ack(n) => {
                        let got = b.ack(n);
                        prop_assert_eq!(got, n.min(model.len()));
                        model.drain(..got);
                    }
                    SendOp::Get(o, m) => {
                        let (x, y) = b.slices(o, m);
                        let expect: Vec<u8> = model.iter().skip(o).take(m).copied().collect();
                        prop_assert_eq!([x, y].concat(), expect.clone());
                        let g = b.get(o, m);
                        prop_assert_eq!(g, x);
                        prop_assert!(expect.is_empty() || !g.is_empty());
                    }
                    SendOp::CopyOut(o, m) => {
                        let mut dst = vec![0u8; m];
                        let n = b.copy_out(o, &mut dst);
                        let expect: Vec<u8> = model.iter().skip(o).take(m).copied().collect();
                        prop_assert_eq!(&dst[..n], &expect[..]);
                    }
                }
                prop_assert_eq!(b.len(), model.len());
                prop_assert_eq!(b.free(), cap - model.len());
            }
        }
    }

    #[derive(Debug, Clone)]
    enum RecvOp {
        WriteAt(usize, Vec<u8>),
        Commit(usize),
        Read(usize),
        Peek(usize),
    }

    fn recv_op() -> impl Strategy<Value = RecvOp> {
        prop_oneof![
            (0usize..40, proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(o, d)| RecvOp::WriteAt(o, d)),
            (0usize..40).prop_map(RecvOp::Commit),
            (0usize..40).prop_map(RecvOp::Read),
            (0usize..40).prop_map(RecvOp::Peek),
        ]
    }

    proptest! {
        /// Model: readable bytes in a VecDeque, bytes beyond the tail in a
        /// Vec indexed by offset (None where nothing was written since the
        /// space became free, whose content is unspecified).
        #[test]
        fn recv_buffer_matches_model(cap in 0usize..33, ops in proptest::collection::vec(recv_op(), 0..60)) {
            let mut b = RecvBuffer::new(cap);
            let mut readable: VecDeque<Option<u8>> = VecDeque::new();
            let mut beyond: Vec<Option<u8>> = vec![None; cap];
            for op in ops {
                let window = cap - readable.len();
                match op {
                    RecvOp::WriteAt(o, d) => {
                        let n = b.write_at(o, &d);
                        prop_assert_eq!(n, d.len().min(window.saturating_sub(o)));
                        for (i, &x) in d[..n].iter().enumerate() {
                            beyond[o + i] = Some(x);
                        }
                    }
                    RecvOp::Commit(n) => {
                        let got = b.commit(n);
                        prop_assert_eq!(got, n.min(window));
                        readable.extend(beyond.drain(..got));
                        beyond.resize(cap, None);
                    }
                    RecvOp::Read(n) | RecvOp::Peek(n) => {
                        let mut dst = vec![0u8; n];
                        let consume = matches!(op, RecvOp::Read(_));
                        let got = if consume { b.read(&mut dst) } else { b.peek(&mut dst) };
                        prop_assert_eq!(got, n.min(readable.len()));
                        for (i, x) in dst[..got].iter().enumerate() {
                            if let Some(m) = readable[i] {
                                prop_assert_eq!(*x, m);
                            }
                        }
                        if consume {
                            readable.drain(..got);
                            // The freed space re-enters the window with stale content.
                            let w = cap - readable.len();
                            for slot in &mut beyond[w - got..w] {
                                *slot = None;
                            }
                        }
                    }
                }
                prop_assert_eq!(b.readable(), readable.len());
                prop_assert_eq!(b.window(), cap - readable.len());
                let (x, y) = b.peek_slices();
                prop_assert_eq!(x.len() + y.len(), readable.len());
            }
        }
    }
}
