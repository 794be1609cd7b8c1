//! 3A: leader election (`TestInitialElection3A`, `TestReElection3A`, `TestManyElections3A`).

use raft_impl::NodeId;

use super::{ensure, T};
use crate::failure::Failure;
use crate::tester::ELECTION_TIMEOUT;

/// One leader is elected; all agree on a term ≥ 1; with no failures, still one leader later.
pub async fn initial_election(t: T) -> Result<(), Failure> {
    t.check_one_leader().await?;
    // Let followers hear the leader before comparing terms.
    t.sleep(std::time::Duration::from_millis(50)).await;
    let term1 = t.check_terms()?;
    ensure(term1 >= 1, || {
        format!("term is {term1}, but should be at least 1")
    })?;
    // The Go test only warns if the term moves without failures; so does this port (the
    // term may legitimately move if a heartbeat is delayed past a timeout).
    t.sleep(2 * ELECTION_TIMEOUT).await;
    t.check_terms()?;
    t.check_one_leader().await?;
    Ok(())
}

/// A new leader after the old one is cut off; none without a majority; one again after healing.
pub async fn re_election(t: T) -> Result<(), Failure> {
    let servers = t.servers();
    let leader1 = t.check_one_leader().await?;
    // If the leader disconnects, a new one should be elected.
    t.disconnect(leader1);
    t.check_one_leader().await?;
    // The old leader rejoining must not disturb the new leader.
    t.connect(leader1);
    let leader2 = t.check_one_leader().await?;
    // Without a quorum no new leader may be elected.
    t.disconnect(leader2);
    t.disconnect((leader2 + 1) % servers);
    t.sleep(2 * ELECTION_TIMEOUT).await;
    t.check_no_leader()?;
    // With a quorum, elect a leader.
    t.connect((leader2 + 1) % servers);
    t.check_one_leader().await?;
    // Re-joining the last node must not prevent a leader from existing.
    t.connect(leader2);
    t.check_one_leader().await?;
    Ok(())
}

/// Ten rounds of cutting off three random servers of seven: always one leader.
pub async fn many_elections(t: T) -> Result<(), Failure> {
    t.check_one_leader().await?;
    for _ in 1..10 {
        let cut: [NodeId; 3] = [t.random_server(), t.random_server(), t.random_server()];
        cut.iter().for_each(|i| t.disconnect(*i));
        // Either the current leader is still alive, or the remaining four elect a new one.
        t.check_one_leader().await?;
        cut.iter().for_each(|i| t.connect(*i));
    }
    t.check_one_leader().await?;
    Ok(())
}
