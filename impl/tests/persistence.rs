//! Figure 2's persistence rule as the effects contract: a step that changes the hard state
//! emits, before any `Send`, a term/vote record (if the term or vote changed) and then a log
//! record (if the log changed), which replayed onto the old state give exactly the new one; a
//! step that changes nothing emits none. Also what each persistence bug does to the contract.

mod support;

use proptest::prelude::*;
use raft_impl::storage::{LogStore, MemoryStore};
use raft_impl::{Effect, Message, Mutation};
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
        vec![term_vote(1, None), send(0, vote_reply(1, true)), RESET,]
    );
    assert_eq!(n.voted_for(), Some(0));
}

#[test]
fn term_not_persisted_bug_persists_term_zero() {
    let mut n = mutated(1, 3, Mutation::TermNotPersisted, hard(0, None, &[]));
    assert_eq!(
        n.handle(0, vote_request(1, 0, 0)),
        vec![term_vote(0, Some(0)), send(0, vote_reply(1, true)), RESET,]
    );
    assert_eq!(n.current_term(), 1);
}

#[test]
fn ack_before_persist_bug_sends_replies_before_persisting() {
    let mut voter = mutated(1, 3, Mutation::AckBeforePersist, hard(0, None, &[]));
    assert_eq!(
        voter.handle(0, vote_request(1, 0, 0)),
        vec![send(0, vote_reply(1, true)), term_vote(1, Some(0)), RESET,]
    );
    let mut follower = mutated(1, 3, Mutation::AckBeforePersist, hard(1, None, &[]));
    assert_eq!(
        follower.handle(0, append(1, 0, 0, &[(1, 10)], 0)),
        vec![send(0, success(1, 1)), log_from(1, &[(1, 10)]), RESET,]
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

/// Carries out `effects` as a pipelined runtime may under the contract: each record is written
/// when it comes and synced only when a send must leave (every record before a send durable
/// first). Returns the messages sent.
fn run_pipelined(store: &mut MemoryStore<Cmd>, effects: &[Effect<Cmd>]) -> Vec<Message<Cmd>> {
    let mut sent = Vec::new();
    for effect in effects {
        match effect {
            Effect::Persist(record) => {
                let Ok(_) = store.append(std::slice::from_ref(record));
            }
            Effect::Send { msg, .. } => {
                let Ok(_) = store.sync();
                sent.push(msg.clone());
            }
            Effect::Apply { .. } | Effect::Restore(_) | Effect::ResetElectionTimer => {}
        }
    }
    sent
}

/// The bug puts the reply between the term/vote and the log record, so a runtime syncs only
/// the term before acknowledging: a crash before the next sync loses an entry the leader was
/// told is stored. A correct node's reply waits for both records.
#[test]
fn hardstate_before_entries_synced_bug_acknowledges_an_entry_a_crash_loses() {
    let request = append(1, 0, 0, &[(1, 10)], 0);
    let mut correct = node(1, 3, hard(0, None, &[]));
    let effects = correct.handle(0, request.clone());
    assert_eq!(
        effects,
        vec![
            term_vote(1, None),
            log_from(1, &[(1, 10)]),
            send(0, success(1, 1)),
            RESET,
        ]
    );
    let mut store = MemoryStore::new();
    assert_eq!(run_pipelined(&mut store, &effects), vec![success(1, 1)]);
    store.crash(0);
    assert_eq!(*store.synced_state(), hard(1, None, &[(1, 10)]));

    let mut buggy = mutated(
        1,
        3,
        Mutation::HardStateBeforeEntriesSynced,
        hard(0, None, &[]),
    );
    let effects = buggy.handle(0, request);
    assert_eq!(
        effects,
        vec![
            term_vote(1, None),
            send(0, success(1, 1)),
            log_from(1, &[(1, 10)]),
            RESET,
        ]
    );
    let mut store = MemoryStore::new();
    assert_eq!(run_pipelined(&mut store, &effects), vec![success(1, 1)]);
    store.crash(0);
    assert_eq!(*store.synced_state(), hard(1, None, &[]));
}

/// The bug changes only steps with two records: a step with one keeps its sends after it.
#[test]
fn hardstate_before_entries_synced_bug_leaves_single_record_steps_alone() {
    let mut voter = mutated(
        1,
        3,
        Mutation::HardStateBeforeEntriesSynced,
        hard(0, None, &[]),
    );
    assert_eq!(
        voter.handle(0, vote_request(1, 0, 0)),
        vec![term_vote(1, Some(0)), send(0, vote_reply(1, true)), RESET]
    );
    let mut follower = mutated(
        1,
        3,
        Mutation::HardStateBeforeEntriesSynced,
        hard(1, None, &[]),
    );
    assert_eq!(
        follower.handle(0, append(1, 0, 0, &[(1, 10)], 0)),
        vec![log_from(1, &[(1, 10)]), send(0, success(1, 1)), RESET]
    );
}

/// The bug truncates the conflicting suffix in memory but its log record carries the stale
/// entries past the new one, as a store that overwrites in place without truncating keeps
/// them: replayed onto the old state, the record leaves index 3 holding term 2's entry, which
/// the restarted server then holds though the leader never had it.
#[test]
fn append_without_truncate_bug_leaves_the_stale_suffix_on_disk() {
    let old = hard(3, Some(0), &[(1, 10), (2, 11), (2, 12)]);
    let request = append(3, 1, 1, &[(3, 20)], 0);
    let mut correct = node(1, 3, old.clone());
    assert_eq!(
        correct.handle(0, request.clone()),
        vec![log_from(2, &[(3, 20)]), send(0, success(3, 2)), RESET]
    );

    let mut buggy = mutated(1, 3, Mutation::AppendWithoutTruncate, old.clone());
    let effects = buggy.handle(0, request);
    assert_eq!(
        effects,
        vec![
            log_from(2, &[(3, 20), (2, 12)]),
            send(0, success(3, 2)),
            RESET,
        ]
    );
    // In memory the two agree; on disk they do not.
    assert_eq!(buggy.hard_state(), correct.hard_state());
    let mut store = store_of(&old);
    save_persists(&mut store, &effects);
    assert_eq!(
        *store.synced_state(),
        hard(3, Some(0), &[(1, 10), (3, 20), (2, 12)])
    );
    assert_eq!(
        restart(&buggy, &store).log(),
        log(&[(1, 10), (3, 20), (2, 12)])
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
