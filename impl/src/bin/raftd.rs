//! `raftd`: one server of a replicated KV store, the Raft core over TCP.
//!
//! ```text
//! raftd --id 0 --peers 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 \
//!       --client-addr 127.0.0.1:8000 --data-dir data/0 --cluster-secret secret --bootstrap
//! ```
//!
//! `--bootstrap` on the first start only (it creates the write-ahead log in `--data-dir`);
//! later starts recover their state from that log.
//!
//! Exit codes: 2 for bad arguments, 1 when the server cannot start or must stop (a corrupt
//! write-ahead log, a data directory of an older build, an address in use, a failed fsync). It
//! never exits on its own otherwise; only a test build (the `failpoints` feature, which only this
//! crate's tests turn on) also exits with 86, at a crash point its tests arm
//! (`raft_impl::runtime::crash_hook`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use raft_impl::runtime::auth::ClusterKey;
use raft_impl::runtime::server::{self, ServerConfig};

/// One server of a raftcheck KV cluster.
#[derive(Debug, Parser)]
#[command(name = "raftd", version)]
// One of the two must be given; clap's error then names both (`<--cluster-secret
// <CLUSTER_SECRET>|--insecure>`), so a user who has no secret learns the way out.
#[command(group(clap::ArgGroup::new("peer_authentication")
    .required(true)
    .args(["cluster_secret", "insecure"])))]
struct Args {
    /// This server's id: its position in --peers, from 0.
    #[arg(long)]
    id: usize,
    /// Every server's address for Raft traffic, this one's included, in id order.
    #[arg(long, value_delimiter = ',', required = true)]
    peers: Vec<SocketAddr>,
    /// Where this server answers clients.
    #[arg(long)]
    client_addr: SocketAddr,
    /// Where this server keeps its persistent state. It must hold the state of an earlier run
    /// unless --bootstrap is given.
    #[arg(long)]
    data_dir: PathBuf,
    /// Create a new cluster: start with an empty state, which must not exist yet. Give it on
    /// each server's first start only: a server whose state was lost must not rejoin as a
    /// fresh voter.
    #[arg(long)]
    bootstrap: bool,
    /// Connections accepted at once on each port (peers, clients); more are closed at once.
    #[arg(long, default_value_t = server::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// A file holding the cluster's secret (at least 16 bytes; a trailing newline is ignored),
    /// the same on every server: peers prove they know it, and every peer message carries a
    /// MAC under it.
    #[arg(long)]
    cluster_secret: Option<PathBuf>,
    /// The cluster's name, the same on every server: a peer of another cluster is refused
    /// even if it shares the secret.
    #[arg(long, default_value = "raftd")]
    cluster_id: String,
    /// Run without a cluster secret: anyone who reaches the peer port can forge any server's
    /// messages and wipe the logs. For experiments on a trusted machine only.
    #[arg(long, conflicts_with = "cluster_secret")]
    insecure: bool,
    /// Turn PreVote (dissertation §9.6) off: a server cut off from the majority then raises its
    /// term at every election timeout and deposes the leader when it is back.
    #[arg(long)]
    no_pre_vote: bool,
    /// Turn CheckQuorum (§6.2) and the leader lease (§4.2.3) off: a leader that lost its
    /// majority keeps leading, and followers answer vote requests while they hear from their
    /// leader.
    #[arg(long)]
    no_check_quorum: bool,
    /// Snapshot the KV store (its client sessions included) once this many applied entries are
    /// past the last snapshot, so that the log on disk and what a restart replays stay bounded;
    /// 0 never snapshots.
    #[arg(long, default_value_t = server::DEFAULT_SNAPSHOT_EVERY)]
    snapshot_every: u64,
    /// Send a snapshot to a follower in chunks of this many bytes (1 to 1 MiB); the follower
    /// puts them together, resuming after a lost connection, before it installs the snapshot.
    #[arg(long, default_value_t = raft_impl::limits::MAX_SNAPSHOT_CHUNK_BYTES)]
    snapshot_chunk_bytes: usize,
}

/// The cluster key `args` describe; reads the secret file.
fn cluster_key(args: &Args) -> Result<ClusterKey, String> {
    let Some(path) = &args.cluster_secret else {
        return Ok(ClusterKey::insecure(args.cluster_id.clone()));
    };
    let mut secret =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    while secret.last().is_some_and(|b| b.is_ascii_whitespace()) {
        secret.pop();
    }
    ClusterKey::new(secret, args.cluster_id.clone()).map_err(|e| format!("{}: {e}", path.display()))
}

/// Arguments that parse but describe no working server.
const BAD_ARGUMENTS: u8 = 2;
/// The server could not start, or had to stop.
const FAILED: u8 = 1;

fn main() -> ExitCode {
    let args = Args::parse();
    let key = match cluster_key(&args) {
        Ok(key) => key,
        Err(e) => {
            eprintln!("raftd {}: {e}", args.id);
            return ExitCode::from(FAILED);
        }
    };
    if args.insecure {
        eprintln!(
            "raftd {}: WARNING: --insecure: peers are not authenticated; anyone who can reach \
             the peer port can forge messages and destroy the logs",
            args.id
        );
    }
    let config = ServerConfig::new(args.id, args.peers, args.client_addr, args.data_dir, key)
        .and_then(|config| {
            config
                .with_bootstrap(args.bootstrap)
                .with_max_connections(args.max_connections)
                .with_pre_vote(!args.no_pre_vote)
                .with_check_quorum(!args.no_check_quorum)
                .with_snapshot_every(args.snapshot_every)
                .with_snapshot_chunk_bytes(args.snapshot_chunk_bytes)
        });
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("raftd: bad arguments: {e}");
            return ExitCode::from(BAD_ARGUMENTS);
        }
    };
    match server::run(config) {
        Ok(never) => match never {},
        Err(e) => {
            eprintln!("raftd {}: {e}", args.id);
            ExitCode::from(FAILED)
        }
    }
}
