//! Symmetry reduction over server ids, done where the checker identifies states: in their hash.
//!
//! Raft treats every id alike, so two states that differ only by a renaming of the servers have
//! the same futures up to that renaming, and the checker needs to explore only one of them.
//! Stateright identifies a state by the fingerprint of its `Hash`; a state whose `symmetric`
//! flag is set hashes as the renaming of itself that sorts its servers by an id-free key
//! ([`Renaming::canonical`]), renamed on the fly while hashing. Symmetric states then share a
//! fingerprint and the second one reached is not explored, under any search strategy, without
//! building a renamed copy of every successor (what `CheckerBuilder::symmetry_fn` needs).
//!
//! Paths are unaffected: stateright records and replays them as action indices.
//!
//! Ties in the key keep their current order. That is not a perfect canonical form, but it is
//! sound: states hashed alike are always renamings of one another, so nothing reachable is
//! lost, only some symmetric duplicates are kept.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use raft_impl::node::Flow;
use raft_impl::{
    AppendEntries, Envelope, HardState, Message, Mutation, NodeId, Record, Role, ServerSet,
    Snapshot,
};

use crate::bounds::SERVER_LIMIT;
use crate::kv::{Clients, Status};
use crate::network;
use crate::state::{Cmd, Ghost, Pending, Server, State, Write};

/// A permutation of the server ids `0..len`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Renaming {
    /// `new[old]`: the id server `old` gets.
    new: [NodeId; SERVER_LIMIT as usize],
    /// `old[new]`: the server that gets id `new`.
    old: [NodeId; SERVER_LIMIT as usize],
    len: usize,
}

impl Renaming {
    /// Every server keeps its id.
    pub fn identity(len: usize) -> Renaming {
        let ids = std::array::from_fn(|i| i as NodeId);
        Renaming {
            new: ids,
            old: ids,
            len,
        }
    }

    /// The renaming `rename[old] == new`.
    ///
    /// # Panics
    /// If `rename` is not a permutation of `0..rename.len()` or is longer than
    /// [`SERVER_LIMIT`].
    pub fn from_new_ids(rename: &[NodeId]) -> Renaming {
        let mut r = Renaming::identity(rename.len());
        let mut seen = 0u32;
        for (old, &new) in rename.iter().enumerate() {
            assert!(
                (new as usize) < rename.len(),
                "not a permutation: {rename:?}"
            );
            seen |= 1 << new;
            r.new[old] = new;
            r.old[new as usize] = old as NodeId;
        }
        assert_eq!(
            seen.count_ones() as usize,
            rename.len(),
            "not a permutation"
        );
        r
    }

    /// The renaming that sorts the servers of `state` by [`compare`].
    pub fn canonical(state: &State) -> Renaming {
        let len = state.servers.len();
        let mut r = Renaming::identity(len);
        let servers = &state.servers;
        r.old[..len].sort_by(|&a, &b| compare(&servers[a as usize], &servers[b as usize]));
        for (new, &old) in r.old[..len].iter().enumerate() {
            r.new[old as usize] = new as NodeId;
        }
        r
    }

    pub fn is_identity(&self) -> bool {
        (0..self.len).all(|i| self.new[i] == i as NodeId)
    }

    /// The new id of server `old`.
    pub fn id(&self, old: NodeId) -> NodeId {
        self.new[old as usize]
    }

    /// A bitmask of servers, renamed.
    pub fn mask(&self, mut mask: u8) -> u8 {
        let mut renamed = 0;
        while mask != 0 {
            renamed |= 1 << self.new[mask.trailing_zeros() as usize];
            mask &= mask - 1;
        }
        renamed
    }

    /// A set of servers, renamed, as the bit mask a state's hash holds (a cluster of the model
    /// has at most 8 servers).
    pub fn servers(&self, set: ServerSet) -> u8 {
        set.relabel(self.as_new_ids()).bits() as u8
    }

