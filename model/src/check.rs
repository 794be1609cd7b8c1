//! Running the checker over the model and summarising what it found, independent of how the
//! result is printed.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use stateright::{Checker, Expectation, HasDiscoveries, Model, Path, Property, UniformChooser};

use crate::action::Action;
use crate::model::RaftModel;
use crate::properties;
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

/// When a check stops before the space is exhausted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Until {
    /// At the first violation of any safety property.
    AnyViolation,
    /// When the named property has a counterexample (or example); violations of the others are
    /// reported but do not stop the search. The bug catalog uses it: a bug often breaks another
    /// property a few steps before the one it is known for.
    Found(&'static str),
}

/// How to run one check.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    pub strategy: Strategy,
    pub threads: usize,
    pub until: Until,
    /// Stop after about this many states (required for simulation).
    pub max_states: Option<usize>,
    /// Called about once a second with (unique states, total states, depth, elapsed).
    pub progress: Option<fn(usize, usize, usize, Duration)>,
}

impl CheckOptions {
    /// The whole space with `strategy` on `threads`, stopping at the first violation, quietly:
    /// what tests and benchmarks run.
    pub fn exhaustive(strategy: Strategy, threads: usize) -> CheckOptions {
        CheckOptions {
            strategy,
            threads,
            until: Until::AnyViolation,
            max_states: None,
            progress: None,
        }
    }
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
    /// Reachability property that the bounds make impossible, and which bound (from
    /// [`properties::impossible`]): not a failure, but said.
    Unreachable(&'static str),
}

impl PropertyOutcome {
    pub fn label(self) -> &'static str {
        match self {
            PropertyOutcome::Holds => "holds",
            PropertyOutcome::NotRefuted => "no violation found (not exhaustive)",
            PropertyOutcome::Violated => "VIOLATED",
            PropertyOutcome::ExampleFound => "example found",
            PropertyOutcome::NotReached => "NOT REACHED",
            PropertyOutcome::Unreachable(_) => "not reachable under these bounds",
        }
    }

    /// The outcome's name in the JSON document (`docs/schema/check.schema.json`).
    pub fn key(self) -> &'static str {
        match self {
            PropertyOutcome::Holds => "holds",
            PropertyOutcome::NotRefuted => "not_refuted",
            PropertyOutcome::Violated => "violated",
            PropertyOutcome::ExampleFound => "example_found",
            PropertyOutcome::NotReached => "not_reached",
            PropertyOutcome::Unreachable(_) => "not_reachable",
        }
    }
}

/// What a run concluded, in one word: a script reads it from the exit code or the JSON
/// document, a person from the last line of the output ([`CheckReport::summary`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The whole bounded space was explored: every safety property holds, every reachability
    /// property was reached or is impossible under a bound the run names, and a leader can be
    /// elected.
    Pass,
    /// A safety property was violated, or the whole space was explored and a reachability
    /// property that no bound rules out was never reached.
    Fail,
    /// No violation in the part explored, but the search stopped before the end
    /// (`--max-states`, or the simulation strategy): the run proves nothing.
    Incomplete,
    /// No violation, but the bounds let no election complete: every safety property holds
    /// because nothing happens, which is no evidence either.
    Vacuous,
}

