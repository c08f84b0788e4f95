//! The stack side of a threaded core, and who runs it.
//!
//! A threaded core's stack (device queue, engine, socket table, the bridge
//! to the application) sits in a [`Driver`] behind a mutex shared by the
//! core's two threads. One pass of the mTCP loop ([`Driver::pass`]) is:
//! take the application's calls as one batch, transmit a batch (the
//! answers with the ACKs owed), receive a batch and run the engine and the
//! expired timers over it, publish data, connections and levels to the
//! application as one batch of messages, and transmit what that input
//! made the engine owe unless it waits for the application's answers.
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
//! A pass that hands the application a batch (data, connections, levels
//! that wake it) holds the engine's output until the application comes
//! back to the stack, for at most 5 ms (see [`Driver::pass`]), as
//! run-to-completion mode does: the answers carry the ACKs of what they
//! answer. While it holds, the stack thread leaves the device alone.
//!
//! The lock is taken once per pass, never per packet or per call.

use crate::api::Op;
use crate::bridge::{Bridge, BufPool, Call, Msg};
use crate::context::{BATCH_HOLD, HOLD_BYTES};
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
    /// Output held while the application handles what a pass handed it.
    hold: Option<Hold>,
}

/// A batch handed to the application, whose answers the engine's output
/// waits for (see [`Driver::pass`]).
#[derive(Debug)]
struct Hold {
    /// [`Mailbox::app_returns`] when the batch was handed over.
    returns: u64,
    /// When it was handed over.
    since: Instant,
    /// Bytes written since.
    bytes: usize,
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

/// The application thread takes the driver: at once when it is free,
/// else it announces that it wants it and waits while the stack thread
/// finishes its pass (or wakes from its device wait) and lets go.
pub(crate) fn acquire<'a>(driver: &'a Mutex<Driver>, mb: &Mb) -> MutexGuard<'a, Driver> {
    match try_lock(driver) {
        Some(d) => d,
        None => {
            mb.want_driver(true);
            let d = lock(driver);
            mb.want_driver(false);
            d
        }
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
            hold: None,
        }
    }

    /// One pass of the loop (steps 1-6; the wait is the caller's). Returns
    /// true when anything happened (input, a timer, a call, a frame sent)
    /// or frames forwarded by other cores wait.
    ///
    /// The application's calls are taken first and what the engine owes
    /// leaves before new input is taken, so that the output of that input
    /// (ACKs, SYN-ACKs, a window update) can wait for the application's
    /// answer and leave in the same segments, as in run-to-completion mode
    /// (`context::send_output`): a pass that hands the application messages
    /// holds the engine's output until the application comes back to the
    /// stack ([`Mailbox::app_returned`]: its next `epoll_wait`, a wait, a
    /// synchronous call that blocks, `flush` or `poll`), for at most
    /// [`BATCH_HOLD`] and [`HOLD_BYTES`] written. Meanwhile new input stays
    /// on the device. The reply to a request then carries the request's
    /// ACK, a client's request the ACK of the SYN-ACK, and its FIN the ACK
    /// of the server's answer: 3 frames each way per short connection,
    /// where the old order (receive, calls, publish, transmit) sent 5 from
    /// the client.
    ///
    /// With `hold` false the pass starts no hold and sends everything
    /// (the application asked for it: [`Context::flush`](crate::Context::flush)).
    ///
    /// `now` is read by the caller once it holds the driver (so that the
    /// engine's clock never goes back between two threads' passes).
    pub(crate) fn pass(&mut self, mb: &Mb, pool: &BufPool, hold: bool, now: Instant) -> bool {
        self.stack.count_pass();
        // 4. application calls, as one batch: a waiting one first
        let mut work = self.take_calls(mb, pool, now, false);
        // 6. transmit (control segments first): the answers, with what the
        // engine owes, unless the batch they answer is still being handled
        let holding = self.holding(mb, now);
        if !holding {
            work |= self.stack.transmit(now);
        }
        // 1-2. receive a batch and run the engine over it (not while the
        // application handles a batch: the ACKs of new input would leave
        // with that batch's answers, ahead of the answers to the new input,
        // as they do not in run-to-completion mode); 3. expired timers
        let input = (!holding && self.stack.receive(now)) | self.stack.run_timers(now);
        // A lingering close waits for input (or its deadline).
        work |= self.take_calls(mb, pool, now, input) | input;
        // 5. publish: data, accepted connections and levels to the application
        let before = self.bridge.handed();
        self.bridge.publish(&mut self.stack, mb, pool);
        if hold && self.bridge.handed() != before && self.hold.is_none() {
            // The application is handed a batch: what the input made the
            // engine owe waits for its answers.
            self.hold = Some(Hold {
                returns: mb.app_returns(),
                since: now,
                bytes: 0,
            });
        }
        if !self.holding(mb, now) {
            work |= self.stack.transmit(now);
        }
        self.stack.housekeeping(now);
        work || self.stack.has_forwarded()
    }

    /// Step 4: the application's calls, a waiting synchronous op first
    /// (retried when `progress` was made or its deadline passed). True when
    /// a call was taken.
    fn take_calls(&mut self, mb: &Mb, pool: &BufPool, now: Instant, progress: bool) -> bool {
        let mut work = false;
        if let Some((op, deadline)) = self.parked.take() {
            if progress || deadline.is_some_and(|d| now >= d) {
                self.parked = self.bridge.retry(&mut self.stack, mb, op, now, deadline);
            } else {
                self.parked = Some((op, deadline));
            }
        }
        while self.parked.is_none() {
            let Some(call) = mb.take_call() else {
                break;
            };
            work = true;
            if let (Some(h), Call::Write { buf, .. }) = (&mut self.hold, &call) {
                h.bytes = h.bytes.saturating_add(buf.len());
            }
            self.parked = self.bridge.handle(&mut self.stack, mb, pool, call);
        }
        work
    }

    /// Whether output is held for the application's answers (see
    /// [`pass`](Self::pass)); ends the hold once the application came back,
    /// [`BATCH_HOLD`] passed or [`HOLD_BYTES`] were written.
    fn holding(&mut self, mb: &Mb, now: Instant) -> bool {
        match &self.hold {
            Some(h)
                if h.returns == mb.app_returns()
                    && h.bytes < HOLD_BYTES
                    && now.saturating_duration_since(h.since) < BATCH_HOLD =>
            {
                true
            }
            _ => {
                self.hold = None;
                false
            }
        }
    }

    /// Whether output is held for the application's answers at `now` (the
    /// time of the pass just run): the stack thread then leaves the device
    /// alone (its input waits for the application's answers, see
    /// [`pass`](Self::pass)).
    pub(crate) fn is_holding(&mut self, mb: &Mb, now: Instant) -> bool {
        self.holding(mb, now)
    }

    /// When held output must leave at the latest (for the stack thread's
    /// device wait).
    fn hold_deadline(&self) -> Option<Instant> {
        self.hold.as_ref().map(|h| h.since + BATCH_HOLD)
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

    /// The earliest time the stack must run again for a parked op or held
    /// output, and
    /// whether the bridge holds messages back that the application drains
    /// without telling us.
    pub(crate) fn wake_hints(&self) -> (Option<Instant>, bool) {
        let parked = self.parked.as_ref().and_then(|(_, d)| *d);
        let until = match (parked, self.hold_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (until, self.bridge.has_overflow())
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
