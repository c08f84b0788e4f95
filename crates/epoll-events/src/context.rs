//! [`EpollContext`]: every epoll instance, watched descriptor and registration of one
//! per-core context, in fixed-size tables linked by intrusive lists (see the crate doc
//! for the algorithm).

use crate::{Error, Event, Events};

/// Index meaning "no registration" in the intrusive lists.
const NIL: u32 = u32::MAX;

/// Bounds on the tables of one [`EpollContext`]; all memory is reserved up front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most epoll instances open at once; ids are `0..max_instances`.
    pub max_instances: usize,
    /// Descriptors are `0..max_fds`.
    pub max_fds: usize,
    /// Most (instance, descriptor) registrations at once, over all instances.
    pub max_registrations: usize,
}

impl Default for Limits {
    /// 16 instances, 8,192 descriptors, 16,384 registrations.
    fn default() -> Limits {
        Limits {
            max_instances: 16,
            max_fds: 8192,
            max_registrations: 16_384,
        }
    }
}

/// An epoll instance id, as returned by [`EpollContext::epoll_create`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EpollId(pub u32);

/// A watched descriptor: a small integer owned by the caller (the socket layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fd(pub u32);

/// `EPOLL_CTL_*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtlOp {
    /// `EPOLL_CTL_ADD`: register the descriptor; report it at once if already ready.
    Add,
    /// `EPOLL_CTL_MOD`: replace interest and data, re-arm a one-shot registration, and
    /// report the descriptor if it is ready under the new interest.
    Mod,
    /// `EPOLL_CTL_DEL`: unregister; any pending report is dropped. The event is ignored.
    Del,
}

/// Previous and next registration in one intrusive list.
#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
}

impl Link {
    const DETACHED: Link = Link {
        prev: NIL,
        next: NIL,
    };
}

/// The three lists a registration belongs to.
#[derive(Clone, Copy, Debug)]
enum Chain {
    /// Its instance's ready list (only while `queued`).
    Ready,
    /// Every registration watching the same descriptor.
    Fd,
    /// Every registration of the same instance.
    Instance,
}

/// One (instance, descriptor) pair: Linux's `struct epitem`.
#[derive(Clone, Copy, Debug)]
struct Registration {
    epoll: u32,
    fd: u32,
    /// Requested bits, always including [`Events::ALWAYS`], plus ET / ONESHOT.
    interest: Events,
    data: u64,
    /// False once a one-shot registration has been reported, until `EPOLL_CTL_MOD`.
    armed: bool,
    /// On its instance's ready list.
    queued: bool,
    ready: Link,
    by_fd: Link,
    by_instance: Link,
}

impl Registration {
    const VACANT: Registration = Registration {
        epoll: NIL,
        fd: NIL,
        interest: Events::EMPTY,
        data: 0,
        armed: false,
        queued: false,
        ready: Link::DETACHED,
        by_fd: Link::DETACHED,
        by_instance: Link::DETACHED,
    };

    fn link(&mut self, chain: Chain) -> &mut Link {
        match chain {
            Chain::Ready => &mut self.ready,
            Chain::Fd => &mut self.by_fd,
            Chain::Instance => &mut self.by_instance,
        }
    }
}

/// Head and tail of an intrusive list.
#[derive(Clone, Copy, Debug)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

/// One epoll instance: Linux's `struct eventpoll`.
#[derive(Clone, Copy, Debug)]
struct Instance {
    /// Registrations waiting to be looked at by `epoll_wait`, oldest first.
    ready: List,
    ready_len: usize,
    /// All registrations of this instance, for `epoll_close`.
    members: List,
}

/// What the context knows about one descriptor.
#[derive(Clone, Copy, Debug)]
struct FdState {
    open: bool,
    /// Current readiness level, as last told by the owner.
    readiness: Events,
    /// Registrations watching it, for `notify` and `close_fd`.
    watchers: List,
}

impl FdState {
    const CLOSED: FdState = FdState {
        open: false,
        readiness: Events::EMPTY,
        watchers: List::EMPTY,
    };
}

