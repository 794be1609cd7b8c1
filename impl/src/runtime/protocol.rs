//! What clients and servers of the real runtime say to each other. A request is a
//! [`ClientRequest`] in a `ClientRequest` frame ([`FrameKind`](crate::codec::FrameKind)); the
//! answer is a [`ClientReply`] in a `ClientReply` frame. Servers talk to each other in [`Envelope`](crate::Envelope)s in `Message` frames.

use serde::{Deserialize, Serialize};

use crate::kv::{KvError, KvReply, KvRequest};
use crate::node::Role;
use crate::types::{Index, NodeId, Term};

/// What a client asks a server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Apply a KV request (through the log, stamped by the leader's clock).
    Kv(KvRequest),
    /// Report this server's view of the cluster, at once and from local state: for operators.
    Status,
}

impl ClientRequest {
    /// A few words naming the request, for logs.
    pub fn describe(&self) -> String {
        match self {
            ClientRequest::Kv(KvRequest::Register { .. }) => "a registration".to_string(),
            ClientRequest::Kv(KvRequest::InSession { session, seq, .. }) => {
                format!("request {seq} of session {}", session.id)
            }
            ClientRequest::Kv(KvRequest::Get { .. }) => "a read".to_string(),
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
    /// Index of the last entry (the snapshot's last one when the log after it is empty).
    pub log_len: Index,
    /// The last index the snapshot covers (0 without one).
    pub snapshot_index: Index,
    /// Entries the log holds past the snapshot: what a restart replays.
    pub log_entries: u64,
    /// InstallSnapshots from peers refused in this incarnation because their bytes are not a
    /// KV store.
    pub refused_snapshots: u64,
    /// Snapshots a leader sent that this server installed, in this incarnation.
    pub installed_snapshots: u64,
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
/// sends it again, under the same (session, seq), which the store's client sessions apply once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// The request was applied at this server; the store's reply.
    Applied(KvReply),
    /// This server is not the leader, or stopped being it before the request was applied;
    /// `leader_hint` is the server it last heard lead, if any.
    NotLeader { leader_hint: Option<NodeId> },
    /// The store or the server refused the request without applying it (see
    /// [`KvError::outcome_unknown`] for what the client may conclude).
    Refused(KvError),
    /// The answer to [`ClientRequest::Status`].
    Status(ServerStatus),
}
