//! Swarm reports and merging them: `raftcheck swarm --json` writes a [`SwarmDocument`]
//! (`docs/schema/swarm.schema.json`), and `raftcheck merge` reads several, from shards run
//! anywhere (a Kubernetes Indexed Job, a Slurm array, GNU parallel), into a [`MergeDocument`]
//! (`docs/schema/merge.schema.json`).
//!
//! What merging says about the states explored: every report carries a bottom-k sketch of the
//! fingerprints of the states its searches evaluated ([`crate::sketch`]). With `S_i` the set of
//! distinct states (one per renaming of the servers, with symmetry on) shard `i` evaluated,
//! the merge reports `Σ|S_i|` (each shard's own estimate, summed), `|∪ S_i|` (from the merged
//! sketch) and the overlap `1 - |∪ S_i| / Σ|S_i|`: the share of the shards' distinct states that
//! another shard had evaluated too (0 when no state was seen by two shards; `1 - 1/N` when N
//! shards all saw the same states). The counts are exact while every set is smaller than `k`,
//! and otherwise within about `1/sqrt(k)` (1.6 % for the default `k`).

use std::path::{Path as FilePath, PathBuf};

use serde::{Deserialize, Serialize};
use stateright::Path;
use thiserror::Error;

use crate::action::Action;
use crate::check::PropertyOutcome;
use crate::json::{self, BoundsDoc, Step};
use crate::model::RaftModel;
use crate::scope;
use crate::sketch::{self, Sketch};
use crate::state::State;
use crate::swarm::{Budget, End, Kind, SwarmOptions, SwarmReport};

pub const SWARM_FORMAT: &str = "raftcheck swarm";
pub const MERGE_FORMAT: &str = "raftcheck merge";

/// How a swarm was run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    pub seed: u64,
    pub shard: ShardDoc,
    pub threads: usize,
    pub symmetry: bool,
    pub budget: BudgetDoc,
    /// The one search replayed with `--search`, if any.
    pub search: Option<u64>,
    pub max_depth: usize,
    pub visited_cap: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardDoc {
    pub index: u64,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BudgetDoc {
    pub seconds: Option<f64>,
    pub states: Option<u64>,
    pub searches: Option<u64>,
}

/// What the searches of one run did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Statistics {
    pub searches: u64,
    pub dfs_searches: u64,
    pub walk_searches: u64,
    /// How many searches ended how: a violation, their space (within depth limit and tightened
    /// bounds) exhausted, their cap reached, or stopped by the run.
    pub ended: Ended,
    /// States whose properties were evaluated, over all searches (a state two searches reached
    /// counts twice; a walk counts every step).
    pub states: u64,
    /// Distinct states among them, from the sketch.
    pub distinct_states: f64,
    /// `distinct_states` is an exact count (fewer states than the sketch holds).
    pub distinct_exact: bool,
    pub max_depth: usize,
    pub seconds: f64,
    pub peak_rss_bytes: Option<u64>,
    /// Always false: a swarm is not exhaustive.
    pub exhaustive: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ended {
    pub violation: u64,
    pub exhausted: u64,
    pub cap: u64,
    pub stopped: u64,
}

/// One property's outcome (`outcome` as in `check.schema.json`, never `holds`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyRow {
    pub name: String,
    pub kind: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A counterexample and how to see it again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Counterexample {
    pub property: String,
    /// The number of the search that found it, and its plan in words.
    pub search: u64,
    pub plan: String,
    pub steps: Vec<Step>,
    pub final_state: String,
    /// Opens the path in the Explorer served by `explorer_command` (with the run's flags).
    pub explorer_url: String,
    pub explorer_command: String,
    /// Runs the search that found it, alone: the same counterexample, printed as a trace.
    pub replay_command: String,
}

/// The bottom-k sketch of the fingerprints evaluated, as hexadecimal strings (a JSON number
/// loses 64-bit precision in most readers).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SketchDoc {
    /// `bottom-k`.
    pub kind: String,
    pub k: usize,
    /// How the fingerprints were computed ([`sketch::FINGERPRINT_SCHEME`]).
    pub fingerprint: String,
    pub values: Vec<String>,
}

