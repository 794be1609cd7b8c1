//! Bounded AppendEntries and flow control (the leader's `Progress`, as etcd raft keeps it): a
//! batch carries at most the configured entries and bytes, and at least one entry; a follower
//! whose match is unknown is probed with one AppendEntries per heartbeat or reply; one whose
//! match is known is streamed each batch once, with a bounded window in flight; a conflict
//! sends it back to probing.

mod support;

use raft_impl::codec;
use raft_impl::node::Flow;
use raft_impl::{Config, Effect, Entry, HardState, Node};
use support::*;

/// Leader 0 of three in term 1 with `config`'s flow bounds, holding `commands`, its initial
/// empty AppendEntries already sent (both followers probed).
fn leader(config: Config, commands: &[Cmd]) -> Node<Cmd> {
    let mut leader = Node::new(config, HardState::default());
    elect(&mut leader);
    for &command in commands {
        leader.propose(command).unwrap();
    }
    leader
}

fn sends_to(effects: &[Effect<Cmd>], peer: u8) -> Vec<&raft_impl::Message<Cmd>> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { to, msg } if *to == peer => Some(msg),
            _ => None,
        })
        .collect()
}

#[test]
fn a_batch_carries_at_most_the_configured_entries() {
    let config = Config::new(0, 3).with_flow(usize::MAX, 2, 4);
    let mut leader = leader(config, &[10, 11, 12]);
    // Follower 1 matches nothing yet: the probe from index 1 carries two of the three.
    leader.handle(1, conflict(1, None, 0, 0));
    assert_eq!(
        leader.replicate_to(1),
        vec![send(1, append(1, 0, 0, &[(1, 10), (1, 11)], 0))]
    );
}

#[test]
fn a_batch_stops_before_the_entry_that_would_pass_the_byte_bound() {
    let entry = |command| codec::encoded_len(&Entry { term: 1, command });
    // Room for 10 and 11 but not 12 (each encodes in the same few bytes).
    let bound = entry(10) + entry(11) + entry(12) - 1;
    let config = Config::new(0, 3).with_flow(bound, usize::MAX, 4);
    let mut leader = leader(config, &[10, 11, 12]);
    leader.handle(1, conflict(1, None, 0, 0));
    assert_eq!(
        leader.replicate_to(1),
        vec![send(1, append(1, 0, 0, &[(1, 10), (1, 11)], 0))]
    );
}

/// An entry larger than the byte bound (an older build's, say) still goes, alone, so that a
/// log holding it makes progress.
#[test]
fn an_entry_above_the_byte_bound_goes_alone() {
    let config = Config::new(0, 3).with_flow(1, usize::MAX, 4);
    let mut leader = leader(config, &[u64::MAX, 11]);
    leader.handle(1, conflict(1, None, 0, 0));
    assert_eq!(
        leader.replicate_to(1),
        vec![send(1, append(1, 0, 0, &[(1, u64::MAX)], 0))]
    );
}

/// A probe: one AppendEntries out at a time. New entries are not sent to a follower whose
/// probe is unanswered (a follower that is down costs nothing per proposal); the heartbeat
/// sends the next probe.
#[test]
fn a_probed_follower_gets_one_append_per_heartbeat() {
    let mut leader = leader(Config::new(0, 3), &[]);
    assert_eq!(leader.progress(2).flow(), Flow::Probe);
    assert!(leader.progress(2).probe_sent());
    for c in 10..20 {
        leader.propose(c).unwrap();
        assert!(sends_to(&leader.replicate(), 2).is_empty());
    }
    // The heartbeat probes again, from the next index (1: the log was empty at election).
    let heartbeat = leader.broadcast_append();
    let tail: Vec<_> = (10..20).map(|c| (1, c)).collect();
    assert_eq!(sends_to(&heartbeat, 2), vec![&append(1, 0, 0, &tail, 0)]);
    assert!(sends_to(&leader.replicate(), 2).is_empty());
}

