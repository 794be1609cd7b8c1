//! Commitment and application (§5.3, §5.4.2, Figure 2 "Rules for Servers"): the follower's
//! commit rule, the leader's majority rule restricted to its own term (Figure 8), match indices
//! that only grow, replies of other terms ignored, and in-order, exactly-once application.

mod support;

use raft_impl::Mutation;
use support::*;

#[test]
fn a_follower_commits_up_to_the_leaders_commit_index() {
    let mut n = node(1, 3, hard(1, None, &[]));
    assert_eq!(
        n.handle(0, append(1, 0, 0, &[(1, 10), (1, 11), (1, 12)], 2)),
        vec![
            log_from(1, &[(1, 10), (1, 11), (1, 12)]),
            send(0, success(1, 3)),
            apply(1, 10),
            apply(2, 11),
            RESET,
        ]
    );
    assert_eq!((n.commit_index(), n.last_applied()), (2, 2));
}

#[test]
fn a_follower_commits_no_further_than_the_last_new_entry() {
    // The follower holds three entries, but this request only vouches for the first.
    let mut n = node(1, 3, hard(1, None, &[(1, 10), (1, 11), (1, 12)]));
    assert_eq!(
        n.handle(0, append(1, 0, 0, &[(1, 10)], 3)),
        vec![send(0, success(1, 1)), apply(1, 10), RESET]
    );
    assert_eq!(n.commit_index(), 1);
}

/// A deposed leader's uncommitted entry is still in the follower's log when the new leader's
/// entry for that index arrives with leaderCommit 1: the correct follower replaces it and then
/// applies the new leader's entry; the bug applies its own entry first.
#[test]
fn commit_beyond_last_new_bug_applies_an_entry_the_leader_never_sent() {
    let stale = hard(1, None, &[(1, 10)]);
    let request = append(2, 0, 0, &[(2, 20)], 1);
    let mut n = node(1, 3, stale.clone());
    assert_eq!(
        n.handle(2, request.clone()),
        vec![
            term_vote(2, None),
            log_from(1, &[(2, 20)]),
            send(2, success(2, 1)),
            apply(1, 20),
            RESET,
        ]
    );
    let mut buggy = mutated(1, 3, Mutation::CommitBeyondLastNew, stale.clone());
    assert_eq!(
        buggy.handle(2, request),
        vec![
            term_vote(2, None),
            log_from(1, &[(2, 20)]),
            send(2, success(2, 1)),
            apply(1, 10),
            RESET,
        ]
    );
    // Even a request it rejects, whose prevLogIndex it cannot match, commits its stale entry.
    let mut buggy = mutated(1, 3, Mutation::CommitBeyondLastNew, stale);
    assert_eq!(
        buggy.handle(2, append(2, 1, 2, &[(2, 21)], 2)),
        vec![
            term_vote(2, None),
            send(2, conflict(2, Some(1), 1, 1)),
            apply(1, 10),
            RESET,
        ]
    );
}

#[test]
fn a_follower_never_lowers_its_commit_index() {
    let mut n = node(1, 3, hard(1, None, &[(1, 10), (1, 11)]));
    n.handle(0, append(1, 0, 0, &[(1, 10), (1, 11)], 2));
    assert_eq!(
        n.handle(0, append(1, 0, 0, &[], 1)),
        vec![send(0, success(1, 0)), RESET]
    );
    assert_eq!((n.commit_index(), n.last_applied()), (2, 2));
}

#[test]
fn commit_index_regress_bug_lowers_the_commit_index() {
    let mut n = mutated(
        1,
        3,
        Mutation::CommitIndexRegress,
        hard(1, None, &[(1, 10), (1, 11)]),
    );
    n.handle(0, append(1, 0, 0, &[(1, 10), (1, 11)], 2));
    assert_eq!(
        n.handle(0, append(1, 0, 0, &[], 1)),
        vec![send(0, success(1, 0)), RESET]
    );
    assert_eq!((n.commit_index(), n.last_applied()), (0, 2));
}

#[test]
fn a_follower_applies_in_order_exactly_once() {
    let mut n = node(1, 3, hard(1, None, &[]));
    let all = [(1, 10), (1, 11), (1, 12)];
    assert_eq!(
        n.handle(0, append(1, 0, 0, &all, 1)),
        vec![
            log_from(1, &all),
            send(0, success(1, 3)),
            apply(1, 10),
            RESET,
        ]
    );
    assert_eq!(
        n.handle(0, append(1, 3, 1, &[], 3)),
        vec![send(0, success(1, 3)), apply(2, 11), apply(3, 12), RESET]
    );
    assert_eq!(
        n.handle(0, append(1, 3, 1, &[], 3)),
        vec![send(0, success(1, 3)), RESET]
    );
}

#[test]
fn a_proposal_is_persisted_and_waits_for_a_majority() {
    let mut leader = leader_with(3, &[]);
    let proposal = leader.propose(10).unwrap();
    assert_eq!((proposal.index, proposal.term), (1, 1));
    assert_eq!(proposal.effects, vec![log_from(1, &[(1, 10)])]);
    assert_eq!(leader.commit_index(), 0);
}

/// A proposal changes the log at its own index only: one log record holding the new entry,
/// not the log from the start, and no term/vote record.
#[test]
fn a_proposal_writes_one_log_record_from_its_index() {
    let mut leader = leader_with(3, &[10, 11]);
    let proposal = leader.propose(12).unwrap();
    assert_eq!(proposal.index, 3);
    assert_eq!(proposal.effects, vec![log_from(3, &[(1, 12)])]);
}

