//! What a connection sends next.
//!
//! The endpoint asks each connection with something to say for control
//! segments first ([`Conn::poll_control`]: RST, SYN, SYN-ACK, FIN-only,
//! keep-alive, pure ACK) and only then for data ([`Conn::poll_data`]), so
//! control segments of every connection leave before any data segment.
//! An ACK owed while data is ready to go rides on the data segment instead.
//!
//! A segment is described by a [`SegmentOut`]; the endpoint turns it into
//! bytes with the payload taken from the send buffer.

use wire::tcp::TcpOptions;
use wire::{SeqNumber, TcpFlags};

use crate::config::Config;
use crate::time::Instant;
use crate::State;

use super::{Conn, TimerKind};

/// One segment to emit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SegmentOut {
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    pub window: u16,
    pub options: TcpOptions,
    /// Payload: offset from the start of the send buffer, and length.
    pub payload_offset: usize,
    pub payload_len: usize,
}

/// Bytes of the fixed TCP header.
const TCP_HEADER: usize = 20;

/// The decision of the sending policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Send `len` bytes at `seq`, with FIN when `fin`.
    Send {
        seq: SeqNumber,
        len: usize,
        fin: bool,
    },
    /// Data is waiting but the policy holds it; nothing is in flight, so
    /// only the persist timer can move things (SWS override, zero window).
    HoldIdle,
    /// Nothing to send.
    Nothing,
}

impl Conn {
    /// The next control segment, if any. `max_len` is the room for the whole
    /// TCP segment.
    pub fn poll_control(
        &mut self,
        now: Instant,
        cfg: &Config,
        max_len: usize,
    ) -> Option<SegmentOut> {
        if self.rst_due {
            return Some(self.emit_rst());
        }
        match self.state {
            State::SynSent if self.snd_nxt == self.iss => {
                return Some(self.emit_syn(now, cfg, false))
            }
            State::SynReceived if self.snd_nxt == self.iss => {
                return Some(self.emit_syn(now, cfg, true))
            }
            State::Closed | State::Listen | State::SynSent => return None,
            _ => {}
        }
        if self.state.sends_data() {
            match self.plan_data(now, cfg, max_len) {
                // FIN-only is a control segment.
                Plan::Send {
                    len: 0,
                    fin: true,
                    seq,
                } => {
                    return Some(self.emit_data(now, seq, 0, true, max_len, false));
                }
                // The ACK rides on the data segment.
                Plan::Send { .. } => return None,
                _ if self.fast_rexmit => return None,
                _ => {}
            }
        }
        if self.keepalive_due {
            self.keepalive_due = false;
            if self.snd_una == self.snd_max && self.unsent() == 0 {
                // RFC 9293 section 3.8.4 / RFC 1122 4.2.3.6: SEG.SEQ =
                // SND.NXT - 1, no data (SHLD-12).
                let mut seg = self.segment(now, self.snd_una - 1, TcpFlags::ACK);
                self.finish_ack(&mut seg);
                return Some(seg);
            }
        }
        if self.ack.now {
            // A pure ACK carries SND.MAX rather than a rewound SND.NXT (as
            // BSD does): after a go-back-N rewind the peer's RCV.NXT may be
            // past SND.NXT, and an ACK whose sequence number is below
            // RCV.NXT fails the acceptability test, so its acknowledgment
            // would be lost and both sides could stall retransmitting.
            let mut seg = self.segment(now, self.snd_max, TcpFlags::ACK);
            self.finish_ack(&mut seg);
            return Some(seg);
        }
        None
    }

