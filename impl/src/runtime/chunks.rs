//! InstallSnapshot in chunks: how a link cuts a snapshot into pieces that each fit a peer frame
//! ([`Outgoing`]), and how a receiver puts them back together ([`Reassembly`]) before the core
//! sees the message, whole.
//!
//! # Why here and not in the core
//!
//! The core (`node.rs`) and the model treat an InstallSnapshot as one message, and check Figure
//! 13's rules on whole snapshots: what a follower keeps, drops and applies is decided only for a
//! complete snapshot, which is the only thing a follower may act on. Figure 13's steps 2 to 5
//! (create a file at offset 0, write each chunk at its offset, reply after each, wait for the
//! last) decide none of that: they move bytes. What they could add to the protocol (a snapshot
//! arriving late, twice or never) is what the model's network already does to whole messages,
//! since it loses, duplicates and reorders them. So chunking lives in the runtime's transport,
//! below the core, as in etcd and raft-rs, whose cores also emit one snapshot message that the
//! transport streams. The one place for the snapshot rules stays the core, and the one place
//! that refuses a snapshot whose bytes are not a KV store stays the server, which receives a
//! reassembled snapshot exactly as it received a whole one.
//!
//! # The protocol
//!
//! A transfer is named by its [`TransferId`] (the message's term, the snapshot's last index,
//! last term and length). The sender writes a [`SnapshotChunk`] and waits for the receiver's
//! [`ChunkAck`], which says how many leading bytes of the transfer the receiver holds; the next
//! chunk starts there. A chunk at any other offset (a duplicate, or one sent before a reconnect
//! whose acknowledgement was lost) changes nothing and is answered with the offset held, and
//! the sender opens every transfer, and every new connection during one, with an empty chunk,
//! which asks for that offset without sending a byte. The receiver keeps a partial transfer per
//! sending server across connections, so a transfer that loses its connection resumes where it
//! stopped, not from 0. Only a server restart loses it (the buffer is in memory): the sender
//! then hears 0 and starts over.
//!
//! Waiting for each acknowledgement bounds what is in flight to one chunk, so the link can
//! write the other messages queued for the same follower (heartbeats, votes) between two
//! chunks, and the follower keeps hearing its leader during a long transfer.
//!
//! # Every field is checked
//!
//! A chunk's fields come from the network. Before anything is allocated, its declared length
//! must be at most [`MAX_SNAPSHOT_BYTES`] and its data at most [`MAX_SNAPSHOT_CHUNK_BYTES`];
//! `offset + data.len()` must not overflow and must not pass the declared length; and a chunk
//! of the same message (term and last index) must declare the same last term and length as
//! the bytes held. Any failure is a [`ChunkError`]: the partial transfer from that server is
//! dropped and nothing else changes. The buffer grows only with bytes received (a `Vec`'s
//! amortised growth: at most twice those), never by the declared length.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::kv::KvCommand;
use crate::limits::{MAX_SNAPSHOT_BYTES, MAX_SNAPSHOT_CHUNK_BYTES};
use crate::message::{AppendEntries, Message};
use crate::types::{NodeId, Snapshot, Term};

use super::protocol::{ChunkAck, SnapshotChunk, TransferId};

/// Why a chunk, or the acknowledgement of one, was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("a snapshot of {total_len} bytes is over the limit of {MAX_SNAPSHOT_BYTES}")]
    SnapshotTooLarge { total_len: u64 },
    #[error("a chunk of {len} bytes is over the limit of {MAX_SNAPSHOT_CHUNK_BYTES}")]
    ChunkTooLarge { len: usize },
    #[error("a chunk of {len} bytes at offset {offset} ends past 2^64")]
    OffsetOverflow { offset: u64, len: usize },
    #[error(
        "a chunk of {len} bytes at offset {offset} ends past the snapshot's {total_len} bytes"
    )]
    PastEnd {
        offset: u64,
        len: usize,
        total_len: u64,
    },
    #[error("a chunk of {chunk:?} changes the transfer {held:?} it continues")]
    TransferChanged { held: TransferId, chunk: TransferId },
    #[error("an acknowledgement of {acked:?} answers a chunk of {sent:?}")]
    WrongTransfer { sent: TransferId, acked: TransferId },
    #[error("an acknowledgement holds {held} bytes of a snapshot of {total_len}")]
    HeldPastEnd { held: u64, total_len: u64 },
}

