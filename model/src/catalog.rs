//! The deliberate-bug catalog (real-world Raft bugs and classic lab mistakes, plus
//! leader-accepts-append and commit-beyond-last-new, added because no other bug broke Leader
//! Append-Only or exercised the follower's commit rule): for every [`Mutation`] of the core, what goes wrong, where it was
//! seen, which property must catch it, and the smallest configuration in which the model does.
//!
//! A safety property that never fails proves nothing; this table is the evidence that each one
//! can. The configurations were found by shrinking: each is locally minimal, i.e. lowering any
//! one bound (or taking away network reordering, loss or duplication, or deferred persistence)
//! makes the counterexample disappear, and without the bug each configuration holds
//! exhaustively (see `tests/bugs.rs`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use raft_impl::{Mutation, MutationSet};
use stateright::{Model, Path};

use crate::action::Action;
use crate::bounds::{Bounds, KvBounds, Network, Persistence};
use crate::check::{self, CheckOptions, Strategy, Until};
use crate::model::{RaftModel, Reductions};
use crate::properties;
use crate::state::State;

/// One deliberate bug.
#[derive(Clone, Copy, Debug)]
pub struct Bug {
    pub mutation: Mutation,
    /// What the implementation does wrong, in one line.
    pub description: &'static str,
    /// Where the bug shipped or is a known lab mistake (`raftcheck bugs` prints it): a report, or
    /// marked `fix:` or `rule:` where the source fixes the bug or states the rule it breaks
    /// rather than reporting it.
    pub seen_in: &'static str,
    /// The property the bug must violate: a name from [`properties`].
    pub expected: &'static str,
    /// The smallest configuration exposing the bug, without the mutation itself (so that the
    /// same bounds can be checked with and without it).
    pub config: Bounds,
    /// KV client slots of the configuration: none for the core's bugs, some for the KV
    /// service's, which only client operations can expose.
    pub kv: KvBounds,
}

impl Bug {
    /// The catalog configuration with this bug switched on.
    pub fn bounds(&self) -> Bounds {
        Bounds {
            mutations: MutationSet::NONE.with(self.mutation),
            ..self.config
        }
    }

    /// The `raftcheck` command line that shows the counterexample.
    pub fn command(&self) -> String {
        format!(
            "raftcheck check --bug {} --strategy bfs {}",
            self.mutation.name(),
            flags(&self.config, &self.kv)
        )
    }

    /// The model of the catalog configuration with this bug switched on.
    pub fn model(&self) -> RaftModel {
        RaftModel::with_kv(self.bounds(), self.kv)
    }
}

/// One command-line flag: its name without the leading dashes, and its value if it takes one.
pub type Flag = (&'static str, Option<String>);

/// The bounds as `raftcheck check` flags, every bound spelled out so the command does not
/// depend on the CLI's defaults. Also what an Explorer link carries (`crate::link`), so that
/// the two cannot name the bounds differently.
pub fn flag_list(b: &Bounds, kv: &KvBounds) -> Vec<Flag> {
    let n = |v: &dyn std::fmt::Display| Some(v.to_string());
    let mut f: Vec<Flag> = vec![
        ("servers", n(&b.servers)),
        ("max-term", n(&b.max_term)),
        ("max-log", n(&b.max_log)),
        ("proposals", n(&b.proposals)),
        ("max-crashes", n(&b.max_crashes)),
        ("max-in-flight", n(&b.max_in_flight)),
    ];
    if let Some(batch) = b.max_batch {
        f.push(("max-batch", n(&batch)));
    }
    if b.window > 0 {
        f.push(("window", n(&b.window)));
    }
    if b.network.ordered {
        f.push(("ordered", None));
    }
    if !b.network.lossy {
        f.push(("lossless", None));
    }
    if b.network.duplicating {
        f.push(("duplicates", n(&b.max_duplicates)));
    }
    if b.persistence != Persistence::Atomic {
        f.push(("storage", n(&b.persistence.name())));
    }
    if b.pre_vote {
        f.push(("prevote", None));
    }
    if b.check_quorum {
        f.push(("check-quorum", None));
    }
    if b.max_snapshots > 0 {
        f.push(("max-snapshots", n(&b.max_snapshots)));
    }
    if kv.enabled() {
        f.push(("kv-clients", n(&kv.clients)));
        f.push(("kv-timeouts", n(&kv.timeouts)));
        if kv.expiries > 0 {
            f.push(("kv-expiries", n(&kv.expiries)));
        }
    }
    f
}

/// Flags as a command line spells them: `--name value`, separated by spaces.
pub fn command_line<'a>(flags: impl IntoIterator<Item = (&'a str, Option<&'a str>)>) -> String {
    let mut s = String::new();
    for (name, value) in flags {
        let sep = if s.is_empty() { "" } else { " " };
        let _ = write!(s, "{sep}--{name}");
        if let Some(v) = value {
            let _ = write!(s, " {v}");
        }
    }
    s
}

