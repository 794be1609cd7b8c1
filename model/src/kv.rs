//! KV clients in the model: a fixed, tiny workload on one key, client slots with one request
//! outstanding each, and the linearizability history of their operations.
//!
//! The log does not carry the KV operation itself but only `(client, seq)`: the workload is
//! fixed, so that pair names the operation, and a log entry stays a few bytes that clone and hash
//! as cheaply as the plain proposals. [`command`] expands it into the implementation's
//! `KvCommand` wherever the service code needs one.

use std::fmt;

use raft_impl::kv::{KvCommand, KvOp, KvReply};
use raft_impl::{Index, NodeId};
use raft_lincheck::{Kv, Specification};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

/// The one key of the workload: a single register shows stale reads and duplicated appends as
/// well as several keys would, at a fraction of the states.
pub const KEY: &str = "k";

/// An operation of the workload on [`KEY`]; values are single digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    Put(u8),
    Append(u8),
    Get,
}

/// Operations per client.
pub const OPS: u8 = 2;

/// The fixed workload of client `client`: write its own digit (clients 0 and 1 append, client 2
/// puts), then read. A client reading after its own write is what exposes both KV bugs: a stale
/// read misses the write, a duplicated append shows it twice.
pub fn workload(client: u8) -> [Op; OPS as usize] {
    let write = if client == 2 {
        Op::Put(client)
    } else {
        Op::Append(client)
    };
    [write, Op::Get]
}

/// The operation client `client` issues as its `seq`-th request (from 0).
pub fn op(client: u8, seq: u8) -> Op {
    workload(client)[seq as usize]
}

/// The implementation's command for request `seq` of `client`. The store numbers a client's
/// requests from 1, as a clerk does (a session opens with request 1), so the `seq`-th request
/// from 0 is number `seq + 1`.
pub fn command(client: u8, seq: u8) -> KvCommand {
    KvCommand {
        client: client.into(),
        seq: u64::from(seq) + 1,
        op: kv_op(op(client, seq)),
    }
}

/// The implementation's operation for a workload operation.
fn kv_op(op: Op) -> KvOp {
    let key = KEY.to_string();
    match op {
        Op::Put(v) => KvOp::Put {
            key,
            value: v.to_string(),
        },
        Op::Append(v) => KvOp::Append {
            key,
            value: v.to_string(),
        },
        Op::Get => KvOp::Get { key },
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put(v) => write!(f, "put {KEY}={v}"),
            Op::Append(v) => write!(f, "append {KEY}+={v}"),
            Op::Get => write!(f, "get {KEY}"),
        }
    }
}

/// The sequential specification the history is checked against: the register of [`KEY`], with
/// the semantics of the history checker's KV specification ([`raft_lincheck::Kv`]), written
/// independently of `raft_impl::kv::KvStore`, which is what is being judged.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvSpec(<Kv as Specification>::State);

impl Default for KvSpec {
    fn default() -> Self {
        KvSpec(Kv::initial())
    }
}

impl SequentialSpec for KvSpec {
    type Op = Op;
    type Ret = KvReply;

    fn invoke(&mut self, op: &Op) -> KvReply {
        let (reply, next) = Kv::step(&self.0, &kv_op(*op).into());
        self.0 = next;
        reply.into()
    }
}

/// Where a client's current request stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The current operation is not invoked yet (or the workload is done).
    Idle,
    /// Invoked, but no server is working on it for this client: it was lost with a crashed
    /// server, replaced in the log by another command, or the client timed out. The next
    /// request sends the same `(client, seq)` again.
    Retrying,
    /// Appended at `index` of `server`'s log; the reply comes when that server applies it.
    Waiting { server: NodeId, index: Index },
}

/// One client slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// Operations completed; the current one is `workload(id)[seq]`.
    pub seq: u8,
    pub status: Status,
    /// The reply to the last completed operation, for traces. Adds no states: the history
    /// holds it too.
    pub reply: Option<KvReply>,
}

impl Client {
    pub fn done(&self) -> bool {
        self.seq >= OPS
    }
}

/// Every client slot, the timeouts used, and the history of invocations and returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Clients {
    pub slots: Vec<Client>,
    /// Client timeouts so far (bounded by [`KvBounds::timeouts`](crate::bounds::KvBounds::timeouts)).
    pub timeouts: u8,
    /// Invoke / return per client. A retry is the same operation, so it is never a second
    /// invoke: the tester requires one operation in flight per thread.
    pub history: LinearizabilityTester<u8, KvSpec>,
}

impl Clients {
    pub fn new(count: u8) -> Clients {
        Clients {
            slots: vec![
                Client {
                    seq: 0,
                    status: Status::Idle,
                    reply: None,
                };
                count as usize
            ],
            timeouts: 0,
            history: LinearizabilityTester::new(KvSpec::default()),
        }
    }

    /// Records the invocation of `client`'s current operation, unless this is a retry.
    pub fn invoke(&mut self, client: u8) {
        let slot = &self.slots[client as usize];
        if slot.status == Status::Idle {
            // An invalid history (never produced by the model) makes the property fail.
            let _ = self.history.on_invoke(client, op(client, slot.seq));
        }
    }

    /// `client`'s current operation returned `reply`: it moves on to the next one.
    pub fn complete(&mut self, client: u8, reply: KvReply) {
        let _ = self.history.on_return(client, reply.clone());
        let slot = &mut self.slots[client as usize];
        slot.seq += 1;
        slot.status = Status::Idle;
        slot.reply = Some(reply);
    }

    /// Whether the operations so far have a linearization.
    pub fn linearizable(&self) -> bool {
        self.history.is_consistent()
    }
}
