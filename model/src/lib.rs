//! raft-model: the Stateright model over the raft-impl core, and the linearizability checker
//! for recorded client histories.

pub mod lincheck;