    /// `new[old]` for every server, the form `Node::relabeled` takes.
    fn as_new_ids(&self) -> &[NodeId] {
        &self.new[..self.len]
    }
}

/// Compares two servers on everything that does not mention a server id.
fn compare(a: &Server, b: &Server) -> Ordering {
    let volatile = |s: &Server| {
        s.node.as_ref().map(|n| {
            (
                n.role(),
                n.current_term(),
                n.voted_for().is_some(),
                n.commit_index(),
            )
        })
    };
    let durable = |s: &Server| (s.durable.current_term, s.durable.voted_for.is_some());
    volatile(a)
        .cmp(&volatile(b))
        .then_with(|| durable(a).cmp(&durable(b)))
        .then_with(|| a.durable.log.cmp(&b.durable.log))
        .then_with(|| {
            let (la, lb) = (a.node.as_ref(), b.node.as_ref());
            la.map(|n| n.log()).cmp(&lb.map(|n| n.log()))
        })
        .then_with(|| a.pending.len().cmp(&b.pending.len()))
}

impl Hash for State {
    /// Hashes the state as its servers renamed by `r` would hash, where `r` is the canonical
    /// renaming when the state is symmetric and the identity otherwise (see the module doc).
    /// Small fields are packed into few writes: the fingerprint of every successor is taken
    /// by stateright's hasher, whose cost grows with the number of writes.
    fn hash<H: Hasher>(&self, h: &mut H) {
        let r = if self.symmetric {
            Renaming::canonical(self)
        } else {
            Renaming::identity(self.servers.len())
        };
        h.write_usize(self.servers.len());
        for new in 0..r.len {
            hash_server(
                &self.servers[r.old[new] as usize],
                self.quorum_record,
                &r,
                h,
            );
        }
        hash_network(&self.network, &r, h);
        h.write_u32(
            u32::from(self.crashes)
                | u32::from(self.duplicates) << 8
                | u32::from(self.proposals) << 16
                | u32::from(self.snapshots) << 24,
        );
        match &self.clients {
            None => h.write_u8(0),
            Some(clients) => {
                h.write_u8(1);
                hash_clients(clients, &r, h);
            }
        }
        hash_ghost(&self.ghost, &r, h);
        // Nothing for a state whose step did not panic, so that fingerprints stay as they were.
        if let Some(panic) = &self.panicked {
            panic.hash(h);
        }
    }
}

