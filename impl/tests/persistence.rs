//! Figure 2's persistence rule as the effects contract: a step that changes the hard state
//! emits, before any `Send`, a term/vote record (if the term or vote changed) and then a log
//! record (if the log changed), which replayed onto the old state give exactly the new one; a
//! step that changes nothing emits none. Also what each persistence bug does to the contract.

mod support;

use proptest::prelude::*;
use raft_impl::storage::MemoryStore;
use raft_impl::Mutation;
use support::cluster::Cluster;
use support::*;

/// What a restart rebuilds from is what the records replay to: for a correct node, every
/// step's records, saved in order, keep the store equal to the state in memory.
#[test]
fn a_correct_nodes_records_replay_to_its_hard_state() {
    let mut store = MemoryStore::new();
    let mut n = node(1, 3, hard(0, None, &[]));
    let steps = [
        vote_request(1, 0, 0),
        append(2, 0, 0, &[(2, 10), (2, 11)], 0),
        append(3, 1, 2, &[(3, 12)], 0),
        vote_request(4, 2, 3),
    ];
    for msg in steps {
        save_persists(&mut store, &n.handle(0, msg));
        assert_eq!(store.synced_state(), n.hard_state());
    }
    assert_eq!(*n.hard_state(), hard(4, Some(0), &[(2, 10), (3, 12)]));
}

#[test]
fn vote_not_persisted_bug_persists_no_vote() {
    let mut n = mutated(1, 3, Mutation::VoteNotPersisted, hard(0, None, &[]));
    assert_eq!(
        n.handle(0, vote_request(1, 0, 0)),
        vec![
            term_vote(1, None),
            send(0, vote_reply(1, true)),
            RESET,
        ]
    );
    assert_eq!(n.voted_for(), Some(0));
}

#[test]
fn term_not_persisted_bug_persists_term_zero() {
    let mut n = mutated(1, 3, Mutation::TermNotPersisted, hard(0, None, &[]));
    assert_eq!(
        n.handle(0, vote_request(1, 0, 0)),
        vec![
            term_vote(0, Some(0)),
            send(0, vote_reply(1, true)),
            RESET,
        ]
    );
    assert_eq!(n.current_term(), 1);
}

#[test]
fn ack_before_persist_bug_sends_replies_before_persisting() {
    let mut voter = mutated(1, 3, Mutation::AckBeforePersist, hard(0, None, &[]));
    assert_eq!(
        voter.handle(0, vote_request(1, 0, 0)),
        vec![
            send(0, vote_reply(1, true)),
            term_vote(1, Some(0)),
            RESET,
        ]
    );
    let mut follower = mutated(1, 3, Mutation::AckBeforePersist, hard(1, None, &[]));
    assert_eq!(
        follower.handle(0, append(1, 0, 0, &[(1, 10)], 0)),
        vec![
            send(0, success(1, 1)),
            log_from(1, &[(1, 10)]),
            RESET,
        ]
    );
}

#[test]
fn ack_before_persist_bug_leaves_requests_after_the_persist() {
    let mut n = mutated(0, 3, Mutation::AckBeforePersist, hard(0, None, &[]));
    assert_eq!(
        n.election_timeout(),
        vec![
            term_vote(1, Some(0)),
            send(1, vote_request(1, 0, 0)),
            send(2, vote_request(1, 0, 0)),
            RESET,
        ]
    );
}

/// One event of a random schedule.
#[derive(Clone, Debug)]
enum Event {
    Timeout(u8),
    Heartbeat(u8),
    Propose(u8),
    /// Deliver the in-flight message at this position (modulo the number in flight).
    Deliver(usize),
    /// Deliver a copy and keep the original in flight.
    Duplicate(usize),
    Drop(usize),
    Restart(u8),
}

fn event() -> impl Strategy<Value = Event> {
    let id = 0..3u8;
    prop_oneof![
        1 => id.clone().prop_map(Event::Timeout),
        4 => id.clone().prop_map(Event::Heartbeat),
        4 => id.clone().prop_map(Event::Propose),
        30 => any::<usize>().prop_map(Event::Deliver),
        1 => any::<usize>().prop_map(Event::Duplicate),
        1 => any::<usize>().prop_map(Event::Drop),
        1 => id.prop_map(Event::Restart),
    ]
}

proptest! {
    /// Under any interleaving of timeouts, proposals, delivery, duplication, loss and crashes,
    /// every step keeps the persist contract (checked by `Cluster` on each step), there is at
    /// most one leader per term, and no two servers apply different commands at one index.
    #[test]
    fn every_step_keeps_the_contract_under_any_schedule(
        events in proptest::collection::vec(event(), 0..300)
    ) {
        let mut cluster = Cluster::new(3);
        let mut next_command = 0;
        for event in events {
            let in_flight = cluster.network.len();
            match event {
                Event::Timeout(id) => cluster.election_timeout(id),
                Event::Heartbeat(id) => cluster.broadcast_append(id),
                Event::Propose(id) => {
                    next_command += 1;
                    cluster.propose(id, next_command);
                }
                Event::Deliver(k) if in_flight > 0 => {
                    let envelope = cluster.network.remove(k % in_flight).unwrap();
                    cluster.deliver(envelope);
                }
                Event::Duplicate(k) if in_flight > 0 => {
                    let envelope = cluster.network[k % in_flight].clone();
                    cluster.deliver(envelope);
                }
                Event::Drop(k) if in_flight > 0 => {
                    cluster.network.remove(k % in_flight);
                }
                Event::Restart(id) => cluster.crash_and_restart(id),
                Event::Deliver(_) | Event::Duplicate(_) | Event::Drop(_) => {}
            }
        }
    }
}
