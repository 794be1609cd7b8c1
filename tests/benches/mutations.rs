//! Which deliberate bugs of the catalog the 6.5840 suite catches: every mutation of the core
//! (the KV-service ones do not apply to this suite) through every scenario on
//! `RAFT_BENCH_SEEDS` seeds (default 10). Prints, per bug, how many (scenario, seed) runs
//! failed, the scenarios that caught it, and one failing run to replay. Run with
//! `cargo bench -p raft-tests --bench mutations`.

use std::env;

use raft_impl::{Mutation, MutationSet};
use raft_tests::suite::SCENARIOS;

/// Bugs of the KV service, which the Raft-level suite never exercises.
const KV_ONLY: [Mutation; 2] = [Mutation::KvNoDedup, Mutation::StaleRead];

fn main() {
    let seeds: u64 = env::var("RAFT_BENCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    // A mutated core may panic; the verdict records it, the default hook would only add noise.
    std::panic::set_hook(Box::new(|_| {}));
    println!("| bug | failing runs | scenarios that caught it | example |");
    println!("|---|---|---|---|");
    for mutation in Mutation::ALL.into_iter().filter(|m| !KV_ONLY.contains(m)) {
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
