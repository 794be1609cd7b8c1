//! The replicated key-value state machine: Put, Append and Get, with the client sessions of the
//! Raft dissertation (§6.3), so that a write retried by a client after a lost reply takes effect
//! once, and a write the store can no longer tell apart from an applied one is refused rather
//! than applied again.
//!
//! - A client **registers** through the log ([`KvRequest::Register`]); its session id is the
//!   log index of the registration, the same on every server.
//! - A write carries (session, sequence number). The store keeps, per session, the number of
//!   its latest write and the outcome recorded for it: a retry gets that outcome again.
//! - A **Get opens no session**: reading twice changes nothing, so a read needs no
//!   deduplication.
//! - Sessions **expire by log time only**: the leader stamps its clock into every command it
//!   proposes ([`KvCommand::time`]), and the store's clock is the largest stamp applied so far.
//!   So every server expires the same sessions at the same log position, and no other client's
//!   request rate can expire a session: only time can. A write of an unknown or expired session
//!   is refused as [`KvError::SessionExpired`], never applied as new: its client cannot know
//!   whether an earlier attempt was applied, so the outcome is unknown.
//! - Memory is bounded by expiry together with a limit on registrations per unit of log time
//!   ([`SessionRules`]): sessions grow by at most `registrations` per window, and a session
//!   stays alive only while it writes at least once per `timeout`. So sessions that do not
//!   write number at most `registrations × (timeout / window + 1)`; keeping more alive costs
//!   one log entry per session per timeout (every live session had a registration or a write
//!   applied within the last timeout).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::hash::Hash;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::limits::{MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::types::Index;

#[cfg(feature = "lincheck")]
mod lincheck;
mod snapshot;

pub use snapshot::KvSnapshotError;

/// A session's id: the log index of its registration.
pub type ClientId = u64;

/// Log time: the leaders' clocks as stamped into commands, in milliseconds (any unit shared by
/// every server works; the model counts in ticks).
pub type LogTime = u64;

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

    /// The size rule a request must meet to enter the log: a key of at most [`MAX_KEY_BYTES`],
    /// a written value of at most [`MAX_VALUE_BYTES`] (an Append is checked again at apply,
    /// against the value it would grow).
    pub fn check_size(&self) -> Result<(), SizeError> {
        let key = self.key().len();
        if key > MAX_KEY_BYTES {
            return Err(SizeError::KeyTooLong {
                len: key,
                max: MAX_KEY_BYTES,
            });
        }
        match self {
            KvOp::Put { value, .. } | KvOp::Append { value, .. }
                if value.len() > MAX_VALUE_BYTES =>
            {
                Err(SizeError::ValueTooLarge {
                    len: value.len(),
                    max: MAX_VALUE_BYTES,
                })
            }
            _ => Ok(()),
        }
    }
}

/// A registered session as its client names it: the id the log gave it, and the nonce the
/// client chose when registering. The id is a log index, which anyone can guess; the nonce (64
/// random bits for a clerk) is what keeps another client from writing in this session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Session {
    pub id: ClientId,
    pub nonce: u64,
}

/// What a client asks the service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvRequest {
    /// Open a session. Its id is the log index this request is applied at; `nonce` lets the
    /// client tell its own registration from another client's that a later leader put at the
    /// same index, and proves the session its own afterwards.
    Register { nonce: u64 },
    /// An operation under a session, request `seq` of it (a clerk numbers 1, 2, 3, ...). Meant
    /// for writes; a Get sent this way is answered as a read outside any session.
    InSession {
        session: Session,
        seq: u64,
        op: KvOp,
    },
    /// A read, outside any session.
    Get { key: String },
}

impl KvRequest {
    /// The size rule of [`KvOp::check_size`], for any request.
    pub fn check_size(&self) -> Result<(), SizeError> {
        match self {
            KvRequest::Register { .. } => Ok(()),
            KvRequest::InSession { op, .. } => op.check_size(),
            KvRequest::Get { key } => KvOp::Get { key: key.clone() }.check_size(),
        }
    }
}

