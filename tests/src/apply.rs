//! The tester's view of the state machines: every applied entry, checked as it arrives.
//!
//! As in the Go tester, what a server applied is remembered across its crashes (a restarted
//! server re-applies its log from index 1 and must apply the same commands again), and
//! `n_committed` counts a server that applied an index even while it is down.
//!
//! With snapshots (Lab 3D) this is also the service being snapshotted, as the Go tester's
//! `applierSnap` is: a snapshot is (last applied index, every command applied up to it), and
//! installing one, delivered by the core or saved before a restart, moves the server to that
//! index with those commands, which must agree with what every server applied there. A service
//! on the servers (the KV service) snapshots in its own format instead, which the tester does
//! not read: installing one of those only moves the server to its index
//! ([`AppliedLogs::install_opaque`]).

use raft_impl::codec;
use raft_impl::{Command, Index, NodeId, Snapshot};

use crate::failure::Failure;

/// Applied commands of every server, and where each incarnation has got to.
#[derive(Debug)]
pub struct AppliedLogs<C> {
    /// `logs[s][i - 1]`: the command server `s` applied at index `i`, in any incarnation.
    logs: Vec<Vec<C>>,
    /// Last index applied by the current incarnation of each server.
    last_applied: Vec<Index>,
}

impl<C: Command> AppliedLogs<C> {
    pub fn new(servers: usize) -> Self {
        AppliedLogs {
            logs: vec![Vec::new(); servers],
            last_applied: vec![0; servers],
        }
    }

    /// A new incarnation of `server` starts applying from index 1 again.
    pub fn restart(&mut self, server: NodeId) {
        self.last_applied[server as usize] = 0;
    }

    /// Records that `server` applied `command` at `index`; fails on an index out of sequence
    /// or on a command that differs from what any server applied at that index.
    pub fn record(&mut self, server: NodeId, index: Index, command: &C) -> Result<(), Failure> {
        let s = server as usize;
        let expected = self.last_applied[s] + 1;
        if index != expected {
            return Err(Failure::ApplyOutOfOrder {
                server,
                got: index,
                expected,
            });
        }
        self.last_applied[s] = index;
        self.agree(server, index, command)?;
        let log = &mut self.logs[s];
        if log.len() < index as usize {
            log.push(command.clone());
        }
        Ok(())
    }

    /// Fails if some server applied another command than `command` at `index`.
    fn agree(&self, server: NodeId, index: Index, command: &C) -> Result<(), Failure> {
        for (other, log) in self.logs.iter().enumerate() {
            if let Some(existing) = log.get(index as usize - 1) {
                if existing != command {
                    return Err(Failure::ApplyMismatch {
                        index,
                        server,
                        got: format!("{command:?}"),
                        other: other as NodeId,
                        want: format!("{existing:?}"),
                    });
                }
            }
        }
        Ok(())
    }

    /// The snapshot data of `server` at `index`, which it applied: `index` and the commands at
    /// 1 to `index`, encoded.
    pub fn snapshot(&self, server: NodeId, index: Index) -> Result<Vec<u8>, Failure> {
        let log = &self.logs[server as usize];
        let commands = log.get(..index as usize).unwrap_or(log);
        codec::encode_payload(&(index, commands)).map_err(|e| Failure::Encode {
            server,
            reason: e.to_string(),
        })
    }

    /// Installs `snapshot` as `server`'s state (the Go tester's `ingestSnap`): it must decode,
    /// say the index it is delivered at, hold a command for each index up to it, be no older
    /// than what the server applied, and agree with what every server applied. The next apply
    /// must then be at the snapshot's index + 1.
    pub fn install(&mut self, server: NodeId, snapshot: &Snapshot) -> Result<(), Failure> {
        let bad = |reason: String| Failure::BadSnapshot { server, reason };
        let (index, commands): (Index, Vec<C>) =
            codec::decode_payload(&snapshot.data).map_err(|e| bad(e.to_string()))?;
        if index != snapshot.last_index || commands.len() as Index != index {
            return Err(bad(format!(
                "delivered at index {}, holds index {index} and {} commands",
                snapshot.last_index,
                commands.len()
            )));
        }
        self.check_not_older(server, index)?;
        for (i, command) in (1..).zip(&commands) {
            self.agree(server, i, command)?;
        }
        let log = &mut self.logs[server as usize];
        if log.len() < commands.len() {
            log.extend_from_slice(&commands[log.len()..]);
        }
        self.last_applied[server as usize] = index;
        Ok(())
    }