/// Every epoll instance of one per-core context, the readiness of each descriptor they
/// may watch, and the registrations between them.
///
/// Two sides use it. The application side calls [`epoll_create`](Self::epoll_create),
/// [`epoll_ctl`](Self::epoll_ctl), [`epoll_wait`](Self::epoll_wait) and
/// [`epoll_close`](Self::epoll_close). The descriptor owner (the socket layer) calls
/// [`open_fd`](Self::open_fd) when a descriptor comes to life,
/// [`notify`](Self::notify) whenever its readiness may have changed or something new
/// happened on it, and [`close_fd`](Self::close_fd) when it is closed.
///
/// Costs: `notify` is O(registrations watching that descriptor), `epoll_ctl` is
/// O(instances watching the descriptor), `epoll_wait` is O(items looked at). Nothing
/// allocates after [`EpollContext::new`].
#[derive(Debug)]
pub struct EpollContext {
    limits: Limits,
    instances: Vec<Option<Instance>>,
    fds: Vec<FdState>,
    registrations: Vec<Registration>,
    /// Vacant registration slots, chained through `ready.next`.
    free: u32,
    live_registrations: usize,
}

impl EpollContext {
    /// A context with tables sized by `limits`, all memory reserved now.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `max_instances` or `max_fds` exceeds `u32::MAX` or
    /// `max_registrations` is `u32::MAX` or more: ids and links are 32-bit.
    pub fn new(limits: Limits) -> Result<EpollContext, Error> {
        let fits = u32::try_from(limits.max_instances).is_ok()
            && u32::try_from(limits.max_fds).is_ok()
            && limits.max_registrations < NIL as usize;
        if !fits {
            return Err(Error::InvalidArgument);
        }
        let mut registrations = vec![Registration::VACANT; limits.max_registrations];
        for (i, reg) in registrations.iter_mut().enumerate() {
            reg.ready.next = if i + 1 < limits.max_registrations {
                i as u32 + 1
            } else {
                NIL
            };
        }
        Ok(EpollContext {
            limits,
            instances: vec![None; limits.max_instances],
            fds: vec![FdState::CLOSED; limits.max_fds],
            registrations,
            free: if limits.max_registrations > 0 { 0 } else { NIL },
            live_registrations: 0,
        })
    }

    /// The limits this context was built with.
    #[must_use]
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Number of registrations over all instances.
    #[must_use]
    pub fn registration_count(&self) -> usize {
        self.live_registrations
    }

    /// Number of open epoll instances.
    #[must_use]
    pub fn instance_count(&self) -> usize {
        self.instances.iter().filter(|i| i.is_some()).count()
    }

    // ---- application side -------------------------------------------------------------

    /// `epoll_create`: a new instance, with the lowest free id (as POSIX allocates
    /// descriptors).
    ///
    /// # Errors
    /// [`Error::TooManyInstances`] if all `max_instances` are open.
    pub fn epoll_create(&mut self) -> Result<EpollId, Error> {
        let slot = self
            .instances
            .iter()
            .position(Option::is_none)
            .ok_or(Error::TooManyInstances)?;
        self.instances[slot] = Some(Instance {
            ready: List::EMPTY,
            ready_len: 0,
            members: List::EMPTY,
        });
        Ok(EpollId(slot as u32))
    }

    /// Closes an instance and drops all its registrations.
    ///
    /// # Errors
    /// [`Error::BadInstance`] if `ep` is not open.
    pub fn epoll_close(&mut self, ep: EpollId) -> Result<(), Error> {
        let inst = self.instance(ep)?;
        let mut cur = inst.members.head;
        while cur != NIL {
            let next = self.registrations[cur as usize].by_instance.next;
            let fd = self.registrations[cur as usize].fd as usize;
            let mut watchers = self.fds[fd].watchers;
            self.unlink(&mut watchers, cur, Chain::Fd);
            self.fds[fd].watchers = watchers;
            self.release(cur);
            cur = next;
        }
        self.instances[ep.0 as usize] = None;
        Ok(())
    }

