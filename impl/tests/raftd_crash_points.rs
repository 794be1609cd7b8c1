//! Crashes placed exactly inside a snapshot write of a real `raftd`: for each of the six crash
//! points of the write-ahead log ([`CrashPoint::ALL`]: the snapshot's temporary file written,
//! renamed, the directory synced, the install record durable, the old segments purged, the old
//! snapshot files deleted), on the leader taking its own snapshot, on a follower taking its own,
//! and on a follower installing the snapshot the leader sent it after it was down while the
//! leader compacted past its log.
//!
//! The test arms the point in the chosen server while the cluster runs, through the crash hook
//! of the `failpoints` build (`runtime::crash_hook`: a file in its data directory naming the
//! point), and writes Appends of unique tokens through a clerk until the server exits with the
//! hook's exit code and its log names the point. Then, on a copy of the dead server's directory
//! (so that the restart still meets the directory as the crash left it), it recovers the log as
//! a restart does and checks where the crash was placed: the recovered snapshot is the new one
//! exactly when the point is at or past the durable install record, a server's own snapshot
//! never loses the entries it covers, and a leader's recovered log holds every Append it
//! acknowledged, once. It restarts the server without the hook, which must start, catch up and
//! let the cluster go on serving. At the end every server's recovered store, up to the final
//! commit index, holds every acknowledged token exactly once (a token whose outcome the clerk
//! could not learn at most once), as the cluster's read does. A failpoint file that names no
//! point stops the server with an error naming the file.

mod launch;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use launch::{Cluster, PATIENCE};
use raft_impl::kv::{KvCommand, KvOp, KvReply, KvStore};
use raft_impl::runtime::clerk::Clerk;
use raft_impl::runtime::crash_hook::{CRASHED_EXIT_CODE, FAILPOINT_FILE};
use raft_impl::storage::wal::CrashPoint;
use raft_impl::storage::{FileWal, WalOptions};
use raft_impl::{HardState, Index};

const SERVERS: usize = 3;
/// Snapshots every few entries, so that each crash point is reached after a few Appends.
const SNAPSHOT_EVERY: u64 = 8;
/// The key every token is appended to.
const KEY: &str = "tokens";
/// Appends written at most while waiting for a server to reach its next snapshot: many times
/// what it takes.
const MAX_APPENDS: usize = 20 * SNAPSHOT_EVERY as usize;

/// A clerk appending unique tokens to [`KEY`], and what became of each.
struct Appends {
    clerk: Clerk,
    next: u64,
    /// Acknowledged: each must be in the store exactly once.
    acked: Vec<String>,
    /// Of unknown outcome (the clerk gave up): each at most once.
    unknown: Vec<String>,
}

impl Appends {
    fn new(cluster: &Cluster) -> Appends {
        let clerk = Clerk::new(cluster.clients.clone())
            .expect("servers")
            .with_timeouts(Duration::from_secs(1), PATIENCE);
        Appends {
            clerk,
            next: 0,
            acked: Vec::new(),
            unknown: Vec::new(),
        }
    }

    fn append(&mut self) {
        self.next += 1;
        let token = format!("t{}", self.next);
        let op = KvOp::Append {
            key: KEY.into(),
            value: format!("{token};"),
        };
        match self.clerk.execute(op) {
            Ok(KvReply::Done) => self.acked.push(token),
            Err(e) if e.outcome_unknown() => self.unknown.push(token),
            other => panic!("append {token}: {other:?}"),
        }
    }

    /// The cluster's value of [`KEY`], read through the log.
    fn read(&mut self) -> String {
        match self.clerk.execute(KvOp::Get { key: KEY.into() }) {
            Ok(KvReply::Value(value)) => value,
            other => panic!("get {KEY}: {other:?}"),
        }
    }

