//! One KV server: the Raft core and its state machine, driven by one thread, and its stable
//! storage, written by another.
//!
//! Every input (a peer's message, a client's request, a timer, the write-ahead thread's news)
//! becomes an `Event` on one channel, and the core thread handles events in batches. A step's
//! `Persist` records are emitted into a [`Pipeline`] and its sends and client replies are held
//! there, each tagged with the number of records emitted before it; at the end of the batch the
//! records go to the write-ahead thread in one hand-over. That thread appends and syncs them
//! while the core goes on with the next batch, and the outputs each durable position covers are
//! then let out. So nothing a step sends leaves the process before every record emitted before
//! it is durable, and no client hears "applied" before that either: the persistence contract of
//! [`Effect`], with one sync for whatever arrived during the previous one.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::Rng;

use crate::codec::FrameKind;
use crate::kv::{KvCommand, KvOutcome, KvRequest, KvSnapshotError, KvStore, LogTime};
use crate::limits::{MAX_CLIENT_PAYLOAD, MAX_SNAPSHOT_CHUNK_BYTES};
use crate::message::Message;
use crate::node::{Config, Effect, Node, NotLeader, MAX_SERVERS};
use crate::service::{self, PendingRequests, Settled, Submitted};
use crate::storage::{FileWal, LogStore, WalError, WalOptions, WalWriteError};
use crate::types::{HardState, Implausible, Index, NodeId, Record};

use super::auth::ClusterKey;
use super::chunks::Reassembly;
use super::durability::{self, Pipeline, WriterFailed};
use super::frame::{read_frame_within, write_frame, Budget, FrameError};
use super::protocol::{ClientReply, ClientRequest, ServerStatus};
use super::transport::{self, Activity, PeerLink};
use super::{log, spawn_named, Event};

/// How long a client's connection waits for its request to be applied before it closes without
/// an answer (the clerk then retries). Longer than a clerk's own timeout, so that normally the
/// clerk gives up first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a client connection may take to deliver its next request: an idle clerk's
/// connection is closed after this (the clerk reconnects), and so is a slow sender's.
const CLIENT_FRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once per listening port, unless configured.
pub const DEFAULT_MAX_CONNECTIONS: usize = 128;

/// How many applied entries a server's log holds past its snapshot before it takes the next
/// one (`--snapshot-every`). With commands of about 1 KiB, ten thousand keep the log to about
/// 10 MiB on disk and bound what a restart replays, while a snapshot of the whole store is
/// taken and written at most once per ten thousand commands.
pub const DEFAULT_SNAPSHOT_EVERY: u64 = 10_000;
/// The payload bytes past each frame's free part ([`FREE_PAYLOAD`](super::frame::FREE_PAYLOAD))
/// that the client frames being read may hold together: 32 commands of the largest size at once.
/// With the free parts of the connections a port runs (`DEFAULT_MAX_CONNECTIONS`, and as many
/// closing), unfinished client frames hold at most 49 MiB, where each of 128 connections could
/// hold 64 MiB before. Peer frames are not
/// charged: past the handshake (which fits in a free part) only a server that proved it knows
/// the cluster secret sends them.
pub const CLIENT_FRAME_BUDGET: usize = 32 * MAX_CLIENT_PAYLOAD;
/// Events handled in one batch at most, so that timers and replies are not starved under load.
const MAX_BATCH: usize = 256;

/// How often a leader sends AppendEntries to every peer: well within the shortest election
/// timeout, so that followers of a live leader never start an election.
const HEARTBEAT: Duration = Duration::from_millis(50);
/// Election timeouts are drawn uniformly from this range, so that servers whose timers started
/// together (a cluster restart) rarely split the vote. On localhost a new leader is usually
/// elected within a second of the old one's death.
const ELECTION_TIMEOUT: std::ops::Range<Duration> =
    Duration::from_millis(300)..Duration::from_millis(600);

/// This server's clock as a leader stamps it into the commands it proposes: milliseconds since
/// the Unix epoch. The servers' clocks need not agree: the store's clock is the largest stamp
/// applied, so a leader whose clock is behind only delays expiry, and one far ahead expires
/// sessions early.
fn wall_clock() -> LogTime {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Everything one server needs to start.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    id: NodeId,
    peers: Vec<SocketAddr>,
    client_addr: SocketAddr,
    data_dir: PathBuf,
    bootstrap: bool,
    max_connections: usize,
    key: ClusterKey,
    /// The core's `Config::pre_vote` (on unless `--no-pre-vote`).
    pre_vote: bool,
    /// The core's `Config::check_quorum`, with its lease (on unless `--no-check-quorum`).
    check_quorum: bool,
    /// Applied entries past the snapshot that make the server take the next one (0: never).
    snapshot_every: u64,
    /// The size of the chunks a snapshot is sent to a peer in.
    snapshot_chunk_bytes: usize,
}

