//! `--storage wal` restarts a crashed server from its durable state plus the first `k` of its
//! pending records, for any `k` (`Action::Crash { kept }`, see `Persistence::Wal`). That is a
//! shortcut: a real server restarts from whatever its disk holds, which may end in a torn
//! record, and from what the real recovery code makes of those bytes. This test shows the
//! shortcut gives the same result for every prefix: for server states the model reaches, it
//! writes the durable state and the pending records through the real `FileWal`, cuts the file
//! at every byte of the pending part, and checks that `FileWal::open` recovers exactly the
//! durable state the model's own crash action leaves when it keeps the records wholly before
//! the cut, and never anything else. The lossless state counts are pinned too: on a lossy
//! network a crashed server restarts in the same step, and a crash that kept too little could
//! hide among the other states.

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};

use raft_impl::storage::{FileWal, LogStore, WalOptions};
use raft_impl::{HardState, NodeId, Record};
use raft_model::action::Kept;
use raft_model::check::{self, CheckOptions, Strategy};
use raft_model::state::Cmd;
use raft_model::{Action, Bounds, Network, Persistence, RaftModel, State};
use stateright::Model;

/// Distinct (durable state, pending records) pairs to write through the WAL: enough to cover
/// every record shape the bounds produce (term/vote, log from 1, a truncating log from 2) and
/// several pending records in a row, few enough that the test takes seconds.
const PAIRS: usize = 150;
/// States the breadth-first walk visits at most: the first levels of the default bounds hold
/// every record shape.
const STATES: usize = 200_000;

/// A reached state with a server whose records are pending.
struct Reached {
    state: State,
    id: NodeId,
    durable: HardState<Cmd>,
    pending: Vec<Record<Cmd>>,
}

