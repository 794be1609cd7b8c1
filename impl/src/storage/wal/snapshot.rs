//! Snapshots beside the log: a snapshot's own file, and the install record that promises it.
//!
//! A snapshot is written to its own file, `<position>-<last index>-<last term>.snap` (20 digits
//! each; the position is that of its install record, so that two snapshots never share a
//! name), as one [`FrameKind::SnapshotFile`] frame: written under a temporary name, synced,
//! renamed, and the directory synced. Only then does the log get the snapshot's install record
//! ([`Install`]), the first frame of a new segment: it names the file by its position, index and
//! term, carries the file's checksum and length, and carries the state that the log's records
//! lead to once the snapshot is applied: term, vote and the entries after the snapshot. So the
//! install record alone, with the file, restores the state, and every segment before its own is
//! dead once it is durable: they are deleted (the purge), then the older snapshot files.
//!
//! The term, vote and entries are in the install record rather than in records after it because
//! one frame is written whole or not at all (its checksum says which): a crash cannot keep a
//! promise of the snapshot without the latest term and vote, which the purge would delete with
//! the segments that held them, nor without the entries after the snapshot (Figure 13 step 7's
//! truncation included, since they are the log as it stands after it).
//!
//! A snapshot file that no durable install record names was never promised (a crash before the
//! record): it is deleted on open. A file that the newest install record names must be there and
//! whole: the segments before the record may be gone, so no older state can stand in for it.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{IoError, WalError};
use crate::codec::{self, DecodeError, EncodeError, FrameHeader, FrameKind};
use crate::storage::Position;
use crate::types::{Entry, HardState, Index, NodeId, Record, Snapshot, Term};

const SUFFIX: &str = ".snap";
/// The suffix a snapshot file has until it is whole and synced.
const TEMPORARY: &str = ".tmp";

/// A snapshot's install record, a [`FrameKind::SnapshotInstall`] frame of the log: see the
/// module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Install<C> {
    pub(super) last_index: Index,
    pub(super) last_term: Term,
    /// The snapshot file's payload length and CRC32, as its header says: the file must be the
    /// one written for this record, not merely one of the same name.
    file_len: u32,
    file_crc: u32,
    current_term: Term,
    voted_for: Option<NodeId>,
    /// The entries after the snapshot when it was installed.
    log: Vec<Entry<C>>,
}

impl<C> Install<C> {
    /// The install record of `snapshot`, written as `file`, taken when the log's records led to
    /// `state` (whose own snapshot bytes, if any, are not needed): the entries it keeps are
    /// those [`HardState::apply`] keeps.
    pub(super) fn new(mut state: HardState<C>, snapshot: &Snapshot, file: FrameHeader) -> Self {
        state
            .apply(Record::Snapshot(bare(
                snapshot.last_index,
                snapshot.last_term,
            )))
            .expect("a snapshot record applies to any state");
        Install {
            last_index: snapshot.last_index,
            last_term: snapshot.last_term,
            file_len: file.len,
            file_crc: file.crc,
            current_term: state.current_term,
            voted_for: state.voted_for,
            log: state.log,
        }
    }

    /// The state this record restores with `snapshot` (its file's, or a stand-in without
    /// data): built with [`HardState::apply`], the one replay rule, as if from term and vote,
    /// the snapshot and the entries after it. `None` if the entries' indices would overflow
    /// (a forged record: one written by this code never does).
    pub(super) fn restore(self, snapshot: Snapshot) -> Option<HardState<C>> {
        let from = self.last_index.checked_add(1)?;
        from.checked_add(self.log.len() as Index)?;
        let mut state = HardState::default();
        let records = [
            Record::TermVote {
                term: self.current_term,
                voted_for: self.voted_for,
            },
            Record::Snapshot(snapshot),
            Record::Log {
                from,
                entries: self.log,
            },
        ];
        for record in records {
            state.apply(record).ok()?;
        }
        Some(state)
    }

    /// The snapshot this record installs, without its bytes: what a replay that needs only the
    /// log (not the state machine) applies.
    pub(super) fn stand_in(&self) -> Snapshot {
        bare(self.last_index, self.last_term)
    }
}

/// A snapshot's place in the log without its bytes.
fn bare(last_index: Index, last_term: Term) -> Snapshot {
    Snapshot {
        last_index,
        last_term,
        data: Vec::new(),
    }
}

/// Why the snapshot file that the newest install record names cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFault {
    #[error("is missing")]
    Missing,
    #[error("does not decode: {0}")]
    Decode(DecodeError),
    #[error("holds snapshot {found_index}:{found_term} (payload {found_len} bytes, CRC32 {found_crc:#010x}), not the one the install record wrote ({index}:{term}, {len} bytes, CRC32 {crc:#010x})")]
    NotTheOneWritten {
        index: Index,
        term: Term,
        len: u32,
        crc: u32,
        found_index: Index,
        found_term: Term,
        found_len: u32,
        found_crc: u32,
    },
}

