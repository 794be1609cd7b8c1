//! Crash points of the write-ahead log: a recorded workload is written, then its bytes are cut
//! or bit-flipped and recovered. A cut (what a crash mid-write leaves) recovers exactly the
//! records whose bytes are all present; a flipped bit in any record but the last is a
//! `Corrupt` error naming its file and the record's offset, never a silent truncation; a flip
//! in the last record is dropped as torn or reported. Nothing panics. A crash at every step of
//! taking a snapshot (placed by the log's test-only crash hook, `CrashPoint`) recovers the state
//! before the snapshot or the one after it.

use std::fs;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use raft_impl::codec;
use raft_impl::storage::wal::CrashPoint;
use raft_impl::storage::{FileWal, LogStore, WalError, WalOptions, WalWriteError};
use raft_impl::{Entry, HardState, Record, Snapshot};

type Batches = Vec<Vec<Record<u32>>>;

/// The files of a log, by name, in order.
type Files = Vec<(PathBuf, Vec<u8>)>;

/// Where a record's frame lies.
#[derive(Clone, Copy, Debug)]
struct Frame {
    segment: usize,
    start: usize,
    end: usize,
}

/// A workload, written and synced batch by batch, and what it left on disk.
struct Written {
    records: Vec<Record<u32>>,
    files: Files,
    frames: Vec<Frame>,
    /// `states[k]`: the state after the first `k` records.
    states: Vec<HardState<u32>>,
}

fn write(batches: &Batches, segment_size: u64) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions { segment_size };
    let mut wal = FileWal::<u32>::create(dir.path(), options).unwrap();
    for batch in batches {
        wal.append(batch).unwrap();
        wal.sync().unwrap();
    }
    let records: Vec<_> = batches.iter().flatten().cloned().collect();
    assert_eq!(wal.durable(), records.len() as u64);
    drop(wal);

    let mut names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let files: Files = names
        .into_iter()
        .map(|name| {
            (
                PathBuf::from(&name),
                fs::read(dir.path().join(name)).unwrap(),
            )
        })
        .collect();
    let mut frames = Vec::new();
    for (segment, (_, bytes)) in files.iter().enumerate() {
        let mut start = 0;
        while start < bytes.len() {
            let (record, len) = codec::decode_record::<u32>(&bytes[start..]).unwrap();
            assert_eq!(
                record,
                records[frames.len()],
                "the log holds what was written"
            );
            frames.push(Frame {
                segment,
                start,
                end: start + len,
            });
            start += len;
        }
    }
    assert_eq!(frames.len(), records.len());
    let mut states = vec![HardState::default()];
    for record in &records {
        let mut next = states.last().unwrap().clone();
        next.apply(record.clone()).unwrap();
        states.push(next);
    }
    Written {
        records,
        files,
        frames,
        states,
    }
}

/// A directory that test cases fill with files and recover from.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Scratch {
        Scratch(tempfile::tempdir().unwrap())
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Replaces the directory's files by `files` and opens the log in it.
    fn recover(&self, files: &Files) -> Result<(FileWal<u32>, HardState<u32>), WalError> {
        for entry in fs::read_dir(self.path()).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }
        for (name, bytes) in files {
            fs::write(self.path().join(name), bytes).unwrap();
        }
        FileWal::open(self.path(), WalOptions { segment_size: 64 })
    }
}

impl Written {
    /// The files a crash leaves when the last segment holds only its first `cut` bytes.
    fn cut_last(&self, cut: usize) -> Files {
        let mut files = self.files.clone();
        files.last_mut().unwrap().1.truncate(cut);
        files
    }

    /// How many records are whole in the files of `cut_last(cut)`.
    fn whole_after_cut(&self, cut: usize) -> usize {
        let last = self.files.len() - 1;
        self.frames
            .iter()
            .filter(|f| f.segment < last || f.end <= cut)
            .count()
    }

