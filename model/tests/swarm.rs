//! `raftcheck swarm` and `raftcheck merge` (issue 22): a swarm finds a catalog bug with a trace
//! that replays to the violation, a seed gives the same result on any number of threads, a
//! shard runs its own part of the search family, shard reports merge as documented, and bad
//! arguments are clear errors. Every run is bounded by a number of searches, never by time.

mod run_cli;

use std::path::{Path as FilePath, PathBuf};

use raft_impl::Mutation;
use raft_model::check::{PropertyOutcome, Verdict};
use raft_model::shards::{self, MergeError, SwarmDocument};
use raft_model::swarm::{self, Budget, Kind, Limits, Shard, SwarmOptions, SwarmReport};
use raft_model::{catalog, sketch, RaftModel};
use run_cli::{raftcheck, stderr, stdout, SMALL};
use stateright::Model;

fn options(seed: u64, shard: Shard, threads: usize, searches: u64) -> SwarmOptions {
    SwarmOptions {
        seed,
        shard,
        threads,
        budget: Budget {
            searches: Some(searches),
            ..Budget::default()
        },
        limits: Limits {
            max_depth: 40,
            cap: 1 << 14,
        },
        only: None,
        sketch_k: sketch::DEFAULT_K,
        progress: None,
    }
}

fn catalog_model(mutation: Mutation) -> RaftModel {
    let bug = catalog::catalog()
        .into_iter()
        .find(|b| b.mutation == mutation);
    bug.expect("a catalog bug").model()
}

/// The actions of the first counterexample, and its property.
fn first(report: &SwarmReport) -> (&'static str, Vec<raft_model::Action>, u64) {
    let (name, path, plan) = report.first_violation().expect("a counterexample");
    (name, path.clone().into_actions(), plan.number)
}

/// The swarm catches `stale-vote-count` in its catalog configuration, and the counterexample of
/// each of 32 searches, random walk or depth-first (found after backtracking, where a path
/// rebuilt from the wrong frame would not replay), replayed from the initial state through
/// the model's own steps, ends in a state that violates the properties it names and in no
/// earlier state.
#[test]
fn swarm_finds_a_catalog_bug_with_traces_that_replay() {
    let model = catalog_model(Mutation::StaleVoteCount);
    let report = swarm::run(&model, &options(1, Shard::ALL, 2, 64));
    assert_eq!(report.verdict(), Verdict::Fail, "{}", report.summary());
    assert_eq!(first(&report).0, "election safety");
    let properties = model.properties();
    let holds = |name: &str, state: &raft_model::State| {
        let property = properties.iter().find(|p| p.name == name).unwrap();
        (property.condition)(&model, state)
    };
    // A swarm stops at its first counterexample: run searches one at a time (`--search N`)
    // to replay many, of both kinds.
    let alone = |number| SwarmOptions {
        only: Some(number),
        budget: Budget::default(),
        ..options(1, Shard::ALL, 1, 64)
    };
    let searches: Vec<_> = (0..32)
        .flat_map(|number| swarm::run(&model, &alone(number)).searches)
        .collect();
    let mut found = [0; 2];
    for search in &searches {
        let Some((violated, actions)) = &search.violation else {
            continue;
        };
        found[usize::from(search.plan.kind == Kind::Walk)] += 1;
        let number = search.plan.number;
        let mut state = model.init_states().remove(0);
        for (i, action) in actions.iter().enumerate() {
            assert!(
                violated.iter().all(|name| holds(name, &state)),
                "search {number}, step {i}"
            );
            state = model
                .next_state(&state, *action)
                .unwrap_or_else(|| panic!("search {number}: step {} is not enabled", i + 1));
        }
        assert!(!violated.is_empty());
        for name in violated {
            assert!(
                !holds(name, &state),
                "search {number}: {name} holds at the end"
            );
        }
    }
    let [dfs, walks] = found;
    assert!(
        dfs > 0 && walks > 0,
        "{dfs} depth-first and {walks} walk counterexamples"
    );
    // A swarm never claims a property holds.
    assert!(report
        .properties
        .iter()
        .all(|p| p.outcome != PropertyOutcome::Holds));
}

