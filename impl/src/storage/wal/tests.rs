use std::fs;

use super::*;
use crate::types::{Entry, Snapshot};

fn entry(term: u64, command: u32) -> Entry<u32> {
    Entry { term, command }
}

fn vote(term: u64) -> Record<u32> {
    Record::TermVote {
        term,
        voted_for: Some(1),
    }
}

fn log(from: u64, entries: &[(u64, u32)]) -> Record<u32> {
    Record::Log {
        from,
        entries: entries.iter().map(|&(t, c)| entry(t, c)).collect(),
    }
}

fn replayed(records: &[Record<u32>]) -> HardState<u32> {
    let mut state = HardState::default();
    for record in records {
        state.apply(record.clone()).unwrap();
    }
    state
}

fn tiny() -> WalOptions {
    WalOptions { segment_size: 40 }
}

#[test]
fn records_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let records = [
        vote(1),
        log(1, &[(1, 7), (1, 8)]),
        vote(2),
        log(2, &[(2, 9)]),
    ];
    let mut wal = FileWal::create(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(wal.append(&records[..3]).unwrap(), 3);
    assert_eq!(wal.durable(), 0);
    assert_eq!(wal.sync().unwrap(), 3);
    assert_eq!(wal.append(&records[3..]).unwrap(), 4);
    assert_eq!(wal.sync().unwrap(), 4);
    drop(wal);
    let (wal, state) = FileWal::<u32>::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(state, replayed(&records));
    assert_eq!(wal.durable(), 4);
}

#[test]
fn unsynced_records_are_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = FileWal::create(dir.path(), WalOptions::default()).unwrap();
    wal.append(&[vote(1)]).unwrap();
    wal.sync().unwrap();
    wal.append(&[vote(2)]).unwrap();
    drop(wal);
    let (wal, state) = FileWal::<u32>::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(state, replayed(&[vote(1)]));
    assert_eq!(wal.durable(), 1);
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    segment::list(dir)
        .unwrap()
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

#[test]
fn a_full_segment_rolls_over_to_one_named_by_its_first_position() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = FileWal::create(dir.path(), tiny()).unwrap();
    let records: Vec<_> = (1..=6).map(|i| log(i, &[(1, i as u32)])).collect();
    wal.append(&records[..4]).unwrap();
    wal.sync().unwrap();
    wal.append(&records[4..]).unwrap();
    wal.sync().unwrap();
    let files = segments(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    assert_eq!(files[0], segment::path(dir.path(), 0));
    for file in &files[..files.len() - 1] {
        assert!(fs::metadata(file).unwrap().len() >= tiny().segment_size);
    }
    drop(wal);
    let (mut wal, state) = FileWal::<u32>::open(dir.path(), tiny()).unwrap();
    assert_eq!(state, replayed(&records));
    wal.append(&[vote(3)]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, state) = FileWal::<u32>::open(dir.path(), tiny()).unwrap();
    assert_eq!(state.current_term, 3);
    assert_eq!(state.log, replayed(&records).log);
}

#[test]
fn a_torn_tail_is_cut_off_before_appending() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = FileWal::create(dir.path(), WalOptions::default()).unwrap();
    wal.append(&[vote(1), log(1, &[(1, 7)]), log(2, &[(1, 8)])])
        .unwrap();
    wal.sync().unwrap();
    drop(wal);
    let path = segment::path(dir.path(), 0);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();

    let (mut wal, state) = FileWal::<u32>::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(state, replayed(&[vote(1), log(1, &[(1, 7)])]));
    assert_eq!(wal.durable(), 2);
    assert_eq!(wal.append(&[log(2, &[(2, 9)])]).unwrap(), 3);
    wal.sync().unwrap();
    drop(wal);
    let (wal, state) = FileWal::<u32>::open(dir.path(), WalOptions::default()).unwrap();
    assert_eq!(state.log, vec![entry(1, 7), entry(2, 9)]);
    assert_eq!(wal.durable(), 3);
}

#[test]
fn exists_only_once_created_and_create_refuses_an_existing_log() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("data");
    assert!(!FileWal::<u32>::exists(&sub).unwrap());
    assert!(matches!(
        FileWal::<u32>::open(&sub, WalOptions::default()),
        Err(WalError::NotFound { .. })
    ));
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("notes.txt"), "not a segment").unwrap();
    assert!(!FileWal::<u32>::exists(&sub).unwrap());
    assert!(matches!(
        FileWal::<u32>::open(&sub, WalOptions::default()),
        Err(WalError::NotFound { .. })
    ));

    let wal = FileWal::<u32>::create(&sub, WalOptions::default()).unwrap();
    assert_eq!(wal.durable(), 0);
    assert!(FileWal::<u32>::exists(&sub).unwrap());
    assert!(matches!(
        FileWal::<u32>::create(&sub, WalOptions::default()),
        Err(WalError::AlreadyExists { .. })
    ));
    let (wal, state) = FileWal::<u32>::open(&sub, WalOptions::default()).unwrap();
    assert_eq!(state, HardState::default());
    assert_eq!(wal.durable(), 0);
}

