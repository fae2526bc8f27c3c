//! Admission of syncs: a fixed number of slots, handed to the priority lane first.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

/// Which queue a sync waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// New, changed and on-demand syncs: served first.
    Priority,
    /// Periodic refreshes and target repairs.
    Periodic,
}

/// A counting semaphore whose waiters in [`Lane::Priority`] always get the next free
/// slot before any waiter in [`Lane::Periodic`]; FIFO within a lane.
pub struct Admission {
    state: Mutex<State>,
}

struct State {
    free: usize,
    priority: VecDeque<oneshot::Sender<()>>,
    periodic: VecDeque<oneshot::Sender<()>>,
}

/// A slot; given back (to the next waiter) when dropped.
pub struct Slot<'a>(&'a Admission);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A waiter's end: if it is dropped after a slot was handed to it, the slot goes on.
struct Waiter<'a> {
    admission: &'a Admission,
    receiver: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if let Some(mut receiver) = self.receiver.take()
            && receiver.try_recv().is_ok()
        {
            self.admission.release();
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
            }),
        }
    }

    /// Waits for a slot in `lane`.
    pub async fn admit(&self, lane: Lane) -> Slot<'_> {
        let receiver = {
            let mut state = self.state.lock().expect("lock");
            if state.free > 0 {
                state.free -= 1;
                return Slot(self);
            }
            let (sender, receiver) = oneshot::channel();
            match lane {
                Lane::Priority => state.priority.push_back(sender),
                Lane::Periodic => state.periodic.push_back(sender),
            }
            receiver
        };
        let mut waiter = Waiter {
            admission: self,
            receiver: Some(receiver),
        };
        if let Some(receiver) = waiter.receiver.as_mut() {
            // A sender is only dropped after a successful send while `self` lives.
            let _ = receiver.await;
        }
        waiter.receiver = None; // the slot is ours now
        Slot(self)
    }

    /// Waiters in each lane: (priority, periodic).
    pub fn waiting(&self) -> (usize, usize) {
        let state = self.state.lock().expect("lock");
        (state.priority.len(), state.periodic.len())
    }

    fn release(&self) {
        let mut state = self.state.lock().expect("lock");
        while let Some(next) = state
            .priority
            .pop_front()
            .or_else(|| state.periodic.pop_front())
        {
            if next.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test]
    async fn the_priority_lane_goes_first() {
        let admission = Arc::new(Admission::new(1));
        let held = admission.admit(Lane::Periodic).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (i, lane) in [Lane::Periodic, Lane::Periodic, Lane::Priority]
            .into_iter()
            .enumerate()
        {
            let (shared, order) = (admission.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = shared.admit(lane).await;
                order.lock().unwrap().push(i);
                tokio::task::yield_now().await;
            }));
            // Queue them in this order.
            while admission.waiting().0 + admission.waiting().1 < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [2, 0, 1]);
    }

    #[tokio::test]
    async fn a_cancelled_waiter_does_not_lose_the_slot() {
        let admission = Admission::new(1);
        let held = admission.admit(Lane::Periodic).await;
        {
            let waiting = admission.admit(Lane::Priority);
            futures::pin_mut!(waiting);
            assert!(futures::poll!(waiting.as_mut()).is_pending());
            drop(held); // the slot is handed to the waiter, which is then dropped
        }
        let again = tokio::time::timeout(
            std::time::Duration::from_secs(1),
            admission.admit(Lane::Periodic),
        )
        .await;
        assert!(again.is_ok(), "the slot was lost");
    }
}
