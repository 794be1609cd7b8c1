//! Linearizability of the KV service on the simulator: Lab 4-style clerks issue Puts, Appends
//! and Gets over a few keys to the [KV service](crate::kv_service) of a five-server cluster
//! while faults strike, and the history they record is checked with `raft_lincheck`
//! after every run.
//!
//! Each [`KvScenario`] is 6.5840's kvraft `GenericTest` with some of its knobs: an unreliable
//! network, partitions, crashes, the number of clerks, and Lab 4B's `maxraftstate` (snapshots of
//! the stores, with their sessions). Partitions put the current leader on the minority side half
//! of the time, so that a deposed leader lingers, still hears clients, and would answer reads
//! from stale state if the service let it (the `stale-read` bug). Losses on an unreliable
//! network make clerks retry requests that did take effect (what `kv-no-dedup` gets wrong).
//!
//! A run ends with the faults healed and the clerks given [`WIND_DOWN`] to finish their last
//! operation; one that still has no reply stays pending in the history. Besides the history,
//! a run checks what 4B's `GenericTest` checks of snapshots: with a `maxraftstate`, no store
//! keeps more than [`RAFT_STATE_SLACK`] times it of Raft state (checked at every fault decision
//! and at the end) and some server took a snapshot; without, none did. And no store holds an
//! appended token twice: an append applied twice, the plainest duplicate there is (a Put that
//! overwrote it leaves the history check to find it).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use raft_impl::kv::{ClientId, KvCommand, KvOp};
use raft_impl::{MutationSet, NodeId};
use raft_lincheck::{check_history, History, Outcome, Recorder, Report};

use crate::clerk::{Clerk, Closing};
use crate::failure::Failure;
use crate::kv_service::KvService;
use crate::runtime::Sim;
use crate::seeds;
use crate::suite::{run_guarded, UnknownScenario};
use crate::tester::Tester;
use crate::trace::TraceEvent;
use crate::world::World;

/// Servers in the cluster: a minority side can hold a deposed leader and one follower.
pub const SERVERS: u8 = 5;
/// Clerks of most scenarios, with ids `1..=CLIENTS`. The last one only reads (a monitoring
/// client): it stays with a server as long as that server answers, so after a partition it
/// keeps asking a deposed leader, which is what exposes a leader answering reads from stale
/// state. The other clerks also write, and leave a deposed leader at their first write that
/// times out.
pub const CLIENTS: ClientId = 5;
/// Lab 4B's `maxraftstate` in the snapshot tests: a server snapshots once its store keeps this
/// many bytes of Raft state. 4B uses 1000 bytes; the codec here encodes the tests' entries in 6
/// (a registration) to 17 bytes (an append of a token), a Put of 4B's `snapshot_install` in 15,
/// so 1000 bytes would hold its 50 Puts without a snapshot. At 150 bytes a server snapshots
/// every ten-odd entries, and those 50 Puts compact the log several times.
pub const MAX_RAFT_STATE: usize = 150;
/// 4B fails a run whose stores keep more than this many times `maxraftstate` of Raft state: a
/// server snapshots only at an applied index, so entries it has not applied yet (and, on a
/// deposed leader, entries that will never commit) stay until then.
pub const RAFT_STATE_SLACK: usize = 8;
/// Few keys, so that clients contend on each.
const KEYS: [&str; 3] = ["a", "b", "c"];
/// Longest pause of a clerk between two operations (drawn uniformly). Pauses keep a run to
/// some hundreds of operations, whose histories the linearizability checker searches in
/// seconds; seeds, not long runs, give the coverage.
const MAX_THINK: Duration = Duration::from_millis(400);
/// Fault rounds per run; each ends, in scenarios with crashes, by crashing and restarting
/// every server (as Lab 4 does), so that every store is rebuilt from its snapshot (with a
/// `maxraftstate`) and the log.
const ROUNDS: u32 = 3;
/// Virtual time of one round.
const ROUND: Duration = Duration::from_secs(4);
/// Time between two fault decisions (ms): a partition lasts about as long as Lab 4's
/// partitioner keeps one, time enough for the majority side to elect a leader and commit
/// writes while a deposed leader still believes it leads.
const FAULT_INTERVAL_MS: std::ops::Range<u64> = 800..1600;
/// Chance, at each fault decision, that one server crashes for a while.
const CRASH_PER_MILLE: u32 = 300;
/// Time the clerks get, once faults stop, to finish the operation they have in flight.
pub const WIND_DOWN: Duration = Duration::from_secs(10);
/// Virtual time a run may take; a run that needs more has stalled.
const TIME_LIMIT: Duration = Duration::from_secs(60);
/// Wall time the checker may spend on one history before it answers "unknown": orders of
/// magnitude more than the milliseconds these histories take, so that the verdict does not
/// depend on the machine.
const CHECK_BUDGET: Duration = Duration::from_secs(60);
/// Seeds per scenario when `RAFT_SEEDS` is not set: what CI runs.
pub const DEFAULT_SEEDS: u64 = 200;
/// The integration test binary that runs the scenarios, for the replay command.
const TEST_BINARY: &str = "kv_linearizability";