    /// Installs, as `server`'s state, a snapshot at `index` whose bytes the tester cannot read
    /// (a service's, such as the KV store's): it must be no older than what the server applied,
    /// and the next apply must be at `index` + 1. The server is taken to hold, at each index up
    /// to `index`, the command some server applied there (every index a snapshot covers was
    /// applied by the server that took the first snapshot covering it, and the applied logs
    /// outlive crashes); an index no server applied fails, as a snapshot of entries nobody
    /// applied.
    pub fn install_opaque(&mut self, server: NodeId, index: Index) -> Result<(), Failure> {
        self.check_not_older(server, index)?;
        let s = server as usize;
        let covered = (self.logs[s].len() as Index + 1..=index)
            .map(|i| {
                let applied = self.logs.iter().find_map(|log| log.get(i as usize - 1));
                applied.cloned().ok_or_else(|| Failure::BadSnapshot {
                    server,
                    reason: format!("it covers index {i}, which no server applied"),
                })
            })
            .collect::<Result<Vec<C>, Failure>>()?;
        self.logs[s].extend(covered);
        self.last_applied[s] = index;
        Ok(())
    }

    /// Fails if `server` applied more than a snapshot at `index` holds: installing it would
    /// take its state machine back.
    fn check_not_older(&self, server: NodeId, index: Index) -> Result<(), Failure> {
        let applied = self.last_applied[server as usize];
        if index < applied {
            return Err(Failure::SnapshotRegress {
                server,
                index,
                applied,
            });
        }
        Ok(())
    }

    /// How many servers applied `index`, and the command there. Agreement is checked on every
    /// apply, so all of them hold the same command.
    pub fn n_committed(&self, index: Index) -> (usize, Option<&C>) {
        let mut count = 0;
        let mut command = None;
        for log in &self.logs {
            if let Some(c) = index.checked_sub(1).and_then(|i| log.get(i as usize)) {
                count += 1;
                command = Some(c);
            }
        }
        (count, command)
    }

