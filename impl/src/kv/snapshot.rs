//! The store as a snapshot (Figure 13's `data`): its keys and values, and with them its client
//! sessions and its clock, since a session table left out of a snapshot would let a retry of a
//! write the snapshot already holds apply a second time after a restore.
//!
//! The bytes are one codec frame ([`FrameKind::KvSnapshot`]): a header naming the kind and the
//! format version, then the payload and its checksum, so that a snapshot read back from a disk or
//! taken from a peer is either the store that wrote it or a typed [`KvSnapshotError`]. A frame
//! that decodes is then checked against what [`KvStore::apply`] can produce: no key or value
//! past the size limits, and no session active after the clock. The session rules and the
//! deliberate bugs are configuration, not state: the restored store keeps the restoring one's.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::codec::{self, DecodeError, FrameKind};
use crate::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};

use super::{ClientId, KvOutcome, KvRules, KvStore, LogTime, SessionState};

/// The state of a [`KvStore`], as a snapshot carries it.
#[derive(Serialize, Deserialize)]
struct Image {
    data: BTreeMap<String, String>,
    sessions: Vec<SessionImage>,
    clock: LogTime,
    window: LogTime,
    registered: u32,
}

/// One session of an [`Image`].
#[derive(Serialize, Deserialize)]
struct SessionImage {
    id: ClientId,
    nonce: u64,
    seq: u64,
    digest: u64,
    outcome: KvOutcome,
    active: LogTime,
}

/// Why snapshot bytes are not a store this service could have written.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KvSnapshotError {
    #[error("the snapshot does not decode: {0}")]
    Decode(#[from] DecodeError),
    #[error("the snapshot holds a key of {len} bytes, past the limit of {MAX_KEY_BYTES}")]
    KeyTooLarge { len: usize },
    #[error("the snapshot holds a value of {len} bytes, past the limit of {MAX_VALUE_BYTES}")]
    ValueTooLarge { len: usize },
    #[error("the snapshot's session {id} was active at {active}, after its clock {clock}")]
    SessionAfterClock {
        id: ClientId,
        active: LogTime,
        clock: LogTime,
    },
    #[error("the snapshot lists session {id} twice")]
    DuplicateSession { id: ClientId },
}

impl<R: KvRules> KvStore<R> {
    /// This store's state as snapshot bytes (see the module documentation).
    pub fn snapshot(&self) -> Vec<u8> {
        let sessions = (self.sessions.iter())
            .map(|(&id, s)| SessionImage {
                id,
                nonce: s.nonce,
                seq: s.seq,
                digest: s.digest,
                outcome: s.outcome.clone(),
                active: s.active,
            })
            .collect();
        let image = Image {
            data: self.data.clone(),
            sessions,
            clock: self.clock,
            window: self.window,
            registered: self.registered,
        };
        codec::encode(FrameKind::KvSnapshot, &image)
            .expect("a store's keys, values and sessions always encode")
    }

