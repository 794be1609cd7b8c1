//! Peers prove who they are: a handshake on every peer connection and a MAC on every frame.
//!
//! Every server of a cluster holds the same secret and cluster id. The server that dials a peer
//! opens with `Hello { cluster id, from, to, its nonce }`; the peer answers with a `Challenge`
//! (a nonce of its own), and the dialer proves it knows the secret with
//! `HMAC(secret, "hello", cluster id, from, to, both nonces)`. Both sides then derive a key for
//! this connection alone, `HMAC(secret, "session", ...the same...)`, and every message frame
//! that follows carries `HMAC(session key, frame counter, frame bytes)`. The answers to snapshot
//! chunks travel back on the same connection, under a key of their own (`"reply"` for
//! `"session"`) and a counter of their own. A proof or a MAC that
//! does not verify, a message claiming another sender than the handshake proved, or one meant
//! for another server closes the connection. The fresh nonces make a recorded connection
//! useless to replay, and the counter stops frames from being replayed, dropped or reordered
//! within one.
//!
//! Why HMAC-SHA-256: it is the standard MAC over the standard hash (RFC 2104, FIPS 198-1), it
//! needs no nonce discipline of its own (unlike Poly1305 or GCM, whose reuse of a nonce is
//! fatal), it is fast enough that a MAC per Raft message does not show next to an fsync per
//! batch, and the `hmac` and `sha2` crates are small, audited RustCrypto code with a
//! constant-time tag comparison (`verify_slice`). It gives integrity and authenticity, not
//! secrecy: the traffic is readable on the wire (use a private network or a tunnel for that).
//!
//! The secret is shared: a server that knows it can claim any id in its handshake. What the
//! handshake proves is membership of the cluster, and each connection is then bound to the id
//! its handshake claimed.

use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::Sha256;

use crate::codec::{self, FrameKind};
use crate::types::NodeId;

use super::protocol::{ChunkAck, PeerFrame};

use super::frame::{read_frame, read_frame_bytes, write_frame, Deadline, FrameError};

type HmacSha256 = Hmac<Sha256>;

/// Bytes in a MAC tag (HMAC-SHA-256) and in a handshake nonce.
pub const TAG_LEN: usize = 32;
/// The shortest secret accepted: 128 bits.
pub const MIN_SECRET_LEN: usize = 16;

type Tag = [u8; TAG_LEN];
type Nonce = [u8; TAG_LEN];

/// What every server of one cluster shares: the secret its peers prove they know, and the
/// cluster's id, so that two clusters sharing a secret still do not talk to each other.
#[derive(Clone)]
pub struct ClusterKey {
    secret: Vec<u8>,
    cluster_id: String,
}

/// Never print the secret.
impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterKey")
            .field("cluster_id", &self.cluster_id)
            .field("secret", &format_args!("<{} bytes>", self.secret.len()))
            .finish()
    }
}

/// A secret too short to be one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a cluster secret needs at least {MIN_SECRET_LEN} bytes, got {len}")]
pub struct WeakSecret {
    pub len: usize,
}

impl ClusterKey {
    pub fn new(secret: Vec<u8>, cluster_id: String) -> Result<ClusterKey, WeakSecret> {
        if secret.len() < MIN_SECRET_LEN {
            return Err(WeakSecret { len: secret.len() });
        }
        Ok(ClusterKey { secret, cluster_id })
    }

    /// No secret (`raftd --insecure`): the same handshake and MACs under an empty key, which
    /// anyone can compute. They still catch corruption and misdirected connections, not forgers.
    pub fn insecure(cluster_id: String) -> ClusterKey {
        ClusterKey {
            secret: Vec::new(),
            cluster_id,
        }
    }

    /// HMAC under the secret of `label` and the handshake's facts.
    fn derive(&self, label: &str, from: NodeId, to: NodeId, nonces: [&Nonce; 2]) -> Tag {
        self.keyed(label, from, to, nonces)
            .finalize()
            .into_bytes()
            .into()
    }

