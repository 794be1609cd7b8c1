//! Golden traces: the exact counterexamples users see for three short catalog bugs, as
//! `raftcheck check --bug NAME` prints them (its catalog configuration, breadth first, one
//! thread, so the trace is a shortest one and always the same). A change to the model or to the
//! renderer that changes what users read fails here, as stateright's `examples/paxos.rs` pins
//! its discovery paths.
//!
//! When such a change is intended: run `cargo test --release -p raft-model --test golden_traces`,
//! check the new text in the failure message reads right (each step still says what happened),
//! and paste it over the old literal.

use raft_impl::Mutation;
use raft_model::catalog;
use raft_model::check::Strategy;
use raft_model::render;

/// The counterexample of `mutation` in its catalog configuration: each step's line, a blank
/// line, and the final state.
fn shown(mutation: Mutation) -> String {
    let bug = catalog::catalog()
        .into_iter()
        .find(|b| b.mutation == mutation)
        .expect("every mutation is in the catalog");
    let run = catalog::run(&bug, Strategy::Bfs);
    let path = run.trace.expect("the catalog bug is caught");
    format!(
        "{}\n\n{:?}",
        render::trace(&path).join("\n"),
        path.last_state()
    )
}

/// 8 steps: s0 grants s1 its vote for term 2 yet stays leader, so term 2 has two.
#[test]
fn leader_ignores_higher_term() {
    let expected = "\
s0 election timeout; persists t1 vote s0 log []; sends RequestVote t1 last 0:0 to s1 ⇒ s0 candidate t1 commit 0
s1 receives RequestVote t1 last 0:0 from s0; persists t1 vote s0 log []; sends RequestVoteReply t1 granted to s0 ⇒ s1 follower t1 commit 0
s0 receives RequestVoteReply t1 granted from s1; sends AppendEntries t1 prev 0:0 [] commit 0 to s1 ⇒ s0 LEADER t1 commit 0
s1 receives AppendEntries t1 prev 0:0 [] commit 0 from s0; sends AppendEntriesReply t1 success match 0 to s0
s0 receives AppendEntriesReply t1 success match 0 from s1
s1 election timeout; persists t2 vote s1 log []; sends RequestVote t2 last 0:0 to s0 ⇒ s1 candidate t2 commit 0
s0 receives RequestVote t2 last 0:0 from s1; persists t2 vote s1 log []; sends RequestVoteReply t2 granted to s1 ⇒ s0 LEADER t2 commit 0
s1 receives RequestVoteReply t2 granted from s0; sends AppendEntries t2 prev 0:0 [] commit 0 to s0 ⇒ s1 LEADER t2 commit 0

s0 LEADER    t2 vote s1 log [] commit 0 | durable t2 vote s1 log []
s1 LEADER    t2 vote s1 log [] commit 0 | durable t2 vote s1 log []
network:
  s1→s0 AppendEntries t2 prev 0:0 [] commit 0
history: leaders [t1:s0 t2:s0+s1] committed [] crashes 0 proposals 0";
    assert_eq!(shown(Mutation::LeaderIgnoresHigherTerm), expected);
}

/// 9 steps: the reply to the first, empty heartbeat arrives after the reply to the entry and
/// takes s0's match index for s1 back from 1 to 0.
#[test]
fn match_index_regress() {
    let expected = "\
s0 election timeout; persists t1 vote s0 log []; sends RequestVote t1 last 0:0 to s1 ⇒ s0 candidate t1 commit 0
s1 receives RequestVote t1 last 0:0 from s0; persists t1 vote s0 log []; sends RequestVoteReply t1 granted to s0 ⇒ s1 follower t1 commit 0
s0 receives RequestVoteReply t1 granted from s1; sends AppendEntries t1 prev 0:0 [] commit 0 to s1 ⇒ s0 LEADER t1 commit 0
s1 receives AppendEntries t1 prev 0:0 [] commit 0 from s0; sends AppendEntriesReply t1 success match 0 to s0
client proposes command 1 to s0; persists t1 vote s0 log [1:1:1]
s0 AppendEntries to s1; sends AppendEntries t1 prev 0:0 [1:1:1] commit 0 to s1
s1 receives AppendEntries t1 prev 0:0 [1:1:1] commit 0 from s0; persists t1 vote s0 log [1:1:1]; sends AppendEntriesReply t1 success match 1 to s0
s0 receives AppendEntriesReply t1 success match 1 from s1; applies index 1 ⇒ s0 LEADER t1 commit 1
s0 receives AppendEntriesReply t1 success match 0 from s1

s0 LEADER    t1 vote s0 log [1:1:1] commit 1 | durable t1 vote s0 log [1:1:1]
s1 follower  t1 vote s0 log [1:1:1] commit 0 | durable t1 vote s0 log [1:1:1]
network:
history: leaders [t1:s0] committed [1:1:1] crashes 0 proposals 1";
    assert_eq!(shown(Mutation::MatchIndexRegress), expected);
}

/// 10 steps: s0 wins term 1, restarts at term 0 with its vote kept and wins term 1 a second
/// time (election safety counts a server winning a term twice as a second leader).
#[test]
fn term_not_persisted() {
    let expected = "\
s0 election timeout; persists t0 vote s0 log []; sends RequestVote t1 last 0:0 to s1 ⇒ s0 candidate t1 commit 0
s1 receives RequestVote t1 last 0:0 from s0; persists t0 vote s0 log []; sends RequestVoteReply t1 granted to s0 ⇒ s1 follower t1 commit 0
s0 receives RequestVoteReply t1 granted from s1; sends AppendEntries t1 prev 0:0 [] commit 0 to s1 ⇒ s0 LEADER t1 commit 0
s1 receives AppendEntries t1 prev 0:0 [] commit 0 from s0; sends AppendEntriesReply t1 success match 0 to s0
s0 receives AppendEntriesReply t1 success match 0 from s1
s0 crash
s0 restarts from durable t0 vote s0 log []
s0 election timeout; sends RequestVote t1 last 0:0 to s1 ⇒ s0 candidate t1 commit 0
s1 receives RequestVote t1 last 0:0 from s0; sends RequestVoteReply t1 granted to s0
s0 receives RequestVoteReply t1 granted from s1; sends AppendEntries t1 prev 0:0 [] commit 0 to s1 ⇒ s0 LEADER t1 commit 0

s0 LEADER    t1 vote s0 log [] commit 0 | durable t0 vote s0 log []
s1 follower  t1 vote s0 log [] commit 0 | durable t0 vote s0 log []
network:
  s0→s1 AppendEntries t1 prev 0:0 [] commit 0
history: leaders [t1:s0] committed [] crashes 1 proposals 0";
    assert_eq!(shown(Mutation::TermNotPersisted), expected);
}
