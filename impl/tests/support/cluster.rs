//! A tiny deterministic runtime for whole-cluster tests: it carries out every step's effects in
//! order (each `Persist` record written and synced into a `MemoryStore` before the step's
//! sends enter the network, each message encoded and decoded as a network would carry it) and
//! checks on every step the contract and the safety properties a runtime can see.
//!
//! It is kept beside the simulator of `raft-tests` (`tests/src/world.rs`) for what that one
//! cannot do:
//! - it checks the persist contract of every step against the node's hard state before and
//!   after it (its records come first, in order, and replay to the new state; no change, no
//!   record), where the
//!   simulator only carries the effects out;
//! - its schedule is the test's, step by step, so proptest can draw any interleaving, deliver
//!   a message twice (the simulator's labrpc-like network never duplicates) and shrink a
//!   failure to a minimal schedule, where the simulator's schedule is a function of its seed
//!   and its timers;
//! - it is part of the core's own tests, which do not depend on the simulator's crate.

use std::collections::{BTreeMap, VecDeque};

use raft_impl::codec::{self, FrameKind};
use raft_impl::storage::{LogStore, MemoryStore};
use raft_impl::{Config, Effect, Envelope, HardState, Index, Message, Node, NodeId, Record, Term};

use super::Cmd;

pub struct Cluster {
    pub nodes: Vec<Node<Cmd>>,
    pub stores: Vec<MemoryStore<Cmd>>,
    /// Messages in flight, oldest first.
    pub network: VecDeque<Envelope<Cmd>>,
    /// The command applied at each index, by any node in any incarnation.
    pub applied: BTreeMap<Index, Cmd>,
    /// Per node, the next index it must apply in its current incarnation.
    next_apply: Vec<Index>,
    /// The leader of each term, ever.
    leaders: BTreeMap<Term, NodeId>,
}

impl Cluster {
    pub fn new(servers: u8) -> Cluster {
        Cluster::with_config(servers, |config| config)
    }

    /// A cluster whose servers run with `configure(Config::new(id, servers))`.
    pub fn with_config(servers: u8, configure: impl Fn(Config) -> Config) -> Cluster {
        Cluster {
            nodes: (0..servers)
                .map(|id| Node::new(configure(Config::new(id, servers)), HardState::default()))
                .collect(),
            stores: vec![MemoryStore::new(); servers as usize],
            network: VecDeque::new(),
            applied: BTreeMap::new(),
            next_apply: vec![1; servers as usize],
            leaders: BTreeMap::new(),
        }
    }

    pub fn election_timeout(&mut self, id: NodeId) {
        self.step(id, Node::election_timeout);
    }

    pub fn broadcast_append(&mut self, id: NodeId) {
        self.step(id, Node::broadcast_append);
    }

    /// Proposes `command` to `id`; its log index if `id` leads.
    pub fn propose(&mut self, id: NodeId, command: Cmd) -> Option<Index> {
        let mut index = None;
        self.step(id, |node| match node.propose(command) {
            Ok(proposal) => {
                index = Some(proposal.index);
                proposal.effects
            }
            Err(_) => Vec::new(),
        });
        index
    }

    /// `id`'s service snapshots its state at `index`: the commands applied up to it, in order
    /// (what any server applied there, which `record_apply` checks is what each applied).
    pub fn snapshot(&mut self, id: NodeId, index: Index) {
        let data: Vec<u8> = (1..=index)
            .flat_map(|i| self.applied[&i].to_le_bytes())
            .collect();
        self.step(id, |node| {
            node.snapshot(index, data)
                .expect("snapshot at an applied index")
        });
    }

    /// Hands `envelope` to its recipient.
    pub fn deliver(&mut self, envelope: Envelope<Cmd>) {
        let Envelope { from, to, msg } = envelope;
        self.step(to, |node| node.handle(from, msg));
    }

    /// Delivers messages oldest first until none is in flight.
    pub fn deliver_all(&mut self) {
        for _ in 0..10_000 {
            match self.network.pop_front() {
                Some(envelope) => self.deliver(envelope),
                None => return,
            }
        }
        panic!("the network never went quiet");
    }

