//! Deliberate bugs. Each variant switches off one rule of Figure 2 (or of the KV service) the
//! way a shipped implementation got it wrong, so that the checkers can be shown to catch it.
//! The core takes them as its [`Rules`]: `impl Rules for MutationSet` below holds each bug's
//! code beside its name, with Figure 2's rule (the trait's default, through [`Figure2`]) wherever
//! no switched-on bug applies. A real server runs `Node<C, Figure2>` and none of this code.
//!
//! Two kinds share the enum, so that one `MutationSet` and one `--bug NAME` switch on either:
//! - the *catalog* ([`Mutation::ALL`]): bugs that shipped in real implementations or are known
//!   lab mistakes, each with a configuration the model is known to catch it in;
//! - the *probes* ([`Mutation::PROBES`]): plausible mistakes written for this project only,
//!   after the model and its properties, to measure how general the checker is on bugs it was
//!   not tuned for (issue 11). They are test-only instruments, not claims about the world, so
//!   the catalog (`raftcheck bugs`) leaves them out; `--bug NAME` still takes them so that the
//!   README's generality table can be reproduced.

use std::fmt;
use std::str::FromStr;

use crate::kv::KvRules;
use crate::message::Message;
use crate::rules::{merge_entries, Figure2, Rules};
use crate::server_set::ServerSet;
use crate::types::{Entry, Index, NodeId, Term};