    /// Checks that `value` holds every acknowledged token once, every token of unknown outcome
    /// at most once, and nothing else.
    fn check_exactly_once(&self, value: &str, whose: &str) {
        let tokens = tokens(value);
        for token in &self.acked {
            let count = tokens.iter().filter(|t| *t == token).count();
            assert_eq!(
                count, 1,
                "{whose}: acknowledged {token} is there {count} times"
            );
        }
        for token in &tokens {
            assert!(
                self.acked.contains(token) || self.unknown.contains(token),
                "{whose}: {token} was never sent"
            );
        }
        assert_distinct(&tokens, whose);
    }
}

fn tokens(value: &str) -> Vec<String> {
    value
        .split(';')
        .filter(|t| !t.is_empty())
        .map(String::from)
        .collect()
}

fn assert_distinct(tokens: &[String], whose: &str) {
    for (i, token) in tokens.iter().enumerate() {
        assert!(
            !tokens[..i].contains(token),
            "{whose}: {token} applied twice"
        );
    }
}

/// What a restart of a server recovers from its data directory: the log's state, opened as
/// `raftd` opens it, on a copy (opening cuts torn writes and deletes dead files).
struct Recovered {
    state: HardState<KvCommand>,
}

impl Recovered {
    fn from(dir: &Path) -> Recovered {
        let copy = tempfile::tempdir().expect("temp dir");
        for entry in fs::read_dir(dir).expect("read data dir") {
            let entry = entry.expect("entry");
            if entry.file_name() != FAILPOINT_FILE {
                fs::copy(entry.path(), copy.path().join(entry.file_name())).expect("copy");
            }
        }
        let (_, state) = FileWal::<KvCommand>::open(copy.path(), WalOptions::default())
            .unwrap_or_else(|e| panic!("{} does not recover: {e}", dir.display()));
        Recovered { state }
    }

    /// [`KEY`]'s value in the store this state holds after its entries up to `upto` are
    /// applied: its snapshot's store, restored as `raftd` restores it, then the entries.
    fn value_at(&self, upto: Index) -> String {
        let mut kv = match &self.state.snapshot {
            Some(snapshot) => KvStore::default()
                .restored(&snapshot.data)
                .expect("the snapshot is a KV store"),
            None => KvStore::default(),
        };
        let first = self.state.snapshot_index() + 1;
        for (index, entry) in (first..=upto).zip(&self.state.log) {
            // The outcome is the reply to a client, which no one waits for here.
            let _ = kv.apply(index, &entry.command);
        }
        kv.get(KEY)
    }
}

/// Arms `point` in server `id`: its next snapshot stops there.
fn arm(cluster: &Cluster, id: usize, point: CrashPoint) {
    fs::write(cluster.data_dir(id).join(FAILPOINT_FILE), point.name()).expect("arm");
}

fn disarm(cluster: &Cluster, id: usize) {
    fs::remove_file(cluster.data_dir(id).join(FAILPOINT_FILE)).expect("disarm");
}

/// Checks that server `id` exited at `point` (its exit code and its log's last line of the
/// hook, not some other failure), and returns the index of the snapshot it was writing.
fn crashed_at(cluster: &Cluster, id: usize, code: Option<i32>, point: CrashPoint) -> Index {
    let log = fs::read_to_string(cluster.log_path(id)).expect("log");
    let said = "crashed on purpose at crash point ";
    let line = log.lines().rev().find(|line| line.contains(said));
    assert_eq!(
        code,
        Some(CRASHED_EXIT_CODE),
        "raftd {id} did not stop at {point:?}: {}",
        cluster.logs()
    );
    let line = line.unwrap_or_else(|| panic!("raftd {id} left no crash line: {log}"));
    let rest = &line[line.find(said).expect("found") + said.len()..];
    let (name, index) = rest
        .split_once(" while writing the snapshot at index ")
        .unwrap_or_else(|| panic!("unexpected line {line}"));
    assert_eq!(name, point.name(), "{line}");
    index.parse().expect("an index")
}

/// Where the crash at `point` of the snapshot at `index` leaves the recovered state: the new
/// snapshot once its install record is durable, the one before until then.
fn check_placed(recovered: &Recovered, point: CrashPoint, index: Index, whose: &str) {
    let snapshot = recovered.state.snapshot_index();
    if point >= CrashPoint::InstallDurable {
        assert_eq!(
            snapshot, index,
            "{whose} at {point:?}: the install record is durable"
        );
    } else {
        assert!(
            snapshot < index,
            "{whose} at {point:?}: recovered snapshot {snapshot} before its install record"
        );
    }
}

