//! The in-memory backend: round trips, misuse errors, fault injection
//! (deterministic per seed), delays on a manual clock, and the wait.

mod common;

use common::*;
use packet_io::{
    mem_pair, Clock, FaultStats, Faults, FrameBatch, FrameError, Interest, ManualClock, MemConfig,
    MemQueue, PacketQueue, WaitConfig, Waiter,
};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

const A_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
const B_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn numbered(i: u32) -> Vec<u8> {
    udp_frame(
        A_MAC,
        B_MAC,
        (Ipv4Addr::new(10, 0, 0, 1), 1000),
        (Ipv4Addr::new(10, 0, 0, 2), 2000),
        &i.to_be_bytes(),
    )
}

fn send_all(q: &mut MemQueue, frames: impl IntoIterator<Item = Vec<u8>>) -> usize {
    let mut sent = 0;
    for f in frames {
        assert!(send_bytes(q, &f));
        sent += 1;
    }
    sent
}

/// Receives everything deliverable now; returns the frame numbers.
fn drain(q: &mut MemQueue) -> Vec<u32> {
    let mut out = Vec::new();
    let mut b = FrameBatch::with_capacity(64);
    loop {
        let n = q.recv(&mut b);
        for f in b.iter() {
            let u = parse_udp(q.frame(f).unwrap()).unwrap();
            assert_eq!(u.udp_checksum_ok, Some(true));
            out.push(u32::from_be_bytes(u.payload[..4].try_into().unwrap()));
        }
        q.release(&mut b).unwrap();
        if n == 0 {
            return out;
        }
    }
}

#[test]
fn frames_cross_in_order_with_counters() {
    let (mut a, mut b) = mem_pair(&MemConfig::default()).unwrap();
    send_all(&mut a, (0..100).map(numbered));
    assert_eq!(drain(&mut b), (0..100).collect::<Vec<_>>());
    let (ca, cb) = (a.counters(), b.counters());
    assert_eq!(ca.tx_packets, 100);
    assert_eq!(cb.rx_packets, 100);
    assert_eq!(ca.tx_bytes, cb.rx_bytes);
    assert_eq!(a.free_frames(), 1024, "sent buffers come back");
    assert_eq!(b.free_frames(), 1024, "released buffers come back");
}

#[test]
fn misuse_is_a_typed_error() {
    let (mut a, mut b) = mem_pair(&MemConfig::default()).unwrap();
    let mut batch = FrameBatch::with_capacity(4);
    assert_eq!(a.alloc(&mut batch, 2), 2);
    let mut f = batch.pop().unwrap();
    assert_eq!(b.frame(&f), Err(FrameError::ForeignFrame));
    assert_eq!(b.frame_mut(&mut f), Err(FrameError::ForeignFrame));
    assert_eq!(
        a.set_len(&mut f, 4096),
        Err(FrameError::TooLong {
            len: 4096,
            capacity: 2048
        })
    );
    batch.push(f);
    assert_eq!(b.send(&mut batch), Err(FrameError::ForeignFrame));
    assert_eq!(batch.len(), 2, "nothing taken on error");
    assert_eq!(b.release(&mut batch), Err(FrameError::ForeignFrame));
    a.release(&mut batch).unwrap();
    assert_eq!(a.free_frames(), 1024);
}

#[test]
fn a_full_arena_drops_like_an_empty_fill_ring_and_a_full_link_refuses() {
    let config = MemConfig {
        frames: 4,
        link_capacity: 6,
        ..MemConfig::default()
    };
    let (mut a, mut b) = mem_pair(&config).unwrap();
    let mut tx = FrameBatch::with_capacity(4);
    for round in 0..2 {
        assert_eq!(a.alloc(&mut tx, 4), 4);
        for f in tx.iter_mut() {
            a.set_len(f, 60).unwrap();
        }
        let sent = a.send(&mut tx).unwrap();
        assert_eq!(sent, if round == 0 { 4 } else { 2 }, "link holds 6");
        a.release(&mut tx).unwrap();
    }
    assert_eq!(a.counters().tx_ring_full, 2);
    let mut rx = FrameBatch::with_capacity(16);
    assert_eq!(b.recv(&mut rx), 4, "arena of 4");
    assert_eq!(b.recv(&mut rx), 0);
    assert_eq!(
        b.counters().rx_drop_fill_empty,
        2,
        "no buffer for the other two"
    );
    b.release(&mut rx).unwrap();
}

fn faulty(seed: u64, clock: Clock) -> MemConfig {
    MemConfig {
        faults: Faults {
            loss: 0.1,
            duplicate: 0.05,
            reorder: 0.1,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(5),
        },
        seed,
        clock,
        link_capacity: 4096,
        ..MemConfig::default()
    }
}

fn run_faulty(seed: u64) -> (Vec<u32>, FaultStats) {
    let clock = ManualClock::new();
    let (mut a, mut b) = mem_pair(&faulty(seed, Clock::Manual(clock.clone()))).unwrap();
    send_all(&mut a, (0..1000).map(numbered));
    assert!(drain(&mut b).is_empty(), "nothing before the delay");
    clock.advance(Duration::from_millis(4));
    assert!(drain(&mut b).is_empty(), "nothing before the delay");
    clock.advance(Duration::from_millis(6));
    (drain(&mut b), a.fault_stats())
}

