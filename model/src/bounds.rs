//! The explicit bounds of one model-checking run. Every bound is a CLI flag and is printed at
//! the start of a run, so a reader always knows exactly which state space "holds" refers to.

use std::fmt;

use raft_impl::MutationSet;

/// Highest `max_term` accepted: the ghost history keeps one leader bitmask per term in a fixed
/// array so that states stay allocation-free there.
pub const TERM_LIMIT: u64 = 15;
/// Largest cluster: server bitmasks in the ghost history are one byte.
pub const SERVER_LIMIT: u8 = 5;
/// Highest `max_log` accepted: a state's hash packs log lengths into one byte
/// (`crate::symmetry`).
pub const LOG_LIMIT: usize = 255;

/// Most KV client slots: the linearizability search is exponential in concurrent operations, and
/// three clients are already far beyond what checks in seconds.
pub const CLIENT_LIMIT: u8 = 3;

/// When the records of a `Persist` effect become durable (`--storage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Persistence {
    /// Durable in the very step that emits them: the contract a correct runtime implements.
    Atomic,
    /// A step's records are pending until a `Flush(server)` action makes them durable
    /// together; sends emitted behind them wait for them, and a crash loses both. This is what
    /// exposes replies sent before the state is on disk.
    Deferred,
    /// A write-ahead log: every record is pending on its own, a `Flush(server)` makes the
    /// oldest one durable and releases the sends queued behind it, and a crash keeps any
    /// prefix of the pending records (a torn last record is dropped by recovery, the same as
    /// not kept: `tests/wal_recovery.rs`). This is what exposes a reply that waits for only
    /// some of the records it depends on, or a record that does not say what it replaces.
    Wal,
}

impl Persistence {
    pub fn name(self) -> &'static str {
        match self {
            Persistence::Atomic => "atomic",
            Persistence::Deferred => "deferred",
            Persistence::Wal => "wal",
        }
    }
}

/// What the network may do to messages besides delivering them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Network {
    /// Messages of one channel (sender, receiver) are delivered in the order sent.
    pub ordered: bool,
    /// Any message in flight may be dropped.
    pub lossy: bool,
    /// Any message in flight may be duplicated, at most `max_duplicates` times in total.
    pub duplicating: bool,
}

/// Everything that bounds the state space, plus the deliberate bugs switched on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Bounds {
    pub servers: u8,
    /// No election is started beyond this term.
    pub max_term: u64,
    /// A leader accepts no proposal once its log has this many entries.
    pub max_log: usize,
    /// Plain proposals in total; each proposes a distinct command `1, 2, …`. (KV clients,
    /// whose requests are log entries too, are counted by [`KvBounds::clients`].)
    pub proposals: u8,
    /// Crash events in total over a whole behaviour. One event stops one server or every
    /// running server at once (a power cut), so a majority can lose its volatile state.
    pub max_crashes: u8,
    /// Messages on the network plus sends waiting behind a pending persist. A step whose sends
    /// do not fit happens anyway on a lossy network, which loses the ones that do not fit; on a
    /// lossless one it is not explored (see `RaftModel::fit`).
    pub max_in_flight: usize,
    /// Duplications in total (only with a duplicating network).
    pub max_duplicates: u8,
    /// `--max-batch N`: a leader's AppendEntries carries any number of entries from 1 up to N
    /// (as many as it has to send, if fewer), each count a step of its own, so that messages
    /// carrying part of the tail are explored. `None`: every AppendEntries carries everything
    /// from the follower's next index to the end of the leader's log.
    ///
    /// Sound for any N: a real leader's batch ends where its entry bound or its byte bound
    /// (`raft_impl::Config`) ends it, and since commands differ in size a byte bound can end a
    /// batch after any entry, so every count from 1 to the entry bound is a batch some run of
    /// the core sends; the model explores each of them. What `None` leaves out is the batches
    /// that stop before the end of the log, which is what this bound adds.
    pub max_batch: Option<u8>,
    /// `--window W`: the core's flow control (`raft_impl::Config::max_inflight`): a follower
    /// whose match the leader knows is sent each batch once, the next index advancing as it
    /// leaves, with at most W batches unacknowledged. 0: every follower stays a probe, and an
    /// AppendEntries goes from its next index, which only replies move (the earlier core's
    /// schedule, kept by default because remembering what was sent makes a sent-then-lost
    /// batch a state of its own, which takes the default bounds far past the default check's
    /// minute: the README's `--window` row has the figures).
    pub window: u8,
    pub network: Network,
    pub persistence: Persistence,
    pub mutations: MutationSet,
    /// PreVote (`--prevote`, the core's `Config::pre_vote`).
    pub pre_vote: bool,
    /// CheckQuorum and the leader lease (`--check-quorum`, the core's `Config::check_quorum`):
    /// adds the events "a leader checks its quorum" and "a follower's leader contact expires".
    pub check_quorum: bool,
    /// `--max-snapshots N`: snapshots taken in total over a whole behaviour, by any server (the
    /// service snapshots at its applied index: `Action::Snapshot`). A total rather than a count
    /// per server, as crashes are: what a bug needs is one snapshot on the right server, and
    /// the checker tries every server for it, so a per-server bound of one would multiply the
    /// states by the behaviours in which several servers snapshot, which add nothing the first
    /// does not already show. 0: no snapshot is ever taken, so none is installed either.
    pub max_snapshots: u8,
}

