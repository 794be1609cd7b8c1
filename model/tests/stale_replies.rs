//! On a lossy network a message ignored for good leaves the network in the step that makes it
//! so (`RaftModel::reduce_stale`), rather than staying until dropped: a reply its receiver
//! ignores for good (of a term older than the receiver's, which never goes down, say), or a
//! request of a term older than its receiver's, which can only be refused, when its sender
//! ignores every refusal it can bring. These tests compare that
//! with the plain exploration (`reduce_stale` off), symmetry off, on small configurations with
//! crashes, each storage mode, PreVote, CheckQuorum, a snapshot, a KV client and two servers:
//!
//! - the same verdict for every property, and the same reachability properties reached;
//! - every state the reduced exploration reaches, the plain one reaches too;
//! - and the other way round, up to those messages: the plain exploration's states and the
//!   reduced one's, each without every message ignored for good, are the same sets;
//!   and the reduced exploration's states already lack all of them but the granted votes on
//!   their way to a running candidate, which it keeps for a coverage property. (Not the plain
//!   states minus those replies exactly: a vote the reduction dropped while its receiver
//!   followed in the vote's term is not there when that receiver stands in the next term,
//!   where the plain exploration's copy would be kept.) The rule that says which replies those
//!   are is written out again here ([`forget_stale`]) rather than called, so that a fault of
//!   the model's is seen.
//!
//! With bugs on (some that leave the reduction on, some that turn it off because they look at
//! stale replies or lower a term, and one that accepts an old term's AppendEntries, which turns
//! off its part for requests), the same properties are violated both ways. Counts are
//! pinned, so that a change of what the reduction removes is seen where no verdict changes.

mod reach;

use std::collections::{BTreeSet, HashSet};
use std::fmt::Display;
use std::sync::Arc;

use raft_impl::storage::Held;
use raft_impl::{
    AppendOutcome, ConflictHint, Envelope, Message, Mutation, MutationSet, Role, Rules,
};
use raft_model::state::{Cmd, Pending, PendingQueue};
use raft_model::{Bounds, KvBounds, Network, Persistence, RaftModel, State};
use reach::{explore, fingerprint};
use stateright::{Expectation, Model};

/// Three servers, two terms (a reply of the first goes stale in the second), one entry, one
/// message in flight: small enough to explore without symmetry in seconds.
fn bounds() -> Bounds {
    Bounds {
        servers: 3,
        max_term: 2,
        max_log: 1,
        proposals: 1,
        max_crashes: 0,
        max_in_flight: 1,
        ..Bounds::default()
    }
}

/// Without symmetry, so that counts are exact; `reduce_stale` as given. With deferred or WAL
/// storage the loss reduction is off on both sides, so that the state sets may be compared
/// exactly: with it, a send queued behind a pending record is not lost at once but kept until
/// flushed (`RaftModel::fit`), so a plain step that loses a send for want of the place a stale
/// reply holds could lead to a state the reduced exploration reaches only with that send still
/// queued. (On these configurations the sets are equal with it on too, measured; the loss
/// reduction itself is compared in `lossy_network.rs`.)
fn model((bounds, kv): (Bounds, KvBounds), reduce_stale: bool) -> RaftModel {
    let mut model = RaftModel::with_kv(bounds, kv).without_symmetry();
    model.reduce_stale = reduce_stale;
    model.reduce_loss = bounds.persistence == Persistence::Atomic;
    model
}