/// One known real-world Raft bug. See `../shared/BUGS.md` for where each was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mutation {
    /// Leader commits an entry of an older term once a majority stores it (Figure 8).
    Figure8Commit,
    /// `voted_for` is not written to stable storage.
    VoteNotPersisted,
    /// `current_term` is not written to stable storage.
    TermNotPersisted,
    /// Replies (vote grants, append acknowledgements) are sent before the state is persisted.
    AckBeforePersist,
    /// Follower truncates after `prev_log_index` on every AppendEntries, even when entries match.
    TruncateOnMatch,
    /// Vote granted when the candidate's log is at least as long, ignoring the last term.
    UpToDateByLength,
    /// Vote granted without comparing logs.
    NoUpToDateCheck,
    /// Leader adopts a higher term but keeps acting as leader.
    LeaderIgnoresHigherTerm,
    /// Leader handles an AppendEntries of its own or a newer term as a follower would (adopts
    /// the term, repairs its own log to match the sender's) but keeps acting as leader.
    LeaderAcceptsAppend,
    /// Follower clears `voted_for` when it accepts an AppendEntries of its current term.
    VoteResetOnAppend,
    /// Candidate counts granted votes from replies of an older term.
    StaleVoteCount,
    /// Leader sets `match_index` from a reply without taking the maximum.
    MatchIndexRegress,
    /// Follower sets `commit_index = leaderCommit` even when that is lower.
    CommitIndexRegress,
    /// Follower sets `commit_index = min(leaderCommit, its own last index)` before the
    /// consistency check, rather than `min(leaderCommit, index of last new entry)` after it.
    CommitBeyondLastNew,
    /// KV service applies a retried client request a second time.
    KvNoDedup,
    /// Leader answers Get from local state without a committed entry of its term.
    StaleRead,
    /// In a step that writes both a term/vote record and a log record, the sends wait for the
    /// first but not for the second: a follower that adopts a term and appends in one step
    /// acknowledges entries that are written but not yet durable, so a crash can lose them.
    /// (A step with one record is unchanged.)
    HardStateBeforeEntriesSynced,
    /// A follower that replaced a conflicting suffix in memory writes only the new entries to
    /// its log, in place, leaving the rest of the stale suffix on disk for the next restart.
    AppendWithoutTruncate,
    /// With PreVote, a candidate counts a granted PreVote reply as a vote: a grant carries the
    /// term the pre-candidate asked about, which is the term it then stands in, so a late grant
    /// of the pre-vote round looks like a vote of the election. The voter recorded no vote and
    /// may vote for another candidate of that term. (canonical/raft issue 196, fixed by PR 248.)
    PreVoteCountedAsVote,
    /// The log prefix a snapshot replaces is purged before the snapshot is durable: a crash in
    /// between leaves neither, and committed entries are gone. (openraft PR 753, purge logs
    /// covered by the snapshot; 6.5840's `save(state, snapshot)` is one atomic step for this
    /// reason.) A store's fault, not the core's: the core's record says both at once, and it is
    /// the model's write-ahead log that splits it into the writes this bug reorders.
    PurgeBeforeSnapshotDurable,
    /// On InstallSnapshot a follower drops its whole log even when it holds the snapshot's last
    /// entry and entries after it (Figure 13, rule 6; openraft PRs 559 and 561).
    SnapshotDiscardsMatchingSuffix,
    /// A follower installs a snapshot older than what it already applied, and its state machine
    /// goes back (6.5840 3D: "snapshot index went backwards").
    SnapshotRegress,
    /// Installing a snapshot sets `current_term` to the snapshot's last term, so the term goes
    /// back (willemt/raft PR 118, bug 4 of the SandTable paper).
    SnapshotTermAsCurrent,
    /// Probe (votes): a vote is granted whenever the term and the log qualify, even when
    /// `voted_for` names another candidate of the same term.
    VoteIgnoresVotedFor,
    /// Probe (votes): a candidate adds its own vote to the tally of its previous election
    /// instead of starting a fresh one, so grants from an older term still count.
    VoteTallyNotReset,
    /// Probe (commit): the leader counts its own copy twice, once as the leader and once more
    /// in the loop over all servers' match indices.
    CommitCountsSelfTwice,
    /// Probe (progress tracking): on a successful reply the leader sets the follower's match
    /// index to its own last index, not to the index the request covered.
    MatchFromLeaderLog,
    /// Probe (truncation): at the first conflict the follower truncates one entry too late,
    /// keeping the conflicting entry in front of the new one (an off-by-one).
    TruncateAfterConflict,
    /// Probe (truncation): the follower overwrites a conflicting entry in place and keeps the
    /// rest of its old suffix instead of truncating it.
    OverwriteWithoutTruncate,
    /// Probe (terms): a follower accepts an AppendEntries of an older term instead of
    /// rejecting it.
    AcceptStaleTermAppend,
    /// Probe (applying): when the commit index moves up by more than one, the server applies
    /// only the newest committed entry. Written with the "applied in order, once" property, to
    /// show that it can fail, so not part of the generality measure.
    ApplyNewestOnly,
    /// Probe (robustness, not a rule): a leader or former leader reads the term of the entry
    /// an AppendEntries reply of an older term acknowledged, indexing its log with the reply's
    /// 1-based match index as if it were 0-based and without a bound check, so it panics with
    /// an index out of range. It exists to show that a panicking core is reported as a
    /// violation with a trace, not as a crash of the checker.
    PanicOnStaleReply,
    /// Probe (KV sessions): a write of an unknown or expired session is applied as the first
    /// of a new session instead of being refused, so a retry whose session expired by log time
    /// after its first attempt was applied takes effect twice.
    ExpiredSessionAppliedAsNew,
    /// Probe (commit, issue 22): the leader also commits an index held by a majority of the
    /// servers that have acknowledged an entry this term (itself and the followers whose match
    /// index is above 0), as if the others were not there. With three servers two replicas
    /// are a majority anyway; with four or five, two are not.
    CommitQuorumOfAcked,
    /// Probe (progress tracking, issue 22): a leader counts a successful AppendEntries reply
    /// of an earlier term, one that answered it when it led before. Only a server that leads
    /// twice gets one, and it misleads only if its log was cut back in between: three terms,
    /// and five servers for the middle leader to win without the followers that acknowledged.
    StaleAppendReplyCounted,
    /// Probe (snapshots, issue 21): a follower that installs a snapshot keeps the entries
    /// after it even when its entry at the snapshot's last index conflicts with it (Figure 13
    /// step 7 says drop them: they follow an entry the committed history does not hold).
    InstallKeepsConflictingSuffix,
    /// Probe (snapshots, issue 21): a follower installs a snapshot that ends exactly at its
    /// commit index (Figure 13 installs only one reaching past it), replacing a state machine
    /// that may already have applied that far.
    InstallAtCommitIndex,
    /// Probe (snapshots, liveness): a leader never sends InstallSnapshot, so a follower whose
    /// next index falls at or below the leader's snapshot gets nothing more (the lab 3D
    /// solution that compacts but never implemented the sender). No safety property can see
    /// it; "a follower catches up by InstallSnapshot" is never reached.
    SnapshotNeverSent,
}

