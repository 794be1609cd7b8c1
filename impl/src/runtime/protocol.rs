//! What clients and servers of the real runtime say to each other. A request is a
//! [`ClientRequest`] in a `ClientRequest` frame ([`FrameKind`](crate::codec::FrameKind)); the
//! answer is a [`ClientReply`] in a `ClientReply` frame. Servers talk to each other in
//! [`PeerFrame`]s in `Message` frames, each sealed with a MAC ([`auth`](super::auth)); the
//! receiver of a [`SnapshotChunk`] answers it with a [`ChunkAck`] on the same connection.

use serde::{Deserialize, Serialize};

use crate::kv::{KvCommand, KvError, KvReply, KvRequest};
use crate::message::Envelope;
use crate::node::Role;
use crate::types::{Index, NodeId, Term};

/// What one server sends another on its connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerFrame {
    /// A Raft message, whole. The core's InstallSnapshot never travels in one: the link
    /// cuts it into [`PeerFrame::Chunk`]s (see `runtime::chunks`).
    Message(Envelope<KvCommand>),
    /// A piece of an InstallSnapshot, from the server the connection's handshake proved.
    Chunk(SnapshotChunk),
}

/// Which InstallSnapshot a chunk belongs to: the message's term and its snapshot's position and
/// length. Every chunk of one transfer carries the same, so a receiver tells a chunk of the
/// transfer it holds from one of another snapshot, and a sender learns which transfer an
/// acknowledgement is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TransferId {
    /// The term of the InstallSnapshot (the leader's term when it sent it).
    pub term: Term,
    pub last_index: Index,
    pub last_term: Term,
    /// The snapshot's length in bytes, as the sender declares it.
    pub total_len: u64,
}

/// The bytes `offset..offset + data.len()` of the snapshot of the InstallSnapshot `transfer`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    pub transfer: TransferId,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// Bytes are shown by their count, as a snapshot's are.
impl std::fmt::Debug for SnapshotChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SnapshotChunk {{ {:?}, offset {}, {} bytes }}",
            self.transfer,
            self.offset,
            self.data.len()
        )
    }
}

/// A receiver's answer to every chunk: how many leading bytes of `transfer` it holds. The
/// sender's next chunk starts there, whatever it sent before: this is what makes a transfer
/// resumable after a lost connection or a duplicate, with no other state shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkAck {
    pub transfer: TransferId,
    pub held: u64,
}

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
    /// Snapshot chunks from peers refused in this incarnation (a length over the limit, bytes
    /// past the declared end, a transfer that changed its length): each dropped its partial
    /// transfer and nothing else.
    pub refused_chunks: u64,
    /// Transfers of a snapshot that continued from bytes received on an earlier connection
    /// instead of starting over, in this incarnation.
    pub resumed_transfers: u64,
    /// Bytes of snapshots from peers received so far and not yet complete.
    pub snapshot_bytes_held: u64,
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