/// `state` without the messages ignored for good, as `RaftModel::reduce_stale` states the rule
/// for Figure 2's rules. A reply its receiver ignores for good: of a term older than the
/// receiver's floor (the lower of a running server's term and its disk's, where a restart
/// starts, and a crashed server's disk's alone); a vote or acknowledgement of the floor itself
/// when the receiver can only follow in that term; a refused vote of the floor itself in any
/// role, unless leaders note contact (`--check-quorum`); but a granted vote on its way to a
/// running candidate, which "an old vote reaches a newer candidate" looks for. And a
/// RequestVote, AppendEntries or InstallSnapshot of a term below its receiver's floor, which
/// can only ever be refused with the receiver's term (at most `max_term`), when its sender
/// ignores that refusal for good. Written out here, not taken from the model, so that a fault
/// in the model's rule shows.
fn forget_stale(
    state: &State,
    rules: &impl Rules,
    bounds: &Bounds,
    keep_votes_to_candidates: bool,
) -> State {
    let mut forgotten = state.clone();
    forgotten.network.retain(|env| {
        let vote = matches!(env.msg, Message::RequestVoteReply { granted: true, .. });
        let candidate = state
            .node(env.to)
            .is_some_and(|n| n.role() == Role::Candidate);
        (keep_votes_to_candidates && vote && candidate) || !ignored(state, rules, bounds, env)
    });
    forgotten
}

/// `state` without any message ignored for good ([`forget_stale`] without the granted votes'
/// exemption), in flight or held behind a pending record: under deferred and WAL storage the
/// plain exploration delivers a request the reduction dropped, and its refusal may wait in
/// the receiver's queue before it leaves and is dropped.
fn without_any_ignored(state: &State, rules: &impl Rules, bounds: &Bounds) -> State {
    let mut forgotten = forget_stale(state, rules, bounds, false);
    for (id, server) in forgotten.servers.iter_mut().enumerate() {
        let held = |item: &Pending| match item {
            Held::Output(env) => ignored(state, rules, bounds, env),
            Held::Write(_) => false,
        };
        if !state.servers[id].pending.iter().any(held) {
            continue;
        }
        let mut pending = PendingQueue::new();
        for item in state.servers[id].pending.iter().filter(|i| !held(i)) {
            match item {
                Held::Write(write) => pending.write(write.clone()),
                Held::Output(env) => assert!(pending.hold(env.clone()).is_none()),
            }
        }
        Arc::make_mut(server).pending = pending;
    }
    forgotten
}

/// Whether `env` is ignored for good in `state` (see [`forget_stale`]).
fn ignored(state: &State, rules: &impl Rules, bounds: &Bounds, env: &Envelope<Cmd>) -> bool {
    if !rules.ignores_stale_replies() {
        return false;
    }
    // The lowest term server `id` can be in from now on, and whether it can only follow in
    // that term (down, or ahead of its disk: it comes back to that term as a follower).
    let floor = |id: u8| {
        let server = &state.servers[usize::from(id)];
        let durable = server.durable.current_term;
        match &server.node {
            Some(node) if node.current_term() <= durable => (
                node.current_term(),
                matches!(node.role(), Role::Follower | Role::PreCandidate),
            ),
            _ => (durable, true),
        }
    };
    let ignores = |id: u8, msg: &Message<Cmd>| {
        let (floor, follows) = floor(id);
        let own_term_answer = matches!(
            msg,
            Message::RequestVoteReply { .. } | Message::AppendEntriesReply { .. }
        );
        let refused_vote = matches!(msg, Message::RequestVoteReply { granted: false, .. });
        let at_floor = msg.term() == floor
            && ((follows && own_term_answer) || (refused_vote && !bounds.check_quorum));
        msg.is_reply() && (msg.term() < floor || at_floor)
    };
    if env.msg.is_reply() {
        return ignores(env.to, &env.msg);
    }
    let term = bounds.max_term;
    let refusal = match env.msg {
        Message::RequestVote { .. } => Message::RequestVoteReply {
            term,
            granted: false,
        },
        Message::AppendEntries(_) | Message::InstallSnapshot { .. } => {
            Message::AppendEntriesReply {
                term,
                outcome: AppendOutcome::Conflict(ConflictHint {
                    x_term: None,
                    x_index: 0,
                    x_len: 0,
                }),
            }
        }
        _ => return false,
    };
    let refused_for_good = rules.refuses_stale_requests() && env.msg.term() < floor(env.to).0;
    refused_for_good && ignores(env.from, &refusal)
}