impl Mutation {
    /// The catalog: every real-world bug, in catalog order (probes are not in it).
    pub const ALL: [Mutation; 23] = [
        Mutation::Figure8Commit,
        Mutation::VoteNotPersisted,
        Mutation::TermNotPersisted,
        Mutation::AckBeforePersist,
        Mutation::TruncateOnMatch,
        Mutation::UpToDateByLength,
        Mutation::NoUpToDateCheck,
        Mutation::LeaderIgnoresHigherTerm,
        Mutation::LeaderAcceptsAppend,
        Mutation::VoteResetOnAppend,
        Mutation::StaleVoteCount,
        Mutation::MatchIndexRegress,
        Mutation::CommitIndexRegress,
        Mutation::CommitBeyondLastNew,
        Mutation::KvNoDedup,
        Mutation::StaleRead,
        Mutation::HardStateBeforeEntriesSynced,
        Mutation::AppendWithoutTruncate,
        Mutation::PreVoteCountedAsVote,
        Mutation::PurgeBeforeSnapshotDurable,
        Mutation::SnapshotDiscardsMatchingSuffix,
        Mutation::SnapshotRegress,
        Mutation::SnapshotTermAsCurrent,
    ];

    /// The probes of issue 11, in the order of the README's generality table.
    pub const PROBES: [Mutation; 15] = [
        Mutation::VoteIgnoresVotedFor,
        Mutation::VoteTallyNotReset,
        Mutation::CommitCountsSelfTwice,
        Mutation::MatchFromLeaderLog,
        Mutation::TruncateAfterConflict,
        Mutation::OverwriteWithoutTruncate,
        Mutation::AcceptStaleTermAppend,
        Mutation::ApplyNewestOnly,
        Mutation::PanicOnStaleReply,
        Mutation::ExpiredSessionAppliedAsNew,
        Mutation::CommitQuorumOfAcked,
        Mutation::StaleAppendReplyCounted,
        Mutation::InstallKeepsConflictingSuffix,
        Mutation::InstallAtCommitIndex,
        Mutation::SnapshotNeverSent,
    ];

    /// Whether this is a probe (test-only, not in the catalog) rather than a real-world bug.
    pub fn is_probe(self) -> bool {
        Mutation::PROBES.contains(&self)
    }

    /// Every mutation: the catalog, then the probes.
    fn every() -> impl Iterator<Item = Mutation> {
        (Mutation::ALL.into_iter()).chain(Mutation::PROBES)
    }