    /// The store `bytes` hold, under this store's session rules and bugs: what a server installs
    /// from a snapshot, or a typed error and no change.
    pub fn restored(&self, bytes: &[u8]) -> Result<KvStore<R>, KvSnapshotError> {
        let image: Image = codec::decode(FrameKind::KvSnapshot, bytes)?;
        for (key, value) in &image.data {
            if key.len() > MAX_KEY_BYTES {
                return Err(KvSnapshotError::KeyTooLarge { len: key.len() });
            }
            if value.len() > MAX_VALUE_BYTES {
                return Err(KvSnapshotError::ValueTooLarge { len: value.len() });
            }
        }
        let mut sessions = BTreeMap::new();
        let mut by_age = BTreeSet::new();
        for s in image.sessions {
            if s.active > image.clock {
                return Err(KvSnapshotError::SessionAfterClock {
                    id: s.id,
                    active: s.active,
                    clock: image.clock,
                });
            }
            let state = SessionState {
                nonce: s.nonce,
                seq: s.seq,
                digest: s.digest,
                outcome: s.outcome,
                active: s.active,
            };
            if sessions.insert(s.id, state).is_some() {
                return Err(KvSnapshotError::DuplicateSession { id: s.id });
            }
            by_age.insert((s.active, s.id));
        }
        Ok(KvStore {
            data: image.data,
            sessions,
            by_age,
            clock: image.clock,
            window: image.window,
            registered: image.registered,
            limits: self.limits,
            rules: self.rules,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{KvCommand, KvOp, KvReply, KvRequest, Session, SessionRules};

    fn command(time: LogTime, request: KvRequest) -> KvCommand {
        KvCommand { time, request }
    }

    fn put(session: Session, seq: u64, key: &str, value: &str) -> KvRequest {
        KvRequest::InSession {
            session,
            seq,
            op: KvOp::Put {
                key: key.into(),
                value: value.into(),
            },
        }
    }

    /// A store with a key, a session that wrote it, and a clock.
    fn busy_store() -> (KvStore, Session) {
        let mut store = KvStore::default();
        let registered = store.apply(1, &command(5, KvRequest::Register { nonce: 9 }));
        assert_eq!(registered, Ok(KvReply::Registered { id: 1 }));
        let session = Session { id: 1, nonce: 9 };
        assert_eq!(
            store.apply(2, &command(7, put(session, 1, "k", "v"))),
            Ok(KvReply::Done)
        );
        (store, session)
    }

    #[test]
    fn a_restored_store_is_the_store_and_still_deduplicates_a_retry() {
        let (store, session) = busy_store();
        let mut restored = KvStore::default().restored(&store.snapshot()).unwrap();
        assert_eq!(restored, store);
        // The retry of the write the snapshot holds gets its recorded outcome, once.
        let mut appended = restored.clone();
        let retry = command(8, put(session, 1, "k", "v"));
        assert_eq!(appended.apply(3, &retry), Ok(KvReply::Done));
        assert_eq!(appended.get("k"), "v");
        assert_eq!(restored.apply(3, &retry), appended.clone().apply(4, &retry));
    }

    #[test]
    fn a_restored_store_keeps_its_own_session_rules() {
        let (store, _) = busy_store();
        let rules = SessionRules {
            timeout: 1,
            window: 2,
            registrations: 3,
        };
        let restorer = KvStore::default().with_sessions(rules);
        let restored = restorer.restored(&store.snapshot()).unwrap();
        assert_eq!(restored.limits, restorer.limits);
        assert_eq!(restored.get("k"), "v");
    }

    #[test]
    fn corrupt_or_impossible_snapshots_are_typed_errors() {
        let (store, _) = busy_store();
        let bytes = store.snapshot();
        let restorer = KvStore::default();
        for bit in [0, 8 * 20, 8 * (bytes.len() - 1)] {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(
                restorer.restored(&flipped),
                Err(KvSnapshotError::Decode(_))
            ));
        }
        assert!(matches!(
            restorer.restored(&bytes[..bytes.len() - 1]),
            Err(KvSnapshotError::Decode(_))
        ));
        let image = |data: BTreeMap<String, String>, active| Image {
            data,
            sessions: vec![SessionImage {
                id: 1,
                nonce: 0,
                seq: 0,
                digest: 0,
                outcome: Ok(KvReply::Done),
                active,
            }],
            clock: 10,
            window: 0,
            registered: 0,
        };
        let encode = |image: &Image| codec::encode(FrameKind::KvSnapshot, image).unwrap();
        let huge = BTreeMap::from([("k".to_string(), "v".repeat(MAX_VALUE_BYTES + 1))]);
        assert_eq!(
            restorer.restored(&encode(&image(huge, 0))),
            Err(KvSnapshotError::ValueTooLarge {
                len: MAX_VALUE_BYTES + 1
            })
        );
        assert_eq!(
            restorer.restored(&encode(&image(BTreeMap::new(), 11))),
            Err(KvSnapshotError::SessionAfterClock {
                id: 1,
                active: 11,
                clock: 10
            })
        );
    }
}
