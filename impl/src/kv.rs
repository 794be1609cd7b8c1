//! The replicated key-value state machine: Put, Append and Get with client sessions, so a
//! request retried by a client after a lost reply takes effect once, and a request that cannot
//! be told apart from an applied one is refused rather than answered "done".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::mutation::{Mutation, MutationSet};

#[cfg(feature = "lincheck")]
mod lincheck;

/// A client's identity; each client has at most one request outstanding.
pub type ClientId = u64;

/// An operation on the store.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvOp {
    Put { key: String, value: String },
    Append { key: String, value: String },
    Get { key: String },
}

impl KvOp {
    pub fn key(&self) -> &str {
        match self {
            KvOp::Put { key, .. } | KvOp::Append { key, .. } | KvOp::Get { key } => key,
        }
    }
}

/// A client request as replicated in the log: `(client, seq)` identifies it across retries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KvCommand {
    pub client: ClientId,
    pub seq: u64,
    pub op: KvOp,
}

/// What applying a command returns to the client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvReply {
    /// Put or Append took effect.
    Done,
    /// The value of a Get (empty for a missing key, as in 6.5840).
    Value(String),
}

/// A request the store refused, changing nothing. A client that sees one knows this request was
/// not applied (an earlier one of the same number may have been), and must open a new session
/// under a fresh client id to go on.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, thiserror::Error,
)]
pub enum SessionError {
    /// Older than the client's latest applied request: a client restarted under a used id, or a
    /// request that wandered in late.
    #[error("request {seq} of client {client} is older than its latest applied request {latest}")]
    Stale {
        client: ClientId,
        seq: u64,
        latest: u64,
    },
    /// The number of the client's latest request, but another operation: a client restarted
    /// under a used id.
    #[error("request {seq} of client {client} reuses the number of a different applied request")]
    Reused { client: ClientId, seq: u64 },
    /// A client the store keeps no session of sent a request other than its first, after some
    /// session expired (see [`KvStore`]): it may be one of those, and applying its request
    /// could apply a retry twice.
    #[error("client {client} has no session (expired or never opened) for request {seq}")]
    NoSession { client: ClientId, seq: u64 },
}

/// What the store answers a command: its reply once applied, or why it was refused.
pub type KvOutcome = Result<KvReply, SessionError>;

/// How many client sessions a store keeps unless told otherwise.
pub const DEFAULT_SESSION_LIMIT: usize = 4096;

/// What the store remembers of one client: its latest applied request and the reply to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Session {
    seq: u64,
    /// Kept to tell a retry from another request under a reused number.
    op: KvOp,
    reply: KvReply,
    /// The store's apply count when `seq` was applied: the session's age.
    last_used: u64,
}

/// The store and its per-client session table.
///
/// Sessions are bounded: opening one beyond the limit expires the least recently used. The
/// rule is driven by the log alone (the age of a session is the count of commands applied when
/// its latest request was), so every server, applying the same log from index 1, expires the
/// same sessions at the same index, as the client sessions of the Raft dissertation (§6.3) do.
/// Once any session has expired, a client without a session may be one of those, and its
/// request is refused ([`SessionError::NoSession`]) unless it is numbered 1, the first of a
/// session. (So a client whose first request was applied, expired and then retried would see
/// it applied twice: the limit makes that take thousands of newer clients between a request
/// and its retry.) Before any session expired, a client without one has had nothing applied,
/// and any number opens its session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvStore {
    data: BTreeMap<String, String>,
    sessions: BTreeMap<ClientId, Session>,
    /// The same sessions by age (`Session::last_used`, unique per applied command), oldest
    /// first, to find the one to expire without a scan.
    by_age: BTreeMap<u64, ClientId>,
    /// Commands applied so far, refused ones included.
    applied: u64,
    /// Whether a session was ever expired.
    expired_any: bool,
    session_limit: usize,
    mutations: MutationSet,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new(MutationSet::NONE)
    }
}

impl KvStore {
    pub fn new(mutations: MutationSet) -> KvStore {
        KvStore {
            data: BTreeMap::new(),
            sessions: BTreeMap::new(),
            by_age: BTreeMap::new(),
            applied: 0,
            expired_any: false,
            session_limit: DEFAULT_SESSION_LIMIT,
            mutations,
        }
    }

