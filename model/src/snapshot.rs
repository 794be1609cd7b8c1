//! Snapshots in the model (`--max-snapshots`, Figure 13): what a server's service snapshots,
//! what the ghost history demands of every snapshot a server holds or installs, and how a
//! write-ahead log makes a snapshot durable (the writes a crash may cut between).
//!
//! The model's service is two state machines side by side: the sequence of commands a server
//! applied (what the properties read, index by index) and, with KV clients, its
//! `raft_impl::kv::KvStore` (what the clients read). A snapshot's data holds both, in that
//! order: each applied command's code in four little-endian bytes, index 1 first, as many as
//! the snapshot's last index, then the KV store in the implementation's own snapshot encoding
//! (`KvStore::snapshot`, with its sessions and its expiry clock; nothing without clients).
//! Plain and KV commands share one log, so one sequence of codes covers both, and the store,
//! which skips plain commands, is restored from its own encoding (`KvStore::restored`) rather
//! than rebuilt from the codes: a restore must go through the encoding raftd uses, or a store
//! that loses its sessions in it would go unseen. Both parts are canonical (two servers that
//! applied the same commands snapshot the same bytes, so states that differ only in who took
//! a snapshot stay one state under symmetry), and the codes let the ghost history check a
//! snapshot against what was committed, index by index, as it checks a log.

use raft_impl::kv::KvStore;
use raft_impl::{
    Effect, HardState, Index, Mutation, MutationSet, Node, NodeId, Record, Snapshot, Term,
};

use crate::kv::Status;
use crate::state::{Cmd, Committed, Event, Ghost, Server, State, Violation, Write};

/// Bytes per command in a snapshot's data.
const CODE_BYTES: usize = 4;

/// The two parts of a snapshot's data: the codes of the commands up to its last index, and
/// the KV store's encoding after them (empty without clients); `None` when the data is too
/// short to hold the codes (no snapshot the model takes is: the ghost check reports it).
fn parts(s: &Snapshot) -> Option<(&[u8], &[u8])> {
    let len = usize::try_from(s.last_index)
        .ok()?
        .checked_mul(CODE_BYTES)?;
    (s.data.len() >= len).then(|| s.data.split_at(len))
}

/// The command codes a snapshot holds, index 1 first.
fn codes(s: &Snapshot) -> Option<impl Iterator<Item = u32> + '_> {
    let (codes, _) = parts(s)?;
    Some(
        codes
            .chunks_exact(CODE_BYTES)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    )
}

/// The code of the command a snapshot holds at `index`.
fn code_at(s: &Snapshot, index: Index) -> Option<u32> {
    let at = usize::try_from(index.checked_sub(1)?).ok()?;
    codes(s)?.nth(at)
}

/// What log `hard` holds at `index`, for Log Matching through the snapshot boundary: the term
/// when it knows one (an entry's, or the snapshot's last index's) and the command's code
/// (`None` for a code a snapshot's data does not hold). `None` past its last index and at 0.
pub fn slot(hard: &HardState<Cmd>, index: Index) -> Option<(Option<Term>, Option<u32>)> {
    if index == 0 || index > hard.last_index() {
        return None;
    }
    match (&hard.snapshot, hard.entry(index)) {
        (_, Some(e)) => Some((Some(e.term), Some(e.command.code()))),
        (Some(s), None) => {
            let term = (index == s.last_index).then_some(s.last_term);
            Some((term, code_at(s, index)))
        }
        (None, None) => None,
    }
}

/// What server `node` has applied, as its snapshot data: its own snapshot's commands, then its
/// log's up to its applied index, then its KV store `kv` (see the module documentation). The
/// core hands the service every applied entry from that log, and an entry at or below the
/// commit index never changes without the ghost history seeing it (committed never
/// overwritten), so this is what the service applied.
fn applied_data(node: &Node<Cmd, MutationSet>, kv: Option<&KvStore<MutationSet>>) -> Vec<u8> {
    let hard = node.hard_state();
    let held = hard
        .snapshot
        .as_ref()
        .and_then(parts)
        .map_or(&[][..], |p| p.0);
    let mut data = held.to_vec();
    for index in hard.first_index()..=node.last_applied() {
        if let Some(entry) = hard.entry(index) {
            data.extend_from_slice(&entry.command.code().to_le_bytes());
        }
    }
    if let Some(store) = kv {
        data.extend_from_slice(&store.snapshot());
    }
    data
}

