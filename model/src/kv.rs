//! KV clients in the model: a fixed, tiny workload on one key, client slots with one request
//! outstanding each, and the linearizability history of their operations.
//!
//! The clients follow the store's session rules (`raft_impl::kv`): before its write a client
//! registers a session through the log, its write goes in that session, and its read goes
//! outside any. The log does not carry the KV operation itself but only `(client, seq)` with
//! the session and the stamp ([`Cmd`]): the workload is fixed, so that pair names the
//! operation, and a log entry stays a few bytes that clone and hash as cheaply as the plain
//! proposals. [`command`] expands it into the implementation's `KvCommand` wherever the service
//! code needs one.
//!
//! **Log time and expiry.** The model has no clock. Leaders stamp commands with the clients'
//! [`Clients::clock`], a count of *expiry events*: an expiry (`Action::Expire`, at most
//! `--kv-expiries` of them) says that more than the session timeout of log time has passed, so
//! the store (run with a timeout of 0 ticks, [`RULES`]) expires every session idle since before
//! it at the next command it applies. What the abstraction keeps is what the store can tell:
//! at each applied command, whether a session's last activity is more than the timeout behind
//! the largest stamp so far. One tick is "more than the timeout"; time that passes without
//! reaching it changes no answer of the store, so it is not modelled. One clock for all
//! leaders leaves out clock skew, which the store's max rule makes harmless: a stamp below the
//! store's clock moves nothing. Registrations are never refused here (the limit per window is
//! a bound on memory, not a rule of exactly-once). A client whose write is refused as
//! `SessionExpired` reports an unknown outcome: its operation stays pending in the history for
//! good ([`Status::Unknown`]), which is what a client that cannot tell may claim.

use std::fmt;

use raft_impl::kv::{KvCommand, KvOp, KvReply, KvRequest, Session, SessionRules};
use raft_impl::{Index, NodeId};
use raft_lincheck::{Kv, Specification};
use stateright::semantics::{ConsistencyTester, LinearizabilityTester, SequentialSpec};

use crate::cmd::Cmd;

/// The store's session rules in the model, in ticks of [`Clients::clock`]: a session idle for
/// more than 0 ticks (since before the last expiry event) expires; registrations are never
/// refused.
pub const RULES: SessionRules = SessionRules {
    timeout: 0,
    window: 1,
    registrations: u32::MAX,
};

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

/// The implementation's command for a log entry of the clients. A client's `seq`-th request
/// (from 0) is numbered `seq + 1` in its session, as a clerk numbers its writes from 1.
///
/// # Panics
///
/// On a plain proposal, which is no client's.
pub fn command(cmd: Cmd) -> KvCommand {
    let (time, request) = match cmd {
        Cmd::Register { client, time } => (
            time,
            KvRequest::Register {
                nonce: client.into(),
            },
        ),
        Cmd::Kv {
            client,
            seq,
            session,
            time,
        } => {
            let request = match kv_op(op(client, seq)) {
                KvOp::Get { key } => KvRequest::Get { key },
                write => KvRequest::InSession {
                    session: Session {
                        id: session.into(),
                        nonce: client.into(),
                    },
                    seq: u64::from(seq) + 1,
                    op: write,
                },
            };
            (time, request)
        }
        Cmd::Plain(n) => panic!("plain proposal {n} is no client's request"),
    };
    KvCommand {
        time: time.into(),
        request,
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
    /// The store refused the write as of an expired session: the client cannot tell whether it
    /// was applied and stops, its operation pending in the history for good.
    Unknown,
}

/// One client slot.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Client {
    /// Operations completed; the current one is `workload(id)[seq]`.
    pub seq: u8,
    pub status: Status,
    /// The log index of its registration, once registered.
    pub session: Option<u8>,
    /// The reply to the last completed operation, for traces. Adds no states: the history
    /// holds it too.
    pub reply: Option<KvReply>,
}

impl Client {
    pub fn done(&self) -> bool {
        self.seq >= OPS
    }

    /// The request client `client` sends next, unstamped: a registration before its write if
    /// it has no session yet, else its current operation.
    pub fn request(&self, client: u8) -> Cmd {
        let op = op(client, self.seq);
        match self.session {
            None if op != Op::Get => Cmd::Register { client, time: 0 },
            session => Cmd::Kv {
                client,
                seq: self.seq,
                session: if op == Op::Get {
                    0
                } else {
                    session.unwrap_or(0)
                },
                time: 0,
            },
        }
    }
}

/// Every client slot, the timeouts used, and the history of invocations and returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Clients {
    pub slots: Vec<Client>,
    /// Client timeouts so far (bounded by [`KvBounds::timeouts`](crate::bounds::KvBounds::timeouts)).
    pub timeouts: u8,
    /// Log time: the expiry events so far (bounded by
    /// [`KvBounds::expiries`](crate::bounds::KvBounds::expiries)), which leaders stamp into
    /// the requests they propose.
    pub clock: u8,
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
                    session: None,
                    reply: None,
                };
                count as usize
            ],
            timeouts: 0,
            clock: 0,
            history: LinearizabilityTester::new(KvSpec::default()),
        }
    }

    /// Records the invocation of `client`'s current operation, unless this is a retry or a
    /// registration (which is no operation of the history).
    pub fn invoke(&mut self, client: u8) {
        let slot = &self.slots[client as usize];
        let registers = matches!(slot.request(client), Cmd::Register { .. });
        if slot.status == Status::Idle && !registers {
            // An invalid history (never produced by the model) makes the property fail.
            let _ = self.history.on_invoke(client, op(client, slot.seq));
        }
    }

    /// `client`'s current operation returned `reply`: it moves on to the next one. The reply
    /// is recorded as the history checker's specification has it (a missing key reads as
    /// `""`, the one conversion in `raft_impl::kv`).
    pub fn complete(&mut self, client: u8, reply: KvReply) {
        let reply = KvReply::from(raft_lincheck::KvReply::from(reply));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The compact commands expand to the requests a clerk sends: a registration, a write in
    /// the session, a read outside any.
    #[test]
    fn commands_expand_as_a_clerk_sends_them() {
        let register = command(Cmd::Register { client: 1, time: 1 });
        assert_eq!(register.request, KvRequest::Register { nonce: 1 });
        assert_eq!(register.time, 1);
        let write = Cmd::Kv {
            client: 1,
            seq: 0,
            session: 3,
            time: 0,
        };
        let KvRequest::InSession { session, seq, .. } = command(write).request else {
            panic!("a write goes in its session");
        };
        assert_eq!((session, seq), (Session { id: 3, nonce: 1 }, 1));
        let read = Cmd::Kv {
            client: 1,
            seq: 1,
            session: 0,
            time: 0,
        };
        assert!(matches!(command(read).request, KvRequest::Get { .. }));
    }

    #[test]
    fn a_client_registers_before_its_write_and_reads_outside_its_session() {
        let mut slot = Clients::new(1).slots[0].clone();
        assert_eq!(slot.request(0), Cmd::Register { client: 0, time: 0 });
        slot.session = Some(4);
        assert!(matches!(slot.request(0), Cmd::Kv { session: 4, .. }));
        slot.seq = 1;
        assert!(matches!(slot.request(0), Cmd::Kv { session: 0, .. }));
    }
}
