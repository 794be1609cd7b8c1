//! 3D: log compaction (`TestSnapshotBasic3D` … `TestSnapshotInit3D`). These run with the
//! snapshotting applier (see `apply`): every [`SNAPSHOT_INTERVAL`] applied commands a server
//! snapshots, and a snapshot its core installs or starts from is checked and taken as its state.

use super::{ensure, T};
use crate::failure::{Failure, MAX_LOG_SIZE};

/// The Go tester's `SnapShotInterval`: a server snapshots at every index that is a multiple of
/// this.
pub const SNAPSHOT_INTERVAL: u64 = 10;

/// How the victim of each round of [`snapcommon`] is taken away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    /// Nobody: every server keeps up, and no InstallSnapshot is needed.
    Spared,
    Disconnected,
    Crashed,
}

/// Fails if some store keeps [`MAX_LOG_SIZE`] bytes of Raft state or more.
fn check_log_size(t: &T) -> Result<(), Failure> {
    let size = t.log_size();
    if size >= MAX_LOG_SIZE {
        return Err(Failure::LogTooLarge {
            size,
            limit: MAX_LOG_SIZE,
        });
    }
    Ok(())
}

/// "Perhaps enough to get a snapshot": 5 to 14 commands.
fn batch(t: &T) -> u64 {
    SNAPSHOT_INTERVAL / 2 + t.random(0..SNAPSHOT_INTERVAL)
}

/// The Go tests' `snapcommon`: 30 rounds, each taking a victim away (or not), committing a
/// batch without it, checking the log size and bringing the victim back, which then needs the
/// entries the others discarded: an InstallSnapshot.
async fn snapcommon(t: T, victim_mode: Victim) -> Result<(), Failure> {
    let servers = t.servers();
    let n = servers as usize;
    t.one(t.random_value(), n, true).await?;
    let mut leader1 = t.check_one_leader().await?;
    for i in 0..30 {
        let (mut victim, mut sender) = ((leader1 + 1) % servers, leader1);
        if i % 3 == 1 {
            (victim, sender) = (leader1, (leader1 + 1) % servers);
        }
        match victim_mode {
            Victim::Spared => {}
            Victim::Disconnected => {
                t.disconnect(victim);
                t.one(t.random_value(), n - 1, true).await?;
            }
            Victim::Crashed => {
                t.crash(victim);
                t.one(t.random_value(), n - 1, true).await?;
            }
        }
        // Perhaps send enough to get a snapshot (the sender may not lead: then none goes in).
        for _ in 0..batch(&t) {
            t.propose(sender, t.random_value());
        }
        // Let the appliers catch up with those; with nobody away, make sure every follower
        // has, so that no InstallSnapshot is needed in SnapshotBasic3D.
        let expected = if victim_mode == Victim::Spared {
            n
        } else {
            n - 1
        };
        t.one(t.random_value(), expected, true).await?;
        check_log_size(&t)?;
        match victim_mode {
            Victim::Spared => {}
            Victim::Disconnected => {
                // A follower that may be behind, and needs a snapshot to catch up.
                t.connect(victim);
                t.one(t.random_value(), n, true).await?;
                leader1 = t.check_one_leader().await?;
            }
            Victim::Crashed => {
                t.start(victim);
                t.connect(victim);
                t.one(t.random_value(), n, true).await?;
                leader1 = t.check_one_leader().await?;
            }
        }
    }
    Ok(())
}

pub async fn snapshot_basic(t: T) -> Result<(), Failure> {
    snapcommon(t, Victim::Spared).await
}

/// SnapshotInstall3D on a reliable network, SnapshotInstallUnreliable3D on a lossy one.
pub async fn snapshot_install(t: T) -> Result<(), Failure> {
    snapcommon(t, Victim::Disconnected).await
}

/// SnapshotInstallCrash3D on a reliable network, SnapshotInstallUnCrash3D on a lossy one.
pub async fn snapshot_install_crash(t: T) -> Result<(), Failure> {
    snapcommon(t, Victim::Crashed).await
}

/// Crashes and restarts every server.
fn restart_all(t: &T) {
    for i in 0..t.servers() {
        t.crash(i);
    }
    for i in 0..t.servers() {
        t.start(i);
        t.connect(i);
    }
}

/// Five rounds of a batch committed by all, then all crash and restart: the next command
/// must land after the last one committed (nothing committed was lost across the snapshots and
/// the restart).
pub async fn snapshot_all_crash(t: T) -> Result<(), Failure> {
    let n = t.servers() as usize;
    t.one(t.random_value(), n, true).await?;
    for _ in 0..5 {
        for _ in 0..batch(&t) {
            t.one(t.random_value(), n, true).await?;
        }
        let index1 = t.one(t.random_value(), n, true).await?;
        restart_all(&t);
        let index2 = t.one(t.random_value(), n, true).await?;
        ensure(index2 > index1, || {
            format!("index decreased from {index1} to {index2}")
        })?;
    }
    Ok(())
}

/// Enough commands for a snapshot (1 + 11, as the Go test commits), then all crash and
/// restart twice with one command between: a server must start from its saved snapshot, and
/// apply nothing at or below its index again.
pub async fn snapshot_init(t: T) -> Result<(), Failure> {
    let n = t.servers() as usize;
    t.one(t.random_value(), n, true).await?;
    for _ in 0..=SNAPSHOT_INTERVAL {
        t.one(t.random_value(), n, true).await?;
    }
    restart_all(&t);
    // A single command, to get something written back to the stores.
    t.one(t.random_value(), n, true).await?;
    restart_all(&t);
    // Another one, to trigger a bug in starting from the snapshot.
    t.one(t.random_value(), n, true).await?;
    Ok(())
}
