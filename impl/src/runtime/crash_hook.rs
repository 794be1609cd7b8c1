//! A crash point armed in a running server, for the tests that crash `raftd` in the middle of a
//! snapshot (`tests/raftd_crash_points.rs`): built only with the `failpoints` feature, which
//! only this crate's own tests and benches turn on (see `storage::wal::failpoint`), so the
//! `raftd` of `cargo build` has none of it.
//!
//! A test cannot reach into another process's [`FileWal`], and it must pick the server to crash
//! (the current leader, a follower) while the cluster runs. So before each batch of records that
//! holds a snapshot (the server's own, or one a leader installed), the write-ahead thread reads
//! the file [`FAILPOINT_FILE`] of the data directory; if it names a [`CrashPoint`]
//! ([`CrashPoint::name`]), the log is armed with it ([`FileWal::crash_at`]). When the log then
//! stops there ([`WalWriteError::Crashed`]), the process exits at once with
//! [`CRASHED_EXIT_CODE`], from the write-ahead thread, as a crash would stop it: the batch is
//! never published as durable, so nothing the core held behind it (replies, messages) leaves,
//! and nothing more is written. The file stays: the test removes it before it restarts the
//! server.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process;

use crate::storage::wal::{CrashPoint, IoError};
use crate::storage::{FileWal, LogStore, Position, WalWriteError};
use crate::types::{Command, Index, NodeId, Record};

use super::log;

/// The file of a server's data directory that names the crash point to arm at its next
/// snapshot.
pub const FAILPOINT_FILE: &str = "failpoint";
/// What a server exits with when it stops at an armed crash point; raftd exits with it for
/// nothing else.
pub const CRASHED_EXIT_CODE: i32 = 86;

/// A server's log, armed from [`FAILPOINT_FILE`] before each snapshot. See the module
/// documentation.
pub struct CrashHook<C> {
    id: NodeId,
    wal: FileWal<C>,
    file: PathBuf,
    /// The last index of the latest snapshot handed to the log, for the line a crash leaves.
    snapshot_index: Index,
}

impl<C> CrashHook<C> {
    /// Server `id`'s log `wal`, kept in `data_dir`.
    pub fn new(id: NodeId, wal: FileWal<C>, data_dir: &Path) -> CrashHook<C> {
        CrashHook {
            id,
            wal,
            file: data_dir.join(FAILPOINT_FILE),
            snapshot_index: 0,
        }
    }

    /// Arms the log with the point [`FAILPOINT_FILE`] names, if it is there. A name that is no
    /// point fails the write, as an unreadable file does: a test that misspells a point must
    /// not pass without its crash.
    fn arm(&mut self) -> Result<(), WalWriteError> {
        let io_error = |source| IoError {
            path: self.file.clone(),
            source,
        };
        let name = match fs::read_to_string(&self.file) {
            Ok(name) => name,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_error(e).into()),
        };
        let point: CrashPoint = name
            .trim()
            .parse()
            .map_err(|e| io_error(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        self.wal.crash_at(point);
        Ok(())
    }

    /// `result`, unless the log stopped at its crash point: then the process ends, at once.
    fn stop_if_crashed<T>(&self, result: Result<T, WalWriteError>) -> Result<T, WalWriteError> {
        if let Err(WalWriteError::Crashed(point)) = &result {
            let index = self.snapshot_index;
            let line = format_args!(
                "crashed on purpose at crash point {} while writing the snapshot at index {index}",
                point.name()
            );
            log(self.id, line);
            process::exit(CRASHED_EXIT_CODE);
        }
        result
    }
}

impl<C: Command> LogStore<C> for CrashHook<C> {
    type Error = WalWriteError;

    fn append(&mut self, records: &[Record<C>]) -> Result<Position, WalWriteError> {
        let snapshot = records.iter().find_map(|record| match record {
            Record::Snapshot(snapshot) => Some(snapshot.last_index),
            _ => None,
        });
        if let Some(index) = snapshot {
            self.snapshot_index = index;
            self.arm()?;
        }
        let appended = self.wal.append(records);
        self.stop_if_crashed(appended)
    }

    fn sync(&mut self) -> Result<Position, WalWriteError> {
        let synced = self.wal.sync();
        self.stop_if_crashed(synced)
    }

    fn durable(&self) -> Position {
        self.wal.durable()
    }
}