/// The transfer a message's snapshot would be sent as, once its length is within the limit.
fn transfer_of(term: Term, snapshot: &Snapshot) -> Result<TransferId, ChunkError> {
    let total_len = u64::try_from(snapshot.data.len()).unwrap_or(u64::MAX);
    if total_len > MAX_SNAPSHOT_BYTES {
        return Err(ChunkError::SnapshotTooLarge { total_len });
    }
    Ok(TransferId {
        term,
        last_index: snapshot.last_index,
        last_term: snapshot.last_term,
        total_len,
    })
}

/// The order in which one sender's transfers replace each other at a receiver: a later term,
/// or in the same term a later last index. Both only grow in what one server sends (a server's
/// term never goes back, nor does the snapshot it holds, across restarts too), so a chunk that
/// is older than the partial transfer held can only be a leftover of a connection the sender
/// gave up, and it must not throw away the newer bytes.
fn age(id: &TransferId) -> (Term, u64) {
    (id.term, id.last_index)
}

/// A snapshot being sent to one peer, and how much of it the peer is known to hold.
#[derive(Debug)]
pub(crate) struct Outgoing {
    id: TransferId,
    snapshot: Snapshot,
    /// The bytes the receiver held at its last acknowledgement.
    offset: u64,
    /// The connection (numbered by the link) on which `offset` was heard. On any other, the
    /// next chunk is empty: it only asks.
    heard_on: Option<u64>,
    /// Refusals since the receiver last gained bytes.
    refusals: u32,
}

impl Outgoing {
    /// The transfer of the InstallSnapshot of `term` carrying `snapshot`; refused if the
    /// snapshot is longer than any receiver accepts.
    #[cfg(test)]
    pub(crate) fn new(term: Term, snapshot: Snapshot) -> Result<Outgoing, ChunkError> {
        Ok(Outgoing::begin(transfer_of(term, &snapshot)?, snapshot))
    }

    /// The transfer `id` of `snapshot`, as [`transfer_for`] named it.
    pub(crate) fn begin(id: TransferId, snapshot: Snapshot) -> Outgoing {
        Outgoing {
            id,
            snapshot,
            offset: 0,
            heard_on: None,
            refusals: 0,
        }
    }

    /// The transfer, and whether the receiver holds any of it: what [`Transfers`] needs.
    pub(crate) fn progress(&self) -> (TransferId, bool) {
        (self.id, self.offset > 0)
    }

    /// The receiver refused a chunk of this transfer (it closed the connection instead of
    /// answering, or answered something else); `true` once it did so [`MAX_REFUSALS`] times
    /// in a row with no byte gained in between, when the sender gives the transfer up.
    pub(crate) fn refused(&mut self) -> bool {
        self.refusals = self.refusals.saturating_add(1);
        self.refusals >= MAX_REFUSALS
    }

    /// The next chunk to send on `connection`: at most `chunk_bytes` from the offset last
    /// acknowledged, or an empty one if no acknowledgement was heard on this connection yet.
    pub(crate) fn next_chunk(&self, chunk_bytes: usize, connection: u64) -> SnapshotChunk {
        // `offset <= total_len`, which is the length of `data`, a `usize`.
        let start = usize::try_from(self.offset).expect("acknowledged within the snapshot");
        let len = if self.heard_on == Some(connection) {
            chunk_bytes.min(self.snapshot.data.len() - start)
        } else {
            0
        };
        SnapshotChunk {
            transfer: self.id,
            offset: self.offset,
            data: self.snapshot.data[start..start + len].to_vec(),
        }
    }

