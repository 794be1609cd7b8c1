//! A single-threaded async runtime on the simulator's virtual clock.
//!
//! The Go tester is written as goroutines that sleep and poll; here each of them is a task, an
//! `async` block, so the 6.5840 tests read like their Go originals (`t.sleep(..).await`,
//! concurrent `one()` calls as spawned tasks) while staying deterministic: a task only ever
//! waits for the clock or for another task, and both wake-ups go through the world's event
//! queue, so polling order is a function of the seed. No waker is needed (a no-op one is
//! passed): the queue is the only source of wake-ups.

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use raft_impl::Command;

use crate::failure::Failure;
use crate::world::{Advance, TaskId, World};

type Task = Pin<Box<dyn Future<Output = ()>>>;

struct Shared<C> {
    world: RefCell<World<C>>,
    /// `None` while a task is being polled, and for good once it has finished.
    tasks: RefCell<Vec<Option<Task>>>,
    /// The task being polled, which a pending future registers to be woken.
    current: Cell<TaskId>,
}

/// A handle on the simulation: its world and its tasks. Cheap to clone into tasks.
pub struct Sim<C>(Rc<Shared<C>>);

impl<C> Clone for Sim<C> {
    fn clone(&self) -> Self {
        Sim(Rc::clone(&self.0))
    }
}

impl<C: Command + 'static> Sim<C> {
    pub fn new(world: World<C>) -> Sim<C> {
        Sim(Rc::new(Shared {
            world: RefCell::new(world),
            tasks: RefCell::new(Vec::new()),
            current: Cell::new(0),
        }))
    }

    /// The world, borrowed for one synchronous operation. Never hold it across an `.await`.
    pub fn world(&self) -> RefMut<'_, World<C>> {
        self.0.world.borrow_mut()
    }

    pub fn now(&self) -> Duration {
        self.world().now()
    }

    /// Completes once `duration` of virtual time has passed.
    pub fn sleep(&self, duration: Duration) -> Sleep<C> {
        let deadline = self.now() + duration;
        Sleep {
            sim: self.clone(),
            deadline,
            armed: false,
        }
    }

    /// Runs `future` as a task of its own, starting at the current instant.
    pub fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> JoinHandle<C, T> {
        let state = Rc::new(RefCell::new(JoinState {
            value: None,
            waiter: None,
        }));
        let (sim, done) = (self.clone(), Rc::clone(&state));
        let task = async move {
            let value = future.await;
            let waiter = {
                let mut done = done.borrow_mut();
                done.value = Some(value);
                done.waiter.take()
            };
            if let Some(waiter) = waiter {
                let mut world = sim.world();
                let now = world.now();
                world.schedule_wake(now, waiter);
            }
        };
        let id = {
            let mut tasks = self.0.tasks.borrow_mut();
            tasks.push(Some(Box::pin(task)));
            tasks.len() - 1
        };
        let mut world = self.world();
        let now = world.now();
        world.schedule_wake(now, id);
        JoinHandle {
            sim: self.clone(),
            state,
        }
    }

    /// Runs the simulation until `main` returns, a check fails, virtual time passes `limit` or
    /// nothing is left to happen. Tasks still pending at the end are dropped.
    pub fn run<T: 'static>(
        &self,
        limit: Duration,
        main: impl Future<Output = Result<T, Failure>> + 'static,
    ) -> Result<T, Failure> {
        let result = Rc::new(RefCell::new(None));
        let slot = Rc::clone(&result);
        // The handle is not needed: the result comes back through `slot`.
        let _main = self.spawn(async move {
            *slot.borrow_mut() = Some(main.await);
        });
        let outcome = loop {
            if let Some(failure) = self.world().take_failure() {
                break Err(failure);
            }
            if let Some(outcome) = result.borrow_mut().take() {
                break outcome;
            }
            let advance = self.world().advance();
            match advance {
                Advance::Idle => break Err(Failure::Stalled),
                Advance::Wake(task) => self.poll_task(task),
                Advance::Ran => {}
            }
            if self.now() > limit {
                break Err(Failure::TimeLimit(limit));
            }
        };
        // Tasks hold handles on the simulation; dropping them breaks the reference cycle.
        let tasks = std::mem::take(&mut *self.0.tasks.borrow_mut());
        drop(tasks);
        outcome
    }

    fn poll_task(&self, id: TaskId) {
        let Some(mut task) = self.0.tasks.borrow_mut()[id].take() else {
            return;
        };
        self.0.current.set(id);
        let mut cx = Context::from_waker(Waker::noop());
        if task.as_mut().poll(&mut cx).is_pending() {
            self.0.tasks.borrow_mut()[id] = Some(task);
        }
    }
}

/// The future of [`Sim::sleep`].
pub struct Sleep<C> {
    sim: Sim<C>,
    deadline: Duration,
    armed: bool,
}

impl<C: Command + 'static> Future for Sleep<C> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut world = this.sim.world();
        if world.now() >= this.deadline {
            return Poll::Ready(());
        }
        if !this.armed {
            world.schedule_wake(this.deadline, this.sim.0.current.get());
            this.armed = true;
        }
        Poll::Pending
    }
}

struct JoinState<T> {
    value: Option<T>,
    /// The task awaiting this one, woken when it finishes.
    waiter: Option<TaskId>,
}

/// Completes with a spawned task's output.
pub struct JoinHandle<C, T> {
    sim: Sim<C>,
    state: Rc<RefCell<JoinState<T>>>,
}

impl<C: Command + 'static, T> Future for JoinHandle<C, T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.borrow_mut();
        match state.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                state.waiter = Some(self.sim.0.current.get());
                Poll::Pending
            }
        }
    }
}