#[test]
fn the_older_builds_state_file_is_reported_with_its_version() {
    let dir = tempfile::tempdir().unwrap();
    let old = codec::encode(FrameKind::HardState, &replayed(&[vote(4)])).unwrap();
    fs::write(dir.path().join(LEGACY_STATE_FILE), old).unwrap();
    assert!(FileWal::<u32>::exists(dir.path()).unwrap());
    for error in [
        FileWal::<u32>::open(dir.path(), WalOptions::default()).map(|_| ()),
        FileWal::<u32>::create(dir.path(), WalOptions::default()).map(|_| ()),
    ] {
        match error {
            Err(WalError::OldFormat { path, version }) => {
                assert_eq!(path, dir.path().join(LEGACY_STATE_FILE));
                assert_eq!(version, Some(codec::FORMAT_VERSION));
            }
            other => panic!("expected OldFormat, got {other:?}"),
        }
    }
    fs::write(dir.path().join(LEGACY_STATE_FILE), b"junk").unwrap();
    let error = FileWal::<u32>::open(dir.path(), WalOptions::default()).unwrap_err();
    assert!(matches!(error, WalError::OldFormat { version: None, .. }));
    assert!(error.to_string().contains("version unknown"), "{error}");
}

#[test]
fn one_sync_per_batch_however_many_records_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = FileWal::create(dir.path(), WalOptions::default()).unwrap();
    for batch in 1..=5u32 {
        let records: Vec<_> = (0..batch * 10).map(|_| vote(batch.into())).collect();
        wal.append(&records).unwrap();
        wal.sync().unwrap();
        assert_eq!(wal.sync_count(), u64::from(batch));
    }
    wal.sync().unwrap();
    assert_eq!(wal.sync_count(), 5, "a sync with nothing new syncs nothing");
}

#[test]
fn a_wal_moves_to_a_writer_thread() {
    fn send<T: Send>() {}
    send::<FileWal<u32>>();
}

/// A log of six one-entry records in `tiny` segments, synced and closed: its segment files.
fn six_entries_in_segments(dir: &Path) -> Vec<PathBuf> {
    let mut wal = FileWal::create(dir, tiny()).unwrap();
    let records: Vec<_> = (1..=6).map(|i| log(i, &[(1, i as u32)])).collect();
    wal.append(&records).unwrap();
    wal.sync().unwrap();
    drop(wal);
    segments(dir)
}

#[test]
fn a_damaged_earlier_segment_or_a_missing_one_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let files = six_entries_in_segments(dir.path());
    assert!(files.len() >= 3, "{files:?}");

    let middle = fs::read(&files[1]).unwrap();
    fs::write(&files[1], &middle[..middle.len() - 1]).unwrap();
    match FileWal::<u32>::open(dir.path(), tiny()) {
        Err(WalError::Corrupt {
            file,
            offset,
            reason,
        }) => {
            assert_eq!(file, files[1]);
            assert!(offset > 0, "the segment's first record is whole");
            assert!(matches!(reason, CorruptReason::Record(_)), "{reason}");
        }
        other => panic!("a torn earlier segment was accepted: {other:?}"),
    }

    fs::remove_file(&files[1]).unwrap();
    match FileWal::<u32>::open(dir.path(), tiny()) {
        Err(WalError::Corrupt {
            file,
            offset: 0,
            reason,
        }) => {
            assert_eq!(file, files[2]);
            assert!(
                matches!(reason, CorruptReason::SegmentStart { .. }),
                "{reason}"
            );
        }
        other => panic!("a missing segment was not noticed: {other:?}"),
    }
}

#[test]
fn a_log_record_past_the_end_of_the_log_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = FileWal::create(dir.path(), WalOptions::default()).unwrap();
    wal.append(&[vote(1), log(2, &[(1, 7)])]).unwrap();
    wal.sync().unwrap();
    drop(wal);
    match FileWal::<u32>::open(dir.path(), WalOptions::default()) {
        Err(WalError::Corrupt {
            reason: CorruptReason::Gap(gap),
            ..
        }) => assert_eq!((gap.from, gap.last), (2, 0)),
        other => panic!("{other:?}"),
    }
}

fn snapshot(last_index: u64, last_term: u64, bytes: usize) -> Record<u32> {
    Record::Snapshot(Snapshot {
        last_index,
        last_term,
        data: (0..bytes).map(|i| i as u8).collect(),
    })
}

