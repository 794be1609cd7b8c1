//! Swarm search (`raftcheck swarm`): many small, independent, differently biased searches run
//! side by side, for depth beyond what an exhaustive run reaches (Holzmann, Joshi and Groce,
//! "Swarm Verification", 2008). None of them is exhaustive, so a swarm run never says a
//! property holds: it finds counterexamples, or says how much it explored.
//!
//! A search is numbered; its number and the run's seed alone decide everything it does (its
//! [`Plan`]): whether it is a depth-first search in random order or a series of random walks,
//! its depth limit, its memory cap, how it weighs the kinds of action, and which of the run's
//! bounds it tightens. So a search is replayed by its number (`--search G`), shard `i` of `N`
//! runs the searches numbered `i, i + N, i + 2N, …` (the same family a single process would run,
//! dealt out), and shards need no coordination.
//!
//! The searches drive the model directly (`init_states`, `actions`, `next_state`), not through
//! Stateright's checkers, and evaluate its properties as Stateright does: an `always` property
//! on every state reached (a state outside [`Model::within_boundary`] is neither expanded nor
//! evaluated), a `sometimes` property until some state satisfies it. `eventually` properties
//! are not checked: a depth-limited search with a visited set cannot tell a terminal state from
//! one it stopped at, so a run refuses a model that has one (this model has none).
//!
//! What a search may not do is a *filter*, never another model: a tightened bound (fewer terms,
//! crashes, proposals or duplicates) only leaves out successors of the run's own model, so
//! every path a search walks is a path of the model the user named, and a counterexample
//! replays in `raftcheck explore` with the run's flags.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use stateright::{Expectation, Model, Path, Property};
use thiserror::Error;

use crate::action::Action;
use crate::check::{self, PropertyOutcome, PropertyResult, Verdict};
use crate::model::RaftModel;
use crate::sketch::{self, Sketch};
use crate::state::State;

/// Which part of the search family this process runs: shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// The whole family, in one process.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// The number of the `j`-th search of this shard.
    pub fn search(self, j: u64) -> u64 {
        j.saturating_mul(self.count).saturating_add(self.index)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A `--shard` argument that is not `I/N` with `0 <= I < N`.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ShardError {
    #[error("--shard {0:?}: expected I/N, shard I of N (e.g. 0/8, I from 0 to N-1)")]
    NotAFraction(String),
    #[error("--shard {given:?}: {part:?} is not a whole number")]
    NotANumber { given: String, part: String },
    #[error("--shard {0:?}: N must be at least 1")]
    NoShards(String),
    #[error("--shard {given:?}: I must be below N (shards are numbered 0 to {last})")]
    OutOfRange { given: String, last: u64 },
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(given: &str) -> Result<Shard, ShardError> {
        let (i, n) = given
            .split_once('/')
            .ok_or_else(|| ShardError::NotAFraction(given.to_string()))?;
        let number = |part: &str| {
            part.trim()
                .parse::<u64>()
                .map_err(|_| ShardError::NotANumber {
                    given: given.to_string(),
                    part: part.to_string(),
                })
        };
        let (index, count) = (number(i)?, number(n)?);
        if count == 0 {
            return Err(ShardError::NoShards(given.to_string()));
        }
        if index >= count {
            return Err(ShardError::OutOfRange {
                given: given.to_string(),
                last: count - 1,
            });
        }
        Ok(Shard { index, count })
    }
}

/// SplitMix64: a tiny, fast generator whose output depends on the seed alone, on every
/// platform, so that a search number replays.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`; the bias of the multiply-shift is below 2^-32 here).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The two kinds of search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Depth-first search in a random (weighted) order of the actions, up to a depth limit,
    /// with its own visited set of fingerprints, until the set reaches its cap.
    Dfs,
    /// Random walks from the initial state, each to a depth limit or a state with no
    /// successor, until the search has taken its cap of steps.
    Walk,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dfs => "dfs",
            Kind::Walk => "walk",
        }
    }
}

/// The kinds of action a search weighs ([`kind_of`]).
const ACTION_KINDS: usize = 15;

