//! What clients and servers of the real runtime say to each other. A request is a
//! [`KvCommand`](crate::kv::KvCommand) in a `ClientRequest` frame
//! ([`FrameKind`](crate::codec::FrameKind)); the answer is a [`ClientReply`] in a `ClientReply`
//! frame. Servers talk to each other in [`Envelope`](crate::Envelope)s in `Message` frames.

use serde::{Deserialize, Serialize};

use crate::kv::{KvReply, SessionError};
use crate::types::NodeId;

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
}
