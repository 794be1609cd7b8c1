//! Log replication (§5.3, Figure 2 "AppendEntries RPC"): the consistency check, its fast-backup
//! hints (XTerm / XIndex / XLen), how the leader uses them (retrying at once from where a
//! conflict moved it back), and truncation only at the first real conflict.

mod support;

use raft_impl::{Config, Effect, Mutation, Node, Role};
use support::*;

#[test]
fn a_follower_appends_new_entries_and_adopts_the_leaders_term() {
    let mut n = node(1, 3, hard(0, None, &[]));
    assert_eq!(
        n.handle(0, append(1, 0, 0, &[(1, 10), (1, 11)], 0)),
        vec![
            term_vote(1, None),
            log_from(1, &[(1, 10), (1, 11)]),
            send(0, success(1, 2)),
            RESET,
        ]
    );
    assert_eq!(n.leader_hint(), Some(0));
}

/// The record-level contract of a step that changes both: the new term (with the old term's
/// vote cleared) is written first, then the log from the first new index only, and the reply
/// comes after both, so a crash between the records leaves a server that merely heard of term
/// 3, and no acknowledgement ever covers an entry that might not be on disk.
#[test]
fn a_follower_behind_in_term_writes_the_term_then_the_new_entries_then_replies() {
    let mut n = node(1, 3, hard(2, Some(2), &[(1, 10)]));
    assert_eq!(
        n.handle(0, append(3, 1, 1, &[(3, 11), (3, 12)], 0)),
        vec![
            term_vote(3, None),
            log_from(2, &[(3, 11), (3, 12)]),
            send(0, success(3, 3)),
            RESET,
        ]
    );
}

#[test]
fn a_heartbeat_that_changes_nothing_persists_nothing() {
    let mut n = node(1, 3, hard(1, None, &[(1, 10)]));
    assert_eq!(
        n.handle(0, append(1, 1, 1, &[], 0)),
        vec![send(0, success(1, 1)), RESET]
    );
}

#[test]
fn a_duplicated_append_persists_once() {
    let mut n = node(1, 3, hard(1, None, &[]));
    let msg = append(1, 0, 0, &[(1, 10)], 0);
    assert_eq!(
        n.handle(0, msg.clone()),
        vec![log_from(1, &[(1, 10)]), send(0, success(1, 1)), RESET]
    );
    assert_eq!(n.handle(0, msg), vec![send(0, success(1, 1)), RESET]);
}

/// Also when the first delivery wrote both records: the second finds the term and every
/// entry already there, and writes nothing before acknowledging again.
#[test]
fn a_duplicate_of_an_append_that_raised_the_term_writes_no_record() {
    let mut n = node(1, 3, hard(2, Some(2), &[(1, 10)]));
    let msg = append(3, 1, 1, &[(3, 11)], 0);
    assert_eq!(
        n.handle(0, msg.clone()),
        vec![
            term_vote(3, None),
            log_from(2, &[(3, 11)]),
            send(0, success(3, 2)),
            RESET,
        ]
    );
    assert_eq!(n.handle(0, msg), vec![send(0, success(3, 2)), RESET]);
}

#[test]
fn a_log_too_short_for_prev_log_index_reports_its_length() {
    let mut n = node(1, 3, hard(1, None, &[(1, 10), (1, 11)]));
    assert_eq!(
        n.handle(0, append(1, 5, 1, &[(1, 12)], 0)),
        vec![send(0, conflict(1, None, 0, 2)), RESET]
    );
    assert_eq!(n.log(), log(&[(1, 10), (1, 11)]));
}

#[test]
fn a_term_conflict_reports_the_term_and_its_first_index() {
    let entries = [(1, 10), (2, 11), (2, 12), (2, 13)];
    let mut n = node(1, 3, hard(2, None, &entries));
    assert_eq!(
        n.handle(0, append(3, 4, 3, &[(3, 14)], 0)),
        vec![
            term_vote(3, None),
            send(0, conflict(3, Some(2), 2, 4)),
            RESET,
        ]
    );
    // A failed check truncates nothing.
    assert_eq!(n.log(), log(&entries));
}

