//! The decisions of Figure 2 that a deliberate bug changes, each in one named place.
//!
//! The core ([`crate::node::Node`]) is generic over [`Rules`]; every default method here is the
//! paper's rule, and [`Figure2`], a zero-sized type that overrides none of them, is the rules a
//! real server runs (`Node<C>` means `Node<C, Figure2>`). The deliberate bugs of
//! [`crate::mutation`] are another implementation, `impl Rules for MutationSet`, kept beside
//! each bug's name and citation, so that the core holds no bug branch: raftd builds
//! `Node<KvCommand, Figure2>` only, every call below is to a constant or the paper's rule once
//! monomorphised, and no bug's code is compiled into it (the KV store's two bugs are
//! [`crate::kv::KvRules`] in the same way, and raftd's store is `KvStore<ExactlyOnce>`). The
//! model checker and the simulator run `Node<C, MutationSet>`, the same core with
//! the same defaults for every rule a bug does not change.
//!
//! Most hooks are one decision (is this log up to date, does this reply count, what is the
//! match now). A bug that changes what a step does next, not just a value, has a hook that
//! names that choice: [`Rules::leader_accepts_append`], [`Rules::commit_before_check`],
//! [`Rules::pre_vote_grant_is_vote`], and [`Rules::append`], which owns the whole merge of
//! AppendEntries entries into the log (where truncate-on-match and its kin differ). What a bug
//! must remember between a decision and the end of the step (the entries a truncation left on
//! disk, a reply to send before the writes) is its [`Rules::Step`], nothing for Figure 2.

use std::fmt::Debug;
use std::hash::Hash;

use crate::message::{AppendOutcome, ConflictHint, Message};
use crate::server_set::ServerSet;
use crate::types::{Entry, Index, NodeId, Term};

/// The decisions of Figure 2 a deliberate bug can change. Every default is the paper's rule;
/// see the module doc.
pub trait Rules: Copy + Debug + Eq + Hash {
    /// What one step remembers for these rules until its effects are put in order (nothing for
    /// Figure 2).
    type Step<C>: Default;

    /// Whether a leader that adopts the higher term of `msg` keeps leading (Figure 2: never;
    /// it becomes a follower).
    fn keeps_leading<C>(&self, _msg: &Message<C>) -> bool {
        false
    }

    /// The grants a new candidate keeps from its previous election (§5.2: none, a tally is
    /// per term).
    fn kept_votes(&self, _previous: ServerSet) -> ServerSet {
        ServerSet::EMPTY
    }

    /// Whether a server that cast `voted_for` in a term may vote for `candidate` in it (§5.2:
    /// one vote per term).
    fn vote_free(&self, voted_for: Option<NodeId>, candidate: NodeId) -> bool {
        voted_for.is_none_or(|v| v == candidate)
    }

    /// §5.4.1: whether a candidate's log, ending at `candidate` (index, term), is at least as
    /// up to date as this server's, ending at `mine`: a later last term, or the same last term
    /// and at least as long.
    fn up_to_date(&self, candidate: (Index, Term), mine: (Index, Term)) -> bool {
        let ((index, term), (my_index, my_term)) = (candidate, mine);
        term > my_term || (term == my_term && index >= my_index)
    }

    /// Whether a granted vote carried by a reply of `reply_term` counts for a candidate in
    /// `current` (§5.2: only a vote of the election's own term).
    fn counts_vote(&self, reply_term: Term, current: Term) -> bool {
        reply_term == current
    }

    /// Whether a leader in `current` takes an AppendEntries reply of `reply_term`, a success or
    /// not (§5.1: only a reply of its own term; an older one answers a leadership that is over,
    /// whose match may since have been cut back).
    fn counts_append_reply(&self, reply_term: Term, current: Term, _success: bool) -> bool {
        reply_term == current
    }

    /// Whether a candidate takes a PreVoteReply as a RequestVoteReply (§9.6: never; a
    /// pre-vote is advice, and the voter recorded nothing).
    fn pre_vote_grant_is_vote(&self) -> bool {
        false
    }

    /// Whether an AppendEntries of `term` is looked at by a server in `current` (Figure 2,
    /// AppendEntries receiver, rule 1: not when it is older).
    fn accepts_append_term(&self, term: Term, current: Term) -> bool {
        term >= current
    }