    /// Takes the receiver's answer to the last chunk sent on `connection`; `true` once it holds
    /// the whole snapshot.
    pub(crate) fn acknowledged(
        &mut self,
        ack: ChunkAck,
        connection: u64,
    ) -> Result<bool, ChunkError> {
        if ack.transfer != self.id {
            return Err(ChunkError::WrongTransfer {
                sent: self.id,
                acked: ack.transfer,
            });
        }
        if ack.held > self.id.total_len {
            return Err(ChunkError::HeldPastEnd {
                held: ack.held,
                total_len: self.id.total_len,
            });
        }
        if ack.held > self.offset {
            self.refusals = 0;
        }
        self.offset = ack.held;
        self.heard_on = Some(connection);
        Ok(self.offset == self.id.total_len)
    }
}

/// How many chunks of one transfer a receiver may refuse in a row, with no byte gained in
/// between, before the sender gives the transfer up. A receiver's checks are deterministic (a
/// build with lower limits refuses the same chunk every time), so retrying for ever would only
/// redial it; three tell that from a connection lost by chance, such as a receiver's restart.
pub(crate) const MAX_REFUSALS: u32 = 3;

/// What a link knows of the snapshots it sends one peer: enough to decide, for each
/// InstallSnapshot the core hands it, whether that one begins a transfer or is sent as the
/// heartbeat it stands for ([`heartbeat`]). The link publishes a copy where the server hands
/// it messages, so that an InstallSnapshot it would not begin is not even queued (the core
/// resends the whole snapshot at every heartbeat, and a link busy with a chunk would otherwise
/// pile up copies of it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Transfers {
    /// The transfer in progress, and whether the receiver holds any of it.
    pub(crate) sending: Option<(TransferId, bool)>,
    /// The last transfer the receiver said it holds whole, on the connection open now: a
    /// receiver that restarted since may have lost it, and is asked again on the next one.
    pub(crate) held: Option<TransferId>,
    /// The last transfer given up after [`MAX_REFUSALS`] refusals.
    pub(crate) abandoned: Option<TransferId>,
}

impl Transfers {
    /// Whether an InstallSnapshot sent as `id` begins a transfer. Not if the receiver holds
    /// it whole, nor if it was given up; and not while another is in progress, unless that is
    /// of another snapshot and the receiver holds none of it yet. A transfer the receiver holds
    /// part of is finished first (see `transport::Link` for why); one that has not begun (its
    /// peer was down while the leader compacted again) loses nothing by giving way, and sending
    /// it would only make the follower install a snapshot it must replace.
    pub(crate) fn begins(&self, id: &TransferId) -> bool {
        if self.held == Some(*id) || self.abandoned == Some(*id) {
            return false;
        }
        let snapshot_of = |id: &TransferId| (id.last_index, id.last_term);
        match self.sending {
            None => true,
            Some((current, begun)) => !begun && snapshot_of(&current) != snapshot_of(id),
        }
    }
}

/// The transfer an InstallSnapshot of `term` carrying `snapshot` is sent as, if it begins one;
/// `None` if it is sent as its [`heartbeat`] instead, or is over the limit (`Err`).
pub(crate) fn transfer_for(
    transfers: &Transfers,
    term: Term,
    snapshot: &Snapshot,
) -> Result<Option<TransferId>, ChunkError> {
    let id = transfer_of(term, snapshot)?;
    Ok(transfers.begins(&id).then_some(id))
}

