//! One state of the model: every server's durable and volatile parts, the network, the bounds
//! already used up, and the ghost history the properties are written against.
//!
//! The layout is chosen so that a state clones and hashes cheaply: small integer types, the
//! network as a canonically ordered vector (so equal multisets hash equally) and fixed arrays
//! for the ghost history.

use std::hash::Hash;
use std::sync::Arc;

use raft_impl::kv::KvStore;
use raft_impl::storage::{Held, HeldWrites};
use raft_impl::{Entry, Envelope, HardState, Index, MutationSet, Node, NodeId, Record, Term};

use crate::bounds::TERM_LIMIT;
pub use crate::cmd::Cmd;
use crate::kv::Clients;
use crate::panics::StepPanic;

/// One server: what survives a crash, and what does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// The last state made durable; a restart starts from it. Shared, since it changes far
    /// less often than the server is copied.
    pub durable: Arc<HardState<Cmd>>,
    /// The running node; `None` while crashed.
    pub node: Option<Node<Cmd, MutationSet>>,
    /// Deferred and WAL persistence only: writes not yet durable and the sends queued behind
    /// them, in emission order. A crash loses what it does not keep (see `Persistence`).
    pub pending: PendingQueue,
    /// With KV clients, the running server's key-value store: volatile, rebuilt after a restart
    /// from the durable snapshot, if any (`crate::snapshot::restore_kv`), then by re-applying
    /// the log after it. `None` without clients and while crashed.
    pub kv: Option<KvStore<MutationSet>>,
    /// `--storage wal`: the disk's log prefix was purged up to this index (0: never) while no
    /// durable snapshot covers it (only the `purge-before-snapshot-durable` bug lets that
    /// happen; see [`crate::snapshot`]). The entries up to it are gone from disk, and recovery
    /// refuses to start rather than fall back to an older state whose prefix is gone, so the
    /// server cannot restart until the snapshot's install record is durable too.
    pub purged: Index,
}

impl Server {
    /// The records of its pending writes, oldest first, one item per flush they need (none
    /// for a purge, which replays as nothing).
    pub fn pending_writes(&self) -> impl Iterator<Item = &[Record<Cmd>]> {
        self.pending.writes().map(Write::records)
    }

    /// Whether recovery from its disk would start: no purged prefix is left uncovered.
    pub fn recoverable(&self) -> bool {
        self.purged <= self.durable.snapshot_index()
    }

    /// How many flushes its pending writes need: each makes one [`Pending::Write`] durable
    /// (with deferred persistence one write may hold several records).
    pub fn pending_flushes(&self) -> usize {
        self.pending.write_count()
    }
}

/// An effect waiting for a flush in the deferred and WAL persistence modes: a write, the records
/// that become durable together at one `Flush` (the consecutive writes of one step with
/// deferred persistence, one record with a write-ahead log), or a send held behind one.
pub type Pending = Held<Write, Envelope<Cmd>>;

/// A server's pending writes and the sends held behind them.
pub type PendingQueue = HeldWrites<Write, Envelope<Cmd>>;

/// What one flush makes durable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Write {
    /// Records of the core, replayed by `HardState::apply`.
    Records(Vec<Record<Cmd>>),
    /// `--storage wal`: the deletion of the log prefix a snapshot replaces, the entries up to
    /// `through` (see [`crate::snapshot`]). Replays as nothing: once the snapshot's install
    /// record is durable, recovery starts from it and never reads that prefix.
    Purge { through: Index },
}

impl Write {
    /// The core's records this write makes durable (none for a purge).
    pub fn records(&self) -> &[Record<Cmd>] {
        match self {
            Write::Records(records) => records,
            Write::Purge { .. } => &[],
        }
    }
}

/// A command the ghost history knows to be committed, at the index of its position plus one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Committed {
    pub term: Term,
    pub command: Cmd,
    /// The lowest term in which some server held the entry as committed. Leaders of later
    /// terms must all hold it (Leader Completeness, §5.4).
    pub commit_term: Term,
}

impl Committed {
    /// Whether `entry` is this committed entry.
    pub fn is(&self, entry: Option<&Entry<Cmd>>) -> bool {
        entry.is_some_and(|e| e.term == self.term && e.command == self.command)
    }
}

/// A safety violation observed on a transition (rather than visible in one state); recorded in
/// the ghost history so that a state property can report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A leader removed or changed an entry of its own log while staying leader of its term.
    LeaderAppendOnly = 0,
    /// A server applied a command different from the one committed at that index.
    StateMachineSafety = 1,
    /// A server held an index as committed with an entry other than the committed one.
    CommittedOverwritten = 2,
    /// A server's commit index went down without a restart.
    CommitIndexDecreased = 3,
    /// A leader's match index for a peer went down within its term.
    MatchIndexDecreased = 4,
    /// A server became leader of a term that already had one, itself included (a server that
    /// wins the same term again after a restart is a second leader: it may have forgotten
    /// what it did as the first).
    SecondLeader = 5,
    /// A running server applied an index other than the one after the last it applied in this
    /// incarnation, or its own account of what it applied disagrees with what it emitted.
    AppliedOutOfOrder = 6,
    /// A server's state machine went back: it installed a snapshot at or below its applied
    /// index, or the snapshot on its disk (where a restart starts) was replaced by an older
    /// one.
    AppliedWentBack = 7,
}

