//! Per-core pools sized by the configuration (issue 4): the connection
//! tables reserved up front for `Config::prealloc_connections`, the buffer
//! budget (`Config::buffer_budget`) refusing new connections with a typed
//! outcome and recovering, and the cache of released buffer storage
//! bounded by `Config::buffer_cache_bytes`.
//!
//! Allocations are counted with a global allocator that forwards to the
//! system one and counts, per thread and only while a measurement runs,
//! the allocations, reallocations and the largest block asked for. Test
//! code only: this is the one place of tcp-core that needs `unsafe`.
#![allow(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddrV4};

use tcp_core::buffer::MIN_STORAGE;
use tcp_core::{Config, ConnectError, Endpoint, Instant, SocketHandle, State};
use wire::tcp::TcpOptions;
use wire::{SeqNumber, TcpFlags, TcpRepr};

mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    /// What one thread allocated while [`measure`] ran.
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct Counts {
        /// Allocations (`alloc`, `alloc_zeroed`).
        pub allocs: usize,
        /// Reallocations (a growing `Vec`, `VecDeque`, `HashMap`...).
        pub reallocs: usize,
        /// The largest block asked for, bytes.
        pub largest: usize,
    }

    thread_local! {
        static ON: Cell<bool> = const { Cell::new(false) };
        static COUNTS: Cell<Counts> = const {
            Cell::new(Counts { allocs: 0, reallocs: 0, largest: 0 })
        };
    }

    fn record(size: usize, realloc: bool) {
        // `try_with`: never touch a thread-local being torn down.
        if ON.try_with(Cell::get).unwrap_or(false) {
            let _ = COUNTS.try_with(|c| {
                let mut v = c.get();
                if realloc {
                    v.reallocs += 1;
                } else {
                    v.allocs += 1;
                }
                v.largest = v.largest.max(size);
                c.set(v);
            });
        }
    }

    /// Runs `f` and returns what this thread allocated meanwhile.
    pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Counts) {
        COUNTS.with(|c| c.set(Counts::default()));
        ON.with(|o| o.set(true));
        let r = f();
        ON.with(|o| o.set(false));
        (r, COUNTS.with(Cell::get))
    }

    /// Counts, then forwards every call unchanged to [`System`].
    pub struct Counting;

    // SAFETY: every method forwards its arguments unchanged to the system
    // allocator, which upholds the `GlobalAlloc` contract; the counting
    // touches only const-initialized thread-locals (no allocation).
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            record(layout.size(), false);
            // SAFETY: the caller's contract for `alloc` is passed on as is.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            record(layout.size(), false);
            // SAFETY: as for `alloc`.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: `ptr` was allocated by `System` with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            record(new_size, true);
            // SAFETY: `ptr` was allocated by `System` with `layout`; the
            // caller guarantees `new_size` is valid for it.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }
}

#[global_allocator]
static ALLOC: counting::Counting = counting::Counting;

const LOCAL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const PORT: u16 = 80;

fn remote(i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::new(10, 1, (i >> 16) as u8, (i >> 8) as u8),
        1024 + (i & 0xff) as u16,
    )
}

fn syn(from: SocketAddrV4) -> TcpRepr<'static> {
    TcpRepr {
        src_port: from.port(),
        dst_port: PORT,
        seq: SeqNumber(1000),
        ack: SeqNumber(0),
        flags: TcpFlags::SYN,
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamps: Some((1, 0)),
            ..TcpOptions::default()
        },
        payload: &[],
    }
}

/// A handshake from `remote(i)`: SYN in, SYN-ACK out, ACK in. Returns the
/// SYN-ACK's sequence number, `None` when the SYN was not answered.
fn handshake(ep: &mut Endpoint, now: Instant, i: usize, buf: &mut [u8]) -> Option<SeqNumber> {
    let from = remote(i);
    let syn = syn(from);
    ep.handle_segment(now, *from.ip(), LOCAL, &syn);
    let t = ep.poll_transmit(now, buf)?;
    let synack = TcpRepr::parse_bytes(&buf[..t.len], t.src, t.dst, true).ok()?;
    assert!(synack.flags.syn() && synack.flags.ack());
    let tsval = synack.options.timestamps.map_or(0, |t| t.0);
    let ack = TcpRepr {
        seq: SeqNumber(1001),
        ack: synack.seq + 1,
        flags: TcpFlags::ACK,
        options: TcpOptions {
            timestamps: Some((2, tsval)),
            ..TcpOptions::default()
        },
        ..syn
    };
    let iss = synack.seq;
    ep.handle_segment(now, *from.ip(), LOCAL, &ack);
    while ep.poll_transmit(now, buf).is_some() {}
    Some(iss)
}

