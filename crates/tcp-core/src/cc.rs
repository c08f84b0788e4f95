//! Congestion control: the [`CongestionControl`] trait the engine drives, and
//! [`NewReno`] (RFC 5681 with the RFC 6582 recovery, RFC 6928 initial window,
//! RFC 3465 byte counting), the default.
//!
//! Division of labour: the engine detects the events (new cumulative ACK,
//! third duplicate ACK, partial ACK below the recovery point "recover",
//! full ACK, retransmission timeout, idle restart), keeps the recovery point
//! and does the retransmissions; the algorithm only updates `cwnd` and
//! `ssthresh`. All quantities are bytes. Nothing here allocates or panics;
//! arithmetic saturates and `cwnd` stays within `[1 SMSS, MAX_CWND]`.
//!
//! Refinements of the contract in TCP_API.md: the trait adds
//! [`CongestionControl::mss`] and [`CongestionControl::in_slow_start`];
//! `flight_size` in [`CongestionControl::on_ack`] is the data outstanding
//! *before* the ACK was applied and limits growth to a window that is
//! actually used (see [`NewReno`]).

use core::time::Duration;

use crate::time::Instant;

/// Largest congestion window kept, in bytes: 2^30, the largest window TCP can
/// advertise with window scaling (RFC 7323 section 2.3), so a larger `cwnd`
/// could never be used.
pub const MAX_CWND: usize = 1 << 30;

/// Fallback IW constant of RFC 6928 section 2: "IW = min (10*MSS, max (2*MSS,
/// 14600))".
pub const IW_BYTES: usize = 14_600;

/// Appropriate byte counting limit L, in segments: "an L of 2*SMSS bytes"
/// (RFC 3465 section 2.3), the most a single ACK may grow `cwnd` in slow
/// start.
pub const ABC_LIMIT_SEGMENTS: usize = 2;

/// L during the slow start that follows a retransmission timeout: 1 SMSS
/// (RFC 3465 section 2.3), because ACKs arriving then may cover data that
/// had left the network long before (a burst of cumulative ACKs once a hole
/// is repaired), not data the network just delivered.
pub const ABC_LIMIT_SEGMENTS_AFTER_RTO: usize = 1;

/// The RFC 6928 initial window for a sender MSS of `smss` bytes:
/// `min(10*MSS, max(2*MSS, 14600))`.
pub fn initial_window(smss: usize) -> usize {
    let smss = smss.max(1);
    smss.saturating_mul(10)
        .min(smss.saturating_mul(2).max(IW_BYTES))
        .min(MAX_CWND)
}

/// A congestion control algorithm, driven by the engine's loss and ACK
/// detection.
///
/// Call protocol (RFC 5681 section 3.2, RFC 6582 section 3.2):
/// * outside recovery, every ACK that advances SND.UNA calls
///   [`on_ack`](Self::on_ack);
/// * the third duplicate ACK (when not already in recovery and the
///   RFC 6582 "recover" check passes) calls
///   [`on_enter_recovery`](Self::on_enter_recovery) before the fast
///   retransmit;
/// * in recovery, further duplicate ACKs call
///   [`on_dup_ack_in_recovery`](Self::on_dup_ack_in_recovery), ACKs below
///   "recover" call [`on_partial_ack`](Self::on_partial_ack), and the ACK
///   that covers "recover" calls [`on_exit_recovery`](Self::on_exit_recovery)
///   (not `on_ack`);
/// * a retransmission timeout calls [`on_rto`](Self::on_rto) (and ends any
///   fast recovery);
/// * sending after an idle period longer than the RTO first calls
///   [`on_idle`](Self::on_idle).
pub trait CongestionControl: Send + core::fmt::Debug {
    /// The congestion window `cwnd`, in bytes: the sender may have at most
    /// `min(cwnd, rwnd)` bytes in flight (RFC 5681 section 2).
    fn window(&self) -> usize;

