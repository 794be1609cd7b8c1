//! Figure 13 (InstallSnapshot) and log compaction (§7 of the paper, chapter 5 of the
//! dissertation), rule by rule: the service's snapshot, the leader that sends one to a follower
//! whose next entry it compacted away, the follower that installs it, and a restart from it.

mod support;

use raft_impl::node::Flow;
use raft_impl::types::MAX_INDEX;
use raft_impl::{Effect, HardState, Implausible, Mutation, Record, Refusal, SnapshotError};
use support::cluster::Cluster;
use support::*;

/// Leader 0 of 3 in term 1 whose five entries are committed and applied (follower 1 matched
/// them all), then snapshotted at `at`.
fn compacted_leader(at: u64) -> raft_impl::Node<Cmd> {
    let mut leader = leader_with(3, &[10, 11, 12, 13, 14]);
    leader.handle(1, success(1, 5));
    assert_eq!(leader.last_applied(), 5);
    let effects = leader.snapshot(at, at.to_le_bytes().to_vec()).unwrap();
    assert_eq!(
        effects,
        vec![Effect::Persist(Record::Snapshot(snapshot(at, 1)))]
    );
    leader
}

#[test]
fn a_snapshot_compacts_the_log_up_to_its_index_and_keeps_the_rest() {
    let leader = compacted_leader(3);
    assert_eq!(leader.first_index(), 4);
    assert_eq!(leader.log(), &log(&[(1, 13), (1, 14)])[..]);
    assert_eq!(leader.hard_state().last_index(), 5);
    assert_eq!(leader.hard_state().term_at(3), Some(1));
    assert_eq!(leader.hard_state().term_at(2), None);
}

#[test]
fn a_snapshot_past_the_applied_index_is_refused_and_an_old_one_changes_nothing() {
    let mut leader = leader_with(3, &[10, 11]);
    assert_eq!(
        leader.snapshot(1, vec![]),
        Err(SnapshotError::NotApplied {
            index: 1,
            applied: 0
        })
    );
    let mut leader = compacted_leader(3);
    let before = leader.clone();
    assert_eq!(leader.snapshot(2, vec![]), Ok(vec![]));
    assert_eq!(leader.snapshot(3, vec![]), Ok(vec![]));
    assert_eq!(leader, before);
}

#[test]
fn a_follower_behind_the_snapshot_is_sent_it_and_waits_for_the_answer() {
    let mut leader = compacted_leader(3);
    // Follower 2 never answered: its next index (1) was compacted away.
    let effects = leader.broadcast_append();
    assert!(effects.contains(&send(2, install(1, snapshot(3, 1)))));
    assert_eq!(leader.progress(2).flow(), Flow::Snapshot { last_index: 3 });
    // A late answer to an earlier AppendEntries, a success or a conflict, starts no second
    // transfer.
    assert_eq!(leader.handle(2, success(1, 0)), vec![]);
    assert_eq!(leader.handle(2, conflict(1, None, 0, 0)), vec![]);
    assert_eq!(leader.progress(2).flow(), Flow::Snapshot { last_index: 3 });
    // Nothing else goes while it waits, and the heartbeat sends the snapshot again.
    assert_eq!(leader.replicate(), vec![]);
    assert_eq!(
        leader.replicate_to(2),
        vec![send(2, install(1, snapshot(3, 1)))]
    );
    // The answer is an acknowledgement at the snapshot's index: streaming resumes after it.
    let effects = leader.handle(2, success(1, 3));
    assert_eq!(leader.match_index(2), 3);
    assert_eq!(leader.progress(2).flow(), Flow::Replicate);
    assert_eq!(
        effects,
        vec![send(2, append(1, 3, 1, &[(1, 13), (1, 14)], 5))]
    );
}

#[test]
fn a_follower_with_a_matching_entry_keeps_the_suffix_after_the_snapshot() {
    // Figure 13, rule 6: the follower holds the snapshot's last entry (2, term 1) and one after.
    let mut follower = node(1, 3, hard(1, None, &[(1, 10), (1, 11), (1, 12)]));
    let effects = follower.handle(0, install(1, snapshot(2, 1)));
    assert_eq!(
        effects,
        vec![
            Effect::Persist(Record::Snapshot(snapshot(2, 1))),
            send(0, success(1, 2)),
            Effect::Restore(snapshot(2, 1)),
            RESET,
        ]
    );
    assert_eq!(follower.log(), &log(&[(1, 12)])[..]);
    assert_eq!((follower.commit_index(), follower.last_applied()), (2, 2));
}

