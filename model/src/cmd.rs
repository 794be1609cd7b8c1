//! The command a model log holds: a plain proposal, or a KV client's request in a compact form
//! that [`crate::kv`] expands into the implementation's. Its own module, below both the state
//! that holds it and the clients that issue it.

use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

/// A command in the log: a plain proposal, or a KV client's request. Its `Debug` is the compact
/// form traces use (see `render`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Cmd {
    /// A plain proposal. They are distinct small numbers so that two different commands at the
    /// same index are told apart.
    Plain(u8),
    /// KV client `client` registers a session (the client's number is its nonce), proposed at
    /// log time `time` (see [`crate::kv`]).
    Register { client: u8, time: u8 },
    /// Request `seq` of KV client `client`, proposed at log time `time`; the operation is the
    /// workload's (see [`crate::kv`]), so the entry stays as small as a plain one. A write goes
    /// in `session`, the log index of the client's registration; a Get is outside any session
    /// and has `session` 0.
    Kv {
        client: u8,
        seq: u8,
        session: u8,
        time: u8,
    },
}

impl Cmd {
    /// The command as one number, injectively (clients and sequence numbers are below 16, see
    /// `bounds::CLIENT_LIMIT` and `kv::OPS`): plain proposals are below 2^16, KV requests
    /// above. Logs and messages are hashed for every state, and one write per command is
    /// cheaper than a derived discriminant plus fields.
    pub fn code(self) -> u32 {
        match self {
            Cmd::Plain(n) => n.into(),
            Cmd::Register { client, time } => 2 << 24 | u32::from(client) << 8 | u32::from(time),
            Cmd::Kv {
                client,
                seq,
                session,
                time,
            } => {
                1 << 24
                    | u32::from(session) << 16
                    | u32::from(client) << 12
                    | u32::from(seq) << 8
                    | u32::from(time)
            }
        }
    }

    /// The same request without the stamp of the leader that proposed it: what a client
    /// waiting on an index compares the applied command with. Two entries of one request
    /// (retries proposed by different leaders, or at different times) are the same request,
    /// and the store answers either with that request's outcome.
    pub fn unstamped(self) -> Cmd {
        self.stamped(0)
    }

    /// The same request stamped with log time `time`.
    pub fn stamped(self, time: u8) -> Cmd {
        match self {
            Cmd::Plain(_) => self,
            Cmd::Register { client, .. } => Cmd::Register { client, time },
            Cmd::Kv {
                client,
                seq,
                session,
                ..
            } => Cmd::Kv {
                client,
                seq,
                session,
                time,
            },
        }
    }
}

impl Hash for Cmd {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u32(self.code())
    }
}
