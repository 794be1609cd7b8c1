//! raft-model: the Stateright model over the raft-impl core. The history checker behind
//! `raftcheck lincheck` is its own package, `raft_lincheck`.

pub mod action;
pub mod bounds;
pub mod catalog;
pub mod check;
pub mod cmd;
pub mod diagram;
pub mod distributed;
pub mod explorer;
pub mod html;
pub mod json;
pub mod kv;
pub mod link;
pub mod model;
pub mod network;
pub mod panics;
pub mod probes;
pub mod properties;
pub mod render;
pub mod scope;
pub mod shards;
pub mod sketch;
pub mod snapshot;
pub mod state;
pub mod swarm;
pub mod symmetry;

pub use action::Action;
pub use bounds::{Bounds, BoundsError, KvBounds, Network, Persistence, Preset};
pub use check::{CheckReport, PropertyOutcome, Strategy};
pub use model::{RaftModel, Reductions};
pub use state::State;