/// A request as the log holds it: stamped by the leader that proposed it with its clock, so
/// that sessions expire at the same log position on every server.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KvCommand {
    /// The proposing leader's clock. The store's clock is the largest stamp applied so far, so
    /// a new leader whose clock is behind moves no session back to life.
    pub time: LogTime,
    pub request: KvRequest,
}

/// What applying a command returns to the client.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum KvReply {
    /// Put or Append took effect.
    Done,
    /// The value of a Get of a key that is set.
    Value(String),
    /// The answer to a Get of a key that was never set (told apart from an empty value).
    Absent,
    /// A registration: the session's id.
    Registered { id: ClientId },
}

/// A request or a value too large for the store. Checked before a request enters the log (by
/// the clerk and by the server), and again at apply, by the same rule on every server.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    thiserror::Error,
)]
pub enum SizeError {
    #[error("key of {len} bytes; at most {max} are allowed")]
    KeyTooLong { len: usize, max: usize },
    #[error("value of {len} bytes; at most {max} are allowed")]
    ValueTooLarge { len: usize, max: usize },
}

/// A request the store did not apply, changing no data. Whether its client may conclude it was
/// never applied is [`KvError::outcome_unknown`].
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, thiserror::Error,
)]
pub enum KvError {
    /// The session is unknown, expired by log time, or not this client's (another nonce). An
    /// earlier attempt of this request may have been applied before the session expired: the
    /// outcome is unknown.
    #[error(
        "session {client} is unknown or expired; request {seq} may or may not have been applied"
    )]
    SessionExpired { client: ClientId, seq: u64 },
    /// Older than the session's latest write: only a request that wandered in late, or one
    /// forged in the session. The session has moved past it, so it may have been applied.
    #[error("request {seq} of session {client} is older than its latest write {latest}")]
    Stale {
        client: ClientId,
        seq: u64,
        latest: u64,
    },
    /// The number of the session's latest write, but another operation: this one was not
    /// applied.
    #[error("request {seq} of session {client} reuses the number of a different write")]
    Reused { client: ClientId, seq: u64 },
    /// Too large: not applied.
    #[error(transparent)]
    TooLarge(#[from] SizeError),
    /// A registration beyond the limit of the current window of log time: not applied; try
    /// again later.
    #[error("too many sessions opened: at most {limit} per {window} ms of log time")]
    TooManyRegistrations { limit: u32, window: LogTime },
}

impl KvError {
    /// Whether the client cannot tell if its request was applied: the session no longer says.
    /// Every other refusal means "not applied".
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, KvError::SessionExpired { .. } | KvError::Stale { .. })
    }
}

/// What the store answers a command: its reply once applied, or why it was refused.
pub type KvOutcome = Result<KvReply, KvError>;

/// When sessions expire and how fast they may be opened. Every server of a cluster must use the
/// same rules, or their stores would answer differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionRules {
    /// A session with no write for longer than this, in log time, expires.
    pub timeout: LogTime,
    /// Registrations are counted per window of log time (`time / window`)...
    pub window: LogTime,
    /// ... and at most this many are applied per window; more are refused.
    pub registrations: u32,
}

impl SessionRules {
    /// Ten minutes; 64 registrations per second: at most 64 × 601 = 38 464 sessions without
    /// writes are alive, a few megabytes (a session's record is a few dozen bytes: numbers and
    /// a recorded reply, never a value).
    pub const DEFAULT: SessionRules = SessionRules {
        timeout: 10 * 60 * 1000,
        window: 1000,
        registrations: 64,
    };
}

/// The decisions of the session rules (§6.3) that a deliberate bug changes. Every default is
/// the correct rule, and [`ExactlyOnce`], a zero-sized type that overrides none of them, is the
/// rules a real server runs (`KvStore` means `KvStore<ExactlyOnce>`), so that raftd's store holds
/// no bug branch. The KV bugs of [`crate::mutation`] are `impl KvRules for MutationSet`, beside
/// their names and citations, as the core's are [`crate::rules::Rules`].
pub trait KvRules: Copy + Debug + Eq + Hash {
    /// Whether a write is checked against its session's latest before it is applied: a retry
    /// of the latest gets its recorded outcome, an older or reused number is refused (§6.3:
    /// always; that check is what makes a retried write take effect once).
    fn deduplicates(&self) -> bool {
        true
    }

