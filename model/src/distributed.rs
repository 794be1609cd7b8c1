//! `raftcheck check --distributed`: an exhaustive breadth-first search spread over worker
//! threads, processes and machines, on timely dataflow.
//!
//! Each worker owns the states whose fingerprint is its index modulo the number of workers,
//! and keeps their fingerprints (its part of the visited set). The search runs level by level,
//! one timely timestamp per level: every worker takes the states of its part of the
//! current level, evaluates every property on each, and sends each successor (its fingerprint
//! and its path) through an `Exchange` on the fingerprint to the successor's owner, which
//! keeps it for the next level only if the fingerprint is new. A state is therefore expanded
//! once in the whole run, by its owner, whatever the number of workers. When timely's progress
//! tracking says that every successor of the level has arrived, every worker has the same
//! summary of the level (a `broadcast`): states expanded, discoveries, counts. All workers
//! then take the same decision, stop or go on, from the same facts.
//!
//! A state travels with its path: the index of its initial state, then the index of each
//! action in the list of the state before it (as Stateright's own BFS and the Explorer name
//! it). Between workers of one process timely moves the message without serialising it, so
//! the state itself arrives. Between processes only the path travels, since a state has no
//! serialisation (its running `Node` has none), and the owner rebuilds the state by replaying
//! the path: one step per level of depth for each unique state that crossed processes. The
//! path of a violating state is its counterexample, so no parent chain has to be followed
//! across workers at the end.
//!
//! Properties: an `always` property is evaluated on every state, a `sometimes` property on
//! every state until it is reached, both as Stateright does. The model has no `eventually`
//! property; a model with one is refused ([`DistributedError::Eventually`]), since checking it
//! needs the per-path bits this search does not keep. Discoveries of one level are ordered by
//! worker index, so the reported counterexample is the first worker's of the first level with
//! one: a shortest counterexample, as with a one-thread BFS.
//!
//! Symmetry: a state's fingerprint is the hash of its canonical renaming
//! ([`crate::symmetry`]), so with symmetry on, a state whose renaming was visited is not kept.
//! Which concrete state of a class is kept first depends on the order successors arrive in,
//! and that representative is not a canonical form (ties keep their order), so the count with
//! symmetry on may differ between runs with different numbers of workers; with symmetry off it
//! is exactly the count of any exhaustive BFS (`tests/distributed.rs` compares them).
//!
//! Every process must run the same build with the same flags: owners are chosen by a
//! fingerprint that only one build computes alike. The first level's summaries carry a hash of
//! each process's bounds and initial states, and processes that disagree stop with
//! [`DistributedError::Mismatch`] before any state is expanded.

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path as FilePath, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use stateright::{Expectation, Model, Path, Property};
use timely::communication::allocator::zero_copy::initialize::initialize_networking_from_sockets;
use timely::communication::allocator::{AllocatorBuilder, ProcessBuilder};
use timely::communication::{Config as Communication, Hooks};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Broadcast;
use timely::dataflow::operators::{Input, Inspect, Probe};
use timely::dataflow::{InputHandle, ProbeHandle};
use timely::execute::execute_from;
use timely::WorkerConfig;

use crate::action::Action;
use crate::check::{self, CheckOptions, CheckReport, Until};
use crate::model::RaftModel;
use crate::sketch::fingerprint;
use crate::state::State;

/// The first port of the processes on this machine when no host file is given (timely's own
/// default).
pub const FIRST_PORT: u16 = 2101;

