//! Replies of an older term (Figure 2: a vote counts only for its own election, an
//! acknowledgement only for its own leadership): a server in any role ignores such a reply
//! whole, and since its term never goes down it ignores it for good, which is what lets the
//! core return before looking at it and the model checker take it off its network
//! (`Rules::ignores_stale_replies`, `Node::ignores_for_good`).

mod support;

use raft_impl::{
    rules, Config, Effect, HardState, Message, Mutation, MutationSet, Node, Role, Rules, Term,
};
use support::*;

/// Figure 2's rules, except that a stale reply goes all the way through the handlers instead
/// of being dropped on arrival: what the shortcut of [`Node::ignores_for_good`] stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct LooksAtStaleReplies;

impl Rules for LooksAtStaleReplies {
    type Step<C> = ();

    fn ignores_stale_replies(&self) -> bool {
        false
    }
}

fn pre_vote_reply(term: Term, granted: bool) -> Message<Cmd> {
    Message::PreVoteReply { term, granted }
}

/// Server 0 of three, with PreVote as `pre_vote` says and CheckQuorum as `check_quorum` says
/// (with it, a leader's record of who it heard from is part of what must not change), in term 3
/// with a log.
fn server<R: Rules>(rules: R, pre_vote: bool, check_quorum: bool) -> Node<Cmd, R> {
    let config = Config::new(0, 3)
        .with_pre_vote(pre_vote)
        .with_check_quorum(check_quorum);
    Node::with_rules(config, rules, hard(3, Some(1), &[(1, 10), (3, 11)]))
}

/// The server in each role: a follower in term 3, a pre-candidate in term 3 (asking about 4),
/// a candidate in term 4, a leader of term 4; CheckQuorum on unless said otherwise.
fn in_each_role<R: Rules>(rules: R) -> Vec<Node<Cmd, R>> {
    in_each_role_with(rules, true)
}

/// [`in_each_role`], with CheckQuorum as `check_quorum` says.
fn in_each_role_with<R: Rules>(rules: R, check_quorum: bool) -> Vec<Node<Cmd, R>> {
    let follower = server(rules, false, check_quorum);
    let mut pre_candidate = server(rules, true, check_quorum);
    pre_candidate.election_timeout();
    let mut candidate = server(rules, false, check_quorum);
    candidate.election_timeout();
    let mut leader = server(rules, false, check_quorum);
    elect(&mut leader);
    let nodes = vec![follower, pre_candidate, candidate, leader];
    let roles: Vec<_> = nodes.iter().map(|n| (n.role(), n.current_term())).collect();
    assert_eq!(
        roles,
        [
            (Role::Follower, 3),
            (Role::PreCandidate, 3),
            (Role::Candidate, 4),
            (Role::Leader, 4),
        ]
    );
    nodes
}

/// Every kind of message of `term`: the three replies, granted or not, successful or not, and
/// the requests.
fn every_message(term: Term) -> Vec<Message<Cmd>> {
    vec![
        vote_reply(term, true),
        vote_reply(term, false),
        success(term, 1),
        success(term, 2),
        conflict(term, Some(1), 1, 2),
        pre_vote_reply(term, true),
        pre_vote_reply(term, false),
        vote_request(term, 2, 3),
        append(term, 2, 3, &[], 2),
        Message::PreVote {
            term,
            last_log_index: 2,
            last_log_term: 3,
        },
        install(term, snapshot(1, 1)),
    ]
}

/// The replies of `term`.
fn replies(term: Term) -> Vec<Message<Cmd>> {
    let replies: Vec<_> = every_message(term)
        .into_iter()
        .filter(Message::is_reply)
        .collect();
    assert_eq!(replies.len(), 7);
    replies
}

/// Delivers every reply of every term below the server's, from each peer, and asserts that it
/// emits nothing and leaves the server exactly as it was.
fn assert_stale_replies_change_nothing<R: Rules>(nodes: Vec<Node<Cmd, R>>) {
    for node in nodes {
        for term in 0..node.current_term() {
            for msg in replies(term) {
                for from in [1, 2] {
                    let mut n = node.clone();
                    assert_eq!(
                        n.try_handle(from, msg.clone()),
                        Ok(vec![]),
                        "{msg:?} to {node:?}"
                    );
                    assert_eq!(n, node, "{msg:?} from {from} changed the server");
                }
            }
        }
    }
}

#[test]
fn a_stale_reply_is_ignored_whole_in_every_role() {
    assert_stale_replies_change_nothing(in_each_role(raft_impl::Figure2));
}

/// The shortcut hides no behaviour: with it off, Figure 2's handlers themselves do nothing
/// with a stale reply, in every role (a leader under CheckQuorum does not count its sender as
/// heard from, a candidate does not count the vote, a pre-candidate the pre-vote).
#[test]
fn without_the_shortcut_figure2_ignores_a_stale_reply_just_the_same() {
    assert_stale_replies_change_nothing(in_each_role(LooksAtStaleReplies));
}

