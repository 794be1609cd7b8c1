//! Stable storage for a node's `HardState`.
//!
//! A [`Persister`] stores one blob and replaces it atomically; the typed `save` / `load` on top
//! put it through the codec. A missing blob is a brand new node; a blob that does not decode is
//! an error naming where it was read, never a silent fresh start (which would forget a vote and
//! break Election Safety).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::codec::{self, DecodeError, EncodeError, FrameKind};
use crate::types::{Command, HardState};

/// Why state could not be saved or loaded.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error("I/O error on {location}: {source}")]
    Io {
        location: String,
        #[source]
        source: io::Error,
    },
    #[error("corrupt persisted state in {location}: {source}")]
    Corrupt {
        location: String,
        #[source]
        source: DecodeError,
    },
    #[error("cannot encode state for {location}: {source}")]
    Encode {
        location: String,
        #[source]
        source: EncodeError,
    },
}

/// A place that holds one node's persisted state.
pub trait Persister {
    /// Where the state lives, for error messages (a path, or "memory").
    fn location(&self) -> String;
    /// Atomically replaces the stored blob; when this returns, it survives a crash.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The stored blob, or `None` if nothing was ever saved.
    fn read(&self) -> io::Result<Option<Vec<u8>>>;

    /// Encodes and durably saves `state`.
    fn save<C: Command>(&mut self, state: &HardState<C>) -> Result<(), PersistError>
    where
        Self: Sized,
    {
        let bytes =
            codec::encode(FrameKind::HardState, state).map_err(|source| PersistError::Encode {
                location: self.location(),
                source,
            })?;
        self.write(&bytes).map_err(|source| PersistError::Io {
            location: self.location(),
            source,
        })
    }

    /// Loads the saved state; the default (empty) state if nothing was ever saved.
    fn load<C: Command>(&self) -> Result<HardState<C>, PersistError>
    where
        Self: Sized,
    {
        let bytes = self.read().map_err(|source| PersistError::Io {
            location: self.location(),
            source,
        })?;
        match bytes {
            None => Ok(HardState::default()),
            Some(bytes) => codec::decode(FrameKind::HardState, &bytes).map_err(|source| {
                PersistError::Corrupt {
                    location: self.location(),
                    source,
                }
            }),
        }
    }
}

/// In-memory storage, as the 6.5840 tester's Persister: a crash keeps exactly the blob last
/// written, and cloning it hands the saved state to the restarted instance.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryPersister {
    blob: Option<Vec<u8>>,
}

impl MemoryPersister {
    pub fn new() -> MemoryPersister {
        MemoryPersister::default()
    }

    /// Size of the saved blob in bytes (the lab's `RaftStateSize`).
    pub fn size(&self) -> usize {
        self.blob.as_ref().map_or(0, Vec::len)
    }
}

impl Persister for MemoryPersister {
    fn location(&self) -> String {
        "memory".to_string()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.blob = Some(bytes.to_vec());
        Ok(())
    }

    fn read(&self) -> io::Result<Option<Vec<u8>>> {
        Ok(self.blob.clone())
    }
}

/// A file on disk, replaced atomically: write a temporary file, fsync it, rename it over the
/// state file, fsync the directory so the rename itself is durable.
#[derive(Clone, Debug)]
pub struct FilePersister {
    path: PathBuf,
}

/// A temporary file written and synced but not yet renamed into place: the state a crash
/// between the two phases leaves behind.
#[derive(Debug)]
pub struct Staged {
    temp: PathBuf,
}

impl FilePersister {
    /// Storage at `path`; its directory must exist.
    pub fn new(path: impl Into<PathBuf>) -> FilePersister {
        FilePersister { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    fn directory(&self) -> &Path {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// First phase of a write: the new blob, durable in a temporary file.
    pub fn stage(&self, bytes: &[u8]) -> io::Result<Staged> {
        let temp = self.temp_path();
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(Staged { temp })
    }

    /// Second phase: the temporary file replaces the state file, and the rename is made durable.
    pub fn commit(&self, staged: Staged) -> io::Result<()> {
        fs::rename(&staged.temp, &self.path)?;
        File::open(self.directory())?.sync_all()
    }
}

impl Persister for FilePersister {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let staged = self.stage(bytes)?;
        self.commit(staged)
    }

    fn read(&self) -> io::Result<Option<Vec<u8>>> {
        match fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}