/// A success tells where the follower matches: it leaves probing and the leader streams
/// batches from just past the match, advancing its next index as each leaves, until its window
/// is full; an acknowledgement frees the slots of the batches it covers.
#[test]
fn a_matched_follower_is_streamed_within_the_window() {
    let config = Config::new(0, 3).with_flow(usize::MAX, 1, 2);
    let mut leader = leader(config, &[]);
    // The follower matched the empty initial append: streaming, nothing to send.
    assert_eq!(leader.handle(1, success(1, 0)), vec![]);
    assert_eq!(leader.progress(1).flow(), Flow::Replicate);
    for c in [10, 11, 12] {
        leader.propose(c).unwrap();
    }
    let first = leader.replicate();
    assert_eq!(sends_to(&first, 1), vec![&append(1, 0, 0, &[(1, 10)], 0)]);
    let second = leader.replicate();
    assert_eq!(sends_to(&second, 1), vec![&append(1, 1, 1, &[(1, 11)], 0)]);
    // Two batches in flight fill the window: nothing more until an acknowledgement.
    assert!(sends_to(&leader.replicate(), 1).is_empty());
    assert_eq!(
        leader.progress(1).inflight().collect::<Vec<_>>(),
        vec![1, 2]
    );
    // The first is acknowledged (and commits, with the leader's copy): its slot is free, and
    // the reply itself sends the next batch.
    let reply = leader.handle(1, success(1, 1));
    assert_eq!(sends_to(&reply, 1), vec![&append(1, 2, 1, &[(1, 12)], 1)]);
    assert_eq!(
        leader.progress(1).inflight().collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(leader.next_index(1), 4);
}

/// With its window full, the heartbeat still goes, carrying no entries, from the next index:
/// a follower that lost a batch lacks the entry before it and refuses, which sends it back to
/// probing from where its log ends.
#[test]
fn a_lost_batch_shows_as_a_conflict_and_the_follower_is_probed_again() {
    let config = Config::new(0, 3).with_flow(usize::MAX, 1, 1);
    let mut leader = leader(config, &[]);
    leader.handle(1, success(1, 0));
    leader.propose(10).unwrap();
    leader.propose(11).unwrap();
    assert_eq!(
        sends_to(&leader.replicate(), 1),
        vec![&append(1, 0, 0, &[(1, 10)], 0)]
    );
    // That batch is lost. The window of one is full: the heartbeat carries nothing.
    let heartbeat = leader.replicate_to(1);
    assert_eq!(heartbeat, vec![send(1, append(1, 1, 1, &[], 0))]);
    // The follower's log is empty: it refuses, and the leader probes from index 1 at once.
    let reply = leader.handle(1, conflict(1, None, 0, 0));
    assert_eq!(leader.progress(1).flow(), Flow::Probe);
    assert_eq!(reply, vec![send(1, append(1, 0, 0, &[(1, 10)], 0))]);
}

/// Bytes to a follower that is down are bounded per heartbeat: many proposals between two
/// heartbeats send it nothing, and each heartbeat at most one batch of the configured size.
#[test]
fn a_down_follower_costs_at_most_one_batch_per_heartbeat() {
    let config = Config::new(0, 3).with_flow(usize::MAX, 8, 4);
    let mut leader = leader(config, &[]);
    // Follower 1 answers; follower 2 is down.
    leader.handle(1, success(1, 0));
    for round in 0..5u64 {
        let mut to_down = 0;
        for c in 0..100 {
            leader.propose(round * 100 + c).unwrap();
            to_down += sends_to(&leader.replicate(), 2).len();
        }
        assert_eq!(to_down, 0);
        let heartbeat = leader.broadcast_append();
        let probes = sends_to(&heartbeat, 2);
        assert_eq!(probes.len(), 1);
        match probes[0] {
            raft_impl::Message::AppendEntries(a) => assert!(a.entries.len() <= 8),
            other => panic!("{other:?}"),
        }
    }
}

/// Flow control switched off (`max_inflight` 0, the model checker's default): a success leaves
/// the follower a probe and sends nothing, and the next index moves only by replies.
#[test]
fn without_a_window_every_follower_stays_a_probe() {
    let config = Config::new(0, 3).with_flow(usize::MAX, usize::MAX, 0);
    let mut leader = leader(config, &[10, 11]);
    let reply = leader.handle(1, success(1, 1));
    assert_eq!(leader.progress(1).flow(), Flow::Probe);
    assert!(sends_to(&reply, 1).is_empty());
    assert_eq!(leader.next_index(1), 2);
    assert_eq!(
        leader.replicate_to(1),
        vec![send(1, append(1, 1, 1, &[(1, 11)], 1))]
    );
    assert_eq!(leader.next_index(1), 2);
}
