//! The requests a server proposed and whose clients wait for an answer: the one table every
//! runtime keeps (raftd's core thread, the simulator's KV service). The model checker applies
//! the first rule below ([`settle`]) to its client slots, and not the second
//! ([`PendingRequests::settle_unled`]), because its slots hold no table: a waiting slot is
//! (server, index) without the term of the proposal, which the second rule needs, and adding it
//! would grow every state with clients and change what the model explores. What it explores
//! instead: a deposed leader's waiter keeps waiting until that server applies its index (then
//! the first rule answers it, which a runtime would not, with that index's own outcome) or its
//! client times out. So the runtimes' immediate retry after a deposition is reached only
//! through a client timeout, of which a run has `--kv-timeouts`; with none, the model does not
//! explore it (see `RaftModel::apply_kv` in `raft-model`).
//!
//! A client waits on (server, log index). The rule, written here once:
//! - when the server applies an entry at that index, the waiter whose command it is gets the
//!   state machine's reply and any other waiter there fails: another leader's entry took the
//!   slot ([`settle`]);
//! - when the server no longer leads the term a request was proposed in, the request fails: a
//!   later leader may overwrite its entry, and this server may never hear whether it committed
//!   ([`PendingRequests::settle_unled`]);
//! - when the server crashes, the table goes with it and its clients hear nothing (they time
//!   out, as with a dead server's lost reply).
//!
//! How an answer reaches its client differs per runtime (a channel, a ticket, a client slot), so
//! the table only says who is answered what; the caller delivers.

use std::collections::BTreeMap;

use crate::node::Node;
use crate::rules::Rules;
use crate::types::{Command, Index, Term};

/// How a request proposed at a server ended there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled<R> {
    /// Its command was applied at its index; the state machine's reply.
    Replied(R),
    /// It will not be applied at its index on this server, or this server cannot tell: another
    /// command was applied there, or the server left the term it proposed it in. The client
    /// asks again, elsewhere if need be (the duplicate detection of the state machine makes a
    /// retry of an already applied command harmless).
    Superseded,
}

/// The apply rule for one waiter: `waiting_for` is the waiter's command, `applied` the command
/// the server applied at the waiter's index, `reply` what the state machine answered.
pub fn settle<C: PartialEq, R>(waiting_for: &C, applied: &C, reply: R) -> Settled<R> {
    if waiting_for == applied {
        Settled::Replied(reply)
    } else {
        Settled::Superseded
    }
}

/// One waiting request: its command, the term it was proposed in, and `W`, the runtime's way
/// to reach its client.
#[derive(Debug)]
struct Waiter<C, W> {
    command: C,
    term: Term,
    client: W,
}

/// The requests one server instance proposed and has not settled, by log index.
///
/// An index holds several waiters only if a runtime did not settle a deposed leader's requests
/// before that server led again and proposed at the same index; the apply rule settles them all
/// the same.
#[derive(Debug)]
pub struct PendingRequests<C, W> {
    by_index: BTreeMap<Index, Vec<Waiter<C, W>>>,
}

impl<C, W> Default for PendingRequests<C, W> {
    fn default() -> Self {
        PendingRequests {
            by_index: BTreeMap::new(),
        }
    }
}

