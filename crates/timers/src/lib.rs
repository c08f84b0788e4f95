//! Hierarchical timing wheel for mtcp-rs.
//!
//! A [`Wheel`] holds many timers (retransmission, delayed ACK, TIME_WAIT,
//! keep-alive, ... for every connection of one core) and answers two
//! questions cheaply: which timers are due now ([`Wheel::advance`]) and when
//! the next one is due ([`Wheel::next_deadline`]). Insert and cancel are O(1);
//! a timer is cancelled by the [`TimerHandle`] its insertion returned, and a
//! stale handle (of a timer that fired or was cancelled) is harmless. Safe
//! Rust only; no allocation once the storage has grown to the peak number of
//! live timers ([`Wheel::with_capacity`] pre-sizes it).
//!
//! The crate knows nothing of TCP. Time is a `u64` count of microseconds from
//! an arbitrary epoch; the wheel counts in ticks of `tick_us` microseconds
//! (1 ms by default) from the time given to [`Wheel::new`].
//!
//! # Layout
//!
//! Six levels of 64 slots, in the manner of tokio's and the Linux kernel's
//! wheels. A slot of level `l` covers `64^l` ticks and the whole level
//! `64^(l+1)` ticks. With the default 1 ms tick:
//!
//! | level | slot width           | level range           |
//! |-------|----------------------|-----------------------|
//! | 0     | 1 tick (1 ms)        | 64 ticks (64 ms)      |
//! | 1     | 64 ticks (64 ms)     | 2^12 ticks (~4.1 s)   |
//! | 2     | 2^12 ticks (~4.1 s)  | 2^18 ticks (~4.4 min) |
//! | 3     | 2^18 ticks (~4.4 min)| 2^24 ticks (~4.7 h)   |
//! | 4     | 2^24 ticks (~4.7 h)  | 2^30 ticks (~12.4 d)  |
//! | 5     | 2^30 ticks (~12.4 d) | 2^36 ticks (~2.2 y)   |
//!
//! A timer due at tick `t` is stored at the level of the highest bit in which
//! `t` and the current tick differ, found as `(63 - leading_zeros(t ^ now |
//! 63)) / 6`, in slot `(t >> 6*level) % 64`. Each level has a `u64`
//! occupancy bitmap, so the next non-empty slot is one rotate and one
//! trailing-zeros count away. When the wheel reaches a slot of level `l > 0`
//! its timers cascade to lower levels; at level 0 they fire.
//!
//! Timers due beyond the current 2^36-tick window (more than ~2.2 years at
//! 1 ms ticks, or just across a window boundary) wait in an overflow list,
//! which the wheel re-examines when it reaches the window of the earliest of
//! them: they are never lost and never fire early.
//!
//! Times are plain `u64` microseconds with no wrap-around: the range is about
//! 584,000 years, and times before the epoch count as tick 0.
//!
//! # Firing precision
//!
//! `advance(now)` fires exactly the timers with `deadline <= now`, never an
//! earlier or a later set: the wheel positions a timer by the tick its
//! deadline falls in, and timers of the current tick that are not yet due
//! wait in a short pending list that every `advance` checks against the exact
//! deadline. [`Wheel::next_deadline`] is never later than the earliest
//! deadline, so a driver that sleeps until it fires every timer exactly on
//! time; a coarser driver (an `epoll_wait` in whole milliseconds) fires it
//! within its own granularity.
//!
//! Refinements of the contract in TCP_API.md: `next_deadline` is a lower
//! bound (never later than the earliest deadline) rather than a time rounded
//! up to the tick, so nothing fires late; `advance` returns how many timers
//! fired; `with_capacity`, `reschedule`, `get`, `get_mut`, `deadline`,
//! `clear`, `tick_us` and `now_us` are additions.
#![deny(unsafe_code)]

use core::fmt;
use core::iter;

/// Slots per level.
const SLOTS: usize = 64;
/// log2 of [`SLOTS`].
const SLOT_BITS: u32 = 6;
/// Number of levels.
const LEVELS: usize = 6;
/// Ticks covered by the whole wheel: 64^6 = 2^36.
const WHEEL_BITS: u32 = SLOT_BITS * LEVELS as u32;
/// List index of the pending list (timers of the current tick or overdue).
const PENDING: usize = LEVELS * SLOTS;
/// List index of the overflow list (timers beyond the current window).
const OVERFLOW: usize = PENDING + 1;
/// Number of intrusive lists: one per slot, plus pending and overflow.
const LISTS: usize = OVERFLOW + 1;
/// End of a list.
const NIL: u32 = u32::MAX;
/// A node that is in no list (vacant, or detached while being processed).
const NO_LIST: u16 = u16::MAX;

