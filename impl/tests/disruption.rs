//! Disruption (dissertation §9.6 PreVote, §6.2 CheckQuorum, §4.2.3 the leader lease): a server
//! that cannot win an election must not raise the cluster's term, and one that could but has
//! a working leader must not depose it.

mod support;

use raft_impl::{
    Config, Envelope, HardState, Index, Message, Mutation, MutationSet, Node, NodeId, Role, Term,
};
use support::cluster::Cluster;
use support::*;

fn pre_vote(term: Term, last_log_index: Index, last_log_term: Term) -> Message<Cmd> {
    Message::PreVote {
        term,
        last_log_index,
        last_log_term,
    }
}

fn pre_vote_reply(term: Term, granted: bool) -> Message<Cmd> {
    Message::PreVoteReply { term, granted }
}

/// Server `id` of a cluster of `servers` with PreVote on (and CheckQuorum as given).
fn with(id: NodeId, servers: u8, check_quorum: bool, hard: HardState<Cmd>) -> Node<Cmd> {
    let config = Config::new(id, servers)
        .with_pre_vote(true)
        .with_check_quorum(check_quorum);
    Node::new(config, hard)
}

// ----- §9.6 PreVote: the pre-candidate -----

#[test]
fn a_timeout_asks_for_pre_votes_for_the_next_term_without_raising_its_own() {
    let mut n = with(0, 3, false, hard(4, Some(2), &[(1, 10), (3, 11)]));
    assert_eq!(
        n.election_timeout(),
        vec![
            send(1, pre_vote(5, 2, 3)),
            send(2, pre_vote(5, 2, 3)),
            RESET,
        ]
    );
    assert_eq!(n.role(), Role::PreCandidate);
    assert_eq!((n.current_term(), n.voted_for()), (4, Some(2)));
}

#[test]
fn a_majority_of_pre_votes_starts_the_real_election() {
    let mut n = with(0, 3, false, hard(4, Some(2), &[(1, 10), (3, 11)]));
    n.election_timeout();
    assert_eq!(
        n.handle(2, pre_vote_reply(5, true)),
        vec![
            term_vote(5, Some(0)),
            send(1, vote_request(5, 2, 3)),
            send(2, vote_request(5, 2, 3)),
            RESET,
        ]
    );
    assert_eq!(n.role(), Role::Candidate);
}

#[test]
fn a_grant_for_another_term_or_a_denial_of_the_same_term_is_not_counted() {
    let mut n = with(0, 3, false, hard(4, None, &[]));
    n.election_timeout();
    assert_eq!(n.handle(1, pre_vote_reply(6, true)), vec![]);
    assert_eq!(n.handle(1, pre_vote_reply(4, false)), vec![]);
    assert_eq!((n.role(), n.current_term()), (Role::PreCandidate, 4));
}

#[test]
fn a_denial_of_a_higher_term_makes_the_pre_candidate_follow_in_it() {
    let mut n = with(0, 3, false, hard(4, None, &[]));
    n.election_timeout();
    assert_eq!(
        n.handle(1, pre_vote_reply(7, false)),
        vec![term_vote(7, None)]
    );
    assert_eq!((n.role(), n.current_term()), (Role::Follower, 7));
}

/// canonical/raft #196: a grant of the pre-vote round carries the term the candidate then
/// stands in, and must not count as a vote of that election.
#[test]
fn a_candidate_does_not_count_a_late_pre_vote_grant() {
    let mut n = with(0, 3, false, hard(4, None, &[]));
    n.election_timeout();
    n.handle(1, pre_vote_reply(5, true));
    assert_eq!(n.role(), Role::Candidate);
    assert_eq!(n.handle(2, pre_vote_reply(5, true)), vec![]);
    assert_eq!(n.role(), Role::Candidate);

    let config = Config::new(0, 3).with_pre_vote(true);
    let bugs = MutationSet::NONE.with(Mutation::PreVoteCountedAsVote);
    let mut bug = Node::with_rules(config, bugs, hard(4, None, &[]));
    bug.election_timeout();
    bug.handle(1, pre_vote_reply(5, true));
    bug.handle(2, pre_vote_reply(5, true));
    assert_eq!(bug.role(), Role::Leader, "the bug counts the grant");
}

