//! FreeBSD `sysctl -w` settings mapped onto the stack's configuration.
//!
//! Each name the suite uses is in [`SYSCTLS`], with how it maps. Three
//! outcomes are possible for a `name=value`:
//!
//! - **mapped**: it sets a field of [`Settings`], which the runner turns
//!   into the engine's `Config`;
//! - **no-op**: the value describes what tcp-core always does (or something
//!   tcp-core has no counterpart for and that cannot change what a script
//!   sees), with the reason;
//! - **unsupported**: a behaviour tcp-core does not offer; the script fails
//!   with that reason rather than run against a different behaviour.
//!
//! Unknown names are unsupported.

use std::time::Duration;

/// Stack settings gathered from sysctls, `--mtu` and socket options, before
/// the engine's configuration is built from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// RFC 7323 window scaling (`net.inet.tcp.rfc1323`).
    pub window_scaling: bool,
    /// RFC 7323 timestamps (`net.inet.tcp.rfc1323`).
    pub timestamps: bool,
    /// RFC 2018 SACK (`net.inet.tcp.sack.enable`).
    pub sack: bool,
    /// Receive buffer (`net.inet.tcp.recvspace`).
    pub recv_buf: Option<usize>,
    /// Send buffer (`net.inet.tcp.sendspace`).
    pub send_buf: Option<usize>,
    /// Initial RTO (`net.inet.tcp.rexmit_initial`).
    pub rto_initial: Option<Duration>,
    /// Lower bound of the RTO (`net.inet.tcp.rexmit_slop`).
    pub rto_min: Option<Duration>,
    /// ICMP hard errors abort a connection in SYN-SENT (`net.inet.tcp.icmp_may_rst`).
    pub icmp_may_abort: Option<bool>,
    /// Give up opening a connection after this long (`net.inet.tcp.keepinit`,
    /// `TCP_KEEPINIT`).
    pub connect_timeout: Option<Duration>,
    /// The MSS we announce, from `--mtu` (MTU - 40 for IPv4).
    pub mss: Option<u16>,
    /// RFC 5961 section 3 RST handling (`net.inet.tcp.insecure_rst=0`).
    pub rfc5961_rst: Option<bool>,
    /// RFC 5961 section 4 SYN handling (`net.inet.tcp.insecure_syn=0`).
    pub rfc5961_syn: Option<bool>,
    /// Drop segments with SYN and FIN (`net.inet.tcp.drop_synfin`).
    pub drop_syn_fin: Option<bool>,
    /// Ignore RST in TIME-WAIT (RFC 1337; FreeBSD profile).
    pub rfc1337: Option<bool>,
    /// Re-send our FIN with the ACK of the peer's FIN in a simultaneous close
    /// (FreeBSD profile).
    pub closing_resends_fin: Option<bool>,
    /// Report ECONNRESET for a RST in CLOSING/LAST-ACK (FreeBSD profile).
    pub report_reset_after_fin: Option<bool>,
    /// Let a SYN reopen a connection in TIME-WAIT (profile: off).
    pub time_wait_reuse: Option<bool>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            window_scaling: true,
            timestamps: true,
            sack: true,
            recv_buf: None,
            send_buf: None,
            rto_initial: None,
            rto_min: None,
            icmp_may_abort: None,
            connect_timeout: None,
            mss: None,
            rfc5961_rst: None,
            rfc5961_syn: None,
            drop_syn_fin: None,
            rfc1337: None,
            closing_resends_fin: None,
            report_reset_after_fin: None,
            time_wait_reuse: None,
        }
    }
}

/// A behaviour the scripts expect that no sysctl controls but a tcp-core
/// option selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileEntry {
    /// The tcp-core `Config` field.
    pub field: &'static str,
    /// What FreeBSD does and why the option is RFC-conformant either way.
    pub reason: &'static str,
}

