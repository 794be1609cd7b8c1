//! The headline measurement: the default configuration of `raftcheck check`, explored
//! exhaustively with DFS and symmetry reduction on 2 threads, once with each storage mode
//! (atomic, the default; deferred; wal), back to back, so that their ratios come from one run
//! on one machine. Prints unique states, seconds, unique states per second and each mode's
//! time as a multiple of atomic's; asserts nothing about time (this machine is shared).
//!
//! `cargo bench -p raft-model --bench check` (all three modes), or with a filter argument
//! naming the modes to run: `cargo bench -p raft-model --bench check -- atomic`.

use raft_model::check::{self, CheckOptions, Strategy};
use raft_model::{Bounds, Persistence, RaftModel};

/// Same allocator as the `raftcheck` binary, so the figure is the one users see.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let modes = [Persistence::Atomic, Persistence::Deferred, Persistence::Wal];
    println!("raftcheck default configuration:\n{}", Bounds::default());
    let mut atomic_seconds = None;
    for persistence in modes {
        let name = persistence.name();
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let bounds = Bounds {
            persistence,
            ..Bounds::default()
        };
        let options = CheckOptions::exhaustive(Strategy::Dfs, 2);
        let report = check::run(RaftModel::new(bounds), &options);
        assert!(
            report.exhaustive && report.all_good(),
            "the default check must hold with {name} storage"
        );
        let seconds = report.elapsed.as_secs_f64();
        let ratio = match atomic_seconds {
            Some(atomic) => format!(", {:.2}x atomic's time", seconds / atomic),
            None => String::new(),
        };
        if persistence == Persistence::Atomic {
            atomic_seconds = Some(seconds);
        }
        println!(
            "check/default/{name}: {} unique states, {} total, {seconds:.2} s, {:.0} unique states/s{ratio}",
            report.unique_states,
            report.total_states,
            report.states_per_second()
        );
    }
}