#[test]
fn a_conflicting_term_that_starts_the_log_reports_index_one() {
    let mut n = node(1, 3, hard(2, None, &[(1, 10), (1, 11)]));
    assert_eq!(
        n.handle(0, append(2, 2, 2, &[], 0)),
        vec![send(0, conflict(2, Some(1), 1, 2)), RESET]
    );
}

#[test]
fn an_append_of_an_older_term_is_refused_and_changes_nothing() {
    let mut n = node(1, 3, hard(3, None, &[(1, 10)]));
    assert_eq!(
        n.handle(0, append(2, 1, 1, &[(2, 11)], 1)),
        vec![send(0, conflict(3, Some(1), 1, 1))]
    );
    assert_eq!(n.log(), log(&[(1, 10)]));
    assert_eq!((n.commit_index(), n.leader_hint()), (0, None));
}

#[test]
fn truncation_happens_at_the_first_conflicting_index() {
    let mut n = node(1, 3, hard(2, None, &[(1, 10), (1, 11), (2, 12), (2, 13)]));
    assert_eq!(
        n.handle(0, append(3, 1, 1, &[(1, 11), (3, 14)], 0)),
        vec![
            term_vote(3, None),
            log_from(3, &[(3, 14)]),
            send(0, success(3, 3)),
            RESET,
        ]
    );
}

#[test]
fn a_stale_shorter_append_does_not_truncate() {
    let mut n = node(1, 3, hard(1, None, &[]));
    n.handle(0, append(1, 0, 0, &[(1, 10), (1, 11), (1, 12)], 0));
    // The first request of the same leader, delivered late: its entries all match.
    assert_eq!(
        n.handle(0, append(1, 0, 0, &[(1, 10)], 0)),
        vec![send(0, success(1, 1)), RESET]
    );
    assert_eq!(n.log(), log(&[(1, 10), (1, 11), (1, 12)]));
}

/// A retransmission that overlaps what the follower already holds writes only what is new:
/// the record starts at the first index the follower lacked, not at `prevLogIndex + 1`.
#[test]
fn an_overlapping_append_writes_from_its_first_new_entry() {
    let mut n = node(1, 3, hard(1, None, &[(1, 10), (1, 11), (1, 12)]));
    assert_eq!(
        n.handle(0, append(1, 1, 1, &[(1, 11), (1, 12), (1, 13)], 0)),
        vec![log_from(4, &[(1, 13)]), send(0, success(1, 4)), RESET]
    );
}

/// §5.3 with the record: a conflicting suffix longer than the leader's new entries is replaced
/// by one log record from the first conflicting index that holds only the leader's entries, so
/// that replaying it truncates the whole stale suffix, the entries past the new ones included.
#[test]
fn a_conflicting_suffix_is_replaced_from_the_first_conflicting_index() {
    let old = hard(3, Some(0), &[(1, 10), (1, 11), (2, 12), (2, 13), (2, 14)]);
    let mut n = node(1, 3, old.clone());
    let effects = n.handle(0, append(3, 2, 1, &[(3, 20)], 0));
    assert_eq!(
        effects,
        vec![log_from(3, &[(3, 20)]), send(0, success(3, 3)), RESET]
    );
    let mut store = store_of(&old);
    save_persists(&mut store, &effects);
    assert_eq!(
        *store.synced_state(),
        hard(3, Some(0), &[(1, 10), (1, 11), (3, 20)])
    );
}

#[test]
fn truncate_on_match_bug_loses_entries_to_a_stale_append() {
    let mut n = mutated(1, 3, Mutation::TruncateOnMatch, hard(1, None, &[]));
    n.handle(0, append(1, 0, 0, &[(1, 10), (1, 11), (1, 12)], 0));
    assert_eq!(
        n.handle(0, append(1, 0, 0, &[(1, 10)], 0)),
        vec![log_from(1, &[(1, 10)]), send(0, success(1, 1)), RESET]
    );
}

