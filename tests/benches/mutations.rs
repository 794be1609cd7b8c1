//! Which deliberate bugs of the catalog the 6.5840 suite catches: every mutation of the core
//! (the KV-service ones do not apply to this suite), and the snapshot bugs not yet in the
//! catalog, through every scenario on `RAFT_BENCH_SEEDS` seeds (default 10). Prints, per bug,
//! how many (scenario, seed) runs failed, the scenarios that caught it, and one failing run to
//! replay. `RAFT_BENCH_BUGS=name,name` runs only the bugs named. Run with
//! `cargo bench -p raft-tests --bench mutations`.

use std::env;

use raft_impl::{Mutation, MutationSet};
use raft_tests::suite::SCENARIOS;

/// Bugs the simulator cannot express: the KV service's, which the Raft-level suite never
/// exercises, and a storage-ordering bug with no hook in the core (the memory store applies
/// each record whole, so no crash falls between a snapshot's write and the purge it allows).
const NOT_IN_SIMULATOR: [Mutation; 3] = [
    Mutation::KvNoDedup,
    Mutation::StaleRead,
    Mutation::PurgeBeforeSnapshotDurable,
];

/// The bugs to run: the catalog, or those named in `RAFT_BENCH_BUGS`.
fn bugs() -> Vec<Mutation> {
    if let Ok(names) = env::var("RAFT_BENCH_BUGS") {
        return names
            .split(',')
            .map(|name| name.trim().parse().unwrap_or_else(|e| panic!("{e}")))
            .collect();
    }
    Mutation::ALL
        .into_iter()
        .filter(|m| !NOT_IN_SIMULATOR.contains(m))
        .collect()
}

fn main() {
    let seeds: u64 = env::var("RAFT_BENCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // A mutated core may panic; the verdict records it, the default hook would only add noise.
    std::panic::set_hook(Box::new(|_| {}));
    println!("| bug | failing runs | scenarios that caught it | example |");
    println!("|---|---|---|---|");
    for mutation in bugs() {
        let set = MutationSet::NONE.with(mutation);
        let mut failing = 0;
        let mut caught_by = Vec::new();
        let mut example = None;
        for scenario in SCENARIOS {
            let mut caught = 0;
            for seed in 0..seeds {
                if let Err(failure) = scenario.check(seed, set) {
                    caught += 1;
                    example
                        .get_or_insert_with(|| format!("{} seed {seed}: {failure}", scenario.name));
                }
            }
            if caught > 0 {
                caught_by.push(format!("{} ({caught}/{seeds})", scenario.name));
            }
            failing += caught;
        }
        println!(
            "| {mutation} | {failing}/{} | {} | {} |",
            seeds * SCENARIOS.len() as u64,
            if caught_by.is_empty() {
                "—".to_string()
            } else {
                caught_by.join(", ")
            },
            example.unwrap_or_else(|| "—".to_string())
        );
    }
}
