//! The headline measurement: the default configuration of `raftcheck check`, explored
//! exhaustively with DFS and symmetry reduction on 2 threads. Prints unique states, seconds and
//! unique states per second; asserts nothing about time (this machine is shared).
//!
//! `cargo bench -p raft-model --bench check`

use raft_model::check::{self, CheckOptions, Strategy};
use raft_model::{Bounds, RaftModel};

/// Same allocator as the `raftcheck` binary, so the figure is the one users see.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let bounds = Bounds::default();
    println!("raftcheck default configuration:\n{bounds}");
    let options = CheckOptions::exhaustive(Strategy::Dfs, 2);
    let report = check::run(RaftModel::new(bounds), &options);
    assert!(
        report.exhaustive && report.all_good(),
        "the default check must hold"
    );
    println!(
        "check/default: {} unique states, {} total, {:.2} s, {:.0} unique states/s",
        report.unique_states,
        report.total_states,
        report.elapsed.as_secs_f64(),
        report.states_per_second()
    );
}
