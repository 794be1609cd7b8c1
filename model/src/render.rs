//! Human-readable renderings: compact states (the Explorer shows a state's `Debug`), one-line
//! Raft descriptions of steps for counterexample traces (drawn as a diagram in [`crate::diagram`]).

use std::fmt::{self, Write as _};

use raft_impl::kv::KvReply;
use raft_impl::{Entry, HardState, Index, Message, MutationSet, Node, NodeId, Record, Role};
use stateright::Path;

use crate::action::{Action, Kept};
use crate::kv::{self, Clients, Status, KEY};
use crate::network;
use crate::state::{Cmd, Server, State, Write};

impl fmt::Display for Cmd {
    /// A plain proposal as its number; a KV request as `c<client>.<seq>`, the workload saying
    /// which operation that is (the state lists it with the clients), a registration as
    /// `c<client>.reg`; a stamp of log time after an expiry as `@<time>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (time, what) = match *self {
            Cmd::Plain(n) => return write!(f, "{n}"),
            Cmd::Register { client, time } => (time, format!("c{client}.reg")),
            Cmd::Kv {
                client, seq, time, ..
            } => (time, format!("c{client}.{seq}")),
        };
        match time {
            0 => write!(f, "{what}"),
            t => write!(f, "{what}@{t}"),
        }
    }
}

/// The same as `Display`: logs and messages write their commands with `Debug`, and a trace
/// should not read `Plain(7)`.
impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A KV reply as the client sees it.
fn reply(reply: &KvReply) -> String {
    match reply {
        KvReply::Done => "ok".to_string(),
        KvReply::Value(v) => format!("{v:?}"),
        KvReply::Absent => "absent".to_string(),
        KvReply::Registered { id } => format!("session {id}"),
    }
}

/// The current request of a client, e.g. `c0.1 get k`, or `c0.reg register` before its write.
fn request(clients: &Clients, client: u8) -> String {
    let slot = &clients.slots[client as usize];
    match slot.request(client) {
        Cmd::Register { .. } => format!("c{client}.reg register"),
        _ => format!("c{client}.{} {}", slot.seq, kv::op(client, slot.seq)),
    }
}

/// What happened to the clients in a step besides the action itself: replies received and
/// requests that failed (the server crashed or the entry was replaced).
fn client_outcomes(last: &State, next: &State, line: &mut String) {
    let (Some(before), Some(after)) = (&last.clients, &next.clients) else {
        return;
    };
    for (client, (b, a)) in (0..).zip(before.slots.iter().zip(&after.slots)) {
        if a.seq > b.seq {
            let answer = a.reply.as_ref().map(reply).unwrap_or_default();
            let _ = write!(
                line,
                "; c{client} gets {answer} for {}",
                request(before, client)
            );
        } else if a.session != b.session {
            let id = a.session.unwrap_or_default();
            let _ = write!(line, "; c{client} registered session {id}");
        } else if a.status == Status::Unknown && b.status != Status::Unknown {
            let _ = write!(
                line,
                "; c{client}'s session expired: unknown outcome of {}",
                request(before, client)
            );
        } else if matches!(b.status, Status::Waiting { .. }) && a.status == Status::Retrying {
            let _ = write!(line, "; c{client}'s request fails, it will retry");
        }
    }
}

/// A log as `index:term:cmd` entries.
pub fn log(entries: &[Entry<Cmd>]) -> String {
    entries_from(1, entries)
}

/// Entries as `index:term:cmd`, the first at index `first`.
fn entries_from(first: Index, entries: &[Entry<Cmd>]) -> String {
    let items: Vec<_> = entries
        .iter()
        .zip(first..)
        .map(|(e, i)| format!("{i}:{}:{}", e.term, e.command))
        .collect();
    format!("[{}]", items.join(" "))
}

/// A storage write: `term 2 vote s1`, or `log from 2 [2:2:3]` (entries from index 2 replaced).
pub fn record(w: &Record<Cmd>) -> String {
    match w {
        Record::TermVote { term, voted_for } => format!("term {term} vote {}", vote(*voted_for)),
        Record::Log { from, entries } => {
            format!("log from {from} {}", entries_from(*from, entries))
        }
        Record::Snapshot(snapshot) => format!(
            "snapshot {}:{} ({} bytes)",
            snapshot.last_index,
            snapshot.last_term,
            snapshot.data.len()
        ),
    }
}