#[test]
fn a_lone_server_stands_at_once() {
    let mut n = with(0, 1, false, hard(0, None, &[]));
    n.election_timeout();
    assert_eq!((n.role(), n.current_term()), (Role::Leader, 1));
}

// ----- §9.6 PreVote: the voter -----

#[test]
fn a_pre_vote_for_an_up_to_date_log_is_granted_without_taking_the_term_or_voting() {
    let mut n = with(1, 3, false, hard(4, Some(2), &[(1, 10), (3, 11)]));
    let before = n.clone();
    assert_eq!(
        n.handle(0, pre_vote(6, 2, 3)),
        vec![send(0, pre_vote_reply(6, true))]
    );
    assert_eq!(n, before, "a pre-vote changes nothing");
}

#[test]
fn a_pre_vote_for_a_log_behind_is_denied_with_the_voters_term() {
    let mut n = with(1, 3, false, hard(4, None, &[(1, 10), (3, 11)]));
    let before = n.clone();
    // Shorter with the same last term, then an older last term.
    for (index, term) in [(1, 3), (5, 2)] {
        assert_eq!(
            n.handle(0, pre_vote(5, index, term)),
            vec![send(0, pre_vote_reply(4, false))]
        );
    }
    assert_eq!(n, before);
}

#[test]
fn a_pre_vote_of_an_older_term_is_denied_with_the_current_term() {
    let mut n = with(1, 3, false, hard(4, None, &[]));
    assert_eq!(
        n.handle(0, pre_vote(3, 9, 3)),
        vec![send(0, pre_vote_reply(4, false))]
    );
}

#[test]
fn a_pre_vote_of_the_voters_own_term_needs_its_vote_to_be_free() {
    let mut n = with(1, 3, false, hard(5, Some(2), &[]));
    assert_eq!(
        n.handle(0, pre_vote(5, 0, 0)),
        vec![send(0, pre_vote_reply(5, false))]
    );
    let mut free = with(1, 3, false, hard(5, None, &[]));
    assert_eq!(
        free.handle(0, pre_vote(5, 0, 0)),
        vec![send(0, pre_vote_reply(5, true))]
    );
}

// ----- §4.2.3 the leader lease (with CheckQuorum) -----

/// Follower 1 of term 2 that has just heard from leader 0.
fn in_contact(check_quorum: bool) -> Node<Cmd> {
    let mut n = with(1, 3, check_quorum, hard(2, None, &[]));
    n.handle(0, append(2, 0, 0, &[], 0));
    assert_eq!(n.leader_contact(), check_quorum);
    n
}

#[test]
fn within_the_lease_vote_requests_of_higher_terms_are_ignored_whole() {
    for msg in [vote_request(3, 5, 2), pre_vote(3, 5, 2)] {
        let mut n = in_contact(true);
        let before = n.clone();
        assert_eq!(n.handle(2, msg), vec![]);
        assert_eq!(n, before);
    }
}

#[test]
fn once_contact_expired_vote_requests_are_answered() {
    let mut n = in_contact(true);
    n.leader_contact_expired();
    assert_eq!(
        n.handle(2, pre_vote(3, 5, 2)),
        vec![send(2, pre_vote_reply(3, true))]
    );
    assert_eq!(
        n.handle(2, vote_request(3, 5, 2)),
        vec![term_vote(3, Some(2)), send(2, vote_reply(3, true)), RESET]
    );
}

#[test]
fn without_check_quorum_there_is_no_lease() {
    let mut n = in_contact(false);
    assert_eq!(
        n.handle(2, pre_vote(3, 5, 2)),
        vec![send(2, pre_vote_reply(3, true))]
    );
}

#[test]
fn a_leader_with_check_quorum_ignores_vote_requests_of_higher_terms() {
    let mut leader = with(0, 3, true, hard(0, None, &[]));
    elect_with_pre_vote(&mut leader);
    let before = leader.clone();
    assert_eq!(leader.handle(1, vote_request(5, 0, 0)), vec![]);
    assert_eq!(leader, before);
}

// ----- §6.2 CheckQuorum -----

