//! Frames on a byte stream: the codec's frames (magic, version, length, CRC32, payload) written
//! to and read from a TCP connection, one after another.
//!
//! The codec decodes a frame it holds whole; a stream reader must first learn from the header
//! how many bytes to wait for. The header comes from the other end of a socket, so its magic and
//! version are checked and its length capped by its kind's limit ([`max_payload`]) before the
//! payload is read, and the payload buffer grows only as bytes arrive: a forged header cannot
//! make a server reserve gigabytes, and a sender that announces a large frame pays for each byte
//! with a byte. On a socket, a frame must arrive whole within a deadline
//! ([`read_frame_within`]), so a slow or idle sender cannot hold a connection (its thread and
//! its buffer) for ever, and the part of a client's frame past its first
//! [`FREE_PAYLOAD`] bytes is charged to a [`Budget`] shared by every connection of the port, so
//! the memory that unfinished frames hold is bounded in total, not only per connection.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{de::DeserializeOwned, Serialize};

use crate::codec::{self, DecodeError, EncodeError, FrameHeader, FrameKind, HEADER_LEN};
use crate::limits::{MAX_CLIENT_PAYLOAD, MAX_PEER_PAYLOAD};

/// The payload bytes of a frame that its connection holds without charge: a connection's share,
/// bounded by the number of connections a port accepts. The payload buffer starts this large.
pub const FREE_PAYLOAD: usize = 64 << 10;

/// How many payload bytes a reader asks for, and charges, at a time.
const CHUNK: usize = 64 << 10;

/// The largest handshake payload: a cluster id and a nonce or a tag. It fits in the free part
/// of a frame, so a peer that has not proved itself never draws on a budget.
const MAX_HANDSHAKE_PAYLOAD: usize = FREE_PAYLOAD;

/// The largest payload a frame of `kind` may declare on a stream; a larger one is refused
/// before its payload is read. Client requests and replies carry one command or one value
/// ([`MAX_CLIENT_PAYLOAD`]); peer messages an AppendEntries batch ([`MAX_PEER_PAYLOAD`]); the
/// handshake a few dozen bytes. Hard states, log records, snapshot files and KV snapshots
/// (which travel inside a message, a snapshot in chunks) are never read from a stream as frames of their own.
pub fn max_payload(kind: FrameKind) -> usize {
    match kind {
        FrameKind::ClientRequest | FrameKind::ClientReply => MAX_CLIENT_PAYLOAD,
        FrameKind::Message => MAX_PEER_PAYLOAD,
        FrameKind::PeerHandshake => MAX_HANDSHAKE_PAYLOAD,
        FrameKind::HardState
        | FrameKind::WalRecord
        | FrameKind::SnapshotInstall
        | FrameKind::SnapshotFile
        | FrameKind::KvSnapshot => 0,
    }
}

/// Why a frame could not be read or written. A reader that gets any of these but `Closed`
/// drops the connection: after a bad frame the stream's framing can no longer be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The other end closed the connection cleanly, between two frames.
    #[error("connection closed")]
    Closed,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("a {kind:?} frame declares {len} payload bytes, more than its limit of {max}")]
    TooLarge {
        kind: FrameKind,
        len: usize,
        max: usize,
    },
    /// The port's budget for unfinished frames cannot cover this one now.
    #[error("a frame of {len} payload bytes does not fit in what is left of the frame budget")]
    OverBudget { len: usize },
    #[error("bad frame: {0}")]
    Decode(#[from] DecodeError),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A byte semaphore: the payload bytes, beyond each frame's first [`FREE_PAYLOAD`], that the
/// frames being read on one port may hold together.
///
/// A frame that does not fit closes its connection rather than wait. A waiting reader would keep
/// its thread and its connection slot, the very resources the port's admission policy shares
/// out, for as long as the senders that hold the budget care to stall; closing costs an honest
/// client one retry, and only a large request ever meets the budget at all (a frame within its
/// free part never does).
#[derive(Debug)]
pub struct Budget {
    held: AtomicUsize,
    capacity: usize,
}

impl Budget {
    pub fn new(capacity: usize) -> Budget {
        Budget {
            held: AtomicUsize::new(0),
            capacity,
        }
    }

    /// Bytes charged now, by frames being read.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Acquire)
    }

    /// An empty charge, to grow as a frame's payload arrives.
    fn start(&self) -> Charge<'_> {
        Charge {
            budget: self,
            bytes: 0,
        }
    }
}

