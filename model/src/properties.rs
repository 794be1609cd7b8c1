//! The properties checked on every reachable state, written against Raft's guarantees (the
//! paper's Figure 3) and the ghost history, never against particular bugs.
//!
//! They are generic over the model: a property reads the state and, at most, the model's
//! [`Bounds`]. So this module does not depend on the model that lists these properties.

use raft_impl::{HardState, Index, Message, MutationSet, Node, Role, Rules};
use stateright::{Model, Property};

use crate::bounds::{Bounds, KvBounds};
use crate::snapshot;
use crate::state::{Cmd, Event, State, Violation};

/// Election Safety: at most one leader per term, ever (history, so a crashed or deposed leader
/// still counts, and so does a server that wins the same term twice).
pub const ELECTION_SAFETY: &str = "election safety";
/// Leader Append-Only: a leader never overwrites or deletes entries of its own log.
pub const LEADER_APPEND_ONLY: &str = "leader append-only";
/// Log Matching: two logs with an entry of the same index and term agree up to it (a
/// snapshot's last index and term count as an entry, and its data as the commands before it).
pub const LOG_MATCHING: &str = "log matching";
/// Leader Completeness: a leader of a term after the one an entry was committed in holds it.
pub const LEADER_COMPLETENESS: &str = "leader completeness";
/// State Machine Safety: no two servers ever apply different commands at one index.
pub const STATE_MACHINE_SAFETY: &str = "state machine safety";
/// A server that holds an index as committed holds the committed entry there, forever.
pub const COMMITTED_NEVER_OVERWRITTEN: &str = "committed never overwritten";
/// Every committed entry is in the durable (persisted) logs of a majority.
pub const COMMITTED_DURABLE_ON_MAJORITY: &str = "committed durable on majority";
/// A server's commit index never decreases while it stays up.
pub const COMMIT_INDEX_MONOTONIC: &str = "commit index monotonic";
/// A leader's match index for a peer never decreases within its term.
pub const MATCH_INDEX_MONOTONIC: &str = "match index monotonic";
/// Every running server applies indices 1, 2, 3, … in order, each once per incarnation.
pub const APPLIED_IN_ORDER: &str = "applied in order, once";
/// No step panics: the core, the service and the model code run every step to its end (see
/// [`crate::panics`]). Not a guarantee of Raft's, but a panic is a bug the user must see with
/// the path that leads to it.
pub const NO_STEP_PANICS: &str = "no step panics";
/// The persistence contract (`raft_impl::Effect`): a running server's durable state, with its
/// pending records replayed onto it in order, is exactly the state it runs with. So a restart
/// once everything is synced recovers what the server had, no more (a stale entry the records
/// failed to truncate) and no less (a term or vote they failed to carry).
pub const STORAGE_REPLAYS_TO_MEMORY: &str = "storage replays to the running state";

/// The KV clients' operations have a linearization consistent with their real-time order
/// (only with KV clients).
pub const LINEARIZABLE: &str = "linearizable";

pub const LEADER_ELECTED: &str = "a leader is elected";
pub const ENTRY_COMMITTED: &str = "an entry is committed";
pub const SURVIVES_MAJORITY_RESTART: &str = "a commit survives a majority restart";
pub const LEADER_REPLACED_AFTER_COMMIT: &str = "a leader is replaced after a commit";
pub const RESTART_WITH_LOG: &str = "a server restarts with a non-empty log";
/// Coverage: a message sent in an older term is in flight to a server that has since moved to
/// a newer term (an election started after it was sent): stale messages meet new elections.
pub const STALE_MESSAGE_MEETS_NEWER_TERM: &str = "an old-term message reaches a newer term";
/// Coverage: a granted vote of an older term is in flight to a candidate that has moved on to
/// a newer election.
pub const STALE_VOTE_MEETS_CANDIDATE: &str = "an old vote reaches a newer candidate";
/// Coverage: an AppendEntries of a deposed leader is in flight to a server that already
/// follows in a newer term, one that has elected its leader.
pub const DEPOSED_APPEND_MEETS_FOLLOWER: &str = "a deposed leader's append reaches a new follower";
/// With PreVote: a pre-candidate of term t, whose election would raise the cluster to t + 1, is
/// told no by a voter still in term t while a leader of term t runs (see [`pre_vote`]).
pub const PREVOTE_STOPS_DISRUPTION: &str = "a PreVote stops a disruptive candidate";
/// Every KV client completed its workload (only with KV clients).
pub const CLIENTS_DONE: &str = "every client completes its workload";