/// The first of the kinds of [`kind_of`] added after the README's swarm figures: the timing
/// events of `--check-quorum`, then snapshots.
const TIMING_KINDS: usize = 12;

/// The kinds of action that are faults: a drop, a duplicate, an election timeout, a crash, a
/// client's timeout, session expiry, a leader contact that expires, a leader's quorum check
/// (which steps it down).
const FAULTS: [usize; 8] = [1, 2, 3, 7, 10, 11, 12, 13];

fn kind_of(action: &Action) -> usize {
    match action {
        Action::Deliver { .. } => 0,
        Action::Drop { .. } => 1,
        Action::Duplicate { .. } => 2,
        Action::Timeout { .. } => 3,
        Action::Replicate { .. } => 4,
        Action::Propose(_) => 5,
        Action::Flush(_) => 6,
        Action::Crash { .. } => 7,
        Action::Restart(_) => 8,
        Action::Request { .. } => 9,
        Action::ClientTimeout(_) => 10,
        Action::Expire => 11,
        Action::ContactExpires(_) => 12,
        Action::CheckQuorum(_) => 13,
        Action::Snapshot(_) => 14,
    }
}

/// Everything one search does differently from the others, drawn from the run's seed and the
/// search's number.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The search's number in the family.
    pub number: u64,
    pub kind: Kind,
    /// No path longer than this many steps.
    pub depth: usize,
    /// DFS: fingerprints in its visited set before it stops; walks: steps before it stops.
    pub cap: usize,
    /// Tightened bounds: no successor beyond them (each at most the run's own).
    pub max_term: u64,
    pub max_crashes: u8,
    pub proposals: u8,
    pub duplicates: u8,
    /// How likely each kind of action is to be taken first (walks) or early (DFS).
    pub weights: [f64; ACTION_KINDS],
    seed: u64,
}

impl Plan {
    /// The plan of search `number` of the run seeded `seed`, with `limits`' caps.
    pub fn new(model: &RaftModel, limits: &Limits, seed: u64, number: u64) -> Plan {
        let mut rng = Rng(seed ^ Rng(number).next());
        let b = &model.bounds;
        // Three searches in four are walks: they reach deep states cheaply, where a DFS spends
        // its cap on the last few levels below one random prefix.
        let kind = if rng.below(4) == 0 {
            Kind::Dfs
        } else {
            Kind::Walk
        };
        // Half the searches keep a bound as it is, the others draw a tighter one.
        let mut tighten = |bound: u64, least: u64| {
            if bound <= least || rng.below(2) == 0 {
                bound
            } else {
                rng.between(least, bound - 1)
            }
        };
        let max_term = tighten(b.max_term, 1.min(b.max_term));
        let max_crashes = tighten(b.max_crashes.into(), 0) as u8;
        let proposals = tighten(b.proposals.into(), 0) as u8;
        let duplicates = tighten(b.max_duplicates.into(), 0) as u8;
        let deepest = limits.max_depth.max(4) as u64;
        let depth = rng.between(deepest / 4, deepest) as usize;
        // Caps spread log-uniformly over the six doublings below the limit: many small
        // searches, some large ones.
        let cap = (limits.cap as f64 / 2f64.powf(rng.unit() * 6.0)).max(1024.0) as usize;
        // A fault rate, log-uniform from 1/16 to 1: the weight of the actions that are faults
        // (a loss, a duplicate, a timeout, a crash, a client's timeout, log time passing)
        // against those that make progress. Some searches see a fault now and then, others
        // little else. Each kind's weight is then jittered by up to a factor of two either
        // way, so that no two searches weigh the same.
        let faults = 2f64.powf(-4.0 * rng.unit());
        let weigh = |kind: usize, rng: &mut Rng| {
            let jitter = 2f64.powf(rng.unit() * 2.0 - 1.0);
            if FAULTS.contains(&kind) {
                faults * jitter
            } else {
                jitter
            }
        };
        let mut weights = [0.0; ACTION_KINDS];
        for (kind, weight) in weights.iter_mut().enumerate().take(TIMING_KINDS) {
            *weight = weigh(kind, &mut rng);
        }
        // The two timing events of `--check-quorum` and snapshots came after the README's swarm
        // figures were measured: their weights are drawn after the search's own seed, so that
        // every earlier seed still plans the searches it planned then.
        let seed = rng.next();
        for (kind, weight) in weights.iter_mut().enumerate().skip(TIMING_KINDS) {
            *weight = weigh(kind, &mut rng);
        }
        Plan {
            number,
            kind,
            depth,
            cap,
            max_term,
            max_crashes,
            proposals,
            duplicates,
            weights,
            seed,
        }
    }