    /// Whether a reply (RequestVoteReply, AppendEntriesReply, PreVoteReply) of a term older
    /// than the receiver's current one is ignored whole, in every role, and will be at every
    /// later term: Figure 2 takes only replies of the receiver's own term (a vote counts for
    /// its election, an acknowledgement for its leadership), and a current term never goes
    /// down, neither in a running server nor on its disk. The core then drops such a reply
    /// before looking at it ([`crate::node::Node::ignores_for_good`], which also drops a vote
    /// or acknowledgement of a follower's own term), and the model checker may drop it from the
    /// network at once, since its delivery can never change anything ([`ignored_for_good`]).
    /// Not so for a bug that looks at stale replies or lowers a term.
    fn ignores_stale_replies(&self) -> bool {
        true
    }

    /// Whether a RequestVote, AppendEntries or InstallSnapshot of a term below the receiver's
    /// is refused with the receiver's term and nothing else: no term, vote, log or timer of
    /// the receiver changes (Figure 2, both RPCs' receiver rule 1, "reply false if term <
    /// currentTerm"; Figure 13's rule 1). So such a request, once below its receiver's lowest
    /// term for good, can only ever bring its sender a refusal ([`stale_refusal`]). Not so for
    /// a bug that accepts an old term's AppendEntries.
    fn refuses_stale_requests(&self) -> bool {
        true
    }

    /// Whether a leader that receives an AppendEntries of its own term handles it as a
    /// follower would while it keeps leading. Figure 2: no such message exists while Election
    /// Safety holds, and a leader ignores it.
    fn leader_accepts_append(&self) -> bool {
        false
    }

    /// The vote a follower keeps when it accepts an AppendEntries of its term (Figure 2: the
    /// one it cast; a vote is never taken back within a term).
    fn vote_on_append(&self, voted_for: Option<NodeId>) -> Option<NodeId> {
        voted_for
    }

    /// A commit index a follower takes before the consistency check, from the leader's
    /// `leader_commit` and its own `last_index` (Figure 2, rule 5: none; the commit index
    /// follows the check, up to the last new entry).
    fn commit_before_check(&self, _leader_commit: Index, _last_index: Index) -> Option<Index> {
        None
    }

    /// Figure 2, AppendEntries receiver, rules 3 and 4: puts `entries` after
    /// `prev_log_index` in `log`, truncating only at the first index whose term differs (§5.3):
    /// entries that already match stay, so a stale AppendEntries that arrives late cannot delete
    /// what a newer one added. Returns the lowest index that changed, if any.
    fn append<C>(
        &self,
        log: &mut Vec<Entry<C>>,
        prev_log_index: Index,
        entries: Vec<Entry<C>>,
        _step: &mut Self::Step<C>,
    ) -> Option<Index> {
        merge_entries(log, prev_log_index, entries, |log, pos, entry| {
            log.truncate(pos);
            log.push(entry);
            pos as Index + 1
        })
    }

    /// Figure 13: whether a leader sends its snapshot to a follower that needs entries it
    /// compacted away (always: nothing else can bring that follower up to date).
    fn sends_snapshot(&self) -> bool {
        true
    }

    /// Figure 13, InstallSnapshot receiver: whether a follower whose commit index is `commit`
    /// takes a snapshot that ends at `last_index` (only when it reaches past the commit index:
    /// a snapshot at or below it holds nothing this server lacks, and installing it would take
    /// the state machine back).
    fn installs_snapshot(&self, last_index: Index, commit: Index) -> bool {
        last_index > commit
    }

    /// Figure 13, rules 6 and 7: whether the entries after an installed snapshot's last one
    /// stay in the log, given whether the log holds that entry (`matches`: same index and
    /// term). They stay exactly when it does: they follow the snapshot, and some may be
    /// committed; when it does not, the entry there and all after it conflict with the
    /// snapshot, which is committed.
    fn keeps_suffix(&self, matches: bool) -> bool {
        matches
    }