    /// The next data segment (new data, retransmission, zero-window probe),
    /// possibly carrying FIN.
    pub fn poll_data(&mut self, now: Instant, cfg: &Config, max_len: usize) -> Option<SegmentOut> {
        if !self.state.sends_data() || self.rst_due {
            return None;
        }
        if self.fast_rexmit {
            if let Some(seg) = self.emit_fast_retransmit(now, max_len) {
                return Some(seg);
            }
        }
        if self.sack_recovery() && !self.force_send {
            if let Some(seg) = self.sack_recovery_send(now, max_len) {
                return Some(seg);
            }
            if self.ack.now {
                let mut seg = self.segment(now, self.snd_max, TcpFlags::ACK);
                self.finish_ack(&mut seg);
                return Some(seg);
            }
            return None;
        }
        match self.plan_data(now, cfg, max_len) {
            Plan::Send { seq, len, fin } => {
                let probe = self.force_send && self.snd_wnd == 0;
                self.force_send = false;
                return Some(self.emit_data(now, seq, len, fin, max_len, probe));
            }
            Plan::HoldIdle => {
                if !self.timers.is_armed(TimerKind::Persist) {
                    self.timers.set(TimerKind::Persist, now + self.rtt.rto());
                }
            }
            Plan::Nothing => {}
        }
        // An ACK that was left for a data segment which did not materialise.
        if self.ack.now {
            let mut seg = self.segment(now, self.snd_max, TcpFlags::ACK);
            self.finish_ack(&mut seg);
            return Some(seg);
        }
        None
    }

    /// The sending policy: congestion and flow control, Nagle (RFC 9293
    /// section 3.7.4, SHLD-7, MUST-17) and sender silly-window avoidance
    /// (section 3.8.6.2.1, MUST-38).
    fn plan_data(&self, now: Instant, _cfg: &Config, max_len: usize) -> Plan {
        let _ = now;
        let start = self.data_start();
        let end = self.data_end();
        let nxt = self.snd_nxt.max(start);
        let unsent = end - nxt;
        let fin_unsent = self.fin_pending_unsent();
        let flight = self.flight_size();
        let retransmitting = nxt < self.snd_max;
        let room = max_len.saturating_sub(TCP_HEADER + self.fixed_option_len());
        let smss = self.smss.min(room).max(1);

        if self.force_send {
            // Persist expiry. A zero window gets a one-byte probe at SND.UNA
            // (MUST-36); otherwise the SWS override sends what fits.
            if self.snd_wnd == 0 {
                if self.send_buf.is_empty() {
                    return if fin_unsent {
                        Plan::Send {
                            seq: end,
                            len: 0,
                            fin: true,
                        }
                    } else {
                        Plan::Nothing
                    };
                }
                return Plan::Send {
                    seq: start,
                    len: 1,
                    fin: false,
                };
            }
            let usable = self.usable_window(nxt).max(1);
            let len = unsent.min(smss).min(usable);
            return Plan::Send {
                seq: nxt,
                len,
                fin: fin_unsent && len == unsent,
            };
        }

        let usable = self.usable_window(nxt);
        let len = unsent.min(usable).min(smss);
        if len == 0 {
            if unsent == 0 && fin_unsent && nxt == end {
                return Plan::Send {
                    seq: end,
                    len: 0,
                    fin: true,
                };
            }
            return if unsent > 0 && flight == 0 {
                Plan::HoldIdle
            } else {
                Plan::Nothing
            };
        }
        let all = len == unsent;
        // Nagle (RFC 9293 section 3.7.4) in Minshall's form: a small segment
        // waits only while an earlier small segment is unacknowledged, so a
        // write's final partial segment is not held behind full ones.
        let nagle_ok = self.nodelay || flight == 0 || self.snd_sml <= self.snd_una;
        let send = retransmitting
            || len >= smss
            || (all && (nagle_ok || self.fin_queued))
            || (nagle_ok && len * 2 >= self.max_snd_wnd as usize);
        if send {
            Plan::Send {
                seq: nxt,
                len,
                fin: all && fin_unsent,
            }
        } else if flight == 0 {
            Plan::HoldIdle
        } else {
            Plan::Nothing
        }
    }

