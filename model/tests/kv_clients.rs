//! KV clients in the model: the property "linearizable" catches both KV bugs in small
//! configurations, and the same configurations hold exhaustively without them, so the
//! counterexamples are the bugs' doing. Also: clients are off by default.

use raft_impl::kv::KvReply;
use raft_impl::{Mutation, MutationSet};
use raft_model::check::{self, CheckOptions, CheckReport, PropertyOutcome, Strategy};
use raft_model::kv::{KvSpec, Op};
use raft_model::{
    catalog, properties, render, Bounds, KvBounds, Network, Persistence, Preset, RaftModel,
};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester};
use stateright::Model;

/// The catalog's configuration for a KV bug (`model/src/catalog.rs` says why each is minimal):
/// stale-read needs a new leader of term 2 that reads before it has committed anything in its
/// term (Raft §8); kv-no-dedup needs a timed-out append retried at the same leader.
fn catalog_config(bug: Mutation) -> (Bounds, KvBounds) {
    let entry = catalog::catalog()
        .into_iter()
        .find(|b| b.mutation == bug)
        .expect("every mutation is in the catalog");
    (entry.config, entry.kv)
}

fn stale_read_config() -> (Bounds, KvBounds) {
    catalog_config(Mutation::StaleRead)
}

fn kv_no_dedup_config() -> (Bounds, KvBounds) {
    catalog_config(Mutation::KvNoDedup)
}

fn run((bounds, kv): (Bounds, KvBounds), bug: Option<Mutation>, strategy: Strategy) -> CheckReport {
    let mutations = bug.map_or(MutationSet::NONE, |m| MutationSet::NONE.with(m));
    let model = RaftModel::with_kv(
        Bounds {
            mutations,
            ..bounds
        },
        kv,
    );
    let options = CheckOptions::exhaustive(strategy, 1);
    check::run(model, &options)
}

fn outcome(report: &CheckReport, name: &str) -> PropertyOutcome {
    let p = report.properties.iter().find(|p| p.name == name);
    p.expect("the property is checked").outcome
}

/// The bug violates "linearizable" and nothing else: the core itself stays correct, only the
/// service on top of it answers wrongly. The trace ends with the reply that no order of the
/// operations explains.
fn assert_caught(config: (Bounds, KvBounds), bug: Mutation, reply: &str) {
    let report = run(config, Some(bug), Strategy::Bfs);
    let (name, path) = report.first_violation().expect("a violation");
    assert_eq!(name, properties::LINEARIZABLE, "{bug}");
    let trace = render::trace(path);
    let last = trace.last().expect("a trace with steps");
    assert!(
        last.ends_with(&format!("c0 gets {reply} for c0.1 get k")),
        "{bug}: {last}"
    );
    let violated: Vec<_> = report
        .properties
        .iter()
        .filter(|p| p.outcome == PropertyOutcome::Violated)
        .map(|p| p.name)
        .collect();
    assert_eq!(violated, [properties::LINEARIZABLE], "{bug}");
}

/// Without the bug, every safety property holds on the whole space, under BFS and under DFS
/// with symmetry reduction, and the client gets through its workload.
fn assert_holds(config: (Bounds, KvBounds), unique_bfs: usize) {
    let bfs = run(config, None, Strategy::Bfs);
    let dfs = run(config, None, Strategy::Dfs);
    for report in [&bfs, &dfs] {
        assert!(report.exhaustive);
        assert!(!report.violated());
        assert_eq!(
            outcome(report, properties::LINEARIZABLE),
            PropertyOutcome::Holds
        );
        assert_eq!(
            outcome(report, properties::CLIENTS_DONE),
            PropertyOutcome::ExampleFound
        );
    }
    // Regression guard: a silent change of the client model changes the count.
    assert_eq!(bfs.unique_states, unique_bfs);
}

#[test]
fn stale_read_is_caught() {
    assert_caught(stale_read_config(), Mutation::StaleRead, "\"\"");
}

#[test]
fn kv_no_dedup_is_caught() {
    assert_caught(kv_no_dedup_config(), Mutation::KvNoDedup, "\"00\"");
}

