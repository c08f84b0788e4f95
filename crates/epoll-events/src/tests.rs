//! Unit tests: short conversations between a descriptor owner and an application.

use crate::{CtlOp, EpollContext, EpollId, Error, Event, Events, Fd, Limits};

const IN: Events = Events::IN;
const OUT: Events = Events::OUT;
const ET: Events = Events::ET;
const ONESHOT: Events = Events::ONESHOT;
const NONE: Events = Events::EMPTY;

fn context() -> EpollContext {
    EpollContext::new(Limits {
        max_instances: 4,
        max_fds: 16,
        max_registrations: 8,
    })
    .unwrap()
}

/// A context with one instance and descriptors `0..n` open and not ready.
fn fixture(n: u32) -> (EpollContext, EpollId) {
    let mut cx = context();
    let ep = cx.epoll_create().unwrap();
    for fd in 0..n {
        cx.open_fd(Fd(fd), NONE).unwrap();
    }
    (cx, ep)
}

fn add(cx: &mut EpollContext, ep: EpollId, fd: u32, events: Events) {
    cx.epoll_ctl(ep, CtlOp::Add, Fd(fd), Event::new(events, u64::from(fd)))
        .unwrap();
}

fn modify(cx: &mut EpollContext, ep: EpollId, fd: u32, events: Events) {
    cx.epoll_ctl(ep, CtlOp::Mod, Fd(fd), Event::new(events, u64::from(fd)))
        .unwrap();
}

/// `(data, events)` of everything one `epoll_wait(max)` returns.
fn wait(cx: &mut EpollContext, ep: EpollId, max: usize) -> Vec<(u64, Events)> {
    let mut out = [Event::default(); 16];
    let n = cx.epoll_wait(ep, &mut out[..max]).unwrap();
    out[..n].iter().map(|e| (e.data, e.events)).collect()
}

fn level(cx: &mut EpollContext, fd: u32, readiness: Events) {
    cx.set_readiness(Fd(fd), readiness).unwrap();
}

fn arrival(cx: &mut EpollContext, fd: u32, readiness: Events) {
    cx.notify(Fd(fd), readiness, IN).unwrap();
}

#[test]
fn add_of_a_ready_descriptor_reports_it_at_once() {
    let (mut cx, ep) = fixture(1);
    level(&mut cx, 0, OUT);
    add(&mut cx, ep, 0, IN | OUT);
    assert_eq!(wait(&mut cx, ep, 8), [(0, OUT)]);
}

#[test]
fn level_triggered_reports_while_ready_and_stops_when_level_falls() {
    let (mut cx, ep) = fixture(1);
    add(&mut cx, ep, 0, IN);
    assert_eq!(wait(&mut cx, ep, 8), []);
    arrival(&mut cx, 0, IN);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)]);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)]);
    level(&mut cx, 0, NONE);
    assert!(cx.has_pending(ep).unwrap(), "still queued until looked at");
    assert_eq!(wait(&mut cx, ep, 8), []);
    assert!(!cx.has_pending(ep).unwrap());
}

#[test]
fn edge_triggered_reports_once_per_wake_including_new_arrivals() {
    let (mut cx, ep) = fixture(1);
    add(&mut cx, ep, 0, IN | ET);
    arrival(&mut cx, 0, IN);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)]);
    assert_eq!(
        wait(&mut cx, ep, 8),
        [],
        "still readable, but no new wake-up"
    );
    arrival(&mut cx, 0, IN);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)], "more data arrived");
    level(&mut cx, 0, IN);
    assert_eq!(
        wait(&mut cx, ep, 8),
        [],
        "a level update without change is no edge"
    );
}

#[test]
fn edge_triggered_wake_reports_every_requested_bit_that_is_ready() {
    // Linux re-polls the file on wake-up: an IN arrival reports IN | OUT if writable.
    let (mut cx, ep) = fixture(1);
    level(&mut cx, 0, OUT);
    add(&mut cx, ep, 0, IN | OUT | ET);
    assert_eq!(wait(&mut cx, ep, 8), [(0, OUT)]);
    arrival(&mut cx, 0, IN | OUT);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN | OUT)]);
}

