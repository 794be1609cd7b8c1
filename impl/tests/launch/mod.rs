//! Real `raftd` processes for the end-to-end tests (`raftd_cluster`, `raftd_hostile`): free
//! ports on 127.0.0.1, a cluster of servers each with its data directory and log file, and one
//! place that spells out a server's command line. Every process started here is killed when its
//! [`Cluster`] is dropped.
#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use raft_impl::runtime::clerk;
use raft_impl::runtime::protocol::ServerStatus;
use raft_impl::Role;
use rand::Rng;
use tempfile::TempDir;

pub const RAFTD: &str = env!("CARGO_BIN_EXE_raftd");
/// Every test cluster's secret and id.
pub const SECRET: &[u8] = b"a test secret of 32 bytes, no more\n";
pub const CLUSTER_ID: &str = "test";
/// How long [`Cluster::wait_for`] and [`Cluster::leader`] wait for a server to get there.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Addresses below the kernel's ephemeral port range, so that no outgoing connection can hold
/// the port of a server that is down when it restarts.
pub fn free_ports(count: usize) -> Vec<u16> {
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

pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

pub fn list(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `raftd` run to completion with `args` (for arguments it must refuse).
pub fn raftd(args: &[&str]) -> Output {
    Command::new(RAFTD).args(args).output().expect("run raftd")
}

/// A connection to `to`, retried for up to 30 s while the server starts.
pub fn connect(to: SocketAddr) -> TcpStream {
    let start = Instant::now();
    loop {
        match TcpStream::connect(to) {
            Ok(stream) => return stream,
            Err(e) if start.elapsed() > Duration::from_secs(30) => panic!("connect to {to}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// `raftd` processes, each with its data directory and its log file (every incarnation's
/// standard error, appended). Dropping the cluster kills what still runs.
pub struct Cluster {
    pub dir: TempDir,
    pub peers: Vec<SocketAddr>,
    pub clients: Vec<SocketAddr>,
    running: Vec<Option<Child>>,
    /// Arguments every server of the cluster runs with, on every start.
    options: Vec<String>,
}

impl Cluster {
    /// Server `id`'s status, if it answers within two seconds.
    pub fn status(&self, id: usize) -> Option<ServerStatus> {
        clerk::status(self.clients[id], Duration::from_secs(2)).ok()
    }

    /// Polls until `done` holds for server `id`'s status; panics with the logs after
    /// [`PATIENCE`].
    pub fn wait_for(&self, id: usize, done: impl Fn(&ServerStatus) -> bool) -> ServerStatus {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            if let Some(s) = self.status(id).filter(|s| done(s)) {
                return s;
            }
            thread::sleep(Duration::from_millis(50));
        }
        panic!("server {id} never got there: {}", self.logs())
    }

    /// The one server that says it leads, among those that answer; panics with the logs if
    /// there is none after [`PATIENCE`].
    pub fn leader(&self) -> usize {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            let leaders: Vec<usize> = (0..self.servers())
                .filter(|&id| self.status(id).is_some_and(|s| s.role == Role::Leader))
                .collect();
            if let [leader] = leaders[..] {
                return leader;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("no single leader: {}", self.logs())
    }

    /// A new cluster of `servers`, all started (with `--bootstrap`).
    pub fn start(servers: usize) -> Cluster {
        Cluster::start_with(servers, &[])
    }

    /// A new cluster of `servers` that run with `options` on every start.
    pub fn start_with(servers: usize, options: &[&str]) -> Cluster {
        let ports = free_ports(2 * servers);
        let mut cluster = Cluster {
            dir: tempfile::tempdir().expect("temp dir"),
            peers: ports[..servers].iter().copied().map(addr).collect(),
            clients: ports[servers..].iter().copied().map(addr).collect(),
            running: (0..servers).map(|_| None).collect(),
            options: options.iter().map(|o| o.to_string()).collect(),
        };
        fs::write(cluster.secret_path(), SECRET).expect("write secret");
        for id in 0..servers {
            cluster.spawn(id, &["--bootstrap"]);
        }
        cluster
    }

    pub fn servers(&self) -> usize {
        self.peers.len()
    }

    pub fn log_path(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("raftd-{id}.log"))
    }

    pub fn secret_path(&self) -> PathBuf {
        self.dir.path().join("secret")
    }

    pub fn data_dir(&self, id: usize) -> PathBuf {
        self.dir.path().join(format!("data-{id}"))
    }

    /// Server `id`'s command line.
    pub fn command(&self, id: usize) -> Command {
        let mut command = Command::new(RAFTD);
        command
            .arg("--id")
            .arg(id.to_string())
            .arg("--peers")
            .arg(list(&self.peers))
            .arg("--client-addr")
            .arg(self.clients[id].to_string())
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .arg("--cluster-secret")
            .arg(self.secret_path())
            .arg("--cluster-id")
            .arg(CLUSTER_ID)
            .args(&self.options);
        command
    }

    /// Restarts server `id` from its data directory.
    pub fn start_server(&mut self, id: usize) {
        self.spawn(id, &[]);
    }

    fn spawn(&mut self, id: usize, extra: &[&str]) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("log file");
        let child = self
            .command(id)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start raftd");
        self.running[id] = Some(child);
    }

    /// Runs server `id` with `extra` arguments where it must refuse to start: what it exited
    /// with and wrote. Killed, and the test failed, if it still runs after 30 s.
    pub fn refused_start(&self, id: usize, extra: &[&str]) -> (Option<i32>, String) {
        let mut child = self
            .command(id)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start raftd");
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll raftd") {
                break status;
            }
            if start.elapsed() > Duration::from_secs(30) {
                child.kill().expect("kill raftd");
                child.wait().expect("reap raftd");
                panic!("raftd {id} {extra:?} started when it should have refused");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            pipe.read_to_string(&mut stderr).expect("read stderr");
        }
        (status.code(), stderr)
    }

    /// The process id of server `id`, if it runs.
    pub fn pid(&self, id: usize) -> Option<u32> {
        self.running[id].as_ref().map(Child::id)
    }

    /// Sends server `id`, which must be running, the signal `signal` (`"STOP"`, `"CONT"`): a
    /// stopped server holds its connections open and answers nothing until it is continued.
    pub fn signal(&self, id: usize, signal: &str) {
        let pid = self.pid(id).expect("server runs").to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status();
        assert!(sent.expect("run kill").success(), "kill -{signal} {pid}");
    }

    /// SIGKILL: no chance to flush or say goodbye. The server must still be running: one that
    /// exited on its own has failed.
    pub fn kill(&mut self, id: usize) {
        if let Some(status) = self.stop(id) {
            panic!("raftd {id} exited on its own ({status})\n{}", self.logs());
        }
    }

    /// Kills server `id` if it runs; what it exited with if it had already exited.
    pub fn stop(&mut self, id: usize) -> Option<ExitStatus> {
        let mut child = self.running[id].take()?;
        let exited = child.try_wait().expect("poll raftd");
        if exited.is_none() {
            child.kill().expect("kill raftd");
            child.wait().expect("reap raftd");
        }
        exited
    }

    /// What server `id` exited with, if it exited on its own (it is then no longer running);
    /// `None` while it runs.
    pub fn exited(&mut self, id: usize) -> Option<ExitStatus> {
        let status = self.running[id].as_mut()?.try_wait().expect("poll raftd")?;
        self.running[id] = None;
        Some(status)
    }

    pub fn logs(&self) -> String {
        (0..self.servers())
            .map(|id| {
                let log = fs::read_to_string(self.log_path(id)).unwrap_or_default();
                format!("--- raftd {id} ---\n{log}")
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 0..self.servers() {
            self.stop(id);
        }
    }
}
