//! End to end: real `raftd` processes on 127.0.0.1, real clerks, real crashes.
//!
//! Three servers run while four clerks issue Put / Append / Get; the leader is killed with
//! SIGKILL mid-run and restarted from its data directory, then the whole cluster is killed and
//! restarted. Afterwards, every acknowledged Append must be in the final value exactly once,
//! and the clients' history must be linearizable (`raft_lincheck`). The verdict depends
//! on no timing: clerks retry until they are answered, and an operation that is never answered
//! stays pending in the history, where it may or may not have taken effect.
//!
//! Also here: bad arguments exit with code 2, a corrupt write-ahead log or a data directory of
//! the older format stops `raftd` with an error naming the file, and a malformed frame closes
//! only the connection it came on.

mod launch;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use launch::{raftd, Cluster};
use raft_impl::kv::{ClientId, KvOp, KvReply};
use raft_impl::runtime::clerk::Clerk;
use raft_lincheck::{check_history, Outcome, Recorder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SERVERS: usize = 3;
const CLERKS: u64 = 4;
/// Keys that only ever see Appends and Gets: each appended token must end up in them once.
const APPEND_KEYS: [&str; 2] = ["a0", "a1"];
/// A key that also sees Puts, for the linearizability check.
const MIXED_KEY: &str = "m";
/// How long a workload clerk retries one request before it gives up on it (it stays pending
/// and the clerk goes on as another client of the history). Generous: only a cluster that stays without a
/// leader for this long makes a clerk give up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);

/// What all clerks record: the history for the linearizability check, and the tokens appended
/// to the append-only keys.
struct Journal {
    epoch: Instant,
    history: Mutex<Recorder>,
    /// Every token appended to an append-only key, and whether its Append was acknowledged.
    appends: Mutex<HashMap<String, bool>>,
}

impl Journal {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// A clerk whose every operation goes into the journal. When an outcome is unknown, the
/// operation stays pending and the clerk goes on as a new client of the history (which allows
/// one operation in flight per client).
struct RecordingClerk {
    clerk: Clerk,
    journal: Arc<Journal>,
    /// Who the clerk is in the history.
    client: ClientId,
}

impl RecordingClerk {
    fn new(journal: Arc<Journal>, servers: Vec<SocketAddr>, give_up_after: Duration) -> Self {
        let clerk = Clerk::new(servers)
            .expect("servers")
            .with_timeouts(Duration::from_secs(1), give_up_after);
        let client = rand::random();
        RecordingClerk {
            clerk,
            journal,
            client,
        }
    }

    fn execute(&mut self, op: KvOp) -> Option<KvReply> {
        let client = self.client;
        {
            let mut history = self.journal.history.lock().unwrap();
            history
                .invoke(client, op.clone().into(), self.journal.now())
                .expect("invoke");
        }
        match self.clerk.execute(op) {
            Ok(reply) => {
                let mut history = self.journal.history.lock().unwrap();
                history
                    .complete(client, reply.clone().into(), self.journal.now())
                    .expect("complete");
                Some(reply)
            }
            Err(unknown) if unknown.outcome_unknown() => {
                eprintln!("{unknown}; it stays pending");
                self.client = rand::random();
                None
            }
            Err(refused) => panic!("a clerk's request was refused: {refused}"),
        }
    }

    fn get(&mut self, key: &str) -> Option<String> {
        match self.execute(KvOp::Get { key: key.into() })? {
            KvReply::Value(value) => Some(value),
            KvReply::Absent => Some(String::new()),
            other => panic!("a Get answered {other:?}"),
        }
    }
}

/// One workload clerk: random operations until `stop`, the append-only keys' tokens unique.
fn workload(seed: u64, journal: Arc<Journal>, servers: Vec<SocketAddr>, stop: Arc<AtomicBool>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut clerk = RecordingClerk::new(journal.clone(), servers, GIVE_UP_AFTER);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let value = format!("{seed}.{n};");
        let roll = rng.random_range(0..10);
        let key = if roll < 6 {
            APPEND_KEYS[rng.random_range(0..APPEND_KEYS.len())]
        } else {
            MIXED_KEY
        };
        let op = match roll {
            0..=3 => KvOp::Append {
                key: key.into(),
                value: value.clone(),
            },
            4..=6 => KvOp::Get { key: key.into() },
            7 => KvOp::Put {
                key: key.into(),
                value,
            },
            _ => KvOp::Append {
                key: key.into(),
                value,
            },
        };
        let appended = match &op {
            KvOp::Append { key, value } if APPEND_KEYS.contains(&key.as_str()) => {
                journal.appends.lock().unwrap().insert(value.clone(), false);
                Some(value.clone())
            }
            _ => None,
        };
        if clerk.execute(op).is_some() {
            if let Some(token) = appended {
                journal.appends.lock().unwrap().insert(token, true);
            }
        }
    }
}

/// The client port of a live server answers garbage by closing the connection, and goes on
/// serving others.
fn send_garbage(to: SocketAddr) {
    let mut stream = launch::connect(to);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // A frame of a kind the server does not expect on this port. The server refuses it on its
    // header, without reading the payload, so closing with "junk" unread may reset the
    // connection rather than end it cleanly: either way, not one byte comes back.
    stream
        .write_all(b"RCMS\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00junk")
        .expect("write");
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    let reset = |e: &std::io::Error| e.kind() == std::io::ErrorKind::ConnectionReset;
    assert!(
        matches!(&closed, Ok(0)) || matches!(&closed, Err(e) if reset(e)) && rest.is_empty(),
        "the server answered garbage with {closed:?} {rest:?}"
    );
}

#[test]
fn a_real_cluster_survives_kills_and_restarts_and_stays_linearizable() {
    kills_and_restarts(&[], false);
}

/// The same with log compaction every 20 applied entries, and a follower killed for long
/// enough that the leader compacts away what it lacks: it must catch up by InstallSnapshot
/// (its status says it installed one) while the clerks go on, before everyone is killed and
/// restarted from their snapshots.
#[test]
fn with_compaction_a_real_cluster_survives_kills_and_a_follower_catches_up_by_snapshot() {
    kills_and_restarts(&["--snapshot-every", "20"], true);
}

/// Clerks run a workload of Appends and Gets while the leader is killed and restarted, then
/// (with `follower_behind`) a follower is killed while the leader compacts past it and
/// restarted, then every server is killed and restarted; no acknowledged Append may be lost or
/// applied twice, and the whole history must be linearizable.
fn kills_and_restarts(options: &[&str], follower_behind: bool) {
    let mut cluster = Cluster::start_with(SERVERS, options);
    let journal = Arc::new(Journal {
        epoch: Instant::now(),
        history: Mutex::new(Recorder::new()),
        appends: Mutex::new(HashMap::new()),
    });
    let servers = cluster.clients.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let clerks: Vec<_> = (0..CLERKS)
        .map(|seed| {
            let (journal, servers, stop) = (journal.clone(), servers.clone(), stop.clone());
            thread::spawn(move || workload(seed, journal, servers, stop))
        })
        .collect();
    let mut probe = RecordingClerk::new(journal.clone(), servers.clone(), Duration::from_secs(60));

    thread::sleep(Duration::from_millis(1500));
    send_garbage(cluster.clients[0]);
    // The server that applies a Get leads (or led a moment ago): kill it mid-run.
    probe
        .get(MIXED_KEY)
        .unwrap_or_else(|| panic!("no leader elected\n{}", cluster.logs()));
    let leader = probe.clerk.leader();
    cluster.kill(leader);
    thread::sleep(Duration::from_millis(500));
    cluster.start_server(leader);

    thread::sleep(Duration::from_millis(2000));
    if follower_behind {
        follower_catches_up_by_snapshot(&mut cluster, &mut probe);
    }
    for id in 0..SERVERS {
        cluster.kill(id);
    }
    thread::sleep(Duration::from_millis(300));
    for id in 0..SERVERS {
        cluster.start_server(id);
    }
    thread::sleep(Duration::from_millis(2000));
    stop.store(true, Ordering::Relaxed);
    for clerk in clerks {
        clerk.join().expect("workload clerk panicked");
    }

    let mut finals = HashMap::new();
    for key in APPEND_KEYS.iter().chain([&MIXED_KEY]) {
        let value = probe
            .get(key)
            .unwrap_or_else(|| panic!("final Get of {key} failed\n{}", cluster.logs()));
        finals.insert(key.to_string(), value);
    }
    for id in 0..SERVERS {
        cluster.kill(id);
    }
    let logs = cluster.logs();
    drop(cluster);
    assert!(
        logs.contains("closing client connection"),
        "garbage was not logged\n{logs}"
    );

    // (a) Every acknowledged Append is in the final value exactly once; no token twice.
    let appends = journal.appends.lock().unwrap().clone();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for key in APPEND_KEYS {
        for token in finals[key].split_inclusive(';') {
            assert!(appends.contains_key(token), "{key} holds unknown {token:?}");
            *seen.entry(token).or_default() += 1;
        }
    }
    let acknowledged: Vec<&String> = appends
        .iter()
        .filter(|(_, a)| **a)
        .map(|(t, _)| t)
        .collect();
    assert!(
        !acknowledged.is_empty(),
        "no Append was acknowledged\n{logs}"
    );
    for (token, count) in &seen {
        assert_eq!(*count, 1, "{token:?} applied {count} times\n{logs}");
    }
    for token in &acknowledged {
        assert!(
            seen.contains_key(token.as_str()),
            "acknowledged append {token:?} lost\n{logs}"
        );
    }

    // (b) The whole history is linearizable.
    let history = std::mem::take(&mut *journal.history.lock().unwrap()).finish();
    let report = check_history(&history, Duration::from_secs(60));
    if report.outcome != Outcome::Linearizable {
        let saved = save_history(&history.to_jsonl());
        panic!(
            "{report}\nhistory saved to {} (raftcheck lincheck {0} --html out.html)\n{logs}",
            saved.display()
        );
    }
    // Seen with --nocapture: what the servers went through.
    eprintln!(
        "{logs}killed leader {leader}, then all; {report}; {} acknowledged appends of {}",
        acknowledged.len(),
        appends.len()
    );
}

/// Kills a follower of the current leader until the leader's snapshot is past the follower's
/// log (the clerks keep writing), restarts it and waits until it installed a snapshot.
fn follower_catches_up_by_snapshot(cluster: &mut Cluster, probe: &mut RecordingClerk) {
    let status = |cluster: &Cluster, id: usize| {
        raft_impl::runtime::clerk::status(cluster.clients[id], Duration::from_secs(2)).ok()
    };
    probe.get(MIXED_KEY).unwrap_or_else(|| {
        panic!(
            "no leader
{}",
            cluster.logs()
        )
    });
    let leader = probe.clerk.leader();
    let follower = (leader + 1) % SERVERS;
    let behind = status(cluster, follower).map_or(0, |s| s.log_len);
    cluster.kill(follower);
    let compacted_past = |cluster: &Cluster| {
        (0..SERVERS).any(|id| status(cluster, id).is_some_and(|s| s.snapshot_index > behind + 1))
    };
    for _ in 0..200 {
        if compacted_past(cluster) {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    cluster.start_server(follower);
    for _ in 0..300 {
        if status(cluster, follower).is_some_and(|s| s.installed_snapshots > 0) {
            return;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "follower {follower} did not catch up by snapshot
{}",
        cluster.logs()
    );
}

/// Keeps a failing history where it outlives the test's temporary directories.
fn save_history(jsonl: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("raftd-history-{}.jsonl", std::process::id()));
    fs::write(&path, jsonl).expect("save history");
    path
}

#[test]
fn bad_arguments_exit_with_code_2() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().expect("utf-8 path");
    let peers = "127.0.0.1:1,127.0.0.1:2";
    let server = |id, peers, client| {
        vec![
            "--id",
            id,
            "--peers",
            peers,
            "--client-addr",
            client,
            "--data-dir",
            data,
            "--insecure",
        ]
    };
    for args in [
        server("2", peers, "127.0.0.1:3"),       // no such server
        server("0", "localhost", "127.0.0.1:3"), // not an address
        server("0", peers, "127.0.0.1:1"),       // client address taken by a peer
        vec![
            "--id",
            "0",
            "--peers",
            peers,
            "--data-dir",
            data,
            "--insecure",
        ], // no client address
        server("0", peers, "127.0.0.1:3")[..8].to_vec(), // neither a secret nor --insecure
    ] {
        let out = raftd(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
}

/// `raftd --id 0` of a one-server cluster on unused ports, keeping its state in `data`, with
/// `extra` arguments: run to completion, for starts it must refuse.
fn refused_single_server(data: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let mut args = vec![
        "--id",
        "0",
        "--peers",
        "127.0.0.1:1",
        "--client-addr",
        "127.0.0.1:2",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--insecure",
    ];
    args.extend_from_slice(extra);
    let out = raftd(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code(), stderr)
}

/// The whole-state file of the build before the write-ahead log is neither read nor replaced
/// by an empty log: either would forget the server's term, vote and log.
#[test]
fn a_data_directory_of_the_older_format_is_refused_naming_its_state_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("raft-state");
    let old = b"RCHS\x01\x00\x05\x00\x00\x00\x00\x00\x00\x00hello";
    File::create(&state)
        .and_then(|mut f| f.write_all(old))
        .expect("write state");
    for extra in [&[][..], &["--bootstrap"]] {
        let (code, stderr) = refused_single_server(dir.path(), extra);
        assert_eq!(code, Some(1), "{extra:?}: {stderr}");
        assert!(
            stderr.contains("older build") && stderr.contains(&state.display().to_string()),
            "{extra:?}: {stderr}"
        );
    }
    assert_eq!(fs::read(&state).expect("state"), old, "left alone");
    assert_eq!(
        fs::read_dir(dir.path()).expect("dir").count(),
        1,
        "nothing created"
    );
}

/// A byte flipped in the first record of a server's log, with good records after it, is
/// corruption (not a torn write to drop): the server stops with an error naming the file.
#[test]
fn a_corrupt_write_ahead_log_is_an_error_naming_it() {
    let mut cluster = Cluster::start(1);
    let mut clerk = Clerk::new(cluster.clients.clone()).expect("servers");
    for value in ["a", "b", "c"] {
        let put = KvOp::Put {
            key: "k".into(),
            value: value.into(),
        };
        assert_eq!(clerk.execute(put), Ok(KvReply::Done));
    }
    cluster.kill(0);
    let data = cluster.data_dir(0);
    let segment = fs::read_dir(&data)
        .expect("data dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a segment");
    let mut bytes = fs::read(&segment).expect("segment");
    bytes[8] ^= 0x40;
    fs::write(&segment, &bytes).expect("flip a byte");

    let (code, stderr) = cluster.refused_start(0, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("corrupt write-ahead log")
            && stderr.contains(&segment.display().to_string()),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(fs::read(&segment).expect("segment"), bytes, "left alone");
}
