//! The KV service's front door: how a server turns a client request into either a log entry or
//! an immediate answer. Every request, reads included, goes through the log, so a read is
//! answered only once an entry of the leader's own term is committed after it: a deposed leader
//! that has not yet heard of its successor cannot answer from stale state. A proposed request
//! then waits in a [`PendingRequests`] table until its index is applied or its server stops
//! leading.

mod pending;

pub use pending::{settle, PendingRequests, Settled};

use crate::kv::{KvCommand, KvOutcome, KvRequest, KvRules, KvStore, LogTime};
use crate::node::{Node, NotLeader, Proposal};
use crate::rules::Rules;
use crate::types::Command;

/// What became of a client request at a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Appended to the leader's log as `command` (the request with the leader's stamp); the
    /// reply comes when `Apply` for `proposal.index` carries this command.
    Proposed {
        proposal: Proposal<KvCommand>,
        command: KvCommand,
    },
    /// Answered at once, without the log: a request the size rules refuse (it never enters the
    /// log), or a leader's Get under the `stale-read` bug.
    Answered(KvOutcome),
}

/// Submits `request` at `node`, whose applied state is `store`; `now` is this server's clock,
/// which a leader stamps into the command it proposes (the store expires sessions by these
/// stamps, see [`crate::kv`]).
pub fn submit<R: Rules, K: KvRules>(
    node: &mut Node<KvCommand, R>,
    store: &KvStore<K>,
    request: KvRequest,
    now: LogTime,
) -> Result<Submitted, NotLeader> {
    if let Err(too_large) = request.check_size() {
        return Ok(Submitted::Answered(Err(too_large.into())));
    }
    if let KvRequest::Get { key } = &request {
        if answers_locally(node, &request) {
            return Ok(Submitted::Answered(Ok(store.read(key))));
        }
    }
    let command = KvCommand { time: now, request };
    let proposal = node.propose(command.clone())?;
    Ok(Submitted::Proposed { proposal, command })
}

/// Whether `node` answers `request` at once from its local state instead of through the log:
/// only a leader's Get under the `stale-read` bug ([`Rules::reads_locally`]). Generic over the
/// log's command type so that the model checker, whose log carries a compact encoding of KV
/// commands, decides as `submit` does.
pub fn answers_locally<C: Command, R: Rules>(node: &Node<C, R>, request: &KvRequest) -> bool {
    matches!(request, KvRequest::Get { .. }) && node.is_leader() && node.rules().reads_locally()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvError, KvOp, KvReply};
    use crate::mutation::{Mutation, MutationSet};
    use crate::node::{Config, Effect};
    use crate::types::HardState;

    fn get() -> KvRequest {
        KvRequest::Get { key: "k".into() }
    }

    fn single_leader(mutations: MutationSet) -> Node<KvCommand, MutationSet> {
        let mut node = Node::with_rules(Config::new(0, 1), mutations, HardState::default());
        node.election_timeout();
        assert!(node.is_leader());
        node
    }

    #[test]
    fn a_read_goes_through_the_log() {
        let mut node = single_leader(MutationSet::NONE);
        let store = KvStore::default();
        let Ok(Submitted::Proposed { proposal: p, .. }) = submit(&mut node, &store, get(), 7)
        else {
            panic!("a correct leader must propose a read");
        };
        assert_eq!(p.index, 1);
        let stamped = KvCommand {
            time: 7,
            request: get(),
        };
        assert!(p.effects.contains(&Effect::Apply {
            index: 1,
            command: stamped
        }));
    }

    #[test]
    fn stale_read_answers_locally() {
        let mut node = single_leader(MutationSet::NONE.with(Mutation::StaleRead));
        let store = KvStore::default();
        assert_eq!(
            submit(&mut node, &store, get(), 0),
            Ok(Submitted::Answered(Ok(KvReply::Absent)))
        );
        assert!(node.log().is_empty());
    }

    #[test]
    fn a_follower_refuses() {
        let mut node = Node::new(Config::new(0, 3), HardState::default());
        assert_eq!(
            submit(&mut node, &KvStore::default(), get(), 0),
            Err(NotLeader { leader_hint: None })
        );
    }

    /// A Put too large for the store is refused before it enters the log.
    #[test]
    fn a_value_too_large_never_enters_the_log() {
        let mut node = single_leader(MutationSet::NONE);
        let put = KvRequest::InSession {
            session: crate::kv::Session { id: 1, nonce: 1 },
            seq: 1,
            op: KvOp::Put {
                key: "k".into(),
                value: "v".repeat(crate::limits::MAX_VALUE_BYTES + 1),
            },
        };
        let Ok(Submitted::Answered(Err(refused))) = submit(&mut node, &KvStore::default(), put, 0)
        else {
            panic!("an oversized Put must be refused at once");
        };
        assert!(matches!(refused, KvError::TooLarge(_)), "{refused}");
        assert!(node.log().is_empty());
    }
}
