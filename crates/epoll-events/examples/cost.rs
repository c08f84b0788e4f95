//! Measures the per-call cost of the hot paths: `notify` (one arrival on a descriptor)
//! and `epoll_wait` (per event returned), for many descriptors each watched once and
//! for one descriptor watched by several instances.
//!
//! `cargo run --release -p epoll-events --example cost`

use std::hint::black_box;
use std::time::Instant;

use epoll_events::{CtlOp, EpollContext, Event, Events, Fd, Limits};

fn main() {
    many_descriptors(10_000, 50);
    one_descriptor_many_instances(8, 1_000_000);
}

/// `fds` descriptors in one edge-triggered instance: every round, each gets an arrival
/// and the instance is drained in batches of 512.
fn many_descriptors(fds: u32, rounds: u32) {
    let mut cx = EpollContext::new(Limits {
        max_instances: 1,
        max_fds: fds as usize,
        max_registrations: fds as usize,
    })
    .unwrap();
    let ep = cx.epoll_create().unwrap();
    for fd in 0..fds {
        cx.open_fd(Fd(fd), Events::OUT).unwrap();
        let interest = Event::new(Events::IN | Events::OUT | Events::ET, u64::from(fd));
        cx.epoll_ctl(ep, CtlOp::Add, Fd(fd), interest).unwrap();
    }
    let mut out = vec![Event::default(); 512];
    while cx.epoll_wait(ep, &mut out).unwrap() > 0 {}
    let (mut notify_ns, mut wait_ns, mut events) = (0u128, 0u128, 0u64);
    for _ in 0..rounds {
        let start = Instant::now();
        for fd in 0..fds {
            black_box(
                cx.notify(Fd(fd), Events::IN | Events::OUT, Events::IN)
                    .unwrap(),
            );
        }
        notify_ns += start.elapsed().as_nanos();
        let start = Instant::now();
        loop {
            let n = cx.epoll_wait(ep, &mut out).unwrap();
            if n == 0 {
                break;
            }
            events += n as u64;
            black_box(&out[..n]);
        }
        wait_ns += start.elapsed().as_nanos();
        for fd in 0..fds {
            cx.notify(Fd(fd), Events::OUT, Events::EMPTY).unwrap();
        }
    }
    assert_eq!(events, u64::from(fds) * u64::from(rounds));
    let notifies = u128::from(fds) * u128::from(rounds);
    println!(
        "{fds} fds, ET: notify {:.1} ns/call, epoll_wait {:.1} ns/event",
        notify_ns as f64 / notifies as f64,
        wait_ns as f64 / events as f64
    );
}

/// One descriptor watched by `instances` level-triggered instances: an arrival, a wait
/// on each instance, a read that clears the level.
fn one_descriptor_many_instances(instances: usize, rounds: u32) {
    let mut cx = EpollContext::new(Limits {
        max_instances: instances,
        max_fds: 1,
        max_registrations: instances,
    })
    .unwrap();
    cx.open_fd(Fd(0), Events::EMPTY).unwrap();
    let eps: Vec<_> = (0..instances)
        .map(|_| {
            let ep = cx.epoll_create().unwrap();
            cx.epoll_ctl(ep, CtlOp::Add, Fd(0), Event::new(Events::IN, 0))
                .unwrap();
            ep
        })
        .collect();
    let mut out = [Event::default(); 4];
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(cx.notify(Fd(0), Events::IN, Events::IN).unwrap());
        for &ep in &eps {
            assert_eq!(cx.epoll_wait(ep, &mut out).unwrap(), 1);
        }
        cx.notify(Fd(0), Events::EMPTY, Events::EMPTY).unwrap();
    }
    let ns = start.elapsed().as_nanos() as f64 / f64::from(rounds);
    println!(
        "1 fd, {instances} LT instances: {ns:.1} ns per (notify + {instances} waits + level drop)"
    );
}