/// States with a server holding pending records, one per distinct (durable, pending records)
/// pair, in BFS order of the states that hold them, most pending records first among the
/// collected.
fn reached_pairs(model: &RaftModel) -> Vec<Reached> {
    let mut seen_states = HashSet::new();
    let mut pairs = HashSet::new();
    let mut reached = Vec::new();
    let mut queue: VecDeque<State> = model.init_states().into();
    let mut actions = Vec::new();
    while let Some(state) = queue.pop_front() {
        if pairs.len() >= 20 * PAIRS || seen_states.len() >= STATES {
            break;
        }
        // The model's crash of the server is what the test compares with: it needs one left.
        let can_crash = state.crashes < model.bounds.max_crashes;
        for (id, server) in (0..).zip(&state.servers) {
            if !can_crash {
                break;
            }
            let pending: Vec<Record<Cmd>> = server.pending_writes().flatten().cloned().collect();
            let durable = HardState::clone(&server.durable);
            if !pending.is_empty() && pairs.insert((durable.clone(), pending.clone())) {
                reached.push(Reached {
                    state: state.clone(),
                    id,
                    durable,
                    pending,
                });
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
    reached.sort_by_key(|r| (usize::MAX - r.pending.len(), r.durable.log.len()));
    reached.truncate(PAIRS);
    reached
}

/// The durable state the model's crash of `r.id` leaves when its disk keeps `kept` of the
/// server's pending writes (one item per flush they need, as `Action::Crash` counts them).
fn crashed(model: &RaftModel, r: &Reached, kept: usize) -> HardState<Cmd> {
    let mut per_server: Kept = Default::default();
    per_server[r.id as usize] = kept.try_into().expect("a handful of records");
    let action = Action::Crash {
        mask: 1 << r.id,
        kept: per_server,
    };
    let mut actions = Vec::new();
    model.actions(&r.state, &mut actions);
    assert!(actions.contains(&action), "the model offers {action:?}");
    let next = model
        .next_state(&r.state, action)
        .expect("the crash is a step");
    HardState::clone(&next.servers[r.id as usize].durable)
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
fn every_cut_of_the_pending_records_recovers_the_models_crash() {
    let bounds = Bounds {
        persistence: Persistence::Wal,
        ..Bounds::default()
    };
    let model = RaftModel::new(bounds);
    let pairs = reached_pairs(&model);
    assert!(pairs.len() >= 50, "only {} pairs reached", pairs.len());
    let most = pairs.iter().map(|r| r.pending.len()).max().unwrap_or(0);
    assert!(most >= 3, "no state with 3 pending records: {most}");
    let truncating = pairs
        .iter()
        .flat_map(|r| &r.pending)
        .any(|r| matches!(r, Record::Log { from, .. } if *from > 1));
    assert!(truncating, "no log record past index 1 among the pairs");

    let dir = scratch();
    let mut cuts = 0;
    for (n, r) in pairs.iter().enumerate() {
        // Each record is flushed on its own in WAL mode: one pending write, one record.
        let writes = r.state.servers[r.id as usize].pending_writes().count();
        assert_eq!(writes, r.pending.len());
        let log_dir = dir.path().join(n.to_string());
        let mut wal = FileWal::<Cmd>::create(&log_dir, WalOptions::default()).expect("create");
        wal.append(&rebuilding(&r.durable)).expect("append");
        wal.sync().expect("sync");
        let segment = only_segment(&log_dir);
        let synced = std::fs::metadata(&segment).expect("metadata").len();
        // Each pending record's end offset, written one sync at a time.
        let mut ends = Vec::new();
        for record in &r.pending {
            wal.append(std::slice::from_ref(record)).expect("append");
            wal.sync().expect("sync");
            ends.push(std::fs::metadata(&segment).expect("metadata").len());
        }
        drop(wal);
        let after_crash: Vec<HardState<Cmd>> = (0..=r.pending.len())
            .map(|k| crashed(&model, r, k))
            .collect();
        let bytes = std::fs::read(&segment).expect("read");
        for cut in synced..=bytes.len() as u64 {
            std::fs::write(&segment, &bytes[..cut as usize]).expect("write");
            let (_, recovered) =
                FileWal::<Cmd>::open(&log_dir, WalOptions::default()).expect("recovers");
            let kept = ends.iter().filter(|end| **end <= cut).count();
            assert_eq!(
                recovered,
                after_crash[kept],
                "cut at byte {cut} of {}: the model's crash keeps {kept} of {:?}",
                bytes.len(),
                r.pending
            );
            cuts += 1;
        }
    }
    assert!(cuts > 1000, "only {cuts} cuts");
}

/// Lossless WAL runs, one thread, breadth first, with symmetry reduction: pinned, so that a
/// change in what a WAL crash keeps is seen (on a lossy network it can vanish among states
/// reached otherwise; here a crashed server stays down until its own `Restart`).
#[test]
fn lossless_wal_state_counts_are_pinned() {
    let lossless = Network {
        ordered: false,
        lossy: false,
        duplicating: false,
    };
    let cases = [(1, 2, 0, WAL_NO_ENTRY), (1, 2, 2, WAL_TWO_ENTRIES)];
    for (max_term, max_in_flight, max_log, expected) in cases {
        let bounds = Bounds {
            max_term,
            max_in_flight,
            max_log,
            proposals: max_log as u8,
            network: lossless,
            persistence: Persistence::Wal,
            ..Bounds::default()
        };
        let report = check::run(
            RaftModel::new(bounds),
            &CheckOptions::exhaustive(Strategy::Bfs, 1),
        );
        assert!(report.exhaustive && !report.violated(), "{bounds}");
        assert_eq!(report.unique_states, expected, "{bounds}");
    }
}

/// 3 servers, 1 term, no entry, 1 crash, 2 in flight, lossless, WAL.
const WAL_NO_ENTRY: usize = 410;
/// The same with 2 entries (2 proposals).
const WAL_TWO_ENTRIES: usize = 18_434;
