//! Forged frames for the tests of hostile input (`decode_alloc`, `raftd_hostile`): a value's
//! encoding with one length prefix replaced by a huge claim, wrapped in a frame or a log record
//! whose header and checksums are right, so that it reaches the deserialiser.
#![allow(dead_code)]

use raft_impl::codec::{self, FrameKind, FORMAT_VERSION, HEADER_LEN};
use serde::Serialize;

/// 2^40: a string's forged length.
pub const TIB: u64 = 1 << 40;
/// 2^32: a sequence's forged length.
pub const FOUR_G: u64 = 1 << 32;

/// The varint bincode writes for a `u64` of at least 2^32: marker 253, then 8 bytes LE.
pub fn varint(declared: u64) -> Vec<u8> {
    let mut bytes = vec![253];
    bytes.extend_from_slice(&declared.to_le_bytes());
    bytes
}

/// The payload bincode writes for `value`.
pub fn payload_of<T: Serialize>(value: &T) -> Vec<u8> {
    codec::encode(FrameKind::Message, value).expect("encodes")[HEADER_LEN..].to_vec()
}

/// The payload of `short`, whose length prefix (the first byte where its encoding differs from
/// `long`'s, which holds one element more) is replaced by a claim of `declared`. Finding the
/// prefix by difference keeps the tests independent of the fields around it.
pub fn forged<T: Serialize>(short: &T, long: &T, declared: u64) -> Vec<u8> {
    let (short, long) = (payload_of(short), payload_of(long));
    let at = short
        .iter()
        .zip(&long)
        .position(|(a, b)| a != b)
        .expect("the encodings differ");
    assert_eq!(short[at], 0, "an empty string or sequence's length");
    let mut bytes = short[..at].to_vec();
    bytes.extend(varint(declared));
    bytes.extend_from_slice(&short[at + 1..]);
    bytes
}

/// A frame of `kind` with a correct header and checksum around `payload`.
pub fn frame(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut bytes = kind.magic().to_vec();
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A log record with correct checksums around `payload`.
pub fn record(payload: &[u8]) -> Vec<u8> {
    let mut bytes = frame(FrameKind::WalRecord, payload);
    let header_crc = crc32fast::hash(&bytes[..HEADER_LEN]);
    bytes.splice(HEADER_LEN..HEADER_LEN, header_crc.to_le_bytes());
    bytes
}

/// `payload` padded with zeros to `len` bytes: a frame as large as the (16 MiB + 64)
/// whose forged length prefix comes first.
pub fn padded(mut payload: Vec<u8>, len: usize) -> Vec<u8> {
    payload.resize(len, 0);
    payload
}
