//! Linearizability checking of recorded histories: the Wing–Gong–Lowe search, run per
//! partition (per key for a KV store), memoised, under a time budget, with a verdict a reader
//! can follow and an HTML page that draws it.
//!
//! A history records, for every client operation, when it was invoked and when (and with
//! what) it returned. It is linearizable if every operation can be given a single instant
//! between its invoke and its return such that, taken in the order of those instants, the
//! operations are a legal sequential run of the object: each reply is what the operations
//! before it left. The object is described by a [`Specification`]; [`Kv`], a store of text
//! registers with Put, Append and Get, is the one the JSON-lines format and the HTML view
//! speak. The crate depends on no Raft code: any system's client history can be checked.
//!
//! # Checking a history recorded in code
//!
//! A simulator (or a test driving real servers) feeds a [`Recorder`] as its clients invoke
//! and complete operations; the recorder rejects event sequences no client could produce.
//!
//! ```
//! use std::time::Duration;
//! use raft_lincheck::{check_history, KvOp, KvReply, Outcome, Recorder};
//!
//! let mut history = Recorder::new();
//! history.invoke(1, KvOp::Put { key: "x".into(), value: "a".into() }, 0)?;
//! history.invoke(2, KvOp::Get { key: "x".into() }, 5)?; // concurrent with the put
//! history.complete(2, KvReply::Value("a".into()), 8)?;
//! history.complete(1, KvReply::Done, 10)?;
//! history.invoke(2, KvOp::Get { key: "x".into() }, 20)?;
//! history.complete(2, KvReply::Value(String::new()), 30)?; // the put was lost
//!
//! let report = check_history(&history.finish(), Duration::from_secs(10));
//! let Outcome::NotLinearizable(violation) = &report.outcome else { panic!("{report}") };
//! assert_eq!(violation.key, "x");
//! assert_eq!(&*violation.state, "a"); // after the put and the first get ...
//! assert_eq!(violation.unplaceable, vec![2]); // ... the second get cannot read ""
//! println!("{report}"); // the verdict and the evidence, as `raftcheck lincheck` prints it
//! # Ok::<(), raft_lincheck::EventError>(())
//! ```
//!
//! # Checking a JSON-lines file
//!
//! ```
//! use std::time::Duration;
//! use raft_lincheck::{check_history, html, parse_history, Outcome};
//!
//! let file = br#"
//! {"type":"invoke","client":1,"time":0,"op":"append","key":"x","value":"a"}
//! {"type":"invoke","client":2,"time":1,"op":"append","key":"x","value":"b"}
//! {"type":"return","client":1,"time":2}
//! {"type":"return","client":2,"time":3}
//! {"type":"invoke","client":3,"time":4,"op":"get","key":"x"}
//! {"type":"return","client":3,"time":5,"value":"ba"}
//! "#;
//! let history = parse_history(file)?;
//! let report = check_history(&history, Duration::from_secs(10));
//! assert_eq!(report.outcome, Outcome::Linearizable); // the appends took effect as b, a
//! let page: String = html::render(&report, "example"); // a self-contained page
//! assert!(page.contains("linearizable"));
//!
//! let err = parse_history(br#"{"type":"return","client":1,"time":0}"#).unwrap_err();
//! assert_eq!(err.to_string(), "line 1: return for client 1, which has no operation in flight");
//! # Ok::<(), raft_lincheck::ParseError>(())
//! ```
//!
//! # Another specification
//!
//! The search is generic: implement [`Specification`] for the object and record a
//! [`History`] of its operations. A counter with increments and reads, one partition:
//!
//! ```
//! use std::time::Duration;
//! use raft_lincheck::{check, Outcome, Recorder, Specification};
//!
//! #[derive(Clone, Debug, PartialEq, Eq)]
//! struct Counter;
//!
//! #[derive(Clone, Debug, PartialEq, Eq)]
//! enum Op { Increment, Read }
//!
//! impl Specification for Counter {
//!     type State = u64;
//!     type Op = Op;
//!     type Reply = Option<u64>; // the value read
//!     type Key = ();
//!
//!     fn initial() -> u64 { 0 }
//!     fn step(n: &u64, op: &Op) -> (Option<u64>, u64) {
//!         match op {
//!             Op::Increment => (None, n + 1),
//!             Op::Read => (Some(*n), *n),
//!         }
//!     }
//!     fn partition(_: &Op) {}
//! }
//!
//! let mut history = Recorder::<Counter>::default();
//! history.invoke(1, Op::Increment, 0)?;
//! history.invoke(2, Op::Increment, 1)?;
//! history.complete(1, None, 2)?;
//! history.invoke(3, Op::Read, 3)?; // client 2's increment may or may not have happened
//! history.complete(3, Some(1), 4)?;
//! assert_eq!(check(&history.finish(), Duration::from_secs(1)), Outcome::Linearizable);
//!
//! let mut history = Recorder::<Counter>::default();
//! history.invoke(1, Op::Increment, 0)?;
//! history.complete(1, None, 1)?;
//! history.invoke(1, Op::Read, 2)?;
//! history.complete(1, Some(2), 3)?; // one increment, read twice over
//! assert!(matches!(check(&history.finish(), Duration::from_secs(1)), Outcome::NotLinearizable(_)));
//! # Ok::<(), raft_lincheck::EventError>(())
//! ```
//!
//! # History format (JSON lines)
//!
//! One JSON object per line; blank lines are ignored. Two kinds of event:
//!
//! ```text
//! {"type":"invoke","client":1,"time":100,"op":"put","key":"x","value":"a"}
//! {"type":"invoke","client":2,"time":105,"op":"append","key":"x","value":"b"}
//! {"type":"invoke","client":3,"time":110,"op":"get","key":"x"}
//! {"type":"return","client":1,"time":120}
//! {"type":"return","client":3,"time":130,"value":"ab"}
//! ```
//!
//! | field    | in            | meaning |
//! |----------|---------------|---------|
//! | `type`   | both          | `"invoke"` or `"return"` |
//! | `client` | both          | non-negative integer; a client has at most one operation in flight |
//! | `time`   | both          | non-negative integer in any unit (ns, virtual ms, …) shared by all clients |
//! | `op`     | invoke        | `"put"`, `"append"` or `"get"` (as [`KvOp`]) |
//! | `key`    | invoke        | string |
//! | `value`  | invoke        | string, for `put` and `append` only: the value written or appended |
//! | `value`  | return        | string, for the return of a `get` only: the value read |
//!
//! Rules, each reported with its line number when broken:
//! - A return belongs to the operation its client has in flight (it names no key or op).
//! - A client's events alternate invoke, return, invoke, …, with times that never decrease.
//!   Events of different clients may be interleaved in any order in the file: `time` alone
//!   defines real-time order.
//! - Every key starts as `""`, and a Get of a missing key reads `""`, as in 6.5840.
//! - Operation A precedes B in real time only if A's return time is strictly less than B's
//!   invoke time; equal times count as concurrent.
//! - An invoke without a return (the client timed out or crashed) is a pending operation: it
//!   may have taken effect at any instant after its invoke, or never. A client that gives up
//!   on a request must continue under a new client id.
//! - Unknown fields, and `value` where it has no meaning, are errors, so that a typo is not
//!   silently read as an absent field.
//!
//! # Layout
//! - [`spec`]: the [`Specification`] trait; [`kv`]: the KV store's.
//! - [`history`]: the in-memory history and the [`Recorder`] that validates it event by event;
//!   [`jsonl`]: the JSON-lines decoder and encoder.
//! - [`checker`]: the verdict: partitions checked one by one, smallest first, under a time
//!   budget, and a failure turned into evidence; `search`: the Wing–Gong–Lowe search over one
//!   partition's operations.
//! - [`report`]: a checked KV history's text verdict and exit code; [`html`]: the page that
//!   shows a violation on a time line.

