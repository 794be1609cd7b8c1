//! TCP between servers, and the accept loops of both listening sockets.
//!
//! Each server has one outbound connection to each peer, owned by a [`PeerLink`] thread, and
//! accepts one inbound connection from each: a message travels on its sender's connection and
//! its reply on the replier's own. A link that fails drops the connection and the message and
//! reconnects on a later message: Raft resends whatever matters (heartbeats carry the log from
//! the follower's next index, elections repeat), so losing a message costs only time, and a
//! restarted peer is reached again within one reconnect pause. An InstallSnapshot is the
//! exception: it travels in chunks that each fit a frame and survives a lost connection
//! ([`super::chunks`], and [`Link`] for what a leader does when a follower falls behind during
//! a transfer).

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::kv::KvCommand;
use crate::message::{Envelope, Message};
use crate::types::{Index, NodeId, Snapshot, Term};

use super::auth::{self, AuthError, ClusterKey, Sealer};
use super::chunks::{
    heartbeat, transfer_for, ChunkError, Outgoing, Reassembly, Received, Transfers, MAX_REFUSALS,
};
use super::frame::{Deadline, FrameError};
use super::protocol::{PeerFrame, TransferId};
use super::{log, spawn_named, Event};

/// How long a link waits before trying a peer that refused a connection again. Messages meant
/// for it meanwhile are dropped rather than queued, so a dead peer costs no memory.
const RECONNECT_PAUSE: Duration = Duration::from_millis(100);
/// A connect or a write that takes this long means the peer is gone or stuck.
const IO_TIMEOUT: Duration = Duration::from_millis(500);
/// How long an inbound peer connection may take to deliver its next frame. A live leader sends
/// a heartbeat every 50 ms, and a link reconnects on its next message, so a silent connection
/// is dead or hostile.
const PEER_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest pause after a failed accept. Accept fails mostly for want of descriptors, which
/// only closing connections returns: retrying at once would spin.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// The sending end of the connection to one peer.
pub(crate) struct PeerLink {
    queue: Sender<Message<KvCommand>>,
    /// The link's [`Transfers`], as of its last change.
    transfers: Arc<Mutex<Transfers>>,
}

impl PeerLink {
    /// Starts the thread that carries `me`'s messages to `peer` at `addr`, on connections it
    /// opens with a handshake under `key`, with snapshots in chunks of `chunk_bytes`.
    pub(crate) fn spawn(
        me: NodeId,
        peer: NodeId,
        addr: SocketAddr,
        key: ClusterKey,
        chunk_bytes: usize,
    ) -> io::Result<PeerLink> {
        let (queue, messages) = mpsc::channel();
        let transfers = Arc::new(Mutex::new(Transfers::default()));
        let link = Link {
            connection: Connection {
                me,
                peer,
                addr,
                key,
                open: None,
                opened: 0,
                next_attempt: Instant::now(),
                down: false,
            },
            transfer: None,
            held: None,
            abandoned: None,
            too_large: None,
            published: Arc::clone(&transfers),
            chunk_bytes,
        };
        spawn_named(format!("link-{peer}"), move || link.carry(&messages))?;
        Ok(PeerLink { queue, transfers })
    }

    /// Hands `msg` to the link; it leaves the process when the link's thread writes it. An
    /// InstallSnapshot the link would begin no transfer for is replaced by its heartbeat here
    /// already, so that the snapshot's copy is dropped at once rather than queued behind a
    /// chunk exchange (the link decides again, on what it knows when it takes the message).
    pub(crate) fn send(&self, msg: Message<KvCommand>) {
        let msg = match msg {
            Message::InstallSnapshot { term, snapshot } => {
                let transfers = *self.transfers.lock().unwrap_or_else(|e| e.into_inner());
                match transfer_for(&transfers, term, &snapshot) {
                    Ok(None) => heartbeat(term, &snapshot),
                    _ => Message::InstallSnapshot { term, snapshot },
                }
            }
            msg => msg,
        };
        // The link thread only ends when this sender is dropped, so the send cannot fail.
        let _ = self.queue.send(msg);
    }
}

