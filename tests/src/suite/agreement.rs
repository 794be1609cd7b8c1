//! 3B: log agreement (`TestBasicAgree3B` … `TestCount3B`).

use std::time::Duration;

use raft_impl::Index;

use super::{ensure, int, T};
use crate::failure::Failure;
use crate::tester::ELECTION_TIMEOUT;
use crate::value::Value;

/// Bytes the Rust encoding may spend on top of `servers × payload` in RPCBytes.
///
/// The Go test allows 50 000 bytes for gob's framing and the heartbeats. Here an AppendEntries
/// carrying one 5 000-byte entry encodes to 5 025 bytes (14 of them frame header) and an empty
/// heartbeat to about 20. Measured over 300 seeds: the ten agreements cost exactly the two
/// followers' copies of the payload plus 900 bytes (20 × 25 of framing, 20 heartbeats), far
/// inside `3 × payload`; the allowance only has to cover a few more heartbeats when an
/// election intervenes, so it is 10 000.
pub const RPC_BYTES_ALLOWANCE: u64 = 10_000;

/// Indices 1..3 each agreed by all, and nothing committed before it is proposed.
pub async fn basic_agree(t: T) -> Result<(), Failure> {
    let servers = t.servers() as usize;
    for index in 1..=3u64 {
        let (n, _) = t.n_committed(index);
        ensure(n == 0, || "some have committed before Start()".to_string())?;
        let xindex = t.one(int(index * 100), servers, false).await?;
        ensure(xindex == index, || {
            format!("got index {xindex} but expected {index}")
        })?;
    }
    Ok(())
}

/// Each command is sent to each peer once: the bytes on the wire stay near `servers × payload`.
pub async fn rpc_bytes(t: T) -> Result<(), Failure> {
    let servers = t.servers() as usize;
    t.one(int(99), servers, false).await?;
    let bytes0 = t.bytes_total();
    let mut sent = 0u64;
    for index in 2..12u64 {
        let text: String = (0..5000)
            .map(|_| char::from(b'a' + t.random(0..26) as u8))
            .collect();
        sent += text.len() as u64;
        let xindex = t.one(Value::Text(text), servers, false).await?;
        ensure(xindex == index, || {
            format!("got index {xindex} but expected {index}")
        })?;
    }
    let got = t.bytes_total() - bytes0;
    let expected = servers as u64 * sent;
    ensure(got <= expected + RPC_BYTES_ALLOWANCE, || {
        format!("too many RPC bytes; got {got}, expected {expected} + {RPC_BYTES_ALLOWANCE}")
    })
}

/// Agreement despite one follower disconnected; none once both followers are gone.
pub async fn follower_failure(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let n = servers as usize;
    t.one(int(101), n, false).await?;
    let leader1 = t.check_one_leader().await?;
    t.disconnect((leader1 + 1) % servers);
    // The leader and the remaining follower should be able to agree despite the disconnection.
    t.one(int(102), n - 1, false).await?;
    t.sleep(ELECTION_TIMEOUT).await;
    t.one(int(103), n - 1, false).await?;
    let leader2 = t.check_one_leader().await?;
    t.disconnect((leader2 + 1) % servers);
    t.disconnect((leader2 + 2) % servers);
    let Some((index, _)) = t.propose(leader2, int(104)) else {
        return Err(Failure::Check("leader rejected Start()".into()));
    };
    ensure(index == 4, || format!("expected index 4, got {index}"))?;
    t.sleep(2 * ELECTION_TIMEOUT).await;
    no_commit(&t, index)
}

/// Agreement after the leader is cut off; nothing new commits once the second leader is too.
pub async fn leader_failure(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let n = servers as usize;
    t.one(int(101), n, false).await?;
    let leader1 = t.check_one_leader().await?;
    t.disconnect(leader1);
    // The remaining followers should elect a new leader.
    t.one(int(102), n - 1, false).await?;
    t.sleep(ELECTION_TIMEOUT).await;
    t.one(int(103), n - 1, false).await?;
    let leader2 = t.check_one_leader().await?;
    t.disconnect(leader2);
    for i in 0..servers {
        t.propose(i, int(104));
    }
    t.sleep(2 * ELECTION_TIMEOUT).await;
    no_commit(&t, 4)
}

