//! Model-based property test: random operation sequences run against [`EpollContext`]
//! and against a deliberately naive reference (vectors, linear scans, no intrusive
//! lists) written straight from the epoll(7) / `fs/eventpoll.c` rules. Every result,
//! every `epoll_wait` output (order included) and the pending flags must agree.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use epoll_events::{CtlOp, EpollContext, EpollId, Error, Event, Events, Fd, Limits};
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    max_instances: 3,
    max_fds: 5,
    max_registrations: 6,
};

/// Cases in which some `epoll_wait` reported something, to check the generator reaches
/// interesting states.
static REPORTING_CASES: AtomicUsize = AtomicUsize::new(0);
static TOTAL_CASES: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Debug)]
enum Op {
    Create,
    Close(u32),
    Open(u32, Events),
    CloseFd(u32),
    Ctl(u32, CtlOp, u32, Events, u64),
    Notify(u32, Events, Events),
    Wait(u32, usize),
}

#[derive(Clone, Debug)]
struct ModelReg {
    fd: u32,
    interest: Events,
    data: u64,
    armed: bool,
}

#[derive(Clone, Debug, Default)]
struct ModelInstance {
    regs: Vec<ModelReg>,
    /// Queued descriptors, oldest first.
    ready: VecDeque<u32>,
}

#[derive(Debug)]
struct Model {
    instances: Vec<Option<ModelInstance>>,
    /// `Some(level)` while open.
    fds: Vec<Option<Events>>,
}

impl Model {
    fn new() -> Model {
        Model {
            instances: vec![None; LIMITS.max_instances],
            fds: vec![None; LIMITS.max_fds],
        }
    }

    fn registrations(&self) -> usize {
        self.instances.iter().flatten().map(|i| i.regs.len()).sum()
    }

    fn level(&self, fd: u32) -> Result<Events, Error> {
        self.fds
            .get(fd as usize)
            .copied()
            .flatten()
            .ok_or(Error::BadDescriptor)
    }

    fn inst(&mut self, ep: u32) -> Result<&mut ModelInstance, Error> {
        self.instances
            .get_mut(ep as usize)
            .and_then(Option::as_mut)
            .ok_or(Error::BadInstance)
    }

    fn create(&mut self) -> Result<EpollId, Error> {
        let slot = (0..self.instances.len())
            .find(|&i| self.instances[i].is_none())
            .ok_or(Error::TooManyInstances)?;
        self.instances[slot] = Some(ModelInstance::default());
        Ok(EpollId(slot as u32))
    }

    fn close(&mut self, ep: u32) -> Result<(), Error> {
        self.inst(ep)?;
        self.instances[ep as usize] = None;
        Ok(())
    }

    fn open(&mut self, fd: u32, level: Events) -> Result<(), Error> {
        match self.fds.get_mut(fd as usize) {
            None => Err(Error::BadDescriptor),
            Some(Some(_)) => Err(Error::AlreadyExists),
            Some(slot) => {
                *slot = Some(level.readiness());
                Ok(())
            }
        }
    }

    fn close_fd(&mut self, fd: u32) -> Result<(), Error> {
        self.level(fd)?;
        for inst in self.instances.iter_mut().flatten() {
            inst.regs.retain(|r| r.fd != fd);
            inst.ready.retain(|&f| f != fd);
        }
        self.fds[fd as usize] = None;
        Ok(())
    }

    fn ctl(&mut self, ep: u32, op: CtlOp, fd: u32, events: Events, data: u64) -> Result<(), Error> {
        self.inst(ep)?;
        let level = self.level(fd)?;
        let total = self.registrations();
        let inst = self.inst(ep)?;
        let interest = events | Events::ERR | Events::HUP;
        let pos = inst.regs.iter().position(|r| r.fd == fd);
        match (op, pos) {
            (CtlOp::Add, Some(_)) => return Err(Error::AlreadyExists),
            (CtlOp::Mod | CtlOp::Del, None) => return Err(Error::NotFound),
            (CtlOp::Add, None) => {
                if total == LIMITS.max_registrations {
                    return Err(Error::NoSpace);
                }
                inst.regs.push(ModelReg {
                    fd,
                    interest,
                    data,
                    armed: true,
                });
            }
            (CtlOp::Mod, Some(p)) => {
                inst.regs[p] = ModelReg {
                    fd,
                    interest,
                    data,
                    armed: true,
                };
            }
            (CtlOp::Del, Some(p)) => {
                inst.regs.remove(p);
                inst.ready.retain(|&f| f != fd);
                return Ok(());
            }
        }
        if (level & interest.readiness()) != Events::EMPTY && !inst.ready.contains(&fd) {
            inst.ready.push_back(fd);
        }
        Ok(())
    }

    fn notify(&mut self, fd: u32, level: Events, wake: Events) -> Result<usize, Error> {
        let old = self.level(fd)?;
        let level = level.readiness();
        self.fds[fd as usize] = Some(level);
        let key =
            Events::from_bits_truncate((level.bits() & !old.bits()) | wake.readiness().bits());
        let mut queued = 0;
        for inst in self.instances.iter_mut().flatten() {
            for reg in inst.regs.iter().filter(|r| r.fd == fd) {
                let meets = (key & reg.interest.readiness()) != Events::EMPTY;
                if reg.armed && meets && !inst.ready.contains(&fd) {
                    inst.ready.push_back(fd);
                    queued += 1;
                }
            }
        }
        Ok(queued)
    }

