//! `raftctl`: the command-line client of a `raftd` cluster.
//!
//! ```text
//! raftctl --servers 127.0.0.1:8000,127.0.0.1:8001,127.0.0.1:8002 put k v
//! RAFTCTL_SERVERS=127.0.0.1:8000,... raftctl get k
//! raftctl status
//! ```
//!
//! Exit codes: 0 done; 1 refused (not applied); 2 bad usage; 3 timed out (the request may or
//! may not have been applied).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use raft_impl::kv::{KvOp, KvReply};
use raft_impl::runtime::clerk::{self, Clerk, ClerkError};

/// Talks to a raftcheck KV cluster.
#[derive(Debug, Parser)]
#[command(name = "raftctl", version)]
struct Args {
    /// Every server's client address, in server id order.
    #[arg(long, env = "RAFTCTL_SERVERS", value_delimiter = ',', required = true)]
    servers: Vec<SocketAddr>,
    /// How long to keep retrying a request, in seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Set KEY to VALUE.
    Put { key: String, value: String },
    /// Append VALUE to KEY's value.
    Append { key: String, value: String },
    /// Print KEY's value (empty if unset).
    Get { key: String },
    /// Print each server's role, term, commit index, log length and leader.
    Status,
}

const DONE: u8 = 0;
const REFUSED: u8 = 1;
const BAD_USAGE: u8 = 2;
const TIMED_OUT: u8 = 3;

/// How long one attempt at one server may take.
const ATTEMPT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    let args = Args::parse();
    let give_up = Duration::from_secs(args.timeout);
    let op = match args.command {
        Cmd::Put { key, value } => KvOp::Put { key, value },
        Cmd::Append { key, value } => KvOp::Append { key, value },
        Cmd::Get { key } => KvOp::Get { key },
        Cmd::Status => return status(&args.servers),
    };
    let Ok(clerk) = Clerk::new(args.servers) else {
        eprintln!("raftctl: no server given");
        return ExitCode::from(BAD_USAGE);
    };
    match clerk.with_timeouts(ATTEMPT, give_up).execute(op) {
        Ok(KvReply::Value(value)) => {
            println!("{value}");
            ExitCode::from(DONE)
        }
        Ok(KvReply::Done) => ExitCode::from(DONE),
        Err(e @ (ClerkError::Refused(_) | ClerkError::TooLarge(_))) => {
            eprintln!("raftctl: {e}");
            ExitCode::from(REFUSED)
        }
        Err(e @ ClerkError::GaveUp { .. }) => {
            eprintln!("raftctl: {e}");
            ExitCode::from(TIMED_OUT)
        }
    }
}

/// One line per server; timed out if none answered.
fn status(servers: &[SocketAddr]) -> ExitCode {
    let mut answered = false;
    for (id, addr) in servers.iter().enumerate() {
        match clerk::status(*addr, ATTEMPT) {
            Ok(s) => {
                answered = true;
                let leader = s.leader.map_or("-".to_string(), |l| l.to_string());
                println!(
                    "server {id} {addr}: {:?} term {} commit {} log {} leader {leader} \
                     heartbeats {} sent bytes {:?}",
                    s.role, s.term, s.commit_index, s.log_len, s.heartbeats, s.sent_bytes
                );
            }
            Err(e) => println!("server {id} {addr}: unreachable ({e})"),
        }
    }
    ExitCode::from(if answered { DONE } else { TIMED_OUT })
}
