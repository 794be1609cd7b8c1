//! Why a simulated run failed. Each variant is one of the checks the 6.5840 tester makes, worded
//! as the Go tester words it so that a student recognises the failure.

use std::time::Duration;

use raft_impl::kv::KvSnapshotError;
use raft_impl::{Index, NodeId, Term};

/// The Go tests' `MAXLOGSIZE`: the Raft state any store keeps must stay below this many bytes
/// whenever it is checked ([`Failure::LogTooLarge`]), which only a server that discards its
/// compacted log can do.
pub const MAX_LOG_SIZE: usize = 2000;

/// A failed check of a simulated run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Two servers applied different commands at one index (State Machine Safety).
    #[error("commit index={index} server={server} {got} != server={other} {want}")]
    ApplyMismatch {
        index: Index,
        server: NodeId,
        got: String,
        other: NodeId,
        want: String,
    },
    /// A server applied an index other than the one after its last applied index.
    #[error("server {server} apply out of order: applied index {got}, expected {expected}")]
    ApplyOutOfOrder {
        server: NodeId,
        got: Index,
        expected: Index,
    },
    /// A server installed a snapshot older than what it had applied: its state machine went
    /// back.
    #[error("server {server} installed a snapshot at index {index} after applying {applied}")]
    SnapshotRegress {
        server: NodeId,
        index: Index,
        applied: Index,
    },
    /// A snapshot the server delivered is not one the tester made for that index.
    #[error("server {server} delivered a bad snapshot: {reason}")]
    BadSnapshot { server: NodeId, reason: String },
    /// Snapshot bytes the KV service was to restore (from its core's install, or at a
    /// restart) are not a KV store: every server here is correct, so only a bug makes them.
    #[error("server {server}: the KV snapshot at index {index} is not a store: {error}")]
    BadKvSnapshot {
        server: NodeId,
        index: Index,
        #[source]
        error: KvSnapshotError,
    },
    /// The service snapshotted at an index its core refused.
    #[error("server {server} refused a snapshot: {reason}")]
    SnapshotRefused { server: NodeId, reason: String },
    /// The Raft state a store keeps outgrew the 3D tests' limit: the log is not discarded.
    #[error("Log size too large: {size} bytes of Raft state (limit {limit})")]
    LogTooLarge { size: usize, limit: usize },
    /// A message could not be encoded (to count its bytes, or a snapshot's data).
    #[error("server {server}: cannot encode message: {reason}")]
    Encode { server: NodeId, reason: String },
    #[error("term {term} has {count} (>1) leaders")]
    TwoLeaders { term: Term, count: usize },
    #[error("expected one leader, got none")]
    NoLeader,
    #[error("expected no leader among connected servers, but server {server} claims to be one")]
    UnexpectedLeader { server: NodeId },
    #[error("servers disagree on term")]
    TermDisagreement,
    #[error("one({command}) failed to reach agreement")]
    NoAgreement { command: String },
    #[error("only {applied} decided for index {index}; wanted {wanted}")]
    NotDecided {
        index: Index,
        applied: usize,
        wanted: usize,
    },
    #[error("{applied} committed but no majority (index {index})")]
    CommittedWithoutMajority { index: Index, applied: usize },
    /// A server's KV store holds an appended token (unique per write) twice: an append was
    /// applied twice.
    #[error("server {server} applied an append twice: {key} = {value:?}")]
    AppliedTwice {
        server: NodeId,
        key: String,
        value: String,
    },
    /// A scenario-specific expectation, worded by the scenario.
    #[error("{0}")]
    Check(String),
    #[error("test exceeded its limit of {} s of virtual time", .0.as_secs())]
    TimeLimit(Duration),
    /// The event queue ran dry while the test still waited: nothing can ever happen again.
    #[error("simulation stalled: no pending event while the test waits")]
    Stalled,
    /// The code under test panicked (only reachable with deliberate bugs switched on).
    #[error("panic: {0}")]
    Panic(String),
}