/// Bytes taken from a [`Budget`] for one frame, given back when dropped.
struct Charge<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Charge<'_> {
    /// Extends the charge to cover the first `held` payload bytes of a frame of `len`: their
    /// part past the free part, if it fits in what is left of the budget.
    fn cover(&mut self, held: usize, len: usize) -> Result<(), FrameError> {
        let bytes = held.saturating_sub(FREE_PAYLOAD);
        let more = bytes.saturating_sub(self.bytes);
        let capacity = self.budget.capacity;
        self.budget
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(more).filter(|&after| after <= capacity)
            })
            .map_err(|_| FrameError::OverBudget { len })?;
        self.bytes += more;
        Ok(())
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        self.budget.held.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Encodes `value` as a frame of `kind` and writes it whole.
pub fn write_frame<T: Serialize>(
    out: &mut impl Write,
    kind: FrameKind,
    value: &T,
) -> Result<(), FrameError> {
    let bytes = codec::encode(kind, value)?;
    out.write_all(&bytes)?;
    out.flush()?;
    Ok(())
}

/// Reads one frame of `kind` and decodes it. Blocks until the frame is complete, the stream
/// ends (`Closed` between frames, a truncation error inside one) or the stream's timeout fires.
pub fn read_frame<T: DeserializeOwned>(
    input: &mut impl Read,
    kind: FrameKind,
) -> Result<T, FrameError> {
    let frame = read_frame_bytes(input, kind)?;
    Ok(codec::decode(kind, &frame)?)
}

/// Reads one frame of `kind` whole, header included, without decoding its payload: for a reader
/// that must check a MAC over the bytes first.
pub fn read_frame_bytes(input: &mut impl Read, kind: FrameKind) -> Result<Vec<u8>, FrameError> {
    read_charged(input, kind, None).map(|(frame, _)| frame)
}

/// Reads one frame of `kind` whole, charging its payload to `budget` (if any) as it arrives;
/// the charge lasts as long as the returned [`Charge`].
///
/// The payload is read [`CHUNK`] bytes at a time, and each chunk is charged before the buffer
/// grows to hold it: a sender holds a byte of the budget only for a byte it has sent (a header
/// alone holds nothing), and the buffer is exactly as long as the frame, never the double that
/// a doubling `Vec` would reserve.
fn read_charged<'b>(
    input: &mut impl Read,
    kind: FrameKind,
    budget: Option<&'b Budget>,
) -> Result<(Vec<u8>, Option<Charge<'b>>), FrameError> {
    let mut header = [0u8; HEADER_LEN];
    let got = read_up_to(input, &mut header)?;
    if got == 0 {
        return Err(FrameError::Closed);
    }
    if got < HEADER_LEN {
        return Err(DecodeError::TruncatedHeader { got }.into());
    }
    let len = FrameHeader::parse(kind, &header)?.payload_len();
    let max = max_payload(kind);
    if len > max {
        return Err(FrameError::TooLarge { kind, len, max });
    }
    let mut charge = budget.map(Budget::start);
    let mut frame = Vec::with_capacity(HEADER_LEN + len.min(CHUNK));
    frame.extend_from_slice(&header);
    let mut got = 0;
    while got < len {
        let chunk = (len - got).min(CHUNK);
        if let Some(charge) = &mut charge {
            charge.cover(got + chunk, len)?;
        }
        frame.reserve_exact(chunk);
        frame.resize(HEADER_LEN + got + chunk, 0);
        let read = read_up_to(input, &mut frame[HEADER_LEN + got..])?;
        got += read;
        if read < chunk {
            return Err(DecodeError::TruncatedPayload { expected: len, got }.into());
        }
    }
    Ok((frame, charge))
}

/// Reads one frame of `kind` from `stream`, which must deliver all of it, from its first byte,
/// within `limit`; a stream that does not fails with a timed-out I/O error. The payload is
/// charged to `budget` until it is decoded.
pub fn read_frame_within<T: DeserializeOwned>(
    stream: &TcpStream,
    kind: FrameKind,
    limit: Duration,
    budget: &Budget,
) -> Result<T, FrameError> {
    let (frame, _charge) = read_charged(&mut Deadline::new(stream, limit), kind, Some(budget))?;
    Ok(codec::decode(kind, &frame)?)
}

/// A stream whose every read waits only until a common deadline: what arrives through it must
/// arrive within the limit it was made with.
pub struct Deadline<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl<'a> Deadline<'a> {
    pub fn new(stream: &'a TcpStream, limit: Duration) -> Deadline<'a> {
        Deadline {
            stream,
            deadline: Instant::now() + limit,
        }
    }
}

impl Read for Deadline<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        let mut stream = self.stream;
        stream.read(buf)
    }
}