/// One fault mix of the KV test.
#[derive(Clone, Copy, Debug)]
pub struct KvScenario {
    /// The Rust test's name.
    pub name: &'static str,
    /// The network loses about a tenth of all messages (clients' too) and delays them.
    pub unreliable: bool,
    /// The servers are split in two at random, often with the leader in the minority.
    pub partitions: bool,
    /// Servers crash and restart from their persisted state.
    pub crashes: bool,
    /// Clerks, with ids `1..=clients`; the last one only reads.
    pub clients: ClientId,
    /// Lab 4B's `maxraftstate`: servers snapshot their stores once they keep this many bytes
    /// of Raft state; `None`, never.
    pub max_raft_state: Option<usize>,
}

/// The KV scenarios, from one kind of fault to all of them at once.
pub static KV_SCENARIOS: &[KvScenario] = &[
    KvScenario {
        name: "kv_unreliable",
        unreliable: true,
        partitions: false,
        crashes: false,
        clients: CLIENTS,
        max_raft_state: None,
    },
    KvScenario {
        name: "kv_partitions",
        unreliable: false,
        partitions: true,
        crashes: false,
        clients: CLIENTS,
        max_raft_state: None,
    },
    KvScenario {
        name: "kv_crashes",
        unreliable: false,
        partitions: false,
        crashes: true,
        clients: CLIENTS,
        max_raft_state: None,
    },
    KvScenario {
        name: "kv_all_faults",
        unreliable: true,
        partitions: true,
        crashes: true,
        clients: CLIENTS,
        max_raft_state: None,
    },
    // Lab 4B: the same, with snapshots.
    KvScenario {
        name: "kv_snapshot_recover",
        unreliable: false,
        partitions: false,
        crashes: true,
        clients: CLIENTS,
        max_raft_state: Some(MAX_RAFT_STATE),
    },
    KvScenario {
        name: "kv_snapshot_recover_many_clients",
        unreliable: false,
        partitions: false,
        crashes: true,
        clients: 3 * CLIENTS,
        max_raft_state: Some(MAX_RAFT_STATE),
    },
    KvScenario {
        name: "kv_snapshot_unreliable",
        unreliable: true,
        partitions: false,
        crashes: false,
        clients: CLIENTS,
        max_raft_state: Some(MAX_RAFT_STATE),
    },
    KvScenario {
        name: "kv_snapshot_unreliable_recover",
        unreliable: true,
        partitions: false,
        crashes: true,
        clients: CLIENTS,
        max_raft_state: Some(MAX_RAFT_STATE),
    },
    KvScenario {
        name: "kv_snapshot_all_faults",
        unreliable: true,
        partitions: true,
        crashes: true,
        clients: CLIENTS,
        max_raft_state: Some(MAX_RAFT_STATE),
    },
];

