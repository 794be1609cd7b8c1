//! A three-server cluster, driven by a FIFO message loop, elects a leader, commits entries,
//! loses every server to a crash, restarts each from its store, and keeps every committed
//! entry with the same command at the same index while committing more.

mod support;

use raft_impl::{Index, Role};
use support::cluster::Cluster;
use support::Cmd;

/// What every server must hold: the committed prefix, by index.
fn assert_log_holds(cluster: &Cluster, committed: &[(Index, Cmd)]) {
    for node in &cluster.nodes {
        for &(index, command) in committed {
            let entry = &node.log()[(index - 1) as usize];
            assert_eq!(
                entry.command,
                command,
                "server {} at index {index}",
                node.id()
            );
        }
    }
}

#[test]
fn committed_entries_survive_a_crash_of_every_server() {
    let mut cluster = Cluster::new(3);
    cluster.election_timeout(0);
    cluster.deliver_all();
    assert_eq!(cluster.leader(), Some(0));
    assert_eq!(cluster.nodes[0].current_term(), 1);

    for command in [100, 101, 102] {
        assert!(cluster.propose(0, command).is_some());
    }
    cluster.broadcast_append(0);
    cluster.deliver_all();
    // A second round tells the followers the commit index.
    cluster.broadcast_append(0);
    cluster.deliver_all();
    let committed = [(1, 100), (2, 101), (3, 102)];
    assert_eq!(
        cluster.applied.clone().into_iter().collect::<Vec<_>>(),
        committed
    );
    for node in &cluster.nodes {
        assert_eq!((node.commit_index(), node.last_applied()), (3, 3));
    }

    // An entry the leader holds alone is not committed and may be lost; it is in flight when
    // everything crashes.
    cluster.propose(0, 999);
    cluster.broadcast_append(0);
    for id in 0..3 {
        cluster.crash_and_restart(id);
    }
    assert!(cluster.network.is_empty());
    for node in &cluster.nodes {
        assert_eq!(node.role(), Role::Follower);
        assert_eq!((node.commit_index(), node.last_applied()), (0, 0));
        assert_eq!(node.current_term(), 1);
    }
    assert_log_holds(&cluster, &committed);

    // Server 1 takes over. Until an entry of its own term commits, nothing is applied again.
    cluster.election_timeout(1);
    cluster.deliver_all();
    assert_eq!(cluster.leader(), Some(1));
    assert_eq!(cluster.nodes[1].current_term(), 2);
    assert!(cluster.nodes.iter().all(|n| n.last_applied() == 0));

    assert_eq!(cluster.propose(1, 103), Some(4));
    cluster.broadcast_append(1);
    cluster.deliver_all();
    cluster.broadcast_append(1);
    cluster.deliver_all();
    let committed = [(1, 100), (2, 101), (3, 102), (4, 103)];
    // `applied` would have failed had any server applied another command at an index.
    assert_eq!(
        cluster.applied.clone().into_iter().collect::<Vec<_>>(),
        committed
    );
    for node in &cluster.nodes {
        assert_eq!((node.commit_index(), node.last_applied()), (4, 4));
        assert_eq!(node.log().len(), 4);
    }
    assert_log_holds(&cluster, &committed);
}