#[test]
fn faults_are_deterministic_per_seed() {
    let (got1, stats1) = run_faulty(7);
    let (got2, stats2) = run_faulty(7);
    let (got3, _) = run_faulty(8);
    assert_eq!(got1, got2, "same seed, same outcome");
    assert_eq!(stats1, stats2);
    assert_ne!(got1, got3, "another seed, another outcome");
    // Plausible rates for 1000 frames.
    assert!((50..=150).contains(&stats1.lost), "{stats1:?}");
    assert!((20..=80).contains(&stats1.duplicated), "{stats1:?}");
    assert!((50..=150).contains(&stats1.reordered), "{stats1:?}");
    assert_eq!(got1.len() as u64, 1000 - stats1.lost + stats1.duplicated);
    let out_of_order = got1.windows(2).filter(|w| w[1] < w[0]).count();
    assert!(out_of_order > 0, "reordering visible");
    let mut unique = got1.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len() as u64,
        1000 - stats1.lost,
        "duplicates are exact copies"
    );
}

#[test]
fn no_faults_means_no_faults() {
    let (mut a, mut b) = mem_pair(&MemConfig {
        seed: 99,
        ..MemConfig::default()
    })
    .unwrap();
    send_all(&mut a, (0..500).map(numbered));
    assert_eq!(drain(&mut b), (0..500).collect::<Vec<_>>());
    assert_eq!(a.fault_stats(), FaultStats::default());
}

#[test]
fn waiter_sleeps_and_wakes_on_memory_queues() {
    let (mut a, b) = mem_pair(&MemConfig::default()).unwrap();
    let mut waiter = Waiter::new(WaitConfig::default()).unwrap();
    let waker = waiter.waker();
    let mut queues = [b];
    // Timeout with nothing to do.
    let t0 = Instant::now();
    let r = waiter
        .wait(
            &mut queues,
            &[Interest::RX],
            Some(Duration::from_millis(30)),
        )
        .unwrap();
    assert!(r.is_empty());
    assert!(t0.elapsed() >= Duration::from_millis(30));
    // Another thread sends while we sleep.
    let sender = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        let at = Instant::now();
        send_all(&mut a, [numbered(1)]);
        (a, at)
    });
    let r = waiter
        .wait(&mut queues, &[Interest::RX], Some(Duration::from_secs(5)))
        .unwrap();
    let woke = Instant::now();
    let (_a, sent_at) = sender.join().unwrap();
    assert!(r.rx(0), "{r:?}");
    eprintln!("memory wake latency {:?}", woke - sent_at);
    assert!(woke - sent_at < Duration::from_millis(20));
    assert_eq!(drain(&mut queues[0]), [1]);
    // A waker from another thread.
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        waker.wake();
        waker.wake(); // coalesces
    });
    let r = waiter
        .wait(&mut queues, &[Interest::RX], Some(Duration::from_secs(5)))
        .unwrap();
    t.join().unwrap();
    assert!(r.woken() && !r.rx(0), "{r:?}");
    let r = waiter
        .wait(&mut queues, &[Interest::RX], Some(Duration::ZERO))
        .unwrap();
    assert!(r.is_empty(), "the wake was consumed: {r:?}");
    assert!(queues[0].counters().sleeps >= 3);
}

#[test]
fn bad_wait_sets_are_errors() {
    let (a, b) = mem_pair(&MemConfig::default()).unwrap();
    let mut waiter = Waiter::new(WaitConfig::default()).unwrap();
    let mut queues = [a, b];
    assert!(waiter
        .wait(&mut queues, &[Interest::RX], Some(Duration::ZERO))
        .is_err());
}

#[test]
fn batch_helpers_move_frames() {
    let (mut a, _b) = mem_pair(&MemConfig::default()).unwrap();
    let mut batch = FrameBatch::with_capacity(8);
    assert_eq!(a.alloc(&mut batch, 100), 8, "bounded by the batch");
    assert_eq!(batch.spare(), 0);
    for (i, f) in batch.iter_mut().enumerate() {
        a.set_len(f, i + 1).unwrap();
    }
    let mut odd = FrameBatch::with_capacity(8);
    batch.retain_into(&mut odd, |f| a.frame(f).unwrap().len() % 2 == 0);
    let lens: Vec<usize> = batch.iter().map(|f| a.frame(f).unwrap().len()).collect();
    assert_eq!(lens, [2, 4, 6, 8]);
    assert_eq!(odd.len(), 4);
    batch.split_off_into(1, &mut odd);
    assert_eq!((batch.len(), odd.len()), (1, 7));
    batch.append(&mut odd);
    assert_eq!(batch.len(), 8);
    a.release(&mut batch).unwrap();
    assert_eq!(a.free_frames(), 1024);
}