/// The bounds as `raftcheck check` flags ([`flag_list`]) on one line.
pub fn flags(b: &Bounds, kv: &KvBounds) -> String {
    let flags = flag_list(b, kv);
    command_line(flags.iter().map(|(n, v)| (*n, v.as_deref())))
}

/// The core's bugs need no KV clients.
pub(crate) const NO_KV: KvBounds = KvBounds {
    clients: 0,
    timeouts: 0,
    expiries: 0,
};

/// Defaults for what most entries leave alone: no duplication, atomic persistence, no mutation.
/// Every entry spells out the other bounds in full, so that it reads on its own.
pub(crate) const BASE: Bounds = Bounds {
    servers: 3,
    max_term: 1,
    max_log: 0,
    proposals: 0,
    max_crashes: 0,
    max_in_flight: 1,
    max_duplicates: 0,
    max_batch: None,
    window: 0,
    network: ORDERED_RELIABLE,
    persistence: Persistence::Atomic,
    mutations: MutationSet::NONE,
    pre_vote: false,
    check_quorum: false,
    max_snapshots: 0,
};

/// FIFO per channel, may lose messages: a partition without reordering.
pub(crate) const ORDERED_LOSSY: Network = Network {
    ordered: true,
    lossy: true,
    duplicating: false,
};
/// FIFO per channel and reliable: the tamest network.
pub(crate) const ORDERED_RELIABLE: Network = Network {
    ordered: true,
    lossy: false,
    duplicating: false,
};
/// Reliable but reordering: a late, stale message can overtake a newer one.
pub(crate) const REORDERING_RELIABLE: Network = Network {
    ordered: false,
    lossy: false,
    duplicating: false,
};