/// The heartbeat an InstallSnapshot of `term` carrying `snapshot` stands for, which a link
/// sends in its place when it begins no transfer for it: an AppendEntries of `term` with no
/// entries whose previous entry is the snapshot's last, `(last_index, last_term)`.
///
/// The core sends this very message to a follower whose next index is right past the snapshot
/// (with nothing new to send, or its window full), so the model covers it, up to
/// `leader_commit`. The core would put its commit index there, which is at least `last_index`,
/// since a snapshot holds only applied, hence committed, entries; a follower commits up to
/// `min(leader_commit, prev_log_index)` for a request with no entries (Figure 2, rule 5), which
/// is `last_index` for any `leader_commit` from `last_index` up. So `last_index` has the effect
/// of the core's own value, which the transport does not know.
///
/// A follower whose log holds the snapshot's last entry (it installed the snapshot, or its log
/// matches there) answers a success at `last_index`, which takes the leader out of
/// `Flow::Snapshot`: this is what rescues a follower whose answer to the install was lost, when
/// the receiver, holding the transfer whole, hands the core nothing more. One that is still
/// receiving answers a conflict, which a leader waiting for a snapshot ignores; either way the
/// follower heard its leader (its election timer restarts) and its answer counts for
/// CheckQuorum, however long the transfer takes.
pub(crate) fn heartbeat(term: Term, snapshot: &Snapshot) -> Message<KvCommand> {
    Message::AppendEntries(AppendEntries {
        term,
        prev_log_index: snapshot.last_index,
        prev_log_term: snapshot.last_term,
        entries: Vec::new(),
        leader_commit: snapshot.last_index,
    })
}

/// What a receiver makes of a well-formed chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// The answer to send back; the transfer is not complete.
    Held(ChunkAck),
    /// The chunk completed the transfer: the answer, and the InstallSnapshot for the core.
    Complete(ChunkAck, Message<KvCommand>),
}

/// The bytes received so far of one transfer from one server.
#[derive(Debug)]
struct Partial {
    id: TransferId,
    bytes: Vec<u8>,
    /// The connection that delivered the last bytes, to tell a resumed transfer.
    connection: u64,
}

/// One sending server's transfers at a receiver.
#[derive(Debug, Default)]
struct FromPeer {
    partial: Option<Partial>,
    /// The last transfer completed, so that a sender that missed the last acknowledgement (or
    /// was handed the same snapshot again at a heartbeat before the follower's answer reached
    /// its core) hears "all held" instead of sending it all again.
    completed: Option<TransferId>,
}

impl FromPeer {
    /// Takes `chunk`, which arrived on `connection`; the bool says whether it resumed a
    /// transfer that an earlier connection began.
    fn receive(
        &mut self,
        chunk: SnapshotChunk,
        connection: u64,
    ) -> Result<(Received, bool), ChunkError> {
        if let Err(e) = check(&chunk) {
            self.partial = None;
            return Err(e);
        }
        let id = chunk.transfer;
        let held = |held| Received::Held(ChunkAck { transfer: id, held });
        if self.completed == Some(id) {
            return Ok((held(id.total_len), false));
        }
        match &self.partial {
            Some(p) if p.id == id => {}
            Some(p) if age(&p.id) == age(&id) => {
                let held = p.id;
                self.partial = None;
                return Err(ChunkError::TransferChanged { held, chunk: id });
            }
            // A leftover of an older transfer: the newer bytes stay.
            Some(p) if age(&p.id) > age(&id) => return Ok((held(0), false)),
            _ => {
                self.partial = Some(Partial {
                    id,
                    bytes: Vec::new(),
                    connection,
                })
            }
        }
        let partial = self.partial.as_mut().expect("set above");
        // `bytes.len() <= total_len <= MAX_SNAPSHOT_BYTES`: it fits a u64.
        let have = partial.bytes.len() as u64;
        if chunk.offset != have {
            return Ok((held(have), false));
        }
        // An empty chunk only asks (and completes a snapshot of no bytes).
        let resumed = !chunk.data.is_empty() && have > 0 && partial.connection != connection;
        if !chunk.data.is_empty() {
            partial.connection = connection;
            partial.bytes.extend_from_slice(&chunk.data);
        }
        let have = partial.bytes.len() as u64;
        if have < id.total_len {
            return Ok((held(have), resumed));
        }
        let data = self.partial.take().expect("matched above").bytes;
        self.completed = Some(id);
        let msg = Message::InstallSnapshot {
            term: id.term,
            snapshot: Snapshot {
                last_index: id.last_index,
                last_term: id.last_term,
                data,
            },
        };
        let ack = ChunkAck {
            transfer: id,
            held: have,
        };
        Ok((Received::Complete(ack, msg), resumed))
    }
}

