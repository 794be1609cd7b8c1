//! The client library: a Lab 4-style clerk over TCP.
//!
//! A clerk has one request outstanding at a time, numbered (client id, sequence number). It
//! sends the request to the server it believes leads; on `NotLeader` it follows the hint or
//! tries the next server, and on a timeout or a broken connection it tries the next server
//! with the *same* command. A retried request that was in fact applied the first time is
//! applied once: the store remembers each client's latest sequence number and its reply.
//!
//! A clerk's id is drawn at random (64 bits), so that a restarted program never takes over the
//! session of its previous run, whose numbers it would repeat. When a request ends without a
//! reply (given up, or refused by the store) the clerk opens a new session under a fresh id: its
//! next request must not depend on whether that one was applied.

use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::codec::FrameKind;
use crate::kv::{ClientId, KvCommand, KvOp, KvReply, SessionError};

use super::frame::{read_frame, write_frame, FrameError};
use super::protocol::{ClientReply, ClientRequest, CommandTooLarge, ServerStatus};
use super::transport;

/// How long one attempt at one server may take before the clerk tries another.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a clerk keeps retrying one request before it gives up.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(30);
/// Pause before the next attempt when no server is known to lead (an election is under way, or
/// the server is down): trying at once would only spin.
const RETRY_PAUSE: Duration = Duration::from_millis(25);

/// Why a request ended without a reply. Either way the clerk goes on under a new session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    /// No server applied it in time. Its outcome is unknown: it may still be applied. A history
    /// recorder must treat it as pending.
    #[error("no server applied request {seq} of client {client} within {waited:?}; it may yet be")]
    GaveUp {
        client: ClientId,
        seq: u64,
        waited: Duration,
    },
    /// The store refused it: it was not applied.
    #[error("refused: {0}")]
    Refused(#[from] SessionError),
    /// It is too large to enter the log (the clerk's own check, or the server's): it was not
    /// applied, and sending it again would not change that.
    #[error("{0}")]
    TooLarge(#[from] CommandTooLarge),
}

/// A clerk was given no server to talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a clerk needs at least one server address")]
pub struct NoServers;

/// One KV client.
#[derive(Debug)]
pub struct Clerk {
    client: ClientId,
    /// Sequence number of the latest request; the next takes the one after.
    seq: u64,
    /// The servers' client addresses, indexed by server id (leader hints are ids).
    servers: Vec<SocketAddr>,
    /// The server tried first: the last that answered, or the one a server named.
    leader: usize,
    /// The open connection to `servers[leader]`, if any.
    conn: Option<TcpStream>,
    attempt_timeout: Duration,
    give_up_after: Duration,
}

impl Clerk {
    /// A clerk with a fresh random id for the servers whose client addresses are `servers`, in
    /// server id order.
    pub fn new(servers: Vec<SocketAddr>) -> Result<Clerk, NoServers> {
        Clerk::with_client_id(rand::random(), servers)
    }

    /// A clerk with id `client`, which must be unique among all clients ever: a used id gets
    /// its requests refused. For tests that reproduce a session; [`Clerk::new`] draws one.
    /// Clerks start at different servers by id.
    pub fn with_client_id(client: ClientId, servers: Vec<SocketAddr>) -> Result<Clerk, NoServers> {
        if servers.is_empty() {
            return Err(NoServers);
        }
        let leader = (client % servers.len() as u64) as usize;
        Ok(Clerk {
            client,
            seq: 0,
            servers,
            leader,
            conn: None,
            attempt_timeout: ATTEMPT_TIMEOUT,
            give_up_after: GIVE_UP_AFTER,
        })
    }

    /// Sets how long one attempt may take and how long a request is retried in all.
    pub fn with_timeouts(self, attempt: Duration, give_up_after: Duration) -> Clerk {
        Clerk {
            attempt_timeout: attempt,
            give_up_after,
            ..self
        }
    }

    pub fn client(&self) -> ClientId {
        self.client
    }

    /// The id of the server that answered last, or that the clerk will try first: the
    /// leader as far as this clerk knows.
    pub fn leader(&self) -> usize {
        self.leader
    }

    /// Performs `op` under the next sequence number, retrying until a server applies or refuses
    /// it. On an error the clerk has moved to a new session (see the module's doc).
    pub fn execute(&mut self, op: KvOp) -> Result<KvReply, ClerkError> {
        let result = self.execute_in_session(op);
        if result.is_err() {
            self.client = rand::random();
            self.seq = 0;
        }
        result
    }

    fn execute_in_session(&mut self, op: KvOp) -> Result<KvReply, ClerkError> {
        self.seq += 1;
        let command = KvCommand {
            client: self.client,
            seq: self.seq,
            op,
        };
        CommandTooLarge::check(&command)?;
        let start = Instant::now();
        while start.elapsed() < self.give_up_after {
            match self.attempt(&command) {
                Ok(ClientReply::Applied(reply)) => return Ok(reply),
                Ok(ClientReply::Refused(refused)) => return Err(refused.into()),
                Ok(ClientReply::TooLarge(too_large)) => return Err(too_large.into()),
                Ok(ClientReply::NotLeader {
                    leader_hint: Some(hint),
                }) if usize::from(hint) != self.leader
                    && usize::from(hint) < self.servers.len() =>
                {
                    self.switch_to(usize::from(hint));
                }
                // A status where a KV reply was due: not a server of this protocol; move on.
                Ok(ClientReply::NotLeader { .. } | ClientReply::Status(_)) | Err(_) => {
                    self.switch_to((self.leader + 1) % self.servers.len());
                    thread::sleep(RETRY_PAUSE);
                }
            }
        }
        Err(ClerkError::GaveUp {
            client: self.client,
            seq: self.seq,
            waited: start.elapsed(),
        })
    }

    fn switch_to(&mut self, server: usize) {
        self.leader = server;
        self.conn = None;
    }

    /// One request and its reply on the connection to `self.leader`, opened if need be. Any
    /// failure closes the connection: a late reply must not be read as the next request's.
    fn attempt(&mut self, command: &KvCommand) -> Result<ClientReply, FrameError> {
        let result = self.exchange(command);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, command: &KvCommand) -> Result<ClientReply, FrameError> {
        let request = ClientRequest::Kv(command.clone());
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let conn = transport::connect(self.servers[self.leader])?;
                conn.set_read_timeout(Some(self.attempt_timeout))?;
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