    /// The slow start threshold `ssthresh`, in bytes.
    fn ssthresh(&self) -> usize;

    /// The sender maximum segment size the algorithm counts in.
    fn mss(&self) -> usize;

    /// Whether the sender is in slow start (`cwnd < ssthresh`).
    fn in_slow_start(&self) -> bool {
        self.window() < self.ssthresh()
    }

    /// An ACK acknowledged `newly_acked` new bytes outside fast recovery;
    /// `flight_size` is the data that was outstanding before it
    /// (SND.NXT - SND.UNA before the update). Slow start or congestion
    /// avoidance (RFC 5681 section 3.1).
    fn on_ack(&mut self, now: Instant, newly_acked: usize, flight_size: usize);

    /// Third duplicate ACK: enter fast recovery (RFC 6582 section 3.2 step 2,
    /// RFC 5681 section 3.2 steps 2-3); `flight_size` is the data outstanding.
    fn on_enter_recovery(&mut self, flight_size: usize);

    /// A further duplicate ACK during fast recovery: inflate the window by one
    /// SMSS (RFC 6582 section 3.2 step 3).
    fn on_dup_ack_in_recovery(&mut self);

    /// A partial ACK (acknowledging `newly_acked` bytes, but not everything
    /// up to "recover") during fast recovery (RFC 6582 section 3.2 step 5).
    fn on_partial_ack(&mut self, newly_acked: usize);

    /// A full ACK ends fast recovery; `flight_size` is the data outstanding
    /// after it (RFC 6582 section 3.2 step 6).
    fn on_exit_recovery(&mut self, flight_size: usize);

    /// The retransmission timer expired; `flight_size` is the data outstanding
    /// (RFC 5681 section 3.1, equation 4, and the loss window).
    fn on_rto(&mut self, flight_size: usize);

    /// The sender is about to send after being idle for longer than `rto`
    /// (RFC 5681 section 4.1); `now` is the current time.
    fn on_idle(&mut self, now: Instant, rto: Duration);

    /// The sender MSS changed (for example after the handshake negotiated it).
    fn set_mss(&mut self, smss: usize);
}

/// NewReno: RFC 5681 slow start and congestion avoidance, RFC 6582 fast
/// recovery, RFC 6928 initial window, RFC 3465 appropriate byte counting.
///
/// Growth is limited to a window the sender actually uses: an ACK grows
/// `cwnd` only if the data outstanding before it was at least half of
/// `cwnd`. This keeps an application-limited connection from building an
/// unvalidated window (the concern of RFC 7661; the same test as Linux's
/// `tcp_is_cwnd_limited` in slow start). RFC 5681 itself only requires that
/// `cwnd` not grow faster than stated, which this respects.
#[derive(Clone, Debug)]
pub struct NewReno {
    smss: usize,
    cwnd: usize,
    ssthresh: usize,
    /// Bytes acknowledged since `cwnd` last grew in congestion avoidance
    /// (RFC 5681 section 3.1, RFC 3465 section 2.1).
    bytes_acked: usize,
    /// No ACK or loss yet: the window is still the initial window and follows
    /// MSS changes.
    pristine: bool,
    /// The retransmission timer fired and no new data was acknowledged since:
    /// a further timeout keeps `ssthresh` (RFC 5681 section 3.1: "the value
    /// of ssthresh is held constant" for a segment retransmitted more than
    /// once by the timer).
    in_rto: bool,
    /// In the slow start that follows a timeout: byte counting limit
    /// [`ABC_LIMIT_SEGMENTS_AFTER_RTO`].
    slow_start_after_rto: bool,
}

