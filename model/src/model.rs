//! The `stateright::Model` over the core. Every server transition is a call into
//! `raft_impl::Node`; this module only schedules those calls, carries out the effects they
//! return (persist, send, apply) and keeps the ghost history up to date.
//!
//! With KV clients, the service is the implementation's too: a request is decided by
//! `raft_impl::service` (append, or answer a read locally under the stale-read bug), applied
//! entries go to each server's `raft_impl::kv::KvStore`, and the client waiting on that index
//! of that server gets the store's reply. Requests and replies are direct steps rather than
//! messages: a lost request is a refusal or a timeout, a lost reply is a timeout before the
//! apply, so the network adds nothing but states.

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use raft_impl::kv::{KvReply, KvRequest, KvStore, SessionRules};
use raft_impl::service::{self, Settled};
use raft_impl::storage::HeldWrites;
use raft_impl::{
    rules, Config, Effect, Envelope, HardState, Index, Message, MutationSet, Node, NodeId, Record,
    Role,
};
use stateright::{Model, Path, Property};

use crate::action::{Action, Kept};
use crate::bounds::{Bounds, KvBounds, Persistence, SERVER_LIMIT};
use crate::kv::{self, Clients, Status};
use crate::network;
use crate::state::{Cmd, Committed, Ghost, Server, State, Violation, Write};
use crate::{diagram, panics, properties, render, snapshot};

/// The model of a cluster running the core under `bounds`, with `kv` clients.
#[derive(Clone, Debug)]
pub struct RaftModel {
    pub bounds: Bounds,
    pub kv: KvBounds,
    /// Identify states up to a renaming of the servers (see [`crate::symmetry`]).
    pub symmetry: bool,
    /// Steps a lossless network could not take because their sends did not fit under
    /// `--max-in-flight`, counted as the checker generates them (a state reached twice counts
    /// twice): `check` reports it, so a run says what the bound cut.
    pub removed_by_bound: Arc<AtomicU64>,
    /// On a lossy network, a step loses only as many of its sends as do not fit, and the
    /// network drops the others later (see [`RaftModel::fit`]). Off only to check that
    /// reduction against the plain exploration, where any of a step's sends may be lost.
    pub reduce_loss: bool,
    /// The stores' session timeout in expiry events ([`kv::RULES`]: 0, one event is more than
    /// the timeout). Other values only to check that abstraction against a finer clock
    /// (`tests/kv_clients.rs`), where several events make up a timeout.
    pub session_timeout: u64,
    /// Two reductions of the timing events of `--check-quorum`, off only to check them against
    /// the plain exploration (`tests/timing.rs`: the same verdicts).
    ///
    /// The lease: a follower's leader contact expires (`Action::ContactExpires`) only while a
    /// RequestVote or PreVote of a higher term is on its way to it, where the plain exploration
    /// lets it expire at any moment. The contact flag is read by the core in one place, the
    /// lease check on such a message, and only cleared elsewhere (a new term, an election of
    /// the server's own; a new contact sets it again). So an expiry commutes with every step
    /// but that delivery, and a path that expires the contact earlier reaches, once the expiry
    /// is moved to just before that delivery (or left out when none comes), the same states
    /// but for the flag, which no property reads.
    ///
    /// CheckQuorum: `Action::CheckQuorum` is an interval in which the leader heard from no one
    /// (two `check_quorum()` calls in a row), so it always steps down, and a leader's record
    /// (`Node::recent_active`) is not part of the state; the plain exploration calls
    /// `check_quorum()` once and keeps the record. With two servers or more (alone, a leader
    /// is its own majority and the action is not offered), the plain model can step a leader
    /// down at any moment too, by the same two checks, and its single checks otherwise only
    /// reset the record, which nothing else reads; so both reach the same states but for the
    /// record. What this leaves to the unit tests (`impl/tests/disruption.rs`) is the record's
    /// bookkeeping: only liveness depends on it.
    pub reduce_timing: bool,
    /// On a lossy network, a message ignored for good leaves the network in the step that makes
    /// it so, rather than staying until dropped. Off only to check that reduction against the
    /// plain exploration (`tests/stale_replies.rs`).
    ///
    /// Which messages. Replies (`raft_impl::rules::ignored_for_good`, the rule the core's own
    /// early return uses), under rules that look at no stale reply and never lower a term: a
    /// reply of a term below the receiver's floor; a vote or acknowledgement of the floor
    /// itself when the receiver can never be that term's candidate or leader (it follows or
    /// pre-campaigns in it); and a refused vote of the floor in any role, which counts for
    /// nothing (unless leaders note contact, with `--check-quorum`). The floor is the lower of
    /// the receiver's running term and its disk's (its disk's alone while it is down): a
    /// restart starts from the disk, as a follower. And requests
    /// (`raft_impl::rules::stale_refusal`): a RequestVote, AppendEntries or InstallSnapshot of a
    /// term below its receiver's floor is refused whenever it arrives, with nothing changed but
    /// a refusal sent back carrying the receiver's term; no term exceeds `max_term` (only a
    /// timeout makes one, and none fires at it), so when the sender ignores for good a refusal
    /// of `max_term`, it ignores every refusal the request can bring, and the request is as
    /// inert as such a reply: its delivery ends, once the refusal is gone, in the state its
    /// `Drop` reaches. (Under `--storage deferred` or `wal` the refusal may first wait behind
    /// the receiver's pending record, holding a place under `--max-in-flight` as the request
    /// did, until a flush releases it and it leaves, or a crash loses it.)
    ///
    /// Why no verdict changes. Such a message's delivery changes nothing but the network (on a
    /// lossy network a reply's is not even a step: see `RaftModel::deliver`), and stays so in
    /// every later state: the floor never goes down, a follower or pre-candidate of a term never
    /// becomes its candidate or leader, and a term never passes `max_term`.
    /// So the plain exploration can do with the message only three things it cannot do without
    /// it: drop it (the state this reduction goes to, so every state the reduction reaches the
    /// plain exploration reaches too, by that `Drop`; a request's delivery reaches it too);
    /// duplicate it (another such message, using
    /// up duplicate budget, which only takes steps away); and let it hold a place under
    /// `--max-in-flight`, which only takes room away (a step that loses sends for lack of that
    /// room is, with the room, the step without the loss followed by `Drop`s). Hence every
    /// state the plain exploration reaches is matched by one this reduction reaches with the
    /// same servers, clients and ghost history, a network that lacks only messages ignored for
    /// good (and pending queues that lack only refusals to them), and at least as much budget
    /// left; every `always` property reads servers, clients
    /// and ghost only, so it holds on both alike. The state graph's cycles do not matter here
    /// as they do for partial-order reduction: no step is left out, states are only merged
    /// into one the plain exploration reaches. A bug that breaks the premise (looks at a stale
    /// reply, lowers a term, accepts an old term's AppendEntries) turns the part it breaks off
    /// for its runs (`MutationSet`'s `ignores_stale_replies` and `refuses_stale_requests`).
    ///
    /// The coverage properties that read the network are the exception, since they look at
    /// old messages in flight: a granted RequestVoteReply on its way to a running candidate is
    /// therefore left in place (it goes once its receiver is no candidate), so that "an old
    /// vote reaches a newer candidate" is reached as in the plain exploration; the other two
    /// are reached by requests whose sender has not reached `max_term`, which stay, and
    /// PreVote's by a refusal of the receiver's own term, which stays too (a PreVote is never
    /// dropped). `tests/stale_replies.rs` checks that each is reached as in the plain
    /// exploration.
    pub reduce_stale: bool,
}