/// Default tick: 1 ms.
pub const DEFAULT_TICK_US: u64 = 1_000;

/// Identifies one inserted timer. Handles are checked by generation, so a
/// handle whose timer fired or was cancelled never affects a timer inserted
/// later in the same storage slot (up to 2^32 reuses of one slot).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerHandle {
    index: u32,
    generation: u32,
}

struct Node<T> {
    /// `Some` while the timer is live.
    value: Option<T>,
    generation: u32,
    /// Intrusive list links (`next` doubles as the free-list link).
    prev: u32,
    next: u32,
    /// Which list the node is in, or [`NO_LIST`].
    list: u16,
    deadline_us: u64,
    /// Tick the deadline falls in.
    tick: u64,
}

/// A hierarchical timing wheel of values `T` (see the crate documentation).
pub struct Wheel<T> {
    nodes: Vec<Node<T>>,
    free_head: u32,
    heads: [u32; LISTS],
    occupied: [u64; LEVELS],
    tick_us: u64,
    origin_us: u64,
    /// Current tick: every timer in a slot is due at a later tick.
    elapsed: u64,
    /// Latest time passed to `new` or `advance`.
    now_us: u64,
    /// Lower bound on the ticks in the overflow list (exact until a timer
    /// there is cancelled); `u64::MAX` when it was last seen empty.
    overflow_min: u64,
    /// Lower bound on the deadlines in the pending list (exact until a timer
    /// there is cancelled), so that a busy-polling driver does not rescan the
    /// list on every call; `u64::MAX` when it was last seen empty.
    pending_min: u64,
    len: usize,
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("len", &self.len)
            .field("tick_us", &self.tick_us)
            .field("now_us", &self.now_us)
            .field("elapsed_ticks", &self.elapsed)
            .finish_non_exhaustive()
    }
}

impl<T> Wheel<T> {
    /// An empty wheel with ticks of `tick_us` microseconds (a 0 tick is taken
    /// as 1), whose current time is `now_us`.
    pub fn new(tick_us: u64, now_us: u64) -> Self {
        Self::with_capacity(tick_us, now_us, 0)
    }

    /// Like [`new`](Self::new), with storage for `capacity` live timers
    /// allocated up front.
    pub fn with_capacity(tick_us: u64, now_us: u64, capacity: usize) -> Self {
        Wheel {
            nodes: Vec::with_capacity(capacity),
            free_head: NIL,
            heads: [NIL; LISTS],
            occupied: [0; LEVELS],
            tick_us: tick_us.max(1),
            origin_us: now_us,
            elapsed: 0,
            now_us,
            overflow_min: u64::MAX,
            pending_min: u64::MAX,
            len: 0,
        }
    }

    /// The tick length in microseconds.
    pub fn tick_us(&self) -> u64 {
        self.tick_us
    }

