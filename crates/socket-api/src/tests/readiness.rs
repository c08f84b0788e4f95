//! Readiness levels (Linux `tcp_poll` rules) and the change reports for epoll.

use std::collections::HashMap;

use core::time::Duration;

use super::*;
use crate::{Shutdown, SockOpt, SockOptName};

/// Everything one `drain_changes` reports, by descriptor.
fn drain(t: &mut SocketTable) -> HashMap<u32, (Readiness, Readiness)> {
    let mut out = HashMap::new();
    t.drain_changes(|fd, level, wake| {
        assert!(
            out.insert(fd.0, (level, wake)).is_none(),
            "{fd} reported twice in one drain"
        );
    });
    out
}

#[test]
fn fresh_socket_is_out_and_hup_like_linux() {
    let mut net = Net::new();
    let fd = net.a.tcp_socket().unwrap();
    assert_eq!(net.ready(Side::A, fd), rd(false, true, false, true, false));
}

#[test]
fn connect_completion_makes_the_socket_writable() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 4).unwrap();
    assert_eq!(net.ready(Side::B, l), Readiness::EMPTY);
    let c = net.a.tcp_socket().unwrap();
    let _ = net.a.connect(c, SERVER);
    assert_eq!(net.ready(Side::A, c), Readiness::EMPTY, "SYN-SENT: nothing");
    drain(&mut net.a);
    net.pump();
    let changes = drain(&mut net.a);
    let (level, wake) = changes[&c.0];
    assert_eq!(level, rd(false, true, false, false, false));
    assert_eq!(wake, Readiness::ALL, "a state change wakes every interest");
    // The listener is readable while a connection waits, and not after accept.
    let changes = drain(&mut net.b);
    assert_eq!(changes[&l.0].0, rd(true, false, false, false, false));
    assert!(changes[&l.0].1.readable);
    let (s, _) = net.b.accept(l).unwrap();
    assert_eq!(net.ready(Side::B, l), Readiness::EMPTY);
    let changes = drain(&mut net.b);
    assert_eq!(changes[&l.0].0, Readiness::EMPTY);
    assert_eq!(changes[&s.0].0, rd(false, true, false, false, false));
}

#[test]
fn listener_stays_readable_until_the_last_pending_connection_is_accepted() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().unwrap();
    net.b.bind(l, SERVER).unwrap();
    net.b.listen(l, 8).unwrap();
    for _ in 0..3 {
        let c = net.a.tcp_socket().unwrap();
        let _ = net.a.connect(c, SERVER);
    }
    net.pump();
    drain(&mut net.b);
    for i in 0..3 {
        assert!(net.ready(Side::B, l).readable, "before accept {i}");
        net.b.accept(l).unwrap();
    }
    assert!(!net.ready(Side::B, l).readable);
    assert_eq!(net.b.accept(l), Err(Errno::EAGAIN));
}

#[test]
fn data_arrival_wakes_readable_and_reading_lowers_the_level() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    drain(&mut net.a);
    drain(&mut net.b);
    assert!(
        drain(&mut net.b).is_empty(),
        "nothing new, nothing reported"
    );
    net.a.write(c, b"ping").unwrap();
    net.pump();
    let changes = drain(&mut net.b);
    let (level, wake) = changes[&s.0];
    assert_eq!(level, rd(true, true, false, false, false));
    assert!(wake.readable && !wake.hup);
    // More data while still readable: the level is unchanged but the wake
    // says new data arrived (edge-triggered watchers need it).
    net.a.write(c, b"pong").unwrap();
    // (Nagle holds "pong" until B's delayed ACK of "ping".)
    net.advance(Duration::from_millis(100));
    let (level, wake) = drain(&mut net.b)[&s.0];
    assert!(level.readable && wake.readable);
    read_all(&mut net.b, s);
    let (level, wake) = drain(&mut net.b)[&s.0];
    assert_eq!(level, rd(false, true, false, false, false));
    assert_eq!(wake, Readiness::EMPTY, "a falling level wakes nobody");
}

#[test]
fn peer_fin_gives_in_and_rdhup_and_both_shut_gives_hup() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a.shutdown(c, Shutdown::Write).unwrap();
    // Our own SHUT_WR: OUT stays set, no HUP yet.
    assert_eq!(net.ready(Side::A, c), rd(false, true, false, false, false));
    net.pump();
    let (level, wake) = drain(&mut net.b)[&s.0];
    assert_eq!(level, rd(true, true, true, false, false));
    assert_eq!(wake, Readiness::ALL);
    net.b.shutdown(s, Shutdown::Write).unwrap();
    net.pump();
    assert_eq!(net.ready(Side::B, s), rd(true, true, true, true, false));
    assert_eq!(net.ready(Side::A, c), rd(true, true, true, true, false));
}

#[test]
fn our_shut_rd_and_shut_wr_give_hup() {
    let mut net = Net::new();
    let (c, _l, _s) = net.connected();
    net.a.shutdown(c, Shutdown::Read).unwrap();
    assert_eq!(net.ready(Side::A, c), rd(true, true, true, false, false));
    net.a.shutdown(c, Shutdown::Write).unwrap();
    assert_eq!(net.ready(Side::A, c), rd(true, true, true, true, false));
}