/// How long a link waits for the answer to a snapshot chunk. The receiver answers as soon as
/// it has added the chunk to what it holds, so an answer this late means the peer is gone or
/// stuck: the link drops the connection, and the transfer resumes on the next one.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of one link thread: its connection, and the snapshot it is sending, if any.
///
/// # What a leader does when a follower falls behind during a transfer
///
/// The core sends a follower that needs a snapshot the same InstallSnapshot at every heartbeat
/// until the follower acknowledges it, so that a lost one is retried. An InstallSnapshot
/// either begins a transfer or is sent as the heartbeat it stands for ([`heartbeat`]: an empty
/// AppendEntries whose previous entry is the snapshot's last), as [`Transfers::begins`]
/// decides. The same snapshot again, during its transfer or once the follower holds it, is that
/// heartbeat: the follower hears its leader throughout a transfer of any length (its election
/// timer restarts, its answer counts for CheckQuorum), and one that holds the snapshot answers
/// a success that ends the leader's wait even if its answer to the install was lost. If the
/// leader compacts again meanwhile and the core hands the link a newer snapshot, the link still
/// finishes the transfer in progress (once the follower holds any of it) and sends the newer
/// one's heartbeat; a transfer of which the follower holds nothing yet gives way. Abandoning
/// half a transfer whenever the leader compacts could starve a follower that is slower to
/// receive a snapshot than the leader is to take the next one. The follower installs the older
/// snapshot and acknowledges its last index; the leader's core, whose follower still lacks
/// entries it compacted, goes on sending the newer one at each heartbeat, and the link sends
/// that one next. A follower that falls behind by one compaction during a transfer so catches
/// up in two transfers, never in none. A leader deposed during a transfer finishes it too: the
/// follower's core judges the snapshot by the term it was sent in, as any message of that term
/// (refused if the follower has moved on to a later one).
///
/// Between two chunks the link writes every other message queued for the same peer
/// (heartbeats, votes), so a transfer never holds them back by more than one chunk.
struct Link {
    connection: Connection,
    transfer: Option<Outgoing>,
    /// The last transfer the peer said it holds whole, and the connection it said so on.
    held: Option<(TransferId, u64)>,
    /// The last transfer given up after repeated refusals: logged once, never begun again.
    abandoned: Option<TransferId>,
    /// The last snapshot index found over the limit, so that it is logged once, not at every
    /// heartbeat.
    too_large: Option<Index>,
    /// Where [`Link::transfers`] is published for [`PeerLink::send`].
    published: Arc<Mutex<Transfers>>,
    chunk_bytes: usize,
}

impl Link {
    /// The link thread: writes each message to the peer, and the chunks of a snapshot between
    /// them, until the core drops its end of `messages`.
    fn carry(mut self, messages: &Receiver<Message<KvCommand>>) {
        loop {
            let msg = match &self.transfer {
                // A chunk can go now: first every message queued meanwhile.
                Some(_) if self.connection.may_write() => match messages.try_recv() {
                    Ok(msg) => msg,
                    Err(TryRecvError::Empty) => {
                        self.send_chunk();
                        continue;
                    }
                    Err(TryRecvError::Disconnected) => return,
                },
                // The peer is unreachable until the reconnect pause ends.
                Some(_) => match messages.recv_timeout(self.connection.pause_left()) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match messages.recv() {
                    Ok(msg) => msg,
                    Err(_) => return,
                },
            };
            let msg = match msg {
                Message::InstallSnapshot { term, snapshot } => self.offer(term, snapshot),
                msg => Some(msg),
            };
            if let Some(msg) = msg {
                let (from, to) = (self.connection.me, self.connection.peer);
                let frame = PeerFrame::Message(Envelope { from, to, msg });
                self.connection.write(&frame);
            }
            self.publish();
        }
    }

    /// What the link knows of its transfers (see [`Transfers`]).
    fn transfers(&self) -> Transfers {
        let open = self
            .connection
            .open
            .is_some()
            .then_some(self.connection.opened);
        Transfers {
            sending: self.transfer.as_ref().map(Outgoing::progress),
            held: (self.held).and_then(|(id, on)| (Some(on) == open).then_some(id)),
            abandoned: self.abandoned,
        }
    }

    fn publish(&self) {
        let transfers = self.transfers();
        *self.published.lock().unwrap_or_else(|e| e.into_inner()) = transfers;
    }

    /// The core asks for `snapshot` to be sent: it becomes the transfer if it begins one, and
    /// the message to send is its heartbeat if not (see [`Link`]). One over the limit is
    /// logged once, and sent as its heartbeat too: the follower cannot be sent it, and should
    /// still hear its leader.
    fn offer(&mut self, term: Term, snapshot: Snapshot) -> Option<Message<KvCommand>> {
        match transfer_for(&self.transfers(), term, &snapshot) {
            Ok(Some(id)) => self.transfer = Some(Outgoing::begin(id, snapshot)),
            Ok(None) => return Some(heartbeat(term, &snapshot)),
            Err(e) => {
                let index = snapshot.last_index;
                if self.too_large != Some(index) {
                    self.too_large = Some(index);
                    let peer = self.connection.peer;
                    let line = format_args!("cannot send the snapshot at {index} to {peer}: {e}");
                    log(self.connection.me, line);
                }
                return Some(heartbeat(term, &snapshot));
            }
        }
        None
    }

    /// Sends the transfer's next chunk and takes the receiver's answer; the transfer ends once
    /// the receiver holds all of it. A failure drops the connection, not the transfer.
    fn send_chunk(&mut self) {
        let Some(transfer) = &mut self.transfer else {
            return;
        };
        let chunk_bytes = self.chunk_bytes;
        let sent = self.connection.exchange(|stream, sealer, opened| {
            let chunk = transfer.next_chunk(chunk_bytes, opened);
            sealer.send(stream, &PeerFrame::Chunk(chunk))?;
            let ack = sealer.read_ack(&mut Deadline::new(stream, ACK_TIMEOUT))?;
            Ok(transfer.acknowledged(ack, opened)?)
        });
        let (id, _) = transfer.progress();
        match sent {
            Some(Ok(true)) => {
                self.held = Some((id, self.connection.opened));
                self.transfer = None;
            }
            Some(Err(e)) if e.is_refusal() && transfer.refused() => {
                let (me, peer) = (self.connection.me, self.connection.peer);
                let line = format_args!(
                    "gave up sending the snapshot at {} to {peer}: it refused a chunk {MAX_REFUSALS} times in a row (the last: {e})",
                    id.last_index
                );
                log(me, line);
                self.abandoned = Some(id);
                self.transfer = None;
            }
            _ => {}
        }
        self.publish();
    }
}

