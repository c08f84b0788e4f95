//! The crossing between an application thread and its stack thread: two
//! bounded lock-free queues (calls one way; replies and other messages the
//! other) and the sleep/wake handshake of both sides.
//!
//! Each side has one producer and one consumer. No lock is taken on the
//! fast path; a side that finds nothing to do sleeps, and the other wakes it
//! only when it announced that it sleeps:
//!
//! * the stack thread sets `stack_idle` before its select-style wait and
//!   re-checks the call queue; the application posts calls and, when it
//!   wants them taken ([`Mailbox::kick`]), reads `stack_idle` and, if set,
//!   signals the stack's [`Waker`] (an eventfd in the stack's poll set);
//! * the application, waiting for messages, yields a few times (its stack
//!   thread runs on the same core), then sets `app_parked`, re-checks and
//!   parks its thread; the stack delivers a batch and unparks it if
//!   `app_parked` was set.
//!
//! Both handshakes are Dekker-style (store flag, full fence, load the other
//! side's queue), so a wake-up is never lost.

use crossbeam_queue::ArrayQueue;
use packet_io::Waker;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::{Thread, ThreadId};
use std::time::Instant;

/// Calls in flight at once: the application posts its asynchronous calls
/// (writes, closes, credit returns) without waiting, so a batch of them
/// waits here until the stack's next pass.
pub const MAILBOX_CAPACITY: usize = 1024;

/// Messages (replies, data, readiness, accepted connections) the stack may
/// have queued for the application; beyond it the stack holds them back
/// until the application drained some.
pub const MESSAGE_CAPACITY: usize = 4096;

/// Times the application yields before parking while it waits for messages.
const YIELDS_BEFORE_PARK: u32 = 16;

/// The shared state of one application/stack pair.
#[derive(Debug)]
pub struct Mailbox<C, R> {
    calls: ArrayQueue<C>,
    replies: ArrayQueue<R>,
    stack_idle: AtomicBool,
    app_parked: AtomicBool,
    app_thread: Mutex<Option<Thread>>,
    stack_waker: Waker,
    /// The stack thread, for waking it from a backstop sleep.
    stack_thread: Mutex<Option<Thread>>,
    /// The stack thread sleeps without watching the device (its
    /// application runs the passes), until unparked or its backstop.
    stack_backstop: AtomicBool,
    /// The application waits for the stack thread to hand the stack over.
    app_wants_driver: AtomicBool,
    /// Times the application came back to the stack (a wait, an
    /// `epoll_wait`, a synchronous call that blocks, `flush` or `poll`):
    /// the end of the batch it was handling.
    app_returns: AtomicU64,
    /// The stack thread has stopped (set before it answers the calls left).
    closed: AtomicBool,
    /// The stack thread is gone (set last, also when it panicked): a call
    /// without a reply by now never gets one.
    exited: AtomicBool,
}

impl<C, R> Mailbox<C, R> {
    /// A mailbox whose stack thread is woken through `stack_waker`.
    pub fn new(stack_waker: Waker) -> Self {
        Mailbox {
            calls: ArrayQueue::new(MAILBOX_CAPACITY),
            replies: ArrayQueue::new(MESSAGE_CAPACITY),
            stack_idle: AtomicBool::new(false),
            app_parked: AtomicBool::new(false),
            app_thread: Mutex::new(None),
            stack_waker,
            stack_thread: Mutex::new(None),
            stack_backstop: AtomicBool::new(false),
            app_wants_driver: AtomicBool::new(false),
            app_returns: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            exited: AtomicBool::new(false),
        }
    }

    // ---- stack side ----

    /// The next call, if any.
    pub fn take_call(&self) -> Option<C> {
        self.calls.pop()
    }

    /// Queues a message for the application without waking it (a pass
    /// wakes it once, with [`wake_app`](Self::wake_app), after its batch).
    /// Returns the message back when the queue is full.
    pub fn deliver(&self, r: R) -> Result<(), R> {
        self.replies.push(r)
    }

    /// Wakes the application if it parked waiting for messages.
    pub fn wake_app(&self) {
        fence(Ordering::SeqCst);
        if self.app_parked.swap(false, Ordering::SeqCst) {
            self.unpark_app();
        }
    }

    fn unpark_app(&self) {
        unpark(&self.app_thread);
    }

    /// Announces that the stack is about to sleep; returns false (and
    /// withdraws the announcement) when a call arrived meanwhile.
    pub fn stack_may_sleep(&self) -> bool {
        self.stack_idle.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.calls.is_empty() && !self.app_wants_driver.load(Ordering::SeqCst) {
            true
        } else {
            self.stack_idle.store(false, Ordering::SeqCst);
            false
        }
    }