/// The script profile: where the scripts expect a behaviour that no sysctl
/// selects (FreeBSD's fixed behaviour, or what the `STANDARD` branch the
/// runner selects asks for) and tcp-core offers it as an option whose
/// default differs (RFC 9293 allows both), the runner sets the option.
/// Nothing else is set without a sysctl. `conformance --list-sysctls`
/// prints this list.
pub const FREEBSD_PROFILE: &[ProfileEntry] = &[
    ProfileEntry {
        field: "rfc1337 = true",
        reason: "FreeBSD always ignores RST in TIME-WAIT (RFC 1337 section 3, TIME-WAIT \
                 assassination); RFC 9293 3.10.7.4 lets the RST close it, tcp-core's default",
    },
    ProfileEntry {
        field: "closing_resends_fin = true",
        reason: "in a simultaneous close FreeBSD's ACK of the peer's FIN carries its own \
                 unacknowledged FIN again (a retransmission, allowed by RFC 9293 3.8.1); \
                 tcp-core's default is the plain ACK of 3.10.7.4",
    },
    ProfileEntry {
        field: "report_reset_after_fin = true",
        reason: "FreeBSD reports ECONNRESET for a RST in CLOSING/LAST-ACK; RFC 9293 3.10.7.4 \
                 only says to enter CLOSED, tcp-core's default",
    },
    ProfileEntry {
        field: "time_wait_reuse = false",
        reason: "the scripts' STANDARD branch expects a SYN in TIME-WAIT to get the RFC 5961 \
                 section 4 challenge ACK (or, with insecure_syn=1, the RFC 793 reset) instead of \
                 reopening the connection (RFC 9293 MAY-2, tcp-core's default, which FreeBSD's \
                 own branch shows)",
    },
];

impl Settings {
    /// The settings a script starts from: the behaviours of
    /// [`FREEBSD_PROFILE`], everything else tcp-core's defaults.
    pub fn freebsd() -> Self {
        Settings {
            rfc1337: Some(true),
            closing_resends_fin: Some(true),
            report_reset_after_fin: Some(true),
            time_wait_reuse: Some(false),
            ..Settings::default()
        }
    }
}

/// What a `sysctl -w name=value` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SysctlEffect {
    /// It set a field of [`Settings`].
    Mapped,
    /// Accepted without effect, for the reason given.
    NoOp(&'static str),
    /// Not supported: the script fails with this reason.
    Unsupported(String),
}

/// How one sysctl maps (the documentation printed by `--list-sysctls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysctlDoc {
    /// The FreeBSD name.
    pub name: &'static str,
    /// What it does in FreeBSD and what it maps to here.
    pub mapping: &'static str,
}

/// Every sysctl the runner knows, with its mapping.
pub const SYSCTLS: &[SysctlDoc] = &[
    SysctlDoc { name: "net.inet.tcp.rfc1323", mapping: "RFC 7323 window scaling and timestamps: 1 -> Config.window_scaling = timestamps = true, 0 -> both false" },
    SysctlDoc { name: "net.inet.tcp.sack.enable", mapping: "RFC 2018 SACK: Config.sack" },
    SysctlDoc { name: "net.inet.tcp.recvspace", mapping: "default receive buffer: Config.recv_buf" },
    SysctlDoc { name: "net.inet.tcp.sendspace", mapping: "default send buffer: Config.send_buf" },
    SysctlDoc { name: "net.inet.tcp.rexmit_initial", mapping: "initial RTO in ms: Config.rto_initial (RFC 6298 2.1)" },
    SysctlDoc { name: "net.inet.tcp.rexmit_slop", mapping: "ms FreeBSD adds to every RTO, making it the effective RTO floor: Config.rto_min (RFC 6298 2.4)" },
    SysctlDoc { name: "net.inet.tcp.icmp_may_rst", mapping: "ICMP hard errors (time exceeded in transit included) may abort a connection in SYN-SENT (RFC 5927 4.1): Config.icmp_may_abort and Config.icmp_time_exceeded_aborts" },
    SysctlDoc { name: "net.inet.tcp.keepinit", mapping: "ms after which an unfinished open fails: the connection's user timeout, set after connect (RFC 9293 3.9.1 USER TIMEOUT)" },
    SysctlDoc { name: "net.inet.tcp.insecure_rst", mapping: "0 = RFC 5961 section 3 (a RST not at RCV.NXT gets a challenge ACK), 1 = RFC 793 (any in-window RST resets): Config.rfc5961_rst = (value == 0)" },
    SysctlDoc { name: "net.inet.tcp.insecure_syn", mapping: "0 = RFC 5961 section 4 (a SYN in a synchronized state gets a challenge ACK), 1 = RFC 793 (an in-window SYN resets): Config.rfc5961_syn = (value == 0)" },
    SysctlDoc { name: "net.inet.tcp.drop_synfin", mapping: "1 = silently drop segments with SYN and FIN: Config.drop_syn_fin" },
    SysctlDoc { name: "net.inet.tcp.blackhole", mapping: "0 = answer segments for closed ports with RST (RFC 9293 3.10.7.1), as tcp-core does: no-op; other values unsupported" },
    SysctlDoc { name: "net.inet.tcp.ecn.enable", mapping: "tcp-core has no ECN (RFC 3168): 0 (off) and 2 (FreeBSD: never request ECN, only answer it) are no-ops, so our SYNs match; scripts that need ECN answered fail on the segment check; 1 (request ECN) is unsupported" },
    SysctlDoc { name: "net.inet.tcp.ecn.maxretries", mapping: "SYN retransmissions that still request ECN; meaningless without ECN: no-op" },
    SysctlDoc { name: "net.inet.tcp.rexmit_drop_options", mapping: "0 = keep the options on retransmitted SYNs, as tcp-core does: no-op; 1 is unsupported" },
    SysctlDoc { name: "net.inet.tcp.hostcache.purgenow", mapping: "flush the host cache: no-op, tcp-core keeps no per-host cache and every script runs on a fresh Endpoint" },
    SysctlDoc { name: "kern.ipc.maxsockbuf", mapping: "largest socket buffer, from which FreeBSD derives its window scale shift: no-op, tcp-core derives the shift from recv_buf (normalisation rule WindowScaleFactor)" },
    SysctlDoc { name: "net.inet.tcp.syncookies", mapping: "SYN cookies when the SYN cache overflows: no-op, no script overflows the SYN queue and tcp-core has no SYN cookies" },
    SysctlDoc { name: "net.inet.tcp.syncookies_only", mapping: "0 = use the SYN cache (tcp-core's SYN queue): no-op; 1 is unsupported" },
    SysctlDoc { name: "net.inet.tcp.tolerate_missing_ts", mapping: "whether segments without timestamps are accepted after negotiation (RFC 7323 3.2): unsupported (tcp-core has no switch)" },
];

