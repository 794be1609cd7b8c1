//! Record-level stable storage: the records a core emits ([`Record`], in
//! [`Effect::Persist`](crate::Effect::Persist)) are appended to a [`LogStore`], made durable
//! in batches by [`LogStore::sync`], and replayed with [`HardState::apply`] on recovery.
//!
//! A store counts the records it was given: position `p` means "the first `p` records". The
//! runtime holds back every send and client reply until the durable position covers the
//! records emitted before it (the contract on [`Effect`](crate::Effect)); a crash keeps the
//! durable records and possibly some prefix of the others, never a record out of order.

mod held;
mod memory;
pub mod wal;

pub use held::{Flushed, Held, HeldWrites};
pub use memory::MemoryStore;
pub use wal::{FileWal, IoError, WalError, WalOptions, WalWriteError};

use crate::types::{Command, Record};

/// How many records a store has been given (or has made durable) since it was created: the
/// position just after them.
pub type Position = u64;

/// Stable storage for one node's records.
pub trait LogStore<C: Command> {
    /// Why a write or a sync failed. A runtime stops on it: a store that cannot write can
    /// promise nothing about what it holds.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Writes `records` after the ones already written; they need not be durable yet.
    /// Returns the position after them.
    fn append(&mut self, records: &[Record<C>]) -> Result<Position, Self::Error>;

    /// Makes every record written so far durable (one sync for the whole batch) and returns
    /// the new durable position.
    fn sync(&mut self) -> Result<Position, Self::Error>;

    /// The position up to which records are durable.
    fn durable(&self) -> Position;
}
