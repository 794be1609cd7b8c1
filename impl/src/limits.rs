//! The size limits every part of the service agrees on, in one place.
//!
//! Each limit bounds what one request can make a server hold or send, so that no client and no
//! peer can make a server allocate, store or replicate more than these numbers allow. They are
//! chosen so that each one fits inside the next with room to spare: a value fits in a command,
//! a command in a client frame, and a full AppendEntries batch plus one command in a peer frame.
//! A test beside each user of a limit checks it at the limit and one byte past it.

/// The longest key a client command may name, in bytes.
pub const MAX_KEY_BYTES: usize = 1 << 10;

/// The largest value the store holds under one key, in bytes: a Put of a longer value is refused
/// before it enters the log, and an Append that would grow a value past it is refused at apply,
/// by the same rule on every server.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// The largest encoded client command, in bytes: a value, a key and the session fields, with
/// room to spare. A larger one is refused with a typed error before it enters the log.
pub const MAX_COMMAND_BYTES: usize = MAX_VALUE_BYTES + 16 * MAX_KEY_BYTES;

/// The largest payload a client frame may declare: one command and its envelope. A frame on the
/// client port that declares more is refused before its payload is read.
pub const MAX_CLIENT_PAYLOAD: usize = MAX_COMMAND_BYTES + (4 << 10);

/// The default bound on the encoded entries one AppendEntries carries. A batch holds at least one
/// entry whatever its size, so a log entry of up to `MAX_COMMAND_BYTES` always goes through.
pub const DEFAULT_MAX_APPEND_BYTES: usize = 1 << 20;

/// The default bound on the number of entries one AppendEntries carries.
pub const DEFAULT_MAX_APPEND_ENTRIES: usize = 1024;

/// The largest payload a peer frame may declare. A full batch (`DEFAULT_MAX_APPEND_BYTES`, or
/// one entry of `MAX_COMMAND_BYTES`) fits many times over; anything larger is garbage.
///
/// Only an authenticated peer gets past the handshake to send one, but what a valid frame
/// decodes to is larger than the frame: an AppendEntries of the smallest entries (4 encoded
/// bytes, 96 in memory, in a `Vec` that holds its old and new buffers while it doubles)
/// allocates up to 72 times its length while decoding, so 4.5 GiB for a frame at this limit.
/// Checked by `decode_alloc`'s `a_valid_peer_frame_of_the_smallest_entries_...` (the README
/// has the figures measured). Once batches are bounded by
/// `DEFAULT_MAX_APPEND_BYTES`, this limit can shrink to a batch plus one command.
pub const MAX_PEER_PAYLOAD: usize = 64 << 20;

/// The largest snapshot chunk, in bytes, and the default size of one (`raftd
/// --snapshot-chunk-bytes`). A leader sends a snapshot in chunks of this size so that each fits
/// a peer frame with room to spare (its envelope is a few dozen bytes), and so that the messages
/// queued for the same follower (heartbeats, votes) wait for at most one chunk, never a whole
/// snapshot: at 1 MiB, a few milliseconds on a local network.
pub const MAX_SNAPSHOT_CHUNK_BYTES: usize = 1 << 20;

/// The largest snapshot a server receives from a peer, in bytes: a chunk that declares a longer
/// one is refused before anything is allocated for it. A receiver holds a transfer in memory
/// until it is whole (growing only with the bytes that arrived, never by the declared length),
/// then decodes it into a KV store, which takes a few times as much, all while the store it
/// replaces is still live; 1 GiB keeps that within a few GiB on a server whose own store is of
/// the same size. A store larger than this cannot be sent to a follower, which the leader logs:
/// raise the limit on every server together.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

// The limits nest; a change that breaks the nesting fails to compile.
const _: () = assert!(MAX_VALUE_BYTES + MAX_KEY_BYTES < MAX_COMMAND_BYTES);
const _: () = assert!(MAX_COMMAND_BYTES < MAX_CLIENT_PAYLOAD);
const _: () = assert!(DEFAULT_MAX_APPEND_BYTES + MAX_CLIENT_PAYLOAD < MAX_PEER_PAYLOAD);
const _: () = assert!(MAX_SNAPSHOT_CHUNK_BYTES + (4 << 10) < MAX_PEER_PAYLOAD);
const _: () = assert!((MAX_SNAPSHOT_CHUNK_BYTES as u64) < MAX_SNAPSHOT_BYTES);