/// Writes that become durable together, joined by `+`.
pub fn records(ws: &[Record<Cmd>]) -> String {
    let items: Vec<_> = ws.iter().map(record).collect();
    items.join(" + ")
}

/// A pending write: its records, or a write-ahead log's purge of a log prefix.
pub fn write(w: &Write) -> String {
    match w {
        Write::Records(records) => self::records(records),
        Write::Purge { through } => format!("purge of the log up to {through}"),
    }
}

/// A vote as the server voted for, or `-`.
pub fn vote(v: Option<u8>) -> String {
    v.map_or_else(|| "-".to_string(), |v| format!("s{v}"))
}

/// A durable state as `t<term> vote <vote> log [..]`, with `snapshot <index>:<term>` before
/// the log when it has one (the log then holds the entries after it).
pub fn hard(h: &HardState<Cmd>) -> String {
    let snapshot = h
        .snapshot
        .as_ref()
        .map(|s| format!("snapshot {}:{} ", s.last_index, s.last_term))
        .unwrap_or_default();
    format!(
        "t{} vote {} {snapshot}log {}",
        h.current_term,
        vote(h.voted_for),
        entries_from(h.first_index(), &h.log)
    )
}

/// An RPC in the format of `Message`'s `Display`, e.g. `AppendEntries t2 prev 1:1 [2:2:7] commit 1`,
/// with every entry (the alternate form).
pub fn message(msg: &Message<Cmd>) -> String {
    format!("{msg:#}")
}

/// A set of servers as `s0+s2`.
fn servers(mask: u8) -> String {
    let ids: Vec<_> = (0..8)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| format!("s{i}"))
        .collect();
    ids.join("+")
}

/// The messages a step loses because the network is full (see `RaftModel::fit`).
fn losing(lost: u8) -> String {
    if lost == 0 {
        String::new()
    } else {
        format!(" (network full: loses its sends to {})", servers(lost))
    }
}

/// An action on its own, as the Explorer lists the next steps.
pub fn action(action: &Action) -> String {
    match *action {
        Action::Deliver {
            slot,
            from,
            to,
            lost,
        } => format!("deliver #{slot} s{from}→s{to}{}", losing(lost)),
        Action::Drop { slot, from, to } => format!("drop #{slot} s{from}→s{to}"),
        Action::Duplicate { slot, from, to } => format!("duplicate #{slot} s{from}→s{to}"),
        Action::Timeout { id, lost } => format!("s{id} election timeout{}", losing(lost)),
        Action::Replicate {
            leader,
            peer,
            most: 0,
        } => format!("s{leader} AppendEntries to s{peer}"),
        Action::Replicate { leader, peer, most } => {
            format!("s{leader} AppendEntries to s{peer} (at most {most} entries)")
        }
        Action::Propose(id) => format!("client proposes to s{id}"),
        Action::Flush(id) => format!("s{id} flushes a write"),
        Action::Crash { mask, kept } => format!("{} crash{}", servers(mask), keeping(mask, kept)),
        Action::Restart(id) => format!("s{id} restarts"),
        Action::Request { client, server } => format!("c{client} sends its request to s{server}"),
        Action::ClientTimeout(client) => format!("c{client} times out"),
        Action::Expire => "log time passes the session timeout".to_string(),
        Action::ContactExpires(id) => format!("s{id}'s leader contact expires"),
        Action::CheckQuorum(id) => format!("s{id} checks its quorum"),
        Action::Snapshot(id) => format!("s{id} snapshots"),
    }
}

/// A node's role as traces write it; a leader in capitals, so it stands out.
pub fn role(node: &Node<Cmd, MutationSet>) -> &'static str {
    match node.role() {
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Leader => "LEADER",
        Role::PreCandidate => "pre-candidate",
    }
}

