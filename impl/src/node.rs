//! The Raft core of Figure 2: one server's state machine, sans-IO and deterministic.
//!
//! A runtime feeds events in (a message arrived, the election timer fired, the heartbeat timer
//! fired, a client proposed a command) and carries out the returned [`Effect`]s in order. The
//! core owns no clock, no randomness, no thread and no I/O, which is what lets the model checker,
//! the simulator and a real process run the very same code.

use std::collections::VecDeque;

use crate::limits::{DEFAULT_MAX_APPEND_BYTES, DEFAULT_MAX_APPEND_ENTRIES};
use crate::message::{AppendEntries, AppendOutcome, ConflictHint, Message};
use crate::rules::{self, Figure2, Rules};
use crate::server_set::ServerSet;
use crate::types::{self, Command, Entry, HardState, Index, NodeId, Record, Snapshot, Term};

/// The default bound on the AppendEntries a leader has in flight to one follower in the
/// replicate state ([`Flow::Replicate`]): with batches of up to `DEFAULT_MAX_APPEND_BYTES`, four
/// keep a follower's link busy for four round trips' worth of data, as etcd's default of 256
/// small messages does, while bounding what a leader queues for a slow follower.
pub const DEFAULT_MAX_INFLIGHT: usize = 4;

/// Static facts about one server of a cluster of `servers` servers with ids `0..servers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Config {
    pub id: NodeId,
    pub servers: u8,
    /// Whether a leader answers an AppendEntries reply with its next send at once (on by
    /// default), rather than at its next heartbeat, `replicate` or `replicate_to`: after a
    /// refusal for a log mismatch, the retry from the next index the reply moved it back to;
    /// after a success, the next batch when flow control is on and allows it, so that a follower
    /// that is behind catches up batch after batch at the speed of its replies. With it, a
    /// follower lagging by several terms catches up in one round trip per term instead of one
    /// heartbeat per term, which the 6.5840 backup test expects of fast backup. Only a refusal
    /// that did move the next index back is answered, so a stale or duplicated conflict never
    /// starts a second chain of retries. The model checker turns it off: it sends
    /// AppendEntries as an action of its own, which already explores every such send.
    pub send_on_reply: bool,
    /// Most bytes of entries one AppendEntries carries, as the codec encodes them
    /// ([`crate::codec::encoded_len`]). A batch always carries at least one entry whatever its
    /// size, so a log entry larger than this still reaches every follower (alone in its
    /// batch): a log that already holds an oversized entry makes progress. `usize::MAX` means
    /// no byte bound, and then no entry is measured (the model checker's setting: its commands
    /// are a few bytes, so only the entry bound can end a batch).
    pub max_append_bytes: usize,
    /// Most entries one AppendEntries carries (at least 1).
    pub max_append_entries: usize,
    /// Most AppendEntries with entries a leader has unacknowledged to one follower in the
    /// replicate state. 0 switches flow control off: every follower stays a probe that nothing
    /// pauses, each AppendEntries goes from its next index, which only replies move, and a
    /// success sends nothing (the schedule of the core before flow control, which the model
    /// checker keeps by default: see its `--window`).
    pub max_inflight: usize,
    /// PreVote (dissertation §9.6): an election timeout makes a follower a pre-candidate
    /// ([`Role::PreCandidate`]), which raises its term and votes for itself only once a
    /// majority answered that they would vote for it (see `become_pre_candidate`,
    /// `on_pre_vote`). A server cut off from the majority then keeps its term, so it deposes
    /// nobody when it comes back. Off by default (the model's and the simulator's schedules);
    /// raftd turns it on.
    pub pre_vote: bool,
    /// CheckQuorum (dissertation §6.2) and the leader lease of §4.2.3, which only makes sense
    /// with it. A leader that heard from no majority between two `check_quorum()` calls steps
    /// down (see [`Node::check_quorum`]); a server that heard from its leader ignores RequestVote
    /// and PreVote of higher terms until the runtime says that contact expired (see
    /// `in_lease`). The lease stops a disruptor whose log is up to date, which PreVote cannot;
    /// CheckQuorum is what makes the lease safe for liveness: without it, a leader that can
    /// still reach some followers but hears back from no majority would keep them leased, and
    /// away from any election, for ever. Off by default; raftd turns it on.
    pub check_quorum: bool,
}

impl Config {
    pub fn new(id: NodeId, servers: u8) -> Config {
        assert!(
            id < servers,
            "server id {id} outside a cluster of {servers}"
        );
        Config {
            id,
            servers,
            send_on_reply: true,
            max_append_bytes: DEFAULT_MAX_APPEND_BYTES,
            max_append_entries: DEFAULT_MAX_APPEND_ENTRIES,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            pre_vote: false,
            check_quorum: false,
        }
    }

    /// The bounds on one AppendEntries (bytes, entries; at least one entry, a 0 is taken as
    /// 1) and on the batches in flight to one follower (0: flow control off).
    pub fn with_flow(
        self,
        max_append_bytes: usize,
        max_append_entries: usize,
        max_inflight: usize,
    ) -> Config {
        Config {
            max_append_bytes,
            max_append_entries: max_append_entries.max(1),
            max_inflight,
            ..self
        }
    }

    pub fn with_send_on_reply(self, send_on_reply: bool) -> Config {
        Config {
            send_on_reply,
            ..self
        }
    }

    pub fn with_pre_vote(self, pre_vote: bool) -> Config {
        Config { pre_vote, ..self }
    }

    pub fn with_check_quorum(self, check_quorum: bool) -> Config {
        Config {
            check_quorum,
            ..self
        }
    }

    /// Every server but this one.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        (0..self.servers).filter(move |p| *p != self.id)
    }

    /// Whether `count` servers form a majority of the cluster.
    pub fn is_quorum(&self, count: usize) -> bool {
        2 * count > self.servers as usize
    }
}

/// The three roles of §5.1, and the pre-candidate of §9.6 (with [`Config::pre_vote`]).
/// Serializable for the real runtime's status reports.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Role {
    Follower,
    Candidate,
    Leader,
    /// Asking for pre-votes for the next term, still in its own term with its vote unchanged
    /// (last, so that the other roles keep their order in states and status reports).
    PreCandidate,
}

/// What a step asks its runtime to do, in the order it must be done.
///
/// **The persistence contract.** A step's writes come first, in this order: the term/vote
/// record (when either changed), then the log record (when the log changed). Applying every
/// `Persist` a node ever emitted, in order, to the state it started from (with
/// [`HardState::apply`]) gives its [`Node::hard_state`]. A runtime may make writes durable
/// later than the step that emits them (a write-ahead log syncs in batches), but
/// **no `Send` may leave before every `Persist` emitted before it, by this step or an earlier
/// one, is durable**, and no client may hear that a command was applied before that either.
/// "Earlier one" matters to a pipelined runtime: a later step that writes nothing (a
/// duplicated AppendEntries, say) still acknowledges entries an earlier step wrote, so its
/// sends wait for those writes too. A crash may keep any prefix of the writes not yet
/// durable; the term/vote record comes first because a crash between the two records then
/// leaves a state the server could have reached anyway (having adopted the term, then
/// crashed before the entries arrived). A snapshot record comes last, after the log record
/// that drops a conflicting suffix (Figure 13, step 7) when there is one, so that a crash
/// between them leaves a shorter log, never a snapshot followed by entries that do not follow
/// it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Effect<C> {
    /// Write this record to stable storage (see the contract above).
    Persist(Record<C>),
    /// Transmit a message to a peer.
    Send { to: NodeId, msg: Message<C> },
    /// Hand a committed command to the state machine. Indices arrive in order, each once per
    /// incarnation of the node (a restarted node re-applies its log from just past its
    /// snapshot, index 1 without one: its runtime restores the service from
    /// [`HardState::snapshot`] before anything else).
    Apply { index: Index, command: C },
    /// Replace the state machine with this snapshot, which a leader sent (Figure 13, step 8):
    /// it holds every entry up to its `last_index`, and applies continue just past it. It comes
    /// in order with the `Apply`s.
    Restore(Snapshot),
    /// Restart the randomised election timeout: a valid leader was heard or a vote was granted.
    ResetElectionTimer,
}

