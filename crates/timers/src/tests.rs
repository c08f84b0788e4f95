use super::*;
use proptest::prelude::*;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

const MS: u64 = 1_000;

fn fire<T>(w: &mut Wheel<T>, now: u64) -> Vec<T> {
    let mut out = Vec::new();
    w.advance(now, &mut out);
    out.into_iter().map(|(_, v)| v).collect()
}

/// Which list a live timer is in.
fn list_of<T>(w: &Wheel<T>, h: TimerHandle) -> usize {
    w.nodes[h.index as usize].list as usize
}

#[test]
fn fires_exactly_at_deadline_not_before() {
    let mut w = Wheel::new(MS, 0);
    w.insert(5 * MS, "a");
    w.insert(5 * MS + 500, "b");
    assert!(fire(&mut w, 5 * MS - 1).is_empty());
    assert_eq!(fire(&mut w, 5 * MS), vec!["a"]);
    assert!(fire(&mut w, 5 * MS + 499).is_empty());
    assert_eq!(fire(&mut w, 5 * MS + 500), vec!["b"]);
    assert!(w.is_empty());
}

#[test]
fn past_and_present_deadlines_fire_at_next_advance() {
    let mut w = Wheel::new(MS, 10 * MS);
    w.insert(0, 1);
    w.insert(10 * MS, 2);
    assert_eq!(w.next_deadline(), Some(0));
    let mut got = fire(&mut w, 10 * MS);
    got.sort();
    assert_eq!(got, vec![1, 2]);
    // Time never goes backwards: an older `now` acts as the current one.
    w.insert(11 * MS, 3);
    assert!(fire(&mut w, 0).is_empty());
    assert_eq!(fire(&mut w, 11 * MS), vec![3]);
}

#[test]
fn cancel_is_generation_checked() {
    let mut w = Wheel::new(MS, 0);
    let a = w.insert(MS, 'a');
    assert_eq!(w.cancel(a), Some('a'));
    assert_eq!(w.cancel(a), None);
    // The storage slot is reused; the old handle must not reach the new timer.
    let b = w.insert(2 * MS, 'b');
    assert_eq!(b.index, a.index);
    assert_eq!(w.cancel(a), None);
    assert_eq!(w.get(b), Some(&'b'));
    let mut out = Vec::new();
    w.advance(2 * MS, &mut out);
    assert_eq!(out, vec![(b, 'b')]);
    // Cancel after fire.
    assert_eq!(w.cancel(b), None);
    assert_eq!(w.get(b), None);
    assert_eq!(w.deadline(b), None);
    assert!(!w.reschedule(b, 5));
    // A handle from another index that never existed.
    let bogus = TimerHandle {
        index: 99,
        generation: 0,
    };
    assert_eq!(w.cancel(bogus), None);
}

#[test]
fn levels_follow_the_documented_layout() {
    // (ticks ahead, level): level l covers [64^l, 64^(l+1)) ticks from tick 0.
    let rows: [(u64, usize); 12] = [
        (1, 0),
        (63, 0),
        (64, 1),
        (4095, 1),
        (4096, 2),
        (262_143, 2),
        (262_144, 3),
        ((1 << 24) - 1, 3),
        (1 << 24, 4),
        (1 << 30, 5),
        ((1 << 36) - 1, 5),
        (1 << 36, LEVELS), // overflow list
    ];
    let mut w = Wheel::new(1, 0);
    for (ticks, level) in rows {
        let h = w.insert(ticks, ());
        let list = list_of(&w, h);
        if level == LEVELS {
            assert_eq!(list, OVERFLOW, "ticks {ticks}");
        } else {
            assert_eq!(list / SLOTS, level, "ticks {ticks}");
            assert_eq!(list % SLOTS, ((ticks >> (6 * level)) & 63) as usize);
        }
    }
}

#[test]
fn next_deadline_is_a_lower_bound_that_refines() {
    let mut w = Wheel::new(MS, 0);
    assert_eq!(w.next_deadline(), None);
    let h = w.insert(1_500, ());
    // Level 0, tick 1: the start of that tick.
    assert_eq!(w.next_deadline(), Some(1_000));
    assert!(fire(&mut w, 1_000).is_empty());
    // Now in the current tick's pending list: the exact deadline.
    assert_eq!(w.next_deadline(), Some(1_500));
    assert!(w.reschedule(h, 100 * MS));
    // Level 1 slot starting at tick 64.
    assert_eq!(w.next_deadline(), Some(64 * MS));
    assert_eq!(w.deadline(h), Some(100 * MS));
    assert!(fire(&mut w, 64 * MS).is_empty());
    assert_eq!(w.next_deadline(), Some(100 * MS));
    // A deadline on a tick boundary is reported exactly.
    w.insert(70 * MS, ());
    assert_eq!(w.next_deadline(), Some(70 * MS));
}