    /// The MAC state of [`ClusterKey::derive`], to finish or to verify a tag with. Each part is
    /// length-prefixed so that no two different inputs run together into the same bytes.
    fn keyed(&self, label: &str, from: NodeId, to: NodeId, nonces: [&Nonce; 2]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key");
        for part in [
            label.as_bytes(),
            self.cluster_id.as_bytes(),
            &[from, to],
            nonces[0],
            nonces[1],
        ] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }
}

/// The handshake's steps, each in a `PeerHandshake` frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Handshake {
    Hello {
        cluster_id: String,
        from: NodeId,
        to: NodeId,
        nonce: Nonce,
    },
    Challenge {
        nonce: Nonce,
    },
    Proof {
        tag: Tag,
    },
}

/// Why a peer connection was refused or closed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("handshake out of order")]
    OutOfOrder,
    #[error("peer is of cluster {found:?}, not this one")]
    WrongCluster { found: String },
    #[error("peer claims to be server {from} calling server {to}, which is not a peer of server {me} in a cluster of {servers}")]
    NotAPeer {
        from: NodeId,
        to: NodeId,
        me: NodeId,
        servers: usize,
    },
    #[error("server {claimed} failed to prove it knows the cluster secret")]
    BadProof { claimed: NodeId },
    #[error("a frame from server {from} failed its MAC")]
    BadMac { from: NodeId },
    #[error("a message claims sender {claimed} and receiver {to} on a connection proven for {proven} -> {me}")]
    Impersonation {
        claimed: NodeId,
        to: NodeId,
        proven: NodeId,
        me: NodeId,
    },
    #[error("frame counter exhausted; the connection must be reopened")]
    CounterExhausted,
}

/// One direction of an authenticated connection: the connection's key and the number of the
/// next frame.
struct Channel {
    key: Tag,
    counter: u64,
}

impl Channel {
    /// The tag of the next frame, `frame`; the counter moves on.
    fn next_tag(&mut self, frame: &[u8]) -> Result<HmacSha256, AuthError> {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(&self.counter.to_le_bytes());
        mac.update(frame);
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(AuthError::CounterExhausted)?;
        Ok(mac)
    }

    /// Writes `value` as a message frame followed by its MAC.
    fn seal(&mut self, out: &mut impl Write, value: &impl Serialize) -> Result<(), AuthError> {
        let mut bytes = codec::encode(FrameKind::Message, value).map_err(FrameError::from)?;
        let tag: Tag = self.next_tag(&bytes)?.finalize().into_bytes().into();
        bytes.extend_from_slice(&tag);
        out.write_all(&bytes).map_err(FrameError::from)?;
        out.flush().map_err(FrameError::from)?;
        Ok(())
    }

    /// Reads one message frame and its MAC from `peer`, and verifies the MAC before decoding
    /// the payload.
    fn open<T: DeserializeOwned>(
        &mut self,
        input: &mut impl Read,
        peer: NodeId,
    ) -> Result<T, AuthError> {
        let frame = read_frame_bytes(input, FrameKind::Message)?;
        let mut tag = [0u8; TAG_LEN];
        input.read_exact(&mut tag).map_err(FrameError::from)?;
        self.next_tag(&frame)?
            .verify_slice(&tag)
            .map_err(|_| AuthError::BadMac { from: peer })?;
        Ok(codec::decode(FrameKind::Message, &frame).map_err(FrameError::from)?)
    }
}

/// The dialer's half of a peer connection, after its handshake: it sends [`PeerFrame`]s and
/// reads the [`ChunkAck`]s that answer its chunks. The two directions have keys of their own,
/// so that a frame reflected back to its sender fails its MAC.
pub struct Sealer {
    channel: Channel,
    replies: Channel,
    peer: NodeId,
}

impl Sealer {
    /// Writes `frame`, sealed.
    pub fn send(&mut self, out: &mut impl Write, frame: &PeerFrame) -> Result<(), AuthError> {
        self.channel.seal(out, frame)
    }

    /// Reads the acknowledgement of a chunk sent before.
    pub fn read_ack(&mut self, input: &mut impl Read) -> Result<ChunkAck, AuthError> {
        self.replies.open(input, self.peer)
    }
}

/// The answerer's half of a peer connection, after its handshake: bound to the peer it proved.
pub struct Opener {
    channel: Channel,
    replies: Channel,
    peer: NodeId,
    me: NodeId,
}