/// The checks on a chunk's own fields, before it is compared with anything held.
fn check(chunk: &SnapshotChunk) -> Result<(), ChunkError> {
    let total_len = chunk.transfer.total_len;
    if total_len > MAX_SNAPSHOT_BYTES {
        return Err(ChunkError::SnapshotTooLarge { total_len });
    }
    let len = chunk.data.len();
    if len > MAX_SNAPSHOT_CHUNK_BYTES {
        return Err(ChunkError::ChunkTooLarge { len });
    }
    let offset = chunk.offset;
    // `len <= MAX_SNAPSHOT_CHUNK_BYTES`: it fits a u64.
    let end = offset
        .checked_add(len as u64)
        .ok_or(ChunkError::OffsetOverflow { offset, len })?;
    if end > total_len {
        return Err(ChunkError::PastEnd {
            offset,
            len,
            total_len,
        });
    }
    Ok(())
}

/// A server's inbound transfers, one per sending server, shared by the threads of its peer
/// connections (a transfer outlives the connection it began on), and their counts for the
/// status.
#[derive(Debug, Default)]
pub(crate) struct Reassembly {
    peers: Mutex<HashMap<NodeId, FromPeer>>,
    connections: AtomicU64,
    refused: AtomicU64,
    resumed: AtomicU64,
}

