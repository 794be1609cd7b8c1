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
//! A log whose snapshot's install record was purged of the segments before it starts at a
//! later position; it must start with that install record, which restores the whole state (see
//! `snapshot`). Later in a log, an install record replaces the state the records before it led
//! to (it carries the same state, with the snapshot applied).
//!
//! The rule assumes that a crash keeps a prefix of the bytes written since the last sync (what
//! the crash tests cut). A disk that persists a later unsynced page but not an earlier one
//! leaves a hole followed by a valid record, which is reported as corruption: again a refusal
//! to start, not a loss.

use std::fs;
use std::path::{Path, PathBuf};

use crate::codec::{self, DecodeError, FrameHeader, FrameKind};
use crate::storage::Position;
use crate::types::{Command, HardState, LogGap, Record, Snapshot};

use super::snapshot::Install;
use super::{io_error, segment, WalError};

/// Why a log cannot be recovered.
#[derive(Debug, thiserror::Error)]
pub enum CorruptReason {
    #[error("record does not decode: {0}")]
    Record(DecodeError),
    #[error("{0}: a record in between was lost")]
    Gap(LogGap),
    #[error("segment starts at position {found}, but the segments before it end at {expected}")]
    SegmentStart { expected: Position, found: Position },
    #[error("the log starts at position {first}, so the segments before it were deleted, but not by a snapshot: its first record is not a snapshot's install record")]
    NoSnapshotBefore { first: Position },
    #[error("the install record of snapshot {index} holds entries whose indices overflow")]
    InstallOverflows { index: u64 },
}

/// The records replayed so far and the state they lead to.
pub(super) struct Replay<C> {
    pub(super) state: HardState<C>,
    pub(super) records: Position,
    /// Where the log's first segment starts: after a purge, at an install record.
    start: Position,
    /// The position of the last install record replayed.
    pub(super) installed: Option<Position>,
}

/// Gives the snapshot an install record at a position names: its file's (checked against the
/// record), or a stand-in without data for a replay that only needs the log.
pub(super) type Load<'a, C> = dyn FnMut(Position, &Install<C>) -> Result<Snapshot, WalError> + 'a;

/// Replays the log made of `segments` (as `segment::list` gives them) from the last one that
/// starts with a whole install record, or from the first if none does: an install record
/// restores the whole state, so the segments before it are dead (a crash during their purge may
/// have left any of them). Returns the replay, then how many bytes of the last segment are valid
/// and how many it holds: fewer when `torn_tail` lets its last write be torn (see
/// [`Replay::segment`]).
pub(super) fn replay_log<C: Command>(
    segments: &[(Position, PathBuf)],
    load: &mut Load<'_, C>,
    torn_tail: bool,
) -> Result<(Replay<C>, usize, usize), WalError> {
    let mut live = 0;
    for (i, (_, path)) in segments.iter().enumerate().rev() {
        let head = segment::first_frame(path).map_err(io_error(path))?;
        if starts_with_install::<C>(&head) {
            live = i;
            break;
        }
    }
    let segments = &segments[live..];
    let mut replay = Replay::new(segments.first().map_or(0, |(first, _)| *first));
    let (mut valid, mut on_disk) = (0, 0);
    for (i, (first, path)) in segments.iter().enumerate() {
        let bytes = fs::read(path).map_err(io_error(path))?;
        on_disk = bytes.len();
        let last = torn_tail && i + 1 == segments.len();
        valid = replay.segment(path, *first, &bytes, last, load)?;
    }
    Ok((replay, valid, on_disk))
}

