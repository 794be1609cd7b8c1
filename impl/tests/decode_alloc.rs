//! Every decoder of the crate against hostile length prefixes, under a counting global
//! allocator: a string declaring 2^40 bytes, a sequence declaring 2^32 elements, and the same
//! nested inside a sequence's element, in client requests, peer messages, handshakes, log
//! records and replies. Each must be refused with [`DecodeError::LengthPastEnd`], and the most
//! memory allocated at once while refusing it must stay within a small multiple of the input.
//!
//! A test binary of its own: the allocator counts every allocation of the process, so the
//! tests take a lock and run one at a time.

mod forge;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Cursor, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use forge::{forged, frame, padded, record, varint, FOUR_G, TIB};
use raft_impl::codec::{self, DecodeError, FrameKind};
use raft_impl::kv::{KvCommand, KvOp, KvReply, KvRequest, Session};
use raft_impl::runtime::auth::{self, AuthError, ClusterKey};
use raft_impl::runtime::frame::{self, FrameError};
use raft_impl::runtime::protocol::{ClientReply, ClientRequest};
use raft_impl::storage::{FileWal, WalError, WalOptions};
use raft_impl::{AppendEntries, Entry, Envelope, HardState, Message, Record};

/// The global allocator, counting the bytes allocated now and the most at any time.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = CURRENT.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call is passed on to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as the new block before the old one goes: a moving realloc holds both.
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// One test at a time: the counters are the whole process's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `f` and returns its result and the most bytes it had allocated at once beyond what was
/// allocated when it started.
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = CURRENT.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let result = f();
    (result, PEAK.load(Ordering::SeqCst).saturating_sub(base))
}

/// What refusing an input of `len` bytes may allocate at most: the input twice over (a stream
/// reader copies it into its frame buffer) and a few KiB of error message and buffers.
fn bound(len: usize) -> usize {
    2 * len + (16 << 10)
}

/// Checks that `decode` refuses `input` with a length past the end, within the bound.
fn refused<T: std::fmt::Debug>(
    what: &str,
    input: &[u8],
    decode: impl FnOnce() -> Result<T, DecodeError>,
) {
    let (result, peak) = peak_of(decode);
    assert!(
        matches!(result, Err(DecodeError::LengthPastEnd { .. })),
        "{what}: {result:?}"
    );
    assert!(
        peak <= bound(input.len()),
        "{what}: {peak} bytes allocated at once for {} bytes of input",
        input.len()
    );
}

fn command(key: &str) -> KvCommand {
    KvCommand {
        time: 1,
        request: KvRequest::InSession {
            session: Session { id: 1, nonce: 1 },
            seq: 1,
            op: KvOp::Put {
                key: key.into(),
                value: "v".into(),
            },
        },
    }
}

fn entries(keys: &[&str]) -> Vec<Entry<KvCommand>> {
    keys.iter()
        .map(|key| Entry {
            term: 1,
            command: command(key),
        })
        .collect()
}

fn append(entries: Vec<Entry<KvCommand>>) -> Envelope<KvCommand> {
    Envelope {
        from: 0,
        to: 1,
        msg: Message::AppendEntries(AppendEntries {
            term: 1,
            prev_log_index: 0,
            prev_log_term: 0,
            entries,
            leader_commit: 0,
        }),
    }
}

/// The hostile payloads of one value type: a 2^40-byte string, a 2^32-element sequence, and a
/// 2^40-byte string inside a sequence's element.
fn peer_payloads() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "a string of 2^40 bytes",
            forged(&append(entries(&[""])), &append(entries(&["k"])), TIB),
        ),
        (
            "2^32 entries",
            forged(&append(entries(&[])), &append(entries(&["k"])), FOUR_G),
        ),
        (
            "a string of 2^40 bytes in the second entry",
            forged(
                &append(entries(&["a", ""])),
                &append(entries(&["a", "k"])),
                TIB,
            ),
        ),
    ]
}

#[test]
fn client_requests() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let short = ClientRequest::Kv(command("").request);
    let long = ClientRequest::Kv(command("k").request);
    let payload = forged(&short, &long, TIB);
    let bytes = frame(FrameKind::ClientRequest, &payload);
    refused("decode", &bytes, || {
        codec::decode::<ClientRequest>(FrameKind::ClientRequest, &bytes)
    });
    refused("read from a stream", &bytes, || {
        match frame::read_frame::<ClientRequest>(&mut Cursor::new(&bytes), FrameKind::ClientRequest)
        {
            Err(FrameError::Decode(e)) => Err::<(), _>(e),
            other => panic!("{other:?}"),
        }
    });
    // The frame of the issue: 16 MiB + 64 bytes, past which the codec used to decode without
    // any limit and abort on the string's 2^40 bytes.
    let big = frame(FrameKind::ClientRequest, &padded(payload, (16 << 20) + 64));
    refused("16 MiB + 64 bytes", &big, || {
        codec::decode::<ClientRequest>(FrameKind::ClientRequest, &big)
    });
}

#[test]
fn peer_messages() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for (what, payload) in peer_payloads() {
        let bytes = frame(FrameKind::Message, &payload);
        refused(what, &bytes, || {
            codec::decode::<Envelope<KvCommand>>(FrameKind::Message, &bytes)
        });
    }
}