#[test]
fn huge_deadlines_are_kept_and_fire_on_time() {
    let mut w = Wheel::new(1, 0);
    let far = (1u64 << 40) + 12_345;
    w.insert(far, "far");
    w.insert(u64::MAX, "max");
    w.insert((1 << 36) + 5, "boundary");
    let mut fired: Vec<(&str, u64)> = Vec::new();
    let mut steps = 0;
    while let Some(t) = w.next_deadline() {
        let mut out = Vec::new();
        w.advance(t, &mut out);
        fired.extend(out.into_iter().map(|(_, v)| (v, t)));
        steps += 1;
        assert!(steps < 1_000, "no progress");
    }
    assert_eq!(
        fired,
        vec![("boundary", (1 << 36) + 5), ("far", far), ("max", u64::MAX)]
    );
}

#[test]
fn crossing_a_window_boundary_with_tick_1() {
    let mut w = Wheel::new(1, 0);
    assert!(fire(&mut w, (1 << 36) - 1).is_empty());
    let h = w.insert((1 << 36) + 5, 7);
    assert_eq!(list_of(&w, h), OVERFLOW);
    assert_eq!(w.next_deadline(), Some(1 << 36));
    assert!(fire(&mut w, (1 << 36) + 4).is_empty());
    assert_eq!(fire(&mut w, (1 << 36) + 5), vec![7]);
}

#[test]
fn big_jump_fires_everything_in_tick_order() {
    let mut w = Wheel::new(MS, 0);
    let deadlines = [
        900_000_000,
        3 * MS,
        70 * MS,
        5_000 * MS,
        64 * MS,
        1,
        300_000 * MS,
    ];
    for d in deadlines {
        w.insert(d, d);
    }
    let got = fire(&mut w, u64::MAX);
    let mut want = deadlines.to_vec();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(w.next_deadline(), None);
}

#[test]
fn zero_tick_is_one_microsecond_and_origin_offsets() {
    let mut w = Wheel::new(0, 1_000_000);
    assert_eq!(w.tick_us(), 1);
    w.insert(1_000_003, 'x');
    // Times before the origin count as tick 0.
    assert!(fire(&mut w, 5).is_empty());
    assert_eq!(w.next_deadline(), Some(1_000_003));
    assert_eq!(fire(&mut w, 1_000_003), vec!['x']);
}

#[test]
fn clear_and_drop_release_values() {
    let drops = Rc::new(Cell::new(0));
    struct D(Rc<Cell<u32>>);
    impl Drop for D {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let mut w = Wheel::new(MS, 0);
    let hs: Vec<_> = (0..10)
        .map(|i| w.insert(i * 997 * MS, D(drops.clone())))
        .collect();
    w.insert(u64::MAX, D(drops.clone()));
    w.clear();
    assert_eq!(drops.get(), 11);
    assert!(w.is_empty());
    assert!(hs.iter().all(|h| w.get(*h).is_none()));
    assert_eq!(w.next_deadline(), None);
    w.insert(5, D(drops.clone()));
    drop(w);
    assert_eq!(drops.get(), 12);
}

#[test]
fn storage_is_reused_after_fire() {
    let mut w = Wheel::with_capacity(MS, 0, 16);
    for round in 0..100u64 {
        for i in 0..16 {
            w.insert(round * 10 * MS + i, i);
        }
        assert_eq!(fire(&mut w, round * 10 * MS + 16).len(), 16);
    }
    assert_eq!(w.nodes.len(), 16);
}

// ---- model-based property tests ----

#[derive(Debug, Clone)]
enum Op {
    /// Insert at `now + delta` (negative: in the past).
    Insert(i64),
    /// Cancel the n-th handle ever issued (modulo count; may be stale).
    Cancel(usize),
    /// Reschedule the n-th handle ever issued to `now + delta`.
    Reschedule(usize, i64),
    /// Advance by `delta`.
    Advance(u64),
}

fn delta() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => -5_000i64..300_000,
        1 => 0i64..(1 << 42),
        1 => Just(0i64),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => delta().prop_map(Op::Insert),
        1 => any::<usize>().prop_map(Op::Cancel),
        1 => (any::<usize>(), delta()).prop_map(|(i, d)| Op::Reschedule(i, d)),
        3 => prop_oneof![
            6 => 0u64..20_000,
            1 => 0u64..(1 << 40),
        ]
        .prop_map(Op::Advance),
    ]
}

