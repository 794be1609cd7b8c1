//! The one place that knows the on-disk and on-wire byte format.
//!
//! A value is serialised with serde + bincode 2 and wrapped in a frame:
//!
//! ```text
//! magic (4 bytes) | format version (u16 LE) | payload length (u32 LE) | CRC32 of payload (u32 LE) | payload
//! ```
//!
//! The magic tells the kinds apart (a message, a WAL record, a client's request; the whole-state
//! file of the builds before the write-ahead log is only recognised now, to be refused by
//! name), the version lets a future format be refused rather than misread, the length catches
//! truncation and the CRC catches corruption. Decoding checks all four before bincode sees a
//! byte, never panics, and allocates no more than the payload's bytes justify, whatever its
//! length prefixes claim (`total`): a frame cannot make its reader allocate for a string or a
//! sequence it does not hold.
//!
//! A record of the write-ahead log ([`encode_record`]) adds a CRC32 of those 14 header bytes
//! before the payload:
//!
//! ```text
//! magic "RCWR" | format version | payload length | CRC32 of payload | CRC32 of the 14 bytes before it | payload
//! ```
//!
//! A frame on the wire is read one at a time and a bad one closes the connection, but a log is
//! scanned: recovery must tell a damaged header from a good one without trusting its length
//! (a flipped length bit would otherwise skip over, or run past, good records), and must find a
//! good header after a damaged record (see `storage::wal`). The header's own checksum gives both.

mod total;

use serde::{de::DeserializeOwned, Serialize};

use crate::types::Record;

/// What a frame holds; each kind has its own magic so one is never decoded as the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameKind {
    HardState,
    Message,
    /// A client's request to a server of the real runtime (`raft_impl::runtime`).
    ClientRequest,
    /// A server's answer to a client's request.
    ClientReply,
    /// A step of the handshake that opens a peer connection of the real runtime.
    PeerHandshake,
    /// A record of the write-ahead log (`storage::wal`), framed by [`encode_record`].
    WalRecord,
    /// The KV store as a snapshot's bytes (`kv::snapshot`).
    KvSnapshot,
    /// The write-ahead log's install record of a snapshot (`storage::wal`): a frame of the log
    /// like a [`FrameKind::WalRecord`], with a magic of its own so that a replay tells the two
    /// apart before it decodes a byte, and so that a log of the builds before snapshots never
    /// held one.
    SnapshotInstall,
    /// A snapshot's own file (`storage::wal`): a snapshot can be far larger than a record, and
    /// is written once beside the log rather than into it.
    SnapshotFile,
}

impl FrameKind {
    pub fn magic(self) -> [u8; 4] {
        match self {
            FrameKind::HardState => *b"RCHS",
            FrameKind::Message => *b"RCMS",
            FrameKind::ClientRequest => *b"RCCQ",
            FrameKind::ClientReply => *b"RCCR",
            FrameKind::PeerHandshake => *b"RCPH",
            FrameKind::WalRecord => *b"RCWR",
            FrameKind::KvSnapshot => *b"RCKS",
            FrameKind::SnapshotInstall => *b"RCWI",
            FrameKind::SnapshotFile => *b"RCSF",
        }
    }

    /// The kinds of frame a write-ahead log holds, each with a record header.
    const LOG: [FrameKind; 2] = [FrameKind::WalRecord, FrameKind::SnapshotInstall];

    /// The kind of log frame whose header starts with `magic`.
    fn of_log(magic: [u8; 4]) -> Result<FrameKind, DecodeError> {
        FrameKind::LOG
            .into_iter()
            .find(|kind| kind.magic() == magic)
            .ok_or(DecodeError::WrongMagic {
                expected: FrameKind::WalRecord,
                found: magic,
            })
    }
}

/// The format version written by this build; anything newer is refused.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 14;
/// Bytes before a log record's payload: a frame header and its own CRC32.
pub const RECORD_HEADER_LEN: usize = HEADER_LEN + 4;