    /// Keeps at most `limit` client sessions (at least one). Every server of a cluster must use
    /// the same limit, or their stores would expire different sessions and diverge.
    pub fn with_session_limit(self, limit: usize) -> KvStore {
        KvStore {
            session_limit: limit.max(1),
            ..self
        }
    }

    /// Applies a committed command, once per `(client, seq)`: a request numbered above the
    /// client's latest is applied (clerks number 1, 2, 3..., but a Get answered without the
    /// log, under the `stale-read` bug, leaves a gap); a retry of the latest (same number, same
    /// operation) gets the recorded reply and changes nothing; anything else is refused and
    /// changes nothing. A client without a session opens one as described at [`KvStore`].
    pub fn apply(&mut self, cmd: &KvCommand) -> KvOutcome {
        self.applied += 1;
        if !self.mutations.contains(Mutation::KvNoDedup) {
            if let Some(answer) = self.check_session(cmd) {
                return answer;
            }
        }
        let reply = match &cmd.op {
            KvOp::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
                KvReply::Done
            }
            KvOp::Append { key, value } => {
                self.data.entry(key.clone()).or_default().push_str(value);
                KvReply::Done
            }
            KvOp::Get { key } => KvReply::Value(self.get(key)),
        };
        self.record(cmd, reply.clone());
        Ok(reply)
    }

    /// The answer to `cmd` if the session rule settles it without applying it.
    fn check_session(&self, cmd: &KvCommand) -> Option<KvOutcome> {
        let (client, seq) = (cmd.client, cmd.seq);
        let Some(session) = self.sessions.get(&client) else {
            let may_have_expired = self.expired_any && seq != 1;
            return may_have_expired.then_some(Err(SessionError::NoSession { client, seq }));
        };
        let latest = session.seq;
        if seq > latest {
            None
        } else if seq == latest && cmd.op == session.op {
            Some(Ok(session.reply.clone()))
        } else if seq == latest {
            Some(Err(SessionError::Reused { client, seq }))
        } else {
            Some(Err(SessionError::Stale {
                client,
                seq,
                latest,
            }))
        }
    }

    /// Makes `cmd` its client's latest request, expiring the least recently used session if a
    /// new one would exceed the limit.
    fn record(&mut self, cmd: &KvCommand, reply: KvReply) {
        let session = Session {
            seq: cmd.seq,
            op: cmd.op.clone(),
            reply,
            last_used: self.applied,
        };
        match self.sessions.insert(cmd.client, session) {
            Some(old) => {
                self.by_age.remove(&old.last_used);
            }
            None if self.sessions.len() > self.session_limit => {
                if let Some((_, oldest)) = self.by_age.pop_first() {
                    self.sessions.remove(&oldest);
                    self.expired_any = true;
                }
            }
            None => {}
        }
        self.by_age.insert(self.applied, cmd.client);
    }

    /// The current value of `key`, read locally without going through the log.
    pub fn get(&self, key: &str) -> String {
        self.data.get(key).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(client: ClientId, seq: u64, value: &str) -> KvCommand {
        KvCommand {
            client,
            seq,
            op: KvOp::Append {
                key: "k".into(),
                value: value.into(),
            },
        }
    }

    fn get(client: ClientId, seq: u64) -> KvCommand {
        KvCommand {
            client,
            seq,
            op: KvOp::Get { key: "k".into() },
        }
    }

    #[test]
    fn put_append_get() {
        let mut kv = KvStore::default();
        let put = KvCommand {
            client: 1,
            seq: 1,
            op: KvOp::Put {
                key: "k".into(),
                value: "a".into(),
            },
        };
        assert_eq!(kv.apply(&put), Ok(KvReply::Done));
        assert_eq!(kv.apply(&append(1, 2, "b")), Ok(KvReply::Done));
        assert_eq!(kv.apply(&get(2, 1)), Ok(KvReply::Value("ab".into())));
        assert_eq!(kv.get("missing"), "");
    }

    #[test]
    fn a_retried_request_applies_once_and_gets_the_saved_reply() {
        let mut kv = KvStore::default();
        kv.apply(&append(1, 1, "x")).unwrap();
        assert_eq!(kv.apply(&append(1, 1, "x")), Ok(KvReply::Done));
        kv.apply(&append(2, 1, "y")).unwrap();
        assert_eq!(kv.apply(&get(2, 2)), Ok(KvReply::Value("xy".into())));
        kv.apply(&append(2, 3, "z")).unwrap();
        assert_eq!(kv.apply(&append(1, 1, "x")), Ok(KvReply::Done));
        assert_eq!(kv.get("k"), "xyz");
    }

    /// A clerk restarted under a used id numbers its requests from 1 again: each is refused,
    /// none answered "done" without being applied.
    #[test]
    fn a_reused_client_id_is_refused_not_silently_dropped() {
        let mut kv = KvStore::default();
        kv.apply(&append(1, 1, "a")).unwrap();
        kv.apply(&append(1, 2, "b")).unwrap();
        assert_eq!(
            kv.apply(&append(1, 1, "c")),
            Err(SessionError::Stale {
                client: 1,
                seq: 1,
                latest: 2
            })
        );
        assert_eq!(
            kv.apply(&append(1, 2, "d")),
            Err(SessionError::Reused { client: 1, seq: 2 })
        );
        assert_eq!(kv.get("k"), "ab");
    }

    /// A forged request with a huge number is applied once; after it the client's own numbers
    /// are refused explicitly, never answered "done" unapplied.
    #[test]
    fn after_a_huge_sequence_number_smaller_ones_are_refused() {
        let mut kv = KvStore::default();
        kv.apply(&append(1, 1, "a")).unwrap();
        assert_eq!(kv.apply(&append(1, u64::MAX, "b")), Ok(KvReply::Done));
        assert_eq!(
            kv.apply(&append(1, 2, "c")),
            Err(SessionError::Stale {
                client: 1,
                seq: 2,
                latest: u64::MAX
            })
        );
        assert_eq!(kv.get("k"), "ab");
    }

    #[test]
    fn the_least_recently_used_session_expires_and_its_next_request_is_refused() {
        let mut kv = KvStore::default().with_session_limit(2);
        kv.apply(&append(1, 1, "a")).unwrap();
        kv.apply(&append(2, 1, "b")).unwrap();
        kv.apply(&append(1, 2, "c")).unwrap();
        // Before any expiry, a client without a session may start at any number.
        kv.apply(&append(3, 5, "d")).unwrap();
        // Client 3 opened a third session: client 2's, the least recently used, expired.
        assert_eq!(
            kv.apply(&append(2, 2, "e")),
            Err(SessionError::NoSession { client: 2, seq: 2 })
        );
        assert_eq!(
            kv.apply(&append(4, 2, "e")),
            Err(SessionError::NoSession { client: 4, seq: 2 })
        );
        // A new session opens with request 1; client 1's expires.
        assert_eq!(kv.apply(&append(4, 1, "f")), Ok(KvReply::Done));
        assert_eq!(kv.apply(&append(3, 6, "g")), Ok(KvReply::Done));
        assert_eq!(kv.get("k"), "abcdfg");
    }

    /// Two stores applying the same commands answer and expire alike: the rule depends on the
    /// log alone.
    #[test]
    fn stores_applying_the_same_log_agree() {
        let log: Vec<KvCommand> = (0..60u64)
            .map(|i| append(i % 7, i / 7 + 1 - (i % 5) / 4, "x"))
            .collect();
        let mut a = KvStore::default().with_session_limit(3);
        let mut b = a.clone();
        let answers = |kv: &mut KvStore| log.iter().map(|c| kv.apply(c)).collect::<Vec<_>>();
        let (first, second) = (answers(&mut a), answers(&mut b));
        assert_eq!(first, second);
        assert!(first.iter().any(Result::is_ok) && first.iter().any(Result::is_err));
        assert_eq!(a, b);
    }

    #[test]
    fn kv_no_dedup_applies_a_retry_twice() {
        let mut kv = KvStore::new(MutationSet::NONE.with(Mutation::KvNoDedup));
        kv.apply(&append(1, 1, "x")).unwrap();
        kv.apply(&append(1, 1, "x")).unwrap();
        assert_eq!(kv.get("k"), "xx");
    }
}
