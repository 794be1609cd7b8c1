//! raft-proofs: the safety argument of Raft (the paper's §5.4 and Ongaro's dissertation §3.6),
//! written as lemmas, each tied to the machine check that discharges it.
//!
//! The argument runs bottom-up. Terms and votes make elections unique; the AppendEntries
//! consistency check makes logs agree on prefixes; the vote restriction makes every new leader
//! hold what was committed before it; the current-term commit rule keeps that true across
//! leader changes; and persistence before replying keeps all of it true across crashes. Every
//! lemma below names:
//!
//! - the model property (`raft_model::properties`) that checks it in every reachable state,
//! - the deliberate bug (`raft_impl::Mutation`) that breaks it, so the check is known to be able
//!   to fail.
//!
//! The bounds under which each was checked exhaustively are the theorem configurations in
//! `tests/theorems.rs`, which also pin the exact number of unique states so that a silent change
//! of the model (or of the core) is seen.
//!
//! A bounded check is not a proof for all cluster sizes and all terms: it is an exhaustive
//! search of every interleaving of messages, losses, timeouts, crashes and restarts within the
//! stated bounds, run on the real core rather than on a specification of it. The prose of each
//! lemma gives the inductive reason it holds beyond the bounds.

use raft_impl::Mutation;

/// One step of the safety argument.
#[derive(Clone, Copy, Debug)]
pub struct Lemma {
    /// Short name, as in the paper where it has one.
    pub name: &'static str,
    /// What is claimed.
    pub statement: &'static str,
    /// Why it holds (the inductive argument, in a sentence or two).
    pub argument: &'static str,
    /// The model property that checks it (a name from `raft_model::properties`).
    pub property: &'static str,
    /// Deliberate bugs that violate it, each in its catalog configuration
    /// (`raft_model::catalog`); `tests/theorems.rs` checks every one of these claims.
    pub broken_by: &'static [Mutation],
}

/// What the argument assumes of the implementation rather than proves, by the name of the model
/// property that checks it: every step runs to its end ("no step panics"), since a step that
/// panics leaves no successor state for any lemma to be about. No bug of the catalog breaks it;
/// the theorem runs check that it holds alongside the lemmas.
pub const PREMISES: &[&str] = &["no step panics"];