#[test]
fn a_follower_keeps_its_vote_when_it_accepts_entries() {
    let mut n = node(1, 3, hard(1, Some(0), &[]));
    assert_eq!(
        n.handle(0, append(1, 0, 0, &[], 0)),
        vec![send(0, success(1, 0)), RESET]
    );
    let mut buggy = mutated(1, 3, Mutation::VoteResetOnAppend, hard(1, Some(0), &[]));
    assert_eq!(
        buggy.handle(0, append(1, 0, 0, &[], 0)),
        vec![term_vote(1, None), send(0, success(1, 0)), RESET]
    );
}

/// The leader of term 6 whose log is `[1, 3, 3, 5]` (terms), as every hint test below starts.
fn leader_of_term_6() -> Node<Cmd> {
    let mut leader = node(0, 3, hard(5, None, &[(1, 10), (3, 11), (3, 12), (5, 13)]));
    elect(&mut leader);
    assert_eq!(leader.current_term(), 6);
    leader
}

#[test]
fn a_leader_lacking_the_conflicting_term_backs_up_to_its_first_index() {
    let mut leader = leader_of_term_6();
    let mut follower = node(
        1,
        3,
        hard(4, None, &[(1, 10), (3, 11), (3, 12), (4, 20), (4, 21)]),
    );
    let reply = conflict(6, Some(4), 4, 5);
    assert_eq!(
        follower.handle(0, append(6, 4, 5, &[], 0)),
        vec![term_vote(6, None), send(0, reply.clone()), RESET,]
    );
    // The reply moves the next index back, and the leader retries from there at once.
    let retry = append(6, 3, 3, &[(5, 13)], 0);
    assert_eq!(leader.handle(1, reply), vec![send(1, retry.clone())]);
    assert_eq!(leader.next_index(1), 4);
    assert_eq!(
        follower.handle(0, retry),
        vec![log_from(4, &[(5, 13)]), send(0, success(6, 4)), RESET,]
    );
    // Index 4 is of term 5, not the leader's: stored on a majority but not committed.
    assert_eq!(leader.handle(1, success(6, 4)), vec![]);
    assert_eq!((leader.match_index(1), leader.next_index(1)), (4, 5));
}

#[test]
fn a_leader_holding_the_conflicting_term_backs_up_past_its_last_entry_of_it() {
    let mut leader = leader_of_term_6();
    let mut follower = node(1, 3, hard(5, None, &[(1, 10), (3, 11), (3, 12), (3, 20)]));
    let reply = conflict(6, Some(3), 2, 4);
    assert_eq!(
        follower.handle(0, append(6, 4, 5, &[], 0)),
        vec![term_vote(6, None), send(0, reply.clone()), RESET,]
    );
    // The leader's last entry of term 3 is index 3: resend from 4, not from the hint's 2.
    let retry = append(6, 3, 3, &[(5, 13)], 0);
    assert_eq!(leader.handle(1, reply), vec![send(1, retry.clone())]);
    assert_eq!(
        follower.handle(0, retry),
        vec![log_from(4, &[(5, 13)]), send(0, success(6, 4)), RESET,]
    );
}

#[test]
fn a_leader_backs_up_to_the_end_of_a_short_log() {
    let mut leader = leader_of_term_6();
    let mut follower = node(1, 3, hard(6, None, &[(1, 10)]));
    let reply = conflict(6, None, 0, 1);
    assert_eq!(
        follower.handle(0, append(6, 4, 5, &[], 0)),
        vec![send(0, reply.clone()), RESET]
    );
    let retry = append(6, 1, 1, &[(3, 11), (3, 12), (5, 13)], 0);
    assert_eq!(leader.handle(1, reply), vec![send(1, retry.clone())]);
    assert_eq!(
        follower.handle(0, retry),
        vec![
            log_from(2, &[(3, 11), (3, 12), (5, 13)]),
            send(0, success(6, 4)),
            RESET,
        ]
    );
}