#[test]
fn a_follower_whose_entry_conflicts_drops_it_and_everything_after() {
    // Figure 13, rule 7: the follower's entry 2 is of term 1, the snapshot's of term 2.
    let mut follower = node(1, 3, hard(2, None, &[(1, 10), (1, 11), (1, 12)]));
    let effects = follower.handle(0, install(2, snapshot(2, 2)));
    assert_eq!(
        effects,
        vec![
            log_from(2, &[]),
            Effect::Persist(Record::Snapshot(snapshot(2, 2))),
            send(0, success(2, 2)),
            Effect::Restore(snapshot(2, 2)),
            RESET,
        ]
    );
    assert!(follower.log().is_empty());
    assert_eq!(follower.hard_state().last_index(), 2);
    assert_eq!(follower.hard_state().last_term(), 2);
}

#[test]
fn a_snapshot_at_or_below_the_commit_index_changes_nothing() {
    let mut follower = node(1, 3, hard(1, None, &[(1, 10), (1, 11), (1, 12)]));
    follower.handle(0, append(1, 3, 1, &[], 3));
    assert_eq!(follower.commit_index(), 3);
    let before = follower.hard_state().clone();
    let effects = follower.handle(0, install(1, snapshot(2, 1)));
    assert_eq!(effects, vec![send(0, success(1, 2)), RESET]);
    assert_eq!(follower.hard_state(), &before);
    assert_eq!(follower.last_applied(), 3);
}

#[test]
fn a_snapshot_of_an_older_term_is_refused() {
    let mut follower = node(1, 3, hard(3, None, &[(1, 10)]));
    let effects = follower.handle(0, install(2, snapshot(5, 2)));
    assert_eq!(effects, vec![send(0, conflict(3, None, 0, 1))]);
    assert!(follower.snapshot_state().is_none());
}

#[test]
fn an_append_whose_start_the_snapshot_covers_is_trimmed_to_it() {
    let mut follower = node(1, 3, hard(1, None, &[]));
    follower.handle(0, install(1, snapshot(3, 1)));
    // Entirely covered: a success at the commit index (past its last entry), nothing written.
    let effects = follower.handle(0, append(1, 1, 1, &[(1, 11)], 3));
    assert_eq!(effects, vec![send(0, success(1, 3)), RESET]);
    // Partly covered: the entries past the snapshot are appended after it.
    let effects = follower.handle(0, append(1, 2, 1, &[(1, 12), (1, 13)], 3));
    assert_eq!(
        effects,
        vec![log_from(4, &[(1, 13)]), send(0, success(1, 4)), RESET]
    );
    // An entry at the snapshot's index of another term comes from no honest leader.
    let before = follower.hard_state().clone();
    let effects = follower.handle(0, append(1, 2, 1, &[(2, 12), (2, 13)], 3));
    assert!(matches!(
        &effects[0],
        Effect::Send {
            msg: raft_impl::Message::AppendEntriesReply {
                outcome: raft_impl::AppendOutcome::Conflict(_),
                ..
            },
            ..
        }
    ));
    assert_eq!(follower.hard_state(), &before);
}

#[test]
fn a_snapshot_no_honest_leader_sends_is_refused_before_anything_changes() {
    let mut follower = node(1, 3, hard(1, None, &[(1, 10)]));
    let before = follower.clone();
    for (term, forged) in [(1, snapshot(MAX_INDEX + 1, 1)), (1, snapshot(4, 2))] {
        let (last_index, last_term) = (forged.last_index, forged.last_term);
        assert_eq!(
            follower.try_handle(0, install(term, forged)),
            Err(Refusal::ImplausibleSnapshot {
                last_index,
                last_term,
                term
            })
        );
        assert_eq!(follower, before);
    }
    // At the limit, it is taken; the indices after it do not overflow.
    follower.handle(0, install(1, snapshot(MAX_INDEX, 1)));
    assert_eq!(follower.first_index(), MAX_INDEX + 1);
    follower.handle(0, append(1, MAX_INDEX + 5, 1, &[], 0));
}

#[test]
fn forged_records_past_the_index_limit_replay_without_overflow_and_are_implausible() {
    let mut state = HardState::<Cmd> {
        current_term: 1,
        ..HardState::default()
    };
    state
        .apply(Record::Snapshot(snapshot(u64::MAX - 1, 1)))
        .unwrap();
    let entries = log(&[(1, 1), (1, 2)]);
    state
        .apply(Record::Log {
            from: u64::MAX,
            entries,
        })
        .unwrap();
    assert_eq!(state.last_index(), u64::MAX);
    assert_eq!(
        state.check(3),
        Err(Implausible::IndexPastLimit { last: u64::MAX })
    );
}

