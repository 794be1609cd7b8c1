//! KV clients on the simulator, as 6.5840 Lab 4's clerks with the sessions of the Raft
//! dissertation (§6.3), as raftd's clerk: one request outstanding at a time, sent from server to
//! server until one replies. Before its first write a clerk registers a session through the
//! log; its writes are numbered in it; its Gets go outside any session.
//!
//! A retry sends the *same* request: if the first attempt was applied but its reply was lost,
//! the store's duplicate detection must keep the retry from taking effect twice. Every invoke
//! and return is recorded, in virtual microseconds, in a linearizability [`Recorder`] (a
//! registration is not an operation of the history: it happens inside the first write's).
//!
//! Client messages travel as labrpc carries them: each request and each reply takes a network
//! fate (delay, or loss on an unreliable network). As in Lab 4's tests, clerks are connected to
//! every server: a partition cuts servers off from each other, not from clients, so a deposed
//! leader on the minority side still hears clients. A crashed or disconnected server does not.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use raft_impl::kv::{ClientId, KvCommand, KvError, KvOp, KvReply, KvRequest, Session};
use raft_impl::NodeId;
use raft_lincheck::{EventError, Recorder};

use crate::failure::Failure;
use crate::kv_service::{Arrival, KvService, Settled};
use crate::runtime::Sim;

/// How long a clerk waits for the answer to one attempt before trying the next server; about
/// what Lab 4 servers wait for a commit before giving up on a request.
pub const RPC_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a clerk looks at its ticket while the server works on the request. The world
/// cannot wake a task from inside a server's step, so a waiting clerk polls; 1 ms is the
/// network's own granularity.
const POLL: Duration = Duration::from_millis(1);
/// Pause after a refusal that names no leader: an election is under way, and asking the next
/// server at once would only spin.
const NO_LEADER_PAUSE: Duration = Duration::from_millis(20);

/// The end of a run's workload, shared by its clerks and the task that ends it.
#[derive(Clone, Debug, Default)]
pub struct Closing(Rc<Cell<Option<Duration>>>);

impl Closing {
    /// From now on clerks start no new operation, and an operation still retrying at virtual
    /// time `deadline` is abandoned (it stays pending in the history: it may yet take effect).
    pub fn close(&self, deadline: Duration) {
        self.0.set(Some(deadline));
    }

    pub fn is_closed(&self) -> bool {
        self.0.get().is_some()
    }

    fn gave_up(&self, now: Duration) -> bool {
        self.0.get().is_some_and(|deadline| now >= deadline)
    }
}

/// What came back from one attempt at one server.
enum Answer {
    Reply(KvReply),
    /// The store refused the request: never right for these clerks, whose sessions cannot
    /// expire within a run (minutes of log time) and whose requests are numbered 1, 2, 3...
    Refused(KvError),
    /// The server is not (or no longer) the leader; it may name the one it believes leads.
    NotLeader(Option<NodeId>),
}

/// One KV client.
pub struct Clerk {
    /// Who the clerk is in the history; also the nonce of its session.
    client: ClientId,
    /// Its session, once registered.
    session: Option<Session>,
    /// Sequence number of the latest write; a new write takes the next one.
    seq: u64,
    /// The server tried first: the last that answered, or the leader a server named.
    leader: NodeId,
    sim: Sim<KvCommand>,
    service: KvService,
    history: Rc<RefCell<Recorder>>,
    closing: Closing,
}

impl Clerk {
    /// A clerk with id `client` (which also picks the first server it tries).
    pub fn new(
        client: ClientId,
        sim: Sim<KvCommand>,
        service: KvService,
        history: Rc<RefCell<Recorder>>,
        closing: Closing,
    ) -> Clerk {
        let leader = (client % u64::from(sim.world().servers())) as NodeId;
        Clerk {
            client,
            session: None,
            seq: 0,
            leader,
            sim,
            service,
            history,
            closing,
        }
    }

    /// Who the clerk is in the history.
    pub fn id(&self) -> ClientId {
        self.client
    }

    /// Performs `op`: records the invoke, registers a session first if `op` is the clerk's
    /// first write, sends the same request to one server after another until one replies, and
    /// records the return. `None` if the run closed first: the operation then stays pending in
    /// the history.
    pub async fn execute(&mut self, op: KvOp) -> Result<Option<KvReply>, Failure> {
        let client = self.client;
        let invoked = op.clone().into();
        self.record(|history, now| history.invoke(client, invoked, now))?;
        let request = match op {
            KvOp::Get { key } => KvRequest::Get { key },
            write => {
                let Some(session) = self.session().await? else {
                    return Ok(None);
                };
                self.seq += 1;
                KvRequest::InSession {
                    session,
                    seq: self.seq,
                    op: write,
                }
            }
        };
        let Some(reply) = self.call(&request).await? else {
            return Ok(None);
        };
        let returned = reply.clone().into();
        self.record(|history, now| history.complete(client, returned, now))?;
        Ok(Some(reply))
    }

