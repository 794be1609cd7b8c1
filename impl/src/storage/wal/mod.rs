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

mod recover;
mod segment;

pub use recover::CorruptReason;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use crate::codec::{self, EncodeError, FrameHeader, FrameKind};
use crate::types::{Command, HardState, Record};

use super::{LogStore, Position};
use recover::Replay;

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
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> IoError + '_ {
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
        File::open(parent)
            .and_then(|parent| parent.sync_all())
            .map_err(io_error(parent))?;
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
        let mut replay = Replay::new();
        let mut valid = 0;
        let mut on_disk = 0;
        for (i, (first, path)) in segments.iter().enumerate() {
            let bytes = fs::read(path).map_err(io_error(path))?;
            on_disk = bytes.len();
            valid = replay.segment(path, *first, &bytes, i + 1 == segments.len())?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(last_path)
            .map_err(io_error(last_path))?;
        if valid < on_disk {
            file.set_len(valid as u64)
                .and_then(|()| file.sync_all())
                .map_err(io_error(last_path))?;
        }
        let Replay { state, records } = replay;
        let wal = FileWal::at(dir, options, file, last_path.clone(), valid as u64, records);
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
            Ok(wal.durable)
        })
    }

    fn durable(&self) -> Position {
        self.durable
    }
}

#[cfg(test)]
mod tests;
