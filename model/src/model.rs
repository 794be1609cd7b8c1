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

use std::sync::Arc;

use raft_impl::kv::{KvReply, KvStore};
use raft_impl::service::{self, Settled};
use raft_impl::{Config, Effect, Envelope, HardState, Index, Node, NodeId, Role};
use stateright::{Model, Path, Property};

use crate::action::Action;
use crate::bounds::{Bounds, KvBounds, Persistence};
use crate::kv::{self, Clients, Status};
use crate::network;
use crate::state::{Cmd, Committed, Ghost, Pending, Server, State, Violation};
use crate::{diagram, panics, properties, render};

/// The model of a cluster running the core under `bounds`, with `kv` clients.
#[derive(Clone, Debug)]
pub struct RaftModel {
    pub bounds: Bounds,
    pub kv: KvBounds,
    /// Identify states up to a renaming of the servers (see [`crate::symmetry`]).
    pub symmetry: bool,
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

    /// A fresh, empty store for a starting server when there are KV clients.
    fn store(&self) -> Option<KvStore> {
        self.kv
            .enabled()
            .then(|| KvStore::new(self.bounds.mutations))
    }

    fn config(&self, id: NodeId) -> Config {
        // No retry inside a step: `Action::Replicate` sends AppendEntries (see the field's doc).
        Config::new(id, self.bounds.servers)
            .with_mutations(self.bounds.mutations)
            .with_retry_on_conflict(false)
    }

    fn ordered(&self) -> bool {
        self.bounds.network.ordered
    }

    /// Runs one core step on server `id` and carries out its effects on a copy of `last`, to
    /// which `prepare` first makes the action's other changes (taking `removed` messages off
    /// the network, say). The step runs on a copy of the node alone, so that one whose sends
    /// would take the messages in flight past the bound is discarded before the whole state is
    /// copied: over a quarter of all steps in the default configuration.
    fn step(
        &self,
        last: &State,
        id: NodeId,
        removed: usize,
        prepare: impl FnOnce(&mut State),
        event: impl FnOnce(&mut Node<Cmd>) -> Option<Vec<Effect<Cmd>>>,
    ) -> Option<State> {
        let mut node = last.node(id)?.clone();
        let effects = event(&mut node)?;
        let sends = effects
            .iter()
            .filter(|e| matches!(e, Effect::Send { .. }))
            .count();
        if last.in_flight() + sends > self.bounds.max_in_flight + removed {
            return None;
        }
        let mut state = last.clone();
        prepare(&mut state);
        state.set_node(id, node);
        self.observe(last, &mut state, id);
        for effect in effects {
            self.carry_out(&mut state, id, effect);
        }
        Some(state)
    }

    /// Carries out one effect of a step of server `id`, in the order the core emitted it.
    fn carry_out(&self, state: &mut State, id: NodeId, effect: Effect<Cmd>) {
        let deferred = self.bounds.persistence == Persistence::Deferred;
        match effect {
            Effect::Persist(hard) if deferred => {
                state.server_mut(id).pending.push(Pending::Persist(hard))
            }
            Effect::Persist(hard) => state.server_mut(id).durable = Arc::new(hard),
            Effect::Send { to, msg } => {
                let env = Envelope { from: id, to, msg };
                // A send may not overtake a persist emitted before it.
                if state.servers[id as usize].pending.is_empty() {
                    network::insert(&mut state.network, env, self.ordered());
                } else {
                    state.server_mut(id).pending.push(Pending::Send(env));
                }
            }
            Effect::Apply { index, command } => {
                let committed = state.ghost.committed.get(index as usize - 1);
                if committed.is_none_or(|c| c.command != command) {
                    state.ghost.record(Violation::StateMachineSafety);
                }
                self.apply_kv(state, id, index, command);
            }
            Effect::ResetElectionTimer => {}
        }
    }

    /// Server `id` applies `command` at `index` to its store and settles the clients waiting
    /// on that index by `raft_impl::service::settle`, the rule of raftd's and the simulator's
    /// pending tables: the one whose request it is gets the store's reply, any other retries.
    /// The waiters live in the client slots rather than in a `PendingRequests` table, so that
    /// the state holds each once. A deposed leader's waiters are not failed at once (as
    /// `PendingRequests::settle_unled` does in the runtimes): they wait until their index is
    /// applied there or they time out. Failing them at deposition would change the pinned state
    /// counts; the retry of a request whose fate is unknown, which it leads to, is explored
    /// through the client timeout.
    fn apply_kv(&self, state: &mut State, id: NodeId, index: Index, command: Cmd) {
        let reply = match command {
            Cmd::Kv { client, seq } => state
                .server_mut(id)
                .kv
                .as_mut()
                .map(|store| store.apply(&kv::command(client, seq))),
            Cmd::Plain(_) => None,
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
            let request = Cmd::Kv {
                client,
                seq: slot.seq,
            };
            // A plain proposal at the index has no reply and is nobody's request.
            let settled = reply
                .clone()
                .map(|r| service::settle(&request, &command, r));
            // A refusal cannot reach a waiting client: its session is never expired (a handful
            // of clients) and a client sends request n + 1 only once n has completed, so no
            // committed prefix holds a later request of its than the one it waits for.
            match settled {
                Some(Settled::Replied(Ok(reply))) => clients.complete(client, reply),
                Some(Settled::Replied(Err(_)) | Settled::Superseded) | None => {
                    slot.status = Status::Retrying
                }
            }
        }
    }

