//! raftd's write path as its log grows, when the log already holds 1 000, 10 000 and 100 000
//! entries:
//! - committed Puts per second through three real `raftd` processes on 127.0.0.1, and the bytes
//!   each server writes to disk per committed Put;
//! - the [`FileWal`] alone: bytes written and time taken per sync, for batches of 1, 16 and
//!   256 records.
//!
//! A store whose work per sync grows with the log (the whole state rewritten at each sync, as
//! raftd did before the write-ahead log) shows falling Puts/s and rising bytes per Put down the
//! table; the write-ahead log writes only what each batch added, so both stay flat, and the
//! bytes per sync follow the batch, not the log. Figures only: nothing here asserts a time,
//! which depends on the machine.
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
use raft_impl::kv::{KvCommand, KvOp, KvRequest, Session};
use raft_impl::runtime::clerk::{self, Clerk};
use raft_impl::storage::{FileWal, LogStore, WalOptions};
use raft_impl::{Entry, Record, Term};

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

/// The preloaded log's entry at `index`: the registration of session 1 at index 1, then Puts
/// as its clerk would send them, the one at `index` numbered `index`.
fn put(seq: u64) -> KvCommand {
    if seq == 1 {
        return KvCommand {
            time: 0,
            request: KvRequest::Register { nonce: 1 },
        };
    }
    KvCommand {
        time: 0,
        request: KvRequest::InSession {
            session: Session { id: 1, nonce: 1 },
            seq,
            op: KvOp::Put {
                key: format!("pre{}", seq % 1000),
                value: value(seq),
            },
        },
    }
}

/// Entries `from..from + count` of term `term`, in records of at most 1 000 entries.
fn log_records(term: Term, from: u64, count: u64) -> Vec<Record<KvCommand>> {
    let last = from + count;
    (from..last)
        .step_by(1000)
        .map(|start| Record::Log {
            from: start,
            entries: (start..last.min(start + 1000))
                .map(|seq| Entry {
                    term,
                    command: put(seq),
                })
                .collect(),
        })
        .collect()
}

/// Gives the log in `dir` term `term` and `entries` Puts of that term, as if an earlier leader
/// had replicated them.
fn preload(dir: &Path, term: Term, entries: u64) {
    let (mut wal, _) = FileWal::<KvCommand>::open(dir, WalOptions::default()).expect("open");
    let mut records = vec![Record::TermVote {
        term,
        voted_for: None,
    }];
    records.extend(log_records(term, 1, entries));
    wal.append(&records).expect("append");
    wal.sync().expect("sync");
}

/// The term of the log in `dir`.
fn term_of(dir: &Path) -> Term {
    let (_, state) = FileWal::<KvCommand>::open(dir, WalOptions::default()).expect("open");
    state.current_term
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
    // Bootstrapped (each answers once its log is created); now stopped, given one preloaded
    // log past any term they reached, and started from it.
    for id in 0..SERVERS {
        let started = Instant::now();
        while clerk::status(cluster.clients[id], Duration::from_secs(1)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "raftd {id} does not start"
            );
            thread::sleep(Duration::from_millis(20));
        }
        cluster.stop(id);
    }
    let term = (0..SERVERS)
        .map(|id| term_of(&cluster.data_dir(id)))
        .max()
        .expect("servers")
        + 1;
    for id in 0..SERVERS {
        preload(&cluster.data_dir(id), term, entries);
    }
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

/// The write-ahead log alone, holding `entries` entries: per batch size, the bytes each sync
/// wrote and its mean time.
fn wal_syncs(entries: u64) -> Vec<(u64, u64, Duration)> {
    const SYNCS: u64 = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut wal = FileWal::<KvCommand>::create(dir.path(), WalOptions::default()).expect("create");
    wal.append(&log_records(1, 1, entries)).expect("append");
    wal.sync().expect("sync");
    let mut next = entries + 1;
    [1, 16, 256]
        .into_iter()
        .map(|batch| {
            let size_before = dir_size(dir.path());
            let syncs_before = wal.sync_count();
            let start = Instant::now();
            for _ in 0..SYNCS {
                // One record per entry, as a leader's core emits them for one proposal each.
                let records: Vec<_> = (next..next + batch)
                    .flat_map(|i| log_records(1, i, 1))
                    .collect();
                next += batch;
                wal.append(&records).expect("append");
                wal.sync().expect("sync");
            }
            let elapsed = start.elapsed();
            let syncs = wal.sync_count() - syncs_before;
            assert_eq!(syncs, SYNCS, "one sync per batch");
            let bytes = (dir_size(dir.path()) - size_before) / syncs;
            (batch, bytes, elapsed / syncs as u32)
        })
        .collect()
}

/// Bytes in the files of `dir`.
fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
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
    for &entries in &sizes {
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
    println!();
    println!("FileWal alone: 50 syncs per batch size");
    println!(
        "{:>12} {:>8} {:>12} {:>12}",
        "log entries", "batch", "bytes/sync", "ms/sync"
    );
    for entries in &sizes {
        for (batch, bytes, per_sync) in wal_syncs(*entries) {
            println!(
                "{entries:>12} {batch:>8} {bytes:>12} {:>12.2}",
                per_sync.as_secs_f64() * 1000.0
            );
        }
    }
}