/// Why a link dropped its connection.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
}

impl LinkError {
    /// Whether the peer refused the chunk just sent: it closed the connection instead of
    /// answering (as a receiver does with a chunk it refuses), or answered something that is
    /// not an answer to it. A timeout is not one: the peer may be only slow.
    fn is_refusal(&self) -> bool {
        matches!(
            self,
            LinkError::Chunk(_) | LinkError::Auth(AuthError::Frame(FrameError::Closed))
        )
    }
}

/// A link's connection to its peer, (re)opened on demand.
struct Connection {
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    key: ClusterKey,
    open: Option<(TcpStream, Sealer)>,
    /// How many connections this link opened: names the current one.
    opened: u64,
    next_attempt: Instant,
    /// Whether the last attempt failed, so that a dead peer is logged once, not ten times a
    /// second.
    down: bool,
}

impl Connection {
    /// Whether a write may go now: a connection is open, or the pause after a failed attempt
    /// is over.
    fn may_write(&self) -> bool {
        self.open.is_some() || Instant::now() >= self.next_attempt
    }

    /// How long until a write may go again.
    fn pause_left(&self) -> Duration {
        self.next_attempt.saturating_duration_since(Instant::now())
    }

    /// Writes `frame`, or drops it if the peer cannot be reached now.
    fn write(&mut self, frame: &PeerFrame) {
        self.exchange(|stream, sealer, _| Ok(sealer.send(stream, frame)?));
    }

    /// Runs `exchange` on the open connection, opening one if needed, and returns what it
    /// returned; `None` if the peer cannot be reached now. A failed exchange drops the
    /// connection, and the next attempt waits for the reconnect pause, as after a failed
    /// connect: a peer that closes every connection on the first chunk is not redialled in a
    /// tight loop. `exchange` gets the number of the connection.
    fn exchange<T>(
        &mut self,
        exchange: impl FnOnce(&mut TcpStream, &mut Sealer, u64) -> Result<T, LinkError>,
    ) -> Option<Result<T, LinkError>> {
        let (me, peer, addr) = (self.me, self.peer, self.addr);
        let (stream, sealer) = match &mut self.open {
            Some(conn) => conn,
            None if Instant::now() < self.next_attempt => return None,
            None => match open(me, peer, addr, &self.key) {
                Ok(conn) => {
                    if self.down {
                        log(me, format_args!("reconnected to server {peer} at {addr}"));
                    }
                    self.down = false;
                    self.opened += 1;
                    self.open.insert(conn)
                }
                Err(e) => {
                    if !self.down {
                        log(me, format_args!("server {peer} at {addr} unreachable: {e}"));
                    }
                    self.down = true;
                    self.next_attempt = Instant::now() + RECONNECT_PAUSE;
                    return None;
                }
            },
        };
        let result = exchange(stream, sealer, self.opened);
        if let Err(e) = &result {
            log(me, format_args!("lost connection to server {peer}: {e}"));
            self.open = None;
            self.next_attempt = Instant::now() + RECONNECT_PAUSE;
        }
        Some(result)
    }
}

/// A connection to `peer` at `addr`, opened with the handshake.
fn open(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    key: &ClusterKey,
) -> Result<(TcpStream, Sealer), AuthError> {
    let stream = connect(addr).map_err(FrameError::from)?;
    let sealer = auth::dial(&stream, key, me, peer, IO_TIMEOUT)?;
    Ok((stream, sealer))
}

