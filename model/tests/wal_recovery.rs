//! `--storage wal` restarts a crashed server from its durable state plus the first `k` of its
//! pending records, for any `k` (see `Persistence::Wal`). That is a shortcut: a real server
//! restarts from whatever its disk holds, which may end in a torn record, and from what the
//! real recovery code makes of those bytes. This test shows the shortcut gives the same
//! result for every prefix: for server states the model reaches, it writes the durable state
//! and the pending records through the real `FileWal`, cuts the file at every byte of the
//! pending part, and checks that `FileWal::open` recovers exactly the model's state for the
//! records wholly before the cut, and never anything else.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use raft_impl::storage::{FileWal, LogStore, WalOptions};
use raft_impl::{HardState, Record};
use raft_model::state::Cmd;
use raft_model::{Bounds, Persistence, RaftModel, State};
use stateright::Model;

/// Distinct (durable state, pending records) pairs to write through the WAL: enough to cover
/// every record shape the bounds produce (term/vote, log from 1, a truncating log from 2) and
/// several pending records in a row, few enough that the test takes seconds.
const PAIRS: usize = 150;
/// States the breadth-first walk visits at most: the first levels of the default bounds hold
/// every record shape.
const STATES: usize = 200_000;

/// The servers' (durable, pending records) pairs with at least one pending record, in BFS
/// order of the states that hold them, most pending records first among the collected.
fn reached_pairs(model: &RaftModel) -> Vec<(HardState<Cmd>, Vec<Record<Cmd>>)> {
    let mut seen_states = HashSet::new();
    let mut pairs = HashSet::new();
    let mut queue: VecDeque<State> = model.init_states().into();
    let mut actions = Vec::new();
    while let Some(state) = queue.pop_front() {
        if pairs.len() >= 20 * PAIRS || seen_states.len() >= STATES {
            break;
        }
        for server in &state.servers {
            let records: Vec<Record<Cmd>> = server.pending_writes().flatten().cloned().collect();
            if !records.is_empty() {
                pairs.insert((HardState::clone(&server.durable), records));
            }
        }
        actions.clear();
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            if let Some(next) = model.next_state(&state, action) {
                if seen_states.insert(next.clone()) {
                    queue.push_back(next);
                }
            }
        }
    }
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort_by_key(|(durable, records)| (usize::MAX - records.len(), durable.log.len()));
    pairs.truncate(PAIRS);
    pairs
}

/// The records that rebuild `durable` from an empty state.
fn rebuilding(durable: &HardState<Cmd>) -> Vec<Record<Cmd>> {
    let mut records = vec![Record::TermVote {
        term: durable.current_term,
        voted_for: durable.voted_for,
    }];
    if !durable.log.is_empty() {
        records.push(Record::Log {
            from: 1,
            entries: durable.log.clone(),
        });
    }
    records
}

fn only_segment(dir: &Path) -> PathBuf {
    let mut segments: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("the log directory lists")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    assert_eq!(segments.len(), 1, "one segment: {segments:?}");
    segments.remove(0)
}

/// A scratch directory in memory when the machine has one: this test opens thousands of
/// logs, and each recovery that cuts a torn tail syncs.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("a scratch directory")
    } else {
        tempfile::tempdir().expect("a scratch directory")
    }
}

#[test]
fn every_cut_of_the_pending_records_recovers_the_models_prefix() {
    let bounds = Bounds {
        persistence: Persistence::Wal,
        ..Bounds::default()
    };
    let pairs = reached_pairs(&RaftModel::new(bounds));
    assert!(pairs.len() >= 50, "only {} pairs reached", pairs.len());
    let most = pairs.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    assert!(most >= 3, "no state with 3 pending records: {most}");
    let truncating = pairs
        .iter()
        .flat_map(|(_, r)| r)
        .any(|r| matches!(r, Record::Log { from, .. } if *from > 1));
    assert!(truncating, "no log record past index 1 among the pairs");

    let dir = scratch();
    let mut cuts = 0;
    for (n, (durable, pending)) in pairs.iter().enumerate() {
        let log_dir = dir.path().join(n.to_string());
        let mut wal = FileWal::<Cmd>::create(&log_dir, WalOptions::default()).expect("create");
        wal.append(&rebuilding(durable)).expect("append");
        wal.sync().expect("sync");
        let segment = only_segment(&log_dir);
        let synced = std::fs::metadata(&segment).expect("metadata").len();
        // Each pending record's end offset, written one sync at a time.
        let mut ends = Vec::new();
        for record in pending {
            wal.append(std::slice::from_ref(record)).expect("append");
            wal.sync().expect("sync");
            ends.push(std::fs::metadata(&segment).expect("metadata").len());
        }
        drop(wal);
        let bytes = std::fs::read(&segment).expect("read");
        for cut in synced..=bytes.len() as u64 {
            std::fs::write(&segment, &bytes[..cut as usize]).expect("write");
            let (_, recovered) =
                FileWal::<Cmd>::open(&log_dir, WalOptions::default()).expect("recovers");
            let kept = ends.iter().filter(|end| **end <= cut).count();
            let mut expected = durable.clone();
            for record in &pending[..kept] {
                expected.apply(record.clone()).expect("no gap");
            }
            assert_eq!(
                recovered,
                expected,
                "cut at byte {cut} of {}: the model keeps {kept} of {pending:?}",
                bytes.len()
            );
            cuts += 1;
        }
    }
    assert!(cuts > 1000, "only {cuts} cuts");
}