/// With snapshots: a server's state machine never goes back, neither by installing a snapshot
/// at or below what it applied nor by a durable snapshot replaced with an older one (where a
/// restart starts).
pub const APPLIED_NEVER_BACK: &str = "applied state never goes back";
/// With snapshots: a follower installed a snapshot its leader sent (InstallSnapshot).
pub const CAUGHT_UP_BY_INSTALL: &str = "a follower catches up by InstallSnapshot";
/// With snapshots: a server restarted from a snapshot on its disk.
pub const RESTART_FROM_SNAPSHOT: &str = "a server restarts from a snapshot";
/// With snapshots: a follower installed a snapshot and kept the entries after it, which
/// matched (Figure 13, step 6).
pub const INSTALL_KEEPS_SUFFIX: &str = "a snapshot install keeps a matching suffix";

/// Every property, safety ones first.
pub fn all<M: Model<State = State> + AsRef<Bounds>>() -> Vec<Property<M>> {
    vec![
        Property::always(ELECTION_SAFETY, election_safety),
        Property::always(LEADER_APPEND_ONLY, |_: &M, s: &State| {
            !s.ghost.saw(Violation::LeaderAppendOnly)
        }),
        Property::always(LOG_MATCHING, log_matching),
        Property::always(LEADER_COMPLETENESS, leader_completeness),
        Property::always(STATE_MACHINE_SAFETY, |_: &M, s: &State| {
            !s.ghost.saw(Violation::StateMachineSafety)
        }),
        Property::always(COMMITTED_NEVER_OVERWRITTEN, |_: &M, s: &State| {
            !s.ghost.saw(Violation::CommittedOverwritten)
        }),
        Property::always(COMMITTED_DURABLE_ON_MAJORITY, durable_on_majority),
        Property::always(COMMIT_INDEX_MONOTONIC, |_: &M, s: &State| {
            !s.ghost.saw(Violation::CommitIndexDecreased)
        }),
        Property::always(MATCH_INDEX_MONOTONIC, |_: &M, s: &State| {
            !s.ghost.saw(Violation::MatchIndexDecreased)
        }),
        Property::always(APPLIED_IN_ORDER, |_: &M, s: &State| {
            !s.ghost.saw(Violation::AppliedOutOfOrder)
        }),
        Property::always(NO_STEP_PANICS, |_: &M, s: &State| s.panicked.is_none()),
        Property::always(STORAGE_REPLAYS_TO_MEMORY, storage_replays_to_memory),
        Property::sometimes(LEADER_ELECTED, |_: &M, s: &State| {
            s.ghost.leaders.iter().any(|l| *l != 0)
        }),
        Property::sometimes(ENTRY_COMMITTED, |_: &M, s: &State| {
            !s.ghost.committed.is_empty()
        }),
        Property::sometimes(SURVIVES_MAJORITY_RESTART, survives_majority_restart),
        Property::sometimes(LEADER_REPLACED_AFTER_COMMIT, leader_replaced_after_commit),
        Property::sometimes(RESTART_WITH_LOG, |_: &M, s: &State| {
            s.ghost.restarted_since_commit != 0
        }),
        Property::sometimes(STALE_MESSAGE_MEETS_NEWER_TERM, |_: &M, s: &State| {
            in_flight_to_newer_term(s).next().is_some()
        }),
        Property::sometimes(STALE_VOTE_MEETS_CANDIDATE, |_: &M, s: &State| {
            in_flight_to_newer_term(s).any(|(msg, to)| {
                matches!(msg, Message::RequestVoteReply { granted: true, .. })
                    && to.role() == Role::Candidate
            })
        }),
        Property::sometimes(DEPOSED_APPEND_MEETS_FOLLOWER, |_: &M, s: &State| {
            // A leader of the follower's term is in the ghost history, not its `leader_hint`:
            // the hint changes no step, so the state's hash leaves it out, and a property that
            // read it would be reached or not depending on which twin the search met first.
            in_flight_to_newer_term(s).any(|(msg, to)| {
                matches!(msg, Message::AppendEntries { .. })
                    && to.role() == Role::Follower
                    && (s.ghost.leaders.get(to.current_term() as usize)).is_some_and(|l| *l != 0)
            })
        }),
    ]
}