    /// `epoll_ctl`: add, modify or delete the registration of `fd` with `ep`.
    ///
    /// [`Events::ERR`] and [`Events::HUP`] are added to every interest, as Linux does.
    /// `event` is ignored for [`CtlOp::Del`].
    ///
    /// # Errors
    /// [`Error::BadInstance`], [`Error::BadDescriptor`] (not open), [`Error::AlreadyExists`]
    /// (ADD of a registered descriptor), [`Error::NotFound`] (MOD or DEL of an
    /// unregistered one), [`Error::NoSpace`] (ADD beyond `max_registrations`).
    pub fn epoll_ctl(&mut self, ep: EpollId, op: CtlOp, fd: Fd, event: Event) -> Result<(), Error> {
        self.instance(ep)?;
        let state = self.fd_state(fd)?;
        let existing = self.find(state.watchers, ep.0);
        let interest = event.events | Events::ALWAYS;
        match (op, existing) {
            (CtlOp::Add, Some(_)) => Err(Error::AlreadyExists),
            (CtlOp::Mod | CtlOp::Del, None) => Err(Error::NotFound),
            (CtlOp::Add, None) => {
                let idx = self.allocate()?;
                self.registrations[idx as usize] = Registration {
                    epoll: ep.0,
                    fd: fd.0,
                    interest,
                    data: event.data,
                    armed: true,
                    ..Registration::VACANT
                };
                let mut watchers = state.watchers;
                self.push_back(&mut watchers, idx, Chain::Fd);
                self.fds[fd.0 as usize].watchers = watchers;
                let mut inst = self.instance(ep)?;
                self.push_back(&mut inst.members, idx, Chain::Instance);
                self.instances[ep.0 as usize] = Some(inst);
                if state.readiness.intersects(interest) {
                    self.enqueue(idx);
                }
                Ok(())
            }
            (CtlOp::Mod, Some(idx)) => {
                let reg = &mut self.registrations[idx as usize];
                reg.interest = interest;
                reg.data = event.data;
                reg.armed = true;
                if state.readiness.intersects(interest) {
                    self.enqueue(idx);
                }
                Ok(())
            }
            (CtlOp::Del, Some(idx)) => {
                self.remove(idx);
                Ok(())
            }
        }
    }

    /// `epoll_wait` without blocking: fills `out` with up to `out.len()` events and
    /// returns how many. Blocking, when nothing is ready, is the runtime's job (see
    /// [`has_pending`](Self::has_pending)).
    ///
    /// Each queued registration is looked at in order: its descriptor's current
    /// readiness, masked by its interest, is reported if not empty. A level-triggered
    /// registration goes back to the tail of the ready list (to be looked at again next
    /// time); an edge-triggered one waits for the next wake-up; a one-shot one is disarmed.
    /// Registrations there was no room for keep their place at the head.
    ///
    /// # Errors
    /// [`Error::BadInstance`]; [`Error::InvalidArgument`] if `out` is empty (Linux:
    /// `maxevents <= 0`).
    pub fn epoll_wait(&mut self, ep: EpollId, out: &mut [Event]) -> Result<usize, Error> {
        let mut inst = self.instance(ep)?;
        if out.is_empty() {
            return Err(Error::InvalidArgument);
        }
        // ep_start_scan: take the whole list; level-triggered items re-queue onto the
        // now empty one.
        let taken = inst.ready;
        let taken_len = inst.ready_len;
        inst.ready = List::EMPTY;
        inst.ready_len = 0;
        let mut cur = taken.head;
        let mut looked_at = 0;
        let mut reported = 0;
        while cur != NIL && reported < out.len() {
            looked_at += 1;
            let next = self.registrations[cur as usize].ready.next;
            let reg = &mut self.registrations[cur as usize];
            reg.queued = false;
            reg.ready = Link::DETACHED;
            let revents = self.fds[reg.fd as usize].readiness & reg.interest.readiness();
            if !revents.is_empty() {
                out[reported] = Event::new(revents, reg.data);
                reported += 1;
                if reg.interest.contains(Events::ONESHOT) {
                    reg.armed = false;
                } else if !reg.interest.contains(Events::ET) {
                    reg.queued = true;
                    self.push_back(&mut inst.ready, cur, Chain::Ready);
                    inst.ready_len += 1;
                }
            }
            cur = next;
        }
        // ep_done_scan: what was not looked at goes back in front, in order.
        if cur != NIL {
            self.registrations[cur as usize].ready.prev = NIL;
            if inst.ready.head == NIL {
                inst.ready.tail = taken.tail;
            } else {
                self.registrations[taken.tail as usize].ready.next = inst.ready.head;
                self.registrations[inst.ready.head as usize].ready.prev = taken.tail;
            }
            inst.ready.head = cur;
            inst.ready_len += taken_len - looked_at;
        }
        self.instances[ep.0 as usize] = Some(inst);
        Ok(reported)
    }

