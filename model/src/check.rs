//! Running the checker over the model and summarising what it found, independent of how the
//! result is printed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, Property, UniformChooser};

use crate::model::{Action, RaftModel};
use crate::state::State;

/// How the state space is searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Breadth first: shortest counterexamples.
    Bfs,
    /// Depth first: lean and fast.
    Dfs,
    /// Random walks from the seed, up to a number of states: not exhaustive.
    Simulation { seed: u64 },
}

/// How to run one check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    pub strategy: Strategy,
    pub threads: usize,
    /// Stop after about this many states (required for simulation).
    pub max_states: Option<usize>,
    /// Called about once a second with (unique states, total states, depth, elapsed).
    pub progress: Option<fn(usize, usize, usize, Duration)>,
}

/// What the checker concluded about one property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyOutcome {
    /// Safety property, whole space explored, no counterexample.
    Holds,
    /// Safety property, no counterexample in the part explored (search was not exhaustive).
    NotRefuted,
    /// Safety property with a counterexample.
    Violated,
    /// Reachability property with an example.
    ExampleFound,
    /// Reachability property never satisfied.
    NotReached,
}

impl PropertyOutcome {
    pub fn label(self) -> &'static str {
        match self {
            PropertyOutcome::Holds => "holds",
            PropertyOutcome::NotRefuted => "no violation found (not exhaustive)",
            PropertyOutcome::Violated => "VIOLATED",
            PropertyOutcome::ExampleFound => "example found",
            PropertyOutcome::NotReached => "NOT REACHED",
        }
    }
}

/// One row of the property table.
#[derive(Clone, Debug)]
pub struct PropertyResult {
    pub name: &'static str,
    pub safety: bool,
    pub outcome: PropertyOutcome,
    /// The counterexample or example, if one was found.
    pub path: Option<Path<State, Action>>,
}

/// The result of a check.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub unique_states: usize,
    pub total_states: usize,
    pub max_depth: usize,
    pub elapsed: Duration,
    /// The whole bounded space was explored.
    pub exhaustive: bool,
    pub properties: Vec<PropertyResult>,
}

impl CheckReport {
    pub fn states_per_second(&self) -> f64 {
        self.unique_states as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A safety property was violated.
    pub fn violated(&self) -> bool {
        self.properties
            .iter()
            .any(|p| p.outcome == PropertyOutcome::Violated)
    }

    /// No violation and every reachability property was reached.
    pub fn all_good(&self) -> bool {
        self.properties.iter().all(|p| {
            matches!(
                p.outcome,
                PropertyOutcome::Holds | PropertyOutcome::ExampleFound
            )
        })
    }

    /// The first violated property and its counterexample.
    pub fn first_violation(&self) -> Option<(&'static str, &Path<State, Action>)> {
        self.properties
            .iter()
            .filter(|p| p.outcome == PropertyOutcome::Violated)
            .find_map(|p| p.path.as_ref().map(|path| (p.name, path)))
    }
}

/// Checks `model` with `options`, stopping at the first safety violation.
pub fn run(model: RaftModel, options: &CheckOptions) -> CheckReport {
    let mut builder = model
        .checker()
        .threads(options.threads.max(1))
        .finish_when(HasDiscoveries::AnyFailures);
    if let Some(n) = options.max_states {
        builder = builder.target_state_count(n);
    }
    let start = Instant::now();
    match options.strategy {
        Strategy::Bfs => finish(builder.spawn_bfs(), start, options),
        Strategy::Dfs => finish(builder.spawn_dfs(), start, options),
        Strategy::Simulation { seed } => finish(
            builder.spawn_simulation(seed, UniformChooser),
            start,
            options,
        ),
    }
}

/// `path` cut at its first state that is a discovery for `property`.
///
/// Stateright 0.31's BFS keeps evaluating a property after a discovery and overwrites the path
/// with every later discovery of the same block of work (`checker/bfs.rs`,
/// `discoveries.insert`); the ghost history keeps a violation forever, so the reported
/// counterexample ran on for several steps past the violation. Cut, it ends where the property
/// fails, though it need not be a shortest one (the catalog's runs latch the first discovery
/// for that).
fn first_discovery(
    model: &RaftModel,
    property: &Property<RaftModel>,
    path: Path<State, Action>,
) -> Path<State, Action> {
    let found =
        |s: &State| (property.condition)(model, s) != property.expectation.discovery_is_failure();
    let steps = path.clone().into_vec();
    let Some(first) = steps.iter().position(|(s, _)| found(s)) else {
        return path;
    };
    let actions: Vec<Action> = steps[..first].iter().filter_map(|(_, a)| *a).collect();
    Path::from_actions(model, steps[0].0.clone(), &actions).unwrap_or(path)
}

fn finish(checker: impl Checker<RaftModel>, start: Instant, options: &CheckOptions) -> CheckReport {
    let mut next_report = start + Duration::from_secs(1);
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(progress) = options.progress.filter(|_| Instant::now() >= next_report) {
            next_report += Duration::from_secs(1);
            let elapsed = start.elapsed();
            {
                progress(
                    checker.unique_state_count(),
                    checker.state_count(),
                    checker.max_depth(),
                    elapsed,
                );
            }
        }
    }
    let checker = checker.join();
    let elapsed = start.elapsed();
    let mut discoveries: HashMap<&'static str, Path<State, Action>> = checker.discoveries();
    let any_failure = checker
        .model()
        .properties()
        .iter()
        .any(|p| p.expectation == Expectation::Always && discoveries.contains_key(p.name));
    let exhaustive = !any_failure
        && options.max_states.is_none()
        && !matches!(options.strategy, Strategy::Simulation { .. });
    let properties = checker
        .model()
        .properties()
        .into_iter()
        .map(|p| {
            let path = discoveries
                .remove(p.name)
                .map(|path| first_discovery(checker.model(), &p, path));
            let safety = p.expectation.discovery_is_failure();
            let outcome = match (safety, path.is_some()) {
                (true, true) => PropertyOutcome::Violated,
                (true, false) if exhaustive => PropertyOutcome::Holds,
                (true, false) => PropertyOutcome::NotRefuted,
                (false, true) => PropertyOutcome::ExampleFound,
                (false, false) => PropertyOutcome::NotReached,
            };
            PropertyResult {
                name: p.name,
                safety,
                outcome,
                path,
            }
        })
        .collect();
    CheckReport {
        unique_states: checker.unique_state_count(),
        total_states: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        exhaustive,
        properties,
    }
}