/// The reductions of the state space a run applies. Each is argued where it acts (symmetry in
/// [`crate::symmetry`], the other two on [`RaftModel::reduce_loss`] and
/// [`RaftModel::reduce_timing`]) and must change no verdict; turning one off gives the plain
/// exploration it stands for, so that `raftcheck bugs --run` can show every catalog bug caught
/// with each of them off (`tests/reductions.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reductions {
    pub symmetry: bool,
    pub loss: bool,
    pub timing: bool,
    pub stale: bool,
}

impl Reductions {
    /// Every reduction on: what every run does unless told otherwise.
    pub const ALL: Reductions = Reductions {
        symmetry: true,
        loss: true,
        timing: true,
        stale: true,
    };

    /// The names of the reductions that are off, as the flags that turn them off name them
    /// (`--no-symmetry`, `--no-loss-reduction`, `--no-timing-reduction`,
    /// `--no-stale-reduction`).
    pub fn off(&self) -> Vec<&'static str> {
        [
            (self.symmetry, "symmetry"),
            (self.loss, "loss-reduction"),
            (self.timing, "timing-reduction"),
            (self.stale, "stale-reduction"),
        ]
        .into_iter()
        .filter(|(on, _)| !on)
        .map(|(_, name)| name)
        .collect()
    }
}

impl RaftModel {
    /// The cluster with plain proposals only, with symmetry reduction.
    pub fn new(bounds: Bounds) -> RaftModel {
        RaftModel::with_kv(bounds, KvBounds::default())
    }

    /// The cluster with KV clients besides any plain proposals, with symmetry reduction.
    pub fn with_kv(bounds: Bounds, kv: KvBounds) -> RaftModel {
        RaftModel {
            bounds,
            kv,
            symmetry: true,
            removed_by_bound: Arc::default(),
            reduce_loss: true,
            session_timeout: kv::RULES.timeout,
            reduce_timing: true,
            reduce_stale: true,
        }
    }

    /// The same model with every state its own: for the Explorer, which shows each state's
    /// fingerprint, and for checking that symmetry reduction changes no verdict.
    pub fn without_symmetry(self) -> RaftModel {
        RaftModel {
            symmetry: false,
            ..self
        }
    }

    /// The same model with `reductions` applied instead of its own.
    pub fn with_reductions(self, reductions: Reductions) -> RaftModel {
        RaftModel {
            symmetry: reductions.symmetry,
            reduce_loss: reductions.loss,
            reduce_timing: reductions.timing,
            reduce_stale: reductions.stale,
            ..self
        }
    }

    /// The reductions this model applies.
    pub fn reductions(&self) -> Reductions {
        Reductions {
            symmetry: self.symmetry,
            loss: self.reduce_loss,
            timing: self.reduce_timing,
            stale: self.reduce_stale,
        }
    }

    /// A fresh, empty store for a starting server when there are KV clients.
    fn store(&self) -> Option<KvStore<MutationSet>> {
        self.kv.enabled().then(|| {
            let rules = SessionRules {
                timeout: self.session_timeout,
                ..kv::RULES
            };
            KvStore::with_rules(self.bounds.mutations).with_sessions(rules)
        })
    }

    fn config(&self, id: NodeId) -> Config {
        // No send inside a reply's step: `Action::Replicate` sends AppendEntries (see the
        // field's doc). No byte bound: the model's commands are a few bytes, and `--max-batch`
        // explores every place a byte bound could end a batch (see `Bounds::max_batch`).
        Config::new(id, self.bounds.servers)
            .with_send_on_reply(false)
            .with_flow(usize::MAX, usize::MAX, self.bounds.window.into())
            .with_pre_vote(self.bounds.pre_vote)
            .with_check_quorum(self.bounds.check_quorum)
    }

    /// Server `id` starting from `hard`, with the bugs of the bounds switched on.
    fn node(&self, id: NodeId, hard: HardState<Cmd>) -> Node<Cmd, MutationSet> {
        Node::with_rules(self.config(id), self.bounds.mutations, hard)
    }

    fn ordered(&self) -> bool {
        self.bounds.network.ordered
    }