    /// Bytes the windows allow beyond `nxt`: min(SND.WND, cwnd) from SND.UNA.
    fn usable_window(&self, nxt: SeqNumber) -> usize {
        let wnd = (self.snd_wnd as usize).min(self.cc.window());
        let edge = self.snd_una + wnd;
        if edge > nxt {
            edge - nxt
        } else {
            0
        }
    }

    /// Option bytes present on every non-SYN segment (timestamps).
    fn fixed_option_len(&self) -> usize {
        if self.ts.is_some() {
            12
        } else {
            0
        }
    }

    /// Fast retransmit / NewReno partial-ACK retransmission of the first
    /// unacknowledged segment, or with SACK the next hole (RFC 2018: skip
    /// what the receiver holds).
    fn emit_fast_retransmit(&mut self, now: Instant, max_len: usize) -> Option<SegmentOut> {
        self.fast_rexmit = false;
        let start = self.data_start();
        let end = self.data_end();
        let room = max_len.saturating_sub(TCP_HEADER + self.fixed_option_len());
        let smss = self.smss.min(room).max(1);
        let mut seq = self.snd_una.max(start);
        if self.sack_ok && self.in_recovery {
            seq = seq.max(self.rexmit_next);
            while let Some(e) = self.sacked_until(seq) {
                seq = e;
            }
            // Holes below the highest SACKed byte only.
            let highest = self.scoreboard.last().map(|&(_, r)| r);
            if seq > self.snd_una && highest.map_or(true, |h| seq >= h) {
                return None;
            }
        }
        let limit = self.snd_max.min(end);
        if seq >= limit {
            // Only the FIN is outstanding.
            if self.fin_sent() && !self.fin_acked() {
                return Some(self.emit_data(now, end, 0, true, max_len, false));
            }
            return None;
        }
        let mut len = (limit - seq).min(smss);
        if let Some(next) = self.next_sacked(seq) {
            len = len.min(next - seq);
        }
        let fin = self.fin_sent() && seq + len == end && self.snd_max > end;
        let seg = self.emit_data(now, seq, len, fin, max_len, false);
        self.rexmit_next = seg.seq + seg.payload_len;
        Some(seg)
    }

    /// RFC 6675 section 5 step (C): while cwnd - pipe >= 1 SMSS, send the
    /// segment NextSeg() names: (1) the first un-SACKed hole at or above
    /// HighRxt that IsLost marks; else (2) new data the receive window
    /// allows; else (3) an un-SACKed hole at or above HighRxt below the
    /// highest SACKed byte. cwnd during recovery is ssthresh (RFC 6675
    /// step 4.2: "ssthresh = cwnd = (FlightSize / 2)"; no inflation).
    fn sack_recovery_send(&mut self, now: Instant, max_len: usize) -> Option<SegmentOut> {
        let room = max_len.saturating_sub(TCP_HEADER + self.fixed_option_len());
        let smss = self.smss.min(room).max(1);
        let cwnd = self.cc.ssthresh();
        if self.pipe().saturating_add(smss) > cwnd {
            return None;
        }
        let start = self.data_start();
        let end = self.data_end();
        let limit = self.snd_max.min(end);
        // The first un-SACKed byte at or above HighRxt.
        let mut seq = self.snd_una.max(self.rexmit_next).max(start);
        while let Some(e) = self.sacked_until(seq) {
            seq = e;
        }
        let highest_sacked = self.scoreboard.last().map(|&(_, r)| r);
        let hole = seq < limit && highest_sacked.is_some_and(|h| seq < h);
        let retransmit = |c: &mut Conn, seq: SeqNumber| {
            let mut len = (limit - seq).min(smss);
            if let Some(next) = c.next_sacked(seq) {
                len = len.min(next - seq);
            }
            let fin = c.fin_sent() && seq + len == end && c.snd_max > end;
            let seg = c.emit_data(now, seq, len, fin, max_len, false);
            c.rexmit_next = seg.seq + seg.payload_len;
            seg
        };
        // Rule 1: a lost hole.
        if hole && seq < self.lost_below() {
            return Some(retransmit(self, seq));
        }
        // Rule 2: new data, within the peer's window.
        let nxt = self.snd_nxt.max(start);
        let unsent = end - nxt;
        let wnd_edge = self.snd_una + self.snd_wnd as usize;
        let wnd_room = if wnd_edge > nxt { wnd_edge - nxt } else { 0 };
        let len = unsent.min(smss).min(wnd_room);
        if len > 0 && (len == smss || len == unsent) {
            let fin = len == unsent && self.fin_pending_unsent();
            return Some(self.emit_data(now, nxt, len, fin, max_len, false));
        }
        if unsent == 0 && self.fin_pending_unsent() && nxt == end && wnd_room > 0 {
            return Some(self.emit_data(now, end, 0, true, max_len, false));
        }
        // Rule 3: a hole not (yet) marked lost, when no new data can go.
        if hole {
            return Some(retransmit(self, seq));
        }
        None
    }

