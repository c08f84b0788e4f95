//! Retransmission timeout computation, RFC 6298.
//!
//! [`RttEstimator`] keeps SRTT and RTTVAR (section 2), computes the RTO from
//! them, and applies the exponential backoff of section 5.5. It only does the
//! arithmetic: choosing which segments to time is the engine's job. In
//! particular Karn's algorithm (section 3: never sample a retransmitted
//! segment, unless timestamps disambiguate it, RFC 7323 section 4) is applied
//! by simply not calling [`RttEstimator::on_sample`].
//!
//! All values are kept in integer microseconds; nothing here panics or
//! overflows (arithmetic saturates).
//!
//! Refinement of the contract in TCP_API.md: a new sample also clears the
//! backoff (see [`RttEstimator::on_sample`]), and
//! [`RttEstimator::on_syn_timeout_fallback`] implements section 5.7.

use core::time::Duration;

use crate::time::duration_as_micros;

/// Clock granularity G (RFC 6298 section 2): the resolution of the timers
/// that fire retransmissions. The runtime's timer wheel ticks every
/// millisecond, so no RTO can be honoured more precisely than that.
pub const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// Initial RTO before any RTT sample: "the sender SHOULD set RTO <- 1 second"
/// (RFC 6298 section 2.1).
pub const INITIAL_RTO: Duration = Duration::from_secs(1);

/// Lower bound on the RTO: "if it is less than 1 second, then the RTO SHOULD
/// be rounded up to 1 second" (RFC 6298 section 2.4). Deployments commonly
/// configure less (e.g. 200 ms); [`RttEstimator::new`] takes it as argument.
pub const MIN_RTO: Duration = Duration::from_secs(1);

/// Upper bound on the RTO: "a maximum value MAY be placed on RTO provided it
/// is at least 60 seconds" (RFC 6298 section 2.5).
pub const MAX_RTO: Duration = Duration::from_secs(60);

/// RTO to fall back to when a SYN was retransmitted and no RTT sample exists
/// once the connection is established (RFC 6298 section 5.7).
pub const SYN_FALLBACK_RTO: Duration = Duration::from_secs(3);

/// `K` in `RTO = SRTT + max(G, K*RTTVAR)` (RFC 6298 section 2.3).
pub const K: u64 = 4;

/// alpha = 1/8 = 2^-3, the gain of SRTT (RFC 6298 section 2.3).
const ALPHA_SHIFT: u32 = 3;
/// beta = 1/4 = 2^-2, the gain of RTTVAR (RFC 6298 section 2.3).
const BETA_SHIFT: u32 = 2;

/// Backoff doublings beyond this are pointless (2^32 times any RTO exceeds
/// any maximum) and are not counted, so shifts never overflow.
const MAX_BACKOFF: u32 = 32;

/// RFC 6298 RTT estimator and retransmission timeout.
#[derive(Clone, Debug)]
pub struct RttEstimator {
    /// Smoothed RTT (us); meaningful once `sampled` (a flag rather than an
    /// `Option` keeps the estimator, and so each connection, 8 bytes
    /// smaller).
    srtt: u64,
    /// RTT variation (us).
    rttvar: u64,
    /// RTO (us) from the last computation, before backoff.
    base_rto: u64,
    /// Number of doublings applied since the last sample or reset.
    backoff: u32,
    /// At least one sample was taken.
    sampled: bool,
    min: u64,
    max: u64,
}