impl Default for Bounds {
    /// The headline configuration ([`Preset::Default`]): 3 servers, 2 terms, 2 log entries,
    /// one crash event (which may restart a majority at once) and an unordered lossy network
    /// with 2 messages in flight, small enough to be checked exhaustively in well under a
    /// minute on 2 cores.
    fn default() -> Self {
        Bounds {
            servers: 3,
            max_term: 2,
            max_log: 2,
            proposals: 2,
            max_crashes: 1,
            max_in_flight: 2,
            max_duplicates: 0,
            max_batch: None,
            window: 0,
            network: Network {
                ordered: false,
                lossy: true,
                duplicating: false,
            },
            persistence: Persistence::Atomic,
            mutations: MutationSet::NONE,
            pre_vote: false,
            check_quorum: false,
            max_snapshots: 0,
        }
    }
}

/// Named configurations (`raftcheck check --preset NAME`), each printed in full when used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// 3 servers, 2 terms, 2 entries, 1 crash event, 2 messages in flight, lossy unordered
    /// network, atomic storage.
    Default,
    /// More of everything: 4 terms, 3 entries, 3 messages in flight. Far beyond a minute.
    Thorough,
    /// Five servers, where a majority is three: vote and replica counting that needs two other
    /// servers to agree.
    Five,
    /// The default bounds with raftd's replication: batches of one entry (`--max-batch 1`, so a
    /// leader with two entries to send sends part of its tail) and flow control with a window
    /// of one batch (`--window 1`, so the window fills and the heartbeat goes out empty).
    Flow,
    /// PreVote and CheckQuorum (with its lease) on, as raftd runs, on the default bounds with
    /// one entry: with two, the check is far beyond a minute.
    Prevote,
    /// Snapshots (Figure 13): the default bounds with one snapshot taken (so a follower behind
    /// it catches up by InstallSnapshot, keeping or dropping the entry after it, and a restart
    /// starts from it) and one message in flight (a step's other sends are lost: with two the
    /// check passed 32 M states unfinished in 500 s). Leaves out a second snapshot, and KV
    /// clients (`--kv-clients` adds them: their store is in the snapshot, sessions included).
    Snapshots,
}

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Default => "default",
            Preset::Thorough => "thorough",
            Preset::Five => "five",
            Preset::Flow => "flow",
            Preset::Prevote => "prevote",
            Preset::Snapshots => "snapshots",
        }
    }

    pub fn bounds(self) -> Bounds {
        let default = Bounds::default();
        match self {
            Preset::Default => default,
            Preset::Thorough => Bounds {
                max_term: 4,
                max_log: 3,
                proposals: 3,
                max_in_flight: 3,
                ..default
            },
            // Two messages in flight are enough for an election of five: a candidate's
            // RequestVotes that do not fit are lost, two reach voters, two grants make three.
            Preset::Five => Bounds {
                servers: 5,
                max_term: 2,
                max_log: 1,
                proposals: 1,
                max_crashes: 0,
                ..default
            },
            Preset::Flow => Bounds {
                max_batch: Some(1),
                window: 1,
                ..default
            },
            Preset::Prevote => Bounds {
                max_log: 1,
                proposals: 1,
                pre_vote: true,
                check_quorum: true,
                ..default
            },
            Preset::Snapshots => Bounds {
                max_in_flight: 1,
                max_snapshots: 1,
                ..default
            },
        }
    }
}

/// Bounds that describe no meaningful run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundsError {
    #[error("--servers must be between 1 and {SERVER_LIMIT}, got {0}")]
    Servers(u8),
    #[error("--max-term must be between 1 and {TERM_LIMIT}, got {0}")]
    MaxTerm(u64),
    #[error("--max-log must be at most {LOG_LIMIT}, got {0}")]
    MaxLog(usize),
    #[error("--max-in-flight must be at least 1")]
    MaxInFlight,
    #[error("--max-batch must be at least 1")]
    MaxBatch,
    #[error("--kv-clients must be at most {CLIENT_LIMIT}, got {0}")]
    KvClients(u8),
    #[error(
        "--storage {0} needs at least 2 servers: a lone server leads and commits before its \
         records are durable, which nobody outside it can see, but the properties, which read its \
         memory, would report"
    )]
    LoneServerStorage(&'static str),
}

