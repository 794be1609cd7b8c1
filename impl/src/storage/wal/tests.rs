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
    WalOptions { segment_size: 64 }
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
