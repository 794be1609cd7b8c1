//! The persisters: what a crash leaves behind, a missing file, and corrupt files refused with an
//! error that names them.

mod support;

use std::fs;
use std::path::Path;

use raft_impl::codec::{self, DecodeError, FrameKind, FORMAT_VERSION};
use raft_impl::{FilePersister, HardState, MemoryPersister, PersistError, Persister};
use support::{encoded, hard, Cmd};

fn load(persister: &impl Persister) -> Result<HardState<Cmd>, PersistError> {
    persister.load()
}

/// Loads `path` holding `bytes` and returns the decode error it is refused with, after checking
/// that the error names the file.
fn corrupt_error(path: &Path, bytes: &[u8]) -> DecodeError {
    fs::write(path, bytes).unwrap();
    let err = load(&FilePersister::new(path)).unwrap_err();
    let name = path.display().to_string();
    assert!(err.to_string().contains(&name), "{err}");
    match err {
        PersistError::Corrupt { location, source } => {
            assert_eq!(location, name);
            source
        }
        other => panic!("{name} was not refused as corrupt: {other:?}"),
    }
}

#[test]
fn memory_starts_empty_and_keeps_the_last_save() {
    let mut persister = MemoryPersister::new();
    assert_eq!(load(&persister).unwrap(), HardState::default());
    assert_eq!(persister.size(), 0);
    persister.save(&hard(1, Some(0), &[(1, 10)])).unwrap();
    persister.save(&hard(2, None, &[(1, 10)])).unwrap();
    // What a crash hands to the restarted server.
    let survivor = persister.clone();
    assert_eq!(load(&survivor).unwrap(), hard(2, None, &[(1, 10)]));
    assert_eq!(persister.size(), encoded(&hard(2, None, &[(1, 10)])).len());
}

#[test]
fn a_file_round_trips_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut persister = FilePersister::new(dir.path().join("state"));
    persister.save(&hard(1, Some(0), &[(1, 10)])).unwrap();
    persister
        .save(&hard(2, Some(1), &[(1, 10), (2, 11)]))
        .unwrap();
    let reopened = FilePersister::new(dir.path().join("state"));
    assert_eq!(
        load(&reopened).unwrap(),
        hard(2, Some(1), &[(1, 10), (2, 11)])
    );
    // Nothing but the state file is left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["state"]);
}

#[test]
fn a_missing_file_is_a_fresh_node() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        load(&FilePersister::new(dir.path().join("state"))).unwrap(),
        HardState::default()
    );
}

#[test]
fn a_crash_between_staging_and_rename_keeps_the_old_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let mut persister = FilePersister::new(&path);
    persister.save(&hard(1, Some(0), &[(1, 10)])).unwrap();
    let staged = persister
        .stage(&encoded(&hard(2, Some(1), &[(1, 10), (2, 11)])))
        .unwrap();
    drop(staged); // the crash: the rename never happens
    assert!(dir.path().join("state.tmp").exists());
    let mut restarted = FilePersister::new(&path);
    assert_eq!(load(&restarted).unwrap(), hard(1, Some(0), &[(1, 10)]));
    // The next save replaces the leftover temporary file.
    restarted.save(&hard(3, None, &[(1, 10)])).unwrap();
    assert_eq!(load(&restarted).unwrap(), hard(3, None, &[(1, 10)]));
}

#[test]
fn a_crash_before_the_first_rename_is_a_fresh_node() {
    let dir = tempfile::tempdir().unwrap();
    let persister = FilePersister::new(dir.path().join("state"));
    persister.stage(&encoded(&hard(1, Some(0), &[]))).unwrap();
    assert_eq!(load(&persister).unwrap(), HardState::default());
}

#[test]
fn a_corrupt_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state");
    let good = encoded(&hard(2, Some(1), &[(1, 10), (2, 11)]));

    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 0x10;
    assert!(matches!(
        corrupt_error(&path, &flipped),
        DecodeError::ChecksumMismatch { .. }
    ));
    assert_eq!(
        corrupt_error(&path, &good[..good.len() - 1]),
        DecodeError::TruncatedPayload {
            expected: good.len() - codec::HEADER_LEN,
            got: good.len() - codec::HEADER_LEN - 1,
        }
    );
    assert_eq!(
        corrupt_error(&path, b""),
        DecodeError::TruncatedHeader { got: 0 }
    );
    let mut future = good.clone();
    future[4..6].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    assert_eq!(
        corrupt_error(&path, &future),
        DecodeError::UnsupportedVersion {
            found: FORMAT_VERSION + 1
        }
    );
    let mut foreign = good;
    foreign[..4].copy_from_slice(b"JUNK");
    assert_eq!(
        corrupt_error(&path, &foreign),
        DecodeError::WrongMagic {
            expected: FrameKind::HardState,
            found: *b"JUNK",
        }
    );
}

#[test]
fn an_unwritable_location_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("state");
    let mut persister = FilePersister::new(&path);
    match persister.save(&hard(1, None, &[])) {
        Err(PersistError::Io { location, .. }) => assert_eq!(location, path.display().to_string()),
        other => panic!("saving into a missing directory: {other:?}"),
    }
}