impl SketchDoc {
    fn of(sketch: &Sketch) -> SketchDoc {
        SketchDoc {
            kind: "bottom-k".to_string(),
            k: sketch.k(),
            fingerprint: sketch::FINGERPRINT_SCHEME.to_string(),
            values: sketch.values().map(|v| format!("{v:016x}")).collect(),
        }
    }

    fn sketch(&self, file: &FilePath) -> Result<Sketch, MergeError> {
        let values = self.values.iter().map(|v| {
            u64::from_str_radix(v, 16).map_err(|_| MergeError::Malformed {
                file: file.to_path_buf(),
                what: format!("sketch value {v:?} is not a 64-bit hexadecimal number"),
            })
        });
        Ok(Sketch::from_values(
            self.k,
            values.collect::<Result<Vec<_>, _>>()?,
        ))
    }
}

/// `raftcheck swarm --json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SwarmDocument {
    pub format: String,
    pub version: u32,
    /// `fail` or `incomplete`.
    pub verdict: String,
    pub exit_code: u8,
    pub summary: String,
    pub bounds_from: String,
    /// The bounds under their flag names, and the bugs switched on (as in `check --json`).
    pub bounds: serde_json::Value,
    pub not_explored: Vec<String>,
    pub warnings: Vec<String>,
    pub swarm: Settings,
    pub statistics: Statistics,
    pub properties: Vec<PropertyRow>,
    /// One per violated property: the one found by the lowest-numbered search.
    pub counterexamples: Vec<Counterexample>,
    pub sketch: SketchDoc,
}

/// The table of `report`'s properties.
pub fn property_rows(report: &SwarmReport) -> Vec<PropertyRow> {
    (report.properties.iter())
        .map(|p| PropertyRow {
            name: p.name.to_string(),
            kind: p.kind().to_string(),
            outcome: p.outcome.key().to_string(),
            reason: match p.outcome {
                PropertyOutcome::Unreachable(why) => Some(why.to_string()),
                _ => None,
            },
        })
        .collect()
}

impl SwarmDocument {
    /// The document of a finished run. `explorer` is the command that serves the Explorer on
    /// the model, `url` the link to a path in it, `replay` the command that runs one search.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        model: &RaftModel,
        options: &SwarmOptions,
        report: &SwarmReport,
        bounds_from: String,
        warnings: Vec<String>,
        explorer: &str,
        url: impl Fn(&Path<State, Action>) -> String,
        replay: impl Fn(u64) -> String,
    ) -> SwarmDocument {
        let verdict = report.verdict();
        let count = |end: End| report.searches.iter().filter(|s| s.end == end).count() as u64;
        let Budget {
            time,
            states,
            searches,
        } = options.budget;
        SwarmDocument {
            format: SWARM_FORMAT.to_string(),
            version: json::VERSION,
            verdict: serde_json::to_value(verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            exit_code: verdict.exit_code(),
            summary: report.summary(),
            bounds_from,
            bounds: serde_json::to_value(BoundsDoc::of(model)).expect("bounds serialize"),
            not_explored: scope::not_explored(&model.bounds, &model.kv),
            warnings,
            swarm: Settings {
                seed: options.seed,
                shard: ShardDoc {
                    index: options.shard.index,
                    count: options.shard.count,
                },
                threads: options.threads,
                symmetry: model.symmetry,
                budget: BudgetDoc {
                    seconds: time.map(|t| t.as_secs_f64()),
                    states,
                    searches,
                },
                search: options.only,
                max_depth: options.limits.max_depth,
                visited_cap: options.limits.cap,
            },
            statistics: Statistics {
                searches: report.searches.len() as u64,
                dfs_searches: report.count(Kind::Dfs) as u64,
                walk_searches: report.count(Kind::Walk) as u64,
                ended: Ended {
                    violation: count(End::Violation),
                    exhausted: count(End::Exhausted),
                    cap: count(End::Cap),
                    stopped: count(End::Stopped),
                },
                states: report.states,
                distinct_states: report.sketch.estimate(),
                distinct_exact: report.sketch.exact(),
                max_depth: report.max_depth,
                seconds: report.elapsed.as_secs_f64(),
                peak_rss_bytes: json::peak_rss_bytes(),
                exhaustive: false,
            },
            properties: property_rows(report),
            counterexamples: (report.properties.iter())
                .filter_map(|p| {
                    let path = p.path.as_ref().filter(|_| p.safety)?;
                    let plan = &report.found_by.iter().find(|(n, _)| *n == p.name)?.1;
                    Some(Counterexample {
                        property: p.name.to_string(),
                        search: plan.number,
                        plan: plan.describe(),
                        steps: json::steps(path),
                        final_state: format!("{:?}", path.last_state()),
                        explorer_url: url(path),
                        explorer_command: explorer.to_string(),
                        replay_command: replay(plan.number),
                    })
                })
                .collect(),
            sketch: SketchDoc::of(&report.sketch),
        }
    }
}

