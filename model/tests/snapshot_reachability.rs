//! The reachability properties of snapshots can fail: each is reported not reached where the
//! model cannot get there, and where only a bound rules it out the verdict names that bound
//! (`properties::impossible`) rather than claiming a finding.

use raft_impl::{Mutation, MutationSet};
use raft_model::check::{self, CheckOptions, CheckReport, PropertyOutcome, Strategy, Until};
use raft_model::properties::{
    self, CAUGHT_UP_BY_INSTALL, INSTALL_KEEPS_SUFFIX, RESTART_FROM_SNAPSHOT,
};
use raft_model::{Bounds, KvBounds, Preset, RaftModel};

fn outcome(report: &CheckReport, name: &str) -> PropertyOutcome {
    let p = report.properties.iter().find(|p| p.name == name);
    p.expect("the property is checked").outcome
}

/// The whole space was explored and every safety property holds in it.
fn assert_safe(report: &CheckReport) {
    assert!(report.exhaustive);
    for p in report.properties.iter().filter(|p| p.safety) {
        assert_eq!(p.outcome, PropertyOutcome::Holds, "{}", p.name);
    }
}

/// `--preset snapshots` with two servers and `in_flight` messages in flight.
fn two_servers(in_flight: usize) -> Bounds {
    Bounds {
        servers: 2,
        max_in_flight: in_flight,
        ..Preset::Snapshots.bounds()
    }
}

/// With two servers a majority is both, so the follower holds everything a snapshot covers:
/// the leader sends InstallSnapshot only after a rejection of an older term's AppendEntries
/// takes its next index below its snapshot, which needs that stale request in flight with the
/// election's messages. With one message in flight no follower catches up by install, and
/// the check says so, naming the bound; with two it does.
#[test]
fn two_servers_catch_up_by_install_only_with_two_messages_in_flight() {
    let options = CheckOptions::exhaustive(Strategy::Dfs, 1);
    let one = check::run(RaftModel::new(two_servers(1)), &options);
    assert_safe(&one);
    // Not reached in the whole space, reported with the bound that rules it out.
    let why = "needs 3 servers, or 2 with --max-in-flight >= 2";
    for name in [CAUGHT_UP_BY_INSTALL, INSTALL_KEEPS_SUFFIX] {
        assert_eq!(
            outcome(&one, name),
            PropertyOutcome::Unreachable(why),
            "{name}"
        );
    }
    // So is a deposed leader's append reaching a new follower: that follower's leader is the
    // deposed one again, and it learns so from a message while the old one is in flight. With
    // every unreached property explained by a bound, the verdict is a pass.
    assert_eq!(
        outcome(&one, properties::DEPOSED_APPEND_MEETS_FOLLOWER),
        PropertyOutcome::Unreachable(
            "needs 3 servers, or 2 with a crash or a third term and --max-in-flight >= 2"
        )
    );
    assert!(!one.violated());
    let two = check::run(RaftModel::new(two_servers(2)), &options);
    assert_safe(&two);
    assert_eq!(
        outcome(&two, properties::DEPOSED_APPEND_MEETS_FOLLOWER),
        PropertyOutcome::ExampleFound
    );
    assert_eq!(
        outcome(&two, CAUGHT_UP_BY_INSTALL),
        PropertyOutcome::ExampleFound
    );
    let kv = KvBounds::default();
    assert_eq!(
        properties::impossible(CAUGHT_UP_BY_INSTALL, &two_servers(2), &kv),
        None
    );
}

/// Under `snapshot-discards-matching-suffix` every install drops the whole log, so "a snapshot
/// install keeps a matching suffix" is never reached in the space `--preset snapshots` reaches
/// without the bug, and no bound explains it: the check reports it as a finding.
#[test]
fn no_install_keeps_a_suffix_when_every_install_drops_the_log() {
    let bounds = Bounds {
        mutations: MutationSet::NONE.with(Mutation::SnapshotDiscardsMatchingSuffix),
        ..Preset::Snapshots.bounds()
    };
    let options = CheckOptions {
        until: Until::Found(INSTALL_KEEPS_SUFFIX),
        ..CheckOptions::exhaustive(Strategy::Dfs, 2)
    };
    let report = check::run(RaftModel::new(bounds), &options);
    assert!(report.exhaustive);
    assert_eq!(
        outcome(&report, INSTALL_KEEPS_SUFFIX),
        PropertyOutcome::NotReached
    );
    assert_eq!(
        properties::impossible(INSTALL_KEEPS_SUFFIX, &bounds, &KvBounds::default()),
        None
    );
    // The installs themselves still happen.
    assert_eq!(
        outcome(&report, CAUGHT_UP_BY_INSTALL),
        PropertyOutcome::ExampleFound
    );
}

/// Under `term-not-persisted` every durable term is 0, and a snapshot of a later term on such
/// a disk is a state no server could have written: recovery refuses it (`HardState::check`,
/// a step that panics), so no server ever restarts from a snapshot. The check reports "a server
/// restarts from a snapshot" not reached in the whole space, with no bound to explain it, and
/// the refused restarts as "no step panics".
#[test]
fn no_restart_from_a_snapshot_when_the_term_is_not_persisted() {
    let bounds = Bounds {
        mutations: MutationSet::NONE.with(Mutation::TermNotPersisted),
        ..Preset::Snapshots.bounds()
    };
    let options = CheckOptions {
        until: Until::Found(RESTART_FROM_SNAPSHOT),
        ..CheckOptions::exhaustive(Strategy::Dfs, 2)
    };
    let report = check::run(RaftModel::new(bounds), &options);
    assert!(report.exhaustive);
    assert_eq!(
        outcome(&report, RESTART_FROM_SNAPSHOT),
        PropertyOutcome::NotReached
    );
    assert_eq!(
        properties::impossible(RESTART_FROM_SNAPSHOT, &bounds, &KvBounds::default()),
        None
    );
    assert_eq!(
        outcome(&report, properties::NO_STEP_PANICS),
        PropertyOutcome::Violated
    );
}

/// Under `snapshot-never-sent` a leader never sends its snapshot, so no follower catches up by
/// one: "a follower catches up by InstallSnapshot" is reported not reached in the space
/// `--preset snapshots` reaches, with no bound to explain it, while every safety property
/// holds (a follower left behind loses nothing; it is a liveness bug). The preset reaches it
/// without the bug (`--preset snapshots` in the README, and the KV test in `kv_clients.rs`).
#[test]
fn no_follower_catches_up_by_install_when_no_snapshot_is_sent() {
    let bounds = Bounds {
        mutations: MutationSet::NONE.with(Mutation::SnapshotNeverSent),
        ..Preset::Snapshots.bounds()
    };
    let report = check::run(
        RaftModel::new(bounds),
        &CheckOptions::exhaustive(Strategy::Dfs, 2),
    );
    assert_safe(&report);
    assert_eq!(
        outcome(&report, CAUGHT_UP_BY_INSTALL),
        PropertyOutcome::NotReached
    );
    assert_eq!(
        properties::impossible(CAUGHT_UP_BY_INSTALL, &bounds, &KvBounds::default()),
        None
    );
    // Snapshots are still taken, and servers still restart from them.
    assert_eq!(
        outcome(&report, RESTART_FROM_SNAPSHOT),
        PropertyOutcome::ExampleFound
    );
}
