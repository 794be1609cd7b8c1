//! Writes not yet durable and the outputs held behind them: the rule of
//! [`Effect`](crate::Effect)'s contract ("no send and no client reply leaves before every record
//! emitted before it is durable") as data, with no I/O and no clock, so that raftd's pipeline
//! (`runtime::durability`), the memory store and the model keep it the same way.
//!
//! The queue holds, in emission order, writes (one item per flush: a record, or a step's records
//! made durable together) and outputs. An output is held only behind a write: one emitted when
//! nothing is pending is handed back by [`HeldWrites::hold`] to leave at once, so the oldest item
//! is always a write. [`HeldWrites::flush`] makes the oldest writes durable and releases the
//! outputs that no longer wait behind one; [`HeldWrites::crash`] keeps a prefix of the writes
//! (what a disk may have written before power went) and loses every held output, since the
//! process that would have sent them is gone.

use std::collections::VecDeque;

/// One item of a [`HeldWrites`] queue.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Held<W, T> {
    /// A write that becomes durable at one flush.
    Write(W),
    /// An output waiting for every write before it.
    Output(T),
}

/// Writes not yet durable and the outputs held behind them, oldest first (see the module
/// documentation). Cloned and hashed as part of a model state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HeldWrites<W, T> {
    /// Never starts with an output.
    items: VecDeque<Held<W, T>>,
    /// How many of `items` are writes.
    writes: usize,
}

impl<W, T> Default for HeldWrites<W, T> {
    fn default() -> Self {
        HeldWrites {
            items: VecDeque::new(),
            writes: 0,
        }
    }
}

/// What a [`HeldWrites::flush`] took out of the queue.
#[derive(Debug, PartialEq, Eq)]
pub struct Flushed<W, T> {
    /// The writes now durable, oldest first.
    pub writes: Vec<W>,
    /// The outputs no longer behind a write, in the order they were held.
    pub released: Vec<T>,
}

impl<W, T> HeldWrites<W, T> {
    /// An empty queue.
    pub fn new() -> HeldWrites<W, T> {
        HeldWrites::default()
    }

    /// Queues a write: every output held from now on waits for it.
    pub fn write(&mut self, write: W) {
        self.items.push_back(Held::Write(write));
        self.writes += 1;
    }

    /// The newest write, if no output is held behind it: writes emitted together (one step's,
    /// with deferred persistence) join it and become durable at the same flush.
    pub fn last_write_mut(&mut self) -> Option<&mut W> {
        match self.items.back_mut() {
            Some(Held::Write(write)) => Some(write),
            _ => None,
        }
    }

    /// Holds `output` behind every write queued so far; hands it back when there is none, to
    /// leave now.
    #[must_use = "an output handed back is not held: it must leave now"]
    pub fn hold(&mut self, output: T) -> Option<T> {
        if self.writes == 0 {
            return Some(output);
        }
        self.items.push_back(Held::Output(output));
        None
    }

    /// Makes the `n` oldest writes durable: takes them out of the queue with the outputs that
    /// no longer wait behind a write.
    ///
    /// # Panics
    /// If fewer than `n` writes are queued: no store makes durable what it was not given.
    pub fn flush(&mut self, n: usize) -> Flushed<W, T> {
        assert!(
            n <= self.writes,
            "cannot flush {n} of {} queued writes",
            self.writes
        );
        let mut flushed = Flushed {
            writes: Vec::with_capacity(n),
            released: Vec::new(),
        };
        while let Some(item) = self.items.front() {
            if matches!(item, Held::Write(_)) && flushed.writes.len() == n {
                break;
            }
            match self.items.pop_front() {
                Some(Held::Write(write)) => flushed.writes.push(write),
                Some(Held::Output(output)) => flushed.released.push(output),
                None => unreachable!("the front item was just seen"),
            }
        }
        self.writes -= n;
        flushed
    }