    /// Recovers from `files` and checks that it gives exactly the first `whole` records, and
    /// that appending after them works.
    fn recovers_prefix(&self, scratch: &Scratch, files: &Files, whole: usize) {
        let (mut wal, state) = scratch
            .recover(files)
            .unwrap_or_else(|e| panic!("{whole} whole records: {e}"));
        assert_eq!(state, self.states[whole], "{whole} whole records");
        assert_eq!(wal.durable(), whole as u64);
        let next = Record::Log {
            from: state.last_index() + 1,
            entries: vec![Entry {
                term: 99,
                command: 99,
            }],
        };
        wal.append(std::slice::from_ref(&next)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (wal, reopened) = FileWal::<u32>::open(scratch.path(), WalOptions::default())
            .unwrap_or_else(|e| panic!("reopen after {whole} whole records and one more: {e}"));
        let mut expected = self.states[whole].clone();
        expected.apply(next).unwrap();
        assert_eq!(reopened, expected);
        assert_eq!(wal.durable(), whole as u64 + 1);
    }

    /// Every cut of the last segment from the start of its last `last_records` records to its
    /// end, and every crash that loses whole trailing segments.
    fn check_cuts(&self, scratch: &Scratch, last_records: usize, reopen_every: usize) {
        let last = self.files.len() - 1;
        let from = self
            .frames
            .iter()
            .rev()
            .take(last_records)
            .filter(|f| f.segment == last)
            .map(|f| f.start)
            .min()
            .unwrap_or(0);
        for cut in from..=self.files[last].1.len() {
            let files = self.cut_last(cut);
            let whole = self.whole_after_cut(cut);
            if cut % reopen_every == 0 {
                self.recovers_prefix(scratch, &files, whole);
            } else {
                let (_, state) = scratch
                    .recover(&files)
                    .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
                assert_eq!(state, self.states[whole], "cut at {cut}");
            }
        }
        for kept in 1..self.files.len() {
            let whole = self.frames.iter().filter(|f| f.segment < kept).count();
            self.recovers_prefix(scratch, &self.files[..kept].to_vec(), whole);
        }
        let mut zeros = self.files.clone();
        zeros.last_mut().unwrap().1.extend([0; 100]);
        self.recovers_prefix(scratch, &zeros, self.records.len());
    }

    /// The files with bit `bit` of byte `byte` of segment `segment` flipped.
    fn flipped(&self, segment: usize, byte: usize, bit: u8) -> Files {
        let mut files = self.files.clone();
        files[segment].1[byte] ^= 1 << bit;
        files
    }

    /// A flip in any record but the last is reported at that record.
    fn check_flip_before_last(&self, scratch: &Scratch, record: usize, byte: usize, bit: u8) {
        let frame = self.frames[record];
        let files = self.flipped(frame.segment, frame.start + byte, bit);
        match scratch.recover(&files) {
            Err(WalError::Corrupt { file, offset, .. }) => {
                assert_eq!(file, scratch.path().join(&self.files[frame.segment].0));
                assert_eq!(offset, frame.start as u64, "record {record} byte {byte}");
            }
            Err(other) => panic!("record {record} byte {byte} bit {bit}: {other}"),
            Ok(_) => panic!("record {record} byte {byte} bit {bit}: not detected"),
        }
    }

    /// A flip in the last record is dropped as torn or reported, never read as another record.
    fn check_flip_in_last(&self, scratch: &Scratch, byte: usize, bit: u8) {
        let frame = *self.frames.last().unwrap();
        let files = self.flipped(frame.segment, frame.start + byte, bit);
        match scratch.recover(&files) {
            Ok((_, state)) => assert_eq!(state, self.states[self.records.len() - 1]),
            Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, frame.start as u64),
            Err(other) => panic!("last record byte {byte} bit {bit}: {other}"),
        }
    }
}

fn entries(term: u64, commands: &[u32]) -> Vec<Entry<u32>> {
    commands
        .iter()
        .map(|&command| Entry { term, command })
        .collect()
}

/// Elections, appends, a leader's log overwriting a follower's suffix, and a big batch.
fn fixed_workload() -> Batches {
    let vote = |term, voted_for| Record::TermVote { term, voted_for };
    let log = |from, term, commands: &[u32]| Record::Log {
        from,
        entries: entries(term, commands),
    };
    vec![
        vec![vote(1, Some(0))],
        vec![log(1, 1, &[10, 11])],
        vec![log(3, 1, &[12]), log(4, 1, &[13, 14, 15])],
        vec![vote(2, None), vote(2, Some(2)), log(3, 2, &[20])],
        vec![log(4, 2, &[21, 22]), log(6, 2, &[])],
        vec![vote(3, None)],
        vec![log(2, 3, &[30, 31, 32, 33]), vote(3, Some(1))],
        vec![log(6, 3, &[34]), log(7, 3, &[35])],
    ]
}

