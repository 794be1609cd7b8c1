//! What clients and servers of the real runtime say to each other. A request is a
//! [`ClientRequest`] in a `ClientRequest` frame ([`FrameKind`](crate::codec::FrameKind)); the
//! answer is a [`ClientReply`] in a `ClientReply` frame. Servers talk to each other in [`Envelope`](crate::Envelope)s in `Message` frames.

use serde::{Deserialize, Serialize};

use crate::kv::{KvCommand, KvReply, SessionError};
use crate::limits::MAX_COMMAND_BYTES;
use crate::node::Role;
use crate::types::{Index, NodeId, Term};

/// What a client asks a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Apply a KV command (through the log).
    Kv(KvCommand),
    /// Report this server's view of the cluster, at once and from local state: for operators.
    Status,
}

impl ClientRequest {
    /// A few words naming the request, for logs.
    pub fn describe(&self) -> String {
        match self {
            ClientRequest::Kv(c) => format!("request {} of client {}", c.seq, c.client),
            ClientRequest::Status => "a status request".to_string(),
        }
    }
}

/// One server's view, as it answers [`ClientRequest::Status`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub commit_index: Index,
    pub log_len: Index,
    /// The leader this server knows of in its term (itself if it leads).
    pub leader: Option<NodeId>,
    /// Encoded bytes of the Raft messages this incarnation sent each server, by id (its own
    /// 0), counted as the core emits them, whether or not the link delivered them.
    pub sent_bytes: Vec<u64>,
    /// Heartbeats this incarnation sent as leader.
    pub heartbeats: u64,
}

/// A server's answer to one request. No answer at all (the connection closes or the clerk's
/// timeout fires) means the outcome is unknown: the request may yet be applied, and the clerk
/// sends it again, under the same (client, seq), which the store's client sessions apply once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// The request was applied at this server; the store's reply.
    Applied(KvReply),
    /// This server is not the leader, or stopped being it before the request was applied;
    /// `leader_hint` is the server it last heard lead, if any.
    NotLeader { leader_hint: Option<NodeId> },
    /// The store refused the request without applying it: its (client, seq) is not the next of
    /// a live session. The clerk reports it and goes on under a new session.
    Refused(SessionError),
    /// The answer to [`ClientRequest::Status`].
    Status(ServerStatus),
    /// The command is too large to enter the log; it was not applied, and never will be.
    TooLarge(CommandTooLarge),
}

/// A command whose encoding exceeds [`MAX_COMMAND_BYTES`]. Refused before it enters the log, by
/// the clerk before it is sent and by the server before it is proposed: a log entry must fit,
/// with a batch around it, in a peer frame, or no follower could ever receive it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("command of {bytes} bytes refused: the limit is {limit} bytes")]
pub struct CommandTooLarge {
    pub bytes: u64,
    pub limit: u64,
}

impl CommandTooLarge {
    /// The one rule: a command is refused when its encoding is larger than the limit.
    pub fn check(command: &KvCommand) -> Result<(), CommandTooLarge> {
        let bytes = crate::codec::encoded_len(command);
        if bytes > MAX_COMMAND_BYTES {
            return Err(CommandTooLarge {
                bytes: bytes as u64,
                limit: MAX_COMMAND_BYTES as u64,
            });
        }
        Ok(())
    }
}