    /// The catalog name used on the command line (`--bug <name>`).
    pub fn name(self) -> &'static str {
        match self {
            Mutation::Figure8Commit => "figure8-commit",
            Mutation::VoteNotPersisted => "vote-not-persisted",
            Mutation::TermNotPersisted => "term-not-persisted",
            Mutation::AckBeforePersist => "ack-before-persist",
            Mutation::TruncateOnMatch => "truncate-on-match",
            Mutation::UpToDateByLength => "up-to-date-by-length",
            Mutation::NoUpToDateCheck => "no-up-to-date-check",
            Mutation::LeaderIgnoresHigherTerm => "leader-ignores-higher-term",
            Mutation::LeaderAcceptsAppend => "leader-accepts-append",
            Mutation::VoteResetOnAppend => "vote-reset-on-append",
            Mutation::StaleVoteCount => "stale-vote-count",
            Mutation::MatchIndexRegress => "match-index-regress",
            Mutation::CommitIndexRegress => "commit-index-regress",
            Mutation::CommitBeyondLastNew => "commit-beyond-last-new",
            Mutation::KvNoDedup => "kv-no-dedup",
            Mutation::StaleRead => "stale-read",
            Mutation::HardStateBeforeEntriesSynced => "hardstate-before-entries-synced",
            Mutation::AppendWithoutTruncate => "append-without-truncate",
            Mutation::PreVoteCountedAsVote => "prevote-counted-as-vote",
            Mutation::PurgeBeforeSnapshotDurable => "purge-before-snapshot-durable",
            Mutation::SnapshotDiscardsMatchingSuffix => "snapshot-discards-matching-suffix",
            Mutation::SnapshotRegress => "snapshot-regress",
            Mutation::SnapshotTermAsCurrent => "snapshot-term-as-current",
            Mutation::VoteIgnoresVotedFor => "vote-ignores-voted-for",
            Mutation::VoteTallyNotReset => "vote-tally-not-reset",
            Mutation::CommitCountsSelfTwice => "commit-counts-self-twice",
            Mutation::MatchFromLeaderLog => "match-from-leader-log",
            Mutation::TruncateAfterConflict => "truncate-after-conflict",
            Mutation::OverwriteWithoutTruncate => "overwrite-without-truncate",
            Mutation::AcceptStaleTermAppend => "accept-stale-term-append",
            Mutation::ApplyNewestOnly => "apply-newest-only",
            Mutation::PanicOnStaleReply => "panic-on-stale-reply",
            Mutation::ExpiredSessionAppliedAsNew => "expired-session-applied-as-new",
            Mutation::CommitQuorumOfAcked => "commit-quorum-of-acked",
            Mutation::StaleAppendReplyCounted => "stale-append-reply-counted",
            Mutation::InstallKeepsConflictingSuffix => "install-keeps-conflicting-suffix",
            Mutation::InstallAtCommitIndex => "install-at-commit-index",
            Mutation::SnapshotNeverSent => "snapshot-never-sent",
        }
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

// Every mutation needs a bit of `MutationSet`.
const _: () = assert!(Mutation::ALL.len() + Mutation::PROBES.len() <= u64::BITS as usize);

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is neither in the catalog nor a probe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown bug `{0}` (catalog: {catalog}; probes: {probes})",
    catalog = Mutation::ALL.map(Mutation::name).join(", "),
    probes = Mutation::PROBES.map(Mutation::name).join(", ")
)]
pub struct UnknownMutation(pub String);

impl FromStr for Mutation {
    type Err = UnknownMutation;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mutation::every()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownMutation(s.to_string()))
    }
}

/// A set of mutations as a bit set: `Copy` and one word, so it costs nothing in a model state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MutationSet(u64);

impl MutationSet {
    /// No mutation: the correct core.
    pub const NONE: MutationSet = MutationSet(0);

    pub fn contains(self, m: Mutation) -> bool {
        self.0 & m.bit() != 0
    }

    pub fn with(self, m: Mutation) -> MutationSet {
        MutationSet(self.0 | m.bit())
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Mutation> {
        Mutation::every().filter(move |m| self.contains(*m))
    }
}

impl FromIterator<Mutation> for MutationSet {
    fn from_iter<I: IntoIterator<Item = Mutation>>(iter: I) -> Self {
        iter.into_iter().fold(MutationSet::NONE, MutationSet::with)
    }
}

/// The KV store with these bugs switched on: the session rules (the defaults of [`KvRules`])
/// wherever neither of its two bugs applies.
impl KvRules for MutationSet {
    fn deduplicates(&self) -> bool {
        // `kv-no-dedup`: a retried write is applied again, as a new one.
        !self.contains(Mutation::KvNoDedup)
    }

    fn expired_session_is_new(&self) -> bool {
        // The `expired-session-applied-as-new` probe: the store takes the write for the first
        // of a new session.
        self.contains(Mutation::ExpiredSessionAppliedAsNew)
    }
}

/// What a step of a mutated core remembers until its effects are put in order.
#[derive(Debug)]
pub struct BugStep<C> {
    /// `append-without-truncate`: the old entries a truncation removed from memory, which the
    /// buggy log record leaves on disk past the new ones.
    stale_suffix: Vec<Entry<C>>,
    /// `ack-before-persist`: the step replied, and its sends go before its writes.
    replied: bool,
}

impl<C> Default for BugStep<C> {
    fn default() -> Self {
        BugStep {
            stale_suffix: Vec::new(),
            replied: false,
        }
    }
}

/// The core with these bugs switched on: Figure 2 (the defaults of [`Rules`], through
/// [`Figure2`]) wherever none of them applies.
impl Rules for MutationSet {
    type Step<C> = BugStep<C>;