/// A follower that was cut off rejoins and catches up.
pub async fn fail_agree(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let n = servers as usize;
    t.one(int(101), n, false).await?;
    let leader = t.check_one_leader().await?;
    t.disconnect((leader + 1) % servers);
    t.one(int(102), n - 1, false).await?;
    t.one(int(103), n - 1, false).await?;
    t.sleep(ELECTION_TIMEOUT).await;
    t.one(int(104), n - 1, false).await?;
    t.one(int(105), n - 1, false).await?;
    t.connect((leader + 1) % servers);
    // The full set of servers should preserve previous agreements and agree on new ones.
    t.one(int(106), n, true).await?;
    t.sleep(ELECTION_TIMEOUT).await;
    t.one(int(107), n, true).await?;
    Ok(())
}

/// Without a majority a proposal does not commit; after healing, the uncommitted entry may be
/// kept or overwritten, so the next proposal lands at index 2 or 3.
pub async fn fail_no_agree(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let n = servers as usize;
    t.one(int(10), n, false).await?;
    let leader = t.check_one_leader().await?;
    for k in 1..=3 {
        t.disconnect((leader + k) % servers);
    }
    let Some((index, _)) = t.propose(leader, int(20)) else {
        return Err(Failure::Check("leader rejected Start()".into()));
    };
    ensure(index == 2, || format!("expected index 2, got {index}"))?;
    t.sleep(2 * ELECTION_TIMEOUT).await;
    no_commit(&t, index)?;
    for k in 1..=3 {
        t.connect((leader + k) % servers);
    }
    // The disconnected majority may have chosen a leader from among their own ranks,
    // forgetting index 2.
    let leader2 = t.check_one_leader().await?;
    let Some((index2, _)) = t.propose(leader2, int(30)) else {
        return Err(Failure::Check("leader2 rejected Start()".into()));
    };
    ensure((2..=3).contains(&index2), || {
        format!("unexpected index {index2}")
    })?;
    t.one(int(1000), n, true).await?;
    Ok(())
}

/// Five proposals made at one instant all commit (retrying the round if the term moves).
pub async fn concurrent_starts(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    'attempt: for attempt in 0..5 {
        if attempt > 0 {
            // Give the solution some time to settle.
            t.sleep(Duration::from_secs(3)).await;
        }
        let leader = t.check_one_leader().await?;
        let Some((_, term)) = t.propose(leader, int(1)) else {
            // The leader moved on really quickly.
            continue;
        };
        let mut indices = Vec::new();
        for i in 0..5u64 {
            if let Some((index, term1)) = t.propose(leader, int(100 + i)) {
                if term1 == term {
                    indices.push(index);
                }
            }
        }
        if (0..servers).any(|j| t.state(j).is_some_and(|(tj, _)| tj != term)) {
            // The term changed: no guarantee that the proposals could commit.
            continue;
        }
        let mut committed = Vec::new();
        for index in indices {
            match t.wait(index, servers as usize, Some(term)).await? {
                Some(Value::Int(x)) => committed.push(x),
                Some(other) => {
                    return Err(Failure::Check(format!("value {other:?} is not an int")))
                }
                None => continue 'attempt,
            }
        }
        for x in 100..105u64 {
            ensure(committed.contains(&x), || {
                format!("cmd {x} missing in {committed:?}")
            })?;
        }
        return Ok(());
    }
    Err(Failure::Check("term changed too often".into()))
}

/// An old leader, cut off with uncommitted entries, rejoins and has them overwritten.
pub async fn rejoin(t: T) -> Result<(), Failure> {
    let servers = t.servers() as usize;
    t.one(int(101), servers, true).await?;
    // The leader network-fails.
    let leader1 = t.check_one_leader().await?;
    t.disconnect(leader1);
    // Make the old leader try to agree on some entries.
    for x in [102, 103, 104] {
        t.propose(leader1, int(x));
    }
    // The new leader commits, also for index 2.
    t.one(int(103), 2, true).await?;
    // The new leader network-fails.
    let leader2 = t.check_one_leader().await?;
    t.disconnect(leader2);
    // The old leader connected again.
    t.connect(leader1);
    t.one(int(104), 2, true).await?;
    // All together now.
    t.connect(leader2);
    t.one(int(105), servers, true).await?;
    Ok(())
}

