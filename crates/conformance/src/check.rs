//! Comparing the segments the stack sends with the script, and building the
//! segments the script injects, with packetdrill's rules:
//!
//! - sequence numbers in a script are relative to the sender's ISN: ours is
//!   learned from the first SYN we send (outbound), the script's is chosen by
//!   the runner (inbound). Before we have sent a SYN, our ISN counts as 0
//!   (absolute), which is what a RST for a closed port carries;
//! - `ack` and SACK blocks are relative to the other side's ISN;
//! - TS val of outbound segments is not compared unless the script gives
//!   `--tcp_ts_tick_usecs` (as in packetdrill); the offset between the first
//!   value we send and the script's is learned and added to the TS ecr of
//!   inbound segments; with a tick, each later TS val must advance like the
//!   script's: `|(ours - offset) - script| * tick <= tolerance`; our TS ecr
//!   must equal the script's (it echoes the script's own TS val);
//! - flags, sequence range, payload length and `ack` are exact; the urgent
//!   pointer must be 0 without URG; `win` and options are compared when the
//!   script gives them (no options written means none), through the rules of
//!   [`crate::normalise`]; the checksum is verified.

use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;

use wire::tcp::{TcpOption, TcpPacket};
use wire::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};

use crate::normalise;
use crate::script::{OptionsSpec, SeqSpec, TcpOptionSpec, TcpSpec};

/// The ISNs and timestamp offset that relate script values to live ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SeqMap {
    /// Our ISN, once we have sent a SYN.
    pub local_isn: Option<u32>,
    /// The ISN the runner uses for the script's side.
    pub remote_isn: u32,
    /// Our first TS val minus the script's.
    pub ts_val_offset: Option<u32>,
    /// `--tcp_ts_tick_usecs` and the tolerance: compare TS val when set.
    pub ts_val_check: Option<TsValCheck>,
}

/// How TS val is compared when a script gives `--tcp_ts_tick_usecs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsValCheck {
    /// Microseconds per TS val tick.
    pub tick_us: u64,
    /// The script's timing tolerance in microseconds.
    pub tolerance_us: u64,
}

impl SeqMap {
    /// A map with the script side's ISN.
    pub fn new(remote_isn: u32) -> Self {
        SeqMap {
            local_isn: None,
            remote_isn,
            ts_val_offset: None,
            ts_val_check: None,
        }
    }

    fn local(&self) -> u32 {
        self.local_isn.unwrap_or(0)
    }
}

/// A segment the stack sent, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Control bits.
    pub flags: TcpFlags,
    /// Absolute sequence number.
    pub seq: u32,
    /// Absolute acknowledgement number.
    pub ack: u32,
    /// Raw window field.
    pub window: u16,
    /// Urgent pointer.
    pub urgent: u16,
    /// Options in wire order, with absolute values.
    pub options: Vec<TcpOptionSpec>,
    /// Payload length.
    pub payload_len: usize,
}

/// Why bytes the stack sent are not a valid TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed segment: {}", self.0)
    }
}