    /// Whether `state` is within this search's tightened bounds.
    fn allows(&self, state: &State) -> bool {
        state.crashes <= self.max_crashes
            && state.proposals <= self.proposals
            && state.duplicates <= self.duplicates
            && state.servers.iter().all(|s| {
                s.durable.current_term <= self.max_term
                    && s.node
                        .as_ref()
                        .is_none_or(|n| n.current_term() <= self.max_term)
            })
    }

    /// One line for a report: what this search did differently.
    pub fn describe(&self) -> String {
        format!(
            "{} search {}: depth limit {}, cap {} {}, at most term {}, {} crashes, {} proposals, {} duplicates",
            self.kind.name(),
            self.number,
            self.depth,
            self.cap,
            match self.kind {
                Kind::Dfs => "states",
                Kind::Walk => "steps",
            },
            self.max_term,
            self.max_crashes,
            self.proposals,
            self.duplicates
        )
    }
}

/// The caps every search's plan is drawn under.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest depth limit of a search (each draws its own, from a quarter of this up to it).
    pub max_depth: usize,
    /// Largest visited set of a DFS, in fingerprints (16 to 32 bytes each in memory), and
    /// most steps of a walk search.
    pub cap: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_depth: 64,
            cap: 1 << 20,
        }
    }
}

/// When a swarm run stops (whichever comes first), besides a violation.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Budget {
    pub time: Option<Duration>,
    /// States evaluated, over all searches (checked every few thousand states).
    pub states: Option<u64>,
    /// Searches of this shard.
    pub searches: Option<u64>,
}

/// How to run a swarm.
#[derive(Clone, Debug)]
pub struct SwarmOptions {
    pub seed: u64,
    pub shard: Shard,
    pub threads: usize,
    pub budget: Budget,
    pub limits: Limits,
    /// Run this one search alone (by its number), to replay it.
    pub only: Option<u64>,
    /// `k` of the run's sketch of the fingerprints it visited ([`crate::sketch`]).
    pub sketch_k: usize,
    /// Called about once a second with (searches done, states evaluated, elapsed).
    pub progress: Option<fn(u64, u64, Duration)>,
}

/// Why a search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// A safety property was violated.
    Violation,
    /// DFS: every path within its depth limit and tightened bounds was explored.
    Exhausted,
    /// It reached its cap (visited states, or steps of walks).
    Cap,
    /// The run stopped it: the budget ran out, or a search numbered lower found a violation.
    Stopped,
}

/// What one search did.
#[derive(Clone, Debug)]
pub struct SearchResult {
    pub plan: Plan,
    pub end: End,
    /// States whose properties it evaluated (DFS: distinct up to symmetry; walks: every step).
    pub states: u64,
    pub max_depth: usize,
    /// The properties violated in the state where it stopped, and the actions to it.
    pub violation: Option<(Vec<&'static str>, Vec<Action>)>,
}

/// The result of a swarm run.
#[derive(Clone, Debug)]
pub struct SwarmReport {
    /// Every search that ran, by number.
    pub searches: Vec<SearchResult>,
    /// Every property: `Violated` with the counterexample of the lowest-numbered search that
    /// found one, `NotRefuted` otherwise; `ExampleFound`, `NotReached` or `Unreachable`.
    pub properties: Vec<PropertyResult>,
    /// The search whose counterexample each violated property carries, by property name.
    pub found_by: Vec<(&'static str, Plan)>,
    /// States evaluated, over all searches.
    pub states: u64,
    /// The fingerprints of every state evaluated, sketched.
    pub sketch: Sketch,
    pub max_depth: usize,
    pub elapsed: Duration,
}

impl SwarmReport {
    /// `Fail` with a counterexample, `Incomplete` otherwise: a swarm never proves anything.
    pub fn verdict(&self) -> Verdict {
        if self.first_violation().is_some() {
            Verdict::Fail
        } else {
            Verdict::Incomplete
        }
    }

