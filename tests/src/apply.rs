//! The tester's view of the state machines: every applied entry, checked as it arrives.
//!
//! As in the Go tester, what a server applied is remembered across its crashes (a restarted
//! server re-applies its log from index 1 and must apply the same commands again), and
//! `n_committed` counts a server that applied an index even while it is down.

use raft_impl::{Command, Index, NodeId};

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
        let log = &mut self.logs[s];
        if log.len() < index as usize {
            log.push(command.clone());
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
