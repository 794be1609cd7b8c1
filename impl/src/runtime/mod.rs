//! The real runtime: the core as a multi-process KV service over TCP, one server per process.
//!
//! Std threads and `std::net` only. Per server process:
//! - the core thread ([`server`]) owns the [`Node`](crate::Node) and the
//!   [`KvStore`](crate::kv::KvStore), runs the randomised election timer and the heartbeat, and
//!   holds back every send and client reply until the records emitted before it are durable;
//! - the write-ahead thread (`durability`) appends the records the core emitted to the
//!   server's [`LogStore`](crate::storage::LogStore) and syncs them, one sync for everything
//!   queued, while the core goes on handling events;
//! - one link thread per peer (`transport`) writes that peer's messages, reconnecting after
//!   the peer restarts, and an InstallSnapshot in chunks (`chunks`);
//! - an accept thread per listening socket (peers, clients) and a thread per inbound
//!   connection, which decode frames ([`frame`]) and hand them to the core.
//!
//! Clients use a [`Clerk`](clerk::Clerk); what travels is in [`protocol`].

pub mod auth;
mod chunks;
pub mod clerk;
#[cfg(feature = "failpoints")]
pub mod crash_hook;
mod durability;
pub mod frame;
pub mod protocol;
pub mod server;
mod transport;

use std::fmt;
use std::io;
use std::sync::mpsc::Sender;
use std::thread;

use crate::kv::KvCommand;
use crate::message::Message;
use crate::types::NodeId;

use protocol::{ClientReply, ClientRequest};

/// An input to a server's core thread ([`server`]), from the threads that read its sockets
/// (`transport` for peers, `server` for clients). Kept here, beside both, so that neither
/// module imports the other for it.
pub(crate) enum Event {
    /// A message from a peer.
    Peer {
        from: NodeId,
        msg: Message<KvCommand>,
    },
    /// A client's request; the answer goes back on `reply`.
    Client {
        request: ClientRequest,
        reply: Sender<ClientReply>,
    },
    /// The write-ahead thread made more records durable (or failed): held outputs may go.
    Durable,
}

/// One line on standard error, prefixed with the server it concerns: a process's log.
fn log(id: NodeId, what: fmt::Arguments<'_>) {
    eprintln!("raftd {id}: {what}");
}

/// Starts a named thread (names show in debuggers and panics), detached: runtime threads live
/// as long as the process.
fn spawn_named(name: String, f: impl FnOnce() + Send + 'static) -> io::Result<()> {
    thread::Builder::new().name(name).spawn(f).map(drop)
}
