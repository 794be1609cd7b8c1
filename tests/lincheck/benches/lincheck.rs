//! Times the linearizability checker on a history of 10 000 operations over 10 keys from 5
//! clients (the issue asks for under 1 s), and on the same run with one stale read.
//!
//! The history comes from a simulated linearizable store, deterministically: at every tick one
//! random client advances its operation by one stage (invoke, take effect, return), so
//! operations of different clients overlap and reads race with writes, yet an order explaining
//! every read exists. `cargo bench -p raft-lincheck --bench lincheck`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use raft_lincheck::{check, parse_history, History, KvOp, KvReply, Outcome, Recorder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const OPERATIONS: usize = 10_000;
const KEYS: u64 = 10;
const CLIENTS: u64 = 5;
const RUNS: usize = 5;

enum Stage {
    Idle,
    Invoked {
        op: KvOp,
        number: usize,
        at: u64,
    },
    Applied {
        reply: KvReply,
        number: usize,
        key: String,
    },
}

/// A key's value, the value before its latest write (what a lagging replica still has), and
/// whether that write has returned, and when.
#[derive(Default)]
struct Cell {
    now: String,
    before: String,
    writer: usize,
    settled: Option<u64>,
}

/// What can go wrong in a generated run.
#[derive(Clone, Copy)]
struct Faults {
    /// The first read after the middle of the run that can be proven stale returns the
    /// overwritten value: the overwriting write returned before the read was invoked, and
    /// values are unique, so no order explains it.
    stale_read: bool,
    /// One reply in `crash_one_in` is lost: the operation (which took effect, or not) stays
    /// pending and the client continues under a new id, as a crashed and restarted clerk.
    crash_one_in: Option<u64>,
}

/// The history of a linearizable store, but for `faults`.
fn generate(seed: u64, faults: Faults) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ids: Vec<u64> = (0..CLIENTS).collect();
    let mut next_id = CLIENTS;
    let mut store: HashMap<String, Cell> = HashMap::new();
    let mut stale_pending = faults.stale_read;
    let mut stages: Vec<Stage> = (0..CLIENTS).map(|_| Stage::Idle).collect();
    let mut recorder = Recorder::new();
    let mut invoked = 0;
    let mut time = 0;
    while invoked < OPERATIONS {
        time += 1 + rng.random_range(0..3);
        let slot = rng.random_range(0..CLIENTS) as usize;
        let client = ids[slot];
        let crash = faults
            .crash_one_in
            .is_some_and(|n| rng.random_range(0..n) == 0);
        let stage = &mut stages[slot];
        *stage = match std::mem::replace(stage, Stage::Idle) {
            Stage::Idle => {
                let key = format!("k{}", rng.random_range(0..KEYS));
                let value = format!("{client}.{invoked};");
                let op = match rng.random_range(0..10) {
                    0..=3 => KvOp::Get { key },
                    4..=6 => KvOp::Put { key, value },
                    _ => KvOp::Append { key, value },
                };
                recorder.invoke(client, op.clone(), time).expect("valid");
                invoked += 1;
                Stage::Invoked {
                    op,
                    number: invoked,
                    at: time,
                }
            }
            // A crash before the store saw the request, or after it applied it.
            Stage::Invoked { .. } | Stage::Applied { .. } if crash => {
                ids[slot] = next_id;
                next_id += 1;
                Stage::Idle
            }
            Stage::Invoked { op, number, at } => {
                let key = op.key().to_owned();
                let cell = store.entry(key.clone()).or_default();
                let reply = match op {
                    KvOp::Put { value, .. } => {
                        cell.before = std::mem::replace(&mut cell.now, value);
                        (cell.writer, cell.settled) = (number, None);
                        KvReply::Done
                    }
                    KvOp::Append { value, .. } => {
                        cell.before.clone_from(&cell.now);
                        cell.now.push_str(&value);
                        (cell.writer, cell.settled) = (number, None);
                        KvReply::Done
                    }
                    KvOp::Get { .. } => {
                        let provably_stale = cell.settled.is_some_and(|t| t < at)
                            && cell.before != cell.now
                            && invoked > OPERATIONS / 2;
                        if stale_pending && provably_stale {
                            stale_pending = false;
                            KvReply::Value(cell.before.clone())
                        } else {
                            KvReply::Value(cell.now.clone())
                        }
                    }
                };
                Stage::Applied { reply, number, key }
            }
            Stage::Applied { reply, number, key } => {
                recorder.complete(client, reply, time).expect("valid");
                if let Some(cell) = store.get_mut(&key).filter(|c| c.writer == number) {
                    cell.settled = Some(time);
                }
                Stage::Idle
            }
        };
    }
    // Operations still in flight stay pending: some took effect, some did not.
    recorder.finish()
}

/// Runs `f` [`RUNS`] times and returns its last result with the fastest and median times.
fn time<T>(mut f: impl FnMut() -> T) -> (T, Duration, Duration) {
    let mut times = Vec::new();
    let mut result = None;
    for _ in 0..RUNS {
        let start = Instant::now();
        result = Some(f());
        times.push(start.elapsed());
    }
    times.sort();
    (result.expect("RUNS > 0"), times[0], times[RUNS / 2])
}

fn main() {
    let budget = Duration::from_secs(60);
    let valid = Faults {
        stale_read: false,
        crash_one_in: None,
    };
    let history = generate(6, valid);
    let text = history.to_jsonl();
    println!(
        "history: {} operations, {KEYS} keys, {CLIENTS} clients, {} KiB of JSON lines",
        history.operations().len(),
        text.len() / 1024
    );
    let (parsed, best, median) = time(|| parse_history(text.as_bytes()).expect("valid"));
    assert_eq!(parsed, history);
    println!("parse:                 best {best:>9.2?}  median {median:>9.2?}");

    let (outcome, best, median) = time(|| check(&history, budget));
    assert_eq!(outcome, Outcome::Linearizable);
    println!("check, linearizable:   best {best:>9.2?}  median {median:>9.2?}");

    let crashes = generate(
        6,
        Faults {
            crash_one_in: Some(100),
            ..valid
        },
    );
    let pending = crashes
        .operations()
        .iter()
        .filter(|o| o.returned.is_none())
        .count();
    let (outcome, best, median) = time(|| check(&crashes, budget));
    assert_eq!(outcome, Outcome::Linearizable);
    println!("check, {pending} crashes:    best {best:>9.2?}  median {median:>9.2?}  (each leaves its operation pending)");

    let stale = generate(
        6,
        Faults {
            stale_read: true,
            ..valid
        },
    );
    let (outcome, best, median) = time(|| check(&stale, budget));
    let Outcome::NotLinearizable(v) = outcome else {
        panic!("the stale read went unnoticed: {outcome:?}")
    };
    println!(
        "check, one stale read: best {best:>9.2?}  median {median:>9.2?}  (key {:?}, stuck after {} of its {} operations)",
        v.key,
        v.linearized.len(),
        v.operations.len()
    );
}