/// One step of a trace as a line of Raft: who did what, in which term, what it persisted and
/// sent, and what it became.
pub fn step(last: &State, action: Action, next: &State) -> String {
    let mut line = happened(last, action, next);
    if let Some(id) = action.acting_server() {
        let (before, after) = (&last.servers[id as usize], &next.servers[id as usize]);
        writes(before, after, &mut line);
        sends(last, next, id, &mut line);
        if let (Some(b), Some(a)) = (&before.node, &after.node) {
            progress(id, b, a, &mut line);
        }
    }
    client_outcomes(last, next, &mut line);
    forgotten(last, action, next, &mut line);
    if let Some(panic) = next.panicked.as_deref().filter(|_| last.panicked.is_none()) {
        // The step changed nothing: it ended in the panic.
        let _ = write!(line, "; {panic}");
    }
    line
}

/// The action itself, told with what the state knows about it: the message delivered, the
/// command proposed, the durable state a server restarts from.
fn happened(last: &State, action: Action, next: &State) -> String {
    match action {
        Action::Deliver {
            slot,
            from,
            to,
            lost,
        } => {
            let msg = message_at(last, slot);
            if next.node(to).is_none() {
                format!("s{to} is down, loses {msg} from s{from}")
            } else {
                format!("s{to} receives {msg} from s{from}{}", losing(lost))
            }
        }
        Action::Drop { slot, from, to } => {
            format!("network drops {} s{from}→s{to}", message_at(last, slot))
        }
        Action::Duplicate { slot, from, to } => {
            format!(
                "network duplicates {} s{from}→s{to}",
                message_at(last, slot)
            )
        }
        Action::Propose(id) => format!("client proposes command {} to s{id}", next.proposals),
        Action::Restart(id) => format!(
            "s{id} restarts from durable {}",
            hard(&next.servers[id as usize].durable)
        ),
        Action::Crash { mask, kept } => crash(mask, kept, next),
        Action::Snapshot(id) => match next.node(id).and_then(|n| n.snapshot_state()) {
            Some(s) => format!(
                "s{id} snapshots its state machine at {}:{}",
                s.last_index, s.last_term
            ),
            None => self::action(&action),
        },
        Action::Request { client, server } => sent_request(last, client, server, next),
        Action::ClientTimeout(client) => {
            let what = last.clients.as_deref().map(|c| request(c, client));
            format!("c{client} times out on {}", what.unwrap_or_default())
        }
        other => self::action(&other),
    }
}

/// The message at `slot` of the network, or nothing if there is none.
fn message_at(state: &State, slot: u8) -> String {
    let msg = state.network.get(slot as usize).map(|e| message(&e.msg));
    msg.unwrap_or_default()
}

/// What the disks of crashing servers keep of their pending records (`--storage wal`), as
/// ` (s1's disk keeps 1 pending record)`; empty when they keep none.
fn keeping(mask: u8, kept: Kept) -> String {
    let kept: Vec<String> = (0..8u8)
        .filter(|id| mask & (1 << id) != 0)
        .filter_map(|id| match kept.get(id as usize) {
            Some(0) | None => None,
            Some(1) => Some(format!("s{id}'s disk keeps 1 pending record")),
            Some(n) => Some(format!("s{id}'s disk keeps {n} pending records")),
        })
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!(" ({})", kept.join(", "))
    }
}

/// A crash event, with what the disks kept and the durable state each server restarted from
/// when the restart is part of the same step (on a lossy network).
fn crash(mask: u8, kept: Kept, next: &State) -> String {
    let keeps = keeping(mask, kept);
    let ids = (0..8u8).filter(|id| mask & (1 << id) != 0);
    let restarted: Vec<_> = ids
        .filter_map(|id| {
            let durable = hard(&next.servers.get(id as usize)?.durable);
            next.node(id).map(|_| format!("s{id} from {durable}"))
        })
        .collect();
    if restarted.is_empty() {
        format!("{} crash{keeps}", servers(mask))
    } else {
        format!(
            "{} crash{keeps} and restart: {}",
            servers(mask),
            restarted.join(", ")
        )
    }
}