    /// The first violated property (in the model's order), its counterexample and the search
    /// that found it.
    pub fn first_violation(&self) -> Option<(&'static str, &Path<State, Action>, &Plan)> {
        self.properties.iter().find_map(|p| {
            let path = p.path.as_ref().filter(|_| p.safety)?;
            let plan = self.found_by.iter().find(|(name, _)| *name == p.name)?;
            Some((p.name, path, &plan.1))
        })
    }

    /// Searches of each kind.
    pub fn count(&self, kind: Kind) -> usize {
        self.searches.iter().filter(|s| s.plan.kind == kind).count()
    }

    /// How a property's outcome reads: a swarm never claims a property holds.
    pub fn outcome_label(property: &PropertyResult) -> String {
        match property.outcome {
            PropertyOutcome::NotReached => "not reached (swarm, not exhaustive)".to_string(),
            PropertyOutcome::Unreachable(why) => format!("{}: {why}", property.outcome.label()),
            other => other.label().to_string(),
        }
    }

    /// The one-line verdict.
    pub fn summary(&self) -> String {
        let explored = format!(
            "{} searches, {} states evaluated, about {:.0} distinct",
            self.searches.len(),
            self.states,
            self.sketch.estimate()
        );
        match self.first_violation() {
            Some((name, path, plan)) => {
                let steps = path.clone().into_actions().len();
                format!(
                    "verdict: FAIL, \"{name}\" is violated: a counterexample of {steps} steps, \
                     found by search {} ({explored})",
                    plan.number
                )
            }
            None => format!(
                "verdict: INCOMPLETE, no violation found by the swarm ({explored}); a swarm is \
                 not exhaustive, so nothing is proved"
            ),
        }
    }
}

/// Identity hashing for fingerprints, which are hashes already.
#[derive(Default)]
struct Fingerprints(u64);

impl Hasher for Fingerprints {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Visited = HashSet<u64, BuildHasherDefault<Fingerprints>>;

/// What the searches of one run share.
struct Run<'a> {
    model: &'a RaftModel,
    properties: Vec<Property<RaftModel>>,
    /// `reached[i]`: `sometimes` property `i` has an example (no need to evaluate it again).
    reached: Vec<AtomicBool>,
    options: &'a SwarmOptions,
    start: Instant,
    /// The lowest number of a search that found a violation (`u64::MAX`: none yet).
    first_violation: AtomicU64,
    states: AtomicU64,
    /// Searches of this shard handed out so far.
    next: AtomicU64,
    done: AtomicU64,
    out_of_budget: AtomicBool,
}

/// How often (in states) a search looks at the run's budget and the other searches.
const CHECK_EVERY: u64 = 4096;

impl Run<'_> {
    /// Whether search `number` should stop: the budget ran out, or a search numbered lower
    /// found a violation (the run reports the lowest-numbered one, so that a seed gives the
    /// same result with any number of threads).
    fn stopped(&self, number: u64) -> bool {
        if self.first_violation.load(Relaxed) < number || self.out_of_budget.load(Relaxed) {
            return true;
        }
        let b = &self.options.budget;
        let out = b.time.is_some_and(|t| self.start.elapsed() >= t)
            || b.states.is_some_and(|s| self.states.load(Relaxed) >= s);
        if out {
            self.out_of_budget.store(true, Relaxed);
        }
        out
    }

