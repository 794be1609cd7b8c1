//! The KV service on the simulated servers: each server's `KvStore`, built from what its core
//! applies, and the front door through which clerks reach it.
//!
//! A request reaching a server goes through `raft_impl::service::submit`, the same front door
//! a deployment uses. If it is proposed, it waits in the server's
//! `raft_impl::service::PendingRequests`, the table raftd keeps too, and is settled by the same
//! rules: when its index is applied (with the store's reply if the same command landed there,
//! as superseded if another one did), when the server stops leading the term it proposed it
//! in, or when an installed snapshot covers its index (no apply will come for it there).
//!
//! Snapshots are 6.5840 Lab 4B's: with a `max_raft_state` (kvraft's `maxraftstate`), a server
//! whose store keeps that many bytes of Raft state or more after an apply hands its core
//! `KvStore::snapshot()` at that index: the keys and values with the session table and its
//! clock, in raftd's encoding, so that a write retried after a restart or an install is still
//! recognised as applied. When the core installs a leader's snapshot (`Effect::Restore`), the
//! store becomes `KvStore::restored` of its bytes. A server that crashes forgets its requests
//! in flight (their clerks time out) and its store; the new instance starts from the snapshot
//! its store keeps, if any, and re-applies only the log after it (from index 1 without
//! snapshots, as kvraft does). Snapshot bytes that do not decode fail the run
//! ([`Failure::BadKvSnapshot`]): every server here is correct, so they could only come from a bug.
//!
//! A leader stamps the virtual clock (in milliseconds) into each command it proposes, as raftd
//! stamps its wall clock: the stores expire sessions by those stamps.

use std::cell::RefCell;
use std::rc::Rc;

use raft_impl::kv::{KvCommand, KvOutcome, KvRequest, KvStore, LogTime};
use raft_impl::service::{self, PendingRequests, Submitted};
use raft_impl::{Index, MutationSet, Node, NodeId, NotLeader, Snapshot};

use crate::failure::Failure;
use crate::runtime::Sim;
use crate::world::StateMachines;

/// What a server made of a request the moment it arrived.
#[derive(Debug)]
pub enum Arrival {
    /// Answered without the log: refused by the size rules, or answered from local state (only
    /// the stale-read bug does this).
    Answered(KvOutcome),
    /// Not the leader; `leader_hint` is the server it last heard lead, if any.
    Refused { leader_hint: Option<NodeId> },
    /// Appended to the log; the ticket tells how it ends.
    Proposed(Ticket),
}

/// How a proposed request ended at the server that proposed it.
pub type Settled = service::Settled<KvOutcome>;

/// Where a ticket's outcome is written: shared by the ticket and the server's pending table.
type Outcome = Rc<RefCell<Option<Settled>>>;

/// A clerk's handle on a proposed request: empty until the server settles it. If the server
/// crashes first it stays empty for good, as the reply of a dead server never comes.
#[derive(Debug)]
pub struct Ticket(Outcome);

impl Ticket {
    /// The outcome, once settled (taken: a ticket is read once).
    pub fn take(&self) -> Option<Settled> {
        self.0.borrow_mut().take()
    }
}

/// One server's service state; lost at a crash.
#[derive(Debug)]
struct KvServer {
    store: KvStore<MutationSet>,
    /// Requests this instance proposed, each with its ticket's outcome.
    waiting: PendingRequests<KvCommand, Outcome>,
}

/// The KV service on every server of a simulated cluster. The world holds one handle (it
/// reports applies and restarts through [`StateMachines`]) and the clerks another.
#[derive(Clone, Debug)]
pub struct KvService {
    servers: Rc<RefCell<Vec<KvServer>>>,
    /// Switched on in every store (the KV bugs of the catalog; Raft-level ones live in the
    /// cores).
    mutations: MutationSet,
    /// Lab 4B's `maxraftstate`: a server snapshots once its store keeps this many bytes of Raft
    /// state; `None` (kvraft's -1): never.
    max_raft_state: Option<usize>,
}