fn at(now: u64, d: i64) -> u64 {
    if d < 0 {
        now.saturating_sub(d.unsigned_abs())
    } else {
        now.saturating_add(d as u64)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random insert/cancel/reschedule/advance sequences against a BTreeMap:
    /// after every advance the fired set is exactly the model's due set, in
    /// the documented order; next_deadline is never more than a tick late.
    #[test]
    fn matches_btreemap_model(
        tick in prop_oneof![Just(1u64), Just(7), Just(1_000)],
        origin in 0u64..1_000_000,
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        let mut w: Wheel<usize> = Wheel::new(tick, origin);
        let mut now = origin;
        let mut model: BTreeMap<(u64, usize), ()> = BTreeMap::new();
        let mut live: HashMap<usize, u64> = HashMap::new();
        let mut handles: Vec<TimerHandle> = Vec::new();
        // Latest deadline of every id ever issued.
        let mut deadlines: Vec<u64> = Vec::new();
        let tick_of = |t: u64| t.saturating_sub(origin) / tick;
        for op in ops {
            match op {
                Op::Insert(d) => {
                    let deadline = at(now, d);
                    let id = handles.len();
                    handles.push(w.insert(deadline, id));
                    deadlines.push(deadline);
                    model.insert((deadline, id), ());
                    live.insert(id, deadline);
                }
                Op::Cancel(n) if !handles.is_empty() => {
                    let id = n % handles.len();
                    let got = w.cancel(handles[id]);
                    match live.remove(&id) {
                        Some(d) => {
                            prop_assert_eq!(got, Some(id));
                            model.remove(&(d, id));
                        }
                        None => prop_assert_eq!(got, None),
                    }
                }
                Op::Reschedule(n, d) if !handles.is_empty() => {
                    let id = n % handles.len();
                    let deadline = at(now, d);
                    let ok = w.reschedule(handles[id], deadline);
                    prop_assert_eq!(ok, live.contains_key(&id));
                    if let Some(old) = live.get_mut(&id) {
                        model.remove(&(*old, id));
                        *old = deadline;
                        deadlines[id] = deadline;
                        model.insert((deadline, id), ());
                    }
                }
                Op::Cancel(_) | Op::Reschedule(..) => {}
                Op::Advance(d) => {
                    let before = tick_of(now);
                    now = now.saturating_add(d);
                    let mut out = Vec::new();
                    let n = w.advance(now, &mut out);
                    prop_assert_eq!(n, out.len());
                    let mut want: Vec<usize> = Vec::new();
                    while let Some((&(dl, id), _)) = model.first_key_value() {
                        if dl > now { break; }
                        model.remove(&(dl, id));
                        live.remove(&id);
                        want.push(id);
                    }
                    let mut got: Vec<usize> = out.iter().map(|(_, id)| *id).collect();
                    // Handles returned with fired timers are the issued ones.
                    for (h, id) in &out {
                        prop_assert_eq!(*h, handles[*id]);
                    }
                    // Order: overdue-at-insert timers (tick <= previous
                    // tick) first, then non-decreasing ticks.
                    let ticks: Vec<u64> = got.iter().map(|id| tick_of(deadlines[*id])).collect();
                    let split = ticks.iter().take_while(|t| **t <= before).count();
                    prop_assert!(ticks[split..].iter().all(|t| *t > before));
                    prop_assert!(ticks[split..].windows(2).all(|p| p[0] <= p[1]), "{:?}", ticks);
                    got.sort();
                    want.sort();
                    prop_assert_eq!(got, want);
                }
            }
            prop_assert_eq!(w.len(), model.len());
            match model.first_key_value() {
                None => prop_assert_eq!(w.next_deadline(), None),
                Some((&(min, _), _)) => {
                    let nd = w.next_deadline().unwrap();
                    prop_assert!(nd <= min, "next_deadline {} min {} now {}", nd, min, now);
                }
            }
        }
    }

    /// A driver that sleeps until next_deadline fires every timer exactly at
    /// its deadline, in a bounded number of wake-ups.
    #[test]
    fn driving_by_next_deadline_fires_exactly_on_time(
        tick in prop_oneof![Just(1u64), Just(1_000)],
        deadlines in proptest::collection::vec(
            prop_oneof![4 => 0u64..10_000_000, 1 => 0u64..(1 << 45)], 1..60),
    ) {
        let mut w = Wheel::new(tick, 0);
        for (i, d) in deadlines.iter().enumerate() {
            w.insert(*d, i);
        }
        let mut fired = vec![false; deadlines.len()];
        let mut wakeups = 0;
        while let Some(t) = w.next_deadline() {
            let mut out = Vec::new();
            w.advance(t, &mut out);
            for (_, i) in out {
                let d = deadlines[i];
                prop_assert_eq!(d, t, "deadline {} fired at {}", d, t);
                fired[i] = true;
            }
            wakeups += 1;
            prop_assert!(wakeups <= deadlines.len() * (LEVELS + 2) + 8, "too many wake-ups");
        }
        prop_assert!(fired.iter().all(|f| *f));
    }
}

#[test]
fn cancelled_pending_timer_leaves_a_harmless_early_bound() {
    let mut w = Wheel::new(MS, 0);
    assert!(fire(&mut w, 10 * MS).is_empty());
    let a = w.insert(10 * MS + 100, 'a');
    w.insert(10 * MS + 700, 'b');
    assert_eq!(w.next_deadline(), Some(10 * MS + 100));
    w.cancel(a);
    // The bound may still say 100 us; advancing there fixes it.
    let t = w.next_deadline().unwrap();
    assert!(t <= 10 * MS + 700);
    assert!(fire(&mut w, t).is_empty());
    assert_eq!(w.next_deadline(), Some(10 * MS + 700));
    assert_eq!(fire(&mut w, 10 * MS + 700), vec!['b']);
    assert_eq!(w.next_deadline(), None);
}