    /// The stack thread stops: it still answers the calls already queued;
    /// the application stops posting new ones.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// The stack thread is gone (called last on its way out, from a drop
    /// guard, so also when it panics): wakes an application waiting for a
    /// reply that will not come.
    pub fn mark_exited(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.exited.store(true, Ordering::SeqCst);
        self.unpark_app();
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// True while the application is parked waiting for messages.
    pub fn app_parked(&self) -> bool {
        self.app_parked.load(Ordering::SeqCst)
    }

    /// True while the application waits for the stack thread to hand the
    /// stack over (it runs the passes itself while it waits).
    pub fn app_wants_driver(&self) -> bool {
        self.app_wants_driver.load(Ordering::SeqCst)
    }

    /// The application announces (`true`) that it waits for the stack, and
    /// wakes a stack thread sleeping on the device so that it lets go; or
    /// withdraws the announcement (`false`).
    pub fn want_driver(&self, want: bool) {
        self.app_wants_driver.store(want, Ordering::SeqCst);
        if want {
            self.kick_device();
        }
    }

    /// How many times the application came back to the stack (see
    /// [`app_returned`](Self::app_returned)).
    pub fn app_returns(&self) -> u64 {
        self.app_returns.load(Ordering::Acquire)
    }

    /// The application comes back to the stack: it has answered what it
    /// was handed (its calls are posted), so output held for those answers
    /// to ride on may leave.
    pub fn app_returned(&self) {
        self.app_returns.fetch_add(1, Ordering::Release);
    }

    /// The stack is awake again.
    pub fn stack_awake(&self) {
        self.stack_idle.store(false, Ordering::Release);
    }

    /// Records the calling thread as the stack thread (for
    /// [`backstop_sleep`](Self::backstop_sleep)'s wake-ups).
    pub fn register_stack_thread(&self) {
        *self.stack_thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::thread::current());
    }

    /// The stack thread sleeps for at most `timeout` without watching the
    /// device, while the application runs the stack's passes itself; it is
    /// woken early when the application parks or kicks.
    pub fn backstop_sleep(&self, timeout: std::time::Duration) {
        self.stack_backstop.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.app_parked.load(Ordering::SeqCst) || self.calls_half_full() {
            self.stack_backstop.store(false, Ordering::SeqCst);
            return;
        }
        std::thread::park_timeout(timeout);
        self.stack_backstop.store(false, Ordering::SeqCst);
    }

    fn unpark_stack(&self) {
        if self.stack_backstop.swap(false, Ordering::SeqCst) {
            unpark(&self.stack_thread);
        }
    }

    // ---- application side ----

    /// Queues a call without waking the stack: asynchronous calls gather
    /// here and the stack takes them as one batch on its next pass (see
    /// [`kick`](Self::kick)). Returns the call back when the queue is full.
    pub fn post(&self, c: C) -> Result<(), C> {
        self.calls.push(c)
    }

    /// Wakes the stack if it announced that it sleeps (after posting calls
    /// the application is about to wait on, or a batch it wants sent).
    pub fn kick(&self) {
        fence(Ordering::SeqCst);
        // Swap: one wake-up per sleep of the stack, however many calls follow.
        self.kick_device();
        self.unpark_stack();
    }

    /// Wakes the stack if it sleeps on the device. An application that
    /// was parked calls this when it runs again: a stack that saw it parked
    /// sleeps without the backstop that covers calls posted without a kick.
    pub fn kick_device(&self) {
        fence(Ordering::SeqCst);
        if self.stack_idle.load(Ordering::SeqCst) && self.stack_idle.swap(false, Ordering::SeqCst) {
            self.stack_waker.wake();
        }
    }

    /// True when a message waits for the application.
    pub fn has_message(&self) -> bool {
        !self.replies.is_empty()
    }

    /// True when calls wait for the stack.
    pub fn has_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// True when the call queue is at least half full.
    pub fn calls_half_full(&self) -> bool {
        self.calls.len() * 2 >= self.calls.capacity()
    }

    /// The next message, if any (application side, never waits).
    pub fn take_message(&self) -> Option<R> {
        self.replies.pop()
    }

    /// True once the stack thread is gone.
    pub fn has_exited(&self) -> bool {
        self.exited.load(Ordering::SeqCst)
    }

