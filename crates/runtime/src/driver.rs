//! The stack side of a threaded core, and who runs it.
//!
//! A threaded core's stack (device queue, engine, socket table, the bridge
//! to the application) sits in a [`Driver`] behind a mutex shared by the
//! core's two threads. One pass of the mTCP loop ([`Driver::pass`]) is:
//! receive a batch, run the engine and the expired timers, take the
//! application's calls as one batch, publish data, connections and levels
//! to the application as one batch of messages, transmit a batch.
//!
//! The stack thread and the application thread share a CPU. Handing every
//! pass from one to the other through the scheduler cost about ten context
//! switches per short connection, so passes are run by whichever thread is
//! there:
//!
//! * while the application waits on the stack (`epoll_wait`, a call that
//!   needs a reply), it runs the passes itself, without a context switch,
//!   polling for up to `spin_us` before it parks; if the stack thread holds
//!   the driver, it announces that it wants it, and the stack thread lets
//!   go after its pass (or wakes from its device wait to do so);
//! * when it parks, it wakes the stack thread, which runs the passes and
//!   sleeps in the select-style wait on the device, holding the driver, until
//!   input or a call arrives, and wakes the application when a pass
//!   delivered something;
//! * while the application runs elsewhere (computing, or blocked outside the
//!   stack), the stack thread runs a pass every [`BACKSTOP`] (taking input,
//!   running timers, sending what was posted) whenever the application does
//!   not hold the driver.
//!
//! The lock is taken once per pass, never per packet or per call.

use crate::api::Op;
use crate::bridge::{Bridge, BufPool, Call, Msg};
use crate::mailbox::Mailbox;
use crate::stack::CoreStack;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

type Mb = Mailbox<Call, Msg>;

/// How often the stack thread runs a pass while its application runs
/// elsewhere (the longest input, timers and posted calls wait then).
pub(crate) const BACKSTOP: Duration = Duration::from_millis(1);

/// The stack side of one threaded core.
#[derive(Debug)]
pub(crate) struct Driver {
    pub(crate) stack: CoreStack,
    bridge: Bridge,
    /// A synchronous op waiting for the stack (a lingering close), with its
    /// deadline.
    parked: Option<(Op, Option<Instant>)>,
}

/// Locks `driver`; a thread that panicked inside a pass leaves the stack as
/// it was between two steps, which the next pass continues from.
pub(crate) fn lock(driver: &Mutex<Driver>) -> MutexGuard<'_, Driver> {
    driver.lock().unwrap_or_else(|p| p.into_inner())
}

/// [`lock`] unless another thread holds the driver.
pub(crate) fn try_lock(driver: &Mutex<Driver>) -> Option<MutexGuard<'_, Driver>> {
    match driver.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

impl Driver {
    /// The driver of `stack`, for an application of at most `max_fds`
    /// descriptors.
    pub(crate) fn new(stack: CoreStack, max_fds: usize) -> Self {
        Driver {
            stack,
            bridge: Bridge::new(max_fds),
            parked: None,
        }
    }

    /// One pass of the loop (steps 1-6; the wait is the caller's). Returns
    /// true when anything happened (input, a timer, a call, a frame sent)
    /// or frames forwarded by other cores wait.
    pub(crate) fn pass(&mut self, mb: &Mb, pool: &BufPool) -> bool {
        let stack = &mut self.stack;
        stack.count_pass();
        let now = Instant::now();
        // 1-2. receive a batch and run the engine over it; 3. expired timers
        let mut work = stack.receive(now);
        work |= stack.run_timers(now);
        // 4. application calls, as one batch: a waiting one first
        if let Some((op, deadline)) = self.parked.take() {
            if work || deadline.is_some_and(|d| now >= d) {
                self.parked = self.bridge.retry(stack, mb, op, now, deadline);
            } else {
                self.parked = Some((op, deadline));
            }
        }
        while self.parked.is_none() {
            let Some(call) = mb.take_call() else {
                break;
            };
            work = true;
            self.parked = self.bridge.handle(stack, mb, pool, call);
        }
        // 5. publish: data, accepted connections and levels to the application
        self.bridge.publish(stack, mb, pool);
        // 6. transmit (control segments first)
        work |= stack.transmit(now);
        stack.housekeeping(now);
        work || stack.has_forwarded()
    }

    /// Wakes the application if a pass since the last call delivered
    /// anything.
    pub(crate) fn wake_app(&mut self, mb: &Mb) {
        self.bridge.wake_app(mb);
    }

    /// Forgets that passes delivered messages (the application ran them
    /// itself and reads the messages next: no wake-up is owed).
    pub(crate) fn delivered_to_self(&mut self) {
        self.bridge.take_delivered();
    }

    /// The earliest time the stack must run again for a parked op, and
    /// whether the bridge holds messages back that the application drains
    /// without telling us.
    pub(crate) fn wake_hints(&self) -> (Option<Instant>, bool) {
        (
            self.parked.as_ref().and_then(|(_, d)| *d),
            self.bridge.has_overflow(),
        )
    }

    /// The stack stops: answers the waiting op and every queued synchronous
    /// call with "stopped", then wakes the application.
    pub(crate) fn stop(&mut self, mb: &Mb) {
        // Close first: a call posted after this is never taken, and the
        // application sees the stack gone; every call before it is answered
        // here.
        mb.close();
        if let Some((op, _)) = self.parked.take() {
            let _ = mb.deliver(Msg::Reply(crate::api::stopped(op), None));
        }
        while let Some(call) = mb.take_call() {
            if let Call::Sync(op) = call {
                let _ = mb.deliver(Msg::Reply(crate::api::stopped(op), None));
            }
        }
        mb.wake_app();
    }
}