/// Hashes what can influence the server's future and nothing else, so that states which differ
/// only in stale volatile leftovers are one state to the checker: the leader hint (never read by
/// the model), a non-leader's next and match indices (reset when it becomes leader) and a
/// non-candidate's vote tally (reset when it becomes candidate, except under the
/// `vote-tally-not-reset` probe, which carries it into the next election: then every role's
/// tally is hashed).
fn hash_server<H: Hasher>(server: &Server, quorum_record: bool, r: &Renaming, h: &mut H) {
    h.write_usize(server.pending.len());
    for pending in server.pending.iter() {
        match pending {
            Pending::Write(Write::Records(writes)) => {
                h.write_u8(0);
                h.write_usize(writes.len());
                for write in writes {
                    hash_record(write, r, h);
                }
            }
            Pending::Write(Write::Purge { through }) => {
                h.write_u8(2);
                h.write_u64(*through);
            }
            Pending::Output(env) => {
                h.write_u8(1);
                hash_envelope(env, r, h);
            }
        }
    }
    // Nothing for a disk with no uncovered purge (every run without the purge bug).
    if server.purged != 0 {
        h.write_u64(server.purged);
    }
    let Some(node) = &server.node else {
        h.write_u8(0);
        return hash_hard(&server.durable, r, h);
    };
    h.write_u8(1 + node.role() as u8);
    // Every running server has a store when there are clients, none has one otherwise: no tag
    // is needed.
    if let Some(kv) = &server.kv {
        kv.hash(h);
    }
    hash_hard(node.hard_state(), r, h);
    // Usually everything is durable: then the durable part is known from the node.
    if *server.durable == *node.hard_state() {
        h.write_u8(0);
    } else {
        h.write_u8(1);
        hash_hard(&server.durable, r, h);
    }
    h.write_u64(node.commit_index() << 32 | node.last_applied());
    let stale_tally_counts = node.rules().contains(Mutation::VoteTallyNotReset);
    match node.role() {
        Role::Follower if stale_tally_counts => h.write_u8(r.servers(node.votes_granted())),
        Role::Follower => {}
        Role::Candidate | Role::PreCandidate => h.write_u8(r.servers(node.votes_granted())),
        Role::Leader => {
            if stale_tally_counts {
                h.write_u8(r.servers(node.votes_granted()));
            }
            // With the flow state and the batches in flight, which decide what the next send
            // carries, packed above the next index (at most `LOG_LIMIT + 1`, so 16 bits), so
            // that without `--window` (every follower a probe, nothing in flight) a leader
            // hashes in as many writes as before. Not whether a probe is out: only
            // `Node::replicate` and `send_on_reply` read it, which the model never uses (its
            // `Replicate` action is the heartbeat, which sends anyway).
            // A follower waiting for a snapshot also hashes the index the snapshot ends at.
            for new in 0..r.len {
                let progress = node.progress(r.old[new]);
                let (tag, snapshot) = match progress.flow() {
                    Flow::Probe => (0, None),
                    Flow::Replicate => (1, None),
                    Flow::Snapshot { last_index } => (2, Some(last_index)),
                };
                let flow = tag | (progress.inflight().len() as u64) << 2;
                h.write_u64((progress.next() | flow << 16) << 32 | progress.matched());
                for last in progress.inflight().chain(snapshot) {
                    h.write_u64(last);
                }
            }
        }
    }
    // The lease and CheckQuorum's record exist only with check-quorum (always false and 0
    // without it, so nothing is written then); the record matters on a leader only, and only
    // when the model reads it (`State::quorum_record`).
    if node.config().check_quorum {
        let active = if node.is_leader() && quorum_record {
            r.servers(node.recent_active())
        } else {
            0
        };
        h.write_u8(u8::from(node.leader_contact()));
        h.write_u8(active);
    }
}

/// Terms, indices and log lengths of model states are far below 2^32 (terms are at most
/// `TERM_LIMIT`, logs at most `LOG_LIMIT` entries, so a log length also fits the byte it is
/// packed into here), so pairs of them pack into one `u64`.
fn hash_hard<H: Hasher>(hard: &HardState<Cmd>, r: &Renaming, h: &mut H) {
    let vote = hard
        .voted_for
        .map_or(u64::from(u8::MAX), |v| r.id(v).into());
    h.write_u64(hard.current_term << 16 | vote << 8 | hard.log.len() as u64);
    for entry in &hard.log {
        h.write_u64(entry.term << 32 | u64::from(entry.command.code()));
    }
    if let Some(snapshot) = &hard.snapshot {
        hash_snapshot(snapshot, h);
    }
}

/// A snapshot's last entry and its bytes (server ids appear in neither: nothing to rename).
fn hash_snapshot<H: Hasher>(snapshot: &Snapshot, h: &mut H) {
    h.write_u64(snapshot.last_index << 32 | snapshot.last_term);
    h.write(&snapshot.data);
}

fn hash_record<H: Hasher>(write: &Record<Cmd>, r: &Renaming, h: &mut H) {
    match write {
        Record::TermVote { term, voted_for } => {
            let vote = voted_for.map_or(u64::from(u8::MAX), |v| r.id(v).into());
            h.write_u64(term << 9 | vote << 1);
        }
        Record::Log { from, entries } => {
            h.write_u64(from << 17 | (entries.len() as u64) << 1 | 1);
            for entry in entries {
                h.write_u64(entry.term << 32 | u64::from(entry.command.code()));
            }
        }
        Record::Snapshot(snapshot) => {
            h.write_u64(1 << 63);
            hash_snapshot(snapshot, h);
        }
    }
}

