//! The KV service's front door: how a server turns a client request into either a log entry or
//! an immediate answer. Every request, reads included, goes through the log, so a read is
//! answered only once an entry of the leader's own term is committed after it: a deposed leader
//! that has not yet heard of its successor cannot answer from stale state. A proposed request
//! then waits in a [`PendingRequests`] table until its index is applied or its server stops
//! leading.

mod pending;

pub use pending::{settle, PendingRequests, Settled};

use crate::kv::{KvCommand, KvOp, KvReply, KvStore};
use crate::mutation::Mutation;
use crate::node::{Node, NotLeader, Proposal};
use crate::types::Command;

/// What became of a client request at a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Appended to the leader's log; the reply comes when `Apply` for `proposal.index` carries
    /// this command.
    Proposed(Proposal<KvCommand>),
    /// Answered at once from local state (only under the `stale-read` bug).
    Answered(KvReply),
}

/// Submits `cmd` at `node`, whose applied state is `store`.
pub fn submit(
    node: &mut Node<KvCommand>,
    store: &KvStore,
    cmd: KvCommand,
) -> Result<Submitted, NotLeader> {
    if answers_locally(node, &cmd.op) {
        return Ok(Submitted::Answered(KvReply::Value(store.get(cmd.op.key()))));
    }
    node.propose(cmd).map(Submitted::Proposed)
}

/// Whether `node` answers `op` at once from its local state instead of through the log: only a
/// leader's Get under the `stale-read` bug. Generic over the log's command type so that the
/// model checker, whose log carries a compact encoding of KV commands, decides as `submit` does.
pub fn answers_locally<C: Command>(node: &Node<C>, op: &KvOp) -> bool {
    matches!(op, KvOp::Get { .. })
        && node.is_leader()
        && node.config().mutations.contains(Mutation::StaleRead)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mutation::MutationSet;
    use crate::node::{Config, Effect};
    use crate::types::HardState;

    fn get(seq: u64) -> KvCommand {
        KvCommand {
            client: 1,
            seq,
            op: KvOp::Get { key: "k".into() },
        }
    }

    fn single_leader(mutations: MutationSet) -> Node<KvCommand> {
        let mut node = Node::new(
            Config::new(0, 1).with_mutations(mutations),
            HardState::default(),
        );
        node.election_timeout();
        assert!(node.is_leader());
        node
    }

    #[test]
    fn a_read_goes_through_the_log() {
        let mut node = single_leader(MutationSet::NONE);
        let store = KvStore::default();
        let Ok(Submitted::Proposed(p)) = submit(&mut node, &store, get(1)) else {
            panic!("a correct leader must propose a read");
        };
        assert_eq!(p.index, 1);
        assert!(p.effects.contains(&Effect::Apply {
            index: 1,
            command: get(1)
        }));
    }

    #[test]
    fn stale_read_answers_locally() {
        let mut node = single_leader(MutationSet::NONE.with(Mutation::StaleRead));
        let store = KvStore::default();
        assert_eq!(
            submit(&mut node, &store, get(1)),
            Ok(Submitted::Answered(KvReply::Value(String::new())))
        );
        assert!(node.log().is_empty());
    }

    #[test]
    fn a_follower_refuses() {
        let mut node = Node::new(Config::new(0, 3), HardState::default());
        assert_eq!(
            submit(&mut node, &KvStore::default(), get(1)),
            Err(NotLeader { leader_hint: None })
        );
    }
}
