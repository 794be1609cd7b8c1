//! 3C: persistence (`TestPersist13C` … `TestUnreliableChurn3C`).

use std::time::Duration;

use raft_impl::NodeId;

use super::{ensure, int, T};
use crate::failure::Failure;
use crate::tester::ELECTION_TIMEOUT;
use crate::value::Value;

/// Crash and restart all servers, then the leader, then a follower; agreement between each.
pub async fn persist1(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let n = servers as usize;
    t.one(int(11), n, true).await?;
    // Crash and re-start all.
    for i in 0..servers {
        t.start(i);
    }
    for i in 0..servers {
        t.disconnect(i);
        t.connect(i);
    }
    t.one(int(12), n, true).await?;
    let leader1 = t.check_one_leader().await?;
    t.disconnect(leader1);
    t.start(leader1);
    t.connect(leader1);
    t.one(int(13), n, true).await?;
    let leader2 = t.check_one_leader().await?;
    t.disconnect(leader2);
    t.one(int(14), n - 1, true).await?;
    t.start(leader2);
    t.connect(leader2);
    // Wait for leader2 to join before killing i3.
    t.wait(4, n, None).await?;
    let i3 = (t.check_one_leader().await? + 1) % servers;
    t.disconnect(i3);
    t.one(int(15), n - 1, true).await?;
    t.start(i3);
    t.connect(i3);
    t.one(int(16), n, true).await?;
    Ok(())
}

/// Five rounds of crashing and restarting overlapping majorities.
pub async fn persist2(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let n = servers as usize;
    let mut index = 1;
    for _ in 0..5 {
        t.one(int(10 + index), n, true).await?;
        index += 1;
        let leader1 = t.check_one_leader().await?;
        let at = |k: NodeId| (leader1 + k) % servers;
        t.disconnect(at(1));
        t.disconnect(at(2));
        t.one(int(10 + index), n - 2, true).await?;
        index += 1;
        t.disconnect(at(0));
        t.disconnect(at(3));
        t.disconnect(at(4));
        t.start(at(1));
        t.start(at(2));
        t.connect(at(1));
        t.connect(at(2));
        t.sleep(ELECTION_TIMEOUT).await;
        t.start(at(3));
        t.connect(at(3));
        t.one(int(10 + index), n - 2, true).await?;
        index += 1;
        t.connect(at(4));
        t.connect(at(0));
    }
    t.one(int(1000), n, true).await?;
    Ok(())
}

/// A partitioned server and two crashes; agreement resumes after the restarts.
pub async fn persist3(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    t.one(int(101), 3, true).await?;
    let leader = t.check_one_leader().await?;
    let at = |k: NodeId| (leader + k) % servers;
    t.disconnect(at(2));
    t.one(int(102), 2, true).await?;
    t.crash(at(0));
    t.crash(at(1));
    t.connect(at(2));
    t.start(at(0));
    t.connect(at(0));
    t.one(int(103), 2, true).await?;
    t.start(at(1));
    t.connect(at(1));
    t.one(int(104), servers as usize, true).await?;
    Ok(())
}

/// The pause of one Figure 8 round: usually under 13 ms, one time in ten up to half an
/// election timeout.
fn figure8_pause(t: &T) -> Duration {
    let half = ELECTION_TIMEOUT.as_millis() as u64 / 2;
    let ms = if t.chance(100) {
        t.random(0..half)
    } else {
        t.random(0..13)
    };
    Duration::from_millis(ms)
}

/// Figure 8 of the paper, with crashes: leaders come and go with entries at various stages of
/// replication; at the end everyone restarts and must agree.
pub async fn figure8(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    t.one(t.random_value(), 1, true).await?;
    let mut up = servers;
    for _ in 0..1000 {
        let mut leader = None;
        for i in 0..servers {
            if t.is_running(i) && t.propose(i, t.random_value()).is_some() {
                leader = Some(i);
            }
        }
        t.sleep(figure8_pause(&t)).await;
        if let Some(leader) = leader {
            t.crash(leader);
            up -= 1;
        }
        if up < 3 {
            let s = t.random_server();
            if !t.is_running(s) {
                t.start(s);
                t.connect(s);
                up += 1;
            }
        }
    }
    for i in 0..servers {
        if !t.is_running(i) {
            t.start(i);
            t.connect(i);
        }
    }
    t.one(t.random_value(), servers as usize, true).await?;
    Ok(())
}

