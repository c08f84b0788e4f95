//! The crossing between an application thread and its stack thread: two
//! bounded lock-free queues (calls one way, replies the other) and the
//! sleep/wake handshake of both sides.
//!
//! Each side has one producer and one consumer. No lock is taken on the
//! fast path; a side that finds nothing to do sleeps, and the other wakes it
//! only when it announced that it sleeps:
//!
//! * the stack thread sets `stack_idle` before its select-style wait and
//!   re-checks the call queue; the application pushes a call, then reads
//!   `stack_idle` and, if set, signals the stack's [`Waker`] (an eventfd in
//!   the stack's poll set);
//! * the application, waiting for its reply, yields a few times (its stack
//!   thread runs on the same core), then sets `app_parked`, re-checks and
//!   parks its thread; the stack pushes the reply and unparks it if
//!   `app_parked` was set.
//!
//! Both handshakes are Dekker-style (store flag, full fence, load the other
//! side's queue), so a wake-up is never lost.

use crossbeam_queue::ArrayQueue;
use packet_io::Waker;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::{Thread, ThreadId};

/// Calls and replies in flight at once (one application thread issues one
/// call at a time; the room is for batches of asynchronous notifications).
pub const MAILBOX_CAPACITY: usize = 64;

/// Times the application yields before parking while it waits for a reply.
const YIELDS_BEFORE_PARK: u32 = 64;

/// The shared state of one application/stack pair.
#[derive(Debug)]
pub struct Mailbox<C, R> {
    calls: ArrayQueue<C>,
    replies: ArrayQueue<R>,
    stack_idle: AtomicBool,
    app_parked: AtomicBool,
    app_thread: Mutex<Option<Thread>>,
    stack_waker: Waker,
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
            replies: ArrayQueue::new(MAILBOX_CAPACITY),
            stack_idle: AtomicBool::new(false),
            app_parked: AtomicBool::new(false),
            app_thread: Mutex::new(None),
            stack_waker,
            closed: AtomicBool::new(false),
            exited: AtomicBool::new(false),
        }
    }

    // ---- stack side ----

    /// The next call, if any.
    pub fn take_call(&self) -> Option<C> {
        self.calls.pop()
    }

    /// True when calls are waiting.
    pub fn has_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// Posts a reply and wakes the application if it sleeps. Never fails:
    /// the application has at most one call outstanding, so the queue has room.
    pub fn reply(&self, r: R) {
        let mut r = r;
        while let Err(back) = self.replies.push(r) {
            // Unreachable with one call in flight; never drop a reply.
            r = back;
            std::thread::yield_now();
        }
        fence(Ordering::SeqCst);
        if self.app_parked.swap(false, Ordering::SeqCst) {
            let t = self
                .app_thread
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if let Some(t) = t {
                t.unpark();
            }
        }
    }

    /// Announces that the stack is about to sleep; returns false (and
    /// withdraws the announcement) when a call arrived meanwhile.
    pub fn stack_may_sleep(&self) -> bool {
        self.stack_idle.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.calls.is_empty() {
            true
        } else {
            self.stack_idle.store(false, Ordering::SeqCst);
            false
        }
    }

    /// The stack thread stops: calls sent from now on are taken back by
    /// the application ([`take_back_call`](Self::take_back_call)); the stack
    /// still answers those already queued.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// The stack thread is gone (called last on its way out, from a drop
    /// guard, so also when it panics): wakes an application waiting for a
    /// reply that will not come.
    pub fn mark_exited(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.exited.store(true, Ordering::SeqCst);
        let t = self
            .app_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(t) = t {
            t.unpark();
        }
    }

    /// True once [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// The stack is awake again.
    pub fn stack_awake(&self) {
        self.stack_idle.store(false, Ordering::Release);
    }

    // ---- application side ----

    /// Queues a call and wakes the stack thread if it sleeps. Returns the
    /// call back when the queue is full (never with one call in flight).
    pub fn send_call(&self, c: C) -> Result<(), C> {
        self.calls.push(c)?;
        fence(Ordering::SeqCst);
        if self.stack_idle.load(Ordering::SeqCst) {
            self.stack_waker.wake();
        }
        Ok(())
    }

    /// Application side, after finding the mailbox closed: takes back a call
    /// the stack will never see. `None` when the stack took it (a reply follows).
    pub fn take_back_call(&self) -> Option<C> {
        self.calls.pop()
    }

    /// Wakes the stack thread unconditionally (shutdown).
    pub fn wake_stack(&self) {
        self.stack_waker.wake();
    }

    /// Waits for the next reply: yields first, then parks the thread.
    /// `me` caches which thread registered itself for unparking. `None`
    /// when the stack thread is gone without answering (it panicked).
    pub fn wait_reply(&self, me: &mut Option<ThreadId>) -> Option<R> {
        for _ in 0..YIELDS_BEFORE_PARK {
            if let Some(r) = self.replies.pop() {
                return Some(r);
            }
            std::thread::yield_now();
        }
        let current = std::thread::current();
        if *me != Some(current.id()) {
            *self.app_thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(current.clone());
            *me = Some(current.id());
        }
        loop {
            self.app_parked.store(true, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            if let Some(r) = self.replies.pop() {
                self.app_parked.store(false, Ordering::SeqCst);
                return Some(r);
            }
            if self.exited.load(Ordering::SeqCst) {
                // Replies are pushed before `exited` is set: one more look.
                self.app_parked.store(false, Ordering::SeqCst);
                return self.replies.pop();
            }
            std::thread::park();
        }
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
                        mb.reply(c + 1);
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
            mb.send_call(i).unwrap();
            assert_eq!(mb.wait_reply(&mut me), Some(i + 1));
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
                        mb.reply(c);
                    }
                    std::thread::yield_now();
                }
            })
        };
        let mut me = None;
        mb.send_call(1).unwrap();
        assert_eq!(mb.wait_reply(&mut me), Some(1));
        mb.send_call(2).unwrap();
        assert_eq!(mb.wait_reply(&mut me), None);
        assert!(stack.join().is_err());
    }
}