/// With a budget of searches, a seed decides the result: the same counterexample, found by the
/// same search, on one thread and on three; another seed draws other searches.
#[test]
fn the_same_seed_gives_the_same_result() {
    let model = catalog_model(Mutation::StaleVoteCount);
    let one = swarm::run(&model, &options(5, Shard::ALL, 1, 64));
    let three = swarm::run(&model, &options(5, Shard::ALL, 3, 64));
    assert_eq!(first(&one), first(&three));
    let again = swarm::run(&model, &options(5, Shard::ALL, 1, 64));
    assert_eq!(one.searches.len(), again.searches.len());
    assert_eq!(one.states, again.states);
    assert_eq!(one.sketch, again.sketch);
    let other = swarm::run(&model, &options(6, Shard::ALL, 1, 64));
    let plans = |r: &SwarmReport| {
        r.searches
            .iter()
            .map(|s| s.plan.clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(plans(&one)[..1], plans(&other)[..1]);
}

/// The search named by a counterexample's replay command (`--search N`) finds the same
/// counterexample alone.
#[test]
fn a_search_replays_alone() {
    let model = catalog_model(Mutation::StaleVoteCount);
    let swarm = swarm::run(&model, &options(3, Shard::ALL, 2, 64));
    let (name, actions, number) = first(&swarm);
    let alone = SwarmOptions {
        only: Some(number),
        budget: Budget::default(),
        ..options(3, Shard::ALL, 2, 64)
    };
    let replayed = swarm::run(&model, &alone);
    assert_eq!(replayed.searches.len(), 1);
    assert_eq!(first(&replayed), (name, actions, number));
}

/// Shard i of N runs the searches numbered i, i + N, …: together the shards run the searches of
/// one process, each once.
#[test]
fn shards_deal_out_the_search_family() {
    let mut model = catalog_model(Mutation::StaleVoteCount);
    model.bounds.mutations = raft_impl::MutationSet::NONE;
    let numbers = |shard: Shard| {
        let report = swarm::run(&model, &options(9, shard, 2, 4));
        assert_eq!(report.verdict(), Verdict::Incomplete);
        report
            .searches
            .iter()
            .map(|s| s.plan.number)
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(Shard { index: 0, count: 3 }), [0, 3, 6, 9]);
    assert_eq!(numbers(Shard { index: 2, count: 3 }), [2, 5, 8, 11]);
}

#[test]
fn bad_shards_are_typed_errors() {
    use swarm::ShardError;
    assert_eq!("1/4".parse(), Ok(Shard { index: 1, count: 4 }));
    assert!(matches!(
        "3".parse::<Shard>(),
        Err(ShardError::NotAFraction(_))
    ));
    assert!(matches!(
        "a/4".parse::<Shard>(),
        Err(ShardError::NotANumber { .. })
    ));
    assert!(matches!(
        "-1/4".parse::<Shard>(),
        Err(ShardError::NotANumber { .. })
    ));
    assert!(matches!(
        "0/0".parse::<Shard>(),
        Err(ShardError::NoShards(_))
    ));
    assert_eq!(
        "4/4".parse::<Shard>(),
        Err(ShardError::OutOfRange {
            given: "4/4".to_string(),
            last: 3
        })
    );
    for (shard, mention) in [
        ("4/4", "numbered 0 to 3"),
        ("x", "expected I/N"),
        ("1/0", "at least 1"),
    ] {
        let out =
            raftcheck(&[&["swarm", "--shard", shard, "--searches", "1"], &SMALL[..]].concat());
        assert_eq!(out.status.code(), Some(2), "{shard}: {}", stderr(&out));
        assert!(stderr(&out).contains(mention), "{shard}: {}", stderr(&out));
        assert!(stdout(&out).is_empty());
    }
}

fn schema(name: &str) -> jsonschema::Validator {
    let path = FilePath::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/schema")
        .join(format!("{name}.schema.json"));
    let text = std::fs::read_to_string(&path).expect("the schema is in the repository");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn valid(schema: &jsonschema::Validator, doc: &serde_json::Value) {
    let errors: Vec<String> = schema.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
}

const BUG: [&str; 18] = [
    "--bug",
    "stale-vote-count",
    "--servers",
    "3",
    "--max-term",
    "2",
    "--max-log",
    "0",
    "--proposals",
    "0",
    "--max-crashes",
    "0",
    "--max-in-flight",
    "2",
    "--searches",
    "16",
    "--visited-cap",
    "16384",
];

/// Runs `raftcheck swarm --json` as shard `shard`, checks the document against the schema and
/// the exit code, and writes it to `dir`.
fn shard_report(dir: &FilePath, shard: &str, extra: &[&str]) -> (PathBuf, serde_json::Value) {
    let out = raftcheck(&[&["swarm", "--json", "--shard", shard], &BUG[..], extra].concat());
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    valid(&schema("swarm"), &doc);
    assert_eq!(doc["exit_code"].as_i64(), out.status.code().map(i64::from));
    let file = dir.join(format!("shard-{}.json", shard.replace('/', "-of-")));
    std::fs::write(&file, stdout(&out)).expect("the report is written");
    (file, doc)
}

/// Two shards of one seed merge: the counterexamples once per property (the shortest), the
/// states summed, the union from the sketches and the overlap as `1 - union / sum`; the merge
/// document validates, and its exit code is a failure's.
#[test]
fn shard_reports_merge() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (a, da) = shard_report(dir.path(), "0/2", &[]);
    let (b, db) = shard_report(dir.path(), "1/2", &[]);
    for doc in [&da, &db] {
        assert_eq!(doc["verdict"], "fail");
        assert_eq!(doc["statistics"]["exhaustive"], false);
        let replay = doc["counterexamples"][0]["replay_command"]
            .as_str()
            .unwrap();
        assert!(replay.contains("--search"), "{replay}");
    }
    let merged = shards::merge(&[a.clone(), b.clone()]).expect("the reports merge");
    let json = serde_json::to_value(&merged).expect("the merge serializes");
    valid(&schema("merge"), &json);
    assert_eq!(merged.verdict, "fail");
    assert_eq!(merged.exit_code, 1);
    let properties: Vec<&str> = (merged.counterexamples.iter())
        .map(|c| c.counterexample.property.as_str())
        .collect();
    assert_eq!(properties, ["election safety"]);
    let shortest = [&da, &db]
        .iter()
        .map(|d| d["counterexamples"][0]["steps"].as_array().unwrap().len())
        .min();
    assert_eq!(
        Some(merged.counterexamples[0].counterexample.steps.len()),
        shortest
    );
    let st = &merged.statistics;
    let states = |d: &serde_json::Value| d["statistics"]["states"].as_u64().unwrap();
    assert_eq!(st.states, states(&da) + states(&db));
    let distinct = |d: &serde_json::Value| d["statistics"]["distinct_states"].as_f64().unwrap();
    assert_eq!(st.distinct_states_sum, distinct(&da) + distinct(&db));
    // Estimates (past 4 096 states) may put the union a little above the sum; the overlap is
    // then 0.
    assert!(st.distinct_states_union <= st.distinct_states_sum * 1.05);
    assert!(st.distinct_states_union >= distinct(&da).max(distinct(&db)));
    let overlap = (1.0 - st.distinct_states_union / st.distinct_states_sum).max(0.0);
    assert!((st.overlap - overlap).abs() < 1e-12);
    // A report merged with itself overlaps entirely, and is refused as the same shard twice.
    assert!(matches!(
        shards::merge(&[a.clone(), a.clone()]),
        Err(MergeError::SameShard { .. })
    ));
    // Other bounds: refused.
    let (c, _) = shard_report(dir.path(), "0/3", &["--duplicates", "1"]);
    assert!(matches!(
        shards::merge(&[a.clone(), c]),
        Err(MergeError::Differ { .. })
    ));
    // The CLI: the same merge, and a file that is not a swarm report.
    let out = raftcheck(&["merge", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("overlap"), "{}", stdout(&out));
    let not = dir.path().join("not.json");
    std::fs::write(&not, r#"{"format": "raftcheck check", "version": 1}"#).unwrap();
    let out = raftcheck(&["merge", a.to_str().unwrap(), not.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a \"raftcheck swarm\""),
        "{}",
        stderr(&out)
    );
    let _: SwarmDocument = shards::read(&a).expect("a report reads back");
}
