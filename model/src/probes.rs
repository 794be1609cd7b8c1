//! The probes of issue 11: deliberate bugs written after the model and its properties, one per
//! rule of Figure 2, to measure how general the checker is. The catalog ([`crate::catalog`])
//! shows that every property *can* fail; the probes ask whether the checker finds mistakes it
//! was never tuned for ("a checker is as good as the bugs it finds without being told where to
//! look"). They are [`Mutation::PROBES`], kept out of the catalog and `raftcheck bugs` because
//! they are instruments, not bugs that shipped anywhere.
//!
//! One probe breaks no rule: `panic-on-stale-reply` makes the core panic, to show that a
//! panicking core is reported as a violation of "no step panics" with its trace
//! ([`crate::panics`]) rather than crashing the checker.
//!
//! Each entry reuses the catalog's [`Bug`], so [`crate::catalog::run`] checks it and
//! [`Bug::command`] prints the command that reproduces it; `seen_in` names the rule the probe
//! breaks instead of a place it was seen. `config` is a small configuration found by hand in
//! which breadth-first search catches the probe (`tests/probes.rs` pins it), not necessarily a
//! minimal one; the README's generality table records what the *default* check finds.

use raft_impl::Mutation;

use crate::bounds::{Bounds, KvBounds};
use crate::catalog::{Bug, BASE, NO_KV, ORDERED_LOSSY, ORDERED_RELIABLE, REORDERING_RELIABLE};
use crate::properties::*;

/// Probes no configuration tried catches. `overwrite-without-truncate` needs a follower holding
/// a stale suffix *behind* the conflicting entry while the new leader, whose log conflicts with
/// it, wins an election: in three (or four) servers the only logs that can hold that suffix
/// belong to the voters such a leader needs, and they refuse it. Five servers and three
/// proposals are the least; there, neither breadth-first nor depth-first search found it in the
/// runs the README records.
///
/// `stale-append-reply-counted` (issue 22) needs a leader that leads twice with its log cut back
/// in between by a leader elected without the followers that acknowledged it (three terms, five
/// servers) and that follower's reply still in flight: no small configuration holds it. The
/// README says what `raftcheck swarm` finds of both.
///
/// `install-keeps-conflicting-suffix` was here until Log Matching was extended through the
/// snapshot boundary (a snapshot's last index and term count as an entry): see its entry.
///
/// `snapshot-never-sent` is a liveness bug (a follower the leader compacted past is left
/// behind), so no safety property can catch it, by design: what shows it is the reachability
/// property "a follower catches up by InstallSnapshot", reported not reached under it on
/// `--preset snapshots` (`tests/snapshot_reachability.rs`), the one bug that property fails
/// under.
pub const UNCAUGHT: [Mutation; 3] = [
    Mutation::OverwriteWithoutTruncate,
    Mutation::StaleAppendReplyCounted,
    Mutation::SnapshotNeverSent,
];