#[test]
fn wake_that_misses_the_interest_queues_nothing() {
    let (mut cx, ep) = fixture(1);
    level(&mut cx, 0, OUT);
    add(&mut cx, ep, 0, OUT | ET);
    assert_eq!(wait(&mut cx, ep, 8), [(0, OUT)]);
    assert_eq!(cx.notify(Fd(0), IN | OUT, IN), Ok(0));
    assert_eq!(wait(&mut cx, ep, 8), []);
    // A state change (key-less wake-up on Linux) meets every interest.
    assert_eq!(cx.notify(Fd(0), IN | OUT, Events::READINESS), Ok(1));
    assert_eq!(wait(&mut cx, ep, 8), [(0, OUT)]);
}

#[test]
fn oneshot_is_disarmed_after_one_report_until_mod() {
    let (mut cx, ep) = fixture(1);
    add(&mut cx, ep, 0, IN | ONESHOT);
    arrival(&mut cx, 0, IN);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)]);
    arrival(&mut cx, 0, IN);
    assert_eq!(wait(&mut cx, ep, 8), [], "disarmed");
    modify(&mut cx, ep, 0, IN | ONESHOT);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)], "re-armed and still ready");
    assert_eq!(wait(&mut cx, ep, 8), []);
}

#[test]
fn err_and_hup_are_reported_without_being_asked_for() {
    let (mut cx, ep) = fixture(1);
    add(&mut cx, ep, 0, NONE);
    cx.notify(
        Fd(0),
        IN | Events::ERR | Events::HUP | Events::RDHUP,
        Events::READINESS,
    )
    .unwrap();
    assert_eq!(wait(&mut cx, ep, 8), [(0, Events::ERR | Events::HUP)]);
}

#[test]
fn rdhup_only_when_asked_for() {
    let (mut cx, ep) = fixture(2);
    add(&mut cx, ep, 0, IN);
    add(&mut cx, ep, 1, IN | Events::RDHUP);
    for fd in 0..2 {
        cx.notify(Fd(fd), IN | Events::RDHUP, Events::READINESS)
            .unwrap();
    }
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN), (1, IN | Events::RDHUP)]);
}

#[test]
fn mod_of_a_ready_descriptor_reports_it_even_edge_triggered() {
    let (mut cx, ep) = fixture(1);
    add(&mut cx, ep, 0, IN | ET);
    arrival(&mut cx, 0, IN);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)]);
    assert_eq!(wait(&mut cx, ep, 8), []);
    modify(&mut cx, ep, 0, IN | ET);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)]);
}

#[test]
fn mod_changes_data_and_interest() {
    let (mut cx, ep) = fixture(1);
    level(&mut cx, 0, IN | OUT);
    add(&mut cx, ep, 0, IN);
    cx.epoll_ctl(ep, CtlOp::Mod, Fd(0), Event::new(OUT, 77))
        .unwrap();
    assert_eq!(wait(&mut cx, ep, 8), [(77, OUT)]);
}

#[test]
fn del_drops_a_pending_report_and_add_again_reports() {
    let (mut cx, ep) = fixture(1);
    add(&mut cx, ep, 0, IN);
    arrival(&mut cx, 0, IN);
    cx.epoll_ctl(ep, CtlOp::Del, Fd(0), Event::default())
        .unwrap();
    assert!(!cx.has_pending(ep).unwrap());
    assert_eq!(wait(&mut cx, ep, 8), []);
    assert_eq!(cx.registration_count(), 0);
    add(&mut cx, ep, 0, IN);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)]);
}

#[test]
fn several_instances_watch_one_descriptor_each_in_its_own_mode() {
    let mut cx = context();
    let lt = cx.epoll_create().unwrap();
    let et = cx.epoll_create().unwrap();
    let once = cx.epoll_create().unwrap();
    cx.open_fd(Fd(3), NONE).unwrap();
    add(&mut cx, lt, 3, IN);
    add(&mut cx, et, 3, IN | ET);
    add(&mut cx, once, 3, IN | ONESHOT);
    assert_eq!(cx.notify(Fd(3), IN, IN), Ok(3));
    for _ in 0..2 {
        assert_eq!(wait(&mut cx, lt, 8), [(3, IN)]);
    }
    assert_eq!(wait(&mut cx, et, 8), [(3, IN)]);
    assert_eq!(wait(&mut cx, et, 8), []);
    assert_eq!(wait(&mut cx, once, 8), [(3, IN)]);
    assert_eq!(
        cx.notify(Fd(3), IN, IN),
        Ok(1),
        "LT is still queued, ONESHOT disarmed"
    );
    assert_eq!(wait(&mut cx, et, 8), [(3, IN)]);
    assert_eq!(wait(&mut cx, once, 8), []);
}

