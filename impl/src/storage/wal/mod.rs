//! A write-ahead log in files: the [`LogStore`] a real server keeps its records in.
//!
//! Records are framed by [`codec::encode_record`] and appended to segment files
//! (`<first position>.wal`, see `segment`); the hard state (term and vote) is a record in the
//! same log rather than a separate file, so that one sync covers a step's term, vote and
//! entries together and the order of writes is the order of the log. [`LogStore::append`] only
//! buffers; [`LogStore::sync`] writes the buffer and syncs the file once for all of it (group
//! commit). A segment is synced whole before the next one is created, so only the last
//! segment can end in a torn write; [`FileWal::open`] drops such a write and refuses anything
//! else that does not decode (the rule is in `recover`).
//!
//! A [`Record::Snapshot`] goes to a file of its own, and the log gets an install record that
//! starts a new segment and restores the whole state with the file; once it is durable, the
//! segments before it and the older snapshot files are deleted (see `snapshot`). So a log with
//! periodic snapshots stays bounded on disk.

mod failpoint;
mod recover;
mod segment;
mod snapshot;

pub use failpoint::CrashPoint;
#[cfg(any(test, feature = "failpoints"))]
pub use failpoint::UnknownCrashPoint;
pub use recover::CorruptReason;
pub use snapshot::SnapshotFault;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use crate::codec::{self, EncodeError, FrameHeader, FrameKind};
use crate::types::{Command, HardState, Record, Snapshot};

use super::{LogStore, Position};
use recover::{Load, Replay};
use snapshot::Install;

/// The file in which the builds before the write-ahead log kept a node's whole state, replaced
/// on every save (one [`FrameKind::HardState`] frame).
pub const LEGACY_STATE_FILE: &str = "raft-state";

/// How a [`FileWal`] lays out its files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started once the current one holds this many bytes (it may exceed it
    /// by one record). Small segments cost a sync and a file each; large ones are deleted late.
    pub segment_size: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: 64 << 20,
        }
    }
}

/// An I/O error on a file or directory of the log.
#[derive(Debug, thiserror::Error)]
#[error("I/O error on {path}: {source}")]
pub struct IoError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// Why the log could not be opened or created: what a server hears before it starts.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("corrupt write-ahead log: {file} at byte {offset}: {reason}; the records from there on cannot be trusted and were not dropped: restore this server's data from a replica or a backup")]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: CorruptReason,
    },
    #[error("{path} holds state in the format of an older build (version {}); this build keeps a write-ahead log and does not read it: run the older build, or move the file away and re-add this server as a new one", version.map_or("unknown".to_string(), |v| v.to_string()))]
    OldFormat { path: PathBuf, version: Option<u16> },
    #[error("no write-ahead log in {dir}: create one for a new server")]
    NotFound { dir: PathBuf },
    #[error("{dir} already holds a write-ahead log: open it instead of creating a new one")]
    AlreadyExists { dir: PathBuf },
    #[error("snapshot file {file}, which the write-ahead log's install record at position {position} promises, {reason}; the log before that record may be deleted, so no older state can stand in for it: restore this server's data from a replica or a backup")]
    Snapshot {
        file: PathBuf,
        position: Position,
        reason: SnapshotFault,
    },
}

/// Why records could not be written or synced: the [`LogStore::Error`] of an open log.
#[derive(Debug, thiserror::Error)]
pub enum WalWriteError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("cannot encode a record: {0}")]
    Encode(#[from] EncodeError),
    /// Every write after a failed one: see [`FileWal`]'s `poisoned`.
    #[error("an earlier write or sync of {path} failed, so what the file holds is unknown: reopen the log to recover")]
    Poisoned { path: PathBuf },
    /// Reading the log back, to carry its state into a snapshot's install record, failed.
    #[error("cannot read the log back to install a snapshot: {0}")]
    ReadBack(#[source] Box<WalError>),
    /// A test crashed the log at this point ([`FileWal::crash_at`]).
    #[cfg(any(test, feature = "failpoints"))]
    #[error("crashed on purpose at {0:?}")]
    Crashed(CrashPoint),
}

pub(super) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> IoError + '_ {
    move |source| IoError {
        path: path.to_path_buf(),
        source,
    }
}

