//! `--json`: every document `raftcheck check`, `bugs` and `lincheck` print validates against its
//! schema in `docs/schema/`, for each verdict, and says the exit code the process returned.

mod run_cli;

use std::path::Path;

use run_cli::{raftcheck, stderr, stdout, SMALL, VACUOUS};
use serde_json::Value;

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/schema")
        .join(format!("{name}.schema.json"));
    let text = std::fs::read_to_string(&path).expect("the schema is in the repository");
    let schema: Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

/// Runs `raftcheck args`, checks that it printed exactly one JSON document valid under
/// `schema` whose `exit_code` is the process's, and returns it.
fn document(schema: &jsonschema::Validator, args: &[&str]) -> Value {
    let out = raftcheck(args);
    let text = stdout(&out);
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not one JSON document ({e}):\n{text}{}",
            stderr(&out)
        )
    });
    let errors: Vec<String> = schema.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{args:?}: {errors:#?}\n{doc:#}");
    assert_eq!(
        doc["exit_code"].as_i64(),
        out.status.code().map(i64::from),
        "{args:?}"
    );
    doc
}

#[test]
fn check_documents_validate_for_every_verdict() {
    let check = schema("check");
    let pass = document(&check, &[&["check", "--json"], &SMALL[..]].concat());
    assert_eq!(pass["verdict"], "pass");
    assert_eq!(pass["bounds"]["max-term"], 2);
    assert_eq!(pass["statistics"]["exhaustive"], true);
    assert!(pass["counterexample"].is_null());

    let fail = document(
        &check,
        &["check", "--json", "--bug", "leader-ignores-higher-term"],
    );
    assert_eq!(fail["verdict"], "fail");
    assert_eq!(fail["bounds"]["bugs"][0], "leader-ignores-higher-term");
    let counterexample = &fail["counterexample"];
    assert_eq!(counterexample["property"], "election safety");
    assert_eq!(counterexample["steps"].as_array().map(Vec::len), Some(8));

    let vacuous = document(&check, &[&["check", "--json"], &VACUOUS[..]].concat());
    assert_eq!(vacuous["verdict"], "vacuous");

    let incomplete = document(&check, &["check", "--json", "--max-states", "500"]);
    assert_eq!(incomplete["verdict"], "incomplete");
}

#[test]
fn bugs_documents_validate_listed_and_run() {
    let bugs = schema("bugs");
    let listed = document(&bugs, &["bugs", "--json"]);
    assert_eq!(listed["verdict"], "listed");
    assert!(listed["bugs"].as_array().is_some_and(|b| b.len() >= 18));
    let run = document(&bugs, &["bugs", "--run", "--json"]);
    assert_eq!(run["verdict"], "pass");
    for bug in run["bugs"].as_array().expect("bugs") {
        assert_eq!(bug["run"]["caught"], true, "{bug:#}");
    }
}

#[test]
fn lincheck_documents_validate() {
    let lincheck = schema("lincheck");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/lincheck/examples-data");
    let mut verdicts = Vec::new();
    for entry in std::fs::read_dir(&data).expect("the example histories") {
        let path = entry.expect("an entry").path().display().to_string();
        if path.ends_with("malformed.jsonl") {
            // Bad input: exit 2, the message on stderr, no document.
            let out = raftcheck(&["lincheck", "--json", &path]);
            assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
            assert!(stdout(&out).is_empty(), "{}", stdout(&out));
            continue;
        }
        let doc = document(&lincheck, &["lincheck", "--json", &path]);
        verdicts.push(doc["verdict"].as_str().unwrap_or_default().to_string());
    }
    assert!(verdicts.iter().any(|v| v == "linearizable"), "{verdicts:?}");
    assert!(
        verdicts.iter().any(|v| v == "not_linearizable"),
        "{verdicts:?}"
    );
}

/// The schemas reject what they should: a document is not valid with a field missing, one
/// added, or a verdict outside the list.
#[test]
fn the_schema_is_strict() {
    let check = schema("check");
    let mut doc = document(&check, &[&["check", "--json"], &SMALL[..]].concat());
    doc["verdict"] = "fine".into();
    assert!(!check.is_valid(&doc));
    doc["verdict"] = "pass".into();
    doc["extra"] = 1.into();
    assert!(!check.is_valid(&doc));
    doc.as_object_mut().unwrap().remove("extra");
    doc.as_object_mut().unwrap().remove("statistics");
    assert!(!check.is_valid(&doc));
}