/// The lemmas, in the order the argument uses them.
pub const LEMMAS: &[Lemma] = &[
    Lemma {
        name: "Storage is faithful",
        statement: "A running server's durable state, with its pending records replayed onto it \
                    in order, is exactly the state it runs with; so a restart recovers the \
                    state a server had made durable, no more and no less.",
        argument: "Every step that changes the term or vote writes both, and every step that \
                   changes the log writes it from the lowest changed index to its end, dropping \
                   what follows; records are applied in the order written, and a crash keeps a \
                   prefix of them (the write-ahead log drops a torn tail and refuses any other \
                   damage). The lemmas below lean on it wherever they say \"persisted\".",
        property: "storage replays to the running state",
        broken_by: &[
            Mutation::VoteNotPersisted,
            Mutation::TermNotPersisted,
            Mutation::AppendWithoutTruncate,
        ],
    },
    Lemma {
        name: "Election Safety",
        statement: "At most one server is ever leader of a given term.",
        argument: "A leader of term t holds votes from a majority for t; a server votes once per \
                   term and its vote is durable before the grant leaves it, so two majorities for \
                   t would share a server that voted twice.",
        property: "election safety",
        broken_by: &[
            Mutation::VoteNotPersisted,
            Mutation::TermNotPersisted,
            Mutation::LeaderIgnoresHigherTerm,
            Mutation::LeaderAcceptsAppend,
            Mutation::VoteResetOnAppend,
            Mutation::StaleVoteCount,
        ],
    },
    Lemma {
        name: "Leader Append-Only",
        statement: "A leader never overwrites or deletes entries in its own log during its term.",
        argument: "A leader only appends proposals and never applies AppendEntries of its own \
                   term; a higher term ends its leadership before any truncation can happen.",
        property: "leader append-only",
        broken_by: &[Mutation::LeaderAcceptsAppend],
    },
    Lemma {
        name: "Log Matching",
        statement: "If two logs hold an entry with the same index and term, they are identical up \
                    to that index.",
        argument: "By Election Safety one leader creates the entries of a term, at distinct \
                   indices; a follower accepts entries only after its entry at prevLogIndex \
                   matches prevLogTerm, so by induction on the index the prefixes agree.",
        property: "log matching",
        broken_by: &[
            Mutation::LeaderIgnoresHigherTerm,
            Mutation::LeaderAcceptsAppend,
        ],
    },
    Lemma {
        name: "Leader Completeness",
        statement: "An entry committed in term t is in the log of every leader of every term \
                    after t.",
        argument: "The commit needs a majority storing it durably; the next leader needs a \
                   majority of votes; a voter in both only grants to a log at least as up to \
                   date (last term, then last index), which by Log Matching and the current-term \
                   commit rule holds the entry.",
        property: "leader completeness",
        broken_by: &[
            Mutation::UpToDateByLength,
            Mutation::NoUpToDateCheck,
            Mutation::Figure8Commit,
        ],
    },
    Lemma {
        name: "Committed entries are durable on a majority",
        statement: "Every committed entry is in the persisted log of a majority of servers.",
        argument: "A follower acknowledges an entry only after persisting it, a leader counts \
                   itself only for entries it persisted, and a persisted entry is removed only \
                   by a leader that lacks it, which Leader Completeness rules out.",
        property: "committed durable on majority",
        broken_by: &[
            Mutation::AckBeforePersist,
            Mutation::TruncateOnMatch,
            Mutation::LeaderAcceptsAppend,
            Mutation::HardStateBeforeEntriesSynced,
        ],
    },
    Lemma {
        name: "Committed entries are never overwritten",
        statement: "Once a server holds an index as committed, the entry there never changes, \
                    on any server that holds it as committed, across crashes and restarts.",
        argument: "Followers truncate only at a real conflict, which a leader holding every \
                   committed entry (Leader Completeness) never creates below the commit point; \
                   a follower commits only up to the last entry the leader confirmed.",
        property: "committed never overwritten",
        broken_by: &[
            Mutation::Figure8Commit,
            Mutation::TruncateOnMatch,
            Mutation::LeaderAcceptsAppend,
            Mutation::CommitBeyondLastNew,
        ],
    },
    Lemma {
        name: "Applied in order",
        statement: "Every running server applies indices 1, 2, 3, … in order, each once per \
                    incarnation.",
        argument: "A server applies from last_applied + 1 up to its commit index, raising \
                   last_applied with each entry; a restarted server starts from nothing applied.",
        property: "applied in order, once",
        broken_by: &[Mutation::ApplyNewestOnly],
    },
    Lemma {
        name: "State Machine Safety",
        statement: "No two servers ever apply different commands at the same index.",
        argument: "A server applies only committed entries, in order; committed entries are \
                   never overwritten, so every server applies the same command at an index.",
        property: "state machine safety",
        broken_by: &[
            Mutation::Figure8Commit,
            Mutation::LeaderAcceptsAppend,
            Mutation::CommitBeyondLastNew,
        ],
    },
    Lemma {
        name: "Commit index is monotonic",
        statement: "A server's commit index never decreases while it stays up.",
        argument: "A follower raises its commit index to min(leaderCommit, last new index) only \
                   when that is higher; a leader only raises it.",
        property: "commit index monotonic",
        broken_by: &[Mutation::CommitIndexRegress],
    },
    Lemma {
        name: "Match index is monotonic",
        statement: "A leader's match index for a peer never decreases during its term.",
        argument: "A success reply names the index it covers, taken from the request; the leader \
                   keeps the maximum, so a reordered or duplicated reply cannot lower it.",
        property: "match index monotonic",
        broken_by: &[Mutation::MatchIndexRegress],
    },
];