    /// The properties `state` violates (none if it is within them all); marks the `sometimes`
    /// ones it satisfies.
    fn evaluate(&self, state: &State) -> Vec<&'static str> {
        let mut violated = Vec::new();
        for (p, reached) in self.properties.iter().zip(&self.reached) {
            match p.expectation {
                Expectation::Always => {
                    if !(p.condition)(self.model, state) {
                        violated.push(p.name);
                    }
                }
                Expectation::Sometimes => {
                    if !reached.load(Relaxed) && (p.condition)(self.model, state) {
                        reached.store(true, Relaxed);
                    }
                }
                Expectation::Eventually => unreachable!("refused by `run`"),
            }
        }
        violated
    }

    /// Runs search `number` to its end.
    fn search(&self, number: u64, sketch: &mut Sketch) -> SearchResult {
        let plan = Plan::new(self.model, &self.options.limits, self.options.seed, number);
        let mut search = Search {
            run: self,
            rng: Rng(plan.seed),
            plan,
            sketch,
            states: 0,
            unreported: 0,
            max_depth: 0,
        };
        let (end, violation) = match search.plan.kind {
            Kind::Dfs => search.dfs(),
            Kind::Walk => search.walks(),
        };
        self.states.fetch_add(search.unreported, Relaxed);
        SearchResult {
            end,
            states: search.states,
            max_depth: search.max_depth,
            violation,
            plan: search.plan,
        }
    }
}

/// One search under way.
struct Search<'r, 'a> {
    run: &'r Run<'a>,
    plan: Plan,
    rng: Rng,
    sketch: &'r mut Sketch,
    states: u64,
    /// States not yet added to the run's count.
    unreported: u64,
    max_depth: usize,
}