/// The KV store a server runs with after installing or restarting from `snapshot`: `store`
/// (the one it had, or a fresh one: it carries the session rules and bugs) restored from the
/// snapshot's encoding, or `store` itself without a snapshot. A snapshot the model took that does not
/// decode is a bug of the model or of the encoding: the step panics (reported as "no step
/// panics" with its path), as raftd refuses to start from it.
pub fn restore_kv(
    store: KvStore<MutationSet>,
    snapshot: Option<&Snapshot>,
) -> KvStore<MutationSet> {
    let Some(s) = snapshot else {
        return store;
    };
    let encoded = parts(s).map_or(&[][..], |p| p.1);
    match store.restored(encoded) {
        Ok(restored) => restored,
        Err(e) => panic!(
            "snapshot {}:{} holds no KV store: {e}",
            s.last_index, s.last_term
        ),
    }
}

/// Whether `hard` holds committed entry `c` at `index`: in its log, with the same term and
/// command, or covered by its snapshot with the same command (and the same term at the
/// snapshot's last index, the one term a snapshot keeps).
pub fn holds(hard: &HardState<Cmd>, index: Index, c: &Committed) -> bool {
    match &hard.snapshot {
        Some(s) if index <= s.last_index => {
            (index != s.last_index || s.last_term == c.term)
                && code_at(s, index) == Some(c.command.code())
        }
        _ => c.is(hard.entry(index)),
    }
}

/// Whether server `server`'s disk holds committed entry `c` at `index`: as [`holds`] says of
/// its durable state, unless the records of that entry were purged with no snapshot durable to
/// cover them.
pub fn durable_holds(server: &Server, index: Index, c: &Committed) -> bool {
    (index > server.purged || index <= server.durable.snapshot_index())
        && holds(&server.durable, index, c)
}

/// Whether log `after` keeps every entry of log `before`: Leader Append-Only, where entries a
/// snapshot compacted away are kept in it (what it holds is checked against the committed
/// history by [`matches_committed`]).
pub fn extends(after: &HardState<Cmd>, before: &HardState<Cmd>) -> bool {
    if after.snapshot_index() == before.snapshot_index() {
        return after.log.starts_with(&before.log);
    }
    after.snapshot_index() > before.snapshot_index()
        && after.last_index() >= before.last_index()
        && (after.first_index()..=before.last_index()).all(|i| after.entry(i) == before.entry(i))
}

/// Whether snapshot `s` holds exactly the committed commands up to its index, its last one
/// with the committed term: State Machine Safety for a state machine replaced by a snapshot.
pub fn matches_committed(s: &Snapshot, committed: &[Committed]) -> bool {
    let Some(prefix) = usize::try_from(s.last_index)
        .ok()
        .and_then(|n| committed.get(..n))
    else {
        return false;
    };
    let Some(codes) = codes(s) else {
        return false;
    };
    prefix.last().is_some_and(|c| c.term == s.last_term)
        && codes.zip(prefix).all(|(code, c)| code == c.command.code())
}

/// A step of a running server emitted `effects`, from `before`: an installed snapshot must not
/// take its state machine back to or below what it had applied.
pub fn check_installs(before: &Node<Cmd, MutationSet>, effects: &[Effect<Cmd>], ghost: &mut Ghost) {
    let back = effects.iter().any(|e| match e {
        Effect::Restore(s) => s.last_index <= before.last_applied(),
        _ => false,
    });
    if back {
        ghost.record(Violation::AppliedWentBack);
    }
}

/// Server `id` installed `snapshot` (`Effect::Restore`): its state machine is replaced by it,
/// which must be the committed history up to there. `state` already holds the node after the
/// step, so a log left non-empty is the suffix the install kept.
pub fn restored(state: &mut State, id: NodeId, snapshot: &Snapshot) {
    if !matches_committed(snapshot, &state.ghost.committed) {
        state.ghost.record(Violation::StateMachineSafety);
    }
    state.ghost.happened(Event::CaughtUpByInstall);
    if state.node(id).is_some_and(|n| !n.log().is_empty()) {
        state.ghost.happened(Event::InstallKeptSuffix);
    }
    let server = state.server_mut(id);
    if let Some(store) = server.kv.take() {
        server.kv = Some(restore_kv(store, Some(snapshot)));
    }
    settle_covered(state, id, snapshot.last_index);
}