/// The log entries one KV client's workload takes: its registration, its write and its read,
/// or the first two where a leader answers reads locally.
fn entries_per_client(b: &Bounds) -> usize {
    if b.mutations.reads_locally() {
        2
    } else {
        3
    }
}

/// Why the bounds make reachability property `name` impossible, naming the bound, or `None`
/// when they do not (as far as these simple arguments go: a property not reached for any
/// other reason is a finding). `check` reports such a property as not reachable rather than
/// not reached, and does not count it as a failure.
pub fn impossible(name: &str, b: &Bounds, kv: &KvBounds) -> Option<&'static str> {
    let election =
        b.servers > 1 && !b.network.lossy && b.max_in_flight < usize::from(b.servers) - 1;
    // KV clients' requests are log entries too.
    let commit = b.max_log == 0 || (b.proposals == 0 && !kv.enabled());
    match name {
        LEADER_ELECTED if election => {
            Some("an election needs --max-in-flight >= servers - 1 on a lossless network")
        }
        ENTRY_COMMITTED
        | LEADER_REPLACED_AFTER_COMMIT
        | SURVIVES_MAJORITY_RESTART
        | RESTART_WITH_LOG
            if commit =>
        {
            Some("needs --max-log >= 1 and --proposals >= 1 (or KV clients)")
        }
        SURVIVES_MAJORITY_RESTART | RESTART_WITH_LOG if b.max_crashes == 0 => {
            Some("needs --max-crashes >= 1")
        }
        LEADER_REPLACED_AFTER_COMMIT
        | STALE_MESSAGE_MEETS_NEWER_TERM
        | STALE_VOTE_MEETS_CANDIDATE
        | DEPOSED_APPEND_MEETS_FOLLOWER
            if b.max_term < 2 =>
        {
            Some("needs --max-term >= 2")
        }
        // The refusal is for a log behind the voter's: an entry the pre-candidate lacks.
        CAUGHT_UP_BY_INSTALL | RESTART_FROM_SNAPSHOT | INSTALL_KEEPS_SUFFIX
            if commit || b.max_snapshots == 0 =>
        {
            Some("needs --max-snapshots >= 1, --max-log >= 1 and --proposals >= 1 (or KV clients)")
        }
        CAUGHT_UP_BY_INSTALL | INSTALL_KEEPS_SUFFIX if b.servers < 2 => Some("needs 2 servers"),
        // With two servers a majority is both, so the follower holds every committed entry, and
        // so every entry a snapshot covers: a leader sends InstallSnapshot only when a rejection
        // of an older term's AppendEntries, carrying the newer term, takes its next index below
        // its snapshot. That stale request is in flight while the election of the newer term
        // is (its RequestVote or the grant), two messages at once.
        CAUGHT_UP_BY_INSTALL | INSTALL_KEEPS_SUFFIX if b.servers == 2 && b.max_in_flight < 2 => {
            Some("needs 3 servers, or 2 with --max-in-flight >= 2")
        }
        RESTART_FROM_SNAPSHOT if b.max_crashes == 0 => Some("needs --max-crashes >= 1"),
        // A suffix after the snapshot: a second entry, beyond the one the snapshot covers.
        // (A KV client's registration and write are two entries.)
        INSTALL_KEEPS_SUFFIX if b.max_log < 2 || (b.proposals < 2 && !kv.enabled()) => {
            Some("needs --max-log >= 2 and --proposals >= 2 (or KV clients)")
        }
        PREVOTE_STOPS_DISRUPTION if commit || b.max_term < 2 || b.servers < 2 => {
            Some("needs 2 servers, --max-term >= 2, --max-log >= 1 and --proposals >= 1")
        }
        // Each client's registration, write and read are entries of its own, each committed
        // before the next is sent, and no entry leaves the log's index space (a snapshot
        // compacts entries, it does not free their indices). A read answered locally
        // (stale-read) takes none.
        CLIENTS_DONE if b.max_log < usize::from(kv.clients) * entries_per_client(b) => {
            Some("needs --max-log >= 3 per KV client (2 under stale-read): its registration, write and read")
        }
        STALE_MESSAGE_MEETS_NEWER_TERM | STALE_VOTE_MEETS_CANDIDATE if b.servers < 2 => {
            Some("needs 2 servers")
        }
        // With two servers the deposed leader must itself win a newer term for the other to
        // follow someone: it has to stop leading first, by a crash or by a third term. And the
        // follower learns of its new reign only from a message of it (its AppendEntries or
        // InstallSnapshot), delivered while the old AppendEntries is in flight: two at once.
        DEPOSED_APPEND_MEETS_FOLLOWER
            if b.servers < 3
                && (b.servers < 2
                    || (b.max_crashes == 0 && b.max_term < 3)
                    || b.max_in_flight < 2) =>
        {
            Some("needs 3 servers, or 2 with a crash or a third term and --max-in-flight >= 2")
        }
        _ => None,
    }
}

