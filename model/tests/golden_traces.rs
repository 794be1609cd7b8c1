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

/// 15 steps: s0's write-ahead log makes the purge of entry 1 durable before the snapshot that
/// covers it; its disk then holds entry 1 nowhere, and s1's alone is not a majority.
#[test]
fn purge_before_snapshot_durable() {
    let expected = "\
s0 election timeout; writes term 1 vote s0 (pending); 1 send(s) wait for the pending writes ⇒ s0 candidate t1 commit 0
s0 flushes a write; persists t1 vote s0 log []; sends RequestVote t1 last 0:0 to s1
s1 receives RequestVote t1 last 0:0 from s0; writes term 1 vote s0 (pending); 1 send(s) wait for the pending writes ⇒ s1 follower t1 commit 0
s1 flushes a write; persists t1 vote s0 log []; sends RequestVoteReply t1 granted to s0
s0 receives RequestVoteReply t1 granted from s1; sends AppendEntries t1 prev 0:0 [] commit 0 to s1 ⇒ s0 LEADER t1 commit 0
s1 receives AppendEntries t1 prev 0:0 [] commit 0 from s0; sends AppendEntriesReply t1 success match 0 to s0
s0 receives AppendEntriesReply t1 success match 0 from s1
client proposes command 1 to s0; writes log from 1 [1:1:1] (pending)
s0 AppendEntries to s1; 1 send(s) wait for the pending writes
s0 flushes a write; persists t1 vote s0 log [1:1:1]; sends AppendEntries t1 prev 0:0 [1:1:1] commit 0 to s1
s1 receives AppendEntries t1 prev 0:0 [1:1:1] commit 0 from s0; writes log from 1 [1:1:1] (pending); 1 send(s) wait for the pending writes
s1 flushes a write; persists t1 vote s0 log [1:1:1]; sends AppendEntriesReply t1 success match 1 to s0
s0 receives AppendEntriesReply t1 success match 1 from s1; applies index 1 ⇒ s0 LEADER t1 commit 1
s0 snapshots its state machine at 1:1; writes purge of the log up to 1, snapshot 1:1 (4 bytes), term 1 vote s0 (pending)
s0 flushes a write; purges its log up to 1 with no snapshot durable to cover it

s0 LEADER    t1 vote s0 snapshot 1:1 log [] commit 1 | durable t1 vote s0 log [1:1:1] | pending 2 write(s), 0 send(s)
s1 follower  t1 vote s0 log [1:1:1] commit 0 | durable t1 vote s0 log [1:1:1]
network:
history: leaders [t1:s0] committed [1:1:1] crashes 0 proposals 1";
    assert_eq!(shown(Mutation::PurgeBeforeSnapshotDurable), expected);
}

/// 16 steps: s2 drops entry 2 on installing the snapshot of entry 1, then its earlier
/// acknowledgement of entry 2 makes s0 commit it on a majority that no longer holds it.
#[test]
fn snapshot_discards_matching_suffix() {
    let expected = "\
s0 election timeout; persists t1 vote s0 log []; sends RequestVote t1 last 0:0 to s1, RequestVote t1 last 0:0 to s2 ⇒ s0 candidate t1 commit 0
s1 receives RequestVote t1 last 0:0 from s0; persists t1 vote s0 log []; sends RequestVoteReply t1 granted to s0 ⇒ s1 follower t1 commit 0
s0 receives RequestVoteReply t1 granted from s1 (network full: loses its sends to s2); sends AppendEntries t1 prev 0:0 [] commit 0 to s1 ⇒ s0 LEADER t1 commit 0
network drops AppendEntries t1 prev 0:0 [] commit 0 s0→s1
network drops RequestVote t1 last 0:0 s0→s2
client proposes command 1 to s0; persists t1 vote s0 log [1:1:1]
s0 AppendEntries to s1; sends AppendEntries t1 prev 0:0 [1:1:1] commit 0 to s1
s1 receives AppendEntries t1 prev 0:0 [1:1:1] commit 0 from s0; persists t1 vote s0 log [1:1:1]; sends AppendEntriesReply t1 success match 1 to s0
client proposes command 2 to s0; persists t1 vote s0 log [1:1:1 2:1:2]
s0 AppendEntries to s2; sends AppendEntries t1 prev 0:0 [1:1:1 2:1:2] commit 0 to s2
s2 receives AppendEntries t1 prev 0:0 [1:1:1 2:1:2] commit 0 from s0; persists t1 vote - log [1:1:1 2:1:2]; sends AppendEntriesReply t1 success match 2 to s0 ⇒ s2 follower t1 commit 0
s0 receives AppendEntriesReply t1 success match 1 from s1; applies index 1 ⇒ s0 LEADER t1 commit 1
s0 snapshots its state machine at 1:1; persists t1 vote s0 snapshot 1:1 log [2:1:2]
s0 AppendEntries to s2; sends InstallSnapshot t1 last 1:1 (4 bytes) to s2
s2 receives InstallSnapshot t1 last 1:1 (4 bytes) from s0; persists t1 vote - snapshot 1:1 log []; sends AppendEntriesReply t1 success match 1 to s0; installs the snapshot up to 1 ⇒ s2 follower t1 commit 1
s0 receives AppendEntriesReply t1 success match 2 from s2; applies index 2 ⇒ s0 LEADER t1 commit 2

s0 LEADER    t1 vote s0 snapshot 1:1 log [2:1:2] commit 2 | durable t1 vote s0 snapshot 1:1 log [2:1:2]
s1 follower  t1 vote s0 log [1:1:1] commit 0 | durable t1 vote s0 log [1:1:1]
s2 follower  t1 vote - snapshot 1:1 log [] commit 1 | durable t1 vote - snapshot 1:1 log []
network:
  s2→s0 AppendEntriesReply t1 success match 1
history: leaders [t1:s0] committed [1:1:1 2:1:2] crashes 0 proposals 2";
    assert_eq!(shown(Mutation::SnapshotDiscardsMatchingSuffix), expected);
}