    /// Build a data (or FIN) segment at `seq` and update the send state.
    fn emit_data(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        len: usize,
        fin: bool,
        max_len: usize,
        probe: bool,
    ) -> SegmentOut {
        // RFC 5681 section 4.1: restart from the restart window after idle.
        if self.snd_una == self.snd_max
            && now.saturating_duration_since(self.last_send) > self.rtt.rto()
        {
            self.cc.on_idle(now, self.rtt.rto());
        }
        let mut flags = TcpFlags::ACK;
        let mut seg = self.segment(now, seq, flags);
        let room = max_len.saturating_sub(TCP_HEADER + seg.options.emitted_len());
        let len = len.min(room);
        let fin = fin && seq + len == self.data_end();
        if fin {
            flags |= TcpFlags::FIN;
        }
        if len > 0 && (seq + len == self.data_end()) {
            flags |= TcpFlags::PSH;
        }
        seg.flags = flags;
        seg.payload_offset = seq - self.data_start();
        seg.payload_len = len;
        self.finish_ack(&mut seg);

        let end = seq + len + usize::from(fin);
        let retransmission = seq < self.snd_max;
        if len > 0 && len < self.smss && end > self.snd_sml && !probe {
            self.snd_sml = end;
        }
        if retransmission {
            self.total_retransmits = self.total_retransmits.saturating_add(1);
            // Karn's rule (MUST-18).
            if self.rtt_probe.is_some_and(|(e, _)| e > seq) {
                self.rtt_probe = None;
            }
        } else if self.ts.is_none() && self.rtt_probe.is_none() && end > seq {
            self.rtt_probe = Some((end, now));
        }
        if end > self.snd_nxt {
            self.snd_nxt = end;
        }
        if end > self.snd_max {
            self.snd_max = end;
        }
        // A zero-window probe is paced by the persist timer, not the
        // retransmission timer (MUST-37: never time out a peer that keeps
        // answering).
        if !probe && end > seq {
            self.arm_retransmit(now);
        }
        self.last_send = now;
        seg
    }

    /// A segment skeleton: sequence number, flags, ACK, window, timestamps.
    fn segment(&mut self, now: Instant, seq: SeqNumber, flags: TcpFlags) -> SegmentOut {
        let mut options = TcpOptions::default();
        if let Some(ts) = self.ts {
            options.timestamps = Some((self.ts_now(now), ts.recent));
        }
        SegmentOut {
            seq,
            ack: self.rcv_nxt,
            flags,
            window: 0,
            options,
            payload_offset: 0,
            payload_len: 0,
        }
    }

    /// Fill in the window and SACK blocks of a segment carrying ACK and clear
    /// what the ACK settles.
    fn finish_ack(&mut self, seg: &mut SegmentOut) {
        seg.ack = self.rcv_nxt;
        seg.window = self.window_to_advertise();
        if self.sack_ok && !self.assembler.is_empty() {
            let max = if self.ts.is_some() { 3 } else { 4 };
            let n = self
                .assembler
                .sack_blocks(self.rcv_nxt, &mut seg.options.sack_blocks[..max]);
            seg.options.sack_count = n as u8;
        }
        self.last_ack_sent = self.rcv_nxt;
        self.ack.now = false;
        self.ack.pending_bytes = 0;
        self.timers.cancel(TimerKind::DelayedAck);
    }

