//! The one list of normalisation rules: stack-specific values in expected
//! segments and system call results that differ by design between FreeBSD
//! (which wrote the scripts) and tcp-core.
//!
//! Everything not named here is compared exactly, after packetdrill's own
//! remapping (sequence and acknowledgement numbers relative to each side's
//! ISN, timestamps relative to the first value seen; see [`crate::check`]).
//! `conformance --list-rules` prints this list.

use crate::script::TcpOptionSpec;

/// A normalisation rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The advertised window of an outbound segment.
    AdvertisedWindow,
    /// The window scale shift of an outbound SYN or SYN-ACK.
    WindowScaleFactor,
    /// Order of the options and NOP/EOL padding in outbound segments.
    OptionLayout,
    /// The value of `getsockopt(SO_RCVBUF / SO_SNDBUF)`.
    SocketBufferSize,
}

/// A rule with what it does and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDoc {
    /// The rule.
    pub rule: Rule,
    /// What is compared instead of the exact value.
    pub comparison: &'static str,
    /// Why the exact value differs by design.
    pub reason: &'static str,
}

/// Every rule. Nothing else is loosened.
pub const RULES: &[RuleDoc] = &[
    RuleDoc {
        rule: Rule::AdvertisedWindow,
        comparison: "`win N` of an outbound segment: zero must be zero, non-zero must be non-zero",
        reason: "the window offered is receive-buffer policy (RFC 9293 3.8.6): FreeBSD sizes and \
                 rounds its buffer (recvspace, MSS multiples, auto-tuning), tcp-core advertises its \
                 configured buffer's free space shifted by its own scale; the scripts test the \
                 state machine, not buffer sizing",
    },
    RuleDoc {
        rule: Rule::WindowScaleFactor,
        comparison: "`wscale N` of an outbound SYN/SYN-ACK: the option must be present with a \
                     shift of at most 14 (RFC 7323 2.3); the shift itself is not compared",
        reason: "FreeBSD derives the shift from kern.ipc.maxsockbuf, tcp-core from its receive \
                 buffer (the smallest shift that can advertise it); either is valid (RFC 7323 2.2)",
    },
    RuleDoc {
        rule: Rule::OptionLayout,
        comparison: "outbound options are compared as a set of (kind, value): NOP and EOL padding \
                     and the order are ignored; every option and every value must match",
        reason: "RFC 9293 3.2 lets options start on any byte and come in any order; FreeBSD lays \
                 out `mss,sackOK,eol,eol`, tcp-core aligns with NOPs",
    },
    RuleDoc {
        rule: Rule::SocketBufferSize,
        comparison: "getsockopt SO_RCVBUF/SO_SNDBUF must succeed; the value is not compared",
        reason: "the scripts check FreeBSD's own buffer accounting (65536 rounded up to 45 MSS = \
                 65700 after the handshake), which has no RFC counterpart",
    },
];

/// [`Rule::AdvertisedWindow`]: does the window we sent match the script's?
pub fn window_matches(expected: u32, actual: u16) -> bool {
    (expected == 0) == (actual == 0)
}

/// Largest valid window scale shift (RFC 7323 section 2.3).
pub const MAX_WINDOW_SCALE: u8 = 14;

/// [`Rule::WindowScaleFactor`]: does the shift we sent match the script's?
pub fn window_scale_matches(_expected: u8, actual: u8) -> bool {
    actual <= MAX_WINDOW_SCALE
}

/// [`Rule::OptionLayout`]: the options without padding, in a canonical order
/// (by option kind), so that two layouts of the same options compare equal.
pub fn canonical_options(options: &[TcpOptionSpec]) -> Vec<TcpOptionSpec> {
    fn kind(o: &TcpOptionSpec) -> u8 {
        match o {
            TcpOptionSpec::Eol => 0,
            TcpOptionSpec::Nop => 1,
            TcpOptionSpec::Mss(_) => 2,
            TcpOptionSpec::WindowScale(_) => 3,
            TcpOptionSpec::SackPermitted => 4,
            TcpOptionSpec::Sack(_) => 5,
            TcpOptionSpec::Timestamp { .. } => 8,
        }
    }
    let mut v: Vec<TcpOptionSpec> = options
        .iter()
        .filter(|o| !matches!(o, TcpOptionSpec::Nop | TcpOptionSpec::Eol))
        .cloned()
        .collect();
    v.sort_by_key(kind);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_rule() {
        let rows = [
            (65535, 65535, true),
            (65535, 1024, true),
            (0, 0, true),
            (0, 1, false),
            (65535, 0, false),
        ];
        for (e, a, ok) in rows {
            assert_eq!(window_matches(e, a), ok, "{e} {a}");
        }
    }

    #[test]
    fn wscale_rule() {
        assert!(window_scale_matches(6, 0));
        assert!(window_scale_matches(6, 14));
        assert!(!window_scale_matches(6, 15));
    }

    #[test]
    fn layout_rule() {
        use TcpOptionSpec::*;
        let freebsd = [Mss(1460), SackPermitted, Eol, Eol];
        let ours = [Mss(1460), Nop, Nop, SackPermitted];
        assert_eq!(canonical_options(&freebsd), canonical_options(&ours));
        let other_mss = [Mss(1400), Nop, Nop, SackPermitted];
        assert_ne!(canonical_options(&freebsd), canonical_options(&other_mss));
        let missing = [Mss(1460)];
        assert_ne!(canonical_options(&freebsd), canonical_options(&missing));
        let extra = [Mss(1460), SackPermitted, Timestamp { val: 1, ecr: 0 }];
        assert_ne!(canonical_options(&freebsd), canonical_options(&extra));
    }

    #[test]
    fn every_rule_documented_once() {
        for r in [
            Rule::AdvertisedWindow,
            Rule::WindowScaleFactor,
            Rule::OptionLayout,
            Rule::SocketBufferSize,
        ] {
            assert_eq!(RULES.iter().filter(|d| d.rule == r).count(), 1, "{r:?}");
        }
    }
}
