//! Admission of syncs: a fixed number of slots, handed to the priority lane first.
//!
//! Nothing waits in memory for a slot: a reconcile that finds none free leaves a *ticket*
//! (the object's name) in its lane and ends, asking to be looked at again much later. When
//! a slot frees, it is reserved for the next ticket — priority lane first — and that
//! object is woken through the controller's trigger stream; its reconcile finds the slot
//! reserved. (kube-runtime's runner polls every pending reconcile on each wake-up, so
//! ten thousand reconciles waiting in it cost more than the syncs themselves.) A
//! reservation not claimed within [`CLAIM`] goes to the next ticket.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Which queue a sync waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// New, changed and on-demand syncs: served first.
    Priority,
    /// Periodic refreshes and target repairs.
    Periodic,
}

/// How long a slot reserved for a woken ticket is kept for it.
pub const CLAIM: Duration = Duration::from_secs(10);

/// An object waiting for a slot: its uid, namespace and name.
pub type Ticket = (String, String, String);

/// Slots for syncs, with two lanes of tickets.
pub struct Admission {
    state: Mutex<State>,
}

struct State {
    free: usize,
    priority: VecDeque<Ticket>,
    periodic: VecDeque<Ticket>,
    /// uids with a ticket in a lane.
    queued: HashSet<String>,
    /// Slots reserved for woken tickets, by uid, and since when.
    reserved: HashMap<String, Instant>,
}

/// A slot; given back (to the next ticket) when dropped.
pub struct Slot<'a> {
    admission: &'a Admission,
    wake: &'a (dyn Fn(&Ticket) + Sync),
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let woken = self.admission.release();
        if let Some(ticket) = woken {
            (self.wake)(&ticket);
        }
    }
}

impl Admission {
    /// `slots` syncs at once (at least one).
    pub fn new(slots: usize) -> Self {
        Self {
            state: Mutex::new(State {
                free: slots.max(1),
                priority: VecDeque::new(),
                periodic: VecDeque::new(),
                queued: HashSet::new(),
                reserved: HashMap::new(),
            }),
        }
    }

    /// A slot for `ticket` in `lane` now — the one reserved for it, or a free one nobody
    /// ahead of it is waiting for — or `None`, and the ticket waits in its lane until
    /// `wake` is called with it. `wake` also runs for tickets whose reservation lapsed.
    pub fn try_admit<'a>(
        &'a self,
        lane: Lane,
        ticket: Ticket,
        wake: &'a (dyn Fn(&Ticket) + Sync),
    ) -> Option<Slot<'a>> {
        let (admitted, woken) = {
            let mut state = self.state.lock().expect("lock");
            let woken = state.expire();
            let ahead = match lane {
                Lane::Priority => !state.priority.is_empty(),
                Lane::Periodic => !state.priority.is_empty() || !state.periodic.is_empty(),
            };
            let admitted = if state.reserved.remove(&ticket.0).is_some() {
                true
            } else if state.free > 0 && !ahead {
                state.free -= 1;
                true
            } else {
                if state.queued.insert(ticket.0.clone()) {
                    match lane {
                        Lane::Priority => state.priority.push_back(ticket),
                        Lane::Periodic => state.periodic.push_back(ticket),
                    }
                } else if lane == Lane::Priority {
                    // Already waiting in the periodic lane: move it ahead.
                    if let Some(at) = state.periodic.iter().position(|t| t.0 == ticket.0) {
                        let moved = state.periodic.remove(at).expect("present");
                        state.priority.push_back(moved);
                    }
                }
                false
            };
            (admitted, woken)
        };
        for ticket in &woken {
            wake(ticket);
        }
        // (Built only when admitted: a Slot gives a slot back when dropped.)
        admitted.then(|| Slot {
            admission: self,
            wake,
        })
    }

    /// Tickets waiting in each lane: (priority, periodic).
    pub fn waiting(&self) -> (usize, usize) {
        let state = self.state.lock().expect("lock");
        (state.priority.len(), state.periodic.len())
    }

    /// Forgets a deleted object's ticket or reservation.
    pub fn forget(&self, uid: &str) -> Option<Ticket> {
        let mut state = self.state.lock().expect("lock");
        if state.queued.remove(uid) {
            state.priority.retain(|t| t.0 != uid);
            state.periodic.retain(|t| t.0 != uid);
        }
        if state.reserved.remove(uid).is_some() {
            return state.hand_over();
        }
        None
    }

    /// A slot comes back: reserved for the next ticket (returned, to be woken), or free.
    fn release(&self) -> Option<Ticket> {
        self.state.lock().expect("lock").hand_over()
    }
}