    /// Waits until a message is queued, the stack thread is gone, or
    /// `deadline` passes; yields first (the stack thread shares the CPU),
    /// then parks. Returns true when a message is there.
    pub fn wait_message(&self, me: &mut Option<ThreadId>, deadline: Option<Instant>) -> bool {
        // Yielding helps only while the stack is runnable (it shares the
        // CPU); a sleeping stack is woken by what we posted, then wakes us.
        for _ in 0..YIELDS_BEFORE_PARK {
            if !self.replies.is_empty() {
                return true;
            }
            if self.exited.load(Ordering::SeqCst) {
                return !self.replies.is_empty();
            }
            if self.stack_idle.load(Ordering::SeqCst) || self.stack_backstop.load(Ordering::SeqCst)
            {
                break;
            }
            std::thread::yield_now();
        }
        let current = std::thread::current();
        if *me != Some(current.id()) {
            *self.app_thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(current.clone());
            *me = Some(current.id());
        }
        loop {
            // Woken with a message: return without announcing a park the
            // stack could see (it would sleep without its backstop).
            if !self.replies.is_empty() || self.exited.load(Ordering::SeqCst) {
                self.app_parked.store(false, Ordering::SeqCst);
                return !self.replies.is_empty();
            }
            self.app_parked.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            // A stack thread in its backstop sleep takes over the device.
            self.unpark_stack();
            if !self.replies.is_empty() || self.exited.load(Ordering::SeqCst) {
                self.app_parked.store(false, Ordering::SeqCst);
                return !self.replies.is_empty();
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        self.app_parked.store(false, Ordering::SeqCst);
                        return false;
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
    }

    /// Wakes the stack thread unconditionally (shutdown).
    pub fn wake_stack(&self) {
        self.stack_waker.wake();
    }
}

/// Unparks the thread recorded in `slot`, if any.
fn unpark(slot: &Mutex<Option<Thread>>) {
    let t = slot.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(t) = t {
        t.unpark();
    }
}

/// Marks the mailbox's stack side gone when dropped (normal exit or panic).
#[derive(Debug)]
pub struct ExitGuard<'a, C, R>(pub &'a Mailbox<C, R>);

impl<C, R> Drop for ExitGuard<'_, C, R> {
    fn drop(&mut self) {
        self.0.mark_exited();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use packet_io::{WaitConfig, Waiter};
    use std::sync::Arc;
    use std::time::Duration;

    /// The application's side of one synchronous call's answer.
    fn wait_reply(mb: &Mailbox<u32, u32>, me: &mut Option<ThreadId>) -> Option<u32> {
        loop {
            if let Some(r) = mb.take_message() {
                return Some(r);
            }
            if !mb.wait_message(me, None) {
                // Messages are delivered before `exited` is set: one more look.
                return mb.take_message();
            }
        }
    }

    /// A call the application waits on: posted, then the stack woken.
    fn send_call(mb: &Mailbox<u32, u32>, c: u32) {
        mb.post(c).unwrap();
        mb.kick();
    }

    /// The stack's answer: delivered, then the application woken.
    fn reply(mb: &Mailbox<u32, u32>, r: u32) {
        mb.deliver(r).unwrap();
        mb.wake_app();
    }

    #[test]
    fn calls_and_replies_cross_without_lost_wakeups() {
        let waiter = Waiter::new(WaitConfig {
            spin: Duration::ZERO,
        })
        .unwrap();
        let mb: Arc<Mailbox<u32, u32>> = Arc::new(Mailbox::new(waiter.waker()));
        let stack = {
            let mb = Arc::clone(&mb);
            std::thread::spawn(move || {
                let mut waiter = waiter;
                let mut served = 0;
                while served < 2000 {
                    while let Some(c) = mb.take_call() {
                        reply(&mb, c + 1);
                        served += 1;
                    }
                    if served < 2000 && mb.stack_may_sleep() {
                        let mut none: [packet_io::MemQueue; 0] = [];
                        let r = waiter
                            .wait(&mut none, &[], Some(Duration::from_secs(5)))
                            .unwrap();
                        assert!(!r.is_empty(), "a wake-up was lost at call {served}");
                    }
                    mb.stack_awake();
                }
            })
        };
        let mut me = None;
        let start = std::time::Instant::now();
        for i in 0..2000u32 {
            send_call(&mb, i);
            assert_eq!(wait_reply(&mb, &mut me), Some(i + 1));
        }
        stack.join().unwrap();
        // A lost wake-up would stall a round trip for the 5 s wait timeout.
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn a_stack_thread_that_dies_does_not_hang_its_application() {
        let waiter = Waiter::new(WaitConfig::default()).unwrap();
        let mb: Arc<Mailbox<u32, u32>> = Arc::new(Mailbox::new(waiter.waker()));
        let stack = {
            let mb = Arc::clone(&mb);
            std::thread::spawn(move || {
                let _guard = ExitGuard(&*mb);
                // Answer one call, then die on the second.
                loop {
                    if let Some(c) = mb.take_call() {
                        if c == 2 {
                            panic!("stack bug (expected by this test)");
                        }
                        reply(&mb, c);
                    }
                    std::thread::yield_now();
                }
            })
        };
        let mut me = None;
        send_call(&mb, 1);
        assert_eq!(wait_reply(&mb, &mut me), Some(1));
        send_call(&mb, 2);
        assert_eq!(wait_reply(&mb, &mut me), None);
        assert!(stack.join().is_err());
    }
}