/// A proposal was made to a server that does not believe it is the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("server is not the leader (last known leader: {leader_hint:?})")]
pub struct NotLeader {
    pub leader_hint: Option<NodeId>,
}

/// A message the core will not take, and why: [`Node::try_handle`] refuses it before any state
/// changes, so a runtime can log it (and, for a peer that keeps sending such, suspect it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The sender is not another server of this cluster.
    #[error("message from {from}, which is not a peer of server {me} in a cluster of {servers}")]
    NotAPeer {
        from: NodeId,
        me: NodeId,
        servers: u8,
    },
    /// Adopting the term would leave no term to start an election in: a server at
    /// `Term::MAX` could never increment it again, and `current_term + 1` would wrap to 0.
    /// Honest servers reach such a term only after 2^64 - 1 elections, so the message is forged
    /// (or corrupt).
    #[error("term {term} leaves no next term for an election")]
    TermExhausted { term: Term },
    /// An InstallSnapshot no honest leader sends: its last entry is of a term after the
    /// leader's own, or at an index past [`types::MAX_INDEX`]. Installed, the first would leave
    /// a state no restart accepts ([`HardState::check`]), the second indices that overflow.
    #[error("a snapshot ending at {last_index}:{last_term} from a leader of term {term}")]
    ImplausibleSnapshot {
        last_index: Index,
        last_term: Term,
        term: Term,
    },
}

/// A snapshot the service asked for ([`Node::snapshot`]) that the core cannot take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The state machine has not applied that far: a snapshot taken there would claim entries
    /// it does not hold.
    #[error("snapshot at index {index}, but only {applied} entries are applied")]
    NotApplied { index: Index, applied: Index },
}

/// A command accepted by a leader: where it sits in the log and what to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal<C> {
    pub index: Index,
    pub term: Term,
    pub effects: Vec<Effect<C>>,
}

/// The most servers a cluster may have: a candidate keeps the votes it was granted in a
/// [`ServerSet`], one bit per server id.
pub const MAX_SERVERS: usize = ServerSet::CAPACITY;

/// One Raft server. `Clone + Hash + Eq` so that a model checker can keep it in a state.
/// `R` is the rules it follows: Figure 2 unless a checker switches deliberate bugs on (see
/// [`crate::rules`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Node<C, R: Rules = Figure2> {
    config: Config,
    rules: R,
    hard: HardState<C>,
    role: Role,
    leader_hint: Option<NodeId>,
    commit_index: Index,
    last_applied: Index,
    /// The servers that granted this candidate its vote in the current term (or this
    /// pre-candidate its pre-vote for the next).
    votes: ServerSet,
    /// With [`Config::check_quorum`], a follower that heard from the leader of its term and
    /// whose contact has not expired since (the lease of §4.2.3; see `in_lease`).
    leader_contact: bool,
    /// With [`Config::check_quorum`], a leader's record of the servers it heard from since its
    /// last `check_quorum()`, itself included: etcd's `RecentActive`.
    recent_active: ServerSet,
    /// Leader's view of each server's log, by id (its own entry included, unused).
    progress: Vec<Progress>,
}

/// What a leader knows of one follower's log (Figure 2's nextIndex and matchIndex) and how it
/// sends to it, as etcd raft's `tracker.Progress`: kept together so that a node holds one vector
/// for all of it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Progress {
    /// Index of the next entry to send.
    next: Index,
    /// Highest index known replicated.
    matched: Index,
    flow: Flow,
    /// Probe: an AppendEntries went out since the last heartbeat or reply, so no other goes
    /// until one of those (never set with flow control off, `Config::max_inflight` 0).
    probe_sent: bool,
    /// Replicate: the last index of each AppendEntries with entries sent and not yet
    /// acknowledged, oldest first; at most `Config::max_inflight`.
    inflight: VecDeque<Index>,
}

/// How a leader sends to one follower (etcd raft's `StateProbe` and `StateReplicate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flow {
    /// Where the follower's log matches the leader's is not known: one AppendEntries per
    /// heartbeat or reply, from `next`, until a success says where it matches. A leader
    /// starts every follower here, and a follower goes back here on any conflict.
    Probe,
    /// The match is known: each batch is sent once, `next` advances past it as it leaves
    /// (optimistically, as etcd does), and at most `Config::max_inflight` batches are
    /// unacknowledged. A lost batch shows as a conflict (the follower lacks the entry before the
    /// next one) and sends the follower back to probing.
    Replicate,
    /// The follower needs entries the leader compacted away (`next` is at or below its
    /// snapshot): an InstallSnapshot went out, and nothing else goes until a reply (etcd's
    /// `StateSnapshot`). The heartbeat sends the snapshot again, so a lost one is retried; a
    /// runtime that is still transferring an earlier copy keeps that transfer (the snapshot
    /// being sent lives in the message it carries until the transfer ends). Only a success at
    /// `last_index` or past it makes the follower a probe or a replicate stream again (etcd
    /// leaves `StateSnapshot` at the same point): a late success of an earlier AppendEntries,
    /// or a conflict (the follower answers an InstallSnapshot with a success, never a
    /// conflict), would only start a second transfer.
    Snapshot { last_index: Index },
}

impl Progress {
    fn new(next: Index) -> Progress {
        Progress {
            next,
            matched: 0,
            flow: Flow::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
        }
    }

    pub fn next(&self) -> Index {
        self.next
    }
    pub fn matched(&self) -> Index {
        self.matched
    }
    pub fn flow(&self) -> Flow {
        self.flow
    }
    /// Probe: whether a message went out since the last heartbeat or reply.
    pub fn probe_sent(&self) -> bool {
        self.probe_sent
    }
    /// Replicate: the last index of each batch in flight, oldest first.
    pub fn inflight(&self) -> impl ExactSizeIterator<Item = Index> + '_ {
        self.inflight.iter().copied()
    }

    /// Back to probing from `next` (a conflict, or a repair of the leader's own log).
    fn become_probe(&mut self, next: Index) {
        self.flow = Flow::Probe;
        self.next = next;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// A success showed where the follower matches: stream from just past it.
    fn become_replicate(&mut self) {
        self.flow = Flow::Replicate;
        self.next = self.matched + 1;
        self.probe_sent = false;
        self.inflight.clear();
    }

    /// Whether a send that is not a heartbeat may go now: a probe that has none out, or a
    /// replicate stream with something new to send and room in its window.
    fn may_send(&self, last_index: Index, max_inflight: usize) -> bool {
        match self.flow {
            Flow::Probe => !self.probe_sent,
            Flow::Replicate => self.next <= last_index && self.inflight.len() < max_inflight,
            Flow::Snapshot { .. } => false,
        }
    }
}