    /// Runs one core step on server `id` and carries out its effects on a copy of `last`, to
    /// which `prepare` first makes the action's other changes (taking `removed` messages off
    /// the network, say). The step runs on a copy of the node alone, so that one whose sends
    /// do not fit under the bound (see [`RaftModel::fit`]) is discarded before the whole state
    /// is copied.
    fn step(
        &self,
        last: &State,
        id: NodeId,
        removed: usize,
        lost: u8,
        prepare: impl FnOnce(&mut State),
        event: impl FnOnce(&mut Node<Cmd, MutationSet>) -> Option<Vec<Effect<Cmd>>>,
    ) -> Option<State> {
        let mut node = last.node(id)?.clone();
        let mut effects = event(&mut node)?;
        self.fit(last, removed, lost, &mut effects)?;
        let mut state = last.clone();
        prepare(&mut state);
        if !applies_in_order(last.node(id)?, &node, &effects) {
            state.ghost.record(Violation::AppliedOutOfOrder);
        }
        snapshot::check_installs(last.node(id)?, &effects, &mut state.ghost);
        state.set_node(id, node);
        self.observe(last, &mut state, id);
        let mut after_write = false;
        for effect in effects {
            let write = matches!(effect, Effect::Persist(_));
            self.carry_out(&mut state, id, effect, after_write);
            after_write = write;
        }
        Some(state)
    }

    /// Applies the `--max-in-flight` bound to a step's sends, given the peers whose messages
    /// the action says are `lost`. `None` when the action is not this step's.
    ///
    /// When every send fits, only the action that loses nothing is the step. When they do not
    /// fit, a lossless network cannot take the step (it is discarded, and counted); a lossy one
    /// takes it anyway and loses the sends that do not fit: one action for each choice of
    /// exactly as many lost peers as needed.
    ///
    /// That loses no behaviour. With atomic storage, losing more of a step's sends than
    /// needed, or losing some when they all fit, reaches the same state as losing exactly
    /// enough (or none) and then dropping the others with `Drop`, one after the other, every
    /// state in between within the bound: both explorations reach the same states. With
    /// deferred or WAL storage a send waiting behind a pending record can only be dropped once
    /// that record is flushed, so the reduced exploration does not reach the states in which a
    /// send was lost while its record was still pending: it reaches them with the send still
    /// queued, which a crash loses with the record and a flush releases to be dropped. They
    /// differ only in those queued sends. `tests/lossy_network.rs` checks both claims against
    /// the plain exploration ([`RaftModel::reduce_loss`] off, where any subset of any step's
    /// sends may be lost), with crashes and with the storage bugs on: with atomic storage the
    /// same states; with deferred and WAL storage the same states once the sends waiting behind
    /// pending records are set aside, and the same verdicts.
    fn fit(
        &self,
        last: &State,
        removed: usize,
        lost: u8,
        effects: &mut Vec<Effect<Cmd>>,
    ) -> Option<()> {
        let room = self.room(last, removed);
        let to = |e: &Effect<Cmd>| match e {
            Effect::Send { to, .. } => Some(*to),
            _ => None,
        };
        let sends = effects.iter().filter_map(to).count();
        if lost == 0 {
            if sends > room {
                // Only a lossless network removes the step (a lossy one takes it with losses);
                // the counter is shared by the checker threads, so it is touched only then.
                if !self.bounds.network.lossy {
                    self.removed_by_bound.fetch_add(1, Relaxed);
                }
                return None;
            }
            return Some(());
        }
        let destinations = effects.iter().filter_map(to).fold(0u8, |m, to| m | 1 << to);
        let kept = effects
            .iter()
            .filter_map(to)
            .filter(|to| lost & (1 << to) == 0)
            .count();
        let needed = if self.reduce_loss {
            kept == room && sends > room
        } else {
            kept <= room
        };
        if !self.bounds.network.lossy || lost & !destinations != 0 || !needed {
            return None;
        }
        effects.retain(|e| to(e).is_none_or(|to| lost & (1 << to) == 0));
        Some(())
    }

    /// How many sends fit under `--max-in-flight` in a step from `state` that takes `removed`
    /// messages off the network.
    fn room(&self, state: &State, removed: usize) -> usize {
        (self.bounds.max_in_flight + removed).saturating_sub(state.in_flight())
    }

    /// The sets of peers of `id` whose messages a step of `id` that sends at most `most`
    /// messages, with `room` left under the bound, may lose: the empty set and, on a lossy
    /// network, every set of 1 to `most - room` peers (which of them is the step's depends on
    /// how many it sends: [`RaftModel::fit`] keeps only that one); without
    /// [`RaftModel::reduce_loss`], every set of peers.
    fn loss_choices(&self, id: NodeId, most: usize, room: usize, out: &mut Vec<u8>) {
        out.clear();
        out.push(0);
        if !self.bounds.network.lossy {
            return;
        }
        let most_lost = if self.reduce_loss {
            most.saturating_sub(room)
        } else {
            most
        };
        let peers = (0..self.bounds.servers)
            .filter(|p| *p != id)
            .fold(0u8, |m, p| m | 1 << p);
        // Every non-empty subset of `peers`, each once.
        let mut subset = peers;
        while subset != 0 {
            if subset.count_ones() as usize <= most_lost {
                out.push(subset);
            }
            subset = (subset - 1) & peers;
        }
    }

    /// Carries out one effect of a step of server `id`, in the order the core emitted it;
    /// `after_write`: the step's previous effect was a write too.
    fn carry_out(&self, state: &mut State, id: NodeId, effect: Effect<Cmd>, after_write: bool) {
        match (effect, self.bounds.persistence) {
            (Effect::Persist(record), Persistence::Atomic) => {
                if !make_durable(state.server_mut(id), [record]) {
                    state.ghost.record(Violation::AppliedWentBack);
                }
            }
            (Effect::Persist(write), Persistence::Deferred) if after_write => {
                match state.server_mut(id).pending.last_write_mut() {
                    Some(Write::Records(writes)) => writes.push(write),
                    _ => unreachable!("a write after a write joins its pending persist"),
                }
            }
            (Effect::Persist(write), Persistence::Wal) => {
                snapshot::queue_wal_write(state, id, write, self.bounds.mutations)
            }
            (Effect::Persist(write), Persistence::Deferred) => state
                .server_mut(id)
                .pending
                .write(Write::Records(vec![write])),
            (Effect::Send { to, msg }, _) => {
                let env = Envelope { from: id, to, msg };
                // A send may not overtake a persist emitted before it.
                if let Some(env) = state.server_mut(id).pending.hold(env) {
                    network::insert(&mut state.network, env, self.ordered());
                }
            }
            (Effect::Apply { index, command }, _) => {
                let committed = state.ghost.committed.get(index as usize - 1);
                if committed.is_none_or(|c| c.command != command) {
                    state.ghost.record(Violation::StateMachineSafety);
                }
                self.apply_kv(state, id, index, command);
            }
            (Effect::ResetElectionTimer, _) => {}
            (Effect::Restore(snapshot), _) => snapshot::restored(state, id, &snapshot),
        }
    }