/// Opens `n` passive connections (accepted, 100 bytes queued on each so
/// the send buffer gets storage), draining events as a driver would.
fn open(ep: &mut Endpoint, l: SocketHandle, n: usize, now: Instant) -> Vec<SocketHandle> {
    let mut buf = [0u8; 256];
    let mut handles = Vec::with_capacity(n);
    open_into(ep, l, n, now, &mut buf, &mut handles);
    handles
}

fn open_into(
    ep: &mut Endpoint,
    l: SocketHandle,
    n: usize,
    now: Instant,
    buf: &mut [u8],
    handles: &mut Vec<SocketHandle>,
) {
    for i in 0..n {
        handshake(ep, now, i, buf).expect("SYN answered");
        let h = ep.accept(l).expect("accepted");
        assert_eq!(ep.send(now, h, &[7; 100]), Ok(100));
        handles.push(h);
        while ep.poll_event().is_some() {}
    }
}

/// Aborts every connection and sends what that produces (RSTs, data
/// segments queued before): every slot and buffer goes back.
fn abort_all(ep: &mut Endpoint, handles: &mut Vec<SocketHandle>, now: Instant) {
    let mut buf = [0u8; 1600];
    for h in handles.drain(..) {
        ep.abort(now, h).unwrap();
    }
    while ep.poll_transmit(now, &mut buf).is_some() {}
    while ep.poll_event().is_some() {}
}

fn config(n: usize, prealloc: usize) -> Config {
    Config {
        send_buf: 4096,
        recv_buf: 4096,
        max_connections: n,
        max_syn_backlog: n,
        prealloc_connections: prealloc,
        ..Config::default()
    }
}

const N: usize = 4096;

/// Opening up to `prealloc_connections` connections grows no table: no
/// reallocation and no block larger than a send buffer's first storage
/// (the tables of 4096 connections are tens of KiB each). Without the
/// reservation the same run grows the tables: the measurement can fail.
#[test]
fn prealloc_reserves_the_connection_tables_up_front() {
    let now = Instant::from_secs(1);
    let mut ep = Endpoint::with_seed(config(N, N), 1);
    let info = ep.pool_info();
    assert!(
        info.slot_capacity >= N + Endpoint::LISTENER_SLOTS,
        "{info:?}"
    );
    assert_eq!(info.max_connections, N);
    let l = ep.listen(SocketAddrV4::new(LOCAL, PORT), N).unwrap();
    let mut handles = Vec::with_capacity(N);
    let mut buf = [0u8; 256];
    let ((), counts) = counting::measure(|| open_into(&mut ep, l, N, now, &mut buf, &mut handles));
    eprintln!("opening {N} connections with the tables reserved: {counts:?}");
    assert_eq!(ep.connection_count(), N);
    assert_eq!(ep.pool_info().slot_capacity, info.slot_capacity);
    assert_eq!(counts.reallocs, 0, "a table grew: {counts:?}");
    assert!(counts.largest <= MIN_STORAGE, "{counts:?}");
    // One block per connection (its send buffer's first storage) and the
    // listener's accept queue: nothing per table.
    assert!(counts.allocs <= N + 1, "{counts:?}");

    // The control: the same run without the reservation grows the tables.
    let mut ep = Endpoint::with_seed(config(N, 0), 1);
    assert!(ep.pool_info().slot_capacity < N);
    let l = ep.listen(SocketAddrV4::new(LOCAL, PORT), N).unwrap();
    handles.clear();
    let ((), grown) = counting::measure(|| open_into(&mut ep, l, N, now, &mut buf, &mut handles));
    eprintln!("opening {N} connections with growing tables: {grown:?}");
    assert!(
        grown.reallocs > 0 || grown.largest > MIN_STORAGE,
        "the measurement cannot see table growth: {grown:?}"
    );
}

/// After a warm-up round (N connections opened, used and aborted), a
/// second round of up to N connections allocates nothing at all: tables,
/// slots and buffer storage all come back from the pools.
#[test]
fn a_warm_endpoint_reuses_its_pools() {
    const M: usize = 1024;
    let now = Instant::from_secs(1);
    let mut ep = Endpoint::with_seed(config(M, M), 2);
    let l = ep.listen(SocketAddrV4::new(LOCAL, PORT), M).unwrap();
    let mut handles = open(&mut ep, l, M, now);
    abort_all(&mut ep, &mut handles, now);
    assert_eq!(ep.connection_count(), 0);
    let cached = ep.pool_info().cached_send_bytes;
    assert_eq!(cached, M * MIN_STORAGE, "every send buffer's storage kept");
    let mut buf = [0u8; 256];
    let ((), counts) = counting::measure(|| open_into(&mut ep, l, M, now, &mut buf, &mut handles));
    eprintln!("opening {M} connections on a warm endpoint: {counts:?}");
    assert_eq!(ep.connection_count(), M);
    assert_eq!(
        counts,
        counting::Counts::default(),
        "nothing is allocated once the pools are warm"
    );
    assert_eq!(ep.pool_info().cached_send_bytes, 0);
}

