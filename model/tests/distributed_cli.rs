//! `raftcheck check --distributed` as processes: the built binary started once per process,
//! each with its own `--process` and one host file listing free local ports, as on several
//! machines. Every process prints the same verdict, exit code and counts, equal to a
//! single-process breadth-first run's (symmetry off, so that counts are exact; see
//! `tests/distributed.rs` for why counts with symmetry on may differ).

mod run_cli;

use std::net::TcpListener;
use std::process::{Command, Output, Stdio};

use run_cli::{raftcheck, stderr, stdout, SMALL};
use serde_json::Value;

/// A small configuration that passes, without symmetry.
fn bounds() -> Vec<&'static str> {
    [&SMALL[..], &["--no-symmetry"]].concat()
}

/// Ports free a moment ago (the operating system's choice; a run that loses the race to
/// another program fails to start and is retried).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

/// `docs/schema/check.schema.json`, which every process's document must satisfy.
fn check_schema() -> jsonschema::Validator {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schema/check.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("the schema"))
        .expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

/// Runs `raftcheck check --distributed --json` as `processes` processes of one worker each and
/// returns each one's JSON document and exit code, process 0 first.
fn run_processes(processes: usize, args: &[&str]) -> Vec<(Value, Option<i32>)> {
    for _attempt in 0..3 {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let hostfile = dir.path().join("hosts");
        let hosts: String = (free_ports(processes).iter())
            .map(|p| format!("127.0.0.1:{p}\n"))
            .collect();
        std::fs::write(&hostfile, hosts).expect("the host file is written");
        let children: Vec<_> = (0..processes)
            .map(|i| {
                Command::new(env!("CARGO_BIN_EXE_raftcheck"))
                    .args(["check", "--json", "--distributed", "--hostfile"])
                    .arg(&hostfile)
                    .args(["--process", &i.to_string()])
                    .args(args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("raftcheck starts")
            })
            .collect();
        let outputs: Vec<Output> = (children.into_iter())
            .map(|c| c.wait_with_output().expect("raftcheck ends"))
            .collect();
        let lost_race = outputs
            .iter()
            .any(|o| o.status.code() == Some(2) && stderr(o).contains("Address already in use"));
        if lost_race {
            continue;
        }
        let schema = check_schema();
        return (outputs.iter())
            .map(|o| {
                let doc = serde_json::from_str(&stdout(o))
                    .unwrap_or_else(|e| panic!("not a JSON document ({e}): {}", stderr(o)));
                let errors: Vec<String> = schema.iter_errors(&doc).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
                (doc, o.status.code())
            })
            .collect();
    }
    panic!("no free ports in three attempts");
}

fn single(args: &[&str]) -> (Value, Option<i32>) {
    let out = raftcheck(
        &[
            &["check", "--json", "--strategy", "bfs", "--threads", "1"],
            args,
        ]
        .concat(),
    );
    let doc = serde_json::from_str(&stdout(&out)).expect("a JSON document");
    (doc, out.status.code())
}

/// The outcome of every property, by name.
fn outcomes(doc: &Value) -> Vec<(String, String)> {
    (doc["properties"].as_array().expect("properties").iter())
        .map(|p| (p["name"].to_string(), p["outcome"].to_string()))
        .collect()
}

#[test]
fn processes_reach_the_single_process_states_and_verdict() {
    let (expected, code) = single(&bounds());
    assert_eq!(expected["verdict"], "pass");
    for processes in [1, 2, 4] {
        for (i, (doc, exit)) in run_processes(processes, &bounds()).into_iter().enumerate() {
            let at = format!("{processes} processes, process {i}");
            assert_eq!(exit, code, "{at}");
            assert_eq!(doc["verdict"], expected["verdict"], "{at}");
            for count in ["unique_states", "total_states", "max_depth", "exhaustive"] {
                assert_eq!(
                    doc["statistics"][count], expected["statistics"][count],
                    "{at}: {count}"
                );
            }
            assert_eq!(outcomes(&doc), outcomes(&expected), "{at}");
            assert_eq!(doc["search"]["distributed"]["processes"], processes, "{at}");
            assert_eq!(doc["search"]["distributed"]["process"], i, "{at}");
        }
    }
}

/// A bug is caught by two processes with a shortest counterexample: as long as the
/// single-process BFS's, served by the same `raftcheck explore` command, the same in both
/// processes. (A bug that breaks several properties at different depths is reported by the
/// property broken first: the distributed search stops at the end of that level, where
/// Stateright's BFS finishes a block of states and may report a deeper one, earlier in the
/// property list, first.)
#[test]
fn two_processes_catch_a_bug_with_a_shortest_trace() {
    let bug = ["--bug", "leader-ignores-higher-term"];
    let (expected, code) = single(&bug);
    assert_eq!(code, Some(1));
    let runs = run_processes(2, &bug);
    for (doc, exit) in &runs {
        assert_eq!(*exit, Some(1));
        assert_eq!(doc["verdict"], "fail");
        let counterexample = &doc["counterexample"];
        assert_eq!(counterexample["property"], "election safety");
        assert_eq!(
            counterexample["steps"].as_array().map(Vec::len),
            expected["counterexample"]["steps"].as_array().map(Vec::len)
        );
        assert_eq!(
            counterexample["explorer_command"],
            expected["counterexample"]["explorer_command"]
        );
        assert_eq!(counterexample, &runs[0].0["counterexample"]);
    }
}

#[test]
fn bad_cluster_flags_exit_2_before_running() {
    let out = raftcheck(&[
        "check",
        "--distributed",
        "--processes",
        "2",
        "--process",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--process 2"), "{}", stderr(&out));
    let out = raftcheck(&["check", "--distributed", "--strategy", "dfs"]);
    assert_eq!(out.status.code(), Some(2));
    let out = raftcheck(&["check", "--workers", "2"]);
    assert_eq!(out.status.code(), Some(2), "--workers needs --distributed");
}