    /// The latest time the wheel was advanced to.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Number of live timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no live timers.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds a timer due at `deadline_us`; O(1). A deadline at or before the
    /// current time fires at the next [`advance`](Self::advance).
    ///
    /// # Panics
    ///
    /// If `u32::MAX - 1` timers are already live (tens of GiB of storage).
    pub fn insert(&mut self, deadline_us: u64, value: T) -> TimerHandle {
        let tick = self.tick_of(deadline_us);
        let index = if self.free_head != NIL {
            let index = self.free_head;
            let node = &mut self.nodes[index as usize];
            self.free_head = node.next;
            node.value = Some(value);
            node.deadline_us = deadline_us;
            node.tick = tick;
            index
        } else {
            let index = u32::try_from(self.nodes.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("timers::Wheel: too many live timers");
            self.nodes.push(Node {
                value: Some(value),
                generation: 0,
                prev: NIL,
                next: NIL,
                list: NO_LIST,
                deadline_us,
                tick,
            });
            index
        };
        self.len += 1;
        self.schedule(index);
        TimerHandle {
            index,
            generation: self.nodes[index as usize].generation,
        }
    }

    /// Removes a timer before it fires and returns its value; O(1). Returns
    /// `None` for a handle whose timer already fired or was cancelled.
    pub fn cancel(&mut self, handle: TimerHandle) -> Option<T> {
        let index = self.live_index(handle)?;
        self.unlink(index);
        self.release(index)
    }

    /// Moves a live timer to a new deadline, keeping its handle; O(1).
    /// Returns `false` (and does nothing) for a stale handle.
    pub fn reschedule(&mut self, handle: TimerHandle, deadline_us: u64) -> bool {
        let Some(index) = self.live_index(handle) else {
            return false;
        };
        self.unlink(index);
        let tick = self.tick_of(deadline_us);
        let node = &mut self.nodes[index as usize];
        node.deadline_us = deadline_us;
        node.tick = tick;
        self.schedule(index);
        true
    }

    /// The value of a live timer.
    pub fn get(&self, handle: TimerHandle) -> Option<&T> {
        let index = self.live_index(handle)?;
        self.nodes[index as usize].value.as_ref()
    }

    /// The value of a live timer, mutably.
    pub fn get_mut(&mut self, handle: TimerHandle) -> Option<&mut T> {
        let index = self.live_index(handle)?;
        self.nodes[index as usize].value.as_mut()
    }

    /// The deadline of a live timer.
    pub fn deadline(&self, handle: TimerHandle) -> Option<u64> {
        let index = self.live_index(handle)?;
        Some(self.nodes[index as usize].deadline_us)
    }

    /// Moves the current time to `now_us` (a time before the current one is
    /// taken as the current one) and passes every timer with
    /// `deadline <= now_us` to `expired`, removing it from the wheel. Returns
    /// how many fired.
    ///
    /// Order: timers that were already due when inserted come first, then
    /// the others in non-decreasing order of the tick their deadline falls
    /// in; timers due in the same tick come in no particular order.
    ///
    /// The cost is O(timers fired or cascaded + occupied slots passed),
    /// independent of how many ticks passed.
    pub fn advance(&mut self, now_us: u64, expired: &mut impl Extend<(TimerHandle, T)>) -> usize {
        let now = now_us.max(self.now_us);
        self.now_us = now;
        let now_tick = self.tick_of(now);
        let mut fired = 0;

        // Pending timers have ticks <= elapsed, before anything in the slots.
        if self.heads[PENDING] != NIL && self.pending_min <= now {
            let mut index = self.heads[PENDING];
            let mut rest_min = u64::MAX;
            while index != NIL {
                let node = &self.nodes[index as usize];
                let next = node.next;
                if node.deadline_us <= now {
                    self.unlink(index);
                    fired += self.fire(index, expired);
                } else {
                    rest_min = rest_min.min(node.deadline_us);
                }
                index = next;
            }
            self.pending_min = rest_min;
        }

        while let Some((list, start)) = self.next_expiration() {
            if start > now_tick {
                break;
            }
            self.elapsed = start;
            if list == OVERFLOW {
                // Recomputed from the timers that stay there.
                self.overflow_min = u64::MAX;
            }
            let mut index = self.take_list(list);
            while index != NIL {
                let next = self.nodes[index as usize].next;
                let node = &mut self.nodes[index as usize];
                node.list = NO_LIST;
                if node.tick <= self.elapsed && node.deadline_us <= now {
                    fired += self.fire(index, expired);
                } else {
                    self.schedule(index);
                }
                index = next;
            }
        }
        self.elapsed = now_tick.max(self.elapsed);
        fired
    }

    /// When to call [`advance`](Self::advance) next, or `None` if no timer
    /// is live.
    ///
    /// The result is never later than the earliest deadline (it may be at or
    /// before the current time when a timer is already due). It is exact for
    /// timers of the current tick; for the others it is the start of the
    /// slot that holds the earliest of them, which can be earlier than its
    /// deadline: advancing to it moves those timers down the wheel (or fires
    /// them) and a new call gives a closer answer. A driver that sleeps
    /// until this time and advances therefore fires every timer exactly at
    /// its deadline, after at most `LEVELS + 2` wake-ups per timer (plus one
    /// per cancelled timer of the current tick, whose deadline may linger as
    /// the bound until the next `advance` past it). O(levels).
    pub fn next_deadline(&self) -> Option<u64> {
        let mut best = (self.heads[PENDING] != NIL).then_some(self.pending_min);
        if let Some((_, start)) = self.next_expiration() {
            let at = self
                .origin_us
                .saturating_add(start.saturating_mul(self.tick_us));
            best = Some(best.map_or(at, |b| b.min(at)));
        }
        best
    }

    /// Removes every timer, dropping the values. Handles issued before stay
    /// stale forever.
    pub fn clear(&mut self) {
        for list in 0..LISTS {
            let mut index = self.take_list(list);
            while index != NIL {
                let next = self.nodes[index as usize].next;
                self.nodes[index as usize].list = NO_LIST;
                drop(self.release(index));
                index = next;
            }
        }
        self.pending_min = u64::MAX;
        self.overflow_min = u64::MAX;
    }

    fn tick_of(&self, us: u64) -> u64 {
        us.saturating_sub(self.origin_us) / self.tick_us
    }

    fn live_index(&self, handle: TimerHandle) -> Option<u32> {
        let node = self.nodes.get(handle.index as usize)?;
        (node.generation == handle.generation && node.value.is_some()).then_some(handle.index)
    }

    /// Puts a node that is in no list where its tick belongs, relative to
    /// `elapsed`.
    fn schedule(&mut self, index: u32) {
        let node = &self.nodes[index as usize];
        let tick = node.tick;
        // Outside `advance`, `elapsed` is the tick of `now_us`, so a deadline
        // at or before now lands here too. Inside, timers of the slot being
        // processed whose deadline is later in the tick land here.
        let list = if tick <= self.elapsed {
            PENDING
        } else {
            let masked = (tick ^ self.elapsed) | (SLOTS as u64 - 1);
            let level = ((63 - masked.leading_zeros()) / SLOT_BITS) as usize;
            if level >= LEVELS {
                self.overflow_min = self.overflow_min.min(tick);
                OVERFLOW
            } else {
                let slot = ((tick >> (SLOT_BITS * level as u32)) as usize) & (SLOTS - 1);
                level * SLOTS + slot
            }
        };
        self.push(list, index);
    }

    /// The earliest non-empty slot (or the overflow list) and the tick at
    /// which the wheel reaches it.
    fn next_expiration(&self) -> Option<(usize, u64)> {
        for level in 0..LEVELS {
            let occupied = self.occupied[level];
            if occupied == 0 {
                continue;
            }
            let shift = SLOT_BITS * level as u32;
            let now_slot = ((self.elapsed >> shift) as usize) & (SLOTS - 1);
            // Every timer at this level is in a slot after `now_slot` in the
            // current window of the level, so no wrap-around is possible.
            let slot = (occupied.rotate_right(now_slot as u32).trailing_zeros() as usize
                + now_slot)
                & (SLOTS - 1);
            debug_assert!(slot > now_slot);
            let level_start = self.elapsed & !((1u64 << (shift + SLOT_BITS)) - 1);
            let start = level_start + ((slot as u64) << shift);
            return Some((level * SLOTS + slot, start));
        }
        if self.heads[OVERFLOW] != NIL {
            // The start of the window holding the earliest overflow timer
            // (at least the next 2^36-tick window: the bound may be stale
            // after a cancel). The last window has no successor, but then no
            // timer can be beyond it either.
            let window_mask = (1u64 << WHEEL_BITS) - 1;
            let next_window = (self.elapsed | window_mask).checked_add(1)?;
            let start = next_window.max(self.overflow_min & !window_mask);
            return Some((OVERFLOW, start));
        }
        None
    }

    fn push(&mut self, list: usize, index: u32) {
        let head = self.heads[list];
        let node = &mut self.nodes[index as usize];
        node.prev = NIL;
        node.next = head;
        node.list = list as u16;
        if head != NIL {
            self.nodes[head as usize].prev = index;
        }
        self.heads[list] = index;
        if list < PENDING {
            self.occupied[list / SLOTS] |= 1 << (list % SLOTS);
        } else if list == PENDING {
            self.pending_min = self.pending_min.min(self.nodes[index as usize].deadline_us);
        }
    }

    /// Detaches a whole list; returns its first node (the rest follow by
    /// `next`). The nodes keep their `list` until the caller resets it.
    fn take_list(&mut self, list: usize) -> u32 {
        let head = self.heads[list];
        self.heads[list] = NIL;
        if list < PENDING {
            self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
        }
        head
    }

    fn unlink(&mut self, index: u32) {
        let node = &mut self.nodes[index as usize];
        let (prev, next, list) = (node.prev, node.next, node.list);
        node.prev = NIL;
        node.next = NIL;
        node.list = NO_LIST;
        if list == NO_LIST {
            return;
        }
        let list = list as usize;
        if prev != NIL {
            self.nodes[prev as usize].next = next;
        } else {
            self.heads[list] = next;
            if next == NIL && list < PENDING {
                self.occupied[list / SLOTS] &= !(1 << (list % SLOTS));
            }
        }
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    /// Frees an unlinked live node; returns its value.
    fn release(&mut self, index: u32) -> Option<T> {
        let node = &mut self.nodes[index as usize];
        let value = node.value.take();
        node.generation = node.generation.wrapping_add(1);
        node.next = self.free_head;
        self.free_head = index;
        self.len -= 1;
        value
    }

    fn fire(&mut self, index: u32, expired: &mut impl Extend<(TimerHandle, T)>) -> usize {
        let handle = TimerHandle {
            index,
            generation: self.nodes[index as usize].generation,
        };
        match self.release(index) {
            Some(value) => {
                expired.extend(iter::once((handle, value)));
                1
            }
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests;