/// A write-ahead log in a directory of segment files. See the module documentation.
#[derive(Debug)]
pub struct FileWal<C> {
    dir: PathBuf,
    options: WalOptions,
    /// The last segment, opened for appending.
    file: File,
    last_segment: PathBuf,
    /// Bytes in the last segment, counting those still in `buffer`.
    last_segment_len: u64,
    /// Records appended but not yet written to `file`, framed.
    buffer: Vec<u8>,
    written: Position,
    durable: Position,
    syncs: u64,
    /// An earlier write or sync failed: after a failed sync the kernel may have dropped the
    /// dirty pages and a retry would report success for data that is gone ("fsyncgate").
    poisoned: bool,
    /// The position of the last install record written, until it is durable and the files it
    /// makes dead are deleted.
    purge: Option<Position>,
    #[cfg(any(test, feature = "failpoints"))]
    crash_at: Option<CrashPoint>,
    /// A log of `C` records that owns none: `Send` and `Sync` whatever `C` is.
    record_type: PhantomData<fn(Record<C>)>,
}

impl<C: Command> FileWal<C> {
    /// Whether `dir` holds a log (or the state file of the older format, which
    /// [`FileWal::open`] then reports): a server that finds neither is new, and must be told
    /// so (`--bootstrap`) rather than assume it, since a server that lost its disk must not
    /// start over as a voter that never voted.
    pub fn exists(dir: impl AsRef<Path>) -> io::Result<bool> {
        let dir = dir.as_ref();
        Ok(!segment::list(dir)?.is_empty() || dir.join(LEGACY_STATE_FILE).try_exists()?)
    }

    /// A new, empty log in `dir` (created if missing), for a new server.
    pub fn create(dir: impl AsRef<Path>, options: WalOptions) -> Result<FileWal<C>, WalError> {
        let dir = dir.as_ref();
        fs::create_dir_all(dir).map_err(io_error(dir))?;
        refuse_old_format(dir)?;
        if !segment::list(dir).map_err(io_error(dir))?.is_empty() {
            return Err(WalError::AlreadyExists {
                dir: dir.to_path_buf(),
            });
        }
        let path = segment::path(dir, 0);
        let file = segment::create(dir, &path).map_err(io_error(&path))?;
        // The directory may be new too; its own name must survive a crash with its segment.
        let parent = match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        sync_directory(parent)?;
        Ok(FileWal::at(dir, options, file, path, 0, 0))
    }

    /// Opens the log in `dir`: replays every segment and returns the state the records lead
    /// to, with the log positioned after the last of them. A torn write at the end is cut off
    /// the file (durably) before anything is appended; any other damage is
    /// [`WalError::Corrupt`].
    pub fn open(
        dir: impl AsRef<Path>,
        options: WalOptions,
    ) -> Result<(FileWal<C>, HardState<C>), WalError> {
        let dir = dir.as_ref();
        refuse_old_format(dir)?;
        let segments = segment::list(dir).map_err(io_error(dir))?;
        let Some((_, last_path)) = segments.last() else {
            return Err(WalError::NotFound {
                dir: dir.to_path_buf(),
            });
        };
        let mut load = |position, install: &Install<C>| snapshot::load(dir, position, install);
        let (replay, valid, on_disk) = recover::replay_log(&segments, &mut load, true)?;
        let file = OpenOptions::new()
            .append(true)
            .open(last_path)
            .map_err(io_error(last_path))?;
        if valid < on_disk {
            file.set_len(valid as u64)
                .and_then(|()| file.sync_all())
                .map_err(io_error(last_path))?;
        }
        let Replay {
            state,
            records,
            installed,
            ..
        } = replay;
        let wal = FileWal::at(dir, options, file, last_path.clone(), valid as u64, records);
        // A crash may have come between an install record and the deletions it allows, or
        // before the record, leaving a snapshot file that nothing promises.
        wal.delete_segments_before(installed)?;
        wal.delete_snapshots_but(installed)?;
        Ok((wal, state))
    }

