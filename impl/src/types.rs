//! The vocabulary shared by every part of the core: ids, terms, indices, log entries and the
//! persistent state of Figure 2.

use serde::{Deserialize, Serialize};

/// A server's id: its position in the cluster, `0..n`. Small so that model states hash fast.
pub type NodeId = u8;
/// A Raft term. Term 0 is the state of a node that has never seen an election.
pub type Term = u64;
/// A log index. Entries are numbered from 1; index 0 is the empty prefix.
pub type Index = u64;

/// The highest log index an honest server can reach, with room above it: every index holds (or
/// held) an entry, one per proposal, so no cluster gets near 2^63. A snapshot or a log that
/// claims more was forged or is corrupt, and refusing it keeps every `index + 1` and
/// `snapshot + len` of the core far from overflow.
pub const MAX_INDEX: Index = Index::MAX >> 1;

/// The term after `term`, if there is one: a server at `Term::MAX` could never start another
/// election, so no message, no timeout and no recovered state may take a server there.
pub fn next_term(term: Term) -> Option<Term> {
    term.checked_add(1)
}

/// Whether `id` is another server of server `me`'s cluster of `servers`: the only sender whose
/// messages the core handles and whose peer connection the runtime accepts.
pub fn is_peer(me: NodeId, servers: usize, id: NodeId) -> bool {
    id != me && usize::from(id) < servers
}

/// The bound every command replicated by the core satisfies: cloneable, comparable (so that
/// checkers can tell two commands apart), hashable (so that model states can be fingerprinted)
/// and serialisable (so that it can be persisted in the log).
pub trait Command:
    Clone + Eq + std::hash::Hash + std::fmt::Debug + Serialize + for<'de> Deserialize<'de>
{
}

impl<T> Command for T where
    T: Clone + Eq + std::hash::Hash + std::fmt::Debug + Serialize + for<'de> Deserialize<'de>
{
}

/// One log entry: the term of the leader that created it and the client's command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry<C> {
    pub term: Term,
    pub command: C,
}

/// A snapshot of the state machine (Figure 13): the service's state after applying every entry
/// up to and including `last_index`, whose term was `last_term`. The core never looks inside
/// `data`; it keeps it, persists it, sends it to a follower that needs it and hands an installed
/// one to the service. Chunking a large snapshot to fit a transport's frames (Figure 13, steps 2
/// to 5) is the runtime's business, not the core's: a follower's core takes a snapshot whole or
/// not at all, so the model checks every rule that decides what a server keeps, and a runtime
/// cannot deliver half a state machine to it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_index: Index,
    pub last_term: Term,
    pub data: Vec<u8>,
}

/// Bytes are shown by their count: a snapshot can be megabytes.
impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Snapshot {{ last {}:{}, {} bytes }}",
            self.last_index,
            self.last_term,
            self.data.len()
        )
    }
}

/// Figure 2's persistent state, with Figure 13's snapshot: what a server must have on stable
/// storage before it answers any RPC. Everything else a node holds is rebuilt after a restart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HardState<C> {
    pub current_term: Term,
    pub voted_for: Option<NodeId>,
    /// The snapshot the log starts after, if the server has taken or installed one.
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot: `log[i]` holds the entry at index
    /// `snapshot_index() + 1 + i` (index `i + 1` with no snapshot).
    pub log: Vec<Entry<C>>,
}

impl<C> Default for HardState<C> {
    fn default() -> Self {
        HardState {
            current_term: 0,
            voted_for: None,
            snapshot: None,
            log: Vec::new(),
        }
    }
}

/// One write to stable storage, as a step of the core emits it ([`crate::Effect::Persist`]):
/// only what changed. Every store (the model's, the simulator's memory store, raftd's
/// write-ahead log) keeps these as records and rebuilds the state with [`HardState::apply`], the
/// one rule for what a record means.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Record<C> {
    /// `current_term` or `voted_for` changed; both are written, as one record.
    TermVote {
        term: Term,
        voted_for: Option<NodeId>,
    },
    /// The log changed from index `from` on: every entry from `from` is dropped, then `entries`
    /// are appended, the first at index `from`.
    Log { from: Index, entries: Vec<Entry<C>> },
    /// A snapshot was taken or installed (Figure 13): the state machine up to
    /// `snapshot.last_index` is `snapshot.data`, and the log now starts after it. Entries at or
    /// below `last_index` go; those after it stay (a core that must drop a conflicting suffix,
    /// Figure 13 step 7, writes a log record that truncates it first). A log that does not
    /// reach past `last_index` is left empty, and so is one whose snapshot was newer (only a
    /// deliberate bug installs an older snapshot: its entries would not follow the new one).
    Snapshot(Snapshot),
}

