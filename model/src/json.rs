//! The machine-readable results: `raftcheck check --json`, `bugs --json` and `lincheck --json`
//! each print one JSON document instead of their text. Every document names its `format` and
//! `version` and carries the run's `verdict`, `exit_code` and one-line `summary`; the schemas
//! are `docs/schema/*.schema.json`, and `tests/json_output.rs` validates real output against
//! them.
//!
//! The version changes when a field is removed or changes meaning; a field added leaves it.

use std::collections::BTreeMap;
use std::path::Path as FilePath;
use std::time::Duration;

use raft_lincheck::{Outcome, Report};
use serde::{Deserialize, Serialize};
use stateright::Path;

use crate::action::Action;
use crate::catalog::{Bug, BugRun};
use crate::check::{CheckReport, Verdict};
use crate::model::RaftModel;
use crate::render;
use crate::scope::{self, Value};
use crate::state::State;

/// The version of all three documents.
pub const VERSION: u32 = 1;

/// The peak resident memory of this process so far (Linux's `VmHWM`), or `None` where the
/// system does not say.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The bounds as the flags that set them, and the bugs switched on.
#[derive(Serialize)]
pub struct BoundsDoc {
    #[serde(flatten)]
    pub flags: BTreeMap<&'static str, Value>,
    pub bugs: Vec<&'static str>,
}

impl BoundsDoc {
    pub fn of(model: &RaftModel) -> BoundsDoc {
        let limits = scope::limits(&model.bounds, &model.kv);
        BoundsDoc {
            flags: limits.into_iter().map(|l| (l.flag, l.value)).collect(),
            bugs: model.bounds.mutations.iter().map(|m| m.name()).collect(),
        }
    }
}

/// How the state space was searched.
#[derive(Serialize)]
pub struct Search {
    /// `bfs`, `dfs` or `simulation`.
    pub strategy: &'static str,
    /// The simulation's seed.
    pub seed: Option<u64>,
    pub symmetry: bool,
    /// The reductions turned off (`Reductions::off`, symmetry included), absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reductions_off: Vec<&'static str>,
    pub threads: usize,
    pub max_states: Option<usize>,
    /// A distributed run (`--distributed`): `threads` is then the worker threads per process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distributed: Option<Distribution>,
}

/// Where a distributed run's workers were.
#[derive(Serialize)]
pub struct Distribution {
    pub processes: usize,
    /// The process that printed this document.
    pub process: usize,
}

impl Distribution {
    pub fn of(cluster: &crate::distributed::Cluster) -> Distribution {
        Distribution {
            processes: cluster.processes(),
            process: cluster.process,
        }
    }
}

#[derive(Serialize)]
pub struct Statistics {
    pub unique_states: usize,
    pub total_states: usize,
    pub max_depth: usize,
    pub seconds: f64,
    pub peak_rss_bytes: Option<u64>,
    /// The whole bounded space was explored.
    pub exhaustive: bool,
    /// Steps a lossless network could not take under `--max-in-flight`.
    pub steps_removed_by_bound: u64,
}

#[derive(Serialize)]
pub struct PropertyDoc {
    pub name: &'static str,
    /// `always` (safety) or `sometimes` (reachability).
    pub kind: &'static str,
    pub outcome: &'static str,
    /// For `not_reachable`: the bound that rules it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// One step of a trace.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    /// The model's action, as the Explorer names it.
    pub action: String,
    /// The step as the text trace prints it.
    pub text: String,
}

/// The steps of `path`, each with its action and its trace line.
pub fn steps(path: &Path<State, Action>) -> Vec<Step> {
    let actions = path.clone().into_actions();
    (actions.iter().zip(render::trace(path)))
        .map(|(action, text)| Step {
            action: render::action(action),
            text,
        })
        .collect()
}