/// Looks a KV scenario up by its name.
pub fn find(name: &str) -> Result<&'static KvScenario, UnknownScenario> {
    KV_SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| UnknownScenario(name.to_string()))
}

/// How often a run's servers took, installed and restarted from snapshots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotCounts {
    pub taken: u64,
    pub installed: u64,
    pub restarts: u64,
}

/// How one KV scenario went on one seed.
#[derive(Debug)]
pub struct KvRun {
    /// The simulation: the Raft-level checks (agreement on applied commands, …) and whether
    /// the run finished in time.
    pub outcome: Result<(), Failure>,
    /// What the clerks saw.
    pub history: History,
    /// The linearizability verdict on `history`.
    pub report: Report,
    /// Virtual time at the end of the run.
    pub elapsed: Duration,
    /// How often the snapshot paths ran: snapshots the services took, snapshots the cores
    /// installed from InstallSnapshot, and servers started from a snapshot.
    pub snapshots: SnapshotCounts,
    /// The events of the run, if tracing was asked for.
    pub trace: Vec<TraceEvent<KvCommand>>,
}

impl KvRun {
    /// Why the run failed, if it did: a failed simulation check, or a history that is not
    /// (or not known to be) linearizable.
    pub fn failure(&self) -> Option<String> {
        let mut why = String::new();
        if let Err(failure) = &self.outcome {
            let _ = writeln!(why, "simulation: {failure}");
        }
        if self.report.outcome != Outcome::Linearizable {
            let _ = write!(why, "history: {}", self.report);
        }
        (!why.is_empty()).then_some(why)
    }
}

impl KvScenario {
    /// Plays this scenario on `seed` with `mutations` switched on in every core and store, and
    /// checks the history. A panic of the code under test is a failed run, not a panic.
    pub fn run(&self, seed: u64, mutations: MutationSet, trace: bool) -> KvRun {
        let cluster = KvCluster {
            servers: SERVERS,
            seed,
            mutations,
            max_raft_state: self.max_raft_state,
            trace,
        };
        let scenario = *self;
        cluster.run(TIME_LIMIT, move |sim, service, history| {
            play(scenario, sim, service, history)
        })
    }
}

/// A simulated cluster with the KV service on it, as a KV test sets it up.
#[derive(Clone, Copy, Debug)]
pub struct KvCluster {
    pub servers: u8,
    pub seed: u64,
    /// Switched on in every core and store.
    pub mutations: MutationSet,
    /// Lab 4B's `maxraftstate` (see [`KvService::install`]).
    pub max_raft_state: Option<usize>,
    /// Record the run's events.
    pub trace: bool,
}

impl KvCluster {
    /// Runs `body` (clerks and faults, given the simulation, the service and the history the
    /// clerks record into) on this cluster for at most `limit` of virtual time, then checks the
    /// history. A panic of the code under test is a failed run, not a panic.
    pub fn run<F>(
        &self,
        limit: Duration,
        body: impl FnOnce(Sim<KvCommand>, KvService, Rc<RefCell<Recorder>>) -> F,
    ) -> KvRun
    where
        F: Future<Output = Result<(), Failure>> + 'static,
    {
        let world = World::new(self.servers, self.seed, self.mutations, self.trace);
        let sim = Sim::new(world);
        let service = KvService::install(&sim, self.mutations, self.max_raft_state);
        let recorder = Rc::new(RefCell::new(Recorder::new()));
        let outcome = run_guarded(
            &sim,
            limit,
            body(sim.clone(), service, Rc::clone(&recorder)),
        );
        let history = recorder.take().finish();
        let report = check_history(&history, CHECK_BUDGET);
        let mut world = sim.world();
        let snapshots = SnapshotCounts {
            taken: world.snapshots_taken(),
            installed: (0..self.servers)
                .map(|i| world.snapshots_installed(i))
                .sum(),
            restarts: world.restarts_from_snapshot(),
        };
        KvRun {
            outcome,
            history,
            report,
            elapsed: world.now(),
            snapshots,
            trace: world.take_trace(),
        }
    }
}