#[test]
fn short_buffers_rotate_level_triggered_items_like_linux() {
    let (mut cx, ep) = fixture(3);
    for fd in 0..3 {
        add(&mut cx, ep, fd, IN);
        arrival(&mut cx, fd, IN);
    }
    // ep_send_events re-queues reported items at the tail; unseen ones keep the head.
    assert_eq!(wait(&mut cx, ep, 2), [(0, IN), (1, IN)]);
    assert_eq!(wait(&mut cx, ep, 2), [(2, IN), (0, IN)]);
    assert_eq!(wait(&mut cx, ep, 2), [(1, IN), (2, IN)]);
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN), (1, IN), (2, IN)]);
}

#[test]
fn items_no_longer_ready_are_skipped_without_using_room() {
    let (mut cx, ep) = fixture(3);
    for fd in 0..3 {
        add(&mut cx, ep, fd, IN);
        arrival(&mut cx, fd, IN);
    }
    level(&mut cx, 0, NONE);
    assert_eq!(wait(&mut cx, ep, 2), [(1, IN), (2, IN)]);
    assert_eq!(wait(&mut cx, ep, 8), [(1, IN), (2, IN)]);
}

#[test]
fn close_fd_drops_its_registrations_everywhere() {
    let mut cx = context();
    let a = cx.epoll_create().unwrap();
    let b = cx.epoll_create().unwrap();
    cx.open_fd(Fd(1), IN).unwrap();
    cx.open_fd(Fd(2), IN).unwrap();
    add(&mut cx, a, 1, IN);
    add(&mut cx, b, 1, IN);
    add(&mut cx, a, 2, IN);
    cx.close_fd(Fd(1)).unwrap();
    assert_eq!(cx.registration_count(), 1);
    assert_eq!(wait(&mut cx, a, 8), [(2, IN)]);
    assert_eq!(wait(&mut cx, b, 8), []);
    assert!(!cx.has_pending(b).unwrap());
    assert_eq!(cx.notify(Fd(1), IN, IN), Err(Error::BadDescriptor));
    // Reopened, it starts with no watchers.
    cx.open_fd(Fd(1), IN).unwrap();
    assert_eq!(cx.notify(Fd(1), IN, IN), Ok(0));
}

#[test]
fn epoll_close_frees_registrations_and_the_lowest_id_is_reused() {
    let mut cx = context();
    let a = cx.epoll_create().unwrap();
    let b = cx.epoll_create().unwrap();
    assert_eq!((a, b), (EpollId(0), EpollId(1)));
    cx.open_fd(Fd(5), IN).unwrap();
    add(&mut cx, a, 5, IN);
    add(&mut cx, b, 5, IN);
    cx.epoll_close(a).unwrap();
    assert_eq!(cx.registration_count(), 1);
    assert_eq!(cx.instance_count(), 1);
    assert_eq!(cx.notify(Fd(5), IN, IN), Ok(0), "b's item is still queued");
    assert_eq!(wait(&mut cx, b, 8), [(5, IN)]);
    assert_eq!(cx.epoll_create(), Ok(EpollId(0)));
    assert_eq!(
        wait(&mut cx, EpollId(0), 8),
        [],
        "fresh instance, nothing inherited"
    );
}

