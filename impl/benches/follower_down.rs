//! raftd's throughput with one follower down, as a ratio to all followers up, in one run: three
//! real `raftd` processes on 127.0.0.1, 16 clerks putting 100-byte values; committed Puts per
//! second with all three up, then with one follower killed (its missing tail growing all the
//! while), alternately, `RAFTD_FOLLOWER_DOWN_ROUNDS` rounds (2 by default) of
//! `RAFTD_FOLLOWER_DOWN_SECS` seconds (5) each. Also the bytes the leader's core sent the
//! down follower per heartbeat (its status). Before flow control the leader re-sent the
//! whole missing tail to the down follower after every batch of proposals (issue 18: 1 635 →
//! 363 ops/s in 40 s); now the ratio should stay near 1. Figures only: nothing is asserted.
//!
//! `cargo bench -p raft-impl --bench follower_down`

#[path = "../tests/launch/mod.rs"]
mod launch;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use launch::Cluster;
use raft_impl::kv::KvOp;
use raft_impl::runtime::clerk::Clerk;

const SERVERS: usize = 3;
const CLERKS: u64 = 16;
const VALUE_BYTES: usize = 100;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map_or(default, |s| s.parse().expect("a number"))
}

/// Committed Puts per second over `secs`, counted from `puts`.
fn rate(puts: &AtomicU64, secs: u64) -> f64 {
    let before = puts.load(Ordering::Relaxed);
    let start = Instant::now();
    thread::sleep(Duration::from_secs(secs));
    (puts.load(Ordering::Relaxed) - before) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs = env("RAFTD_FOLLOWER_DOWN_SECS", 5);
    let rounds = env("RAFTD_FOLLOWER_DOWN_ROUNDS", 2);
    let mut cluster = Cluster::start(SERVERS);
    let stop = Arc::new(AtomicBool::new(false));
    let puts = Arc::new(AtomicU64::new(0));
    let clerks: Vec<_> = (0..CLERKS)
        .map(|c| {
            let servers = cluster.clients.clone();
            let (stop, puts) = (stop.clone(), puts.clone());
            thread::spawn(move || {
                let mut clerk = Clerk::new(servers).expect("servers");
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let put = KvOp::Put {
                        key: format!("c{c}"),
                        value: format!("{i:0>VALUE_BYTES$}"),
                    };
                    if clerk.execute(put).is_ok() {
                        puts.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_secs(2));
    println!(
        "{SERVERS} raftd servers, {CLERKS} clerks, Puts of {VALUE_BYTES}-byte values, {secs} s \
         per phase"
    );
    println!(
        "{:>6} {:>14} {:>18} {:>8} {:>26}",
        "round", "all up Puts/s", "one down Puts/s", "ratio", "bytes to down / heartbeat"
    );
    let (mut up_total, mut down_total) = (0.0, 0.0);
    for round in 1..=rounds {
        let up = rate(&puts, secs);
        let lead = cluster.leader();
        let down = (lead + 1) % SERVERS;
        cluster.kill(down);
        let before = cluster.status(lead).expect("leader status");
        let one_down = rate(&puts, secs);
        let after = cluster.status(lead).expect("leader status");
        let per_heartbeat = (after.sent_bytes[down] - before.sent_bytes[down])
            / (after.heartbeats - before.heartbeats).max(1);
        println!(
            "{round:>6} {up:>14.0} {one_down:>18.0} {:>8.2} {per_heartbeat:>26}",
            one_down / up
        );
        up_total += up;
        down_total += one_down;
        cluster.start_server(down);
        // Let it catch up before the next all-up phase.
        while cluster
            .status(down)
            .zip(cluster.status(lead))
            .is_none_or(|(d, l)| d.commit_index + 100 < l.commit_index)
        {
            thread::sleep(Duration::from_millis(50));
        }
    }
    println!(
        "over {rounds} rounds: {:.0} vs {:.0} Puts/s, ratio {:.2}",
        up_total / rounds as f64,
        down_total / rounds as f64,
        down_total / up_total
    );
    stop.store(true, Ordering::Relaxed);
    for clerk in clerks {
        clerk.join().expect("clerk");
    }
}
