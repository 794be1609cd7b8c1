//! The client library: a Lab 4-style clerk over TCP, with the client sessions of the Raft
//! dissertation (§6.3).
//!
//! A clerk has one request outstanding at a time. Before its first write it registers a
//! session through the log (its id is the registration's log index; a random nonce makes it
//! the clerk's own) and then numbers its writes 1, 2, 3, ... in it. It sends a request to the
//! server it believes leads; on `NotLeader` it follows the hint or tries the next server, and
//! on a timeout or a broken connection it tries the next server with the *same* request. A
//! retried write that was in fact applied the first time is applied once: the store remembers
//! each session's latest write and its outcome. A Get opens no session: reading twice is
//! harmless.
//!
//! When the store no longer knows the session (it expired by log time:
//! [`KvError::SessionExpired`]), the clerk cannot tell whether an earlier attempt was applied:
//! it reports an unknown outcome ([`ClerkError::outcome_unknown`]) and registers a new session
//! for its next write.

use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::codec::FrameKind;
use crate::kv::{KvError, KvOp, KvReply, KvRequest, Session};

use super::frame::{read_frame, write_frame, FrameError};
use super::protocol::{ClientReply, ClientRequest, ServerStatus};
use super::transport;

/// How long one attempt at one server may take before the clerk tries another.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a clerk keeps retrying one request before it gives up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// Pause before the next attempt when no server is known to lead (an election is under way, or
/// the server is down): trying at once would only spin.
const RETRY_PAUSE: Duration = Duration::from_millis(25);
/// Pause before registering again when the store refused a registration because too many
/// sessions were opened in the current window of log time.
const REGISTER_PAUSE: Duration = Duration::from_millis(200);

/// Why a request ended without a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    /// No server applied it in time. Its outcome is unknown: it may still be applied. A history
    /// recorder must treat it as pending.
    #[error(
        "unknown outcome: no server answered within {waited:?}; the request may yet be applied"
    )]
    GaveUp { waited: Duration },
    /// The store could not say whether it was applied (its session expired by log time): the
    /// outcome is unknown.
    #[error("unknown outcome: {0}")]
    Unknown(KvError),
    /// A server answered with a reply of another kind than the request asks for: not a server
    /// of this protocol, and the outcome is unknown.
    #[error("unknown outcome: the server answered {0:?}")]
    Unexpected(KvReply),
    /// Refused: not applied.
    #[error("refused, not applied: {0}")]
    Refused(KvError),
    /// A server named as leader a server id the clerk has no other address for (past the end
    /// of its list, or the very server it asked): its list of servers is not the whole cluster
    /// in id order. An earlier attempt may have reached the leader, so the outcome is unknown.
    #[error(
        "the server listed at position {asked} says server {leader} leads, and the {listed} \
         address(es) given hold no other address for it: list every server's client address, \
         in server id order"
    )]
    LeaderNotListed {
        asked: usize,
        leader: usize,
        listed: usize,
    },
}

impl ClerkError {
    /// Whether the request may have been applied (every error but a refusal).
    pub fn outcome_unknown(&self) -> bool {
        !matches!(self, ClerkError::Refused(_))
    }
}

/// A clerk was given no server to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a clerk needs at least one server address")]
pub struct NoServers;

/// One KV client.
#[derive(Debug)]
pub struct Clerk {
    /// The session its writes go in, once registered.
    session: Option<Session>,
    /// Sequence number of the latest write in `session`; the next takes the one after.
    seq: u64,
    /// The servers' client addresses, indexed by server id (leader hints are ids).
    servers: Vec<SocketAddr>,
    /// The server tried first: the last that answered, or the one a server named.
    leader: usize,
    /// The open connection to `servers[leader]`, if any.
    conn: Option<TcpStream>,
    /// How many connections the clerk has opened.
    connections: u64,
    attempt_timeout: Duration,
    give_up_after: Duration,
}

impl Clerk {
    /// A clerk for the servers whose client addresses are `servers`, in server id order; it
    /// starts at a random one.
    pub fn new(servers: Vec<SocketAddr>) -> Result<Clerk, NoServers> {
        if servers.is_empty() {
            return Err(NoServers);
        }
        let leader = rand::rng().random_range(0..servers.len());
        Ok(Clerk {
            session: None,
            seq: 0,
            servers,
            leader,
            conn: None,
            connections: 0,
            attempt_timeout: ATTEMPT_TIMEOUT,
            give_up_after: GIVE_UP_AFTER,
        })
    }

    /// How many connections the clerk has opened: one more each time a server closed the last
    /// or the clerk moved to another server.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// Sets how long one attempt may take and how long a request is retried in all.
    pub fn with_timeouts(self, attempt: Duration, give_up_after: Duration) -> Clerk {
        Clerk {
            attempt_timeout: attempt,
            give_up_after,
            ..self
        }
    }

    /// The session of its writes, once registered.
    pub fn session(&self) -> Option<Session> {
        self.session
    }

    /// The id of the server that answered last, or that the clerk will try first: the
    /// leader as far as this clerk knows.
    pub fn leader(&self) -> usize {
        self.leader
    }

    /// Performs `op`, retrying until a server applies or refuses it: a Get outside any session,
    /// a write under the next number of the clerk's session (registered first if need be). An
    /// operation too large for the store is refused before it is sent.
    pub fn execute(&mut self, op: KvOp) -> Result<KvReply, ClerkError> {
        op.check_size().map_err(|e| ClerkError::Refused(e.into()))?;
        let start = Instant::now();
        match op {
            KvOp::Get { key } => self.call(&KvRequest::Get { key }, start),
            write => self.write(write, start),
        }
    }