/// A cluster description that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("a cluster needs at least one server address")]
    NoServers,
    #[error("{count} servers given; at most {MAX_SERVERS} are supported")]
    TooManyServers { count: usize },
    #[error("server id {id} is not an index into the {count} server addresses")]
    IdOutOfRange { id: usize, count: usize },
    #[error("address {addr} is given twice")]
    DuplicateAddress { addr: SocketAddr },
    #[error(
        "snapshot chunks of {bytes} bytes: a chunk holds 1 to {MAX_SNAPSHOT_CHUNK_BYTES} bytes"
    )]
    SnapshotChunkBytes { bytes: usize },
}

impl ServerConfig {
    /// Server `id` of the cluster whose servers listen for each other at `peers` (indexed by
    /// id, this server's own address included), answering clients at `client_addr`, keeping
    /// its state in `data_dir`, and proving itself to its peers under `key`.
    pub fn new(
        id: usize,
        peers: Vec<SocketAddr>,
        client_addr: SocketAddr,
        data_dir: PathBuf,
        key: ClusterKey,
    ) -> Result<ServerConfig, ConfigError> {
        let count = peers.len();
        if count == 0 {
            return Err(ConfigError::NoServers);
        }
        if count > MAX_SERVERS {
            return Err(ConfigError::TooManyServers { count });
        }
        if id >= count {
            return Err(ConfigError::IdOutOfRange { id, count });
        }
        let mut seen: Vec<SocketAddr> = Vec::with_capacity(count + 1);
        for addr in peers.iter().chain([&client_addr]) {
            if seen.contains(addr) {
                return Err(ConfigError::DuplicateAddress { addr: *addr });
            }
            seen.push(*addr);
        }
        Ok(ServerConfig {
            // Both fit: `id < count <= MAX_SERVERS`.
            id: id as NodeId,
            peers,
            client_addr,
            data_dir,
            bootstrap: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            key,
            pre_vote: true,
            check_quorum: true,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            snapshot_chunk_bytes: MAX_SNAPSHOT_CHUNK_BYTES,
        })
    }

    /// Sends snapshots to peers in chunks of `bytes` (at most `MAX_SNAPSHOT_CHUNK_BYTES`, the
    /// default and the most a receiver takes; small ones make tests cross many chunks).
    pub fn with_snapshot_chunk_bytes(self, bytes: usize) -> Result<ServerConfig, ConfigError> {
        if !(1..=MAX_SNAPSHOT_CHUNK_BYTES).contains(&bytes) {
            return Err(ConfigError::SnapshotChunkBytes { bytes });
        }
        Ok(ServerConfig {
            snapshot_chunk_bytes: bytes,
            ..self
        })
    }

    /// Snapshot the KV store once `every` applied entries are past the last snapshot (0:
    /// never, and the log grows for ever).
    pub fn with_snapshot_every(self, every: u64) -> ServerConfig {
        ServerConfig {
            snapshot_every: every,
            ..self
        }
    }

    /// PreVote (§9.6), on by default: a server cut off from the majority does not raise its
    /// term, so it deposes no leader when it is back.
    pub fn with_pre_vote(self, pre_vote: bool) -> ServerConfig {
        ServerConfig { pre_vote, ..self }
    }

    /// CheckQuorum (§6.2) and the leader lease (§4.2.3), on by default: a leader that hears
    /// from no majority for an election timeout steps down, and a follower that hears from its
    /// leader ignores vote requests of higher terms for the shortest election timeout.
    pub fn with_check_quorum(self, check_quorum: bool) -> ServerConfig {
        ServerConfig {
            check_quorum,
            ..self
        }
    }

    /// Whether this start creates a new cluster: the server starts with an empty state, which
    /// must not exist yet. Without it, a server refuses to start without its saved state.
    pub fn with_bootstrap(self, bootstrap: bool) -> ServerConfig {
        ServerConfig { bootstrap, ..self }
    }

    /// Accepts at most `max` connections at once on each port (peers, clients); at least one.
    pub fn with_max_connections(self, max: usize) -> ServerConfig {
        ServerConfig {
            max_connections: max.max(1),
            ..self
        }
    }
}