    /// The commands `server` has applied, in index order (index 1 first).
    pub fn log(&self, server: NodeId) -> &[C] {
        &self.logs[server as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_commands_at_one_index_fail() {
        let mut logs = AppliedLogs::new(3);
        logs.record(0, 1, &10u64).unwrap();
        let err = logs.record(2, 1, &11u64).unwrap_err();
        assert_eq!(
            err,
            Failure::ApplyMismatch {
                index: 1,
                server: 2,
                got: "11".into(),
                other: 0,
                want: "10".into()
            }
        );
    }

    #[test]
    fn skipping_or_repeating_an_index_fails() {
        let mut logs = AppliedLogs::new(2);
        logs.record(0, 1, &1u64).unwrap();
        assert!(matches!(
            logs.record(0, 3, &3u64),
            Err(Failure::ApplyOutOfOrder {
                got: 3,
                expected: 2,
                ..
            })
        ));
        assert!(matches!(
            logs.record(0, 1, &1u64),
            Err(Failure::ApplyOutOfOrder { .. })
        ));
    }

    #[test]
    fn a_restarted_server_reapplies_from_one_and_must_agree_with_itself() {
        let mut logs = AppliedLogs::new(2);
        logs.record(0, 1, &1u64).unwrap();
        logs.record(0, 2, &2u64).unwrap();
        logs.restart(0);
        logs.record(0, 1, &1u64).unwrap();
        assert!(matches!(
            logs.record(0, 2, &5u64),
            Err(Failure::ApplyMismatch { other: 0, .. })
        ));
        assert_eq!(logs.log(0), &[1, 2]);
    }

    fn snapshot_of(logs: &AppliedLogs<u64>, server: NodeId, index: Index) -> Snapshot {
        Snapshot {
            last_index: index,
            last_term: 1,
            data: logs.snapshot(server, index).unwrap(),
        }
    }

    #[test]
    fn an_installed_snapshot_counts_as_applied_and_applies_continue_after_it() {
        let mut logs = AppliedLogs::new(2);
        for i in 1..=3 {
            logs.record(0, i, &(i * 10)).unwrap();
        }
        let snapshot = snapshot_of(&logs, 0, 2);
        logs.install(1, &snapshot).unwrap();
        assert_eq!(logs.log(1), &[10, 20]);
        assert_eq!(logs.n_committed(2), (2, Some(&20)));
        assert!(matches!(
            logs.record(1, 2, &20),
            Err(Failure::ApplyOutOfOrder { expected: 3, .. })
        ));
        logs.record(1, 3, &30).unwrap();
    }

    #[test]
    fn an_older_or_disagreeing_or_mislabelled_snapshot_fails() {
        let mut logs = AppliedLogs::new(2);
        for i in 1..=3 {
            logs.record(0, i, &i).unwrap();
            logs.record(1, i, &i).unwrap();
        }
        let older = snapshot_of(&logs, 0, 2);
        assert_eq!(
            logs.install(1, &older),
            Err(Failure::SnapshotRegress {
                server: 1,
                index: 2,
                applied: 3
            })
        );
        let mut other = AppliedLogs::new(1);
        for i in 1..=3 {
            other.record(0, i, &(i + 1)).unwrap();
        }
        logs.restart(1);
        assert!(matches!(
            logs.install(1, &snapshot_of(&other, 0, 3)),
            Err(Failure::ApplyMismatch { index: 1, .. })
        ));
        let mislabelled = Snapshot {
            last_index: 3,
            ..snapshot_of(&logs, 0, 2)
        };
        assert!(matches!(
            logs.install(1, &mislabelled),
            Err(Failure::BadSnapshot { server: 1, .. })
        ));
        let garbage = Snapshot {
            data: vec![0xff; 3],
            ..older
        };
        assert!(matches!(
            logs.install(1, &garbage),
            Err(Failure::BadSnapshot { .. })
        ));
    }

    #[test]
    fn an_opaque_snapshot_moves_the_server_to_its_index_with_the_commands_applied_there() {
        let mut logs = AppliedLogs::new(3);
        for i in 1..=4 {
            logs.record(0, i, &(i * 10)).unwrap();
        }
        logs.record(1, 1, &10).unwrap();
        logs.install_opaque(1, 3).unwrap();
        assert_eq!(logs.log(1), &[10, 20, 30]);
        assert_eq!(logs.n_committed(3), (2, Some(&30)));
        assert!(matches!(
            logs.record(1, 3, &30),
            Err(Failure::ApplyOutOfOrder { expected: 4, .. })
        ));
        logs.record(1, 4, &40).unwrap();
        assert_eq!(
            logs.install_opaque(1, 2),
            Err(Failure::SnapshotRegress {
                server: 1,
                index: 2,
                applied: 4
            })
        );
        assert_eq!(
            logs.install_opaque(2, 5),
            Err(Failure::BadSnapshot {
                server: 2,
                reason: "it covers index 5, which no server applied".into()
            })
        );
    }

    #[test]
    fn n_committed_counts_servers_that_applied_the_index() {
        let mut logs = AppliedLogs::new(3);
        assert_eq!(logs.n_committed(1), (0, None));
        logs.record(1, 1, &7u64).unwrap();
        logs.record(2, 1, &7u64).unwrap();
        assert_eq!(logs.n_committed(1), (2, Some(&7)));
        assert_eq!(logs.n_committed(0), (0, None));
    }
}