/// 50 uncommitted entries on each side of a partition; after healing the logs converge fast.
pub async fn backup(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let n = servers as usize;
    t.one(t.random_value(), n, true).await?;
    // Put the leader and one follower in a partition.
    let leader1 = t.check_one_leader().await?;
    for k in 2..=4 {
        t.disconnect((leader1 + k) % servers);
    }
    // Submit lots of commands that won't commit.
    for _ in 0..50 {
        t.propose(leader1, t.random_value());
    }
    t.sleep(ELECTION_TIMEOUT / 2).await;
    t.disconnect(leader1);
    t.disconnect((leader1 + 1) % servers);
    // Allow the other partition to recover.
    for k in 2..=4 {
        t.connect((leader1 + k) % servers);
    }
    // Lots of successful commands to the new group.
    for _ in 0..50 {
        t.one(t.random_value(), 3, true).await?;
    }
    // Now another partitioned leader and one follower.
    let leader2 = t.check_one_leader().await?;
    let mut other = (leader1 + 2) % servers;
    if leader2 == other {
        other = (leader2 + 1) % servers;
    }
    t.disconnect(other);
    // Lots more commands that won't commit.
    for _ in 0..50 {
        t.propose(leader2, t.random_value());
    }
    t.sleep(ELECTION_TIMEOUT / 2).await;
    // Bring the original leader back to life.
    for i in 0..servers {
        t.disconnect(i);
    }
    t.connect(leader1);
    t.connect((leader1 + 1) % servers);
    t.connect(other);
    // Lots of successful commands to the new group.
    for _ in 0..50 {
        t.one(t.random_value(), 3, true).await?;
    }
    // Now everyone.
    for i in 0..servers {
        t.connect(i);
    }
    t.one(t.random_value(), n, true).await?;
    Ok(())
}

/// Not too many RPCs: to elect, to agree on 10 commands, and in an idle second.
pub async fn count(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    t.check_one_leader().await?;
    let total1 = t.rpc_total();
    ensure((1..=30).contains(&total1), || {
        format!("too many or few RPCs ({total1}) to elect initial leader")
    })?;
    let mut total2 = None;
    'attempt: for attempt in 0..5 {
        if attempt > 0 {
            // Give the solution some time to settle.
            t.sleep(Duration::from_secs(3)).await;
        }
        let leader = t.check_one_leader().await?;
        let total1 = t.rpc_total();
        let iters = 10u64;
        let Some((start, term)) = t.propose(leader, int(1)) else {
            // The leader moved on really quickly.
            continue;
        };
        let mut commands = Vec::new();
        for i in 1..iters + 2 {
            let x = t.random(0..1 << 31);
            commands.push(x);
            match t.propose(leader, int(x)) {
                Some((index, term1)) if term1 == term => {
                    ensure(index == start + i, || "Start() failed".to_string())?
                }
                _ => continue 'attempt,
            }
        }
        for i in 1..=iters {
            let index: Index = start + i;
            match t.wait(index, servers as usize, Some(term)).await? {
                None => continue 'attempt,
                Some(Value::Int(x)) if x == commands[i as usize - 1] => {}
                Some(other) => {
                    return Err(Failure::Check(format!(
                        "wrong value {other:?} committed for index {index}; expected {}",
                        commands[i as usize - 1]
                    )))
                }
            }
        }
        if (0..servers).any(|j| t.state(j).is_some_and(|(tj, _)| tj != term)) {
            // The term changed while waiting for agreement.
            continue;
        }
        let total = t.rpc_total();
        let used = total - total1;
        ensure(used <= (iters + 1 + 3) * 3, || {
            format!("too many RPCs ({used}) for {iters} entries")
        })?;
        total2 = Some(total);
        break;
    }
    let Some(total2) = total2 else {
        return Err(Failure::Check("term changed too often".into()));
    };
    t.sleep(ELECTION_TIMEOUT).await;
    let idle = t.rpc_total() - total2;
    ensure(idle <= 3 * 20, || {
        format!("too many RPCs ({idle}) for 1 second of idleness")
    })
}

/// Fails if anything was applied at `index` (which had no majority).
fn no_commit(t: &T, index: Index) -> Result<(), Failure> {
    match t.n_committed(index) {
        (0, _) => Ok(()),
        (applied, _) => Err(Failure::CommittedWithoutMajority { index, applied }),
    }
}