type Found = Option<(Vec<&'static str>, Vec<Action>)>;

impl Search<'_, '_> {
    /// Evaluates a state the search reached at `depth`, and counts it; `Some` with the
    /// properties it violates, if any.
    fn visit(
        &mut self,
        state: &State,
        fingerprint: u64,
        depth: usize,
    ) -> Option<Vec<&'static str>> {
        self.states += 1;
        self.unreported += 1;
        self.max_depth = self.max_depth.max(depth);
        self.sketch.insert(fingerprint);
        let violated = self.run.evaluate(state);
        (!violated.is_empty()).then_some(violated)
    }

    /// Whether to stop now (looked at every [`CHECK_EVERY`] states).
    fn stopped(&mut self) -> bool {
        if self.unreported < CHECK_EVERY {
            return false;
        }
        self.run.states.fetch_add(self.unreported, Relaxed);
        self.unreported = 0;
        self.run.stopped(self.plan.number)
    }

    /// The successor of `state` by `action`, if the model takes it and it is within the
    /// model's boundary and this search's tightened bounds.
    fn successor(&self, state: &State, action: Action) -> Option<State> {
        let next = self.run.model.next_state(state, action)?;
        (self.run.model.within_boundary(&next) && self.plan.allows(&next)).then_some(next)
    }

    /// The actions of `state` in a random order weighted by kind (an exponential race: each
    /// action draws `-ln(u) / weight` and the smallest goes first).
    fn ordered_actions(&mut self, state: &State) -> Vec<Action> {
        let mut actions = Vec::new();
        self.run.model.actions(state, &mut actions);
        let mut keyed: Vec<(f64, Action)> = actions
            .into_iter()
            .map(|a| {
                let u = 1.0 - self.rng.unit();
                (-u.ln() / self.plan.weights[kind_of(&a)], a)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
        keyed.into_iter().map(|(_, a)| a).collect()
    }

    fn dfs(&mut self) -> (End, Found) {
        let init = self.run.model.init_states();
        let mut visited = Visited::default();
        // One frame per state on the path: the state, its actions in this search's order, and
        // how many of them were tried.
        let mut stack: Vec<(State, Vec<Action>, usize)> = Vec::new();
        for state in init {
            if !self.run.model.within_boundary(&state) || !self.plan.allows(&state) {
                continue;
            }
            let fp = sketch::fingerprint(&state);
            if !visited.insert(fp) {
                continue;
            }
            if let Some(violated) = self.visit(&state, fp, 0) {
                return (End::Violation, Some((violated, Vec::new())));
            }
            let actions = self.ordered_actions(&state);
            stack.push((state, actions, 0));
            while let Some((state, actions, tried)) = stack.last_mut() {
                if *tried == actions.len() {
                    stack.pop();
                    continue;
                }
                let action = actions[*tried];
                *tried += 1;
                let Some(next) = self.successor(state, action) else {
                    continue;
                };
                let fp = sketch::fingerprint(&next);
                if !visited.insert(fp) {
                    continue;
                }
                if let Some(violated) = self.visit(&next, fp, stack.len()) {
                    let path = stack.iter().map(|(_, a, tried)| a[tried - 1]).collect();
                    return (End::Violation, Some((violated, path)));
                }
                if visited.len() >= self.plan.cap {
                    return (End::Cap, None);
                }
                if self.stopped() {
                    return (End::Stopped, None);
                }
                // A state at the depth limit is evaluated but not expanded.
                let actions = if stack.len() < self.plan.depth {
                    self.ordered_actions(&next)
                } else {
                    Vec::new()
                };
                stack.push((next, actions, 0));
            }
        }
        (End::Exhausted, None)
    }

    /// Takes an action out of `actions`: a kind drawn by the plan's weights among the kinds
    /// present, then an action of that kind uniformly. `None` when `actions` is empty.
    fn draw(&mut self, actions: &mut Vec<Action>) -> Option<Action> {
        let mut present = [0usize; ACTION_KINDS];
        for a in actions.iter() {
            present[kind_of(a)] += 1;
        }
        if actions.is_empty() {
            return None;
        }
        let weight = |k: usize| {
            if present[k] > 0 {
                self.plan.weights[k]
            } else {
                0.0
            }
        };
        let total: f64 = (0..ACTION_KINDS).map(weight).sum();
        let mut x = self.rng.unit() * total;
        let kind = (0..ACTION_KINDS)
            .find(|&k| {
                x -= weight(k);
                x < 0.0 && present[k] > 0
            })
            .unwrap_or_else(|| {
                (0..ACTION_KINDS)
                    .rev()
                    .find(|&k| present[k] > 0)
                    .unwrap_or(0)
            });
        let nth = self.rng.below(present[kind] as u64) as usize;
        let pos = (actions.iter().enumerate())
            .filter(|(_, a)| kind_of(a) == kind)
            .nth(nth)
            .map(|(i, _)| i)?;
        Some(actions.swap_remove(pos))
    }

    fn walks(&mut self) -> (End, Found) {
        let init = self.run.model.init_states();
        let mut actions = Vec::new();
        let mut path = Vec::new();
        loop {
            let start = self.rng.below(init.len() as u64) as usize;
            let mut state = init[start].clone();
            if !self.run.model.within_boundary(&state) || !self.plan.allows(&state) {
                return (End::Exhausted, None);
            }
            path.clear();
            if let Some(violated) = self.visit(&state, sketch::fingerprint(&state), 0) {
                return (End::Violation, Some((violated, Vec::new())));
            }
            while path.len() < self.plan.depth {
                // Draw a kind of action by weight among the kinds present, then one action of
                // that kind uniformly (so a kind with many variants, like a timeout with every
                // choice of lost sends, is not drawn more for it); one with no successor is
                // set aside and another drawn, so a walk ends only where nothing is enabled.
                self.run.model.actions(&state, &mut actions);
                let next = loop {
                    let Some(action) = self.draw(&mut actions) else {
                        break None;
                    };
                    if let Some(next) = self.successor(&state, action) {
                        break Some((action, next));
                    }
                };
                actions.clear();
                let Some((action, next)) = next else {
                    break;
                };
                path.push(action);
                state = next;
                if let Some(violated) = self.visit(&state, sketch::fingerprint(&state), path.len())
                {
                    return (End::Violation, Some((violated, path)));
                }
                if self.states >= self.plan.cap as u64 {
                    return (End::Cap, None);
                }
                if self.stopped() {
                    return (End::Stopped, None);
                }
            }
        }
    }
}

/// Runs a swarm on `model` (see the module doc).
///
/// # Panics
/// If the model has an `eventually` property (see the module doc), or a counterexample does not
/// replay (the model would not be deterministic).
pub fn run(model: &RaftModel, options: &SwarmOptions) -> SwarmReport {
    let properties = model.properties();
    assert!(
        properties
            .iter()
            .all(|p| p.expectation != Expectation::Eventually),
        "a swarm does not check eventually properties"
    );
    let run = Run {
        model,
        reached: properties.iter().map(|_| AtomicBool::new(false)).collect(),
        properties,
        options,
        start: Instant::now(),
        first_violation: AtomicU64::new(u64::MAX),
        states: AtomicU64::new(0),
        next: AtomicU64::new(0),
        done: AtomicU64::new(0),
        out_of_budget: AtomicBool::new(false),
    };
    let results = Mutex::new(Vec::new());
    let sketch = Mutex::new(Sketch::new(options.sketch_k));
    let threads = if options.only.is_some() {
        1
    } else {
        options.threads.max(1)
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Sketch::new(options.sketch_k);
                    loop {
                        let j = run.next.fetch_add(1, Relaxed);
                        let number = match options.only {
                            Some(n) if j == 0 => n,
                            Some(_) => break,
                            None => options.shard.search(j),
                        };
                        if options.budget.searches.is_some_and(|n| j >= n) || run.stopped(number) {
                            break;
                        }
                        let result = run.search(number, &mut mine);
                        if result.violation.is_some() {
                            run.first_violation.fetch_min(number, Relaxed);
                        }
                        run.done.fetch_add(1, Relaxed);
                        results.lock().expect("no search panics").push(result);
                    }
                    sketch.lock().expect("no search panics").merge(&mine);
                })
            })
            .collect();
        let mut next = Duration::from_secs(1);
        while !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(Duration::from_millis(20));
            if let Some(progress) = options.progress.filter(|_| run.start.elapsed() >= next) {
                next += Duration::from_secs(1);
                let (done, states) = (run.done.load(Relaxed), run.states.load(Relaxed));
                progress(done, states, run.start.elapsed());
            }
        }
    });
    let elapsed = run.start.elapsed();
    let mut searches = results.into_inner().expect("no search panics");
    searches.sort_by_key(|s| s.plan.number);
    report(
        model,
        &run,
        searches,
        sketch.into_inner().expect("no search panics"),
        elapsed,
    )
}