    /// A crash that keeps the `kept` oldest writes (a disk may have written any prefix of them
    /// before power went) and loses the other writes and every held output. Returns the kept
    /// writes, oldest first, and leaves the queue empty.
    ///
    /// # Panics
    /// If fewer than `kept` writes are queued.
    pub fn crash(&mut self, kept: usize) -> Vec<W> {
        let Flushed { writes, .. } = self.flush(kept);
        self.items.clear();
        self.writes = 0;
        writes
    }

    /// Whether nothing is queued (then nothing is held either).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many writes and outputs are queued.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// How many writes are queued: the flushes they need.
    pub fn write_count(&self) -> usize {
        self.writes
    }

    /// How many outputs are held.
    pub fn output_count(&self) -> usize {
        self.items.len() - self.writes
    }

    /// The queued writes, oldest first.
    pub fn writes(&self) -> impl Iterator<Item = &W> {
        self.items.iter().filter_map(|item| match item {
            Held::Write(write) => Some(write),
            Held::Output(_) => None,
        })
    }

    /// Every item, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Held<W, T>> {
        self.items.iter()
    }

    /// The same queue with every write and output mapped (a model state renamed).
    pub fn map<V, U>(&self, write: impl Fn(&W) -> V, output: impl Fn(&T) -> U) -> HeldWrites<V, U> {
        HeldWrites {
            items: self
                .items
                .iter()
                .map(|item| match item {
                    Held::Write(w) => Held::Write(write(w)),
                    Held::Output(o) => Held::Output(output(o)),
                })
                .collect(),
            writes: self.writes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_with_no_write_before_it_leaves_at_once() {
        let mut queue = HeldWrites::<u8, char>::new();
        assert_eq!(queue.hold('a'), Some('a'));
        assert!(queue.is_empty());
    }

    #[test]
    fn a_flush_releases_the_outputs_up_to_the_next_write() {
        let mut queue = HeldWrites::new();
        queue.write(1);
        assert_eq!(queue.hold('a'), None);
        assert_eq!(queue.hold('b'), None);
        queue.write(2);
        assert_eq!(queue.hold('c'), None);
        assert_eq!((queue.write_count(), queue.output_count()), (2, 3));
        assert_eq!(
            queue.flush(0),
            Flushed {
                writes: vec![],
                released: vec![]
            }
        );
        assert_eq!(
            queue.flush(1),
            Flushed {
                writes: vec![1],
                released: vec!['a', 'b']
            }
        );
        assert_eq!(queue.hold('d'), None, "write 2 is still pending");
        assert_eq!(
            queue.flush(1),
            Flushed {
                writes: vec![2],
                released: vec!['c', 'd']
            }
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn writes_emitted_together_join_the_last_write_until_an_output_follows_it() {
        let mut queue = HeldWrites::<Vec<u8>, char>::new();
        assert_eq!(queue.last_write_mut(), None);
        queue.write(vec![1]);
        queue.last_write_mut().unwrap().push(2);
        assert_eq!(queue.hold('a'), None);
        assert_eq!(queue.last_write_mut(), None);
        assert_eq!(queue.writes().collect::<Vec<_>>(), [&vec![1, 2]]);
    }

    #[test]
    fn a_crash_keeps_a_prefix_of_the_writes_and_no_output() {
        let mut queue = HeldWrites::new();
        queue.write(1);
        assert_eq!(queue.hold('a'), None);
        queue.write(2);
        queue.write(3);
        assert_eq!(queue.hold('b'), None);
        let mut none = queue.clone();
        assert_eq!(none.crash(0), Vec::<u8>::new());
        assert!(none.is_empty());
        assert_eq!(queue.crash(2), vec![1, 2]);
        assert!(queue.is_empty());
        assert_eq!(queue.hold('c'), Some('c'));
    }

    #[test]
    #[should_panic(expected = "cannot flush 2 of 1 queued writes")]
    fn a_flush_past_the_queued_writes_panics() {
        let mut queue = HeldWrites::<u8, char>::new();
        queue.write(1);
        let _ = queue.flush(2);
    }
}