impl Verdict {
    /// The process exit code (2 is bad arguments, which never reach a verdict).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Incomplete => 3,
            Verdict::Vacuous => 4,
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

impl PropertyResult {
    /// The kind of property as a report names it: a safety property must hold `always`, a
    /// reachability property `sometimes`.
    pub fn kind(&self) -> &'static str {
        if self.safety {
            "always"
        } else {
            "sometimes"
        }
    }
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
    /// Steps a lossless network could not take under `--max-in-flight` (see
    /// [`RaftModel::removed_by_bound`]).
    pub removed_by_bound: u64,
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
                PropertyOutcome::Holds
                    | PropertyOutcome::ExampleFound
                    | PropertyOutcome::Unreachable(_)
            )
        })
    }

    /// How `property`'s outcome reads in a report: a property not reached by a search that
    /// stopped early may yet be reachable.
    pub fn outcome_label(&self, property: &PropertyResult) -> String {
        match property.outcome {
            PropertyOutcome::NotReached if !self.exhaustive => {
                "not reached (search stopped)".to_string()
            }
            PropertyOutcome::Unreachable(why) => format!("{}: {why}", property.outcome.label()),
            other => other.label().to_string(),
        }
    }

    /// The run's verdict (see [`Verdict`] for the order of the rules).
    pub fn verdict(&self) -> Verdict {
        let unreached = (self.properties.iter()).any(|p| p.outcome == PropertyOutcome::NotReached);
        if self.violated() || (self.exhaustive && unreached) {
            Verdict::Fail
        } else if !self.exhaustive {
            Verdict::Incomplete
        } else if self.no_election().is_some() {
            Verdict::Vacuous
        } else {
            Verdict::Pass
        }
    }

    /// The bound that rules out any election, if one does.
    fn no_election(&self) -> Option<&'static str> {
        self.properties.iter().find_map(|p| match p.outcome {
            PropertyOutcome::Unreachable(why) if p.name == properties::LEADER_ELECTED => Some(why),
            _ => None,
        })
    }

    /// The verdict as one line, the last a run prints: what was shown and on how many states,
    /// and every reachability property the bounds excused, so that a pass says what it does
    /// not cover.
    pub fn summary(&self) -> String {
        let states = self.unique_states;
        let named = |outcome: fn(PropertyOutcome) -> bool| -> Vec<String> {
            (self.properties.iter())
                .filter(|p| outcome(p.outcome))
                .map(|p| match p.outcome {
                    PropertyOutcome::Unreachable(why) => format!("\"{}\" ({why})", p.name),
                    _ => format!("\"{}\"", p.name),
                })
                .collect()
        };
        match self.verdict() {
            Verdict::Fail if self.violated() => {
                let (name, path) = self.first_violation().expect("a violated property");
                let steps = path.clone().into_actions().len();
                let also = named(|o| o == PropertyOutcome::Violated).len() - 1;
                let also = if also > 0 {
                    format!(" (and {also} more)")
                } else {
                    String::new()
                };
                format!(
                    "verdict: FAIL, \"{name}\" is violated{also}: a counterexample of {steps} steps \
                     ({states} states explored)"
                )
            }
            Verdict::Fail => format!(
                "verdict: FAIL, never reached in the whole bounded space ({states} states), and no \
                 bound rules it out: {}",
                named(|o| o == PropertyOutcome::NotReached).join(", ")
            ),
            Verdict::Incomplete => format!(
                "verdict: INCOMPLETE, no violation in the {states} states explored, but the search \
                 stopped before the end (--max-states or simulation): nothing is proved"
            ),
            Verdict::Vacuous => format!(
                "verdict: VACUOUS, no election can complete under these bounds ({}): the safety \
                 properties hold only because nothing happens ({states} states)",
                self.no_election().unwrap_or_default()
            ),
            Verdict::Pass => {
                let excused = named(|o| matches!(o, PropertyOutcome::Unreachable(_)));
                let reach = if excused.is_empty() {
                    "every reachability property reached".to_string()
                } else {
                    format!(
                        "not reachable under these bounds, so not shown: {}",
                        excused.join(", ")
                    )
                };
                format!(
                    "verdict: PASS, every safety property holds in all {states} states of these \
                     bounds; {reach}"
                )
            }
        }
    }

    /// The first violated property and its counterexample.
    pub fn first_violation(&self) -> Option<(&'static str, &Path<State, Action>)> {
        self.properties
            .iter()
            .filter(|p| p.outcome == PropertyOutcome::Violated)
            .find_map(|p| p.path.as_ref().map(|path| (p.name, path)))
    }
}