/// Every bug of the catalog, in [`Mutation::ALL`]'s order.
pub fn catalog() -> Vec<Bug> {
    use properties::*;
    vec![
        Bug {
            mutation: Mutation::Figure8Commit,
            description: "leader commits an older term's entry once a majority stores it",
            seen_in: "paper §5.4.2 Fig. 8; LogCabin #44; canonical/raft #220",
            expected: COMMITTED_NEVER_OVERWRITTEN,
            // Four terms are the least: the entry's, a rival entry's, the term that commits the
            // older entry, and the one in which the rival's owner wins and overwrites it. One
            // message in flight is enough since a lossy network loses the sends that do not
            // fit rather than forbidding the step (it needed 2 before).
            config: Bounds {
                servers: 3,
                max_term: 4,
                max_log: 1,
                proposals: 2,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::VoteNotPersisted,
            description: "voted_for is not persisted: a restart forgets the vote",
            seen_in: "TiKV #1610 (report); etcd PR 7317 (fix: Ready.MustSync)",
            expected: ELECTION_SAFETY,
            // Three servers: the forgetful voter must be the swing vote of two candidates.
            config: Bounds {
                servers: 3,
                max_term: 1,
                max_log: 0,
                proposals: 0,
                max_crashes: 1,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::TermNotPersisted,
            description: "current_term is not persisted: a restart goes back in term",
            seen_in: "raft-java #57; mgodave/barge #5",
            expected: ELECTION_SAFETY,
            // Restarting at term 0, a server runs for term 1 again and gets the other's vote.
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 0,
                proposals: 0,
                max_crashes: 1,
                max_in_flight: 1,
                network: ORDERED_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::AckBeforePersist,
            description: "follower acknowledges (or grants a vote) before persisting",
            seen_in: "rule: etcd raft README (PR 5419), raft-rs Ready docs; hazard: CockroachDB PR 15648 review",
            expected: COMMITTED_DURABLE_ON_MAJORITY,
            // No crash needed: the leader counts an acknowledgement of an entry that is on no
            // follower's disk, so the committed entry is durable on the leader alone.
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_RELIABLE,
                persistence: Persistence::Deferred,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::TruncateOnMatch,
            description: "follower truncates after prevLogIndex even when entries match",
            seen_in: "willemt/raft #37; raftos #26; students' guide",
            expected: COMMITTED_NEVER_OVERWRITTEN,
            // The first, empty heartbeat arrives after the entry was committed and deletes it.
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 2,
                network: REORDERING_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::UpToDateByLength,
            description: "vote granted to a log at least as long, ignoring its last term",
            seen_in: "noraft PR 22; students' guide",
            expected: LEADER_COMPLETENESS,
            // Three terms: the voter's committed entry (term 2) loses to the equally long log
            // of an old term-1 leader.
            config: Bounds {
                servers: 3,
                max_term: 3,
                max_log: 1,
                proposals: 2,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::NoUpToDateCheck,
            description: "vote granted without comparing logs",
            seen_in: "akka-raft #51; jgroups-raft #14",
            expected: LEADER_COMPLETENESS,
            config: Bounds {
                servers: 3,
                max_term: 2,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::LeaderIgnoresHigherTerm,
            description: "leader adopts a higher term but stays leader",
            seen_in: "synthetic (Fig. 2 \"convert to follower\")",
            expected: ELECTION_SAFETY,
            config: Bounds {
                servers: 2,
                max_term: 2,
                max_log: 0,
                proposals: 0,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::LeaderAcceptsAppend,
            description: "leader takes an AppendEntries of its term or newer as a follower would",
            seen_in: "cloudwalk/stratus #1047; related: camunda #5360",
            expected: LEADER_APPEND_ONLY,
            // The term-1 leader holds an entry nobody else has. The term-2 leader's heartbeat
            // makes it a second leader of term 2, log kept; its AppendEntries then makes the
            // rightful leader replace its own term-2 entry with that term-1 entry.
            config: Bounds {
                servers: 3,
                max_term: 2,
                max_log: 1,
                proposals: 2,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::VoteResetOnAppend,
            description: "follower clears voted_for on an AppendEntries of its term",
            seen_in: "etcd PR 2461; camunda #5356; CCF PR 8094",
            expected: ELECTION_SAFETY,
            config: Bounds {
                servers: 3,
                max_term: 1,
                max_log: 0,
                proposals: 0,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::StaleVoteCount,
            description: "candidate counts votes granted in an older term",
            seen_in: "little-raft #44; xraft #33",
            expected: ELECTION_SAFETY,
            // Three in flight: the term-1 grant is still on its way when the candidate has
            // already asked again for term 2.
            config: Bounds {
                servers: 3,
                max_term: 2,
                max_log: 0,
                proposals: 0,
                max_crashes: 0,
                max_in_flight: 3,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::MatchIndexRegress,
            description: "leader sets match_index from a stale reply without max",
            seen_in: "etcd PR 1761; PySyncObj #167",
            expected: MATCH_INDEX_MONOTONIC,
            // Reordering is enough, no duplication: the reply to the first, empty heartbeat
            // (match 0) arrives after the reply to the entry (match 1).
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 2,
                network: REORDERING_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::CommitIndexRegress,
            description: "follower sets commit_index = leaderCommit even if lower",
            seen_in: "PySyncObj #166; raft-java #54",
            expected: COMMIT_INDEX_MONOTONIC,
            // The stale first heartbeat, carrying leaderCommit 0, arrives after commit 1.
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 2,
                network: REORDERING_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::CommitBeyondLastNew,
            description: "follower commits min(leaderCommit, own last index) before the log check",
            seen_in: "scylladb #9965; atomix/copycat #265",
            expected: STATE_MACHINE_SAFETY,
            // The deposed term-1 leader still holds its uncommitted entry when the term-2
            // leader's entry, committed at the same index, reaches it: it applies its own entry
            // first and only then replaces it.
            config: Bounds {
                servers: 3,
                max_term: 2,
                max_log: 1,
                proposals: 2,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::KvNoDedup,
            description: "KV applies a retried client request a second time",
            seen_in: "students' guide \"duplicate detection\"",
            expected: properties::LINEARIZABLE,
            // One client's append times out and is sent again; both copies commit and its
            // own read sees the value twice. (Four entries: the registration, the append
            // twice, the read.)
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 4,
                proposals: 0,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_RELIABLE,
                ..BASE
            },
            kv: KvBounds {
                clients: 1,
                timeouts: 1,
                expiries: 0,
            },
        },
        Bug {
            mutation: Mutation::StaleRead,
            description: "leader serves Get locally without a committed entry of its term",
            seen_in: "etcd #741 (Jepsen); redisraft PR 22",
            expected: properties::LINEARIZABLE,
            // A new leader answers a read before it has committed an entry of its term, so
            // before it has applied the append committed in the previous term (§8). Two
            // entries show it (the registration and the append); the third lets the correct
            // client finish its read through the log.
            config: Bounds {
                servers: 2,
                max_term: 2,
                max_log: 3,
                proposals: 0,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_RELIABLE,
                ..BASE
            },
            kv: KvBounds {
                clients: 1,
                timeouts: 0,
                expiries: 0,
            },
        },
        Bug {
            mutation: Mutation::HardStateBeforeEntriesSynced,
            description: "follower acknowledges entries once its term/vote record is durable, before the entries' own record is",
            seen_in: "etcd PR 8455 (entries must reach the WAL before the HardState that refers to them)",
            expected: COMMITTED_DURABLE_ON_MAJORITY,
            // s2 hears of term 1 from the leader's first AppendEntries carrying the entry: one
            // step writes the term and the entry, and the reply waits for the term alone.
            // Deferred storage is enough: the reply between the two records splits them into
            // two flushes (atomic storage makes both durable in the step and cannot show it).
            config: Bounds {
                servers: 3,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                persistence: Persistence::Deferred,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::AppendWithoutTruncate,
            description: "follower replaces a conflicting suffix in memory but writes only the new entries to its log",
            seen_in: "rule: raft-rs Ready docs (entries may overwrite a suffix of the log)",
            // The bug's first write-up expects Log Matching after a restart, which needs a third term and more
            // (a bounded BFS at 3 servers, 3 terms, 3 entries found none; the README has its figures).
            // The stale suffix breaks the persistence contract itself at once: the log record
            // does not replay to the follower's log.
            expected: STORAGE_REPLAYS_TO_MEMORY,
            // A deposed leader's second entry, appended after the new leader's first reached
            // it, stays on its disk past the new leader's entry. Any storage mode shows it: the
            // record is wrong whenever it becomes durable.
            config: Bounds {
                servers: 3,
                max_term: 2,
                max_log: 2,
                proposals: 3,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::PreVoteCountedAsVote,
            description: "with PreVote, a candidate counts a late pre-vote grant (same term) as a vote",
            seen_in: "canonical/raft #196, fixed by PR 248 (pre_vote flag in RequestVoteResult)",
            expected: ELECTION_SAFETY,
            // s0 stands for term 1 on one pre-vote grant and counts the other, late, as a
            // vote: it leads term 1. That voter recorded no vote, so it pre-votes and votes
            // for s1, which wins term 1 too. One message in flight, or a lossless network
            // (which then refuses the steps whose sends do not fit), and it holds.
            config: Bounds {
                servers: 3,
                max_term: 1,
                max_log: 0,
                proposals: 0,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                pre_vote: true,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::PurgeBeforeSnapshotDurable,
            description: "the log prefix is purged from disk before the snapshot that replaces it is durable",
            seen_in: "openraft PR 753 (purge logs covered by the snapshot); 6.5840 save(state, snapshot) is one atomic step",
            expected: COMMITTED_DURABLE_ON_MAJORITY,
            // A write-ahead log makes the purge durable first: s0 snapshots its committed
            // entry, and from the purge's flush until the install record's, its disk holds the
            // entry neither in the log nor in a snapshot (recovery would refuse to start). With
            // two servers that is one of the two a majority needs; no crash is needed, the
            // disk's content is what the property reads.
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_RELIABLE,
                persistence: Persistence::Wal,
                max_snapshots: 1,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::SnapshotDiscardsMatchingSuffix,
            description: "on InstallSnapshot a follower drops its whole log even when the snapshot's last entry matches",
            seen_in: "rule: Raft paper Fig. 13 step 6; openraft PRs 559/561",
            expected: COMMITTED_DURABLE_ON_MAJORITY,
            // s2 holds entries 1 and 2, but its acknowledgement is still in flight when s0
            // snapshots at 1 and sends it the snapshot: s2 drops entry 2, then the old
            // acknowledgement arrives and s0 commits 2 on itself and s2, which no longer has it.
            // Two messages in flight: the acknowledgement and the snapshot.
            config: Bounds {
                servers: 3,
                max_term: 1,
                max_log: 2,
                proposals: 2,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_LOSSY,
                max_snapshots: 1,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::SnapshotRegress,
            description: "a follower installs a snapshot older than what it already applied",
            seen_in: "6.5840 3D \"snapshot index went backwards\"; openraft snapshot ordering fixes",
            expected: properties::APPLIED_NEVER_BACK,
            // s2 has applied entry 1 when s0, which lost s2's acknowledgement, snapshots at 1
            // and sends it the snapshot: s2 installs it anyway, its state machine replaced by
            // one no newer than what it had.
            config: Bounds {
                servers: 3,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_LOSSY,
                max_snapshots: 1,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::SnapshotTermAsCurrent,
            description: "installing a snapshot sets the current term to the snapshot's last term (the term goes back)",
            seen_in: "willemt/raft PR 118 (bug 4 of the SandTable paper)",
            expected: ELECTION_SAFETY,
            // s2, a follower in term 2, installs s1's snapshot, whose last entry is of term 1:
            // it is back in term 1 with its vote forgotten, stands for term 2 again and wins
            // it beside s1.
            config: Bounds {
                servers: 3,
                max_term: 2,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_LOSSY,
                max_snapshots: 1,
                ..BASE
            },
            kv: NO_KV,
        },
    ]
}

/// What checking one bug in its catalog configuration found.
#[derive(Clone, Debug)]
pub struct BugRun {
    /// The safety properties violated in the last state of the counterexample, in the order of
    /// [`properties::all`]; empty if none was found.
    pub violated: Vec<&'static str>,
    /// The counterexample to the expected property, if one was found.
    pub trace: Option<Path<State, Action>>,
    pub unique_states: usize,
    pub elapsed: Duration,
}

impl BugRun {
    /// The expected property was violated.
    pub fn caught(&self) -> bool {
        self.trace.is_some()
    }

    /// Steps of the counterexample.
    pub fn trace_len(&self) -> Option<usize> {
        self.trace.as_ref().map(|p| p.clone().into_actions().len())
    }
}

/// Checks `bug` in its catalog configuration with `strategy` on one thread (BFS: the
/// counterexample is a shortest one, which the table reports; DFS finds a longer one on far
/// fewer states when the shortest is deep, as Figure 8's is). The search runs until the
/// *expected* property is violated (or the space is exhausted), not until the first violation:
/// a bug often breaks another property a few steps earlier (Figure 8 elects a leader lacking a
/// committed entry before that leader overwrites it), and the catalog's claim is about the
/// expected one.
///
/// # Panics
/// If the entry expects a property its model does not have: a defect of the catalog itself,
/// which `tests/bugs.rs` rules out.
pub fn run(bug: &Bug, strategy: Strategy) -> BugRun {
    run_with(bug, strategy, Reductions::ALL)
}

/// [`run`] with `reductions` instead of every reduction: a reduction that hid a bug would show
/// here as a bug caught with it off and not with it on.
pub fn run_with(bug: &Bug, strategy: Strategy, reductions: Reductions) -> BugRun {
    let model = bug.model().with_reductions(reductions);
    assert!(
        model.properties().iter().any(|p| p.name == bug.expected),
        "{}: no property named {}",
        bug.mutation,
        bug.expected
    );
    let options = CheckOptions {
        strategy,
        threads: 1,
        until: Until::Found(bug.expected),
        max_states: None,
        progress: None,
    };
    let report = check::run(model.clone(), &options);
    let trace = report
        .properties
        .into_iter()
        .find(|p| p.name == bug.expected)
        .and_then(|p| p.path);
    let violated = trace.as_ref().map_or_else(Vec::new, |path| {
        let last = path.last_state();
        model
            .properties()
            .into_iter()
            .filter(|p| p.expectation.discovery_is_failure() && !(p.condition)(&model, last))
            .map(|p| p.name)
            .collect()
    });
    BugRun {
        violated,
        trace,
        unique_states: report.unique_states,
        elapsed: report.elapsed,
    }
}

/// The last line of `raftcheck bugs`: `caught` is whether every bug was caught, `None`
/// without `--run`.
pub fn verdict(bugs: usize, caught: Option<bool>) -> String {
    match caught {
        None => format!("verdict: LISTED, {bugs} bugs (--run checks each in its configuration)"),
        Some(true) => format!("verdict: PASS, each of the {bugs} bugs was caught"),
        Some(false) => format!("verdict: FAIL, not every one of the {bugs} bugs was caught"),
    }
}

/// Prints the catalog as a table and, given `reductions`, checks every bug breadth first with
/// them and adds what was found, the list of violated properties last since it is the only
/// column of unbounded width. Returns whether every bug the model can express was caught
/// (always true without `reductions`).
pub fn print_table(reductions: Option<Reductions>) -> bool {
    let run_checks = reductions.is_some();
    if let Some(off) = reductions.map(|r| r.off()).filter(|off| !off.is_empty()) {
        println!("reductions off: {}", off.join(", "));
        println!();
    }
    let bugs = catalog();
    let width = |f: fn(&Bug) -> usize| bugs.iter().map(f).max().unwrap_or(0);
    let wn = width(|b| b.mutation.name().len());
    let wd = width(|b| b.description.len());
    let ws = width(|b| b.seen_in.len());
    let we = width(|b| b.expected.len());
    let row = |cells: [&str; 4], rest: &str| {
        let [name, description, seen_in, expected] = cells;
        let line =
            format!("{name:<wn$}  {description:<wd$}  {seen_in:<ws$}  {expected:<we$}  {rest}");
        println!("{}", line.trim_end());
        // Checking a row can take seconds: show each one as soon as it is known.
        let _ = std::io::stdout().flush();
    };
    let header = ["bug", "wrong behaviour", "seen in", "expected to violate"];
    row(
        header,
        if run_checks {
            "verdict     trace     states  seconds  found violated"
        } else {
            ""
        },
    );
    let mut all_caught = true;
    for bug in &bugs {
        let cells = [
            bug.mutation.name(),
            bug.description,
            bug.seen_in,
            bug.expected,
        ];
        let rest = match reductions.map(|r| run_with(bug, Strategy::Bfs, r)) {
            None => String::new(),
            Some(r) => {
                all_caught &= r.caught();
                format!(
                    "{:<10}  {:>5}  {:>9}  {:>7.2}  {}",
                    if r.caught() { "caught" } else { "NOT CAUGHT" },
                    r.trace_len().map_or("-".to_string(), |n| n.to_string()),
                    r.unique_states,
                    r.elapsed.as_secs_f64(),
                    r.violated.join(", ")
                )
            }
        };
        row(cells, &rest);
    }
    println!();
    println!("Counterexamples:");
    for bug in &bugs {
        println!("  {}", bug.command());
    }
    println!();
    println!("{}", verdict(bugs.len(), run_checks.then_some(all_caught)));
    all_caught
}