impl KvService {
    /// Puts the KV service on every server of `sim`'s cluster, with `mutations` switched on in
    /// its stores and snapshots at `max_raft_state` bytes of Raft state (`None`: none), and
    /// returns the clerks' handle on it.
    pub fn install(
        sim: &Sim<KvCommand>,
        mutations: MutationSet,
        max_raft_state: Option<usize>,
    ) -> KvService {
        let mut world = sim.world();
        let service = KvService {
            servers: Rc::new(RefCell::new(
                (0..world.servers())
                    .map(|_| KvServer::new(mutations))
                    .collect(),
            )),
            mutations,
            max_raft_state,
        };
        world.set_state_machines(Box::new(service.clone()));
        service
    }

    /// Hands `request` to server `server`'s front door; `None` while that server is crashed.
    pub fn request(
        &self,
        sim: &Sim<KvCommand>,
        server: NodeId,
        request: KvRequest,
    ) -> Option<Arrival> {
        let s = server as usize;
        let now = LogTime::try_from(sim.now().as_millis()).unwrap_or(LogTime::MAX);
        let mut stamped = None;
        let proposed = sim.world().offer(server, |node| {
            let servers = self.servers.borrow();
            match service::submit(node, &servers[s].store, request, now) {
                Ok(Submitted::Proposed { proposal, command }) => {
                    stamped = Some(command);
                    Ok(proposal)
                }
                Ok(Submitted::Answered(outcome)) => Err(Arrival::Answered(outcome)),
                Err(NotLeader { leader_hint }) => Err(Arrival::Refused { leader_hint }),
            }
        })?;
        Some(match (proposed, stamped) {
            (Ok((index, term)), Some(command)) => {
                // A cluster of more than one server cannot have applied the entry yet: that
                // takes at least one round trip to a follower.
                let outcome = Rc::new(RefCell::new(None));
                self.servers.borrow_mut()[s].waiting.insert(
                    index,
                    term,
                    command,
                    Rc::clone(&outcome),
                );
                Arrival::Proposed(Ticket(outcome))
            }
            (Ok(_), None) => unreachable!("a proposal comes with its command"),
            (Err(arrival), _) => arrival,
        })
    }

    /// The value of `key` in server `server`'s store (empty if unset); a crashed server's is
    /// the store it had when it crashed.
    pub fn value(&self, server: NodeId, key: &str) -> String {
        self.servers.borrow()[server as usize].store.get(key)
    }
}

impl KvServer {
    fn new(mutations: MutationSet) -> KvServer {
        KvServer {
            store: KvStore::with_rules(mutations),
            waiting: PendingRequests::new(),
        }
    }
}

impl StateMachines<KvCommand> for KvService {
    fn restarted(&mut self, server: NodeId) {
        self.servers.borrow_mut()[server as usize] = KvServer::new(self.mutations);
    }

    fn applied(&mut self, server: NodeId, index: Index, command: &KvCommand) {
        let mut servers = self.servers.borrow_mut();
        let kv = &mut servers[server as usize];
        let reply = kv.store.apply(index, command);
        for (outcome, settled) in kv.waiting.applied(index, command, &reply) {
            *outcome.borrow_mut() = Some(settled);
        }
    }

    fn snapshot_due(&mut self, server: NodeId, raft_state: &dyn Fn() -> usize) -> Option<Vec<u8>> {
        let due = self.max_raft_state.is_some_and(|max| raft_state() >= max);
        due.then(|| self.servers.borrow()[server as usize].store.snapshot())
    }

    /// The store becomes the one `snapshot` holds. A request waiting at an index it covers
    /// never sees an apply here, so it is settled as superseded ([`PendingRequests::covered`],
    /// as raftd settles it): its clerk asks again, and the session in the snapshot tells a
    /// retry from a new write.
    fn restore(&mut self, server: NodeId, snapshot: &Snapshot) -> Result<(), Failure> {
        let mut servers = self.servers.borrow_mut();
        let kv = &mut servers[server as usize];
        kv.store = kv
            .store
            .restored(&snapshot.data)
            .map_err(|error| Failure::BadKvSnapshot {
                server,
                index: snapshot.last_index,
                error,
            })?;
        for outcome in kv.waiting.covered(snapshot.last_index) {
            *outcome.borrow_mut() = Some(Settled::Superseded);
        }
        Ok(())
    }

