use std::fs;

use super::*;
use crate::types::Entry;

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

#[test]
fn a_damaged_earlier_segment_or_a_missing_one_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let mut wal = FileWal::create(dir.path(), tiny()).unwrap();
    let records: Vec<_> = (1..=6).map(|i| log(i, &[(1, i as u32)])).collect();
    wal.append(&records).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let files = segments(dir.path());
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