#[derive(Serialize)]
pub struct Counterexample {
    pub property: &'static str,
    pub steps: Vec<Step>,
    pub final_state: String,
    /// Opens the same path in the Explorer served by `explorer_command`, and only there: the
    /// URL names each step by its position among the actions of the state before it, and
    /// carries the flags and the last state's fingerprint, by which any other Explorer refuses
    /// it (`crate::link`).
    pub explorer_url: String,
    pub explorer_command: String,
}

/// `raftcheck check --json`.
#[derive(Serialize)]
pub struct CheckDocument {
    pub format: &'static str,
    pub version: u32,
    pub verdict: Verdict,
    pub exit_code: u8,
    pub summary: String,
    /// Where the bounds came from: a preset, a bug's catalog configuration, or the flags.
    pub bounds_from: String,
    pub bounds: BoundsDoc,
    pub not_explored: Vec<String>,
    pub warnings: Vec<String>,
    pub search: Search,
    pub statistics: Statistics,
    pub properties: Vec<PropertyDoc>,
    pub counterexample: Option<Counterexample>,
    /// The HTML page written with `--html`.
    pub html: Option<String>,
}

impl CheckDocument {
    /// The document of a finished run: `explorer` is the command that serves the Explorer on
    /// the same model and `explorer_url` the link to a path in it.
    pub fn new(
        model: &RaftModel,
        report: &CheckReport,
        bounds_from: String,
        warnings: Vec<String>,
        search: Search,
        (explorer, explorer_url): (String, impl Fn(&Path<State, Action>) -> String),
    ) -> CheckDocument {
        let verdict = report.verdict();
        CheckDocument {
            format: "raftcheck check",
            version: VERSION,
            verdict,
            exit_code: verdict.exit_code(),
            summary: report.summary(),
            bounds_from,
            bounds: BoundsDoc::of(model),
            not_explored: scope::not_explored(&model.bounds, &model.kv),
            warnings,
            search,
            statistics: Statistics {
                unique_states: report.unique_states,
                total_states: report.total_states,
                max_depth: report.max_depth,
                seconds: report.elapsed.as_secs_f64(),
                peak_rss_bytes: peak_rss_bytes(),
                exhaustive: report.exhaustive,
                steps_removed_by_bound: report.removed_by_bound,
            },
            properties: (report.properties.iter())
                .map(|p| PropertyDoc {
                    name: p.name,
                    kind: p.kind(),
                    outcome: p.outcome.key(),
                    reason: match p.outcome {
                        crate::PropertyOutcome::Unreachable(why) => Some(why),
                        _ => None,
                    },
                })
                .collect(),
            counterexample: report
                .first_violation()
                .map(|(property, path)| Counterexample {
                    property,
                    steps: steps(path),
                    final_state: format!("{:?}", path.last_state()),
                    explorer_url: explorer_url(path),
                    explorer_command: explorer.clone(),
                }),
            html: None,
        }
    }
}

/// One catalog bug in `raftcheck bugs --json`.
#[derive(Serialize)]
pub struct BugDoc {
    pub name: &'static str,
    pub description: &'static str,
    pub seen_in: &'static str,
    pub expected: &'static str,
    pub command: String,
    pub bounds: BoundsDoc,
    /// With `--run`: what checking it in its configuration found.
    pub run: Option<BugRunDoc>,
}

#[derive(Serialize)]
pub struct BugRunDoc {
    pub caught: bool,
    /// Every safety property false in the counterexample's last state.
    pub violated: Vec<&'static str>,
    pub states: usize,
    pub seconds: f64,
    /// The counterexample to the expected property.
    pub trace: Option<Vec<Step>>,
}

impl BugDoc {
    pub fn new(bug: &Bug, run: Option<&BugRun>) -> BugDoc {
        BugDoc {
            name: bug.mutation.name(),
            description: bug.description,
            seen_in: bug.seen_in,
            expected: bug.expected,
            command: bug.command(),
            bounds: BoundsDoc::of(&bug.model()),
            run: run.map(|r| BugRunDoc {
                caught: r.caught(),
                violated: r.violated.clone(),
                states: r.unique_states,
                seconds: r.elapsed.as_secs_f64(),
                trace: r.trace.as_ref().map(steps),
            }),
        }
    }
}