#[test]
fn stale_read_config_holds_without_the_bug() {
    // 113 before clients registered a session through the log (one more entry per client,
    // and the configuration's log one entry longer so that the client can finish).
    assert_holds(stale_read_config(), 191);
}

#[test]
fn kv_no_dedup_config_holds_without_the_bug() {
    // 116 before clients registered a session through the log (one more entry per client).
    assert_holds(kv_no_dedup_config(), 197);
}

/// "Every client completes its workload" needs three log entries per client (its
/// registration, write and read). One fewer and the run says that the bound rules it out,
/// rather than counting it as gone missing (a failure); with three it is
/// reached (`stale_read_config_holds_without_the_bug`). Under stale-read a read takes no entry,
/// so two are not excused there.
#[test]
fn a_log_too_short_for_the_workloads_rules_completion_out() {
    let (bounds, kv) = stale_read_config();
    assert_eq!((bounds.max_log, kv.clients), (3, 1));
    let short = Bounds {
        max_log: 2,
        ..bounds
    };
    let report = run((short, kv), None, Strategy::Bfs);
    assert!(report.exhaustive && !report.violated());
    assert!(matches!(
        outcome(&report, properties::CLIENTS_DONE),
        PropertyOutcome::Unreachable(_)
    ));
    let local_reads = Bounds {
        mutations: MutationSet::NONE.with(Mutation::StaleRead),
        ..short
    };
    assert_eq!(
        properties::impossible(properties::CLIENTS_DONE, &local_reads, &kv),
        None
    );
}

#[test]
fn clients_are_off_by_default() {
    let model = RaftModel::new(Bounds::default());
    assert!(model.init_states()[0].clients.is_none());
    let names: Vec<_> = model.properties().iter().map(|p| p.name).collect();
    assert!(!names.contains(&properties::LINEARIZABLE));
}

/// The specification the history is judged by: an append whose retry was applied twice shows
/// up as a read that no order of the operations explains.
#[test]
fn a_read_of_a_doubled_append_is_not_linearizable() {
    let mut history = LinearizabilityTester::new(KvSpec::default());
    let mut record = |op, reply| {
        history.on_invoke(0, op).unwrap();
        history.on_return(0, reply).unwrap();
    };
    record(Op::Append(0), KvReply::Done);
    record(Op::Get, KvReply::Value("00".into()));
    assert!(!history.is_consistent());
}