    /// True if the instance has registrations queued for `epoll_wait` to look at. A
    /// queued registration may turn out not ready any more (its level fell), so `true`
    /// means "worth calling `epoll_wait`", not "an event will be returned"; `false`
    /// means `epoll_wait` would return 0, so a blocking caller may sleep until the next
    /// [`notify`](Self::notify) or [`epoll_ctl`](Self::epoll_ctl) queues something.
    ///
    /// # Errors
    /// [`Error::BadInstance`].
    pub fn has_pending(&self, ep: EpollId) -> Result<bool, Error> {
        Ok(self.instance(ep)?.ready_len > 0)
    }

    // ---- descriptor-owner side ----------------------------------------------------------

    /// Makes `fd` watchable, with its current readiness.
    ///
    /// # Errors
    /// [`Error::BadDescriptor`] if `fd` is out of range, [`Error::AlreadyExists`] if it
    /// is already open.
    pub fn open_fd(&mut self, fd: Fd, readiness: Events) -> Result<(), Error> {
        let state = self
            .fds
            .get_mut(fd.0 as usize)
            .ok_or(Error::BadDescriptor)?;
        if state.open {
            return Err(Error::AlreadyExists);
        }
        *state = FdState {
            open: true,
            readiness: readiness.readiness(),
            watchers: List::EMPTY,
        };
        Ok(())
    }

    /// Closes `fd`: every registration watching it, in every instance, is dropped with
    /// any pending report (as Linux's `eventpoll_release` does when a file's last
    /// reference goes).
    ///
    /// # Errors
    /// [`Error::BadDescriptor`] if `fd` is not open.
    pub fn close_fd(&mut self, fd: Fd) -> Result<(), Error> {
        let state = self.fd_state(fd)?;
        let mut cur = state.watchers.head;
        while cur != NIL {
            let next = self.registrations[cur as usize].by_fd.next;
            let ep = self.registrations[cur as usize].epoll as usize;
            if let Some(mut inst) = self.instances[ep] {
                self.unlink(&mut inst.members, cur, Chain::Instance);
                self.dequeue_from(&mut inst, cur);
                self.instances[ep] = Some(inst);
            }
            self.release(cur);
            cur = next;
        }
        self.fds[fd.0 as usize] = FdState::CLOSED;
        Ok(())
    }

    /// The owner's report on `fd`: `readiness` is its current level (every bit that is
    /// true now); `wake` names what just happened even if the level did not change.
    ///
    /// The wake-up delivered to watchers is `wake` plus every bit that `readiness` gained
    /// since the last call (rising edges are derived here). Each armed registration whose
    /// interest meets it is queued, once, on its instance's ready list; nothing is queued
    /// when the wake-up is empty (a level that only fell wakes nobody, as in Linux).
    ///
    /// What to pass in `wake`, following what Linux's TCP does:
    /// - new data arrived: [`Events::IN`] (`sk_data_ready`), so that edge-triggered
    ///   watchers hear of every arrival, not only the first;
    /// - send space freed: [`Events::OUT`] (`sk_write_space`);
    /// - a state change (FIN, RST, connection established, own shutdown):
    ///   [`Events::READINESS`], which meets every interest, like Linux's key-less
    ///   `sk_state_change` wake-up;
    /// - nothing new, only a level update: [`Events::EMPTY`].
    ///
    /// Returns the number of registrations newly queued; non-zero means some instance's
    /// [`has_pending`](Self::has_pending) became or stayed true, so a waiter may need
    /// waking. Cost: O(registrations watching `fd`), no allocation.
    ///
    /// # Errors
    /// [`Error::BadDescriptor`] if `fd` is not open.
    pub fn notify(&mut self, fd: Fd, readiness: Events, wake: Events) -> Result<usize, Error> {
        let state = self.fd_state(fd)?;
        let readiness = readiness.readiness();
        let key = (readiness - state.readiness) | wake.readiness();
        self.fds[fd.0 as usize].readiness = readiness;
        if key.is_empty() {
            return Ok(0);
        }
        let mut queued = 0;
        let mut cur = state.watchers.head;
        while cur != NIL {
            let reg = self.registrations[cur as usize];
            if reg.armed && !reg.queued && key.intersects(reg.interest) {
                self.enqueue(cur);
                queued += 1;
            }
            cur = reg.by_fd.next;
        }
        Ok(queued)
    }