/// Why reports cannot be merged. Nothing is merged then: a merge of reports that do not
/// describe the same model would mislead.
#[derive(Debug, Error)]
pub enum MergeError {
    #[error("{file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not a JSON document: {source}")]
    Parse {
        file: PathBuf,
        source: serde_json::Error,
    },
    #[error("{file}: a {format:?} document, not a {SWARM_FORMAT:?} one (merge reads the --json output of raftcheck swarm)")]
    NotASwarmReport { file: PathBuf, format: String },
    #[error(
        "{file}: version {version} of the swarm report; this raftcheck reads version {}",
        json::VERSION
    )]
    Version { file: PathBuf, version: u32 },
    #[error("{file}: {what}")]
    Malformed { file: PathBuf, what: String },
    #[error("{file} and {first} differ in {what}: their states cannot be compared")]
    Differ {
        file: PathBuf,
        first: PathBuf,
        what: &'static str,
    },
    #[error("{file} and {other} are both shard {shard} of seed {seed}: the same searches twice")]
    SameShard {
        file: PathBuf,
        other: PathBuf,
        shard: String,
        seed: u64,
    },
}

impl MergeError {
    pub const EXIT_CODE: u8 = 2;
}

/// One report read by `merge`.
#[derive(Clone, Debug, Serialize)]
pub struct Input {
    pub file: String,
    pub seed: u64,
    pub shard: ShardDoc,
    pub verdict: String,
    pub searches: u64,
    pub states: u64,
    pub distinct_states: f64,
    pub seconds: f64,
}

/// What the shards explored together (see the module doc for `overlap`).
#[derive(Clone, Debug, Serialize)]
pub struct MergedStatistics {
    pub searches: u64,
    pub states: u64,
    /// `Σ|S_i|`: each report's distinct states, summed.
    pub distinct_states_sum: f64,
    /// `|∪ S_i|`: distinct states over all reports.
    pub distinct_states_union: f64,
    /// `1 - union / sum`: the share of the reports' distinct states another report saw too.
    pub overlap: f64,
    /// Every figure above is an exact count (every sketch held fewer than `k` states).
    pub exact: bool,
}

/// A counterexample of the merge, with the report it came from.
#[derive(Clone, Debug, Serialize)]
pub struct MergedCounterexample {
    pub file: String,
    #[serde(flatten)]
    pub counterexample: Counterexample,
}

/// `raftcheck merge`.
#[derive(Clone, Debug, Serialize)]
pub struct MergeDocument {
    pub format: &'static str,
    pub version: u32,
    /// `fail` (some report has a counterexample) or `incomplete`.
    pub verdict: &'static str,
    pub exit_code: u8,
    pub summary: String,
    pub bounds: serde_json::Value,
    pub not_explored: Vec<String>,
    pub inputs: Vec<Input>,
    pub statistics: MergedStatistics,
    /// Violated if some report violated it, an example found if some report found one,
    /// otherwise as every report says.
    pub properties: Vec<PropertyRow>,
    /// One per violated property: the shortest (the first report's among equals).
    pub counterexamples: Vec<MergedCounterexample>,
    /// The merged sketch: the union's.
    pub sketch: SketchDoc,
}