impl NewReno {
    /// A sender with MSS `smss` and initial `ssthresh` `initial_ssthresh`.
    ///
    /// "The initial value of ssthresh SHOULD be set arbitrarily high (e.g.,
    /// to the size of the largest possible advertised window)" (RFC 5681
    /// section 3.1): pass the peer's advertised window or [`MAX_CWND`]. It is
    /// raised to 2 SMSS if below. `cwnd` starts at [`initial_window`].
    pub fn new(smss: usize, initial_ssthresh: usize) -> NewReno {
        let smss = smss.clamp(1, MAX_CWND);
        NewReno {
            smss,
            cwnd: initial_window(smss),
            ssthresh: initial_ssthresh.clamp(2 * smss, MAX_CWND.max(2 * smss)),
            bytes_acked: 0,
            pristine: true,
            in_rto: false,
            slow_start_after_rto: false,
        }
    }

    /// `max(FlightSize / 2, 2*SMSS)`: RFC 5681 equation 4, RFC 6582 step 2.
    fn reduced_ssthresh(&self, flight_size: usize) -> usize {
        (flight_size / 2).max(2 * self.smss)
    }

    fn set_cwnd(&mut self, cwnd: usize) {
        self.cwnd = cwnd.clamp(self.smss, MAX_CWND.max(self.smss));
    }
}