#[test]
fn errors_and_their_errno() {
    let mut cx = context();
    let ep = cx.epoll_create().unwrap();
    let ev = Event::new(IN, 0);
    cx.open_fd(Fd(0), NONE).unwrap();
    let cases: [(Result<(), Error>, Error, i32); 9] = [
        (
            cx.epoll_ctl(EpollId(3), CtlOp::Add, Fd(0), ev),
            Error::BadInstance,
            9,
        ),
        (
            cx.epoll_ctl(EpollId(99), CtlOp::Add, Fd(0), ev),
            Error::BadInstance,
            9,
        ),
        (
            cx.epoll_ctl(ep, CtlOp::Add, Fd(1), ev),
            Error::BadDescriptor,
            9,
        ),
        (
            cx.epoll_ctl(ep, CtlOp::Add, Fd(16), ev),
            Error::BadDescriptor,
            9,
        ),
        (cx.epoll_ctl(ep, CtlOp::Mod, Fd(0), ev), Error::NotFound, 2),
        (cx.epoll_ctl(ep, CtlOp::Del, Fd(0), ev), Error::NotFound, 2),
        (cx.open_fd(Fd(0), NONE), Error::AlreadyExists, 17),
        (
            cx.epoll_wait(ep, &mut []).map(drop),
            Error::InvalidArgument,
            22,
        ),
        (cx.close_fd(Fd(7)), Error::BadDescriptor, 9),
    ];
    for (i, (got, want, errno)) in cases.into_iter().enumerate() {
        assert_eq!(got, Err(want), "case {i}");
        assert_eq!(want.errno(), errno, "case {i}");
    }
    cx.epoll_ctl(ep, CtlOp::Add, Fd(0), ev).unwrap();
    assert_eq!(
        cx.epoll_ctl(ep, CtlOp::Add, Fd(0), ev),
        Err(Error::AlreadyExists)
    );
}

#[test]
fn limits_are_enforced_and_recovered() {
    let mut cx = context();
    for _ in 0..4 {
        cx.epoll_create().unwrap();
    }
    assert_eq!(cx.epoll_create(), Err(Error::TooManyInstances));
    assert_eq!(Error::TooManyInstances.errno(), 24);
    for fd in 0..9 {
        cx.open_fd(Fd(fd), NONE).unwrap();
    }
    for fd in 0..8 {
        add(&mut cx, EpollId(fd % 4), fd, IN);
    }
    let ninth = cx.epoll_ctl(EpollId(0), CtlOp::Add, Fd(8), Event::new(IN, 8));
    assert_eq!(ninth, Err(Error::NoSpace));
    assert_eq!(Error::NoSpace.errno(), 28);
    cx.close_fd(Fd(0)).unwrap();
    add(&mut cx, EpollId(0), 8, IN);
    assert_eq!(cx.registration_count(), 8);
    cx.epoll_close(EpollId(1)).unwrap();
    assert_eq!(cx.registration_count(), 6);
    assert_eq!(cx.epoll_create(), Ok(EpollId(1)));
}

#[test]
fn zero_limits_refuse_everything_without_panicking() {
    let mut cx = EpollContext::new(Limits {
        max_instances: 0,
        max_fds: 0,
        max_registrations: 0,
    })
    .unwrap();
    assert_eq!(cx.epoll_create(), Err(Error::TooManyInstances));
    assert_eq!(cx.open_fd(Fd(0), IN), Err(Error::BadDescriptor));
    assert_eq!(cx.notify(Fd(0), IN, IN), Err(Error::BadDescriptor));
    assert_eq!(
        cx.epoll_wait(EpollId(0), &mut [Event::default()]),
        Err(Error::BadInstance)
    );
}

#[test]
fn flag_bits_in_readiness_are_ignored() {
    let (mut cx, ep) = fixture(1);
    add(&mut cx, ep, 0, IN | ET);
    cx.notify(Fd(0), IN | ET, ONESHOT).unwrap();
    assert_eq!(cx.readiness(Fd(0)), Ok(IN));
    assert_eq!(wait(&mut cx, ep, 8), [(0, IN)]);
}

#[test]
fn limits_beyond_32_bit_ids_are_refused() {
    let too_big = [
        Limits {
            max_registrations: u32::MAX as usize,
            ..Limits::default()
        },
        Limits {
            max_fds: u32::MAX as usize + 1,
            ..Limits::default()
        },
        Limits {
            max_instances: usize::MAX,
            ..Limits::default()
        },
    ];
    for limits in too_big {
        assert_eq!(
            EpollContext::new(limits).map(|_| ()),
            Err(Error::InvalidArgument),
            "{limits:?}"
        );
    }
    assert!(EpollContext::new(Limits::default()).is_ok());
}
