//! `raftd`: one server of a replicated KV store, the Raft core over TCP.
//!
//! ```text
//! raftd --id 0 --peers 127.0.0.1:7000,127.0.0.1:7001,127.0.0.1:7002 \
//!       --client-addr 127.0.0.1:8000 --data-dir data/0 --bootstrap
//! ```
//!
//! `--bootstrap` on the first start only; later starts find their state in `--data-dir`.
//!
//! Exit codes: 2 for bad arguments, 1 when the server cannot start or must stop (a corrupt
//! state file, an address in use, a failed fsync). It never exits on its own otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use raft_impl::runtime::server::{self, ServerConfig};

/// One server of a raftcheck KV cluster.
#[derive(Debug, Parser)]
#[command(name = "raftd", version)]
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
}

/// Arguments that parse but describe no working server.
const BAD_ARGUMENTS: u8 = 2;
/// The server could not start, or had to stop.
const FAILED: u8 = 1;

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match ServerConfig::new(args.id, args.peers, args.client_addr, args.data_dir) {
        Ok(config) => config
            .with_bootstrap(args.bootstrap)
            .with_max_connections(args.max_connections),
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
