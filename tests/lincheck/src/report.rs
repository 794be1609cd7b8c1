//! The verdict on a KV history with enough context to print it: the text the CLI prints and
//! the exit code it returns.

use std::fmt;
use std::time::{Duration, Instant};

use crate::checker::{check, partition_count, Outcome};
use crate::history::History;

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
    /// budget (2 is taken by bad input, see [`crate::LincheckError::EXIT_CODE`]).
    pub fn exit_code(&self) -> u8 {
        match self.outcome {
            Outcome::Linearizable => 0,
            Outcome::NotLinearizable(_) => 1,
            Outcome::Unknown { .. } => 3,
        }
    }
}

/// Checks an in-memory history (as recorded by a simulator through a [`Recorder`](crate::Recorder)).
///
/// ```
/// use std::time::Duration;
/// use raft_lincheck::{check_history, KvOp, KvReply, Outcome, Recorder};
///
/// let mut history = Recorder::new();
/// history.invoke(1, KvOp::Put { key: "x".into(), value: "a".into() }, 0)?;
/// history.complete(1, KvReply::Done, 10)?;
/// history.invoke(2, KvOp::Get { key: "x".into() }, 20)?;
/// history.complete(2, KvReply::Value(String::new()), 30)?; // the put was lost
/// let report = check_history(&history.finish(), Duration::from_secs(10));
/// assert!(matches!(report.outcome, Outcome::NotLinearizable(_)));
/// println!("{report}");
/// # Ok::<(), raft_lincheck::EventError>(())
/// ```
pub fn check_history(history: &History, budget: Duration) -> Report {
    let start = Instant::now();
    let outcome = check(history, budget);
    Report {
        operations: history.operations().len(),
        keys: partition_count(history),
        outcome,
        elapsed: start.elapsed(),
        budget,
    }
}

/// `1 key`, `2 keys`.
pub(crate) fn count(n: usize, noun: &str) -> String {
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
                    v.key, v.state
                )?;
                for &i in &v.unplaceable {
                    writeln!(f, "        {}", v.operations[i])?;
                }
                Ok(())
            }
        }
    }
}