impl<C: PartialEq, W> PendingRequests<C, W> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.by_index.is_empty()
    }

    /// `client` waits for `command`, proposed at `index` in `term`. To be called before the
    /// proposal's effects are carried out: a one-server cluster applies the entry in the same
    /// step.
    pub fn insert(&mut self, index: Index, term: Term, command: C, client: W) {
        self.by_index.entry(index).or_default().push(Waiter {
            command,
            term,
            client,
        });
    }

    /// The server applied `command` at `index`, and its state machine answered `reply`: every
    /// waiter at `index` is settled by [`settle`].
    pub fn applied<R: Clone>(
        &mut self,
        index: Index,
        command: &C,
        reply: &R,
    ) -> Vec<(W, Settled<R>)> {
        self.by_index
            .remove(&index)
            .unwrap_or_default()
            .into_iter()
            .map(|w| (w.client, settle(&w.command, command, reply.clone())))
            .collect()
    }

    /// A snapshot that holds every entry up to `through` replaced the state machine: no
    /// `Apply` will come for a waiter at or below it, which fails. Returns their clients.
    pub fn covered(&mut self, through: Index) -> Vec<W> {
        let later = self.by_index.split_off(&through.saturating_add(1));
        let covered = std::mem::replace(&mut self.by_index, later);
        covered.into_values().flatten().map(|w| w.client).collect()
    }

    /// `server` took a step: every waiter proposed in a term it does not lead now fails, as its
    /// entry may be overwritten by another leader's. Returns their clients.
    pub fn settle_unled<X: Command, R: Rules>(&mut self, server: &Node<X, R>) -> Vec<W> {
        let leading = server.is_leader().then(|| server.current_term());
        let unled = |w: &Waiter<C, W>| Some(w.term) != leading;
        // Called after every step of a server: a scan, without allocating, when nothing fails.
        if !self.by_index.values().flatten().any(unled) {
            return Vec::new();
        }
        let mut failed = Vec::new();
        for waiters in self.by_index.values_mut() {
            let (fail, keep): (Vec<_>, Vec<_>) =
                std::mem::take(waiters).into_iter().partition(unled);
            *waiters = keep;
            failed.extend(fail.into_iter().map(|w| w.client));
        }
        self.by_index.retain(|_, waiters| !waiters.is_empty());
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::node::Config;
    use crate::types::HardState;

    #[test]
    fn on_apply_the_waiter_of_the_applied_command_is_answered_and_another_fails() {
        let mut table = PendingRequests::new();
        table.insert(1, 1, "a", 'x');
        table.insert(2, 1, "b", 'y');
        assert_eq!(
            table.applied(1, &"a", &10),
            vec![('x', Settled::Replied(10))]
        );
        assert_eq!(
            table.applied(2, &"c", &20),
            vec![('y', Settled::Superseded)]
        );
        assert_eq!(table.applied(3, &"d", &30), vec![]);
        assert!(table.is_empty());
    }

    #[test]
    fn every_waiter_at_an_index_is_settled() {
        let mut table = PendingRequests::new();
        table.insert(4, 1, "old", 'x');
        table.insert(4, 3, "new", 'y');
        assert_eq!(
            table.applied(4, &"new", &7),
            vec![('x', Settled::Superseded), ('y', Settled::Replied(7))]
        );
    }

    #[test]
    fn a_snapshot_fails_the_waiters_it_covers_and_keeps_the_later_ones() {
        let mut table = PendingRequests::new();
        table.insert(1, 1, "a", 'x');
        table.insert(3, 1, "b", 'y');
        table.insert(4, 1, "c", 'z');
        assert_eq!(table.covered(3), vec!['x', 'y']);
        assert_eq!(table.applied(4, &"c", &1), vec![('z', Settled::Replied(1))]);
        assert!(table.is_empty());
        table.insert(5, 1, "d", 'w');
        assert_eq!(table.covered(Index::MAX), vec!['w']);
    }

    #[test]
    fn leaving_a_term_fails_its_waiters_and_keeps_those_of_the_led_term() {
        let mut server: Node<u64> = Node::new(Config::new(0, 3), HardState::default());
        server.election_timeout();
        let granted = Message::RequestVoteReply {
            term: 1,
            granted: true,
        };
        server.handle(1, granted);
        assert!(server.is_leader());
        let mut table = PendingRequests::new();
        table.insert(1, 0, "stale", 'x');
        table.insert(2, 1, "a", 'y');
        table.insert(3, 1, "b", 'z');
        assert_eq!(table.settle_unled(&server), vec!['x']);
        assert_eq!(table.settle_unled(&server), vec![]);

        let successor = Message::RequestVote {
            term: 2,
            last_log_index: 3,
            last_log_term: 1,
        };
        server.handle(2, successor);
        assert_eq!(table.settle_unled(&server), vec!['y', 'z']);
        assert!(table.is_empty());
    }
}