    fn at(
        dir: &Path,
        options: WalOptions,
        file: File,
        last_segment: PathBuf,
        last_segment_len: u64,
        records: Position,
    ) -> FileWal<C> {
        FileWal {
            dir: dir.to_path_buf(),
            options,
            file,
            last_segment,
            last_segment_len,
            buffer: Vec::new(),
            written: records,
            durable: records,
            syncs: 0,
            poisoned: false,
            purge: None,
            #[cfg(any(test, feature = "failpoints"))]
            crash_at: None,
            record_type: PhantomData,
        }
    }

    /// How many times this log has synced a file: once per [`LogStore::sync`] that had
    /// something to sync, and once per segment it filled. For metrics, and for tests of group
    /// commit.
    pub fn sync_count(&self) -> u64 {
        self.syncs
    }

    /// Runs `operation` unless an earlier one failed, and remembers if this one fails.
    fn guarded<T>(
        &mut self,
        operation: impl FnOnce(&mut Self) -> Result<T, WalWriteError>,
    ) -> Result<T, WalWriteError> {
        if self.poisoned {
            return Err(WalWriteError::Poisoned {
                path: self.last_segment.clone(),
            });
        }
        let result = operation(self);
        self.poisoned = result.is_err();
        result
    }

    /// Writes the buffer out and syncs the last segment, if anything was written since the
    /// last sync.
    fn sync_segment(&mut self) -> Result<(), WalWriteError> {
        if self.durable == self.written {
            return Ok(());
        }
        self.file
            .write_all(&self.buffer)
            .and_then(|()| self.file.sync_data())
            .map_err(io_error(&self.last_segment))?;
        self.buffer.clear();
        self.syncs += 1;
        self.durable = self.written;
        Ok(())
    }

    /// Writes `snapshot` to its file, then its install record, at the start of a new segment,
    /// to the buffer (see `snapshot`). The records before it are synced first, since the
    /// install record carries the state they lead to, read back from the log.
    fn install(&mut self, snapshot: &Snapshot) -> Result<(), WalWriteError> {
        if self.last_segment_len > 0 {
            self.roll_over()?;
        }
        let state = self.read_back()?;
        let position = self.written;
        let file = self.write_snapshot_file(position, snapshot)?;
        let install = Install::new(state, snapshot, file);
        let len = codec::encode_log_frame(FrameKind::SnapshotInstall, &install, &mut self.buffer)?;
        self.last_segment_len += len as u64;
        self.written += 1;
        self.purge = Some(position);
        Ok(())
    }

    /// The state the log's (synced) records lead to, with stand-ins for the snapshots' bytes:
    /// the log is replayed from the last install record, so this costs the records written
    /// since the last snapshot.
    fn read_back(&self) -> Result<HardState<C>, WalWriteError> {
        let read_back = |e: WalError| WalWriteError::ReadBack(Box::new(e));
        let segments =
            segment::list(&self.dir).map_err(|e| read_back(io_error(&self.dir)(e).into()))?;
        let load: &mut Load<'_, C> = &mut |_, install| Ok(install.stand_in());
        let (replay, _, _) = recover::replay_log(&segments, load, false).map_err(read_back)?;
        Ok(replay.state)
    }

    /// Writes `snapshot` to the file of the install record at `position`: under a temporary
    /// name, synced, renamed, and the directory synced. Returns the file's frame header.
    fn write_snapshot_file(
        &self,
        position: Position,
        snapshot: &Snapshot,
    ) -> Result<FrameHeader, WalWriteError> {
        let path = snapshot::path(&self.dir, position, snapshot.last_index, snapshot.last_term);
        let temporary = snapshot::temporary(&path);
        let mut file = File::create(&temporary).map_err(io_error(&temporary))?;
        let header = snapshot::write(&mut file, snapshot).map_err(|e| match e {
            snapshot::WriteError::Io(e) => WalWriteError::Io(io_error(&temporary)(e)),
            snapshot::WriteError::Encode(e) => WalWriteError::Encode(e),
        })?;
        self.failpoint(CrashPoint::TemporaryWritten)?;
        fs::rename(&temporary, &path).map_err(io_error(&path))?;
        self.failpoint(CrashPoint::Renamed)?;
        sync_directory(&self.dir)?;
        self.failpoint(CrashPoint::DirectorySynced)?;
        Ok(header)
    }