#[test]
fn a_leader_commits_what_a_majority_stores() {
    let mut leader = leader_with(3, &[10, 11]);
    // The success shows where follower 1 matches: the leader streams the rest at once.
    assert_eq!(
        leader.handle(1, success(1, 1)),
        vec![send(1, append(1, 1, 1, &[(1, 11)], 1)), apply(1, 10)]
    );
    assert_eq!(leader.handle(1, success(1, 2)), vec![apply(2, 11)]);
    assert_eq!(leader.handle(2, success(1, 2)), vec![]);
    assert_eq!((leader.commit_index(), leader.last_applied()), (2, 2));
}

#[test]
fn a_leader_of_five_needs_two_followers() {
    let mut leader = leader_with(5, &[10, 11, 12]);
    assert_eq!(leader.handle(1, success(1, 3)), vec![]);
    assert_eq!(
        leader.handle(3, success(1, 2)),
        vec![
            send(3, append(1, 2, 1, &[(1, 12)], 2)),
            apply(1, 10),
            apply(2, 11)
        ]
    );
    assert_eq!(leader.handle(4, success(1, 3)), vec![apply(3, 12)]);
}

#[test]
fn match_index_only_grows() {
    let mut leader = leader_with(5, &[10, 11, 12]);
    leader.handle(1, success(1, 3));
    // A duplicated reply does not count the follower twice.
    assert_eq!(leader.handle(1, success(1, 3)), vec![]);
    assert_eq!(leader.commit_index(), 0);
    // A reply to an earlier, shorter request, delivered late, does not lower its match index.
    assert_eq!(leader.handle(1, success(1, 1)), vec![]);
    assert_eq!((leader.match_index(1), leader.next_index(1)), (3, 4));
    // So the next reply completes a majority for all three entries.
    assert_eq!(
        leader.handle(2, success(1, 3)),
        vec![apply(1, 10), apply(2, 11), apply(3, 12)]
    );
}

#[test]
fn match_index_regress_bug_takes_a_late_reply_as_is() {
    let mut leader = mutated(0, 5, Mutation::MatchIndexRegress, hard(0, None, &[]));
    elect(&mut leader);
    for c in [10, 11, 12] {
        leader.propose(c).unwrap();
    }
    leader.handle(1, success(1, 3));
    // The regressed match sends the leader back over entries the follower holds.
    assert_eq!(
        leader.handle(1, success(1, 1)),
        vec![send(1, append(1, 1, 1, &[(1, 11), (1, 12)], 0))]
    );
    assert_eq!((leader.match_index(1), leader.next_index(1)), (1, 4));
}

#[test]
fn replies_of_an_older_term_are_ignored() {
    // Leader of term 1 for a while, then of term 2.
    let mut leader = node(0, 3, hard(1, Some(0), &[(1, 10)]));
    elect(&mut leader);
    assert_eq!(leader.current_term(), 2);
    leader.propose(11).unwrap();
    assert_eq!(leader.handle(1, success(1, 2)), vec![]);
    assert_eq!(leader.handle(1, conflict(1, None, 0, 0)), vec![]);
    assert_eq!((leader.match_index(1), leader.next_index(1)), (0, 2));
    assert_eq!(leader.commit_index(), 0);
}

/// Figure 8: an entry of an older term stored on a majority is not committed by counting
/// replicas; it is committed once an entry of the leader's own term is.
#[test]
fn a_leader_commits_an_older_terms_entry_only_through_one_of_its_own() {
    let mut leader = node(0, 3, hard(2, None, &[(1, 10), (2, 11)]));
    assert_eq!(
        elect(&mut leader),
        vec![
            term_vote(3, Some(0)),
            send(1, vote_request(3, 2, 2)),
            send(2, vote_request(3, 2, 2)),
            RESET,
            send(1, append(3, 2, 2, &[], 0)),
            send(2, append(3, 2, 2, &[], 0)),
        ]
    );
    assert_eq!(leader.handle(1, success(3, 2)), vec![]);
    assert_eq!(leader.match_index(1), 2);
    assert_eq!(leader.commit_index(), 0);
    let proposal = leader.propose(12).unwrap();
    assert_eq!(proposal.effects, vec![log_from(3, &[(3, 12)])]);
    assert_eq!(
        leader.replicate_to(1),
        vec![send(1, append(3, 2, 2, &[(3, 12)], 0))]
    );
    assert_eq!(
        leader.handle(1, success(3, 3)),
        vec![apply(1, 10), apply(2, 11), apply(3, 12)]
    );
    assert_eq!(leader.commit_index(), 3);
}

#[test]
fn figure8_commit_bug_commits_an_older_terms_entry_by_counting() {
    let mut leader = mutated(
        0,
        3,
        Mutation::Figure8Commit,
        hard(2, None, &[(1, 10), (2, 11)]),
    );
    elect(&mut leader);
    assert_eq!(
        leader.handle(1, success(3, 2)),
        vec![apply(1, 10), apply(2, 11)]
    );
}

#[test]
fn a_leader_applies_in_order_exactly_once() {
    let mut leader = leader_with(3, &[10, 11, 12]);
    let rest = append(1, 2, 1, &[(1, 12)], 2);
    assert_eq!(
        leader.handle(1, success(1, 2)),
        vec![send(1, rest.clone()), apply(1, 10), apply(2, 11)]
    );
    assert_eq!(leader.handle(2, success(1, 2)), vec![send(2, rest)]);
    assert_eq!(leader.handle(2, success(1, 3)), vec![apply(3, 12)]);
    assert_eq!(leader.handle(1, success(1, 3)), vec![]);
    assert_eq!(leader.last_applied(), 3);
}