fn hash_envelope<H: Hasher>(env: &Envelope<Cmd>, r: &Renaming, h: &mut H) {
    h.write_u8(r.id(env.from) << 4 | r.id(env.to));
    hash_message(&env.msg, h);
}

fn hash_message<H: Hasher>(msg: &Message<Cmd>, h: &mut H) {
    match msg {
        Message::RequestVote {
            term,
            last_log_index,
            last_log_term,
        } => {
            h.write_u64(term << 2);
            h.write_u64(last_log_index << 32 | last_log_term);
        }
        Message::RequestVoteReply { term, granted } => {
            h.write_u64(term << 2 | 1);
            h.write_u8(u8::from(*granted));
        }
        Message::AppendEntries(AppendEntries {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
        }) => {
            h.write_u64(term << 2 | 2);
            h.write_u64(prev_log_index << 32 | prev_log_term);
            h.write_u64(leader_commit << 32 | entries.len() as u64);
            for entry in entries {
                h.write_u64(entry.term << 32 | u64::from(entry.command.code()));
            }
        }
        Message::AppendEntriesReply { term, outcome } => {
            h.write_u64(term << 2 | 3);
            outcome.hash(h);
        }
        // The top bit sets the PreVote messages apart from the four tags above (terms are far
        // below 2^61), which keep the words they always had.
        Message::PreVote {
            term,
            last_log_index,
            last_log_term,
        } => {
            h.write_u64(1 << 63 | term << 1);
            h.write_u64(last_log_index << 32 | last_log_term);
        }
        Message::PreVoteReply { term, granted } => {
            h.write_u64(1 << 63 | term << 1 | 1);
            h.write_u8(u8::from(*granted));
        }
        // The top two bits set InstallSnapshot apart from the PreVote messages.
        Message::InstallSnapshot { term, snapshot } => {
            h.write_u64(3 << 62 | term);
            hash_snapshot(snapshot, h);
        }
    }
}

/// The network in the order its renaming would be stored in: messages by renamed channel
/// (sender, receiver) and, within one channel, in their current order (sorted for unordered
/// networks, send order for ordered ones), since a renaming maps a channel to one channel.
fn hash_network<H: Hasher>(network: &[Envelope<Cmd>], r: &Renaming, h: &mut H) {
    h.write_usize(network.len());
    if r.is_identity() {
        return network.iter().for_each(|env| hash_envelope(env, r, h));
    }
    let channel = |env: &Envelope<Cmd>| (r.id(env.from), r.id(env.to));
    let mut next = network.iter().map(channel).min();
    while let Some(current) = next {
        next = None;
        for env in network {
            let c = channel(env);
            if c == current {
                hash_envelope(env, r, h);
            } else if c > current && next.is_none_or(|n| c < n) {
                next = Some(c);
            }
        }
    }
}

/// Client slots name a server only while waiting on it; client ids stay as they are, since the
/// linearizability history cannot be renamed.
fn hash_clients<H: Hasher>(clients: &Clients, r: &Renaming, h: &mut H) {
    h.write_usize(clients.slots.len());
    for slot in &clients.slots {
        h.write_u8(slot.seq);
        match slot.status {
            Status::Idle => h.write_u8(0),
            Status::Retrying => h.write_u8(1),
            Status::Waiting { server, index } => {
                h.write_u8(2);
                h.write_u64(index << 8 | u64::from(r.id(server)));
            }
            Status::Unknown => h.write_u8(3),
        }
        slot.session.hash(h);
        slot.reply.hash(h);
    }
    h.write_u8(clients.timeouts);
    h.write_u8(clients.clock);
    clients.history.hash(h);
}