    /// SYN (active open) or SYN-ACK (passive open, or simultaneous open).
    fn emit_syn(&mut self, now: Instant, cfg: &Config, with_ack: bool) -> SegmentOut {
        let mut options = TcpOptions {
            mss: (!self.no_options).then(|| u16::try_from(self.rmss).unwrap_or(u16::MAX)),
            ..TcpOptions::default()
        };
        let mut seg_flags = TcpFlags::SYN;
        if with_ack {
            seg_flags |= TcpFlags::ACK;
            // Options in a SYN-ACK only when the peer's SYN offered them.
            if self.wscale_ok {
                options.window_scale = Some(self.rcv_wscale);
            }
            options.sack_permitted = self.sack_ok;
            if let Some(ts) = self.ts {
                options.timestamps = Some((self.ts_now(now), ts.recent));
            }
        } else if !self.no_options {
            if cfg.window_scaling {
                options.window_scale = Some(self.recv_wscale());
            }
            options.sack_permitted = cfg.sack;
            if cfg.timestamps {
                options.timestamps = Some((self.ts_now(now), 0));
            }
        }
        // The window of a SYN is never scaled (RFC 7323 section 2.2).
        // (Before the handshake completes a passive connection has no
        // buffer yet: advertise the one it will get.)
        let has_buf = self.recv_buf.capacity() > 0;
        let free = if has_buf {
            self.recv_buf.window()
        } else {
            self.recv_buf_size as usize
        };
        let window = u16::try_from(free).unwrap_or(u16::MAX);
        if with_ack {
            // RCV.WND is the buffer space (RFC 9293 section 3.3.1, "receive
            // window") once there is a buffer (simultaneous open), as after
            // the handshake where `window_to_advertise` records the same
            // edge: the field may be clamped to 65535 (a SYN's window is
            // never scaled), but the data we have room for stays acceptable.
            // A passive open gets its buffer only when the handshake
            // completes; until then its window is what the field said.
            self.rcv_adv = self.rcv_nxt + if has_buf { free } else { usize::from(window) };
            self.note_advertised();
            self.last_ack_sent = self.rcv_nxt;
            self.ack.now = false;
        }
        let retransmission = self.snd_max > self.iss;
        if !retransmission && self.ts.is_none() {
            self.rtt_probe = Some((self.iss + 1, now));
        } else if retransmission {
            self.rtt_probe = None;
            self.total_retransmits = self.total_retransmits.saturating_add(1);
        }
        self.snd_nxt = self.iss + 1;
        if self.snd_max < self.snd_nxt {
            self.snd_max = self.snd_nxt;
        }
        self.arm_retransmit(now);
        self.last_send = now;
        SegmentOut {
            seq: self.iss,
            ack: if with_ack { self.rcv_nxt } else { SeqNumber(0) },
            flags: seg_flags,
            window,
            options,
            payload_offset: 0,
            payload_len: 0,
        }
    }

    /// RST for an abort or a timeout: <SEQ=SND.NXT><CTL=RST> (RFC 9293
    /// section 3.10.5), then CLOSED.
    fn emit_rst(&mut self) -> SegmentOut {
        self.rst_due = false;
        let synchronized = self.state.is_synchronized() || self.state == State::SynReceived;
        let seg = SegmentOut {
            seq: self.snd_max,
            ack: self.rcv_nxt,
            flags: if synchronized {
                TcpFlags::RST | TcpFlags::ACK
            } else {
                TcpFlags::RST
            },
            window: 0,
            options: TcpOptions::default(),
            payload_offset: 0,
            payload_len: 0,
        };
        let err = self.error;
        self.enter_closed(err);
        seg
    }
}
