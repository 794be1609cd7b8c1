//! Histories of KV operations: the in-memory form, the [`Recorder`] that builds one event by
//! event (rejecting sequences no real client could produce), and the JSON-lines decoder and
//! encoder described in the [module documentation](super).
//!
//! Validation lives in the recorder rather than in the decoder so that a simulator recording
//! directly in memory gets exactly the same checks as a file read from disk; the decoder only
//! adds the line number.

use std::collections::HashMap;
use std::fmt;

use raft_impl::kv::{ClientId, KvOp, KvReply};
use serde::Serialize;
use serde_json::{Map, Value};
use thiserror::Error;

/// One client operation: what was asked, when, and (if it came back) when and with what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub client: ClientId,
    pub op: KvOp,
    /// Time of the invoke event.
    pub invoked: u64,
    /// `None` for an operation that never returned (the client timed out or crashed): it may
    /// have taken effect at any point after `invoked`, or never.
    pub returned: Option<Return>,
}

/// The completion of an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Return {
    pub time: u64,
    /// `Value` for a Get (the value read), `Done` for a Put or Append.
    pub reply: KvReply,
}

impl Operation {
    /// The value a completed Get read; `None` for writes and for pending Gets.
    pub fn read_value(&self) -> Option<&str> {
        match &self.returned {
            Some(Return {
                reply: KvReply::Value(v),
                ..
            }) => Some(v),
            _ => None,
        }
    }

    /// The operation without its client or times, e.g. `append("b")` or `get -> "ab"`; the
    /// key is left out because reports group operations by key.
    pub fn action(&self) -> String {
        match &self.op {
            KvOp::Put { value, .. } => format!("put({value:?})"),
            KvOp::Append { value, .. } => format!("append({value:?})"),
            KvOp::Get { .. } => match self.read_value() {
                Some(v) => format!("get -> {v:?}"),
                None => "get -> ?".to_owned(),
            },
        }
    }

    /// The invoke-to-return interval, `[10, 20]`, or `[10, …)` when pending.
    pub fn interval(&self) -> String {
        match &self.returned {
            Some(r) => format!("[{}, {}]", self.invoked, r.time),
            None => format!("[{}, …)", self.invoked),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "client {} {} {}",
            self.client,
            self.action(),
            self.interval()
        )
    }
}

/// A complete recorded history, operations in the order they were invoked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    operations: Vec<Operation>,
}

impl History {
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Encodes the history in the JSON-lines format, events ordered by time (ties keep each
    /// client's own order), so that a history recorded in memory can be saved and re-checked
    /// with the CLI.
    pub fn to_jsonl(&self) -> String {
        // (time, operation index, 0 = invoke / 1 = return): an operation's index grows with
        // its client's invocation order, so equal times never reorder one client's events.
        let mut events: Vec<(u64, usize, u8)> = Vec::with_capacity(2 * self.operations.len());
        for (i, op) in self.operations.iter().enumerate() {
            events.push((op.invoked, i, 0));
            if let Some(r) = &op.returned {
                events.push((r.time, i, 1));
            }
        }
        events.sort_unstable();
        let mut out = String::new();
        for (time, i, kind) in events {
            let op = &self.operations[i];
            let line = if kind == 0 {
                let (name, key, value) = match &op.op {
                    KvOp::Put { key, value } => ("put", key, Some(value.as_str())),
                    KvOp::Append { key, value } => ("append", key, Some(value.as_str())),
                    KvOp::Get { key } => ("get", key, None),
                };
                Line {
                    r#type: "invoke",
                    client: op.client,
                    time,
                    op: Some(name),
                    key: Some(key),
                    value,
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

/// Why an event cannot follow the events recorded before it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EventError {
    #[error("return for client {client}, which has no operation in flight")]
    ReturnWithoutInvoke { client: ClientId },
    #[error(
        "invoke for client {client}, whose operation invoked at time {pending_since} has not \
         returned (a client that gives up must continue under a new client id)"
    )]
    InvokeWhilePending {
        client: ClientId,
        pending_since: u64,
    },
    #[error("time {time} for client {client} is before its previous event at time {previous}")]
    TimeWentBackwards {
        client: ClientId,
        time: u64,
        previous: u64,
    },
    #[error("return for client {client}'s get carries no `value` (the value read)")]
    MissingReadValue { client: ClientId },
    #[error("return for client {client}'s put or append carries a `value`; only gets read one")]
    UnexpectedReadValue { client: ClientId },
}

/// Builds a [`History`] from invoke and return events as they happen, in order per client
/// (events of different clients may come in any order).
#[derive(Debug, Default)]
pub struct Recorder {
    operations: Vec<Operation>,
    /// Per client: the index of its operation in flight, if any, and its latest event time.
    clients: HashMap<ClientId, ClientState>,
}

#[derive(Debug)]
struct ClientState {
    in_flight: Option<usize>,
    last_time: u64,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Records that `client` invoked `op` at `time`.
    pub fn invoke(&mut self, client: ClientId, op: KvOp, time: u64) -> Result<(), EventError> {
        if let Some(state) = self.clients.get(&client) {
            if let Some(i) = state.in_flight {
                return Err(EventError::InvokeWhilePending {
                    client,
                    pending_since: self.operations[i].invoked,
                });
            }
            if time < state.last_time {
                return Err(EventError::TimeWentBackwards {
                    client,
                    time,
                    previous: state.last_time,
                });
            }
        }
        self.clients.insert(
            client,
            ClientState {
                in_flight: Some(self.operations.len()),
                last_time: time,
            },
        );
        self.operations.push(Operation {
            client,
            op,
            invoked: time,
            returned: None,
        });
        Ok(())
    }

    /// Records that `client`'s operation in flight returned `reply` at `time`.
    pub fn complete(
        &mut self,
        client: ClientId,
        reply: KvReply,
        time: u64,
    ) -> Result<(), EventError> {
        let state = self.clients.get_mut(&client);
        let Some((state, i)) = state.and_then(|s| s.in_flight.map(|i| (s, i))) else {
            return Err(EventError::ReturnWithoutInvoke { client });
        };
        if time < state.last_time {
            return Err(EventError::TimeWentBackwards {
                client,
                time,
                previous: state.last_time,
            });
        }
        let operation = &mut self.operations[i];
        match (&operation.op, &reply) {
            (KvOp::Get { .. }, KvReply::Done) => {
                return Err(EventError::MissingReadValue { client })
            }
            (KvOp::Put { .. } | KvOp::Append { .. }, KvReply::Value(_)) => {
                return Err(EventError::UnexpectedReadValue { client })
            }
            _ => {}
        }
        operation.returned = Some(Return { time, reply });
        state.in_flight = None;
        state.last_time = time;
        Ok(())
    }

    /// The history so far; operations still in flight stay pending.
    pub fn finish(self) -> History {
        History {
            operations: self.operations,
        }
    }
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