/// Checks `model` with `options`.
pub fn run(model: RaftModel, options: &CheckOptions) -> CheckReport {
    let stop = match options.until {
        Until::AnyViolation => HasDiscoveries::AnyFailures,
        Until::Found(name) => HasDiscoveries::AnyOf(BTreeSet::from([name])),
    };
    let simulation = matches!(options.strategy, Strategy::Simulation { .. });
    let mut builder = Latched::new(model, simulation)
        .checker()
        .threads(options.threads.max(1))
        .finish_when(stop);
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

/// The model with every property latched: the first state found to be a discovery for a
/// property (a counterexample, or an example) is the only one reported for it.
///
/// Stateright 0.31 keeps evaluating a property after a discovery and overwrites its path with
/// every later discovery of the same block of work (`checker/bfs.rs`, `discoveries.insert`).
/// The ghost history keeps a violation forever, so the successors of a violating state violate
/// too, and a reported counterexample would run on for several steps past the violation (16
/// steps instead of 11 for truncate-on-match). Latched, a path ends at its first violating
/// state, since a state's ancestors are evaluated before it is generated; and on one thread,
/// where BFS visits states by depth, a BFS counterexample is a shortest one.
///
/// It also hides disabled actions from the simulation strategy: stateright 0.31's simulation
/// records a chosen action by its position in a list it has already reordered by removing the
/// actions it tried and found disabled (`checker/simulation.rs`), so the replayed path would take
/// other actions. Listing only actions with a successor, the first choice is always taken.
struct Latched {
    model: RaftModel,
    properties: Vec<Property<RaftModel>>,
    /// `found[i]`: property `i` has its discovery.
    found: Vec<AtomicBool>,
    /// List only the actions whose `next_state` is `Some` (for the simulation strategy).
    enabled_only: bool,
}

/// Property conditions are plain functions, so the latched condition of property `I` is an
/// instance of one generic function per index.
const LATCHED: [fn(&Latched, &State) -> bool; 28] = [
    latched::<0>,
    latched::<1>,
    latched::<2>,
    latched::<3>,
    latched::<4>,
    latched::<5>,
    latched::<6>,
    latched::<7>,
    latched::<8>,
    latched::<9>,
    latched::<10>,
    latched::<11>,
    latched::<12>,
    latched::<13>,
    latched::<14>,
    latched::<15>,
    latched::<16>,
    latched::<17>,
    latched::<18>,
    latched::<19>,
    latched::<20>,
    latched::<21>,
    latched::<22>,
    latched::<23>,
    latched::<24>,
    latched::<25>,
    latched::<26>,
    latched::<27>,
];

fn latched<const I: usize>(latched: &Latched, state: &State) -> bool {
    latched.condition(I, state)
}

impl Latched {
    fn new(model: RaftModel, enabled_only: bool) -> Latched {
        let properties = model.properties();
        assert!(properties.len() <= LATCHED.len(), "too many properties");
        // Latching an `eventually` property would be wrong: its first state without the
        // condition is no counterexample, yet would claim the latch and hide a real one.
        assert!(
            properties
                .iter()
                .all(|p| p.expectation != Expectation::Eventually),
            "eventually properties cannot be latched"
        );
        Latched {
            found: properties.iter().map(|_| AtomicBool::new(false)).collect(),
            properties,
            model,
            enabled_only,
        }
    }

    /// Property `i` in `state`, except that once it has had a discovery no state is one.
    fn condition(&self, i: usize, state: &State) -> bool {
        let property = &self.properties[i];
        // An `always` property's discovery is a state where it is false; a `sometimes`
        // property's, one where it is true.
        let no_discovery = property.expectation.discovery_is_failure();
        if self.found[i].load(Ordering::Relaxed) {
            return no_discovery;
        }
        let value = (property.condition)(&self.model, state);
        // `swap` lets exactly one state claim the discovery.
        if value != no_discovery && self.found[i].swap(true, Ordering::Relaxed) {
            return no_discovery;
        }
        value
    }
}

impl Model for Latched {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        self.model.init_states()
    }

    fn actions(&self, state: &State, actions: &mut Vec<Action>) {
        self.model.actions(state, actions);
        if self.enabled_only {
            actions.retain(|a| self.model.next_state(state, *a).is_some());
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        self.model.next_state(last, action)
    }

    fn within_boundary(&self, state: &State) -> bool {
        self.model.within_boundary(state)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        (self.properties.iter().zip(LATCHED))
            .map(|(p, condition)| Property {
                expectation: p.expectation.clone(),
                name: p.name,
                condition,
            })
            .collect()
    }
}

fn finish(checker: impl Checker<Latched>, start: Instant, options: &CheckOptions) -> CheckReport {
    let mut next_report = start + Duration::from_secs(1);
    while !checker.is_done() {
        std::thread::sleep(Duration::from_millis(20));
        if let Some(progress) = options.progress.filter(|_| Instant::now() >= next_report) {
            next_report += Duration::from_secs(1);
            progress(
                checker.unique_state_count(),
                checker.state_count(),
                checker.max_depth(),
                start.elapsed(),
            );
        }
    }
    let checker = checker.join();
    let elapsed = start.elapsed();
    let mut discoveries: HashMap<&'static str, Path<State, Action>> = checker.discoveries();
    let model = &checker.model().model;
    let properties = &checker.model().properties;
    let stopped = match options.until {
        Until::AnyViolation => properties
            .iter()
            .any(|p| p.expectation.discovery_is_failure() && discoveries.contains_key(p.name)),
        Until::Found(name) => discoveries.contains_key(name),
    };
    let exhaustive = !stopped
        && options.max_states.is_none()
        && !matches!(options.strategy, Strategy::Simulation { .. });
    let properties = properties
        .iter()
        .map(|p| property_result(model, p, discoveries.remove(p.name), exhaustive))
        .collect();
    CheckReport {
        removed_by_bound: model.removed_by_bound.load(Ordering::Relaxed),
        unique_states: checker.unique_state_count(),
        total_states: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        exhaustive,
        properties,
    }
}

/// The row of property `p` in a report, from its discovery (`path`, a counterexample or an
/// example) and whether the search explored the whole space: one rule for every search.
pub fn property_result(
    model: &RaftModel,
    p: &Property<RaftModel>,
    path: Option<Path<State, Action>>,
    exhaustive: bool,
) -> PropertyResult {
    PropertyResult {
        name: p.name,
        safety: p.expectation.discovery_is_failure(),
        outcome: outcome(model, p, path.is_some(), exhaustive),
        path,
    }
}

/// What a search concludes of property `p` from whether it was discovered (violated, or an
/// example found) and whether the search explored the whole space.
pub fn outcome(
    model: &RaftModel,
    p: &Property<RaftModel>,
    discovered: bool,
    exhaustive: bool,
) -> PropertyOutcome {
    match (p.expectation.discovery_is_failure(), discovered) {
        (true, true) => PropertyOutcome::Violated,
        (true, false) if exhaustive => PropertyOutcome::Holds,
        (true, false) => PropertyOutcome::NotRefuted,
        (false, true) => PropertyOutcome::ExampleFound,
        (false, false) => match properties::impossible(p.name, &model.bounds, &model.kv) {
            Some(why) => PropertyOutcome::Unreachable(why),
            None => PropertyOutcome::NotReached,
        },
    }
}
