//! Properties of the byte format (`raft_impl::codec`): every hard state and message round-trips;
//! every truncation and every single-bit flip of an encoded state is refused with an error;
//! no input, however forged (random bytes, valid frames with bytes overwritten and their
//! checksums fixed), makes any decoder panic. (`cargo fuzz` would search further, but needs a
//! nightly toolchain, which this workspace does not use; these run on stable in CI.)

mod forge;
mod support;

use forge::{payload_of, record};
use proptest::prelude::*;
use raft_impl::codec::{self, DecodeError, FrameKind, FORMAT_VERSION, HEADER_LEN};
use raft_impl::kv::{KvCommand, KvOp, KvReply, KvRequest, Session};
use raft_impl::runtime::frame;
use raft_impl::runtime::protocol::{ClientReply, ClientRequest};
use raft_impl::{
    AppendEntries, AppendOutcome, ConflictHint, Entry, Envelope, HardState, Message, Snapshot,
};
use support::encoded;

fn kv_command() -> impl Strategy<Value = KvCommand> {
    let op = prop_oneof![
        (".{0,8}", ".{0,8}").prop_map(|(key, value)| KvOp::Put { key, value }),
        (".{0,8}", ".{0,8}").prop_map(|(key, value)| KvOp::Append { key, value }),
        ".{0,8}".prop_map(|key| KvOp::Get { key }),
    ];
    let request = prop_oneof![
        any::<u64>().prop_map(|nonce| KvRequest::Register { nonce }),
        (any::<u64>(), any::<u64>(), any::<u64>(), op).prop_map(|(id, nonce, seq, op)| {
            KvRequest::InSession {
                session: Session { id, nonce },
                seq,
                op,
            }
        }),
        ".{0,8}".prop_map(|key| KvRequest::Get { key }),
    ];
    (any::<u64>(), request).prop_map(|(time, request)| KvCommand { time, request })
}

fn entries() -> impl Strategy<Value = Vec<Entry<KvCommand>>> {
    proptest::collection::vec(
        (any::<u64>(), kv_command()).prop_map(|(term, command)| Entry { term, command }),
        0..12,
    )
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(last_index, last_term, data)| Snapshot {
            last_index,
            last_term,
            data,
        })
}

fn hard_state() -> impl Strategy<Value = HardState<KvCommand>> {
    (
        any::<u64>(),
        any::<Option<u8>>(),
        proptest::option::of(snapshot()),
        entries(),
    )
        .prop_map(|(current_term, voted_for, snapshot, log)| HardState {
            current_term,
            voted_for,
            snapshot,
            log,
        })
}

fn message() -> impl Strategy<Value = Message<KvCommand>> {
    let hint =
        (any::<Option<u64>>(), any::<u64>(), any::<u64>()).prop_map(|(x_term, x_index, x_len)| {
            ConflictHint {
                x_term,
                x_index,
                x_len,
            }
        });
    let outcome = prop_oneof![
        any::<u64>().prop_map(|match_index| AppendOutcome::Success { match_index }),
        hint.prop_map(AppendOutcome::Conflict),
    ];
    prop_oneof![
        (any::<u64>(), any::<u64>(), any::<u64>()).prop_map(
            |(term, last_log_index, last_log_term)| Message::RequestVote {
                term,
                last_log_index,
                last_log_term,
            }
        ),
        (any::<u64>(), any::<bool>())
            .prop_map(|(term, granted)| Message::RequestVoteReply { term, granted }),
        (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            entries(),
            any::<u64>()
        )
            .prop_map(
                |(term, prev_log_index, prev_log_term, entries, leader_commit)| {
                    Message::AppendEntries(AppendEntries {
                        term,
                        prev_log_index,
                        prev_log_term,
                        entries,
                        leader_commit,
                    })
                }
            ),
        (any::<u64>(), outcome)
            .prop_map(|(term, outcome)| Message::AppendEntriesReply { term, outcome }),
        (any::<u64>(), snapshot())
            .prop_map(|(term, snapshot)| Message::InstallSnapshot { term, snapshot }),
    ]
}

fn decode_state(bytes: &[u8]) -> Result<HardState<KvCommand>, DecodeError> {
    codec::decode(FrameKind::HardState, bytes)
}

/// A frame with a correct header and checksum around any payload: what it takes to get past
/// the checks to the deserialiser.
fn frame(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
    bytes.extend_from_slice(kind);
    bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut flipped = bytes.to_vec();
    flipped[bit / 8] ^= 1 << (bit % 8);
    flipped
}

