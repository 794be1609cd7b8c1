//! Segment files: a log is a directory of files `<first position, 20 digits>.wal`, each holding
//! the records from that position on. Names sort as positions do, and a later snapshot can
//! delete whole old segments instead of rewriting a file.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::codec::{FrameHeader, RECORD_HEADER_LEN};
use crate::storage::Position;

const SUFFIX: &str = ".wal";
/// Enough digits for any `u64`, so that names sort as positions do.
const DIGITS: usize = 20;

/// The file of the segment whose first record is at `first`.
pub(super) fn path(dir: &Path, first: Position) -> PathBuf {
    dir.join(format!("{first:0DIGITS$}{SUFFIX}"))
}

/// The position a segment's file name starts at; `None` for a file that is not a segment.
fn first_position(name: &OsStr) -> Option<Position> {
    let digits = name.to_str()?.strip_suffix(SUFFIX)?;
    if digits.len() != DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, in order of their first positions; other files are ignored, and a
/// directory that does not exist holds none.
pub(super) fn list(dir: &Path) -> io::Result<Vec<(Position, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(first) = first_position(&entry.file_name()) {
            segments.push((first, entry.path()));
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

/// Creates the empty segment file at `path` (it must not exist) and makes its name durable by
/// syncing the directory: a sync of the file alone does not persist its directory entry, and
/// records synced into a file whose name is lost are lost with it.
pub(super) fn create(dir: &Path, path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(path)?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// The bytes of the first frame of the segment at `path`, as far as the file holds them: a
/// replay looks for the last segment that starts with an install record without reading the
/// segments whole.
pub(super) fn first_frame(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(RECORD_HEADER_LEN as u64)
        .read_to_end(&mut bytes)?;
    if let Ok(header) = FrameHeader::parse_record(&bytes) {
        file.take(header.len.into()).read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_as_positions() {
        let dir = Path::new("d");
        let (a, b) = (path(dir, 9), path(dir, 10));
        assert_eq!(a, Path::new("d/00000000000000000009.wal"));
        assert!(a < b);
        assert_eq!(first_position(b.file_name().unwrap()), Some(10));
        assert_eq!(
            first_position(path(dir, u64::MAX).file_name().unwrap()),
            Some(u64::MAX)
        );
        for other in [
            "9.wal",
            "00000000000000000009.tmp",
            "0000000000000000000x.wal",
        ] {
            assert_eq!(first_position(OsStr::new(other)), None, "{other}");
        }
    }
}
