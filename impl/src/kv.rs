//! The replicated key-value state machine: Put, Append and Get with duplicate detection, so a
//! request retried by a client after a lost reply takes effect once.

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

/// The store and its per-client session table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KvStore {
    data: BTreeMap<String, String>,
    /// Last applied sequence number of each client and the reply it got.
    sessions: BTreeMap<ClientId, (u64, KvReply)>,
    mutations: MutationSet,
}

impl KvStore {
    pub fn new(mutations: MutationSet) -> KvStore {
        KvStore {
            mutations,
            ..KvStore::default()
        }
    }

    /// Applies a committed command. A request whose sequence number the client already had
    /// applied returns the recorded reply of that client's latest request and changes nothing.
    pub fn apply(&mut self, cmd: &KvCommand) -> KvReply {
        if !self.mutations.contains(Mutation::KvNoDedup) {
            if let Some((seq, reply)) = self.sessions.get(&cmd.client) {
                if cmd.seq <= *seq {
                    return reply.clone();
                }
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
        self.sessions.insert(cmd.client, (cmd.seq, reply.clone()));
        reply
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
        assert_eq!(kv.apply(&put), KvReply::Done);
        assert_eq!(kv.apply(&append(1, 2, "b")), KvReply::Done);
        let get = KvCommand {
            client: 2,
            seq: 1,
            op: KvOp::Get { key: "k".into() },
        };
        assert_eq!(kv.apply(&get), KvReply::Value("ab".into()));
        assert_eq!(kv.get("missing"), "");
    }

    #[test]
    fn retried_request_applies_once() {
        let mut kv = KvStore::default();
        kv.apply(&append(1, 1, "x"));
        kv.apply(&append(1, 1, "x"));
        kv.apply(&append(2, 1, "y"));
        kv.apply(&append(1, 1, "x"));
        assert_eq!(kv.get("k"), "xy");
    }

    #[test]
    fn kv_no_dedup_applies_a_retry_twice() {
        let mut kv = KvStore::new(MutationSet::NONE.with(Mutation::KvNoDedup));
        kv.apply(&append(1, 1, "x"));
        kv.apply(&append(1, 1, "x"));
        assert_eq!(kv.get("k"), "xx");
    }
}