    /// Deletes the segments before the install record at `installed` (durable): its purge.
    /// The deletions are durable when it returns, so that a crash cannot leave the install
    /// record of a segment that survives without its file (see `delete_snapshots_but`).
    fn delete_segments_before(&self, installed: Option<Position>) -> Result<(), IoError> {
        let segments = segment::list(&self.dir).map_err(io_error(&self.dir))?;
        let dead = segments
            .iter()
            .filter(|(first, _)| installed.is_some_and(|installed| *first < installed));
        for (_, path) in dead {
            fs::remove_file(path).map_err(io_error(path))?;
        }
        sync_directory(&self.dir)
    }

    /// Deletes every snapshot file, whole or temporary, but the one of the install record at
    /// `installed` (durable): the older ones are dead once the segments before it are deleted,
    /// and any other was never promised (a crash came before its install record). With no
    /// install record, that is all of them.
    fn delete_snapshots_but(&self, installed: Option<Position>) -> Result<(), IoError> {
        let snapshots = snapshot::list(&self.dir).map_err(io_error(&self.dir))?;
        for (_, path) in snapshots
            .iter()
            .filter(|(position, _)| Some(*position) != installed)
        {
            fs::remove_file(path).map_err(io_error(path))?;
        }
        Ok(())
    }

    /// Ends the last segment (synced whole) and starts a new one at the next position.
    fn roll_over(&mut self) -> Result<(), WalWriteError> {
        self.sync_segment()?;
        let path = segment::path(&self.dir, self.written);
        self.file = segment::create(&self.dir, &path).map_err(io_error(&path))?;
        self.last_segment = path;
        self.last_segment_len = 0;
        Ok(())
    }
}

/// Makes the names created, renamed or deleted in `dir` durable.
fn sync_directory(dir: &Path) -> Result<(), IoError> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(dir))
}

/// Fails if `dir` holds the state file of the build before the write-ahead log: starting
/// without it would forget the node's term, vote and log.
fn refuse_old_format(dir: &Path) -> Result<(), WalError> {
    let path = dir.join(LEGACY_STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error(&path)(e).into()),
    };
    let version = FrameHeader::read(&bytes)
        .ok()
        .filter(|header| header.magic == FrameKind::HardState.magic())
        .map(|header| header.version);
    Err(WalError::OldFormat { path, version })
}

impl<C: Command> LogStore<C> for FileWal<C> {
    type Error = WalWriteError;

    fn append(&mut self, records: &[Record<C>]) -> Result<Position, WalWriteError> {
        self.guarded(|wal| {
            for record in records {
                if wal.last_segment_len > 0 && wal.last_segment_len >= wal.options.segment_size {
                    wal.roll_over()?;
                }
                if let Record::Snapshot(snapshot) = record {
                    wal.install(snapshot)?;
                    continue;
                }
                let len = codec::encode_record(record, &mut wal.buffer)?;
                wal.last_segment_len += len as u64;
                wal.written += 1;
            }
            Ok(wal.written)
        })
    }

    fn sync(&mut self) -> Result<Position, WalWriteError> {
        self.guarded(|wal| {
            wal.sync_segment()?;
            if let Some(installed) = wal.purge.take() {
                wal.failpoint(CrashPoint::InstallDurable)?;
                wal.delete_segments_before(Some(installed))?;
                wal.failpoint(CrashPoint::SegmentsPurged)?;
                wal.delete_snapshots_but(Some(installed))?;
                wal.failpoint(CrashPoint::OldSnapshotsDeleted)?;
            }
            Ok(wal.durable)
        })
    }

    fn durable(&self) -> Position {
        self.durable
    }
}

#[cfg(test)]
mod tests;