/// Fills `buf` from `input` unless the stream ends first; returns how many bytes were read.
fn read_up_to(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match input.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::kv::{KvCommand, KvOp, KvRequest, Session};
    use crate::message::{AppendEntries, Envelope, Message};
    use crate::types::Entry;

    fn command(seq: u64) -> KvCommand {
        KvCommand {
            time: 0,
            request: KvRequest::InSession {
                session: Session { id: 7, nonce: 7 },
                seq,
                op: KvOp::Append {
                    key: "k".into(),
                    value: format!("v{seq}"),
                },
            },
        }
    }

    fn envelope() -> Envelope<KvCommand> {
        Envelope {
            from: 0,
            to: 2,
            msg: Message::AppendEntries(AppendEntries {
                term: 3,
                prev_log_index: 1,
                prev_log_term: 2,
                entries: vec![Entry {
                    term: 3,
                    command: command(1),
                }],
                leader_commit: 1,
            }),
        }
    }

    fn framed<T: Serialize>(kind: FrameKind, value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        write_frame(&mut out, kind, value).unwrap();
        out
    }

    #[test]
    fn frames_round_trip_one_after_another() {
        let mut stream = framed(FrameKind::Message, &envelope());
        stream.extend(framed(FrameKind::ClientRequest, &command(2)));
        let mut input = Cursor::new(stream);
        let first: Envelope<KvCommand> = read_frame(&mut input, FrameKind::Message).unwrap();
        assert_eq!(first, envelope());
        let second: KvCommand = read_frame(&mut input, FrameKind::ClientRequest).unwrap();
        assert_eq!(second, command(2));
        let end = read_frame::<KvCommand>(&mut input, FrameKind::ClientRequest);
        assert!(matches!(end, Err(FrameError::Closed)), "{end:?}");
    }

    /// Reads `bytes` as one client request, in a frame expected to be of `kind`.
    fn read_as(kind: FrameKind, bytes: &[u8]) -> Result<KvCommand, FrameError> {
        read_frame(&mut Cursor::new(bytes), kind)
    }

    fn decode_error(result: Result<KvCommand, FrameError>) -> DecodeError {
        match result {
            Err(FrameError::Decode(e)) => e,
            other => panic!("expected a decode error, got {other:?}"),
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let whole = framed(FrameKind::ClientRequest, &command(1));
        for cut in 1..whole.len() {
            let expected = if cut < HEADER_LEN {
                DecodeError::TruncatedHeader { got: cut }
            } else {
                DecodeError::TruncatedPayload {
                    expected: whole.len() - HEADER_LEN,
                    got: cut - HEADER_LEN,
                }
            };
            let error = decode_error(read_as(FrameKind::ClientRequest, &whole[..cut]));
            assert_eq!(error, expected, "cut at {cut}");
        }
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let whole = framed(FrameKind::Message, &envelope());
        for at in 0..whole.len() {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x55;
            let result =
                read_frame::<Envelope<KvCommand>>(&mut Cursor::new(bytes), FrameKind::Message);
            assert!(result.is_err(), "flipped byte {at} went unnoticed");
        }
    }

    #[test]
    fn a_payload_byte_flip_is_a_checksum_mismatch() {
        let mut bytes = framed(FrameKind::ClientRequest, &command(1));
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let error = decode_error(read_as(FrameKind::ClientRequest, &bytes));
        assert!(
            matches!(error, DecodeError::ChecksumMismatch { .. }),
            "{error}"
        );
    }

    #[test]
    fn a_frame_of_another_kind_is_refused() {
        let bytes = framed(FrameKind::ClientRequest, &command(1));
        let error = decode_error(read_as(FrameKind::ClientReply, &bytes));
        assert!(matches!(error, DecodeError::WrongMagic { .. }), "{error}");
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading_the_payload() {
        let mut bytes = framed(FrameKind::ClientRequest, &command(1));
        bytes[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        let result = read_as(FrameKind::ClientRequest, &bytes);
        assert!(
            matches!(result, Err(FrameError::TooLarge { len, .. }) if len == u32::MAX as usize),
            "{result:?}"
        );
    }

    /// A header declaring `len` payload bytes, and `len` bytes: a frame whose payload is not
    /// decoded, only read (its CRC is wrong).
    fn frame_of(kind: FrameKind, len: usize) -> Vec<u8> {
        let mut bytes = kind.magic().to_vec();
        bytes.extend_from_slice(&codec::FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(len as u32).to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        bytes.resize(HEADER_LEN + len, 0);
        bytes
    }

    #[test]
    fn each_kind_is_read_up_to_its_limit_and_refused_one_byte_past_it() {
        for kind in [
            FrameKind::ClientRequest,
            FrameKind::ClientReply,
            FrameKind::PeerHandshake,
            FrameKind::Message,
        ] {
            let max = max_payload(kind);
            let read = read_frame_bytes(&mut Cursor::new(frame_of(kind, max)), kind);
            assert_eq!(
                read.map(|f| f.len()).ok(),
                Some(HEADER_LEN + max),
                "{kind:?}"
            );
            let past = read_frame_bytes(&mut Cursor::new(frame_of(kind, max + 1)), kind);
            assert!(
                matches!(past, Err(FrameError::TooLarge { len, .. }) if len == max + 1),
                "{kind:?}: {past:?}"
            );
        }
        assert_eq!(max_payload(FrameKind::ClientRequest), MAX_CLIENT_PAYLOAD);
        assert_eq!(max_payload(FrameKind::Message), MAX_PEER_PAYLOAD);
    }

    #[test]
    fn a_budget_charges_what_is_past_the_free_part_and_refuses_what_does_not_fit() {
        let budget = Budget::new(100);
        let mut free = budget.start();
        free.cover(FREE_PAYLOAD, FREE_PAYLOAD).unwrap();
        assert_eq!(budget.held(), 0, "the free part costs nothing");
        let mut first = budget.start();
        first.cover(FREE_PAYLOAD + 30, FREE_PAYLOAD + 60).unwrap();
        first.cover(FREE_PAYLOAD + 60, FREE_PAYLOAD + 60).unwrap();
        assert_eq!(budget.held(), 60, "a charge grows to what it covers");
        let mut refused = budget.start();
        let error = refused.cover(FREE_PAYLOAD + 41, FREE_PAYLOAD + 41);
        assert!(
            matches!(error, Err(FrameError::OverBudget { len }) if len == FREE_PAYLOAD + 41),
            "{error:?}"
        );
        assert_eq!(budget.held(), 60, "a refused charge takes nothing");
        let mut second = budget.start();
        second.cover(FREE_PAYLOAD + 40, FREE_PAYLOAD + 40).unwrap();
        assert_eq!(budget.held(), 100);
        drop((free, first, refused, second));
        assert_eq!(budget.held(), 0, "every charge is given back");
    }

    /// A frame that declares the largest client payload and stops after its free part and 10
    /// bytes: with a budget of one chunk, it is read up to where it stops and fails there as
    /// truncated, not for want of budget, since it never held more than it sent. (Charged its
    /// declared length at the header, it was refused before its payload.)
    #[test]
    fn a_frame_is_charged_for_the_bytes_it_sent_not_the_length_it_declared() {
        let mut bytes = frame_of(FrameKind::ClientRequest, MAX_CLIENT_PAYLOAD);
        bytes.truncate(HEADER_LEN + FREE_PAYLOAD + 10);
        let budget = Budget::new(CHUNK);
        let result = read_charged(
            &mut Cursor::new(bytes),
            FrameKind::ClientRequest,
            Some(&budget),
        );
        assert!(
            matches!(
                &result,
                Err(FrameError::Decode(DecodeError::TruncatedPayload { expected, got }))
                    if *expected == MAX_CLIENT_PAYLOAD && *got == FREE_PAYLOAD + 10
            ),
            "{:?}",
            result.map(|(frame, _)| frame.len())
        );
        assert_eq!(budget.held(), 0);
    }

    /// A frame's buffer is its length, to the byte: the memory a port's frames hold is what the
    /// budget and the README count, not up to twice that.
    #[test]
    fn a_frame_buffer_is_exactly_as_long_as_the_frame() {
        for len in [0, 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5, MAX_CLIENT_PAYLOAD] {
            let budget = Budget::new(MAX_CLIENT_PAYLOAD);
            let bytes = frame_of(FrameKind::ClientRequest, len);
            let (frame, _charge) = read_charged(
                &mut Cursor::new(bytes),
                FrameKind::ClientRequest,
                Some(&budget),
            )
            .unwrap();
            assert_eq!(frame.len(), HEADER_LEN + len);
            assert_eq!(frame.capacity(), HEADER_LEN + len, "a frame of {len}");
        }
    }

    #[test]
    fn a_wrong_magic_is_refused_before_the_length_is_looked_at() {
        let mut bytes = framed(FrameKind::ClientRequest, &command(1));
        bytes[6..10].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = decode_error(read_as(FrameKind::Message, &bytes));
        assert!(matches!(error, DecodeError::WrongMagic { .. }), "{error}");
    }

    #[test]
    fn a_frame_that_does_not_arrive_in_time_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        let whole = framed(FrameKind::ClientRequest, &command(1));
        sender.write_all(&whole[..HEADER_LEN + 1]).unwrap();
        let budget = Budget::new(0);
        let result: Result<KvCommand, _> = read_frame_within(
            &receiver,
            FrameKind::ClientRequest,
            Duration::from_millis(50),
            &budget,
        );
        assert!(
            matches!(&result, Err(FrameError::Io(e)) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)),
            "{result:?}"
        );
    }

    #[test]
    fn text_sent_to_a_server_is_refused() {
        let text = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let result = read_as(FrameKind::ClientRequest, text);
        assert!(result.is_err(), "{result:?}");
    }
}
