//! epoll for mtcp-rs: several epoll instances per per-core context, with Linux's
//! level-triggered, edge-triggered and one-shot semantics, over small-integer descriptors
//! this crate knows nothing about.
//!
//! # What it does
//! An [`EpollContext`] holds, for one per-core context, every epoll instance
//! ([`EpollId`]), the current readiness of every watchable descriptor ([`Fd`]) and the
//! registrations between them (one per instance and descriptor, with an interest mask of
//! [`Events`] and a `u64` of user data). It answers `epoll_create`, `epoll_ctl`
//! ([`CtlOp::Add`], [`CtlOp::Mod`], [`CtlOp::Del`]) and a non-blocking `epoll_wait`, with
//! [`Error`]s that map to Linux's errno. It does not know what a socket is: the socket
//! layer above tells it what each descriptor is ready for.
//!
//! Instance ids and descriptors are separate number spaces, both small integers from 0;
//! a socket layer that wants epoll instances in its own descriptor table (as mTCP does)
//! maps between the two.
//!
//! # Data flow
//! ```text
//!  socket layer (stack side)                   application (via socket-api / runtime)
//!  open_fd(fd, level) / close_fd(fd)           epoll_create / epoll_ctl / epoll_close
//!  notify(fd, level, wake) --+                          |
//!                            v                          v
//!            per-fd state: level, list of registrations watching the fd
//!                            | rising edges | wake meet a registration's interest
//!                            v
//!            instance ready list (intrusive, FIFO, each registration at most once)
//!                            |
//!                            v
//!  epoll_wait(ep, &mut [Event]): re-read each queued item's level & interest,
//!  report if non-empty; LT items go back to the tail, ET items wait for the next
//!  wake-up, ONESHOT items are disarmed until EPOLL_CTL_MOD.
//! ```
//! The owner reports the *level* (every bit true now) and, separately, a *wake* for
//! things that happened without changing the level (more data arrived on a readable
//! socket, a state change): that is what lets edge-triggered watchers hear of each new
//! arrival, as on Linux. The runtime does the blocking: when
//! [`EpollContext::has_pending`] is false, `epoll_wait` would return nothing.
//!
//! # Linux parity
//! The algorithm is Linux's `fs/eventpoll.c` without its locking:
//! - a registration (Linux's "epitem") sits on its instance's ready list at most once
//!   (`ep_is_linked`);
//! - a wake-up on a descriptor links each armed registration whose interest meets the
//!   wake-up's bits (`ep_poll_callback`);
//! - `epoll_wait` takes the whole ready list, re-reads each item's readiness, reports the
//!   non-empty ones, puts level-triggered ones back at the tail, disarms one-shot ones,
//!   and returns the items it had no room for to the head (`ep_send_events`,
//!   `ep_done_scan`), so short buffers rotate fairly over ready descriptors;
//! - `EPOLL_CTL_ADD` and `EPOLL_CTL_MOD` poll the descriptor and link the item if it is
//!   ready (`ep_insert`, `ep_modify`); `EPOLL_CTL_DEL` unlinks it (`ep_remove`).
//!
//! The `tests/linux_parity.rs` test runs the same scenarios against Linux's epoll on kernel
//! TCP sockets and against this crate driven by a model socket, comparing every
//! `epoll_wait` result. `EPOLLERR` and `EPOLLHUP` are always reported; `EPOLLEXCLUSIVE`,
//! `EPOLLWAKEUP` and nested epoll instances are not supported.
//!
//! # Resources
//! Instances, descriptors and registrations live in tables sized once by [`Limits`];
//! `notify` costs O(registrations watching the descriptor) and nothing allocates after
//! [`EpollContext::new`].
#![deny(unsafe_code)]

mod context;
mod error;
mod events;

pub use context::{CtlOp, EpollContext, EpollId, Fd, Limits};
pub use error::Error;
pub use events::{Event, Events};

#[cfg(test)]
mod tests;