/// The properties of KV clients, for a model that has them.
pub fn kv<M: Model<State = State>>() -> Vec<Property<M>> {
    vec![
        Property::always(LINEARIZABLE, |_: &M, s: &State| {
            s.clients.as_ref().is_none_or(|c| c.linearizable())
        }),
        Property::sometimes(CLIENTS_DONE, |_: &M, s: &State| {
            s.clients
                .as_ref()
                .is_some_and(|c| c.slots.iter().all(|slot| slot.done()))
        }),
    ]
}

/// The property of PreVote, for a model that has it: sometimes a refusal of a PreVote is in
/// flight to its pre-candidate, from a voter that kept its term (the refusal carries the
/// pre-candidate's own term), while a leader of that term is running. Without PreVote that
/// server's timeout would have made it a candidate of the next term, and its RequestVote would
/// have made the voter, and soon the leader, leave the running leader's term.
pub fn pre_vote<M: Model<State = State>>() -> Vec<Property<M>> {
    vec![Property::sometimes(
        PREVOTE_STOPS_DISRUPTION,
        |_: &M, s: &State| {
            s.network.iter().any(|env| {
                let Message::PreVoteReply {
                    term,
                    granted: false,
                } = env.msg
                else {
                    return false;
                };
                let leads = |n: &Node<Cmd, MutationSet>| n.is_leader() && n.current_term() == term;
                s.node(env.to)
                    .is_some_and(|to| to.role() == Role::PreCandidate && to.current_term() == term)
                    && (0..s.servers.len() as u8).any(|id| s.node(id).is_some_and(leads))
            })
        },
    )]
}

/// The properties of snapshots, for a model that takes them (`--max-snapshots`). The others are
/// extended to snapshots where they read logs: a committed entry is held either in a log or in
/// a snapshot's data ([`snapshot::holds`]), and State Machine Safety covers a state machine
/// replaced by an installed or restored snapshot.
pub fn snapshots<M: Model<State = State>>() -> Vec<Property<M>> {
    vec![
        Property::always(APPLIED_NEVER_BACK, |_: &M, s: &State| {
            !s.ghost.saw(Violation::AppliedWentBack)
        }),
        Property::sometimes(CAUGHT_UP_BY_INSTALL, |_: &M, s: &State| {
            s.ghost.has(Event::CaughtUpByInstall)
        }),
        Property::sometimes(RESTART_FROM_SNAPSHOT, |_: &M, s: &State| {
            s.ghost.has(Event::RestartedFromSnapshot)
        }),
        Property::sometimes(INSTALL_KEEPS_SUFFIX, |_: &M, s: &State| {
            s.ghost.has(Event::InstallKeptSuffix)
        }),
    ]
}