pub mod checker;
pub mod history;
pub mod html;
pub mod jsonl;
pub mod kv;
pub mod report;
mod search;
pub mod spec;

use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

pub use checker::{check, Outcome, Violation};
pub use history::{ClientId, EventError, History, Operation, Recorder, Return};
pub use jsonl::{parse_history, LineError, ParseError};
pub use kv::{Kv, KvOp, KvReply};
pub use report::{check_history, Report};
pub use spec::{ReplyMismatch, Specification};

/// Why a history file could not be checked; the CLI exits with [`LincheckError::EXIT_CODE`].
#[derive(Debug, Error)]
pub enum LincheckError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse { path: PathBuf, source: ParseError },
    #[error("cannot write {path}: {source}")]
    WriteHtml {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LincheckError {
    /// Bad input (or an unwritable report): distinct from 1, a history that was checked and
    /// found not linearizable.
    pub const EXIT_CODE: u8 = 2;
}

/// The `raftcheck lincheck <history.jsonl> [--html out.html]` command: reads and checks the
/// history at `path`, and writes the HTML page to `html` if asked.
pub fn run(path: &Path, html: Option<&Path>, budget: Duration) -> Result<Report, LincheckError> {
    let bytes = std::fs::read(path).map_err(|source| LincheckError::Read {
        path: path.to_owned(),
        source,
    })?;
    let history = parse_history(&bytes).map_err(|source| LincheckError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let report = check_history(&history, budget);
    if let Some(out) = html {
        let page = html::render(&report, &path.display().to_string());
        std::fs::write(out, page).map_err(|source| LincheckError::WriteHtml {
            path: out.to_owned(),
            source,
        })?;
    }
    Ok(report)
}