/// `ignores_for_good` holds exactly for replies of a term older than the server's own, and for
/// a vote or acknowledgement of its own term when it can never be that term's candidate or
/// leader (it follows or pre-campaigns in it): not for a PreVoteReply of its term, nor any
/// reply of a newer one, and never for a request.
#[test]
fn ignored_for_good_is_exactly_a_stale_reply_or_an_own_term_answer_to_a_follower() {
    for node in in_each_role(raft_impl::Figure2) {
        let current = node.current_term();
        let follows = matches!(node.role(), Role::Follower | Role::PreCandidate);
        for term in 0..=current + 1 {
            for msg in every_message(term) {
                let answer = matches!(
                    msg,
                    Message::RequestVoteReply { .. } | Message::AppendEntriesReply { .. }
                );
                let expected =
                    msg.is_reply() && (term < current || (term == current && follows && answer));
                assert_eq!(node.ignores_for_good(&msg), expected, "{msg:?} to {node:?}");
            }
        }
    }
}

/// A server whose rules look at stale replies or lower a term ignores none for good, and a
/// stale reply still reaches its handlers there: stale-vote-count's candidate counts an old
/// grant.
#[test]
fn rules_that_look_at_stale_replies_ignore_none_for_good() {
    let bugs = MutationSet::NONE.with(Mutation::StaleVoteCount);
    let mut candidate = Node::with_rules(Config::new(0, 3), bugs, HardState::default());
    candidate.election_timeout();
    candidate.election_timeout();
    assert_eq!(candidate.current_term(), 2);
    for msg in replies(1) {
        assert!(!candidate.ignores_for_good(&msg), "{msg:?}");
    }
    candidate.handle(1, vote_reply(1, true));
    assert!(candidate.is_leader(), "the stale grant was counted");
}

/// A refused vote of the server's own term changes nothing in any role when leaders note no
/// contact: a candidate counts grants only and a leader takes no votes, with the shortcut and
/// without it; and `ignores_for_good` says so then, and only then.
#[test]
fn a_refused_vote_of_the_own_term_is_ignored_for_good_unless_leaders_note_contact() {
    for (check_quorum, nodes) in [
        (false, in_each_role_with(raft_impl::Figure2, false)),
        (true, in_each_role(raft_impl::Figure2)),
    ] {
        for node in nodes {
            let follows = matches!(node.role(), Role::Follower | Role::PreCandidate);
            let refused = vote_reply(node.current_term(), false);
            assert_eq!(
                node.ignores_for_good(&refused),
                follows || !check_quorum,
                "{node:?}"
            );
        }
    }
    for node in in_each_role_with(LooksAtStaleReplies, false) {
        let mut n = node.clone();
        let refused = vote_reply(node.current_term(), false);
        assert_eq!(n.try_handle(1, refused), Ok(vec![]), "{node:?}");
        assert_eq!(n, node, "a refused vote changed the server");
    }
}

/// `rules::stale_refusal` is what the handlers do: in every role, with CheckQuorum and without,
/// a RequestVote, AppendEntries or InstallSnapshot of a term below the server's is answered by
/// exactly one message, of the kind and carrying the term `stale_refusal` names (a refused vote,
/// a refused append), and changes nothing else; a PreVote, a request of the server's own term
/// and a reply have no such refusal.
#[test]
fn a_stale_request_is_refused_with_the_servers_term_and_nothing_else() {
    let nodes = in_each_role(raft_impl::Figure2)
        .into_iter()
        .chain(in_each_role_with(raft_impl::Figure2, false));
    for node in nodes {
        let current = node.current_term();
        // From term 1: no request of term 0 is ever sent (and [`every_message`]'s snapshot,
        // of term 1, would make an InstallSnapshot of term 0 implausible).
        for term in 1..=current {
            for msg in every_message(term) {
                let refusal = rules::stale_refusal(&raft_impl::Figure2, &msg, current, current);
                let refused = matches!(
                    msg,
                    Message::RequestVote { .. }
                        | Message::AppendEntries(_)
                        | Message::InstallSnapshot { .. }
                );
                assert_eq!(refusal.is_some(), refused && term < current, "{msg:?}");
                let Some(refusal) = refusal else { continue };
                let mut n = node.clone();
                let effects = n.try_handle(1, msg.clone()).expect("a peer's request");
                assert_eq!(n, node, "{msg:?} changed {node:?}");
                let [Effect::Send { to: 1, msg: sent }] = effects.as_slice() else {
                    panic!("{msg:?} to {node:?}: {effects:?}");
                };
                let granted =
                    |m: &Message<Cmd>| matches!(m, Message::RequestVoteReply { granted: true, .. });
                assert_eq!(
                    (std::mem::discriminant(sent), sent.term(), granted(sent)),
                    (std::mem::discriminant(&refusal), current, false),
                    "{msg:?} to {node:?}"
                );
            }
        }
    }
}

/// Under accept-stale-term-append an old term's AppendEntries may be accepted, so no request
/// has a refusal for good.
#[test]
fn rules_that_accept_an_old_append_refuse_no_request_for_good() {
    let bugs = MutationSet::NONE.with(Mutation::AcceptStaleTermAppend);
    assert!(!bugs.refuses_stale_requests());
    for msg in every_message(1) {
        assert_eq!(rules::stale_refusal(&bugs, &msg, 3, 3), None, "{msg:?}");
    }
}