impl State {
    /// Gives a slot to the next ticket (priority first), or frees it.
    fn hand_over(&mut self) -> Option<Ticket> {
        let next = self
            .priority
            .pop_front()
            .or_else(|| self.periodic.pop_front());
        match next {
            Some(ticket) => {
                self.queued.remove(&ticket.0);
                self.reserved.insert(ticket.0.clone(), Instant::now());
                Some(ticket)
            }
            None => {
                self.free += 1;
                None
            }
        }
    }

    /// Reservations not claimed in time go to the next tickets; returns those to wake.
    fn expire(&mut self) -> Vec<Ticket> {
        let lapsed: Vec<String> = self
            .reserved
            .iter()
            .filter(|(_, at)| at.elapsed() > CLAIM)
            .map(|(uid, _)| uid.clone())
            .collect();
        let mut woken = Vec::new();
        for uid in lapsed {
            self.reserved.remove(&uid);
            woken.extend(self.hand_over());
        }
        woken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(uid: &str) -> Ticket {
        (uid.into(), "ns".into(), uid.into())
    }

    #[test]
    fn the_priority_lane_goes_first() {
        let admission = Admission::new(1);
        let woken = Mutex::new(Vec::new());
        let wake = |t: &Ticket| woken.lock().unwrap().push(t.0.clone());
        let held = admission.try_admit(Lane::Periodic, ticket("a"), &wake);
        assert!(held.is_some());
        for (uid, lane) in [
            ("p1", Lane::Periodic),
            ("p2", Lane::Periodic),
            ("n", Lane::Priority),
        ] {
            assert!(admission.try_admit(lane, ticket(uid), &wake).is_none());
        }
        assert_eq!(admission.waiting(), (1, 2));
        // Each slot given back goes to the next ticket, priority first; only the woken
        // object gets in, the others wait on.
        drop(held);
        assert_eq!(*woken.lock().unwrap(), ["n"]);
        assert!(
            admission
                .try_admit(Lane::Periodic, ticket("p2"), &wake)
                .is_none()
        );
        let slot = admission.try_admit(Lane::Priority, ticket("n"), &wake);
        assert!(slot.is_some());
        drop(slot);
        assert_eq!(*woken.lock().unwrap(), ["n", "p1"]);
        // A new object does not jump the queue of tickets, but a periodic ticket that
        // turns priority (the object changed) moves ahead.
        assert!(
            admission
                .try_admit(Lane::Priority, ticket("p2"), &wake)
                .is_none()
        );
        assert_eq!(admission.waiting(), (1, 0));
    }

    #[test]
    fn a_forgotten_or_unclaimed_reservation_goes_on() {
        let admission = Admission::new(1);
        let woken = Mutex::new(Vec::new());
        let wake = |t: &Ticket| woken.lock().unwrap().push(t.0.clone());
        let held = admission.try_admit(Lane::Periodic, ticket("a"), &wake);
        for uid in ["b", "c"] {
            assert!(
                admission
                    .try_admit(Lane::Periodic, ticket(uid), &wake)
                    .is_none()
            );
        }
        drop(held); // reserved for b
        assert_eq!(admission.forget("b").map(|t| t.0), Some("c".into()));
        // c never comes: after CLAIM its slot is free again.
        admission
            .state
            .lock()
            .unwrap()
            .reserved
            .insert("c".into(), Instant::now() - CLAIM * 2);
        let next = admission.try_admit(Lane::Periodic, ticket("d"), &wake);
        assert!(next.is_some(), "the lapsed reservation was freed");
    }
}