/// The body of a run: clerks working while the faults of `scenario` strike, then a wind-down.
async fn play(
    scenario: KvScenario,
    sim: Sim<KvCommand>,
    service: KvService,
    history: Rc<RefCell<Recorder>>,
) -> Result<(), Failure> {
    let t = Tester::new(sim.clone());
    t.set_unreliable(scenario.unreliable);
    let closing = Closing::default();
    let clerks: Vec<_> = (1..=scenario.clients)
        .map(|client| {
            let clerk = Clerk::new(
                client,
                sim.clone(),
                service.clone(),
                Rc::clone(&history),
                closing.clone(),
            );
            let reader = client == scenario.clients;
            t.spawn(work(clerk, reader, t.clone(), closing.clone()))
        })
        .collect();
    for _ in 0..ROUNDS {
        let end = sim.now() + ROUND;
        while sim.now() < end {
            t.sleep(Duration::from_millis(t.random(FAULT_INTERVAL_MS)))
                .await;
            if scenario.partitions {
                repartition(&t);
            }
            if scenario.crashes && t.chance(CRASH_PER_MILLE) {
                crash_for_a_while(&t, t.random_server());
            }
            check_raft_state(&sim, scenario.max_raft_state)?;
        }
        if scenario.crashes {
            for i in 0..SERVERS {
                t.start(i);
                t.connect(i);
            }
        }
    }
    t.partition(&[]);
    t.set_unreliable(false);
    // Servers crashed by `crash_for_a_while` are back within a second.
    t.sleep(Duration::from_secs(1)).await;
    closing.close(sim.now() + WIND_DOWN);
    for clerk in clerks {
        clerk.await?;
    }
    check_raft_state(&sim, scenario.max_raft_state)?;
    check_snapshots_taken(&sim, scenario.max_raft_state)?;
    check_no_duplicate(&sim, &service)
}

/// Fails if, with snapshots at `max_raft_state` bytes, some store keeps more than
/// [`RAFT_STATE_SLACK`] times that of Raft state (4B's "logs were not trimmed"), measured on
/// the store, so that one that keeps what its core compacted away counts it.
pub fn check_raft_state(
    sim: &Sim<KvCommand>,
    max_raft_state: Option<usize>,
) -> Result<(), Failure> {
    let Some(max) = max_raft_state else {
        return Ok(());
    };
    let world = sim.world();
    let size = (0..world.servers())
        .map(|i| world.raft_state_size(i))
        .max()
        .unwrap_or(0);
    let limit = RAFT_STATE_SLACK * max;
    if size > limit {
        return Err(Failure::LogTooLarge { size, limit });
    }
    Ok(())
}

/// Fails if the servers took a snapshot without a `max_raft_state`, or none with one: then the
/// run did not test what it is named for.
fn check_snapshots_taken(
    sim: &Sim<KvCommand>,
    max_raft_state: Option<usize>,
) -> Result<(), Failure> {
    let taken = sim.world().snapshots_taken();
    match max_raft_state {
        None if taken > 0 => Err(Failure::Check(format!(
            "{taken} snapshots taken without a maxraftstate"
        ))),
        Some(max) if taken == 0 => Err(Failure::Check(format!(
            "no server took a snapshot with a maxraftstate of {max} bytes"
        ))),
        _ => Ok(()),
    }
}

/// Fails if some server's store holds an appended token twice: an append applied twice.
fn check_no_duplicate(sim: &Sim<KvCommand>, service: &KvService) -> Result<(), Failure> {
    for server in 0..sim.world().servers() {
        for key in KEYS {
            let value = service.value(server, key);
            if has_duplicate_token(&value) {
                return Err(Failure::AppliedTwice {
                    server,
                    key: key.to_string(),
                    value,
                });
            }
        }
    }
    Ok(())
}

