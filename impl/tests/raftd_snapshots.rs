//! raftd with log compaction, end to end: real processes that snapshot their KV store every few
//! entries, a follower that was down while the leader compacted the entries it lacks and must
//! catch up by InstallSnapshot, in chunks, resuming after a lost connection, and restarts from
//! snapshots that lose nothing.

mod launch;

use std::time::Duration;

use launch::Cluster;
use raft_impl::kv::{KvOp, KvReply};
use raft_impl::runtime::clerk::Clerk;
use raft_impl::runtime::protocol::ServerStatus;

const SERVERS: usize = 3;

fn clerk(cluster: &Cluster) -> Clerk {
    Clerk::new(cluster.clients.clone())
        .expect("servers")
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(60))
}

fn put(clerk: &mut Clerk, key: &str, value: &str) {
    let op = KvOp::Put {
        key: key.into(),
        value: value.into(),
    };
    assert_eq!(clerk.execute(op), Ok(KvReply::Done), "put {key}");
}

fn get(clerk: &mut Clerk, key: &str) -> String {
    match clerk.execute(KvOp::Get { key: key.into() }) {
        Ok(KvReply::Value(value)) => value,
        other => panic!("get {key}: {other:?}"),
    }
}

/// Makes `follower` the leader: kills and restarts whoever leads, starting with `leader`, until
/// the election that follows a kill elects it (at most 20 rounds).
fn lead(cluster: &mut Cluster, leader: usize, follower: usize) {
    let mut current = leader;
    for _ in 0..20 {
        cluster.kill(current);
        let next = cluster.leader();
        cluster.start_server(current);
        if next == follower {
            break;
        }
        current = next;
    }
    cluster.wait_for(follower, |s| s.role == raft_impl::Role::Leader);
}

#[test]
fn a_follower_behind_the_leaders_snapshot_catches_up_by_install_snapshot_and_restarts_from_it() {
    let mut cluster = Cluster::start_with(SERVERS, &["--snapshot-every", "5"]);
    let mut clerk = clerk(&cluster);
    put(&mut clerk, "k0", "v0");
    let leader = cluster.leader();
    let follower = (leader + 1) % SERVERS;
    cluster.kill(follower);
    for i in 1..=30 {
        put(&mut clerk, &format!("k{i}"), &format!("v{i}"));
    }
    let compacted = cluster.wait_for(leader, |s| s.snapshot_index >= 25);
    assert!(
        compacted.log_entries < 10,
        "the leader's log was compacted: {compacted:?}"
    );
    cluster.start_server(follower);
    // It lacks entries the leader no longer holds: only a snapshot can bring it up to date.
    let caught_up = cluster.wait_for(follower, |s| {
        s.commit_index >= compacted.log_len && s.installed_snapshots > 0
    });
    assert_eq!(caught_up.refused_snapshots, 0);
    // The follower's store is the leader's: once it leads (leaders are stopped until it does),
    // its reads return every write.
    lead(&mut cluster, leader, follower);
    for i in 0..=30 {
        assert_eq!(get(&mut clerk, &format!("k{i}")), format!("v{i}"));
    }
    put(&mut clerk, "after", "x");
    // A restart of every server starts from its snapshot and loses nothing.
    for id in 0..SERVERS {
        cluster.stop(id);
    }
    for id in 0..SERVERS {
        cluster.start_server(id);
    }
    let restarted = cluster.wait_for(follower, |s| s.snapshot_index > 0);
    assert!(restarted.log_entries < 10, "{restarted:?}");
    for i in 0..=30 {
        assert_eq!(get(&mut clerk, &format!("k{i}")), format!("v{i}"));
    }
    assert_eq!(get(&mut clerk, "after"), "x");
}

/// Keys of the chunked-transfer tests, each of [`VALUE_BYTES`]: a 4 MiB store.
const KEYS: usize = 32;
const VALUE_BYTES: usize = 128 << 10;

/// Writes `k0`, then, with a follower killed, the [`KEYS`] large values until the leader has
/// compacted past them; restarts the follower, which only a snapshot can bring up to date.
/// Returns the leader, the follower and the leader's status once compacted.
fn left_behind(cluster: &mut Cluster, clerk: &mut Clerk) -> (usize, usize, ServerStatus) {
    put(clerk, "k0", "v0");
    let leader = cluster.leader();
    let follower = (leader + 1) % SERVERS;
    cluster.kill(follower);
    for i in 1..=KEYS {
        put(clerk, &format!("k{i}"), &value(i, VALUE_BYTES));
    }
    let compacted = cluster.wait_for(leader, |s| s.snapshot_index >= KEYS as u64 - 5);
    cluster.start_server(follower);
    (leader, follower, compacted)
}

/// A value of `len` bytes that differs by key, so that a snapshot cannot hold two keys' alike.
fn value(i: usize, len: usize) -> String {
    let digits = format!("{i:04}");
    digits.repeat(len / digits.len())
}