/// The command-line flags of a distributed run (`raftcheck check --distributed`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ClusterArgs {
    /// Breadth-first search distributed over worker threads, processes and machines (timely
    /// dataflow): each worker owns a hash partition of the visited states. Every process of a
    /// run is started with the same flags but its own --process.
    #[arg(long)]
    pub distributed: bool,
    /// With --distributed: worker threads in this process.
    #[arg(long, requires = "distributed", value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
    /// With --distributed: processes in the run (default: the lines of --hostfile, or 1).
    #[arg(long, requires = "distributed", value_parser = clap::value_parser!(u16).range(1..))]
    pub processes: Option<u16>,
    /// With --distributed: this process's index, 0 to processes - 1.
    #[arg(long, requires = "distributed")]
    pub process: Option<u16>,
    /// With --distributed: a file with one `host:port` per line, process 0 first (blank lines
    /// and lines starting with # are skipped). Without it, the processes listen on
    /// 127.0.0.1, ports 2101, 2102, ...
    #[arg(long, requires = "distributed", value_name = "FILE")]
    pub hostfile: Option<PathBuf>,
}

/// Where the workers of a distributed run are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// Worker threads in each process.
    pub workers: usize,
    /// This process's index in `addresses`.
    pub process: usize,
    /// Every process's address, process 0 first; a single process needs none.
    pub addresses: Vec<String>,
}

impl Cluster {
    /// One process with `workers` threads.
    pub fn local(workers: usize) -> Cluster {
        Cluster {
            workers,
            process: 0,
            addresses: Vec::new(),
        }
    }

    /// Processes in the run.
    pub fn processes(&self) -> usize {
        self.addresses.len().max(1)
    }

    /// Worker threads in the whole run.
    pub fn peers(&self) -> usize {
        self.workers * self.processes()
    }

    /// The search as a run prints it.
    pub fn describe(&self) -> String {
        format!(
            "bfs, distributed over {} process(es) of {} worker thread(s) each (this is process {})",
            self.processes(),
            self.workers,
            self.process
        )
    }

    /// The allocators of this process's workers, and what must live as long as they run (the
    /// network threads). Between processes, the connections are made here rather than by
    /// timely's `Config::Cluster`, which reports its progress on standard output, where the
    /// JSON document goes; the handshake is timely's own (each process connects to those
    /// before it and sends its index).
    fn allocators(&self) -> std::io::Result<(Vec<AllocatorBuilder>, Box<dyn Any + Send>)> {
        if self.addresses.len() <= 1 {
            let (builders, guard) = Communication::Process(self.workers)
                .try_build()
                .map_err(std::io::Error::other)?;
            return Ok((builders, guard));
        }
        let hooks = Hooks::default();
        let local = ProcessBuilder::new_typed_vector(self.workers, hooks.refill.clone(), None);
        let sockets = connect(&self.addresses, self.process)?;
        let (builders, guard) =
            initialize_networking_from_sockets(local, sockets, self.process, self.workers, hooks)?;
        let builders = builders.into_iter().map(AllocatorBuilder::Tcp).collect();
        Ok((builders, Box::new(guard)))
    }
}

/// A connection to every other process, `None` at `me`: to each process before it, it
/// connects (retrying until that one listens) and sends its index; from each after it, it
/// accepts a connection and reads that one's index.
fn connect(addresses: &[String], me: usize) -> std::io::Result<Vec<Option<TcpStream>>> {
    let listener = TcpListener::bind(&addresses[me])?;
    let mut sockets: Vec<Option<TcpStream>> = (0..addresses.len()).map(|_| None).collect();
    for (index, address) in addresses.iter().enumerate().take(me) {
        let mut waited = false;
        let mut stream = loop {
            match TcpStream::connect(address) {
                Ok(stream) => break stream,
                Err(e) => {
                    if !waited {
                        eprintln!("waiting for process {index} at {address} ({e})");
                        waited = true;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        };
        stream.set_nodelay(true)?;
        stream.write_all(&(me as u64).to_be_bytes())?;
        sockets[index] = Some(stream);
    }
    for _ in me + 1..addresses.len() {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut index = [0; 8];
        stream.read_exact(&mut index)?;
        let index = usize::try_from(u64::from_be_bytes(index)).unwrap_or(usize::MAX);
        match sockets.get_mut(index) {
            Some(slot @ None) if index > me => *slot = Some(stream),
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "a connection to {} named itself process {index}",
                        addresses[me]
                    ),
                ))
            }
        }
    }
    Ok(sockets)
}

