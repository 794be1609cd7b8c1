//! Crash points for tests: a test arms one step of taking a snapshot, and the log stops right
//! after it with [`WalWriteError::Crashed`], as if the machine had crashed there; the test then
//! reopens the directory. A crash test outside this crate (`tests/wal_crash.rs`) places one
//! exactly this way, and a running `raftd` built with the feature arms one named in a file of
//! its data directory (`runtime::crash_hook`), by the names [`CrashPoint::name`] gives.
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
    /// Every point, in the order a snapshot reaches them.
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
impl CrashPoint {
    /// The point's name, as a test spells it outside the process (`renamed`,
    /// `install-durable`, ...); [`str::parse`] reads it back.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::TemporaryWritten => "temporary-written",
            CrashPoint::Renamed => "renamed",
            CrashPoint::DirectorySynced => "directory-synced",
            CrashPoint::InstallDurable => "install-durable",
            CrashPoint::SegmentsPurged => "segments-purged",
            CrashPoint::OldSnapshotsDeleted => "old-snapshots-deleted",
        }
    }
}

/// A name that is not one of [`CrashPoint::name`]'s.
#[cfg(any(test, feature = "failpoints"))]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} names no crash point: expected one of {}", names())]
pub struct UnknownCrashPoint {
    pub name: String,
}

/// Every point's name, in order, for the error that lists them.
#[cfg(any(test, feature = "failpoints"))]
fn names() -> String {
    CrashPoint::ALL.map(CrashPoint::name).join(", ")
}

#[cfg(any(test, feature = "failpoints"))]
impl std::str::FromStr for CrashPoint {
    type Err = UnknownCrashPoint;

    fn from_str(name: &str) -> Result<CrashPoint, UnknownCrashPoint> {
        CrashPoint::ALL
            .into_iter()
            .find(|point| point.name() == name)
            .ok_or_else(|| UnknownCrashPoint {
                name: name.to_string(),
            })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_parses_back_from_its_name_and_other_names_are_refused() {
        for point in CrashPoint::ALL {
            assert_eq!(point.name().parse(), Ok(point));
        }
        for name in ["", "Renamed", "renamed ", "install_durable", "purged"] {
            let refused = name.parse::<CrashPoint>();
            assert_eq!(refused, Err(UnknownCrashPoint { name: name.into() }));
        }
        let message = UnknownCrashPoint { name: "x".into() }.to_string();
        for point in CrashPoint::ALL {
            assert!(message.contains(point.name()), "{message}");
        }
    }
}
