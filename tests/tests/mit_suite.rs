//! The MIT 6.5840 Raft suite (3A, 3B, 3C, 3D) on the simulator, each test on many seeds.
//!
//! `RAFT_SEEDS=N` sets the number of seeds per test (default 20 for 3A–3C, whose runs are
//! long, and 200 for the shorter 3D runs); a failure prints the seed and the command that
//! replays it.

/// Seeds per 3D test when `RAFT_SEEDS` is not set: the acceptance of issue 21.
const SEEDS_3D: u64 = 200;

macro_rules! suite_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                raft_tests::seeds::check_scenario(stringify!($name));
            }
        )*
    };
}

macro_rules! suite_tests_3d {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                raft_tests::seeds::check_scenario_or(stringify!($name), SEEDS_3D);
            }
        )*
    };
}

suite_tests!(
    initial_election_3a,
    re_election_3a,
    many_elections_3a,
    basic_agree_3b,
    rpc_bytes_3b,
    follower_failure_3b,
    leader_failure_3b,
    fail_agree_3b,
    fail_no_agree_3b,
    concurrent_starts_3b,
    rejoin_3b,
    backup_3b,
    count_3b,
    persist1_3c,
    persist2_3c,
    persist3_3c,
    figure8_3c,
    unreliable_agree_3c,
    figure8_unreliable_3c,
    reliable_churn_3c,
    unreliable_churn_3c,
);

suite_tests_3d!(
    snapshot_basic_3d,
    snapshot_install_3d,
    snapshot_install_unreliable_3d,
    snapshot_install_crash_3d,
    snapshot_install_uncrash_3d,
    snapshot_all_crash_3d,
    snapshot_init_3d,
);

/// Every scenario of the suite has a test above.
#[test]
fn every_scenario_is_tested() {
    let tested = include_str!("mit_suite.rs");
    for scenario in raft_tests::suite::SCENARIOS {
        assert!(
            tested.contains(&format!("    {},\n", scenario.name)),
            "scenario {} has no #[test]",
            scenario.name
        );
    }
}