/// Reads the swarm report in `file`.
pub fn read(file: &FilePath) -> Result<SwarmDocument, MergeError> {
    let text = std::fs::read_to_string(file).map_err(|source| MergeError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|source| MergeError::Parse {
            file: file.to_path_buf(),
            source,
        })?;
    let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != SWARM_FORMAT {
        return Err(MergeError::NotASwarmReport {
            file: file.to_path_buf(),
            format: format.to_string(),
        });
    }
    let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
    if version != u64::from(json::VERSION) {
        return Err(MergeError::Version {
            file: file.to_path_buf(),
            version: u32::try_from(version).unwrap_or(u32::MAX),
        });
    }
    serde_json::from_value(value).map_err(|source| MergeError::Parse {
        file: file.to_path_buf(),
        source,
    })
}

/// Merges the reports of `files` (at least one), read in that order.
pub fn merge(files: &[PathBuf]) -> Result<MergeDocument, MergeError> {
    let docs: Vec<SwarmDocument> = files.iter().map(|f| read(f)).collect::<Result<_, _>>()?;
    let (first, first_file) = (&docs[0], &files[0]);
    let mut union: Option<Sketch> = None;
    let mut sum = 0.0;
    let mut exact = true;
    for (i, (doc, file)) in docs.iter().zip(files).enumerate() {
        let differ = |what| MergeError::Differ {
            file: file.clone(),
            first: first_file.clone(),
            what,
        };
        if doc.bounds != first.bounds {
            return Err(differ("their bounds or bugs"));
        }
        if doc.swarm.symmetry != first.swarm.symmetry {
            return Err(differ("symmetry reduction"));
        }
        if doc.sketch.fingerprint != first.sketch.fingerprint {
            return Err(differ("how states are fingerprinted"));
        }
        let same =
            |d: &SwarmDocument| d.swarm.seed == doc.swarm.seed && d.swarm.shard == doc.swarm.shard;
        if let Some(j) = docs[..i].iter().position(same) {
            return Err(MergeError::SameShard {
                file: file.clone(),
                other: files[j].clone(),
                shard: format!("{}/{}", doc.swarm.shard.index, doc.swarm.shard.count),
                seed: doc.swarm.seed,
            });
        }
        let sketch = doc.sketch.sketch(file)?;
        sum += sketch.estimate();
        exact &= sketch.exact();
        match &mut union {
            Some(u) => u.merge(&sketch),
            None => union = Some(sketch),
        }
    }
    let union = union.expect("at least one report");
    exact &= union.exact();
    let merged_union = union.estimate();
    let properties = (first.properties.iter())
        .map(|p| {
            let rows = docs
                .iter()
                .filter_map(|d| d.properties.iter().find(|q| q.name == p.name));
            let outcomes: Vec<&PropertyRow> = rows.collect();
            let any = |key: &str| outcomes.iter().find(|q| q.outcome == key).copied();
            any("violated")
                .or_else(|| any("example_found"))
                .unwrap_or(p)
                .clone()
        })
        .collect::<Vec<_>>();
    let mut counterexamples: Vec<MergedCounterexample> = Vec::new();
    for (doc, file) in docs.iter().zip(files) {
        for c in &doc.counterexamples {
            let shorter = |k: &MergedCounterexample| c.steps.len() < k.counterexample.steps.len();
            match counterexamples
                .iter_mut()
                .find(|k| k.counterexample.property == c.property)
            {
                Some(k) if shorter(k) => {
                    k.file = file.display().to_string();
                    k.counterexample = c.clone();
                }
                Some(_) => {}
                None => counterexamples.push(MergedCounterexample {
                    file: file.display().to_string(),
                    counterexample: c.clone(),
                }),
            }
        }
    }
    // In the order of the properties.
    counterexamples
        .sort_by_key(|c| (properties.iter()).position(|p| p.name == c.counterexample.property));
    let statistics = MergedStatistics {
        searches: docs.iter().map(|d| d.statistics.searches).sum(),
        states: docs.iter().map(|d| d.statistics.states).sum(),
        distinct_states_sum: sum,
        distinct_states_union: merged_union,
        overlap: if sum > 0.0 {
            (1.0 - merged_union / sum).max(0.0)
        } else {
            0.0
        },
        exact,
    };
    let fail = !counterexamples.is_empty();
    let (verdict, exit_code) = if fail { ("fail", 1) } else { ("incomplete", 3) };
    let summary = match counterexamples.first() {
        Some(c) => format!(
            "verdict: FAIL, \"{}\" is violated: a counterexample of {} steps, in {} ({} reports, \
             {} searches, about {:.0} distinct states)",
            c.counterexample.property,
            c.counterexample.steps.len(),
            c.file,
            docs.len(),
            statistics.searches,
            statistics.distinct_states_union
        ),
        None => format!(
            "verdict: INCOMPLETE, no violation in {} reports ({} searches, about {:.0} distinct \
             states, overlap {:.1} %); a swarm is not exhaustive, so nothing is proved",
            docs.len(),
            statistics.searches,
            statistics.distinct_states_union,
            statistics.overlap * 100.0
        ),
    };
    Ok(MergeDocument {
        format: MERGE_FORMAT,
        version: json::VERSION,
        verdict,
        exit_code,
        summary,
        bounds: first.bounds.clone(),
        not_explored: first.not_explored.clone(),
        inputs: (docs.iter().zip(files))
            .map(|(d, f)| Input {
                file: f.display().to_string(),
                seed: d.swarm.seed,
                shard: d.swarm.shard,
                verdict: d.verdict.clone(),
                searches: d.statistics.searches,
                states: d.statistics.states,
                distinct_states: d.statistics.distinct_states,
                seconds: d.statistics.seconds,
            })
            .collect(),
        statistics,
        properties,
        counterexamples,
        sketch: SketchDoc::of(&union),
    })
}