impl RttEstimator {
    /// An estimator with RTO `initial` until the first sample, never below
    /// `min` nor above `max` (RFC 6298 sections 2.1, 2.4, 2.5; the usual
    /// values are [`INITIAL_RTO`], [`MIN_RTO`], [`MAX_RTO`]).
    ///
    /// Inconsistent arguments are repaired rather than rejected: `max` is
    /// raised to `min` if below it, and `initial` is clamped into
    /// `[min, max]`.
    pub fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        let min = duration_as_micros(min);
        let max = duration_as_micros(max).max(min);
        let initial = duration_as_micros(initial).clamp(min, max);
        RttEstimator {
            srtt: 0,
            rttvar: 0,
            base_rto: initial,
            backoff: 0,
            sampled: false,
            min,
            max,
        }
    }

    /// Folds in one RTT measurement (RFC 6298 sections 2.2 and 2.3) and
    /// recomputes the RTO (clamped to `[min, max]`).
    ///
    /// The first sample sets SRTT <- R, RTTVAR <- R/2; later ones set
    /// RTTVAR <- (1 - beta) RTTVAR + beta |SRTT - R| and then
    /// SRTT <- (1 - alpha) SRTT + alpha R. A fresh RTO replaces a backed-off
    /// one, so the backoff is cleared: this is how "the backed-off RTO is kept
    /// until an acknowledgment for a segment that was not retransmitted"
    /// (Karn) ends.
    pub fn on_sample(&mut self, rtt: Duration) {
        let r = duration_as_micros(rtt);
        if self.sampled {
            let srtt = self.srtt;
            let delta = srtt.abs_diff(r);
            self.rttvar = self
                .rttvar
                .saturating_sub(self.rttvar >> BETA_SHIFT)
                .saturating_add(delta >> BETA_SHIFT);
            self.srtt = srtt
                .saturating_sub(srtt >> ALPHA_SHIFT)
                .saturating_add(r >> ALPHA_SHIFT);
        } else {
            self.srtt = r;
            self.rttvar = r / 2;
            self.sampled = true;
        }
        let srtt = self.srtt;
        let var_term = self
            .rttvar
            .saturating_mul(K)
            .max(duration_as_micros(CLOCK_GRANULARITY));
        self.base_rto = srtt.saturating_add(var_term).clamp(self.min, self.max);
        self.backoff = 0;
    }

    /// The current RTO: the computed value doubled once per
    /// [`backoff`](Self::backoff), capped at the maximum.
    pub fn rto(&self) -> Duration {
        let factor = 1u64.checked_shl(self.backoff).unwrap_or(u64::MAX);
        Duration::from_micros(self.base_rto.saturating_mul(factor).min(self.max))
    }

    /// Doubles the RTO after the retransmission timer expired: "set RTO <-
    /// RTO * 2 ('back off the timer')" (RFC 6298 section 5.5). The result
    /// stays capped at the maximum.
    pub fn backoff(&mut self) {
        if self.backoff < MAX_BACKOFF {
            self.backoff += 1;
        }
    }

    /// Forgets the backoff (for example when the peer's window reopens after
    /// zero-window probing).
    pub fn reset_backoff(&mut self) {
        self.backoff = 0;
    }

    /// Number of doublings currently applied.
    pub fn backoff_count(&self) -> u32 {
        self.backoff
    }

    /// RFC 6298 section 5.7: "If the timer expires awaiting the ACK of a SYN
    /// segment and the TCP implementation is using an RTO less than 3
    /// seconds, the RTO MUST be re-initialized to 3 seconds when data
    /// transmission begins". The engine calls this when the handshake
    /// completes after a SYN (or SYN-ACK) was retransmitted; it does nothing
    /// once an RTT sample exists, since the RTO then comes from measurement.
    pub fn on_syn_timeout_fallback(&mut self) {
        if !self.sampled {
            let fallback = duration_as_micros(SYN_FALLBACK_RTO).min(self.max);
            self.base_rto = self.base_rto.max(fallback);
            self.backoff = 0;
        }
    }

    /// The smoothed RTT, once at least one sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        self.sampled.then(|| Duration::from_micros(self.srtt))
    }

    /// The RTT variation (zero before the first sample).
    pub fn rttvar(&self) -> Duration {
        Duration::from_micros(self.rttvar)
    }

    /// The lower bound on the RTO given at construction.
    pub fn min_rto(&self) -> Duration {
        Duration::from_micros(self.min)
    }

    /// The upper bound on the RTO given at construction (after repair).
    pub fn max_rto(&self) -> Duration {
        Duration::from_micros(self.max)
    }
}