/// A connection with the timeouts and the no-delay every runtime connection uses: Raft's and
/// the clients' messages are small and latency-bound.
pub(crate) fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// How long a write to an accepted connection may make no progress: a client that takes no
/// byte of its reply for this long has stopped reading (twice a clerk's attempt timeout, after
/// which the clerk has given up on the reply anyway), and its thread must not wait on it.
const ACCEPTED_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Accepts connections on `listener` for ever, each served on its own thread by `serve`, at
/// most `max_connections` at a time. Threads, descriptors and unfinished frames are so bounded
/// per port, which keeps a flood of connections from starving the write-ahead log of a
/// descriptor. A failed accept is retried after a pause that doubles up to
/// [`MAX_ACCEPT_BACKOFF`].
///
/// When the port is full, a new connection is admitted by closing the least recently active
/// one (see [`Port`]), not refused: refusing the newcomer lets whoever holds the slots, idle or
/// sending one byte a second, keep every other client out, while an active client's connection
/// is never the least recently active for long. A closed victim's thread may take a moment to
/// notice (it may be waiting for the core's answer); until it has, it still counts, and at
/// twice `max_connections` new connections are closed at once.
pub(crate) fn spawn_acceptor(
    me: NodeId,
    name: &str,
    listener: TcpListener,
    max_connections: usize,
    serve: impl Fn(&TcpStream, Activity) + Clone + Send + 'static,
) -> io::Result<()> {
    let prefix = name.to_string();
    let port = Arc::new(Port::default());
    spawn_named(format!("{name}-accept"), move || {
        let mut backoff = Duration::ZERO;
        for conn in listener.incoming() {
            let stream = match conn {
                Ok(stream) => stream,
                Err(e) => {
                    backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                    log(
                        me,
                        format_args!("{prefix}: accept failed: {e}; pausing {backoff:?}"),
                    );
                    thread::sleep(backoff);
                    continue;
                }
            };
            backoff = Duration::ZERO;
            // Before admission: a connection dropped here must not cost another its slot.
            if let Err(e) = stream.set_write_timeout(Some(ACCEPTED_WRITE_TIMEOUT)) {
                Port::log(
                    &port.admissions,
                    me,
                    format_args!("{prefix}: cannot set a write timeout: {e}"),
                );
                continue;
            }
            let Some((stream, activity, evicted)) = port.admit(stream, max_connections) else {
                Port::log(&port.admissions, me, format_args!("{prefix}: {max_connections} connections open and as many closing, or none that may be closed; closing a new one"));
                continue;
            };
            if evicted {
                Port::log(
                    &port.admissions,
                    me,
                    format_args!("{prefix}: {max_connections} connections open; closing the least recently active for a new one"),
                );
            }
            let serve = serve.clone();
            let served = spawn_named(format!("{prefix}-conn"), move || serve(&stream, activity));
            if let Err(e) = served {
                log(me, format_args!("{prefix}: cannot start a thread: {e}"));
            }
        }
    })
}

/// How many lines of each kind (admissions, connections ending in an error) a port logs in each
/// [`LOG_INTERVAL`]: a flood of connections closes thousands a second, and a line for each would
/// bury the rest of the log, while the first few of an incident say what it is.
const LOG_BURST: u64 = 10;
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// The lines one port may log: the first [`LOG_BURST`] of each [`LOG_INTERVAL`]; the first line
/// of an interval counts those held back in the intervals before it.
#[derive(Default)]
struct LogLimit {
    interval: Option<Instant>,
    logged: u64,
    held_back: u64,
}

impl LogLimit {
    /// Whether a line may be logged `now`, and if so, how many were held back before it.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        let current = self
            .interval
            .is_some_and(|start| now.saturating_duration_since(start) < LOG_INTERVAL);
        if !current {
            self.interval = Some(now);
            self.logged = 0;
        }
        if self.logged == LOG_BURST {
            self.held_back += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.held_back))
    }
}

/// The connections one port holds, each stamped with the tick of its last completed exchange
/// (or of its admission), so that a full port can close the least recently active.
#[derive(Default)]
struct Port {
    open: Mutex<Vec<Open>>,
    /// Advances at every admission and every completed frame: an order, not a time.
    clock: AtomicU64,
    next_id: AtomicU64,
    /// Lines on admission: the connections closed to make room or refused.
    admissions: Mutex<LogLimit>,
    /// Lines on the connections that ended in an error.
    closes: Mutex<LogLimit>,
}

struct Open {
    id: u64,
    stream: Arc<TcpStream>,
    last: Arc<AtomicU64>,
    /// A peer proved to be a server of the cluster on it: it is never closed to make room.
    authenticated: Arc<AtomicBool>,
    /// Shut down to make room; its thread has not ended yet.
    evicted: bool,
}

impl Port {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Logs `line` unless `limit` held [`LOG_BURST`] lines in this [`LOG_INTERVAL`]; a line
    /// says how many were held back before it, if any.
    fn log(limit: &Mutex<LogLimit>, me: NodeId, line: std::fmt::Arguments) {
        let allowed = limit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(Instant::now());
        match allowed {
            Some(0) => log(me, line),
            Some(held_back) => log(
                me,
                format_args!("{line} (and {held_back} such lines held back since the last)"),
            ),
            None => {}
        }
    }

    /// Registers `stream`, first closing the least recently active connection if `max` are
    /// open: the stream, its activity handle and whether a connection was closed for it. `None`
    /// (the stream is dropped) if `2 * max` are still open, evicted ones included, or if every
    /// open connection is an authenticated peer's.
    ///
    /// An authenticated peer link is never the victim: unauthenticated churn on the peer port,
    /// which needs no secret, would otherwise close the links the cluster runs on. At most one
    /// inbound link per other server is live (plus, briefly, one a peer replaced), so with
    /// `max` above that, room is made by closing connections still in their handshake.
    fn admit(
        self: &Arc<Port>,
        stream: TcpStream,
        max: usize,
    ) -> Option<(Arc<TcpStream>, Activity, bool)> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.len() >= max.saturating_mul(2) {
            return None;
        }
        let live = open.iter().filter(|c| !c.evicted).count();
        let evicted = live >= max;
        if evicted {
            let victim = open
                .iter_mut()
                .filter(|c| !c.evicted && !c.authenticated.load(Ordering::Relaxed))
                .min_by_key(|c| c.last.load(Ordering::Relaxed))?;
            // Wakes its thread from a read or a write; it then ends and deregisters.
            let _ = victim.stream.shutdown(Shutdown::Both);
            victim.evicted = true;
        }
        let stream = Arc::new(stream);
        let last = Arc::new(AtomicU64::new(self.tick()));
        let authenticated = Arc::new(AtomicBool::new(false));
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        open.push(Open {
            id,
            stream: Arc::clone(&stream),
            last: Arc::clone(&last),
            authenticated: Arc::clone(&authenticated),
            evicted: false,
        });
        let activity = Activity {
            port: Arc::clone(self),
            id,
            last,
            authenticated,
        };
        Some((stream, activity, evicted))
    }
}

