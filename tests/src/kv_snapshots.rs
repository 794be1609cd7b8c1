//! Lab 4B's snapshot tests that are not fault mixes of [`crate::kv`], ported to the simulator
//! on a three-server cluster whose KV service snapshots at [`MAX_RAFT_STATE`] bytes of Raft
//! state. Every history their clerks record is checked for linearizability too.
//!
//! - [`snapshot_size`] (`TestSnapshotSize4B`): one clerk Puts and reads back, 800 operations;
//!   after every one, no store keeps more than [`RAFT_STATE_SLACK`](crate::kv::RAFT_STATE_SLACK) × `maxraftstate` of Raft
//!   state, and at the end the snapshot a store keeps is small ([`MAX_SNAPSHOT_SIZE`]).
//! - [`snapshot_install`] (`TestSnapshotRPC4B`): a server is cut off (by a partition, or a
//!   crash) while the others commit 50 Puts and compact their logs past everything it holds;
//!   then it is needed for a majority, which it can only join by installing a snapshot
//!   (InstallSnapshot), and the reads that follow must see every write. The test fails unless
//!   that server's core installed a snapshot and its store then holds the writes it missed.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use raft_impl::kv::{ClientId, KvCommand, KvOp, KvReply};
use raft_impl::{MutationSet, NodeId};
use raft_lincheck::Recorder;

use crate::clerk::{Clerk, Closing};
use crate::failure::Failure;
use crate::kv::{check_raft_state, KvCluster, KvRun, MAX_RAFT_STATE};
use crate::kv_service::KvService;
use crate::runtime::Sim;

/// Servers in the cluster, as in 4B's snapshot tests.
pub const SERVERS: u8 = 3;
/// 4B's bound on the snapshot a store keeps after [`snapshot_size`]'s workload, whose store
/// holds one short key and one session: a snapshot that grows with the history fails.
pub const MAX_SNAPSHOT_SIZE: usize = 500;
/// Rounds of [`snapshot_size`], each a Put and a Get of "0" and of "1", as in 4B.
const SIZE_ROUNDS: u32 = 200;
/// Puts [`snapshot_install`] commits while one server is away, as in 4B.
const PUTS_WHILE_AWAY: u32 = 50;
/// 4B's `electionTimeout`: the pause after those Puts, time for leadership to settle.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(1);
/// Virtual time either test may take; a run that needs more has stalled.
const TIME_LIMIT: Duration = Duration::from_secs(120);

/// How [`snapshot_install`] takes the lagging server away while the others compact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Away {
    /// Partitioned off: it keeps running, and keeps its term and log.
    Partitioned,
    /// Crashed, and restarted when it is needed: it starts from what its store kept.
    Crashed,
}

/// `TestSnapshotSize4B` on `seed`, with the service snapshotting at `max_raft_state` bytes
/// (`None`: never, which must fail the size check). The bound checked is always
/// [`RAFT_STATE_SLACK`](crate::kv::RAFT_STATE_SLACK) × [`MAX_RAFT_STATE`].
pub fn snapshot_size(seed: u64, max_raft_state: Option<usize>, trace: bool) -> KvRun {
    let cluster = KvCluster {
        servers: SERVERS,
        seed,
        mutations: MutationSet::NONE,
        max_raft_state,
        trace,
    };
    cluster.run(TIME_LIMIT, |sim, service, history| async move {
        let mut clerk = clerk(1, &sim, &service, &history);
        for _ in 0..SIZE_ROUNDS {
            for value in ["0", "1"] {
                put(&mut clerk, "x", value).await?;
                check_raft_state(&sim, Some(MAX_RAFT_STATE))?;
                expect(&mut clerk, "x", value).await?;
                check_raft_state(&sim, Some(MAX_RAFT_STATE))?;
            }
        }
        let world = sim.world();
        if world.snapshots_taken() == 0 {
            return Err(Failure::Check("no server took a snapshot".into()));
        }
        let largest = (0..SERVERS).map(|i| world.snapshot_size(i)).max();
        match largest {
            Some(size) if size > MAX_SNAPSHOT_SIZE => Err(Failure::Check(format!(
                "snapshot too large ({size} > {MAX_SNAPSHOT_SIZE})"
            ))),
            _ => Ok(()),
        }
    })
}