    fn role_changed(&mut self, server: NodeId, node: &Node<KvCommand, MutationSet>) {
        let mut servers = self.servers.borrow_mut();
        for outcome in servers[server as usize].waiting.settle_unled(node) {
            *outcome.borrow_mut() = Some(Settled::Superseded);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use raft_impl::kv::{KvOp, KvReply, KvSnapshotError, Session};

    use super::*;
    use crate::failure::Failure;
    use crate::world::World;

    /// The session registered first, at index 1.
    const SESSION: Session = Session { id: 1, nonce: 9 };

    fn append(seq: u64, value: &str) -> KvRequest {
        KvRequest::InSession {
            session: SESSION,
            seq,
            op: KvOp::Append {
                key: "k".into(),
                value: value.into(),
            },
        }
    }

    fn register() -> KvRequest {
        KvRequest::Register {
            nonce: SESSION.nonce,
        }
    }

    fn get() -> KvRequest {
        KvRequest::Get { key: "k".into() }
    }

    /// Offers `request` to every server until one proposes it; waits for the ticket.
    async fn submit_and_wait(
        sim: Sim<KvCommand>,
        kv: KvService,
        request: KvRequest,
    ) -> Result<(NodeId, Settled), Failure> {
        for _ in 0..100 {
            for server in 0..3 {
                if let Some(Arrival::Proposed(ticket)) = kv.request(&sim, server, request.clone()) {
                    for _ in 0..100 {
                        sim.sleep(Duration::from_millis(10)).await;
                        if let Some(settled) = ticket.take() {
                            return Ok((server, settled));
                        }
                    }
                }
            }
            sim.sleep(Duration::from_millis(100)).await;
        }
        Err(Failure::Check("no server settled the request".into()))
    }

    #[test]
    fn a_proposed_request_is_answered_once_applied_and_a_retry_applies_once() {
        let sim = Sim::new(World::new(3, 5, MutationSet::NONE, false));
        let kv = KvService::install(&sim, MutationSet::NONE, None);
        let (s, k) = (sim.clone(), kv.clone());
        let outcome = sim.run(Duration::from_secs(60), async move {
            let registered = submit_and_wait(s.clone(), k.clone(), register()).await?;
            let first = submit_and_wait(s.clone(), k.clone(), append(1, "x")).await?;
            let retry = submit_and_wait(s.clone(), k.clone(), append(1, "x")).await?;
            let read = submit_and_wait(s, k, get()).await?;
            Ok((registered.1, first.1, retry.1, read.1))
        });
        assert_eq!(
            outcome,
            Ok((
                Settled::Replied(Ok(KvReply::Registered { id: SESSION.id })),
                Settled::Replied(Ok(KvReply::Done)),
                Settled::Replied(Ok(KvReply::Done)),
                Settled::Replied(Ok(KvReply::Value("x".into())))
            ))
        );
    }

    #[test]
    fn a_restarted_server_starts_empty_and_rebuilds_its_store_from_the_log() {
        let sim = Sim::new(World::new(3, 6, MutationSet::NONE, false));
        let kv = KvService::install(&sim, MutationSet::NONE, None);
        let (s, k) = (sim.clone(), kv.clone());
        let outcome = sim.run(Duration::from_secs(60), async move {
            submit_and_wait(s.clone(), k.clone(), register()).await?;
            let (leader, _) = submit_and_wait(s.clone(), k.clone(), append(1, "x")).await?;
            s.world().start(leader);
            s.world().connect(leader);
            let restarted = k.value(leader, "k");
            // An entry of the new leader's term commits the earlier ones again, everywhere.
            let (_, read) = submit_and_wait(s.clone(), k.clone(), get()).await?;
            s.sleep(Duration::from_secs(1)).await;
            Ok((restarted, read, k.value(leader, "k")))
        });
        assert_eq!(
            outcome,
            Ok((
                String::new(),
                Settled::Replied(Ok(KvReply::Value("x".into()))),
                "x".to_string()
            ))
        );
    }

    /// With a snapshot after every apply, a restarted server's store is its snapshot before
    /// the core applies anything (an apply at or below the snapshot's index would fail the
    /// run as out of order), and the session in it makes a retry of the append apply once.
    #[test]
    fn a_restarted_server_starts_from_its_snapshot_and_a_retry_still_applies_once() {
        let sim = Sim::new(World::new(3, 6, MutationSet::NONE, false));
        let kv = KvService::install(&sim, MutationSet::NONE, Some(1));
        let (s, k) = (sim.clone(), kv.clone());
        let outcome = sim.run(Duration::from_secs(60), async move {
            submit_and_wait(s.clone(), k.clone(), register()).await?;
            let (leader, _) = submit_and_wait(s.clone(), k.clone(), append(1, "x")).await?;
            s.world().start(leader);
            s.world().connect(leader);
            let restarted = k.value(leader, "k");
            let (_, retry) = submit_and_wait(s.clone(), k.clone(), append(1, "x")).await?;
            let (_, read) = submit_and_wait(s.clone(), k.clone(), get()).await?;
            s.sleep(Duration::from_secs(1)).await;
            let restarts = s.world().restarts_from_snapshot();
            Ok((restarted, restarts, retry, read, k.value(leader, "k")))
        });
        assert_eq!(
            outcome,
            Ok((
                "x".to_string(),
                1,
                Settled::Replied(Ok(KvReply::Done)),
                Settled::Replied(Ok(KvReply::Value("x".into()))),
                "x".to_string()
            ))
        );
    }

    /// A request waiting at an index an installed snapshot covers will see no apply there: it
    /// is settled as superseded, and one at a later index keeps waiting.
    #[test]
    fn restoring_a_snapshot_settles_the_requests_it_covers() {
        let sim = Sim::new(World::new(3, 7, MutationSet::NONE, false));
        let kv = KvService::install(&sim, MutationSet::NONE, None);
        let (s, mut k) = (sim.clone(), kv.clone());
        let outcome = sim.run(Duration::from_secs(60), async move {
            loop {
                for server in 0..3 {
                    // A fresh cluster's leader proposes at index 1, then 2.
                    let Some(Arrival::Proposed(first)) = k.request(&s, server, register()) else {
                        continue;
                    };
                    let Some(Arrival::Proposed(second)) = k.request(&s, server, get()) else {
                        return Err(Failure::Check("the leader refused a second request".into()));
                    };
                    let snapshot = Snapshot {
                        last_index: 1,
                        last_term: 1,
                        data: KvStore::new().snapshot(),
                    };
                    k.restore(server, &snapshot)?;
                    return Ok((first.take(), second.take()));
                }
                s.sleep(Duration::from_millis(10)).await;
            }
        });
        assert_eq!(outcome, Ok((Some(Settled::Superseded), None)));
    }

    /// Bytes that are not a KV store fail the run, naming the server and the index.
    #[test]
    fn a_snapshot_that_does_not_decode_fails_the_run() {
        let sim = Sim::new(World::new(3, 8, MutationSet::NONE, false));
        let mut kv = KvService::install(&sim, MutationSet::NONE, Some(100));
        let garbage = Snapshot {
            last_index: 3,
            last_term: 1,
            data: vec![1, 2, 3],
        };
        let failure = kv.restore(2, &garbage).unwrap_err();
        assert!(
            matches!(
                failure,
                Failure::BadKvSnapshot {
                    server: 2,
                    index: 3,
                    error: KvSnapshotError::Decode(_)
                }
            ),
            "{failure:?}"
        );
        assert!(
            failure.to_string().starts_with(
                "server 2: the KV snapshot at index 3 is not a store: the snapshot does not decode"
            ),
            "{failure}"
        );
    }
}
