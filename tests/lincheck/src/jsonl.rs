//! The JSON-lines history format (described in the [crate documentation](crate)): the
//! decoder, which checks each event through a [`Recorder`] and names the line it breaks, and
//! the encoder, so that a history recorded in memory can be saved and checked again.
//!
//! The format speaks the KV specification ([`Kv`]): its operations are Put, Append and Get.

use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

use crate::history::{ClientId, EventError, History, Recorder};
use crate::kv::{Kv, KvOp, KvReply};

impl History<Kv> {
    /// Encodes the history in the JSON-lines format, events ordered by time (ties keep each
    /// client's own order), so that a history recorded in memory can be saved and re-checked
    /// with the CLI.
    pub fn to_jsonl(&self) -> String {
        // (time, operation index, 0 = invoke / 1 = return): an operation's index grows with
        // its client's invocation order, so equal times never reorder one client's events.
        let operations = self.operations();
        let mut events: Vec<(u64, usize, u8)> = Vec::with_capacity(2 * operations.len());
        for (i, op) in operations.iter().enumerate() {
            events.push((op.invoked, i, 0));
            if let Some(r) = &op.returned {
                events.push((r.time, i, 1));
            }
        }
        events.sort_unstable();
        let mut out = String::new();
        for (time, i, kind) in events {
            let op = &operations[i];
            let line = if kind == 0 {
                Line {
                    r#type: "invoke",
                    client: op.client,
                    time,
                    op: Some(op.op.name()),
                    key: Some(op.op.key()),
                    value: op.op.written(),
                }
            } else {
                Line {
                    r#type: "return",
                    client: op.client,
                    time,
                    op: None,
                    key: None,
                    value: op.read_value(),
                }
            };
            // Serializing plain strings and integers cannot fail.
            if let Ok(json) = serde_json::to_string(&line) {
                out.push_str(&json);
                out.push('\n');
            }
        }
        out
    }
}

/// One encoded event, fields in the documented order.
#[derive(Serialize)]
struct Line<'a> {
    r#type: &'static str,
    client: ClientId,
    time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    op: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

/// A line of a JSON-lines history that cannot be accepted, and where.
#[derive(Debug, Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based, counting blank lines.
    pub line: usize,
    pub kind: LineError,
}

/// What is wrong with one line.
#[derive(Debug, Error)]
pub enum LineError {
    #[error("not valid JSON: {0}")]
    BadJson(#[from] serde_json::Error),
    #[error("expected a JSON object")]
    NotAnObject,
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}` must be {expected}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("unknown event type {0:?} (expected \"invoke\" or \"return\")")]
    UnknownEventType(String),
    #[error("unknown operation {0:?} (expected \"put\", \"append\" or \"get\")")]
    UnknownOp(String),
    #[error("unexpected field `{field}` in {context}")]
    UnexpectedField {
        field: String,
        context: &'static str,
    },
    #[error(transparent)]
    Event(#[from] EventError),
}

/// A decoded line, before it is checked against the lines before it.
enum Event {
    Invoke {
        client: ClientId,
        time: u64,
        op: KvOp,
    },
    Return {
        client: ClientId,
        time: u64,
        value: Option<String>,
    },
}

/// Parses a JSON-lines history. Blank lines are skipped; anything else that is not a valid
/// event in sequence is an error naming its line. Takes bytes so that invalid UTF-8 is a
/// per-line JSON error rather than a failure to read the file.
pub fn parse_history(input: &[u8]) -> Result<History, ParseError> {
    let mut recorder = Recorder::new();
    for (i, line) in input.split(|&b| b == b'\n').enumerate() {
        let at = |kind: LineError| ParseError { line: i + 1, kind };
        if line.trim_ascii().is_empty() {
            continue;
        }
        let result = match decode_event(line).map_err(at)? {
            Event::Invoke { client, time, op } => recorder.invoke(client, op, time),
            Event::Return {
                client,
                time,
                value,
            } => {
                let reply = value.map_or(KvReply::Done, KvReply::Value);
                recorder.complete(client, reply, time)
            }
        };
        result.map_err(|e| at(e.into()))?;
    }
    Ok(recorder.finish())
}

fn decode_event(line: &[u8]) -> Result<Event, LineError> {
    let Value::Object(map) = serde_json::from_slice(line)? else {
        return Err(LineError::NotAnObject);
    };
    match string(&map, "type")? {
        "invoke" => {
            let client = integer(&map, "client")?;
            let time = integer(&map, "time")?;
            let key = string(&map, "key")?.to_owned();
            let (op, context) = match string(&map, "op")? {
                "put" => {
                    let value = string(&map, "value")?.to_owned();
                    (KvOp::Put { key, value }, "a put invoke")
                }
                "append" => {
                    let value = string(&map, "value")?.to_owned();
                    (KvOp::Append { key, value }, "an append invoke")
                }
                "get" => (KvOp::Get { key }, "a get invoke"),
                other => return Err(LineError::UnknownOp(other.to_owned())),
            };
            let allowed: &[&str] = match op {
                KvOp::Get { .. } => &["type", "client", "time", "op", "key"],
                _ => &["type", "client", "time", "op", "key", "value"],
            };
            only_fields(&map, allowed, context)?;
            Ok(Event::Invoke { client, time, op })
        }
        "return" => {
            let client = integer(&map, "client")?;
            let time = integer(&map, "time")?;
            let value = match map.get("value") {
                None => None,
                Some(_) => Some(string(&map, "value")?.to_owned()),
            };
            only_fields(&map, &["type", "client", "time", "value"], "a return")?;
            Ok(Event::Return {
                client,
                time,
                value,
            })
        }
        other => Err(LineError::UnknownEventType(other.to_owned())),
    }
}

fn string<'a>(map: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, LineError> {
    match map.get(field) {
        None => Err(LineError::MissingField(field)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(LineError::WrongType {
            field,
            expected: "a string",
        }),
    }
}

fn integer(map: &Map<String, Value>, field: &'static str) -> Result<u64, LineError> {
    match map.get(field) {
        None => Err(LineError::MissingField(field)),
        Some(v) => v.as_u64().ok_or(LineError::WrongType {
            field,
            expected: "a non-negative integer",
        }),
    }
}

/// Rejects fields outside `allowed`, so that a typo such as `"vlaue"` is reported instead of
/// silently reading as a missing value.
fn only_fields(
    map: &Map<String, Value>,
    allowed: &[&str],
    context: &'static str,
) -> Result<(), LineError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(field) => Err(LineError::UnexpectedField {
            field: field.clone(),
            context,
        }),
        None => Ok(()),
    }
}