impl Opener {
    /// The server the handshake proved.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// Reads one frame, verifies its MAC before decoding it, and checks that a message is from
    /// the proven peer to this server (a chunk names no sender: it is the proven peer's).
    pub fn receive(&mut self, input: &mut impl Read) -> Result<PeerFrame, AuthError> {
        let frame: PeerFrame = self.channel.open(input, self.peer)?;
        if let PeerFrame::Message(envelope) = &frame {
            if envelope.from != self.peer || envelope.to != self.me {
                return Err(AuthError::Impersonation {
                    claimed: envelope.from,
                    to: envelope.to,
                    proven: self.peer,
                    me: self.me,
                });
            }
        }
        Ok(frame)
    }

    /// Answers a chunk, sealed under this direction's own key.
    pub fn acknowledge(&mut self, out: &mut impl Write, ack: &ChunkAck) -> Result<(), AuthError> {
        self.replies.seal(out, ack)
    }
}

/// The keys of both directions of a connection from `from` to `to` after a handshake with
/// `nonces` (the dialer's first).
fn channels(key: &ClusterKey, from: NodeId, to: NodeId, nonces: [&Nonce; 2]) -> [Channel; 2] {
    ["session", "reply"].map(|label| Channel {
        key: key.derive(label, from, to, nonces),
        counter: 0,
    })
}

/// The dialer's side: server `from` proves itself to server `to` on `stream`, whose answers
/// must come within `limit`.
pub fn dial(
    stream: &TcpStream,
    key: &ClusterKey,
    from: NodeId,
    to: NodeId,
    limit: Duration,
) -> Result<Sealer, AuthError> {
    let mut out = stream;
    let mine: Nonce = rand::random();
    let hello = Handshake::Hello {
        cluster_id: key.cluster_id.clone(),
        from,
        to,
        nonce: mine,
    };
    write_frame(&mut out, FrameKind::PeerHandshake, &hello)?;
    let Handshake::Challenge { nonce: theirs } =
        read_frame(&mut Deadline::new(stream, limit), FrameKind::PeerHandshake)?
    else {
        return Err(AuthError::OutOfOrder);
    };
    let nonces = [&mine, &theirs];
    let proof = Handshake::Proof {
        tag: key.derive("hello", from, to, nonces),
    };
    write_frame(&mut out, FrameKind::PeerHandshake, &proof)?;
    let [channel, replies] = channels(key, from, to, nonces);
    Ok(Sealer {
        channel,
        replies,
        peer: to,
    })
}

/// The answering side: server `me` of a cluster of `servers` checks who dialled it on
/// `stream`, whose steps must come within `limit`.
pub fn answer(
    stream: &TcpStream,
    key: &ClusterKey,
    me: NodeId,
    servers: usize,
    limit: Duration,
) -> Result<Opener, AuthError> {
    let mut input = Deadline::new(stream, limit);
    let Handshake::Hello {
        cluster_id,
        from,
        to,
        nonce: theirs,
    } = read_frame(&mut input, FrameKind::PeerHandshake)?
    else {
        return Err(AuthError::OutOfOrder);
    };
    if cluster_id != key.cluster_id {
        return Err(AuthError::WrongCluster { found: cluster_id });
    }
    if to != me || !crate::types::is_peer(me, servers, from) {
        return Err(AuthError::NotAPeer {
            from,
            to,
            me,
            servers,
        });
    }
    let mine: Nonce = rand::random();
    let mut out = stream;
    write_frame(
        &mut out,
        FrameKind::PeerHandshake,
        &Handshake::Challenge { nonce: mine },
    )?;
    let Handshake::Proof { tag } = read_frame(&mut input, FrameKind::PeerHandshake)? else {
        return Err(AuthError::OutOfOrder);
    };
    let nonces = [&theirs, &mine];
    // `verify_slice` compares in constant time: timing must not tell a forger how close it is.
    key.keyed("hello", from, me, nonces)
        .verify_slice(&tag)
        .map_err(|_| AuthError::BadProof { claimed: from })?;
    let [channel, replies] = channels(key, from, me, nonces);
    Ok(Opener {
        channel,
        replies,
        peer: from,
        me,
    })
}
