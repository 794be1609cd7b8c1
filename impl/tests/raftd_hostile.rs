//! End to end against hostile or careless users: each test starts real `raftd` processes on
//! 127.0.0.1 and does to them what a tester did to the first raftd (issue 13), then checks that
//! the cluster refused it, said so, and goes on serving.

mod launch;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use launch::{Cluster, CLUSTER_ID, SECRET};
use raft_impl::codec::FrameKind;
use raft_impl::kv::{ClientId, KvCommand, KvOp, KvReply, SessionError};
use raft_impl::runtime::auth::{self, ClusterKey};
use raft_impl::runtime::clerk::{Clerk, ClerkError, NoServers};
use raft_impl::runtime::frame::{read_frame, write_frame};
use raft_impl::runtime::protocol::{ClientReply, ClientRequest};
use raft_impl::storage::{FileWal, WalOptions};
use raft_impl::{AppendEntries, Envelope, HardState, Message};

const SERVERS: usize = 3;

/// How long a test's clerk retries one request: long enough for elections.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// A clerk of `cluster` with id `client`.
fn clerk_with_id(cluster: &Cluster, client: ClientId) -> Clerk {
    patient(Clerk::with_client_id(client, cluster.clients.clone()))
}

/// A clerk of `cluster` with a fresh random id, as a restarted program has.
fn clerk(cluster: &Cluster) -> Clerk {
    patient(Clerk::new(cluster.clients.clone()))
}