/// What a follower's snapshot does to an AppendEntries ([`Node::skip_compacted`]).
enum Compacted {
    /// Everything the request carries is at or below the snapshot: it matches.
    Covered,
    /// The request carries an entry at the snapshot's index of another term.
    Inconsistent,
    /// The request (trimmed to start at the snapshot) goes through the usual checks.
    Rest,
}

/// The effects a step gathers before they are put in contract order: sends and applies are
/// kept as effects already, so that a step allocates one vector at most.
struct Outbox<C, R: Rules> {
    /// `current_term` or `voted_for` changed: a term/vote record is due.
    term_vote_changed: bool,
    /// The lowest index from which the log changed, if it did: a log record is due.
    log_from: Option<Index>,
    /// Records a snapshot wrote, already applied to the node's state with
    /// [`HardState::apply`] (the one rule for what they mean), in order: they go after the
    /// term/vote and log records.
    compaction: Vec<Record<C>>,
    /// What the rules remember of this step (nothing for Figure 2).
    step: R::Step<C>,
    /// `Effect::Send`s, in the order they were made.
    sends: Vec<Effect<C>>,
    /// `Effect::Apply`s, in index order.
    applies: Vec<Effect<C>>,
    reset_timer: bool,
}

impl<C, R: Rules> Outbox<C, R> {
    fn new() -> Self {
        Outbox {
            term_vote_changed: false,
            log_from: None,
            compaction: Vec::new(),
            step: R::Step::default(),
            sends: Vec::new(),
            applies: Vec::new(),
            reset_timer: false,
        }
    }

    fn send(&mut self, to: NodeId, msg: Message<C>) {
        self.sends.push(Effect::Send { to, msg });
    }

    /// The log changed at `index` (and perhaps after it).
    fn log_changed_from(&mut self, index: Index) {
        self.log_from = Some(self.log_from.map_or(index, |f| f.min(index)));
    }
}

impl<C: Command> Node<C> {
    /// A server starting from `hard` (the default `HardState` for a brand new server, or what
    /// its store recovered after a crash). All volatile state starts afresh, as after a reboot.
    pub fn new(config: Config, hard: HardState<C>) -> Node<C> {
        Node::with_rules(config, Figure2, hard)
    }
}