impl Bounds {
    /// Rejects bounds under which the model would be meaningless or overflow its ghost state.
    pub fn validate(&self) -> Result<(), BoundsError> {
        if self.servers == 0 || self.servers > SERVER_LIMIT {
            return Err(BoundsError::Servers(self.servers));
        }
        if self.max_term == 0 || self.max_term > TERM_LIMIT {
            return Err(BoundsError::MaxTerm(self.max_term));
        }
        if self.max_log > LOG_LIMIT {
            return Err(BoundsError::MaxLog(self.max_log));
        }
        if self.max_in_flight == 0 {
            return Err(BoundsError::MaxInFlight);
        }
        if self.max_batch == Some(0) {
            return Err(BoundsError::MaxBatch);
        }
        // With two or more servers every vote and acknowledgement a server counts comes after
        // its own pending records are durable (its RequestVotes and AppendEntries wait behind
        // them), so what the ghost history records from memory is what the cluster can rely
        // on. A lone server needs no message to lead or commit, so with non-atomic storage it
        // does both on records that a crash may still lose.
        if self.servers == 1 && self.persistence != Persistence::Atomic {
            return Err(BoundsError::LoneServerStorage(self.persistence.name()));
        }
        Ok(())
    }

    /// Smallest number of servers that is a majority.
    pub fn majority(&self) -> usize {
        self.servers as usize / 2 + 1
    }
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let net = &self.network;
        let mut kind = vec![if net.ordered { "ordered" } else { "unordered" }];
        if net.lossy {
            kind.push("lossy");
        }
        if net.duplicating {
            kind.push("duplicating");
        }
        let bugs: Vec<_> = self.mutations.iter().map(|m| m.name()).collect();
        writeln!(f, "  servers          {}", self.servers)?;
        writeln!(f, "  max term         {}", self.max_term)?;
        writeln!(f, "  max log          {}", self.max_log)?;
        writeln!(f, "  proposals        {}", self.proposals)?;
        writeln!(
            f,
            "  max crashes      {} (events in total; one server or all at once)",
            self.max_crashes
        )?;
        writeln!(f, "  max in flight    {}", self.max_in_flight)?;
        if self.max_snapshots > 0 {
            writeln!(f, "  max snapshots    {} (in total)", self.max_snapshots)?;
        }
        if let Some(n) = self.max_batch {
            writeln!(
                f,
                "  max batch        {n} (every count of entries from 1 to {n})"
            )?;
        }
        if self.window > 0 {
            writeln!(
                f,
                "  window           {} (batches in flight per follower)",
                self.window
            )?;
        }
        if net.duplicating {
            writeln!(f, "  max duplicates   {}", self.max_duplicates)?;
        }
        writeln!(f, "  network          {}", kind.join(", "))?;
        writeln!(f, "  storage          {}", self.persistence.name())?;
        if self.pre_vote || self.check_quorum {
            let on = |b| if b { "on" } else { "off" };
            writeln!(
                f,
                "  prevote          {}, check-quorum {}",
                on(self.pre_vote),
                on(self.check_quorum)
            )?;
        }
        let bugs = if bugs.is_empty() {
            "none".to_string()
        } else {
            bugs.join(", ")
        };
        write!(f, "  bugs             {bugs}")
    }
}

/// The client bounds. Kept apart from [`Bounds`] so that configurations without clients
/// (all of the catalog) are spelled exactly as before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvBounds {
    /// Client slots, 0 (no KV clients: plain proposals only) to [`CLIENT_LIMIT`].
    pub clients: u8,
    /// Client timeouts in total: a waiting client gives up on its server and may send the same
    /// request again. Without them a client re-sends only when its server crashed or its entry
    /// was replaced, and no reply is ever lost.
    pub timeouts: u8,
    /// Expiry events in total: log time passes more than the session timeout (see
    /// [`crate::kv`]). 0: no session ever expires.
    pub expiries: u8,
}

impl KvBounds {
    pub fn enabled(&self) -> bool {
        self.clients > 0
    }

    pub fn validate(&self) -> Result<(), BoundsError> {
        if self.clients > CLIENT_LIMIT {
            return Err(BoundsError::KvClients(self.clients));
        }
        Ok(())
    }
}

impl fmt::Display for KvBounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "  kv clients       {}", self.clients)?;
        write!(f, "  kv timeouts      {}", self.timeouts)?;
        if self.expiries > 0 {
            write!(f, "\n  kv expiries      {}", self.expiries)?;
        }
        Ok(())
    }
}
