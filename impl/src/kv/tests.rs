//! The session rules of the store, one test per rule.

use super::*;
use crate::mutation::{Mutation, MutationSet};

const RULES: SessionRules = SessionRules {
    timeout: 100,
    window: 10,
    registrations: 3,
};

fn store() -> KvStore {
    KvStore::new().with_sessions(RULES)
}

/// Applies commands at consecutive log indices, as a server applies its log.
struct Log<R: KvRules = ExactlyOnce> {
    kv: KvStore<R>,
    index: Index,
}

impl<R: KvRules> Log<R> {
    fn new(kv: KvStore<R>) -> Log<R> {
        Log { kv, index: 0 }
    }

    fn apply(&mut self, time: LogTime, request: KvRequest) -> KvOutcome {
        self.index += 1;
        self.kv.apply(self.index, &KvCommand { time, request })
    }

    /// Registers a session with `nonce` at `time`.
    fn register(&mut self, time: LogTime, nonce: u64) -> Session {
        match self.apply(time, KvRequest::Register { nonce }) {
            Ok(KvReply::Registered { id }) => Session { id, nonce },
            other => panic!("registration: {other:?}"),
        }
    }
}

fn append(session: Session, seq: u64, value: &str) -> KvRequest {
    KvRequest::InSession {
        session,
        seq,
        op: KvOp::Append {
            key: "k".into(),
            value: value.into(),
        },
    }
}

fn in_session(session: Session, seq: u64, op: KvOp) -> KvRequest {
    KvRequest::InSession { session, seq, op }
}

fn put(session: Session, seq: u64, key: &str, value: &str) -> KvRequest {
    in_session(
        session,
        seq,
        KvOp::Put {
            key: key.into(),
            value: value.into(),
        },
    )
}

fn get(key: &str) -> KvRequest {
    KvRequest::Get { key: key.into() }
}

#[test]
fn a_session_is_the_log_index_of_its_registration() {
    let mut log = Log::new(store());
    log.apply(0, get("k")).unwrap();
    let a = log.register(0, 7);
    let b = log.register(0, 7);
    assert_eq!((a.id, b.id), (2, 3));
    assert_eq!(log.kv.sessions(), 2);
}

#[test]
fn put_append_get_and_a_missing_key_is_not_an_empty_value() {
    let mut log = Log::new(store());
    let s = log.register(0, 1);
    assert_eq!(log.apply(0, get("k")), Ok(KvReply::Absent));
    assert_eq!(log.apply(0, put(s, 1, "k", "")), Ok(KvReply::Done));
    assert_eq!(log.apply(0, get("k")), Ok(KvReply::Value(String::new())));
    assert_eq!(log.apply(0, append(s, 2, "b")), Ok(KvReply::Done));
    assert_eq!(log.apply(0, get("k")), Ok(KvReply::Value("b".into())));
}

#[test]
fn a_get_opens_no_session_and_is_recorded_in_none() {
    let mut log = Log::new(store());
    for _ in 0..1000 {
        log.apply(0, get("k")).unwrap();
    }
    assert_eq!(log.kv.sessions(), 0);
    // Sent in a session, a Get is a read all the same: nothing recorded, the session's next
    // write still numbered 1.
    let s = log.register(0, 1);
    let read = in_session(s, 5, KvOp::Get { key: "k".into() });
    assert_eq!(log.apply(0, read), Ok(KvReply::Absent));
    assert_eq!(log.apply(0, append(s, 1, "a")), Ok(KvReply::Done));
}

#[test]
fn a_retried_write_applies_once_and_gets_the_recorded_reply() {
    let mut log = Log::new(store());
    let s = log.register(0, 1);
    assert_eq!(log.apply(0, append(s, 1, "x")), Ok(KvReply::Done));
    assert_eq!(log.apply(5, append(s, 1, "x")), Ok(KvReply::Done));
    assert_eq!(log.kv.get("k"), "x");
    // A refusal is recorded too: the retry of a write refused at apply is refused again.
    let big = "y".repeat(MAX_VALUE_BYTES);
    let refused = Err(KvError::TooLarge(SizeError::ValueTooLarge {
        len: MAX_VALUE_BYTES + 1,
        max: MAX_VALUE_BYTES,
    }));
    assert_eq!(log.apply(5, append(s, 2, &big)), refused);
    assert_eq!(log.apply(5, append(s, 2, &big)), refused);
    assert_eq!(log.kv.get("k"), "x");
}

#[test]
fn an_unknown_session_or_another_clients_nonce_is_refused_as_expired() {
    let mut log = Log::new(store());
    let s = log.register(0, 1);
    let unknown = Session { id: 99, nonce: 1 };
    let forged = Session { nonce: 2, ..s };
    for session in [unknown, forged] {
        let refused = log.apply(0, append(session, 1, "x")).unwrap_err();
        assert_eq!(
            refused,
            KvError::SessionExpired {
                client: session.id,
                seq: 1
            }
        );
        assert!(refused.outcome_unknown());
    }
    assert_eq!(log.kv.read("k"), KvReply::Absent);
}