    /// Whether a write of an unknown or expired session is taken as the first write of a new
    /// session (never: its client cannot know whether an earlier attempt was applied before
    /// the session expired, so it is refused as [`KvError::SessionExpired`]).
    fn expired_session_is_new(&self) -> bool {
        false
    }
}

/// The session rules of the dissertation (§6.3), as a real server runs them: every default of
/// [`KvRules`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExactlyOnce;

impl KvRules for ExactlyOnce {}

/// What the store remembers of one session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SessionState {
    nonce: u64,
    /// The number of its latest write (0 before the first).
    seq: u64,
    /// A digest of that write's operation, to tell a retry from another write under a reused
    /// number without keeping the value.
    digest: u64,
    /// The outcome recorded for it, which a retry gets again.
    outcome: KvOutcome,
    /// The store's clock at its registration or latest write.
    active: LogTime,
}

/// The store, its sessions and its clock, following `R`: the correct session rules unless a
/// checker switches deliberate bugs on (see [`KvRules`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KvStore<R: KvRules = ExactlyOnce> {
    data: BTreeMap<String, String>,
    sessions: BTreeMap<ClientId, SessionState>,
    /// The same sessions by (last activity, id), oldest first, to expire them without a scan.
    by_age: BTreeSet<(LogTime, ClientId)>,
    /// The largest stamp applied so far.
    clock: LogTime,
    /// The window of log time registrations are being counted in, and how many it has had.
    window: LogTime,
    registered: u32,
    limits: SessionRules,
    rules: R,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new()
    }
}

impl KvStore {
    /// An empty store with the default [`SessionRules`].
    pub fn new() -> KvStore {
        KvStore::with_rules(ExactlyOnce)
    }
}

impl<R: KvRules> KvStore<R> {
    /// [`KvStore::new`] following `rules` (deliberate bugs, for the checkers).
    pub fn with_rules(rules: R) -> KvStore<R> {
        KvStore {
            data: BTreeMap::new(),
            sessions: BTreeMap::new(),
            by_age: BTreeSet::new(),
            clock: 0,
            window: 0,
            registered: 0,
            limits: SessionRules::DEFAULT,
            rules,
        }
    }

    /// The store under other session rules (a window of at least 1).
    pub fn with_sessions(self, limits: SessionRules) -> KvStore<R> {
        let window = limits.window.max(1);
        KvStore {
            limits: SessionRules { window, ..limits },
            ..self
        }
    }

    /// Applies the committed command at log index `index`. First the clock moves to the
    /// command's stamp, if later, and every session idle for longer than the timeout expires;
    /// then the request:
    /// - a registration opens session `index`, unless the window's registrations are used up;
    /// - a Get reads;
    /// - a write of a live session numbered above its latest is applied and its outcome
    ///   recorded; the latest again (same operation) gets the recorded outcome; anything else
    ///   is refused, and so is a write of an unknown or expired session.
    pub fn apply(&mut self, index: Index, cmd: &KvCommand) -> KvOutcome {
        self.advance_clock(cmd.time);
        match &cmd.request {
            KvRequest::Register { nonce } => self.register(index, *nonce),
            // A read changes nothing and needs no record, even sent in a session: so a session
            // never holds a value.
            KvRequest::Get { key }
            | KvRequest::InSession {
                op: KvOp::Get { key },
                ..
            } => Ok(self.read(key)),
            KvRequest::InSession { session, seq, op } => self.in_session(*session, *seq, op),
        }
    }

    fn advance_clock(&mut self, time: LogTime) {
        self.clock = self.clock.max(time);
        while let Some(&(active, id)) = self.by_age.first() {
            if active.saturating_add(self.limits.timeout) >= self.clock {
                break;
            }
            self.by_age.pop_first();
            self.sessions.remove(&id);
        }
    }

    fn register(&mut self, index: Index, nonce: u64) -> KvOutcome {
        let window = self.clock / self.limits.window;
        if window != self.window {
            self.window = window;
            self.registered = 0;
        }
        if self.registered >= self.limits.registrations {
            return Err(KvError::TooManyRegistrations {
                limit: self.limits.registrations,
                window: self.limits.window,
            });
        }
        self.registered += 1;
        self.open(index, nonce, 0);
        Ok(KvReply::Registered { id: index })
    }