/// Why bytes could not be decoded. Every variant says what was wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated header: {got} bytes, a frame needs at least {HEADER_LEN}")]
    TruncatedHeader { got: usize },
    #[error("wrong magic {found:02x?}: not a raftcheck {expected:?} frame")]
    WrongMagic { expected: FrameKind, found: [u8; 4] },
    #[error("format version {found} is newer than the supported version {FORMAT_VERSION}")]
    UnsupportedVersion { found: u16 },
    #[error("format version 0 is not a valid version")]
    InvalidVersion,
    #[error("truncated record header: {got} bytes, a record needs at least {RECORD_HEADER_LEN}")]
    TruncatedRecordHeader { got: usize },
    #[error(
        "header checksum mismatch: header says {expected:#010x}, its bytes have {actual:#010x}"
    )]
    HeaderChecksumMismatch { expected: u32, actual: u32 },
    #[error("truncated payload: header says {expected} bytes, {got} present")]
    TruncatedPayload { expected: usize, got: usize },
    #[error("{extra} unexpected bytes after the payload")]
    TrailingBytes { extra: usize },
    #[error("checksum mismatch: header says {expected:#010x}, payload has {actual:#010x}")]
    ChecksumMismatch { expected: u32, actual: u32 },
    /// A string, sequence or map declares more elements than there are bytes after its length
    /// prefix: refused before anything is allocated for it (see `total`).
    #[error("a length prefix declares {declared}, but only {left} bytes follow it")]
    LengthPastEnd { declared: u64, left: usize },
    #[error("payload does not decode: {0}")]
    Malformed(String),
}

/// A frame's header (see the module documentation): the one place that knows its byte layout,
/// for frames and, with its own CRC32 after it, for log records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub magic: [u8; 4],
    pub version: u16,
    /// The payload's length in bytes.
    pub len: u32,
    /// The payload's CRC32.
    pub crc: u32,
}

impl FrameHeader {
    /// The header this build writes for `payload` in a frame of `kind`.
    fn of(kind: FrameKind, payload: &[u8]) -> Result<FrameHeader, EncodeError> {
        let len = u32::try_from(payload.len()).map_err(|_| {
            EncodeError(format!("payload of {} bytes exceeds 4 GiB", payload.len()))
        })?;
        Ok(FrameHeader {
            magic: kind.magic(),
            version: FORMAT_VERSION,
            len,
            crc: crc32fast::hash(payload),
        })
    }

    /// The fields of the header at the start of `bytes`, as they are: nothing is checked but
    /// that the bytes are there (a reader that only wants to recognise a file uses this).
    pub fn read(bytes: &[u8]) -> Result<FrameHeader, DecodeError> {
        let (header, _) = bytes
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(DecodeError::TruncatedHeader { got: bytes.len() })?;
        let [m0, m1, m2, m3, v0, v1, l0, l1, l2, l3, c0, c1, c2, c3] = *header;
        Ok(FrameHeader {
            magic: [m0, m1, m2, m3],
            version: u16::from_le_bytes([v0, v1]),
            len: u32::from_le_bytes([l0, l1, l2, l3]),
            crc: u32::from_le_bytes([c0, c1, c2, c3]),
        })
    }

    /// The header at the start of `bytes`, checked to be one of a frame of `kind` that this
    /// build reads (its magic, then its version). A reader of a byte stream parses it before it
    /// reads (let alone allocates for) the payload, so that bytes which are not a frame of
    /// `kind` cost nothing; [`decode`] parses the same header.
    pub fn parse(kind: FrameKind, bytes: &[u8]) -> Result<FrameHeader, DecodeError> {
        let header = FrameHeader::read(bytes)?;
        header.check_magic(kind)?;
        header.check_version()?;
        Ok(header)
    }

    /// The log record header at the start of `bytes`: its magic (one of a log's kinds), then
    /// its own checksum, then its version, checked in that order, so that its length is
    /// trusted only once the checksum vouches for it.
    pub fn parse_record(bytes: &[u8]) -> Result<FrameHeader, DecodeError> {
        let truncated = DecodeError::TruncatedRecordHeader { got: bytes.len() };
        let (frame, rest) = bytes
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(truncated.clone())?;
        let (stored, _) = rest.split_first_chunk::<4>().ok_or(truncated)?;
        let header = FrameHeader::read(frame)?;
        FrameKind::of_log(header.magic)?;
        let expected = u32::from_le_bytes(*stored);
        let actual = crc32fast::hash(frame);
        if actual != expected {
            return Err(DecodeError::HeaderChecksumMismatch { expected, actual });
        }
        header.check_version()?;
        Ok(header)
    }