/// `merge`'s text report.
pub fn text(doc: &MergeDocument) -> String {
    use std::fmt::Write as _;
    let mut s = String::from("raftcheck merge\n");
    for i in &doc.inputs {
        let _ = writeln!(
            s,
            "  {}: seed {}, shard {}/{}, {}, {} searches, {} states, about {:.0} distinct, {:.0} s",
            i.file,
            i.seed,
            i.shard.index,
            i.shard.count,
            i.verdict,
            i.searches,
            i.states,
            i.distinct_states,
            i.seconds
        );
    }
    let st = &doc.statistics;
    let _ = writeln!(
        s,
        "\n{} searches, {} states evaluated; distinct states: {:.0} summed over the reports, \
         {:.0} in their union, overlap {:.1} % ({})\n",
        st.searches,
        st.states,
        st.distinct_states_sum,
        st.distinct_states_union,
        st.overlap * 100.0,
        if st.exact {
            "exact"
        } else {
            "estimated from the reports' sketches"
        }
    );
    let width = doc
        .properties
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in &doc.properties {
        let _ = writeln!(s, "  {:<9}  {:<width$}  {}", p.kind, p.name, p.outcome);
    }
    for c in &doc.counterexamples {
        let ce = &c.counterexample;
        let _ = writeln!(
            s,
            "\nCounterexample to \"{}\" ({} steps), from {} ({}):",
            ce.property,
            ce.steps.len(),
            c.file,
            ce.plan
        );
        for (n, step) in ce.steps.iter().enumerate() {
            let _ = writeln!(s, "  {:>3}. {}", n + 1, step.text);
        }
        let _ = writeln!(
            s,
            "\nExplore it: {}\n  served by: {}",
            ce.explorer_url, ce.explorer_command
        );
        let _ = writeln!(s, "Replay the search: {}", ce.replay_command);
    }
    let _ = write!(s, "\n{}", doc.summary);
    s
}
