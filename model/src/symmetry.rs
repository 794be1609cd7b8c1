//! Symmetry reduction over server ids: Raft treats every id alike, so two states that differ
//! only by a renaming of the servers have the same futures up to that renaming, and the
//! checker needs to explore only one of them.
//!
//! The representative sorts servers by an id-free key (ties keep their current order). That is
//! not a perfect canonical form, but it is sound: the representative is always a renaming of the
//! state, so nothing reachable is lost, only some symmetric duplicates are kept.

use std::cmp::Ordering;
use std::sync::Arc;

use raft_impl::{Envelope, HardState, NodeId};

use crate::bounds::SERVER_LIMIT;
use crate::kv::{Clients, Status};
use crate::network;
use crate::state::{Cmd, Ghost, Pending, Server, State};

/// Compares two servers on everything that does not mention a server id.
fn compare(a: &Server, b: &Server) -> Ordering {
    let volatile = |s: &Server| {
        s.node.as_ref().map(|n| {
            (
                n.role(),
                n.current_term(),
                n.voted_for().is_some(),
                n.commit_index(),
            )
        })
    };
    let durable = |s: &Server| (s.durable.current_term, s.durable.voted_for.is_some());
    volatile(a)
        .cmp(&volatile(b))
        .then_with(|| durable(a).cmp(&durable(b)))
        .then_with(|| a.durable.log.cmp(&b.durable.log))
        .then_with(|| {
            let (la, lb) = (a.node.as_ref(), b.node.as_ref());
            la.map(|n| n.log()).cmp(&lb.map(|n| n.log()))
        })
        .then_with(|| a.pending.len().cmp(&b.pending.len()))
}

fn rename_hard(hard: &HardState<Cmd>, rename: &[NodeId]) -> HardState<Cmd> {
    HardState {
        voted_for: hard.voted_for.map(|v| rename[v as usize]),
        ..hard.clone()
    }
}

/// A shared durable state under a renaming, still shared when the renaming does not touch it.
fn rename_durable(hard: &Arc<HardState<Cmd>>, rename: &[NodeId]) -> Arc<HardState<Cmd>> {
    match hard.voted_for {
        Some(v) if rename[v as usize] != v => Arc::new(rename_hard(hard, rename)),
        _ => Arc::clone(hard),
    }
}

fn rename_envelope(env: &Envelope<Cmd>, rename: &[NodeId]) -> Envelope<Cmd> {
    Envelope {
        from: rename[env.from as usize],
        to: rename[env.to as usize],
        msg: env.msg.clone(),
    }
}

fn rename_mask(mask: u8, rename: &[NodeId]) -> u8 {
    (0..rename.len())
        .filter(|old| mask & (1 << old) != 0)
        .fold(0, |acc, old| acc | 1 << rename[old])
}

/// Client slots under a renaming of the servers: only the server a client waits on names one.
/// Client ids stay as they are, since the linearizability history cannot be renamed.
fn rename_clients(clients: &Arc<Clients>, rename: &[NodeId]) -> Arc<Clients> {
    let waits_on_renamed = clients.slots.iter().any(
        |c| matches!(c.status, Status::Waiting { server, .. } if rename[server as usize] != server),
    );
    if !waits_on_renamed {
        return Arc::clone(clients);
    }
    let mut renamed = Clients::clone(clients);
    for slot in &mut renamed.slots {
        if let Status::Waiting { server, .. } = &mut slot.status {
            *server = rename[*server as usize];
        }
    }
    Arc::new(renamed)
}

impl State {
    /// This state with server `i` renamed `rename[i]`.
    pub fn renamed(&self, rename: &[NodeId], ordered: bool) -> State {
        let mut from = [0usize; SERVER_LIMIT as usize];
        for (old, &new) in rename.iter().enumerate() {
            from[new as usize] = old;
        }
        let servers = from[..self.servers.len()].iter().map(|&old| {
            let server = &self.servers[old];
            Arc::new(Server {
                durable: rename_durable(&server.durable, rename),
                node: server.node.as_ref().map(|n| n.relabeled(rename)),
                pending: server
                    .pending
                    .iter()
                    .map(|p| match p {
                        Pending::Persist(h) => Pending::Persist(rename_hard(h, rename)),
                        Pending::Send(e) => Pending::Send(rename_envelope(e, rename)),
                    })
                    .collect(),
                kv: server.kv.clone(),
            })
        });
        let servers = servers.collect();
        let mut network: Vec<_> = self
            .network
            .iter()
            .map(|e| rename_envelope(e, rename))
            .collect();
        network::canonicalize(&mut network, ordered);
        let mut leaders = self.ghost.leaders;
        for mask in &mut leaders {
            *mask = rename_mask(*mask, rename);
        }
        State {
            servers,
            network,
            clients: self.clients.as_ref().map(|c| rename_clients(c, rename)),
            ghost: Ghost {
                leaders,
                restarted_since_commit: rename_mask(self.ghost.restarted_since_commit, rename),
                ..self.ghost.clone()
            },
            ..*self
        }
    }
}

/// The representative of `state` for a network of the given kind.
fn representative(state: &State, ordered: bool) -> State {
    let mut order: Vec<usize> = (0..state.servers.len()).collect();
    order.sort_by(|&a, &b| compare(&state.servers[a], &state.servers[b]));
    if order.iter().enumerate().all(|(new, &old)| new == old) {
        return state.clone();
    }
    let mut rename = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        rename[old] = new as NodeId;
    }
    state.renamed(&rename, ordered)
}

/// The representative function for `stateright::CheckerBuilder::symmetry_fn`, which takes a
/// plain function: one per network kind, since the canonical order of messages depends on it.
pub fn representative_fn(ordered: bool) -> fn(&State) -> State {
    if ordered {
        |s| representative(s, true)
    } else {
        |s| representative(s, false)
    }
}