#[test]
fn reset_gives_err_and_hup_until_so_error_is_read() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    drain(&mut net.b);
    net.a.abort(c).unwrap();
    net.pump();
    let (level, wake) = drain(&mut net.b)[&s.0];
    assert_eq!(level, rd(true, true, true, true, true));
    assert_eq!(wake, Readiness::ALL);
    assert_eq!(
        net.b.getsockopt(s, SockOptName::Error),
        Ok(SockOpt::Error(Some(Errno::ECONNRESET)))
    );
    let (level, _) = drain(&mut net.b)[&s.0];
    assert_eq!(level, rd(true, true, true, true, false));
}

#[test]
fn send_buffer_full_clears_out_and_acks_set_it_again() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    net.a.setsockopt(c, SockOpt::SndBuf(4096)).unwrap();
    net.cut_a_to_b = true;
    net.a.write(c, &[0; 4096]).unwrap();
    drain(&mut net.a);
    assert!(!net.ready(Side::A, c).writable);
    net.cut_a_to_b = false;
    net.advance(Duration::from_secs(2));
    let (level, wake) = drain(&mut net.a)[&c.0];
    assert!(level.writable);
    assert!(wake.writable, "freed space wakes OUT watchers");
    let _ = s;
}

#[test]
fn closed_descriptors_are_not_reported_and_bits_match_linux() {
    let mut net = Net::new();
    let (c, _l, _s) = net.connected();
    net.a.write(c, b"x").unwrap();
    net.a.close(c).unwrap();
    assert!(!drain(&mut net.a).contains_key(&c.0));
    assert_eq!(Readiness::ALL.bits(), 0x1 | 0x4 | 0x8 | 0x10 | 0x2000);
    assert_eq!(
        Readiness::from_bits_truncate(0x2005),
        rd(true, true, true, false, false)
    );
    assert_eq!(
        Readiness::READABLE | Readiness::WRITABLE,
        rd(true, true, false, false, false)
    );
}

#[test]
fn reporting_never_grows_the_dirty_list() {
    let mut net = Net::new();
    let (c, _l, s) = net.connected();
    let cap = net.b.dirty_capacity();
    assert!(cap >= 3, "room for every descriptor");
    for round in 0..200u32 {
        net.a.write(c, &round.to_le_bytes()).unwrap();
        net.advance(Duration::from_millis(50));
        net.b.drain_changes(|_, _, _| {});
        read_all(&mut net.b, s);
        net.b.drain_changes(|_, _, _| {});
    }
    assert_eq!(net.b.dirty_capacity(), cap);
}

#[test]
fn socket_table_can_move_to_the_stack_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<SocketTable>();
    assert_send::<crate::Errno>();
}

#[test]
fn acks_wake_out_only_for_a_writer_that_ran_out_of_room() {
    let mut net = Net::new();
    let (c, _l, _s) = net.connected();
    net.a.setsockopt(c, SockOpt::SndBuf(4096)).unwrap();
    drain(&mut net.a);
    // Room was never short: the ACK of our data is a level update, no OUT wake
    // (Linux wakes only a writer that found the buffer full, SOCK_NOSPACE).
    assert_eq!(net.a.write(c, &[1; 100]), Ok(100));
    drain(&mut net.a);
    net.advance(Duration::from_millis(100));
    let (level, wake) = drain(&mut net.a)[&c.0];
    assert!(level.writable);
    assert_eq!(wake, Readiness::EMPTY, "ACK of data never short of room");
    // A partial write ran out of room: the ACK that frees it wakes OUT, once.
    assert_eq!(net.a.write(c, &[2; 10_000]), Ok(4096));
    net.advance(Duration::from_millis(100));
    let (level, wake) = drain(&mut net.a)[&c.0];
    assert!(level.writable);
    assert_eq!(wake, Readiness::WRITABLE, "room back after a partial write");
    assert_eq!(net.a.write(c, &[3; 10]), Ok(10));
    net.advance(Duration::from_millis(100));
    assert_eq!(drain(&mut net.a)[&c.0].1, Readiness::EMPTY, "woken once");
    // EAGAIN: the same.
    net.cut_a_to_b = true;
    assert_eq!(net.a.write(c, &[4; 4096]), Ok(4096));
    assert_eq!(net.a.write(c, &[5; 1]), Err(Errno::EAGAIN));
    drain(&mut net.a);
    net.cut_a_to_b = false;
    net.advance(Duration::from_secs(2));
    assert_eq!(
        drain(&mut net.a)[&c.0].1,
        Readiness::WRITABLE,
        "after EAGAIN"
    );
}

#[test]
fn a_larger_sndbuf_wakes_a_writer_out_of_room() {
    let mut net = Net::new();
    let (c, _l, _s) = net.connected();
    net.a.setsockopt(c, SockOpt::SndBuf(4096)).unwrap();
    net.cut_a_to_b = true;
    assert_eq!(net.a.write(c, &[1; 5000]), Ok(4096));
    drain(&mut net.a);
    net.a.setsockopt(c, SockOpt::SndBuf(65536)).unwrap();
    let (level, wake) = drain(&mut net.a)[&c.0];
    assert!(level.writable);
    assert_eq!(wake, Readiness::WRITABLE);
}
