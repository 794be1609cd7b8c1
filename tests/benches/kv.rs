//! The KV linearizability scenarios: wall time per seed, history size and how often the
//! snapshot paths ran with the correct service, and which seeds each KV bug of the catalog (`kv-no-dedup`, `stale-read`) is
//! caught on. `cargo bench -p raft-tests --bench kv` runs every scenario on
//! `RAFT_BENCH_SEEDS` seeds (default 20).

use std::env;
use std::time::{Duration, Instant};

use raft_impl::{Mutation, MutationSet};
use raft_lincheck::Outcome;
use raft_tests::kv::{SnapshotCounts, KV_SCENARIOS};

fn main() {
    let seeds: u64 = env::var("RAFT_BENCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    // A mutated core may panic; the verdict records it, the default hook would only add noise.
    std::panic::set_hook(Box::new(|_| {}));
    println!("| scenario | wall time per seed | virtual time | operations (completed) | snapshots taken / installed / restarted from | failing seeds | kv-no-dedup caught on | stale-read caught on |");
    println!("|---|---|---|---|---|---|---|---|");
    for scenario in KV_SCENARIOS {
        let mut wall = Duration::ZERO;
        let (mut virt, mut ops, mut done) = (Duration::ZERO, 0, 0);
        let mut snapshots = SnapshotCounts::default();
        let mut failing = Vec::new();
        for seed in 0..seeds {
            let t0 = Instant::now();
            let run = scenario.run(seed, MutationSet::NONE, false);
            wall += t0.elapsed();
            virt += run.elapsed;
            snapshots.taken += run.snapshots.taken;
            snapshots.installed += run.snapshots.installed;
            snapshots.restarts += run.snapshots.restarts;
            ops += run.history.operations().len();
            done += run
                .history
                .operations()
                .iter()
                .filter(|op| op.returned.is_some())
                .count();
            if run.failure().is_some() {
                failing.push(seed);
            }
        }
        let caught = |mutation| {
            let bug = MutationSet::NONE.with(mutation);
            let caught: Vec<u64> = (0..seeds)
                .filter(|seed| {
                    matches!(
                        scenario.run(*seed, bug, false).report.outcome,
                        Outcome::NotLinearizable(_)
                    )
                })
                .collect();
            format!("{}/{seeds}: {caught:?}", caught.len())
        };
        let n = seeds as u32;
        println!(
            "| {} | {:.1} ms | {:.1} s | {} ({}) | {:.1} / {:.1} / {:.1} | {:?} | {} | {} |",
            scenario.name,
            (wall / n).as_secs_f64() * 1000.0,
            (virt / n).as_secs_f64(),
            ops / seeds as usize,
            done / seeds as usize,
            snapshots.taken as f64 / seeds as f64,
            snapshots.installed as f64 / seeds as f64,
            snapshots.restarts as f64 / seeds as f64,
            failing,
            caught(Mutation::KvNoDedup),
            caught(Mutation::StaleRead),
        );
    }
}