    fn keeps_leading<C>(&self, msg: &Message<C>) -> bool {
        self.contains(Mutation::LeaderIgnoresHigherTerm)
            || (self.contains(Mutation::LeaderAcceptsAppend)
                && matches!(msg, Message::AppendEntries(_)))
    }

    fn kept_votes(&self, previous: ServerSet) -> ServerSet {
        // The `vote-tally-not-reset` probe keeps the grants of an earlier election.
        if self.contains(Mutation::VoteTallyNotReset) {
            previous
        } else {
            Figure2.kept_votes(previous)
        }
    }

    fn vote_free(&self, voted_for: Option<NodeId>, candidate: NodeId) -> bool {
        self.contains(Mutation::VoteIgnoresVotedFor) || Figure2.vote_free(voted_for, candidate)
    }

    fn up_to_date(&self, candidate: (Index, Term), mine: (Index, Term)) -> bool {
        if self.contains(Mutation::NoUpToDateCheck) {
            true
        } else if self.contains(Mutation::UpToDateByLength) {
            candidate.0 >= mine.0
        } else {
            Figure2.up_to_date(candidate, mine)
        }
    }

    fn counts_vote(&self, reply_term: Term, current: Term) -> bool {
        Figure2.counts_vote(reply_term, current)
            || (reply_term < current && self.contains(Mutation::StaleVoteCount))
    }

    fn counts_append_reply(&self, reply_term: Term, current: Term, success: bool) -> bool {
        // The `stale-append-reply-counted` probe: a success from an earlier leadership counts.
        Figure2.counts_append_reply(reply_term, current, success)
            || (reply_term < current && success && self.contains(Mutation::StaleAppendReplyCounted))
    }

    fn ignores_stale_replies(&self) -> bool {
        // The three bugs that look at a stale reply, and the two that lower a term (a running
        // server's on install, a disk's by never writing it), after which an old reply is no
        // longer stale.
        let looks_or_lowers = [
            Mutation::StaleVoteCount,
            Mutation::StaleAppendReplyCounted,
            Mutation::PanicOnStaleReply,
            Mutation::SnapshotTermAsCurrent,
            Mutation::TermNotPersisted,
        ];
        !looks_or_lowers.into_iter().any(|m| self.contains(m))
    }

    fn refuses_stale_requests(&self) -> bool {
        !self.contains(Mutation::AcceptStaleTermAppend)
    }

    fn pre_vote_grant_is_vote(&self) -> bool {
        // A grant of the pre-vote round carries the very term the candidate now stands in, so
        // it is counted as a vote in it.
        self.contains(Mutation::PreVoteCountedAsVote)
    }

    fn accepts_append_term(&self, term: Term, current: Term) -> bool {
        self.contains(Mutation::AcceptStaleTermAppend) || Figure2.accepts_append_term(term, current)
    }

    fn leader_accepts_append(&self) -> bool {
        // The leader goes on to repair its own log like a follower's.
        self.contains(Mutation::LeaderAcceptsAppend)
    }

    fn vote_on_append(&self, voted_for: Option<NodeId>) -> Option<NodeId> {
        if self.contains(Mutation::VoteResetOnAppend) {
            None
        } else {
            Figure2.vote_on_append(voted_for)
        }
    }

    fn commit_before_check(&self, leader_commit: Index, last_index: Index) -> Option<Index> {
        // The bug: leaderCommit is held against the whole local log before the consistency
        // check has shown any of it to be the leader's. (After the append, min with the local
        // last index equals min with the last new one when the request carries the leader's log
        // to its end, since leaderCommit is within that log; a batch that carries part of the
        // tail leaves leaderCommit past it, and then a follower holding a deposed leader's
        // entries past the batch would apply them too.)
        self.contains(Mutation::CommitBeyondLastNew)
            .then(|| leader_commit.min(last_index))
    }

