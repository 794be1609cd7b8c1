//! End to end: real `raftd` processes on 127.0.0.1, real clerks, real crashes.
//!
//! Three servers run while four clerks issue Put / Append / Get; the leader is killed with
//! SIGKILL mid-run and restarted from its data directory, then the whole cluster is killed and
//! restarted. Afterwards, every acknowledged Append must be in the final value exactly once,
//! and the clients' history must be linearizable (`raft_lincheck`). The verdict depends
//! on no timing: clerks retry until they are answered, and an operation that is never answered
//! stays pending in the history, where it may or may not have taken effect.
//!
//! Also here: bad arguments exit with code 2, a corrupt state file stops `raftd` with an error
//! naming it, and a malformed frame closes only the connection it came on.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use raft_impl::kv::{ClientId, KvOp, KvReply};
use raft_impl::runtime::clerk::Clerk;
use raft_lincheck::{check_history, Outcome, Recorder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tempfile::TempDir;

const RAFTD: &str = env!("CARGO_BIN_EXE_raftd");
const SERVERS: usize = 3;
const CLERKS: u64 = 4;
/// Keys that only ever see Appends and Gets: each appended token must end up in them once.
const APPEND_KEYS: [&str; 2] = ["a0", "a1"];
/// A key that also sees Puts, for the linearizability check.
const MIXED_KEY: &str = "m";
/// How long a workload clerk retries one request before it gives up on it (it stays pending
/// and the clerk goes on under a new client id). Generous: only a cluster that stays without a
/// leader for this long makes a clerk give up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(15);

/// Addresses below the kernel's ephemeral port range, so that no outgoing connection can hold
/// the port of a server that is down when it restarts.
fn free_ports(count: usize) -> Vec<u16> {
    let mut rng = rand::rng();
    loop {
        let base: u16 = rng.random_range(20_000..32_000);
        let ports: Vec<u16> = (base..base + count as u16).collect();
        if ports
            .iter()
            .all(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        {
            return ports;
        }
    }
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Three `raftd` processes, each with its data directory and its log file (every incarnation's
/// standard error, appended). Dropping the cluster kills what still runs.
struct Cluster {
    dir: TempDir,
    peers: Vec<SocketAddr>,
    clients: Vec<SocketAddr>,
    running: Vec<Option<Child>>,
}

impl Cluster {
    fn start() -> Cluster {
        let ports = free_ports(2 * SERVERS);
        let mut cluster = Cluster {
            dir: tempfile::tempdir().expect("temp dir"),
            peers: ports[..SERVERS].iter().copied().map(addr).collect(),
            clients: ports[SERVERS..].iter().copied().map(addr).collect(),
            running: (0..SERVERS).map(|_| None).collect(),
        };
        for id in 0..SERVERS {
            cluster.start_server(id);
        }
        cluster
    }

    fn log_path(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("raftd-{id}.log"))
    }

    fn start_server(&mut self, id: usize) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("log file");
        let child = Command::new(RAFTD)
            .arg("--id")
            .arg(id.to_string())
            .arg("--peers")
            .arg(list(&self.peers))
            .arg("--client-addr")
            .arg(self.clients[id].to_string())
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("data-{id}")))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start raftd");
        self.running[id] = Some(child);
    }

    /// SIGKILL: no chance to flush or say goodbye. The server must still be running: one that
    /// exited on its own has failed.
    fn kill(&mut self, id: usize) {
        if let Some(status) = self.stop(id) {
            panic!("raftd {id} exited on its own ({status})\n{}", self.logs());
        }
    }

    /// Kills server `id` if it runs; what it exited with if it had already exited.
    fn stop(&mut self, id: usize) -> Option<ExitStatus> {
        let mut child = self.running[id].take()?;
        let exited = child.try_wait().expect("poll raftd");
        if exited.is_none() {
            child.kill().expect("kill raftd");
            child.wait().expect("reap raftd");
        }
        exited
    }

    fn logs(&self) -> String {
        (0..SERVERS)
            .map(|id| {
                let log = fs::read_to_string(self.log_path(id)).unwrap_or_default();
                format!("--- raftd {id} ---\n{log}")
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..SERVERS {
            self.stop(id);
        }
    }
}

/// What all clerks record: the history for the linearizability check, and the tokens appended
/// to the append-only keys.
struct Journal {
    epoch: Instant,
    history: Mutex<Recorder>,
    /// Every token appended to an append-only key, and whether its Append was acknowledged.
    appends: Mutex<HashMap<String, bool>>,
    next_client: AtomicU64,
}

impl Journal {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// A clerk whose every operation goes into the journal. When its clerk gives up, the pending
/// operation stays pending and a new clerk with a fresh client id takes over.
struct RecordingClerk {
    clerk: Clerk,
    journal: Arc<Journal>,
    servers: Vec<SocketAddr>,
    give_up_after: Duration,
}

impl RecordingClerk {
    fn new(journal: Arc<Journal>, servers: Vec<SocketAddr>, give_up_after: Duration) -> Self {
        let clerk = new_clerk(&journal, &servers, give_up_after);
        RecordingClerk {
            clerk,
            journal,
            servers,
            give_up_after,
        }
    }

    fn execute(&mut self, op: KvOp) -> Option<KvReply> {
        let client: ClientId = self.clerk.client();
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
            Err(gave_up) => {
                eprintln!("{gave_up}; continuing under a new client id");
                self.clerk = new_clerk(&self.journal, &self.servers, self.give_up_after);
                None
            }
        }
    }

    fn get(&mut self, key: &str) -> Option<String> {
        match self.execute(KvOp::Get { key: key.into() })? {
            KvReply::Value(value) => Some(value),
            KvReply::Done => panic!("a Get answered Done"),
        }
    }
}

/// A clerk with a client id never used before.
fn new_clerk(journal: &Journal, servers: &[SocketAddr], give_up_after: Duration) -> Clerk {
    let id = journal.next_client.fetch_add(1, Ordering::Relaxed);
    Clerk::new(id, servers.to_vec())
        .expect("servers")
        .with_timeouts(Duration::from_secs(1), give_up_after)
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
    let start = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(to) {
            Ok(stream) => break stream,
            Err(e) if start.elapsed() > Duration::from_secs(30) => panic!("connect to {to}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    // A frame of a kind the server does not expect on this port, whole: had the server left
    // bytes unread, closing would reset the connection instead.
    stream
        .write_all(b"RCMS\x01\x00\x04\x00\x00\x00\x00\x00\x00\x00junk")
        .expect("write");
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(
        matches!(closed, Ok(0)),
        "the server answered garbage with {closed:?} {rest:?}"
    );
}

#[test]
fn a_real_cluster_survives_kills_and_restarts_and_stays_linearizable() {
    let mut cluster = Cluster::start();
    let journal = Arc::new(Journal {
        epoch: Instant::now(),
        history: Mutex::new(Recorder::new()),
        appends: Mutex::new(HashMap::new()),
        next_client: AtomicU64::new(1),
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

/// Keeps a failing history where it outlives the test's temporary directories.
fn save_history(jsonl: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("raftd-history-{}.jsonl", std::process::id()));
    fs::write(&path, jsonl).expect("save history");
    path
}

fn raftd(args: &[&str]) -> Output {
    Command::new(RAFTD).args(args).output().expect("run raftd")
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
        ]
    };
    for args in [
        server("2", peers, "127.0.0.1:3"),       // no such server
        server("0", "localhost", "127.0.0.1:3"), // not an address
        server("0", peers, "127.0.0.1:1"),       // client address taken by a peer
        vec!["--id", "0", "--peers", peers, "--data-dir", data], // no client address
    ] {
        let out = raftd(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
}

#[test]
fn a_corrupt_state_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("raft-state");
    File::create(&state)
        .and_then(|mut f| f.write_all(b"RCHS\x01\x00\x05\x00\x00\x00\x00\x00\x00\x00hello"))
        .expect("write state");
    let out = raftd(&[
        "--id",
        "0",
        "--peers",
        "127.0.0.1:1",
        "--client-addr",
        "127.0.0.1:2",
        "--data-dir",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("corrupt") && stderr.contains(&state.display().to_string()),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(state.exists(), "the state file must be left alone");
}