    /// A write in the clerk's session. A store that no longer knows the session, or has moved
    /// it past this number, ends it: the next write registers anew.
    fn write(&mut self, op: KvOp, start: Instant) -> Result<KvReply, ClerkError> {
        let session = match self.session {
            Some(session) => session,
            None => self.register(start)?,
        };
        self.seq += 1;
        let request = KvRequest::InSession {
            session,
            seq: self.seq,
            op,
        };
        let result = self.call(&request, start);
        if let Err(ClerkError::Unknown(_) | ClerkError::Refused(KvError::Reused { .. })) = result {
            self.session = None;
        }
        result
    }

    /// Registers a new session, waiting out refusals for too many registrations until the
    /// request's time is up.
    fn register(&mut self, start: Instant) -> Result<Session, ClerkError> {
        let nonce = rand::random();
        loop {
            match self.call(&KvRequest::Register { nonce }, start) {
                Ok(KvReply::Registered { id }) => {
                    let session = Session { id, nonce };
                    (self.session, self.seq) = (Some(session), 0);
                    return Ok(session);
                }
                Ok(other) => return Err(ClerkError::Unexpected(other)),
                Err(ClerkError::Refused(KvError::TooManyRegistrations { .. }))
                    if start.elapsed() + REGISTER_PAUSE < self.give_up_after =>
                {
                    thread::sleep(REGISTER_PAUSE);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `request` to one server after another until one applies or refuses it, or the
    /// time since `start` is up.
    fn call(&mut self, request: &KvRequest, start: Instant) -> Result<KvReply, ClerkError> {
        // The server asked named itself as leader in its last answer.
        let mut named_itself = false;
        while start.elapsed() < self.give_up_after {
            let reply = self.attempt(request);
            let again = matches!(reply, Ok(ClientReply::NotLeader { leader_hint: Some(h) })
                if usize::from(h) == self.leader);
            named_itself &= again;
            match reply {
                Ok(ClientReply::Applied(reply)) => return Ok(reply),
                Ok(ClientReply::Refused(refused)) if refused.outcome_unknown() => {
                    return Err(ClerkError::Unknown(refused))
                }
                Ok(ClientReply::Refused(refused)) => return Err(ClerkError::Refused(refused)),
                Ok(ClientReply::NotLeader {
                    leader_hint: Some(hint),
                }) if usize::from(hint) != self.leader
                    && usize::from(hint) < self.servers.len() =>
                {
                    self.switch_to(usize::from(hint));
                }
                // A server that names itself may have just become leader again (a request of
                // its previous term superseded): ask it once more before concluding.
                Ok(ClientReply::NotLeader {
                    leader_hint: Some(hint),
                }) if usize::from(hint) == self.leader && !named_itself => {
                    named_itself = true;
                    thread::sleep(RETRY_PAUSE);
                }
                // Waiting would not help: no retry reaches a server the clerk cannot address.
                Ok(ClientReply::NotLeader {
                    leader_hint: Some(hint),
                }) if usize::from(hint) >= self.servers.len()
                    || usize::from(hint) == self.leader =>
                {
                    return Err(ClerkError::LeaderNotListed {
                        asked: self.leader,
                        leader: hint.into(),
                        listed: self.servers.len(),
                    });
                }
                // A status where a KV reply was due: not a server of this protocol; move on.
                Ok(ClientReply::NotLeader { .. } | ClientReply::Status(_)) | Err(_) => {
                    self.switch_to((self.leader + 1) % self.servers.len());
                    thread::sleep(RETRY_PAUSE);
                }
            }
        }
        Err(ClerkError::GaveUp {
            waited: start.elapsed(),
        })
    }

    fn switch_to(&mut self, server: usize) {
        self.leader = server;
        self.conn = None;
    }

    /// One request and its reply on the connection to `self.leader`, opened if need be. Any
    /// failure closes the connection: a late reply must not be read as the next request's.
    fn attempt(&mut self, request: &KvRequest) -> Result<ClientReply, FrameError> {
        let result = self.exchange(request);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, request: &KvRequest) -> Result<ClientReply, FrameError> {
        let request = ClientRequest::Kv(request.clone());
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let conn = transport::connect(self.servers[self.leader])?;
                conn.set_read_timeout(Some(self.attempt_timeout))?;
                self.connections += 1;
                self.conn.insert(conn)
            }
        };
        write_frame(conn, FrameKind::ClientRequest, &request)?;
        read_frame(conn, FrameKind::ClientReply)
    }
}

/// A server did not report its status.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("the server answered something other than its status: {0:?}")]
    Unexpected(ClientReply),
}

/// Asks the server whose client address is `addr` for its status, waiting at most `timeout`
/// for the answer.
pub fn status(addr: SocketAddr, timeout: Duration) -> Result<ServerStatus, StatusError> {
    let mut conn = transport::connect(addr).map_err(FrameError::from)?;
    conn.set_read_timeout(Some(timeout))
        .map_err(FrameError::from)?;
    write_frame(&mut conn, FrameKind::ClientRequest, &ClientRequest::Status)?;
    match read_frame(&mut conn, FrameKind::ClientReply)? {
        ClientReply::Status(status) => Ok(status),
        other => Err(StatusError::Unexpected(other)),
    }
}