fn parse_bool(name: &str, value: &str) -> Result<bool, SysctlEffect> {
    match value {
        "0" => Ok(false),
        "1" => Ok(true),
        _ => Err(SysctlEffect::Unsupported(format!(
            "{name}={value}: expected 0 or 1"
        ))),
    }
}

fn parse_u64(name: &str, value: &str) -> Result<u64, SysctlEffect> {
    value
        .parse()
        .map_err(|_| SysctlEffect::Unsupported(format!("{name}={value}: not a number")))
}

/// Accepts `value == fixed` as a no-op, anything else as unsupported.
fn only(name: &str, value: &str, fixed: &str, reason: &'static str) -> SysctlEffect {
    if value == fixed {
        SysctlEffect::NoOp(reason)
    } else {
        SysctlEffect::Unsupported(format!("{name}={value} is not supported ({reason})"))
    }
}

/// Applies `name=value` to `settings`.
pub fn apply(settings: &mut Settings, name: &str, value: &str) -> SysctlEffect {
    match apply_inner(settings, name, value) {
        Ok(effect) | Err(effect) => effect,
    }
}

fn apply_inner(s: &mut Settings, name: &str, value: &str) -> Result<SysctlEffect, SysctlEffect> {
    Ok(match name {
        "net.inet.tcp.rfc1323" => {
            let on = parse_bool(name, value)?;
            s.window_scaling = on;
            s.timestamps = on;
            SysctlEffect::Mapped
        }
        "net.inet.tcp.sack.enable" => {
            s.sack = parse_bool(name, value)?;
            SysctlEffect::Mapped
        }
        "net.inet.tcp.recvspace" => {
            s.recv_buf = Some(parse_u64(name, value)? as usize);
            SysctlEffect::Mapped
        }
        "net.inet.tcp.sendspace" => {
            s.send_buf = Some(parse_u64(name, value)? as usize);
            SysctlEffect::Mapped
        }
        "net.inet.tcp.rexmit_initial" => {
            s.rto_initial = Some(Duration::from_millis(parse_u64(name, value)?));
            SysctlEffect::Mapped
        }
        "net.inet.tcp.rexmit_slop" => {
            s.rto_min = Some(Duration::from_millis(parse_u64(name, value)?));
            SysctlEffect::Mapped
        }
        "net.inet.tcp.icmp_may_rst" => {
            s.icmp_may_abort = Some(parse_bool(name, value)?);
            SysctlEffect::Mapped
        }
        "net.inet.tcp.keepinit" => {
            s.connect_timeout = Some(Duration::from_millis(parse_u64(name, value)?));
            SysctlEffect::Mapped
        }
        "net.inet.tcp.insecure_rst" => {
            s.rfc5961_rst = Some(!parse_bool(name, value)?);
            SysctlEffect::Mapped
        }
        "net.inet.tcp.insecure_syn" => {
            s.rfc5961_syn = Some(!parse_bool(name, value)?);
            SysctlEffect::Mapped
        }
        "net.inet.tcp.drop_synfin" => {
            s.drop_syn_fin = Some(parse_bool(name, value)?);
            SysctlEffect::Mapped
        }
        "net.inet.tcp.blackhole" => only(
            name,
            value,
            "0",
            "tcp-core always answers closed ports with RST",
        ),
        "net.inet.tcp.ecn.enable" => match value {
            "0" | "2" => SysctlEffect::NoOp("tcp-core never requests ECN"),
            _ => {
                SysctlEffect::Unsupported(format!("{name}={value}: tcp-core has no ECN (RFC 3168)"))
            }
        },
        "net.inet.tcp.ecn.maxretries" => SysctlEffect::NoOp("tcp-core has no ECN"),
        "net.inet.tcp.rexmit_drop_options" => only(
            name,
            value,
            "0",
            "tcp-core keeps SYN options on retransmission",
        ),
        "net.inet.tcp.hostcache.purgenow" => {
            SysctlEffect::NoOp("no host cache; each script runs on a fresh Endpoint")
        }
        "kern.ipc.maxsockbuf" => {
            SysctlEffect::NoOp("window scale shift comes from recv_buf (rule WindowScaleFactor)")
        }
        "net.inet.tcp.syncookies" => SysctlEffect::NoOp("no script overflows the SYN queue"),
        "net.inet.tcp.syncookies_only" => {
            only(name, value, "0", "tcp-core always keeps a SYN queue")
        }
        "net.inet.tcp.tolerate_missing_ts" => SysctlEffect::Unsupported(format!(
            "{name}={value}: tcp-core has no switch for segments missing timestamps"
        )),
        _ => SysctlEffect::Unsupported(format!("unknown sysctl {name}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        let mut s = Settings::default();
        let rows: &[(&str, &str, bool)] = &[
            // (name, value, supported)
            ("net.inet.tcp.rfc1323", "0", true),
            ("net.inet.tcp.sack.enable", "0", true),
            ("net.inet.tcp.recvspace", "65536", true),
            ("net.inet.tcp.sendspace", "32768", true),
            ("net.inet.tcp.rexmit_initial", "1000", true),
            ("net.inet.tcp.rexmit_slop", "200", true),
            ("net.inet.tcp.icmp_may_rst", "0", true),
            ("net.inet.tcp.keepinit", "75000", true),
            ("net.inet.tcp.insecure_syn", "0", true),
            ("net.inet.tcp.insecure_rst", "1", true),
            ("net.inet.tcp.insecure_rst", "2", false),
            ("net.inet.tcp.drop_synfin", "1", true),
            ("net.inet.tcp.drop_synfin", "yes", false),
            ("net.inet.tcp.ecn.enable", "2", true),
            ("net.inet.tcp.ecn.enable", "1", false),
            ("net.inet.tcp.rexmit_drop_options", "1", false),
            ("net.inet.tcp.rfc1323", "2", false),
            ("net.inet.tcp.recvspace", "lots", false),
            ("net.inet.tcp.no_such_thing", "1", false),
        ];
        for &(name, value, supported) in rows {
            let e = apply(&mut s, name, value);
            assert_eq!(
                !matches!(e, SysctlEffect::Unsupported(_)),
                supported,
                "{name}={value}: {e:?}"
            );
        }
        assert!(!s.window_scaling && !s.timestamps && !s.sack);
        assert_eq!(s.recv_buf, Some(65536));
        assert_eq!(s.send_buf, Some(32768));
        assert_eq!(s.rto_initial, Some(Duration::from_secs(1)));
        assert_eq!(s.rto_min, Some(Duration::from_millis(200)));
        assert_eq!(s.icmp_may_abort, Some(false));
        assert_eq!(s.connect_timeout, Some(Duration::from_secs(75)));
        assert_eq!((s.rfc5961_rst, s.rfc5961_syn), (Some(false), Some(true)));
        assert_eq!(s.drop_syn_fin, Some(true));
    }

    #[test]
    fn every_documented_name_is_known() {
        for doc in SYSCTLS {
            let mut s = Settings::default();
            let e = apply(&mut s, doc.name, "0");
            if let SysctlEffect::Unsupported(r) = &e {
                assert!(!r.starts_with("unknown"), "{}: {r}", doc.name);
            }
        }
    }
}