    /// Server `id` applies `command` at `index` to its store and settles the clients waiting
    /// on that index by `raft_impl::service::settle`, the rule of raftd's and the simulator's
    /// pending tables: the one whose request it is gets the store's reply, any other retries.
    /// Requests are compared without their stamps ([`Cmd::unstamped`]): the same request
    /// proposed again at another log time is still this client's, and the store answers it with
    /// that request's outcome. The waiters live in the client slots rather than in a
    /// `PendingRequests` table, so that the state holds each once. A deposed leader's waiters
    /// are not failed at once (as `PendingRequests::settle_unled` does in the runtimes): they
    /// wait until their index is applied there or they time out. Failing them at deposition
    /// would change the pinned state counts; the retry of a request whose fate is unknown,
    /// which it leads to, is explored through the client timeout.
    fn apply_kv(&self, state: &mut State, id: NodeId, index: Index, command: Cmd) {
        let reply = match command {
            Cmd::Plain(_) => None,
            kv_command => state
                .server_mut(id)
                .kv
                .as_mut()
                .map(|store| store.apply(index, &kv::command(kv_command))),
        };
        let Some(clients) = state.clients.as_mut() else {
            return;
        };
        let waiting = Status::Waiting { server: id, index };
        if clients.slots.iter().all(|c| c.status != waiting) {
            return;
        }
        let clients = Arc::make_mut(clients);
        for client in 0..clients.slots.len() as u8 {
            let slot = &mut clients.slots[client as usize];
            if slot.status != waiting {
                continue;
            }
            let request = slot.request(client);
            // A plain proposal at the index has no reply and is nobody's request.
            let settled = reply
                .clone()
                .map(|r| service::settle(&request, &command.unstamped(), r));
            match settled {
                Some(Settled::Replied(Ok(KvReply::Registered { id }))) => {
                    // The log is bounded below 256 entries (`--max-log`).
                    slot.session = u8::try_from(id).ok();
                    slot.status = Status::Idle;
                }
                Some(Settled::Replied(Ok(reply))) => clients.complete(client, reply),
                Some(Settled::Replied(Err(refused))) if refused.outcome_unknown() => {
                    slot.status = Status::Unknown
                }
                // No other refusal reaches a waiting client: registrations are never refused
                // here ([`kv::RULES`]), sizes are tiny, and a client sends request n + 1 only
                // once n has completed, so no committed prefix holds a later request of its
                // than the one it waits for.
                Some(Settled::Replied(Err(_)) | Settled::Superseded) | None => {
                    slot.status = Status::Retrying
                }
            }
        }
    }

    /// Client `client` sends its current request to `server`, stamped with the clients' log
    /// time. `None` when the server is down or refuses as not the leader, or when the entry
    /// would exceed the log bound.
    fn request(&self, last: &State, client: u8, server: NodeId) -> Option<State> {
        let clients = last.clients.as_ref()?;
        let cmd = clients.slots[client as usize]
            .request(client)
            .stamped(clients.clock);
        let command = kv::command(cmd);
        let s = &last.servers[server as usize];
        let node = s.node.as_ref()?;
        if service::answers_locally(node, &command.request) {
            let KvRequest::Get { key } = &command.request else {
                return None;
            };
            let value = s.kv.as_ref()?.read(key);
            let mut state = last.clone();
            let clients = Arc::make_mut(state.clients.as_mut()?);
            clients.invoke(client);
            clients.complete(client, value);
            return Some(state);
        }
        let last_index = node.hard_state().last_index();
        if !node.is_leader() || last_index >= self.bounds.max_log as Index {
            return None;
        }
        let index = last_index + 1;
        let waiting = |state: &mut State| {
            if let Some(clients) = state.clients.as_mut() {
                let clients = Arc::make_mut(clients);
                clients.invoke(client);
                clients.slots[client as usize].status = Status::Waiting { server, index };
            }
        };
        self.step(last, server, 0, 0, waiting, |node| {
            node.propose(cmd).ok().map(|p| p.effects)
        })
    }

    /// Updates the ghost history after server `id` took a step from `last`: who is leader,
    /// what is committed, and the transition rules (append-only leaders, monotonic indices).
    fn observe(&self, last: &State, state: &mut State, id: NodeId) {
        let Some(node) = state.servers[id as usize].node.as_ref() else {
            return;
        };
        let ghost = &mut state.ghost;
        let term = node.current_term();
        if node.role() == Role::Leader {
            let won = last
                .node(id)
                .is_none_or(|b| b.role() != Role::Leader || b.current_term() != term);
            if won && ghost.leaders[term as usize] != 0 {
                ghost.record(Violation::SecondLeader);
            }
            ghost.leaders[term as usize] |= 1 << id;
        }
        if let Some(before) = last.node(id) {
            if node.commit_index() < before.commit_index() {
                ghost.record(Violation::CommitIndexDecreased);
            }
            let same_reign = before.role() == Role::Leader
                && node.role() == Role::Leader
                && before.current_term() == term;
            if same_reign {
                if !snapshot::extends(node.hard_state(), before.hard_state()) {
                    ghost.record(Violation::LeaderAppendOnly);
                }
                if (0..self.bounds.servers).any(|p| node.match_index(p) < before.match_index(p)) {
                    ghost.record(Violation::MatchIndexDecreased);
                }
            }
        }
        let hard = node.hard_state();
        for index in 1..=node.commit_index() as usize {
            let entry = hard.entry(index as Index);
            match (ghost.committed.get(index - 1), entry) {
                (Some(known), _) if snapshot::holds(hard, index as Index, known) => {
                    if term < known.commit_term {
                        Arc::make_mut(&mut ghost.committed)[index - 1].commit_term = term;
                    }
                }
                (Some(_), _) | (None, None) => ghost.record(Violation::CommittedOverwritten),
                (None, Some(e)) => Arc::make_mut(&mut ghost.committed).push(Committed {
                    term: e.term,
                    command: e.command,
                    commit_term: term,
                }),
            }
        }
    }

