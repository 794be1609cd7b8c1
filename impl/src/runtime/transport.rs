//! TCP between servers, and the accept loops of both listening sockets.
//!
//! Each server has one outbound connection to each peer, owned by a [`PeerLink`] thread, and
//! accepts one inbound connection from each: a message travels on its sender's connection and
//! its reply on the replier's own. A link that fails drops the connection and the message and
//! reconnects on a later message: Raft resends whatever matters (heartbeats carry the log from
//! the follower's next index, elections repeat), so losing a message costs only time, and a
//! restarted peer is reached again within one reconnect pause.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::frame::FrameError;
use crate::kv::KvCommand;
use crate::message::{Envelope, Message};
use crate::types::NodeId;

use super::auth::{self, AuthError, ClusterKey, Sealer};
use super::frame::Deadline;
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
}

impl PeerLink {
    /// Starts the thread that carries `me`'s messages to `peer` at `addr`, on connections it
    /// opens with a handshake under `key`.
    pub(crate) fn spawn(
        me: NodeId,
        peer: NodeId,
        addr: SocketAddr,
        key: ClusterKey,
    ) -> io::Result<PeerLink> {
        let (queue, messages) = mpsc::channel();
        spawn_named(format!("link-{peer}"), move || {
            carry(me, peer, addr, &key, messages)
        })?;
        Ok(PeerLink { queue })
    }

    /// Hands `msg` to the link; it leaves the process when the link's thread writes it.
    pub(crate) fn send(&self, msg: Message<KvCommand>) {
        // The link thread only ends when this sender is dropped, so the send cannot fail.
        let _ = self.queue.send(msg);
    }
}

/// The link thread: writes each message to the peer, (re)connecting as needed.
fn carry(
    me: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    key: &ClusterKey,
    messages: Receiver<Message<KvCommand>>,
) {
    let mut stream: Option<(TcpStream, Sealer)> = None;
    let mut next_attempt = Instant::now();
    // Whether the last attempt failed, so that a dead peer is logged once, not ten times a second.
    let mut down = false;
    for msg in messages {
        let conn = match &mut stream {
            Some(conn) => conn,
            None if Instant::now() < next_attempt => continue,
            None => match open(me, peer, addr, key) {
                Ok(conn) => {
                    if down {
                        log(me, format_args!("reconnected to server {peer} at {addr}"));
                    }
                    down = false;
                    stream.insert(conn)
                }
                Err(e) => {
                    if !down {
                        log(me, format_args!("server {peer} at {addr} unreachable: {e}"));
                    }
                    down = true;
                    next_attempt = Instant::now() + RECONNECT_PAUSE;
                    continue;
                }
            },
        };
        let envelope = Envelope {
            from: me,
            to: peer,
            msg,
        };
        let (conn, sealer) = conn;
        if let Err(e) = sealer.write_message(conn, &envelope) {
            log(me, format_args!("lost connection to server {peer}: {e}"));
            stream = None;
        }
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

/// Accepts connections on `listener` for ever, each served on its own thread by `serve`, at
/// most `max_connections` at a time: one more is closed at once. Threads and descriptors are
/// so bounded per port, which keeps a flood of connections from starving the write-ahead log of
/// a descriptor. A failed accept is retried after a pause that doubles up to
/// [`MAX_ACCEPT_BACKOFF`].
pub(crate) fn spawn_acceptor(
    me: NodeId,
    name: &str,
    listener: TcpListener,
    max_connections: usize,
    serve: impl Fn(TcpStream) + Clone + Send + 'static,
) -> io::Result<()> {
    let prefix = name.to_string();
    let open = Arc::new(AtomicUsize::new(0));
    spawn_named(format!("{name}-accept"), move || {
        let mut backoff = Duration::ZERO;
        // Whether the limit was hit since it was last logged, so that a flood logs once.
        let mut full = false;
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
            if open.load(Ordering::Acquire) >= max_connections {
                if !full {
                    log(
                        me,
                        format_args!(
                            "{prefix}: {max_connections} connections open; closing new ones"
                        ),
                    );
                }
                full = true;
                continue;
            }
            full = false;
            let slot = Slot::take(&open);
            let serve = serve.clone();
            let served = spawn_named(format!("{prefix}-conn"), move || {
                let _slot = slot;
                serve(stream)
            });
            if let Err(e) = served {
                log(me, format_args!("{prefix}: cannot start a thread: {e}"));
            }
        }
    })
}

/// One open connection's place in its port's count, given back when the connection's thread
/// ends (or was never started).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>) -> Slot {
        open.fetch_add(1, Ordering::AcqRel);
        Slot(Arc::clone(open))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one inbound connection from a peer: after the handshake under `key`, every message
/// goes to the core, until the peer closes it or sends something that is not a well-formed,
/// authentic message from the peer it proved to be to this server.
pub(crate) fn serve_peer(
    me: NodeId,
    servers: usize,
    key: &ClusterKey,
    stream: TcpStream,
    events: Sender<Event>,
) {
    let addr = stream
        .peer_addr()
        .map_or("?".to_string(), |a| a.to_string());
    let result: Result<(), AuthError> = (|| {
        let mut opener = auth::answer(&stream, key, me, servers, IO_TIMEOUT)?;
        loop {
            let envelope = opener.read_message(&mut Deadline::new(&stream, PEER_FRAME_TIMEOUT))?;
            let (from, msg) = (envelope.from, envelope.msg);
            if events.send(Event::Peer { from, msg }).is_err() {
                return Ok(());
            }
        }
    })();
    match result {
        Ok(()) | Err(AuthError::Frame(FrameError::Closed)) => {}
        Err(e) => log(me, format_args!("closing peer connection from {addr}: {e}")),
    }
}
