//! Per-core statistics, printed through `tracing` at the configured interval.

use packet_io::Counters;
use std::time::{Duration, Instant};

/// Counters of one core (owned by the thread that runs the core's stack).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoreStats {
    /// Frames received from the device queue.
    pub rx_packets: u64,
    /// Bytes received from the device queue.
    pub rx_bytes: u64,
    /// Frames sent to the device queue.
    pub tx_packets: u64,
    /// Bytes sent to the device queue.
    pub tx_bytes: u64,
    /// Frames received from other cores (flows this core owns).
    pub forwarded_in: u64,
    /// Frames handed to the owning core.
    pub forwarded_out: u64,
    /// Frames the stack dropped: malformed, not for us, unsupported,
    /// forwarding queue full or unroutable.
    pub drops: u64,
    /// Frames the device queue dropped before the stack saw them: the
    /// receive ring was full or the fill ring had no free frame (AF_XDP's
    /// `XDP_STATISTICS`). Losses the peer sees as retransmissions.
    pub device_drops: u64,
    /// TCP segments retransmitted (from the engine).
    pub retransmissions: u64,
    /// SYNs and handshake-completing ACKs the engine dropped because a
    /// listener's SYN queue or accept queue was full, or a connection or
    /// buffer limit was reached (Linux's `ListenOverflows` and
    /// `ListenDrops`); the peer retries after its retransmission timeout.
    pub listen_drops: u64,
    /// Connections the engine holds now.
    pub active_flows: u64,
    /// ICMP echo requests answered.
    pub echo_replies: u64,
    /// Application calls served.
    pub calls: u64,
    /// Frames the device's transmit ring refused for lack of room (they
    /// wait in the stack's backlog and go out first on the next pass).
    pub tx_ring_full: u64,
    /// Passes of the stack loop.
    pub passes: u64,
    /// Of those, passes the application thread ran while it waited
    /// (threaded mode; see `runtime::driver`).
    pub app_passes: u64,
    /// Select-style waits entered (the stack had nothing to do).
    pub waits: u64,
}

/// Turns counter snapshots into the periodic report.
#[derive(Debug)]
pub struct StatsReporter {
    interval: Option<Duration>,
    last_at: Instant,
    last: CoreStats,
}

impl StatsReporter {
    /// A reporter printing every `interval` (none when zero).
    pub fn new(interval: Duration, now: Instant) -> Self {
        StatsReporter {
            interval: (!interval.is_zero()).then_some(interval),
            last_at: now,
            last: CoreStats::default(),
        }
    }

    /// When the next report is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.interval.map(|i| self.last_at + i)
    }

    /// Prints a line for `core` if the interval has passed.
    pub fn maybe_report(&mut self, core: usize, now: Instant, stats: &CoreStats, dev: &Counters) {
        let Some(interval) = self.interval else {
            return;
        };
        let elapsed = now.saturating_duration_since(self.last_at);
        if elapsed < interval {
            return;
        }
        let secs = elapsed.as_secs_f64().max(1e-9);
        let rx = stats.rx_packets - self.last.rx_packets;
        let tx = stats.tx_packets - self.last.tx_packets;
        let rx_gbps = (stats.rx_bytes - self.last.rx_bytes) as f64 * 8.0 / secs / 1e9;
        let tx_gbps = (stats.tx_bytes - self.last.tx_bytes) as f64 * 8.0 / secs / 1e9;
        let dev_drops = dev.rx_drop_fill_empty + dev.rx_drop_ring_full + dev.tx_ring_full;
        tracing::info!(
            core,
            rx_pps = (rx as f64 / secs) as u64,
            tx_pps = (tx as f64 / secs) as u64,
            rx_gbps = format_args!("{rx_gbps:.3}"),
            tx_gbps = format_args!("{tx_gbps:.3}"),
            active_flows = stats.active_flows,
            drops = stats.drops - self.last.drops,
            device_drops = dev_drops,
            retransmissions = stats.retransmissions - self.last.retransmissions,
            forwarded_in = stats.forwarded_in - self.last.forwarded_in,
            forwarded_out = stats.forwarded_out - self.last.forwarded_out,
            "mtcp core stats"
        );
        self.last = *stats;
        self.last_at = now;
    }
}