    fn deliver(&self, last: &State, slot: usize, lost: u8) -> Option<State> {
        let env = &last.network[slot];
        let take = |state: &mut State| {
            state.network.remove(slot);
        };
        if last.node(env.to).is_none() {
            if lost != 0 {
                return None;
            }
            // A message to a crashed server is lost.
            let mut state = last.clone();
            take(&mut state);
            return Some(state);
        }
        let before = last.node(env.to)?;
        let lossy = self.bounds.network.lossy;
        self.step(last, env.to, 1, lost, take, |node| {
            let effects = node.handle(env.from, env.msg.clone());
            // A delivery that changes nothing is a loss, which `Drop` already explores on a
            // lossy network: stale replies and old terms' messages are many of them.
            if lossy && effects.is_empty() && node == before {
                return None;
            }
            Some(effects)
        })
    }

    /// The crash events of the servers in `mask`: one, or with a write-ahead log one for each
    /// choice of how many of its pending records each server's disk keeps (any prefix, from
    /// none to all of them, independently per server).
    fn crashes(&self, state: &State, mask: u8, actions: &mut Vec<Action>) {
        let mut kept: Kept = [0; SERVER_LIMIT as usize];
        let most = |id: usize| match self.bounds.persistence {
            Persistence::Wal => state.servers[id].pending_flushes(),
            Persistence::Atomic | Persistence::Deferred => 0,
        };
        let ids: Vec<usize> = (0..self.bounds.servers as usize)
            .filter(|id| mask & (1 << id) != 0)
            .collect();
        // Counts through every combination, like an odometer.
        loop {
            actions.push(Action::Crash { mask, kept });
            let Some(pos) = ids.iter().position(|&id| (kept[id] as usize) < most(id)) else {
                return;
            };
            for &id in &ids[..pos] {
                kept[id] = 0;
            }
            kept[ids[pos]] += 1;
        }
    }

    fn flush(&self, last: &State, id: NodeId) -> Option<State> {
        if last.servers[id as usize].pending.is_empty() {
            return None;
        }
        let mut state = last.clone();
        let server = state.server_mut(id);
        let flushed = server.pending.flush(1);
        if !make_writes_durable(server, flushed.writes) {
            state.ghost.record(Violation::AppliedWentBack);
        }
        for env in flushed.released {
            network::insert(&mut state.network, env, self.ordered());
        }
        Some(state)
    }

    /// A crashed server forgets the requests it was working on: its clients' calls fail, and
    /// they retry (as a 6.5840 clerk whose RPC to a dead server returns false).
    fn lose_requests(&self, state: &mut State, id: NodeId) {
        let Some(clients) = state.clients.as_mut() else {
            return;
        };
        let on = |s: &Status| matches!(s, Status::Waiting { server, .. } if *server == id);
        if clients.slots.iter().any(|c| on(&c.status)) {
            for slot in &mut Arc::make_mut(clients).slots {
                if on(&slot.status) {
                    slot.status = Status::Retrying;
                }
            }
        }
    }

    /// Starts crashed server `id` again from its durable state, unless recovery refuses to
    /// (see `Server::purged`), after the check raftd makes of a recovered state
    /// ([`HardState::check`]). raftd refuses to start from a state no server of its cluster
    /// could have written; in the model that is a step that panics, so a core (or a bug of it)
    /// that leaves such a state on disk is reported with the path to it, never restarted from
    /// it as if it were plausible.
    fn restart(&self, state: &mut State, id: NodeId) {
        if !state.servers[id as usize].recoverable() {
            return;
        }
        let hard: HardState<Cmd> = HardState::clone(&state.servers[id as usize].durable);
        if let Err(reason) = hard.check(usize::from(self.bounds.servers)) {
            panic!("server {id} recovered a state no server of the cluster could write: {reason}");
        }
        if hard.last_index() != 0 && !state.ghost.committed.is_empty() {
            state.ghost.restarted_since_commit |= 1 << id;
        }
        snapshot::restarted(&mut state.ghost, &hard);
        let restored = hard.snapshot_index();
        let kv = (self.store()).map(|store| snapshot::restore_kv(store, hard.snapshot.as_ref()));
        let node = self.node(id, hard);
        // A new incarnation applies from its snapshot on (from the start without one): the
        // apply-order check chains from here.
        if node.last_applied() != restored {
            state.ghost.record(Violation::AppliedOutOfOrder);
        }
        let server = state.server_mut(id);
        server.node = Some(node);
        server.kv = kv;
    }
}