impl ClusterArgs {
    /// The cluster these flags describe, or `None` without `--distributed`.
    pub fn cluster(&self) -> Result<Option<Cluster>, DistributedError> {
        if !self.distributed {
            return Ok(None);
        }
        let workers = usize::from(self.workers.unwrap_or(1));
        let process = usize::from(self.process.unwrap_or(0));
        let addresses = match (&self.hostfile, self.processes) {
            (Some(file), processes) => {
                let hosts = read_hostfile(file)?;
                if let Some(n) = processes.filter(|&n| usize::from(n) != hosts.len()) {
                    return Err(DistributedError::HostfileLength {
                        file: file.clone(),
                        lines: hosts.len(),
                        processes: n.into(),
                    });
                }
                hosts
            }
            (None, Some(n)) if n > 1 => (0..n)
                .map(|i| format!("127.0.0.1:{}", u32::from(FIRST_PORT) + u32::from(i)))
                .collect(),
            (None, _) => Vec::new(),
        };
        let cluster = Cluster {
            workers,
            process,
            addresses,
        };
        if process >= cluster.processes() {
            return Err(DistributedError::ProcessIndex {
                process,
                processes: cluster.processes(),
            });
        }
        Ok(Some(cluster))
    }
}

/// The addresses in a host file: one per line, blank lines and `#` comments skipped.
fn read_hostfile(file: &FilePath) -> Result<Vec<String>, DistributedError> {
    let text = std::fs::read_to_string(file).map_err(|e| DistributedError::Hostfile {
        file: file.to_owned(),
        error: e.to_string(),
    })?;
    let hosts: Vec<String> = (text.lines().map(str::trim))
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    if hosts.is_empty() {
        return Err(DistributedError::Hostfile {
            file: file.to_owned(),
            error: "no address in it".to_string(),
        });
    }
    Ok(hosts)
}

/// Why a distributed run could not start or finish.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DistributedError {
    #[error("--hostfile {}: {error}", file.display())]
    Hostfile { file: PathBuf, error: String },
    #[error("--hostfile {} lists {lines} processes, but --processes is {processes}", file.display())]
    HostfileLength {
        file: PathBuf,
        lines: usize,
        processes: usize,
    },
    #[error("--process {process} is not below the number of processes, {processes}")]
    ProcessIndex { process: usize, processes: usize },
    #[error(
        "property \"{0}\" is an eventually-property, which the distributed search does not check"
    )]
    Eventually(&'static str),
    #[error("timely dataflow: {0}")]
    Timely(String),
    #[error("connecting the processes: {0}")]
    Network(String),
    #[error(
        "worker {worker} checks another model or runs another build (its bounds or initial \
         states differ from this process's): start every process with the same flags and binary"
    )]
    Mismatch { worker: usize },
}

/// A successor on its way to its owner.
#[derive(Clone, Serialize, Deserialize)]
struct Successor {
    fingerprint: u64,
    /// Its path from an initial state (see [`replay`]).
    path: Vec<u32>,
    /// The state itself, between workers of one process: timely moves a message to a worker
    /// of the same process without serialising it. Between processes only the path travels
    /// (a state has no serialisation: its running `Node` has none), and the owner rebuilds
    /// the state from it.
    #[serde(skip)]
    state: Option<State>,
}

/// What one worker tells every worker at the end of a level.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Summary {
    worker: usize,
    /// The model as this worker's process built it ([`model_id`]).
    model: u64,
    /// States of the level this worker expanded.
    expanded: u64,
    /// Successors within the boundary it generated (initial states on level 0).
    generated: u64,
    /// Fingerprints it owns so far.
    unique: u64,
    /// Its lossless steps removed by the in-flight bound so far.
    removed_by_bound: u64,
    /// Properties it found a discovery for on this level, each with the path to it.
    discoveries: Vec<(usize, Vec<u32>)>,
}

