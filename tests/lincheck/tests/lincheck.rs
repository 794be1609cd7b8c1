//! The linearizability checker on hand-written histories, and the decoder on every kind of
//! malformed input.

use std::path::PathBuf;
use std::time::Duration;

use raft_lincheck::{
    check, check_history, parse_history, run, EventError, History, KvOp, KvReply, LincheckError,
    LineError, Operation, Outcome, Recorder, Violation,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const BUDGET: Duration = Duration::from_secs(60);

fn history(text: &str) -> History {
    parse_history(text.as_bytes()).unwrap_or_else(|e| panic!("test history is malformed: {e}"))
}

fn outcome(text: &str) -> Outcome {
    check(&history(text), BUDGET)
}

fn violation(text: &str) -> Violation {
    match outcome(text) {
        Outcome::NotLinearizable(v) => v,
        other => panic!("expected a violation, got {other:?}"),
    }
}

/// The error for `text`, which must be malformed: its line and kind.
fn error(text: &str) -> (usize, LineError) {
    match parse_history(text.as_bytes()) {
        Ok(h) => panic!("expected an error, parsed {h:?}"),
        Err(e) => (e.line, e.kind),
    }
}

// ---- linearizable ----

#[test]
fn empty_history_is_linearizable() {
    assert_eq!(outcome(""), Outcome::Linearizable);
    assert_eq!(outcome("\n\n"), Outcome::Linearizable);
}

#[test]
fn sequential_history_is_linearizable() {
    let h = r#"
{"type":"invoke","client":1,"time":0,"op":"get","key":"x"}
{"type":"return","client":1,"time":1,"value":""}
{"type":"invoke","client":1,"time":2,"op":"put","key":"x","value":"a"}
{"type":"return","client":1,"time":3}
{"type":"invoke","client":2,"time":4,"op":"append","key":"x","value":"b"}
{"type":"return","client":2,"time":5}
{"type":"invoke","client":1,"time":6,"op":"get","key":"x"}
{"type":"return","client":1,"time":7,"value":"ab"}
"#;
    assert_eq!(outcome(h), Outcome::Linearizable);
}

#[test]
fn concurrent_read_may_see_old_or_new_value() {
    for read in ["", "a"] {
        let h = format!(
            r#"{{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}}
{{"type":"invoke","client":2,"time":1,"op":"get","key":"x"}}
{{"type":"return","client":2,"time":2,"value":"{read}"}}
{{"type":"return","client":1,"time":3}}"#
        );
        assert_eq!(outcome(&h), Outcome::Linearizable, "read {read:?}");
    }
}

#[test]
fn concurrent_appends_take_effect_in_either_order() {
    for read in ["ab", "ba"] {
        let h = format!(
            r#"{{"type":"invoke","client":1,"time":0,"op":"append","key":"x","value":"a"}}
{{"type":"invoke","client":2,"time":0,"op":"append","key":"x","value":"b"}}
{{"type":"return","client":2,"time":5}}
{{"type":"return","client":1,"time":6}}
{{"type":"invoke","client":3,"time":7,"op":"get","key":"x"}}
{{"type":"return","client":3,"time":8,"value":"{read}"}}"#
        );
        assert_eq!(outcome(&h), Outcome::Linearizable, "read {read:?}");
    }
}

#[test]
fn operations_that_touch_in_time_are_concurrent() {
    // The put returns at 10 and the get is invoked at 10: either may come first.
    let h = r#"
{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}
{"type":"return","client":1,"time":10}
{"type":"invoke","client":2,"time":10,"op":"get","key":"x"}
{"type":"return","client":2,"time":20,"value":""}
"#;
    assert_eq!(outcome(h), Outcome::Linearizable);
}

#[test]
fn events_of_different_clients_may_come_in_any_order() {
    let h = r#"
{"type":"invoke","client":2,"time":20,"op":"get","key":"x"}
{"type":"return","client":2,"time":30,"value":"a"}
{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}
{"type":"return","client":1,"time":10}
"#;
    assert_eq!(outcome(h), Outcome::Linearizable);
}

#[test]
fn pending_write_may_take_effect_late() {
    // Client 1 never hears back; its put is seen by the second read only.
    let h = r#"
{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}
{"type":"invoke","client":2,"time":10,"op":"get","key":"x"}
{"type":"return","client":2,"time":20,"value":""}
{"type":"invoke","client":2,"time":30,"op":"get","key":"x"}
{"type":"return","client":2,"time":40,"value":"a"}
"#;
    assert_eq!(outcome(h), Outcome::Linearizable);
}

#[test]
fn pending_write_may_never_take_effect() {
    let h = r#"
{"type":"invoke","client":1,"time":0,"op":"append","key":"x","value":"a"}
{"type":"invoke","client":2,"time":10,"op":"get","key":"x"}
{"type":"return","client":2,"time":20,"value":""}
{"type":"invoke","client":3,"time":30,"op":"get","key":"x"}
"#;
    assert_eq!(outcome(h), Outcome::Linearizable);
}

#[test]
fn keys_are_independent() {
    let h = r#"
{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}
{"type":"return","client":1,"time":1}
{"type":"invoke","client":1,"time":2,"op":"put","key":"y","value":"b"}
{"type":"return","client":1,"time":3}
{"type":"invoke","client":2,"time":4,"op":"get","key":"x"}
{"type":"return","client":2,"time":5,"value":"a"}
{"type":"invoke","client":2,"time":6,"op":"get","key":"z"}
{"type":"return","client":2,"time":7,"value":""}
"#;
    assert_eq!(outcome(h), Outcome::Linearizable);
}

// ---- not linearizable ----

#[test]
fn stale_read_is_caught() {
    let v = violation(
        r#"
{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}
{"type":"return","client":1,"time":10}
{"type":"invoke","client":1,"time":20,"op":"put","key":"x","value":"b"}
{"type":"return","client":1,"time":30}
{"type":"invoke","client":2,"time":40,"op":"get","key":"x"}
{"type":"return","client":2,"time":50,"value":"a"}
"#,
    );
    assert_eq!(v.key, "x");
    assert_eq!(v.linearized, vec![0, 1]);
    assert_eq!(&*v.state, "b");
    assert_eq!(v.unplaceable, vec![2]);
    assert_eq!(v.stuck_before, Some(50));
}

#[test]
fn lost_write_is_caught() {
    let v = violation(
        r#"
{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}
{"type":"return","client":1,"time":10}
{"type":"invoke","client":2,"time":20,"op":"get","key":"x"}
{"type":"return","client":2,"time":30,"value":""}
"#,
    );
    assert_eq!(
        (v.linearized, v.state, v.unplaceable),
        (vec![0], "a".into(), vec![1])
    );
}

#[test]
fn duplicated_append_is_caught() {
    // A retried append applied twice: kv-no-dedup.
    let v = violation(
        r#"
{"type":"invoke","client":1,"time":0,"op":"append","key":"x","value":"1"}
{"type":"return","client":1,"time":10}
{"type":"invoke","client":1,"time":20,"op":"get","key":"x"}
{"type":"return","client":1,"time":30,"value":"11"}
"#,
    );
    assert_eq!(
        (v.linearized, v.state, v.unplaceable),
        (vec![0], "1".into(), vec![1])
    );
}

#[test]
fn reads_going_back_in_time_are_caught() {
    // Put a finished before put b started; a reader saw b, and a later reader saw a again.
    let v = violation(
        r#"
{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}
{"type":"return","client":1,"time":5}
{"type":"invoke","client":1,"time":10,"op":"put","key":"x","value":"b"}
{"type":"invoke","client":2,"time":20,"op":"get","key":"x"}
{"type":"return","client":2,"time":30,"value":"b"}
{"type":"invoke","client":2,"time":40,"op":"get","key":"x"}
{"type":"return","client":2,"time":50,"value":"a"}
{"type":"return","client":1,"time":100}
"#,
    );
    assert_eq!(v.linearized, vec![0, 1, 2]);
    assert_eq!(v.unplaceable, vec![3]);
}

#[test]
fn pending_write_cannot_explain_a_read_before_its_invoke() {
    let v = violation(
        r#"
{"type":"invoke","client":1,"time":0,"op":"get","key":"x"}
{"type":"return","client":1,"time":10,"value":"a"}
{"type":"invoke","client":2,"time":20,"op":"put","key":"x","value":"a"}
"#,
    );
    assert!(v.linearized.is_empty());
    assert_eq!((&*v.state, v.unplaceable), ("", vec![0]));
}

#[test]
fn smallest_failing_key_is_reported() {
    let v = violation(
        r#"
{"type":"invoke","client":1,"time":0,"op":"put","key":"big","value":"a"}
{"type":"return","client":1,"time":1}
{"type":"invoke","client":1,"time":2,"op":"put","key":"big","value":"b"}
{"type":"return","client":1,"time":3}
{"type":"invoke","client":1,"time":4,"op":"get","key":"big"}
{"type":"return","client":1,"time":5,"value":"a"}
{"type":"invoke","client":2,"time":0,"op":"get","key":"small"}
{"type":"return","client":2,"time":1,"value":"ghost"}
"#,
    );
    assert_eq!(v.key, "small");
    assert_eq!(v.operations.len(), 1);
}

#[test]
fn exhausted_budget_is_unknown_not_a_verdict() {
    // Twelve concurrent appends, then a read no order explains: proving that takes the search
    // through every order, far more than the steps between two looks at the clock.
    let mut r = Recorder::new();
    for c in 0..12 {
        let op = KvOp::Append {
            key: "x".into(),
            value: format!("{c},"),
        };
        r.invoke(c, op, 0).unwrap();
    }
    for c in 0..12 {
        r.complete(c, KvReply::Done, 10).unwrap();
    }
    r.invoke(99, KvOp::Get { key: "x".into() }, 20).unwrap();
    r.complete(99, KvReply::Value("nope".into()), 30).unwrap();
    let report = check_history(&r.finish(), Duration::ZERO);
    assert_eq!(
        report.outcome,
        Outcome::Unknown {
            undecided: vec!["x".into()]
        }
    );
    assert_eq!(report.exit_code(), 3);
}

// ---- in-memory recording and the JSON-lines encoder ----

#[test]
fn recorder_checks_events_as_the_decoder_does() {
    let mut r = Recorder::new();
    let get = || KvOp::Get { key: "k".into() };
    assert_eq!(
        r.complete(1, KvReply::Done, 0),
        Err(EventError::ReturnWithoutInvoke { client: 1 })
    );
    r.invoke(1, get(), 5).unwrap();
    assert_eq!(
        r.invoke(1, get(), 6),
        Err(EventError::InvokeWhilePending {
            client: 1,
            pending_since: 5
        })
    );
    assert_eq!(
        r.complete(1, KvReply::Value(String::new()), 4),
        Err(EventError::TimeWentBackwards {
            client: 1,
            time: 4,
            previous: 5
        })
    );
    assert_eq!(
        r.complete(1, KvReply::Done, 6),
        Err(EventError::MissingReadValue { client: 1 })
    );
    r.complete(1, KvReply::Value(String::new()), 6).unwrap();
    let h = r.finish();
    assert_eq!(h.operations().len(), 1);
    assert_eq!(check(&h, BUDGET), Outcome::Linearizable);
}

#[test]
fn encoded_history_parses_back_identically() {
    let mut r = Recorder::new();
    let put = |v: &str| KvOp::Put {
        key: "k \"quoted\"".into(),
        value: v.into(),
    };
    // Zero-length operations at one instant, a pending one, and interleaved clients.
    r.invoke(1, put("a"), 5).unwrap();
    r.complete(1, KvReply::Done, 5).unwrap();
    r.invoke(1, put("b"), 5).unwrap();
    r.invoke(2, KvOp::Get { key: "k".into() }, 3).unwrap();
    r.complete(2, KvReply::Value("é\n".into()), 9).unwrap();
    r.invoke(
        3,
        KvOp::Append {
            key: "k".into(),
            value: "x".into(),
        },
        7,
    )
    .unwrap();
    r.complete(3, KvReply::Done, 8).unwrap();
    let h = r.finish();
    let text = h.to_jsonl();
    let back = parse_history(text.as_bytes()).unwrap();
    let mut expected = h.operations().to_vec();
    let mut got = back.operations().to_vec();
    let order = |o: &Operation| (o.client, o.invoked);
    expected.sort_by_key(order);
    got.sort_by_key(order);
    assert_eq!(got, expected);
}

// ---- malformed input ----

const PUT: &str = r#"{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}"#;

#[test]
fn bad_json_names_its_line() {
    let (line, kind) = error(&format!("{PUT}\n{{\"type\":"));
    assert_eq!(line, 2);
    assert!(matches!(kind, LineError::BadJson(_)), "{kind:?}");
    let (line, kind) = error("{} {}");
    assert_eq!(line, 1);
    assert!(matches!(kind, LineError::BadJson(_)), "{kind:?}");
}

#[test]
fn invalid_utf8_is_bad_json() {
    let (line, kind) = parse_history(b"\n{\"type\":\"invoke\xff\"}")
        .map(|_| ())
        .map_err(|e| (e.line, e.kind))
        .unwrap_err();
    assert_eq!(line, 2);
    assert!(matches!(kind, LineError::BadJson(_)), "{kind:?}");
}

#[test]
fn non_object_is_rejected() {
    assert!(matches!(error("[1, 2]"), (1, LineError::NotAnObject)));
    assert!(matches!(error("\"invoke\""), (1, LineError::NotAnObject)));
}

#[test]
fn missing_fields_are_named() {
    let cases = [
        (r#"{"client":1,"time":0}"#, "type"),
        (
            r#"{"type":"invoke","time":0,"op":"get","key":"x"}"#,
            "client",
        ),
        (
            r#"{"type":"invoke","client":1,"op":"get","key":"x"}"#,
            "time",
        ),
        (r#"{"type":"invoke","client":1,"time":0,"key":"x"}"#, "op"),
        (r#"{"type":"invoke","client":1,"time":0,"op":"get"}"#, "key"),
        (
            r#"{"type":"invoke","client":1,"time":0,"op":"put","key":"x"}"#,
            "value",
        ),
        (r#"{"type":"return","time":0}"#, "client"),
        (r#"{"type":"return","client":1}"#, "time"),
    ];
    for (text, field) in cases {
        match error(&format!("{PUT}\n\n{text}")) {
            (3, LineError::MissingField(f)) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn wrongly_typed_fields_are_named() {
    let cases = [
        (r#"{"type":3}"#, "type"),
        (
            r#"{"type":"invoke","client":"1","time":0,"op":"get","key":"x"}"#,
            "client",
        ),
        (
            r#"{"type":"invoke","client":1,"time":-5,"op":"get","key":"x"}"#,
            "time",
        ),
        (
            r#"{"type":"invoke","client":1,"time":1.5,"op":"get","key":"x"}"#,
            "time",
        ),
        (
            r#"{"type":"invoke","client":1,"time":0,"op":"get","key":7}"#,
            "key",
        ),
        (
            r#"{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":null}"#,
            "value",
        ),
        (
            r#"{"type":"return","client":1,"time":0,"value":1}"#,
            "value",
        ),
    ];
    for (text, field) in cases {
        match error(text) {
            (1, LineError::WrongType { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn unknown_event_type_and_op_are_rejected() {
    match error(r#"{"type":"call","client":1,"time":0}"#) {
        (1, LineError::UnknownEventType(t)) => assert_eq!(t, "call"),
        other => panic!("{other:?}"),
    }
    match error(r#"{"type":"invoke","client":1,"time":0,"op":"delete","key":"x"}"#) {
        (1, LineError::UnknownOp(op)) => assert_eq!(op, "delete"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unexpected_fields_are_rejected() {
    let cases = [
        (
            r#"{"type":"invoke","client":1,"time":0,"op":"get","key":"x","value":"a"}"#,
            "value",
        ),
        (
            r#"{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a","vlaue":"b"}"#,
            "vlaue",
        ),
        (r#"{"type":"return","client":1,"time":0,"key":"x"}"#, "key"),
    ];
    for (text, field) in cases {
        match error(text) {
            (1, LineError::UnexpectedField { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn return_without_invoke_is_rejected() {
    let (line, kind) = error(&format!(
        "{PUT}\n{{\"type\":\"return\",\"client\":2,\"time\":1}}"
    ));
    assert_eq!(line, 2);
    assert!(matches!(
        kind,
        LineError::Event(EventError::ReturnWithoutInvoke { client: 2 })
    ));
    // A second return for the same operation.
    let ret = r#"{"type":"return","client":1,"time":1}"#;
    let (line, kind) = error(&format!("{PUT}\n{ret}\n{ret}"));
    assert_eq!(line, 3);
    assert!(matches!(
        kind,
        LineError::Event(EventError::ReturnWithoutInvoke { client: 1 })
    ));
}

#[test]
fn second_invoke_before_return_is_rejected() {
    let (line, kind) = error(&format!("{PUT}\n{PUT}"));
    assert_eq!(line, 2);
    assert!(matches!(
        kind,
        LineError::Event(EventError::InvokeWhilePending {
            client: 1,
            pending_since: 0
        })
    ));
}

#[test]
fn time_going_backwards_for_a_client_is_rejected() {
    let late_put = PUT.replace("\"time\":0", "\"time\":10");
    let (line, kind) = error(&format!(
        "{late_put}\n{{\"type\":\"return\",\"client\":1,\"time\":9}}"
    ));
    assert_eq!(line, 2);
    assert!(matches!(
        kind,
        LineError::Event(EventError::TimeWentBackwards {
            client: 1,
            time: 9,
            previous: 10
        })
    ));
    let (line, kind) = error(&format!(
        "{late_put}\n{{\"type\":\"return\",\"client\":1,\"time\":12}}\n{PUT}"
    ));
    assert_eq!(line, 3);
    assert!(matches!(
        kind,
        LineError::Event(EventError::TimeWentBackwards {
            client: 1,
            time: 0,
            previous: 12
        })
    ));
}

#[test]
fn return_value_must_match_the_operation() {
    let get = r#"{"type":"invoke","client":1,"time":0,"op":"get","key":"x"}"#;
    let (line, kind) = error(&format!(
        "{get}\n{{\"type\":\"return\",\"client\":1,\"time\":1}}"
    ));
    assert_eq!(line, 2);
    assert!(matches!(
        kind,
        LineError::Event(EventError::MissingReadValue { client: 1 })
    ));
    let (line, kind) = error(&format!(
        "{PUT}\n{{\"type\":\"return\",\"client\":1,\"time\":1,\"value\":\"a\"}}"
    ));
    assert_eq!(line, 2);
    assert!(matches!(
        kind,
        LineError::Event(EventError::UnexpectedReadValue { client: 1 })
    ));
}

#[test]
fn error_message_names_the_line() {
    let err = parse_history(format!("{PUT}\n\n{PUT}").as_bytes()).unwrap_err();
    let message = err.to_string();
    assert!(message.starts_with("line 3: "), "{message}");
    assert!(message.contains("client 1"), "{message}");
}

// ---- the CLI entry point ----

fn temp(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn run_reports_verdicts_and_writes_the_page() {
    let path = temp("lincheck-stale.jsonl");
    let html = temp("lincheck-stale.html");
    std::fs::write(
        &path,
        r#"{"type":"invoke","client":1,"time":0,"op":"put","key":"<i>","value":"<a>"}
{"type":"return","client":1,"time":10}
{"type":"invoke","client":2,"time":20,"op":"get","key":"<i>"}
{"type":"return","client":2,"time":30,"value":"<b>"}
"#,
    )
    .unwrap();
    let report = run(&path, Some(&html), BUDGET).unwrap();
    assert_eq!(report.exit_code(), 1);
    assert_eq!((report.operations, report.keys), (2, 1));
    let text = report.to_string();
    assert!(text.starts_with("NOT linearizable"), "{text}");
    assert!(text.contains("client 2 get -> \"<b>\" [20, 30]"), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("id=\"stuck\""));
    for tag in ["a", "b", "i"] {
        assert!(!page.contains(&format!("<{tag}>")), "unescaped <{tag}>");
        assert!(
            page.contains(&format!("&lt;{tag}&gt;")),
            "missing &lt;{tag}&gt;"
        );
    }

    std::fs::write(&path, format!("{PUT}\n")).unwrap();
    let report = run(&path, None, BUDGET).unwrap();
    assert_eq!(report.exit_code(), 0);
    assert!(report.to_string().starts_with("linearizable"));
}

#[test]
fn run_rejects_bad_input_with_path_and_line() {
    let missing = temp("lincheck-does-not-exist.jsonl");
    assert!(matches!(
        run(&missing, None, BUDGET),
        Err(LincheckError::Read { .. })
    ));
    let path = temp("lincheck-bad.jsonl");
    std::fs::write(&path, format!("{PUT}\n{{\"type\":\"return\"}}\n")).unwrap();
    let err = run(&path, None, BUDGET).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("lincheck-bad.jsonl: line 2: missing field `client`"),
        "{message}"
    );
    assert!(matches!(err, LincheckError::Parse { ref source, .. } if source.line == 2));
    assert_eq!(LincheckError::EXIT_CODE, 2);
}

#[test]
fn truncated_or_corrupted_input_never_panics() {
    let text = history(
        r#"{"type":"invoke","client":1,"time":0,"op":"put","key":"x","value":"a"}
{"type":"return","client":1,"time":10}
{"type":"invoke","client":2,"time":20,"op":"get","key":"x"}
{"type":"return","client":2,"time":30,"value":"a"}"#,
    )
    .to_jsonl();
    let bytes = text.as_bytes();
    for cut in 0..bytes.len() {
        let _ = parse_history(&bytes[..cut]);
        let mut corrupted = bytes.to_vec();
        corrupted[cut] ^= 0x20;
        let _ = parse_history(&corrupted);
    }
}

// ---- agreement with a brute-force search on small random histories ----

/// Up to 3 clients doing up to 3 operations each on one or two keys, with values from a tiny
/// alphabet so that reads are often, but not always, explainable; a client's last operation
/// may stay pending.
fn random_history(rng: &mut ChaCha8Rng) -> History {
    let mut r = Recorder::new();
    for client in 0..1 + rng.random_range(0..3) {
        let mut t = rng.random_range(0..4);
        let ops = 1 + rng.random_range(0..3);
        for n in 0..ops {
            let key = ["x", "y"][rng.random_range(0..2) as usize].to_owned();
            let value = ["a", "b"][rng.random_range(0..2) as usize].to_owned();
            let (op, reply) = match rng.random_range(0..3) {
                0 => (KvOp::Put { key, value }, KvReply::Done),
                1 => (KvOp::Append { key, value }, KvReply::Done),
                _ => {
                    let read = ["", "a", "b", "ab", "ba", "aa"][rng.random_range(0..6) as usize];
                    (KvOp::Get { key }, KvReply::Value(read.to_owned()))
                }
            };
            r.invoke(client, op, t).unwrap();
            if n + 1 == ops && rng.random_range(0..4) == 0 {
                break;
            }
            t += rng.random_range(0..6);
            r.complete(client, reply, t).unwrap();
            t += rng.random_range(0..3);
        }
    }
    r.finish()
}

/// The definition, searched exhaustively per key: some operation that no unplaced completed
/// operation precedes in real time goes next; done when every completed operation is placed.
fn brute_force(ops: &[&Operation], placed: &mut [bool], value: &str) -> bool {
    if (0..ops.len()).all(|i| placed[i] || ops[i].returned.is_none()) {
        return true;
    }
    for i in 0..ops.len() {
        let blocked = (0..ops.len()).any(|j| {
            !placed[j]
                && ops[j]
                    .returned
                    .as_ref()
                    .is_some_and(|r| r.time < ops[i].invoked)
        });
        if placed[i] || blocked {
            continue;
        }
        let next = match &ops[i].op {
            KvOp::Put { value: v, .. } => v.clone(),
            KvOp::Append { value: v, .. } => format!("{value}{v}"),
            KvOp::Get { .. } => match ops[i].read_value() {
                Some(read) if read != value => continue,
                _ => value.to_owned(),
            },
        };
        placed[i] = true;
        let ok = brute_force(ops, placed, &next);
        placed[i] = false;
        if ok {
            return true;
        }
    }
    false
}

#[test]
fn agrees_with_brute_force_on_random_histories() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut verdicts = [0; 2];
    for _ in 0..5000 {
        let h = random_history(&mut rng);
        let expected = ["x", "y"].iter().all(|key| {
            let ops: Vec<_> = h
                .operations()
                .iter()
                .filter(|o| o.op.key() == *key)
                .collect();
            brute_force(&ops, &mut vec![false; ops.len()], "")
        });
        let outcome = check(&h, BUDGET);
        assert_eq!(
            outcome == Outcome::Linearizable,
            expected,
            "{}\n{outcome:?}",
            h.to_jsonl()
        );
        verdicts[usize::from(expected)] += 1;
        if let Outcome::NotLinearizable(v) = outcome {
            // The evidence holds up: the prefix replays to `value` with every read matching,
            // and some read due next cannot be placed.
            let mut value = String::new();
            for &i in &v.linearized {
                let op = &v.operations[i];
                match &op.op {
                    KvOp::Put { value: w, .. } => value.clone_from(w),
                    KvOp::Append { value: w, .. } => value.push_str(w),
                    KvOp::Get { .. } => assert_eq!(op.read_value(), Some(value.as_str())),
                }
            }
            assert_eq!(value, &*v.state);
            assert!(!v.unplaceable.is_empty(), "{}", h.to_jsonl());
        }
    }
    // Both verdicts are well represented, so the agreement means something.
    assert!(verdicts.iter().all(|&n| n > 1000), "{verdicts:?}");
}

#[test]
fn example_histories_have_their_verdicts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples-data");
    let verdict = |name: &str| run(&dir.join(name), None, BUDGET).map(|r| r.exit_code());
    assert_eq!(verdict("linearizable.jsonl").unwrap(), 0);
    assert_eq!(verdict("stale-read.jsonl").unwrap(), 1);
    assert_eq!(verdict("duplicated-append.jsonl").unwrap(), 1);
    let err = verdict("malformed.jsonl").unwrap_err();
    assert!(
        matches!(err, LincheckError::Parse { ref source, .. } if source.line == 2),
        "{err}"
    );
}