impl RaftModel {
    /// Takes off the network every message ignored for good (see [`RaftModel::reduce_stale`]):
    /// a reply its receiver ignores for good, but a granted vote on its way to a running
    /// candidate; and a request its receiver refuses for good ([`rules::stale_refusal`]) whose
    /// every refusal its sender ignores for good. A refusal carries its receiver's term, which
    /// no message raises above the bounds' `max_term` (only a timeout makes a term, and none
    /// fires at it), so the sender is asked about a refusal of that term: ignoring it means
    /// ignoring every lower one too.
    fn drop_ignored_for_good(&self, state: &mut State) {
        let rules = &self.bounds.mutations;
        let servers = &state.servers;
        let ignored = |env: &Envelope<Cmd>| {
            let to = &servers[env.to as usize];
            if env.msg.is_reply() {
                let granted = matches!(env.msg, Message::RequestVoteReply { granted: true, .. });
                let candidate = to
                    .node
                    .as_ref()
                    .is_some_and(|n| n.role() == Role::Candidate);
                return !(granted && candidate) && ignores_for_good(to, &env.msg, rules);
            }
            rules::stale_refusal(rules, &env.msg, floor(to), self.bounds.max_term).is_some_and(
                |refusal| ignores_for_good(&servers[env.from as usize], &refusal, rules),
            )
        };
        if state.network.iter().any(ignored) {
            state.network.retain(|env| !ignored(env));
        }
    }
}

/// The lowest term `server` can ever be in from now on: the lower of its running term and its
/// disk's (a restart starts from the disk, as a follower), its disk's alone while it is down.
fn floor(server: &Server) -> raft_impl::Term {
    let durable = server.durable.current_term;
    server
        .node
        .as_ref()
        .map_or(durable, |node| node.current_term().min(durable))
}

/// Whether `server` ignores the reply `msg` now and for good. At its running term it is the
/// node's own rule, role included; below it, the disk's term is its floor, which it is in again
/// only after a restart, as a follower (so whether leaders note contact does not matter: a
/// follower notes none, and `true` is passed for it).
fn ignores_for_good(server: &Server, msg: &Message<Cmd>, rules: &MutationSet) -> bool {
    match &server.node {
        Some(node) if node.current_term() <= server.durable.current_term => {
            node.ignores_for_good(msg)
        }
        _ => rules::ignored_for_good(rules, msg, floor(server), true, true),
    }
}

/// Makes records of the core durable on `server`, in order; `false` when one replaced the
/// durable snapshot by an older one. The core never writes a log record past the end of its
/// log, and every store keeps records in order, so a gap is a bug of the model (reported as a
/// panicking step).
fn make_durable(server: &mut Server, records: impl IntoIterator<Item = Record<Cmd>>) -> bool {
    let durable = Arc::make_mut(&mut server.durable);
    let mut in_order = true;
    for record in records {
        in_order &= snapshot::keeps_snapshot_order(durable, &record);
        if let Err(gap) = durable.apply(record) {
            panic!("a durable log would have a gap: {gap}");
        }
    }
    in_order
}

/// Makes pending writes durable on `server`, in order (see [`make_durable`]).
fn make_writes_durable(server: &mut Server, writes: Vec<Write>) -> bool {
    let mut in_order = true;
    for write in writes {
        match write {
            Write::Records(records) => in_order &= make_durable(server, records),
            Write::Purge { through } => snapshot::purge(server, through),
        }
    }
    in_order
}

/// Whether a step from `before` to `after` applied the indices after `before`'s last applied
/// one, in order and each once, and `after` counts exactly those as applied. Chained over the
/// steps of an incarnation (which starts with nothing applied, see `restart`), this is "every
/// running server applies 1, 2, 3, … once each" without keeping a count in the state.
fn applies_in_order(
    before: &Node<Cmd, MutationSet>,
    after: &Node<Cmd, MutationSet>,
    effects: &[Effect<Cmd>],
) -> bool {
    let mut last = before.last_applied();
    for effect in effects {
        match effect {
            Effect::Apply { index, .. } => {
                if *index != last + 1 {
                    return false;
                }
                last = *index;
            }
            // An installed snapshot replaces the state machine: applies continue after it
            // (whether it went back is `snapshot::check_installs`'s to say).
            Effect::Restore(s) => last = s.last_index,
            _ => {}
        }
    }
    after.last_applied() == last
}

/// What the properties may read of the model besides the state (see [`properties`]).
impl AsRef<Bounds> for RaftModel {
    fn as_ref(&self) -> &Bounds {
        &self.bounds
    }
}

impl Model for RaftModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let servers = (0..self.bounds.servers)
            .map(|id| {
                Arc::new(Server {
                    durable: Arc::default(),
                    node: Some(self.node(id, HardState::default())),
                    pending: HeldWrites::new(),
                    kv: self.store(),
                    purged: 0,
                })
            })
            .collect();
        vec![State {
            servers,
            network: Vec::new(),
            crashes: 0,
            duplicates: 0,
            proposals: 0,
            snapshots: 0,
            clients: self
                .kv
                .enabled()
                .then(|| Arc::new(Clients::new(self.kv.clients))),
            ghost: Ghost::default(),
            panicked: None,
            symmetric: self.symmetry,
            quorum_record: !self.reduce_timing,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.panicked.is_some() {
            // A panicked step is the end of its path: what follows would be made up.
            return;
        }
        // In the order they always had: the search order follows it, and with symmetry a
        // count may depend on the order (the representative is not a canonical form).
        self.network_actions(state, actions);
        self.server_actions(state, actions);
        self.client_actions(state, actions);
        self.crash_actions(state, actions);
    }

    /// Runs the step through [`panics::catch`]: a step that panics (in the core, the service
    /// or this model) ends in `last` marked with the panic, a violation of "no step panics".
    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut next = panics::catch(|| self.successor(last, action))
            .unwrap_or_else(|p| Some(last.with_panic(p)))?;
        if self.reduce_stale && self.bounds.network.lossy {
            self.drop_ignored_for_good(&mut next);
        }
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut all = properties::all();
        if self.kv.enabled() {
            all.extend(properties::kv());
        }
        if self.bounds.pre_vote {
            all.extend(properties::pre_vote());
        }
        if self.bounds.max_snapshots > 0 {
            all.extend(properties::snapshots());
        }
        all
    }

    fn format_action(&self, action: &Action) -> String {
        render::action(action)
    }

    fn format_step(&self, last: &State, action: Action) -> Option<String> {
        let next = self.next_state(last, action)?;
        Some(format!("{}\n\n{next:?}", render::step(last, action, &next)))
    }

    fn as_svg(&self, path: Path<State, Action>) -> Option<String> {
        Some(diagram::svg(&path.into_vec(), None))
    }
}