/// The messages in flight whose receiver is up and in a newer term than the message's, with
/// that receiver.
fn in_flight_to_newer_term(
    s: &State,
) -> impl Iterator<Item = (&Message<Cmd>, &Node<Cmd, MutationSet>)> {
    s.network.iter().filter_map(|env| {
        let to = s.node(env.to)?;
        (env.msg.term() < to.current_term()).then_some((&env.msg, to))
    })
}

fn storage_replays_to_memory<M>(_: &M, s: &State) -> bool {
    s.servers.iter().all(|server| {
        let Some(node) = &server.node else {
            return true;
        };
        if server.pending.is_empty() {
            return *server.durable == *node.hard_state();
        }
        let mut replayed = HardState::clone(&server.durable);
        server
            .pending_writes()
            .flatten()
            .all(|record| replayed.apply(record.clone()).is_ok())
            && replayed == *node.hard_state()
    })
}

fn election_safety<M>(_: &M, s: &State) -> bool {
    !s.ghost.saw(Violation::SecondLeader) && s.ghost.leaders.iter().all(|l| l.count_ones() <= 1)
}

/// Every log in the state, with the snapshot it starts after: the running nodes' and every
/// durable one. A durable log equal to its server's running log (the usual case) is left out:
/// it matches or fails to match every other log exactly as that running log does, so log
/// matching holds with it iff without it.
fn logs(s: &State) -> impl Iterator<Item = &HardState<Cmd>> {
    s.servers.iter().flat_map(|server| {
        let running = server.node.as_ref().map(|n| n.hard_state());
        let durable = &*server.durable;
        let same = |r: &HardState<Cmd>| r.snapshot == durable.snapshot && r.log == durable.log;
        running
            .into_iter()
            .chain((!running.is_some_and(same)).then_some(durable))
    })
}

/// Log Matching, through the snapshot boundary. A snapshot holds an entry at its last index,
/// of its last term, and the commands of every entry up to it: so a log is its snapshot's
/// commands, that last (index, term), then its entries ([`snapshot::slot`]). Two such logs
/// that hold the same term at an index (an entry, or a snapshot's last one) agree on every
/// index up to it: the same command, and the same term wherever both know one. This is the
/// paper's rule where no snapshot is involved, and it compares a log's entries with another's
/// snapshot rather than only the indices both still hold as entries.
///
/// And every log's terms never go down from one index to the next, its snapshot's last entry
/// included. This is Log Matching with the log of the entry's own leader, which may exist no
/// more: an entry of term t at index i + 1 was appended by the leader of t after its entry at
/// i, whose term is at most t (a leader's log holds no term above its own), so every log that
/// holds the entry holds, at i, an entry of a term at most t. Figure 13 keeps the entries
/// after a snapshot only when the log holds the snapshot's last entry (step 6); a log that
/// keeps them after a conflicting one (step 7 says drop them) holds entries that followed
/// another entry at that index: the first rule finds that against any log that still holds
/// one of them, the second when the conflicting term was the newer one.
fn log_matching<M>(_: &M, s: &State) -> bool {
    logs(s).all(terms_never_decrease)
        && logs(s).enumerate().all(|(i, a)| {
            logs(s).skip(i + 1).all(|b| {
                let last = a.last_index().min(b.last_index());
                let slots = |k: Index| snapshot::slot(a, k).zip(snapshot::slot(b, k));
                // It suffices to check below the highest index where the terms agree.
                let agree = (1..=last)
                    .rev()
                    .find(|&k| slots(k).is_some_and(|((ta, _), (tb, _))| ta.is_some() && ta == tb));
                agree.is_none_or(|k| {
                    (1..=k).all(|j| match slots(j) {
                        Some(((ta, ca), (tb, cb))) => {
                            ca.is_some() && ca == cb && (ta.is_none() || tb.is_none() || ta == tb)
                        }
                        None => false,
                    })
                })
            })
        })
}