#[test]
fn every_crash_point_of_a_fixed_workload() {
    let written = write(&fixed_workload(), 96);
    assert!(written.files.len() >= 3, "{} segments", written.files.len());
    let scratch = Scratch::new();
    written.check_cuts(&scratch, 4, 1);

    let last = written.records.len() - 1;
    let mut flips = 0;
    for record in 0..last {
        let frame = written.frames[record];
        for byte in 0..frame.end - frame.start {
            for bit in 0..8 {
                written.check_flip_before_last(&scratch, record, byte, bit);
                flips += 1;
            }
        }
    }
    let frame = written.frames[last];
    for byte in 0..frame.end - frame.start {
        for bit in 0..8 {
            written.check_flip_in_last(&scratch, byte, bit);
        }
    }
    assert!(flips > 2000, "{flips} flips");
}

/// A damaged record followed by garbage that holds no header is torn; one followed by a
/// header is not, even when the header's record is cut short.
#[test]
fn damage_followed_by_a_header_is_corruption_even_if_that_record_is_torn() {
    let written = write(&fixed_workload(), u64::MAX);
    let scratch = Scratch::new();
    let n = written.records.len();
    let (second_last, last) = (written.frames[n - 2], written.frames[n - 1]);
    let mut files = written.cut_last(last.end - 1);
    files[0].1[second_last.end - 1] ^= 1;
    match scratch.recover(&files) {
        Err(WalError::Corrupt { offset, .. }) => assert_eq!(offset, second_last.start as u64),
        other => panic!("{:?}", other.map(|(_, state)| state)),
    }
    let mut files = written.cut_last(second_last.end);
    files[0].1[second_last.end - 1] ^= 1;
    files[0].1.extend([0xa5; 40]);
    written.recovers_prefix(&scratch, &files, n - 2);
}

/// Records the core could emit: `ops` picks each record's kind and where a log record starts,
/// so that no record starts past the end of the log.
fn batches_from(ops: Vec<Vec<(bool, u64, Vec<u32>)>>) -> Batches {
    let mut last_index = 0u64;
    let mut term = 0;
    ops.into_iter()
        .map(|batch| {
            batch
                .into_iter()
                .map(|(is_vote, pick, commands)| {
                    if is_vote {
                        term += 1;
                        Record::TermVote {
                            term,
                            voted_for: (pick % 4 < 3).then_some((pick % 3) as u8),
                        }
                    } else {
                        let from = 1 + pick % (last_index + 1);
                        last_index = from - 1 + commands.len() as u64;
                        Record::Log {
                            from,
                            entries: entries(term, &commands),
                        }
                    }
                })
                .collect()
        })
        .collect()
}

fn workload() -> impl Strategy<Value = Batches> {
    let record = (
        any::<bool>(),
        any::<u64>(),
        proptest::collection::vec(any::<u32>(), 0..5),
    );
    proptest::collection::vec(proptest::collection::vec(record, 2..5), 2..6).prop_map(batches_from)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn generated_workloads_recover_a_prefix_or_report_corruption(
        batches in workload(),
        segment_size in 16u64..64,
        flips in proptest::collection::vec((any::<usize>(), any::<usize>(), 0u8..8), 32),
        garbage in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let written = write(&batches, segment_size);
        prop_assert!(written.files.len() >= 2);
        let scratch = Scratch::new();
        written.check_cuts(&scratch, 3, 16);

        let last = written.records.len() - 1;
        for (record, byte, bit) in flips {
            let frame = written.frames[record % written.frames.len()];
            let byte = byte % (frame.end - frame.start);
            if record % written.frames.len() == last {
                written.check_flip_in_last(&scratch, byte, bit);
            } else {
                written.check_flip_before_last(&scratch, record % written.frames.len(), byte, bit);
            }
        }

        let mut files = written.files.clone();
        files.last_mut().unwrap().1.extend(garbage);
        written.recovers_prefix(&scratch, &files, written.records.len());
    }
}