/// Restarts server `id` without the hook and waits until it has caught up with the leader,
/// after the cluster took a few more writes.
fn restart_and_catch_up(cluster: &mut Cluster, appends: &mut Appends, id: usize) {
    disarm(cluster, id);
    cluster.start_server(id);
    for _ in 0..3 {
        appends.append();
    }
    let lead = cluster.leader();
    let commit = cluster.wait_for(lead, |_| true).commit_index;
    cluster.wait_for(id, |s| s.commit_index >= commit);
}

/// Checks every server's recovered store against the acknowledged tokens, once all servers
/// hold the final commit index, and the cluster's read against them too.
fn check_every_server(mut cluster: Cluster, mut appends: Appends) {
    appends.append();
    let value = appends.read();
    appends.check_exactly_once(&value, "the cluster's read");
    let lead = cluster.leader();
    let commit = cluster.wait_for(lead, |_| true).commit_index;
    for id in 0..SERVERS {
        cluster.wait_for(id, |s| s.commit_index >= commit);
    }
    for id in 0..SERVERS {
        cluster.stop(id);
    }
    for id in 0..SERVERS {
        let recovered = Recovered::from(&cluster.data_dir(id));
        assert!(
            recovered.state.last_index() >= commit,
            "raftd {id} lost entries"
        );
        let whose = format!("raftd {id}'s recovered store");
        appends.check_exactly_once(&recovered.value_at(commit), &whose);
    }
}

/// Which server crashes in its own snapshot.
#[derive(Clone, Copy, Debug)]
enum Victim {
    Leader,
    Follower,
}

/// For each point: arm it in the leader or a follower, Append until that server crashes in its
/// own snapshot, check what it recovers, restart it.
fn crash_in_own_snapshot(victim: Victim) {
    let every = SNAPSHOT_EVERY.to_string();
    let mut cluster = Cluster::start_with(SERVERS, &["--snapshot-every", &every]);
    let mut appends = Appends::new(&cluster);
    appends.append();
    for point in CrashPoint::ALL {
        let lead = cluster.leader();
        let term = cluster.wait_for(lead, |_| true).term;
        let id = match victim {
            Victim::Leader => lead,
            Victim::Follower => (lead + 1) % SERVERS,
        };
        arm(&cluster, id, point);
        // The tokens acknowledged while the server still ran.
        let mut acked_alive = appends.acked.len();
        let mut written = 0;
        let code = loop {
            assert!(
                written < MAX_APPENDS,
                "raftd {id} never reached {point:?}: {}",
                cluster.logs()
            );
            appends.append();
            written += 1;
            match cluster.exited(id) {
                Some(status) => break status.code(),
                None => acked_alive = appends.acked.len(),
            }
        };
        let index = crashed_at(&cluster, id, code, point);
        let whose = format!("{victim:?} raftd {id}");
        let recovered = Recovered::from(&cluster.data_dir(id));
        check_placed(&recovered, point, index, &whose);
        // Its own snapshot: it had applied, so logged, every entry the snapshot covers.
        assert!(
            recovered.state.last_index() >= index,
            "{whose} lost entries"
        );
        let at_snapshot = tokens(&recovered.value_at(index));
        assert_distinct(&at_snapshot, &whose);
        // A leader of one term throughout acknowledged each of those Appends once its own log
        // held it durably: its recovered log holds them (a deposed one may not have).
        if matches!(victim, Victim::Leader) && recovered.state.current_term == term {
            let everything = tokens(&recovered.value_at(recovered.state.last_index()));
            for token in &appends.acked[..acked_alive] {
                let count = everything.iter().filter(|t| *t == token).count();
                assert_eq!(
                    count, 1,
                    "{whose}: acknowledged {token} recovered {count} times"
                );
            }
        }
        restart_and_catch_up(&mut cluster, &mut appends, id);
        // The store at the snapshot is a prefix of what the cluster holds.
        let now = tokens(&appends.read());
        assert!(
            now.starts_with(&at_snapshot),
            "{whose}: not the cluster's history"
        );
    }
    check_every_server(cluster, appends);
}