    /// The header's bytes.
    pub fn write(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes[..4].copy_from_slice(&self.magic);
        bytes[4..6].copy_from_slice(&self.version.to_le_bytes());
        bytes[6..10].copy_from_slice(&self.len.to_le_bytes());
        bytes[10..].copy_from_slice(&self.crc.to_le_bytes());
        bytes
    }

    /// The header's bytes followed by their CRC32: a log record's header.
    pub fn write_record(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut bytes = [0; RECORD_HEADER_LEN];
        let (frame, crc) = bytes.split_at_mut(HEADER_LEN);
        frame.copy_from_slice(&self.write());
        crc.copy_from_slice(&crc32fast::hash(frame).to_le_bytes());
        bytes
    }

    /// The payload's length as a size in memory (lossless: `len` is a `u32`).
    pub fn payload_len(&self) -> usize {
        self.len as usize
    }

    fn check_magic(&self, kind: FrameKind) -> Result<(), DecodeError> {
        if self.magic != kind.magic() {
            return Err(DecodeError::WrongMagic {
                expected: kind,
                found: self.magic,
            });
        }
        Ok(())
    }

    fn check_version(&self) -> Result<(), DecodeError> {
        match self.version {
            0 => Err(DecodeError::InvalidVersion),
            found if found > FORMAT_VERSION => Err(DecodeError::UnsupportedVersion { found }),
            _ => Ok(()),
        }
    }
}

/// Encoding failed: only possible for values serde cannot represent, never for the core's types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode value: {0}")]
pub struct EncodeError(String);

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// The length of `value`'s payload as [`encode`] writes it, counted without building it (no
/// allocation; a string or byte buffer costs O(1)). The core sizes its AppendEntries batches
/// with it, so that a batch's bound is in the bytes a frame really carries. A value serde cannot
/// encode counts as 0: the core's types always encode.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    match bincode::serde::encode_into_writer(value, &mut size, bincode_config()) {
        Ok(()) => size.bytes_written,
        Err(_) => 0,
    }
}

/// Serialises `value` into a payload and the frame header of the given kind that describes it:
/// a writer of a large value (a snapshot file) writes the two without joining them, which would
/// copy the payload once more.
pub fn encode_parts<T: Serialize>(
    kind: FrameKind,
    value: &T,
) -> Result<(FrameHeader, Vec<u8>), EncodeError> {
    let payload = encode_payload(value)?;
    Ok((FrameHeader::of(kind, &payload)?, payload))
}

/// Serialises `value` into a bare payload, with no frame: for bytes that travel inside a frame
/// that already checks them, such as a service's state in a [`Snapshot`](crate::Snapshot)'s
/// data (the record or message that carries it has its own length and CRC).
pub fn encode_payload<T: Serialize>(value: &T) -> Result<Vec<u8>, EncodeError> {
    bincode::serde::encode_to_vec(value, bincode_config()).map_err(|e| EncodeError(e.to_string()))
}

/// Serialises `value` into a frame of the given kind.
pub fn encode<T: Serialize>(kind: FrameKind, value: &T) -> Result<Vec<u8>, EncodeError> {
    let (header, payload) = encode_parts(kind, value)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&header.write());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Appends `record` to `out` as a log record frame (see the module documentation) and returns
/// the frame's length.
pub fn encode_record<C: Serialize>(
    record: &Record<C>,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    encode_log_frame(FrameKind::WalRecord, record, out)
}

/// Appends `value` to `out` as a frame of the write-ahead log of kind `kind` (one of
/// `FrameKind::LOG`: a record, or a snapshot's install record) and returns the frame's length.
pub fn encode_log_frame<T: Serialize>(
    kind: FrameKind,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<usize, EncodeError> {
    let (header, payload) = encode_parts(kind, value)?;
    out.reserve(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&header.write_record());
    out.extend_from_slice(&payload);
    Ok(RECORD_HEADER_LEN + payload.len())
}

/// A frame of the write-ahead log whose header checked out and whose payload is all present:
/// its kind says what to deserialise the payload as ([`LogFrame::decode`]).
#[derive(Clone, Copy, Debug)]
pub struct LogFrame<'a> {
    pub kind: FrameKind,
    /// The frame's length, header included.
    pub len: usize,
    payload: &'a [u8],
    crc: u32,
}