    /// Crashes `id` (its volatile state and the messages to it are lost) and restarts it from
    /// what its store synced.
    pub fn crash_and_restart(&mut self, id: NodeId) {
        self.network.retain(|e| e.to != id);
        let config = *self.nodes[id as usize].config();
        let saved = self.stores[id as usize].synced_state().clone();
        self.next_apply[id as usize] = saved.snapshot_index() + 1;
        self.nodes[id as usize] = Node::new(config, saved);
    }

    /// The server leading the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .filter(|n| n.is_leader())
            .max_by_key(|n| n.current_term())
            .map(|n| n.id())
    }

    /// Runs one step of `id` and carries out its effects.
    fn step(&mut self, id: NodeId, event: impl FnOnce(&mut Node<Cmd>) -> Vec<Effect<Cmd>>) {
        let node = &mut self.nodes[id as usize];
        let before = node.hard_state().clone();
        let effects = event(node);
        check_persist_contract(&before, node.hard_state(), &effects);
        if node.is_leader() {
            let leader = *self.leaders.entry(node.current_term()).or_insert(id);
            assert_eq!(leader, id, "two leaders in term {}", node.current_term());
        }
        for effect in effects {
            match effect {
                Effect::Persist(record) => {
                    let store = &mut self.stores[id as usize];
                    let Ok(_) = store.append(&[record]).and_then(|_| store.sync());
                }
                Effect::Send { to, msg } => self.network.push_back(Envelope {
                    from: id,
                    to,
                    msg: over_the_wire(&msg),
                }),
                Effect::Apply { index, command } => self.record_apply(id, index, command),
                Effect::Restore(snapshot) => {
                    let next = &mut self.next_apply[id as usize];
                    assert!(snapshot.last_index >= *next, "server {id} went back");
                    *next = snapshot.last_index + 1;
                    // State Machine Safety across the install: the snapshot holds what every
                    // server applied at each index it covers.
                    let held: Vec<Cmd> = (snapshot.data.chunks_exact(8))
                        .map(|c| Cmd::from_le_bytes(c.try_into().expect("8 bytes")))
                        .collect();
                    let applied: Vec<Cmd> = (1..=snapshot.last_index)
                        .map(|i| self.applied[&i])
                        .collect();
                    assert_eq!(held, applied, "server {id} installed another history");
                }
                Effect::ResetElectionTimer => {}
            }
        }
    }

    fn record_apply(&mut self, id: NodeId, index: Index, command: Cmd) {
        let next = &mut self.next_apply[id as usize];
        assert_eq!(index, *next, "server {id} applied out of order");
        *next += 1;
        let first = *self.applied.entry(index).or_insert(command);
        assert_eq!(
            first, command,
            "server {id} applied a different command at {index}"
        );
    }
}

/// A step's records come first, before any send, at most one term/vote record and then at
/// most one log record; applied to the state before the step they give the state after it; a
/// step that changes nothing writes nothing.
fn check_persist_contract(
    before: &HardState<Cmd>,
    after: &HardState<Cmd>,
    effects: &[Effect<Cmd>],
) {
    let records: Vec<&Record<Cmd>> = effects
        .iter()
        .map_while(|e| match e {
            Effect::Persist(record) => Some(record),
            _ => None,
        })
        .collect();
    let later = effects[records.len()..]
        .iter()
        .filter(|e| matches!(e, Effect::Persist(_)))
        .count();
    assert_eq!(later, 0, "a record after a send or apply: {effects:?}");
    // 0: term/vote, 1: log, 2: snapshot; a snapshot step may write a log record that drops
    // a conflicting suffix before its snapshot record.
    let kinds: Vec<u8> = records
        .iter()
        .map(|r| match r {
            Record::TermVote { .. } => 0,
            Record::Log { .. } => 1,
            Record::Snapshot(_) => 2,
        })
        .collect();
    assert!(
        kinds.windows(2).all(|w| w[0] < w[1]),
        "records out of their documented order: {effects:?}"
    );
    let mut replayed = before.clone();
    for record in records {
        replayed
            .apply(record.clone())
            .expect("the core writes no gap");
    }
    assert_eq!(&replayed, after, "the records do not lead to the new state");
    if before == after {
        assert_eq!(kinds, Vec::<u8>::new(), "a record without a change");
    }
}

fn over_the_wire(msg: &Message<Cmd>) -> Message<Cmd> {
    let bytes = codec::encode(FrameKind::Message, msg).expect("a message encodes");
    codec::decode(FrameKind::Message, &bytes).expect("a message decodes")
}
