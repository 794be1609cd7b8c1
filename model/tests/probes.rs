//! The probes of issue 11 (`raft_model::probes`), pinned: each is caught breadth first by the
//! property its entry names, in its small configuration, and that configuration holds without
//! it. The default check's verdicts (the README's generality table) are too slow for a test;
//! these keep the probes themselves from rotting unnoticed.

mod common;

use raft_impl::Mutation;
use raft_model::catalog;
use raft_model::check::Strategy;
use raft_model::probes;

fn assert_caught(mutation: Mutation) {
    let bug = probes::probe(mutation).expect("the probe has a configuration that catches it");
    common::assert_caught(&bug, Strategy::Bfs);
}

#[test]
fn vote_ignores_voted_for() {
    assert_caught(Mutation::VoteIgnoresVotedFor);
}

#[test]
fn vote_tally_not_reset() {
    assert_caught(Mutation::VoteTallyNotReset);
}

#[test]
fn commit_counts_self_twice() {
    assert_caught(Mutation::CommitCountsSelfTwice);
}

#[test]
fn match_from_leader_log() {
    assert_caught(Mutation::MatchFromLeaderLog);
}

#[test]
fn truncate_after_conflict() {
    assert_caught(Mutation::TruncateAfterConflict);
}

#[test]
fn accept_stale_term_append() {
    assert_caught(Mutation::AcceptStaleTermAppend);
}

#[test]
fn apply_newest_only() {
    assert_caught(Mutation::ApplyNewestOnly);
}

#[test]
fn panic_on_stale_reply() {
    assert_caught(Mutation::PanicOnStaleReply);
}

#[test]
fn expired_session_applied_as_new() {
    assert_caught(Mutation::ExpiredSessionAppliedAsNew);
}

#[test]
fn commit_quorum_of_acked() {
    assert_caught(Mutation::CommitQuorumOfAcked);
}

#[test]
fn install_at_commit_index() {
    assert_caught(Mutation::InstallAtCommitIndex);
}

#[test]
fn install_keeps_conflicting_suffix() {
    assert_caught(Mutation::InstallKeepsConflictingSuffix);
}

#[test]
fn probes_are_the_probe_mutations_and_stay_out_of_the_catalog() {
    // Every probe is either listed with a configuration or declared uncaught, never both.
    let mut listed: Vec<Mutation> = probes::probes().iter().map(|b| b.mutation).collect();
    assert!(listed.iter().all(|m| !probes::UNCAUGHT.contains(m)));
    listed.extend(probes::UNCAUGHT);
    listed.sort();
    assert_eq!(listed, Mutation::PROBES);
    let catalog = catalog::catalog();
    assert!(catalog.iter().all(|b| !b.mutation.is_probe()));
    for bug in probes::probes() {
        let kv_probe = bug.mutation == Mutation::ExpiredSessionAppliedAsNew;
        assert_eq!(bug.kv.enabled(), kv_probe, "{}", bug.mutation);
        assert!(bug.bounds().validate().is_ok(), "{}", bug.mutation);
    }
}

#[test]
fn without_the_probe_every_probe_configuration_holds() {
    common::assert_holds_without_the_bug(&probes::probes());
}