    fn append<C>(
        &self,
        log: &mut Vec<Entry<C>>,
        prev_log_index: Index,
        entries: Vec<Entry<C>>,
        step: &mut BugStep<C>,
    ) -> Option<Index> {
        if self.contains(Mutation::TruncateOnMatch) {
            // Truncates after `prev_log_index` whatever the entries there are.
            return (log.len() as Index > prev_log_index || !entries.is_empty()).then(|| {
                log.truncate(prev_log_index as usize);
                log.extend(entries);
                prev_log_index + 1
            });
        }
        let overwrite = self.contains(Mutation::OverwriteWithoutTruncate);
        // 1 with the `truncate-after-conflict` probe: the conflicting entry survives.
        let keep = usize::from(self.contains(Mutation::TruncateAfterConflict));
        let stale_on_disk = self.contains(Mutation::AppendWithoutTruncate);
        // With none of the three, Figure 2's rule: truncate at the conflict.
        merge_entries(log, prev_log_index, entries, |log, pos, entry| {
            if overwrite {
                log[pos] = entry;
                return pos as Index + 1;
            }
            let removed = log.split_off(pos + keep);
            if stale_on_disk && step.stale_suffix.is_empty() {
                step.stale_suffix = removed;
            }
            log.push(entry);
            (pos + keep) as Index + 1
        })
    }

    fn follower_commit(&self, commit: Index, proposed: Index) -> Index {
        if self.contains(Mutation::CommitIndexRegress) {
            proposed
        } else {
            Figure2.follower_commit(commit, proposed)
        }
    }

    fn on_stale_success<C>(&self, log: &[Entry<C>], match_index: Index) {
        if self.contains(Mutation::PanicOnStaleReply) {
            // The probe looks at the entry a stale reply acknowledged (to log it, say) with the
            // 1-based index as a 0-based one, unchecked: it panics whenever that entry is the
            // last of the log, or the log is empty. The reply is then ignored.
            let _acknowledged = &log[match_index as usize];
        }
    }

    fn update_match(
        &self,
        (matched, next): (Index, Index),
        acked: Index,
        leader_last: Index,
    ) -> (Index, Index) {
        let acked = if self.contains(Mutation::MatchFromLeaderLog) {
            leader_last
        } else {
            acked
        };
        if self.contains(Mutation::MatchIndexRegress) {
            let acked = acked.min(leader_last);
            (acked, acked + 1)
        } else {
            Figure2.update_match((matched, next), acked, leader_last)
        }
    }

    fn commits_by_count(&self, entry_term: Term, current: Term) -> bool {
        self.contains(Mutation::Figure8Commit) || Figure2.commits_by_count(entry_term, current)
    }

    fn replicas(&self, counted: usize) -> usize {
        counted + usize::from(self.contains(Mutation::CommitCountsSelfTwice))
    }

    fn commits_without_majority(&self, replicas: usize, acked: impl FnOnce() -> usize) -> bool {
        // The `commit-quorum-of-acked` probe: two or more replicas that are a majority of the
        // servers that acknowledged an entry this term.
        self.contains(Mutation::CommitQuorumOfAcked) && replicas >= 2 && 2 * replicas > acked()
    }

    fn applied_before(&self, last_applied: Index, commit: Index) -> Index {
        if self.contains(Mutation::ApplyNewestOnly) && commit > last_applied {
            commit - 1
        } else {
            Figure2.applied_before(last_applied, commit)
        }
    }

    fn installs_snapshot(&self, last_index: Index, commit: Index) -> bool {
        // `snapshot-regress`: whatever the snapshot's index, it replaces the state machine.
        // `install-at-commit-index` (probe): one that ends at the commit index does too.
        self.contains(Mutation::SnapshotRegress)
            || (self.contains(Mutation::InstallAtCommitIndex) && last_index == commit)
            || Figure2.installs_snapshot(last_index, commit)
    }

    fn sends_snapshot(&self) -> bool {
        // `snapshot-never-sent` (probe): the leader leaves such a follower behind.
        !self.contains(Mutation::SnapshotNeverSent) && Figure2.sends_snapshot()
    }

    fn keeps_suffix(&self, matches: bool) -> bool {
        // `snapshot-discards-matching-suffix`: the whole log goes, matching or not.
        // `install-keeps-conflicting-suffix` (probe): it stays, matching or not.
        !self.contains(Mutation::SnapshotDiscardsMatchingSuffix)
            && (self.contains(Mutation::InstallKeepsConflictingSuffix)
                || Figure2.keeps_suffix(matches))
    }