/// `TestSnapshotRPC4B` on `seed`, the lagging server taken `away` as said.
pub fn snapshot_install(seed: u64, away: Away, trace: bool) -> KvRun {
    let cluster = KvCluster {
        servers: SERVERS,
        seed,
        mutations: MutationSet::NONE,
        max_raft_state: Some(MAX_RAFT_STATE),
        trace,
    };
    cluster.run(TIME_LIMIT, move |sim, service, history| async move {
        const LAGGING: NodeId = 2;
        let mut first = clerk(1, &sim, &service, &history);
        put(&mut first, "a", "A").await?;
        expect(&mut first, "a", "A").await?;
        match away {
            Away::Partitioned => sim.world().partition(&[LAGGING]),
            Away::Crashed => sim.world().crash(LAGGING),
        }
        let mut majority = clerk(2, &sim, &service, &history);
        for i in 0..PUTS_WHILE_AWAY {
            put(&mut majority, &i.to_string(), &i.to_string()).await?;
        }
        sim.sleep(ELECTION_TIMEOUT).await;
        put(&mut majority, "b", "B").await?;
        check_raft_state(&sim, Some(MAX_RAFT_STATE))?;
        // A majority that needs the lagging server: the others compacted what it lacks.
        {
            let mut world = sim.world();
            if away == Away::Crashed {
                world.start(LAGGING);
                world.connect(LAGGING);
            }
            world.partition(&[1]);
        }
        let mut with_lagging = clerk(3, &sim, &service, &history);
        put(&mut with_lagging, "c", "C").await?;
        put(&mut with_lagging, "d", "D").await?;
        for (key, value) in [("a", "A"), ("b", "B"), ("1", "1"), ("49", "49")] {
            expect(&mut with_lagging, key, value).await?;
        }
        sim.world().partition(&[]);
        put(&mut first, "e", "E").await?;
        for (key, value) in [("c", "C"), ("e", "E"), ("1", "1")] {
            expect(&mut first, key, value).await?;
        }
        check_raft_state(&sim, Some(MAX_RAFT_STATE))?;
        let installed = sim.world().snapshots_installed(LAGGING);
        if installed == 0 {
            return Err(Failure::Check(format!(
                "server {LAGGING} caught up without installing a snapshot"
            )));
        }
        let caught_up = service.value(LAGGING, "49");
        if caught_up != "49" {
            return Err(Failure::Check(format!(
                "server {LAGGING} installed {installed} snapshots but holds 49 = {caught_up:?}"
            )));
        }
        Ok(())
    })
}

/// A clerk with id `client`; these tests never close their workload.
fn clerk(
    client: ClientId,
    sim: &Sim<KvCommand>,
    service: &KvService,
    history: &Rc<RefCell<Recorder>>,
) -> Clerk {
    let never = Closing::default();
    Clerk::new(
        client,
        sim.clone(),
        service.clone(),
        Rc::clone(history),
        never,
    )
}

/// Performs `op` to its end (the workload never closes, so it ends with a reply).
async fn execute(clerk: &mut Clerk, op: KvOp) -> Result<KvReply, Failure> {
    let what = format!("{op:?}");
    clerk
        .execute(op)
        .await?
        .ok_or_else(|| Failure::Check(format!("{what} got no reply")))
}

async fn put(clerk: &mut Clerk, key: &str, value: &str) -> Result<(), Failure> {
    let op = KvOp::Put {
        key: key.into(),
        value: value.into(),
    };
    execute(clerk, op).await.map(drop)
}

/// 4B's `check`: a Get of `key` must read `value`.
async fn expect(clerk: &mut Clerk, key: &str, value: &str) -> Result<(), Failure> {
    let got = execute(clerk, KvOp::Get { key: key.into() }).await?;
    if got != KvReply::Value(value.into()) {
        return Err(Failure::Check(format!(
            "Get({key:?}) read {got:?}, expected {value:?}"
        )));
    }
    Ok(())
}
