//! What one run covers: every bound as the run used it, under the name of the flag that sets
//! it, and what lies just past it. The text output's "not explored" line and the JSON
//! document's `bounds` and `not_explored` both come from [`limits`], so a run never claims more
//! than its bounds (a preset's bounds overridden by a flag are said as they were used).
//!
//! A new bound is one more entry in [`limits`]: the function takes [`Bounds`] and [`KvBounds`]
//! apart field by field, without `..`, so a field added to either does not compile until it
//! has its entry here.

use std::fmt;

use serde::Serialize;

use crate::bounds::{Bounds, KvBounds, Network, Persistence};

/// The value a bound had, as its flag takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Count(u64),
    Switch(bool),
    Name(&'static str),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Count(n) => write!(f, "{n}"),
            Value::Switch(on) => write!(f, "{on}"),
            Value::Name(name) => f.write_str(name),
        }
    }
}

/// One bound of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// The flag that sets it, without the dashes (`max-term`).
    pub flag: &'static str,
    pub value: Value,
    /// What the run does not explore because of this bound's value, if anything.
    pub beyond: Option<String>,
}

fn limit(flag: &'static str, value: Value, beyond: Option<String>) -> Limit {
    Limit {
        flag,
        value,
        beyond,
    }
}

/// `n` as an ordinal word: "second", "third", … ("21st" past twenty).
pub fn ordinal(n: u64) -> String {
    const WORDS: [&str; 21] = [
        "zeroth",
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
    ];
    if let Some(word) = WORDS.get(n as usize) {
        return (*word).to_string();
    }
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "a third term" past a bound of 2; `none` (e.g. "crashes") past a bound of 0.
fn next(bound: u64, what: &str, none: &str) -> String {
    if bound == 0 {
        none.to_string()
    } else {
        format!("a {} {what}", ordinal(bound + 1))
    }
}

/// Every bound of the run, in the order `raftcheck check` prints them.
pub fn limits(b: &Bounds, kv: &KvBounds) -> Vec<Limit> {
    let Bounds {
        servers,
        max_term,
        max_log,
        proposals,
        max_crashes,
        max_in_flight,
        max_duplicates,
        max_batch,
        window,
        pre_vote,
        check_quorum,
        max_snapshots,
        network,
        persistence,
        mutations: _,
    } = *b;
    let Network {
        ordered,
        lossy,
        duplicating,
    } = network;
    let KvBounds {
        clients,
        timeouts,
        expiries,
    } = *kv;
    let duplicates = if duplicating { max_duplicates } else { 0 };
    let count = |n: u64| Value::Count(n);
    vec![
        limit(
            "servers",
            count(servers.into()),
            Some("clusters of another size".to_string()),
        ),
        limit(
            "max-term",
            count(max_term),
            Some(next(max_term, "term", "elections")),
        ),
        limit(
            "max-log",
            count(max_log as u64),
            Some(next(max_log as u64, "log entry", "log entries")),
        ),
        limit(
            "proposals",
            count(proposals.into()),
            Some(next(proposals.into(), "proposal", "plain proposals")),
        ),
        limit(
            "max-crashes",
            count(max_crashes.into()),
            Some(next(max_crashes.into(), "crash event", "crashes")),
        ),
        limit(
            "max-in-flight",
            count(max_in_flight as u64),
            Some(next(max_in_flight as u64, "message in flight", "messages")),
        ),
        match max_batch {
            None => limit(
                "max-batch",
                Value::Name("none"),
                Some("an AppendEntries that carries part of the tail (--max-batch)".to_string()),
            ),
            Some(n) => limit(
                "max-batch",
                count(n.into()),
                Some(next(n.into(), "entry in one AppendEntries", "")),
            ),
        },
        limit(
            "window",
            count(window.into()),
            Some(next(
                window.into(),
                "batch in flight to one follower",
                "flow control (--window)",
            )),
        ),
        limit(
            "prevote",
            Value::Switch(pre_vote),
            // Pre-campaigns take no term, so one bound stops them: a pre-candidate's timer does
            // not fire again in its term (see `RaftModel::actions`).
            Some(if pre_vote {
                "a pre-candidate's second round in one term".to_string()
            } else {
                "PreVote (--prevote)".to_string()
            }),
        ),
        limit(
            "check-quorum",
            Value::Switch(check_quorum),
            (!check_quorum)
                .then(|| "CheckQuorum and the leader lease (--check-quorum)".to_string()),
        ),
        limit(
            "max-snapshots",
            count(max_snapshots.into()),
            // What the snapshot model itself leaves out: a snapshot of the KV store (refused
            // with clients), and snapshots sent in chunks (the runtime's, not the core's).
            Some(format!(
                "{}, chunked InstallSnapshot",
                next(
                    max_snapshots.into(),
                    "snapshot",
                    "snapshots (--max-snapshots)"
                )
            )),
        ),
        limit(
            "duplicates",
            count(duplicates.into()),
            Some(next(duplicates.into(), "duplicate", "duplication")),
        ),
        limit(
            "ordered",
            Value::Switch(ordered),
            ordered.then(|| "reordering".to_string()),
        ),
        limit(
            "lossless",
            Value::Switch(!lossy),
            (!lossy).then(|| "message loss".to_string()),
        ),
        limit(
            "storage",
            Value::Name(persistence.name()),
            match persistence {
                Persistence::Atomic => {
                    Some("records not yet durable (--storage deferred or wal)".to_string())
                }
                Persistence::Deferred => {
                    Some("a crash that keeps part of a step's records (--storage wal)".to_string())
                }
                Persistence::Wal => None,
            },
        ),
        limit(
            "kv-clients",
            count(clients.into()),
            Some(next(clients.into(), "KV client", "KV clients")),
        ),
        limit(
            "kv-timeouts",
            count(timeouts.into()),
            // Without clients nobody times out: their absence is said once, above.
            (clients > 0).then(|| next(timeouts.into(), "client timeout", "client timeouts")),
        ),
        limit(
            "kv-expiries",
            count(expiries.into()),
            // Only writing clients have sessions to expire.
            (clients > 0).then(|| next(expiries.into(), "session expiry", "session expiry")),
        ),
    ]
}

/// What the run leaves unexplored, one phrase per bound, for the "not explored" line.
pub fn not_explored(b: &Bounds, kv: &KvBounds) -> Vec<String> {
    limits(b, kv).into_iter().filter_map(|l| l.beyond).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinals() {
        let words: Vec<String> = [2, 3, 16, 21, 22, 23, 111, 256].map(ordinal).into();
        assert_eq!(
            words,
            [
                "second",
                "third",
                "sixteenth",
                "21st",
                "22nd",
                "23rd",
                "111th",
                "256th"
            ]
        );
    }

    /// The default preset leaves out what its bounds do, and a flag that adds something takes
    /// it off the list.
    #[test]
    fn not_explored_follows_the_bounds_used() {
        let b = Bounds::default();
        let kv = KvBounds::default();
        assert_eq!(
            not_explored(&b, &kv),
            [
                "clusters of another size",
                "a third term",
                "a third log entry",
                "a third proposal",
                "a second crash event",
                "a third message in flight",
                "an AppendEntries that carries part of the tail (--max-batch)",
                "flow control (--window)",
                "PreVote (--prevote)",
                "CheckQuorum and the leader lease (--check-quorum)",
                "snapshots (--max-snapshots), chunked InstallSnapshot",
                "duplication",
                "records not yet durable (--storage deferred or wal)",
                "KV clients",
            ]
        );
        let wal = Bounds {
            persistence: Persistence::Wal,
            max_crashes: 0,
            max_duplicates: 2,
            network: Network {
                ordered: true,
                lossy: false,
                duplicating: true,
            },
            ..b
        };
        let clients = KvBounds {
            clients: 2,
            timeouts: 1,
            expiries: 0,
        };
        let said = not_explored(&wal, &clients).join(", ");
        assert!(!said.contains("durable"), "{said}");
        assert!(!said.contains("duplication"), "{said}");
        assert!(!said.contains("KV clients"), "{said}");
        for phrase in [
            "crashes",
            "a third duplicate",
            "reordering",
            "message loss",
            "a third KV client",
            "a second client timeout",
            "session expiry",
        ] {
            assert!(said.contains(phrase), "{phrase}: {said}");
        }
    }
}