impl LogFrame<'_> {
    /// The payload, checked against its checksum and deserialised whole.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, DecodeError> {
        decode_checked(self.payload, self.crc)
    }
}

/// The log frame at the start of `bytes`, of any of a log's kinds; whatever follows the frame is
/// left alone.
pub fn read_log_frame(bytes: &[u8]) -> Result<LogFrame<'_>, DecodeError> {
    let header = FrameHeader::parse_record(bytes)?;
    let len = header.payload_len();
    let present = bytes.len().saturating_sub(RECORD_HEADER_LEN);
    let payload = RECORD_HEADER_LEN
        .checked_add(len)
        .and_then(|end| bytes.get(RECORD_HEADER_LEN..end))
        .ok_or(DecodeError::TruncatedPayload {
            expected: len,
            got: present,
        })?;
    Ok(LogFrame {
        kind: FrameKind::of_log(header.magic)?,
        len: RECORD_HEADER_LEN + len,
        payload,
        crc: header.crc,
    })
}

/// Decodes the log record at the start of `bytes` and returns it with its frame's length;
/// whatever follows the frame is left alone. A frame of another of a log's kinds is a
/// [`DecodeError::WrongMagic`].
pub fn decode_record<C: DeserializeOwned>(bytes: &[u8]) -> Result<(Record<C>, usize), DecodeError> {
    let frame = read_log_frame(bytes)?;
    FrameHeader::read(bytes)?.check_magic(FrameKind::WalRecord)?;
    Ok((frame.decode()?, frame.len))
}

/// Checks a frame of the given kind and deserialises its payload.
pub fn decode<T: DeserializeOwned>(kind: FrameKind, bytes: &[u8]) -> Result<T, DecodeError> {
    let header = FrameHeader::parse(kind, bytes)?;
    let len = header.payload_len();
    let payload = bytes.get(HEADER_LEN..).unwrap_or_default();
    if payload.len() < len {
        return Err(DecodeError::TruncatedPayload {
            expected: len,
            got: payload.len(),
        });
    }
    if payload.len() > len {
        return Err(DecodeError::TrailingBytes {
            extra: payload.len() - len,
        });
    }
    decode_checked(payload, header.crc)
}

/// Checks a whole payload against its header's CRC and deserialises it, all of it.
fn decode_checked<T: DeserializeOwned>(
    payload: &[u8],
    expected_crc: u32,
) -> Result<T, DecodeError> {
    let actual_crc = crc32fast::hash(payload);
    if actual_crc != expected_crc {
        return Err(DecodeError::ChecksumMismatch {
            expected: expected_crc,
            actual: actual_crc,
        });
    }
    decode_payload(payload)
}

