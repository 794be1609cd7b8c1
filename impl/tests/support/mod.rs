//! Shared vocabulary of the integration tests: terse constructors for logs, hard states,
//! messages and effects, so that each test can spell out the exact effects it expects.
//! Every test file uses a different subset of it.
#![allow(dead_code)]

pub mod cluster;

use raft_impl::codec::{self, FrameKind};
use raft_impl::storage::{LogStore, MemoryStore};
use raft_impl::{
    AppendEntries, AppendOutcome, Command, Config, ConflictHint, Effect, Entry, HardState, Index,
    Message, Mutation, MutationSet, Node, NodeId, Record, Rules, Snapshot, Term,
};

/// The command type of the tests: a number, so that logs read as `(term, command)` pairs.
pub type Cmd = u64;

/// A log from `(term, command)` pairs; the first pair is index 1.
pub fn log(entries: &[(Term, Cmd)]) -> Vec<Entry<Cmd>> {
    entries
        .iter()
        .map(|&(term, command)| Entry { term, command })
        .collect()
}

pub fn hard(
    current_term: Term,
    voted_for: Option<NodeId>,
    entries: &[(Term, Cmd)],
) -> HardState<Cmd> {
    HardState {
        current_term,
        voted_for,
        snapshot: None,
        log: log(entries),
    }
}

/// Server `id` of a correct cluster of `servers`, starting from `hard`.
pub fn node(id: NodeId, servers: u8, hard: HardState<Cmd>) -> Node<Cmd> {
    Node::new(Config::new(id, servers), hard)
}

/// Like [`node`], with one deliberate bug switched on.
pub fn mutated(
    id: NodeId,
    servers: u8,
    bug: Mutation,
    hard: HardState<Cmd>,
) -> Node<Cmd, MutationSet> {
    let bugs = MutationSet::NONE.with(bug);
    Node::with_rules(Config::new(id, servers), bugs, hard)
}

/// Times `node` out and feeds it granted votes from its peers until it leads; returns the
/// effects of all those steps, one step's after another's.
pub fn elect<R: Rules>(node: &mut Node<Cmd, R>) -> Vec<Effect<Cmd>> {
    let mut effects = node.election_timeout();
    let term = node.current_term();
    let peers: Vec<NodeId> = node.config().peers().collect();
    for peer in peers {
        if node.is_leader() {
            break;
        }
        effects.extend(node.handle(peer, vote_reply(term, true)));
    }
    assert!(node.is_leader(), "{node:?} was not elected");
    effects
}

/// Leader 0 of a correct cluster of `servers`, elected in term 1 from a fresh start, holding
/// `commands` proposed in term 1 and not yet replicated.
pub fn leader_with(servers: u8, commands: &[Cmd]) -> Node<Cmd> {
    let mut leader = node(0, servers, HardState::default());
    elect(&mut leader);
    for &command in commands {
        leader.propose(command).expect("a leader accepts proposals");
    }
    leader
}

pub fn vote_request(term: Term, last_log_index: Index, last_log_term: Term) -> Message<Cmd> {
    Message::RequestVote {
        term,
        last_log_index,
        last_log_term,
    }
}

pub fn vote_reply(term: Term, granted: bool) -> Message<Cmd> {
    Message::RequestVoteReply { term, granted }
}

pub fn append(
    term: Term,
    prev_log_index: Index,
    prev_log_term: Term,
    entries: &[(Term, Cmd)],
    leader_commit: Index,
) -> Message<Cmd> {
    Message::AppendEntries(AppendEntries {
        term,
        prev_log_index,
        prev_log_term,
        entries: log(entries),
        leader_commit,
    })
}

pub fn success(term: Term, match_index: Index) -> Message<Cmd> {
    Message::AppendEntriesReply {
        term,
        outcome: AppendOutcome::Success { match_index },
    }
}

pub fn conflict(term: Term, x_term: Option<Term>, x_index: Index, x_len: Index) -> Message<Cmd> {
    Message::AppendEntriesReply {
        term,
        outcome: AppendOutcome::Conflict(ConflictHint {
            x_term,
            x_index,
            x_len,
        }),
    }
}

/// The term/vote record of a step that changed either.
pub fn term_vote(term: Term, voted_for: Option<NodeId>) -> Effect<Cmd> {
    Effect::Persist(Record::TermVote { term, voted_for })
}

/// The log record of a step whose log changed from index `from` on: `entries` replace
/// everything from there.
pub fn log_from(from: Index, entries: &[(Term, Cmd)]) -> Effect<Cmd> {
    Effect::Persist(Record::Log {
        from,
        entries: log(entries),
    })
}

pub fn send(to: NodeId, msg: Message<Cmd>) -> Effect<Cmd> {
    Effect::Send { to, msg }
}

pub fn apply(index: Index, command: Cmd) -> Effect<Cmd> {
    Effect::Apply { index, command }
}

/// A snapshot ending at `last_index`, of `last_term`, whose bytes name its index.
pub fn snapshot(last_index: Index, last_term: Term) -> Snapshot {
    Snapshot {
        last_index,
        last_term,
        data: last_index.to_le_bytes().to_vec(),
    }
}

pub fn install(term: Term, snapshot: Snapshot) -> Message<Cmd> {
    Message::InstallSnapshot { term, snapshot }
}

pub const RESET: Effect<Cmd> = Effect::ResetElectionTimer;

/// Writes and syncs every `Persist` of `effects`, in order, as a runtime does.
pub fn save_persists(store: &mut MemoryStore<Cmd>, effects: &[Effect<Cmd>]) {
    for effect in effects {
        if let Effect::Persist(record) = effect {
            let Ok(_) = store.append(std::slice::from_ref(record));
        }
    }
    let Ok(_) = store.sync();
}

/// A store holding `state`, synced: what a server that reached `state` has on disk.
pub fn store_of(state: &HardState<Cmd>) -> MemoryStore<Cmd> {
    let mut store = MemoryStore::new();
    let snapshot = state.snapshot.clone().map(Record::Snapshot);
    let records: Vec<Record<Cmd>> = [Record::TermVote {
        term: state.current_term,
        voted_for: state.voted_for,
    }]
    .into_iter()
    .chain(snapshot)
    .chain([Record::Log {
        from: state.first_index(),
        entries: state.log.clone(),
    }])
    .collect();
    let Ok(_) = store.append(&records).and_then(|_| store.sync());
    store
}

/// `node` after a crash: a new instance built from what `store` synced.
pub fn restart<R: Rules>(node: &Node<Cmd, R>, store: &MemoryStore<Cmd>) -> Node<Cmd, R> {
    Node::with_rules(*node.config(), *node.rules(), store.synced_state().clone())
}

/// `state` as the codec frames it on disk.
pub fn encoded<C: Command>(state: &HardState<C>) -> Vec<u8> {
    codec::encode(FrameKind::HardState, state).expect("a hard state encodes")
}