#[test]
fn a_leader_that_crashes_at_any_point_of_its_snapshot_recovers_with_every_write_once() {
    crash_in_own_snapshot(Victim::Leader);
}

#[test]
fn a_follower_that_crashes_at_any_point_of_its_snapshot_recovers_with_every_write_once() {
    crash_in_own_snapshot(Victim::Follower);
}

/// For each point: a follower is killed, the leader compacts past its log, the point is armed
/// and the follower started: it crashes while it installs the leader's snapshot.
#[test]
fn a_follower_that_crashes_at_any_point_of_installing_a_snapshot_recovers_with_every_write_once() {
    let every = SNAPSHOT_EVERY.to_string();
    let mut cluster = Cluster::start_with(SERVERS, &["--snapshot-every", &every]);
    let mut appends = Appends::new(&cluster);
    appends.append();
    for point in CrashPoint::ALL {
        let lead = cluster.leader();
        let id = (lead + 1) % SERVERS;
        let had = cluster.wait_for(id, |_| true).log_len;
        cluster.kill(id);
        // Compacted past its log: only a snapshot can bring it up to date.
        let mut written = 0;
        while cluster.wait_for(lead, |_| true).snapshot_index <= had {
            assert!(
                written < MAX_APPENDS,
                "the leader never compacted past {had}: {}",
                cluster.logs()
            );
            appends.append();
            written += 1;
        }
        arm(&cluster, id, point);
        cluster.start_server(id);
        let start = Instant::now();
        let code = loop {
            if let Some(status) = cluster.exited(id) {
                break status.code();
            }
            assert!(
                start.elapsed() < PATIENCE,
                "raftd {id} never reached {point:?}: {}",
                cluster.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let index = crashed_at(&cluster, id, code, point);
        let whose = format!("installing raftd {id}");
        assert!(
            index > had,
            "{whose}: crashed in its own snapshot at {index}"
        );
        let recovered = Recovered::from(&cluster.data_dir(id));
        check_placed(&recovered, point, index, &whose);
        let snapshot = recovered.state.snapshot_index();
        let at_snapshot = tokens(&recovered.value_at(snapshot));
        assert_distinct(&at_snapshot, &whose);
        restart_and_catch_up(&mut cluster, &mut appends, id);
        let now = tokens(&appends.read());
        assert!(
            now.starts_with(&at_snapshot),
            "{whose}: not the cluster's history"
        );
    }
    check_every_server(cluster, appends);
}

/// A failpoint file that names no crash point stops the server at its next snapshot with an
/// error naming the file, rather than letting a test pass without its crash.
#[test]
fn a_misspelt_crash_point_stops_the_server_with_an_error_naming_the_file() {
    let every = SNAPSHOT_EVERY.to_string();
    let mut cluster = Cluster::start_with(SERVERS, &["--snapshot-every", &every]);
    let mut appends = Appends::new(&cluster);
    appends.append();
    let id = (cluster.leader() + 1) % SERVERS;
    let file = cluster.data_dir(id).join(FAILPOINT_FILE);
    fs::write(&file, "renamd\n").expect("arm");
    let mut written = 0;
    let status = loop {
        assert!(written < MAX_APPENDS, "raftd {id} never stopped");
        appends.append();
        written += 1;
        if let Some(status) = cluster.exited(id) {
            break status;
        }
    };
    assert_eq!(status.code(), Some(1), "{}", cluster.logs());
    let log = fs::read_to_string(cluster.log_path(id)).expect("log");
    let said = format!("{}: \"renamd\" names no crash point", file.display());
    assert!(log.contains(&said), "{log}");
    restart_and_catch_up(&mut cluster, &mut appends, id);
    check_every_server(cluster, appends);
}