/// The file of the snapshot whose install record is at `position`.
pub(super) fn path(dir: &Path, position: Position, index: Index, term: Term) -> PathBuf {
    dir.join(format!("{position:020}-{index:020}-{term:020}{SUFFIX}"))
}

/// The name a snapshot file has while it is written.
pub(super) fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TEMPORARY);
    PathBuf::from(name)
}

/// The position of the install record a snapshot file's name (or temporary name) says it
/// belongs to; `None` for any other file.
fn position(name: &OsStr) -> Option<Position> {
    let name = name.to_str()?;
    let name = name.strip_suffix(TEMPORARY).unwrap_or(name);
    let fields: Vec<&str> = name.strip_suffix(SUFFIX)?.split('-').collect();
    let [position, index, term] = fields[..] else {
        return None;
    };
    let number = |digits: &str| {
        (digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| digits.parse::<u64>().ok())
            .flatten()
    };
    number(index)?;
    number(term)?;
    number(position)
}

/// The snapshot files in `dir`, whole or temporary, with the positions their names give.
pub(super) fn list(dir: &Path) -> io::Result<Vec<(Position, PathBuf)>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(position) = position(&entry.file_name()) {
            files.push((position, entry.path()));
        }
    }
    files.sort_unstable();
    Ok(files)
}

/// Writes `snapshot`'s frame to `file`, and syncs it: the header, then the payload, without
/// joining them. Returns the header, whose length and checksum the install record carries.
pub(super) fn write(file: &mut File, snapshot: &Snapshot) -> Result<FrameHeader, WriteError> {
    let (header, payload) = codec::encode_parts(FrameKind::SnapshotFile, snapshot)?;
    file.write_all(&header.write())?;
    file.write_all(&payload)?;
    file.sync_all()?;
    Ok(header)
}

/// Why a snapshot file could not be written.
#[derive(Debug, thiserror::Error)]
pub(super) enum WriteError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Reads the snapshot file at `path` and checks that it is the one `install` wrote.
pub(super) fn read<C>(path: &Path, install: &Install<C>) -> Result<Snapshot, ReadError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(ReadError::Fault(SnapshotFault::Missing))
        }
        Err(e) => return Err(ReadError::Io(e)),
    };
    let fault = ReadError::Fault;
    let snapshot: Snapshot = codec::decode(FrameKind::SnapshotFile, &bytes)
        .map_err(|e| fault(SnapshotFault::Decode(e)))?;
    let header = FrameHeader::read(&bytes).map_err(|e| fault(SnapshotFault::Decode(e)))?;
    let found = (
        snapshot.last_index,
        snapshot.last_term,
        header.len,
        header.crc,
    );
    let expected = (
        install.last_index,
        install.last_term,
        install.file_len,
        install.file_crc,
    );
    if found != expected {
        return Err(fault(SnapshotFault::NotTheOneWritten {
            index: expected.0,
            term: expected.1,
            len: expected.2,
            crc: expected.3,
            found_index: found.0,
            found_term: found.1,
            found_len: found.2,
            found_crc: found.3,
        }));
    }
    Ok(snapshot)
}

/// Why a snapshot file could not be read.
pub(super) enum ReadError {
    Io(io::Error),
    Fault(SnapshotFault),
}

/// The snapshot of the install record at `position` of the log in `dir`, from its file.
pub(super) fn load<C>(
    dir: &Path,
    position: Position,
    install: &Install<C>,
) -> Result<Snapshot, WalError> {
    let file = path(dir, position, install.last_index, install.last_term);
    read(&file, install).map_err(|e| match e {
        ReadError::Io(source) => WalError::Io(IoError { path: file, source }),
        ReadError::Fault(reason) => WalError::Snapshot {
            file,
            position,
            reason,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_other_files_are_not_snapshots() {
        let dir = Path::new("d");
        let file = path(dir, 7, 5, 2);
        assert_eq!(
            file,
            Path::new("d/00000000000000000007-00000000000000000005-00000000000000000002.snap")
        );
        assert_eq!(position(file.file_name().unwrap()), Some(7));
        assert_eq!(position(temporary(&file).file_name().unwrap()), Some(7));
        for other in [
            "00000000000000000007.wal",
            "7-5-2.snap",
            "00000000000000000007-00000000000000000005.snap",
            "00000000000000000007-00000000000000000005-0000000000000000000x.snap",
        ] {
            assert_eq!(position(OsStr::new(other)), None, "{other}");
        }
    }
}