proptest! {
    #[test]
    fn any_hard_state_round_trips(state in hard_state()) {
        prop_assert_eq!(decode_state(&encoded(&state)), Ok(state));
    }

    #[test]
    fn any_message_round_trips(msg in message()) {
        let bytes = codec::encode(FrameKind::Message, &msg).expect("a message encodes");
        prop_assert_eq!(codec::decode(FrameKind::Message, &bytes), Ok(msg));
    }

    #[test]
    fn every_truncation_is_refused(state in hard_state()) {
        let bytes = encoded(&state);
        let payload_len = bytes.len() - HEADER_LEN;
        for cut in 0..bytes.len() {
            let expected = if cut < HEADER_LEN {
                DecodeError::TruncatedHeader { got: cut }
            } else {
                DecodeError::TruncatedPayload { expected: payload_len, got: cut - HEADER_LEN }
            };
            prop_assert_eq!(decode_state(&bytes[..cut]), Err(expected));
        }
    }

    #[test]
    fn any_single_bit_flip_is_refused(state in hard_state(), bit in any::<prop::sample::Index>()) {
        let bytes = encoded(&state);
        let flipped = flip(&bytes, bit.index(bytes.len() * 8));
        prop_assert!(decode_state(&flipped).is_err());
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        prop_assert!(decode_state(&bytes).is_err() || bytes.starts_with(b"RCHS"));
        let _ = codec::decode::<Message<KvCommand>>(FrameKind::Message, &bytes);
    }

    /// Past magic, version, length and checksum, the deserialiser itself must not panic (nor
    /// abort on an allocation a forged length asks for).
    #[test]
    fn any_payload_in_a_valid_frame_never_panics(
        payload in proptest::collection::vec(any::<u8>(), 0..256)
    ) {
        let _ = decode_state(&frame(b"RCHS", &payload));
        let _ = codec::decode::<Message<KvCommand>>(FrameKind::Message, &frame(b"RCMS", &payload));
    }

    /// Random bytes, whole, to every decoder a server or a client runs on bytes from outside:
    /// each refuses them or decodes them, and none panics or aborts.
    #[test]
    fn random_bytes_to_every_decoder_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..512)
    ) {
        decode_everything(&bytes);
        for kind in [b"RCCQ", b"RCCR", b"RCMS", b"RCPH", b"RCHS"] {
            decode_everything(&frame(kind, &bytes));
        }
        decode_everything(&record(&bytes));
    }

    /// Valid frames of every kind with a few payload bytes overwritten and the checksums made
    /// right again, so that the deserialiser sees them: it refuses them or decodes something,
    /// and never panics or aborts.
    #[test]
    fn mutated_valid_frames_never_panic(
        msg in message(),
        command in kv_command(),
        state in hard_state(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let payloads = [
            (b"RCMS", payload_of(&Envelope { from: 0, to: 1, msg })),
            (b"RCCQ", payload_of(&ClientRequest::Kv(command.request.clone()))),
            (b"RCCR", payload_of(&ClientReply::Applied(KvReply::Value(format!("{:?}", command.request))))),
            (b"RCHS", payload_of(&state)),
        ];
        for (kind, mut payload) in payloads {
            if payload.is_empty() {
                continue;
            }
            for (at, byte) in &edits {
                let at = at.index(payload.len());
                payload[at] = *byte;
            }
            decode_everything(&frame(kind, &payload));
            decode_everything(&record(&payload));
        }
    }
}

/// Runs every decoder of outside bytes on `bytes`; only a panic (or an abort) fails.
fn decode_everything(bytes: &[u8]) {
    let _ = codec::decode::<ClientRequest>(FrameKind::ClientRequest, bytes);
    let _ = codec::decode::<ClientReply>(FrameKind::ClientReply, bytes);
    let _ = codec::decode::<Envelope<KvCommand>>(FrameKind::Message, bytes);
    let _ = codec::decode::<HardState<KvCommand>>(FrameKind::HardState, bytes);
    let _ = codec::decode_record::<KvCommand>(bytes);
    let _ =
        frame::read_frame::<ClientReply>(&mut std::io::Cursor::new(bytes), FrameKind::ClientReply);
}

#[test]
fn every_single_bit_flip_of_one_state_is_refused() {
    let state = HardState {
        current_term: 7,
        voted_for: Some(2),
        snapshot: None,
        log: vec![Entry {
            term: 7,
            command: KvCommand {
                time: 3,
                request: KvRequest::InSession {
                    session: Session { id: 1, nonce: 4 },
                    seq: 2,
                    op: KvOp::Append {
                        key: "k".into(),
                        value: "v".into(),
                    },
                },
            },
        }],
    };
    let bytes = encoded(&state);
    for bit in 0..bytes.len() * 8 {
        assert!(
            decode_state(&flip(&bytes, bit)).is_err(),
            "bit {bit} flipped"
        );
    }
}

#[test]
fn a_forged_string_length_is_refused_without_allocating_it() {
    // current_term 0, no vote, no snapshot, one entry of term 0, time 0, a write in session
    // (id 0, nonce 0), seq 0, Put, key of 2^40 bytes.
    let mut payload = vec![0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0xfd];
    payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert_eq!(
        decode_state(&frame(b"RCHS", &payload)),
        Err(DecodeError::LengthPastEnd {
            declared: 1 << 40,
            left: 0
        })
    );
}

#[test]
fn a_hard_state_is_not_read_from_a_message_frame() {
    let msg: Message<KvCommand> = Message::RequestVoteReply {
        term: 1,
        granted: true,
    };
    let bytes = codec::encode(FrameKind::Message, &msg).expect("a message encodes");
    assert_eq!(
        decode_state(&bytes),
        Err(DecodeError::WrongMagic {
            expected: FrameKind::HardState,
            found: *b"RCMS",
        })
    );
}