/// Why a server could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A server without its state may have voted or acknowledged entries it no longer knows of:
    /// rejoining as a fresh voter could elect a second leader in a term or lose committed
    /// entries. Only the first start of a new cluster may begin empty.
    #[error(
        "no saved state in {path}: a server that lost its state must not rejoin its cluster as a \
         fresh voter (pass --bootstrap only on the first start of a new cluster)"
    )]
    NoState { path: PathBuf },
    #[error("--bootstrap given, but {path} holds a saved state: this server already belongs to a cluster")]
    AlreadyBootstrapped { path: PathBuf },
    /// Opening or recovering the write-ahead log failed: a corrupt log, the state file of an
    /// older build, an I/O error. The server does not guess at a state it cannot read.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The write-ahead thread could not make records durable: a server that cannot persist
    /// must stop, since it may not send what it cannot persist.
    #[error(transparent)]
    Writer(#[from] WriterFailed<WalWriteError>),
    /// The log's records passed their checksums but describe a state this cluster cannot have
    /// produced (a vote for a server it does not have, a term with no successor): written by
    /// another cluster's server, or forged. Starting from it would leave a server that never
    /// makes progress, or one whose vote means nothing.
    #[error("{path} recovers to a state this cluster cannot have produced: {reason}")]
    ImplausibleState { path: PathBuf, reason: Implausible },
    /// The snapshot the log starts after passed the log's checks but is not a KV store this
    /// service wrote: the entries it replaced are gone, so there is nothing to fall back to.
    #[error("{path}: the snapshot at index {index} is not a KV store: {reason}")]
    BadSnapshot {
        path: PathBuf,
        index: Index,
        reason: KvSnapshotError,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start a thread: {0}")]
    Thread(#[source] io::Error),
}

/// Runs server `config` until the process ends: loads its state, listens, and drives the core.
/// Returns only on an error.
pub fn run(config: ServerConfig) -> Result<Infallible, ServerError> {
    let ServerConfig {
        id,
        peers,
        client_addr,
        data_dir,
        bootstrap,
        max_connections,
        key,
        pre_vote,
        check_quorum,
        snapshot_every,
        snapshot_chunk_bytes,
    } = config;
    let (store, hard) = open_store(&data_dir, bootstrap)?;
    check_recovered(&hard, peers.len(), &data_dir)?;
    let kv = restore_kv(&hard, &data_dir)?;
    log(
        id,
        format_args!(
            "starting in term {} with {} log entries from {}",
            hard.current_term,
            hard.log.len(),
            data_dir.display()
        ),
    );
    let listen = |addr: SocketAddr| {
        TcpListener::bind(addr).map_err(|source| ServerError::Listen { addr, source })
    };
    let peer_listener = listen(peers[usize::from(id)])?;
    let client_listener = listen(client_addr)?;

    let (events, inbox) = mpsc::channel();
    let servers = peers.len();
    let to_core = events.clone();
    let peer_key = key.clone();
    let reassembly = Arc::new(Reassembly::default());
    let inbound = Arc::clone(&reassembly);
    transport::spawn_acceptor(
        id,
        "peer",
        peer_listener,
        max_connections,
        move |stream, activity| {
            let events = to_core.clone();
            transport::serve_peer(id, servers, &peer_key, stream, activity, events, &inbound)
        },
    )
    .map_err(ServerError::Thread)?;
    let to_core = events.clone();
    let budget = Arc::new(Budget::new(CLIENT_FRAME_BUDGET));
    transport::spawn_acceptor(
        id,
        "client",
        client_listener,
        max_connections,
        move |stream, activity| serve_client(id, stream, activity, &budget, to_core.clone()),
    )
    .map_err(ServerError::Thread)?;
    let mut links = HashMap::new();
    for (peer, addr) in peers.iter().enumerate() {
        let peer = peer as NodeId;
        if peer != id {
            let link = PeerLink::spawn(id, peer, *addr, key.clone(), snapshot_chunk_bytes)
                .map_err(ServerError::Thread)?;
            links.insert(peer, link);
        }
    }
    // Test builds only: a crash point a test names in the data directory (see `crash_hook`).
    #[cfg(feature = "failpoints")]
    let store = super::crash_hook::CrashHook::new(id, store, &data_dir);
    let pipeline = start_writer(id, store, events.clone())?;
    let config = Config::new(id, servers as u8)
        .with_pre_vote(pre_vote)
        .with_check_quorum(check_quorum);
    let mut driver = Driver::new(Node::new(config, hard), kv, pipeline, links);
    driver.snapshot_every = snapshot_every;
    driver.reassembly = reassembly;
    // `events` stays alive here, so `inbox` never reports a disconnection.
    let _keep_open = events;
    driver.run(&inbox)
}

/// The server's write-ahead log and the state it recovers to; on `bootstrap`, a new empty
/// log, created at once so that the next start (without `--bootstrap`) finds it. A data
/// directory of an older build is refused by [`FileWal`] ([`WalError::OldFormat`]) either way.
fn open_store(
    data_dir: &Path,
    bootstrap: bool,
) -> Result<(FileWal<KvCommand>, HardState<KvCommand>), ServerError> {
    let opened = if bootstrap {
        FileWal::create(data_dir, WalOptions::default()).map(|wal| (wal, HardState::default()))
    } else {
        FileWal::open(data_dir, WalOptions::default())
    };
    opened.map_err(|e| match e {
        WalError::NotFound { dir } => ServerError::NoState { path: dir },
        WalError::AlreadyExists { dir } => ServerError::AlreadyBootstrapped { path: dir },
        e => ServerError::Wal(e),
    })
}

/// Refuses a recovered state that no server of a cluster of `servers` could have written: the
/// checksums say the bytes are what was written, not that a server of this cluster wrote them.
fn check_recovered(
    hard: &HardState<KvCommand>,
    servers: usize,
    data_dir: &Path,
) -> Result<(), ServerError> {
    hard.check(servers)
        .map_err(|reason| ServerError::ImplausibleState {
            path: data_dir.to_path_buf(),
            reason,
        })
}

/// The KV store a server restarts with: the one its snapshot holds (a restart starts from the
/// snapshot, and the core applies only the entries after it), or an empty one.
fn restore_kv(hard: &HardState<KvCommand>, data_dir: &Path) -> Result<KvStore, ServerError> {
    let Some(snapshot) = &hard.snapshot else {
        return Ok(KvStore::default());
    };
    KvStore::default()
        .restored(&snapshot.data)
        .map_err(|reason| ServerError::BadSnapshot {
            path: data_dir.to_path_buf(),
            index: snapshot.last_index,
            reason,
        })
}

/// The core's end of the pipeline to the server's store.
type ToStore = Pipeline<Record<KvCommand>, WalWriteError, Outbound>;

/// Starts the write-ahead thread on `store`, which wakes the core through `events` whenever it
/// made more records durable; returns the core's end of the pipeline.
fn start_writer<S>(id: NodeId, store: S, events: Sender<Event>) -> Result<ToStore, ServerError>
where
    S: LogStore<KvCommand, Error = WalWriteError> + Send + 'static,
{
    let (pipeline, writer) = durability::pipeline(store.durable());
    spawn_named(format!("wal-{id}"), move || {
        durability::write_ahead(writer, store, || {
            // The core is gone only when the process ends.
            let _ = events.send(Event::Durable);
        });
    })
    .map_err(ServerError::Thread)?;
    Ok(pipeline)
}

/// What the core sends out of the process, held until the records before it are durable.
enum Outbound {
    Send {
        to: NodeId,
        msg: Message<KvCommand>,
    },
    Reply {
        client: Sender<ClientReply>,
        reply: ClientReply,
    },
}

/// The state of the thread that drives the core (`Node`): it hands the node events, applies what
/// it commits to the KV store (`kv`), and sends what it emits through the write-ahead pipeline.
struct Driver {
    node: Node<KvCommand>,
    kv: KvStore,
    pipeline: ToStore,
    links: HashMap<NodeId, PeerLink>,
    /// Requests this incarnation proposed, each with the channel its client waits on.
    waiting: PendingRequests<KvCommand, Sender<ClientReply>>,
    election_deadline: Instant,
    heartbeat_deadline: Instant,
    /// When the lease of §4.2.3 ends: the shortest election timeout after the last
    /// `ResetElectionTimer`, which every contact with the leader emits (a vote granted emits
    /// it too, which can only lengthen a lease that is already there). `None` once told.
    lease_deadline: Option<Instant>,
    /// When a leader next checks its quorum (`Node::check_quorum`): every shortest election
    /// timeout.
    quorum_deadline: Instant,
    /// Whether the batch proposed something, to be replicated at its end in one round.
    proposed: bool,
    /// Encoded bytes of the messages the core sent each server (by id), whether or not its
    /// link delivered them: what flow control bounds, reported in the status.
    sent_bytes: Vec<u64>,
    /// Heartbeats sent as leader in this incarnation.
    heartbeats: u64,
    /// Applied entries past the snapshot that make this server take the next one (0: never).
    snapshot_every: u64,
    /// The store a peer's InstallSnapshot holds, decoded before the core saw the message, for
    /// the `Restore` the core emits if it installs it: a snapshot that does not decode is
    /// refused before the core changes anything.
    installing: Option<KvStore>,
    /// InstallSnapshots refused because their bytes are not a KV store, in this incarnation.
    refused_snapshots: u64,
    /// Snapshots a leader sent that this server installed, in this incarnation.
    installed_snapshots: u64,
    /// The snapshot chunks arriving from peers, for their counts in the status.
    reassembly: Arc<Reassembly>,
}

impl Driver {
    fn new(
        node: Node<KvCommand>,
        kv: KvStore,
        pipeline: ToStore,
        links: HashMap<NodeId, PeerLink>,
    ) -> Driver {
        let now = Instant::now();
        let servers = usize::from(node.config().servers);
        let mut driver = Driver {
            node,
            kv,
            pipeline,
            links,
            waiting: PendingRequests::new(),
            election_deadline: now,
            heartbeat_deadline: now,
            lease_deadline: None,
            quorum_deadline: now + ELECTION_TIMEOUT.start,
            proposed: false,
            sent_bytes: vec![0; servers],
            heartbeats: 0,
            snapshot_every: DEFAULT_SNAPSHOT_EVERY,
            installing: None,
            refused_snapshots: 0,
            installed_snapshots: 0,
            reassembly: Arc::default(),
        };
        driver.reset_election_timer();
        driver
    }

    fn run(&mut self, inbox: &Receiver<Event>) -> Result<Infallible, ServerError> {
        loop {
            let mut wake = if self.node.is_leader() {
                self.election_deadline
                    .min(self.heartbeat_deadline)
                    .min(self.quorum_deadline)
            } else {
                self.election_deadline
            };
            if let Some(lease) = self.lease_deadline {
                wake = wake.min(lease);
            }
            if let Ok(event) = inbox.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                self.on_event(event);
                for event in inbox.try_iter().take(MAX_BATCH) {
                    self.on_event(event);
                }
            }
            self.fire_timers();
            // New entries go to the followers whose flow allows a send now; the heartbeat
            // serves the others, so a follower that is down or behind costs one batch per
            // heartbeat, not the missing tail after every batch of proposals.
            if std::mem::take(&mut self.proposed) {
                let effects = self.node.replicate();
                self.absorb(effects);
            }
            self.snapshot_if_due();
            self.flush()?;
        }
    }

    fn on_event(&mut self, event: Event) {
        let was_leader = self.node.is_leader();
        match event {
            Event::Peer { from, msg } => self.on_peer(from, msg),
            Event::Client {
                request: ClientRequest::Kv(command),
                reply,
            } => self.submit(command, reply),
            Event::Client {
                request: ClientRequest::Status,
                reply,
            } => {
                let status = self.status();
                self.reply(reply, ClientReply::Status(status));
            }
            // What it made durable is let out at the end of the batch.
            Event::Durable => {}
        }
        if self.node.is_leader() != was_leader {
            let role = if was_leader { "follower" } else { "leader" };
            let term = self.node.current_term();
            log(self.node.id(), format_args!("{role} in term {term}"));
        }
        self.settle_if_deposed();
    }

    fn status(&self) -> ServerStatus {
        let node = &self.node;
        ServerStatus {
            id: node.id(),
            role: node.role(),
            term: node.current_term(),
            commit_index: node.commit_index(),
            log_len: node.hard_state().last_index(),
            snapshot_index: node.hard_state().snapshot_index(),
            log_entries: node.log().len() as u64,
            refused_snapshots: self.refused_snapshots,
            installed_snapshots: self.installed_snapshots,
            refused_chunks: self.reassembly.refused(),
            resumed_transfers: self.reassembly.resumed(),
            snapshot_bytes_held: self.reassembly.held(),
            leader: node.leader_hint(),
            sent_bytes: self.sent_bytes.clone(),
            heartbeats: self.heartbeats,
        }
    }

    fn submit(&mut self, request: KvRequest, reply: Sender<ClientReply>) {
        match service::submit(&mut self.node, &self.kv, request, wall_clock()) {
            Ok(Submitted::Proposed { proposal, command }) => {
                self.waiting
                    .insert(proposal.index, proposal.term, command, reply);
                self.absorb(proposal.effects);
                self.proposed = true;
            }
            Ok(Submitted::Answered(Ok(answer))) => {
                self.reply(reply, ClientReply::Applied(answer));
            }
            Ok(Submitted::Answered(Err(refused))) => {
                self.reply(reply, ClientReply::Refused(refused));
            }
            Err(NotLeader { leader_hint }) => {
                self.reply(reply, ClientReply::NotLeader { leader_hint });
            }
        }
    }

    /// Holds a client's reply until the records emitted so far are durable: an "applied" must
    /// not outrun the entry, and an answer from a cached result not the entry it was cached from.
    fn reply(&mut self, client: Sender<ClientReply>, reply: ClientReply) {
        self.pipeline.hold(Outbound::Reply { client, reply });
    }

    /// Takes a step's effects in their order: records are emitted to the pipeline, and what
    /// leaves the process is held there behind them.
    fn absorb(&mut self, effects: Vec<Effect<KvCommand>>) {
        for effect in effects {
            match effect {
                Effect::Persist(record) => self.pipeline.write(record),
                Effect::Send { to, msg } => {
                    let bytes = crate::codec::encoded_len(&msg) as u64;
                    self.sent_bytes[usize::from(to)] += bytes;
                    self.pipeline.hold(Outbound::Send { to, msg })
                }
                Effect::Apply { index, command } => {
                    let answer = self.kv.apply(index, &command);
                    for (client, settled) in self.waiting.applied(index, &command, &answer) {
                        self.answer(client, settled);
                    }
                }
                Effect::ResetElectionTimer => self.reset_election_timer(),
                Effect::Restore(snapshot) => self.restore(snapshot.last_index),
            }
        }
    }

    /// A peer's message, for the core; an InstallSnapshot only once its bytes decode to a KV
    /// store (kept for the core's `Restore`), so that a bad one changes nothing.
    fn on_peer(&mut self, from: NodeId, msg: Message<KvCommand>) {
        if let Message::InstallSnapshot { snapshot, .. } = &msg {
            match self.kv.restored(&snapshot.data) {
                Ok(kv) => self.installing = Some(kv),
                Err(e) => {
                    self.refused_snapshots += 1;
                    let index = snapshot.last_index;
                    let line = format_args!("refused: InstallSnapshot at {index} from {from}: {e}");
                    return log(self.node.id(), line);
                }
            }
        }
        match self.node.try_handle(from, msg) {
            Ok(effects) => self.absorb(effects),
            Err(refusal) => log(self.node.id(), format_args!("refused: {refusal}")),
        }
        self.installing = None;
    }

    /// The core installed a peer's snapshot, which holds every entry up to `index`: the store
    /// becomes the one it holds. A request waiting at an index it covers never sees an `Apply`
    /// here, so it is answered as one whose outcome is unknown (its client asks the leader
    /// again, and its session tells a retry from a new write).
    fn restore(&mut self, index: Index) {
        self.kv = (self.installing.take())
            .expect("the core restores only while handling an InstallSnapshot, decoded first");
        self.installed_snapshots += 1;
        for client in self.waiting.covered(index) {
            self.answer(client, Settled::Superseded);
        }
    }

    /// Takes a snapshot of the store once `snapshot_every` applied entries are past the last
    /// one: the core compacts its log, and the write-ahead log can drop what the snapshot
    /// replaces.
    fn snapshot_if_due(&mut self) {
        let applied = self.node.last_applied();
        let since = applied - self.node.hard_state().snapshot_index();
        if self.snapshot_every == 0 || since < self.snapshot_every {
            return;
        }
        match self.node.snapshot(applied, self.kv.snapshot()) {
            Ok(effects) => self.absorb(effects),
            Err(e) => log(self.node.id(), format_args!("no snapshot: {e}")),
        }
    }

    /// Answers every waiting request this server no longer leads the term of: it may never be
    /// applied here.
    fn settle_if_deposed(&mut self) {
        for client in self.waiting.settle_unled(&self.node) {
            self.answer(client, Settled::Superseded);
        }
    }

    /// Queues the answer to a settled request. A superseded one is told to ask the leader this
    /// server knows of, as a refused one is.
    fn answer(&mut self, client: Sender<ClientReply>, settled: Settled<KvOutcome>) {
        let reply = match settled {
            Settled::Replied(Ok(answer)) => ClientReply::Applied(answer),
            Settled::Replied(Err(refused)) => ClientReply::Refused(refused),
            Settled::Superseded => ClientReply::NotLeader {
                leader_hint: self.node.leader_hint(),
            },
        };
        self.reply(client, reply);
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        if self.lease_deadline.is_some_and(|lease| now >= lease) {
            self.node.leader_contact_expired();
            self.lease_deadline = None;
        }
        if now >= self.quorum_deadline {
            // Anyone but a leader with check-quorum ignores it.
            self.node.check_quorum();
            self.quorum_deadline = now + ELECTION_TIMEOUT.start;
            self.settle_if_deposed();
        }
        if now >= self.election_deadline {
            // A leader's core ignores it; anyone else starts an election.
            let effects = self.node.election_timeout();
            self.absorb(effects);
            self.reset_election_timer();
            self.settle_if_deposed();
        }
        if self.node.is_leader() && now >= self.heartbeat_deadline {
            let effects = self.node.broadcast_append();
            self.heartbeats += 1;
            self.absorb(effects);
            self.heartbeat_deadline = now + HEARTBEAT;
        }
    }

    fn reset_election_timer(&mut self) {
        let now = Instant::now();
        self.election_deadline = now + rand::rng().random_range(ELECTION_TIMEOUT);
        self.lease_deadline = Some(now + ELECTION_TIMEOUT.start);
    }

    /// Hands the batch's records to the write-ahead thread, then lets out the sends and replies
    /// that what is durable covers (the rest go at a later batch, woken by `Event::Durable`).
    fn flush(&mut self) -> Result<(), ServerError> {
        self.pipeline.submit();
        for output in self.pipeline.release()? {
            match output {
                Outbound::Send { to, msg } => {
                    if let Some(link) = self.links.get(&to) {
                        link.send(msg);
                    }
                }
                // The client's connection may have given up and closed; then no one is waiting.
                Outbound::Reply { client, reply } => {
                    let _ = client.send(reply);
                }
            }
        }
        Ok(())
    }
}

/// Why a client connection was closed.
#[derive(Debug, thiserror::Error)]
enum ClientConnError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{request} was not settled within {REQUEST_TIMEOUT:?}")]
    Unsettled { request: String },
}