    /// Client `client` sends its current request to `server`. `None` when the server is down
    /// or refuses as not the leader, or when the entry would exceed the log bound.
    fn request(&self, last: &State, client: u8, server: NodeId) -> Option<State> {
        let seq = last.clients.as_ref()?.slots[client as usize].seq;
        let command = kv::command(client, seq);
        let s = &last.servers[server as usize];
        let node = s.node.as_ref()?;
        if service::answers_locally(node, &command.op) {
            let value = s.kv.as_ref()?.get(command.op.key());
            let mut state = last.clone();
            let clients = Arc::make_mut(state.clients.as_mut()?);
            clients.invoke(client);
            clients.complete(client, KvReply::Value(value));
            return Some(state);
        }
        if !node.is_leader() || node.log().len() >= self.bounds.max_log {
            return None;
        }
        let index = node.log().len() as Index + 1;
        let waiting = |state: &mut State| {
            if let Some(clients) = state.clients.as_mut() {
                let clients = Arc::make_mut(clients);
                clients.invoke(client);
                clients.slots[client as usize].status = Status::Waiting { server, index };
            }
        };
        self.step(last, server, 0, waiting, |node| {
            node.propose(Cmd::Kv { client, seq })
                .ok()
                .map(|p| p.effects)
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
                if !node.log().starts_with(before.log()) {
                    ghost.record(Violation::LeaderAppendOnly);
                }
                if (0..self.bounds.servers).any(|p| node.match_index(p) < before.match_index(p)) {
                    ghost.record(Violation::MatchIndexDecreased);
                }
            }
        }
        for index in 1..=node.commit_index() as usize {
            let entry = node.log().get(index - 1);
            match (ghost.committed.get(index - 1), entry) {
                (Some(known), _) if known.is(entry) => {
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

    fn deliver(&self, last: &State, slot: usize) -> Option<State> {
        let env = &last.network[slot];
        let take = |state: &mut State| {
            state.network.remove(slot);
        };
        if last.node(env.to).is_none() {
            // A message to a crashed server is lost.
            let mut state = last.clone();
            take(&mut state);
            return Some(state);
        }
        let before = last.node(env.to)?;
        let lossy = self.bounds.network.lossy;
        self.step(last, env.to, 1, take, |node| {
            let effects = node.handle(env.from, env.msg.clone());
            // A delivery that changes nothing is a loss, which `Drop` already explores on a
            // lossy network: stale replies and old terms' messages are many of them.
            if lossy && effects.is_empty() && node == before {
                return None;
            }
            Some(effects)
        })
    }

    fn flush(&self, last: &State, id: NodeId) -> Option<State> {
        let mut state = last.clone();
        let server = state.server_mut(id);
        let Some(Pending::Persist(hard)) = server.pending.first().cloned() else {
            return None;
        };
        server.durable = Arc::new(hard);
        let next_persist = server.pending[1..]
            .iter()
            .position(|p| matches!(p, Pending::Persist(_)))
            .map_or(server.pending.len(), |p| p + 1);
        let released: Vec<_> = server.pending.drain(..next_persist).skip(1).collect();
        for p in released {
            if let Pending::Send(env) = p {
                network::insert(&mut state.network, env, self.ordered());
            }
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

    /// Starts crashed server `id` again from its durable state.
    fn restart(&self, state: &mut State, id: NodeId) {
        let hard: HardState<Cmd> = HardState::clone(&state.servers[id as usize].durable);
        if !hard.log.is_empty() && !state.ghost.committed.is_empty() {
            state.ghost.restarted_since_commit |= 1 << id;
        }
        let server = state.server_mut(id);
        server.node = Some(Node::new(self.config(id), hard));
        server.kv = self.store();
    }
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
                    node: Some(Node::new(self.config(id), HardState::default())),
                    pending: Vec::new(),
                    kv: self.store(),
                })
            })
            .collect();
        vec![State {
            servers,
            network: Vec::new(),
            crashes: 0,
            duplicates: 0,
            proposals: 0,
            clients: self
                .kv
                .enabled()
                .then(|| Arc::new(Clients::new(self.kv.clients))),
            ghost: Ghost::default(),
            panicked: None,
            symmetric: self.symmetry,
        }]
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        if state.panicked.is_some() {
            // A panicked step is the end of its path: what follows would be made up.
            return;
        }
        let b = &self.bounds;
        let net = &state.network;
        let endpoints = |slot: usize| (slot as u8, net[slot].from, net[slot].to);
        for (slot, from, to) in network::deliverable(net, b.network.ordered).map(endpoints) {
            actions.push(Action::Deliver { slot, from, to });
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
        for (id, server) in (0..b.servers).zip(&state.servers) {
            let Some(node) = &server.node else {
                actions.push(Action::Restart(id));
                continue;
            };
            if node.role() == Role::Leader {
                for peer in (0..b.servers).filter(|p| *p != id) {
                    actions.push(Action::Replicate { leader: id, peer });
                }
                if node.log().len() < b.max_log && state.proposals < b.proposals {
                    actions.push(Action::Propose(id));
                }
            } else if node.current_term() < b.max_term {
                actions.push(Action::Timeout(id));
            }
            if !server.pending.is_empty() {
                actions.push(Action::Flush(id));
            }
        }
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
                    Status::Waiting { .. } => {}
                }
            }
        }
        if state.crashes < b.max_crashes {
            let up = (0..b.servers)
                .filter(|id| state.node(*id).is_some())
                .fold(0u8, |mask, id| mask | 1 << id);
            for id in 0..b.servers {
                if up & (1 << id) != 0 {
                    actions.push(Action::Crash(1 << id));
                }
            }
            if up.count_ones() > 1 {
                actions.push(Action::Crash(up));
            }
        }
    }

    /// Runs the step through [`panics::catch`]: a step that panics (in the core, the service
    /// or this model) ends in `last` marked with the panic, a violation of "no step panics".
    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        panics::catch(|| self.successor(last, action)).unwrap_or_else(|p| Some(last.with_panic(p)))
    }

    fn within_boundary(&self, state: &State) -> bool {
        state.in_flight() <= self.bounds.max_in_flight
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut all = properties::all();
        if self.kv.enabled() {
            all.extend(properties::kv());
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
    /// The state `action` leads to from `last`, if it is enabled there.
    fn successor(&self, last: &State, action: Action) -> Option<State> {
        match action {
            Action::Deliver { slot, .. } => self.deliver(last, slot as usize),
            Action::Drop { slot, .. } => {
                let mut state = last.clone();
                state.network.remove(slot as usize);
                Some(state)
            }
            Action::Duplicate { slot, .. } => {
                let mut state = last.clone();
                network::duplicate(&mut state.network, slot as usize);
                state.duplicates += 1;
                Some(state)
            }
            Action::Timeout(id) => {
                self.step(last, id, 0, |_| {}, |node| Some(node.election_timeout()))
            }
            Action::Replicate { leader, peer } => self.step(
                last,
                leader,
                0,
                |_| {},
                |node| Some(node.replicate_to(peer)),
            ),
            Action::Propose(id) => {
                let proposals = last.proposals + 1;
                let count = |state: &mut State| state.proposals = proposals;
                self.step(last, id, 0, count, |node| {
                    node.propose(Cmd::Plain(proposals)).ok().map(|p| p.effects)
                })
            }
            Action::Flush(id) => self.flush(last, id),
            Action::Crash(mask) => {
                let mut state = last.clone();
                state.crashes += 1;
                for id in (0..self.bounds.servers).filter(|id| mask & (1 << id) != 0) {
                    let server = state.server_mut(id);
                    server.node = None;
                    server.pending.clear();
                    server.kv = None;
                    self.lose_requests(&mut state, id);
                    if self.bounds.network.lossy {
                        // Downtime adds nothing a lossy network cannot already do: the messages
                        // the server would miss may be dropped and it may simply not be
                        // scheduled. Restarting in the same step keeps those states out.
                        self.restart(&mut state, id);
                    }
                }
                Some(state)
            }
            Action::Restart(id) => {
                let mut state = last.clone();
                self.restart(&mut state, id);
                Some(state)
            }
            Action::Request { client, server } => self.request(last, client, server),
            Action::ClientTimeout(client) => {
                let mut state = last.clone();
                let clients = Arc::make_mut(state.clients.as_mut()?);
                clients.timeouts += 1;
                clients.slots[client as usize].status = Status::Retrying;
                Some(state)
            }
        }
    }
}