impl Reassembly {
    /// A number for a new inbound connection, unique in this process.
    pub(crate) fn connection(&self) -> u64 {
        self.connections.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes a chunk `from` a server on `connection`. A refused one is counted, and drops that
    /// server's partial transfer.
    pub(crate) fn receive(
        &self,
        from: NodeId,
        chunk: SnapshotChunk,
        connection: u64,
    ) -> Result<Received, ChunkError> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let received = peers.entry(from).or_default().receive(chunk, connection);
        drop(peers);
        match received {
            Ok((received, resumed)) => {
                if resumed {
                    self.resumed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(received)
            }
            Err(e) => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Chunks refused so far.
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Transfers resumed on a new connection so far.
    pub(crate) fn resumed(&self) -> u64 {
        self.resumed.load(Ordering::Relaxed)
    }

    /// The bytes of unfinished transfers held now.
    pub(crate) fn held(&self) -> u64 {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        let held = peers.values().filter_map(|p| p.partial.as_ref());
        // Each is at most `MAX_SNAPSHOT_BYTES`, and there are at most `MAX_SERVERS`.
        held.map(|p| p.bytes.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TERM: Term = 3;

    fn snapshot(len: usize) -> Snapshot {
        Snapshot {
            last_index: 40,
            last_term: 2,
            data: (0..len).map(|i| (i % 251) as u8).collect(),
        }
    }

    fn id_of(snapshot: &Snapshot) -> TransferId {
        transfer_of(TERM, snapshot).unwrap()
    }

    fn chunk(id: TransferId, offset: u64, data: &[u8]) -> SnapshotChunk {
        SnapshotChunk {
            transfer: id,
            offset,
            data: data.to_vec(),
        }
    }

    fn held(id: TransferId, held: u64) -> Received {
        Received::Held(ChunkAck { transfer: id, held })
    }

    /// Runs a sender and a receiver against each other on `connection` until the transfer
    /// completes or `max_chunks` were sent; returns what the receiver handed on, if anything.
    fn run(
        sender: &mut Outgoing,
        receiver: &Reassembly,
        connection: u64,
        chunk_bytes: usize,
        max_chunks: usize,
    ) -> Option<Message<KvCommand>> {
        for _ in 0..max_chunks {
            let chunk = sender.next_chunk(chunk_bytes, connection);
            let (ack, msg) = match receiver.receive(1, chunk, connection).unwrap() {
                Received::Held(ack) => (ack, None),
                Received::Complete(ack, msg) => (ack, Some(msg)),
            };
            let done = sender.acknowledged(ack, connection).unwrap();
            assert_eq!(
                done,
                msg.is_some(),
                "the sender ends when the receiver has it all"
            );
            if done {
                return msg;
            }
        }
        None
    }

    #[test]
    fn chunks_in_order_complete_the_snapshot_whole() {
        let whole = snapshot(10_000);
        let mut sender = Outgoing::new(TERM, whole.clone()).unwrap();
        let receiver = Reassembly::default();
        let msg = run(&mut sender, &receiver, 0, 1_000, 100).expect("complete");
        assert_eq!(
            msg,
            Message::InstallSnapshot {
                term: TERM,
                snapshot: whole
            }
        );
        assert_eq!((receiver.refused(), receiver.resumed()), (0, 0));
    }

    #[test]
    fn a_duplicate_or_a_chunk_at_a_wrong_offset_is_answered_with_the_offset_held() {
        let whole = snapshot(3_000);
        let id = id_of(&whole);
        let mut peer = FromPeer::default();
        let first = chunk(id, 0, &whole.data[..1_000]);
        assert_eq!(peer.receive(first.clone(), 0).unwrap().0, held(id, 1_000));
        // The same chunk again changes nothing.
        assert_eq!(peer.receive(first, 0).unwrap().0, held(id, 1_000));
        // A chunk past the bytes held (one in between was lost) is not taken.
        let ahead = chunk(id, 2_000, &whole.data[2_000..]);
        assert_eq!(peer.receive(ahead, 0).unwrap().0, held(id, 1_000));
        let held_bytes = &peer.partial.as_ref().unwrap().bytes;
        assert_eq!(held_bytes[..], whole.data[..1_000]);
    }

    /// A connection lost in the middle of a transfer: the sender keeps its transfer, opens a
    /// new connection, asks, and continues from what the receiver held, sending each byte once.
    #[test]
    fn a_transfer_resumes_on_a_new_connection_from_the_offset_held() {
        let whole = snapshot(10_000);
        let mut sender = Outgoing::new(TERM, whole.clone()).unwrap();
        let receiver = Reassembly::default();
        assert_eq!(run(&mut sender, &receiver, 0, 1_000, 5), None);
        // Four chunks of data went through (the first chunk only asked). The fifth is sent,
        // taken, and its answer lost with the connection.
        let lost = sender.next_chunk(1_000, 0);
        assert_eq!(lost.offset, 4_000);
        receiver.receive(1, lost, 0).unwrap();
        // On the next connection the sender asks first: it hears 5 000, not the 4 000 it knew.
        let ask = sender.next_chunk(1_000, 1);
        assert_eq!((ask.offset, ask.data.len()), (4_000, 0));
        let Received::Held(ack) = receiver.receive(1, ask, 1).unwrap() else {
            panic!("an empty chunk completes nothing");
        };
        assert!(!sender.acknowledged(ack, 1).unwrap());
        assert_eq!(sender.next_chunk(1_000, 1).offset, 5_000);
        let msg = run(&mut sender, &receiver, 1, 1_000, 5).expect("complete");
        assert_eq!(
            msg,
            Message::InstallSnapshot {
                term: TERM,
                snapshot: whole
            }
        );
        assert_eq!(receiver.resumed(), 1, "one transfer resumed");
    }

    /// A sender that restarts its transfer from the start (a new link, or the core handing it
    /// the same snapshot again) asks first, and hears what the receiver holds.
    #[test]
    fn a_new_sender_of_the_same_snapshot_continues_where_the_last_one_stopped() {
        let whole = snapshot(4_000);
        let receiver = Reassembly::default();
        let mut first = Outgoing::new(TERM, whole.clone()).unwrap();
        assert_eq!(run(&mut first, &receiver, 0, 1_000, 3), None);
        let mut second = Outgoing::new(TERM, whole.clone()).unwrap();
        let ask = second.next_chunk(1_000, 7);
        assert_eq!(ask.offset, 0);
        let Received::Held(ack) = receiver.receive(1, ask, 7).unwrap() else {
            panic!("incomplete");
        };
        assert_eq!(ack.held, 2_000);
        second.acknowledged(ack, 7).unwrap();
        assert!(run(&mut second, &receiver, 7, 1_000, 3).is_some());
        // Handed the same snapshot again after it completed, a sender hears "all held" at once.
        let mut again = Outgoing::new(TERM, whole).unwrap();
        let ask = again.next_chunk(1_000, 8);
        let Received::Held(ack) = receiver.receive(1, ask, 8).unwrap() else {
            panic!("delivered twice");
        };
        assert!(again.acknowledged(ack, 8).unwrap());
    }

    /// Every refusal is typed, counted, and drops the partial transfer: nothing else.
    fn refused(peer: &mut FromPeer, chunk: SnapshotChunk, expected: ChunkError) {
        let receiver = Reassembly::default();
        receiver
            .peers
            .lock()
            .unwrap()
            .insert(1, std::mem::take(peer));
        assert_eq!(receiver.receive(1, chunk, 0), Err(expected));
        assert_eq!(receiver.refused(), 1);
        *peer = receiver.peers.lock().unwrap().remove(&1).unwrap();
        assert!(peer.partial.is_none(), "the partial transfer is dropped");
    }

    /// A peer holding the first 1 000 bytes of `whole`.
    fn holding(whole: &Snapshot) -> FromPeer {
        let mut peer = FromPeer::default();
        let first = chunk(id_of(whole), 0, &whole.data[..1_000]);
        peer.receive(first, 0).unwrap();
        peer
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused_before_anything_is_held() {
        let whole = snapshot(2_000);
        let mut peer = holding(&whole);
        let id = TransferId {
            total_len: MAX_SNAPSHOT_BYTES + 1,
            ..id_of(&whole)
        };
        let total_len = id.total_len;
        refused(
            &mut peer,
            chunk(id, 0, b"x"),
            ChunkError::SnapshotTooLarge { total_len },
        );
        // At the limit, a transfer starts, holding only what arrived.
        let id = TransferId {
            total_len: MAX_SNAPSHOT_BYTES,
            ..id
        };
        assert_eq!(peer.receive(chunk(id, 0, b"x"), 0).unwrap().0, held(id, 1));
        assert!(peer.partial.as_ref().unwrap().bytes.capacity() < 1 << 10);
        // A sender refuses such a snapshot before it sends a byte.
        let over = Snapshot {
            data: vec![0; (MAX_SNAPSHOT_BYTES + 1) as usize],
            ..whole
        };
        assert_eq!(
            Outgoing::new(TERM, over).unwrap_err(),
            ChunkError::SnapshotTooLarge { total_len }
        );
    }

    #[test]
    fn offsets_and_lengths_that_overflow_or_pass_the_end_are_refused() {
        let whole = snapshot(2_000);
        let id = id_of(&whole);
        let mut peer = holding(&whole);
        refused(
            &mut peer,
            chunk(id, u64::MAX - 1, b"xyz"),
            ChunkError::OffsetOverflow {
                offset: u64::MAX - 1,
                len: 3,
            },
        );
        let mut peer = holding(&whole);
        refused(
            &mut peer,
            chunk(id, 1_000, &[0; 1_001]),
            ChunkError::PastEnd {
                offset: 1_000,
                len: 1_001,
                total_len: 2_000,
            },
        );
        let mut peer = holding(&whole);
        refused(
            &mut peer,
            chunk(id, 5_000, b""),
            ChunkError::PastEnd {
                offset: 5_000,
                len: 0,
                total_len: 2_000,
            },
        );
        let mut peer = holding(&whole);
        let len = MAX_SNAPSHOT_CHUNK_BYTES + 1;
        let big = TransferId {
            total_len: 4 * len as u64,
            ..id
        };
        refused(
            &mut peer,
            chunk(big, 0, &vec![0; len]),
            ChunkError::ChunkTooLarge { len },
        );
    }

    #[test]
    fn a_transfer_that_changes_its_length_or_last_term_is_refused() {
        let whole = snapshot(2_000);
        let id = id_of(&whole);
        for changed in [
            TransferId {
                total_len: 3_000,
                ..id
            },
            TransferId { last_term: 1, ..id },
        ] {
            let mut peer = holding(&whole);
            refused(
                &mut peer,
                chunk(changed, 1_000, b"x"),
                ChunkError::TransferChanged {
                    held: id,
                    chunk: changed,
                },
            );
        }
    }

    /// A chunk of a newer snapshot (a later term, or a later last index in the same term)
    /// replaces the partial transfer; a leftover chunk of an older one changes nothing.
    #[test]
    fn a_newer_snapshot_replaces_a_partial_one_and_an_older_one_does_not() {
        let whole = snapshot(2_000);
        let id = id_of(&whole);
        let newer = TransferId {
            last_index: 50,
            total_len: 10,
            ..id
        };
        let mut peer = holding(&whole);
        assert_eq!(
            peer.receive(chunk(newer, 0, b"01234"), 1).unwrap().0,
            held(newer, 5)
        );
        assert_eq!(peer.partial.as_ref().unwrap().id, newer);
        // The older one's next chunk: answered, not taken, and the newer bytes stay.
        assert_eq!(
            peer.receive(chunk(id, 1_000, &whole.data[1_000..]), 0)
                .unwrap()
                .0,
            held(id, 0)
        );
        assert_eq!(peer.partial.as_ref().unwrap().bytes, b"01234");
        let later_term = TransferId {
            term: TERM + 1,
            last_index: 40,
            ..id
        };
        assert_eq!(
            peer.receive(chunk(later_term, 0, b"ab"), 1).unwrap().0,
            held(later_term, 2)
        );
        assert_eq!(peer.partial.as_ref().unwrap().bytes, b"ab");
    }

    #[test]
    fn acknowledgements_of_another_transfer_or_past_the_end_are_refused() {
        let whole = snapshot(2_000);
        let id = id_of(&whole);
        let mut sender = Outgoing::new(TERM, whole).unwrap();
        let other = TransferId {
            last_index: 41,
            ..id
        };
        assert_eq!(
            sender.acknowledged(
                ChunkAck {
                    transfer: other,
                    held: 0
                },
                0
            ),
            Err(ChunkError::WrongTransfer {
                sent: id,
                acked: other
            })
        );
        assert_eq!(
            sender.acknowledged(
                ChunkAck {
                    transfer: id,
                    held: 2_001
                },
                0
            ),
            Err(ChunkError::HeldPastEnd {
                held: 2_001,
                total_len: 2_000
            })
        );
    }

    #[test]
    fn a_transfer_gives_way_to_a_newer_snapshot_only_until_the_receiver_holds_part_of_it() {
        let whole = snapshot(4_000);
        let newer = Snapshot {
            last_index: 45,
            ..snapshot(5_000)
        };
        let mut sender = Outgoing::new(TERM, whole.clone()).unwrap();
        let transfers = |sender: &Outgoing| Transfers {
            sending: Some(sender.progress()),
            ..Transfers::default()
        };
        let begins = |sender: &Outgoing, snapshot: &Snapshot| {
            transfer_for(&transfers(sender), TERM, snapshot)
                .unwrap()
                .is_some()
        };
        assert!(!begins(&sender, &whole), "the same snapshot again");
        assert!(begins(&sender, &newer), "nothing of it is held yet");
        let receiver = Reassembly::default();
        assert_eq!(run(&mut sender, &receiver, 0, 1_000, 2), None);
        assert!(
            !begins(&sender, &newer),
            "1 000 bytes are held: it is finished first"
        );
    }

    /// An empty snapshot is one empty chunk.
    #[test]
    fn a_snapshot_of_no_bytes_completes_on_its_first_chunk() {
        let mut sender = Outgoing::new(TERM, snapshot(0)).unwrap();
        let receiver = Reassembly::default();
        assert!(run(&mut sender, &receiver, 0, 1_000, 1).is_some());
    }
}