/// One admitted connection's place in its port: its thread marks each completed exchange with
/// [`Activity::touch`], and dropping it (when the thread ends) deregisters the connection.
pub(crate) struct Activity {
    port: Arc<Port>,
    id: u64,
    last: Arc<AtomicU64>,
    authenticated: Arc<AtomicBool>,
}

impl Activity {
    /// The connection just completed a frame: it is now the most recently active.
    pub(crate) fn touch(&self) {
        self.last.store(self.port.tick(), Ordering::Relaxed);
    }

    /// The connection's request is with the core: until the next [`Activity::touch`] (made as
    /// soon as the answer is back, before it is written) it counts as more recent than any
    /// connection that is not. Without this, a request whose commit is slow (a loaded machine,
    /// an election) left its connection the least recently active once enough newcomers were
    /// admitted meanwhile, and a flood of idle connections closed the very client being served.
    /// The core settles or fails a request within the server's request timeout, so no
    /// connection stays busy for longer. When every connection is busy, the tie goes to the
    /// oldest admitted.
    pub(crate) fn busy(&self) {
        self.last.store(u64::MAX, Ordering::Relaxed);
    }

    /// The connection's peer proved to be a server of the cluster: the port never closes it to
    /// make room.
    pub(crate) fn authenticated(&self) {
        self.authenticated.store(true, Ordering::Relaxed);
    }

    /// Logs a line about the connection's closing, as its port's other such lines are: at most
    /// [`LOG_BURST`] a second.
    pub(crate) fn log_close(&self, me: NodeId, line: std::fmt::Arguments) {
        Port::log(&self.port.closes, me, line);
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        let mut open = self.port.open.lock().unwrap_or_else(|e| e.into_inner());
        open.retain(|c| c.id != self.id);
    }
}

