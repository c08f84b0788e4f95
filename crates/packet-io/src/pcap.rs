//! A pcap tap: writes the frames of any backend to a pcap file (the classic
//! libpcap format, microsecond timestamps, link type Ethernet) that Wireshark
//! and tshark read.

use crate::frame::{Frame, FrameBatch};
use crate::queue::{Armed, Counters, FrameError, Interest, PacketQueue};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// Magic number of the classic pcap format with microsecond timestamps.
const PCAP_MAGIC: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`.
const LINKTYPE_ETHERNET: u32 = 1;
/// Longest frame stored whole.
pub const SNAPLEN: u32 = 65_535;

/// Writes pcap records to `W`.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header.
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut h = [0u8; 24];
        h[0..4].copy_from_slice(&PCAP_MAGIC.to_le_bytes());
        h[4..6].copy_from_slice(&2u16.to_le_bytes()); // version 2.4
        h[6..8].copy_from_slice(&4u16.to_le_bytes());
        // thiszone and sigfigs stay zero.
        h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
        h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&h)?;
        Ok(PcapWriter { out })
    }

    /// Writes one frame captured at `time`.
    pub fn write_frame(&mut self, time: SystemTime, frame: &[u8]) -> io::Result<()> {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let caplen = frame.len().min(SNAPLEN as usize);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&(since.as_secs() as u32).to_le_bytes());
        h[4..8].copy_from_slice(&since.subsec_micros().to_le_bytes());
        h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
        h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(&frame[..caplen])
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A queue whose received and transmitted frames are also written to a pcap
/// file. Wraps any [`PacketQueue`] and is one itself. Give it a buffered
/// writer: records are written per frame, flushed per call to
/// [`flush`](Tap::flush) or on drop of the writer.
#[derive(Debug)]
pub struct Tap<Q, W: Write> {
    inner: Q,
    pcap: PcapWriter<W>,
    hold: FrameBatch,
    error: Option<io::Error>,
}

impl<Q: PacketQueue, W: Write> Tap<Q, W> {
    /// Taps `inner`, writing the pcap header to `out` now.
    pub fn new(inner: Q, out: W) -> io::Result<Self> {
        Ok(Tap {
            inner,
            pcap: PcapWriter::new(out)?,
            hold: FrameBatch::with_capacity(0),
            error: None,
        })
    }

    /// The tapped queue.
    pub fn inner(&self) -> &Q {
        &self.inner
    }

    /// The tapped queue, mutably.
    pub fn inner_mut(&mut self) -> &mut Q {
        &mut self.inner
    }

    /// Flushes the pcap writer; reports the first write error since the last call.
    pub fn flush(&mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.pcap.flush()
    }

    /// Ends the tap: the queue and the writer.
    pub fn into_parts(self) -> (Q, PcapWriter<W>) {
        (self.inner, self.pcap)
    }

    fn capture(&mut self, frames: &[Frame]) {
        if self.error.is_some() || frames.is_empty() {
            return;
        }
        let now = SystemTime::now();
        for f in frames {
            let Ok(bytes) = self.inner.frame(f) else {
                continue;
            };
            if let Err(e) = self.pcap.write_frame(now, bytes) {
                tracing::warn!("pcap tap stops: {e}");
                self.error = Some(e);
                return;
            }
        }
    }
}

impl<Q: PacketQueue, W: Write> PacketQueue for Tap<Q, W> {
    fn queue_id(&self) -> u32 {
        self.inner.queue_id()
    }

    fn frame_capacity(&self) -> usize {
        self.inner.frame_capacity()
    }

    fn recv(&mut self, batch: &mut FrameBatch) -> usize {
        let before = batch.len();
        let n = self.inner.recv(batch);
        // Borrow dance: capture reads frames through `self.inner`.
        let frames = std::mem::take(batch);
        self.capture(&frames.as_slice()[before..]);
        *batch = frames;
        n
    }

    fn alloc(&mut self, batch: &mut FrameBatch, n: usize) -> usize {
        self.inner.alloc(batch, n)
    }

    fn send(&mut self, batch: &mut FrameBatch) -> Result<usize, FrameError> {
        // Capture exactly what the queue takes: hold back what will not fit,
        // record the rest, send it, put the held frames back.
        let space = self.inner.tx_space();
        batch.split_off_into(space, &mut self.hold);
        let frames = std::mem::take(batch);
        self.capture(frames.as_slice());
        *batch = frames;
        let sent = self.inner.send(batch);
        batch.append(&mut self.hold);
        sent
    }

    fn tx_space(&mut self) -> usize {
        self.inner.tx_space()
    }

    fn release(&mut self, batch: &mut FrameBatch) -> Result<(), FrameError> {
        self.inner.release(batch)
    }

    fn frame(&self, frame: &Frame) -> Result<&[u8], FrameError> {
        self.inner.frame(frame)
    }

    fn frame_mut(&mut self, frame: &mut Frame) -> Result<&mut [u8], FrameError> {
        self.inner.frame_mut(frame)
    }

    fn set_len(&mut self, frame: &mut Frame, len: usize) -> Result<(), FrameError> {
        self.inner.set_len(frame, len)
    }

    fn maintain(&mut self) {
        self.inner.maintain()
    }

    fn counters(&self) -> Counters {
        self.inner.counters()
    }

    fn readiness(&mut self, interest: Interest) -> Interest {
        self.inner.readiness(interest)
    }

    fn arm(&mut self, interest: Interest) -> Armed {
        self.inner.arm(interest)
    }

    fn disarm(&mut self, slept: bool, woke: bool) {
        self.inner.disarm(slept, woke)
    }
}