#[test]
fn a_retried_conflict_backs_up_one_term_per_round_trip_until_the_logs_match() {
    let mut leader = leader_of_term_6();
    let mut follower = node(1, 3, hard(5, None, &[(1, 10), (2, 11), (2, 12), (4, 20)]));
    // Each conflict reply carries the leader's retry back; no heartbeat is needed in between.
    let mut to_follower = vec![append(6, 4, 5, &[], 0)];
    let mut round_trips = 0;
    while let Some(request) = to_follower.pop() {
        round_trips += 1;
        for effect in follower.handle(0, request) {
            if let Effect::Send { msg, .. } = effect {
                for retry in leader.handle(1, msg) {
                    if let Effect::Send { to: 1, msg } = retry {
                        to_follower.push(msg);
                    }
                }
            }
        }
    }
    assert_eq!(
        round_trips, 3,
        "the first try, then one per conflicting term (4, 2)"
    );
    assert_eq!(follower.log(), leader.log());
    assert_eq!((leader.match_index(1), leader.next_index(1)), (4, 5));
}

/// The model checker's configuration: the retry is its own action there.
#[test]
fn without_send_on_reply_the_leader_waits_for_its_next_append() {
    let config = Config::new(0, 3).with_send_on_reply(false);
    let mut leader = Node::new(config, hard(5, None, &[(1, 10), (3, 11), (3, 12), (5, 13)]));
    elect(&mut leader);
    assert_eq!(leader.handle(1, conflict(6, None, 0, 1)), vec![]);
    assert_eq!(leader.next_index(1), 2);
    let retry = append(6, 1, 1, &[(3, 11), (3, 12), (5, 13)], 0);
    assert_eq!(leader.replicate_to(1), vec![send(1, retry)]);
}

#[test]
fn a_late_conflict_never_backs_up_below_what_is_known_to_match() {
    let mut leader = leader_with(3, &[10, 11]);
    leader.handle(1, success(1, 2));
    // Nor is it retried: the next index did not move back.
    assert_eq!(leader.handle(1, conflict(1, None, 0, 0)), vec![]);
    assert_eq!((leader.match_index(1), leader.next_index(1)), (2, 3));
    // Nor past the end of the leader's own log.
    assert_eq!(leader.handle(2, conflict(1, None, 0, 7)), vec![]);
    assert_eq!(leader.next_index(2), 3);
}

#[test]
fn a_leader_sends_each_peer_the_entries_from_its_next_index() {
    let mut leader = leader_with(3, &[10, 11]);
    let everything = append(1, 0, 0, &[(1, 10), (1, 11)], 0);
    assert_eq!(
        leader.broadcast_append(),
        vec![send(1, everything.clone()), send(2, everything)]
    );
    assert_eq!(
        leader.handle(1, success(1, 2)),
        vec![apply(1, 10), apply(2, 11)]
    );
    assert_eq!(
        leader.broadcast_append(),
        vec![
            send(1, append(1, 2, 1, &[], 2)),
            send(2, append(1, 0, 0, &[(1, 10), (1, 11)], 2)),
        ]
    );
    assert_eq!(
        leader.replicate_to(2),
        vec![send(2, append(1, 0, 0, &[(1, 10), (1, 11)], 2))]
    );
    assert_eq!(leader.replicate_to(0), vec![]);
}

#[test]
fn only_a_leader_replicates() {
    let mut n = node(1, 3, hard(1, None, &[(1, 10)]));
    assert_eq!(n.broadcast_append(), vec![]);
    assert_eq!(n.replicate_to(0), vec![]);
    n.election_timeout();
    assert_eq!(n.role(), Role::Candidate);
    assert_eq!(n.broadcast_append(), vec![]);
}