/// A client's request reaching `server`, and what the server did with it: appended it to its
/// log, or (stale read) answered without the log.
fn sent_request(last: &State, client: u8, server: NodeId, next: &State) -> String {
    let clients = last.clients.as_deref();
    let what = clients.map(|c| request(c, client)).unwrap_or_default();
    let retry = clients.is_some_and(|c| c.slots[client as usize].status != Status::Idle);
    let verb = if retry { "retries" } else { "sends" };
    let mut line = format!("c{client} {verb} {what} to s{server}");
    let end = |s: &State| s.node(server).map_or(0, |n| n.hard_state().last_index());
    if end(next) > end(last) {
        let _ = write!(line, "; s{server} appends it at index {}", end(next));
    } else {
        let _ = write!(line, "; s{server} answers from its local state");
    }
    line
}

/// What the acting server wrote in the step: its new durable state, or (deferred or WAL
/// storage) the records left pending and the sends that wait for them.
fn writes(before: &Server, after: &Server, line: &mut String) {
    if before.durable != after.durable {
        let _ = write!(line, "; persists {}", hard(&after.durable));
    }
    if after.purged > before.purged {
        let _ = write!(
            line,
            "; purges its log up to {} with no snapshot durable to cover it",
            after.purged
        );
    }
    let new = after
        .pending_flushes()
        .saturating_sub(before.pending_flushes());
    let written: Vec<String> = after
        .pending
        .writes()
        .skip(after.pending_flushes() - new)
        .map(write)
        .collect();
    if !written.is_empty() {
        let _ = write!(line, "; writes {} (pending)", written.join(", "));
    }
    let queued = |s: &Server| s.pending.output_count();
    let waiting = queued(after).saturating_sub(queued(before));
    if waiting > 0 {
        let _ = write!(line, "; {waiting} send(s) wait for the pending writes");
    }
}

/// The messages that left the network in this step besides the one its action took: messages
/// ignored for good (replies their receivers ignore, requests whose every refusal their senders
/// ignore), which leave in the step that makes them so (`RaftModel::reduce_stale`; one sent
/// already ignored leaves in its own step, unseen).
fn forgotten(last: &State, action: Action, next: &State, line: &mut String) {
    let mut before = last.network.clone();
    if let Action::Deliver { slot, .. } | Action::Drop { slot, .. } = action {
        if usize::from(slot) < before.len() {
            before.remove(slot.into());
        }
    }
    let gone: Vec<_> = network::sent(&next.network, &before)
        .into_iter()
        .map(|e| format!("{} s{}→s{}", message(&e.msg), e.from, e.to))
        .collect();
    if !gone.is_empty() {
        let _ = write!(
            line,
            "; ignored for good, leaves the network: {}",
            gone.join(", ")
        );
    }
}

/// The messages server `id` put on the network in the step: those with more copies in flight
/// than before.
fn sends(last: &State, next: &State, id: NodeId, line: &mut String) {
    let sent: Vec<_> = network::sent(&last.network, &next.network)
        .into_iter()
        .filter(|e| e.from == id)
        .map(|e| format!("{} to s{}", message(&e.msg), e.to))
        .collect();
    if !sent.is_empty() {
        let _ = write!(line, "; sends {}", sent.join(", "));
    }
}

/// What server `id`'s node went from `before` to `after`: the indices it applied, and its new
/// role, term or commit index.
fn progress(
    id: NodeId,
    before: &Node<Cmd, MutationSet>,
    after: &Node<Cmd, MutationSet>,
    line: &mut String,
) {
    // Indices only: the state keeps no record of the command applied, and the same step may
    // have replaced the entry since (commit-beyond-last-new does).
    let installed = after.hard_state().snapshot_index();
    let mut from = before.last_applied() + 1;
    if installed >= from {
        let _ = write!(line, "; installs the snapshot up to {installed}");
        from = installed + 1;
    }
    let applied = from..=after.last_applied();
    if applied.start() == applied.end() {
        let _ = write!(line, "; applies index {}", applied.start());
    } else if !applied.is_empty() {
        let (first, last) = applied.into_inner();
        let _ = write!(line, "; applies indices {first} to {last}");
    }
    let standing = |n: &Node<Cmd, MutationSet>| (n.role(), n.current_term(), n.commit_index());
    if standing(before) != standing(after) {
        let _ = write!(
            line,
            " ⇒ s{id} {} t{} commit {}",
            role(after),
            after.current_term(),
            after.commit_index()
        );
    }
}

