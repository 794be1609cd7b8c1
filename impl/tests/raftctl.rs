//! `raftctl` against a real three-server cluster: put, append and get round-trip, `status`
//! reports every server and one leader, and the exit codes say what happened.

mod launch;

use std::process::{Command, Output};

use launch::{list, Cluster};

const RAFTCTL: &str = env!("CARGO_BIN_EXE_raftctl");

/// Runs raftctl with `args` against `cluster`, its servers given in the environment.
fn raftctl(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(RAFTCTL)
        .env("RAFTCTL_SERVERS", list(&cluster.clients))
        .args(["--timeout", "30"])
        .args(args)
        .output()
        .expect("run raftctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn put_append_get_and_status_round_trip() {
    let cluster = Cluster::start(3);
    for args in [["put", "k", "hello"], ["append", "k", ", world"]] {
        let out = raftctl(&cluster, &args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    }
    let out = raftctl(&cluster, &["get", "k"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(stdout(&out), "hello, world\n");
    // A key that is not set is told apart from an empty value: nothing printed, exit 4.
    let out = raftctl(&cluster, &["get", "nothing-here"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    assert_eq!(stdout(&out), "");
    let out = raftctl(&cluster, &["put", "empty", ""]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = raftctl(&cluster, &["get", "empty"]);
    assert_eq!((out.status.code(), stdout(&out)), (Some(0), "\n".into()));

    let out = raftctl(&cluster, &["status"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = stdout(&out);
    assert_eq!(report.lines().count(), 4, "{report}");
    assert_eq!(report.matches("Leader term").count(), 1, "{report}");
    // Each raftctl that writes registers a session first: two entries for the put, two for
    // the append, one per get, two for the put of the empty value.
    assert!(report.contains("commit 9"), "{report}");
    let leader = report.lines().last().unwrap_or_default();
    assert!(leader.starts_with("leader: server "), "{report}");

    // Host names are accepted; a follower given alone names the leader it cannot reach at once
    // (exit 2) rather than retrying until the timeout (30 s, exit 3).
    let follower = report
        .lines()
        .position(|l| l.contains("Follower"))
        .expect("a follower");
    let port = cluster.clients[follower].port();
    let out = Command::new(RAFTCTL)
        .args(["--servers", &format!("localhost:{port}"), "--timeout", "30"])
        .args(["put", "k", "v"])
        .output()
        .expect("run raftctl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(err.contains("list every server's client address"), "{err}");

    // One server of three answers: no majority, so `status` fails.
    let alone = format!("localhost:{port},127.0.0.1:1,127.0.0.1:2");
    let out = Command::new(RAFTCTL)
        .args(["--servers", &alone, "status"])
        .output()
        .expect("run raftctl");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}

#[test]
fn bad_usage_exits_2_and_an_unreachable_cluster_times_out_with_3() {
    let out = Command::new(RAFTCTL)
        .env_remove("RAFTCTL_SERVERS")
        .args(["get", "k"])
        .output()
        .expect("run raftctl");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = Command::new(RAFTCTL)
        .args(["--servers", "127.0.0.1:1", "frobnicate"])
        .output()
        .expect("run raftctl");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // Port 1 on 127.0.0.1: nothing listens, so nothing can apply the request.
    let out = Command::new(RAFTCTL)
        .args([
            "--servers",
            "127.0.0.1:1",
            "--timeout",
            "1",
            "put",
            "k",
            "v",
        ])
        .output()
        .expect("run raftctl");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
}