/// What an exhaustive exploration saw.
struct Survey {
    /// Every state, by fingerprint.
    states: HashSet<u64>,
    /// Every state without the replies ignored for good but the votes the reduction keeps
    /// ([`forget_stale`]), by fingerprint.
    forgotten: HashSet<u64>,
    /// Every state without any message ignored for good, in flight or held, by fingerprint.
    covered: HashSet<u64>,
    /// The `always` properties some state violates.
    violated: BTreeSet<&'static str>,
    /// The `sometimes` properties some state satisfies.
    reached: BTreeSet<&'static str>,
}

/// Explores `model` whole, breadth first, and evaluates every property on every state: the
/// verdicts of an exhaustive check, which unlike the checker does not stop at a violation.
fn survey(model: &RaftModel) -> Survey {
    let properties = model.properties();
    let rules = model.bounds.mutations;
    let bounds = model.bounds;
    let mut survey = Survey {
        states: HashSet::new(),
        forgotten: HashSet::new(),
        covered: HashSet::new(),
        violated: BTreeSet::new(),
        reached: BTreeSet::new(),
    };
    explore(model, |state| {
        survey.states.insert(fingerprint(state));
        survey
            .forgotten
            .insert(fingerprint(&forget_stale(state, &rules, &bounds, true)));
        survey
            .covered
            .insert(fingerprint(&without_any_ignored(state, &rules, &bounds)));
        for p in &properties {
            let holds = (p.condition)(model, state);
            match p.expectation {
                Expectation::Always if !holds => survey.violated.insert(p.name),
                Expectation::Sometimes if holds => survey.reached.insert(p.name),
                _ => false,
            };
        }
    });
    survey
}

/// Asserts that the reduced exploration's set and the plain one's (or the reduced one's own
/// states and their images) are the same, saying how many each holds that the other does not.
fn assert_same(reduced: &HashSet<u64>, forgotten: &HashSet<u64>, case: &impl Display) {
    let only_reduced = reduced.difference(forgotten).count();
    let only_forgotten = forgotten.difference(reduced).count();
    assert!(
        only_reduced == 0 && only_forgotten == 0,
        "{case}: {only_reduced} states only reduced, {only_forgotten} only in the other set"
    );
}

/// Compares the reduced and the plain exploration of `config` and returns their counts.
fn compare(config: (Bounds, KvBounds)) -> (usize, usize) {
    let b = config.0;
    let reduced = survey(&model(config, true));
    let plain = survey(&model(config, false));
    assert_eq!(reduced.violated, plain.violated, "{b}");
    assert_eq!(reduced.reached, plain.reached, "{b}");
    let outside = reduced.states.difference(&plain.states).count();
    assert_eq!(
        outside, 0,
        "{b}: reduced states the plain exploration does not reach"
    );
    assert_same(&reduced.covered, &plain.covered, &b);
    // Already without them: the reduction took each off as it went stale.
    assert_same(&reduced.states, &reduced.forgotten, &b);
    (reduced.states.len(), plain.states.len())
}

/// Three servers with a crash event and no entries (what is stale here is terms), with
/// `persistence`.
fn storage(persistence: Persistence) -> Bounds {
    Bounds {
        max_log: 0,
        proposals: 0,
        max_crashes: 1,
        persistence,
        ..bounds()
    }
}

/// Two servers with an entry and a crash event, with `persistence`.
fn two_servers(persistence: Persistence) -> Bounds {
    Bounds {
        servers: 2,
        max_crashes: 1,
        max_in_flight: 2,
        persistence,
        ..bounds()
    }
}

