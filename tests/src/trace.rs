//! A readable record of a simulated run, for debugging a failing seed and for checking that a
//! seed replays exactly. Recording is off by default: building the events clones messages,
//! which a 1000-seed soak does not need.

use std::fmt;
use std::time::Duration;

use raft_impl::{Index, Message, NodeId, Role, Term};

use crate::network::NetConfig;

/// Why a message never reached the receiving core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// The network dropped it (unreliable mode).
    Network,
    /// The sender was disconnected when it sent or when the message arrived.
    SenderDisconnected,
    /// The receiver was disconnected or crashed when the message arrived.
    ReceiverDown,
    /// The sending instance crashed after sending: its messages die with it.
    SenderCrashed,
    /// A reply to an instance that has since crashed (labrpc's per-instance reply channel).
    ReceiverRestarted,
    /// Sender and receiver were on different sides of a partition when it arrived.
    Partitioned,
}

/// One thing that happened, at one virtual instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Traced<C> {
    Sent {
        from: NodeId,
        to: NodeId,
        msg: Message<C>,
        /// Arrival time, or why the message is lost already.
        fate: Result<Duration, Loss>,
    },
    Delivered {
        from: NodeId,
        to: NodeId,
        msg: Message<C>,
    },
    Lost {
        from: NodeId,
        to: NodeId,
        loss: Loss,
    },
    ElectionTimeout {
        server: NodeId,
    },
    Heartbeat {
        server: NodeId,
    },
    /// A server's role or term changed during the step just traced.
    Became {
        server: NodeId,
        role: Role,
        term: Term,
    },
    Persisted {
        server: NodeId,
        term: Term,
        voted_for: Option<NodeId>,
        log_len: Index,
    },
    Applied {
        server: NodeId,
        index: Index,
        command: C,
    },
    Proposed {
        server: NodeId,
        index: Index,
        term: Term,
        command: C,
    },
    /// The service handed its core a snapshot at `index`.
    Snapshotted {
        server: NodeId,
        index: Index,
    },
    /// The service took a snapshot as its state (installed by the core, or saved at a start).
    Restored {
        server: NodeId,
        index: Index,
    },
    Crashed {
        server: NodeId,
    },
    Started {
        server: NodeId,
        term: Term,
        log_len: Index,
    },
    Connected {
        server: NodeId,
    },
    Disconnected {
        server: NodeId,
    },
    /// The network was cut between `side` and the other servers (healed if `side` is empty).
    Partitioned {
        side: Vec<NodeId>,
    },
    Network(NetConfig),
}

/// An event and when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceEvent<C> {
    pub at: Duration,
    pub what: Traced<C>,
}

/// The events of a run, if recording is on.
#[derive(Debug)]
pub struct Trace<C> {
    events: Option<Vec<TraceEvent<C>>>,
}

impl<C> Trace<C> {
    pub fn new(enabled: bool) -> Self {
        Trace {
            events: enabled.then(Vec::new),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.events.is_some()
    }

    /// Records the event `what()` builds; `what` is not called when recording is off.
    pub fn record(&mut self, at: Duration, what: impl FnOnce() -> Traced<C>) {
        if let Some(events) = &mut self.events {
            events.push(TraceEvent { at, what: what() });
        }
    }

    /// The recorded events (empty if recording was off).
    pub fn take(&mut self) -> Vec<TraceEvent<C>> {
        self.events.take().unwrap_or_default()
    }
}

impl<C: fmt::Debug> fmt::Display for TraceEvent<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:>12.6}s  ", self.at.as_secs_f64())?;
        match &self.what {
            Traced::Sent {
                from,
                to,
                msg,
                fate,
            } => {
                write!(f, "S{from} -> S{to}  {msg}")?;
                match fate {
                    Ok(at) => write!(f, "  (arrives {:.6}s)", at.as_secs_f64()),
                    Err(loss) => write!(f, "  (lost: {loss:?})"),
                }
            }
            Traced::Delivered { from, to, msg } => {
                write!(f, "S{to} <- S{from}  {msg}")
            }
            Traced::Lost { from, to, loss } => write!(f, "S{from} -> S{to}  lost: {loss:?}"),
            Traced::ElectionTimeout { server } => write!(f, "S{server} election timeout"),
            Traced::Heartbeat { server } => write!(f, "S{server} heartbeat"),
            Traced::Became { server, role, term } => {
                write!(f, "S{server} is {role:?} in term {term}")
            }
            Traced::Persisted {
                server,
                term,
                voted_for,
                log_len,
            } => write!(
                f,
                "S{server} persisted term={term} voted_for={voted_for:?} log_len={log_len}"
            ),
            Traced::Applied {
                server,
                index,
                command,
            } => write!(f, "S{server} applied {index}: {command:?}"),
            Traced::Proposed {
                server,
                index,
                term,
                command,
            } => write!(
                f,
                "S{server} accepted {command:?} at {index} in term {term}"
            ),
            Traced::Snapshotted { server, index } => write!(f, "S{server} snapshot at {index}"),
            Traced::Restored { server, index } => {
                write!(f, "S{server} restored its snapshot at {index}")
            }
            Traced::Crashed { server } => write!(f, "S{server} CRASHED"),
            Traced::Started {
                server,
                term,
                log_len,
            } => write!(
                f,
                "S{server} started from saved term={term} log_len={log_len}"
            ),
            Traced::Connected { server } => write!(f, "S{server} connected"),
            Traced::Disconnected { server } => write!(f, "S{server} disconnected"),
            Traced::Partitioned { side } if side.is_empty() => write!(f, "partition healed"),
            Traced::Partitioned { side } => write!(f, "partition: {side:?} | the others"),
            Traced::Network(net) => write!(
                f,
                "network unreliable={} long_reordering={}",
                net.unreliable, net.long_reordering
            ),
        }
    }
}