/// A log record that does not start within the log it is applied to: past its end (the
/// records between were lost, which no store that keeps a prefix of what was written can
/// produce), or inside the snapshot it starts after (entries that were compacted away cannot
/// change).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("log record starts at index {from}, but the log holds indices {first} to {last}")]
pub struct LogGap {
    pub from: Index,
    /// The first index a log record may start at: one past the snapshot.
    pub first: Index,
    pub last: Index,
}

/// Why a state whose records passed their checksums cannot have been written by a server of
/// this cluster: written by another cluster's server, or forged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Implausible {
    #[error("a vote for server {voted_for} in a cluster of {servers}")]
    VoteOutsideCluster { voted_for: NodeId, servers: usize },
    #[error("term {term}, which leaves no term to elect in")]
    NoNextTerm { term: Term },
    #[error("an entry or snapshot of term {entry_term} past the current term {current_term}")]
    EntryPastTerm {
        entry_term: Term,
        current_term: Term,
    },
    #[error("a log that ends at index {last}, past any index a cluster reaches ({MAX_INDEX})")]
    IndexPastLimit { last: Index },
}

impl<C> HardState<C> {
    /// Checks that a server of a cluster of `servers` could have reached this state: it voted
    /// for a server of the cluster, its term has a successor, and no entry (nor the snapshot's
    /// last one) is of a later term.
    /// The records a state is replayed from carry checksums, which say that the bytes are what
    /// was written, not that this cluster wrote them.
    pub fn check(&self, servers: usize) -> Result<(), Implausible> {
        if let Some(voted_for) = self.voted_for.filter(|v| usize::from(*v) >= servers) {
            return Err(Implausible::VoteOutsideCluster { voted_for, servers });
        }
        if next_term(self.current_term).is_none() {
            return Err(Implausible::NoNextTerm {
                term: self.current_term,
            });
        }
        let snapshot_term = self.snapshot.as_ref().map(|s| s.last_term);
        let terms = snapshot_term
            .into_iter()
            .chain(self.log.iter().map(|e| e.term));
        if let Some(entry_term) = terms.into_iter().find(|t| *t > self.current_term) {
            return Err(Implausible::EntryPastTerm {
                entry_term,
                current_term: self.current_term,
            });
        }
        match self.last_index() {
            last if last > MAX_INDEX => Err(Implausible::IndexPastLimit { last }),
            _ => Ok(()),
        }
    }

    /// Applies one record: what recovery replays and what every store means by a write. It
    /// costs O(what the record holds and what it truncates), never O(log).
    pub fn apply(&mut self, write: Record<C>) -> Result<(), LogGap> {
        match write {
            Record::TermVote { term, voted_for } => {
                self.current_term = term;
                self.voted_for = voted_for;
            }
            Record::Log { from, entries } => {
                let (first, last) = (self.first_index(), self.last_index());
                if from < first || from > last.saturating_add(1) {
                    return Err(LogGap { from, first, last });
                }
                self.log.truncate(self.position(from));
                self.log.extend(entries);
            }
            Record::Snapshot(snapshot) => {
                let compacted = snapshot.last_index.checked_sub(self.snapshot_index());
                match compacted {
                    Some(n) if n < self.log.len() as Index => {
                        self.log.drain(..n as usize);
                    }
                    _ => self.log.clear(),
                }
                self.snapshot = Some(snapshot);
            }
        }
        Ok(())
    }

