//! Linearizability checking of recorded KV histories (Wing–Gong–Lowe search, per key).
//!
//! A history records, for every client request to the replicated KV store, when it was
//! invoked and when (and with what) it returned. It is linearizable if every operation can be
//! given a single instant between its invoke and its return such that, taken in the order of
//! those instants, the operations are a legal sequential run of the store: each Get reads
//! what the Puts and Appends before it left.
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
//! | `op`     | invoke        | `"put"`, `"append"` or `"get"` (as `raft_impl::kv::KvOp`) |
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
//! - [`history`]: the in-memory history, the [`Recorder`] a simulator feeds directly, and the
//!   JSON-lines decoder and encoder.
//! - [`checker`]: the verdict: keys checked one by one, smallest first, under a time budget,
//!   and a failure turned into evidence.
//! - `search`: the Wing–Gong–Lowe search over one key's operations.
//! - [`html`]: the page that shows a violation on a time line.

pub mod checker;
pub mod history;
pub mod html;
mod search;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;

pub use checker::{check, Outcome, Violation};
pub use history::{
    parse_history, EventError, History, LineError, Operation, ParseError, Recorder, Return,
};

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

/// The result of checking one history, with enough context to print a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub operations: usize,
    pub keys: usize,
    pub outcome: Outcome,
    pub elapsed: Duration,
    pub budget: Duration,
}

impl Report {
    /// The process exit code: 0 linearizable, 1 not linearizable, 3 undecided within the
    /// budget (2 is taken by bad input, see [`LincheckError::EXIT_CODE`]).
    pub fn exit_code(&self) -> u8 {
        match self.outcome {
            Outcome::Linearizable => 0,
            Outcome::NotLinearizable(_) => 1,
            Outcome::Unknown { .. } => 3,
        }
    }
}

/// Checks an in-memory history (as recorded by a simulator through a [`Recorder`]).
///
/// ```
/// use std::time::Duration;
/// use raft_impl::kv::{KvOp, KvReply};
/// use raft_model::lincheck::{check_history, Outcome, Recorder};
///
/// let mut history = Recorder::new();
/// history.invoke(1, KvOp::Put { key: "x".into(), value: "a".into() }, 0)?;
/// history.complete(1, KvReply::Done, 10)?;
/// history.invoke(2, KvOp::Get { key: "x".into() }, 20)?;
/// history.complete(2, KvReply::Value(String::new()), 30)?; // the put was lost
/// let report = check_history(&history.finish(), Duration::from_secs(10));
/// assert!(matches!(report.outcome, Outcome::NotLinearizable(_)));
/// println!("{report}");
/// # Ok::<(), raft_model::lincheck::EventError>(())
/// ```
pub fn check_history(history: &History, budget: Duration) -> Report {
    let start = Instant::now();
    let outcome = check(history, budget);
    let mut keys: Vec<&str> = history.operations().iter().map(|o| o.op.key()).collect();
    keys.sort_unstable();
    keys.dedup();
    Report {
        operations: history.operations().len(),
        keys: keys.len(),
        outcome,
        elapsed: start.elapsed(),
        budget,
    }
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

/// `1 key`, `2 keys`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// How much of a long partial linearization the text report prints: its end is where the
/// search got stuck, which is what a reader needs first.
const SHOWN_PREFIX: usize = 20;

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let checked = format!(
            "{} on {}, checked in {:.3} s",
            count(self.operations, "operation"),
            count(self.keys, "key"),
            self.elapsed.as_secs_f64()
        );
        match &self.outcome {
            Outcome::Linearizable => write!(f, "linearizable: {checked}"),
            Outcome::Unknown { undecided } => write!(
                f,
                "unknown: the budget of {:?} ran out before key(s) {:?} were decided ({checked})",
                self.budget, undecided
            ),
            Outcome::NotLinearizable(v) => {
                writeln!(f, "NOT linearizable: {checked}")?;
                writeln!(
                    f,
                    "smallest failing key {:?} ({}); longest partial linearization, {} of them:",
                    v.key,
                    count(v.operations.len(), "operation"),
                    v.linearized.len()
                )?;
                let skipped = v.linearized.len().saturating_sub(SHOWN_PREFIX);
                if skipped > 0 {
                    writeln!(f, "        … {skipped} earlier ones (see --html for all)")?;
                }
                for (n, &i) in v.linearized.iter().enumerate().skip(skipped) {
                    writeln!(f, "  {:>4}. {}", n + 1, v.operations[i])?;
                }
                writeln!(
                    f,
                    "after which {:?} = {:?}, and none of these can come next:",
                    v.key, v.value
                )?;
                for &i in &v.unplaceable {
                    writeln!(f, "        {}", v.operations[i])?;
                }
                Ok(())
            }
        }
    }
}