impl CongestionControl for NewReno {
    fn window(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn mss(&self) -> usize {
        self.smss
    }

    fn on_ack(&mut self, _now: Instant, newly_acked: usize, flight_size: usize) {
        if newly_acked == 0 {
            return;
        }
        self.pristine = false;
        self.in_rto = false;
        if flight_size.saturating_mul(2) < self.cwnd {
            // Application- or receiver-limited: the window is not validated.
            return;
        }
        if self.cwnd < self.ssthresh {
            // Slow start: "cwnd += min (N, SMSS)" (RFC 5681 equation 2), with
            // byte counting limit L = 2*SMSS, or 1*SMSS after a timeout
            // (RFC 3465 sections 2.2, 2.3). Growth stops at ssthresh;
            // congestion avoidance takes over from there.
            let limit = if self.slow_start_after_rto {
                ABC_LIMIT_SEGMENTS_AFTER_RTO
            } else {
                ABC_LIMIT_SEGMENTS
            };
            let inc = newly_acked.min(limit * self.smss);
            let cwnd = self.cwnd.saturating_add(inc).min(self.ssthresh);
            self.set_cwnd(cwnd);
        } else {
            self.slow_start_after_rto = false;
            // Congestion avoidance by byte counting: one SMSS per cwnd of
            // acknowledged bytes (RFC 5681 section 3.1, RFC 3465 section 2.1).
            self.bytes_acked = self.bytes_acked.saturating_add(newly_acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                let cwnd = self.cwnd.saturating_add(self.smss);
                self.set_cwnd(cwnd);
            }
        }
    }

    fn on_enter_recovery(&mut self, flight_size: usize) {
        self.pristine = false;
        self.slow_start_after_rto = false;
        self.ssthresh = self.reduced_ssthresh(flight_size);
        // "cwnd = ssthresh + 3*SMSS" inflates by the three segments that left
        // the network (RFC 5681 section 3.2 step 3).
        let cwnd = self.ssthresh.saturating_add(3 * self.smss);
        self.set_cwnd(cwnd);
        self.bytes_acked = 0;
    }

    fn on_dup_ack_in_recovery(&mut self) {
        let cwnd = self.cwnd.saturating_add(self.smss);
        self.set_cwnd(cwnd);
    }

    fn on_partial_ack(&mut self, newly_acked: usize) {
        // "deflate the congestion window by the amount of new data
        // acknowledged ... If the partial ACK acknowledges at least one SMSS
        // of new data, then add back SMSS bytes" (RFC 6582 section 3.2 step 5).
        self.in_rto = false;
        let mut cwnd = self.cwnd.saturating_sub(newly_acked);
        if newly_acked >= self.smss {
            cwnd = cwnd.saturating_add(self.smss);
        }
        self.set_cwnd(cwnd);
    }

    fn on_exit_recovery(&mut self, flight_size: usize) {
        // RFC 6582 section 3.2 step 6, option (1):
        // "Set cwnd to min (ssthresh, max(FlightSize, SMSS) + SMSS)".
        self.in_rto = false;
        let cwnd = self
            .ssthresh
            .min(flight_size.max(self.smss).saturating_add(self.smss));
        self.set_cwnd(cwnd);
        self.bytes_acked = 0;
    }

    fn on_rto(&mut self, flight_size: usize) {
        self.pristine = false;
        if !self.in_rto {
            self.ssthresh = self.reduced_ssthresh(flight_size);
        }
        self.in_rto = true;
        self.slow_start_after_rto = true;
        // Loss window: "cwnd MUST be set to no more than the loss window, LW,
        // which equals 1 full-sized segment" (RFC 5681 section 3.1).
        self.cwnd = self.smss;
        self.bytes_acked = 0;
    }

    fn on_idle(&mut self, _now: Instant, _rto: Duration) {
        // "cwnd = min(RW, cwnd)" with restart window RW = min(IW, cwnd)
        // (RFC 5681 section 4.1). NewReno keeps no epoch, so `now` and `rto`
        // (the engine already checked the idle time against it) are unused.
        let rw = initial_window(self.smss).min(self.cwnd);
        self.set_cwnd(rw);
        self.bytes_acked = 0;
    }

    fn set_mss(&mut self, smss: usize) {
        self.smss = smss.clamp(1, MAX_CWND);
        if self.pristine {
            self.cwnd = initial_window(self.smss);
        } else {
            let cwnd = self.cwnd;
            self.set_cwnd(cwnd);
        }
        self.ssthresh = self.ssthresh.max(2 * self.smss);
    }
}

/// The factory type of [`Config::congestion_control`](crate::Config::congestion_control).
type Factory = fn(usize, usize) -> Box<dyn CongestionControl>;

/// A connection's congestion controller: the built-in [`NewReno`] stored
/// inline (no allocation per connection, 40 bytes), any other controller
/// boxed. Dereferences to the trait object, so callers use it like a
/// `Box<dyn CongestionControl>`.
#[derive(Debug)]
pub(crate) enum Controller {
    /// The default controller, inline.
    NewReno(NewReno),
    /// A controller built by a custom [`Factory`].
    Custom(Box<dyn CongestionControl>),
}

impl Controller {
    /// The controller `factory` builds. The default factory is recognised
    /// by address and replaced by an inline [`NewReno`]; if the address
    /// comparison misses (function addresses are not guaranteed unique) the
    /// factory is called and its box kept, which behaves the same.
    pub fn new(factory: Factory, smss: usize, initial_ssthresh: usize) -> Controller {
        let default: Factory = crate::config::new_reno;
        if factory as usize == default as usize {
            Controller::NewReno(NewReno::new(smss, initial_ssthresh))
        } else {
            Controller::Custom(factory(smss, initial_ssthresh))
        }
    }
}

// Inherent methods mirroring the trait (enum dispatch; as inherent
// methods they need no import and allow `self.cc.on_rto(self.flight())`).
impl Controller {
    fn get(&self) -> &dyn CongestionControl {
        match self {
            Controller::NewReno(c) => c,
            Controller::Custom(c) => &**c,
        }
    }

    fn get_mut(&mut self) -> &mut dyn CongestionControl {
        match self {
            Controller::NewReno(c) => c,
            Controller::Custom(c) => &mut **c,
        }
    }

    /// See [`CongestionControl::window`].
    pub fn window(&self) -> usize {
        self.get().window()
    }

    /// See [`CongestionControl::ssthresh`].
    pub fn ssthresh(&self) -> usize {
        self.get().ssthresh()
    }

    /// See [`CongestionControl::on_ack`].
    pub fn on_ack(&mut self, now: Instant, newly_acked: usize, flight_size: usize) {
        self.get_mut().on_ack(now, newly_acked, flight_size)
    }

    /// See [`CongestionControl::on_enter_recovery`].
    pub fn on_enter_recovery(&mut self, flight_size: usize) {
        self.get_mut().on_enter_recovery(flight_size)
    }

