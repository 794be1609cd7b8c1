//! End to end against hostile or careless users: each test starts real `raftd` processes on
//! 127.0.0.1 and does to them what a tester did to the first raftd (issue 13), then checks that
//! the cluster refused it, said so, and goes on serving.

mod forge;
mod launch;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use forge::{forged, frame, padded, varint, TIB};
use launch::{Cluster, CLUSTER_ID, SECRET};
use raft_impl::codec::{FrameKind, HEADER_LEN};
use raft_impl::kv::{KvCommand, KvError, KvOp, KvReply, KvRequest, Session};
use raft_impl::limits::{MAX_CLIENT_PAYLOAD, MAX_SNAPSHOT_BYTES};
use raft_impl::runtime::auth::{self, ClusterKey};
use raft_impl::runtime::clerk::{Clerk, ClerkError};
use raft_impl::runtime::frame::FREE_PAYLOAD;
use raft_impl::runtime::frame::{read_frame, read_frame_bytes, write_frame};
use raft_impl::runtime::protocol::{
    ChunkAck, ClientReply, ClientRequest, PeerFrame, SnapshotChunk, TransferId,
};
use raft_impl::runtime::server::{CLIENT_FRAME_BUDGET, DEFAULT_MAX_CONNECTIONS};
use raft_impl::storage::{FileWal, WalOptions};
use raft_impl::{AppendEntries, Envelope, HardState, Message};

const SERVERS: usize = 3;

/// How long a test's clerk retries one request: long enough for elections.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// A clerk of `cluster`, as a freshly started program has.
fn clerk(cluster: &Cluster) -> Clerk {
    Clerk::new(cluster.clients.clone())
        .expect("servers")
        .with_timeouts(Duration::from_secs(1), GIVE_UP_AFTER)
}

fn append(key: &str, value: &str) -> KvOp {
    KvOp::Append {
        key: key.into(),
        value: value.into(),
    }
}

fn get(clerk: &mut Clerk, key: &str) -> String {
    match clerk.execute(KvOp::Get { key: key.into() }) {
        Ok(KvReply::Value(value)) => value,
        other => panic!("get {key}: {other:?}"),
    }
}

/// A client without a clerk, as a forger or a flood would write one: any session, any number,
/// no retry policy but following the leader. Each request is sent until some server applies or
/// refuses it, on one connection while that server leads.
struct RawClient<'a> {
    servers: &'a [SocketAddr],
    /// The server asked first.
    at: usize,
    conn: Option<TcpStream>,
}