/// Every probe that some configuration catches, in [`Mutation::PROBES`] order (the others are
/// [`UNCAUGHT`]).
pub fn probes() -> Vec<Bug> {
    vec![
        Bug {
            mutation: Mutation::VoteIgnoresVotedFor,
            description: "vote granted when voted_for names another candidate of the term",
            seen_in: "probe: votes",
            expected: ELECTION_SAFETY,
            // Two candidates of term 1 grant each other's request: two leaders.
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 0,
                proposals: 0,
                max_crashes: 0,
                max_in_flight: 2,
                network: ORDERED_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::VoteTallyNotReset,
            description: "candidate keeps the vote tally of its previous election",
            seen_in: "probe: votes",
            expected: ELECTION_SAFETY,
            // The term-1 leader, deposed in term 2, wins term 3 on its term-1 tally alone while
            // the third server wins term 3 with a real vote.
            config: Bounds {
                servers: 3,
                max_term: 3,
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
            mutation: Mutation::CommitCountsSelfTwice,
            description: "leader counts its own copy twice when counting replicas",
            seen_in: "probe: commit",
            expected: COMMITTED_DURABLE_ON_MAJORITY,
            // The leader alone is a majority of two: it commits its entry on proposing it.
            config: Bounds {
                servers: 3,
                max_term: 1,
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
            mutation: Mutation::MatchFromLeaderLog,
            description: "leader sets match_index to its own last index on any success",
            seen_in: "probe: progress tracking",
            expected: COMMITTED_DURABLE_ON_MAJORITY,
            // The reply to the first, empty heartbeat arrives after a proposal and is taken
            // for an acknowledgement of it.
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::TruncateAfterConflict,
            description: "follower truncates after the conflicting entry, keeping it",
            seen_in: "probe: truncation",
            expected: STATE_MACHINE_SAFETY,
            // The deposed term-1 leader keeps its own entry at index 1 in front of the term-2
            // leader's committed one, and applies it.
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
            mutation: Mutation::AcceptStaleTermAppend,
            description: "follower accepts an AppendEntries of an older term",
            seen_in: "probe: terms",
            expected: COMMITTED_NEVER_OVERWRITTEN,
            // A deposed leader's AppendEntries, still in flight, replaces the entry the new
            // leader committed.
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
            mutation: Mutation::ApplyNewestOnly,
            description: "server applies only the newest entry when several commit at once",
            seen_in: "probe: applying (written with the property it breaks)",
            expected: APPLIED_IN_ORDER,
            // The leader commits two entries with one reply and applies only the second.
            config: Bounds {
                servers: 2,
                max_term: 1,
                max_log: 2,
                proposals: 2,
                max_crashes: 0,
                max_in_flight: 1,
                network: ORDERED_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::PanicOnStaleReply,
            description: "core indexes its log out of range on a stale AppendEntries reply",
            seen_in: "probe: robustness",
            expected: NO_STEP_PANICS,
            // The term-1 leader, deposed by the other server's term-2 vote request, receives
            // the acknowledgement of its first heartbeat late: its log is empty.
            config: Bounds {
                servers: 2,
                max_term: 2,
                max_log: 0,
                proposals: 0,
                max_crashes: 0,
                max_in_flight: 2,
                network: REORDERING_RELIABLE,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::ExpiredSessionAppliedAsNew,
            description: "KV store applies a write of an expired session as the first of a new one",
            seen_in: "probe: KV sessions (dissertation §6.3)",
            expected: LINEARIZABLE,
            // c0 registers and appends; its reply is lost (a timeout); log time passes the
            // session timeout; the retry, stamped later, expires the session it belongs to and
            // is applied again, and c0's read sees its digit twice.
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
                expiries: 1,
            },
        },
        Bug {
            mutation: Mutation::CommitQuorumOfAcked,
            description: "leader commits on a majority of the followers that acknowledged",
            seen_in: "probe: commit (issue 22)",
            expected: COMMITTED_DURABLE_ON_MAJORITY,
            // The leader and the one follower that acknowledged its entry are two of two: it
            // commits on two of four. Three servers cannot show it (two are a majority there).
            config: Bounds {
                servers: 4,
                max_term: 1,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                max_in_flight: 3,
                network: ORDERED_LOSSY,
                ..BASE
            },
            kv: NO_KV,
        },
        Bug {
            mutation: Mutation::InstallAtCommitIndex,
            description: "a follower installs a snapshot that ends at its commit index",
            seen_in: "probe: snapshots (Figure 13, install only past the commit index)",
            expected: APPLIED_NEVER_BACK,
            // s2 has applied entry 1 when s0's snapshot of it arrives: installed, it replaces
            // a state machine that was already that far (the configuration of
            // snapshot-regress).
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
            mutation: Mutation::InstallKeepsConflictingSuffix,
            description: "a follower keeps the entries after an installed snapshot whose last entry conflicts",
            seen_in: "probe: snapshots (Figure 13, step 7: a conflicting suffix goes)",
            expected: LOG_MATCHING,
            // s0 leads term 1 and appends entries 1 and 2 to its own log only; s1 wins term 2
            // with s2's vote, commits its own entry 1 on s2 and snapshots at 1:2. s0 installs
            // that snapshot and keeps its entry 2 of term 1 after it: its terms go down across
            // the snapshot's last entry, a log no leader wrote. Three proposals: two of s0's,
            // one of s1's.
            config: Bounds {
                servers: 3,
                max_term: 2,
                max_log: 2,
                proposals: 3,
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

/// The configuration that shows `mutation`: its catalog entry, or its probe entry.
pub fn configuration(mutation: Mutation) -> Option<Bug> {
    let mut catalog = crate::catalog::catalog().into_iter();
    catalog
        .find(|b| b.mutation == mutation)
        .or_else(|| probe(mutation))
}

/// The probe's entry, if some configuration catches it (`None` for [`UNCAUGHT`] ones).
pub fn probe(mutation: Mutation) -> Option<Bug> {
    probes().into_iter().find(|b| b.mutation == mutation)
}