#[test]
fn a_probe_from_far_behind_a_follower_snapshot_is_answered_with_its_commit_index() {
    let mut follower = node(1, 3, hard(1, None, &[]));
    follower.handle(0, install(1, snapshot(40, 1)));
    let effects = follower.handle(0, append(1, 0, 0, &[(1, 1)], 40));
    assert_eq!(effects, vec![send(0, success(1, 40)), RESET]);
}

#[test]
fn a_restart_starts_from_the_snapshot() {
    let leader = compacted_leader(3);
    let store = store_of(leader.hard_state());
    let restarted = restart(&leader, &store);
    assert_eq!(restarted.snapshot_state(), Some(&snapshot(3, 1)));
    assert_eq!((restarted.commit_index(), restarted.last_applied()), (3, 3));
    assert_eq!(restarted.hard_state(), leader.hard_state());
}

#[test]
fn the_snapshot_regress_bug_takes_the_state_machine_back() {
    let mut follower = mutated(
        1,
        3,
        Mutation::SnapshotRegress,
        hard(1, None, &[(1, 10), (1, 11), (1, 12)]),
    );
    follower.handle(0, append(1, 3, 1, &[], 3));
    let effects = follower.handle(0, install(1, snapshot(2, 1)));
    assert!(effects.contains(&Effect::Restore(snapshot(2, 1))));
    assert_eq!(follower.last_applied(), 2);
}

#[test]
fn the_discarding_bug_drops_a_matching_suffix() {
    let mut follower = mutated(
        1,
        3,
        Mutation::SnapshotDiscardsMatchingSuffix,
        hard(1, None, &[(1, 10), (1, 11), (1, 12)]),
    );
    follower.handle(0, install(1, snapshot(2, 1)));
    assert!(follower.log().is_empty());
    assert_eq!(follower.hard_state().last_index(), 2);
}

#[test]
fn the_term_as_current_bug_takes_the_term_back() {
    let mut follower = mutated(
        1,
        3,
        Mutation::SnapshotTermAsCurrent,
        hard(3, Some(2), &[(1, 10)]),
    );
    let effects = follower.handle(0, install(3, snapshot(2, 1)));
    assert_eq!(follower.current_term(), 1);
    assert_eq!(effects[0], term_vote(1, Some(2)));
}

/// A whole cluster through compaction, a follower that was away catching up by
/// InstallSnapshot, and restarts from snapshots: every step's records replay to its state
/// (the harness checks the persist contract), nobody applies out of order or goes back, and
/// every server ends with the same state machine.
#[test]
fn a_cluster_compacts_catches_a_follower_up_and_restarts_from_snapshots() {
    let mut cluster = Cluster::new(3);
    cluster.election_timeout(0);
    cluster.deliver_all();
    // Server 2 is away while five commands commit on 0 and 1.
    for command in 1..=5 {
        cluster.propose(0, command);
        cluster.broadcast_append(0);
        cluster.network.retain(|e| e.to != 2 && e.from != 2);
        cluster.deliver_all();
    }
    cluster.broadcast_append(0);
    cluster.network.retain(|e| e.to != 2);
    cluster.deliver_all();
    assert_eq!(cluster.nodes[1].commit_index(), 5);
    cluster.snapshot(0, 4);
    cluster.snapshot(1, 5);
    // Server 2 is back: its next index was compacted away on the leader.
    cluster.broadcast_append(0);
    cluster.deliver_all();
    cluster.broadcast_append(0);
    cluster.deliver_all();
    let installed = cluster.nodes[2].snapshot_state().expect("installed");
    assert_eq!((installed.last_index, installed.last_term), (4, 1));
    assert_eq!(cluster.nodes[2].last_applied(), 5);
    assert_eq!(cluster.nodes[0].match_index(2), 5);
    for id in 0..3 {
        cluster.crash_and_restart(id);
    }
    cluster.election_timeout(1);
    cluster.deliver_all();
    cluster.propose(1, 6);
    cluster.broadcast_append(1);
    cluster.deliver_all();
    cluster.broadcast_append(1);
    cluster.deliver_all();
    for node in &cluster.nodes {
        assert_eq!(node.last_applied(), 6, "{node:?}");
        assert_eq!(node.hard_state().last_index(), 6);
    }
    assert_eq!(cluster.applied.get(&6), Some(&6));
}
