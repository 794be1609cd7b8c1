//! The network as a canonically ordered vector of envelopes.
//!
//! Unordered: the vector is sorted, so it is a multiset with a single representation and two
//! states that differ only in the order messages were sent hash alike. Ordered: messages of one
//! channel (sender, receiver) stay in send order, channels sorted by (sender, receiver), and only
//! a channel's head can be delivered.

use raft_impl::Envelope;

use crate::state::Cmd;

fn channel(e: &Envelope<Cmd>) -> (u8, u8) {
    (e.from, e.to)
}

/// Adds `env` in its canonical place.
pub fn insert(network: &mut Vec<Envelope<Cmd>>, env: Envelope<Cmd>, ordered: bool) {
    let at = if ordered {
        let ch = channel(&env);
        network.partition_point(|e| channel(e) <= ch)
    } else {
        network.partition_point(|e| e <= &env)
    };
    network.insert(at, env);
}

/// Slots whose message can be delivered next. Identical copies yield one slot: delivering any
/// of them leads to the same state.
pub fn deliverable(network: &[Envelope<Cmd>], ordered: bool) -> impl Iterator<Item = usize> + '_ {
    (0..network.len()).filter(move |&i| {
        i == 0
            || if ordered {
                channel(&network[i - 1]) != channel(&network[i])
            } else {
                network[i - 1] != network[i]
            }
    })
}

/// Slots whose message can be dropped or duplicated, one per group of identical neighbours.
pub fn distinct(network: &[Envelope<Cmd>]) -> impl Iterator<Item = usize> + '_ {
    (0..network.len()).filter(move |&i| i == 0 || network[i - 1] != network[i])
}

/// The messages put on the network between `before` and `after`: one item per copy more in
/// `after` than in `before`, in network order. The network keeps no send times, so a step's
/// sends are what this difference shows (the trace's "sends", the diagram's arrow tails).
pub fn sent<'a>(before: &[Envelope<Cmd>], after: &'a [Envelope<Cmd>]) -> Vec<&'a Envelope<Cmd>> {
    let copies = |net: &[Envelope<Cmd>], e: &Envelope<Cmd>| net.iter().filter(|x| *x == e).count();
    distinct(after)
        .map(|slot| &after[slot])
        .flat_map(|e| {
            let new = copies(after, e).saturating_sub(copies(before, e));
            std::iter::repeat_n(e, new)
        })
        .collect()
}

/// Puts a copy of the message at `slot` next to it (the canonical place in both kinds).
pub fn duplicate(network: &mut Vec<Envelope<Cmd>>, slot: usize) {
    let copy = network[slot].clone();
    network.insert(slot + 1, copy);
}

/// Restores the canonical order after server ids were renamed.
pub fn canonicalize(network: &mut [Envelope<Cmd>], ordered: bool) {
    if ordered {
        network.sort_by_key(channel);
    } else {
        network.sort_unstable();
    }
}