/// Server `id`'s state machine jumped to `through` by an install: the clients waiting on it
/// at indices the snapshot covers will see no apply there. They retry, as after a crash of
/// the server, and the retry is answered from the session table the snapshot carried (the
/// same request again gets the recorded outcome): raftd answers them from that table, or as
/// an unknown outcome, and a retry is what a client does with either.
fn settle_covered(state: &mut State, id: NodeId, through: Index) {
    let Some(clients) = state.clients.as_mut() else {
        return;
    };
    let covered = |s: &Status| matches!(s, Status::Waiting { server, index } if *server == id && *index <= through);
    if clients.slots.iter().any(|c| covered(&c.status)) {
        for slot in &mut std::sync::Arc::make_mut(clients).slots {
            if covered(&slot.status) {
                slot.status = Status::Retrying;
            }
        }
    }
}

/// A server restarts from `hard`: its state machine starts as the durable snapshot, which must
/// be the committed history up to there.
pub fn restarted(ghost: &mut Ghost, hard: &HardState<Cmd>) {
    if let Some(s) = &hard.snapshot {
        if !matches_committed(s, &ghost.committed) {
            ghost.record(Violation::StateMachineSafety);
        }
        ghost.happened(Event::RestartedFromSnapshot);
    }
}

/// Applies durable record `record` to `durable`; `false` when it replaces the durable snapshot
/// by an older one, the state a restart starts from going back.
pub fn keeps_snapshot_order(durable: &HardState<Cmd>, record: &Record<Cmd>) -> bool {
    match record {
        Record::Snapshot(s) => s.last_index >= durable.snapshot_index(),
        Record::TermVote { .. } | Record::Log { .. } => true,
    }
}

/// A purge of the log prefix up to `through` became durable on `server`: if no durable
/// snapshot covers it, the entries are gone and recovery refuses to start (see
/// [`Server::purged`]).
pub fn purge(server: &mut Server, through: Index) {
    if through > server.durable.snapshot_index() {
        server.purged = server.purged.max(through);
    }
}

/// The writes a write-ahead log makes of a snapshot record, in the order `FileWal` does them,
/// each pending on its own so that a crash between any two is explored: (1) the snapshot file
/// made durable and the install record appended, which recovery replays from; (2) the latest
/// term and vote appended again, since the purge may delete the segment holding their last
/// record; (3) the purge of the log prefix the snapshot replaces. After (1) recovery yields the
/// state `HardState::apply` gives the snapshot record, and (2) and (3) change nothing it reads.
/// Under `purge-before-snapshot-durable` the purge comes first: a crash right after it leaves
/// neither the prefix nor a snapshot covering it.
pub fn wal_writes(
    snapshot: Snapshot,
    node: &Node<Cmd, MutationSet>,
    mutations: MutationSet,
) -> [Write; 3] {
    let purge = Write::Purge {
        through: snapshot.last_index,
    };
    let install = Write::Records(vec![Record::Snapshot(snapshot)]);
    let term_vote = Write::Records(vec![Record::TermVote {
        term: node.current_term(),
        voted_for: node.voted_for(),
    }]);
    if mutations.contains(Mutation::PurgeBeforeSnapshotDurable) {
        [purge, install, term_vote]
    } else {
        [install, term_vote, purge]
    }
}

/// Whether server `node` may take a snapshot step while `taken` of `max` were taken: it has
/// applied something its snapshot does not cover yet (a snapshot at a covered index changes
/// nothing, so it is no step).
pub fn may_snapshot(node: &Node<Cmd, MutationSet>, taken: u8, max: u8) -> bool {
    taken < max && node.last_applied() > node.hard_state().snapshot_index()
}

/// The core's snapshot step: the service snapshots what it applied (with its KV store `kv`,
/// if it has clients), at its applied index.
pub fn take(
    node: &mut Node<Cmd, MutationSet>,
    kv: Option<&KvStore<MutationSet>>,
) -> Option<Vec<Effect<Cmd>>> {
    let index = node.last_applied();
    node.snapshot(index, applied_data(node, kv)).ok()
}

/// Queues a record of server `id`'s step as a write-ahead log writes it: a snapshot record as
/// its three writes ([`wal_writes`]), any other as one.
pub fn queue_wal_write(state: &mut State, id: NodeId, record: Record<Cmd>, mutations: MutationSet) {
    let writes = match (record, state.node(id)) {
        (Record::Snapshot(s), Some(node)) => wal_writes(s, node, mutations).into(),
        (record, _) => vec![Write::Records(vec![record])],
    };
    let pending = &mut state.server_mut(id).pending;
    for write in writes {
        pending.write(write);
    }
}
