//! The 6.5840 tester's helpers (`config.go`), on the simulator: the same checks with the same
//! patience, measured in virtual time.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use raft_impl::{Command, Index, NodeId, Term};
use rand::Rng;

use crate::failure::Failure;
use crate::runtime::{JoinHandle, Sim, Sleep};

/// The lab's `RaftElectionTimeout`: the time the tests allow for an election.
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// A handle on a cluster under test. Clone it into spawned tasks.
pub struct Tester<C>(Sim<C>);

impl<C> Clone for Tester<C> {
    fn clone(&self) -> Self {
        Tester(self.0.clone())
    }
}

impl<C: Command + 'static> Tester<C> {
    pub fn new(sim: Sim<C>) -> Tester<C> {
        Tester(sim)
    }

    pub fn servers(&self) -> u8 {
        self.0.world().servers()
    }

    pub fn sleep(&self, duration: Duration) -> Sleep<C> {
        self.0.sleep(duration)
    }

    pub fn spawn<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> JoinHandle<C, T> {
        self.0.spawn(future)
    }

    /// A number in `range` from the seeded stream (the Go tests' `rand.Int()`).
    pub fn random(&self, range: std::ops::Range<u64>) -> u64 {
        self.0.world().rng().random_range(range)
    }

    /// A server id drawn at random.
    pub fn random_server(&self) -> NodeId {
        self.random(0..self.servers() as u64) as NodeId
    }

    /// True with probability `per_mille` / 1000 (the Go tests' `rand.Int() % 1000 < x`).
    pub fn chance(&self, per_mille: u32) -> bool {
        self.0.world().rng().random_ratio(per_mille, 1000)
    }

    pub fn crash(&self, i: NodeId) {
        self.0.world().crash(i);
    }

    /// Crashes server `i` if it is running and starts it again from its saved state;
    /// disconnected until [`Tester::connect`].
    pub fn start(&self, i: NodeId) {
        self.0.world().start(i);
    }

    pub fn connect(&self, i: NodeId) {
        self.0.world().connect(i);
    }

    pub fn disconnect(&self, i: NodeId) {
        self.0.world().disconnect(i);
    }

    pub fn is_connected(&self, i: NodeId) -> bool {
        self.0.world().is_connected(i)
    }

    pub fn is_running(&self, i: NodeId) -> bool {
        self.0.world().is_running(i)
    }

    /// Cuts the network between the servers in `side` and the others; `&[]` heals it.
    pub fn partition(&self, side: &[NodeId]) {
        self.0.world().partition(side);
    }

    pub fn set_unreliable(&self, unreliable: bool) {
        self.0.world().set_unreliable(unreliable);
    }

    pub fn set_long_reordering(&self, long_reordering: bool) {
        self.0.world().set_long_reordering(long_reordering);
    }

    /// `rf.Start(command)`: `Some((index, term))` if server `i` is running and leads.
    pub fn propose(&self, i: NodeId, command: C) -> Option<(Index, Term)> {
        self.0.world().propose(i, command)
    }

    /// `rf.GetState()`: `None` while server `i` is crashed.
    pub fn state(&self, i: NodeId) -> Option<(Term, bool)> {
        self.0.world().state(i)
    }

    /// Requests delivered to server `i` so far.
    pub fn rpc_count(&self, i: NodeId) -> u64 {
        self.0.world().rpc_count(i)
    }

    /// Requests delivered to all servers so far.
    pub fn rpc_total(&self) -> u64 {
        (0..self.servers()).map(|i| self.rpc_count(i)).sum()
    }

    /// Encoded bytes of every request sent so far.
    pub fn bytes_total(&self) -> u64 {
        self.0.world().bytes_total()
    }

    /// The largest Raft state any server's store keeps, in bytes (the Go tester's
    /// `LogSize()`).
    pub fn log_size(&self) -> usize {
        let world = self.0.world();
        (0..world.servers())
            .map(|i| world.raft_state_size(i))
            .max()
            .unwrap_or(0)
    }

    /// How many servers applied `index`, and the (agreed) command there.
    pub fn n_committed(&self, index: Index) -> (usize, Option<C>) {
        self.0.world().n_committed(index)
    }

    fn connected(&self) -> Vec<NodeId> {
        (0..self.servers())
            .filter(|i| self.is_connected(*i))
            .collect()
    }

    /// Up to 10 rounds of ~0.5 s: the leader of the highest term among connected servers.
    /// Fails if a term has two leaders or if no leader shows up.
    pub async fn check_one_leader(&self) -> Result<NodeId, Failure> {
        for _ in 0..10 {
            let ms = 450 + self.random(0..100);
            self.sleep(Duration::from_millis(ms)).await;
            let mut leaders: BTreeMap<Term, Vec<NodeId>> = BTreeMap::new();
            for i in self.connected() {
                if let Some((term, true)) = self.state(i) {
                    leaders.entry(term).or_default().push(i);
                }
            }
            for (term, ids) in &leaders {
                if ids.len() > 1 {
                    return Err(Failure::TwoLeaders {
                        term: *term,
                        count: ids.len(),
                    });
                }
            }
            if let Some((_, ids)) = leaders.last_key_value() {
                return Ok(ids[0]);
            }
        }
        Err(Failure::NoLeader)
    }

    /// All connected servers agree on the term; returns it.
    pub fn check_terms(&self) -> Result<Term, Failure> {
        let mut agreed = None;
        for i in self.connected() {
            if let Some((term, _)) = self.state(i) {
                match agreed {
                    None => agreed = Some(term),
                    Some(t) if t != term => return Err(Failure::TermDisagreement),
                    Some(_) => {}
                }
            }
        }
        Ok(agreed.unwrap_or(0))
    }

    /// No connected server believes it is leader.
    pub fn check_no_leader(&self) -> Result<(), Failure> {
        match self
            .connected()
            .into_iter()
            .find(|i| self.state(*i).is_some_and(|(_, leader)| leader))
        {
            Some(server) => Err(Failure::UnexpectedLeader { server }),
            None => Ok(()),
        }
    }

    /// Gets `command` committed: for up to 10 s, offers it to the connected servers in turn;
    /// when one accepts, waits up to 2 s for `expected` servers to apply it at that index.
    /// Without `retry` the first 2 s window is the only chance. Returns the index.
    pub async fn one(&self, command: C, expected: usize, retry: bool) -> Result<Index, Failure> {
        let t0 = self.0.now();
        let servers = self.servers();
        let mut starts = 0;
        while self.0.now() - t0 < Duration::from_secs(10) {
            let mut index = None;
            for _ in 0..servers {
                starts = (starts + 1) % servers;
                if self.is_connected(starts) {
                    if let Some((i, _)) = self.propose(starts, command.clone()) {
                        index = Some(i);
                        break;
                    }
                }
            }
            match index {
                Some(index) => {
                    let t1 = self.0.now();
                    while self.0.now() - t1 < Duration::from_secs(2) {
                        let (n, applied) = self.n_committed(index);
                        if n > 0 && n >= expected && applied.as_ref() == Some(&command) {
                            return Ok(index);
                        }
                        self.sleep(Duration::from_millis(20)).await;
                    }
                    if !retry {
                        break;
                    }
                }
                None => self.sleep(Duration::from_millis(50)).await,
            }
        }
        Err(Failure::NoAgreement {
            command: format!("{command:?}"),
        })
    }

    /// Waits (backing off, ~30 s at most) for `n` servers to apply `index`; returns the command,
    /// or `None` if some server moved past `start_term` (the entry may then never commit).
    pub async fn wait(
        &self,
        index: Index,
        n: usize,
        start_term: Option<Term>,
    ) -> Result<Option<C>, Failure> {
        let mut pause = Duration::from_millis(10);
        for _ in 0..30 {
            if self.n_committed(index).0 >= n {
                break;
            }
            self.sleep(pause).await;
            if pause < Duration::from_secs(1) {
                pause *= 2;
            }
            if let Some(start) = start_term {
                let moved_on =
                    (0..self.servers()).any(|i| self.state(i).is_some_and(|(t, _)| t > start));
                if moved_on {
                    return Ok(None);
                }
            }
        }
        match self.n_committed(index) {
            (applied, Some(command)) if applied >= n => Ok(Some(command)),
            (applied, _) => Err(Failure::NotDecided {
                index,
                applied,
                wanted: n,
            }),
        }
    }
}