    /// Starts (or restarts) the record of session `id` at write `seq`.
    fn open(&mut self, id: ClientId, nonce: u64, seq: u64) {
        let session = SessionState {
            nonce,
            seq,
            digest: 0,
            outcome: Ok(KvReply::Done),
            active: self.clock,
        };
        if let Some(old) = self.sessions.insert(id, session) {
            self.by_age.remove(&(old.active, id));
        }
        self.by_age.insert((self.clock, id));
    }

    fn in_session(&mut self, session: Session, seq: u64, op: &KvOp) -> KvOutcome {
        let client = session.id;
        let live = self
            .sessions
            .get(&client)
            .filter(|s| s.nonce == session.nonce);
        let Some(state) = live else {
            if !self.rules.expired_session_is_new() {
                return Err(KvError::SessionExpired { client, seq });
            }
            self.open(client, session.nonce, 0);
            return self.in_session(session, seq, op);
        };
        let digest = digest(op);
        let latest = state.seq;
        if self.rules.deduplicates() {
            if seq == latest && digest == state.digest {
                let recorded = state.outcome.clone();
                self.touch(client, seq, digest, recorded.clone());
                return recorded;
            } else if seq == latest {
                return Err(KvError::Reused { client, seq });
            } else if seq < latest {
                return Err(KvError::Stale {
                    client,
                    seq,
                    latest,
                });
            }
        }
        let outcome = self.write(op);
        self.touch(client, seq, digest, outcome.clone());
        outcome
    }

    /// Records `outcome` as session `client`'s reply to write `seq`, active now.
    fn touch(&mut self, client: ClientId, seq: u64, digest: u64, outcome: KvOutcome) {
        let clock = self.clock;
        if let Some(state) = self.sessions.get_mut(&client) {
            self.by_age.remove(&(state.active, client));
            *state = SessionState {
                seq,
                digest,
                outcome,
                active: clock,
                ..*state
            };
            self.by_age.insert((clock, client));
        }
    }

    /// Carries out an operation of a session; a write the size rules refuse changes nothing.
    fn write(&mut self, op: &KvOp) -> KvOutcome {
        op.check_size()?;
        match op {
            KvOp::Put { key, value } => {
                self.data.insert(key.clone(), value.clone());
            }
            KvOp::Append { key, value } => {
                let current = self.data.get(key).map_or(0, String::len);
                let len = current.saturating_add(value.len());
                if len > MAX_VALUE_BYTES {
                    return Err(SizeError::ValueTooLarge {
                        len,
                        max: MAX_VALUE_BYTES,
                    }
                    .into());
                }
                self.data.entry(key.clone()).or_default().push_str(value);
            }
            // `apply` answers every Get before a session is looked at.
            KvOp::Get { key } => return Ok(self.read(key)),
        }
        Ok(KvReply::Done)
    }

    /// The current value of `key`, read locally without going through the log.
    pub fn read(&self, key: &str) -> KvReply {
        self.data
            .get(key)
            .map_or(KvReply::Absent, |v| KvReply::Value(v.clone()))
    }

    /// The current value of `key`, empty if it is not set.
    pub fn get(&self, key: &str) -> String {
        self.data.get(key).cloned().unwrap_or_default()
    }

    /// How many sessions are alive.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }
}

/// A digest of `op`, the same on every server and every build: the first 8 bytes of a SHA-256
/// over a tag and the length-prefixed key and value.
fn digest(op: &KvOp) -> u64 {
    let (tag, key, value) = match op {
        KvOp::Put { key, value } => (0u8, key, value.as_str()),
        KvOp::Append { key, value } => (1, key, value.as_str()),
        KvOp::Get { key } => (2, key, ""),
    };
    let mut h = Sha256::new();
    h.update([tag]);
    h.update((key.len() as u64).to_le_bytes());
    h.update(key.as_bytes());
    h.update((value.len() as u64).to_le_bytes());
    h.update(value.as_bytes());
    let out = h.finalize();
    u64::from_le_bytes(out[..8].try_into().expect("a SHA-256 has 32 bytes"))
}

#[cfg(test)]
mod tests;