/// Whether log `hard`'s terms never go down, from its snapshot's last entry on.
fn terms_never_decrease(hard: &HardState<Cmd>) -> bool {
    let mut last = hard.snapshot_term();
    hard.log.iter().all(|e| {
        let up = e.term >= last;
        last = e.term;
        up
    })
}

fn leader_completeness<M>(_: &M, s: &State) -> bool {
    let leaders = s.servers.iter().filter_map(|server| server.node.as_ref());
    leaders.filter(|n| n.role() == Role::Leader).all(|leader| {
        s.ghost.committed.iter().enumerate().all(|(i, c)| {
            leader.current_term() <= c.commit_term
                || snapshot::holds(leader.hard_state(), i as Index + 1, c)
        })
    })
}

fn durable_on_majority<M: AsRef<Bounds>>(m: &M, s: &State) -> bool {
    let majority = m.as_ref().majority();
    s.ghost.committed.iter().enumerate().all(|(i, c)| {
        let holders = s
            .servers
            .iter()
            .filter(|server| snapshot::durable_holds(server, i as Index + 1, c));
        holders.count() >= majority
    })
}

/// A majority restarted (from non-empty logs) after the first commit, and one of the restarted
/// servers has since learned again that the entry is committed: the commit outlived their
/// volatile state.
fn survives_majority_restart<M: AsRef<Bounds>>(m: &M, s: &State) -> bool {
    let restarted = s.ghost.restarted_since_commit;
    restarted.count_ones() as usize >= m.as_ref().majority()
        && s.servers.iter().enumerate().any(|(id, server)| {
            restarted & (1 << id) != 0
                && server.node.as_ref().is_some_and(|n| n.commit_index() >= 1)
        })
}

/// A leader was elected in a term after one in which an entry was committed.
fn leader_replaced_after_commit<M>(_: &M, s: &State) -> bool {
    s.ghost.committed.first().is_some_and(|c| {
        let later = s.ghost.leaders.iter().skip(c.commit_term as usize + 1);
        later.into_iter().any(|l| *l != 0)
    })
}

/// What property `name` means, in one sentence a reader of a counterexample can take in (the
/// page of `raftcheck check --html` names the violated property with it).
pub fn meaning(name: &str) -> Option<&'static str> {
    Some(match name {
        ELECTION_SAFETY => "At most one server is ever leader of a given term.",
        LEADER_APPEND_ONLY => "A leader never overwrites or deletes entries of its own log.",
        LOG_MATCHING => {
            "Two logs with an entry of the same index and term (a snapshot's last entry counts) \
             hold the same entries up to it, and no log's terms go down."
        }
        LEADER_COMPLETENESS => {
            "A leader of any later term holds every entry committed in an earlier term."
        }
        STATE_MACHINE_SAFETY => "No two servers ever apply different commands at the same index.",
        COMMITTED_NEVER_OVERWRITTEN => {
            "A server that holds an index as committed keeps the committed entry there."
        }
        COMMITTED_DURABLE_ON_MAJORITY => {
            "Every committed entry is on the disk (the durable log) of a majority of servers."
        }
        COMMIT_INDEX_MONOTONIC => "A running server's commit index never goes back.",
        MATCH_INDEX_MONOTONIC => {
            "A leader's match index for a follower never goes back within its term."
        }
        APPLIED_IN_ORDER => "Each running server applies indices 1, 2, 3, … in order, each once.",
        NO_STEP_PANICS => "Every step of the core, the KV service and the model runs to its end.",
        APPLIED_NEVER_BACK => {
            "A server's state machine never goes back: no install below what it applied, no \
             older snapshot on its disk."
        }
        STORAGE_REPLAYS_TO_MEMORY => {
            "Replaying a server's durable records gives exactly the state it runs with."
        }
        LINEARIZABLE => {
            "The clients' operations take effect in an order consistent with their real-time \
             order and the replies they got."
        }
        _ => return None,
    })
}
