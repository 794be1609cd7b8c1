//! A store in memory that keeps what was written apart from what was synced, so that a test
//! can crash it between any two records (as redb's crash tests do with their storage backend).

use std::convert::Infallible;

use crate::codec;
use crate::types::{Command, HardState, Record};

use super::{HeldWrites, LogStore, Position};

/// Records in memory: the state the synced ones lead to, and the written ones after them.
/// Appending and syncing cost O(the records' size); only [`MemoryStore::crash`] and
/// [`MemoryStore::synced_state`]'s clone by a restarting caller cost O(log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryStore<C> {
    synced: HardState<C>,
    /// Written, not yet synced, in order (a store holds no outputs back: the runtime does).
    unsynced: HeldWrites<Record<C>, Infallible>,
    durable: Position,
}

impl<C> Default for MemoryStore<C> {
    fn default() -> Self {
        MemoryStore {
            synced: HardState::default(),
            unsynced: HeldWrites::new(),
            durable: 0,
        }
    }
}

impl<C: Command> MemoryStore<C> {
    /// An empty store: a brand new server.
    pub fn new() -> MemoryStore<C> {
        MemoryStore::default()
    }

    /// The state the synced records lead to: what a crash that keeps nothing else leaves.
    pub fn synced_state(&self) -> &HardState<C> {
        &self.synced
    }

    /// A crash that keeps the synced records and the first `kept` of the unsynced ones (a
    /// disk may have written any prefix of them before power went): the store holds exactly
    /// those afterwards, all durable.
    ///
    /// # Panics
    /// If `kept` exceeds the number of unsynced records.
    pub fn crash(&mut self, kept: usize) {
        let kept = self.unsynced.crash(kept);
        self.make_durable(kept);
    }

    /// The bytes of Raft state this store keeps, as the codec encodes them: the synced term,
    /// vote, snapshot position and log, and every unsynced record; not the snapshot's data,
    /// which is the service's state (6.5840's `RaftStateSize()` leaves the snapshot out too).
    /// It counts what the store holds, not what the core holds, so a store that stops
    /// discarding compacted entries grows past any bound here. O(log): for checks, not steps.
    pub fn state_size(&self) -> usize {
        let synced = &self.synced;
        let kept = (
            synced.current_term,
            synced.voted_for,
            synced.snapshot_index(),
            synced.snapshot_term(),
            &synced.log,
        );
        codec::encoded_len(&kept) + self.unsynced.writes().map(record_size).sum::<usize>()
    }

    fn make_durable(&mut self, records: Vec<Record<C>>) {
        for record in records {
            self.durable += 1;
            if let Err(gap) = self.synced.apply(record) {
                panic!("the core wrote a log record past the end of its log: {gap}");
            }
        }
    }
}

/// The encoded bytes of `record` that are Raft state: all of them but a snapshot's data.
fn record_size<C: Command>(record: &Record<C>) -> usize {
    let size = codec::encoded_len(record);
    match record {
        Record::Snapshot(snapshot) => size.saturating_sub(codec::encoded_len(&snapshot.data)),
        Record::TermVote { .. } | Record::Log { .. } => size,
    }
}

impl<C: Command> LogStore<C> for MemoryStore<C> {
    type Error = Infallible;

    fn append(&mut self, records: &[Record<C>]) -> Result<Position, Infallible> {
        for record in records {
            self.unsynced.write(record.clone());
        }
        Ok(self.durable + self.unsynced.write_count() as Position)
    }

    fn sync(&mut self) -> Result<Position, Infallible> {
        let synced = self.unsynced.flush(self.unsynced.write_count());
        self.make_durable(synced.writes);
        Ok(self.durable)
    }

    fn durable(&self) -> Position {
        self.durable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Entry, Snapshot};

    fn entry(term: u64, command: u8) -> Entry<u8> {
        Entry { term, command }
    }

    #[test]
    fn the_state_size_counts_what_is_kept_but_not_the_snapshot_data() {
        let mut store = MemoryStore::new();
        let log = Record::Log {
            from: 1,
            entries: (0..100).map(|i| entry(1, i)).collect(),
        };
        store.append(&[log]).unwrap();
        let unsynced = store.state_size();
        store.sync().unwrap();
        let full = store.state_size();
        // Written or synced, the same entries count (a varint or two apart in framing).
        assert!(unsynced.abs_diff(full) < 8, "{unsynced} vs {full}");
        assert!(full >= 200, "100 two-byte entries in {full} bytes");
        let snapshot = Record::Snapshot(Snapshot {
            last_index: 90,
            last_term: 1,
            data: vec![0; 10_000],
        });
        store.append(std::slice::from_ref(&snapshot)).unwrap();
        let pending = store.state_size();
        assert!(pending > full && pending < full + 16, "{pending} vs {full}");
        store.sync().unwrap();
        let compacted = store.state_size();
        assert!(compacted < full / 5, "{compacted} of {full} bytes left");
    }

    #[test]
    fn a_crash_keeps_the_synced_records_and_a_prefix_of_the_rest() {
        let mut store = MemoryStore::new();
        let vote = Record::TermVote {
            term: 1,
            voted_for: Some(0),
        };
        let log = Record::Log {
            from: 1,
            entries: vec![entry(1, 7), entry(1, 8)],
        };
        let replace = Record::Log {
            from: 2,
            entries: vec![entry(2, 9)],
        };
        assert_eq!(store.append(&[vote, log]), Ok(2));
        assert_eq!(store.sync(), Ok(2));
        assert_eq!(store.append(std::slice::from_ref(&replace)), Ok(3));
        assert_eq!(store.durable(), 2);

        let mut lost = store.clone();
        lost.crash(0);
        assert_eq!(lost.synced_state().log, vec![entry(1, 7), entry(1, 8)]);
        assert_eq!(lost.durable(), 2);

        store.crash(1);
        assert_eq!(store.synced_state().log, vec![entry(1, 7), entry(2, 9)]);
        assert_eq!(store.synced_state().voted_for, Some(0));
        assert_eq!(store.durable(), 3);
    }
}