/// Deserialises a bare payload of [`encode_payload`], all of it, with the same guarantees as a
/// frame's (no panic, no allocation its bytes do not justify, a typed error), since the bytes
/// inside a checked frame came from whoever wrote the frame.
pub fn decode_payload<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    let (value, used) = total::decode(payload).map_err(|e| match e {
        Ok(bincode) => DecodeError::Malformed(bincode.to_string()),
        Err(total::LengthPastEnd { declared, left }) => {
            DecodeError::LengthPastEnd { declared, left }
        }
    })?;
    if used != payload.len() {
        return Err(DecodeError::Malformed(format!(
            "value ends after {used} of {} payload bytes",
            payload.len()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::types::{Entry, HardState, Record};

    fn sample() -> HardState<u8> {
        HardState {
            current_term: 3,
            voted_for: Some(1),
            snapshot: None,
            log: vec![
                Entry {
                    term: 1,
                    command: 7,
                },
                Entry {
                    term: 3,
                    command: 9,
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let bytes = encode(FrameKind::HardState, &sample()).unwrap();
        assert_eq!(
            decode::<HardState<u8>>(FrameKind::HardState, &bytes),
            Ok(sample())
        );
    }

    #[test]
    fn a_message_frame_is_not_a_hard_state() {
        let msg: Message<u8> = Message::RequestVoteReply {
            term: 1,
            granted: true,
        };
        let bytes = encode(FrameKind::Message, &msg).unwrap();
        assert!(matches!(
            decode::<HardState<u8>>(FrameKind::HardState, &bytes),
            Err(DecodeError::WrongMagic { .. })
        ));
    }

    #[test]
    fn future_version_is_refused() {
        let mut bytes = encode(FrameKind::HardState, &sample()).unwrap();
        bytes[4..6].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert_eq!(
            decode::<HardState<u8>>(FrameKind::HardState, &bytes),
            Err(DecodeError::UnsupportedVersion {
                found: FORMAT_VERSION + 1
            })
        );
    }

    #[test]
    fn valid_frame_around_garbage_is_malformed() {
        let payload = [0xffu8; 9];
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"RCHS");
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        assert!(matches!(
            decode::<HardState<u8>>(FrameKind::HardState, &bytes),
            Err(DecodeError::Malformed(_))
        ));
    }

    fn record() -> Record<u8> {
        Record::Log {
            from: 1,
            entries: sample().log,
        }
    }

    #[test]
    fn a_record_round_trips_and_leaves_what_follows_it() {
        let mut bytes = Vec::new();
        let len = encode_record(&record(), &mut bytes).unwrap();
        assert_eq!(len, bytes.len());
        bytes.extend_from_slice(b"next");
        assert_eq!(decode_record::<u8>(&bytes), Ok((record(), len)));
    }

    #[test]
    fn a_flipped_length_is_caught_by_the_headers_own_checksum() {
        let mut bytes = Vec::new();
        encode_record(&record(), &mut bytes).unwrap();
        bytes[7] ^= 0x80;
        assert!(matches!(
            decode_record::<u8>(&bytes),
            Err(DecodeError::HeaderChecksumMismatch { .. })
        ));
    }

    #[test]
    fn a_record_cut_short_is_truncated() {
        let mut bytes = Vec::new();
        encode_record(&record(), &mut bytes).unwrap();
        assert_eq!(
            decode_record::<u8>(&bytes[..RECORD_HEADER_LEN - 1]),
            Err(DecodeError::TruncatedRecordHeader {
                got: RECORD_HEADER_LEN - 1
            })
        );
        let cut = bytes.len() - 1;
        assert!(matches!(
            decode_record::<u8>(&bytes[..cut]),
            Err(DecodeError::TruncatedPayload { got, .. }) if got == cut - RECORD_HEADER_LEN
        ));
    }

    #[test]
    fn a_record_header_declaring_4_gib_is_truncated_not_allocated() {
        let mut header = Vec::new();
        header.extend_from_slice(&FrameKind::WalRecord.magic());
        header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        header.extend_from_slice(&u32::MAX.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        let crc = crc32fast::hash(&header);
        header.extend_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode_record::<u8>(&header),
            Err(DecodeError::TruncatedPayload { got: 0, .. })
        ));
    }

    #[test]
    fn empty_input_is_a_truncated_header() {
        assert_eq!(
            decode::<HardState<u8>>(FrameKind::HardState, &[]),
            Err(DecodeError::TruncatedHeader { got: 0 })
        );
    }

    /// A bare payload round-trips, and one whose length prefix claims more than it holds is a
    /// typed error, as in a frame: a service's snapshot data gets the same guard.
    #[test]
    fn a_bare_payload_round_trips_and_a_forged_length_is_refused() {
        let value = (7u64, vec![1u32, 2, 3]);
        let bytes = encode_payload(&value).unwrap();
        assert_eq!(decode_payload::<(u64, Vec<u32>)>(&bytes), Ok(value));
        // 7, then a sequence of 250 elements (bincode's one-byte varint) with none present.
        assert!(matches!(
            decode_payload::<(u64, Vec<u32>)>(&[7, 250]),
            Err(DecodeError::LengthPastEnd { declared: 250, .. })
        ));
        let extra = [bytes.as_slice(), &[0]].concat();
        assert!(matches!(
            decode_payload::<(u64, Vec<u32>)>(&extra),
            Err(DecodeError::Malformed(_))
        ));
    }
}
