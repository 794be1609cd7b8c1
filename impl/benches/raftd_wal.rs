//! raftd's write path as its log grows: committed Puts per second through three real `raftd`
//! processes on 127.0.0.1, and the bytes each server writes to disk per committed Put, when the
//! log already holds 1 000, 10 000 and 100 000 entries.
//!
//! A store whose work per sync grows with the log (the whole state rewritten at each sync)
//! shows falling Puts/s and rising bytes per Put down the table; a write-ahead log, which
//! writes only what each batch added, shows both flat. Figures only: nothing here asserts a
//! time, which depends on the machine.
//!
//! `cargo bench -p raft-impl --bench raftd_wal` (`-- 1000 10000` for other log sizes;
//! `RAFTD_WAL_BENCH_SECS` for the measuring time per size, 5 by default).

#[path = "../tests/launch/mod.rs"]
mod launch;

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use launch::Cluster;
use raft_impl::kv::{KvCommand, KvOp};
use raft_impl::runtime::clerk::Clerk;
use raft_impl::runtime::server::STATE_FILE;
use raft_impl::{Entry, FilePersister, HardState, Persister};

const SERVERS: usize = 3;
/// Clerks putting at once: each has one request outstanding, so this many Puts can share a sync.
const CLERKS: u64 = 16;
/// Bytes of each Put's value, preloaded and measured alike.
const VALUE_BYTES: usize = 100;
/// Time for the election and the first commit (which applies the whole preloaded log).
const WARM_UP: Duration = Duration::from_secs(2);

fn value(i: u64) -> String {
    format!("{i:0>width$}", width = VALUE_BYTES)
}

/// The log every server starts from: `entries` Puts of term 1, as if an earlier leader had
/// replicated them.
fn preloaded(entries: u64) -> HardState<KvCommand> {
    HardState {
        current_term: 1,
        voted_for: None,
        log: (1..=entries)
            .map(|seq| Entry {
                term: 1,
                command: KvCommand {
                    client: 1,
                    seq,
                    op: KvOp::Put {
                        key: format!("pre{}", seq % 1000),
                        value: value(seq),
                    },
                },
            })
            .collect(),
    }
}

/// Replaces server data in `dir` by `state`.
fn preload(dir: &Path, state: &HardState<KvCommand>) {
    FilePersister::new(dir.join(STATE_FILE))
        .save(state)
        .expect("preload the state");
}

/// Bytes process `pid` caused to be written to storage so far (`write_bytes` of
/// `/proc/PID/io`: counted when pages are dirtied, so file writes whether or not yet flushed).
fn written_to_disk(pid: u32) -> u64 {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).expect("read /proc/PID/io");
    io.lines()
        .find_map(|line| line.strip_prefix("write_bytes: "))
        .and_then(|n| n.trim().parse().ok())
        .expect("write_bytes in /proc/PID/io")
}

struct Figures {
    puts: u64,
    elapsed: Duration,
    /// Per server, bytes written to disk during the measurement.
    written: Vec<u64>,
}

fn measure(entries: u64, measuring: Duration) -> Figures {
    let mut cluster = Cluster::start(SERVERS);
    // Bootstrapped; now stopped, given the preloaded log, and started from it.
    let state = preloaded(entries);
    for id in 0..SERVERS {
        cluster.stop(id);
        preload(&cluster.data_dir(id), &state);
    }
    drop(state);
    for id in 0..SERVERS {
        cluster.start_server(id);
    }

    let measuring_now = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let puts = Arc::new(AtomicU64::new(0));
    let clerks: Vec<_> = (0..CLERKS)
        .map(|c| {
            let servers = cluster.clients.clone();
            let (measuring_now, stop, puts) = (measuring_now.clone(), stop.clone(), puts.clone());
            thread::spawn(move || {
                let mut clerk = Clerk::new(servers).expect("servers");
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let put = KvOp::Put {
                        key: format!("c{c}"),
                        value: value(i),
                    };
                    if clerk.execute(put).is_ok() && measuring_now.load(Ordering::Relaxed) {
                        puts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    thread::sleep(WARM_UP);
    let pids: Vec<u32> = (0..SERVERS)
        .map(|id| cluster.pid(id).expect("server runs"))
        .collect();
    let before: Vec<u64> = pids.iter().map(|pid| written_to_disk(*pid)).collect();
    let start = Instant::now();
    measuring_now.store(true, Ordering::Relaxed);
    thread::sleep(measuring);
    measuring_now.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let written = pids
        .iter()
        .zip(&before)
        .map(|(pid, before)| written_to_disk(*pid) - before)
        .collect();
    stop.store(true, Ordering::Relaxed);
    for clerk in clerks {
        clerk.join().expect("clerk");
    }
    Figures {
        puts: puts.load(Ordering::Relaxed),
        elapsed,
        written,
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("log sizes are numbers"))
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 10_000, 100_000]
    } else {
        sizes
    };
    let secs = std::env::var("RAFTD_WAL_BENCH_SECS")
        .ok()
        .map_or(5, |s| s.parse().expect("RAFTD_WAL_BENCH_SECS is a number"));
    println!(
        "{SERVERS} raftd servers, {CLERKS} clerks, Puts of {VALUE_BYTES}-byte values, {secs} s \
         per log size"
    );
    println!(
        "{:>12} {:>10} {:>12} {:>28}",
        "log entries", "Puts/s", "mean ms/Put", "disk bytes/Put per server"
    );
    for entries in sizes {
        let f = measure(entries, Duration::from_secs(secs));
        let per_second = f.puts as f64 / f.elapsed.as_secs_f64();
        let latency_ms = CLERKS as f64 * 1000.0 / per_second;
        let per_put: Vec<String> = f
            .written
            .iter()
            .map(|w| format!("{}", w / f.puts.max(1)))
            .collect();
        println!(
            "{entries:>12} {per_second:>10.0} {latency_ms:>12.2} {:>28}",
            per_put.join(" / ")
        );
    }
}
