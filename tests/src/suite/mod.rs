//! The MIT 6.5840 Raft tests (3A, 3B, 3C, 3D), ported onto the simulator, and the way to run one.
//!
//! Each scenario is an `async fn` reading like its Go original; [`SCENARIOS`] lists them with
//! the cluster each starts on, and [`Scenario::run`] plays one on a seed, optionally with
//! deliberate bugs switched on, returning the verdict instead of panicking (so that a bug
//! catalog can be run through the suite).

mod agreement;
mod election;
mod persistence;
mod snapshots;

use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::time::Duration;

use raft_impl::{Command, MutationSet};

use crate::failure::Failure;
use crate::runtime::Sim;
use crate::tester::Tester;
use crate::trace::TraceEvent;
use crate::value::Value;
use crate::world::World;

pub use agreement::RPC_BYTES_ALLOWANCE;
pub use snapshots::SNAPSHOT_INTERVAL;

/// The tester handle every scenario takes.
type T = Tester<Value>;

/// A scenario's body, boxed so that different `async fn`s fit in one table.
type Body = fn(T) -> Pin<Box<dyn Future<Output = Result<(), Failure>>>>;

/// Virtual time one scenario may take (the Go suite's per-test limit of 120 s).
pub const TIME_LIMIT: Duration = Duration::from_secs(120);

/// One test of the suite.
pub struct Scenario {
    /// The Rust test's name, e.g. `figure8_unreliable_3c` for `TestFigure8Unreliable3C`.
    pub name: &'static str,
    pub servers: u8,
    /// Whether the network starts unreliable (`make_config(t, servers, true, …)`).
    pub unreliable: bool,
    /// Whether the servers run the snapshotting applier (`make_config(…, snapshot)`, 3D).
    pub snapshots: bool,
    body: Body,
}

impl fmt::Debug for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scenario")
            .field("name", &self.name)
            .field("servers", &self.servers)
            .field("unreliable", &self.unreliable)
            .field("snapshots", &self.snapshots)
            .finish_non_exhaustive()
    }
}

macro_rules! scenario {
    ($name:ident, $servers:expr, $unreliable:expr, $body:path) => {
        scenario!($name, $servers, $unreliable, $body, snapshots: false)
    };
    ($name:ident, $servers:expr, $unreliable:expr, $body:path, snapshots: $snapshots:expr) => {
        Scenario {
            name: stringify!($name),
            servers: $servers,
            unreliable: $unreliable,
            snapshots: $snapshots,
            body: |t| Box::pin($body(t)),
        }
    };
}

/// Every test of 3A, 3B, 3C and 3D, in the order of the Go suite.
pub static SCENARIOS: &[Scenario] = &[
    scenario!(initial_election_3a, 3, false, election::initial_election),
    scenario!(re_election_3a, 3, false, election::re_election),
    scenario!(many_elections_3a, 7, false, election::many_elections),
    scenario!(basic_agree_3b, 3, false, agreement::basic_agree),
    scenario!(rpc_bytes_3b, 3, false, agreement::rpc_bytes),
    scenario!(follower_failure_3b, 3, false, agreement::follower_failure),
    scenario!(leader_failure_3b, 3, false, agreement::leader_failure),
    scenario!(fail_agree_3b, 3, false, agreement::fail_agree),
    scenario!(fail_no_agree_3b, 5, false, agreement::fail_no_agree),
    scenario!(concurrent_starts_3b, 3, false, agreement::concurrent_starts),
    scenario!(rejoin_3b, 3, false, agreement::rejoin),
    scenario!(backup_3b, 5, false, agreement::backup),
    scenario!(count_3b, 3, false, agreement::count),
    scenario!(persist1_3c, 3, false, persistence::persist1),
    scenario!(persist2_3c, 5, false, persistence::persist2),
    scenario!(persist3_3c, 3, false, persistence::persist3),
    scenario!(figure8_3c, 5, false, persistence::figure8),
    scenario!(unreliable_agree_3c, 5, true, persistence::unreliable_agree),
    scenario!(
        figure8_unreliable_3c,
        5,
        true,
        persistence::figure8_unreliable
    ),
    scenario!(reliable_churn_3c, 5, false, persistence::churn),
    scenario!(unreliable_churn_3c, 5, true, persistence::churn),
    scenario!(
        snapshot_basic_3d,
        3,
        false,
        snapshots::snapshot_basic,
        snapshots: true
    ),
    scenario!(
        snapshot_install_3d,
        3,
        false,
        snapshots::snapshot_install,
        snapshots: true
    ),
    scenario!(
        snapshot_install_unreliable_3d,
        3,
        true,
        snapshots::snapshot_install,
        snapshots: true
    ),
    scenario!(
        snapshot_install_crash_3d,
        3,
        false,
        snapshots::snapshot_install_crash,
        snapshots: true
    ),
    scenario!(
        snapshot_install_uncrash_3d,
        3,
        true,
        snapshots::snapshot_install_crash,
        snapshots: true
    ),
    scenario!(
        snapshot_all_crash_3d,
        3,
        false,
        snapshots::snapshot_all_crash,
        snapshots: true
    ),
    scenario!(
        snapshot_init_3d,
        3,
        false,
        snapshots::snapshot_init,
        snapshots: true
    ),
];