/// Only log time expires a session: thousands of other clients' requests at one time do not,
/// and a leader whose clock is behind does not bring it back.
#[test]
fn sessions_expire_by_log_time_and_by_nothing_else() {
    let mut log = Log::new(KvStore::default());
    let s = log.register(1_000, 1);
    log.apply(1_000, append(s, 1, "a")).unwrap();
    for i in 0..5_000 {
        log.apply(1_000 + i / 100, get("k")).unwrap();
        let _ = log.apply(1_000 + i / 100, KvRequest::Register { nonce: i });
    }
    assert_eq!(log.apply(1_050, append(s, 1, "a")), Ok(KvReply::Done));
    assert_eq!(log.kv.get("k"), "a");

    let timeout = SessionRules::DEFAULT.timeout;
    // Exactly the timeout after its last write the session is alive ...
    log.apply(1_050 + timeout, get("k")).unwrap();
    assert_eq!(
        log.apply(1_050 + timeout, append(s, 2, "b")),
        Ok(KvReply::Done)
    );
    // ... one unit later it is gone, and a stamp from a slower clock does not revive it.
    log.apply(1_051 + 2 * timeout, get("k")).unwrap();
    let expired = Err(KvError::SessionExpired {
        client: s.id,
        seq: 2,
    });
    assert_eq!(log.apply(0, append(s, 2, "b")), expired);
    assert_eq!(log.kv.get("k"), "ab");
}

#[test]
fn registrations_are_limited_per_window_of_log_time_so_sessions_are_bounded() {
    let mut log = Log::new(store());
    let too_many = Err(KvError::TooManyRegistrations {
        limit: 3,
        window: 10,
    });
    for window in 0..50 {
        let time = window * RULES.window;
        for nonce in 0..3 {
            log.register(time, nonce);
        }
        assert_eq!(
            log.apply(time + 9, KvRequest::Register { nonce: 9 }),
            too_many
        );
        let bound = RULES.registrations as u64 * (RULES.timeout / RULES.window + 1);
        assert!(log.kv.sessions() as u64 <= bound, "{}", log.kv.sessions());
    }
    // At log time 499, the sessions of the last ten windows (from 400 on) are alive.
    assert_eq!(log.kv.sessions(), 3 * 10);
}

#[test]
fn older_and_reused_numbers_are_refused_and_change_nothing() {
    let mut log = Log::new(store());
    let s = log.register(0, 1);
    log.apply(0, append(s, 1, "a")).unwrap();
    log.apply(0, append(s, 2, "b")).unwrap();
    let stale = log.apply(0, append(s, 1, "a")).unwrap_err();
    assert_eq!(
        stale,
        KvError::Stale {
            client: s.id,
            seq: 1,
            latest: 2
        }
    );
    assert!(stale.outcome_unknown());
    let reused = log.apply(0, append(s, 2, "c")).unwrap_err();
    assert_eq!(
        reused,
        KvError::Reused {
            client: s.id,
            seq: 2
        }
    );
    assert!(!reused.outcome_unknown());
    assert_eq!(log.kv.get("k"), "ab");
}

#[test]
fn sizes_are_checked_before_the_log_and_at_apply() {
    let key = "k".repeat(MAX_KEY_BYTES + 1);
    let at_limit = "v".repeat(MAX_VALUE_BYTES);
    let over = "v".repeat(MAX_VALUE_BYTES + 1);
    let put = |key: &str, value: &str| KvOp::Put {
        key: key.into(),
        value: value.into(),
    };
    assert_eq!(put("k", &at_limit).check_size(), Ok(()));
    assert_eq!(
        put("k", &over).check_size(),
        Err(SizeError::ValueTooLarge {
            len: MAX_VALUE_BYTES + 1,
            max: MAX_VALUE_BYTES
        })
    );
    assert_eq!(
        KvOp::Get { key: key.clone() }.check_size(),
        Err(SizeError::KeyTooLong {
            len: MAX_KEY_BYTES + 1,
            max: MAX_KEY_BYTES
        })
    );

    let mut log = Log::new(store());
    let s = log.register(0, 1);
    // A log written before the check (or by a forger) holds it: refused at apply all the same.
    assert!(log.apply(0, in_session(s, 1, put(&key, "v"))).is_err());
    let full = in_session(s, 2, put("k", &at_limit));
    assert_eq!(log.apply(0, full), Ok(KvReply::Done));
    assert!(log.apply(0, append(s, 3, "x")).is_err());
    assert_eq!(log.kv.get("k").len(), MAX_VALUE_BYTES);
}

/// Two stores applying the same log answer and expire alike: the rules read the log alone.
#[test]
fn stores_applying_the_same_log_agree() {
    let mut a = Log::new(store());
    let mut b = Log::new(store());
    let mut answers = (Vec::new(), Vec::new());
    for i in 0..300u64 {
        let session = Session {
            id: i % 11,
            nonce: i % 3,
        };
        let request = match i % 4 {
            0 => KvRequest::Register { nonce: i % 3 },
            1 => get("k"),
            _ => append(session, i / 7, "x"),
        };
        answers.0.push(a.apply(i * 3, request.clone()));
        answers.1.push(b.apply(i * 3, request));
    }
    assert_eq!(answers.0, answers.1);
    assert!(answers.0.iter().any(Result::is_ok) && answers.0.iter().any(Result::is_err));
    assert_eq!(a.kv, b.kv);
}

#[test]
fn kv_no_dedup_applies_a_retry_twice() {
    let mut log = Log::new(KvStore::with_rules(
        MutationSet::NONE.with(Mutation::KvNoDedup),
    ));
    let s = log.register(0, 1);
    log.apply(0, append(s, 1, "x")).unwrap();
    log.apply(0, append(s, 1, "x")).unwrap();
    assert_eq!(log.kv.get("k"), "xx");
}

#[test]
fn the_probe_applies_a_write_of_an_expired_session_as_new() {
    let probe = MutationSet::NONE.with(Mutation::ExpiredSessionAppliedAsNew);
    let mut log = Log::new(KvStore::with_rules(probe).with_sessions(RULES));
    let s = log.register(0, 1);
    log.apply(0, append(s, 1, "x")).unwrap();
    assert_eq!(log.apply(1_000, append(s, 1, "x")), Ok(KvReply::Done));
    assert_eq!(log.kv.get("k"), "xx");
}
