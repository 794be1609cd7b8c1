//! Replaying segments: the rule that tells a torn last write (dropped) from corruption
//! (refused). It works on bytes already read, so that it does no I/O and its verdict depends on
//! nothing but the bytes.
//!
//! A record that does not decode is *damaged*: cut short, or failing a checksum. A damaged
//! record is a torn write only if nothing valid was written after it: it is in the last
//! segment and no valid record header follows it there. Anything else is corruption, reported
//! with the file and offset, never truncated: a damaged record followed by a good one was
//! complete once (records are written in order), so dropping it and the records after it would
//! silently lose writes that may have been synced and acknowledged (Protocol-Aware Recovery,
//! FAST'18, on LogCabin and ZooKeeper). A damaged record in an earlier segment is always
//! corruption, since a segment is synced whole before the next one is created.
//!
//! "Follows" is decided by scanning every later offset for a header that passes its own
//! checksum, not by skipping the damaged record's declared length: when the header is what is
//! damaged, that length is garbage and would skip past good records or run off the end. A
//! header's checksum passing by chance is a 1 in 2^32 event per offset (after its magic too);
//! and if a client's command embeds a valid header in the torn tail, the verdict errs towards
//! refusing to start, never towards losing a record.
//!
//! The rule assumes that a crash keeps a prefix of the bytes written since the last sync (what
//! the crash tests cut). A disk that persists a later unsynced page but not an earlier one
//! leaves a hole followed by a valid record, which is reported as corruption: again a refusal
//! to start, not a loss.

use std::path::{Path, PathBuf};

use crate::codec::{self, DecodeError};
use crate::storage::Position;
use crate::types::{Command, HardState, LogGap};

use super::WalError;

/// Why a log cannot be recovered.
#[derive(Debug, thiserror::Error)]
pub enum CorruptReason {
    #[error("record does not decode: {0}")]
    Record(DecodeError),
    #[error("{0}: a record in between was lost")]
    Gap(LogGap),
    #[error("segment starts at position {found}, but the segments before it end at {expected}")]
    SegmentStart { expected: Position, found: Position },
}

/// The records replayed so far and the state they lead to.
pub(super) struct Replay<C> {
    pub(super) state: HardState<C>,
    pub(super) records: Position,
}

impl<C: Command> Replay<C> {
    pub(super) fn new() -> Replay<C> {
        Replay {
            state: HardState::default(),
            records: 0,
        }
    }

    /// Applies the records of the segment at `path`, whose name says it starts at `first`,
    /// and returns how many of its bytes are valid: all of them, or less when `last` (it is
    /// the last segment) and it ends in a torn write.
    pub(super) fn segment(
        &mut self,
        path: &Path,
        first: Position,
        bytes: &[u8],
        last: bool,
    ) -> Result<usize, WalError> {
        let corrupt = |offset: usize, reason| WalError::Corrupt {
            file: PathBuf::from(path),
            offset: offset as u64,
            reason,
        };
        if first != self.records {
            let reason = CorruptReason::SegmentStart {
                expected: self.records,
                found: first,
            };
            return Err(corrupt(0, reason));
        }
        let mut offset = 0;
        while let Some(rest) = bytes.get(offset..).filter(|rest| !rest.is_empty()) {
            match codec::decode_record::<C>(rest) {
                Ok((record, len)) => {
                    self.state
                        .apply(record)
                        .map_err(|gap| corrupt(offset, CorruptReason::Gap(gap)))?;
                    self.records += 1;
                    offset += len;
                }
                Err(error) if last && damaged(&error) && !header_after(rest) => break,
                Err(error) => return Err(corrupt(offset, CorruptReason::Record(error))),
            }
        }
        Ok(offset)
    }
}

/// Whether `error` is what a write cut short leaves: a header or payload that is short or fails
/// its checksum. A newer version, or a payload that passes its checksum and still does not
/// decode, was written whole by someone: never a torn write.
fn damaged(error: &DecodeError) -> bool {
    matches!(
        error,
        DecodeError::TruncatedRecordHeader { .. }
            | DecodeError::WrongMagic { .. }
            | DecodeError::HeaderChecksumMismatch { .. }
            | DecodeError::TruncatedPayload { .. }
            | DecodeError::ChecksumMismatch { .. }
    )
}

/// Whether a record header that passes its own checksum starts anywhere in `bytes` after its
/// first byte.
fn header_after(bytes: &[u8]) -> bool {
    (1..bytes.len()).any(|start| {
        bytes.get(start..).is_some_and(|rest| {
            !matches!(
                codec::check_record_header(rest),
                Err(DecodeError::TruncatedRecordHeader { .. }
                    | DecodeError::WrongMagic { .. }
                    | DecodeError::HeaderChecksumMismatch { .. })
            )
        })
    })
}