impl<'a> RawClient<'a> {
    fn new(servers: &'a [SocketAddr]) -> RawClient<'a> {
        RawClient {
            servers,
            at: 0,
            conn: None,
        }
    }

    fn ask(&mut self, request: &KvRequest) -> ClientReply {
        let frame = ClientRequest::Kv(request.clone());
        for _ in 0..10_000 {
            let to = self.servers[self.at];
            let conn = self.conn.get_or_insert_with(|| {
                let conn = launch::connect(to);
                conn.set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                conn
            });
            let sent = write_frame(conn, FrameKind::ClientRequest, &frame);
            match sent.and_then(|()| read_frame(conn, FrameKind::ClientReply)) {
                Ok(ClientReply::NotLeader { .. }) | Err(_) => {
                    self.conn = None;
                    self.at = (self.at + 1) % self.servers.len();
                }
                Ok(settled) => return settled,
            }
        }
        panic!("no server settled {request:?}")
    }
}

/// A write forged in a clerk's session without its nonce (session ids are log indices, easy to
/// guess) is refused as an expired session and changes nothing; the clerk goes on in its
/// session, and a restarted clerk (a new registration) has its writes applied.
#[test]
fn a_write_in_a_session_not_ones_own_is_refused_and_a_restarted_clerk_is_applied() {
    let cluster = Cluster::start(SERVERS);
    let mut first = clerk(&cluster);
    first.execute(append("k", "a")).expect("first append");
    let session = first.session().expect("registered");

    let forged = KvRequest::InSession {
        session: Session {
            nonce: session.nonce ^ 1,
            ..session
        },
        seq: 2,
        op: append("k", "x"),
    };
    assert_eq!(
        RawClient::new(&cluster.clients).ask(&forged),
        ClientReply::Refused(KvError::SessionExpired {
            client: session.id,
            seq: 2
        }),
        "{}",
        cluster.logs()
    );
    first.execute(append("k", "b")).expect("second append");
    assert_eq!(first.session(), Some(session));

    let mut restarted = clerk(&cluster);
    restarted
        .execute(append("k", "c"))
        .expect("restarted clerk");
    assert_ne!(restarted.session(), Some(session));
    assert_eq!(get(&mut restarted, "k"), "abc");
}

/// A request with a huge sequence number, forged in a client's session (nonce and all): applied
/// once, and the client's own next request gets an explicit "unknown outcome", never a silent
/// "done"; the clerk then goes on in a new session.
#[test]
fn after_a_huge_sequence_number_the_client_hears_an_unknown_outcome() {
    let cluster = Cluster::start(SERVERS);
    let mut victim = clerk(&cluster);
    victim.execute(append("k", "a")).expect("first append");
    let session = victim.session().expect("registered");

    let forged = KvRequest::InSession {
        session,
        seq: u64::MAX,
        op: append("k", "x"),
    };
    assert_eq!(
        RawClient::new(&cluster.clients).ask(&forged),
        ClientReply::Applied(KvReply::Done)
    );
    let stale = victim.execute(append("k", "b"));
    assert_eq!(
        stale,
        Err(ClerkError::Unknown(KvError::Stale {
            client: session.id,
            seq: 2,
            latest: u64::MAX
        }))
    );
    assert!(stale.unwrap_err().outcome_unknown());
    victim
        .execute(append("k", "c"))
        .expect("append in a new session");
    assert_ne!(victim.session(), Some(session));
    assert_eq!(get(&mut victim, "k"), "axc");
}

/// A follower whose data directory was wiped once came back as a fresh voter in term 0 and
/// helped overwrite an acknowledged Put. Now it refuses to start without `--bootstrap`, the
/// others keep every acknowledged write, and `--bootstrap` over a saved state is refused too.
#[test]
fn a_wiped_server_refuses_to_start_and_no_acknowledged_write_is_lost() {
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    for value in ["a", "b", "c"] {
        clerk.execute(append("k", value)).expect("append");
    }
    let follower = (clerk.leader() + 1) % SERVERS;
    cluster.kill(follower);
    std::fs::remove_dir_all(cluster.data_dir(follower)).expect("wipe");

    let (code, stderr) = cluster.refused_start(follower, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no saved state"), "{stderr}");
    assert!(
        !cluster.data_dir(follower).exists(),
        "a refused start must create nothing"
    );

    let leader = clerk.leader();
    let (code, stderr) = cluster.refused_start(leader, &["--bootstrap"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("already belongs"), "{stderr}");

    clerk
        .execute(append("k", "d"))
        .expect("append without the wiped server");
    assert_eq!(get(&mut clerk, "k"), "abcd", "{}", cluster.logs());
}

/// A line of `/proc/<pid>/status` (Linux), as a number: `VmRSS` in KiB, `Threads`.
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in\n{status}"))
}

/// The header of a frame of `kind` announcing 60 MiB, and its first KiB: the start of a frame
/// that a slow sender never finishes.
fn start_of_huge_frame(kind: FrameKind) -> Vec<u8> {
    let mut bytes = kind.magic().to_vec();
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&(60u32 << 20).to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    bytes.extend(std::iter::repeat_n(0u8, 1024));
    bytes
}

/// Lowers the descriptor limit of the running process `pid` to `limit` (util-linux `prlimit`).
fn limit_descriptors(pid: u32, limit: u32) {
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("run prlimit (util-linux)");
    assert!(status.success(), "prlimit failed: {status}");
}

/// Under a limit of 1 024 descriptors, 1 100 idle connections and 50 never-finished 60 MiB
/// frames on each port of the leader once held 1.5 GB and every descriptor, until the state
/// save failed (EMFILE) and the server exited. Now a full port closes its least recently active
/// connection for each new one, a frame declaring more than its kind's limit is refused at its
/// header, and the leader goes on saving its state and serving.
#[test]
fn connection_floods_and_slow_huge_frames_leave_the_leader_bounded_and_serving() {
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(append("k", "a")).expect("append");
    let leader = clerk.leader();
    let pid = cluster.pid(leader).expect("leader runs");
    limit_descriptors(pid, 1_024);

    let mut held = Vec::new();
    for (port, kind) in [
        (cluster.peers[leader], FrameKind::Message),
        (cluster.clients[leader], FrameKind::ClientRequest),
    ] {
        for _ in 0..50 {
            let mut conn = launch::connect(port);
            // The server may already have closed it (over the limit): nothing to send then.
            let _ = conn.write_all(&start_of_huge_frame(kind));
            held.push(conn);
        }
    }
    for _ in 0..1_100 {
        held.push(launch::connect(cluster.clients[leader]));
    }
    let (rss_kib, threads) = (proc_status(pid, "VmRSS"), proc_status(pid, "Threads"));

    clerk
        .execute(append("k", "b"))
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(get(&mut clerk, "k"), "ab");
    drop(held);
    cluster.kill(leader);
    eprintln!("under the flood: {rss_kib} KiB resident, {threads} threads");
    assert!(
        rss_kib < 256 << 10,
        "{rss_kib} KiB resident under the flood"
    );
    // Each port runs at most `DEFAULT_MAX_CONNECTIONS` connections, and as many more that
    // were closed to make room and whose threads are ending (see `transport::spawn_acceptor`).
    let bound = 2 * 2 * DEFAULT_MAX_CONNECTIONS as u64 + 16;
    assert!(threads <= bound, "{threads} threads under the flood");
    let logs = cluster.logs();
    assert!(
        logs.contains("connections open; closing the least recently active"),
        "{logs}"
    );
    assert!(logs.contains("more than its limit"), "{logs}");
}

/// An AppendEntries "from server 0" to `to` in `term` with an empty log: had a follower taken
/// it, it would have cut its log to nothing.
fn forged_append(to: u8, term: u64) -> Envelope<KvCommand> {
    Envelope {
        from: 0,
        to,
        msg: Message::AppendEntries(AppendEntries {
            term,
            prev_log_index: 0,
            prev_log_term: 0,
            entries: Vec::new(),
            leader_commit: 0,
        }),
    }
}

/// Waits until the server at the other end of `conn` closes it (or 10 s pass).
fn wait_for_close(conn: &mut TcpStream) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut rest = Vec::new();
    let _ = conn.read_to_end(&mut rest);
}

/// Every server's saved term and log length, read after the cluster was killed.
fn saved_states(cluster: &Cluster) -> Vec<(u64, usize)> {
    (0..cluster.servers())
        .map(|id| {
            let (_, hard): (_, HardState<KvCommand>) =
                FileWal::open(cluster.data_dir(id), WalOptions::default()).expect("state");
            (hard.current_term, hard.log.len())
        })
        .collect()
}

/// One forged AppendEntries "from server 0" with a high term, sent to each server's peer port,
/// once cut every log to one entry. Now a frame without the handshake, or after a handshake
/// under the wrong secret, closes the connection and is logged, and no log changes.
#[test]
fn forged_peer_frames_are_rejected_and_change_no_log() {
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    for value in ["a", "b", "c"] {
        clerk.execute(append("k", value)).expect("append");
    }
    let wrong =
        ClusterKey::new(b"not the cluster's secret".to_vec(), CLUSTER_ID.into()).expect("key");
    for to in 1..SERVERS as u8 {
        let peer = cluster.peers[usize::from(to)];
        // No handshake at all: a bare message frame.
        let mut bare = launch::connect(peer);
        write_frame(&mut bare, FrameKind::Message, &forged_append(to, 1_000)).expect("send");
        wait_for_close(&mut bare);
        // A handshake under the wrong secret.
        let mut forger = launch::connect(peer);
        let mut sealer =
            auth::dial(&forger, &wrong, 0, to, Duration::from_secs(10)).expect("handshake");
        let _ = sealer.send(&mut forger, &PeerFrame::Message(forged_append(to, 1_000)));
        wait_for_close(&mut forger);
    }
    clerk
        .execute(append("k", "d"))
        .expect("append after the forgeries");
    assert_eq!(get(&mut clerk, "k"), "abcd");
    for id in 0..SERVERS {
        cluster.kill(id);
    }
    let logs = cluster.logs();
    let states = saved_states(&cluster);
    // A majority acknowledged all five commands (four appends and the get); a forgery taken
    // would have left term 1 000 and an empty log behind.
    let complete = states.iter().filter(|(_, len)| *len >= 5).count();
    assert!(
        states.iter().all(|(term, _)| *term < 1_000) && 2 * complete > SERVERS,
        "{states:?}\n{logs}"
    );
    assert!(logs.contains("wrong magic"), "{logs}");
    assert!(logs.contains("failed to prove"), "{logs}");
}

/// A connection to server `to`, past the handshake as peer `from` with the cluster's secret: a
/// peer that knows the secret, which is what the tests of forged peer messages play.
fn dial_as(cluster: &Cluster, from: u8, to: u8) -> (TcpStream, auth::Sealer) {
    let secret = SECRET.trim_ascii_end().to_vec();
    let key = ClusterKey::new(secret, CLUSTER_ID.into()).expect("key");
    let conn = launch::connect(cluster.peers[usize::from(to)]);
    let sealer = auth::dial(&conn, &key, from, to, Duration::from_secs(10)).expect("hello");
    (conn, sealer)
}

/// A heartbeat of term 2^64 - 1 once made `current_term + 1` wrap to 0, after which no leader
/// was elected again. Even from a peer that knows the secret, the core now refuses it (and the
/// server logs it), and the cluster goes on electing and serving.
#[test]
fn a_message_of_the_last_term_is_harmless() {
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(append("k", "a")).expect("append");
    for to in 0..SERVERS as u8 {
        let from = (to + 1) % SERVERS as u8;
        let (mut conn, mut sealer) = dial_as(&cluster, from, to);
        let mut forged = forged_append(to, u64::MAX);
        forged.from = from;
        sealer
            .send(&mut conn, &PeerFrame::Message(forged))
            .expect("send");
    }
    // Kill the leader: the others must still be able to elect a new one.
    let leader = clerk.leader();
    cluster.kill(leader);
    clerk
        .execute(append("k", "b"))
        .expect("append after the leader died");
    assert_eq!(get(&mut clerk, "k"), "ab");
    for id in (0..SERVERS).filter(|id| *id != leader) {
        cluster.kill(id);
    }
    let logs = cluster.logs();
    for (term, _) in saved_states(&cluster) {
        assert!(term < 1_000, "term {term}\n{logs}");
    }
    assert!(logs.contains("leaves no next term"), "{logs}");
}

/// An InstallSnapshot from a peer that knows the secret, of a later term, whose bytes are not a
/// KV store: had the core taken it, the server would have dropped its log and had no store to
/// put in its place. It is refused before the core sees it (no term taken, nothing written),
/// counted in the status and logged, and the cluster goes on serving with every write.
#[test]
fn a_snapshot_that_is_not_a_kv_store_is_refused_and_changes_nothing() {
    let cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    for value in ["a", "b", "c"] {
        clerk.execute(append("k", value)).expect("append");
    }
    let leader = clerk.leader();
    let to = ((leader + 1) % SERVERS) as u8;
    let from = ((leader + 2) % SERVERS) as u8;
    let before = statuses(&cluster)[usize::from(to)].clone().expect("status");
    let (mut conn, mut sealer) = dial_as(&cluster, from, to);
    let forged = Envelope {
        from,
        to,
        msg: Message::InstallSnapshot {
            term: before.term + 1,
            snapshot: raft_impl::Snapshot {
                last_index: 1_000,
                last_term: before.term,
                data: b"not a store".to_vec(),
            },
        },
    };
    sealer
        .send(&mut conn, &PeerFrame::Message(forged))
        .expect("send");
    let mut refused = None;
    for _ in 0..100 {
        refused = statuses(&cluster)[usize::from(to)]
            .clone()
            .filter(|s| s.refused_snapshots == 1);
        if refused.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = refused.unwrap_or_else(|| panic!("not refused: {}", cluster.logs()));
    assert_eq!((refused.snapshot_index, refused.term), (0, before.term));
    assert!(refused.log_len >= 3);
    clerk.execute(append("k", "d")).expect("append after");
    assert_eq!(get(&mut clerk, "k"), "abcd");
    assert!(cluster.logs().contains("InstallSnapshot at 1000"));
}

/// Snapshot chunks from a peer that knows the secret: one that declares a snapshot longer than
/// `MAX_SNAPSHOT_BYTES`, one whose bytes run past the length it declares, and one that changes
/// the length of the transfer it continues. Each is refused (the connection closed, the refusal
/// counted in the status and logged), drops the partial transfer and changes nothing else. A
/// chunk declaring the largest snapshot allowed makes the server hold the bytes it carries, not
/// the gigabyte it announces. The cluster goes on serving.
#[test]
fn hostile_snapshot_chunks_are_refused_counted_and_change_nothing() {
    let cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    for value in ["a", "b", "c"] {
        clerk.execute(append("k", value)).expect("append");
    }
    let leader = clerk.leader();
    let to = ((leader + 1) % SERVERS) as u8;
    let from = ((leader + 2) % SERVERS) as u8;
    let status_of = || statuses(&cluster)[usize::from(to)].clone().expect("status");
    let before = status_of();
    let transfer = TransferId {
        term: before.term + 1,
        last_index: 1_000,
        last_term: before.term,
        total_len: MAX_SNAPSHOT_BYTES,
    };
    let chunk = |transfer, offset, len| {
        PeerFrame::Chunk(SnapshotChunk {
            transfer,
            offset,
            data: vec![7; len],
        })
    };
    let dial = || dial_as(&cluster, from, to);
    // The largest snapshot allowed, begun: the server holds the 4 KiB that came.
    let (mut conn, mut sealer) = dial();
    sealer
        .send(&mut conn, &chunk(transfer, 0, 4096))
        .expect("send");
    let ack = sealer.read_ack(&mut conn).expect("acknowledged");
    assert_eq!(
        ack,
        ChunkAck {
            transfer,
            held: 4096
        }
    );
    assert_eq!(status_of().snapshot_bytes_held, 4096);
    // The same transfer, another length: refused, and the 4 KiB are dropped.
    let changed = TransferId {
        total_len: MAX_SNAPSHOT_BYTES - 1,
        ..transfer
    };
    sealer
        .send(&mut conn, &chunk(changed, 4096, 4096))
        .expect("send");
    wait_for_close(&mut conn);
    // A snapshot over the limit, and bytes past the declared end.
    let over = TransferId {
        total_len: MAX_SNAPSHOT_BYTES + 1,
        ..transfer
    };
    let short = TransferId {
        total_len: 100,
        ..transfer
    };
    for bad in [chunk(over, 0, 1), chunk(short, 0, 101)] {
        let (mut conn, mut sealer) = dial();
        sealer.send(&mut conn, &bad).expect("send");
        wait_for_close(&mut conn);
    }
    let mut after = status_of();
    for _ in 0..100 {
        if after.refused_chunks == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = status_of();
    }
    assert_eq!(after.refused_chunks, 3, "{after:?}\n{}", cluster.logs());
    assert_eq!(
        (
            after.snapshot_bytes_held,
            after.snapshot_index,
            after.installed_snapshots,
            after.refused_snapshots,
            after.term
        ),
        (0, 0, 0, 0, before.term),
        "{after:?}"
    );
    assert!(after.log_len >= before.log_len);
    clerk.execute(append("k", "d")).expect("append after");
    assert_eq!(get(&mut clerk, "k"), "abcd");
    let logs = cluster.logs();
    for refusal in [
        "changes the transfer",
        "over the limit",
        "past the snapshot's 100 bytes",
    ] {
        assert!(logs.contains(refusal), "{refusal}: {logs}");
    }
}

/// The peak resident memory of server `id` so far (`VmHWM`), in KiB.
fn peak_kib(cluster: &Cluster, id: usize) -> u64 {
    proc_status(cluster.pid(id).expect("server runs"), "VmHWM")
}

/// Writes `bytes` to a new connection to `to`, then waits until the server closes it. A server
/// that refuses the frame at its header closes the connection while the rest is still being
/// sent: the write then fails, which is expected.
fn send_and_wait_for_close(to: SocketAddr, bytes: &[u8]) {
    let mut conn = launch::connect(to);
    let _ = conn.write_all(bytes);
    wait_for_close(&mut conn);
}

/// The 16 MiB + 64-byte frame of issue 18 (a payload past 16 MiB was decoded without any
/// limit), its payload declaring a string of 2^40 bytes, once aborted any server it was sent
/// to, on its peer port before the handshake or on its client port, with no secret needed.
/// Now the large frame is refused at its header (over its kind's limit), a small frame making
/// the same claim is refused by the decoder (a length past the end), every server survives, and
/// the cluster goes on serving.
#[test]
fn a_frame_declaring_a_string_of_2_40_bytes_harms_no_server() {
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(append("k", "a")).expect("append");
    // `Hello` is the handshake's variant 0, and its first field the cluster id, a string.
    let mut hello = vec![0];
    hello.extend(varint(TIB));
    let read = |key: &str| ClientRequest::Kv(KvRequest::Get { key: key.into() });
    let request = forged(&read(""), &read("k"), TIB);
    let issue_size = (16 << 20) + 64;
    for id in 0..SERVERS {
        for (to, kind, payload) in [
            (cluster.peers[id], FrameKind::PeerHandshake, &hello),
            (cluster.clients[id], FrameKind::ClientRequest, &request),
        ] {
            send_and_wait_for_close(to, &frame(kind, &padded(payload.clone(), issue_size)));
            send_and_wait_for_close(to, &frame(kind, payload));
        }
    }
    clerk
        .execute(append("k", "b"))
        .expect("append after the forged frames");
    assert_eq!(get(&mut clerk, "k"), "ab");
    for id in 0..SERVERS {
        // Panics if the server exited on its own.
        cluster.kill(id);
    }
    let logs = cluster.logs();
    let refused_at_header = logs.matches("more than its limit").count();
    let refused_by_decoder = logs
        .matches("a length prefix declares 1099511627776")
        .count();
    assert_eq!(
        (refused_at_header, refused_by_decoder),
        (2 * SERVERS, 2 * SERVERS),
        "{logs}"
    );
}

/// Whether the server closed `conn` (or reset it) by `deadline`: the server may still be
/// reading what the connection sent.
fn closed_by(conn: &mut TcpStream, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    conn.set_read_timeout(Some(left.max(Duration::from_millis(1))))
        .expect("timeout");
    match conn.read(&mut [0]) {
        Ok(read) => read == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// 50 connections each sending nearly all of a 60 MiB frame, then stalling, once held 2.9 GB on
/// a server. Now on the client port (and the peer port before the handshake) a frame over its
/// kind's limit is refused at its header; and 100 connections sending nearly all of a frame of
/// the largest size a client may send (`MAX_CLIENT_PAYLOAD`) hold at most the port's budget for
/// unfinished frames: the frames that do not fit in it are refused. The leader's peak resident
/// memory grows by less than all the free parts (of up to twice `DEFAULT_MAX_CONNECTIONS`
/// connections, some closing) and the budget together (49 MiB), plus 32 MiB for the threads'
/// stacks and the allocator's slack, where the frames alone would take 102 MiB.
#[test]
fn stalled_nearly_whole_frames_hold_no_more_than_the_budget() {
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(append("k", "a")).expect("append");
    let leader = clerk.leader();
    let before = peak_kib(&cluster, leader);

    /// The header of a frame of `kind` declaring `len` payload bytes, and all of them but the
    /// last KiB: a sender that stalls just before the end.
    fn nearly_whole(kind: FrameKind, len: usize) -> Vec<u8> {
        let mut bytes = kind.magic().to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.resize(HEADER_LEN + len - 1024, 0);
        bytes
    }
    let huge = 60 << 20;
    let mut held = Vec::new();
    for (to, kind, count, len) in [
        (cluster.clients[leader], FrameKind::ClientRequest, 50, huge),
        (cluster.peers[leader], FrameKind::PeerHandshake, 20, huge),
        (
            cluster.clients[leader],
            FrameKind::ClientRequest,
            100,
            MAX_CLIENT_PAYLOAD,
        ),
    ] {
        let bytes = nearly_whole(kind, len);
        for _ in 0..count {
            let mut conn = launch::connect(to);
            // Refused at the header or over the budget: the server closes it mid-write.
            let _ = conn.write_all(&bytes);
            held.push(conn);
        }
    }
    clerk
        .execute(append("k", "b"))
        .unwrap_or_else(|e| panic!("{e}\n{}", cluster.logs()));
    assert_eq!(get(&mut clerk, "k"), "ab");
    // Half the frame deadline: a frame within the budget is still held open then, and the
    // server has read (and charged, or refused) what the others sent.
    let deadline = Instant::now() + Duration::from_secs(5);
    let closed: Vec<bool> = held.iter_mut().map(|c| closed_by(c, deadline)).collect();
    let grown_kib = peak_kib(&cluster, leader).saturating_sub(before);
    drop(held);
    cluster.kill(leader);
    let logs = cluster.logs();
    eprintln!("peak resident memory grew by {grown_kib} KiB under the stalled frames");
    let bound_kib = ((2 * DEFAULT_MAX_CONNECTIONS * FREE_PAYLOAD + CLIENT_FRAME_BUDGET) >> 10)
        as u64
        + (32 << 10);
    assert!(
        grown_kib < bound_kib,
        "peak grew by {grown_kib} KiB, bound {bound_kib} KiB\n{logs}"
    );
    assert!(logs.contains("more than its limit"), "{logs}");
    // The 70 frames over their limit are refused, and so are the frames of the largest size
    // that do not fit in a budget of 32 of them: it holds 34 frames charged all but their free
    // part. (The log shows only the first lines of such a flood.)
    let fit = CLIENT_FRAME_BUDGET / (MAX_CLIENT_PAYLOAD - FREE_PAYLOAD);
    assert_eq!(closed[..70].iter().filter(|&&c| c).count(), 70);
    assert!(
        closed[70..].iter().filter(|&&c| c).count() >= 100 - fit,
        "{closed:?}"
    );
}

/// 35 connections per server that each send only a 14-byte header, 34 declaring a client frame
/// of the largest size and one the rest of the budget (1 470 bytes in all), once held every
/// server's whole client frame budget, charged at the header: every request over 64 KiB was
/// refused, for as long as the attacker renewed its headers. Now a frame is charged for the
/// bytes it has sent, and a Put of a 100 KiB value goes through beside them.
#[test]
fn headers_alone_hold_none_of_the_client_frame_budget() {
    let cluster = Cluster::start(SERVERS);
    let mut c = clerk(&cluster);
    c.execute(append("k", "a")).expect("append");
    let mut held = Vec::new();
    let mut sent = 0;
    let full = MAX_CLIENT_PAYLOAD - FREE_PAYLOAD;
    let (n, rest) = (CLIENT_FRAME_BUDGET / full, CLIENT_FRAME_BUDGET % full);
    for &to in &cluster.clients {
        for i in 0..=n {
            let len = if i < n {
                MAX_CLIENT_PAYLOAD
            } else {
                FREE_PAYLOAD + rest
            };
            let mut header = FrameKind::ClientRequest.magic().to_vec();
            header.extend_from_slice(&1u16.to_le_bytes());
            header.extend_from_slice(&(len as u32).to_le_bytes());
            header.extend_from_slice(&0u32.to_le_bytes());
            let mut conn = launch::connect(to);
            conn.write_all(&header).expect("header");
            sent += header.len();
            held.push(conn);
        }
    }
    assert_eq!(sent, 3 * 35 * HEADER_LEN);
    // Let the servers read the headers.
    thread::sleep(Duration::from_millis(200));
    let mut c = Clerk::new(cluster.clients.clone())
        .expect("servers")
        .with_timeouts(Duration::from_secs(1), Duration::from_secs(5));
    let value = "x".repeat(100 << 10);
    let big = c.execute(KvOp::Put {
        key: "big".into(),
        value: value.clone(),
    });
    let read = big.as_ref().ok().map(|_| get(&mut c, "big"));
    drop(held);
    let logs = cluster.logs();
    assert!(
        matches!(big, Ok(KvReply::Done)),
        "a 100 KiB put beside {sent} bytes of headers: {big:?}\n{logs}"
    );
    assert_eq!(read.map(|v| v.len()), Some(value.len()));
    assert!(
        !logs.contains("does not fit in what is left of the frame budget"),
        "{logs}"
    );
}

/// Keeps `count` idle connections open to `to` until `stop` is set, as an attacker would who
/// never sends a byte: every 50 ms, each connection the server has closed is opened again, up
/// to 50 of them (at most 1 000 a second), counting them in `total`.
fn hold_idle_connections(
    to: SocketAddr,
    count: usize,
    stop: Arc<AtomicBool>,
    total: Arc<AtomicUsize>,
) {
    let open_idle = || {
        let conn = launch::connect(to);
        conn.set_nonblocking(true).expect("nonblocking");
        conn
    };
    let mut open: Vec<TcpStream> = (0..count).map(|_| open_idle()).collect();
    while !stop.load(Ordering::Relaxed) {
        let mut reopened = 0;
        for conn in &mut open {
            let closed = match conn.read(&mut [0]) {
                Ok(_) => true,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
            if closed && reopened < 50 {
                *conn = open_idle();
                reopened += 1;
            }
        }
        total.fetch_add(reopened, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(50));
    }
}

/// Operations per second of `n` appends by `clerk`, for the README (printed, never asserted).
fn appends(clerk: &mut Clerk, n: usize, tag: &str) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        clerk
            .execute(append("idle", &format!("{tag}{i},")))
            .unwrap_or_else(|e| panic!("{tag} append {i}: {e}"));
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// 1 100 idle connections to a server's client port once kept every slot busy until their
/// frame deadline (10 s), and a clerk got 0.4 operations a second. Now a full port closes its
/// least recently active connection for each new one: while an attacker keeps 1 100 idle
/// connections open, 50 clerks that each open a new connection are all served (each gives up
/// after 5 s, half the deadline that once freed a slot), and so are a clerk's 200 appends; an
/// active clerk's connection is never the one closed (its requests count as activity), however
/// many connections the attacker reopens meanwhile.
#[test]
fn idle_connections_starve_no_clerk() {
    let cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(append("idle", "")).expect("append");
    let leader = clerk.leader();
    let new_clerk = || {
        // A clerk of the leader alone: the test is about admission at the leader, not about
        // finding it.
        Clerk::new(vec![cluster.clients[leader]])
            .expect("servers")
            .with_timeouts(Duration::from_secs(1), Duration::from_secs(5))
    };
    let fresh = |tag: &str| {
        let start = Instant::now();
        for i in 0..50 {
            if let Err(e) = new_clerk().execute(append("fresh", &format!("{tag}{i},"))) {
                return Err(format!("new clerk {i} of 50: {e}"));
            }
        }
        Ok(50.0 / start.elapsed().as_secs_f64())
    };
    let quiet = appends(&mut clerk, 200, "q");
    let quiet_fresh = fresh("q").expect("new clerks without the attacker");

    let stop = Arc::new(AtomicBool::new(false));
    let reopened = Arc::new(AtomicUsize::new(0));
    let attacker = {
        let (to, stop) = (cluster.clients[leader], Arc::clone(&stop));
        let reopened = Arc::clone(&reopened);
        thread::spawn(move || hold_idle_connections(to, 1_100, stop, reopened))
    };
    // Let the attacker fill the port first (or give it 30 s).
    let start = Instant::now();
    while proc_status(cluster.pid(leader).expect("leader runs"), "Threads")
        < DEFAULT_MAX_CONNECTIONS as u64
        && start.elapsed() < Duration::from_secs(30)
    {
        thread::sleep(Duration::from_millis(10));
    }
    let flooded_fresh = fresh("f");
    // The clerk's connection may have been closed while it was idle; once it is active again,
    // the flood never closes it. (An attempt may wait up to the server's own request timeout,
    // so that a slow commit on a loaded machine does not make the clerk drop the connection.)
    clerk = clerk.with_timeouts(Duration::from_secs(5), GIVE_UP_AFTER);
    clerk.execute(append("idle", "")).expect("append");
    let connections = clerk.connections();
    let flooded = flooded_fresh.is_ok().then(|| appends(&mut clerk, 200, "f"));
    // The clerk goes on until the attacker has opened twice as many connections as the port
    // holds since the clerk's connection last opened: without its requests counting as
    // activity, the connection would have been the least recently active and been closed.
    let (churn_from, mut extra) = (reopened.load(Ordering::Relaxed), 0);
    while flooded.is_some()
        && reopened.load(Ordering::Relaxed) - churn_from < 2 * DEFAULT_MAX_CONNECTIONS
        && extra < 20_000
    {
        clerk.execute(append("idle", "")).expect("append");
        extra += 1;
    }
    let churn = reopened.load(Ordering::Relaxed) - churn_from;
    let reconnections = clerk.connections() - connections;
    stop.store(true, Ordering::Relaxed);
    attacker.join().expect("attacker");
    let logs = cluster.logs();
    let (flooded_fresh, flooded) = match (flooded_fresh, flooded) {
        (Ok(fresh), Some(ops)) => (fresh, ops),
        (Err(e), _) => panic!("{e}\n{logs}"),
        (Ok(_), None) => unreachable!("the appends run once the new clerks are served"),
    };
    eprintln!(
        "appends of one clerk: {quiet:.0} ops/s alone, {flooded:.0} ops/s beside 1 100 idle \
         connections ({:.2}); of a new clerk each: {quiet_fresh:.0} and {flooded_fresh:.0} \
         ops/s ({:.2})",
        flooded / quiet,
        flooded_fresh / quiet_fresh,
    );
    assert!(
        logs.contains("connections open; closing the least recently active"),
        "{logs}"
    );
    assert!(churn >= 2 * DEFAULT_MAX_CONNECTIONS, "{churn} reopened");
    assert_eq!(
        reconnections, 0,
        "the active clerk's connection was closed during the flood ({extra} more appends, \
         {churn} connections reopened)\n{logs}"
    );
}

/// Threads of process `pid` once they stop changing (or after 30 s): connection threads end a
/// moment after their connection does.
fn settled_threads(pid: u32, at_most: u64) -> u64 {
    let start = Instant::now();
    loop {
        let threads = proc_status(pid, "Threads");
        if threads <= at_most || start.elapsed() > Duration::from_secs(30) {
            return threads;
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// Clients that sent requests and never read the replies once held server threads in `sendto`
/// for as long as they kept their connections open. Now a write that makes no progress times
/// out and closes the connection: each such client's connection is closed by the server (and
/// the first of them logged), the server's threads return to their number before, and another
/// client is served.
#[test]
fn clients_that_never_read_replies_hold_no_thread() {
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    let big = "x".repeat(512 << 10);
    clerk
        .execute(KvOp::Put {
            key: "big".into(),
            value: big.clone(),
        })
        .expect("put");
    let leader = clerk.leader();
    let pid = cluster.pid(leader).expect("leader runs");
    let before = proc_status(pid, "Threads");

    // Each sends 64 Gets of the 512 KiB value (32 MiB of replies, far more than the sockets
    // buffer) and never reads.
    let mut requests = Vec::new();
    for _ in 0..64 {
        let get = ClientRequest::Kv(KvRequest::Get { key: "big".into() });
        write_frame(&mut requests, FrameKind::ClientRequest, &get).expect("encode");
    }
    let mut deaf = Vec::new();
    for _ in 0..20 {
        let mut conn = launch::connect(cluster.clients[leader]);
        conn.write_all(&requests).expect("send");
        deaf.push(conn);
    }
    let mut other = self::clerk(&cluster);
    assert_eq!(get(&mut other, "big"), big, "another client is served");
    let after = settled_threads(pid, before);
    // Each connection was closed by the server: what it had sent of the replies is followed
    // by the end of the stream (or a reset), not by a wait.
    let closed_by_server = deaf
        .iter_mut()
        .map(|conn| {
            conn.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            match conn.read_to_end(&mut Vec::new()) {
                Ok(_) => true,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            }
        })
        .filter(|&closed| closed)
        .count();
    drop(deaf);
    cluster.kill(leader);
    let logs = cluster.logs();
    assert!(after <= before, "{after} threads, {before} before\n{logs}");
    assert_eq!(closed_by_server, 20, "{logs}");
    // The log names the cause (its first lines: a port logs a burst a second of such lines).
    assert!(
        logs.lines()
            .any(|l| l.contains("closing client connection") && l.contains("I/O error")),
        "{logs}"
    );
}

/// A server that answers every request with `reply`, on `listener`, until the test ends.
fn fake_server(listener: TcpListener, reply: Vec<u8>) {
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let reply = reply.clone();
            thread::spawn(move || {
                while read_frame_bytes(&mut conn, FrameKind::ClientRequest).is_ok() {
                    if conn.write_all(&reply).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

/// A hostile server answering raftctl with a value declaring 2^40 bytes, in a frame of the
/// issue's 16 MiB + 64 bytes, once made raftctl abort (exit 134). Now raftctl refuses the reply
/// and exits with its documented code for an unknown outcome (3), for a small frame making the
/// same claim too, and `status` reports the server unreachable (3: none answered).
#[test]
fn raftctl_refuses_a_hostile_reply_with_a_documented_exit_code() {
    let value = |v: &str| ClientReply::Applied(KvReply::Value(v.into()));
    let payload = forged(&value(""), &value("v"), TIB);
    for payload in [payload.clone(), padded(payload, (16 << 20) + 64)] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        fake_server(listener, frame(FrameKind::ClientReply, &payload));
        for args in [&["get", "k"][..], &["status"]] {
            let out = Command::new(env!("CARGO_BIN_EXE_raftctl"))
                .args(["--servers", &addr, "--timeout", "2"])
                .args(args)
                .output()
                .expect("run raftctl");
            assert_eq!(
                out.status.code(),
                Some(3),
                "{args:?} against a {} byte reply: {out:?}",
                payload.len()
            );
        }
    }
}

/// The first raftd kept 4 096 sessions and evicted the least recently used, so 4 104 Gets under
/// fresh client ids pushed a client's session out, and the retry of its applied Append was
/// applied a second time. Now a Get opens no session, registrations are limited per second of
/// log time, and only log time expires a session: after 4 104 Gets and a flood of
/// registrations (until the store refuses them), the retry gets its recorded reply and the
/// Append is applied once.
#[test]
fn a_flood_of_gets_and_registrations_expires_no_session_and_a_retry_applies_once() {
    let cluster = Cluster::start(SERVERS);
    let mut victim = clerk(&cluster);
    victim.execute(append("x", "a")).expect("append");
    let session = victim.session().expect("registered");
    let mut flood = RawClient {
        at: victim.leader(),
        ..RawClient::new(&cluster.clients)
    };

    let read = KvRequest::Get { key: "x".into() };
    for _ in 0..4_104 {
        let answer = flood.ask(&read);
        assert_eq!(answer, ClientReply::Applied(KvReply::Value("a".into())));
    }
    let (mut registered, mut refused) = (0u64, 0u64);
    for nonce in 0..20_000u64 {
        match flood.ask(&KvRequest::Register { nonce }) {
            ClientReply::Applied(KvReply::Registered { .. }) => registered += 1,
            ClientReply::Refused(KvError::TooManyRegistrations { .. }) => {
                refused += 1;
                break;
            }
            other => panic!("registration answered {other:?}"),
        }
    }
    eprintln!("{registered} sessions registered before the first refusal");
    assert_eq!(refused, 1, "20 000 registrations and none refused");
    assert!(registered >= 64, "{registered}");

    let retry = KvRequest::InSession {
        session,
        seq: 1,
        op: append("x", "a"),
    };
    assert_eq!(
        flood.ask(&retry),
        ClientReply::Applied(KvReply::Done),
        "{}",
        cluster.logs()
    );
    assert_eq!(get(&mut victim, "x"), "a", "the retry was applied again");
    victim
        .execute(append("x", "b"))
        .expect("the session goes on");
    assert_eq!(victim.session(), Some(session));
    assert_eq!(get(&mut victim, "x"), "ab");
}

/// A Put of a value over the limit is refused before it is sent, and an Append that would grow
/// a value past it is refused at apply, by every server alike: typed errors, nothing applied.
#[test]
fn values_past_the_limit_are_refused_with_a_typed_error() {
    use raft_impl::kv::SizeError;
    use raft_impl::limits::MAX_VALUE_BYTES;

    let cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    let put = |value: String| KvOp::Put {
        key: "v".into(),
        value,
    };
    let too_large = |len| {
        Err(ClerkError::Refused(KvError::TooLarge(
            SizeError::ValueTooLarge {
                len,
                max: MAX_VALUE_BYTES,
            },
        )))
    };
    let over = MAX_VALUE_BYTES + 1;
    assert_eq!(clerk.execute(put("p".repeat(over))), too_large(over));
    assert_eq!(clerk.session(), None, "refused before anything was sent");

    let at_limit = "p".repeat(MAX_VALUE_BYTES);
    assert_eq!(clerk.execute(put(at_limit.clone())), Ok(KvReply::Done));
    assert_eq!(clerk.execute(append("v", "q")), too_large(over));
    clerk
        .execute(append("w", "q"))
        .expect("the session goes on");
    assert_eq!(get(&mut clerk, "v"), at_limit);
    assert_eq!(get(&mut clerk, "w"), "q");
}

/// Every running server's status, by id (`None` for one that does not answer).
fn statuses(cluster: &Cluster) -> Vec<Option<raft_impl::runtime::protocol::ServerStatus>> {
    cluster
        .clients
        .iter()
        .map(|addr| raft_impl::runtime::clerk::status(*addr, Duration::from_secs(2)).ok())
        .collect()
}

/// The highest term any server reports.
fn highest_term(cluster: &Cluster) -> u64 {
    statuses(cluster)
        .into_iter()
        .flatten()
        .map(|s| s.term)
        .max()
        .unwrap_or(0)
}

fn put(key: &str, value: String) -> KvOp {
    KvOp::Put {
        key: key.into(),
        value,
    }
}

/// Issue 18: a Put of a 64 MiB - 2 byte value through a retrying client made an AppendEntries
/// over the peer frame limit, which followers dropped: terms climbed for ever and nothing
/// committed again. Now the clerk refuses it with a typed error before sending, a server
/// refuses a value over `MAX_VALUE_BYTES` sent without a clerk, nothing enters the log, no
/// election follows and later Puts commit.
#[test]
fn a_put_over_the_command_limit_is_refused_and_the_cluster_stays_live() {
    use raft_impl::kv::SizeError;
    use raft_impl::limits::MAX_VALUE_BYTES;
    let cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(put("k", "a".into())).expect("first put");
    let term = highest_term(&cluster);

    let len = (64 << 20) - 2;
    assert_eq!(
        clerk.execute(put("k", "x".repeat(len))),
        Err(ClerkError::Refused(KvError::TooLarge(
            SizeError::ValueTooLarge {
                len,
                max: MAX_VALUE_BYTES
            }
        ))),
        "a 64 MiB Put must be refused as too large"
    );
    // The same refusal from the server itself, for a client that does not check: a value just
    // over the limit (its frame is within the client frame limit).
    let session = clerk.session().expect("the clerk's session");
    let forged = KvRequest::InSession {
        session,
        seq: u64::MAX,
        op: put("k", "y".repeat(MAX_VALUE_BYTES + 1)),
    };
    assert_eq!(
        RawClient::new(&cluster.clients).ask(&forged),
        ClientReply::Refused(KvError::TooLarge(SizeError::ValueTooLarge {
            len: MAX_VALUE_BYTES + 1,
            max: MAX_VALUE_BYTES
        }))
    );

    for value in ["b", "c", "d"] {
        clerk.execute(put("k", value.into())).expect("a later put");
    }
    assert_eq!(get(&mut clerk, "k"), "d", "{}", cluster.logs());
    let logs: Vec<u64> = statuses(&cluster)
        .into_iter()
        .flatten()
        .map(|s| s.log_len)
        .collect();
    assert!(
        logs.iter().all(|len| *len < 10),
        "nothing large entered: {logs:?}"
    );
    assert_eq!(
        highest_term(&cluster),
        term,
        "no election: {}",
        cluster.logs()
    );
}

/// A stream of values at `MAX_VALUE_BYTES` from four clerks at once (64 MiB in all): every Put
/// commits, and no election interrupts them. Before batches were bounded, a follower a few
/// dozen entries behind was sent one AppendEntries of its whole missing tail, which past 64 MiB
/// its transport refused.
#[test]
fn a_stream_of_values_at_the_maximum_size_keeps_the_cluster_live() {
    use raft_impl::limits::MAX_VALUE_BYTES;
    const CLERKS: usize = 4;
    const PUTS: usize = 16;
    let cluster = Cluster::start(SERVERS);
    clerk(&cluster)
        .execute(put("warm", "up".into()))
        .expect("first put");
    let term = highest_term(&cluster);
    std::thread::scope(|scope| {
        for c in 0..CLERKS {
            let cluster = &cluster;
            scope.spawn(move || {
                let mut clerk = clerk(cluster);
                for i in 0..PUTS {
                    let value = char::from(b'a' + (i % 26) as u8)
                        .to_string()
                        .repeat(MAX_VALUE_BYTES);
                    clerk
                        .execute(put(&format!("k{c}-{i}"), value))
                        .unwrap_or_else(|e| panic!("put {c}-{i}: {e}\n{}", cluster.logs()));
                }
            });
        }
    });
    let mut reader = clerk(&cluster);
    assert_eq!(get(&mut reader, "k3-15").len(), MAX_VALUE_BYTES);
    assert_eq!(
        highest_term(&cluster),
        term,
        "no election: {}",
        cluster.logs()
    );
}

/// The leader, as every server that answers reports it.
fn leader_id(cluster: &Cluster) -> usize {
    for _ in 0..600 {
        let leaders: Vec<usize> = statuses(cluster)
            .into_iter()
            .flatten()
            .filter(|s| s.role == raft_impl::Role::Leader)
            .map(|s| usize::from(s.id))
            .collect();
        if let [leader] = leaders[..] {
            return leader;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no single leader: {}", cluster.logs())
}

/// Issue 18: a follower that missed 70 MiB of log never caught up (one AppendEntries of the
/// whole tail, over the peer frame limit) and its elections kept deposing the leader. Now it is
/// sent batches of at most `DEFAULT_MAX_APPEND_BYTES`, one after another as it acknowledges
/// them, and catches up while the leader keeps its term. The issue's acceptance asks for 100 MiB
/// missed (before snapshots, by AppendEntries alone): 100 Puts at `MAX_VALUE_BYTES`.
#[test]
fn a_follower_down_for_100_mib_of_writes_catches_up_without_deposing_the_leader() {
    use raft_impl::limits::MAX_VALUE_BYTES;
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(put("k", "a".into())).expect("first put");
    let leader = leader_id(&cluster);
    let follower = (leader + 1) % SERVERS;
    cluster.kill(follower);
    for i in 0..100 {
        let value = "v".repeat(MAX_VALUE_BYTES);
        clerk
            .execute(put(&format!("big{i}"), value))
            .expect("put with a follower down");
    }
    let status = |cluster: &Cluster, id: usize| statuses(cluster)[id].clone();
    let target = status(&cluster, leader).expect("leader status");
    assert!(target.log_len >= 101);
    cluster.start_server(follower);
    // Catch-up is awaited by polling (at most 120 s); what is asserted is counts.
    let mut caught_up = false;
    for _ in 0..1200 {
        if status(&cluster, follower).is_some_and(|s| s.commit_index >= target.log_len) {
            caught_up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        caught_up,
        "the follower did not catch up: {}",
        cluster.logs()
    );
    let now = status(&cluster, leader).expect("leader status");
    assert_eq!(now.role, raft_impl::Role::Leader, "{}", cluster.logs());
    assert_eq!(now.term, target.term, "leader deposed: {}", cluster.logs());
    assert_eq!(highest_term(&cluster), target.term);
    clerk
        .execute(put("k", "b".into()))
        .expect("put after catch-up");
}

/// Issue 18: with one follower down, the leader re-sent the whole missing tail after every
/// batch of proposals (1 635 → 363 ops/s). Now a follower that does not answer costs at most
/// one AppendEntries per heartbeat, once its window of batches is spent: over 300 Puts of
/// 1 KiB, the bytes the leader sends it are at most (heartbeats + 2) × what was written in
/// that time, where re-sending the tail costs about Puts / 2 × that.
#[test]
fn bytes_sent_to_a_down_follower_are_bounded_per_heartbeat() {
    const PUTS: u64 = 300;
    const VALUE: usize = 1 << 10;
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(put("k", "a".into())).expect("first put");
    let leader = leader_id(&cluster);
    let follower = (leader + 1) % SERVERS;
    cluster.kill(follower);
    clerk
        .execute(put("k", "b".into()))
        .expect("put with a follower down");
    let before = statuses(&cluster)[leader].clone().expect("leader status");
    for i in 0..PUTS {
        clerk
            .execute(put(&format!("k{i}"), "v".repeat(VALUE)))
            .expect("put with a follower down");
    }
    let after = statuses(&cluster)[leader].clone().expect("leader status");
    assert_eq!(after.term, before.term, "{}", cluster.logs());
    let sent = after.sent_bytes[follower] - before.sent_bytes[follower];
    let heartbeats = after.heartbeats - before.heartbeats;
    let written = PUTS * (VALUE as u64 + 64);
    let to_other =
        after.sent_bytes[3 - leader - follower] - before.sent_bytes[3 - leader - follower];
    eprintln!(
        "{PUTS} puts, {heartbeats} heartbeats: {sent} bytes to the down follower, {to_other} to \
         the live one"
    );
    assert!(
        to_other >= PUTS * VALUE as u64,
        "the live follower got every entry"
    );
    assert!(
        sent <= (heartbeats + 2) * written,
        "{sent} bytes to a down follower over {heartbeats} heartbeats"
    );
}