impl<C: Command, R: Rules> Node<C, R> {
    /// [`Node::new`] following `rules` (deliberate bugs, for the checkers). A server that
    /// starts from a snapshot has applied everything it covers (its runtime restores the service
    /// from it), and that much is known committed.
    pub fn with_rules(config: Config, rules: R, hard: HardState<C>) -> Node<C, R> {
        assert!(
            config.servers as usize <= MAX_SERVERS,
            "at most {MAX_SERVERS} servers"
        );
        let n = config.servers as usize;
        let applied = hard.snapshot_index();
        Node {
            config,
            rules,
            hard,
            role: Role::Follower,
            leader_hint: None,
            commit_index: applied,
            last_applied: applied,
            votes: ServerSet::EMPTY,
            leader_contact: false,
            recent_active: ServerSet::EMPTY,
            progress: vec![Progress::new(1); n],
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn rules(&self) -> &R {
        &self.rules
    }
    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    pub fn current_term(&self) -> Term {
        self.hard.current_term
    }
    pub fn voted_for(&self) -> Option<NodeId> {
        self.hard.voted_for
    }
    /// The in-memory persistent state (which may be ahead of what is durable).
    pub fn hard_state(&self) -> &HardState<C> {
        &self.hard
    }
    /// The entries after the snapshot: `log()[i]` is at index `first_index() + i`.
    pub fn log(&self) -> &[Entry<C>] {
        &self.hard.log
    }
    /// Index of the first entry the log holds (or would hold): one past the snapshot.
    pub fn first_index(&self) -> Index {
        self.hard.first_index()
    }
    /// The snapshot the log starts after, if one was taken or installed.
    pub fn snapshot_state(&self) -> Option<&Snapshot> {
        self.hard.snapshot.as_ref()
    }
    pub fn commit_index(&self) -> Index {
        self.commit_index
    }
    pub fn last_applied(&self) -> Index {
        self.last_applied
    }
    /// The server this one last heard from as leader of its current term.
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.leader_hint
    }
    /// Leader's view of the highest index known replicated on `peer` (0 on non-leaders).
    pub fn match_index(&self, peer: NodeId) -> Index {
        self.progress[peer as usize].matched
    }
    /// Candidate's tally: the servers that granted their vote in the current term
    /// (stale outside the candidate role).
    pub fn votes_granted(&self) -> ServerSet {
        self.votes
    }
    /// Whether this follower is within the lease of §4.2.3: it heard from its leader and the
    /// runtime has not said since that the contact expired (always false without
    /// [`Config::check_quorum`]).
    pub fn leader_contact(&self) -> bool {
        self.leader_contact
    }
    /// Leader's record of the servers heard from since the last `check_quorum()` (empty
    /// without [`Config::check_quorum`], stale outside the leader role).
    pub fn recent_active(&self) -> ServerSet {
        self.recent_active
    }
    /// Leader's next index to send to `peer`.
    pub fn next_index(&self, peer: NodeId) -> Index {
        self.progress[peer as usize].next
    }
    /// Leader's whole view of `peer` (stale outside the leader role).
    pub fn progress(&self, peer: NodeId) -> &Progress {
        &self.progress[peer as usize]
    }

    /// The same server in a cluster whose ids were renamed by `rename` (`rename[old] == new`,
    /// a permutation of `0..servers`). Model checkers use it for symmetry reduction: Raft treats
    /// every id alike, so a renamed state behaves exactly like the original.
    pub fn relabeled(&self, rename: &[NodeId]) -> Node<C, R> {
        let n = self.config.servers as usize;
        assert_eq!(rename.len(), n, "a renaming must cover the {n} servers");
        let map = |id: NodeId| rename[id as usize];
        let mut hard = self.hard.clone();
        hard.voted_for = hard.voted_for.map(map);
        let votes = self.votes.relabel(rename);
        let recent_active = self.recent_active.relabel(rename);
        let mut progress = self.progress.clone();
        for (old, &new) in rename.iter().enumerate() {
            progress[new as usize] = self.progress[old].clone();
        }
        Node {
            config: Config {
                id: map(self.config.id),
                ..self.config
            },
            rules: self.rules,
            hard,
            role: self.role,
            leader_hint: self.leader_hint.map(map),
            commit_index: self.commit_index,
            last_applied: self.last_applied,
            votes,
            leader_contact: self.leader_contact,
            recent_active,
            progress,
        }
    }

    /// The election timer fired: a follower or candidate starts an election for the next term
    /// (§5.2), or with [`Config::pre_vote`] first asks whether it could win one (§9.6). A
    /// leader ignores it, and so does a server whose term has no successor (only a state
    /// written by a build without [`Refusal::TermExhausted`] can hold `Term::MAX`).
    pub fn election_timeout(&mut self) -> Vec<Effect<C>> {
        let mut out = Outbox::new();
        let next_term = types::next_term(self.hard.current_term);
        if let (false, Some(next_term)) = (self.role == Role::Leader, next_term) {
            if self.config.pre_vote {
                self.become_pre_candidate(next_term, &mut out);
            } else {
                self.become_candidate(next_term, &mut out);
            }
        }
        self.finish(out)
    }

    /// The runtime's lease clock ran out (with [`Config::check_quorum`]): the minimum election
    /// timeout has passed since this server last heard from its leader (a runtime measures it
    /// from the last [`Effect::ResetElectionTimer`], which every such contact emits). From now
    /// on it considers RequestVote and PreVote of higher terms again. No effects: only
    /// volatile state changes. The core owns no clock, so this is the one way a lease ends
    /// short of a new term or an election of its own.
    pub fn leader_contact_expired(&mut self) {
        self.leader_contact = false;
    }

    /// CheckQuorum (dissertation §6.2, with [`Config::check_quorum`]): the runtime calls this
    /// once every election timeout (its minimum). A leader that heard from no majority, itself
    /// included, since the previous call (or since it won, counting its voters) steps down to
    /// follower in its term; one that did starts a fresh round. Anyone else ignores it. A
    /// leader that can no longer reach a majority thus stops holding its followers' leases
    /// and stops accepting proposals it could never commit. No effects.
    pub fn check_quorum(&mut self) {
        if !(self.config.check_quorum && self.role == Role::Leader) {
            return;
        }
        if self.config.is_quorum(self.recent_active.len()) {
            self.recent_active = ServerSet::only(self.id());
        } else {
            self.become_follower(None);
        }
    }

    /// The heartbeat timer fired: a leader sends one AppendEntries to every peer, whatever its
    /// flow state (see [`Node::replicate_to`]).
    pub fn broadcast_append(&mut self) -> Vec<Effect<C>> {
        let mut out = Outbox::new();
        if self.role == Role::Leader {
            let config = self.config;
            for peer in config.peers() {
                self.send_append(peer, config.max_append_entries, &mut out);
            }
        }
        self.finish(out)
    }

    /// New entries are in the log: a leader sends the next batch to every peer whose flow
    /// allows it now (a probe with none out, a replicate stream with room in its window), and
    /// nothing to the others, which the heartbeat or their next reply serves. This is what a
    /// runtime calls after proposals, so that a follower that is down or behind costs one
    /// batch per heartbeat, not the missing tail on every proposal.
    pub fn replicate(&mut self) -> Vec<Effect<C>> {
        let mut out = Outbox::new();
        if self.role == Role::Leader {
            let config = self.config;
            for peer in config.peers() {
                self.send_if_allowed(peer, &mut out);
            }
        }
        self.finish(out)
    }

    /// The heartbeat for one peer: a leader sends `peer` one AppendEntries from its next index,
    /// whatever its flow state. A probe carries the next batch; a replicate stream the next
    /// batch if its window has room, else none: that empty request, from `next`, is refused if
    /// the follower lacks what was sent before it (a batch was lost), which puts the follower
    /// back to probing.
    pub fn replicate_to(&mut self, peer: NodeId) -> Vec<Effect<C>> {
        self.replicate_to_at_most(peer, self.config.max_append_entries)
    }

    /// [`Node::replicate_to`] with a batch of at most `max_entries` entries (and at most the
    /// configured ones; at least one when there is any to send). A model checker calls it with
    /// every count from 1 up to its bound, since a byte bound may cut a batch after any entry.
    pub fn replicate_to_at_most(&mut self, peer: NodeId, max_entries: usize) -> Vec<Effect<C>> {
        let mut out = Outbox::new();
        if self.role == Role::Leader && peer != self.id() {
            self.send_append(
                peer,
                max_entries.min(self.config.max_append_entries),
                &mut out,
            );
        }
        self.finish(out)
    }

    /// A client asks to replicate `command`. A leader appends it to its log (to be replicated
    /// by later `replicate_to` / `broadcast_append` calls); anyone else refuses.
    pub fn propose(&mut self, command: C) -> Result<Proposal<C>, NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader {
                leader_hint: self.leader_hint,
            });
        }
        let term = self.hard.current_term;
        self.hard.log.push(Entry { term, command });
        let index = self.hard.last_index();
        let mut out = Outbox::new();
        out.log_changed_from(index);
        self.advance_leader_commit(&mut out);
        Ok(Proposal {
            index,
            term,
            effects: self.finish(out),
        })
    }

    /// The service saved its state after applying every entry up to `index` (Figure 13; the
    /// 6.5840 `Snapshot(index, snapshot)`): the log now starts after `index`, and `data` is what
    /// a follower that lacks those entries is sent. One record says both
    /// ([`Record::Snapshot`]), so a store can never hold the shorter log without the snapshot
    /// that replaces its prefix. An index the snapshot already covers changes nothing.
    pub fn snapshot(
        &mut self,
        index: Index,
        data: Vec<u8>,
    ) -> Result<Vec<Effect<C>>, SnapshotError> {
        if index > self.last_applied {
            return Err(SnapshotError::NotApplied {
                index,
                applied: self.last_applied,
            });
        }
        let mut out = Outbox::new();
        if let Some(last_term) = self.hard.entry(index).map(|e| e.term) {
            let snapshot = Snapshot {
                last_index: index,
                last_term,
                data,
            };
            self.compact(Record::Snapshot(snapshot), &mut out);
        }
        Ok(self.finish(out))
    }

    /// Applies a record of a snapshot step to this node's state (by [`HardState::apply`], the
    /// rule every store replays it with) and queues it to be written.
    fn compact(&mut self, record: Record<C>, out: &mut Outbox<C, R>) {
        let applied = self.hard.apply(record.clone());
        debug_assert!(
            applied.is_ok(),
            "the core only writes records that fit its log"
        );
        out.compaction.push(record);
    }

    /// A message from `from` arrived. One the core refuses ([`Node::try_handle`]) is ignored.
    pub fn handle(&mut self, from: NodeId, msg: Message<C>) -> Vec<Effect<C>> {
        self.try_handle(from, msg).unwrap_or_default()
    }

    /// A message from `from` arrived: its effects, or why the core refused it without changing
    /// anything.
    pub fn try_handle(&mut self, from: NodeId, msg: Message<C>) -> Result<Vec<Effect<C>>, Refusal> {
        if !types::is_peer(self.id(), self.config.servers.into(), from) {
            return Err(Refusal::NotAPeer {
                from,
                me: self.id(),
                servers: self.config.servers,
            });
        }
        if types::next_term(msg.term()).is_none() {
            return Err(Refusal::TermExhausted { term: msg.term() });
        }
        if let Message::InstallSnapshot { term, snapshot } = &msg {
            if snapshot.last_term > *term || snapshot.last_index > types::MAX_INDEX {
                return Err(Refusal::ImplausibleSnapshot {
                    last_index: snapshot.last_index,
                    last_term: snapshot.last_term,
                    term: *term,
                });
            }
        }
        if self.ignores_for_good(&msg) || self.in_lease(&msg) {
            return Ok(Vec::new());
        }
        let mut out = Outbox::new();
        // Figure 2, all servers: a higher term is adopted before the message is looked at;
        // except (§9.6) a PreVote, which asks about a term without starting it, and a granted
        // PreVoteReply, whose term is the one its pre-candidate asked about.
        let asks_about_term = match msg {
            Message::PreVote { .. } => true,
            Message::PreVoteReply { granted, .. } => granted,
            _ => false,
        };
        if msg.term() > self.hard.current_term && !asks_about_term {
            let keeps_leading = self.rules.keeps_leading(&msg);
            self.take_term(msg.term(), &mut out);
            if !(self.role == Role::Leader && keeps_leading) {
                self.become_follower(None);
            }
        }
        let msg_term = msg.term();
        match msg {
            Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            } => self.on_request_vote(from, term, last_log_index, last_log_term, &mut out),
            Message::RequestVoteReply { term, granted } => {
                self.on_vote_reply(from, term, granted, &mut out)
            }
            Message::AppendEntries(append) => self.on_append(from, append, &mut out),
            Message::AppendEntriesReply { term, outcome } => {
                self.on_append_reply(from, term, outcome, &mut out)
            }
            Message::PreVote {
                term,
                last_log_index,
                last_log_term,
            } => self.on_pre_vote(from, term, last_log_index, last_log_term, &mut out),
            Message::PreVoteReply { term, granted } => {
                self.on_pre_vote_reply(from, term, granted, &mut out)
            }
            Message::InstallSnapshot { term, snapshot } => {
                self.on_install_snapshot(from, term, snapshot, &mut out)
            }
        }
        self.note_active(from, msg_term);
        Ok(self.finish(out))
    }

    /// Whether `msg` is a reply this server ignores now and, its current term never going
    /// down and a follower of a term never leading in it, for good: a reply of an older term,
    /// a vote or acknowledgement of its term while it follows or pre-campaigns, or a refused
    /// vote of its term unless it notes contact ([`rules::ignored_for_good`], under rules that
    /// say so). Handling it would change nothing and emit nothing, so the
    /// core returns at once; the model checker drops such a reply from its network.
    pub fn ignores_for_good(&self, msg: &Message<C>) -> bool {
        let follows = matches!(self.role, Role::Follower | Role::PreCandidate);
        let term = self.hard.current_term;
        rules::ignored_for_good(&self.rules, msg, term, follows, self.config.check_quorum)
    }

    /// The leader lease (dissertation §4.2.3, with [`Config::check_quorum`]): "if a server
    /// receives a RequestVote request within the minimum election timeout of hearing from a
    /// current leader, it does not update its term or grant its vote". Exactly: a RequestVote
    /// or PreVote of a term above this server's is ignored whole (no term taken, no reply)
    /// while it is the leader, or a follower in contact with its leader (`leader_contact`: it
    /// accepted an AppendEntries of its current term and neither a new term, an election of its
    /// own nor [`Node::leader_contact_expired`] came since). A vote request of its own term is
    /// answered as ever: it cannot depose anyone. PreVote compares logs only, so a disruptor
    /// whose log is up to date passes it; this is what stops that one.
    fn in_lease(&self, msg: &Message<C>) -> bool {
        let asks_for_votes = matches!(msg, Message::RequestVote { .. } | Message::PreVote { .. });
        self.config.check_quorum
            && asks_for_votes
            && msg.term() > self.hard.current_term
            && (self.role == Role::Leader || self.leader_contact)
    }

    /// CheckQuorum's record (etcd's `RecentActive`): a leader counts a peer as heard from when
    /// any message of its current term arrives from it (replies to its AppendEntries, mostly).
    fn note_active(&mut self, from: NodeId, term: Term) {
        if self.config.check_quorum && self.role == Role::Leader && term == self.hard.current_term {
            self.recent_active.insert(from);
        }
    }

    fn reply(&self, to: NodeId, msg: Message<C>, out: &mut Outbox<C, R>) {
        self.rules.on_reply(&mut out.step);
        out.send(to, msg);
    }

    /// Figure 2, all servers: a term higher than ours is adopted, with no vote cast in it yet.
    fn take_term(&mut self, term: Term, out: &mut Outbox<C, R>) {
        self.hard.current_term = term;
        self.hard.voted_for = None;
        out.term_vote_changed = true;
    }

    /// Follower (§5.2): stops campaigning or leading; `leader` is the leader of the current term,
    /// when one was heard.
    /// Hearing from the leader (`Some`) starts the lease of §4.2.3 with
    /// [`Config::check_quorum`].
    fn become_follower(&mut self, leader: Option<NodeId>) {
        self.role = Role::Follower;
        self.leader_hint = leader;
        self.leader_contact = leader.is_some() && self.config.check_quorum;
    }

    /// Pre-candidate (dissertation §9.6, with [`Config::pre_vote`]): asks every peer whether
    /// it would vote for it in `term` (its current term + 1) with a PreVote carrying that term
    /// and its last log position, and stands for election in `term` only once a majority,
    /// itself included, said yes (`on_pre_vote_reply`). It changes neither its term nor its
    /// vote, so it persists nothing: a server cut off from the majority asks again and again
    /// and keeps its term. It stops following (no leader, no lease) and asks the runtime to
    /// re-arm its election timer, as a candidate does, so that an unanswered round is retried.
    /// A single server is a majority of its own and stands at once.
    fn become_pre_candidate(&mut self, term: Term, out: &mut Outbox<C, R>) {
        self.role = Role::PreCandidate;
        self.leader_hint = None;
        self.leader_contact = false;
        out.reset_timer = true;
        self.votes = ServerSet::only(self.id());
        if self.config.is_quorum(self.votes.len()) {
            return self.become_candidate(term, out);
        }
        let (last_log_index, last_log_term) = (self.hard.last_index(), self.hard.last_term());
        for peer in self.config.peers() {
            out.send(
                peer,
                Message::PreVote {
                    term,
                    last_log_index,
                    last_log_term,
                },
            );
        }
    }

    /// Candidate (§5.2): a new term, a vote for itself, RequestVote to every peer. A single
    /// server is a majority of its own and leads at once.
    fn become_candidate(&mut self, term: Term, out: &mut Outbox<C, R>) {
        self.hard.current_term = term;
        self.hard.voted_for = Some(self.id());
        out.term_vote_changed = true;
        out.reset_timer = true;
        self.role = Role::Candidate;
        self.leader_hint = None;
        self.leader_contact = false;
        self.votes = self.rules.kept_votes(self.votes).with(self.id());
        if self.config.is_quorum(self.votes.len()) {
            return self.become_leader(out);
        }
        let (last_log_index, last_log_term) = (self.hard.last_index(), self.hard.last_term());
        for peer in self.config.peers() {
            out.send(
                peer,
                Message::RequestVote {
                    term,
                    last_log_index,
                    last_log_term,
                },
            );
        }
    }

    /// §5.2 and §5.4.1: one vote per term, only for a log at least as up to date as ours.
    fn on_request_vote(
        &mut self,
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        out: &mut Outbox<C, R>,
    ) {
        let granted = self.would_vote(from, term, last_log_index, last_log_term);
        if granted {
            if self.hard.voted_for != Some(from) {
                self.hard.voted_for = Some(from);
                out.term_vote_changed = true;
            }
            out.reset_timer = true;
        }
        let reply = Message::RequestVoteReply {
            term: self.hard.current_term,
            granted,
        };
        self.reply(from, reply, out);
    }

    /// Whether this server would vote for `from` in `term` (which a RequestVote has already
    /// made its current term, if it was higher), given `from`'s last log position: one vote per
    /// term (§5.2), only for a log at least as up to date (§5.4.1). The one rule behind both a
    /// vote and a pre-vote.
    fn would_vote(
        &self,
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
    ) -> bool {
        let free = term > self.hard.current_term
            || (term == self.hard.current_term && self.rules.vote_free(self.hard.voted_for, from));
        free && self.candidate_up_to_date(last_log_index, last_log_term)
    }

    /// PreVote, receiver (§9.6): grants when a RequestVote of the same term and log would be
    /// granted now (`would_vote`; for a term above ours, when the log is up to date), and changes
    /// nothing: no term taken, no vote recorded, no timer reset, nothing persisted. A grant
    /// carries the term asked about, a refusal this server's term (so a pre-candidate left
    /// behind learns the term and follows). The lease (`in_lease`) keeps a follower that
    /// hears from its leader from answering at all.
    fn on_pre_vote(
        &self,
        from: NodeId,
        term: Term,
        last_log_index: Index,
        last_log_term: Term,
        out: &mut Outbox<C, R>,
    ) {
        let granted = self.would_vote(from, term, last_log_index, last_log_term);
        let reply = Message::PreVoteReply {
            term: if granted {
                term
            } else {
                self.hard.current_term
            },
            granted,
        };
        out.send(from, reply);
    }

    /// PreVote, pre-candidate (§9.6): a grant for the term it asked about (its term + 1)
    /// counts; a majority, itself included, makes it a candidate of that term. A refusal of a
    /// higher term has already made it a follower in that term (`try_handle`); other refusals
    /// leave it waiting, and its next election timeout asks again. Grants of an earlier round
    /// in the same term still count: a pre-vote is advice, the real vote decides.
    fn on_pre_vote_reply(
        &mut self,
        from: NodeId,
        term: Term,
        granted: bool,
        out: &mut Outbox<C, R>,
    ) {
        let current = self.hard.current_term;
        if self.role == Role::Candidate && self.rules.pre_vote_grant_is_vote() {
            return self.on_vote_reply(from, term, granted, out);
        }
        if self.role != Role::PreCandidate || !granted || current.checked_add(1) != Some(term) {
            return;
        }
        self.votes.insert(from);
        if self.config.is_quorum(self.votes.len()) {
            self.become_candidate(term, out);
        }
    }

    fn candidate_up_to_date(&self, last_log_index: Index, last_log_term: Term) -> bool {
        let mine = (self.hard.last_index(), self.hard.last_term());
        self.rules.up_to_date((last_log_index, last_log_term), mine)
    }

    fn on_vote_reply(&mut self, from: NodeId, term: Term, granted: bool, out: &mut Outbox<C, R>) {
        let counts = self.rules.counts_vote(term, self.hard.current_term);
        if self.role != Role::Candidate || !counts || !granted {
            return;
        }
        self.votes.insert(from);
        if self.config.is_quorum(self.votes.len()) {
            self.become_leader(out);
        }
    }

    /// Leader (§5.2): fresh progress for every follower and an AppendEntries to each at once.
    /// With [`Config::check_quorum`], its voters count as heard from for the first check.
    fn become_leader(&mut self, out: &mut Outbox<C, R>) {
        self.role = Role::Leader;
        self.leader_hint = Some(self.id());
        if self.config.check_quorum {
            self.recent_active = self.votes;
        }
        let next = self.hard.last_index() + 1;
        self.progress.fill(Progress::new(next));
        // Figure 2: upon election, send initial empty AppendEntries to each server.
        let config = self.config;
        for peer in config.peers() {
            self.send_append(peer, config.max_append_entries, out);
        }
    }

    /// Flow control (etcd's `maybeSendAppend`): the next batch to `peer`, when its flow allows a
    /// send that is not a heartbeat (see [`Progress::may_send`]).
    fn send_if_allowed(&mut self, peer: NodeId, out: &mut Outbox<C, R>) {
        let allowed =
            self.progress[peer as usize].may_send(self.hard.last_index(), self.config.max_inflight);
        if allowed {
            self.send_append(peer, self.config.max_append_entries, out);
        }
    }

    /// Sends `peer` one AppendEntries from its next index, carrying the batch [`Node::batch`]
    /// cuts (at most `max_entries` entries), and records it in the peer's flow: a probe is out;
    /// a replicate stream advances `next` past the batch and counts it in flight, or, with its
    /// window full, sends no entries.
    fn send_append(&mut self, peer: NodeId, max_entries: usize, out: &mut Outbox<C, R>) {
        let max_inflight = self.config.max_inflight;
        let progress = &self.progress[peer as usize];
        let next = progress.next;
        if let Some(snapshot) = self.hard.snapshot.as_ref().filter(|s| next <= s.last_index) {
            if !self.rules.sends_snapshot() {
                return;
            }
            return self.send_snapshot(peer, snapshot.clone(), out);
        }
        let prev_log_index = next - 1;
        let prev_log_term = self.hard.term_at(prev_log_index).unwrap_or(0);
        let window_full =
            progress.flow == Flow::Replicate && progress.inflight.len() >= max_inflight;
        let entries = if window_full {
            Vec::new()
        } else {
            self.batch(next, max_entries).to_vec()
        };
        let progress = &mut self.progress[peer as usize];
        match progress.flow {
            // With flow control off nothing pauses a probe, and the node stays as it was. A
            // follower that waited for a snapshot but whose next index a conflict moved past
            // it is probed again.
            Flow::Probe | Flow::Snapshot { .. } => {
                progress.flow = Flow::Probe;
                progress.probe_sent = max_inflight > 0;
            }
            Flow::Replicate if !entries.is_empty() => {
                progress.next += entries.len() as Index;
                progress.inflight.push_back(progress.next - 1);
            }
            Flow::Replicate => {}
        }
        out.send(
            peer,
            Message::AppendEntries(AppendEntries {
                term: self.hard.current_term,
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit: self.commit_index,
            }),
        );
    }

    /// Figure 13, leader: `peer` needs entries this leader compacted away, so it gets the
    /// snapshot that replaced them, and its flow waits for the answer ([`Flow::Snapshot`]).
    fn send_snapshot(&mut self, peer: NodeId, snapshot: Snapshot, out: &mut Outbox<C, R>) {
        let progress = &mut self.progress[peer as usize];
        progress.flow = Flow::Snapshot {
            last_index: snapshot.last_index,
        };
        progress.probe_sent = false;
        progress.inflight.clear();
        let term = self.hard.current_term;
        out.send(peer, Message::InstallSnapshot { term, snapshot });
    }

    /// The entries one AppendEntries from `next` carries: at most `max_entries` and, past the
    /// first, at most `Config::max_append_bytes` encoded bytes in all. The first entry always
    /// goes, whatever its size, so that an entry above the byte bound (written by a build with a
    /// larger one, say) still reaches the followers; one above the peer frame limit
    /// (`limits::MAX_PEER_PAYLOAD`, which only a build that let such a command into its log
    /// could hold) is refused by every follower's transport, so that follower can never catch
    /// up past it, and the cluster needs that entry committed without it.
    fn batch(&self, next: Index, max_entries: usize) -> &[Entry<C>] {
        let tail = self.hard.entries_from(next);
        let most = tail.len().min(max_entries.max(1));
        if most <= 1 || self.config.max_append_bytes == usize::MAX {
            return &tail[..most];
        }
        let mut bytes = crate::codec::encoded_len(&tail[0]);
        let mut count = 1;
        for entry in &tail[1..most] {
            bytes = bytes.saturating_add(crate::codec::encoded_len(entry));
            if bytes > self.config.max_append_bytes {
                break;
            }
            count += 1;
        }
        &tail[..count]
    }

    /// Figure 2, AppendEntries RPC, receiver (§5.3), after the term was taken.
    fn on_append(&mut self, from: NodeId, append: AppendEntries<C>, out: &mut Outbox<C, R>) {
        if !(self.rules).accepts_append_term(append.term, self.hard.current_term) {
            return self.reject_append(from, append.prev_log_index, out);
        }
        if self.role != Role::Leader {
            self.become_follower(Some(from));
            out.reset_timer = true;
        } else if !self.rules.leader_accepts_append() {
            // Another leader of our own term: only reachable through rules that break Election
            // Safety; this leader keeps acting as one and does not answer.
            return;
        }
        let kept_vote = self.rules.vote_on_append(self.hard.voted_for);
        if kept_vote != self.hard.voted_for {
            self.hard.voted_for = kept_vote;
            out.term_vote_changed = true;
        }
        let early = (self.rules).commit_before_check(append.leader_commit, self.hard.last_index());
        if let Some(commit) = early {
            if commit > self.commit_index {
                self.commit_index = commit;
                self.apply_committed(out);
            }
        }
        let mut append = append;
        let last_new = append.last_new();
        match self.skip_compacted(&mut append) {
            // Everything up to the commit index matches too, for the same reason: answering
            // with it spares a leader that probes from far back one round trip per batch of
            // entries this server compacted away (etcd answers with its commit index the same).
            Compacted::Covered => {
                self.follower_commit(append.leader_commit, last_new, out);
                return self.reply_match(from, last_new.max(self.commit_index), out);
            }
            Compacted::Inconsistent => return self.reject_append(from, append.prev_log_index, out),
            Compacted::Rest => {}
        }
        if self.hard.term_at(append.prev_log_index) != Some(append.prev_log_term) {
            return self.reject_append(from, append.prev_log_index, out);
        }
        if self.append_entries(append.prev_log_index, append.entries, out)
            && self.role == Role::Leader
        {
            // Only with `Rules::leader_accepts_append`: the repair may have shortened a
            // leader's own log. Keep what it knows of its followers within that log, as sending
            // entries and counting replicas assume.
            let last = self.hard.last_index();
            for p in &mut self.progress {
                p.matched = p.matched.min(last);
                p.become_probe(p.next.min(last + 1));
            }
        }
        self.follower_commit(append.leader_commit, last_new, out);
        self.reply_match(from, last_new, out);
    }

    /// The success reply: this log matches the leader's up to `match_index`.
    fn reply_match(&self, to: NodeId, match_index: Index, out: &mut Outbox<C, R>) {
        let reply = Message::AppendEntriesReply {
            term: self.hard.current_term,
            outcome: AppendOutcome::Success { match_index },
        };
        self.reply(to, reply, out);
    }

    /// The entries of an AppendEntries that this server's snapshot already covers are
    /// committed, here and (Leader Completeness, §5.4.3) on every leader of this term or a
    /// later one, so they match: they are dropped from the request, which then starts at the
    /// snapshot's last entry. The entry the request carries there must have the snapshot's term;
    /// one that has not comes from no honest leader and is refused.
    fn skip_compacted(&self, append: &mut AppendEntries<C>) -> Compacted {
        let snapshot_index = self.hard.snapshot_index();
        let covered = snapshot_index.saturating_sub(append.prev_log_index);
        if covered == 0 {
            return Compacted::Rest;
        }
        if append.last_new() <= snapshot_index {
            return Compacted::Covered;
        }
        // `covered` < entries.len(), since last_new = prev + len is past the snapshot.
        let at_snapshot = append.entries.drain(..covered as usize).last();
        if at_snapshot.map(|e| e.term) != Some(self.hard.snapshot_term()) {
            return Compacted::Inconsistent;
        }
        append.prev_log_index = snapshot_index;
        append.prev_log_term = self.hard.snapshot_term();
        Compacted::Rest
    }

    /// Figure 13, InstallSnapshot receiver, after the term was taken: an older term is refused
    /// (rule 1), as an AppendEntries of that term would be. A current leader's snapshot makes
    /// this server its follower; one at or below the commit index changes nothing (this log
    /// already holds, or covers, all it holds). Otherwise the log keeps the entries after the
    /// snapshot's last one when it holds that entry (rule 6) and drops them all when it does
    /// not (rule 7), and the answer is a success at the snapshot's last index. Rule 6 then
    /// replies without touching the state machine; here the state machine is replaced in
    /// both cases (rule 8), which comes to the same: the snapshot is past the commit index, so
    /// it holds committed entries this server had not applied, and applies go on after it.
    fn on_install_snapshot(
        &mut self,
        from: NodeId,
        term: Term,
        snapshot: Snapshot,
        out: &mut Outbox<C, R>,
    ) {
        let last_index = snapshot.last_index;
        if !(self.rules).accepts_append_term(term, self.hard.current_term) {
            return self.reject_append(from, last_index, out);
        }
        if self.role == Role::Leader {
            // Another leader of our own term: only reachable through rules that break Election
            // Safety (see `on_append`).
            return;
        }
        self.become_follower(Some(from));
        out.reset_timer = true;
        if (self.rules).installs_snapshot(last_index, self.commit_index) {
            self.install(snapshot, out);
        }
        self.reply_match(from, last_index, out);
    }

    /// Figure 13, rules 6 to 8, for a snapshot this server takes ([`Rules::keeps_suffix`]
    /// says whether the entries after it stay).
    fn install(&mut self, snapshot: Snapshot, out: &mut Outbox<C, R>) {
        let index = snapshot.last_index;
        let matches = self.hard.term_at(index) == Some(snapshot.last_term);
        if !self.rules.keeps_suffix(matches) {
            // Rule 7 drops the log from the entry that conflicts with the snapshot's last one:
            // it and all after it are uncommitted, and the snapshot covers everything before.
            let from = if matches { index + 1 } else { index };
            if from >= self.hard.first_index() && from <= self.hard.last_index() {
                let entries = Vec::new();
                self.compact(Record::Log { from, entries }, out);
            }
        }
        let term = (self.rules).term_after_install(self.hard.current_term, snapshot.last_term);
        if term != self.hard.current_term {
            self.hard.current_term = term;
            out.term_vote_changed = true;
        }
        self.compact(Record::Snapshot(snapshot.clone()), out);
        self.commit_index = self.commit_index.max(index);
        self.last_applied = index;
        out.applies.push(Effect::Restore(snapshot));
    }

    /// Figure 2, AppendEntries receiver, rules 1 and 2: a request of an older term, or one whose
    /// previous entry this log does not hold, is refused, with the fast-backup hint.
    fn reject_append(&self, from: NodeId, prev_log_index: Index, out: &mut Outbox<C, R>) {
        let reply = Message::AppendEntriesReply {
            term: self.hard.current_term,
            outcome: AppendOutcome::Conflict(self.conflict_hint(prev_log_index)),
        };
        self.reply(from, reply, out);
    }

    /// Figure 2, AppendEntries receiver, rule 5: commit up to `min(leaderCommit, index of last
    /// new entry)`, never down, and apply what that newly commits.
    fn follower_commit(&mut self, leader_commit: Index, last_new: Index, out: &mut Outbox<C, R>) {
        let new_commit = leader_commit.min(last_new);
        self.commit_index = self.rules.follower_commit(self.commit_index, new_commit);
        self.apply_committed(out);
    }

    /// Figure 2, AppendEntries receiver, rules 3 and 4 ([`Rules::append`]): puts `entries`
    /// after `prev_log_index` (at or past the snapshot). Returns whether the log changed, and marks where in `out`.
    fn append_entries(
        &mut self,
        prev_log_index: Index,
        entries: Vec<Entry<C>>,
        out: &mut Outbox<C, R>,
    ) -> bool {
        // The rules see the log after the snapshot, and positions in it (`skip_compacted`
        // made the request start at the snapshot or after it).
        let offset = self.hard.snapshot_index();
        let after = prev_log_index - offset;
        let changed = (self.rules).append(&mut self.hard.log, after, entries, &mut out.step);
        if let Some(from) = changed {
            out.log_changed_from(from + offset);
        }
        changed.is_some()
    }

    fn conflict_hint(&self, prev_log_index: Index) -> ConflictHint {
        let x_len = self.hard.last_index();
        match self.hard.term_at(prev_log_index) {
            Some(t) if prev_log_index > 0 => {
                // The entries held up to `prev_log_index` (none when it is the snapshot's).
                let first_held = self.hard.first_index();
                let held = prev_log_index.saturating_add(1).saturating_sub(first_held) as usize;
                let first = self.hard.log[..held]
                    .iter()
                    .rposition(|e| e.term != t)
                    .map_or(first_held.min(prev_log_index), |p| {
                        first_held + p as Index + 1
                    });
                ConflictHint {
                    x_term: Some(t),
                    x_index: first,
                    x_len,
                }
            }
            _ => ConflictHint {
                x_term: None,
                x_index: 0,
                x_len,
            },
        }
    }

    fn on_append_reply(
        &mut self,
        from: NodeId,
        term: Term,
        outcome: AppendOutcome,
        out: &mut Outbox<C, R>,
    ) {
        if let AppendOutcome::Success { match_index } = outcome {
            if term < self.hard.current_term {
                let held = match_index.saturating_sub(self.hard.snapshot_index());
                self.rules.on_stale_success(&self.hard.log, held);
            }
        }
        let success = matches!(outcome, AppendOutcome::Success { .. });
        let counts = (self.rules).counts_append_reply(term, self.hard.current_term, success);
        if self.role != Role::Leader || !counts {
            return;
        }
        let last_index = self.hard.last_index();
        let progress = &mut self.progress[from as usize];
        match outcome {
            AppendOutcome::Success { match_index } => {
                let known = (progress.matched, progress.next);
                (progress.matched, progress.next) =
                    self.rules.update_match(known, match_index, last_index);
                self.on_append_acked(from);
                self.advance_leader_commit(out);
                if self.config.send_on_reply && self.config.max_inflight > 0 {
                    self.send_if_allowed(from, out);
                }
            }
            // A follower answers a snapshot with a success: a conflict is an earlier
            // AppendEntries' (see `Flow::Snapshot`).
            AppendOutcome::Conflict(_) if matches!(progress.flow, Flow::Snapshot { .. }) => {}
            AppendOutcome::Conflict(hint) => {
                let first_held = self.hard.first_index();
                let next = match hint.x_term {
                    None => hint.x_len.saturating_add(1),
                    Some(x_term) => match self.hard.log.iter().rposition(|e| e.term == x_term) {
                        Some(pos) => first_held + pos as Index + 1,
                        None => hint.x_index,
                    },
                };
                let before = progress.next;
                let (low, high) = (progress.matched + 1, last_index.saturating_add(1));
                progress.become_probe(next.clamp(low, high.max(low)));
                if self.config.send_on_reply && progress.next < before {
                    self.send_append(from, self.config.max_append_entries, out);
                }
            }
        }
    }

    /// Flow control on a success (etcd's `MaybeUpdate` and `BecomeReplicate`): a probe learnt
    /// where the follower matches and starts streaming from there (unless flow control is off,
    /// `Config::max_inflight` 0, when it stays a probe whose next probe may go); a replicate
    /// stream frees the window slots of every batch the match covers.
    fn on_append_acked(&mut self, from: NodeId) {
        let pipelined = self.config.max_inflight > 0;
        let progress = &mut self.progress[from as usize];
        match progress.flow {
            Flow::Snapshot { last_index } if progress.matched < last_index => {}
            Flow::Probe | Flow::Snapshot { .. } if pipelined => progress.become_replicate(),
            Flow::Probe | Flow::Snapshot { .. } => {
                progress.flow = Flow::Probe;
                progress.probe_sent = false;
            }
            Flow::Replicate => {
                let matched = progress.matched;
                while progress
                    .inflight
                    .front()
                    .is_some_and(|last| *last <= matched)
                {
                    progress.inflight.pop_front();
                }
            }
        }
    }

    /// Figure 2, leaders: commit the highest index stored on a majority whose entry is of the
    /// current term (§5.4.2, Figure 8); earlier entries are committed with it.
    fn advance_leader_commit(&mut self, out: &mut Outbox<C, R>) {
        for n in (self.commit_index + 1..=self.hard.last_index()).rev() {
            let term = self.hard.term_at(n).unwrap_or(0);
            if !self.rules.commits_by_count(term, self.hard.current_term) {
                // Terms only decrease going back through the log: nothing older qualifies.
                break;
            }
            let replicas = (self.rules).replicas(
                1 + self
                    .config
                    .peers()
                    .filter(|p| self.progress[*p as usize].matched >= n)
                    .count(),
            );
            let acked = || {
                1 + (self.config.peers())
                    .filter(|p| self.progress[*p as usize].matched > 0)
                    .count()
            };
            if self.config.is_quorum(replicas)
                || (self.rules).commits_without_majority(replicas, acked)
            {
                self.commit_index = n;
                break;
            }
        }
        self.apply_committed(out);
    }

    fn apply_committed(&mut self, out: &mut Outbox<C, R>) {
        self.last_applied = (self.rules).applied_before(self.last_applied, self.commit_index);
        while self.last_applied < self.commit_index {
            // Everything past the snapshot is held; only rules that take `last_applied` back
            // (`Rules::applied_before`) could ask for a compacted entry, and those stop there.
            let Some(entry) = self.hard.entry(self.last_applied + 1) else {
                break;
            };
            self.last_applied += 1;
            out.applies.push(Effect::Apply {
                index: self.last_applied,
                command: entry.command.clone(),
            });
        }
    }

    /// The term/vote record of a step ([`Rules::term_vote_record`]).
    fn term_vote_record(&self) -> Record<C> {
        let (term, voted_for) =
            (self.rules).term_vote_record(self.hard.current_term, self.hard.voted_for);
        Record::TermVote { term, voted_for }
    }

    /// The log record of a step whose log changed from `from` on: the log from there to its
    /// end ([`Rules::log_record`]).
    fn log_record(&self, from: Index, step: &mut R::Step<C>) -> Record<C> {
        let mut entries = self.hard.entries_from(from).to_vec();
        self.rules.log_record(&mut entries, step);
        Record::Log { from, entries }
    }

    /// Puts a step's effects in contract order: the term/vote record, the log record, then
    /// sends, then applies, then the timer ([`Rules::sends_after`] says how many writes the
    /// sends follow).
    fn finish(&self, mut out: Outbox<C, R>) -> Vec<Effect<C>> {
        let mut effects = Vec::with_capacity(out.sends.len() + out.applies.len() + 3);
        let mut writes = Vec::new();
        if out.term_vote_changed {
            writes.push(Effect::Persist(self.term_vote_record()));
        }
        if let Some(from) = out.log_from {
            writes.push(Effect::Persist(self.log_record(from, &mut out.step)));
        }
        // The log record is read from the log as it ends the step: a step that also compacted
        // would start it inside the snapshot. No step does both.
        debug_assert!(out.log_from.is_none() || out.compaction.is_empty());
        // The rules place the sends among the term/vote and log records; the records of a
        // snapshot go with the last of those.
        let records = writes.len();
        let cut = self.rules.sends_after(&out.step, records);
        writes.extend(out.compaction.into_iter().map(Effect::Persist));
        let cut = if cut == records { writes.len() } else { cut };
        let after = writes.split_off(cut);
        effects.extend(writes);
        effects.extend(out.sends);
        effects.extend(after);
        effects.extend(out.applies);
        if out.reset_timer {
            effects.push(Effect::ResetElectionTimer);
        }
        effects
    }
}