/// The files of `dir`, by name, in order.
fn files_of(dir: &Path) -> Files {
    let mut files: Files = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (PathBuf::from(e.file_name()), fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

fn is_snapshot_file(name: &Path) -> bool {
    let name = name.to_string_lossy();
    name.ends_with(".snap") || name.ends_with(".snap.tmp")
}

fn is_segment(name: &Path) -> bool {
    name.to_string_lossy().ends_with(".wal")
}

/// A crash placed at one step of a snapshot, and what the log held before the snapshot began.
struct SnapshotCrash {
    records: Vec<Record<u32>>,
    /// `states[k]`: the state after the first `k` records.
    states: Vec<HardState<u32>>,
    /// How many records were durable before the batch with the snapshot.
    before_batch: usize,
    /// The files before the batch, and at the crash.
    before: Files,
    crashed: Files,
}

/// Elections and appends (`fixed_workload`), a first snapshot, more entries; then the batch
/// under test: an entry, a snapshot that keeps it, and a new term and vote.
fn snapshot_crash(point: CrashPoint) -> SnapshotCrash {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions { segment_size: 96 };
    let mut wal = FileWal::<u32>::create(dir.path(), options).unwrap();
    let mut records = Vec::new();
    let mut state = HardState::default();
    let mut write = |wal: &mut FileWal<u32>, batch: Vec<Record<u32>>| {
        for record in &batch {
            state.apply(record.clone()).unwrap();
        }
        records.extend(batch.iter().cloned());
        let appended = wal.append(&batch).and_then(|_| wal.sync());
        (appended, state.clone())
    };
    let snapshot = |state: &HardState<u32>, index| {
        Record::Snapshot(Snapshot {
            last_index: index,
            last_term: state.term_at(index).unwrap(),
            data: (0..200 + index as u32).map(|b| b as u8).collect(),
        })
    };
    let mut state = HardState::default();
    for batch in fixed_workload() {
        state = write(&mut wal, batch).1;
    }
    let first = snapshot(&state, 3);
    state = write(&mut wal, vec![first]).1;
    let more = Record::Log {
        from: state.last_index() + 1,
        entries: entries(3, &[40, 41, 42, 43]),
    };
    state = write(&mut wal, vec![more]).1;
    let before_batch = wal.durable() as usize;
    let before = files_of(dir.path());

    wal.crash_at(point);
    let entry = Record::Log {
        from: state.last_index() + 1,
        entries: entries(3, &[44]),
    };
    let mut next = state.clone();
    next.apply(entry.clone()).unwrap();
    let second = snapshot(&next, next.last_index() - 1);
    let vote = Record::TermVote {
        term: 4,
        voted_for: Some(0),
    };
    let (crashed, _) = write(&mut wal, vec![entry, second, vote]);
    match crashed {
        Err(WalWriteError::Crashed(at)) => assert_eq!(at, point),
        other => panic!("{point:?}: {other:?}"),
    }
    drop(wal);

    let mut states = vec![HardState::default()];
    for record in &records {
        let mut next = states.last().unwrap().clone();
        next.apply(record.clone()).unwrap();
        states.push(next);
    }
    SnapshotCrash {
        records,
        states,
        before_batch,
        before,
        crashed: files_of(dir.path()),
    }
}

impl SnapshotCrash {
    /// The files a crash at the same point could have left, each with how many records it
    /// keeps: the point itself, and what a crash there may lose that the process did not (an
    /// unsynced rename, a torn write, some of the deletions of the purge).
    fn variants(&self, point: CrashPoint) -> Vec<(String, Files, usize)> {
        // The batch's entry was synced before the snapshot began; its snapshot and vote are
        // durable with the install record.
        let (without, with) = (self.before_batch + 1, self.before_batch + 3);
        let kept = if point >= CrashPoint::InstallDurable {
            with
        } else {
            without
        };
        let mut variants = vec![(format!("{point:?}"), self.crashed.clone(), kept)];
        let snapshot_at = |files: &Files| {
            files.iter().position(|(name, _)| {
                is_snapshot_file(name) && !self.before.iter().any(|(n, _)| n == name)
            })
        };
        match point {
            CrashPoint::TemporaryWritten => {
                let at = snapshot_at(&self.crashed).expect("a temporary file");
                let len = self.crashed[at].1.len();
                for cut in [0, 1, codec::HEADER_LEN, len / 2, len - 1] {
                    let mut files = self.crashed.clone();
                    files[at].1.truncate(cut);
                    variants.push((format!("temporary cut at {cut}"), files, without));
                }
            }
            CrashPoint::Renamed => {
                let at = snapshot_at(&self.crashed).expect("a snapshot file");
                let mut files = self.crashed.clone();
                let mut name = files[at].0.clone().into_os_string();
                name.push(".tmp");
                files[at].0 = PathBuf::from(name);
                variants.push(("rename lost".into(), files, without));
            }
            CrashPoint::InstallDurable => {
                // A crash while the install record and the vote after it were written: every
                // cut of the segment they start.
                let last = self
                    .crashed
                    .iter()
                    .rposition(|(n, _)| is_segment(n))
                    .unwrap();
                let bytes = &self.crashed[last].1;
                let install = codec::read_log_frame(bytes).unwrap();
                assert_eq!(install.kind, codec::FrameKind::SnapshotInstall);
                for cut in 0..bytes.len() {
                    let mut files = self.crashed.clone();
                    files[last].1.truncate(cut);
                    let records = if cut < install.len {
                        without
                    } else {
                        without + 1
                    };
                    variants.push((format!("install segment cut at {cut}"), files, records));
                }
            }
            CrashPoint::SegmentsPurged | CrashPoint::OldSnapshotsDeleted => {
                // The deletions were not synced one by one: any of the dead files may be back.
                let dead: Vec<_> = self
                    .before
                    .iter()
                    .filter(|(name, _)| !self.crashed.iter().any(|(n, _)| n == name))
                    .collect();
                assert!(!dead.is_empty(), "{point:?} deleted nothing");
                let subsets = 1usize << dead.len().min(8);
                for subset in 1..subsets {
                    let mut files = self.crashed.clone();
                    files.extend(
                        dead.iter()
                            .enumerate()
                            .filter(|(i, _)| *i < 8 && subset & (1 << i) != 0)
                            .map(|(_, file)| (*file).clone()),
                    );
                    files.sort();
                    variants.push((format!("dead files {subset:b} back"), files, with));
                }
            }
            CrashPoint::DirectorySynced => {}
        }
        variants
    }

    /// Recovers from `files`: the state of the first `kept` records, the snapshot files that
    /// no durable install record names deleted, and a log that takes a record after them.
    fn recovers(&self, scratch: &Scratch, what: &str, files: &Files, kept: usize) {
        let (mut wal, state) = scratch
            .recover(files)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(state, self.states[kept], "{what}");
        assert_eq!(wal.durable(), kept as u64, "{what}");
        let left = files_of(scratch.path());
        let snapshots: Vec<_> = left.iter().filter(|(n, _)| is_snapshot_file(n)).collect();
        assert_eq!(snapshots.len(), 1, "{what}: {snapshots:?}");
        let installed = self.states[kept].snapshot.as_ref().unwrap();
        assert!(
            snapshots[0]
                .0
                .to_string_lossy()
                .contains(&format!("-{:020}-", installed.last_index)),
            "{what}: {:?}",
            snapshots[0].0
        );
        let next = Record::Log {
            from: state.last_index() + 1,
            entries: entries(99, &[99]),
        };
        wal.append(std::slice::from_ref(&next)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, reopened) = FileWal::<u32>::open(scratch.path(), WalOptions::default())
            .unwrap_or_else(|e| panic!("{what}, reopened: {e}"));
        let mut expected = self.states[kept].clone();
        expected.apply(next).unwrap();
        assert_eq!(reopened, expected, "{what}");
    }
}

/// A crash at every step of taking a snapshot (placed by the log's crash hook), and at what a
/// crash there may lose besides: recovers the state of a prefix of the records, the one before
/// the snapshot until its install record is durable and the one after from then on, and never
/// keeps a snapshot file that nothing promises.
#[test]
fn every_crash_point_of_a_snapshot() {
    let scratch = Scratch::new();
    let mut variants = 0;
    for point in CrashPoint::ALL {
        let crash = snapshot_crash(point);
        assert!(crash.records.len() > crash.before_batch);
        for (what, files, kept) in crash.variants(point) {
            crash.recovers(&scratch, &what, &files, kept);
            variants += 1;
        }
    }
    assert!(variants >= 60, "{variants} variants");
}

/// Records the core could emit, snapshots included: `ops` picks each record's kind, where a log
/// record starts (within the log) and where a snapshot ends (within the log, past the last one).
fn batches_with_snapshots(ops: Vec<Vec<(u8, u64, Vec<u32>)>>) -> Batches {
    let mut state = HardState::<u32>::default();
    ops.into_iter()
        .map(|batch| {
            batch
                .into_iter()
                .map(|(kind, pick, commands)| {
                    let (first, last) = (state.first_index(), state.last_index());
                    let record = match kind % 4 {
                        0 => Record::TermVote {
                            term: state.current_term + 1,
                            voted_for: (pick % 4 < 3).then_some((pick % 3) as u8),
                        },
                        1 if last >= first => {
                            let index = first + pick % (last + 1 - first);
                            Record::Snapshot(Snapshot {
                                last_index: index,
                                last_term: state.term_at(index).unwrap(),
                                data: commands.iter().flat_map(|c| c.to_le_bytes()).collect(),
                            })
                        }
                        _ => Record::Log {
                            from: first + pick % (last + 2 - first),
                            entries: entries(state.current_term, &commands),
                        },
                    };
                    state.apply(record.clone()).unwrap();
                    record
                })
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A generated workload with snapshots, crashed at a generated step of one of its
    /// snapshots (or during the sync of its install record, at a generated byte): recovers the state of a prefix of its records, at least those synced before
    /// the crashed batch, and goes on from there.
    #[test]
    fn generated_workloads_with_snapshots_recover_a_prefix_after_a_crash(
        ops in proptest::collection::vec(
            proptest::collection::vec(
                (0u8..4, any::<u64>(), proptest::collection::vec(any::<u32>(), 0..4)),
                1..4,
            ),
            2..12,
        ),
        // Which batch (the first with a snapshot from there on), which point (past the last
        // one: during the sync of the install record), and where that sync was cut.
        crash in (any::<usize>(), 0..CrashPoint::ALL.len() + 3, any::<usize>()),
        segment_size in 24u64..160,
    ) {
        let batches = batches_with_snapshots(ops);
        let mut states = vec![HardState::default()];
        for record in batches.iter().flatten() {
            let mut next = states.last().unwrap().clone();
            next.apply(record.clone()).unwrap();
            states.push(next);
        }
        let has_snapshot = |batch: &Vec<Record<u32>>| {
            batch.iter().any(|r| matches!(r, Record::Snapshot(_)))
        };
        let crashed_batch = (0..batches.len())
            .map(|i| (crash.0 + i) % batches.len())
            .find(|&i| has_snapshot(&batches[i]));
        let dir = tempfile::tempdir().unwrap();
        let options = WalOptions { segment_size };
        let mut wal = FileWal::<u32>::create(dir.path(), options.clone()).unwrap();
        let mut synced = 0;
        for (i, batch) in batches.iter().enumerate() {
            if Some(i) == crashed_batch {
                let point = CrashPoint::ALL.get(crash.1).copied();
                wal.crash_at(point.unwrap_or(CrashPoint::InstallDurable));
                let result = wal.append(batch).and_then(|_| wal.sync());
                prop_assert!(matches!(result, Err(WalWriteError::Crashed(_))), "{:?}", result);
                break;
            }
            wal.append(batch).unwrap();
            synced = wal.sync().unwrap() as usize;
        }
        drop(wal);
        if crashed_batch.is_some() && crash.1 >= CrashPoint::ALL.len() {
            // The crash came during the sync of the install record instead: the last segment,
            // which the batch's snapshot started, keeps a prefix of what it was given.
            let files = files_of(dir.path());
            let (name, bytes) = files.iter().rev().find(|(n, _)| is_segment(n)).unwrap();
            let cut = crash.2 % (bytes.len() + 1);
            fs::write(dir.path().join(name), &bytes[..cut]).unwrap();
        }
        let through = synced + crashed_batch.map_or(0, |i| batches[i].len());
        let (mut wal, state) = FileWal::<u32>::open(dir.path(), options.clone())
            .unwrap_or_else(|e| panic!("{e}"));
        let kept = wal.durable() as usize;
        prop_assert!((synced..=through).contains(&kept), "{kept} not in {synced}..={through}");
        prop_assert_eq!(&state, &states[kept]);
        let snapshots = files_of(dir.path()).into_iter().filter(|(n, _)| is_snapshot_file(n)).count();
        prop_assert_eq!(snapshots, usize::from(state.snapshot.is_some()));
        let next = Record::Log {
            from: state.last_index() + 1,
            entries: entries(state.current_term, &[7]),
        };
        wal.append(std::slice::from_ref(&next)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, reopened) = FileWal::<u32>::open(dir.path(), options).unwrap();
        let mut expected = states[kept].clone();
        expected.apply(next).unwrap();
        prop_assert_eq!(reopened, expected);
    }
}