    /// The current term after a follower in `current` installs a snapshot whose last entry is
    /// of `snapshot_term` (Figure 13: unchanged; the snapshot's term is an entry's, and a
    /// current term never goes back).
    fn term_after_install(&self, current: Term, _snapshot_term: Term) -> Term {
        current
    }

    /// A follower's commit index after an accepted AppendEntries: `proposed` is
    /// `min(leaderCommit, index of last new entry)` (Figure 2, rule 5), and the commit index
    /// never goes down.
    fn follower_commit(&self, commit: Index, proposed: Index) -> Index {
        commit.max(proposed)
    }

    /// A leader's look at a success reply of an older term, which it then ignores (Figure 2:
    /// none).
    fn on_stale_success<C>(&self, _log: &[Entry<C>], _match_index: Index) {}

    /// A leader's (matchIndex, nextIndex) for a follower that acknowledged up to `acked`, from
    /// what it knew (`matched`, `next`) and its own last index: the match never goes down, and
    /// never past the leader's log (an acknowledgement of a log the leader has since cut back).
    fn update_match(
        &self,
        (matched, next): (Index, Index),
        acked: Index,
        leader_last: Index,
    ) -> (Index, Index) {
        let matched = matched.max(acked.min(leader_last));
        (matched, next.max(matched + 1))
    }

    /// Whether a leader commits an entry of `entry_term` by counting its replicas in
    /// `current` (§5.4.2, Figure 8: only entries of its own term; older ones commit with them).
    fn commits_by_count(&self, entry_term: Term, current: Term) -> bool {
        entry_term == current
    }

    /// The replicas a leader counts for an entry that `counted` servers, itself included,
    /// store.
    fn replicas(&self, counted: usize) -> usize {
        counted
    }

    /// Whether `replicas` (as [`Rules::replicas`] counts them) commit an entry although they are
    /// no majority of the cluster; `acked` counts the servers known to hold any entry of this
    /// term, the leader included. Never (§5.3: a majority of all the servers, whoever answered).
    fn commits_without_majority(&self, _replicas: usize, _acked: impl FnOnce() -> usize) -> bool {
        false
    }

    /// The last index taken as applied before applying up to `commit` (Figure 2, all servers:
    /// every entry in order, so `last_applied` itself).
    fn applied_before(&self, last_applied: Index, _commit: Index) -> Index {
        last_applied
    }

    /// The term and vote a term/vote record carries (Figure 2: both, "updated on stable
    /// storage before responding to RPCs").
    fn term_vote_record(&self, term: Term, voted_for: Option<NodeId>) -> (Term, Option<NodeId>) {
        (term, voted_for)
    }

    /// What a log record carries past the log's new end (Figure 2: nothing; the record
    /// replaces the log from its first index on).
    fn log_record<C>(&self, _entries: &mut Vec<Entry<C>>, _step: &mut Self::Step<C>) {}

    /// A reply was sent in this step.
    fn on_reply<C>(&self, _step: &mut Self::Step<C>) {}

    /// How many of a step's `writes` records (term/vote, then log) come before its sends: all
    /// of them (the persistence contract on [`crate::node::Effect`]).
    fn sends_after<C>(&self, _step: &Self::Step<C>, writes: usize) -> usize {
        writes
    }

    /// Whether a leader answers a read from its local state instead of through the log
    /// (never: a deposed leader may not know it is one, see [`crate::service`]).
    fn reads_locally(&self) -> bool {
        false
    }
}

/// The rules of the paper, as a real server runs them: every default of [`Rules`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Figure2;

impl Rules for Figure2 {
    type Step<C> = ();
}