/// The buffer budget: a connection that does not fit is refused (connect:
/// `NoBufferSpace`; SYN: dropped silently, counted), and room comes back
/// when a connection is released or reaches TIME-WAIT.
#[test]
fn buffer_budget_refuses_new_connections_and_recovers() {
    let now = Instant::from_secs(1);
    let per_conn = 8192 + 8192;
    let cfg = Config {
        send_buf: 8192,
        recv_buf: 8192,
        buffer_budget: 3 * per_conn,
        ..Config::default()
    };
    let mut ep = Endpoint::with_seed(cfg, 3);
    let l = ep.listen(SocketAddrV4::new(LOCAL, PORT), 16).unwrap();
    let mut buf = [0u8; 1600];
    // Two passive connections and one active one fill the budget.
    let mut held = open(&mut ep, l, 2, now);
    let dst = SocketAddrV4::new(Ipv4Addr::new(10, 2, 0, 1), 9);
    let active = ep.connect(now, SocketAddrV4::new(LOCAL, 0), dst).unwrap();
    while ep.poll_transmit(now, &mut buf).is_some() {}
    let info = ep.pool_info();
    assert_eq!(
        (info.buffer_reserved, info.buffer_budget),
        (3 * per_conn, 3 * per_conn)
    );
    // Both ways in are refused, with a typed outcome.
    assert_eq!(
        ep.connect(now, SocketAddrV4::new(LOCAL, 0), dst),
        Err(ConnectError::NoBufferSpace)
    );
    assert_eq!(handshake(&mut ep, now, 100, &mut buf), None, "SYN dropped");
    assert_eq!(ep.stats().syns_dropped_buffers, 1);
    assert_eq!(ep.connection_count(), 3);
    // Releasing one makes room again.
    ep.abort(now, active).unwrap();
    while ep.poll_transmit(now, &mut buf).is_some() {}
    assert_eq!(ep.pool_info().buffer_reserved, 2 * per_conn);
    assert!(handshake(&mut ep, now, 100, &mut buf).is_some());
    held.push(ep.accept(l).unwrap());
    assert_eq!(ep.pool_info().buffer_reserved, 3 * per_conn);
    // A connection in TIME-WAIT holds no buffers and no reservation.
    let h = held[0];
    let peer = remote(0);
    ep.close(now, h).unwrap();
    let mut fin_end = None;
    while let Some(t) = ep.poll_transmit(now, &mut buf) {
        let seg = TcpRepr::parse_bytes(&buf[..t.len], t.src, t.dst, true).unwrap();
        if seg.flags.fin() {
            fin_end = Some(seg.seq + seg.seq_len());
        }
    }
    let end = fin_end.expect("FIN sent");
    let fin_ack = TcpRepr {
        seq: SeqNumber(1001),
        ack: end,
        flags: TcpFlags::FIN | TcpFlags::ACK,
        options: TcpOptions {
            timestamps: Some((3, 0)),
            ..TcpOptions::default()
        },
        ..syn(peer)
    };
    ep.handle_segment(now, *peer.ip(), LOCAL, &fin_ack);
    while ep.poll_transmit(now, &mut buf).is_some() {}
    assert_eq!(
        ep.count_in_state(State::TimeWait),
        1,
        "the closed connection waits in TIME-WAIT"
    );
    assert_eq!(ep.connection_count(), 3);
    assert_eq!(ep.pool_info().buffer_reserved, 2 * per_conn);
    ep.connect(now, SocketAddrV4::new(LOCAL, 0), dst)
        .expect("TIME-WAIT gave its reservation back");
}

/// Released storage kept for reuse never exceeds `buffer_cache_bytes` per
/// kind; what does not fit is freed.
#[test]
fn the_buffer_cache_is_bounded_by_the_configuration() {
    let now = Instant::from_secs(1);
    for cache in [0, 4 * MIN_STORAGE, 64 * MIN_STORAGE] {
        let cfg = Config {
            buffer_cache_bytes: cache,
            ..config(32, 32)
        };
        let mut ep = Endpoint::with_seed(cfg, 4);
        let l = ep.listen(SocketAddrV4::new(LOCAL, PORT), 32).unwrap();
        let mut handles = open(&mut ep, l, 32, now);
        abort_all(&mut ep, &mut handles, now);
        let info = ep.pool_info();
        assert_eq!(info.cache_limit, cache);
        assert_eq!(
            info.cached_send_bytes,
            cache.min(32 * MIN_STORAGE),
            "cache {cache}: {info:?}"
        );
    }
}
