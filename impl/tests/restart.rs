//! Crash and restart (Figure 2 "Persistent state" vs "Volatile state"): a restarted server is
//! rebuilt from what it persisted and nothing else, and re-applies its log once told the commit.

mod support;

use raft_impl::storage::{LogStore, MemoryStore};
use raft_impl::{Effect, Mutation, Role};
use support::*;

#[test]
fn a_restarted_leader_keeps_only_its_persisted_state() {
    let mut store = MemoryStore::new();
    let mut leader = node(0, 3, hard(0, None, &[]));
    save_persists(&mut store, &elect(&mut leader));
    for command in [10, 11] {
        save_persists(&mut store, &leader.propose(command).unwrap().effects);
    }
    save_persists(&mut store, &leader.handle(1, success(1, 2)));
    assert_eq!((leader.commit_index(), leader.match_index(1)), (2, 2));

    let restarted = restart(&leader, &store);
    // Exactly a fresh server holding the persisted state: follower, nothing committed,
    // applied or known about peers.
    assert_eq!(restarted, node(0, 3, hard(1, Some(0), &[(1, 10), (1, 11)])));
    assert_eq!(restarted.role(), Role::Follower);
    assert_eq!((restarted.commit_index(), restarted.last_applied()), (0, 0));
    assert_eq!((restarted.match_index(1), restarted.next_index(1)), (0, 1));
    assert_eq!(restarted.leader_hint(), None);
}

#[test]
fn a_restart_loses_what_was_never_persisted() {
    let mut store = MemoryStore::new();
    let mut n = node(1, 3, hard(0, None, &[]));
    save_persists(&mut store, &n.handle(0, append(1, 0, 0, &[(1, 10)], 0)));
    // The next step's effects are lost in the crash.
    n.handle(0, append(1, 1, 1, &[(1, 11)], 0));
    assert_eq!(restart(&n, &store), node(1, 3, hard(1, None, &[(1, 10)])));
}

/// A step that writes two records may crash after any prefix of them reached the disk. Each
/// prefix recovers to a state the server could have reached anyway (the old one; the new term
/// adopted but its entries not yet received; the new one), never one holding an entry of a
/// term it had not adopted, which a log record written first would leave. The reply did not
/// leave before both records were durable, so the leader sends again, and the restarted server
/// writes exactly what the crash lost and ends where the uninterrupted one did.
#[test]
fn a_crash_after_any_prefix_of_a_steps_records_recovers_safely() {
    let old = hard(2, Some(2), &[(1, 10)]);
    let request = append(3, 1, 1, &[(3, 11)], 0);
    let mut n = node(1, 3, old.clone());
    let effects = n.handle(0, request.clone());
    let records = vec![term_vote(3, None), log_from(2, &[(3, 11)])];
    let rest = vec![send(0, success(3, 2)), RESET];
    assert_eq!(effects, [records.clone(), rest.clone()].concat());

    let recovered = [
        old.clone(),
        hard(3, None, &[(1, 10)]),
        n.hard_state().clone(),
    ];
    for (kept, expected) in recovered.iter().enumerate() {
        let mut store = store_of(&old);
        for effect in &records {
            if let Effect::Persist(record) = effect {
                let Ok(_) = store.append(std::slice::from_ref(record));
            }
        }
        store.crash(kept);
        let state = store.synced_state();
        assert_eq!(state, expected, "a crash keeping {kept} of the 2 records");
        assert!(
            state.log.iter().all(|e| e.term <= state.current_term),
            "an entry of a term not adopted: {state:?}"
        );
        let mut restarted = restart(&n, &store);
        assert_eq!(
            restarted.handle(0, request.clone()),
            [&records[kept..], &rest[..]].concat(),
            "redelivered after a crash keeping {kept}"
        );
        assert_eq!(restarted.hard_state(), n.hard_state());
    }
}

#[test]
fn a_restarted_follower_reapplies_from_index_one() {
    let mut store = MemoryStore::new();
    let mut n = node(1, 3, hard(0, None, &[]));
    let effects = n.handle(0, append(1, 0, 0, &[(1, 10), (1, 11)], 2));
    assert_eq!(
        effects,
        vec![
            term_vote(1, None),
            log_from(1, &[(1, 10), (1, 11)]),
            send(0, success(1, 2)),
            apply(1, 10),
            apply(2, 11),
            RESET,
        ]
    );
    save_persists(&mut store, &effects);
    let mut n = restart(&n, &store);
    assert_eq!(
        n.handle(0, append(1, 2, 1, &[], 1)),
        vec![send(0, success(1, 2)), apply(1, 10), RESET]
    );
    assert_eq!(
        n.handle(0, append(1, 2, 1, &[], 2)),
        vec![send(0, success(1, 2)), apply(2, 11), RESET]
    );
}

#[test]
fn a_restarted_server_remembers_its_vote() {
    let mut store = MemoryStore::new();
    let mut n = node(1, 3, hard(0, None, &[]));
    save_persists(&mut store, &n.handle(0, vote_request(1, 0, 0)));
    let mut n = restart(&n, &store);
    assert_eq!(
        n.handle(2, vote_request(1, 0, 0)),
        vec![send(2, vote_reply(1, false))]
    );
}

#[test]
fn vote_not_persisted_bug_votes_twice_in_a_term_across_a_restart() {
    let mut store = MemoryStore::new();
    let mut n = mutated(1, 3, Mutation::VoteNotPersisted, hard(0, None, &[]));
    save_persists(&mut store, &n.handle(0, vote_request(1, 0, 0)));
    let mut n = restart(&n, &store);
    assert_eq!(
        n.handle(2, vote_request(1, 0, 0)),
        vec![term_vote(1, None), send(2, vote_reply(1, true)), RESET,]
    );
}

#[test]
fn term_not_persisted_bug_forgets_the_term_across_a_restart() {
    let mut store = MemoryStore::new();
    let mut n = mutated(1, 3, Mutation::TermNotPersisted, hard(0, None, &[]));
    save_persists(&mut store, &n.handle(0, vote_request(3, 0, 0)));
    assert_eq!(restart(&n, &store).current_term(), 0);
}

#[test]
fn a_restarted_leader_must_win_a_new_election() {
    let mut store = MemoryStore::new();
    let mut leader = node(0, 3, hard(0, None, &[]));
    save_persists(&mut store, &elect(&mut leader));
    let mut n = restart(&leader, &store);
    assert!(n.propose(10).is_err());
    assert_eq!(
        n.election_timeout(),
        vec![
            term_vote(2, Some(0)),
            send(1, vote_request(2, 0, 0)),
            send(2, vote_request(2, 0, 0)),
            RESET,
        ]
    );
}