/// Something that happened on some transition, for the sometimes-properties of snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A follower installed a snapshot sent by its leader.
    CaughtUpByInstall = 0,
    /// A server restarted from a durable snapshot.
    RestartedFromSnapshot = 1,
    /// A follower installed a snapshot and kept the entries after it (they matched).
    InstallKeptSuffix = 2,
}

/// Facts about the past that the current servers may have forgotten.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ghost {
    /// `leaders[t]`: bitmask of the servers that were ever leader of term `t`.
    pub leaders: [u8; TERM_LIMIT as usize + 1],
    /// Every entry ever known committed, by index (a committed log is a prefix). Shared
    /// between states until a commit changes it, which is rare next to other steps.
    pub committed: Arc<Vec<Committed>>,
    /// Servers restarted from a non-empty durable log since the first entry was committed.
    pub restarted_since_commit: u8,
    /// Bitmask of [`Violation`]s seen on some transition.
    pub violations: u8,
    /// Bitmask of [`Event`]s seen on some transition.
    pub events: u8,
}

impl Ghost {
    pub fn record(&mut self, violation: Violation) {
        self.violations |= 1 << violation as u8;
    }

    pub fn saw(&self, violation: Violation) -> bool {
        self.violations & (1 << violation as u8) != 0
    }

    pub fn happened(&mut self, event: Event) {
        self.events |= 1 << event as u8;
    }

    pub fn has(&self, event: Event) -> bool {
        self.events & (1 << event as u8) != 0
    }
}

/// The whole model state. Its `Hash`, which is how the checker identifies it, is written in
/// [`crate::symmetry`].
#[derive(Clone, PartialEq, Eq)]
pub struct State {
    /// Shared between a state and its successors until a step changes that server.
    pub servers: Vec<Arc<Server>>,
    /// Messages in flight. Unordered networks keep it sorted (a canonical multiset); ordered
    /// ones keep each channel's messages in send order, channels sorted by (from, to).
    pub network: Vec<Envelope<Cmd>>,
    pub crashes: u8,
    pub duplicates: u8,
    /// Client proposals accepted so far; the next command is `proposals + 1`.
    pub proposals: u8,
    /// Snapshots taken so far (`--max-snapshots`).
    pub snapshots: u8,
    /// KV client slots and their history; `None` without clients. Shared between states until
    /// a client step or a reply changes it.
    pub clients: Option<Arc<Clients>>,
    pub ghost: Ghost,
    /// The step into this state panicked (see [`crate::panics`]): the state is the one the
    /// step started from, and it has no successors. Boxed so that the common state pays one
    /// word for it.
    pub panicked: Option<Box<StepPanic>>,
    /// Hash as the canonical renaming of the servers (symmetry reduction); the same in every
    /// state of one run.
    pub symmetric: bool,
    /// Hash a leader's CheckQuorum record (`Node::recent_active`): only when the model checks
    /// the quorum one call at a time (`RaftModel::reduce_timing` off), since otherwise no step
    /// reads it; the same in every state of one run.
    pub quorum_record: bool,
}

impl State {
    /// The running node of `id`, if it is up.
    pub fn node(&self, id: NodeId) -> Option<&Node<Cmd, MutationSet>> {
        self.servers[id as usize].node.as_ref()
    }

    /// Server `id`, to be changed by a step (copied first if another state shares it).
    pub fn server_mut(&mut self, id: NodeId) -> &mut Server {
        Arc::make_mut(&mut self.servers[id as usize])
    }

    /// Puts `node` in place of server `id`'s running node, copying the rest of the server if
    /// another state shares it (but not the node it replaces, as `server_mut` would).
    pub fn set_node(&mut self, id: NodeId, node: Node<Cmd, MutationSet>) {
        let slot = &mut self.servers[id as usize];
        if let Some(server) = Arc::get_mut(slot) {
            server.node = Some(node);
            return;
        }
        *slot = Arc::new(Server {
            durable: Arc::clone(&slot.durable),
            node: Some(node),
            pending: slot.pending.clone(),
            kv: slot.kv.clone(),
            purged: slot.purged,
        });
    }

    /// The state a step from this one ends in when it panics: this state, marked with the
    /// panic, so that it differs from this one and "no step panics" is false in it.
    pub fn with_panic(&self, panic: StepPanic) -> State {
        State {
            panicked: Some(Box::new(panic)),
            ..self.clone()
        }
    }

    /// Messages in flight, counting sends still waiting behind a pending persist.
    pub fn in_flight(&self) -> usize {
        let waiting: usize = self.servers.iter().map(|s| s.pending.output_count()).sum();
        self.network.len() + waiting
    }
}