    fn wait(&mut self, ep: u32, max: usize) -> Result<Vec<Event>, Error> {
        let fds = self.fds.clone();
        let inst = self.inst(ep)?;
        if max == 0 {
            return Err(Error::InvalidArgument);
        }
        let mut taken: VecDeque<u32> = std::mem::take(&mut inst.ready);
        let mut out = Vec::new();
        while out.len() < max {
            let Some(fd) = taken.pop_front() else { break };
            let reg = inst.regs.iter_mut().find(|r| r.fd == fd).unwrap();
            let level = fds[fd as usize].unwrap();
            let revents = level & reg.interest.readiness();
            if revents == Events::EMPTY {
                continue;
            }
            out.push(Event::new(revents, reg.data));
            if reg.interest.contains(Events::ONESHOT) {
                reg.armed = false;
            } else if !reg.interest.contains(Events::ET) {
                inst.ready.push_back(fd);
            }
        }
        // The unseen remainder goes back in front of what was re-queued.
        taken.extend(inst.ready.drain(..));
        inst.ready = taken;
        Ok(out)
    }
}

fn events() -> impl Strategy<Value = Events> {
    const BITS: [Events; 8] = [
        Events::IN,
        Events::OUT,
        Events::ERR,
        Events::HUP,
        Events::RDHUP,
        Events::PRI,
        Events::ET,
        Events::ONESHOT,
    ];
    any::<u8>().prop_map(|m| {
        BITS.iter()
            .enumerate()
            .filter(|(i, _)| m & (1 << i) != 0)
            .fold(Events::EMPTY, |acc, (_, &b)| acc | b)
    })
}

fn op() -> impl Strategy<Value = Op> {
    // Mostly the instances and descriptors the setup opened, sometimes any (invalid) id.
    let ep = prop_oneof![6 => 0..2u32, 1 => 0..LIMITS.max_instances as u32 + 1];
    let fd = prop_oneof![6 => 0..4u32, 1 => 0..LIMITS.max_fds as u32 + 1];
    let ctl = prop_oneof![2 => Just(CtlOp::Add), 2 => Just(CtlOp::Mod), 1 => Just(CtlOp::Del)];
    prop_oneof![
        1 => Just(Op::Create),
        1 => ep.clone().prop_map(Op::Close),
        2 => (fd.clone(), events()).prop_map(|(f, e)| Op::Open(f, e)),
        1 => fd.clone().prop_map(Op::CloseFd),
        10 => (ep.clone(), ctl, fd.clone(), events(), any::<u64>())
            .prop_map(|(p, c, f, e, d)| Op::Ctl(p, c, f, e, d)),
        12 => (fd, events(), events()).prop_map(|(f, l, w)| Op::Notify(f, l, w)),
        8 => (ep, 0usize..5).prop_map(|(p, m)| Op::Wait(p, m)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Not a `#[test]` itself: run by the test below, which also checks coverage.
    fn context_matches_reference_model(ops in proptest::collection::vec(op(), 20..150)) {
        let mut real = EpollContext::new(LIMITS).unwrap();
        let mut model = Model::new();
        // Start from a populated context so most random operations get past validation.
        let setup = [Op::Create, Op::Create, Op::Open(0, Events::EMPTY), Op::Open(1, Events::OUT),
            Op::Open(2, Events::IN), Op::Open(3, Events::EMPTY)];
        let mut nonempty_waits = 0;
        for (step, op) in setup.iter().chain(&ops).enumerate() {
            match *op {
                Op::Create => prop_assert_eq!(real.epoll_create(), model.create(), "step {}", step),
                Op::Close(ep) => prop_assert_eq!(real.epoll_close(EpollId(ep)), model.close(ep)),
                Op::Open(fd, l) => prop_assert_eq!(real.open_fd(Fd(fd), l), model.open(fd, l)),
                Op::CloseFd(fd) => prop_assert_eq!(real.close_fd(Fd(fd)), model.close_fd(fd)),
                Op::Ctl(ep, op, fd, e, d) => prop_assert_eq!(
                    real.epoll_ctl(EpollId(ep), op, Fd(fd), Event::new(e, d)),
                    model.ctl(ep, op, fd, e, d),
                    "step {}", step
                ),
                Op::Notify(fd, l, w) => prop_assert_eq!(
                    real.notify(Fd(fd), l, w),
                    model.notify(fd, l, w),
                    "step {}", step
                ),
                Op::Wait(ep, max) => {
                    let mut buf = [Event::default(); 8];
                    let got = real
                        .epoll_wait(EpollId(ep), &mut buf[..max])
                        .map(|n| buf[..n].to_vec());
                    if got.as_ref().is_ok_and(|v| !v.is_empty()) {
                        nonempty_waits += 1;
                    }
                    prop_assert_eq!(got, model.wait(ep, max), "step {}", step);
                }
            }
            prop_assert_eq!(real.registration_count(), model.registrations(), "step {}", step);
            for ep in 0..LIMITS.max_instances as u32 {
                let want = model.inst(ep).map(|i| !i.ready.is_empty());
                prop_assert_eq!(real.has_pending(EpollId(ep)), want, "step {} ep {}", step, ep);
            }
        }
        REPORTING_CASES.fetch_add(usize::from(nonempty_waits > 0), Ordering::Relaxed);
        TOTAL_CASES.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn context_matches_reference_model_in_reporting_states() {
    context_matches_reference_model();
    let reporting = REPORTING_CASES.load(Ordering::Relaxed);
    let total = TOTAL_CASES.load(Ordering::Relaxed);
    assert!(
        reporting * 4 > total * 3,
        "only {reporting} of {total} cases reported an event"
    );
}