fn hash_ghost<H: Hasher>(ghost: &Ghost, r: &Renaming, h: &mut H) {
    let mut leaders = ghost.leaders;
    // Most terms have had no leader (`TERM_LIMIT` entries, a few terms explored).
    for mask in leaders.iter_mut().filter(|m| **m != 0) {
        *mask = r.mask(*mask);
    }
    h.write(&leaders);
    ghost.committed.hash(h);
    h.write_u16(u16::from(r.mask(ghost.restarted_since_commit)) << 8 | u16::from(ghost.violations));
    // Nothing when no snapshot event happened (every run without snapshots).
    if ghost.events != 0 {
        h.write_u8(ghost.events);
    }
}

fn rename_hard(hard: &HardState<Cmd>, r: &Renaming) -> HardState<Cmd> {
    HardState {
        voted_for: hard.voted_for.map(|v| r.id(v)),
        ..hard.clone()
    }
}

fn rename_record(write: &Record<Cmd>, r: &Renaming) -> Record<Cmd> {
    match write {
        Record::TermVote { term, voted_for } => Record::TermVote {
            term: *term,
            voted_for: voted_for.map(|v| r.id(v)),
        },
        Record::Log { .. } | Record::Snapshot(_) => write.clone(),
    }
}

/// A shared durable state under a renaming, still shared when the renaming does not touch it.
fn rename_durable(hard: &Arc<HardState<Cmd>>, r: &Renaming) -> Arc<HardState<Cmd>> {
    match hard.voted_for {
        Some(v) if r.id(v) != v => Arc::new(rename_hard(hard, r)),
        _ => Arc::clone(hard),
    }
}

fn rename_envelope(env: &Envelope<Cmd>, r: &Renaming) -> Envelope<Cmd> {
    Envelope {
        from: r.id(env.from),
        to: r.id(env.to),
        msg: env.msg.clone(),
    }
}

/// Client slots under a renaming: only the server a client waits on names one.
fn rename_clients(clients: &Arc<Clients>, r: &Renaming) -> Arc<Clients> {
    let mut renamed = Clients::clone(clients);
    for slot in &mut renamed.slots {
        if let Status::Waiting { server, .. } = &mut slot.status {
            *server = r.id(*server);
        }
    }
    Arc::new(renamed)
}

impl State {
    /// This state with its servers renamed by `r`: the state symmetry reduction claims behaves
    /// like this one up to the renaming (`tests/symmetry.rs` checks that claim, and that a
    /// symmetric state hashes as its canonical renaming).
    pub fn renamed(&self, r: &Renaming, ordered: bool) -> State {
        let servers = (0..r.len).map(|new| {
            let server = &self.servers[r.old[new] as usize];
            Arc::new(Server {
                durable: rename_durable(&server.durable, r),
                node: server.node.as_ref().map(|n| n.relabeled(r.as_new_ids())),
                pending: server.pending.map(
                    |write| match write {
                        Write::Records(records) => {
                            Write::Records(records.iter().map(|w| rename_record(w, r)).collect())
                        }
                        Write::Purge { through } => Write::Purge { through: *through },
                    },
                    |env| rename_envelope(env, r),
                ),
                kv: server.kv.clone(),
                purged: server.purged,
            })
        });
        let mut network: Vec<_> = self
            .network
            .iter()
            .map(|env| rename_envelope(env, r))
            .collect();
        network::canonicalize(&mut network, ordered);
        let mut leaders = self.ghost.leaders;
        for mask in &mut leaders {
            *mask = r.mask(*mask);
        }
        State {
            servers: servers.collect(),
            network,
            clients: self.clients.as_ref().map(|c| rename_clients(c, r)),
            ghost: Ghost {
                leaders,
                restarted_since_commit: r.mask(self.ghost.restarted_since_commit),
                ..self.ghost.clone()
            },
            panicked: self.panicked.clone(),
            ..*self
        }
    }
}