/// The configurations of the comparison, each with its pinned (reduced, plain) counts.
fn configurations() -> Vec<((Bounds, KvBounds), (usize, usize))> {
    let none = KvBounds::default();
    let crash = Bounds {
        max_crashes: 1,
        ..bounds()
    };
    let pre_vote = Bounds {
        pre_vote: true,
        max_log: 0,
        proposals: 0,
        max_in_flight: 2,
        ..bounds()
    };
    let check_quorum = Bounds {
        check_quorum: true,
        max_log: 0,
        proposals: 0,
        max_in_flight: 2,
        ..bounds()
    };
    let snapshot = Bounds {
        max_snapshots: 1,
        ..bounds()
    };
    // Room in the log for the registration and the write.
    let client = (
        Bounds {
            max_log: 2,
            proposals: 0,
            ..bounds()
        },
        KvBounds {
            clients: 1,
            timeouts: 0,
            expiries: 0,
        },
    );
    vec![
        ((crash, none), (135_317, 156_341)),
        ((storage(Persistence::Atomic), none), (9_017, 12_551)),
        ((storage(Persistence::Deferred), none), (54_962, 63_704)),
        ((storage(Persistence::Wal), none), (54_962, 63_704)),
        ((pre_vote, none), (161_069, 217_787)),
        ((check_quorum, none), (61_374, 138_831)),
        ((snapshot, none), (55_503, 58_743)),
        (client, (86_748, 91_110)),
        ((two_servers(Persistence::Atomic), none), (4_462, 9_560)),
        ((two_servers(Persistence::Deferred), none), (10_616, 17_926)),
        ((two_servers(Persistence::Wal), none), (10_616, 17_926)),
    ]
}

#[test]
fn the_reduction_changes_no_verdict_and_only_forgets_stale_replies() {
    for (config, pinned) in configurations() {
        let b = config.0;
        let counts = compare(config);
        assert!(counts.0 < counts.1, "{b}: no stale reply left the network");
        assert_eq!(counts, pinned, "{b}");
    }
}

/// Bugs in configurations that catch them, each with its pinned (reduced, plain) counts: bugs
/// the reduction stays on for (they neither look at stale replies nor lower a term) and bugs
/// that turn it off (term-not-persisted, stale-vote-count, panic-on-stale-reply), for which
/// both explorations are the same; and accept-stale-term-append, which turns off its part for
/// requests only.
fn bug_cases() -> Vec<(Bounds, Mutation, (usize, usize))> {
    let stale_vote = Bounds {
        max_log: 0,
        proposals: 0,
        max_in_flight: 2,
        ..bounds()
    };
    let wal = Bounds {
        persistence: Persistence::Wal,
        ..bounds()
    };
    let deferred = storage(Persistence::Deferred);
    let atomic = storage(Persistence::Atomic);
    let two = two_servers(Persistence::Atomic);
    // The probe's configuration: a deposed leader's AppendEntries still in flight.
    let old_append = Bounds {
        proposals: 2,
        max_in_flight: 2,
        network: Network {
            ordered: true,
            lossy: true,
            duplicating: false,
        },
        ..bounds()
    };
    vec![
        (deferred, Mutation::AckBeforePersist, (143_027, 162_671)),
        (deferred, Mutation::VoteNotPersisted, (55_892, 64_088)),
        (
            wal,
            Mutation::HardStateBeforeEntriesSynced,
            (106_560, 109_728),
        ),
        (two, Mutation::LeaderIgnoresHigherTerm, (8_694, 15_554)),
        (atomic, Mutation::TermNotPersisted, (86_753, 86_753)),
        (stale_vote, Mutation::StaleVoteCount, (42_111, 42_111)),
        (two, Mutation::PanicOnStaleReply, (10_238, 10_238)),
        (
            old_append,
            Mutation::AcceptStaleTermAppend,
            (279_210, 450_144),
        ),
    ]
}

#[test]
fn with_bugs_the_same_properties_are_violated() {
    for (b, bug, pinned) in bug_cases() {
        let mutations = MutationSet::NONE.with(bug);
        let b = Bounds { mutations, ..b };
        let model = |reduce_stale| model((b, KvBounds::default()), reduce_stale);
        let (reduced, plain) = (survey(&model(true)), survey(&model(false)));
        assert!(!reduced.violated.is_empty(), "{bug} not caught");
        assert_eq!(reduced.violated, plain.violated, "{bug}");
        assert_same(&reduced.covered, &plain.covered, &bug);
        let counts = (reduced.states.len(), plain.states.len());
        if !mutations.ignores_stale_replies() {
            assert_eq!(counts.0, counts.1, "{bug}: the reduction is off");
        }
        assert_eq!(counts, pinned, "{bug}");
    }
}
