//! The specification of a key-value store with Put, Append and Get on string keys (6.5840's
//! Lab 4 service): every key an independent register of text, starting empty.
//!
//! Written independently of any store implementation: it is what an implementation's
//! recorded behaviour is judged against.

use std::sync::Arc;

use crate::spec::{ReplyMismatch, Specification};

/// A KV operation as a client invokes it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOp {
    Put { key: String, value: String },
    Append { key: String, value: String },
    Get { key: String },
}

impl KvOp {
    pub fn key(&self) -> &str {
        match self {
            KvOp::Put { key, .. } | KvOp::Append { key, .. } | KvOp::Get { key } => key,
        }
    }

    /// The operation's name in the JSON-lines format.
    pub fn name(&self) -> &'static str {
        match self {
            KvOp::Put { .. } => "put",
            KvOp::Append { .. } => "append",
            KvOp::Get { .. } => "get",
        }
    }

    /// The value a Put or Append writes; `None` for a Get.
    pub fn written(&self) -> Option<&str> {
        match self {
            KvOp::Put { value, .. } | KvOp::Append { value, .. } => Some(value),
            KvOp::Get { .. } => None,
        }
    }
}

/// What a KV operation returns: a Get the value read (`""` for a missing key), a Put or
/// Append nothing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvReply {
    Done,
    Value(String),
}

/// The KV store's sequential specification.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Kv;

impl Specification for Kv {
    /// One key's value: operations are checked per key, so the state is a single register.
    /// Shared, since a Get leaves it as it was; `Arc`, since a model checker keeps it in states
    /// that cross threads.
    type State = Arc<str>;
    type Op = KvOp;
    type Reply = KvReply;
    type Key = String;

    fn initial() -> Arc<str> {
        Arc::from("")
    }

    fn step(state: &Arc<str>, op: &KvOp) -> (KvReply, Arc<str>) {
        match op {
            KvOp::Put { value, .. } => (KvReply::Done, Arc::from(value.as_str())),
            KvOp::Append { value, .. } => (KvReply::Done, Arc::from(format!("{state}{value}"))),
            KvOp::Get { .. } => (KvReply::Value(state.to_string()), Arc::clone(state)),
        }
    }

    fn partition(op: &KvOp) -> String {
        op.key().to_owned()
    }

    fn reply_fits(op: &KvOp, reply: &KvReply) -> Result<(), ReplyMismatch> {
        match (op, reply) {
            (KvOp::Get { .. }, KvReply::Done) => Err(ReplyMismatch::MissingValue),
            (KvOp::Put { .. } | KvOp::Append { .. }, KvReply::Value(_)) => {
                Err(ReplyMismatch::UnexpectedValue)
            }
            _ => Ok(()),
        }
    }

    /// A pending Get changes nothing and constrains nothing. Neither does a pending write
    /// whose value no read contains: had it taken effect, every value until the next Put
    /// would contain its value, so no read can lie in that window, and after the Put nothing
    /// depends on it. A crashed client's write is usually never seen, so this drops most.
    fn pending_may_matter(op: &KvOp, replies: &[&KvReply]) -> bool {
        op.written().is_some_and(|written| {
            replies
                .iter()
                .any(|reply| matches!(reply, KvReply::Value(read) if read.contains(written)))
        })
    }
}