impl Default for RttEstimator {
    /// RFC 6298 defaults: initial 1 s, minimum 1 s, maximum 60 s.
    fn default() -> Self {
        RttEstimator::new(INITIAL_RTO, MIN_RTO, MAX_RTO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn initial_rto_before_any_sample() {
        let e = RttEstimator::default();
        assert_eq!(e.rto(), ms(1000));
        assert_eq!(e.srtt(), None);
        assert_eq!(e.rttvar(), Duration::ZERO);
    }

    #[test]
    fn first_and_second_sample_follow_section_2() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(60_000));
        e.on_sample(ms(100));
        // SRTT = 100, RTTVAR = 50, RTO = 100 + 4*50 = 300.
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        assert_eq!(e.rto(), ms(300));
        e.on_sample(ms(200));
        // RTTVAR = 3/4*50 + 1/4*|100-200| = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5.
        assert_eq!(e.rttvar(), Duration::from_micros(62_500));
        assert_eq!(e.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(e.rto(), Duration::from_micros(112_500 + 250_000));
    }

    #[test]
    fn rto_is_rounded_up_to_min_and_granularity() {
        let mut e = RttEstimator::default();
        e.on_sample(ms(10));
        assert_eq!(e.rto(), ms(1000), "RFC 6298 2.4: at least 1 s");
        let mut e = RttEstimator::new(ms(1000), Duration::ZERO, ms(60_000));
        for _ in 0..100 {
            e.on_sample(Duration::from_micros(100));
        }
        // RTTVAR decays towards 0; G keeps the variance term at 1 ms.
        assert_eq!(e.rto(), Duration::from_micros(100) + CLOCK_GRANULARITY);
    }

    #[test]
    fn backoff_doubles_up_to_max_and_sample_clears_it() {
        let mut e = RttEstimator::new(ms(1000), ms(1000), ms(60_000));
        let expect = [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000];
        for want in expect {
            assert_eq!(e.rto(), ms(want));
            e.backoff();
        }
        for _ in 0..100 {
            e.backoff();
        }
        assert_eq!(e.rto(), ms(60_000));
        assert_eq!(e.backoff_count(), MAX_BACKOFF);
        e.reset_backoff();
        assert_eq!(e.rto(), ms(1000));
        e.backoff();
        e.on_sample(ms(400));
        assert_eq!(e.backoff_count(), 0);
        assert_eq!(e.rto(), ms(1200));
    }

    #[test]
    fn huge_samples_saturate_to_max() {
        let mut e = RttEstimator::default();
        e.on_sample(Duration::MAX);
        assert_eq!(e.rto(), MAX_RTO);
        e.on_sample(Duration::MAX);
        e.backoff();
        assert_eq!(e.rto(), MAX_RTO);
    }

    #[test]
    fn inconsistent_bounds_are_repaired() {
        let e = RttEstimator::new(ms(10), ms(500), ms(100));
        assert_eq!(e.max_rto(), ms(500));
        assert_eq!(e.rto(), ms(500));
    }

    proptest::proptest! {
        /// Whatever the samples and timeouts, the RTO stays within its
        /// bounds, a backoff never shrinks it, and a sample resets it to the
        /// computed value.
        #[test]
        fn rto_stays_within_bounds(
            min_ms in 0u64..2_000,
            extra_ms in 0u64..100_000,
            events in proptest::collection::vec(proptest::option::of(0u64..u64::MAX / 2), 0..60),
        ) {
            let (min, max) = (ms(min_ms), ms(min_ms + extra_ms));
            let mut e = RttEstimator::new(INITIAL_RTO, min, max);
            for ev in events {
                let before = e.rto();
                match ev {
                    Some(us) => {
                        e.on_sample(Duration::from_micros(us % 20_000_000));
                        proptest::prop_assert_eq!(e.backoff_count(), 0);
                        let srtt = e.srtt().unwrap();
                        let want = (srtt + (e.rttvar() * 4).max(CLOCK_GRANULARITY)).clamp(min, max);
                        proptest::prop_assert!(e.rto().abs_diff(want) <= Duration::from_micros(1));
                    }
                    None => {
                        e.backoff();
                        proptest::prop_assert!(e.rto() >= before);
                        proptest::prop_assert!(e.rto() == max || e.rto() == before * 2);
                    }
                }
                proptest::prop_assert!(e.rto() >= min && e.rto() <= max);
            }
        }
    }

    #[test]
    fn syn_fallback_only_without_sample() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(60_000));
        e.backoff();
        e.on_syn_timeout_fallback();
        assert_eq!(e.rto(), ms(3000));
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(60_000));
        e.on_sample(ms(100));
        e.on_syn_timeout_fallback();
        assert_eq!(e.rto(), ms(300));
    }
}
