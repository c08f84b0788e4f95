//! The select-style wait, after mTCP's `ps_select`.
//!
//! [`Waiter::wait`] first spins over its queues for a configurable budget,
//! checking the rings without system calls (work usually arrives within
//! microseconds under load). When the budget is spent it arms each queue's
//! wake-ups and blocks in `ppoll(2)` on the queues' descriptors plus an
//! `eventfd`, with a microsecond timeout (the interrupt fallback). A
//! [`Waker`], cloned to other threads, signals that eventfd so that an
//! application can hand work to a sleeping stack thread.

use crate::queue::{Armed, Interest, PacketQueue};
use crate::sys::{self, EventFd, PollFd};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most queues one waiter serves (the width of [`Ready`]'s bit sets).
pub const MAX_WAIT_QUEUES: usize = 64;

/// Errors of [`Waiter::wait`].
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// More queues than [`MAX_WAIT_QUEUES`], or interests that do not match the queues.
    #[error("{queues} queues with {interests} interests (at most {MAX_WAIT_QUEUES} queues, one interest each)")]
    BadSet {
        /// Queues given.
        queues: usize,
        /// Interests given.
        interests: usize,
    },
    /// `ppoll(2)` failed.
    #[error("poll: {0}")]
    Poll(#[from] io::Error),
}

/// Which queues are ready after a wait, by position in the slice given to
/// [`Waiter::wait`], and whether a [`Waker`] woke the waiter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    rx: u64,
    tx: u64,
    woken: bool,
}

impl Ready {
    /// True when queue `i` has frames to receive.
    pub fn rx(&self, i: usize) -> bool {
        i < MAX_WAIT_QUEUES && self.rx >> i & 1 == 1
    }

    /// True when queue `i` can transmit.
    pub fn tx(&self, i: usize) -> bool {
        i < MAX_WAIT_QUEUES && self.tx >> i & 1 == 1
    }

    /// Positions of the queues ready in any direction.
    pub fn queues(&self) -> impl Iterator<Item = usize> {
        let bits = self.rx | self.tx;
        (0..MAX_WAIT_QUEUES).filter(move |i| bits >> i & 1 == 1)
    }

    /// True when a [`Waker`] signalled the waiter.
    pub fn woken(&self) -> bool {
        self.woken
    }

    /// True when nothing is ready and no one woke the waiter (the timeout expired).
    pub fn is_empty(&self) -> bool {
        self.rx == 0 && self.tx == 0 && !self.woken
    }

    fn set(&mut self, i: usize, ready: Interest) {
        if ready.rx {
            self.rx |= 1 << i;
        }
        if ready.tx {
            self.tx |= 1 << i;
        }
    }
}

#[derive(Debug)]
struct WakeShared {
    event: EventFd,
    /// Set by wakers; cleared by the waiter when it takes the notification.
    notified: AtomicBool,
    /// Set by the waiter while it is (about to be) blocked in `ppoll(2)`:
    /// only then does a wake need the eventfd (a system call on each side).
    sleeping: AtomicBool,
}

/// Wakes a [`Waiter`] from another thread. Cheap to clone; `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Waker {
    shared: Arc<WakeShared>,
}

impl Waker {
    /// Wakes the waiter: its current or next [`Waiter::wait`] returns with
    /// [`Ready::woken`]. Publish the work before calling this. Wakes that
    /// arrive before the waiter notices coalesce into one, and a waiter
    /// that is not blocked (running, or spinning over its rings) is woken
    /// by the flag alone: the eventfd is written only when it sleeps.
    pub fn wake(&self) {
        // SeqCst pairs with the waiter's store of `sleeping` and load of
        // `notified` (a Dekker handshake): either the waiter sees this
        // notification before it blocks, or this sees it blocking and
        // signals the eventfd, or both.
        if !self.shared.notified.swap(true, Ordering::SeqCst)
            && self.shared.sleeping.load(Ordering::SeqCst)
        {
            self.shared.event.signal();
        }
    }
}

/// Tuning of the wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitConfig {
    /// How long to poll the rings before sleeping.
    pub spin: Duration,
}

impl Default for WaitConfig {
    fn default() -> Self {
        WaitConfig {
            spin: Duration::from_micros(50),
        }
    }
}

/// Blocks a core until one of its queues is ready, a timeout expires or a
/// [`Waker`] fires. Owned by the core's stack thread.
#[derive(Debug)]
pub struct Waiter {
    config: WaitConfig,
    shared: Arc<WakeShared>,
    pollfds: Vec<PollFd>,
    /// Position in the queue slice of each poll entry after the eventfd.
    poll_queue: Vec<usize>,
}

impl Waiter {
    /// A waiter with its own eventfd.
    pub fn new(config: WaitConfig) -> io::Result<Self> {
        Ok(Waiter {
            config,
            shared: Arc::new(WakeShared {
                event: EventFd::new()?,
                notified: AtomicBool::new(false),
                sleeping: AtomicBool::new(false),
            }),
            pollfds: Vec::with_capacity(MAX_WAIT_QUEUES + 1),
            poll_queue: Vec::with_capacity(MAX_WAIT_QUEUES),
        })
    }