/// Whether a server under `rules` ignores the reply `msg` now and for good, given the lowest
/// term it can ever be in from now on (`floor`: its current term, or its disk's where a restart
/// starts, if lower), whether it can never be that term's candidate or leader (`follows`:
/// it follows or pre-campaigns in it, or will reach it again only by restarting, as a
/// follower), and whether it keeps CheckQuorum's record (`notes_contact`, with
/// `Config::check_quorum`: a leader notes any message of its term as contact).
///
/// - A reply of a term below `floor` is stale: under rules that ignore stale replies
///   ([`Rules::ignores_stale_replies`]), in every role and at every later term.
/// - A RequestVoteReply or AppendEntriesReply of the term `floor` itself counts only for a
///   candidate or leader of that term, which a follower or pre-candidate of it never becomes:
///   the core makes a candidate of the next term only, and a leader of a candidate only. (A PreVoteReply of
///   that term is left out: the model's PreVote property looks for a refusal on its way to a
///   pre-candidate, which a follower may become in its own term.)
/// - A refused vote of the term `floor` counts for nothing in any role: a candidate counts
///   grants only, and a leader takes no votes; but a leader that notes contact notes it.
///
/// The one rule behind [`crate::node::Node::ignores_for_good`], here so that the model checker
/// can ask it of a server that is down, about the term it restarts in.
pub fn ignored_for_good<C>(
    rules: &impl Rules,
    msg: &Message<C>,
    floor: Term,
    follows: bool,
    notes_contact: bool,
) -> bool {
    if !rules.ignores_stale_replies() || !msg.is_reply() {
        return false;
    }
    match msg.term().cmp(&floor) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Equal => match msg {
            Message::RequestVoteReply { granted: false, .. } => follows || !notes_contact,
            Message::RequestVoteReply { .. } | Message::AppendEntriesReply { .. } => follows,
            _ => false,
        },
        std::cmp::Ordering::Greater => false,
    }
}

/// The refusal a server under `rules` gives the request `msg` now and at every later delivery,
/// with its term set to `term`, given the lowest term the server can ever be in from now on
/// (`floor`, as for [`ignored_for_good`]): `None` unless `msg` is a RequestVote, AppendEntries
/// or InstallSnapshot of a term below `floor`, refused under these rules
/// ([`Rules::refuses_stale_requests`]).
///
/// The refusal carries the receiver's term at delivery, which only the caller can bound: the
/// model checker passes the highest term of its bounds, and a sender that ignores that refusal
/// for good ignores every lower one too (below its floor, or at it while it follows), so the
/// request can change nothing, ever. Only the refusal's kind and term are meant to be read: an
/// AppendEntriesReply's conflict hint is left empty.
pub fn stale_refusal<C>(
    rules: &impl Rules,
    msg: &Message<C>,
    floor: Term,
    term: Term,
) -> Option<Message<C>> {
    if !rules.refuses_stale_requests() || msg.term() >= floor {
        return None;
    }
    match msg {
        Message::RequestVote { .. } => Some(Message::RequestVoteReply {
            term,
            granted: false,
        }),
        Message::AppendEntries(_) | Message::InstallSnapshot { .. } => {
            Some(Message::AppendEntriesReply {
                term,
                outcome: AppendOutcome::Conflict(ConflictHint {
                    x_term: None,
                    x_index: 0,
                    x_len: 0,
                }),
            })
        }
        // A PreVote's refusal is no vote: a pre-candidate of the refusal's term may be the
        // one the model's PreVote property looks for (see `ignored_for_good`).
        Message::PreVote { .. }
        | Message::RequestVoteReply { .. }
        | Message::AppendEntriesReply { .. }
        | Message::PreVoteReply { .. } => None,
    }
}

/// Puts `entries` after `prev_log_index` in `log`, skipping each entry the log already holds
/// with the same term and appending past its end; an entry whose term differs from the one at
/// its position (0-based `pos`) goes to `conflict`, which puts it in the log and returns the
/// lowest index it changed. Returns the lowest index that changed, if any. [`Rules::append`]
/// is this with Figure 2's conflict rule (truncate there); a deliberate bug may put the entry
/// elsewhere.
pub fn merge_entries<C>(
    log: &mut Vec<Entry<C>>,
    prev_log_index: Index,
    entries: Vec<Entry<C>>,
    mut conflict: impl FnMut(&mut Vec<Entry<C>>, usize, Entry<C>) -> Index,
) -> Option<Index> {
    let mut changed: Option<Index> = None;
    for (offset, entry) in entries.into_iter().enumerate() {
        let pos = prev_log_index as usize + offset;
        let index = match log.get(pos) {
            Some(existing) if existing.term == entry.term => continue,
            Some(_) => conflict(log, pos, entry),
            None => {
                log.push(entry);
                log.len() as Index
            }
        };
        changed = Some(changed.map_or(index, |c| c.min(index)));
    }
    changed
}
