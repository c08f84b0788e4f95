//! Batched packet I/O for mtcp-rs: AF_XDP with a select-style wait and XDP
//! flow steering, an in-memory twin, and a pcap tap.
//!
//! This crate is mTCP's packet engine (PSIO and `ps_select`) rebuilt on
//! AF_XDP. The runtime gives every core its own [`PacketQueue`] handles, one
//! per device queue, and drives them in batches; nothing is shared between
//! queues.
//!
//! # How frames flow
//!
//! ```text
//!  NIC queue q ──> XDP program (bpf/steer.bpf.c) ──> not ours: XDP_PASS ──> kernel stack
//!                        │ ours: ARP for our address, IPv4 TCP to it (port set)
//!                        v
//!                  XSKMAP[q] ──> AF_XDP socket q ──> RX ring ──> recv(): Frames (views into UMEM)
//!                                     ^                                 │ runtime reads/edits in place
//!                                     │ fill ring <── release()/refill <┤
//!                                     │                                 v
//!  NIC <── kernel copy-mode xmit <── TX ring <── send() (+ sendto kick) <── alloc(): empty Frames
//!                                     └── completion ring ──> free pool ──┘
//! ```
//!
//! * [`XdpQueue`] (on xsk-rs 0.11): one UMEM, fill/completion/RX/TX rings per
//!   queue, copy mode with `XDP_USE_NEED_WAKEUP`; TX is kicked with `sendto`
//!   after every batch, because veth copy mode transmits only inside that call.
//!   [`open_queues`] attaches the [`Steering`] program (through a bpf_link, so
//!   the kernel detaches it when the process dies; native XDP with generic as
//!   fallback or option) and opens every queue one after another, each socket
//!   opened with libxdp's program load inhibited and inserted into the
//!   program's XSKMAP.
//! * [`MemQueue`] ([`mem_pair`]): two connected queues in one process with
//!   seeded loss, duplication, reordering and delay, for deterministic tests.
//! * [`Tap`]: wraps any queue and writes its frames to a pcap file.
//! * [`Waiter`]: spins over a set of queues for a budget, then arms wake-ups
//!   and sleeps in `ppoll(2)` with a microsecond timeout; a [`Waker`] (an
//!   eventfd in the same poll set) lets another thread wake it. Returns which
//!   queues are [`Ready`].
//! * [`Counters`]: per queue packets and bytes in and out, drops (fill ring
//!   empty, RX ring full, TX ring full), kicks, sleeps and wake-ups.
//! * [`testnet`]: namespaces joined by a veth pair for tests and benchmarks.
//!
//! A received [`Frame`] is a move-only handle: the bytes stay in the queue's
//! memory and are read and written through the queue
//! ([`PacketQueue::frame`], [`PacketQueue::frame_mut`]), which rejects frames
//! of other queues with a typed error. Dropping a frame instead of returning
//! it leaks its buffer until the queue is dropped.
//!
//! `unsafe` is confined to the OS edge: `sys` (system calls), `xdp` (the
//! xsk-rs rings and UMEM) and one `Pod` impl for a map value in `steer`.
#![deny(unsafe_code)]

mod frame;
mod memory;
mod pcap;
mod queue;
mod steer;
mod sys;
pub mod testnet;
mod wait;
mod xdp;

pub use frame::{Frame, FrameBatch};
pub use memory::{mem_pair, Clock, FaultStats, Faults, ManualClock, MemConfig, MemQueue};
pub use pcap::{PcapWriter, Tap, SNAPLEN};
pub use queue::{Armed, Counters, FrameError, Interest, PacketQueue};
pub use steer::{AttachMode, SteerConfig, SteerError, SteerStats, Steering, MAX_QUEUES};
pub use wait::{Ready, WaitConfig, WaitError, Waiter, Waker, MAX_WAIT_QUEUES};
pub use xdp::{open_queues, rx_queue_count, XdpConfig, XdpError, XdpQueue};

/// The MAC address of interface `name` in the calling thread's network
/// namespace (so that a configuration need not spell it out).
pub fn interface_mac(name: &str) -> std::io::Result<[u8; 6]> {
    sys::if_hwaddr(name)
}