/// What a worker's dataflow hands back to it, by level.
#[derive(Default)]
struct Inbox {
    /// Fingerprints this worker owns and has seen.
    visited: HashSet<u64>,
    /// New states by the level they were sent on (they belong to the next one).
    fresh: BTreeMap<u64, Vec<Successor>>,
    /// Every worker's summary, by level.
    summaries: BTreeMap<u64, Vec<Summary>>,
}

/// The model as one process built it: its bounds and initial states. Processes started with
/// other flags, or with another build whose hash differs, disagree on it.
fn model_id(model: &RaftModel) -> u64 {
    let mut h = DefaultHasher::new();
    format!("{} {} {}", model.bounds, model.kv, model.symmetry).hash(&mut h);
    for state in model.init_states() {
        fingerprint(&state).hash(&mut h);
    }
    h.finish()
}

/// The state `path` leads to: an initial state, then one action per index, each its position
/// in the list of the state before. `None` if the path names no action or a disabled one.
pub fn replay(model: &RaftModel, path: &[u32]) -> Option<State> {
    let (first, steps) = path.split_first()?;
    let mut state = model.init_states().get(*first as usize)?.clone();
    let mut actions = Vec::new();
    for &index in steps {
        model.actions(&state, &mut actions);
        let action = *actions.get(index as usize)?;
        actions.clear();
        state = model.next_state(&state, action)?;
    }
    Some(state)
}

/// The Stateright path of `indices` (see [`replay`]).
fn to_path(model: &RaftModel, indices: &[u32]) -> Path<State, Action> {
    let (first, steps) = indices.split_first().expect("a path starts at a state");
    let init = model.init_states()[*first as usize].clone();
    let mut state = init.clone();
    let mut taken = Vec::with_capacity(steps.len());
    let mut actions = Vec::new();
    for &index in steps {
        model.actions(&state, &mut actions);
        let action = actions[index as usize];
        actions.clear();
        state = model
            .next_state(&state, action)
            .expect("a path found replays");
        taken.push(action);
    }
    Path::from_actions(model, init, &taken).expect("a path found replays")
}

/// What every worker concluded; the same on all of them.
struct Outcome {
    /// Per property, the path of its first discovery.
    found: Vec<Option<Vec<u32>>>,
    unique: u64,
    total: u64,
    depth: usize,
    removed_by_bound: u64,
    exhaustive: bool,
}

/// Checks `model` breadth first over `cluster`, stopping as `options` says (its strategy and
/// threads are not used: the search is breadth first, on `cluster.workers` threads). Every
/// process of the run returns the same report, but for its elapsed time.
pub fn run(
    model: RaftModel,
    options: &CheckOptions,
    cluster: &Cluster,
) -> Result<CheckReport, DistributedError> {
    let properties = model.properties();
    if let Some(p) = (properties.iter()).find(|p| p.expectation == Expectation::Eventually) {
        return Err(DistributedError::Eventually(p.name));
    }
    let start = Instant::now();
    let (allocators, guard) = cluster
        .allocators()
        .map_err(|e| DistributedError::Network(e.to_string()))?;
    let shared = model.clone();
    let options = *options;
    let first_local = cluster.process * cluster.workers;
    let guards = execute_from(allocators, guard, WorkerConfig::default(), move |worker| {
        search(worker, &shared, &options, first_local, start)
    })
    .map_err(DistributedError::Timely)?;
    let mut outcomes = Vec::new();
    for result in guards.join() {
        outcomes.push(result.map_err(DistributedError::Timely)??);
    }
    let outcome = outcomes.swap_remove(0);
    let elapsed = start.elapsed();
    let properties = (properties.iter().zip(outcome.found))
        .map(|(p, path)| {
            let path = path.map(|indices| to_path(&model, &indices));
            check::property_result(&model, p, path, outcome.exhaustive)
        })
        .collect();
    Ok(CheckReport {
        unique_states: count(outcome.unique),
        total_states: count(outcome.total),
        max_depth: outcome.depth,
        elapsed,
        exhaustive: outcome.exhaustive,
        removed_by_bound: outcome.removed_by_bound,
        properties,
    })
}

fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// One worker's part of the search.
fn search(
    worker: &mut timely::worker::Worker,
    model: &RaftModel,
    options: &CheckOptions,
    first_local: usize,
    start: Instant,
) -> Result<Outcome, DistributedError> {
    let index = worker.index();
    // Replays rebuild states already counted: their steps removed by the bound are not counted
    // again, so they run on a model with a counter of its own.
    let replayer = RaftModel {
        removed_by_bound: Arc::default(),
        ..model.clone()
    };
    let expander = RaftModel {
        removed_by_bound: Arc::default(),
        ..model.clone()
    };
    let properties: Vec<Property<RaftModel>> = model.properties();
    let id = model_id(model);

    let inbox = Rc::new(RefCell::new(Inbox::default()));
    let mut successors = InputHandle::<u64, CapacityContainerBuilder<Vec<Successor>>>::new();
    let mut summaries = InputHandle::<u64, CapacityContainerBuilder<Vec<Summary>>>::new();
    let probe = ProbeHandle::new();
    worker.dataflow::<u64, _, _>(|scope| {
        let owned = Rc::clone(&inbox);
        scope
            .input_from(&mut successors)
            .unary::<CapacityContainerBuilder<Vec<()>>, _, _, _>(
                Exchange::new(|s: &Successor| s.fingerprint),
                "Visit",
                move |_, _| {
                    move |input, _output| {
                        input.for_each(|time, data| {
                            let mut inbox = owned.borrow_mut();
                            let inbox = &mut *inbox;
                            // Inputs stamp each message with the one level it was sent on.
                            let level = *time.stamp().expect_singleton();
                            let fresh = inbox.fresh.entry(level).or_default();
                            for successor in data.drain(..) {
                                if inbox.visited.insert(successor.fingerprint) {
                                    fresh.push(successor);
                                }
                            }
                        });
                    }
                },
            )
            .probe_with(&probe);
        let heard = Rc::clone(&inbox);
        scope
            .input_from(&mut summaries)
            .broadcast()
            .inspect_core(move |event| {
                if let Ok((stamp, batch)) = event {
                    let mut inbox = heard.borrow_mut();
                    let level = inbox.summaries.entry(*stamp.expect_singleton());
                    level.or_default().extend(batch.iter().cloned());
                }
            })
            .probe_with(&probe);
    });

    let mut found: Vec<Option<Vec<u32>>> = vec![None; properties.len()];
    let (mut total, mut depth) = (0, 0);
    let (mut unique, mut removed_by_bound);
    let mut actions = Vec::new();
    let mut level: u64 = 0;
    let exhaustive = loop {
        // Level 0 is the initial states, sent by worker 0; level n > 0 expands the states that
        // arrived on level n - 1.
        let frontier =
            (inbox.borrow_mut().fresh.remove(&level.wrapping_sub(1))).unwrap_or_default();
        let mut mine = Summary {
            worker: index,
            model: id,
            expanded: 0,
            generated: 0,
            unique: 0,
            removed_by_bound: 0,
            discoveries: Vec::new(),
        };
        if level == 0 && index == 0 {
            for (i, state) in model.init_states().iter().enumerate() {
                if model.within_boundary(state) {
                    mine.generated += 1;
                    successors.send(Successor {
                        fingerprint: fingerprint(state),
                        path: vec![i as u32],
                        state: Some(state.clone()),
                    });
                }
            }
        }
        for Successor { path, state, .. } in frontier {
            let state = state.unwrap_or_else(|| {
                replay(&replayer, &path).expect("a path this search recorded replays")
            });
            mine.expanded += 1;
            for (i, p) in properties.iter().enumerate() {
                if found[i].is_some() || mine.discoveries.iter().any(|(j, _)| *j == i) {
                    continue;
                }
                // An `always` property's discovery is a state where it is false, a `sometimes`
                // property's one where it is true.
                if (p.condition)(model, &state) != p.expectation.discovery_is_failure() {
                    mine.discoveries.push((i, path.clone()));
                }
            }
            expander.actions(&state, &mut actions);
            for (i, action) in actions.drain(..).enumerate() {
                let Some(next) = expander.next_state(&state, action) else {
                    continue;
                };
                if !expander.within_boundary(&next) {
                    continue;
                }
                mine.generated += 1;
                let mut next_path = Vec::with_capacity(path.len() + 1);
                next_path.extend_from_slice(&path);
                next_path.push(i as u32);
                successors.send(Successor {
                    fingerprint: fingerprint(&next),
                    path: next_path,
                    state: Some(next),
                });
            }
            // Let the successors that arrived so far into the visited set, so that they do
            // not wait in channels until the end of the level.
            if mine.expanded % 512 == 0 {
                worker.step();
            }
        }
        mine.unique = inbox.borrow().visited.len() as u64;
        mine.removed_by_bound = expander
            .removed_by_bound
            .load(std::sync::atomic::Ordering::Relaxed);
        summaries.send(mine);
        level += 1;
        successors.advance_to(level);
        summaries.advance_to(level);
        worker.step_while(|| probe.less_than(&level));

        let mut heard = inbox
            .borrow_mut()
            .summaries
            .remove(&(level - 1))
            .unwrap_or_default();
        heard.sort_by_key(|s| s.worker);
        if let Some(other) = heard.iter().find(|s| s.model != id) {
            return Err(DistributedError::Mismatch {
                worker: other.worker,
            });
        }
        let expanded: u64 = heard.iter().map(|s| s.expanded).sum();
        total += heard.iter().map(|s| s.generated).sum::<u64>();
        unique = heard.iter().map(|s| s.unique).sum();
        removed_by_bound = heard.iter().map(|s| s.removed_by_bound).sum();
        if expanded > 0 {
            depth = level as usize - 1;
        }
        for summary in heard {
            for (i, path) in summary.discoveries {
                found[i].get_or_insert(path);
            }
        }
        if let Some(progress) = options.progress.filter(|_| index == first_local) {
            progress(count(unique), count(total), depth, start.elapsed());
        }
        let stopped = match options.until {
            Until::AnyViolation => (properties.iter().zip(&found))
                .any(|(p, f)| f.is_some() && p.expectation.discovery_is_failure()),
            Until::Found(name) => {
                (properties.iter().zip(&found)).any(|(p, f)| f.is_some() && p.name == name)
            }
        };
        // Counted as Stateright counts it: states generated, repeats included.
        let full = options.max_states.is_some_and(|n| total >= n as u64);
        if stopped || full {
            break false;
        }
        if expanded == 0 && level > 1 {
            // As `check::run` says: a search bounded by --max-states is not called exhaustive.
            break options.max_states.is_none();
        }
    };
    if !exhaustive {
        // The successors of the last level are owned now but were not counted: one more
        // exchange of summaries counts them.
        let mine = Summary {
            worker: index,
            model: id,
            expanded: 0,
            generated: 0,
            unique: inbox.borrow().visited.len() as u64,
            removed_by_bound: 0,
            discoveries: Vec::new(),
        };
        summaries.send(mine);
        level += 1;
        successors.advance_to(level);
        summaries.advance_to(level);
        worker.step_while(|| probe.less_than(&level));
        let heard = inbox
            .borrow_mut()
            .summaries
            .remove(&(level - 1))
            .unwrap_or_default();
        unique = heard.iter().map(|s| s.unique).sum();
    }
    Ok(Outcome {
        found,
        unique,
        total,
        depth,
        removed_by_bound,
        exhaustive,
    })
}
