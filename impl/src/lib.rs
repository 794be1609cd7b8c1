//! raft-impl: one deterministic, sans-IO Raft core (Figure 2 of the Raft paper), its persistence
//! and a key-value state machine. The model checker, the simulator and real processes (`runtime`,
//! the `raftd` binary) all drive this same code.

pub mod codec;
pub mod kv;
pub mod limits;
pub mod message;
pub mod mutation;
pub mod node;
pub mod rules;
pub mod runtime;
pub mod server_set;
pub mod service;
pub mod storage;
pub mod types;

pub use message::{AppendEntries, AppendOutcome, ConflictHint, Envelope, Message};
pub use mutation::{Mutation, MutationSet};
pub use node::{
    Config, Effect, Node, NotLeader, Proposal, Refusal, Role, SnapshotError, MAX_SERVERS,
};
pub use rules::{Figure2, Rules};
pub use server_set::ServerSet;
pub use types::{
    is_peer, next_term, Command, Entry, HardState, Implausible, Index, LogGap, NodeId, Record,
    Snapshot, Term,
};