/// 246 commands proposed by concurrent clients over a lossy network, then a reliable
/// agreement with all five.
pub async fn unreliable_agree(t: T) -> Result<(), Failure> {
    let servers = t.servers() as usize;
    let mut clients = Vec::new();
    for iters in 1..50u64 {
        for j in 0..4 {
            let t2 = t.clone();
            clients.push(t.spawn(async move { t2.one(int(100 * iters + j), 1, true).await }));
        }
        t.one(int(iters), 1, true).await?;
    }
    t.set_unreliable(false);
    for client in clients {
        client.await?;
    }
    t.one(int(100), servers, true).await?;
    Ok(())
}

/// Figure 8 over an unreliable network with disconnects instead of crashes, and long
/// reordering of replies after round 200.
pub async fn figure8_unreliable(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    t.one(int(t.random(0..10_000)), 1, true).await?;
    let mut up = servers;
    for iters in 0..1000 {
        if iters == 200 {
            t.set_long_reordering(true);
        }
        let mut leader = None;
        for i in 0..servers {
            if t.propose(i, int(t.random(0..10_000))).is_some() && t.is_connected(i) {
                leader = Some(i);
            }
        }
        t.sleep(figure8_pause(&t)).await;
        if let Some(leader) = leader {
            if t.chance(500) {
                t.disconnect(leader);
                up -= 1;
            }
        }
        if up < 3 {
            let s = t.random_server();
            if !t.is_connected(s) {
                t.connect(s);
                up += 1;
            }
        }
    }
    for i in 0..servers {
        if !t.is_connected(i) {
            t.connect(i);
        }
    }
    t.one(int(t.random(0..10_000)), servers as usize, true)
        .await?;
    Ok(())
}

/// One churn client: proposes random values to whoever leads and remembers those it saw
/// committed, until told to stop.
async fn churn_client(t: T, me: u64, stop: std::rc::Rc<std::cell::Cell<bool>>) -> Vec<Value> {
    let mut values = Vec::new();
    while !stop.get() {
        let x = t.random_value();
        let mut index = None;
        // Try them all, maybe one of them is a leader.
        for i in 0..t.servers() {
            if let Some((i1, _)) = t.propose(i, x.clone()) {
                index = Some(i1);
            }
        }
        match index {
            Some(index) => {
                // Maybe the leader will commit our value, maybe not; don't wait forever.
                for ms in [10, 20, 50, 100, 200] {
                    if let (n, Some(cmd)) = t.n_committed(index) {
                        if n > 0 && cmd == x {
                            values.push(x);
                        }
                        break;
                    }
                    t.sleep(Duration::from_millis(ms)).await;
                }
            }
            None => t.sleep(Duration::from_millis(79 + me * 17)).await,
        }
    }
    values
}

/// Three clients propose while servers are disconnected, crashed and restarted at random for
/// 20 rounds; every value a client saw committed must be in the final log. ReliableChurn and
/// UnreliableChurn differ only in the network they start on.
pub async fn churn(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let clients: Vec<_> = (0..3)
        .map(|me| t.spawn(churn_client(t.clone(), me, stop.clone())))
        .collect();
    for _ in 0..20 {
        if t.chance(200) {
            t.disconnect(t.random_server());
        }
        if t.chance(500) {
            let i = t.random_server();
            if !t.is_running(i) {
                t.start(i);
            }
            t.connect(i);
        }
        if t.chance(200) {
            let i = t.random_server();
            if t.is_running(i) {
                t.crash(i);
            }
        }
        // Infrequent enough that the peers can often keep up, but not so infrequent that
        // everything has settled down from one change to the next.
        t.sleep(ELECTION_TIMEOUT * 7 / 10).await;
    }
    t.sleep(ELECTION_TIMEOUT).await;
    t.set_unreliable(false);
    for i in 0..servers {
        if !t.is_running(i) {
            t.start(i);
        }
        t.connect(i);
    }
    stop.set(true);
    let mut values = Vec::new();
    for client in clients {
        values.extend(client.await);
    }
    t.sleep(ELECTION_TIMEOUT).await;
    let last_index = t.one(t.random_value(), servers as usize, true).await?;
    let mut really = Vec::new();
    for index in 1..=last_index {
        if let Some(v) = t.wait(index, servers as usize, None).await? {
            really.push(v);
        }
    }
    for v in &values {
        ensure(really.contains(v), || format!("didn't find a value: {v:?}"))?;
    }
    Ok(())
}