/// Whether `value` holds some appended token (`client.n;`, unique per write) twice.
pub fn has_duplicate_token(value: &str) -> bool {
    let tokens: Vec<&str> = value.split_terminator(';').collect();
    tokens
        .iter()
        .enumerate()
        .any(|(i, token)| tokens[i + 1..].contains(token))
}

/// A clerk's workload until the run closes: after a pause, random Puts (1 in 5), Appends and
/// Gets (2 in 5 each) on random keys; only Gets for a `reader` (see [`CLIENTS`]). Written
/// values are unique (`client.n;`), so a duplicated append or a stale read is plain in the
/// history.
async fn work(
    mut clerk: Clerk,
    reader: bool,
    t: Tester<KvCommand>,
    closing: Closing,
) -> Result<(), Failure> {
    let client = clerk.id();
    let mut n = 0;
    loop {
        t.sleep(Duration::from_micros(
            t.random(0..MAX_THINK.as_micros() as u64),
        ))
        .await;
        if closing.is_closed() {
            return Ok(());
        }
        n += 1;
        let key = KEYS[t.random(0..KEYS.len() as u64) as usize].to_string();
        let value = format!("{client}.{n};");
        let op = match t.random(0..5) {
            _ if reader => KvOp::Get { key },
            0 => KvOp::Put { key, value },
            1 | 2 => KvOp::Append { key, value },
            _ => KvOp::Get { key },
        };
        clerk.execute(op).await?;
    }
}

/// Heals the network one time in four; otherwise splits off a minority of one or two servers,
/// which half of the time holds the current leader.
fn repartition(t: &Tester<KvCommand>) {
    if t.chance(250) {
        return t.partition(&[]);
    }
    let leader = (0..SERVERS)
        .filter_map(|i| {
            t.state(i)
                .filter(|(_, leads)| *leads)
                .map(|(term, _)| (term, i))
        })
        .max()
        .map(|(_, i)| i);
    let first = match leader {
        Some(leader) if t.chance(500) => leader,
        _ => t.random_server(),
    };
    let mut side = vec![first];
    if t.chance(500) {
        side.push((first + 1 + t.random(0..u64::from(SERVERS) - 1) as NodeId) % SERVERS);
    }
    t.partition(&side);
}

/// Crashes server `i` now and restarts it 0.2 to 1 s later.
fn crash_for_a_while(t: &Tester<KvCommand>, i: NodeId) {
    t.crash(i);
    let down = Duration::from_millis(t.random(200..1000));
    let t2 = t.clone();
    // Nobody waits for the restart: the task's handle is not needed.
    let _restart = t.spawn(async move {
        t2.sleep(down).await;
        t2.start(i);
        t2.connect(i);
    });
}

/// Runs KV scenario `name` on every seed the environment asks for ([`DEFAULT_SEEDS`] unless
/// `RAFT_SEEDS` or `RAFT_SEED` is set), with the correct core and store.
///
/// # Panics
///
/// On the first failing seed, after writing its history to `dir` as JSON lines: with the
/// seed, why it failed, where the history is, and the command that replays it. Also on an
/// unknown scenario or a malformed seed variable.
pub fn check_kv_scenario(name: &str, dir: &Path) {
    let scenario = find(name).unwrap_or_else(|e| panic!("{e}"));
    check_kv_test(name, DEFAULT_SEEDS, dir, |seed, trace| {
        scenario.run(seed, MutationSet::NONE, trace)
    });
}

/// Runs KV test `name` (`run` plays it on a seed, tracing or not) on every seed the
/// environment asks for (`default_seeds` unless `RAFT_SEEDS` or `RAFT_SEED` is set).
///
/// # Panics
///
/// As [`check_kv_scenario`].
pub fn check_kv_test(name: &str, default_seeds: u64, dir: &Path, run: impl Fn(u64, bool) -> KvRun) {
    let seeds = seeds::seeds_from_env_or(default_seeds).unwrap_or_else(|e| panic!("{e}"));
    let trace = seeds::trace_requested();
    for seed in seeds {
        let run = run(seed, trace);
        if trace {
            seeds::print_trace(name, seed, &run.trace);
        }
        if let Err(report) = verdict(name, seed, &run, dir) {
            panic!("{report}");
        }
    }
}