    fn term_after_install(&self, current: Term, snapshot_term: Term) -> Term {
        if self.contains(Mutation::SnapshotTermAsCurrent) {
            snapshot_term
        } else {
            Figure2.term_after_install(current, snapshot_term)
        }
    }

    fn term_vote_record(&self, term: Term, voted_for: Option<NodeId>) -> (Term, Option<NodeId>) {
        let term = if self.contains(Mutation::TermNotPersisted) {
            0
        } else {
            term
        };
        let voted_for = voted_for.filter(|_| !self.contains(Mutation::VoteNotPersisted));
        (term, voted_for)
    }

    fn log_record<C>(&self, entries: &mut Vec<Entry<C>>, step: &mut BugStep<C>) {
        // `append-without-truncate`: the truncation was at the record's first index (the bug's
        // only log change in its step), so the removed entries start there too: those past the
        // new ones are what the disk still holds.
        let stale = std::mem::take(&mut step.stale_suffix);
        entries.extend(stale.into_iter().skip(entries.len()));
    }

    fn on_reply<C>(&self, step: &mut BugStep<C>) {
        step.replied = true;
    }

    fn sends_after<C>(&self, step: &BugStep<C>, writes: usize) -> usize {
        if self.contains(Mutation::AckBeforePersist) && step.replied {
            // Replies (and whatever else the step sends) go before the writes.
            0
        } else if self.contains(Mutation::HardStateBeforeEntriesSynced) && writes == 2 {
            // The sends wait for the term/vote record but not for the entries.
            1
        } else {
            Figure2.sends_after::<C>(&(), writes)
        }
    }

    fn reads_locally(&self) -> bool {
        self.contains(Mutation::StaleRead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for m in Mutation::every() {
            assert_eq!(m.name().parse::<Mutation>(), Ok(m));
        }
        let set: MutationSet = Mutation::every().collect();
        assert_eq!(set.iter().count(), Mutation::every().count());
    }

    #[test]
    fn probes_are_apart_from_the_catalog() {
        assert!(Mutation::PROBES.iter().all(|m| m.is_probe()));
        assert!(Mutation::ALL.iter().all(|m| !m.is_probe()));
    }

    /// Exactly the five bugs that look at a stale reply or lower a term keep stale replies in
    /// play (the model checker then leaves them on its network), alone or beside any other bug.
    #[test]
    fn stale_replies_are_ignored_for_good_but_under_five_bugs() {
        let looks_or_lowers = [
            Mutation::StaleVoteCount,
            Mutation::StaleAppendReplyCounted,
            Mutation::PanicOnStaleReply,
            Mutation::SnapshotTermAsCurrent,
            Mutation::TermNotPersisted,
        ];
        assert!(MutationSet::NONE.ignores_stale_replies());
        for m in Mutation::every() {
            let ignores = !looks_or_lowers.contains(&m);
            assert_eq!(
                MutationSet::NONE.with(m).ignores_stale_replies(),
                ignores,
                "{m}"
            );
            for other in Mutation::every() {
                let both = MutationSet::NONE.with(m).with(other);
                let expected = ignores && !looks_or_lowers.contains(&other);
                assert_eq!(both.ignores_stale_replies(), expected, "{m} and {other}");
            }
        }
    }

    /// Only accept-stale-term-append handles a request of an older term other than by
    /// refusing it, alone or with any other bug.
    #[test]
    fn only_accepting_an_old_append_keeps_stale_requests_from_being_refused() {
        assert!(MutationSet::NONE.refuses_stale_requests());
        for m in Mutation::every() {
            for other in Mutation::every() {
                let both = MutationSet::NONE.with(m).with(other);
                let accepts = [m, other].contains(&Mutation::AcceptStaleTermAppend);
                assert_eq!(both.refuses_stale_requests(), !accepts, "{m} and {other}");
            }
        }
    }

    #[test]
    fn unknown_name_is_an_error_listing_the_catalog() {
        let err = "nope".parse::<Mutation>().unwrap_err();
        assert!(err.to_string().contains("figure8-commit"));
        assert!(err.to_string().contains("vote-ignores-voted-for"));
    }
}