fn patient(clerk: Result<Clerk, NoServers>) -> Clerk {
    clerk
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

/// Sends `command` on its own connection to the server at `to` until one answers it as applied
/// or refused, as a forger would (no clerk, any number).
fn forge_request(servers: &[SocketAddr], command: &KvCommand) -> ClientReply {
    for _ in 0..200 {
        for &to in servers {
            let mut conn = launch::connect(to);
            conn.set_read_timeout(Some(Duration::from_secs(2)))
                .expect("timeout");
            let request = ClientRequest::Kv(command.clone());
            write_frame(&mut conn, FrameKind::ClientRequest, &request).expect("send");
            match read_frame(&mut conn, FrameKind::ClientReply) {
                Ok(ClientReply::NotLeader { .. }) | Err(_) => {}
                Ok(settled) => return settled,
            }
        }
    }
    panic!("no server settled {command:?}")
}

/// A client restarted under its old id numbers its requests from 1 again: the first raftd
/// answered them "done" and dropped them. Now each is refused, the clerk goes on under a new
/// session, and a clerk restarted the ordinary way (a fresh random id) has its writes applied.
#[test]
fn a_reused_client_id_is_refused_and_a_restarted_clerk_is_applied() {
    let cluster = Cluster::start(SERVERS);
    let mut first = clerk_with_id(&cluster, 42);
    first.execute(append("k", "a")).expect("first append");
    first.execute(append("k", "b")).expect("second append");

    let mut reused = clerk_with_id(&cluster, 42);
    let refused = reused.execute(append("k", "c"));
    assert_eq!(
        refused,
        Err(ClerkError::Refused(SessionError::Stale {
            client: 42,
            seq: 1,
            latest: 2
        })),
        "{}",
        cluster.logs()
    );
    assert_ne!(reused.client(), 42, "the clerk must move to a new session");
    reused
        .execute(append("k", "d"))
        .expect("append after refusal");

    let mut restarted = clerk(&cluster);
    restarted
        .execute(append("k", "e"))
        .expect("restarted clerk");
    assert_eq!(get(&mut restarted, "k"), "abde");
}

/// A request with a huge sequence number, forged under a client's id: applied once, and the
/// client's own next request gets an explicit refusal, never a silent "done".
#[test]
fn after_a_huge_sequence_number_the_client_hears_a_refusal() {
    let cluster = Cluster::start(SERVERS);
    let client = rand::random();
    let mut victim = clerk_with_id(&cluster, client);
    victim.execute(append("k", "a")).expect("first append");

    let forged = KvCommand {
        client,
        seq: u64::MAX,
        op: append("k", "x"),
    };
    assert_eq!(
        forge_request(&cluster.clients, &forged),
        ClientReply::Applied(KvReply::Done)
    );
    assert_eq!(
        victim.execute(append("k", "b")),
        Err(ClerkError::Refused(SessionError::Stale {
            client,
            seq: 2,
            latest: u64::MAX
        }))
    );
    victim
        .execute(append("k", "c"))
        .expect("append in a new session");
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
/// save failed (EMFILE) and the server exited. Now connections beyond the limit are closed at
/// once, unfinished frames cost what was sent and time out, and the leader goes on saving its
/// state and serving.
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
    let bound = 2 * raft_impl::runtime::server::DEFAULT_MAX_CONNECTIONS as u64 + 16;
    assert!(threads <= bound, "{threads} threads under the flood");
    let logs = cluster.logs();
    assert!(
        logs.contains("connections open; closing new ones"),
        "{logs}"
    );
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
        let _ = sealer.write_message(&mut forger, &forged_append(to, 1_000));
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

/// A heartbeat of term 2^64 - 1 once made `current_term + 1` wrap to 0, after which no leader
/// was elected again. Even from a peer that knows the secret, the core now refuses it (and the
/// server logs it), and the cluster goes on electing and serving.
#[test]
fn a_message_of_the_last_term_is_harmless() {
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(append("k", "a")).expect("append");
    let secret = SECRET.trim_ascii_end().to_vec();
    let key = ClusterKey::new(secret, CLUSTER_ID.into()).expect("key");
    for to in 0..SERVERS as u8 {
        let from = (to + 1) % SERVERS as u8;
        let mut conn = launch::connect(cluster.peers[usize::from(to)]);
        let mut sealer = auth::dial(&conn, &key, from, to, Duration::from_secs(10)).expect("hello");
        let mut forged = forged_append(to, u64::MAX);
        forged.from = from;
        sealer.write_message(&mut conn, &forged).expect("send");
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
/// refuses a command over `MAX_COMMAND_BYTES` sent without a clerk, nothing enters the log, no
/// election follows and later Puts commit.
#[test]
fn a_put_over_the_command_limit_is_refused_and_the_cluster_stays_live() {
    use raft_impl::limits::MAX_COMMAND_BYTES;
    use raft_impl::runtime::protocol::CommandTooLarge;
    let cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(put("k", "a".into())).expect("first put");
    let term = highest_term(&cluster);

    let huge = put("k", "x".repeat((64 << 20) - 2));
    match clerk.execute(huge) {
        Err(ClerkError::TooLarge(CommandTooLarge { bytes, limit })) => {
            assert!(bytes > (64 << 20) - 2, "{bytes}");
            assert_eq!(limit, MAX_COMMAND_BYTES as u64);
        }
        other => panic!("a 64 MiB Put must be refused as too large: {other:?}"),
    }
    // The same refusal from the server itself, for a client that does not check: a command
    // just over the limit (its frame is within the client frame limit).
    let forged = KvCommand {
        client: rand::random(),
        seq: 1,
        op: put("k", "y".repeat(MAX_COMMAND_BYTES)),
    };
    assert!(matches!(
        forge_request(&cluster.clients, &forged),
        ClientReply::TooLarge(CommandTooLarge { .. })
    ));

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
/// them, and catches up while the leader keeps its term.
#[test]
fn a_follower_down_for_70_mib_of_writes_catches_up_without_deposing_the_leader() {
    use raft_impl::limits::MAX_VALUE_BYTES;
    let mut cluster = Cluster::start(SERVERS);
    let mut clerk = clerk(&cluster);
    clerk.execute(put("k", "a".into())).expect("first put");
    let leader = leader_id(&cluster);
    let follower = (leader + 1) % SERVERS;
    cluster.kill(follower);
    for i in 0..70 {
        let value = "v".repeat(MAX_VALUE_BYTES);
        clerk
            .execute(put(&format!("big{i}"), value))
            .expect("put with a follower down");
    }
    let status = |cluster: &Cluster, id: usize| statuses(cluster)[id].clone();
    let target = status(&cluster, leader).expect("leader status");
    assert!(target.log_len >= 71);
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
