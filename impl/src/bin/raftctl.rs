//! `raftctl`: the command-line client of a `raftd` cluster.
//!
//! ```text
//! raftctl --servers 127.0.0.1:8000,127.0.0.1:8001,127.0.0.1:8002 put k v
//! RAFTCTL_SERVERS=127.0.0.1:8000,... raftctl get k
//! raftctl status
//! ```
//!
//! Exit codes: 0 done; 1 refused (not applied); 2 bad usage (including a server list that is not
//! the whole cluster: a follower named a leader raftctl has no address for); 3 unknown outcome
//! (timed out, or the client's session expired: the request may or may not have been applied;
//! for `status`, fewer than a majority of the servers answered); 4 `get` of a key that is not
//! set (nothing is printed; an empty value prints an empty line and exits 0).

use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use raft_impl::kv::{KvOp, KvReply};
use raft_impl::runtime::clerk::{self, Clerk, ClerkError};

/// Talks to a raftcheck KV cluster.
#[derive(Debug, Parser)]
#[command(name = "raftctl", version)]
struct Args {
    /// Every server's client address (host:port, a host name or an IP address), in server id
    /// order.
    #[arg(long, env = "RAFTCTL_SERVERS", value_delimiter = ',', required = true,
          value_parser = resolve)]
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
    /// Print KEY's value; exit 4, printing nothing, if KEY is not set.
    Get { key: String },
    /// Print each server's role, term, commit index, log length and leader, then which server
    /// leads; exits 3 when fewer than a majority answer.
    Status,
}

const DONE: u8 = 0;
const REFUSED: u8 = 1;
const BAD_USAGE: u8 = 2;
const UNKNOWN_OUTCOME: u8 = 3;
const NOT_SET: u8 = 4;

/// How long one attempt at one server may take.
const ATTEMPT: Duration = Duration::from_secs(1);

/// `host:port` as one address: an IPv4 one if the name has any (raftd's examples listen on
/// 127.0.0.1, and `localhost` often resolves to ::1 first).
fn resolve(server: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = server
        .to_socket_addrs()
        .map_err(|e| format!("{server}: {e} (expected host:port)"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("{server}: the name has no address"))
}

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
        Ok(KvReply::Absent) => ExitCode::from(NOT_SET),
        Ok(KvReply::Done) => ExitCode::from(DONE),
        Ok(other @ KvReply::Registered { .. }) => {
            eprintln!("raftctl: unknown outcome: the server answered {other:?}");
            ExitCode::from(UNKNOWN_OUTCOME)
        }
        Err(e @ ClerkError::LeaderNotListed { .. }) => {
            eprintln!("raftctl: {e}");
            ExitCode::from(BAD_USAGE)
        }
        Err(e) if e.outcome_unknown() => {
            eprintln!("raftctl: {e}");
            ExitCode::from(UNKNOWN_OUTCOME)
        }
        Err(e) => {
            eprintln!("raftctl: {e}");
            ExitCode::from(REFUSED)
        }
    }
}

/// One line per server, then the leader; timed out unless a majority of them answered (with
/// fewer the cluster cannot commit, whatever the ones that answered say).
fn status(servers: &[SocketAddr]) -> ExitCode {
    let mut answered = 0;
    let mut leader = None;
    for (id, addr) in servers.iter().enumerate() {
        match clerk::status(*addr, ATTEMPT) {
            Ok(s) => {
                answered += 1;
                let hint = s.leader.map_or("-".to_string(), |l| l.to_string());
                println!(
                    "server {id} {addr}: {:?} term {} commit {} log {} leader {hint} \
                     snapshot {} log entries {} heartbeats {} sent bytes {:?} installed snapshots {} refused snapshots {} \
                     refused snapshot chunks {} resumed snapshot transfers {} snapshot bytes held {}",
                    s.role,
                    s.term,
                    s.commit_index,
                    s.log_len,
                    s.snapshot_index,
                    s.log_entries,
                    s.heartbeats,
                    s.sent_bytes,
                    s.installed_snapshots,
                    s.refused_snapshots,
                    s.refused_chunks,
                    s.resumed_transfers,
                    s.snapshot_bytes_held
                );
                if s.leader == Some(s.id) {
                    leader = Some((id, *addr, s.term));
                }
            }
            Err(e) => println!("server {id} {addr}: unreachable ({e})"),
        }
    }
    let majority = servers.len() / 2 + 1;
    match leader {
        Some((id, addr, term)) => println!("leader: server {id} at {addr}, term {term}"),
        None => println!("leader: none known"),
    }
    if answered < majority {
        eprintln!(
            "raftctl: only {answered} of {} servers answered; a majority ({majority}) is needed",
            servers.len()
        );
        return ExitCode::from(UNKNOWN_OUTCOME);
    }
    ExitCode::from(DONE)
}
