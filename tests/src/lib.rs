//! raft-tests: the judges of the shared Raft core that run outside the model checker.
//!
//! A seeded, deterministic simulator drives `raft_impl::Node` (never a re-implementation of
//! Raft) through a labrpc-like network with crashes and restarts, and the MIT 6.5840 Raft
//! suite (3A, 3B, 3C, 3D) runs on it. Layers, bottom up:
//!
//! - [`world`]: servers, stores, network and the timed event queue;
//! - [`network`]: the labrpc behaviours (loss, delay, long reordering);
//! - [`apply`]: the checker of everything the servers apply, and 3D's snapshotting applier;
//! - [`runtime`]: an async runtime on the virtual clock, so tester code reads like Go;
//! - [`tester`]: the 6.5840 tester helpers (`check_one_leader`, `one`, `wait`, …);
//! - [`suite`]: the 3A/3B/3C/3D scenarios and how to run one on a seed;
//! - [`kv_service`], [`clerk`], [`kv`], [`kv_snapshots`]: the KV service on the simulated
//!   servers (with Lab 4B's snapshots, sessions included), Lab 4-style clients that record a
//!   history, and the fault scenarios and 4B snapshot tests whose histories are checked for
//!   linearizability (`raft_lincheck`) after every run;
//! - [`seeds`]: which seeds a test runs, and the replay command a failure prints;
//! - [`trace`]: the readable event trace of a run;
//! - [`failure`]: why a run failed; [`value`]: the command type the suite replicates.
//!
//! # Running
//!
//! ```text
//! cargo test -p raft-tests --release                       # every test (CI)
//! RAFT_SEEDS=1000 cargo test -p raft-tests --release --test mit_suite   # a soak
//! RAFT_SEEDS=1000 cargo test -p raft-tests --release --test mit_suite -- _3d   # 3D soak
//! RAFT_SEED=17 RAFT_TRACE=1 cargo test -p raft-tests --release --test mit_suite \
//!     -- --exact figure8_3c --nocapture                    # replay one seed, print its trace
//! cargo bench -p raft-tests --bench suite                  # wall time of the suite per seed
//! cargo bench -p raft-tests --bench mutations              # which catalog bugs the suite catches
//! cargo test -p raft-tests --release --test kv_linearizability   # KV histories, 200 seeds each
//! cargo test -p raft-tests --release --test kv_linearizability -- kv_snapshot   # Lab 4B only
//! cargo bench -p raft-tests --bench kv                     # KV scenarios: cost, bugs caught
//! ```
//!
//! A scenario can also be run programmatically, with deliberate bugs switched on, for a verdict
//! instead of a panic: `suite::find("figure8_3c")?.check(seed, mutations)`.

pub mod apply;
pub mod clerk;
pub mod failure;
pub mod kv;
pub mod kv_service;
pub mod kv_snapshots;
pub mod network;
pub mod runtime;
pub mod seeds;
pub mod suite;
pub mod tester;
pub mod trace;
pub mod value;
pub mod world;

pub use failure::Failure;