    /// The clerk's session, registered now if it has none; `None` if the run closed first.
    async fn session(&mut self) -> Result<Option<Session>, Failure> {
        if self.session.is_none() {
            let register = KvRequest::Register { nonce: self.client };
            self.session = match self.call(&register).await? {
                Some(KvReply::Registered { id }) => Some(Session {
                    id,
                    nonce: self.client,
                }),
                Some(other) => {
                    let client = self.client;
                    return Err(Failure::Check(format!(
                        "clerk {client}: registration answered {other:?}"
                    )));
                }
                None => None,
            };
        }
        Ok(self.session)
    }

    /// Sends `request` to one server after another until one replies; `None` if the run
    /// closed first.
    async fn call(&mut self, request: &KvRequest) -> Result<Option<KvReply>, Failure> {
        let client = self.client;
        let servers = self.sim.world().servers();
        while !self.closing.gave_up(self.sim.now()) {
            match self.attempt(request).await {
                Some(Answer::Reply(reply)) => return Ok(Some(reply)),
                Some(Answer::Refused(refused)) => {
                    return Err(Failure::Check(format!("clerk {client}: {refused}")));
                }
                Some(Answer::NotLeader(Some(hint))) if hint != self.leader => self.leader = hint,
                Some(Answer::NotLeader(_)) => {
                    self.leader = (self.leader + 1) % servers;
                    self.sim.sleep(NO_LEADER_PAUSE).await;
                }
                None => self.leader = (self.leader + 1) % servers,
            }
        }
        Ok(None)
    }

    /// Records an event at the current virtual time (in µs).
    fn record(
        &self,
        event: impl FnOnce(&mut Recorder, u64) -> Result<(), EventError>,
    ) -> Result<(), Failure> {
        let now = self.sim.now().as_micros() as u64;
        event(&mut self.history.borrow_mut(), now)
            .map_err(|e| Failure::Check(format!("clerk {}: history: {e}", self.client)))
    }

    /// One RPC to `self.leader`: the request travels, the server handles it, the reply
    /// travels back. `None` if no answer came within [`RPC_TIMEOUT`] (which is then over).
    async fn attempt(&self, request: &KvRequest) -> Option<Answer> {
        let deadline = self.sim.now() + RPC_TIMEOUT;
        let answer = match self.travel(false) {
            Some(delay) => {
                self.sim.sleep(delay).await;
                self.handle(request, deadline).await
            }
            None => None,
        };
        let back = answer.and_then(|answer| Some((answer, self.sim.now() + self.travel(true)?)));
        match back {
            Some((answer, arrival)) if arrival <= deadline => {
                self.sleep_until(arrival).await;
                Some(answer)
            }
            _ => {
                self.sleep_until(deadline).await;
                None
            }
        }
    }

    /// What the server makes of the request that just reached it; `None` if it is down or
    /// never settles the request before `deadline`.
    async fn handle(&self, request: &KvRequest, deadline: Duration) -> Option<Answer> {
        if !self.sim.world().is_connected(self.leader) {
            return None;
        }
        let ticket = match self
            .service
            .request(&self.sim, self.leader, request.clone())?
        {
            Arrival::Answered(Ok(reply)) => return Some(Answer::Reply(reply)),
            Arrival::Answered(Err(refused)) => return Some(Answer::Refused(refused)),
            Arrival::Refused { leader_hint } => return Some(Answer::NotLeader(leader_hint)),
            Arrival::Proposed(ticket) => ticket,
        };
        while self.sim.now() < deadline {
            let answer = match ticket.take() {
                Some(Settled::Replied(Ok(reply))) => Answer::Reply(reply),
                Some(Settled::Replied(Err(refused))) => Answer::Refused(refused),
                Some(Settled::Superseded) => Answer::NotLeader(None),
                None => {
                    self.sim.sleep(POLL).await;
                    continue;
                }
            };
            // labrpc drops the reply of a server that was killed while handling the request.
            return self.sim.world().is_connected(self.leader).then_some(answer);
        }
        None
    }

    /// The fate of a request or a reply on the network as it is now.
    fn travel(&self, reply: bool) -> Option<Duration> {
        let mut world = self.sim.world();
        let net = world.net();
        net.fate_of(reply, world.rng())
    }

    async fn sleep_until(&self, at: Duration) {
        let now = self.sim.now();
        if at > now {
            self.sim.sleep(at - now).await;
        }
    }
}
