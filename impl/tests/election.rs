//! Leader election (§5.2, §5.4.1, Figure 2 "RequestVote RPC" and "Rules for Servers"): term
//! adoption, one vote per term, the up-to-date check, vote counting and taking office.

mod support;

use raft_impl::{Mutation, NotLeader, Proposal, Refusal, Role, Term};
use support::*;

#[test]
fn timeout_starts_an_election_for_the_next_term() {
    let mut n = node(0, 3, hard(4, Some(2), &[(1, 10), (3, 11)]));
    assert_eq!(
        n.election_timeout(),
        vec![
            term_vote(5, Some(0)),
            send(1, vote_request(5, 2, 3)),
            send(2, vote_request(5, 2, 3)),
            RESET,
        ]
    );
    assert_eq!(n.role(), Role::Candidate);
    assert_eq!(n.leader_hint(), None);
}

#[test]
fn a_candidate_that_times_out_again_starts_another_election() {
    let mut n = node(0, 3, hard(0, None, &[]));
    n.election_timeout();
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

#[test]
fn a_leader_ignores_the_election_timer() {
    let mut n = node(0, 3, hard(0, None, &[]));
    elect(&mut n);
    assert_eq!(n.election_timeout(), vec![]);
    assert_eq!((n.role(), n.current_term()), (Role::Leader, 1));
}

/// A forged message of the last term would make `current_term + 1` wrap to 0 at the next
/// election, after which no leader is ever elected: the core refuses it and changes nothing.
#[test]
fn a_message_of_the_last_term_is_refused_and_changes_nothing() {
    for msg in [
        vote_request(Term::MAX, 0, 0),
        append(Term::MAX, 0, 0, &[], 0),
    ] {
        let mut n = node(1, 3, hard(4, Some(2), &[(1, 10), (3, 11)]));
        let before = n.clone();
        assert_eq!(
            n.try_handle(0, msg.clone()),
            Err(Refusal::TermExhausted { term: Term::MAX })
        );
        assert_eq!(n.handle(0, msg), vec![]);
        assert_eq!(n, before);
        // Elections still move to the next term.
        n.election_timeout();
        assert_eq!(n.current_term(), 5);
    }
}

#[test]
fn the_term_before_the_last_is_taken_and_its_successor_reached_without_wrapping() {
    let mut n = node(1, 3, hard(4, None, &[]));
    n.handle(0, vote_request(Term::MAX - 1, 0, 0));
    assert_eq!(n.current_term(), Term::MAX - 1);
    n.election_timeout();
    assert_eq!(n.current_term(), Term::MAX);
    // A state at the last term (written by an older build) stands for no election.
    assert_eq!(n.election_timeout(), vec![]);
    assert_eq!(n.current_term(), Term::MAX);
}

#[test]
fn a_message_from_outside_the_cluster_is_refused() {
    let mut n = node(1, 3, hard(0, None, &[]));
    for from in [1, 3] {
        assert_eq!(
            n.try_handle(from, vote_request(1, 0, 0)),
            Err(Refusal::NotAPeer {
                from,
                me: 1,
                servers: 3
            })
        );
    }
}

#[test]
fn one_vote_per_term() {
    let mut n = node(1, 3, hard(0, None, &[]));
    assert_eq!(
        n.handle(0, vote_request(1, 0, 0)),
        vec![term_vote(1, Some(0)), send(0, vote_reply(1, true)), RESET]
    );
    // Another candidate of the same term is refused, and nothing durable changes.
    assert_eq!(
        n.handle(2, vote_request(1, 0, 0)),
        vec![send(2, vote_reply(1, false))]
    );
    // A retried request from the candidate already voted for is granted again, without a
    // second record.
    assert_eq!(
        n.handle(0, vote_request(1, 0, 0)),
        vec![send(0, vote_reply(1, true)), RESET]
    );
    assert_eq!(n.voted_for(), Some(0));
}

#[test]
fn a_higher_term_is_adopted_before_voting_in_it() {
    // Voted for 2 in term 3; a request of term 5 clears that vote and may take a new one.
    // The new term and the new vote are one record: nothing durable ever says "term 5, no vote".
    let mut n = node(1, 3, hard(3, Some(2), &[]));
    assert_eq!(
        n.handle(0, vote_request(5, 0, 0)),
        vec![term_vote(5, Some(0)), send(0, vote_reply(5, true)), RESET,]
    );
}

#[test]
fn a_higher_term_is_adopted_even_when_the_vote_is_refused() {
    let mut n = node(1, 3, hard(2, Some(1), &[(2, 10)]));
    assert_eq!(
        n.handle(0, vote_request(3, 5, 1)),
        vec![term_vote(3, None), send(0, vote_reply(3, false)),]
    );
    assert_eq!(n.role(), Role::Follower);
}

#[test]
fn a_request_of_an_older_term_is_refused_without_persisting() {
    let mut n = node(1, 3, hard(3, None, &[]));
    assert_eq!(
        n.handle(0, vote_request(2, 9, 2)),
        vec![send(0, vote_reply(3, false))]
    );
    assert_eq!(n.voted_for(), None);
}

/// §5.4.1 against a voter whose log ends at index 3 with term 2.
#[test]
fn up_to_date_compares_last_term_then_last_index() {
    let voter_log = [(1, 10), (2, 11), (2, 12)];
    let cases = [
        // (candidate last index, candidate last term, granted)
        (1, 3, true),  // higher last term wins although shorter
        (9, 1, false), // lower last term loses although longer
        (4, 2, true),  // same last term, longer
        (3, 2, true),  // same last term, same length
        (2, 2, false), // same last term, shorter
    ];
    for (last_index, last_term, granted) in cases {
        let mut n = node(1, 3, hard(4, None, &voter_log));
        let mut expected = vec![
            term_vote(5, granted.then_some(0)),
            send(0, vote_reply(5, granted)),
        ];
        if granted {
            expected.push(RESET);
        }
        assert_eq!(
            n.handle(0, vote_request(5, last_index, last_term)),
            expected,
            "candidate log ends at index {last_index}, term {last_term}"
        );
    }
}

#[test]
fn up_to_date_by_length_bug_votes_for_a_longer_but_older_log() {
    let mut n = mutated(1, 3, Mutation::UpToDateByLength, hard(4, None, &[(2, 10)]));
    assert_eq!(
        n.handle(0, vote_request(5, 2, 1)),
        vec![term_vote(5, Some(0)), send(0, vote_reply(5, true)), RESET,]
    );
}

#[test]
fn no_up_to_date_check_bug_votes_for_an_empty_log() {
    let mut n = mutated(1, 3, Mutation::NoUpToDateCheck, hard(4, None, &[(2, 10)]));
    assert_eq!(
        n.handle(0, vote_request(5, 0, 0)),
        vec![term_vote(5, Some(0)), send(0, vote_reply(5, true)), RESET,]
    );
}

#[test]
fn a_candidate_refuses_other_candidates_of_its_term() {
    let mut n = node(0, 3, hard(0, None, &[]));
    n.election_timeout();
    assert_eq!(
        n.handle(2, vote_request(1, 5, 1)),
        vec![send(2, vote_reply(1, false))]
    );
    assert_eq!(n.role(), Role::Candidate);
}

#[test]
fn a_candidate_needs_a_majority_of_distinct_granted_votes() {
    let mut n = node(0, 5, hard(0, None, &[]));
    n.election_timeout();
    assert_eq!(n.handle(1, vote_reply(1, true)), vec![]);
    // A duplicated grant is the same vote.
    assert_eq!(n.handle(1, vote_reply(1, true)), vec![]);
    assert_eq!(n.handle(3, vote_reply(1, false)), vec![]);
    assert_eq!(n.role(), Role::Candidate);
    let empty = || append(1, 0, 0, &[], 0);
    assert_eq!(
        n.handle(2, vote_reply(1, true)),
        vec![
            send(1, empty()),
            send(2, empty()),
            send(3, empty()),
            send(4, empty())
        ]
    );
    assert_eq!(n.role(), Role::Leader);
}

#[test]
fn a_candidate_counts_only_votes_of_its_own_term() {
    let mut n = node(0, 3, hard(0, None, &[]));
    n.election_timeout();
    n.election_timeout();
    assert_eq!(n.handle(1, vote_reply(1, true)), vec![]);
    assert_eq!(n.role(), Role::Candidate);
    assert_eq!(
        n.handle(2, vote_reply(2, true)),
        vec![
            send(1, append(2, 0, 0, &[], 0)),
            send(2, append(2, 0, 0, &[], 0))
        ]
    );
}

#[test]
fn stale_vote_count_bug_counts_an_old_terms_vote() {
    let mut n = mutated(0, 3, Mutation::StaleVoteCount, hard(0, None, &[]));
    n.election_timeout();
    n.election_timeout();
    n.handle(1, vote_reply(1, true));
    assert_eq!(n.role(), Role::Leader);
}

#[test]
fn a_vote_reply_of_a_higher_term_makes_the_candidate_a_follower() {
    let mut n = node(0, 3, hard(0, None, &[]));
    n.election_timeout();
    assert_eq!(n.handle(1, vote_reply(3, false)), vec![term_vote(3, None)]);
    assert_eq!(n.role(), Role::Follower);
}

#[test]
fn a_new_leader_sends_empty_append_entries_to_every_peer() {
    let mut n = node(0, 3, hard(2, None, &[(1, 10), (2, 11)]));
    n.election_timeout();
    assert_eq!(n.handle(1, vote_reply(3, true)), {
        let heartbeat = append(3, 2, 2, &[], 0);
        vec![send(1, heartbeat.clone()), send(2, heartbeat)]
    });
    assert_eq!(n.leader_hint(), Some(0));
    assert_eq!((n.next_index(1), n.next_index(2)), (3, 3));
    assert_eq!((n.match_index(1), n.match_index(2)), (0, 0));
    // Further grants change nothing.
    assert_eq!(n.handle(2, vote_reply(3, true)), vec![]);
}

#[test]
fn a_single_server_leads_and_commits_alone() {
    let mut n = node(0, 1, hard(0, None, &[]));
    assert_eq!(n.election_timeout(), vec![term_vote(1, Some(0)), RESET]);
    assert_eq!(n.role(), Role::Leader);
    assert_eq!(
        n.propose(7),
        Ok(Proposal {
            index: 1,
            term: 1,
            effects: vec![log_from(1, &[(1, 7)]), apply(1, 7)],
        })
    );
    assert_eq!(n.broadcast_append(), vec![]);
}

#[test]
fn a_restarted_single_server_commits_old_entries_with_its_first_new_one() {
    let mut n = node(0, 1, hard(1, Some(0), &[(1, 7)]));
    assert_eq!(n.election_timeout(), vec![term_vote(2, Some(0)), RESET]);
    assert_eq!(n.commit_index(), 0);
    assert_eq!(
        n.propose(8).map(|p| p.effects),
        Ok(vec![log_from(2, &[(2, 8)]), apply(1, 7), apply(2, 8)])
    );
}

#[test]
fn only_a_leader_accepts_proposals() {
    let mut n = node(1, 3, hard(0, None, &[]));
    assert_eq!(n.propose(5), Err(NotLeader { leader_hint: None }));
    n.handle(2, append(1, 0, 0, &[], 0));
    assert_eq!(
        n.propose(5),
        Err(NotLeader {
            leader_hint: Some(2)
        })
    );
    assert_eq!(n.log(), &[]);
}

#[test]
fn a_candidate_yields_to_a_leader_of_its_term() {
    let mut n = node(0, 3, hard(0, None, &[]));
    n.election_timeout();
    assert_eq!(
        n.handle(2, append(1, 0, 0, &[], 0)),
        vec![send(2, success(1, 0)), RESET]
    );
    assert_eq!(n.role(), Role::Follower);
    assert_eq!(n.leader_hint(), Some(2));
    assert_eq!(n.voted_for(), Some(0));
}

#[test]
fn a_leader_steps_down_on_a_reply_of_a_higher_term() {
    let mut n = node(0, 3, hard(0, None, &[]));
    elect(&mut n);
    assert_eq!(
        n.handle(1, conflict(4, None, 0, 0)),
        vec![term_vote(4, None)]
    );
    assert_eq!(n.role(), Role::Follower);
    assert_eq!(n.leader_hint(), None);
}

#[test]
fn a_leader_steps_down_and_votes_on_a_request_of_a_higher_term() {
    let mut n = node(0, 3, hard(1, None, &[(1, 10)]));
    elect(&mut n);
    assert_eq!(
        n.handle(1, vote_request(3, 1, 1)),
        vec![term_vote(3, Some(1)), send(1, vote_reply(3, true)), RESET,]
    );
    assert_eq!(n.role(), Role::Follower);
}

#[test]
fn a_leader_follows_a_leader_of_a_higher_term() {
    let mut n = node(0, 3, hard(0, None, &[]));
    elect(&mut n);
    assert_eq!(
        n.handle(2, append(3, 0, 0, &[(3, 20)], 0)),
        vec![
            term_vote(3, None),
            log_from(1, &[(3, 20)]),
            send(2, success(3, 1)),
            RESET,
        ]
    );
    assert_eq!((n.role(), n.leader_hint()), (Role::Follower, Some(2)));
}

#[test]
fn leader_ignores_higher_term_bug_keeps_leading() {
    let mut n = mutated(0, 3, Mutation::LeaderIgnoresHigherTerm, hard(0, None, &[]));
    elect(&mut n);
    assert_eq!(
        n.handle(1, conflict(4, None, 0, 0)),
        vec![term_vote(4, None)]
    );
    assert_eq!(n.role(), Role::Leader);
}

/// The bug takes a newer leader's heartbeat as a follower would but keeps leading in its term;
/// that leader's next request then deletes the entries this one appended as leader.
#[test]
fn leader_accepts_append_bug_rewrites_its_own_log_and_keeps_leading() {
    let mut n = mutated(0, 5, Mutation::LeaderAcceptsAppend, hard(0, None, &[]));
    elect(&mut n);
    n.propose(10).unwrap();
    n.propose(11).unwrap();
    n.handle(1, success(1, 2));
    assert_eq!(
        n.handle(2, append(2, 0, 0, &[], 0)),
        vec![term_vote(2, None), send(2, success(2, 0))]
    );
    assert_eq!((n.role(), n.current_term()), (Role::Leader, 2));
    assert_eq!(
        n.handle(2, append(2, 0, 0, &[(2, 20)], 0)),
        vec![log_from(1, &[(2, 20)]), send(2, success(2, 1))]
    );
    assert_eq!((n.role(), n.current_term()), (Role::Leader, 2));
    // It leads on with the other leader's entry, its view of server 1 cut down to its log.
    assert_eq!((n.match_index(1), n.next_index(1)), (1, 2));
    assert_eq!(n.replicate_to(1), vec![send(1, append(2, 1, 2, &[], 0))]);
}

#[test]
fn messages_from_itself_or_outside_the_cluster_are_ignored() {
    let mut n = node(1, 3, hard(0, None, &[]));
    assert_eq!(n.handle(1, vote_request(5, 0, 0)), vec![]);
    assert_eq!(n.handle(3, vote_request(5, 0, 0)), vec![]);
    assert_eq!(n.current_term(), 0);
}