fn report(
    model: &RaftModel,
    run: &Run,
    searches: Vec<SearchResult>,
    sketch: Sketch,
    elapsed: Duration,
) -> SwarmReport {
    let init = model.init_states();
    let mut found_by = Vec::new();
    let properties = (run.properties.iter().zip(&run.reached))
        .map(|(p, reached)| {
            let safety = p.expectation.discovery_is_failure();
            // The lowest-numbered search that violated it (`searches` is sorted).
            let found = searches.iter().find_map(|s| {
                let (names, actions) = s.violation.as_ref()?;
                names.contains(&p.name).then_some((s, actions))
            });
            let path = found.map(|(s, actions)| {
                found_by.push((p.name, s.plan.clone()));
                // Every search starts from the model's initial states; a walk names which.
                (init.iter())
                    .find_map(|i| Path::from_actions(model, i.clone(), actions))
                    .expect("a counterexample replays: the model is deterministic")
            });
            // A sometimes-property a walk reached has an example even where no path was kept.
            let discovered = path.is_some() || (!safety && reached.load(Relaxed));
            let outcome = check::outcome(model, p, discovered, false);
            PropertyResult {
                name: p.name,
                safety,
                outcome,
                path,
            }
        })
        .collect();
    SwarmReport {
        states: searches.iter().map(|s| s.states).sum(),
        max_depth: searches.iter().map(|s| s.max_depth).max().unwrap_or(0),
        searches,
        properties,
        found_by,
        sketch,
        elapsed,
    }
}