    /// A handle that wakes this waiter.
    pub fn waker(&self) -> Waker {
        Waker {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The configuration.
    pub fn config(&self) -> WaitConfig {
        self.config
    }

    /// Takes a pending wake: a flag, no system call. The eventfd is
    /// drained where `ppoll(2)` reports it readable.
    fn take_notification(&self) -> bool {
        self.shared.notified.load(Ordering::Acquire)
            && self.shared.notified.swap(false, Ordering::AcqRel)
    }

    /// Waits until queue `i` is ready for `interests[i]`, a waker fires, or
    /// `timeout` passes (`None`: no limit; zero: only check). Spins for at
    /// most the configured budget, then sleeps in `ppoll(2)`.
    pub fn wait<Q: PacketQueue>(
        &mut self,
        queues: &mut [Q],
        interests: &[Interest],
        timeout: Option<Duration>,
    ) -> Result<Ready, WaitError> {
        if queues.len() > MAX_WAIT_QUEUES || interests.len() != queues.len() {
            return Err(WaitError::BadSet {
                queues: queues.len(),
                interests: interests.len(),
            });
        }
        let start = Instant::now();
        let deadline = timeout.map(|t| start + t);
        let spin_until = start + timeout.map_or(self.config.spin, |t| t.min(self.config.spin));
        let mut ready = Ready::default();

        // Spin phase: ring checks only.
        loop {
            for (i, q) in queues.iter_mut().enumerate() {
                ready.set(i, q.readiness(interests[i]));
            }
            ready.woken = self.take_notification();
            if !ready.is_empty() {
                return Ok(ready);
            }
            if Instant::now() >= spin_until {
                break;
            }
            std::hint::spin_loop();
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(ready);
        }

        // Sleep phase: arm, then block.
        self.pollfds.clear();
        self.poll_queue.clear();
        self.pollfds
            .push(sys::pollfd(self.shared.event.raw(), true, false));
        let mut wake_at = deadline;
        for (i, q) in queues.iter_mut().enumerate() {
            if interests[i].is_empty() {
                continue;
            }
            match q.arm(interests[i]) {
                Armed::Ready(r) => ready.set(i, r),
                Armed::Sleep {
                    fd,
                    readable,
                    writable,
                    until,
                } => {
                    self.pollfds.push(sys::pollfd(fd, readable, writable));
                    self.poll_queue.push(i);
                    if let Some(u) = until {
                        wake_at = Some(wake_at.map_or(u, |w| w.min(u)));
                    }
                }
            }
        }
        // Announce the sleep, then look for a wake once more: a waker that
        // set `notified` before seeing `sleeping` wrote no eventfd.
        self.shared.sleeping.store(true, Ordering::SeqCst);
        if self.shared.notified.load(Ordering::SeqCst) {
            ready.woken = true;
        }
        let slept = ready.is_empty();
        let polled = if slept {
            let sleep = wake_at.map(|w| w.saturating_duration_since(Instant::now()));
            sys::ppoll(&mut self.pollfds, sleep)
        } else {
            Ok(0)
        };
        self.shared.sleeping.store(false, Ordering::SeqCst);
        if slept && self.pollfds[0].revents != 0 {
            // A waker signalled; the notification itself is the flag.
            self.shared.event.drain();
        }
        for (k, &i) in self.poll_queue.iter().enumerate() {
            let woke = self.pollfds[k + 1].revents != 0;
            queues[i].disarm(slept, woke);
        }
        polled?;
        for (i, q) in queues.iter_mut().enumerate() {
            ready.set(i, q.readiness(interests[i]));
        }
        ready.woken = self.take_notification();
        Ok(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_sets_report_positions() {
        let mut r = Ready::default();
        assert!(r.is_empty());
        r.set(0, Interest::RX);
        r.set(5, Interest::TX);
        r.set(63, Interest::BOTH);
        assert!(r.rx(0) && !r.tx(0));
        assert!(!r.rx(5) && r.tx(5));
        assert!(r.rx(63) && r.tx(63));
        assert!(!r.rx(64) && !r.tx(1000), "out of range is not ready");
        assert_eq!(r.queues().collect::<Vec<_>>(), [0, 5, 63]);
        assert!(!r.is_empty() && !r.woken());
    }

    #[test]
    fn waking_a_waiter_that_is_not_asleep_writes_no_eventfd() {
        let mut w = Waiter::new(WaitConfig::default()).unwrap();
        let waker = w.waker();
        waker.wake();
        waker.wake();
        assert!(
            !w.shared.event.drain(),
            "no system call for an awake waiter"
        );
        let mut none: [crate::MemQueue; 0] = [];
        let r = w.wait(&mut none, &[], Some(Duration::ZERO)).unwrap();
        assert!(r.woken(), "the flag alone carries the wake");
    }

    #[test]
    fn a_sleeping_waiter_is_woken_from_another_thread() {
        let mut w = Waiter::new(WaitConfig {
            spin: Duration::ZERO,
        })
        .unwrap();
        let waker = w.waker();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            waker.wake();
        });
        let start = Instant::now();
        let mut none: [crate::MemQueue; 0] = [];
        let r = w
            .wait(&mut none, &[], Some(Duration::from_secs(10)))
            .unwrap();
        t.join().unwrap();
        assert!(r.woken());
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        // The eventfd was drained: the next wait sleeps its whole timeout.
        let start = Instant::now();
        let r = w
            .wait(&mut none, &[], Some(Duration::from_millis(50)))
            .unwrap();
        assert!(r.is_empty());
        assert!(
            start.elapsed() >= Duration::from_millis(40),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_wake_before_the_wait_is_not_lost() {
        let mut w = Waiter::new(WaitConfig::default()).unwrap();
        let waker = w.waker();
        waker.wake();
        let mut none: [crate::MemQueue; 0] = [];
        let r = w
            .wait(&mut none, &[], Some(Duration::from_secs(5)))
            .unwrap();
        assert!(r.woken());
        let r = w
            .wait(&mut none, &[], Some(Duration::from_millis(1)))
            .unwrap();
        assert!(r.is_empty(), "consumed");
    }
}