/// A snapshot of 4 MiB in chunks of 4 KiB: a follower that must catch up by InstallSnapshot
/// gets it in a thousand chunks. The follower is stopped (SIGSTOP) while it holds part of the
/// transfer, long enough for the leader to give up on its connection; once continued, it holds
/// what it had, the leader's next connection resumes from there (the status counts the
/// resumption, and the partial bytes never go back to 0), and the follower installs the whole
/// store and reads every key back once it leads.
#[test]
fn a_snapshot_in_chunks_resumes_after_the_connection_is_lost_and_installs_whole() {
    let mut cluster = Cluster::start_with(
        SERVERS,
        &["--snapshot-every", "5", "--snapshot-chunk-bytes", "4096"],
    );
    let mut clerk = clerk(&cluster);
    let (leader, follower, compacted) = left_behind(&mut cluster, &mut clerk);
    // As soon as the follower holds part of the snapshot, stop it for longer than the leader
    // waits for an acknowledgement.
    let mut partial = None;
    for _ in 0..60_000 {
        if let Some(s) = cluster
            .status(follower)
            .filter(|s| s.snapshot_bytes_held > 0)
        {
            cluster.signal(follower, "STOP");
            partial = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let partial = partial.unwrap_or_else(|| panic!("no transfer seen: {}", cluster.logs()));
    assert_eq!(partial.installed_snapshots, 0, "{partial:?}");
    std::thread::sleep(Duration::from_secs(3));
    cluster.signal(follower, "CONT");
    let caught_up = cluster.wait_for(follower, |s| {
        s.commit_index >= compacted.log_len && s.installed_snapshots > 0
    });
    // One transfer, of the leader's latest snapshot: the older ones the core asked for while
    // the follower was down gave way to it, as none of them had begun.
    assert_eq!(
        (
            caught_up.installed_snapshots,
            caught_up.refused_snapshots,
            caught_up.refused_chunks
        ),
        (1, 0, 0),
        "{caught_up:?}\n{}",
        cluster.logs()
    );
    assert!(
        caught_up.resumed_transfers > 0,
        "the transfer resumed on a new connection: {caught_up:?}\n{}",
        cluster.logs()
    );
    // The follower's store is the leader's: once it leads, its reads return every write.
    lead(&mut cluster, leader, follower);
    assert_eq!(get(&mut clerk, "k0"), "v0");
    for i in 1..=KEYS {
        assert_eq!(
            get(&mut clerk, &format!("k{i}")),
            value(i, VALUE_BYTES),
            "k{i}"
        );
    }
}

/// A transfer far longer than an election timeout (4 MiB in chunks of 1 KiB) with PreVote off:
/// the leader's heartbeats reach the follower's core throughout (the snapshot's resends are sent
/// as heartbeats), so its election timer never fires, the leader's term does not change, and
/// the follower installs the snapshot once. When the resends were dropped during a transfer,
/// the follower stood for election, the leader was deposed and the transfer began again.
#[test]
fn a_long_transfer_without_pre_vote_keeps_the_leader_and_installs_once() {
    let mut cluster = Cluster::start_with(
        SERVERS,
        &[
            "--snapshot-every",
            "5",
            "--snapshot-chunk-bytes",
            "1024",
            "--no-pre-vote",
        ],
    );
    let mut clerk = clerk(&cluster);
    let (leader, follower, compacted) = left_behind(&mut cluster, &mut clerk);
    let caught_up = cluster.wait_for(follower, |s| {
        s.commit_index >= compacted.log_len && s.installed_snapshots > 0
    });
    let after = cluster.wait_for(leader, |_| true);
    assert_eq!(
        (after.role, after.term),
        (raft_impl::Role::Leader, compacted.term),
        "the leader kept its term: {after:?}\n{}",
        cluster.logs()
    );
    assert_eq!(
        (caught_up.term, caught_up.installed_snapshots),
        (compacted.term, 1),
        "{caught_up:?}\n{}",
        cluster.logs()
    );
}

/// A chunk size of 0, or over `MAX_SNAPSHOT_CHUNK_BYTES` (which a receiver would refuse), is a
/// bad argument (exit code 2, the typed error's message); 1 and the maximum start a server.
#[test]
fn a_snapshot_chunk_size_out_of_range_is_a_bad_argument() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let over = (raft_impl::limits::MAX_SNAPSHOT_CHUNK_BYTES + 1).to_string();
    for bytes in ["0", over.as_str()] {
        let out = launch::raftd(&[
            "--id",
            "0",
            "--peers",
            "127.0.0.1:1,127.0.0.1:2",
            "--client-addr",
            "127.0.0.1:3",
            "--data-dir",
            data,
            "--insecure",
            "--snapshot-chunk-bytes",
            bytes,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bytes}: {stderr}");
        assert!(
            stderr.contains(&format!("snapshot chunks of {bytes} bytes")),
            "{stderr}"
        );
    }
    for bytes in [
        "1",
        &raft_impl::limits::MAX_SNAPSHOT_CHUNK_BYTES.to_string(),
    ] {
        let cluster = Cluster::start_with(1, &["--snapshot-chunk-bytes", bytes]);
        let mut clerk = clerk(&cluster);
        put(&mut clerk, "k", bytes);
        assert_eq!(get(&mut clerk, "k"), bytes);
    }
}