/// 14 steps: s2 installs a snapshot of the entry it has already applied.
#[test]
fn snapshot_regress() {
    let expected = "\
s0 election timeout (network full: loses its sends to s2); persists t1 vote s0 log []; sends RequestVote t1 last 0:0 to s1 ⇒ s0 candidate t1 commit 0
s1 receives RequestVote t1 last 0:0 from s0; persists t1 vote s0 log []; sends RequestVoteReply t1 granted to s0 ⇒ s1 follower t1 commit 0
s0 receives RequestVoteReply t1 granted from s1 (network full: loses its sends to s2); sends AppendEntries t1 prev 0:0 [] commit 0 to s1 ⇒ s0 LEADER t1 commit 0
network drops AppendEntries t1 prev 0:0 [] commit 0 s0→s1
client proposes command 1 to s0; persists t1 vote s0 log [1:1:1]
s0 AppendEntries to s1; sends AppendEntries t1 prev 0:0 [1:1:1] commit 0 to s1
s1 receives AppendEntries t1 prev 0:0 [1:1:1] commit 0 from s0; persists t1 vote s0 log [1:1:1]; sends AppendEntriesReply t1 success match 1 to s0
s0 receives AppendEntriesReply t1 success match 1 from s1; applies index 1 ⇒ s0 LEADER t1 commit 1
s0 AppendEntries to s2; sends AppendEntries t1 prev 0:0 [1:1:1] commit 1 to s2
s2 receives AppendEntries t1 prev 0:0 [1:1:1] commit 1 from s0; persists t1 vote - log [1:1:1]; sends AppendEntriesReply t1 success match 1 to s0; applies index 1 ⇒ s2 follower t1 commit 1
network drops AppendEntriesReply t1 success match 1 s2→s0
s0 snapshots its state machine at 1:1; persists t1 vote s0 snapshot 1:1 log []
s0 AppendEntries to s2; sends InstallSnapshot t1 last 1:1 (4 bytes) to s2
s2 receives InstallSnapshot t1 last 1:1 (4 bytes) from s0; persists t1 vote - snapshot 1:1 log []; sends AppendEntriesReply t1 success match 1 to s0

s0 LEADER    t1 vote s0 snapshot 1:1 log [] commit 1 | durable t1 vote s0 snapshot 1:1 log []
s1 follower  t1 vote s0 log [1:1:1] commit 0 | durable t1 vote s0 log [1:1:1]
s2 follower  t1 vote - snapshot 1:1 log [] commit 1 | durable t1 vote - snapshot 1:1 log []
network:
  s2→s0 AppendEntriesReply t1 success match 1
history: leaders [t1:s0] committed [1:1:1] crashes 0 proposals 1";
    assert_eq!(shown(Mutation::SnapshotRegress), expected);
}

