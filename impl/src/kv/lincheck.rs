//! The store's operations and replies as the history checker (`raft_lincheck`) records them.
//!
//! The checker depends on no Raft crate and has its own KV types, so the conversion lives here,
//! once, for every crate that records a history of this store (the simulator's clerks, the
//! raftd end-to-end test) or judges it by the checker's specification (the model's
//! linearizability property, whose replies are this crate's).
//!
//! The checker's KV specification starts every key as `""`, so a Get of a missing key
//! ([`KvReply::Absent`]) is recorded as the empty value; and it has no sessions, so a
//! registration is no operation of a history and never converted.

use super::{KvOp, KvReply};

impl From<KvOp> for raft_lincheck::KvOp {
    fn from(op: KvOp) -> Self {
        match op {
            KvOp::Put { key, value } => raft_lincheck::KvOp::Put { key, value },
            KvOp::Append { key, value } => raft_lincheck::KvOp::Append { key, value },
            KvOp::Get { key } => raft_lincheck::KvOp::Get { key },
        }
    }
}

impl From<KvReply> for raft_lincheck::KvReply {
    fn from(reply: KvReply) -> Self {
        match reply {
            KvReply::Done => raft_lincheck::KvReply::Done,
            KvReply::Value(value) => raft_lincheck::KvReply::Value(value),
            KvReply::Absent => raft_lincheck::KvReply::Value(String::new()),
            KvReply::Registered { id } => {
                unreachable!("registration {id} recorded as an operation of a history")
            }
        }
    }
}

impl From<raft_lincheck::KvReply> for KvReply {
    fn from(reply: raft_lincheck::KvReply) -> Self {
        match reply {
            raft_lincheck::KvReply::Done => KvReply::Done,
            raft_lincheck::KvReply::Value(value) => KvReply::Value(value),
        }
    }
}