    /// A level-only report: `notify(fd, readiness, Events::EMPTY)`. Watchers hear of the
    /// bits `readiness` gained, nothing else.
    ///
    /// # Errors
    /// [`Error::BadDescriptor`] if `fd` is not open.
    pub fn set_readiness(&mut self, fd: Fd, readiness: Events) -> Result<usize, Error> {
        self.notify(fd, readiness, Events::EMPTY)
    }

    /// The readiness last reported for `fd`.
    ///
    /// # Errors
    /// [`Error::BadDescriptor`] if `fd` is not open.
    pub fn readiness(&self, fd: Fd) -> Result<Events, Error> {
        Ok(self.fd_state(fd)?.readiness)
    }

    // ---- internals ----------------------------------------------------------------------

    fn instance(&self, ep: EpollId) -> Result<Instance, Error> {
        self.instances
            .get(ep.0 as usize)
            .copied()
            .flatten()
            .ok_or(Error::BadInstance)
    }

    fn fd_state(&self, fd: Fd) -> Result<FdState, Error> {
        match self.fds.get(fd.0 as usize) {
            Some(state) if state.open => Ok(*state),
            _ => Err(Error::BadDescriptor),
        }
    }

    /// The registration of instance `ep` among a descriptor's watchers.
    fn find(&self, watchers: List, ep: u32) -> Option<u32> {
        let mut cur = watchers.head;
        while cur != NIL {
            let reg = &self.registrations[cur as usize];
            if reg.epoll == ep {
                return Some(cur);
            }
            cur = reg.by_fd.next;
        }
        None
    }

    fn allocate(&mut self) -> Result<u32, Error> {
        if self.free == NIL {
            return Err(Error::NoSpace);
        }
        let idx = self.free;
        self.free = self.registrations[idx as usize].ready.next;
        self.live_registrations += 1;
        Ok(idx)
    }

    /// Returns a slot to the free list; the caller has unlinked it from every list.
    fn release(&mut self, idx: u32) {
        let reg = &mut self.registrations[idx as usize];
        *reg = Registration::VACANT;
        reg.ready.next = self.free;
        self.free = idx;
        self.live_registrations -= 1;
    }

    /// Unlinks a registration from every list and frees it (`ep_remove`).
    fn remove(&mut self, idx: u32) {
        let reg = self.registrations[idx as usize];
        let ep = reg.epoll as usize;
        if let Some(mut inst) = self.instances[ep] {
            self.unlink(&mut inst.members, idx, Chain::Instance);
            self.dequeue_from(&mut inst, idx);
            self.instances[ep] = Some(inst);
        }
        let fd = reg.fd as usize;
        let mut watchers = self.fds[fd].watchers;
        self.unlink(&mut watchers, idx, Chain::Fd);
        self.fds[fd].watchers = watchers;
        self.release(idx);
    }

    /// Links a registration at the tail of its instance's ready list unless it is
    /// already there.
    fn enqueue(&mut self, idx: u32) {
        if self.registrations[idx as usize].queued {
            return;
        }
        let ep = self.registrations[idx as usize].epoll as usize;
        if let Some(mut inst) = self.instances[ep] {
            self.push_back(&mut inst.ready, idx, Chain::Ready);
            inst.ready_len += 1;
            self.registrations[idx as usize].queued = true;
            self.instances[ep] = Some(inst);
        }
    }

    fn dequeue_from(&mut self, inst: &mut Instance, idx: u32) {
        if self.registrations[idx as usize].queued {
            self.unlink(&mut inst.ready, idx, Chain::Ready);
            inst.ready_len -= 1;
            self.registrations[idx as usize].queued = false;
        }
    }

    fn push_back(&mut self, list: &mut List, idx: u32, chain: Chain) {
        *self.registrations[idx as usize].link(chain) = Link {
            prev: list.tail,
            next: NIL,
        };
        if list.tail == NIL {
            list.head = idx;
        } else {
            self.registrations[list.tail as usize].link(chain).next = idx;
        }
        list.tail = idx;
    }

    fn unlink(&mut self, list: &mut List, idx: u32, chain: Chain) {
        let Link { prev, next } = *self.registrations[idx as usize].link(chain);
        if prev == NIL {
            list.head = next;
        } else {
            self.registrations[prev as usize].link(chain).next = next;
        }
        if next == NIL {
            list.tail = prev;
        } else {
            self.registrations[next as usize].link(chain).prev = prev;
        }
        *self.registrations[idx as usize].link(chain) = Link::DETACHED;
    }
}