/// A path as numbered trace lines, one per step.
pub fn trace(path: &Path<State, Action>) -> Vec<String> {
    let steps = path.clone().into_vec();
    steps
        .windows(2)
        .filter_map(|w| {
            let (last, action) = (&w[0].0, w[0].1?);
            Some(step(last, action, &w[1].0))
        })
        .collect()
}

impl fmt::Debug for State {
    /// Compact and readable: one line per server (running state, durable state, pending
    /// persists), then the network and the ghost history.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (id, server) in self.servers.iter().enumerate() {
            match &server.node {
                Some(n) => write!(
                    f,
                    "s{id} {:<9} {} commit {}",
                    role(n),
                    hard(n.hard_state()),
                    n.commit_index()
                )?,
                None => write!(f, "s{id} CRASHED")?,
            }
            write!(f, " | durable {}", hard(&server.durable))?;
            let pending = &server.pending;
            if !pending.is_empty() {
                write!(
                    f,
                    " | pending {} write(s), {} send(s)",
                    pending.write_count(),
                    pending.output_count()
                )?;
            }
            if let Some(store) = &server.kv {
                write!(f, " | kv {KEY}={:?}", store.get(KEY))?;
            }
            writeln!(f)?;
        }
        if let Some(clients) = &self.clients {
            clients_debug(clients, f)?;
        }
        writeln!(f, "network:")?;
        for e in &self.network {
            writeln!(f, "  s{}→s{} {}", e.from, e.to, message(&e.msg))?;
        }
        let leaders: Vec<_> = (0..self.ghost.leaders.len())
            .filter(|t| self.ghost.leaders[*t] != 0)
            .map(|t| format!("t{t}:{}", servers(self.ghost.leaders[t])))
            .collect();
        let committed: Vec<_> = self
            .ghost
            .committed
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}:{}:{}", i + 1, c.term, c.command))
            .collect();
        write!(
            f,
            "history: leaders [{}] committed [{}] crashes {} proposals {}",
            leaders.join(" "),
            committed.join(" "),
            self.crashes,
            self.proposals
        )?;
        match &self.panicked {
            Some(panic) => write!(f, "\nthe last step, taken from this state, {panic}"),
            None => Ok(()),
        }
    }
}

/// One line per client: its workload, progress and current request, then the verdict on the
/// history.
fn clients_debug(clients: &Clients, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(f, "clients:")?;
    for (client, slot) in (0..).zip(&clients.slots) {
        let ops: Vec<_> = kv::workload(client)
            .iter()
            .enumerate()
            .map(|(seq, op)| format!("c{client}.{seq} {op}"))
            .collect();
        write!(f, "  c{client} [{}]", ops.join(", "))?;
        if let Some(r) = &slot.reply {
            write!(f, " last reply {}", reply(r))?;
        }
        if let Some(id) = slot.session {
            write!(f, " session {id}")?;
        }
        match slot.status {
            _ if slot.done() => writeln!(f, " done")?,
            Status::Unknown => writeln!(f, " c{client}.{}: unknown outcome, stopped", slot.seq)?,
            Status::Idle => writeln!(f, " next c{client}.{}", slot.seq)?,
            Status::Retrying => writeln!(f, " c{client}.{} to retry", slot.seq)?,
            Status::Waiting { server, index } => writeln!(
                f,
                " c{client}.{} waits on s{server} index {index}",
                slot.seq
            )?,
        }
    }
    let verdict = if clients.linearizable() {
        "linearizable"
    } else {
        "NOT linearizable"
    };
    write!(f, "  history {verdict}, timeouts {}", clients.timeouts)?;
    match clients.clock {
        0 => writeln!(f),
        t => writeln!(f, ", log time {t}"),
    }
}
