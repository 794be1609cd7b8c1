//! The simulated cluster: servers running the core, their stores, the network in between,
//! and one queue of timed events that is the only source of progress.
//!
//! Everything is a function of the seed: events are ordered by (virtual time, sequence number),
//! every random choice (election timeouts, heartbeat phases, network delays and losses) is drawn
//! from one seeded ChaCha stream, and nothing is iterated in hash order. So a seed replays
//! exactly, which is what makes a failing seed worth printing.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Duration;

use raft_impl::codec::{self, FrameKind};
use raft_impl::limits::{DEFAULT_MAX_APPEND_BYTES, DEFAULT_MAX_APPEND_ENTRIES};
use raft_impl::storage::{LogStore, MemoryStore};
use raft_impl::{
    Command, Config, Effect, Index, Message, MutationSet, Node, NodeId, Proposal, Snapshot, Term,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::apply::AppliedLogs;
use crate::failure::Failure;
use crate::network::{is_request, NetConfig};
use crate::trace::{Loss, Trace, TraceEvent, Traced};

/// Identifies a tester task (see `runtime`) waiting on the clock.
pub type TaskId = usize;

/// Heartbeat period: the tester allows at most 10 heartbeats per second.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// Election timeouts are drawn uniformly from this range (ms): three heartbeats at least, so an
/// unreliable network (10% loss) rarely unseats a leader, and short enough that an election
/// (with a split vote or two) settles well inside the tester's 5 s.
const ELECTION_TIMEOUT_MS: std::ops::Range<u64> = 300..600;

/// What the event queue holds.
#[derive(Debug)]
enum Event<C> {
    /// A message reaches `to`. `from_incarnation` kills it if the sender crashed meanwhile;
    /// replies also name the incarnation they answer, as labrpc's reply channel does.
    Deliver {
        from: NodeId,
        from_incarnation: u32,
        to: NodeId,
        to_incarnation: Option<u32>,
        msg: Message<C>,
    },
    /// An election timer; stale unless `generation` is the server's current one.
    ElectionTimer { server: NodeId, generation: u64 },
    /// The heartbeat timer of one incarnation of a server.
    Heartbeat { server: NodeId, incarnation: u32 },
    /// A tester task's sleep is over.
    Wake(TaskId),
}

/// An event at its time; `seq` breaks ties in the order events were scheduled.
#[derive(Debug)]
struct Scheduled<C> {
    at: Duration,
    seq: u64,
    event: Event<C>,
}

impl<C> PartialEq for Scheduled<C> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<C> Eq for Scheduled<C> {}
impl<C> PartialOrd for Scheduled<C> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<C> Ord for Scheduled<C> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// A service built on the servers' applied commands (the KV service of `kv_service`): told of
/// every entry a server applies, in order, and of every new instance, which starts from the
/// snapshot in its store (if any) and re-applies the log after it onto that state.
///
/// The service, not the tester, owns its snapshots: it says when to take one (after an apply)
/// and what its bytes are, and it restores its state from one the core installed or the server
/// starts from. The tester cannot read those bytes; it only checks that a restore does not take
/// a server back and that applies continue after it (see [`AppliedLogs::install_opaque`]).
pub trait StateMachines<C>: std::fmt::Debug {
    /// Server `server` started a new instance (its state machine and requests in flight are
    /// gone with the old one); a snapshot it starts from follows as [`StateMachines::restore`].
    fn restarted(&mut self, server: NodeId);
    /// Server `server` applied `command` at `index`, the index after the last one it applied.
    fn applied(&mut self, server: NodeId, index: Index, command: &C);
    /// Server `server` just applied an entry: the bytes of a snapshot of its state machine if
    /// it takes one now, which the core then gets at that index. `raft_state` measures the
    /// bytes of Raft state the server's store keeps (see [`World::raft_state_size`]; it takes
    /// time in the size of the log, so it is there to be called only if needed).
    fn snapshot_due(&mut self, server: NodeId, raft_state: &dyn Fn() -> usize) -> Option<Vec<u8>>;
    /// Server `server`'s state machine becomes the one `snapshot` holds: one its core installed
    /// (`Effect::Restore`), or the one its new instance starts from. Bytes the service cannot
    /// read fail the run.
    fn restore(&mut self, server: NodeId, snapshot: &Snapshot) -> Result<(), Failure>;
    /// A step changed the role or the term of server `server`, now `node`; told after the
    /// step's effects were carried out (its applies included).
    fn role_changed(&mut self, server: NodeId, node: &Node<C, MutationSet>);
}

/// One server slot: the running instance, if any, and what outlives it.
#[derive(Debug)]
struct Server<C> {
    node: Option<Node<C, MutationSet>>,
    /// What survives a crash: every record the server wrote, synced as it is written.
    store: MemoryStore<C>,
    /// Bumped at each crash: messages and timers of a dead instance carry the old number.
    incarnation: u32,
    connected: bool,
    /// Bumped at each re-arm, so that only the latest election timer fires.
    timer_generation: u64,
    /// Which side of a network partition the server is on: messages only pass between servers
    /// on the same side. All on side 0 unless `partition` split them.
    side: u8,
}

/// What one step of the simulation did.
#[derive(Debug, PartialEq, Eq)]
pub enum Advance {
    /// Nothing is scheduled any more.
    Idle,
    /// A tester task is due; the runtime polls it.
    Wake(TaskId),
    /// A server or network event was processed.
    Ran,
}

/// The simulated cluster and its clock.
#[derive(Debug)]
pub struct World<C> {
    now: Duration,
    seq: u64,
    queue: BinaryHeap<Reverse<Scheduled<C>>>,
    rng: ChaCha8Rng,
    servers: Vec<Server<C>>,
    mutations: MutationSet,
    net: NetConfig,
    applied: AppliedLogs<C>,
    /// Requests delivered to each server (labrpc's per-server RPC count).
    rpcs_received: Vec<u64>,
    /// Encoded size of every request sent (labrpc's byte count).
    bytes_sent: u64,
    trace: Trace<C>,
    failure: Option<Failure>,
    /// The service on top of the servers, if any.
    state_machines: Option<Box<dyn StateMachines<C>>>,
    /// Lab 3D's snapshotting applier: after applying an index that is a multiple of this, a
    /// server snapshots its applied commands there (see `apply`). `None`: no such snapshots (a
    /// service may take its own).
    snapshot_every: Option<Index>,
    /// Snapshots the servers handed their cores, of every kind.
    snapshots_taken: u64,
    /// Snapshots the cores installed from a leader's InstallSnapshot (`Effect::Restore`), per
    /// server; a restart from a saved snapshot is not one.
    snapshots_installed: Vec<u64>,
    /// Server instances started from a snapshot their store kept.
    restarts_from_snapshot: u64,
}

impl<C: Command> World<C> {
    /// A cluster of `servers` fresh servers, all started and connected, as `make_config` does.
    pub fn new(servers: u8, seed: u64, mutations: MutationSet, trace: bool) -> World<C> {
        let mut world = World {
            now: Duration::ZERO,
            seq: 0,
            queue: BinaryHeap::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            servers: (0..servers)
                .map(|_| Server {
                    node: None,
                    store: MemoryStore::new(),
                    incarnation: 0,
                    connected: false,
                    timer_generation: 0,
                    side: 0,
                })
                .collect(),
            mutations,
            net: NetConfig::default(),
            applied: AppliedLogs::new(servers as usize),
            rpcs_received: vec![0; servers as usize],
            bytes_sent: 0,
            trace: Trace::new(trace),
            failure: None,
            state_machines: None,
            snapshot_every: None,
            snapshots_taken: 0,
            snapshots_installed: vec![0; servers as usize],
            restarts_from_snapshot: 0,
        };
        for i in 0..servers {
            world.start(i);
            world.connect(i);
        }
        world
    }

    pub fn servers(&self) -> u8 {
        self.servers.len() as u8
    }

    pub fn now(&self) -> Duration {
        self.now
    }

    /// The seeded random stream; tests draw from it too, so their choices replay with the seed.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Puts a service on top of the servers: from now on it hears of every apply and restart,
    /// and takes and restores the snapshots.
    ///
    /// # Panics
    /// If the tester's applier takes snapshots: a server's snapshots are either the tester's
    /// (its applied commands) or the service's, never both.
    pub fn set_state_machines(&mut self, state_machines: Box<dyn StateMachines<C>>) {
        assert!(
            self.snapshot_every.is_none(),
            "a service on a world that takes snapshots"
        );
        self.state_machines = Some(state_machines);
    }

    /// Switches on Lab 3D's snapshotting applier: each server snapshots (its applied index and
    /// the commands up to it) whenever its applied index is a multiple of `every`.
    ///
    /// # Panics
    /// If a service is on (it takes its own snapshots, see [`World::set_state_machines`]), or
    /// if `every` is 0.
    pub fn take_snapshots(&mut self, every: Index) {
        assert!(
            self.state_machines.is_none(),
            "snapshots on a world with a service"
        );
        assert!(every > 0, "a snapshot every 0 applies");
        self.snapshot_every = Some(every);
    }

    /// Bytes of Raft state that server `i`'s store keeps, its snapshot's data left out (the
    /// persister's `RaftStateSize()`): measured on the store, so a store that keeps what the
    /// core compacted away counts it.
    pub fn raft_state_size(&self, i: NodeId) -> usize {
        self.servers[i as usize].store.state_size()
    }

    /// Bytes of the snapshot data server `i`'s store keeps (the persister's `SnapshotSize()`):
    /// 0 without a snapshot.
    pub fn snapshot_size(&self, i: NodeId) -> usize {
        let synced = self.servers[i as usize].store.synced_state();
        synced.snapshot.as_ref().map_or(0, |s| s.data.len())
    }

    /// Snapshots the servers have handed their cores so far.
    pub fn snapshots_taken(&self) -> u64 {
        self.snapshots_taken
    }

    /// Snapshots server `i`'s cores (in any incarnation) installed from InstallSnapshot.
    pub fn snapshots_installed(&self, i: NodeId) -> u64 {
        self.snapshots_installed[i as usize]
    }

    /// Server instances started so far from a snapshot their store kept.
    pub fn restarts_from_snapshot(&self) -> u64 {
        self.restarts_from_snapshot
    }

    /// The network's current mode (client messages of a service take the same fates).
    pub fn net(&self) -> NetConfig {
        self.net
    }

    /// The first failed check of the run, if any; the runtime stops the run on it.
    pub fn take_failure(&mut self) -> Option<Failure> {
        self.failure.take()
    }

    /// The recorded events (empty unless tracing was asked for).
    pub fn take_trace(&mut self) -> Vec<TraceEvent<C>> {
        self.trace.take()
    }

    fn fail(&mut self, failure: Failure) {
        self.failure.get_or_insert(failure);
    }

    fn schedule(&mut self, at: Duration, event: Event<C>) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Wakes task `task` at virtual time `at`.
    pub fn schedule_wake(&mut self, at: Duration, task: TaskId) {
        self.schedule(at.max(self.now), Event::Wake(task));
    }

    /// Moves the clock to the next event and processes it (a task wake-up is returned to the
    /// runtime instead).
    pub fn advance(&mut self) -> Advance {
        let Some(Reverse(next)) = self.queue.pop() else {
            return Advance::Idle;
        };
        self.now = next.at;
        match next.event {
            Event::Wake(task) => return Advance::Wake(task),
            Event::Deliver {
                from,
                from_incarnation,
                to,
                to_incarnation,
                msg,
            } => self.deliver(from, from_incarnation, to, to_incarnation, msg),
            Event::ElectionTimer { server, generation } => {
                self.on_election_timer(server, generation)
            }
            Event::Heartbeat {
                server,
                incarnation,
            } => self.on_heartbeat(server, incarnation),
        }
        Advance::Ran
    }

    // ----- the tester's controls -----

    /// Stops server `i` at once: the instance is dropped with all its volatile state, its
    /// store keeps what was synced, and it is cut off the network.
    pub fn crash(&mut self, i: NodeId) {
        let server = &mut self.servers[i as usize];
        if server.node.take().is_none() {
            return;
        }
        server.connected = false;
        server.incarnation += 1;
        server.timer_generation += 1;
        self.trace
            .record(self.now, || Traced::Crashed { server: i });
    }

    /// Starts a new instance of server `i` from its saved state through the real codec (after
    /// crashing the running one, as `start1` does). It stays disconnected until `connect`.
    pub fn start(&mut self, i: NodeId) {
        self.crash(i);
        let s = i as usize;
        let hard = self.servers[s].store.synced_state().clone();
        // Flow control off (a window of 0 batches), batches bounded as in raftd: labrpc
        // reorders and drops single messages, and a pipelined follower takes any gap for a lost
        // batch and is probed again, a schedule the ported 6.5840 tests were not written for
        // (raftd's links are ordered TCP). The model checks flow control (`--window`).
        let config = Config::new(i, self.servers()).with_flow(
            DEFAULT_MAX_APPEND_BYTES,
            DEFAULT_MAX_APPEND_ENTRIES,
            0,
        );
        let snapshot = hard.snapshot.clone();
        let node = Node::with_rules(config, self.mutations, hard);
        let (term, log_len) = (node.current_term(), node.hard_state().last_index());
        self.servers[s].node = Some(node);
        self.applied.restart(i);
        if let Some(state_machines) = &mut self.state_machines {
            state_machines.restarted(i);
        }
        self.arm_election_timer(i);
        let phase = Duration::from_micros(self.rng.random_range(0..HEARTBEAT.as_micros() as u64));
        let incarnation = self.servers[s].incarnation;
        self.schedule(
            self.now + phase,
            Event::Heartbeat {
                server: i,
                incarnation,
            },
        );
        self.trace.record(self.now, || Traced::Started {
            server: i,
            term,
            log_len,
        });
        // The service starts from the saved snapshot before the core applies anything.
        if let Some(snapshot) = snapshot {
            self.restarts_from_snapshot += 1;
            self.restore(i, snapshot);
        }
    }

    pub fn connect(&mut self, i: NodeId) {
        self.servers[i as usize].connected = true;
        self.trace
            .record(self.now, || Traced::Connected { server: i });
    }

    pub fn disconnect(&mut self, i: NodeId) {
        self.servers[i as usize].connected = false;
        self.trace
            .record(self.now, || Traced::Disconnected { server: i });
    }

    /// Cuts the network in two: the servers in `side` and the others (labrpc's per-link
    /// `enable`, as 6.5840's KV tests partition). `partition(&[])` heals it. Whether a server
    /// is connected at all is unchanged.
    pub fn partition(&mut self, side: &[NodeId]) {
        for (i, server) in self.servers.iter_mut().enumerate() {
            server.side = u8::from(side.contains(&(i as NodeId)));
        }
        let side = side.to_vec();
        self.trace.record(self.now, || Traced::Partitioned { side });
    }

    pub fn set_unreliable(&mut self, unreliable: bool) {
        self.net.unreliable = unreliable;
        let net = self.net;
        self.trace.record(self.now, || Traced::Network(net));
    }

    pub fn set_long_reordering(&mut self, long_reordering: bool) {
        self.net.long_reordering = long_reordering;
        let net = self.net;
        self.trace.record(self.now, || Traced::Network(net));
    }

    /// The lab's `Start(command)` on server `i`: `Some((index, term))` if it is a running
    /// leader, which then sends the new entry at once rather than at the next heartbeat.
    pub fn propose(&mut self, i: NodeId, command: C) -> Option<(Index, Term)> {
        self.offer(i, |node| node.propose(command))?.ok()
    }

    /// A request to a service's front door on server `i` (such as
    /// `raft_impl::service::submit`): `front` either proposes an entry (`Ok`), which is then
    /// sent at once as by [`World::propose`], or turns the request away or answers it without
    /// the log (`Err`). `None` while `i` is crashed.
    pub fn offer<E>(
        &mut self,
        i: NodeId,
        front: impl FnOnce(&mut Node<C, MutationSet>) -> Result<Proposal<C>, E>,
    ) -> Option<Result<(Index, Term), E>> {
        let node = self.servers[i as usize].node.as_mut()?;
        let proposal = match front(node) {
            Ok(proposal) => proposal,
            Err(e) => return Some(Err(e)),
        };
        let (index, term) = (proposal.index, proposal.term);
        if let Some(entry) = node
            .hard_state()
            .entry(index)
            .filter(|_| self.trace.is_enabled())
        {
            let command = entry.command.clone();
            self.trace.record(self.now, || Traced::Proposed {
                server: i,
                index,
                term,
                command,
            });
        }
        self.run_effects(i, proposal.effects);
        self.step(i, Node::broadcast_append);
        Some(Ok((index, term)))
    }

    /// The lab's `GetState()`: term and whether it believes it is leader; `None` while crashed.
    pub fn state(&self, i: NodeId) -> Option<(Term, bool)> {
        let node = self.servers[i as usize].node.as_ref()?;
        Some((node.current_term(), node.is_leader()))
    }

    pub fn is_connected(&self, i: NodeId) -> bool {
        self.servers[i as usize].connected
    }

    pub fn is_running(&self, i: NodeId) -> bool {
        self.servers[i as usize].node.is_some()
    }

    /// How many servers applied `index`, and the command they applied there.
    pub fn n_committed(&self, index: Index) -> (usize, Option<C>) {
        let (count, command) = self.applied.n_committed(index);
        (count, command.cloned())
    }

    /// Requests delivered to server `i` so far.
    pub fn rpc_count(&self, i: NodeId) -> u64 {
        self.rpcs_received[i as usize]
    }

    /// Bytes of every request sent so far, as the real codec encodes them.
    pub fn bytes_total(&self) -> u64 {
        self.bytes_sent
    }

    // ----- events -----

    fn deliver(
        &mut self,
        from: NodeId,
        from_incarnation: u32,
        to: NodeId,
        to_incarnation: Option<u32>,
        msg: Message<C>,
    ) {
        let (sender, receiver) = (&self.servers[from as usize], &self.servers[to as usize]);
        let loss = if sender.incarnation != from_incarnation {
            Some(Loss::SenderCrashed)
        } else if !sender.connected {
            Some(Loss::SenderDisconnected)
        } else if receiver.node.is_none() || !receiver.connected {
            Some(Loss::ReceiverDown)
        } else if to_incarnation.is_some_and(|inc| inc != receiver.incarnation) {
            Some(Loss::ReceiverRestarted)
        } else if sender.side != receiver.side {
            Some(Loss::Partitioned)
        } else {
            None
        };
        if let Some(loss) = loss {
            return self
                .trace
                .record(self.now, || Traced::Lost { from, to, loss });
        }
        if is_request(&msg) {
            self.rpcs_received[to as usize] += 1;
        }
        self.trace.record(self.now, || Traced::Delivered {
            from,
            to,
            msg: msg.clone(),
        });
        self.step(to, |node| node.handle(from, msg));
    }

    fn on_election_timer(&mut self, server: NodeId, generation: u64) {
        if self.servers[server as usize].timer_generation != generation {
            return;
        }
        self.trace
            .record(self.now, || Traced::ElectionTimeout { server });
        self.step(server, Node::election_timeout);
        // A leader ignores the timeout and a candidate re-arms it; keep the timer running for
        // the day this server stops being leader.
        if self.servers[server as usize].timer_generation == generation {
            self.arm_election_timer(server);
        }
    }

    fn on_heartbeat(&mut self, server: NodeId, incarnation: u32) {
        let s = &self.servers[server as usize];
        if s.incarnation != incarnation || s.node.is_none() {
            return;
        }
        if s.node.as_ref().is_some_and(Node::is_leader) {
            self.trace.record(self.now, || Traced::Heartbeat { server });
            self.step(server, Node::broadcast_append);
        }
        self.schedule(
            self.now + HEARTBEAT,
            Event::Heartbeat {
                server,
                incarnation,
            },
        );
    }

    fn arm_election_timer(&mut self, server: NodeId) {
        let timeout = Duration::from_millis(self.rng.random_range(ELECTION_TIMEOUT_MS));
        let s = &mut self.servers[server as usize];
        s.timer_generation += 1;
        let generation = s.timer_generation;
        self.schedule(
            self.now + timeout,
            Event::ElectionTimer { server, generation },
        );
    }

    /// Runs one event of a running server's core and carries out its effects; traces a change
    /// of role or term and tells the service of it.
    fn step(
        &mut self,
        server: NodeId,
        event: impl FnOnce(&mut Node<C, MutationSet>) -> Vec<Effect<C>>,
    ) {
        let Some(node) = self.servers[server as usize].node.as_mut() else {
            return;
        };
        let before = (node.role(), node.current_term());
        let effects = event(node);
        let after = (node.role(), node.current_term());
        if before != after {
            self.trace.record(self.now, || Traced::Became {
                server,
                role: after.0,
                term: after.1,
            });
        }
        self.run_effects(server, effects);
        if before != after {
            if let (Some(state_machines), Some(node)) = (
                &mut self.state_machines,
                &self.servers[server as usize].node,
            ) {
                state_machines.role_changed(server, node);
            }
        }
    }

    /// Carries out effects in the order the core gave them: a `Persist` record is written and
    /// synced (in O(its size)) before the sends behind it leave.
    fn run_effects(&mut self, server: NodeId, effects: Vec<Effect<C>>) {
        for effect in effects {
            match effect {
                Effect::Persist(record) => {
                    let store = &mut self.servers[server as usize].store;
                    let Ok(_) = store.append(&[record]).and_then(|_| store.sync());
                    let hard = store.synced_state();
                    self.trace.record(self.now, || Traced::Persisted {
                        server,
                        term: hard.current_term,
                        voted_for: hard.voted_for,
                        log_len: hard.last_index(),
                    });
                }
                Effect::Send { to, msg } => self.send(server, to, msg),
                Effect::Apply { index, command } => {
                    let recorded = self.applied.record(server, index, &command);
                    self.trace.record(self.now, || Traced::Applied {
                        server,
                        index,
                        command: command.clone(),
                    });
                    if let Err(f) = recorded {
                        self.fail(f);
                    } else if let Some(data) = self.after_apply(server, index, &command) {
                        self.snapshot(server, index, data);
                    }
                }
                Effect::ResetElectionTimer => self.arm_election_timer(server),
                Effect::Restore(snapshot) => {
                    self.snapshots_installed[server as usize] += 1;
                    self.restore(server, snapshot);
                }
            }
        }
    }

    /// Server `server` applied `command` at `index`: the service hears of it, and the bytes of
    /// a snapshot at `index` come back if one is due now, from the service if there is one (by the
    /// size of the Raft state its store keeps now), else from the tester's applier (at every
    /// multiple of its interval).
    fn after_apply(&mut self, server: NodeId, index: Index, command: &C) -> Option<Vec<u8>> {
        if let Some(state_machines) = &mut self.state_machines {
            state_machines.applied(server, index, command);
            let store = &self.servers[server as usize].store;
            return state_machines.snapshot_due(server, &|| store.state_size());
        }
        if self.snapshot_every.is_none_or(|every| index % every != 0) {
            return None;
        }
        self.applied
            .snapshot(server, index)
            .map_err(|f| self.fail(f))
            .ok()
    }

    /// Server `server` just applied `index` and hands its core a snapshot there (`data`); the
    /// core's records (the compaction) are written at once.
    fn snapshot(&mut self, server: NodeId, index: Index, data: Vec<u8>) {
        let Some(node) = self.servers[server as usize].node.as_mut() else {
            return;
        };
        match node.snapshot(index, data) {
            Ok(effects) => {
                self.snapshots_taken += 1;
                self.trace
                    .record(self.now, || Traced::Snapshotted { server, index });
                self.run_effects(server, effects);
            }
            Err(e) => self.fail(Failure::SnapshotRefused {
                server,
                reason: e.to_string(),
            }),
        }
    }

    /// Server `server`'s state machine takes `snapshot` as its state: one the core installed,
    /// or the one saved when the server starts. The service restores it if there is one (the
    /// tester then only checks the index), else the tester's applier decodes and checks it.
    fn restore(&mut self, server: NodeId, snapshot: Snapshot) {
        let index = snapshot.last_index;
        self.trace
            .record(self.now, || Traced::Restored { server, index });
        let restored = match &mut self.state_machines {
            Some(state_machines) => self
                .applied
                .install_opaque(server, index)
                .and_then(|()| state_machines.restore(server, &snapshot)),
            None => self.applied.install(server, &snapshot),
        };
        if let Err(f) = restored {
            self.fail(f);
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message<C>) {
        let request = is_request(&msg);
        if request {
            match codec::encode(FrameKind::Message, &msg) {
                Ok(bytes) => self.bytes_sent += bytes.len() as u64,
                Err(e) => self.fail(Failure::Encode {
                    server: from,
                    reason: e.to_string(),
                }),
            }
        }
        let fate = if self.servers[from as usize].connected {
            let now = self.now;
            self.net
                .fate(&msg, &mut self.rng)
                .map(|delay| now + delay)
                .ok_or(Loss::Network)
        } else {
            Err(Loss::SenderDisconnected)
        };
        self.trace.record(self.now, || Traced::Sent {
            from,
            to,
            msg: msg.clone(),
            fate,
        });
        if let Ok(at) = fate {
            let event = Event::Deliver {
                from,
                from_incarnation: self.servers[from as usize].incarnation,
                to,
                to_incarnation: (!request).then_some(self.servers[to as usize].incarnation),
                msg,
            };
            self.schedule(at, event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Advances `world` until some server leads; returns it.
    fn elect(world: &mut World<u64>) -> NodeId {
        loop {
            assert_ne!(world.advance(), Advance::Idle);
            if let Some(leader) =
                (0..world.servers()).find(|i| world.state(*i).is_some_and(|s| s.1))
            {
                return leader;
            }
        }
    }

    fn run_for(world: &mut World<u64>, duration: Duration) {
        let until = world.now() + duration;
        while world.now() < until {
            assert_ne!(world.advance(), Advance::Idle);
        }
    }

    #[test]
    fn messages_of_a_crashed_instance_never_arrive() {
        let mut world = World::new(3, 1, MutationSet::NONE, true);
        let leader = elect(&mut world);
        let crash_time = world.now();
        world.propose(leader, 42).unwrap();
        world.crash(leader);
        run_for(&mut world, Duration::from_millis(50));
        let trace = world.take_trace();
        let after = trace.iter().filter(|e| e.at >= crash_time);
        let mut lost = 0;
        for event in after {
            match event.what {
                Traced::Delivered { from, .. } => assert_ne!(from, leader, "{event}"),
                Traced::Lost {
                    from,
                    loss: Loss::SenderCrashed,
                    ..
                } if from == leader => lost += 1,
                _ => {}
            }
        }
        // At least the two AppendEntries carrying 42 (the initial heartbeats of the new leader
        // may still be in flight too).
        assert!(lost >= 2, "only {lost} messages lost");
    }

    #[test]
    fn a_restarted_server_resumes_from_its_saved_state() {
        let mut world = World::new(3, 2, MutationSet::NONE, false);
        let leader = elect(&mut world);
        let (index, term) = world.propose(leader, 7).unwrap();
        run_for(&mut world, Duration::from_millis(300));
        assert_eq!(world.n_committed(index), (3, Some(7)));
        world.crash(leader);
        assert_eq!(world.state(leader), None);
        world.start(leader);
        assert!(
            !world.is_connected(leader),
            "start leaves a server disconnected"
        );
        let (restarted_term, leading) = world.state(leader).unwrap();
        assert!(restarted_term >= term && !leading);
    }

    /// Commits 300 large commands on a fresh cluster of 3; returns the largest Raft state its
    /// stores keep.
    fn raft_state_after_300_commands(snapshots: bool) -> usize {
        let mut world = World::new(3, 5, MutationSet::NONE, false);
        if snapshots {
            world.take_snapshots(10);
        }
        let leader = elect(&mut world);
        for i in 0..300u64 {
            world.propose(leader, u64::MAX - i).unwrap();
        }
        run_for(&mut world, Duration::from_secs(1));
        assert_eq!(world.n_committed(300).0, 3);
        (0..3).map(|i| world.raft_state_size(i)).max().unwrap()
    }

    /// The 3D log-size limit can fail: without snapshots the stores outgrow it, with them they
    /// stay under it.
    #[test]
    fn the_raft_state_outgrows_the_3d_limit_only_without_snapshots() {
        let limit = crate::failure::MAX_LOG_SIZE;
        let kept = raft_state_after_300_commands(false);
        assert!(kept > limit, "{kept} bytes");
        let compacted = raft_state_after_300_commands(true);
        assert!(compacted < limit / 4, "{compacted} bytes");
    }

    #[test]
    fn a_partition_cuts_the_sides_off_from_each_other_until_healed() {
        let mut world = World::new(5, 4, MutationSet::NONE, true);
        let leader = elect(&mut world);
        let minority = [leader, (leader + 1) % 5];
        world.partition(&minority);
        let (index, _) = world.propose(leader, 9).unwrap();
        run_for(&mut world, Duration::from_secs(2));
        assert_eq!(world.n_committed(index).0, 0);
        assert_eq!(
            world.state(leader).map(|s| s.1),
            Some(true),
            "deposed unawares"
        );
        let majority_leader = (0..5)
            .filter(|i| !minority.contains(i))
            .find(|i| world.state(*i).is_some_and(|s| s.1));
        assert!(
            majority_leader.is_some(),
            "the majority side elects a leader"
        );
        world.partition(&[]);
        run_for(&mut world, Duration::from_secs(1));
        assert_eq!(world.state(leader).map(|s| s.1), Some(false));
        let trace: Vec<String> = world.take_trace().iter().map(|e| e.to_string()).collect();
        assert!(trace
            .iter()
            .any(|l| l.ends_with(&format!("partition: {minority:?} | the others"))));
        assert!(trace.iter().any(|l| l.contains("lost: Partitioned")));
        assert!(trace.iter().any(|l| l.ends_with("partition healed")));
    }

    #[test]
    fn a_disconnected_server_neither_sends_nor_receives() {
        let mut world = World::new(3, 3, MutationSet::NONE, false);
        let leader = elect(&mut world);
        world.disconnect(leader);
        let (index, _) = world.propose(leader, 9).unwrap();
        run_for(&mut world, Duration::from_secs(2));
        assert_eq!(world.n_committed(index).0, 0);
        let received = world.rpc_count(leader);
        run_for(&mut world, Duration::from_secs(1));
        assert_eq!(world.rpc_count(leader), received);
    }
}