/// The log's files other than segments: its snapshot files, whole or temporary.
fn snapshot_files(dir: &Path) -> Vec<PathBuf> {
    snapshot::list(dir)
        .unwrap()
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

/// Elections and appends, a follower's conflicting suffix truncated, and a snapshot that keeps
/// the entries after it.
fn with_a_snapshot() -> Vec<Record<u32>> {
    vec![
        vote(1),
        log(1, &[(1, 1), (1, 2), (1, 3), (1, 4)]),
        vote(2),
        log(3, &[(2, 5), (2, 6)]),
        snapshot(2, 1, 300),
        log(5, &[(2, 7)]),
        vote(3),
    ]
}

#[test]
fn a_snapshot_restores_with_the_entries_after_it_and_the_segments_before_it_go() {
    let dir = tempfile::tempdir().unwrap();
    let records = with_a_snapshot();
    let mut wal = FileWal::create(dir.path(), tiny()).unwrap();
    wal.append(&records[..4]).unwrap();
    wal.sync().unwrap();
    assert!(segments(dir.path()).len() >= 2);
    assert_eq!(wal.append(&records[4..]).unwrap(), records.len() as u64);
    assert_eq!(wal.sync().unwrap(), records.len() as u64);
    // The install record (position 4) starts the first segment left.
    assert_eq!(segments(dir.path())[0], segment::path(dir.path(), 4));
    assert_eq!(snapshot_files(dir.path()).len(), 1);
    drop(wal);

    let (mut wal, state) = FileWal::<u32>::open(dir.path(), tiny()).unwrap();
    assert_eq!(state, replayed(&records));
    assert_eq!(state.snapshot_index(), 2);
    assert_eq!(state.log, vec![entry(2, 5), entry(2, 6), entry(2, 7)]);
    assert_eq!(state.current_term, 3);
    assert_eq!(wal.durable(), records.len() as u64);
    // A second snapshot purges the first one's segment and file.
    let more = [log(6, &[(3, 8)]), snapshot(5, 2, 10), vote(4)];
    wal.append(&more).unwrap();
    wal.sync().unwrap();
    assert_eq!(segments(dir.path())[0], segment::path(dir.path(), 8));
    assert_eq!(snapshot_files(dir.path()).len(), 1);
    drop(wal);
    let (_, reopened) = FileWal::<u32>::open(dir.path(), tiny()).unwrap();
    let all: Vec<_> = records.iter().chain(&more).cloned().collect();
    assert_eq!(reopened, replayed(&all));
}

/// The install record carries term and vote: the purge deletes the segment that held the only
/// term/vote record, and the state keeps them.
#[test]
fn the_purge_keeps_term_and_vote_whose_record_it_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let records = [
        vote(5),
        log(1, &[(5, 1), (5, 2), (5, 3)]),
        snapshot(3, 5, 8),
    ];
    let mut wal = FileWal::create(dir.path(), tiny()).unwrap();
    wal.append(&records).unwrap();
    wal.sync().unwrap();
    assert!(!segments(dir.path()).contains(&segment::path(dir.path(), 0)));
    drop(wal);
    let (_, state) = FileWal::<u32>::open(dir.path(), tiny()).unwrap();
    assert_eq!((state.current_term, state.voted_for), (5, Some(1)));
    assert_eq!(state, replayed(&records));
}

/// Many records with a snapshot every `every` of them: after every sync the directory holds at
/// most the segments that the records since the last snapshot fill, and one snapshot file.
#[test]
fn a_log_with_periodic_snapshots_stays_bounded_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions { segment_size: 256 };
    let mut wal = FileWal::create(dir.path(), options.clone()).unwrap();
    let every = 50;
    let mut all = vec![vote(1)];
    wal.append(&all).unwrap();
    let (mut most_segments, mut most_bytes) = (0, 0);
    for index in 1..=2000u64 {
        let mut batch = vec![log(index, &[(1, index as u32)])];
        if index % every == 0 {
            // The service snapshots at an applied index a little behind the log's end.
            batch.push(snapshot(index - 3, 1, 1000));
        }
        wal.append(&batch).unwrap();
        wal.sync().unwrap();
        all.extend(batch);
        let files = segments(dir.path());
        let bytes: u64 = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        most_segments = most_segments.max(files.len());
        most_bytes = most_bytes.max(bytes);
        assert!(snapshot_files(dir.path()).len() <= 1);
    }
    // A record here is about 30 bytes: `every` of them (and the install record with a few
    // entries) fill 7 segments of 256 bytes; the 2000 records fill 236 without the purge.
    assert!(most_segments <= 8, "{most_segments} segments");
    assert!(most_bytes <= 8 * 300 + 1100, "{most_bytes} bytes");
    drop(wal);
    let (_, state) = FileWal::<u32>::open(dir.path(), options).unwrap();
    assert_eq!(state, replayed(&all));
    assert_eq!(state.snapshot_index(), 1997);
}

