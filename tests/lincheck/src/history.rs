//! Histories: the in-memory form (with how a KV operation reads in a report), and the
//! [`Recorder`] that builds one event by event, rejecting sequences no real client could
//! produce.
//!
//! Validation lives in the recorder rather than in a decoder so that a simulator recording
//! directly in memory gets exactly the same checks as a file read from disk; the JSON-lines
//! decoder ([`crate::jsonl`]) only adds the line number.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

use crate::kv::{Kv, KvOp, KvReply};
use crate::spec::{ReplyMismatch, Specification};

/// Who invoked an operation: a client has at most one operation in flight.
pub type ClientId = u64;

/// One client operation: what was asked, when, and (if it came back) when and with what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<S: Specification = Kv> {
    pub client: ClientId,
    pub op: S::Op,
    /// Time of the invoke event.
    pub invoked: u64,
    /// `None` for an operation that never returned (the client timed out or crashed): it may
    /// have taken effect at any point after `invoked`, or never.
    pub returned: Option<Return<S>>,
}

/// The completion of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Return<S: Specification = Kv> {
    pub time: u64,
    pub reply: S::Reply,
}

impl<S: Specification> Operation<S> {
    /// The reply, if the operation returned.
    pub fn reply(&self) -> Option<&S::Reply> {
        self.returned.as_ref().map(|r| &r.reply)
    }

    /// The invoke-to-return interval, `[10, 20]`, or `[10, …)` when pending.
    pub fn interval(&self) -> String {
        match &self.returned {
            Some(r) => format!("[{}, {}]", self.invoked, r.time),
            None => format!("[{}, …)", self.invoked),
        }
    }
}

/// A KV operation as the reports show it.
impl Operation<Kv> {
    /// The value a completed Get read; `None` for writes and for pending Gets.
    pub fn read_value(&self) -> Option<&str> {
        match &self.returned {
            Some(Return {
                reply: KvReply::Value(v),
                ..
            }) => Some(v),
            _ => None,
        }
    }

    /// The operation without its client or times, e.g. `append("b")` or `get -> "ab"`; the
    /// key is left out because reports group operations by key.
    pub fn action(&self) -> String {
        match &self.op {
            KvOp::Put { value, .. } => format!("put({value:?})"),
            KvOp::Append { value, .. } => format!("append({value:?})"),
            KvOp::Get { .. } => match self.read_value() {
                Some(v) => format!("get -> {v:?}"),
                None => "get -> ?".to_owned(),
            },
        }
    }
}

impl fmt::Display for Operation<Kv> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client {} {} {}",
            self.client,
            self.action(),
            self.interval()
        )
    }
}

/// A complete recorded history, operations in the order they were invoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct History<S: Specification = Kv> {
    operations: Vec<Operation<S>>,
}

impl<S: Specification> Default for History<S> {
    fn default() -> Self {
        History {
            operations: Vec::new(),
        }
    }
}

impl<S: Specification> History<S> {
    pub fn operations(&self) -> &[Operation<S>] {
        &self.operations
    }
}

/// Why an event cannot follow the events recorded before it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EventError {
    #[error("return for client {client}, which has no operation in flight")]
    ReturnWithoutInvoke { client: ClientId },
    #[error(
        "invoke for client {client}, whose operation invoked at time {pending_since} has not \
         returned (a client that gives up must continue under a new client id)"
    )]
    InvokeWhilePending {
        client: ClientId,
        pending_since: u64,
    },
    #[error("time {time} for client {client} is before its previous event at time {previous}")]
    TimeWentBackwards {
        client: ClientId,
        time: u64,
        previous: u64,
    },
    #[error("return for client {client}'s read carries no `value` (the value read)")]
    MissingReadValue { client: ClientId },
    #[error("return for client {client}'s write carries a `value`; only reads return one")]
    UnexpectedReadValue { client: ClientId },
}

/// Builds a [`History`] from invoke and return events as they happen, in order per client
/// (events of different clients may come in any order).
#[derive(Debug)]
pub struct Recorder<S: Specification = Kv> {
    operations: Vec<Operation<S>>,
    /// Per client: the index of its operation in flight, if any, and its latest event time.
    clients: HashMap<ClientId, ClientState>,
}

#[derive(Debug)]
struct ClientState {
    in_flight: Option<usize>,
    last_time: u64,
}

impl<S: Specification> Default for Recorder<S> {
    fn default() -> Self {
        Recorder {
            operations: Vec::new(),
            clients: HashMap::new(),
        }
    }
}

impl Recorder {
    /// A recorder of KV operations (for another specification, `Recorder::<S>::default()`).
    pub fn new() -> Recorder {
        Recorder::default()
    }
}

impl<S: Specification> Recorder<S> {
    /// Records that `client` invoked `op` at `time`.
    pub fn invoke(&mut self, client: ClientId, op: S::Op, time: u64) -> Result<(), EventError> {
        if let Some(state) = self.clients.get(&client) {
            if let Some(i) = state.in_flight {
                return Err(EventError::InvokeWhilePending {
                    client,
                    pending_since: self.operations[i].invoked,
                });
            }
            if time < state.last_time {
                return Err(EventError::TimeWentBackwards {
                    client,
                    time,
                    previous: state.last_time,
                });
            }
        }
        self.clients.insert(
            client,
            ClientState {
                in_flight: Some(self.operations.len()),
                last_time: time,
            },
        );
        self.operations.push(Operation {
            client,
            op,
            invoked: time,
            returned: None,
        });
        Ok(())
    }

    /// Records that `client`'s operation in flight returned `reply` at `time`.
    pub fn complete(
        &mut self,
        client: ClientId,
        reply: S::Reply,
        time: u64,
    ) -> Result<(), EventError> {
        let state = self.clients.get_mut(&client);
        let Some((state, i)) = state.and_then(|s| s.in_flight.map(|i| (s, i))) else {
            return Err(EventError::ReturnWithoutInvoke { client });
        };
        if time < state.last_time {
            return Err(EventError::TimeWentBackwards {
                client,
                time,
                previous: state.last_time,
            });
        }
        let operation = &mut self.operations[i];
        S::reply_fits(&operation.op, &reply).map_err(|mismatch| match mismatch {
            ReplyMismatch::MissingValue => EventError::MissingReadValue { client },
            ReplyMismatch::UnexpectedValue => EventError::UnexpectedReadValue { client },
        })?;
        operation.returned = Some(Return { time, reply });
        state.in_flight = None;
        state.last_time = time;
        Ok(())
    }

    /// The history so far; operations still in flight stay pending.
    pub fn finish(self) -> History<S> {
        History {
            operations: self.operations,
        }
    }
}