/// Serves one inbound connection from a peer: after the handshake under `key`, every message
/// goes to the core, and every snapshot chunk to `reassembly` (answered on the same connection,
/// the snapshot going to the core once whole), until the peer closes it or sends something that
/// is not a well-formed, authentic message or chunk from the peer it proved to be to this server.
pub(crate) fn serve_peer(
    me: NodeId,
    servers: usize,
    key: &ClusterKey,
    stream: &TcpStream,
    activity: Activity,
    events: Sender<Event>,
    reassembly: &Reassembly,
) {
    let addr = stream
        .peer_addr()
        .map_or("?".to_string(), |a| a.to_string());
    let result: Result<(), LinkError> = (|| {
        let mut opener = auth::answer(stream, key, me, servers, IO_TIMEOUT)?;
        activity.authenticated();
        activity.touch();
        let from = opener.peer();
        let connection = reassembly.connection();
        loop {
            let frame = opener.receive(&mut Deadline::new(stream, PEER_FRAME_TIMEOUT))?;
            activity.touch();
            let (msg, ack) = match frame {
                PeerFrame::Message(envelope) => (Some(envelope.msg), None),
                PeerFrame::Chunk(chunk) => match reassembly.receive(from, chunk, connection)? {
                    Received::Held(ack) => (None, Some(ack)),
                    Received::Complete(ack, msg) => (Some(msg), Some(ack)),
                },
            };
            if let Some(msg) = msg {
                if events.send(Event::Peer { from, msg }).is_err() {
                    return Ok(());
                }
            }
            if let Some(ack) = ack {
                opener.acknowledge(&mut &*stream, &ack)?;
            }
        }
    })();
    match result {
        Ok(()) | Err(LinkError::Auth(AuthError::Frame(FrameError::Closed))) => {}
        Err(e) => activity.log_close(me, format_args!("closing peer connection from {addr}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::runtime::protocol::{ChunkAck, SnapshotChunk};

    /// `count` connected pairs on loopback: the accepted ends and the dialled ends.
    fn pairs(count: usize) -> (Vec<TcpStream>, Vec<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        (0..count)
            .map(|_| {
                let dialled = TcpStream::connect(addr).unwrap();
                (listener.accept().unwrap().0, dialled)
            })
            .unzip()
    }

    /// Whether the server closed the dialled end's connection.
    fn closed(dialled: &mut TcpStream) -> bool {
        dialled
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        matches!(dialled.read(&mut [0]), Ok(0))
    }

    #[test]
    fn a_full_port_closes_its_least_recently_active_connection_for_a_new_one() {
        let port = Arc::new(Port::default());
        let (accepted, mut dialled) = pairs(6);
        let mut accepted = accepted.into_iter();
        let mut admit = |max| port.admit(accepted.next().unwrap(), max);
        let mut open: Vec<_> = (0..3).map(|_| admit(3).unwrap()).collect();
        assert!(open.iter().all(|(_, _, evicted)| !evicted));
        // The first is active since: the second is now the least recently active.
        open[0].1.touch();
        let fourth = admit(3).unwrap();
        assert!(fourth.2, "a connection was closed for the fourth");
        assert!(
            closed(&mut dialled[1]),
            "the least recently active is closed"
        );
        assert!(!closed(&mut dialled[0]), "an active one is kept");
        // Until its thread ends, the closed one still counts: with a limit of 2, four open
        // connections are twice the limit, and a new one is refused.
        assert!(admit(2).is_none());
        drop(open.remove(1));
        // Now the third, admitted before the fourth and never active, makes room.
        assert!(admit(2).is_some_and(|(_, _, evicted)| evicted));
        assert!(closed(&mut dialled[2]));
        assert!(!closed(&mut dialled[3]));
    }

    /// However long an authenticated peer link is idle and however many connections arrive
    /// after it, the port never closes it to make room; when only authenticated links are left
    /// to close, a new connection is refused instead.
    #[test]
    fn an_authenticated_link_is_never_closed_to_make_room() {
        let port = Arc::new(Port::default());
        let (accepted, mut dialled) = pairs(6);
        let mut accepted = accepted.into_iter();
        let mut admit = |max| port.admit(accepted.next().unwrap(), max);
        // The first, the least recently active, is an authenticated peer's link.
        let link = admit(2).unwrap();
        link.1.authenticated();
        let second = admit(2).unwrap();
        let third = admit(2).unwrap();
        assert!(
            closed(&mut dialled[1]),
            "the connection in its handshake is closed"
        );
        assert!(!closed(&mut dialled[0]), "the authenticated link is kept");
        let fourth = admit(2).unwrap();
        assert!(closed(&mut dialled[2]));
        assert!(
            !closed(&mut dialled[0]),
            "the authenticated link is still kept"
        );
        // The closed ones' threads end; the fourth authenticates too. A new connection then
        // finds nothing it may close, and is refused.
        drop((second, third));
        fourth.1.authenticated();
        assert!(admit(2).is_none(), "nothing that may be closed");
        assert!(!closed(&mut dialled[0]) && !closed(&mut dialled[3]));
    }

    /// A fake peer for one link: it answers the link's handshakes and acknowledges chunks as
    /// the test says.
    struct FakePeer {
        listener: TcpListener,
        key: ClusterKey,
    }

    /// A link from server 0 to a fake server 1, with chunks of 1 000 bytes.
    fn link_to_fake_peer() -> (PeerLink, FakePeer) {
        let key = ClusterKey::new(b"0123456789abcdef".to_vec(), "test".into()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let link = PeerLink::spawn(0, 1, addr, key.clone(), 1_000).unwrap();
        (link, FakePeer { listener, key })
    }

    /// The link's next connection, its handshake answered.
    struct PeerConn {
        conn: TcpStream,
        opener: auth::Opener,
    }

    impl FakePeer {
        fn accept(&self) -> PeerConn {
            let (conn, _) = self.listener.accept().unwrap();
            let opener = auth::answer(&conn, &self.key, 1, 2, IO_TIMEOUT).unwrap();
            PeerConn { conn, opener }
        }

        /// The link's next connection, as the core would get it: by resending `msg` (every
        /// 20 ms) until the link's reconnect pause is over and it reconnects to send it.
        fn accept_resending(&self, link: &PeerLink, msg: Message<KvCommand>) -> PeerConn {
            self.listener.set_nonblocking(true).unwrap();
            let (conn, _) = loop {
                link.send(msg.clone());
                match self.listener.accept() {
                    Ok(accepted) => break accepted,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => panic!("{e}"),
                }
            };
            self.listener.set_nonblocking(false).unwrap();
            conn.set_nonblocking(false).unwrap();
            let opener = auth::answer(&conn, &self.key, 1, 2, IO_TIMEOUT).unwrap();
            PeerConn { conn, opener }
        }
    }

    impl PeerConn {
        fn next_frame(&mut self) -> PeerFrame {
            (self.opener)
                .receive(&mut Deadline::new(&self.conn, Duration::from_secs(10)))
                .unwrap()
        }

        fn next_chunk(&mut self) -> SnapshotChunk {
            match self.next_frame() {
                PeerFrame::Chunk(chunk) => chunk,
                other => panic!("a chunk expected, not {other:?}"),
            }
        }

        fn next_message(&mut self) -> Message<KvCommand> {
            match self.next_frame() {
                PeerFrame::Message(envelope) => envelope.msg,
                other => panic!("a message expected, not {other:?}"),
            }
        }

        /// Acknowledges `chunk` as held, with all before it.
        fn ack(&mut self, chunk: &SnapshotChunk) {
            let held = chunk.offset + chunk.data.len() as u64;
            let ack = ChunkAck {
                transfer: chunk.transfer,
                held,
            };
            self.opener.acknowledge(&mut &self.conn, &ack).unwrap();
        }

        /// Takes chunks of `last_index` from `offset` to `total` bytes.
        fn take_chunks(&mut self, last_index: Index, mut offset: u64, total: u64) {
            while offset < total {
                let chunk = self.next_chunk();
                assert_eq!(
                    (chunk.transfer.last_index, chunk.offset),
                    (last_index, offset)
                );
                self.ack(&chunk);
                offset += chunk.data.len() as u64;
            }
        }
    }

    fn snapshot(last_index: Index, len: usize) -> Snapshot {
        Snapshot {
            last_index,
            last_term: 1,
            data: vec![last_index as u8; len],
        }
    }

    fn install(snapshot: Snapshot) -> Message<KvCommand> {
        Message::InstallSnapshot { term: 2, snapshot }
    }

    fn vote() -> Message<KvCommand> {
        Message::RequestVote {
            term: 2,
            last_log_index: 9,
            last_log_term: 1,
        }
    }

    /// The heartbeat an InstallSnapshot of term 2 stands for.
    fn heartbeat_at(last_index: Index) -> Message<KvCommand> {
        Message::AppendEntries(crate::message::AppendEntries {
            term: 2,
            prev_log_index: last_index,
            prev_log_term: 1,
            entries: Vec::new(),
            leader_commit: last_index,
        })
    }

    /// A link sending a snapshot in chunks to a fake peer that acknowledges them at the pace
    /// the test sets: a message queued during the transfer goes out before the next chunk,
    /// and a newer snapshot handed over once the peer holds part of the first is not sent in
    /// its place: its heartbeat is.
    #[test]
    fn a_link_interleaves_messages_with_chunks_and_finishes_the_transfer_in_progress() {
        let (link, peer) = link_to_fake_peer();
        link.send(install(snapshot(10, 5_000)));
        let mut conn = peer.accept();
        let ask = conn.next_chunk();
        assert_eq!((ask.offset, ask.data.len()), (0, 0), "the first chunk asks");
        conn.ack(&ask);
        let first = conn.next_chunk();
        assert_eq!((first.offset, first.data.len()), (0, 1_000));
        // Queued before the chunk is acknowledged: they go out before the next chunk, and the
        // newer snapshot does not replace the transfer the peer holds part of.
        link.send(vote());
        link.send(install(snapshot(20, 3_000)));
        conn.ack(&first);
        assert_eq!(
            conn.next_message(),
            vote(),
            "the vote before the next chunk"
        );
        assert_eq!(
            conn.next_message(),
            heartbeat_at(20),
            "the newer one's heartbeat"
        );
        conn.take_chunks(10, 1_000, 5_000);
        // The transfer is over and the newer snapshot was not begun: the next frame is the
        // next message.
        link.send(vote());
        assert_eq!(
            conn.next_message(),
            vote(),
            "no chunk of the newer snapshot"
        );
    }

    /// The core resends the snapshot at every heartbeat while the follower receives it: each
    /// resend is sent as the heartbeat it stands for, between two chunks, so the follower's
    /// core keeps hearing its leader; the transfer goes on where it was.
    #[test]
    fn a_resend_during_the_transfer_is_sent_as_its_heartbeat() {
        let (link, peer) = link_to_fake_peer();
        link.send(install(snapshot(10, 3_000)));
        let mut conn = peer.accept();
        let ask = conn.next_chunk();
        conn.ack(&ask);
        let first = conn.next_chunk();
        link.send(install(snapshot(10, 3_000)));
        link.send(install(snapshot(10, 3_000)));
        conn.ack(&first);
        assert_eq!(conn.next_message(), heartbeat_at(10));
        assert_eq!(conn.next_message(), heartbeat_at(10));
        conn.take_chunks(10, 1_000, 3_000);
    }

    /// A follower whose answer to the install was lost is sent the snapshot again by its
    /// leader's core: the peer holds that transfer whole, so the link sends the heartbeat, to
    /// which the follower's core answers (a success: it ends the leader's wait), and no chunk.
    /// On a new connection the peer is asked first, since it may have restarted and lost it.
    #[test]
    fn a_repeat_of_a_completed_transfer_is_sent_as_its_heartbeat() {
        let (link, peer) = link_to_fake_peer();
        link.send(install(snapshot(10, 2_000)));
        let mut conn = peer.accept();
        let ask = conn.next_chunk();
        conn.ack(&ask);
        conn.take_chunks(10, 0, 2_000);
        link.send(install(snapshot(10, 2_000)));
        assert_eq!(conn.next_message(), heartbeat_at(10));
        link.send(vote());
        assert_eq!(conn.next_message(), vote(), "and no chunk");
        // The connection is lost: the repeat begins with a question, and the peer, which
        // restarted, holds nothing of it. (The core resends the snapshot until the link
        // reconnects; a resend written before the link noticed the loss is lost with it.)
        drop(conn);
        let mut conn = peer.accept_resending(&link, install(snapshot(10, 2_000)));
        // Resends queued after the transfer began are its heartbeats.
        let mut offset = 0;
        let mut asked = false;
        while offset < 2_000 {
            match conn.next_frame() {
                PeerFrame::Message(msg) => assert_eq!(msg.msg, heartbeat_at(10)),
                PeerFrame::Chunk(chunk) => {
                    assert_eq!((chunk.transfer.last_index, chunk.offset), (10, offset));
                    assert!(asked || chunk.data.is_empty(), "it asks first");
                    asked = true;
                    conn.ack(&chunk);
                    offset += chunk.data.len() as u64;
                }
            }
        }
    }

    /// A peer that closes the connection at each chunk instead of answering (as a receiver does
    /// with a chunk it refuses) makes the link give the transfer up after the third: then the
    /// snapshot is sent as its heartbeat, and never begun again.
    #[test]
    fn a_link_gives_a_transfer_up_after_three_refusals() {
        let (link, peer) = link_to_fake_peer();
        link.send(install(snapshot(10, 2_000)));
        for _ in 0..MAX_REFUSALS {
            let mut conn = peer.accept();
            let ask = conn.next_chunk();
            conn.ack(&ask);
            let data = conn.next_chunk();
            assert_eq!((data.offset, data.data.len()), (0, 1_000));
            drop(conn);
        }
        let mut conn = peer.accept_resending(&link, install(snapshot(10, 2_000)));
        assert_eq!(conn.next_message(), heartbeat_at(10), "given up");
        // A transfer still pending would send its first chunk as soon as the link's queue is
        // empty, which it is between these resends.
        for _ in 0..5 {
            thread::sleep(Duration::from_millis(20));
            link.send(install(snapshot(10, 2_000)));
            assert_eq!(conn.next_message(), heartbeat_at(10), "never begun again");
        }
    }

    /// A failed exchange sets the reconnect pause, as a failed connect does: the next attempt
    /// waits for it.
    #[test]
    fn a_failed_exchange_pauses_before_the_next_attempt() {
        let (_link, peer) = link_to_fake_peer();
        let addr = peer.listener.local_addr().unwrap();
        let mut connection = Connection {
            me: 0,
            peer: 1,
            addr,
            key: peer.key.clone(),
            open: None,
            opened: 0,
            next_attempt: Instant::now(),
            down: false,
        };
        let accepted = thread::spawn(move || drop(peer.accept()));
        let before = Instant::now();
        let failed: Option<Result<(), LinkError>> = connection
            .exchange(|_, _, _| Err(LinkError::Auth(AuthError::Frame(FrameError::Closed))));
        assert!(matches!(failed, Some(Err(_))));
        assert!(connection.open.is_none());
        assert!(
            connection.next_attempt >= before + RECONNECT_PAUSE,
            "the next attempt waits"
        );
        accepted.join().unwrap();
    }

    /// What the server hands a link is decided before it is queued: an InstallSnapshot the
    /// link would begin no transfer for is queued as its heartbeat, and the snapshot's copy
    /// dropped at once.
    #[test]
    fn an_install_the_link_would_not_begin_is_queued_as_its_heartbeat() {
        let (queue, messages) = mpsc::channel();
        let link = PeerLink {
            queue,
            transfers: Arc::new(Mutex::new(Transfers::default())),
        };
        link.send(install(snapshot(10, 2_000)));
        assert_eq!(messages.try_recv().unwrap(), install(snapshot(10, 2_000)));
        let id = TransferId {
            term: 2,
            last_index: 10,
            last_term: 1,
            total_len: 2_000,
        };
        *link.transfers.lock().unwrap() = Transfers {
            sending: Some((id, false)),
            ..Transfers::default()
        };
        link.send(install(snapshot(10, 2_000)));
        assert_eq!(
            messages.try_recv().unwrap(),
            heartbeat_at(10),
            "in progress"
        );
        *link.transfers.lock().unwrap() = Transfers {
            held: Some(id),
            ..Transfers::default()
        };
        link.send(install(snapshot(10, 2_000)));
        assert_eq!(messages.try_recv().unwrap(), heartbeat_at(10), "held whole");
        link.send(install(snapshot(20, 2_000)));
        assert_eq!(
            messages.try_recv().unwrap(),
            install(snapshot(20, 2_000)),
            "a newer one"
        );
    }

    #[test]
    fn a_port_logs_at_most_a_burst_of_lines_a_second_and_counts_those_held_back() {
        let mut limit = LogLimit::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let first: Vec<_> = (0..2_000).map(|i| limit.allow(at(i / 2))).collect();
        assert_eq!(
            first.iter().filter(|a| a.is_some()).count() as u64,
            LOG_BURST,
            "a burst in the first second"
        );
        assert!(first[..LOG_BURST as usize].iter().all(|a| *a == Some(0)));
        assert_eq!(
            limit.allow(at(1_000)),
            Some(2_000 - LOG_BURST),
            "then the next second's first line, with the count"
        );
        assert_eq!(limit.allow(at(1_001)), Some(0));
    }
}