#[test]
fn handshakes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    // `Hello` is the handshake's variant 0 and its first field the cluster id, a string.
    let mut payload = vec![0];
    payload.extend(varint(TIB));
    let bytes = frame(FrameKind::PeerHandshake, &payload);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut dialer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (answerer, _) = listener.accept().unwrap();
    dialer.write_all(&bytes).unwrap();
    let key = ClusterKey::new(b"0123456789abcdef".to_vec(), "test".into()).unwrap();
    refused(
        "a Hello naming a cluster of 2^40 bytes",
        &bytes,
        || match auth::answer(&answerer, &key, 0, 3, Duration::from_secs(10)) {
            Err(AuthError::Frame(FrameError::Decode(e))) => Err::<(), _>(e),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a forged Hello was answered"),
        },
    );
}

#[test]
fn log_records() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let log = |keys: &[&str]| Record::Log {
        from: 1,
        entries: entries(keys),
    };
    let payloads = [
        (
            "a record of 2^32 entries",
            forged(&log(&[]), &log(&["k"]), FOUR_G),
        ),
        (
            "a record whose entry holds a string of 2^40 bytes",
            forged(&log(&["a", ""]), &log(&["a", "k"]), TIB),
        ),
    ];
    for (what, payload) in payloads {
        let bytes = record(&payload);
        refused(what, &bytes, || {
            codec::decode_record::<KvCommand>(&bytes).map(|(r, _)| r)
        });
        // The same record as the only one of a log on disk: recovery refuses it as corruption
        // (it passed its checksums, so it is no torn write).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(format!("{:020}.wal", 0)), &bytes).unwrap();
        let (opened, peak) = peak_of(|| {
            FileWal::<KvCommand>::open(dir.path(), WalOptions::default()).map(|(_, s)| s)
        });
        match opened {
            Err(WalError::Corrupt { .. }) => {}
            other => panic!("{what}: {other:?}"),
        }
        assert!(peak <= bound(bytes.len()), "{what}: {peak} bytes on open");
    }
    let state = |keys: &[&str]| HardState {
        current_term: 1,
        voted_for: None,
        snapshot: None,
        log: entries(keys),
    };
    let bytes = frame(
        FrameKind::HardState,
        &forged(&state(&[]), &state(&["k"]), FOUR_G),
    );
    refused("a hard state of 2^32 entries", &bytes, || {
        codec::decode::<HardState<KvCommand>>(FrameKind::HardState, &bytes)
    });
}

#[test]
fn replies_to_a_client() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let short = ClientReply::Applied(KvReply::Value(String::new()));
    let long = ClientReply::Applied(KvReply::Value("v".into()));
    let bytes = frame(FrameKind::ClientReply, &forged(&short, &long, TIB));
    refused(
        "a value of 2^40 bytes",
        &bytes,
        || match frame::read_frame::<ClientReply>(&mut Cursor::new(&bytes), FrameKind::ClientReply)
        {
            Err(FrameError::Decode(e)) => Err::<(), _>(e),
            other => panic!("{other:?}"),
        },
    );
}

/// The bound is not so loose that it holds whatever happens: a valid frame's decoding is
/// measured by the same counter, and a frame that declares as many entries as it has bytes
/// left, all of them present, allocates for what it holds.
#[test]
fn the_counter_sees_what_decoding_allocates() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let keys: Vec<String> = (0..1_000).map(|i| format!("key {i}")).collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let bytes = codec::encode(FrameKind::Message, &append(entries(&keys))).unwrap();
    let (decoded, peak) =
        peak_of(|| codec::decode::<Envelope<KvCommand>>(FrameKind::Message, &bytes));
    assert_eq!(decoded.unwrap(), append(entries(&keys)));
    let held = 1_000 * std::mem::size_of::<Entry<KvCommand>>();
    assert!(peak >= held, "{peak} bytes counted for {held} held");
}

/// The most a valid peer frame may make a server allocate while decoding it, as a multiple of
/// the frame's length (see `MAX_PEER_PAYLOAD`). An AppendEntries of the smallest entries (4
/// encoded bytes each, a `Get` of the empty key) decodes each into an `Entry` of 96 bytes, in a
/// `Vec` that grows by doubling and, while it grows, holds its old buffer and the new one: up to
/// 3 entries' room for each entry read, 3 x 96 / 4 = 72 times the frame, which is reached just
/// past a power of two entries.
#[test]
fn a_valid_peer_frame_of_the_smallest_entries_allocates_within_its_stated_multiple() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let smallest = Entry {
        term: 0,
        command: KvCommand {
            time: 0,
            request: KvRequest::Get { key: String::new() },
        },
    };
    let frame_of =
        |count| codec::encode(FrameKind::Message, &append(vec![smallest.clone(); count]));
    let encoded = frame_of(2).unwrap().len() - frame_of(1).unwrap().len();
    let in_memory = std::mem::size_of::<Entry<KvCommand>>();
    let amplification = 3 * in_memory / encoded;
    assert_eq!(
        amplification, 72,
        "{encoded} bytes encoded, {in_memory} in memory"
    );
    for count in [10_000, 131_073, 250_000] {
        let bytes = frame_of(count).unwrap();
        let (decoded, peak) =
            peak_of(|| codec::decode::<Envelope<KvCommand>>(FrameKind::Message, &bytes));
        let decoded = decoded.unwrap();
        assert!(matches!(&decoded.msg, Message::AppendEntries(a) if a.entries.len() == count));
        eprintln!(
            "{count} entries: a frame of {} bytes, {peak} bytes allocated at once decoding it \
             ({:.1}x)",
            bytes.len(),
            peak as f64 / bytes.len() as f64,
        );
        assert!(
            peak <= amplification * bytes.len(),
            "{peak} bytes allocated for a frame of {}",
            bytes.len()
        );
    }
}