/// `Ok` if `run` (scenario `name` on `seed`) passed; otherwise what a failure prints: the
/// seed, why it failed, where its history was written (in `dir`), and the replay command.
fn verdict(name: &str, seed: u64, run: &KvRun, dir: &Path) -> Result<(), String> {
    let Some(why) = run.failure() else {
        return Ok(());
    };
    let saved = match save_history(&run.history, dir, name, seed) {
        Ok(path) => format!(
            "history: {} (`raftcheck lincheck <file> --html out.html` shows it)",
            path.display()
        ),
        Err(e) => format!("history not saved: {e}"),
    };
    Err(format!(
        "{name} failed on seed {seed} at {:.3} s of virtual time:\n{why}\n{saved}\nreplay: {}",
        run.elapsed.as_secs_f64(),
        seeds::replay_command_in(TEST_BINARY, name, seed)
    ))
}

/// Writes `history` to `dir/<name>-seed<seed>.jsonl`, the format `raftcheck lincheck` reads.
pub fn save_history(
    history: &History,
    dir: &Path,
    name: &str,
    seed: u64,
) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("{name}-seed{seed}.jsonl"));
    std::fs::write(&path, history.to_jsonl())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_records_completed_operations_of_every_kind_and_every_clerk() {
        let run = find("kv_all_faults")
            .unwrap()
            .run(1, MutationSet::NONE, false);
        assert_eq!(run.failure(), None);
        let completed: Vec<_> = run
            .history
            .operations()
            .iter()
            .filter(|op| op.returned.is_some())
            .collect();
        // Seeds 0 to 7 complete 87 to 127 operations (this one 92) since clerks register a
        // session before their first write.
        assert!(completed.len() > 80, "{} operations", completed.len());
        for client in 1..=CLIENTS {
            assert!(completed.iter().any(|op| op.client == client));
        }
        for kind in ["put", "append", "get"] {
            assert!(completed
                .iter()
                .any(|op| format!("{:?}", op.op).to_lowercase().starts_with(kind)));
        }
    }

    #[test]
    fn a_failing_run_reports_seed_and_replay_and_saves_a_history_that_fails_again() {
        let bug = MutationSet::NONE.with(raft_impl::Mutation::KvNoDedup);
        let run = find("kv_unreliable").unwrap().run(0, bug, false);
        let dir = std::env::temp_dir().join(format!("raft-tests-kv-{}", std::process::id()));
        let report = verdict("kv_unreliable", 0, &run, &dir).unwrap_err();
        assert!(
            report.starts_with("kv_unreliable failed on seed 0 at "),
            "{report}"
        );
        assert!(report.contains("NOT linearizable"), "{report}");
        assert!(
            report.contains(
                "replay: RAFT_SEED=0 RAFT_TRACE=1 cargo test -p raft-tests --release \
                 --test kv_linearizability -- --exact kv_unreliable --nocapture"
            ),
            "{report}"
        );
        let path = dir.join("kv_unreliable-seed0.jsonl");
        let saved = raft_lincheck::run(&path, None, CHECK_BUDGET).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(saved.outcome, run.report.outcome);
    }

    #[test]
    fn the_same_seed_records_the_same_history() {
        for name in ["kv_all_faults", "kv_snapshot_all_faults"] {
            let scenario = find(name).unwrap();
            let a = scenario.run(4, MutationSet::NONE, false);
            let b = scenario.run(4, MutationSet::NONE, false);
            assert_eq!(a.history, b.history, "{name}");
            assert_eq!(a.elapsed, b.elapsed, "{name}");
            assert_eq!(a.snapshots, b.snapshots, "{name}");
        }
    }
}
