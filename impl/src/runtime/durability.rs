//! Where the core thread and the write-ahead thread meet: the records handed to the writer and
//! the position up to which they are durable.
//!
//! The core thread must not wait for an fsync: while the writer syncs one batch, the core goes
//! on handling messages and queues the next batch (pipelining, as etcd's raft does), so that one
//! sync covers everything that arrived during the previous one (group commit). What the core
//! may not do is let anything out early. [`Effect`](crate::Effect)'s contract: no send and no
//! client reply leaves before every record emitted before it, by the same step or an earlier
//! one, is durable. So the [`Pipeline`] keeps its outputs in a [`HeldWrites`] queue behind every
//! record emitted before them (the rule the model and the memory store keep too), and flushes
//! the queue as far as the durable position the writer published. Waiting for every record
//! emitted so far, rather than the producing step's own, is what holds back the acknowledgement
//! of a step that writes nothing (a duplicated AppendEntries) behind the entries an earlier step
//! wrote and the writer has not synced yet.
//!
//! One mutex guards everything shared (the queued records, the durable position, the writer's
//! failure), with one condition variable on which the writer waits for work: the one place the
//! two threads meet, small enough for loom to explore every interleaving of it
//! (`RUSTFLAGS="--cfg loom"`, see `loom_model` below). The core thread never blocks on it: it
//! blocks on its event channel, and the writer wakes it there after each publication through the
//! `wake` callback given to [`write_ahead`].

use std::mem;
use std::sync::PoisonError;

#[cfg(loom)]
use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::storage::{HeldWrites, LogStore, Position};
use crate::types::{Command, Record};

/// Why the pipeline can no longer make records durable. Outputs still held stay held: nothing
/// written after the last durable position may be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum WriterFailed<E> {
    /// The store failed to write or sync.
    #[error("cannot make the log durable: {0}")]
    Store(#[source] E),
    /// The write-ahead thread ended without a store error (it panicked).
    #[error("the write-ahead thread ended")]
    Gone,
}

/// The state both threads see, behind [`Shared::state`].
struct State<R, E> {
    /// Records the core handed over that the writer has not taken yet, oldest first.
    queued: Vec<R>,
    /// The position the writer last made durable.
    durable: Position,
    /// Set by the writer when it stops making progress; taken by the core.
    failure: Option<WriterFailed<E>>,
    /// The core dropped its end: the writer writes what is queued and stops.
    closed: bool,
}

struct Shared<R, E> {
    state: Mutex<State<R, E>>,
    /// Signalled when records are queued or the core closes its end; the writer waits on it.
    work: Condvar,
}

impl<R, E> Shared<R, E> {
    /// The state, even after the other thread panicked holding the lock: every update under it is
    /// a single assignment or `append`, so a panic cannot leave it half changed.
    fn lock(&self) -> MutexGuard<'_, State<R, E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The core thread's end: records it emitted and the outputs waiting for them.
pub struct Pipeline<R, E, T> {
    shared: Arc<Shared<R, E>>,
    /// The durable position as of the last [`Pipeline::release`]: the queue holds the records
    /// after it.
    flushed: Position,
    /// Records emitted since the last [`Pipeline::submit`], handed over together.
    unsubmitted: Vec<R>,
    /// One write for each record emitted and not yet seen durable (the records themselves went
    /// to the writer), and the outputs behind them.
    held: HeldWrites<(), T>,
    /// Outputs held when no record was pending: the next release lets them out first.
    ready: Vec<T>,
}

/// The write-ahead thread's end.
pub struct Writer<R, E> {
    shared: Arc<Shared<R, E>>,
}

/// A pipeline whose store holds `durable` records already (a recovered log), and the writer's
/// end of it.
pub fn pipeline<R, E, T>(durable: Position) -> (Pipeline<R, E, T>, Writer<R, E>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queued: Vec::new(),
            durable,
            failure: None,
            closed: false,
        }),
        work: Condvar::new(),
    });
    let core = Pipeline {
        shared: shared.clone(),
        flushed: durable,
        unsubmitted: Vec::new(),
        held: HeldWrites::new(),
        ready: Vec::new(),
    };
    (core, Writer { shared })
}

impl<R, E, T> Pipeline<R, E, T> {
    /// Emits a record: every output held from now on waits for it.
    pub fn write(&mut self, record: R) {
        self.unsubmitted.push(record);
        self.held.write(());
    }

    /// Holds `output` until every record emitted so far is durable.
    pub fn hold(&mut self, output: T) {
        self.ready.extend(self.held.hold(output));
    }

    /// Hands the records emitted since the last call to the writer, in one batch.
    pub fn submit(&mut self) {
        if self.unsubmitted.is_empty() {
            return;
        }
        let mut state = self.shared.lock();
        state.queued.append(&mut self.unsubmitted);
        drop(state);
        self.shared.work.notify_one();
    }