    /// See [`CongestionControl::on_dup_ack_in_recovery`].
    pub fn on_dup_ack_in_recovery(&mut self) {
        self.get_mut().on_dup_ack_in_recovery()
    }

    /// See [`CongestionControl::on_partial_ack`].
    pub fn on_partial_ack(&mut self, newly_acked: usize) {
        self.get_mut().on_partial_ack(newly_acked)
    }

    /// See [`CongestionControl::on_exit_recovery`].
    pub fn on_exit_recovery(&mut self, flight_size: usize) {
        self.get_mut().on_exit_recovery(flight_size)
    }

    /// See [`CongestionControl::on_rto`].
    pub fn on_rto(&mut self, flight_size: usize) {
        self.get_mut().on_rto(flight_size)
    }

    /// See [`CongestionControl::on_idle`].
    pub fn on_idle(&mut self, now: Instant, rto: Duration) {
        self.get_mut().on_idle(now, rto)
    }

    /// See [`CongestionControl::set_mss`].
    pub fn set_mss(&mut self, smss: usize) {
        self.get_mut().set_mss(smss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const T: Instant = Instant::ZERO;

    #[test]
    fn default_controller_is_inline_custom_is_boxed() {
        let c = Controller::new(crate::Config::default().congestion_control, MSS, MAX_CWND);
        assert!(matches!(c, Controller::NewReno(_)));
        assert_eq!(c.window(), initial_window(MSS));
        fn custom(smss: usize, ssthresh: usize) -> Box<dyn CongestionControl> {
            let mut c = NewReno::new(smss, ssthresh);
            c.on_rto(10 * smss);
            Box::new(c)
        }
        let c = Controller::new(custom, MSS, MAX_CWND);
        assert!(matches!(c, Controller::Custom(_)));
        assert_eq!((c.window(), c.ssthresh()), (MSS, 5 * MSS));
    }

    #[test]
    fn initial_window_rfc6928_table() {
        // (MSS, IW): min(10*MSS, max(2*MSS, 14600)).
        let rows = [
            (536, 5360),
            (1000, 10_000),
            (1460, 14_600),
            (1500, 14_600),
            (8960, 17_920),
            (9000, 18_000),
            (0, 10),
            (usize::MAX, MAX_CWND),
        ];
        for (mss, iw) in rows {
            assert_eq!(initial_window(mss), iw, "mss {mss}");
        }
    }

    #[test]
    fn slow_start_uses_byte_counting_with_l_2() {
        let mut cc = NewReno::new(MSS, usize::MAX);
        assert_eq!(cc.window(), 10 * MSS);
        assert!(cc.in_slow_start());
        cc.on_ack(T, MSS, 10 * MSS);
        assert_eq!(cc.window(), 11 * MSS);
        // A stretch ACK of 5 segments grows by L = 2 SMSS only.
        cc.on_ack(T, 5 * MSS, 11 * MSS);
        assert_eq!(cc.window(), 13 * MSS);
        // A small ACK grows by what it acknowledged.
        cc.on_ack(T, 100, 13 * MSS);
        assert_eq!(cc.window(), 13 * MSS + 100);
    }

    #[test]
    fn slow_start_stops_at_ssthresh_then_congestion_avoidance() {
        let mut cc = NewReno::new(MSS, 11 * MSS + 500);
        cc.on_ack(T, 2 * MSS, 10 * MSS);
        assert_eq!(cc.window(), 11 * MSS + 500);
        assert!(!cc.in_slow_start());
        // One SMSS per cwnd worth of acknowledged bytes.
        let cwnd = cc.window();
        let mut acked = 0;
        while acked + MSS < cwnd {
            cc.on_ack(T, MSS, cwnd);
            acked += MSS;
            assert_eq!(cc.window(), cwnd, "after {acked}");
        }
        cc.on_ack(T, MSS, cwnd);
        assert_eq!(cc.window(), cwnd + MSS);
    }

    #[test]
    fn application_limited_sender_does_not_grow() {
        let mut cc = NewReno::new(MSS, usize::MAX);
        cc.on_ack(T, MSS, MSS);
        assert_eq!(cc.window(), 10 * MSS);
        cc.on_ack(T, MSS, 5 * MSS);
        assert_eq!(cc.window(), 11 * MSS);
    }

    #[test]
    fn fast_recovery_rfc6582_sequence() {
        let mut cc = NewReno::new(MSS, usize::MAX);
        // Grow to 20 segments first.
        for _ in 0..10 {
            let w = cc.window();
            cc.on_ack(T, MSS, w);
        }
        assert_eq!(cc.window(), 20 * MSS);
        cc.on_enter_recovery(20 * MSS);
        assert_eq!(cc.ssthresh(), 10 * MSS);
        assert_eq!(cc.window(), 13 * MSS);
        cc.on_dup_ack_in_recovery();
        cc.on_dup_ack_in_recovery();
        assert_eq!(cc.window(), 15 * MSS);
        // Partial ACK of 3 segments: deflate by 3, add back 1.
        cc.on_partial_ack(3 * MSS);
        assert_eq!(cc.window(), 13 * MSS);
        // Partial ACK below one SMSS: deflate only.
        cc.on_partial_ack(500);
        assert_eq!(cc.window(), 12 * MSS + 500);
        // Full ACK with 4 segments still in flight: min(ssthresh, 4+1).
        cc.on_exit_recovery(4 * MSS);
        assert_eq!(cc.window(), 5 * MSS);
        cc.on_exit_recovery(50 * MSS);
        assert_eq!(cc.window(), 10 * MSS, "capped at ssthresh");
    }

    #[test]
    fn ssthresh_floor_is_two_segments() {
        let mut cc = NewReno::new(MSS, usize::MAX);
        cc.on_enter_recovery(MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.window(), 5 * MSS);
        cc.on_exit_recovery(0);
        assert_eq!(cc.window(), 2 * MSS);
    }

    #[test]
    fn rto_sets_loss_window_and_holds_ssthresh_on_repeat() {
        let mut cc = NewReno::new(MSS, usize::MAX);
        cc.on_rto(30 * MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
        assert_eq!(cc.window(), MSS);
        // Second timeout of the same data: ssthresh held constant.
        cc.on_rto(30 * MSS);
        assert_eq!(cc.ssthresh(), 15 * MSS);
        // New data acknowledged; a later timeout recomputes. Slow start
        // after a timeout counts at most 1 SMSS per ACK (RFC 3465 2.3).
        cc.on_ack(T, 3 * MSS, MSS);
        assert_eq!(cc.window(), 2 * MSS);
        cc.on_ack(T, 2 * MSS, 2 * MSS);
        assert_eq!(cc.window(), 3 * MSS);
        cc.on_rto(8 * MSS);
        assert_eq!(cc.ssthresh(), 4 * MSS);
        assert_eq!(cc.window(), MSS);
    }

    #[test]
    fn partial_ack_never_drops_below_one_segment() {
        let mut cc = NewReno::new(MSS, usize::MAX);
        cc.on_enter_recovery(4 * MSS);
        cc.on_partial_ack(usize::MAX);
        assert_eq!(cc.window(), MSS);
    }

    #[test]
    fn idle_restart_window() {
        let mut cc = NewReno::new(MSS, usize::MAX);
        for _ in 0..20 {
            let w = cc.window();
            cc.on_ack(T, 2 * MSS, w);
        }
        assert!(cc.window() > 10 * MSS);
        cc.on_idle(T, Duration::from_secs(1));
        assert_eq!(cc.window(), 10 * MSS);
        // A smaller window is left alone.
        cc.on_rto(4 * MSS);
        cc.on_idle(T, Duration::from_secs(1));
        assert_eq!(cc.window(), MSS);
    }

    #[test]
    fn set_mss_recomputes_initial_window_until_first_event() {
        let mut cc = NewReno::new(536, usize::MAX);
        assert_eq!(cc.window(), 5360);
        cc.set_mss(1460);
        assert_eq!(cc.window(), 14_600);
        cc.on_ack(T, 1460, 14_600);
        cc.set_mss(500);
        assert_eq!(cc.window(), 16_060);
        assert_eq!(cc.mss(), 500);
        cc.set_mss(0);
        assert_eq!(cc.mss(), 1);
    }

    #[derive(Clone, Debug)]
    enum Ev {
        Ack(usize, usize),
        Enter(usize),
        Dup,
        Partial(usize),
        Exit(usize),
        Rto(usize),
        Idle,
        Mss(usize),
    }

    fn ev() -> impl proptest::strategy::Strategy<Value = Ev> {
        use proptest::prelude::*;
        let bytes = prop_oneof![0usize..200_000, Just(usize::MAX), Just(0)];
        prop_oneof![
            6 => (bytes.clone(), bytes.clone()).prop_map(|(a, f)| Ev::Ack(a, f)),
            1 => bytes.clone().prop_map(Ev::Enter),
            2 => Just(Ev::Dup),
            1 => bytes.clone().prop_map(Ev::Partial),
            1 => bytes.clone().prop_map(Ev::Exit),
            1 => bytes.clone().prop_map(Ev::Rto),
            1 => Just(Ev::Idle),
            1 => prop_oneof![0usize..10_000, Just(usize::MAX)].prop_map(Ev::Mss),
        ]
    }

    proptest::proptest! {
        /// Under any event sequence: 1 SMSS <= cwnd <= MAX_CWND, ssthresh >=
        /// 2 SMSS, an ACK never shrinks cwnd nor grows it by more than L, and
        /// nothing panics.
        #[test]
        fn invariants_hold_for_any_event_sequence(
            smss in 1usize..10_000,
            events in proptest::collection::vec(ev(), 0..80),
        ) {
            let mut cc = NewReno::new(smss, usize::MAX);
            for e in events {
                let before = cc.window();
                match e {
                    Ev::Ack(a, f) => {
                        cc.on_ack(T, a, f);
                        proptest::prop_assert!(cc.window() >= before);
                        proptest::prop_assert!(cc.window() - before <= ABC_LIMIT_SEGMENTS * cc.mss());
                    }
                    Ev::Enter(f) => cc.on_enter_recovery(f),
                    Ev::Dup => cc.on_dup_ack_in_recovery(),
                    Ev::Partial(a) => cc.on_partial_ack(a),
                    Ev::Exit(f) => {
                        cc.on_exit_recovery(f);
                        proptest::prop_assert!(cc.window() <= cc.ssthresh().max(cc.mss()));
                    }
                    Ev::Rto(f) => {
                        cc.on_rto(f);
                        proptest::prop_assert_eq!(cc.window(), cc.mss());
                    }
                    Ev::Idle => {
                        cc.on_idle(T, Duration::from_secs(1));
                        proptest::prop_assert!(cc.window() <= before);
                    }
                    Ev::Mss(m) => cc.set_mss(m),
                }
                proptest::prop_assert!(cc.window() >= cc.mss());
                proptest::prop_assert!(cc.window() <= MAX_CWND.max(cc.mss()));
                proptest::prop_assert!(cc.ssthresh() >= 2 * cc.mss());
            }
        }
    }

    #[test]
    fn huge_values_saturate() {
        let mut cc = NewReno::new(MSS, usize::MAX);
        for _ in 0..2000 {
            cc.on_dup_ack_in_recovery();
        }
        cc.on_enter_recovery(usize::MAX);
        assert!(cc.window() <= MAX_CWND);
        cc.on_ack(T, usize::MAX, usize::MAX);
        assert!(cc.window() <= MAX_CWND);
        let boxed: Box<dyn CongestionControl> = Box::new(cc);
        assert!(boxed.window() >= MSS);
    }
}