/// A scenario name that is not in [`SCENARIOS`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario `{0}`")]
pub struct UnknownScenario(pub String);

/// Looks a scenario up by its name.
pub fn find(name: &str) -> Result<&'static Scenario, UnknownScenario> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| UnknownScenario(name.to_string()))
}

/// How one scenario went on one seed.
#[derive(Debug)]
pub struct Run {
    pub outcome: Result<(), Failure>,
    /// Virtual time at the end of the run.
    pub elapsed: Duration,
    /// The events of the run, if tracing was asked for.
    pub trace: Vec<TraceEvent<Value>>,
}

impl Scenario {
    /// Plays this scenario on `seed` with `mutations` switched on in every server. A panic of
    /// the code under test is reported as [`Failure::Panic`], not propagated.
    pub fn run(&self, seed: u64, mutations: MutationSet, trace: bool) -> Run {
        let mut world = World::new(self.servers, seed, mutations, trace);
        if self.unreliable {
            world.set_unreliable(true);
        }
        if self.snapshots {
            world.take_snapshots(SNAPSHOT_INTERVAL);
        }
        let sim = Sim::new(world);
        let body = (self.body)(Tester::new(sim.clone()));
        let outcome = run_guarded(&sim, TIME_LIMIT, body);
        let mut world = sim.world();
        Run {
            outcome,
            elapsed: world.now(),
            trace: world.take_trace(),
        }
    }

    /// Whether this scenario passes on `seed` with `mutations` switched on.
    pub fn check(&self, seed: u64, mutations: MutationSet) -> Result<(), Failure> {
        self.run(seed, mutations, false).outcome
    }
}

/// Runs `body` on `sim` (see [`Sim::run`]); a panic of the code under test is reported as
/// [`Failure::Panic`], not propagated, so that a deliberate bug gets a verdict.
pub(crate) fn run_guarded<C: Command + 'static>(
    sim: &Sim<C>,
    limit: Duration,
    body: impl Future<Output = Result<(), Failure>> + 'static,
) -> Result<(), Failure> {
    panic::catch_unwind(AssertUnwindSafe(|| sim.run(limit, body)))
        .unwrap_or_else(|payload| Err(Failure::Panic(panic_message(payload.as_ref()))))
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// A scenario-specific check: fails with the message `message` builds if `ok` is false.
fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(Failure::Check(message()))
    }
}

/// The Go tests' integer commands.
fn int(x: u64) -> Value {
    Value::Int(x)
}

impl Tester<Value> {
    /// A random integer command (the Go tests' `rand.Int()`).
    pub fn random_value(&self) -> Value {
        Value::Int(self.random(0..1 << 62))
    }
}