impl Sent {
    /// Decodes and validates (checksum included) a segment from `src` to `dst`.
    pub fn decode(bytes: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<Sent, Malformed> {
        let packet = TcpPacket::new_checked(bytes).map_err(|e| Malformed(format!("{e:?}")))?;
        if !packet.verify_checksum(src, dst) {
            return Err(Malformed("bad checksum".into()));
        }
        let mut options = Vec::new();
        for opt in packet.options_iter() {
            let opt = opt.map_err(|e| Malformed(format!("options: {e:?}")))?;
            options.push(match opt {
                TcpOption::EndOfList => TcpOptionSpec::Eol,
                TcpOption::NoOperation => TcpOptionSpec::Nop,
                TcpOption::Mss(m) => TcpOptionSpec::Mss(m),
                TcpOption::WindowScale(w) => TcpOptionSpec::WindowScale(w),
                TcpOption::SackPermitted => TcpOptionSpec::SackPermitted,
                TcpOption::Sack { blocks, count } => TcpOptionSpec::Sack(
                    blocks[..usize::from(count).min(blocks.len())]
                        .iter()
                        .map(|(l, r)| (l.0, r.0))
                        .collect(),
                ),
                TcpOption::Timestamps(val, ecr) => TcpOptionSpec::Timestamp { val, ecr },
                TcpOption::Unknown { kind, .. } => {
                    return Err(Malformed(format!("unknown option kind {kind}")))
                }
            });
        }
        Ok(Sent {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            flags: packet.flags(),
            seq: packet.seq_number().0,
            ack: packet.ack_number().0,
            window: packet.window_len(),
            urgent: packet.urgent_at(),
            options,
            payload_len: packet.payload_len(),
        })
    }

    /// The segment in script syntax, relative to `map`.
    pub fn to_script(&self, map: &SeqMap) -> String {
        let start = self.seq.wrapping_sub(map.local());
        let mut s = format!(
            "> {} {}:{}({})",
            flags_text(self.flags),
            start,
            start.wrapping_add(self.payload_len as u32),
            self.payload_len
        );
        if self.flags.ack() {
            let _ = write!(s, " ack {}", self.ack.wrapping_sub(map.remote_isn));
        }
        let _ = write!(s, " win {}", self.window);
        if !self.options.is_empty() {
            let rel: Vec<TcpOptionSpec> = self
                .options
                .iter()
                .map(|o| match o {
                    TcpOptionSpec::Sack(b) => TcpOptionSpec::Sack(
                        b.iter()
                            .map(|(l, r)| {
                                (
                                    l.wrapping_sub(map.remote_isn),
                                    r.wrapping_sub(map.remote_isn),
                                )
                            })
                            .collect(),
                    ),
                    other => other.clone(),
                })
                .collect();
            let _ = write!(s, " <{}>", options_text(&rel));
        }
        s
    }
}

/// Flags as packetdrill writes them (`S.`, `F.`, `.`, `R`).
pub fn flags_text(flags: TcpFlags) -> String {
    let mut s = String::new();
    for (f, c) in [
        (TcpFlags::SYN, 'S'),
        (TcpFlags::FIN, 'F'),
        (TcpFlags::RST, 'R'),
        (TcpFlags::PSH, 'P'),
        (TcpFlags::ECE, 'E'),
        (TcpFlags::CWR, 'W'),
        (TcpFlags::URG, 'U'),
        (TcpFlags::ACK, '.'),
    ] {
        if flags.contains(f) {
            s.push(c);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

/// Options as a script writes them.
pub fn options_text(options: &[TcpOptionSpec]) -> String {
    options
        .iter()
        .map(|o| match o {
            TcpOptionSpec::Nop => "nop".to_string(),
            TcpOptionSpec::Eol => "eol".to_string(),
            TcpOptionSpec::Mss(m) => format!("mss {m}"),
            TcpOptionSpec::WindowScale(w) => format!("wscale {w}"),
            TcpOptionSpec::SackPermitted => "sackOK".to_string(),
            TcpOptionSpec::Sack(b) => format!(
                "sack {}",
                b.iter()
                    .map(|(l, r)| format!("{l}:{r}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            TcpOptionSpec::Timestamp { val, ecr } => format!("TS val {val} ecr {ecr}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The segment as the script writes it (for failure messages).
pub fn spec_text(dir: char, spec: &TcpSpec) -> String {
    let mut s = format!("{dir} {} ", flags_text(spec.flags));
    match spec.seq {
        SeqSpec::Range { start, end, len } => {
            let _ = write!(s, "{start}:{end}({len})");
        }
        SeqSpec::Any { len } => {
            let _ = write!(s, "...({len})");
        }
    }
    if let Some(a) = spec.ack {
        let _ = write!(s, " ack {a}");
    }
    if let Some(w) = spec.win {
        let _ = write!(s, " win {w}");
    }
    match &spec.options {
        OptionsSpec::None => {}
        OptionsSpec::Any => s.push_str(" <...>"),
        OptionsSpec::List(l) => {
            let _ = write!(s, " <{}>", options_text(l));
        }
    }
    s
}

/// Which field of an outbound segment differed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The field (`flags`, `seq`, `ack`, `win`, `options`, `length`).
    pub field: &'static str,
    /// The script's value.
    pub expected: String,
    /// Ours.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, sent {}",
            self.field, self.expected, self.actual
        )
    }
}

fn mismatch(field: &'static str, expected: impl ToString, actual: impl ToString) -> Mismatch {
    Mismatch {
        field,
        expected: expected.to_string(),
        actual: actual.to_string(),
    }
}

/// Compares a segment the stack sent with the script's expectation, learning
/// our ISN from a SYN and the timestamp offset from the first TS option.
pub fn check_outbound(spec: &TcpSpec, sent: &Sent, map: &mut SeqMap) -> Result<(), Mismatch> {
    if spec.flags != sent.flags {
        return Err(mismatch(
            "flags",
            flags_text(spec.flags),
            flags_text(sent.flags),
        ));
    }
    if let SeqSpec::Range { start, .. } = spec.seq {
        if sent.flags.syn() && map.local_isn.is_none() {
            map.local_isn = Some(sent.seq.wrapping_sub(start));
        }
        let rel = sent.seq.wrapping_sub(map.local());
        if rel != start {
            return Err(mismatch("seq", start, rel));
        }
    }
    // The scripts have no urgent syntax: the urgent pointer must be zero
    // unless URG is set (which the flags check already compared).
    if !sent.flags.contains(TcpFlags::URG) && sent.urgent != 0 {
        return Err(mismatch("urgent pointer", 0, sent.urgent));
    }
    if spec.seq.len() as usize != sent.payload_len {
        return Err(mismatch("length", spec.seq.len(), sent.payload_len));
    }
    if let Some(ack) = spec.ack {
        let rel = sent.ack.wrapping_sub(map.remote_isn);
        if rel != ack {
            return Err(mismatch("ack", ack, rel));
        }
    }
    if let Some(win) = spec.win {
        if !normalise::window_matches(win, sent.window) {
            return Err(mismatch("win", win, sent.window));
        }
    }
    match &spec.options {
        OptionsSpec::Any => {}
        OptionsSpec::None => {
            if !sent.options.is_empty() {
                return Err(mismatch("options", "none", options_text(&sent.options)));
            }
        }
        OptionsSpec::List(want) => check_options(want, &sent.options, map)?,
    }
    // Learn the TS offset only once the segment matched.
    if map.ts_val_offset.is_none() {
        if let (Some(script_val), Some(live_val)) =
            (ts_val(spec_options(spec)), ts_val(&sent.options))
        {
            map.ts_val_offset = Some(live_val.wrapping_sub(script_val));
        }
    }
    Ok(())
}

fn spec_options(spec: &TcpSpec) -> &[TcpOptionSpec] {
    match &spec.options {
        OptionsSpec::List(l) => l,
        _ => &[],
    }
}

fn ts_val(options: &[TcpOptionSpec]) -> Option<u32> {
    options.iter().find_map(|o| match o {
        TcpOptionSpec::Timestamp { val, .. } => Some(*val),
        _ => None,
    })
}

fn check_options(
    want: &[TcpOptionSpec],
    sent: &[TcpOptionSpec],
    map: &SeqMap,
) -> Result<(), Mismatch> {
    let want_c = normalise::canonical_options(want);
    // Our values brought into the script's frame where packetdrill remaps.
    let sent_c: Vec<TcpOptionSpec> = normalise::canonical_options(sent)
        .into_iter()
        .map(|o| match o {
            TcpOptionSpec::Sack(b) => TcpOptionSpec::Sack(
                b.iter()
                    .map(|(l, r)| {
                        (
                            l.wrapping_sub(map.remote_isn),
                            r.wrapping_sub(map.remote_isn),
                        )
                    })
                    .collect(),
            ),
            other => other,
        })
        .collect();
    let fail = || mismatch("options", options_text(want), options_text(sent));
    if want_c.len() != sent_c.len() {
        return Err(fail());
    }
    for (w, s) in want_c.iter().zip(&sent_c) {
        let ok = match (w, s) {
            (TcpOptionSpec::WindowScale(a), TcpOptionSpec::WindowScale(b)) => {
                normalise::window_scale_matches(*a, *b)
            }
            (
                TcpOptionSpec::Timestamp {
                    val: script_val,
                    ecr: a,
                },
                TcpOptionSpec::Timestamp {
                    val: live_val,
                    ecr: b,
                },
            ) => a == b && ts_val_ok(*script_val, *live_val, map),
            (a, b) => a == b,
        };
        if !ok {
            return Err(fail());
        }
    }
    Ok(())
}

/// TS val: not compared without `--tcp_ts_tick_usecs` (packetdrill's rule);
/// with it, our value (less the learned offset) must be within the
/// tolerance of the script's, counted in ticks.
fn ts_val_ok(script_val: u32, live_val: u32, map: &SeqMap) -> bool {
    let (Some(check), Some(offset)) = (map.ts_val_check, map.ts_val_offset) else {
        return true;
    };
    let drift = live_val.wrapping_sub(offset).wrapping_sub(script_val) as i32;
    u64::from(drift.unsigned_abs()).saturating_mul(check.tick_us) <= check.tolerance_us
}

/// Endpoints of an injected segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flow {
    /// The script's (remote) address.
    pub remote: std::net::SocketAddrV4,
    /// The stack's (local) address.
    pub local: std::net::SocketAddrV4,
}

/// Why a script segment cannot be injected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(pub String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Writes the script's inbound segment into `buf` as wire bytes (header,
/// options, zero payload, checksum) and returns its length.
pub fn build_inbound(
    spec: &TcpSpec,
    map: &SeqMap,
    flow: Flow,
    payload: &[u8],
    buf: &mut [u8],
) -> Result<usize, BuildError> {
    let len = spec.seq.len() as usize;
    let payload = payload
        .get(..len)
        .ok_or_else(|| BuildError(format!("payload of {len} bytes is too large")))?;
    let start = match spec.seq {
        SeqSpec::Range { start, .. } => start,
        SeqSpec::Any { .. } => {
            return Err(BuildError(
                "an inbound segment needs a sequence number".into(),
            ))
        }
    };
    let mut options = TcpOptions::default();
    for o in spec_options(spec) {
        match *o {
            TcpOptionSpec::Nop | TcpOptionSpec::Eol => {}
            TcpOptionSpec::Mss(m) => options.mss = Some(m),
            TcpOptionSpec::WindowScale(w) => options.window_scale = Some(w),
            TcpOptionSpec::SackPermitted => options.sack_permitted = true,
            TcpOptionSpec::Sack(ref blocks) => {
                if blocks.len() > options.sack_blocks.len() {
                    return Err(BuildError("too many SACK blocks".into()));
                }
                for (slot, (l, r)) in options.sack_blocks.iter_mut().zip(blocks) {
                    *slot = (
                        SeqNumber(l.wrapping_add(map.local())),
                        SeqNumber(r.wrapping_add(map.local())),
                    );
                }
                options.sack_count = blocks.len() as u8;
            }
            TcpOptionSpec::Timestamp { val, ecr } => {
                let ecr = match map.ts_val_offset {
                    Some(off) if ecr != 0 => ecr.wrapping_add(off),
                    _ => ecr,
                };
                options.timestamps = Some((val, ecr));
            }
        }
    }
    let window = match spec.win {
        Some(w) => u16::try_from(w)
            .map_err(|_| BuildError(format!("win {w} does not fit the 16-bit field")))?,
        // packetdrill refuses an inbound segment without a window rather
        // than inventing one.
        None => return Err(BuildError("an inbound segment needs `win N`".into())),
    };
    let repr = TcpRepr {
        src_port: flow.remote.port(),
        dst_port: flow.local.port(),
        seq: SeqNumber(start.wrapping_add(map.remote_isn)),
        ack: SeqNumber(spec.ack.map_or(0, |a| a.wrapping_add(map.local()))),
        flags: spec.flags,
        window,
        urgent: 0,
        options,
        payload,
    };
    repr.emit(buf, *flow.remote.ip(), *flow.local.ip())
        .map_err(|e| BuildError(format!("cannot encode the segment: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{parse, EventKind, PacketBody};
    use std::collections::HashSet;
    use std::net::SocketAddrV4;

    const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 168, 0, 1);
    const REMOTE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

    fn spec(line: &str) -> TcpSpec {
        let s = parse(line, &HashSet::new()).unwrap();
        match &s.events[0].kind {
            EventKind::Packet(p) => match &p.body {
                PacketBody::Tcp(t) => t.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    /// Bytes of a segment we "sent", built with the wire crate.
    fn sent(repr: TcpRepr<'_>) -> Sent {
        let mut buf = [0u8; 1600];
        let n = repr.emit(&mut buf, LOCAL, REMOTE).unwrap();
        Sent::decode(&buf[..n], LOCAL, REMOTE).unwrap()
    }

    fn base() -> TcpRepr<'static> {
        TcpRepr {
            src_port: 40000,
            dst_port: 8080,
            seq: SeqNumber(1_000_000),
            ack: SeqNumber(0),
            flags: TcpFlags::SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
        }
    }

    #[test]
    fn syn_sets_isn_and_ts_offset() {
        let mut map = SeqMap::new(5000);
        let mut syn = base();
        syn.options.mss = Some(1460);
        syn.options.window_scale = Some(1);
        syn.options.sack_permitted = true;
        syn.options.timestamps = Some((777, 0));
        let s = sent(syn);
        let e = spec("+0 > S 0:0(0) win 65535 <mss 1460,nop,wscale 6,sackOK,TS val 100 ecr 0>");
        check_outbound(&e, &s, &mut map).unwrap();
        assert_eq!(map.local_isn, Some(1_000_000));
        assert_eq!(map.ts_val_offset, Some(677));
        // Then an ACK relative to both ISNs.
        let mut ack = base();
        ack.flags = TcpFlags::ACK;
        ack.seq = SeqNumber(1_000_001);
        ack.ack = SeqNumber(5001);
        ack.window = 1000;
        check_outbound(&spec("+0 > . 1:1(0) ack 1 win 65535"), &sent(ack), &mut map).unwrap();
    }

    #[test]
    fn mismatches_name_the_field() {
        let mut map = SeqMap::new(5000);
        map.local_isn = Some(1_000_000);
        let mut seg = base();
        seg.flags = TcpFlags::ACK;
        seg.seq = SeqNumber(1_000_001);
        seg.ack = SeqNumber(5002);
        let s = sent(seg);
        let rows: &[(&str, Option<&str>)] = &[
            ("+0 > . 1:1(0) ack 2 win 65535", None),
            ("+0 > . 1:1(0) ack 2", None),
            ("+0 > . 1:1(0) ack 2 win 65535 <...>", None),
            ("+0 > F. 1:1(0) ack 2 win 65535", Some("flags")),
            ("+0 > . 2:2(0) ack 2 win 65535", Some("seq")),
            ("+0 > . 1:2(1) ack 2 win 65535", Some("length")),
            ("+0 > . 1:1(0) ack 1 win 65535", Some("ack")),
            ("+0 > . 1:1(0) ack 2 win 0", Some("win")),
            ("+0 > . 1:1(0) ack 2 win 65535 <nop>", None),
            ("+0 > . 1:1(0) ack 2 win 65535 <mss 1460>", Some("options")),
        ];
        for (line, field) in rows {
            let got = check_outbound(&spec(line), &s, &mut map.clone());
            assert_eq!(
                got.as_ref().err().map(|m| m.field),
                *field,
                "{line}: {got:?}"
            );
        }
    }

    #[test]
    fn stray_urgent_pointer_is_a_mismatch() {
        let mut map = SeqMap::new(5000);
        map.local_isn = Some(1_000_000);
        let mut seg = base();
        seg.flags = TcpFlags::ACK;
        seg.seq = SeqNumber(1_000_001);
        seg.ack = SeqNumber(5001);
        seg.urgent = 7;
        let e = spec("+0 > . 1:1(0) ack 1 win 65535");
        assert_eq!(
            check_outbound(&e, &sent(seg), &mut map).unwrap_err().field,
            "urgent pointer"
        );
    }

    #[test]
    fn options_are_checked_as_a_set() {
        let mut map = SeqMap::new(5000);
        let mut synack = base();
        synack.flags = TcpFlags::SYN | TcpFlags::ACK;
        synack.ack = SeqNumber(5001);
        synack.options.mss = Some(1460);
        synack.options.sack_permitted = true;
        let s = sent(synack);
        let ok = spec("+0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,eol,eol>");
        check_outbound(&ok, &s, &mut map.clone()).unwrap();
        for bad in [
            "+0 > S. 0:0(0) ack 1 win 65535 <mss 1400,sackOK,eol,eol>",
            "+0 > S. 0:0(0) ack 1 win 65535 <mss 1460>",
            "+0 > S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 1 ecr 0>",
            "+0 > S. 0:0(0) ack 1 win 65535",
        ] {
            assert_eq!(
                check_outbound(&spec(bad), &s, &mut map).unwrap_err().field,
                "options",
                "{bad}"
            );
        }
    }

    #[test]
    fn ts_ecr_and_sack_blocks_are_exact() {
        let mut map = SeqMap::new(5000);
        map.local_isn = Some(1_000_000);
        map.ts_val_offset = Some(10);
        let mut seg = base();
        seg.flags = TcpFlags::ACK;
        seg.seq = SeqNumber(1_000_001);
        seg.ack = SeqNumber(5001);
        seg.options.timestamps = Some((12345, 300));
        seg.options.sack_blocks[0] = (SeqNumber(5010), SeqNumber(5020));
        seg.options.sack_count = 1;
        let s = sent(seg);
        check_outbound(
            &spec("+0 > . 1:1(0) ack 1 <nop,nop,TS val 1 ecr 300,nop,nop,sack 10:20>"),
            &s,
            &mut map,
        )
        .unwrap();
        for bad in [
            "+0 > . 1:1(0) ack 1 <nop,nop,TS val 1 ecr 301,nop,nop,sack 10:20>",
            "+0 > . 1:1(0) ack 1 <nop,nop,TS val 1 ecr 300,nop,nop,sack 10:21>",
        ] {
            assert!(check_outbound(&spec(bad), &s, &mut map).is_err(), "{bad}");
        }
    }

    #[test]
    fn ts_val_checked_only_with_a_tick() {
        let mut map = SeqMap::new(5000);
        map.local_isn = Some(1_000_000);
        map.ts_val_offset = Some(10_000);
        let mut seg = base();
        seg.flags = TcpFlags::ACK;
        seg.seq = SeqNumber(1_000_001);
        seg.ack = SeqNumber(5001);
        seg.options.timestamps = Some((10_150, 7));
        let s = sent(seg);
        let e = spec("+0 > . 1:1(0) ack 1 <nop,nop,TS val 100 ecr 7>");
        // No tick: any TS val.
        check_outbound(&e, &s, &mut map.clone()).unwrap();
        // 1 ms ticks, 50 ms tolerance: 50 ticks of drift is fine, 51 is not.
        map.ts_val_check = Some(TsValCheck {
            tick_us: 1000,
            tolerance_us: 50_000,
        });
        check_outbound(&e, &s, &mut map.clone()).unwrap();
        let late = spec("+0 > . 1:1(0) ack 1 <nop,nop,TS val 99 ecr 7>");
        assert_eq!(
            check_outbound(&late, &s, &mut map.clone())
                .unwrap_err()
                .field,
            "options"
        );
    }

    #[test]
    fn inbound_segments_are_remapped() {
        let mut map = SeqMap::new(5000);
        map.local_isn = Some(1_000_000);
        map.ts_val_offset = Some(50);
        let flow = Flow {
            remote: SocketAddrV4::new(REMOTE, 9999),
            local: SocketAddrV4::new(LOCAL, 8080),
        };
        let e = spec("+0 < P. 1:11(10) ack 1 win 32767 <nop,nop,TS val 7 ecr 100,sack 5:6>");
        let mut buf = [0u8; 200];
        let n = build_inbound(&e, &map, flow, &[0u8; 64], &mut buf).unwrap();
        let repr = TcpRepr::parse_bytes(&buf[..n], REMOTE, LOCAL, true).unwrap();
        assert_eq!(repr.seq, SeqNumber(5001));
        assert_eq!(repr.ack, SeqNumber(1_000_001));
        assert_eq!(repr.flags, TcpFlags::PSH | TcpFlags::ACK);
        assert_eq!(repr.window, 32767);
        assert_eq!(repr.payload.len(), 10);
        assert_eq!(repr.options.timestamps, Some((7, 150)));
        assert_eq!(
            repr.options.sack(),
            &[(SeqNumber(1_000_005), SeqNumber(1_000_006))]
        );
        assert_eq!((repr.src_port, repr.dst_port), (9999, 8080));
        let big = spec("+0 < . 1:1(0) ack 1 win 70000");
        assert!(build_inbound(&big, &map, flow, &[], &mut buf).is_err());
        let no_win = spec("+0 < . 1:1(0) ack 1");
        assert!(build_inbound(&no_win, &map, flow, &[], &mut buf).is_err());
    }

    #[test]
    fn sent_segments_print_in_script_syntax() {
        let mut map = SeqMap::new(5000);
        map.local_isn = Some(1_000_000);
        let mut seg = base();
        seg.flags = TcpFlags::SYN | TcpFlags::ACK;
        seg.ack = SeqNumber(5001);
        seg.options.mss = Some(1460);
        let text = sent(seg).to_script(&map);
        assert!(
            text.starts_with("> S. 0:0(0) ack 1 win 65535 <mss 1460"),
            "{text}"
        );
    }
}