    /// The held outputs that the durable position now covers, oldest first; or why no more will
    /// be.
    pub fn release(&mut self) -> Result<impl Iterator<Item = T> + '_, WriterFailed<E>> {
        let durable = {
            let mut state = self.shared.lock();
            if let Some(failure) = state.failure.take() {
                return Err(failure);
            }
            state.durable
        };
        // The writer publishes only positions of records it was handed: never past the queue.
        let newly = durable
            .checked_sub(self.flushed)
            .and_then(|n| usize::try_from(n).ok())
            .expect("the durable position never goes back");
        self.flushed = durable;
        let released = self.held.flush(newly).released;
        Ok(self.ready.drain(..).chain(released))
    }

    /// Whether outputs are still waiting for records to become durable (tests wait on it).
    #[cfg(test)]
    pub fn holds_any(&self) -> bool {
        self.held.output_count() > 0 || !self.ready.is_empty()
    }
}

impl<R, E, T> Drop for Pipeline<R, E, T> {
    /// Lets the writer finish what is queued and stop.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.work.notify_one();
    }
}

impl<R, E> Writer<R, E> {
    /// Waits for queued records and moves all of them into `batch` (empty on entry): one sync
    /// will cover them all. `false` once the core closed its end and nothing is left.
    fn next_batch(&self, batch: &mut Vec<R>) -> bool {
        let mut state = self.shared.lock();
        loop {
            if !state.queued.is_empty() {
                mem::swap(batch, &mut state.queued);
                return true;
            }
            if state.closed {
                return false;
            }
            state = self
                .shared
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Publishes that the first `durable` records are on stable storage.
    fn publish(&self, durable: Position) {
        self.shared.lock().durable = durable;
    }

    fn fail(&self, failure: WriterFailed<E>) {
        self.shared.lock().failure.get_or_insert(failure);
    }
}

impl<R, E> Drop for Writer<R, E> {
    /// A writer that ends while the core still runs has panicked (it returns only on a store
    /// error, already recorded, or once the core is gone): the core must hear of it rather than
    /// wait for a durable position that never comes.
    fn drop(&mut self) {
        self.fail(WriterFailed::Gone);
    }
}

/// The write-ahead thread's body: takes everything queued, appends it to `store`, syncs once,
/// publishes the durable position and calls `wake` so that the core releases what it covers.
/// Returns when the core's end is dropped, or after the store fails (which the core then hears
/// of through [`Pipeline::release`]).
pub fn write_ahead<C: Command, S: LogStore<C>>(
    writer: Writer<Record<C>, S::Error>,
    mut store: S,
    wake: impl Fn(),
) {
    let mut batch = Vec::new();
    while writer.next_batch(&mut batch) {
        let synced = store.append(&batch).and_then(|_| store.sync());
        batch.clear();
        match synced {
            Ok(durable) => writer.publish(durable),
            Err(e) => {
                writer.fail(WriterFailed::Store(e));
                wake();
                return;
            }
        }
        wake();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::convert::Infallible;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    use super::*;
    use crate::limits::MAX_PEER_PAYLOAD;
    use crate::storage::{FileWal, MemoryStore, WalOptions, WalWriteError};
    use crate::types::{Entry, Snapshot};

    type Records = Record<u8>;

    fn entry(index: u64) -> Records {
        Record::Log {
            from: index,
            entries: vec![Entry {
                term: 1,
                command: index as u8,
            }],
        }
    }

    /// A store whose syncs the test lets through one at a time, so that it can act while one
    /// is in flight.
    struct Gated {
        inner: MemoryStore<u8>,
        gate: mpsc::Receiver<()>,
    }

    impl LogStore<u8> for Gated {
        type Error = Infallible;

        fn append(&mut self, records: &[Records]) -> Result<Position, Infallible> {
            self.inner.append(records)
        }

        fn sync(&mut self) -> Result<Position, Infallible> {
            self.gate.recv().expect("the test ended");
            self.inner.sync()
        }

        fn durable(&self) -> Position {
            self.inner.durable()
        }
    }

    #[test]
    fn an_ack_that_writes_nothing_waits_for_the_entries_an_earlier_step_wrote() {
        let (gate, gated) = mpsc::channel();
        let (woken, wakes) = mpsc::channel();
        let (mut core, writer) = pipeline::<Records, Infallible, &str>(0);
        let store = Gated {
            inner: MemoryStore::new(),
            gate: gated,
        };
        let writing = thread::spawn(move || write_ahead(writer, store, || woken.send(()).unwrap()));

        // Step 1 appends an entry and acknowledges it; the sync is in flight.
        core.write(entry(1));
        core.hold("ack 1");
        core.submit();
        // Step 2, a duplicate of step 1's message, writes nothing and acknowledges again.
        core.hold("ack 1 again");
        assert_eq!(core.release().unwrap().count(), 0);
        // Step 3 appends another entry while the first sync is still in flight.
        core.write(entry(2));
        core.hold("ack 2");
        core.submit();

        gate.send(()).unwrap();
        wakes.recv_timeout(Duration::from_secs(10)).unwrap();
        let first: Vec<_> = core.release().unwrap().collect();
        // The second entry may have joined the first sync (group commit) or wait for its own.
        if first.len() == 2 {
            assert_eq!(first, ["ack 1", "ack 1 again"]);
            gate.send(()).unwrap();
            wakes.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(core.release().unwrap().collect::<Vec<_>>(), ["ack 2"]);
        } else {
            assert_eq!(first, ["ack 1", "ack 1 again", "ack 2"]);
        }
        assert!(!core.holds_any());
        drop(core);
        writing.join().unwrap();
    }

    /// A snapshot record goes through the pipeline to the file log like any record (moved, as
    /// every record is), however large: it goes to a file of its own, so no frame limit applies to it
    /// (this one is larger than the largest peer frame). The output held behind it leaves once
    /// its install record is durable.
    #[test]
    fn a_snapshot_larger_than_any_frame_goes_to_the_file_log() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileWal::<u8>::create(dir.path(), WalOptions::default()).unwrap();
        let (woken, wakes) = mpsc::channel();
        let (mut core, writer) = pipeline::<Records, WalWriteError, &str>(0);
        let writing = thread::spawn(move || write_ahead(writer, store, || woken.send(()).unwrap()));
        let data = vec![7; MAX_PEER_PAYLOAD + 1];
        let snapshot = Record::Snapshot(Snapshot {
            last_index: 1,
            last_term: 1,
            data,
        });
        core.write(entry(1));
        core.write(entry(2));
        core.write(snapshot);
        core.hold("ack");
        core.submit();
        let mut released = Vec::new();
        while released.is_empty() {
            wakes.recv_timeout(Duration::from_secs(60)).unwrap();
            released.extend(core.release().unwrap());
        }
        assert_eq!(released, ["ack"]);
        drop(core);
        writing.join().unwrap();
        let (wal, state) = FileWal::<u8>::open(dir.path(), WalOptions::default()).unwrap();
        assert_eq!(wal.durable(), 3);
        let restored = state.snapshot.unwrap();
        assert_eq!(
            (restored.last_index, restored.data.len()),
            (1, MAX_PEER_PAYLOAD + 1)
        );
        assert!(restored.data.iter().all(|&b| b == 7));
        assert_eq!(state.log.len(), 1);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("disk full")]
    struct DiskFull;

    struct Failing;

    impl LogStore<u8> for Failing {
        type Error = DiskFull;

        fn append(&mut self, _: &[Records]) -> Result<Position, DiskFull> {
            Err(DiskFull)
        }

        fn sync(&mut self) -> Result<Position, DiskFull> {
            Err(DiskFull)
        }

        fn durable(&self) -> Position {
            0
        }
    }

    #[test]
    fn a_store_failure_reaches_the_core_and_keeps_its_outputs_held() {
        let (woken, wakes) = mpsc::channel();
        let (mut core, writer) = pipeline::<Records, DiskFull, &str>(0);
        let writing =
            thread::spawn(move || write_ahead(writer, Failing, || woken.send(()).unwrap()));
        core.write(entry(1));
        core.hold("ack");
        core.submit();
        wakes.recv_timeout(Duration::from_secs(10)).unwrap();
        writing.join().unwrap();
        assert!(matches!(core.release(), Err(WriterFailed::Store(DiskFull))));
        assert!(core.holds_any());
    }
}

/// The pipeline under loom: every interleaving of a core thread that writes, holds and releases
/// with the write-ahead thread, checked against the durable position of a store that counts its
/// synced records. Run with
/// `RUSTFLAGS="--cfg loom" cargo test --release -p raft-impl --no-default-features --lib
/// --target-dir target/loom durability`.
#[cfg(all(test, loom))]
mod loom_model {
    use std::convert::Infallible;

    use loom::sync::atomic::{AtomicU64, Ordering};
    use loom::thread;

    use super::*;
    use crate::types::Entry;

    type Records = Record<u8>;

    /// A store whose syncs the core thread can observe: `disk` is the number of records that a
    /// crash would keep, the ground truth every output is checked against.
    struct Disk {
        written: Position,
        disk: Arc<AtomicU64>,
    }

    impl LogStore<u8> for Disk {
        type Error = Infallible;

        fn append(&mut self, records: &[Records]) -> Result<Position, Infallible> {
            self.written += records.len() as Position;
            Ok(self.written)
        }

        fn sync(&mut self) -> Result<Position, Infallible> {
            self.disk.store(self.written, Ordering::SeqCst);
            Ok(self.written)
        }

        fn durable(&self) -> Position {
            self.disk.load(Ordering::SeqCst)
        }
    }

    /// How the writer publishes: the real loop, or a broken one.
    #[derive(Clone, Copy)]
    enum WriterKind {
        /// [`write_ahead`].
        Correct,
        /// Publishes the position after `append`, before `sync`: outputs are released before
        /// their records are durable.
        PublishBeforeSync,
    }

    /// How the core holds an acknowledgement of a step that wrote nothing.
    #[derive(Clone, Copy)]
    enum IdleAck {
        /// In the pipeline, behind every record emitted so far.
        Held,
        /// Sent at once, as if a step's outputs waited for the step's own records only.
        SentAtOnce,
    }

    /// The core thread of the model. Each output is the number of records emitted before it,
    /// counted here rather than by the pipeline; a violation is an output that left while the
    /// disk held fewer. Violations are collected, not asserted on the spot, so that the model's
    /// threads end normally (a panic unwinding through loom's primitives aborts the process).
    struct CoreModel {
        pipeline: Pipeline<Records, Infallible, Position>,
        disk: Arc<AtomicU64>,
        emitted: Position,
        released: usize,
        violations: Vec<String>,
    }

    impl CoreModel {
        /// One step: writes `records`, then acknowledges.
        fn step(&mut self, records: u64, idle_ack: IdleAck) {
            for _ in 0..records {
                self.emitted += 1;
                self.pipeline.write(Record::Log {
                    from: self.emitted,
                    entries: vec![Entry {
                        term: 1,
                        command: self.emitted as u8,
                    }],
                });
            }
            match (records, idle_ack) {
                (0, IdleAck::SentAtOnce) => self.leave(self.emitted),
                _ => self.pipeline.hold(self.emitted),
            }
            self.pipeline.submit();
            self.let_out();
        }

        fn let_out(&mut self) {
            let released: Vec<Position> = self.pipeline.release().unwrap().collect();
            for needs in released {
                self.leave(needs);
            }
        }

        fn leave(&mut self, needs: Position) {
            let on_disk = self.disk.load(Ordering::SeqCst);
            if on_disk < needs {
                self.violations.push(format!(
                    "an output that needs {needs} records left with {on_disk} on disk"
                ));
            }
            self.released += 1;
        }
    }

    /// Step 1 writes a record and acknowledges it; step 2 writes nothing and acknowledges the
    /// same entry again (a duplicated AppendEntries); step 3 writes a second record, while the
    /// first may still be syncing, and acknowledges it. After each step the core lets out what
    /// it may; at the end it waits until everything went out. Panics with the first violation
    /// loom found.
    fn check(writer_kind: WriterKind, idle_ack: IdleAck) {
        loom::model(move || {
            let disk = Arc::new(AtomicU64::new(0));
            let (pipeline, writer) = pipeline::<Records, Infallible, Position>(0);
            let mut store = Disk {
                written: 0,
                disk: disk.clone(),
            };
            let writing = thread::spawn(move || match writer_kind {
                WriterKind::Correct => write_ahead(writer, store, || {}),
                WriterKind::PublishBeforeSync => {
                    let mut batch = Vec::new();
                    while writer.next_batch(&mut batch) {
                        let written = store.append(&batch).unwrap();
                        batch.clear();
                        writer.publish(written);
                        store.sync().unwrap();
                    }
                }
            });

            let mut core = CoreModel {
                pipeline,
                disk,
                emitted: 0,
                released: 0,
                violations: Vec::new(),
            };
            core.step(1, idle_ack);
            core.step(0, idle_ack);
            core.step(1, idle_ack);
            while core.pipeline.holds_any() {
                thread::yield_now();
                core.let_out();
            }
            let CoreModel {
                pipeline,
                released,
                violations,
                ..
            } = core;
            // Closing the pipeline ends the writer.
            drop(pipeline);
            writing.join().unwrap();
            assert_eq!(released, 3, "every output leaves in the end");
            if let Some(first) = violations.first() {
                panic!("{first}");
            }
        });
    }

    #[test]
    fn no_output_leaves_before_the_records_emitted_before_it_are_durable() {
        check(WriterKind::Correct, IdleAck::Held);
    }

    #[test]
    #[should_panic(expected = "left with")]
    fn loom_catches_a_writer_that_publishes_before_it_syncs() {
        check(WriterKind::PublishBeforeSync, IdleAck::Held);
    }

    #[test]
    #[should_panic(expected = "an output that needs 1 records left with 0 on disk")]
    fn loom_catches_an_ack_that_does_not_wait_for_an_earlier_steps_records() {
        check(WriterKind::Correct, IdleAck::SentAtOnce);
    }
}