impl<C: Command> Replay<C> {
    /// A replay of a log whose first segment starts at `start`.
    pub(super) fn new(start: Position) -> Replay<C> {
        Replay {
            state: HardState::default(),
            records: start,
            start,
            installed: None,
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
        load: &mut Load<'_, C>,
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
        // The first segment of a log whose earlier segments were deleted: only a snapshot's
        // install record may have made them dead, and it starts its segment.
        if self.records == self.start && self.start > 0 && !starts_with_install::<C>(bytes) {
            let first = self.start;
            return Err(corrupt(0, CorruptReason::NoSnapshotBefore { first }));
        }
        let mut offset = 0;
        while let Some(rest) = bytes.get(offset..).filter(|rest| !rest.is_empty()) {
            match decode_frame::<C>(rest) {
                Ok((frame, len)) => {
                    self.replay(frame, load, |reason| corrupt(offset, reason))?;
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

/// What a frame of the log holds.
enum Frame<C> {
    Record(Record<C>),
    Install(Install<C>),
}

/// Decodes the frame at the start of `bytes`, of whichever of a log's kinds it is, and returns
/// it with its length.
fn decode_frame<C: Command>(bytes: &[u8]) -> Result<(Frame<C>, usize), DecodeError> {
    let frame = codec::read_log_frame(bytes)?;
    let decoded = match frame.kind {
        FrameKind::SnapshotInstall => Frame::Install(frame.decode()?),
        _ => Frame::Record(frame.decode()?),
    };
    Ok((decoded, frame.len))
}

/// Whether `bytes` start with a whole install record.
fn starts_with_install<C: Command>(bytes: &[u8]) -> bool {
    matches!(decode_frame::<C>(bytes), Ok((Frame::Install(_), _)))
}

impl<C: Command> Replay<C> {
    /// Replays the frame at the current position; `corrupt` names where it lies.
    fn replay(
        &mut self,
        frame: Frame<C>,
        load: &mut Load<'_, C>,
        corrupt: impl Fn(CorruptReason) -> WalError,
    ) -> Result<(), WalError> {
        match frame {
            Frame::Install(install) => {
                let snapshot = load(self.records, &install)?;
                let index = install.last_index;
                self.state = install
                    .restore(snapshot)
                    .ok_or_else(|| corrupt(CorruptReason::InstallOverflows { index }))?;
                self.installed = Some(self.records);
            }
            Frame::Record(record) => self
                .state
                .apply(record)
                .map_err(|gap| corrupt(CorruptReason::Gap(gap)))?,
        }
        Ok(())
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
                FrameHeader::parse_record(rest),
                Err(DecodeError::TruncatedRecordHeader { .. }
                    | DecodeError::WrongMagic { .. }
                    | DecodeError::HeaderChecksumMismatch { .. })
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{FORMAT_VERSION, RECORD_HEADER_LEN};
    use crate::types::{Entry, Record};

    fn entry(from: u64) -> Record<u32> {
        Record::Log {
            from,
            entries: vec![Entry {
                term: 1,
                command: from as u32,
            }],
        }
    }

    /// The records framed back to back, and where each frame starts.
    fn framed(records: &[Record<u32>]) -> (Vec<u8>, Vec<usize>) {
        let mut bytes = Vec::new();
        let mut starts = Vec::new();
        for record in records {
            starts.push(bytes.len());
            codec::encode_record(record, &mut bytes).unwrap();
        }
        (bytes, starts)
    }

    fn stand_in(_: Position, install: &Install<u32>) -> Result<Snapshot, WalError> {
        Ok(install.stand_in())
    }

    fn replay(bytes: &[u8], last: bool) -> Result<(usize, Replay<u32>), WalError> {
        let mut replay = Replay::new(0);
        let valid = replay.segment(Path::new("0.wal"), 0, bytes, last, &mut stand_in)?;
        Ok((valid, replay))
    }

    /// The reason of a refusal that must name `at` as the offset of the damage.
    fn corrupt_at(result: Result<(usize, Replay<u32>), WalError>, at: usize) -> CorruptReason {
        match result {
            Err(WalError::Corrupt { offset, reason, .. }) => {
                assert_eq!(offset, at as u64, "{reason}");
                reason
            }
            Err(other) => panic!("expected Corrupt, got {other}"),
            Ok((valid, _)) => panic!("expected Corrupt, replayed {valid} bytes"),
        }
    }

    #[test]
    fn every_cut_of_the_last_record_of_the_last_segment_is_a_torn_write() {
        let (bytes, starts) = framed(&[entry(1), entry(2), entry(3)]);
        for cut in starts[2]..bytes.len() {
            let (valid, replay) = replay(&bytes[..cut], true).unwrap();
            assert_eq!(valid, starts[2], "cut at {cut}");
            assert_eq!(replay.records, 2);
            assert_eq!(replay.state.last_index(), 2);
        }
        let (valid, replay) = replay(&bytes, true).unwrap();
        assert_eq!((valid, replay.records), (bytes.len(), 3));
    }

    #[test]
    fn a_damaged_record_before_a_good_one_is_corruption_not_a_torn_write() {
        let (mut bytes, starts) = framed(&[entry(1), entry(2), entry(3)]);
        bytes[starts[1] + RECORD_HEADER_LEN] ^= 1;
        assert!(matches!(
            corrupt_at(replay(&bytes, true), starts[1]),
            CorruptReason::Record(DecodeError::ChecksumMismatch { .. })
        ));
        // A flipped length bit: the header's own checksum catches it, and the good record
        // after it is found by scanning, not by trusting the length.
        let (mut bytes, _) = framed(&[entry(1), entry(2), entry(3)]);
        bytes[starts[1] + 7] ^= 0x80;
        assert!(matches!(
            corrupt_at(replay(&bytes, true), starts[1]),
            CorruptReason::Record(DecodeError::HeaderChecksumMismatch { .. })
        ));
    }

    #[test]
    fn a_torn_write_in_an_earlier_segment_is_corruption() {
        let (bytes, starts) = framed(&[entry(1), entry(2)]);
        corrupt_at(replay(&bytes[..bytes.len() - 1], false), starts[1]);
    }

    #[test]
    fn a_record_from_a_newer_build_is_corruption_even_at_the_end() {
        let (mut bytes, starts) = framed(&[entry(1), entry(2)]);
        let at = starts[1];
        let mut newer = FrameHeader::read(&bytes[at..]).unwrap();
        newer.version = FORMAT_VERSION + 1;
        bytes[at..at + RECORD_HEADER_LEN].copy_from_slice(&newer.write_record());
        assert!(matches!(
            corrupt_at(replay(&bytes, true), at),
            CorruptReason::Record(DecodeError::UnsupportedVersion { .. })
        ));
    }

    #[test]
    fn a_record_past_the_end_of_the_log_is_a_gap() {
        let (bytes, starts) = framed(&[entry(1), entry(3)]);
        assert!(matches!(
            corrupt_at(replay(&bytes, true), starts[1]),
            CorruptReason::Gap(LogGap {
                from: 3,
                first: 1,
                last: 1
            })
        ));
    }

    #[test]
    fn a_segment_that_does_not_start_where_the_last_ended_is_refused() {
        let (bytes, _) = framed(&[entry(1)]);
        let mut replay = Replay::<u32>::new(0);
        let error = replay
            .segment(Path::new("5.wal"), 5, &bytes, true, &mut stand_in)
            .unwrap_err();
        assert!(matches!(
            error,
            WalError::Corrupt {
                offset: 0,
                reason: CorruptReason::SegmentStart {
                    expected: 0,
                    found: 5
                },
                ..
            }
        ));
    }
}