/// What a user sees: the CLI flags reach the model, the violation is reported with a trace
/// that shows the client, and an out-of-range client count is bad input.
#[test]
fn the_cli_reports_a_stale_read() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_raftcheck"))
            .args(args)
            .output()
            .expect("raftcheck runs")
    };
    let out = run(&[
        "check",
        "--bug",
        "stale-read",
        "--servers",
        "2",
        "--max-term",
        "2",
        "--max-log",
        "2",
        "--clients",
        "0",
        "--max-crashes",
        "0",
        "--max-in-flight",
        "1",
        "--ordered",
        "--lossless",
        "--kv-clients",
        "1",
        "--kv-timeouts",
        "0",
        "--threads",
        "1",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("kv clients       1"), "{text}");
    assert!(
        text.contains("Counterexample to \"linearizable\""),
        "{text}"
    );
    assert!(text.contains("answers from its local state"), "{text}");
    let out = run(&["check", "--kv-clients", "4"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kv-clients"));
}

/// The correct service under everything the clients can meet at once: two clients writing
/// concurrently, a lossy network, a crash (which fails the requests the server was working on)
/// and a timeout (after which a reply is lost and the request retried). Every history stays
/// linearizable and both clients can finish.
#[test]
fn two_clients_with_a_crash_and_a_timeout_hold() {
    let bounds = Bounds {
        servers: 2,
        max_term: 2,
        max_log: 6,
        proposals: 0,
        max_crashes: 1,
        max_in_flight: 1,
        max_duplicates: 0,
        max_batch: None,
        window: 0,
        network: Network {
            ordered: true,
            lossy: true,
            duplicating: false,
        },
        persistence: Persistence::Atomic,
        mutations: MutationSet::NONE,
        pre_vote: false,
        check_quorum: false,
        max_snapshots: 0,
    };
    let kv = KvBounds {
        clients: 2,
        timeouts: 1,
        expiries: 0,
    };
    let report = run((bounds, kv), None, Strategy::Dfs);
    assert!(report.exhaustive && !report.violated());
    assert_eq!(
        outcome(&report, properties::LINEARIZABLE),
        PropertyOutcome::Holds
    );
    assert_eq!(
        outcome(&report, properties::CLIENTS_DONE),
        PropertyOutcome::ExampleFound
    );
    // 527 614 before a lossy network lost the sends that do not fit instead of refusing the
    // step (issue 11); 560 718 before clients registered a session through the log (issue 18:
    // each client's registration is a third entry, so the log bound went from 4 to 6 to let
    // both clients finish); 3 628 926 before a reply ignored for good left the network at
    // once (`RaftModel::reduce_stale`); 3 602 019 before a vote or acknowledgement of a
    // follower's own term left it too; 3 456 224 before a refused vote of any server's own term
    // and a request whose refusal its sender ignores for good left too.
    assert_eq!(report.unique_states, 3_401_006);
}

/// Every state `model` reaches, breadth first.
fn reachable(model: &RaftModel) -> Vec<raft_model::State> {
    use std::collections::HashSet;

    let mut seen: HashSet<_> = model.init_states().into_iter().collect();
    let mut queue: Vec<_> = seen.iter().cloned().collect();
    let mut actions = Vec::new();
    while let Some(state) = queue.pop() {
        actions.clear();
        model.actions(&state, &mut actions);
        for action in actions.drain(..) {
            if let Some(next) = model.next_state(&state, action) {
                if seen.insert(next.clone()) {
                    queue.push(next);
                }
            }
        }
    }
    seen.into_iter().collect()
}

/// The expiry probe's configuration, without the probe.
fn expiry_config() -> (Bounds, KvBounds) {
    let bug = raft_model::probes::probe(Mutation::ExpiredSessionAppliedAsNew).expect("probe");
    (bug.config, bug.kv)
}

/// With session expiry, the correct store refuses the retry of an expired session and the
/// client reports an unknown outcome (its write stays pending); without expiry no client ever
/// does. Every reachable state of the probe's configuration.
#[test]
fn an_expired_session_ends_in_an_unknown_outcome_and_only_with_expiry() {
    use raft_model::kv::Status;

    let (bounds, kv) = expiry_config();
    let unknown_reached = |kv: KvBounds| {
        let states = reachable(&RaftModel::with_kv(bounds, kv));
        let unknown: Vec<_> = states
            .iter()
            .filter_map(|s| s.clients.as_ref())
            .filter(|c| c.slots.iter().any(|slot| slot.status == Status::Unknown))
            .collect();
        assert!(unknown.iter().all(|c| c.linearizable()));
        !unknown.is_empty()
    };
    assert!(unknown_reached(kv));
    assert!(!unknown_reached(KvBounds { expiries: 0, ..kv }));
}

/// The model's clock counts expiry events, each "more than the session timeout" (a store
/// timeout of 0 events). Checked against a finer clock, where a timeout takes two events and
/// three may happen, so that a session can also outlive an event: the clients see the same
/// things (each client's progress, the kind of its status, its last reply, and whether the
/// history is linearizable), in the probe's configuration without the probe.
#[test]
fn one_expiry_event_per_timeout_shows_what_a_finer_clock_shows() {
    use raft_model::kv::Status;
    use std::collections::BTreeSet;

    let (bounds, kv) = expiry_config();
    let seen_by_clients = |model: RaftModel| -> BTreeSet<String> {
        reachable(&model)
            .iter()
            .filter_map(|s| s.clients.as_ref())
            .map(|c| {
                let slots: Vec<_> = c
                    .slots
                    .iter()
                    .map(|slot| {
                        let status = match slot.status {
                            Status::Waiting { .. } => "waiting",
                            Status::Idle => "idle",
                            Status::Retrying => "retrying",
                            Status::Unknown => "unknown",
                        };
                        format!("{} {status} {:?}", slot.seq, slot.reply)
                    })
                    .collect();
                format!("{slots:?} {}", c.linearizable())
            })
            .collect()
    };
    let coarse = seen_by_clients(RaftModel::with_kv(bounds, kv));
    let fine = RaftModel {
        session_timeout: 1,
        ..RaftModel::with_kv(bounds, KvBounds { expiries: 3, ..kv })
    };
    let fine = seen_by_clients(fine);
    assert!(coarse.iter().any(|c| c.contains("unknown")));
    assert_eq!(coarse, fine);
}

/// One client with snapshots (issue 21): three servers, one term, one crash event, one message
/// in flight, the registration, the write and the read in a log of three. A follower catches
/// up by InstallSnapshot, a server restarts from a snapshot, and an install keeps the entry
/// after it; each time the store is the one the snapshot carries (`KvStore::restored`).
fn kv_snapshots_config() -> (Bounds, KvBounds) {
    let bounds = Bounds {
        servers: 3,
        max_term: 1,
        max_log: 3,
        proposals: 0,
        max_crashes: 1,
        max_in_flight: 1,
        max_snapshots: 1,
        ..Preset::Snapshots.bounds()
    };
    let kv = KvBounds {
        clients: 1,
        timeouts: 0,
        expiries: 0,
    };
    (bounds, kv)
}

#[test]
fn kv_clients_with_snapshots_hold_and_reach_every_snapshot_event() {
    let report = run(kv_snapshots_config(), None, Strategy::Dfs);
    assert!(report.exhaustive && !report.violated());
    assert_eq!(
        outcome(&report, properties::LINEARIZABLE),
        PropertyOutcome::Holds
    );
    for name in [
        properties::CLIENTS_DONE,
        properties::CAUGHT_UP_BY_INSTALL,
        properties::RESTART_FROM_SNAPSHOT,
        properties::INSTALL_KEEPS_SUFFIX,
    ] {
        assert_eq!(
            outcome(&report, name),
            PropertyOutcome::ExampleFound,
            "{name}"
        );
    }
}

/// A client's append times out and is retried after the server that applied it restarted
/// from a snapshot of it: two servers, two terms, so that the restarted server leads again
/// and applies the retry with the store it restored. The retry must get the recorded outcome
/// from the session the snapshot carried, not take effect a second time. Checked to fail when
/// the encoding is broken on purpose (`KvStore::restored` giving every session sequence
/// number 0: "linearizable" is violated, the read sees "00").
#[test]
fn a_retry_after_a_restart_from_a_snapshot_applies_once() {
    let bounds = Bounds {
        servers: 2,
        max_term: 2,
        max_log: 4,
        ..kv_snapshots_config().0
    };
    let kv = KvBounds {
        timeouts: 1,
        ..kv_snapshots_config().1
    };
    let report = run((bounds, kv), None, Strategy::Bfs);
    if let Some((name, path)) = report.first_violation() {
        panic!("{name} violated:\n{}", render::trace(path).join("\n"));
    }
    assert!(report.exhaustive);
    for p in report.properties.iter().filter(|p| p.safety) {
        assert_eq!(p.outcome, PropertyOutcome::Holds, "{}", p.name);
    }
    assert_eq!(
        outcome(&report, properties::RESTART_FROM_SNAPSHOT),
        PropertyOutcome::ExampleFound
    );
}

/// A KV bug is still caught with snapshots on: the append retried at the same leader is
/// applied twice under `kv-no-dedup`.
#[test]
fn kv_no_dedup_is_caught_with_snapshots() {
    let (bounds, kv) = kv_snapshots_config();
    let bounds = Bounds {
        max_log: 4,
        ..bounds
    };
    let kv = KvBounds { timeouts: 1, ..kv };
    assert_caught((bounds, kv), Mutation::KvNoDedup, "\"00\"");
}