impl RaftModel {
    /// The network's steps: each deliverable message delivered (with each choice of the sends
    /// its step loses), dropped, or duplicated.
    fn network_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        let net = &state.network;
        let endpoints = |slot: usize| (slot as u8, net[slot].from, net[slot].to);
        // A step sends at most one message to each peer.
        let most = usize::from(b.servers) - 1;
        // The room `fit` finds for a step's sends (no action leaves the bound: see `Duplicate`).
        let room = |removed: usize| self.room(state, removed);
        let mut choices = Vec::new();
        for (slot, from, to) in network::deliverable(net, b.network.ordered).map(endpoints) {
            if state.node(to).is_some() {
                // Delivering takes the message off the network: one more place.
                self.loss_choices(to, most, room(1), &mut choices);
            } else {
                choices.clear();
                choices.push(0);
            }
            for &lost in &choices {
                actions.push(Action::Deliver {
                    slot,
                    from,
                    to,
                    lost,
                });
            }
        }
        if b.network.lossy {
            for (slot, from, to) in network::distinct(net).map(endpoints) {
                actions.push(Action::Drop { slot, from, to });
            }
        }
        if b.network.duplicating && state.duplicates < b.max_duplicates {
            for (slot, from, to) in network::distinct(net).map(endpoints) {
                actions.push(Action::Duplicate { slot, from, to });
            }
        }
    }

    /// Each server's own steps: a restart if it is down; a leader's AppendEntries and
    /// proposals, anyone else's election timeout; a flush of its pending writes; the timing
    /// events of `--check-quorum`.
    fn server_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        let net = &state.network;
        let most = usize::from(b.servers) - 1;
        let room = |removed: usize| self.room(state, removed);
        let mut choices = Vec::new();
        for (id, server) in (0..b.servers).zip(&state.servers) {
            let Some(node) = &server.node else {
                if server.recoverable() {
                    actions.push(Action::Restart(id));
                }
                continue;
            };
            if node.role() == Role::Leader {
                for peer in (0..b.servers).filter(|p| *p != id) {
                    // Under `--max-batch`, one step per count of entries the batch may carry,
                    // up to what there is to send (at least one step: a heartbeat).
                    let counts = match b.max_batch {
                        None => 0..=0,
                        Some(n) => {
                            let tail = (node.hard_state().last_index() + 1)
                                .saturating_sub(node.next_index(peer));
                            1..=n.min(u8::try_from(tail).unwrap_or(u8::MAX)).max(1)
                        }
                    };
                    for most in counts {
                        actions.push(Action::Replicate {
                            leader: id,
                            peer,
                            most,
                        });
                    }
                }
                if node.hard_state().last_index() < b.max_log as Index
                    && state.proposals < b.proposals
                {
                    actions.push(Action::Propose(id));
                }
            } else if node.current_term() < b.max_term && node.role() != Role::PreCandidate {
                // A bound of `--prevote`: a pre-candidate's timer does not fire again in its
                // term. A second round asks the same question (same term, same log: a
                // pre-candidate's log cannot change without it becoming a follower) of voters
                // that may since have changed; it is left out because pre-campaigns, unlike
                // elections, take no term, so nothing else bounds them (without it, and without
                // the quorum-check reduction of `reduce_timing`, `--prevote --check-quorum` on
                // the default bounds with one entry did not end: the README's `--prevote` row
                // has the figures). A server that follows again, or takes a newer term, may
                // time out again.
                self.loss_choices(id, most, room(0), &mut choices);
                for &lost in &choices {
                    actions.push(Action::Timeout { id, lost });
                }
            }
            if !server.pending.is_empty() {
                actions.push(Action::Flush(id));
            }
            let asked_to_vote = |env: &Envelope<Cmd>| {
                env.to == id
                    && env.msg.term() > node.current_term()
                    && matches!(
                        env.msg,
                        Message::RequestVote { .. } | Message::PreVote { .. }
                    )
            };
            if node.leader_contact() && (!self.reduce_timing || net.iter().any(asked_to_vote)) {
                actions.push(Action::ContactExpires(id));
            }
            if b.check_quorum && b.servers > 1 && node.role() == Role::Leader {
                actions.push(Action::CheckQuorum(id));
            }
            if snapshot::may_snapshot(node, state.snapshots, b.max_snapshots) {
                actions.push(Action::Snapshot(id));
            }
        }
    }

    /// The KV clients' steps: a request sent to a server, a client's timeout, log time passing.
    fn client_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        if let Some(clients) = &state.clients {
            for (client, slot) in (0..).zip(&clients.slots) {
                match slot.status {
                    Status::Idle if slot.done() => {}
                    Status::Idle | Status::Retrying => {
                        for server in (0..b.servers).filter(|s| state.node(*s).is_some()) {
                            actions.push(Action::Request { client, server });
                        }
                    }
                    Status::Waiting { .. } if clients.timeouts < self.kv.timeouts => {
                        actions.push(Action::ClientTimeout(client));
                    }
                    Status::Waiting { .. } | Status::Unknown => {}
                }
            }
            if clients.clock < self.kv.expiries {
                actions.push(Action::Expire);
            }
        }
    }

    /// Crash events: each running server alone, or every running server at once.
    fn crash_actions(&self, state: &State, actions: &mut Vec<Action>) {
        let b = &self.bounds;
        if state.crashes < b.max_crashes {
            let up = (0..b.servers)
                .filter(|id| state.node(*id).is_some())
                .fold(0u8, |mask, id| mask | 1 << id);
            for id in 0..b.servers {
                if up & (1 << id) != 0 {
                    self.crashes(state, 1 << id, actions);
                }
            }
            if up.count_ones() > 1 {
                self.crashes(state, up, actions);
            }
        }
    }

    /// The state `action` leads to from `last`, if it is enabled there: by concern, as
    /// [`Model::actions`] offers them.
    fn successor(&self, last: &State, action: Action) -> Option<State> {
        match action {
            Action::Deliver { .. } | Action::Drop { .. } | Action::Duplicate { .. } => {
                self.network_successor(last, action)
            }
            Action::Crash { mask, kept } => Some(self.crash(last, mask, kept)),
            Action::Request { .. } | Action::ClientTimeout(_) | Action::Expire => {
                self.client_successor(last, action)
            }
            Action::Restart(_)
            | Action::Timeout { .. }
            | Action::Replicate { .. }
            | Action::Propose(_)
            | Action::Flush(_)
            | Action::ContactExpires(_)
            | Action::CheckQuorum(_)
            | Action::Snapshot(_) => self.server_successor(last, action),
        }
    }

    /// A network step: a message delivered, dropped or duplicated.
    fn network_successor(&self, last: &State, action: Action) -> Option<State> {
        match action {
            Action::Deliver { slot, lost, .. } => self.deliver(last, slot as usize, lost),
            Action::Drop { slot, .. } => {
                let mut state = last.clone();
                state.network.remove(slot as usize);
                Some(state)
            }
            Action::Duplicate { slot, .. } => self.duplicate(last, slot as usize),
            _ => unreachable!("{action:?} is routed by `successor`"),
        }
    }

    /// A server's own step: a restart, an election timeout, a leader's AppendEntries or
    /// proposal, a flush, a timing event of `--check-quorum`.
    fn server_successor(&self, last: &State, action: Action) -> Option<State> {
        let unchanged = |_: &mut State| {};
        match action {
            Action::Restart(id) => {
                let mut state = last.clone();
                self.restart(&mut state, id);
                Some(state)
            }
            Action::Timeout { id, lost } => self.step(last, id, 0, lost, unchanged, |node| {
                Some(node.election_timeout())
            }),
            // A Replicate whose one message is lost changes nothing: no step.
            Action::Replicate { leader, peer, most } => {
                let most = if most == 0 { usize::MAX } else { most.into() };
                self.step(last, leader, 0, 0, unchanged, |node| {
                    Some(node.replicate_to_at_most(peer, most))
                })
            }
            Action::Propose(id) => {
                let proposals = last.proposals + 1;
                let count = |state: &mut State| state.proposals = proposals;
                self.step(last, id, 0, 0, count, |node| {
                    node.propose(Cmd::Plain(proposals)).ok().map(|p| p.effects)
                })
            }
            Action::Flush(id) => self.flush(last, id),
            Action::ContactExpires(id) => self.step(last, id, 0, 0, unchanged, |node| {
                node.leader_contact_expired();
                Some(Vec::new())
            }),
            Action::CheckQuorum(id) => self.check_quorum(last, id),
            Action::Snapshot(id) => {
                let count = |state: &mut State| state.snapshots += 1;
                let kv = last.servers[id as usize].kv.as_ref();
                self.step(last, id, 0, 0, count, |node| snapshot::take(node, kv))
            }
            _ => unreachable!("{action:?} is routed by `successor`"),
        }
    }

    /// A KV client's step: a request sent, a timeout, log time passing.
    fn client_successor(&self, last: &State, action: Action) -> Option<State> {
        match action {
            Action::Request { client, server } => self.request(last, client, server),
            Action::ClientTimeout(client) => {
                let mut state = last.clone();
                let clients = Arc::make_mut(state.clients.as_mut()?);
                clients.timeouts += 1;
                clients.slots[client as usize].status = Status::Retrying;
                Some(state)
            }
            Action::Expire => {
                let mut state = last.clone();
                Arc::make_mut(state.clients.as_mut()?).clock += 1;
                Some(state)
            }
            _ => unreachable!("{action:?} is routed by `successor`"),
        }
    }

    /// A copy of the message in `slot` joins the network.
    fn duplicate(&self, last: &State, slot: usize) -> Option<State> {
        // A copy that does not fit is not made. On a lossy network that loses nothing
        // (dropping another message first, then duplicating, reaches every state that
        // could follow); on a lossless one the step is removed by the bound and
        // counted, as `fit` counts a step whose sends do not fit.
        if last.in_flight() >= self.bounds.max_in_flight {
            if !self.bounds.network.lossy {
                self.removed_by_bound.fetch_add(1, Relaxed);
            }
            return None;
        }
        let mut state = last.clone();
        network::duplicate(&mut state.network, slot);
        state.duplicates += 1;
        Some(state)
    }

    /// Crash event: the servers of `mask` stop; each keeps the prefix `kept` of its pending
    /// writes.
    fn crash(&self, last: &State, mask: u8, kept: Kept) -> State {
        let mut state = last.clone();
        state.crashes += 1;
        for id in (0..self.bounds.servers).filter(|id| mask & (1 << id) != 0) {
            let server = state.server_mut(id);
            server.node = None;
            let kept = server.pending.crash(kept[id as usize].into());
            let in_order = make_writes_durable(server, kept);
            server.kv = None;
            if !in_order {
                state.ghost.record(Violation::AppliedWentBack);
            }
            self.lose_requests(&mut state, id);
            if self.bounds.network.lossy {
                // Downtime adds nothing a lossy network cannot already do: the messages
                // the server would miss may be dropped and it may simply not be
                // scheduled. Restarting in the same step keeps those states out.
                self.restart(&mut state, id);
            }
        }
        state
    }

    /// `--check-quorum`: a leader's check-quorum interval ends (see `reduce_timing`). A single
    /// check that changes nothing (the reset of a record that held only the leader itself and a
    /// majority: a lone leader's) is no step.
    fn check_quorum(&self, last: &State, id: NodeId) -> Option<State> {
        let before = last.node(id)?;
        // (Not offered to a lone leader, which is its own majority.)
        let reduce = self.reduce_timing;
        self.step(
            last,
            id,
            0,
            0,
            |_| {},
            |node| {
                node.check_quorum();
                if reduce {
                    node.check_quorum();
                }
                (node != before).then(Vec::new)
            },
        )
    }
}