/// 23 steps: s2 installs a snapshot of term 1 while in term 2, goes back to term 1 and wins
/// term 2 beside s1.
#[test]
fn snapshot_term_as_current() {
    let expected = "\
s0 election timeout (network full: loses its sends to s2); persists t1 vote s0 log []; sends RequestVote t1 last 0:0 to s1 ⇒ s0 candidate t1 commit 0
s1 receives RequestVote t1 last 0:0 from s0; persists t1 vote s0 log []; sends RequestVoteReply t1 granted to s0 ⇒ s1 follower t1 commit 0
s0 receives RequestVoteReply t1 granted from s1 (network full: loses its sends to s2); sends AppendEntries t1 prev 0:0 [] commit 0 to s1 ⇒ s0 LEADER t1 commit 0
network drops AppendEntries t1 prev 0:0 [] commit 0 s0→s1
client proposes command 1 to s0; persists t1 vote s0 log [1:1:1]
s0 AppendEntries to s1; sends AppendEntries t1 prev 0:0 [1:1:1] commit 0 to s1
s1 receives AppendEntries t1 prev 0:0 [1:1:1] commit 0 from s0; persists t1 vote s0 log [1:1:1]; sends AppendEntriesReply t1 success match 1 to s0
s0 receives AppendEntriesReply t1 success match 1 from s1; applies index 1 ⇒ s0 LEADER t1 commit 1
s0 AppendEntries to s1; sends AppendEntries t1 prev 1:1 [] commit 1 to s1
s1 receives AppendEntries t1 prev 1:1 [] commit 1 from s0; sends AppendEntriesReply t1 success match 1 to s0; applies index 1 ⇒ s1 follower t1 commit 1
network drops AppendEntriesReply t1 success match 1 s1→s0
s1 election timeout (network full: loses its sends to s0); persists t2 vote s1 log [1:1:1]; sends RequestVote t2 last 1:1 to s2 ⇒ s1 candidate t2 commit 1
s2 receives RequestVote t2 last 1:1 from s1; persists t2 vote s1 log []; sends RequestVoteReply t2 granted to s1 ⇒ s2 follower t2 commit 0
s1 receives RequestVoteReply t2 granted from s2 (network full: loses its sends to s0); sends AppendEntries t2 prev 1:1 [] commit 1 to s2 ⇒ s1 LEADER t2 commit 1
s2 receives AppendEntries t2 prev 1:1 [] commit 1 from s1; sends AppendEntriesReply t2 conflict xterm - xindex 0 xlen 0 to s1
s1 receives AppendEntriesReply t2 conflict xterm - xindex 0 xlen 0 from s2
s1 snapshots its state machine at 1:1; persists t2 vote s1 snapshot 1:1 log []
s1 AppendEntries to s2; sends InstallSnapshot t2 last 1:1 (4 bytes) to s2
s2 receives InstallSnapshot t2 last 1:1 (4 bytes) from s1; persists t1 vote s1 snapshot 1:1 log []; sends AppendEntriesReply t1 success match 1 to s1; installs the snapshot up to 1 ⇒ s2 follower t1 commit 1
network drops AppendEntriesReply t1 success match 1 s2→s1
s2 election timeout (network full: loses its sends to s1); persists t2 vote s2 snapshot 1:1 log []; sends RequestVote t2 last 1:1 to s0 ⇒ s2 candidate t2 commit 1
s0 receives RequestVote t2 last 1:1 from s2; persists t2 vote s2 log [1:1:1]; sends RequestVoteReply t2 granted to s2 ⇒ s0 follower t2 commit 1
s2 receives RequestVoteReply t2 granted from s0 (network full: loses its sends to s1); sends AppendEntries t2 prev 1:1 [] commit 1 to s0 ⇒ s2 LEADER t2 commit 1

s0 follower  t2 vote s2 log [1:1:1] commit 1 | durable t2 vote s2 log [1:1:1]
s1 LEADER    t2 vote s1 snapshot 1:1 log [] commit 1 | durable t2 vote s1 snapshot 1:1 log []
s2 LEADER    t2 vote s2 snapshot 1:1 log [] commit 1 | durable t2 vote s2 snapshot 1:1 log []
network:
  s2→s0 AppendEntries t2 prev 1:1 [] commit 1
history: leaders [t1:s0 t2:s1+s2] committed [1:1:1] crashes 0 proposals 1";
    assert_eq!(shown(Mutation::SnapshotTermAsCurrent), expected);
}