/// Times `node` out and grants it a pre-vote and then a vote from server 1.
fn elect_with_pre_vote(node: &mut Node<Cmd>) {
    node.election_timeout();
    let term = node.current_term() + 1;
    node.handle(1, pre_vote_reply(term, true));
    node.handle(1, vote_reply(term, true));
    assert!(node.is_leader());
}

#[test]
fn a_leader_steps_down_after_an_interval_without_a_majority() {
    let mut leader = with(0, 3, true, hard(0, None, &[]));
    elect_with_pre_vote(&mut leader);
    // Its voter counts as heard from in the first interval.
    leader.check_quorum();
    assert!(leader.is_leader());
    leader.check_quorum();
    assert_eq!((leader.role(), leader.current_term()), (Role::Follower, 1));
    assert_eq!(leader.leader_hint(), None);
}

#[test]
fn a_reply_of_its_term_from_a_peer_keeps_a_leader_in_office() {
    let mut leader = with(0, 3, true, hard(0, None, &[]));
    elect_with_pre_vote(&mut leader);
    leader.check_quorum();
    leader.handle(2, success(1, 0));
    leader.check_quorum();
    assert!(leader.is_leader());
    // A reply of an older term is no contact in this one.
    leader.handle(2, success(0, 0));
    leader.check_quorum();
    assert!(!leader.is_leader());
}

#[test]
fn without_check_quorum_a_leader_never_steps_down_on_its_own() {
    let mut leader = node(0, 3, hard(0, None, &[]));
    elect(&mut leader);
    leader.check_quorum();
    leader.check_quorum();
    assert!(leader.is_leader());
}

// ----- the cluster: a partitioned server rejoins -----

/// Leader 0 of term 1 commits an entry with server 1 while server 2 is cut off; server 2
/// times out again and again. With PreVote its term stays 1, and when it is back its
/// pre-votes are refused (its log is behind, or the voters are within the lease): the cluster
/// stays in term 1 under the same leader, and server 2 catches up.
fn partitioned_server_rejoins(check_quorum: bool) -> Cluster {
    let mut c = Cluster::with_config(3, |config| {
        config.with_pre_vote(true).with_check_quorum(check_quorum)
    });
    c.election_timeout(0);
    c.deliver_all();
    assert_eq!(c.leader(), Some(0));
    let cut_off = |c: &mut Cluster| {
        c.network
            .retain(|e: &Envelope<Cmd>| e.from != 2 && e.to != 2)
    };
    assert_eq!(c.propose(0, 7), Some(1));
    cut_off(&mut c);
    c.deliver_all();
    c.broadcast_append(0);
    cut_off(&mut c);
    c.deliver_all();
    assert_eq!(c.nodes[0].commit_index(), 1);
    for _ in 0..5 {
        c.election_timeout(2);
        cut_off(&mut c);
    }
    assert_eq!(c.nodes[2].current_term(), 1, "cut off, its term stays");
    // Back: it times out once more before it hears from the leader.
    c.election_timeout(2);
    c.deliver_all();
    c.broadcast_append(0);
    c.deliver_all();
    c
}

#[test]
fn a_partitioned_server_rejoins_without_raising_the_clusters_term() {
    for check_quorum in [false, true] {
        let c = partitioned_server_rejoins(check_quorum);
        for n in &c.nodes {
            assert_eq!(n.current_term(), 1, "{n:?}");
        }
        assert_eq!(c.leader(), Some(0));
        assert_eq!(c.nodes[2].commit_index(), 1, "it caught up");
    }
}

/// The same schedule without PreVote: the rejoining server's term is 7 and the leader is gone.
#[test]
fn without_pre_vote_the_rejoining_server_deposes_the_leader() {
    let mut c = Cluster::new(3);
    c.election_timeout(0);
    c.deliver_all();
    c.propose(0, 7);
    for _ in 0..5 {
        c.election_timeout(2);
        c.network.retain(|e| e.from != 2 && e.to != 2);
    }
    c.deliver_all();
    c.election_timeout(2);
    c.deliver_all();
    assert!(!c.nodes[0].is_leader());
    assert!(c.nodes.iter().all(|n| n.current_term() == 7));
}
