//! The endpoint's index of connection deadlines, behind a tiny trait so the
//! data structure can change without touching the endpoint.
//!
//! Each connection has at most one live entry: the earliest deadline of its
//! [`TimerTable`](crate::conn::TimerTable). Entries are identified by a token;
//! a stale token (cancelled, or its slot reused) is detected by the endpoint,
//! which compares it with the token stored beside the connection.

use crate::time::Instant;

/// Which slot (index, generation) a timer entry belongs to.
pub(crate) type TimerKey = (usize, u32);

/// A deadline index.
pub(crate) trait TimerQueue {
    /// Identifies one entry.
    type Token: Copy + PartialEq + core::fmt::Debug;
    /// Add an entry for `key` at `at`.
    fn insert(&mut self, at: Instant, key: TimerKey) -> Self::Token;
    /// Remove an entry (a no-op for a stale token).
    fn cancel(&mut self, token: Self::Token);
    /// Move every entry due at `now` into `out`.
    fn advance(&mut self, now: Instant, out: &mut Vec<(Self::Token, TimerKey)>);
    /// The earliest deadline, if any (may be earlier than the true one, never
    /// later).
    fn next_deadline(&self) -> Option<Instant>;
}

/// [`TimerQueue`] over the `timers` crate's hierarchical wheel: O(1) insert
/// and cancel.
pub(crate) struct WheelQueue {
    wheel: timers::Wheel<TimerKey>,
}

impl core::fmt::Debug for WheelQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WheelQueue")
            .field("len", &self.wheel.len())
            .finish()
    }
}

impl WheelQueue {
    /// A wheel with `tick_us` microsecond ticks starting at `now`.
    pub fn new(tick_us: u64, now: Instant) -> Self {
        WheelQueue {
            wheel: timers::Wheel::new(tick_us, now.as_micros()),
        }
    }

    /// Allocates room for `capacity` live entries up front. Only an empty
    /// wheel is rebuilt (the endpoint reserves when it is created or
    /// reconfigured); one with live entries keeps its storage.
    pub fn reserve(&mut self, capacity: usize) {
        if self.wheel.is_empty() {
            self.wheel =
                timers::Wheel::with_capacity(self.wheel.tick_us(), self.wheel.now_us(), capacity);
        }
    }
}

impl TimerQueue for WheelQueue {
    type Token = timers::TimerHandle;

    fn insert(&mut self, at: Instant, key: TimerKey) -> Self::Token {
        self.wheel.insert(at.as_micros(), key)
    }

    fn cancel(&mut self, token: Self::Token) {
        let _ = self.wheel.cancel(token);
    }

    fn advance(&mut self, now: Instant, out: &mut Vec<(Self::Token, TimerKey)>) {
        self.wheel.advance(now.as_micros(), out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.wheel.next_deadline().map(Instant::from_micros)
    }
}
