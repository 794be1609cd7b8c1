//! Wall time of the whole 6.5840 suite (3A+3B+3C+3D) on one seed: the figure the README reports
//! (target: at most 5 s on the project machine). `cargo bench -p raft-tests` runs it on
//! `RAFT_BENCH_SEEDS` seeds (default 5) and prints, per scenario and for the suite, the mean
//! wall time per seed and the virtual time simulated.

use std::env;
use std::time::{Duration, Instant};

use raft_impl::MutationSet;
use raft_tests::suite::SCENARIOS;

fn main() {
    let seeds: u64 = env::var("RAFT_BENCH_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let mut wall = vec![Duration::ZERO; SCENARIOS.len()];
    let mut virt = vec![Duration::ZERO; SCENARIOS.len()];
    let mut per_seed = Vec::new();
    for seed in 0..seeds {
        let started = Instant::now();
        for (k, scenario) in SCENARIOS.iter().enumerate() {
            let t0 = Instant::now();
            let run = scenario.run(seed, MutationSet::NONE, false);
            wall[k] += t0.elapsed();
            virt[k] += run.elapsed;
            if let Err(failure) = run.outcome {
                panic!("{} failed on seed {seed}: {failure}", scenario.name);
            }
        }
        per_seed.push(started.elapsed());
    }
    let n = seeds.max(1) as u32;
    println!(
        "{:<32} {:>12} {:>12}",
        "scenario", "wall/seed", "virtual/seed"
    );
    for (k, scenario) in SCENARIOS.iter().enumerate() {
        println!(
            "{:<32} {:>9.1} ms {:>10.1} s",
            scenario.name,
            (wall[k] / n).as_secs_f64() * 1e3,
            (virt[k] / n).as_secs_f64()
        );
    }
    let total: Duration = per_seed.iter().sum();
    let worst = per_seed.iter().max().copied().unwrap_or_default();
    println!(
        "whole suite: {:.3} s wall per seed (mean of {seeds}), worst seed {:.3} s, virtual {:.1} s",
        (total / n).as_secs_f64(),
        worst.as_secs_f64(),
        (virt.iter().sum::<Duration>() / n).as_secs_f64()
    );
}