/// Writes `with_a_snapshot` and returns the directory and the file of its snapshot.
fn written_with_a_snapshot() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = FileWal::create(dir.path(), tiny()).unwrap();
    wal.append(&with_a_snapshot()).unwrap();
    wal.sync().unwrap();
    let files = snapshot_files(dir.path());
    assert_eq!(files.len(), 1);
    (dir, files[0].clone())
}

fn snapshot_fault(dir: &Path, file: &Path) -> SnapshotFault {
    match FileWal::<u32>::open(dir, tiny()) {
        Err(WalError::Snapshot {
            file: named,
            position,
            reason,
        }) => {
            assert_eq!(named, file);
            assert_eq!(position, 4);
            reason
        }
        other => panic!("expected a snapshot error, got {:?}", other.map(|(_, s)| s)),
    }
}

#[test]
fn a_damaged_truncated_missing_or_replaced_snapshot_file_is_an_error_naming_it() {
    let (dir, file) = written_with_a_snapshot();
    let whole = fs::read(&file).unwrap();
    for byte in [0, 5, codec::HEADER_LEN, whole.len() - 1] {
        let mut flipped = whole.clone();
        flipped[byte] ^= 0x10;
        fs::write(&file, &flipped).unwrap();
        assert!(matches!(
            snapshot_fault(dir.path(), &file),
            SnapshotFault::Decode(_)
        ));
    }
    fs::write(&file, &whole[..whole.len() - 1]).unwrap();
    let fault = snapshot_fault(dir.path(), &file);
    assert!(matches!(fault, SnapshotFault::Decode(_)), "{fault}");
    // Another whole snapshot of the same name is not the one the install record wrote.
    let other = codec::encode(
        FrameKind::SnapshotFile,
        &Snapshot {
            last_index: 2,
            last_term: 1,
            data: vec![7; 300],
        },
    )
    .unwrap();
    fs::write(&file, other).unwrap();
    assert!(matches!(
        snapshot_fault(dir.path(), &file),
        SnapshotFault::NotTheOneWritten { .. }
    ));
    fs::remove_file(&file).unwrap();
    let error = FileWal::<u32>::open(dir.path(), tiny()).unwrap_err();
    assert!(
        error.to_string().contains(&*file.to_string_lossy()),
        "{error}"
    );
    assert!(matches!(
        snapshot_fault(dir.path(), &file),
        SnapshotFault::Missing
    ));
    fs::write(&file, &whole).unwrap();
    let (_, state) = FileWal::<u32>::open(dir.path(), tiny()).unwrap();
    assert_eq!(state, replayed(&with_a_snapshot()));
}

#[test]
fn a_log_that_starts_after_a_deleted_segment_without_an_install_record_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let files = six_entries_in_segments(dir.path());
    fs::remove_file(&files[0]).unwrap();
    match FileWal::<u32>::open(dir.path(), tiny()) {
        Err(WalError::Corrupt {
            file,
            offset: 0,
            reason: CorruptReason::NoSnapshotBefore { .. },
        }) => assert_eq!(file, files[1]),
        other => panic!("{:?}", other.map(|(_, s)| s)),
    }
}

/// Crashes at each step of a snapshot: until the install record is durable the state is the
/// one before the snapshot, and the file (if any) is deleted on open; from then on it is the
/// one after, and the files the install record makes dead are deleted on open.
#[test]
fn a_crash_at_each_step_of_a_snapshot_recovers_before_or_after_it() {
    let records = with_a_snapshot();
    let (before, with) = (&records[..4], &records[..5]);
    for point in CrashPoint::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = FileWal::create(dir.path(), tiny()).unwrap();
        wal.append(before).unwrap();
        wal.sync().unwrap();
        wal.crash_at(point);
        let crashed = wal
            .append(std::slice::from_ref(&records[4]))
            .and_then(|_| wal.sync());
        assert!(
            matches!(crashed, Err(WalWriteError::Crashed(at)) if at == point),
            "{point:?}: {crashed:?}"
        );
        assert!(matches!(wal.sync(), Err(WalWriteError::Poisoned { .. })));
        drop(wal);
        let durable = point >= CrashPoint::InstallDurable;
        let (wal, state) = FileWal::<u32>::open(dir.path(), tiny()).unwrap();
        let expected = if durable { with } else { before };
        assert_eq!(state, replayed(expected), "{point:?}");
        assert_eq!(wal.durable(), expected.len() as u64, "{point:?}");
        assert_eq!(
            snapshot_files(dir.path()).len(),
            usize::from(durable),
            "{point:?}"
        );
        if durable {
            assert_eq!(segments(dir.path())[0], segment::path(dir.path(), 4));
        }
    }
}