    /// The last index the snapshot covers, 0 without one.
    pub fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |s| s.last_index)
    }

    /// The term of the snapshot's last entry, 0 without one.
    pub fn snapshot_term(&self) -> Term {
        self.snapshot.as_ref().map_or(0, |s| s.last_term)
    }

    /// Index of the first entry the log holds (or would hold): one past the snapshot.
    /// Saturating, like `last_index`: a forged record may claim any index, and [`Self::check`]
    /// refuses the state it leads to.
    pub fn first_index(&self) -> Index {
        self.snapshot_index().saturating_add(1)
    }

    /// Index of the last entry, the snapshot's last one when the log after it is empty (0 for
    /// a server that has neither).
    pub fn last_index(&self) -> Index {
        self.snapshot_index()
            .saturating_add(self.log.len() as Index)
    }

    /// Term of the last entry, the snapshot's last one when the log after it is empty (0 for
    /// a server that has neither).
    pub fn last_term(&self) -> Term {
        self.log.last().map_or(self.snapshot_term(), |e| e.term)
    }

    /// Term of the entry at `index`: the snapshot's last term at its last index (0 at index 0),
    /// `None` below it (compacted away: known only to be committed) and past the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index() {
            Some(self.snapshot_term())
        } else {
            self.entry(index).map(|e| e.term)
        }
    }

    /// The entry at `index` (1-based), if the log holds it: not compacted into the snapshot,
    /// and not past the end.
    pub fn entry(&self, index: Index) -> Option<&Entry<C>> {
        let after = index.checked_sub(self.first_index())?;
        self.log.get(usize::try_from(after).ok()?)
    }

    /// The entries from `index` to the end (none when `index` is past it; from the first
    /// entry held when `index` is compacted).
    pub fn entries_from(&self, index: Index) -> &[Entry<C>] {
        &self.log[self
            .position(index.max(self.first_index()))
            .min(self.log.len())..]
    }

    /// Where the entry at `index` (at least `first_index()`) sits in `log`, or would.
    fn position(&self, index: Index) -> usize {
        usize::try_from(index - self.first_index()).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_no_server_of_the_cluster_could_write_is_implausible() {
        let plausible = HardState {
            current_term: 3,
            voted_for: Some(2),
            snapshot: None,
            log: vec![Entry {
                term: 3,
                command: 'x',
            }],
        };
        assert_eq!(plausible.check(3), Ok(()));
        let vote = HardState {
            voted_for: Some(3),
            ..plausible.clone()
        };
        assert_eq!(
            vote.check(3),
            Err(Implausible::VoteOutsideCluster {
                voted_for: 3,
                servers: 3
            })
        );
        let last_term = HardState {
            current_term: Term::MAX,
            ..plausible.clone()
        };
        assert_eq!(
            last_term.check(3),
            Err(Implausible::NoNextTerm { term: Term::MAX })
        );
        let ahead = HardState {
            current_term: 2,
            ..plausible
        };
        assert_eq!(
            ahead.check(3),
            Err(Implausible::EntryPastTerm {
                entry_term: 3,
                current_term: 2
            })
        );
    }

    #[test]
    fn a_snapshot_past_the_current_term_is_implausible() {
        let state = HardState::<char> {
            current_term: 1,
            snapshot: Some(snapshot(2, 2)),
            ..HardState::default()
        };
        assert_eq!(
            state.check(3),
            Err(Implausible::EntryPastTerm {
                entry_term: 2,
                current_term: 1
            })
        );
    }

    fn snapshot(last_index: Index, last_term: Term) -> Snapshot {
        Snapshot {
            last_index,
            last_term,
            data: vec![last_index as u8],
        }
    }

    fn log_of(terms: &[Term]) -> HardState<char> {
        let mut state = HardState::default();
        let entries = terms.iter().map(|&term| Entry { term, command: 'x' });
        state.log.extend(entries);
        state
    }

    #[test]
    fn a_snapshot_record_drops_the_prefix_it_covers_and_keeps_the_rest() {
        let mut state = log_of(&[1, 1, 2, 2]);
        state.apply(Record::Snapshot(snapshot(2, 1))).unwrap();
        assert_eq!(state.snapshot_index(), 2);
        assert_eq!(state.first_index(), 3);
        assert_eq!(state.last_index(), 4);
        assert_eq!(state.term_at(2), Some(1));
        assert_eq!(state.term_at(1), None, "compacted");
        assert_eq!(state.term_at(3), Some(2));
        assert_eq!(state.entry(2), None);
        assert_eq!(state.entries_from(1).len(), 2);
        assert_eq!(state.entries_from(4).len(), 1);
        assert_eq!(state.entries_from(5).len(), 0);
        // A later snapshot inside the log, then one past its end.
        state.apply(Record::Snapshot(snapshot(3, 2))).unwrap();
        assert_eq!((state.first_index(), state.last_index()), (4, 4));
        state.apply(Record::Snapshot(snapshot(9, 3))).unwrap();
        assert!(state.log.is_empty());
        assert_eq!((state.last_index(), state.last_term()), (9, 3));
    }

    #[test]
    fn a_snapshot_older_than_the_one_held_leaves_the_log_empty() {
        let mut state = log_of(&[1, 1, 1]);
        state.apply(Record::Snapshot(snapshot(2, 1))).unwrap();
        state.apply(Record::Snapshot(snapshot(1, 1))).unwrap();
        assert_eq!((state.snapshot_index(), state.last_index()), (1, 1));
        assert!(state.log.is_empty());
    }

    #[test]
    fn a_log_record_must_start_after_the_snapshot_and_within_the_log() {
        let mut state = log_of(&[1, 1, 1]);
        state.apply(Record::Snapshot(snapshot(2, 1))).unwrap();
        let record = |from| Record::Log {
            from,
            entries: vec![Entry {
                term: 2,
                command: 'y',
            }],
        };
        assert_eq!(
            state.apply(record(2)),
            Err(LogGap {
                from: 2,
                first: 3,
                last: 3
            })
        );
        assert_eq!(
            state.apply(record(5)),
            Err(LogGap {
                from: 5,
                first: 3,
                last: 3
            })
        );
        state.apply(record(3)).unwrap();
        assert_eq!((state.last_index(), state.last_term()), (3, 2));
        state.apply(record(4)).unwrap();
        assert_eq!(state.last_index(), 4);
    }

    #[test]
    fn a_peer_is_another_server_of_the_cluster() {
        assert!(is_peer(0, 3, 2));
        assert!(!is_peer(0, 3, 0));
        assert!(!is_peer(0, 3, 3));
    }
}
