//! Crash points for tests: a test arms one step of taking a snapshot, and the log stops right
//! after it with [`WalWriteError::Crashed`], as if the machine had crashed there; the test then
//! reopens the directory. A crash test outside this crate (`tests/wal_crash.rs`) places one
//! exactly this way.
//!
//! The hook exists only under `cfg(test)` or the `failpoints` feature, which only the crate's
//! own tests and benches turn on (the crate is its own dev-dependency with the feature). Cargo's
//! resolver 2 activates a dev-dependency's features only for the targets that need
//! dev-dependencies, so `cargo build --release` builds `raftd` without it; a crate that enabled
//! the feature through a normal dependency would turn it on for every build of the workspace,
//! which is why no other crate may (the feature's comment in `Cargo.toml` says so). Built
//! without it, [`FileWal::failpoint`] is an empty function that the compiler removes.

use super::FileWal;
#[cfg(any(test, feature = "failpoints"))]
use super::WalWriteError;

/// A step of taking a snapshot, in the order they happen, after which a test can crash the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrashPoint {
    /// The snapshot's temporary file is written and synced.
    TemporaryWritten,
    /// It is renamed to its name, but the directory is not synced.
    Renamed,
    /// The directory is synced: the file's name is durable.
    DirectorySynced,
    /// The install record (with term, vote and the entries after the snapshot) is durable.
    InstallDurable,
    /// The segments before the install record are deleted and the directory synced.
    SegmentsPurged,
    /// The older snapshot files are deleted.
    OldSnapshotsDeleted,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 6] = [
        CrashPoint::TemporaryWritten,
        CrashPoint::Renamed,
        CrashPoint::DirectorySynced,
        CrashPoint::InstallDurable,
        CrashPoint::SegmentsPurged,
        CrashPoint::OldSnapshotsDeleted,
    ];
}

#[cfg(any(test, feature = "failpoints"))]
impl<C> FileWal<C> {
    /// Makes the log stop at `point` of the next snapshot it takes, and refuse everything after.
    pub fn crash_at(&mut self, point: CrashPoint) {
        self.crash_at = Some(point);
    }

    /// Fails with [`WalWriteError::Crashed`] if the log was told to crash at `point`.
    pub(super) fn failpoint(&self, point: CrashPoint) -> Result<(), WalWriteError> {
        match self.crash_at {
            Some(armed) if armed == point => Err(WalWriteError::Crashed(point)),
            _ => Ok(()),
        }
    }
}

#[cfg(not(any(test, feature = "failpoints")))]
impl<C> FileWal<C> {
    /// No crash points in this build.
    #[inline(always)]
    pub(super) fn failpoint(&self, _: CrashPoint) -> Result<(), super::WalWriteError> {
        Ok(())
    }
}