/// Serves one client connection: each request goes to the core, and its answer back, until
/// the client closes the connection or sends a malformed frame, or the port closes it to make
/// room (see `transport::spawn_acceptor`).
fn serve_client(
    me: NodeId,
    stream: &TcpStream,
    activity: Activity,
    budget: &Budget,
    events: Sender<Event>,
) {
    let client = stream
        .peer_addr()
        .map_or("?".to_string(), |a| a.to_string());
    let mut out = stream;
    let result: Result<(), ClientConnError> = (|| loop {
        let request: ClientRequest = read_frame_within(
            stream,
            FrameKind::ClientRequest,
            CLIENT_FRAME_TIMEOUT,
            budget,
        )?;
        activity.busy();
        let described = request.describe();
        let (reply, answer) = mpsc::channel();
        if events.send(Event::Client { request, reply }).is_err() {
            return Ok(());
        }
        let answer = answer
            .recv_timeout(REQUEST_TIMEOUT)
            .map_err(|_| ClientConnError::Unsettled { request: described })?;
        // Answered: the core's part is over. A client that takes its reply slowly is then as
        // evictable as any other (the write timeout bounds each send, not the whole reply, so
        // a busy mark held across the write would let a slow reader pin its slot).
        activity.touch();
        write_frame(&mut out, FrameKind::ClientReply, &answer)?;
        activity.touch();
    })();
    match result {
        Ok(()) | Err(ClientConnError::Frame(FrameError::Closed)) => {}
        Err(e) => activity.log_close(
            me,
            format_args!("closing client connection from {client}: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::kv::{KvOp, KvReply, Session};
    use crate::runtime::auth;
    use crate::runtime::protocol::PeerFrame;

    #[test]
    fn a_recovered_state_no_server_of_this_cluster_wrote_is_refused() {
        // Each reason is tested beside `HardState::check`; this is the refusal that carries it.
        let dir = Path::new("data");
        let hard = HardState::<KvCommand> {
            current_term: u64::MAX,
            ..HardState::default()
        };
        assert!(matches!(
            check_recovered(&hard, 3, dir),
            Err(ServerError::ImplausibleState {
                path,
                reason: Implausible::NoNextTerm { term: u64::MAX },
            }) if path == dir
        ));
    }

    /// The session a test registers first, at index 1.
    const SESSION: Session = Session { id: 1, nonce: 5 };

    fn append(session: Session, seq: u64) -> KvRequest {
        KvRequest::InSession {
            session,
            seq,
            op: KvOp::Append {
                key: "k".into(),
                value: format!("{}.{seq}", session.id),
            },
        }
    }

    fn test_key() -> ClusterKey {
        ClusterKey::new(b"0123456789abcdef".to_vec(), "test".into()).unwrap()
    }

    /// Server 0 of `servers`, bootstrapped in a temporary directory, its links to peers all
    /// pointing at one listener, which the test may accept from.
    struct Setup {
        dir: tempfile::TempDir,
        peer: TcpListener,
        driver: Driver,
        /// Where the write-ahead thread wakes the core.
        inbox: Receiver<Event>,
    }

    fn setup(servers: u8) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let peer = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = peer.local_addr().unwrap();
        let links = (1..servers)
            .map(|p| {
                (
                    p,
                    PeerLink::spawn(0, p, addr, test_key(), MAX_SNAPSHOT_CHUNK_BYTES).unwrap(),
                )
            })
            .collect();
        let (store, hard) = open_store(dir.path(), true).unwrap();
        let (events, inbox) = mpsc::channel();
        let pipeline = start_writer(0, store, events).unwrap();
        let node = Node::new(Config::new(0, servers), hard);
        let driver = Driver::new(node, KvStore::default(), pipeline, links);
        Setup {
            dir,
            peer,
            driver,
            inbox,
        }
    }

    impl Setup {
        /// Flushes the batch and waits until the write-ahead thread made all of it durable and
        /// the core let out everything it held.
        fn settle(&mut self) {
            self.driver.flush().unwrap();
            while self.driver.pipeline.holds_any() {
                let event = self.inbox.recv_timeout(Duration::from_secs(10)).unwrap();
                assert!(matches!(event, Event::Durable));
                self.driver.flush().unwrap();
            }
        }

        /// The state on disk: what a crash now would keep (the log is opened a second time,
        /// read only, while the writer holds it).
        fn saved(&self) -> HardState<KvCommand> {
            let (_, state) = FileWal::open(self.dir.path(), WalOptions::default()).unwrap();
            state
        }
    }

    /// Server 0 stands for election.
    fn time_out(driver: &mut Driver) {
        let effects = driver.node.election_timeout();
        driver.absorb(effects);
    }

    fn client(driver: &mut Driver, request: KvRequest) -> Receiver<ClientReply> {
        let (reply, answer) = mpsc::channel();
        driver.on_event(Event::Client {
            request: ClientRequest::Kv(request),
            reply,
        });
        answer
    }

    #[test]
    fn a_vote_is_on_disk_before_it_is_sent() {
        let mut server = setup(3);
        let request = Message::RequestVote {
            term: 5,
            last_log_index: 0,
            last_log_term: 0,
        };
        server.driver.on_event(Event::Peer {
            from: 1,
            msg: request,
        });
        // Decided, but neither saved nor sent until the batch is flushed and synced.
        assert_eq!(server.saved(), HardState::default());
        assert!(server.driver.pipeline.holds_any());

        server.settle();
        let saved = server.saved();
        assert_eq!((saved.current_term, saved.voted_for), (5, Some(1)));
        let (mut conn, _) = server.peer.accept().unwrap();
        let limit = Duration::from_secs(10);
        let mut opener = auth::answer(&conn, &test_key(), 1, 3, limit).unwrap();
        let PeerFrame::Message(reply) = opener.receive(&mut conn).unwrap() else {
            panic!("a chunk, not the vote")
        };
        let granted = Message::RequestVoteReply {
            term: 5,
            granted: true,
        };
        assert_eq!((reply.from, reply.to, reply.msg), (0, 1, granted));
    }

    #[test]
    fn a_client_hears_of_its_applied_request_once_it_is_durable_and_a_retry_applies_once() {
        let mut server = setup(1);
        time_out(&mut server.driver);
        assert!(server.driver.node.is_leader());

        let register = KvRequest::Register {
            nonce: SESSION.nonce,
        };
        let registered = client(&mut server.driver, register);
        server.settle();
        let id = SESSION.id;
        assert_eq!(
            registered.try_recv(),
            Ok(ClientReply::Applied(KvReply::Registered { id }))
        );

        let first = client(&mut server.driver, append(SESSION, 1));
        assert!(first.try_recv().is_err(), "answered before the flush");
        server.settle();
        assert_eq!(first.try_recv(), Ok(ClientReply::Applied(KvReply::Done)));

        let retry = client(&mut server.driver, append(SESSION, 1));
        server.settle();
        assert_eq!(retry.try_recv(), Ok(ClientReply::Applied(KvReply::Done)));
        assert_eq!(server.driver.kv.get("k"), "1.1");
        assert_eq!(server.saved().log.len(), 3, "both copies are in the log");
    }

    #[test]
    fn a_deposed_leader_answers_its_waiting_clients_not_leader() {
        let mut server = setup(3);
        let driver = &mut server.driver;
        time_out(driver);
        let vote = Message::RequestVoteReply {
            term: 1,
            granted: true,
        };
        driver.on_event(Event::Peer { from: 1, msg: vote });
        assert!(driver.node.is_leader());

        let waiting = client(driver, append(SESSION, 1));
        server.settle();
        assert!(waiting.try_recv().is_err(), "not committed: no answer yet");
        let heartbeat = Message::AppendEntries(crate::message::AppendEntries {
            term: 2,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: Vec::new(),
            leader_commit: 0,
        });
        server.driver.on_event(Event::Peer {
            from: 2,
            msg: heartbeat,
        });
        server.settle();
        assert_eq!(
            waiting.try_recv(),
            Ok(ClientReply::NotLeader {
                leader_hint: Some(2)
            })
        );
    }
}