/// `raftcheck bugs --json`: `verdict` is `pass` when every bug was caught, `fail` when one was
/// not, `listed` without `--run`.
#[derive(Serialize)]
pub struct BugsDocument {
    pub format: &'static str,
    pub version: u32,
    pub verdict: &'static str,
    pub exit_code: u8,
    pub summary: String,
    pub bugs: Vec<BugDoc>,
    /// The reductions `--run` turned off (`Reductions::off`), absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reductions_off: Vec<&'static str>,
    pub seconds: f64,
    pub peak_rss_bytes: Option<u64>,
}

/// `raftcheck lincheck --json`.
#[derive(Serialize)]
pub struct LincheckDocument {
    pub format: &'static str,
    pub version: u32,
    /// `linearizable`, `not_linearizable` or `unknown` (the budget ran out).
    pub verdict: &'static str,
    pub exit_code: u8,
    pub summary: String,
    pub history: String,
    pub operations: usize,
    pub keys: usize,
    pub seconds: f64,
    pub budget_seconds: f64,
    /// The keys the budget left undecided (`unknown` only).
    pub undecided: Vec<String>,
    pub violation: Option<LincheckViolation>,
    pub html: Option<String>,
}

/// The smallest failing key's evidence: its operations, the longest partial linearization (as
/// indices into `operations`), the value after it, and the operations that cannot come next.
#[derive(Serialize)]
pub struct LincheckViolation {
    pub key: String,
    pub operations: Vec<String>,
    pub linearized: Vec<usize>,
    pub value_after: String,
    pub unplaceable: Vec<usize>,
}

impl LincheckDocument {
    pub fn new(
        report: &Report,
        history: &FilePath,
        html: Option<&FilePath>,
        budget: Duration,
    ) -> LincheckDocument {
        let verdict = match &report.outcome {
            Outcome::Linearizable => "linearizable",
            Outcome::NotLinearizable(_) => "not_linearizable",
            Outcome::Unknown { .. } => "unknown",
        };
        LincheckDocument {
            format: "raftcheck lincheck",
            version: VERSION,
            verdict,
            exit_code: report.exit_code(),
            summary: lincheck_verdict(report),
            history: history.display().to_string(),
            operations: report.operations,
            keys: report.keys,
            seconds: report.elapsed.as_secs_f64(),
            budget_seconds: budget.as_secs_f64(),
            undecided: match &report.outcome {
                Outcome::Unknown { undecided } => undecided.clone(),
                _ => Vec::new(),
            },
            violation: match &report.outcome {
                Outcome::NotLinearizable(v) => Some(LincheckViolation {
                    key: v.key.clone(),
                    operations: v.operations.iter().map(|o| o.to_string()).collect(),
                    linearized: v.linearized.clone(),
                    value_after: v.state.to_string(),
                    unplaceable: v.unplaceable.clone(),
                }),
                _ => None,
            },
            html: html.map(|p| p.display().to_string()),
        }
    }
}

/// The last line of `raftcheck lincheck`.
pub fn lincheck_verdict(report: &Report) -> String {
    let (word, why) = match &report.outcome {
        Outcome::Linearizable => (
            "LINEARIZABLE",
            "every key's operations have a linearization".to_string(),
        ),
        Outcome::NotLinearizable(v) => (
            "NOT LINEARIZABLE",
            format!("key {:?} has no linearization", v.key),
        ),
        Outcome::Unknown { undecided } => (
            "UNKNOWN",
            format!(
                "the budget ran out before {} key(s) were decided",
                undecided.len()
            ),
        ),
    };
    format!(
        "verdict: {word}, {why} ({} operations on {} keys)",
        report.operations, report.keys
    )
}

/// Prints `doc` as one line of JSON.
pub fn print(doc: &impl Serialize) {
    println!(
        "{}",
        serde_json::to_string(doc).expect("the documents serialize")
    );
}
