//! raftd with log compaction against compaction off, in one run: three real `raftd` processes
//! on 127.0.0.1 take `RAFTD_BENCH_PUTS` Puts (100 000 by default) from 16 clerks, once with
//! `--snapshot-every 10000` (the default) and once with `--snapshot-every 0` (never), the two
//! alternated over `RAFTD_BENCH_ROUNDS` rounds (2 by default: on, off, off, on) so that a drift
//! of the machine's load weighs on both alike. For each cluster:
//! - committed Puts per second: the Puts over the time from the first Put sent to the last one
//!   acknowledged (after an election, before which no Put is sent);
//! - the bytes of the three data directories together, sampled every 50 ms during the Puts (the
//!   peak) and once after the last (the final size);
//! - a restart: a follower is killed with SIGKILL after the Puts, the leader's commit index C
//!   read, and the follower started again from its directory. "Serving" is the time from the
//!   start of the new process to its first status answer (it answers once its log is
//!   recovered and it listens); "caught up" to the first status whose commit index is at least
//!   C (the driver applies what the core commits in the same step, so its store then holds
//!   every Put).
//!
//! Then the ratios, compaction on to off. Figures only: nothing is asserted (they depend on the
//! machine). The raftd these benches run is built with the crate's dev-dependency features,
//! the `failpoints` crash hook included: it reads one missing file per snapshot.
//!
//! `cargo bench -p raft-impl --bench raftd_compaction` (`RAFTD_BENCH_PUTS=10000` for a quick
//! try).

#[path = "../tests/launch/mod.rs"]
mod launch;

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use launch::Cluster;
use raft_impl::kv::{KvOp, KvReply};
use raft_impl::runtime::clerk::Clerk;
use raft_impl::runtime::server::DEFAULT_SNAPSHOT_EVERY;

const SERVERS: usize = 3;
const CLERKS: u64 = 16;
const VALUE_BYTES: usize = 100;
/// Distinct keys the Puts cycle through: the store (and so each snapshot) holds this many.
const KEYS: u64 = 10_000;
/// How often the data directories are measured during the Puts.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map_or(default, |s| s.parse().expect("a number"))
}

/// Bytes in the files of the data directories (each is flat: segments and snapshot files).
fn disk_usage(dirs: &[PathBuf]) -> u64 {
    dirs.iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flatten()
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|metadata| metadata.len())
        .sum()
}

struct Figures {
    puts_per_second: f64,
    peak_bytes: u64,
    final_bytes: u64,
    /// From the restarted process's start to its first status answer.
    serving: Duration,
    /// From the same start to a status whose commit index reaches the leader's.
    caught_up: Duration,
    /// Entries the restarted server recovered past its snapshot (its first status).
    replayed: u64,
}

/// One cluster with `--snapshot-every every` through `puts` Puts and a follower's restart.
fn measure(every: u64, puts: u64) -> Figures {
    let mut cluster = Cluster::start_with(SERVERS, &["--snapshot-every", &every.to_string()]);
    let dirs: Vec<PathBuf> = (0..SERVERS).map(|id| cluster.data_dir(id)).collect();
    cluster.leader();

    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak, dirs) = (done.clone(), peak.clone(), dirs.clone());
        thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(disk_usage(&dirs), Ordering::Relaxed);
                thread::sleep(SAMPLE_EVERY);
            }
        })
    };
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let clerks: Vec<_> = (0..CLERKS)
        .map(|_| {
            let (servers, next) = (cluster.clients.clone(), next.clone());
            thread::spawn(move || {
                let mut clerk = Clerk::new(servers).expect("servers");
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= puts {
                        return;
                    }
                    let put = KvOp::Put {
                        key: format!("k{}", i % KEYS),
                        value: format!("{i:0>VALUE_BYTES$}"),
                    };
                    assert_eq!(clerk.execute(put), Ok(KvReply::Done), "put {i}");
                }
            })
        })
        .collect();
    for clerk in clerks {
        clerk.join().expect("clerk");
    }
    let elapsed = start.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let final_bytes = disk_usage(&dirs);
    let peak_bytes = peak.load(Ordering::Relaxed).max(final_bytes);

    let lead = cluster.leader();
    let follower = (lead + 1) % SERVERS;
    cluster.kill(follower);
    let commit = cluster.status(lead).expect("leader status").commit_index;
    let restart = Instant::now();
    cluster.start_server(follower);
    let first = loop {
        if let Some(first) = cluster.status(follower) {
            break first;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let serving = restart.elapsed();
    let mut now = first.clone();
    while now.commit_index < commit {
        thread::sleep(Duration::from_millis(5));
        now = cluster.status(follower).unwrap_or(now);
    }
    Figures {
        puts_per_second: puts as f64 / elapsed.as_secs_f64(),
        peak_bytes,
        final_bytes,
        serving,
        caught_up: restart.elapsed(),
        replayed: first.log_entries,
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    let puts = env("RAFTD_BENCH_PUTS", 100_000);
    let rounds = env("RAFTD_BENCH_ROUNDS", 2);
    println!(
        "{SERVERS} raftd servers, {CLERKS} clerks, {puts} Puts of {VALUE_BYTES}-byte values over \
         {KEYS} keys per cluster; compaction on (--snapshot-every {DEFAULT_SNAPSHOT_EVERY}) and \
         off (0) alternately, {rounds} round(s)"
    );
    println!(
        "{:>5} {:>10} {:>8} {:>10} {:>10} {:>11} {:>14} {:>9}",
        "round",
        "compaction",
        "Puts/s",
        "peak MiB",
        "final MiB",
        "serving ms",
        "caught up ms",
        "replayed"
    );
    let mut on = Vec::new();
    let mut off = Vec::new();
    for round in 1..=rounds {
        // On first in odd rounds, off first in even ones: on, off, off, on, ...
        let order = if round % 2 == 1 {
            [true, false]
        } else {
            [false, true]
        };
        for compaction in order {
            let every = if compaction {
                DEFAULT_SNAPSHOT_EVERY
            } else {
                0
            };
            let f = measure(every, puts);
            println!(
                "{round:>5} {:>10} {:>8.0} {:>10.1} {:>10.1} {:>11.0} {:>14.0} {:>9}",
                if compaction { "on" } else { "off" },
                f.puts_per_second,
                mib(f.peak_bytes),
                mib(f.final_bytes),
                f.serving.as_secs_f64() * 1000.0,
                f.caught_up.as_secs_f64() * 1000.0,
                f.replayed
            );
            if compaction { &mut on } else { &mut off }.push(f);
        }
    }
    let mean = |figures: &[Figures], of: &dyn Fn(&Figures) -> f64| {
        figures.iter().map(of).sum::<f64>() / figures.len() as f64
    };
    let ratio = |of: &dyn Fn(&Figures) -> f64| mean(&on, of) / mean(&off, of);
    println!("ratios, compaction on to off (means over the rounds):");
    println!("  Puts/s      {:.2}", ratio(&|f| f.puts_per_second));
    println!("  peak size   {:.3}", ratio(&|f| f.peak_bytes as f64));
    println!("  final size  {:.3}", ratio(&|f| f.final_bytes as f64));
    println!("  serving     {:.2}", ratio(&|f| f.serving.as_secs_f64()));
    println!("  caught up   {:.2}", ratio(&|f| f.caught_up.as_secs_f64()));
}
