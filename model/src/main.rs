//! `raftcheck`: the model checker's command line.
//!
//! Subcommands: `check` explores the model and reports every property, `explore` serves
//! Stateright's web Explorer on the same model, `bugs` lists (and with `--run` checks) the
//! deliberate-bug catalog, `lincheck` checks a recorded KV history for linearizability. Each
//! run ends with a one-line verdict, and with `--json` prints one JSON document instead
//! (`raft_model::json`).
//!
//! Exit codes: 0 pass (every safety property holds on the whole bounded space, every
//! reachability property reached or ruled out by a named bound, a leader can be elected; every
//! bug caught; the history linearizable), 1 fail (a violation, an unexplained unreached
//! property, a bug not caught, a history not linearizable), 2 bad arguments or input, 3
//! incomplete (the search stopped before the end with no violation; lincheck: the budget ran
//! out), 4 vacuous (no election can complete under the bounds).

use std::path::{Path as FilePath, PathBuf};
use std::process::ExitCode;

/// The checker allocates and frees millions of small states a second; mimalloc roughly halves
/// the time glibc's allocator took.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use raft_impl::{Mutation, MutationSet};
use raft_model::catalog::Bug;
use raft_model::check::{self, CheckOptions, CheckReport, Strategy, Until};
use raft_model::distributed::{self, ClusterArgs};
use raft_model::json::{self, BugDoc, BugsDocument, CheckDocument, LincheckDocument, Search};
use raft_model::link::{self, Link};
use raft_model::shards::{self, MergeError, SwarmDocument};
use raft_model::swarm::{self, Budget, Kind, Limits, Shard, SwarmOptions, SwarmReport};
use raft_model::{catalog, explorer, probes, scope, sketch};
use raft_model::{
    html, render, Action, Bounds, BoundsError, KvBounds, Network, Persistence, Preset, RaftModel,
    Reductions, State,
};
use stateright::Path;

#[derive(Parser)]
#[command(
    name = "raftcheck",
    version,
    about = "Exhaustive model checking of a crash-safe Raft core"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Explore the bounded state space and check every property.
    Check(CheckArgs),
    /// Serve Stateright's web Explorer on the model.
    Explore(ExploreArgs),
    /// The deliberate-bug catalog: each bug, where it was seen (its sources) and the property
    /// it must violate.
    Bugs {
        /// Check every bug in its catalog configuration (breadth first, one thread) and add the
        /// property found violated, trace length, states explored and seconds.
        #[arg(long)]
        run: bool,
        /// Print one JSON document (docs/schema/bugs.schema.json) instead of the table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        reductions: ReductionArgs,
    },
    /// Check a recorded KV history (JSON lines) for linearizability.
    Lincheck(LincheckArgs),
    /// Many independent, diversified searches in parallel, for depth beyond exhaustion: finds
    /// counterexamples, never proves (see raft_model::swarm).
    Swarm(SwarmArgs),
    /// Combine the --json reports of swarm runs (shards): counterexamples and states explored.
    Merge(MergeArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StrategyArg {
    Bfs,
    Dfs,
    Simulation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PersistenceArg {
    Atomic,
    Deferred,
    Wal,
}

/// The bounds of the model. Where none is given, they come from `--preset` or, with `--bug` and
/// no preset, from that bug's catalog configuration; otherwise from the default preset. A
/// bound given as a flag overrides the preset's. Printed in full at start.
#[derive(Args, Debug)]
struct ModelArgs {
    /// A named configuration: default, thorough, five, flow or prevote (the README lists them).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Servers in the cluster (1 to 5).
    #[arg(long)]
    servers: Option<u8>,
    /// Highest term an election may reach (1 to 15).
    #[arg(long)]
    max_term: Option<u64>,
    /// Longest log a leader appends to.
    #[arg(long)]
    max_log: Option<usize>,
    /// Plain proposals in total (each a distinct command).
    // `--clients` was this flag's first name; kept, hidden, so that old commands still run.
    #[arg(long, alias = "clients")]
    proposals: Option<u8>,
    /// Crash events in total; one event stops one server or all of them at once.
    #[arg(long)]
    max_crashes: Option<u8>,
    /// Messages in flight at once (including sends waiting behind a pending persist).
    #[arg(long)]
    max_in_flight: Option<usize>,
    /// A leader's AppendEntries carries any number of entries from 1 to N, each count explored
    /// (default: everything from the follower's next index to the end of the log).
    #[arg(long, value_name = "N")]
    max_batch: Option<u8>,
    /// Flow control: batches in flight per follower whose match is known, each batch sent
    /// once (0, the default: every AppendEntries from the follower's next index, which only
    /// replies move).
    #[arg(long, value_name = "W")]
    window: Option<u8>,
    /// Per-channel FIFO delivery instead of any order.
    #[arg(long)]
    ordered: bool,
    /// The network never loses a message.
    #[arg(long)]
    lossless: bool,
    /// The network may duplicate messages, this many times in total.
    #[arg(long, value_name = "N")]
    duplicates: Option<u8>,
    /// How a step's storage records become durable: atomic (in the step), deferred (a step's
    /// records at a later flush) or wal (each record at its own flush; a crash keeps any prefix
    /// of the pending ones).
    #[arg(long = "storage", visible_alias = "persistence", value_enum)]
    persistence: Option<PersistenceArg>,
    /// KV clients (0 to 3), each doing its fixed workload of a write and a read on one key,
    /// and the property "linearizable". 0: plain proposals only.
    #[arg(long)]
    kv_clients: Option<u8>,
    /// KV client timeouts in total (a waiting client gives up and may send the same request
    /// again; default 0, or the catalog configuration's with `--bug`).
    #[arg(long)]
    kv_timeouts: Option<u8>,
    /// KV session expiries in total: log time passes the session timeout, so every session
    /// idle since before expires at the next command applied (default 0).
    #[arg(long)]
    kv_expiries: Option<u8>,
    /// PreVote (§9.6): a server asks whether it could win before it raises its term; adds the
    /// property "a PreVote stops a disruptive candidate".
    #[arg(long)]
    prevote: bool,
    /// CheckQuorum (§6.2) and the leader lease (§4.2.3), with their events "a leader checks
    /// its quorum" and "a follower's leader contact expires".
    #[arg(long)]
    check_quorum: bool,
    /// Snapshots taken in total (default 0): a server's service snapshots its state machine at
    /// its applied index, and followers behind it catch up by InstallSnapshot; adds the
    /// snapshot properties.
    #[arg(long, value_name = "N")]
    max_snapshots: Option<u8>,
    /// Switch on a deliberate bug from the catalog, or one of the probes of the README's
    /// generality table (repeatable). Alone, it runs in that bug's catalog configuration.
    #[arg(long = "bug", value_name = "NAME", value_parser = parse_bug)]
    bugs: Vec<Mutation>,
}

fn parse_bug(name: &str) -> Result<Mutation, String> {
    name.parse()
        .map_err(|e: raft_impl::mutation::UnknownMutation| e.to_string())
}

/// The configuration a run starts from, before the bound flags.
enum Origin {
    Preset(Preset),
    /// A bug's catalog (or probe) configuration: `--bug` with no bound and no preset.
    Catalog(Bug),
}

impl ModelArgs {
    /// Whether any flag that bounds the model was given.
    fn bounds_given(&self) -> bool {
        self.servers.is_some()
            || self.max_term.is_some()
            || self.max_log.is_some()
            || self.proposals.is_some()
            || self.max_crashes.is_some()
            || self.max_in_flight.is_some()
            || self.max_batch.is_some()
            || self.window.is_some()
            || self.ordered
            || self.lossless
            || self.duplicates.is_some()
            || self.persistence.is_some()
            || self.kv_clients.is_some()
            || self.kv_timeouts.is_some()
            || self.kv_expiries.is_some()
            || self.prevote
            || self.check_quorum
            || self.max_snapshots.is_some()
    }

    fn origin(&self) -> Origin {
        let bug = self.bugs.first().and_then(|m| probes::configuration(*m));
        match (self.preset, bug) {
            (Some(preset), _) => Origin::Preset(preset),
            (None, Some(bug)) if !self.bounds_given() => Origin::Catalog(bug),
            (None, _) => Origin::Preset(Preset::Default),
        }
    }

    /// The model these flags describe, and where its bounds came from (for the user).
    fn model(&self) -> Result<(RaftModel, String), BoundsError> {
        let origin = self.origin();
        let (base, base_kv, said) = match &origin {
            Origin::Preset(p) => (
                p.bounds(),
                KvBounds::default(),
                format!("preset {}", p.name()),
            ),
            Origin::Catalog(bug) => (
                bug.config,
                bug.kv,
                format!(
                    "the catalog configuration of {} (give a bound or --preset to choose others)",
                    bug.mutation
                ),
            ),
        };
        let kv = KvBounds {
            clients: self.kv_clients.unwrap_or(base_kv.clients),
            timeouts: self.kv_timeouts.unwrap_or(base_kv.timeouts),
            expiries: self.kv_expiries.unwrap_or(base_kv.expiries),
        };
        kv.validate()?;
        let duplicates = self.duplicates.unwrap_or(base.max_duplicates);
        let bounds = Bounds {
            servers: self.servers.unwrap_or(base.servers),
            max_term: self.max_term.unwrap_or(base.max_term),
            max_log: self.max_log.unwrap_or(base.max_log),
            proposals: self.proposals.unwrap_or(base.proposals),
            max_crashes: self.max_crashes.unwrap_or(base.max_crashes),
            max_in_flight: self.max_in_flight.unwrap_or(base.max_in_flight),
            max_duplicates: duplicates,
            max_batch: self.max_batch.or(base.max_batch),
            window: self.window.unwrap_or(base.window),
            network: Network {
                ordered: self.ordered || base.network.ordered,
                lossy: !self.lossless && base.network.lossy,
                duplicating: duplicates > 0,
            },
            persistence: match self.persistence {
                Some(PersistenceArg::Atomic) => Persistence::Atomic,
                Some(PersistenceArg::Deferred) => Persistence::Deferred,
                Some(PersistenceArg::Wal) => Persistence::Wal,
                None => base.persistence,
            },
            mutations: self.bugs.iter().copied().collect::<MutationSet>(),
            pre_vote: self.prevote || base.pre_vote,
            check_quorum: self.check_quorum || base.check_quorum,
            max_snapshots: self.max_snapshots.unwrap_or(base.max_snapshots),
        };
        bounds.validate()?;
        Ok((RaftModel::with_kv(bounds, kv), said))
    }
}

/// Why a bug cannot show under the model's bounds, when its catalog configuration needs what
/// they leave out (KV clients, storage that is not atomic).
fn cannot_show(bug: Mutation, model: &RaftModel) -> Option<String> {
    let needs = probes::configuration(bug)?;
    if needs.kv.enabled() && !model.kv.enabled() {
        return Some(format!(
            "{bug} needs KV clients (--kv-clients): it cannot show here"
        ));
    }
    if needs.config.pre_vote && !model.bounds.pre_vote {
        return Some(format!("{bug} needs --prevote: it cannot show here"));
    }
    // Every bug that shows with deferred storage shows with a write-ahead log too: a WAL flush
    // of one record is a deferred flush of a step with one record.
    let deferred = needs.config.persistence == Persistence::Deferred;
    if deferred && model.bounds.persistence == Persistence::Atomic {
        return Some(format!(
            "{bug} needs --storage deferred or wal (a reply can only overtake a write that is \
             not yet durable): it cannot show here"
        ));
    }
    None
}

/// The switches that turn a reduction off, each only to compare it with the plain exploration
/// (see [`Reductions`]).
#[derive(Args, Debug)]
struct ReductionArgs {
    /// Explore every state, not one per renaming of the server ids (for checking that symmetry
    /// reduction changes no verdict).
    #[arg(long)]
    no_symmetry: bool,
    /// On a lossy network, let a step lose any subset of its sends, not only those that do not
    /// fit under --max-in-flight (for checking that reduction changes no verdict).
    #[arg(long)]
    no_loss_reduction: bool,
    /// With --check-quorum, let a contact expire and a quorum check happen at any moment, as
    /// the plain exploration does (for checking that reduction changes no verdict).
    #[arg(long)]
    no_timing_reduction: bool,
    /// On a lossy network, leave a message ignored for good (a reply of an older term than its
    /// receiver's, say, or an old term's request whose every refusal its sender ignores) in
    /// flight until it is dropped, as the plain exploration does (for checking that reduction
    /// changes no verdict).
    #[arg(long)]
    no_stale_reduction: bool,
}

impl ReductionArgs {
    fn reductions(&self) -> Reductions {
        Reductions {
            symmetry: !self.no_symmetry,
            loss: !self.no_loss_reduction,
            timing: !self.no_timing_reduction,
            stale: !self.no_stale_reduction,
        }
    }

    fn any_off(&self) -> bool {
        self.reductions() != Reductions::ALL
    }
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Search strategy: dfs, bfs (shortest counterexamples) or simulation (random walks, not
    /// exhaustive). Default: dfs, or bfs with --bug so that the counterexample is a shortest
    /// one.
    #[arg(long, value_enum)]
    strategy: Option<StrategyArg>,
    #[command(flatten)]
    reductions: ReductionArgs,
    /// Seed of the simulation strategy.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Checker threads.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Stop after about this many states (simulation defaults to 1 000 000).
    #[arg(long)]
    max_states: Option<usize>,
    /// Also write a self-contained HTML page: the counterexample as a sequence diagram with
    /// every server's state at each step, or on a passing run the summary.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Address printed in the Explorer URL of a counterexample.
    #[arg(long, default_value = "127.0.0.1:3000")]
    explorer_addr: String,
    /// Print one JSON document (docs/schema/check.schema.json) instead of the text report.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Args, Debug)]
struct ExploreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The Explorer always shows every state (symmetry off); the other two switches give the
    /// actions of a check run with them, so that its counterexample links open here.
    #[command(flatten)]
    reductions: ReductionArgs,
    /// Address to serve the Explorer on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check(args) => check_command(&args),
        Command::Explore(args) => explore_command(&args),
        Command::Bugs {
            run,
            json,
            reductions,
        } => {
            if !run && reductions.any_off() {
                eprintln!("error: turning a reduction off means something only with --run");
                return ExitCode::from(2);
            }
            let reductions = run.then(|| reductions.reductions());
            match json {
                true => bugs_json(reductions),
                false if catalog::print_table(reductions) => ExitCode::SUCCESS,
                false => ExitCode::from(1),
            }
        }
        Command::Lincheck(args) => lincheck_command(&args),
        Command::Swarm(args) => swarm_command(&args),
        Command::Merge(args) => merge_command(&args),
    }
}

#[derive(Args, Debug)]
struct LincheckArgs {
    /// The history: one JSON event per line (see the README for the format).
    history: std::path::PathBuf,
    /// Write a page showing the failing key's history on a time line.
    #[arg(long, value_name = "FILE")]
    html: Option<std::path::PathBuf>,
    /// Give up with "unknown" (exit 3) after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    budget: u64,
    /// Print one JSON document (docs/schema/lincheck.schema.json) instead of the text report.
    #[arg(long)]
    json: bool,
}

/// `bugs --json`: the catalog, each bug checked with `--run`, as one document.
fn bugs_json(reductions: Option<Reductions>) -> ExitCode {
    let start = std::time::Instant::now();
    let bugs = catalog::catalog();
    let runs: Vec<_> = bugs
        .iter()
        .map(|bug| reductions.map(|r| catalog::run_with(bug, Strategy::Bfs, r)))
        .collect();
    let caught = reductions.map(|_| runs.iter().flatten().all(|r| r.caught()));
    let (verdict, code) = match caught {
        None => ("listed", 0),
        Some(true) => ("pass", 0),
        Some(false) => ("fail", 1),
    };
    json::print(&BugsDocument {
        format: "raftcheck bugs",
        version: json::VERSION,
        verdict,
        exit_code: code,
        summary: catalog::verdict(bugs.len(), caught),
        bugs: (bugs.iter().zip(&runs))
            .map(|(bug, run)| BugDoc::new(bug, run.as_ref()))
            .collect(),
        reductions_off: reductions.map_or_else(Vec::new, |r| r.off()),
        seconds: start.elapsed().as_secs_f64(),
        peak_rss_bytes: json::peak_rss_bytes(),
    });
    ExitCode::from(code)
}

fn lincheck_command(args: &LincheckArgs) -> ExitCode {
    let budget = Duration::from_secs(args.budget);
    match raft_lincheck::run(&args.history, args.html.as_deref(), budget) {
        Ok(report) if args.json => {
            json::print(&LincheckDocument::new(
                &report,
                &args.history,
                args.html.as_deref(),
                budget,
            ));
            ExitCode::from(report.exit_code())
        }
        Ok(report) => {
            println!("{report}");
            println!("{}", json::lincheck_verdict(&report));
            ExitCode::from(report.exit_code())
        }
        Err(e) => {
            eprintln!("raftcheck lincheck: {e}");
            ExitCode::from(raft_lincheck::LincheckError::EXIT_CODE)
        }
    }
}

/// Every bound of `model`, as printed before and after a check.
fn describe(model: &RaftModel) -> String {
    if model.kv.enabled() {
        format!("{}\n{}", model.bounds, model.kv)
    } else {
        model.bounds.to_string()
    }
}

fn bad_args(e: BoundsError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

fn progress(unique: usize, total: usize, depth: usize, elapsed: Duration) {
    eprintln!(
        "  … {unique} unique states, {total} total, depth {depth}, {:.0} s",
        elapsed.as_secs_f64()
    );
}

fn check_command(args: &CheckArgs) -> ExitCode {
    let (model, origin) = match args.model.model() {
        Ok((m, origin)) => (m.with_reductions(args.reductions.reductions()), origin),
        Err(e) => return bad_args(e),
    };
    let cluster = match args.cluster.cluster() {
        Ok(Some(_)) if args.strategy.is_some_and(|s| s != StrategyArg::Bfs) => {
            eprintln!("error: --distributed searches breadth first (--strategy bfs)");
            return ExitCode::from(2);
        }
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let default = if args.model.bugs.is_empty() && cluster.is_none() {
        StrategyArg::Dfs
    } else {
        StrategyArg::Bfs
    };
    let strategy = match args.strategy.unwrap_or(default) {
        StrategyArg::Bfs => Strategy::Bfs,
        StrategyArg::Dfs => Strategy::Dfs,
        StrategyArg::Simulation => Strategy::Simulation { seed: args.seed },
    };
    let max_states = match strategy {
        Strategy::Simulation { .. } => Some(args.max_states.unwrap_or(1_000_000)),
        _ => args.max_states,
    };
    let strategy_name = match strategy {
        _ if cluster.is_some() => cluster.as_ref().map_or(String::new(), |c| c.describe()),
        Strategy::Bfs => "bfs".to_string(),
        Strategy::Dfs => "dfs".to_string(),
        Strategy::Simulation { seed } => format!("simulation, seed {seed}"),
    };
    // An unwritable page is found before a long run rather than after it.
    if let Some(out) = &args.html {
        if let Err(e) = std::fs::write(out, "") {
            eprintln!("error: --html {}: {e}", out.display());
            return ExitCode::from(2);
        }
    }
    let warnings: Vec<String> = (args.model.bugs.iter())
        .filter_map(|b| cannot_show(*b, &model))
        .collect();
    let not_explored = scope::not_explored(&model.bounds, &model.kv).join(", ");
    let threads = cluster.as_ref().map_or(args.threads.into(), |c| c.workers);
    if !args.json {
        println!("raftcheck check");
        println!("  bounds from      {origin}");
        println!("{}", describe(&model));
        println!("  not explored     {not_explored}");
        println!("  strategy         {strategy_name}");
        println!(
            "  symmetry         {}",
            if model.symmetry {
                "one state per renaming of the server ids"
            } else {
                "off"
            }
        );
        let off = model.reductions().off();
        if off.iter().any(|name| *name != "symmetry") {
            println!("  reductions off   {}", off.join(", "));
        }
        println!("  threads          {threads}");
        for why in &warnings {
            println!("warning: {why}");
        }
    }
    let options = CheckOptions {
        strategy,
        until: Until::AnyViolation,
        threads,
        max_states,
        progress: Some(progress),
    };
    let report = match &cluster {
        None => check::run(model.clone(), &options),
        Some(cluster) => match distributed::run(model.clone(), &options, cluster) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let explore = link::explore_command(&model, &args.explorer_addr);
    let url = |path: &Path<State, Action>| explorer_url(&model, path, &args.explorer_addr);
    if let Some(out) = &args.html {
        if let Err(e) = write_page(out, &model, &report) {
            eprintln!("error: --html {}: {e}", out.display());
            return ExitCode::from(2);
        }
    }
    let verdict = report.verdict();
    if args.json {
        let search = Search {
            strategy: match strategy {
                Strategy::Bfs => "bfs",
                Strategy::Dfs => "dfs",
                Strategy::Simulation { .. } => "simulation",
            },
            seed: match strategy {
                Strategy::Simulation { seed } => Some(seed),
                _ => None,
            },
            symmetry: model.symmetry,
            reductions_off: model.reductions().off(),
            threads,
            max_states,
            distributed: cluster.as_ref().map(json::Distribution::of),
        };
        let explorer = (explore, url);
        let mut doc = CheckDocument::new(&model, &report, origin, warnings, search, explorer);
        doc.html = args.html.as_ref().map(|p| p.display().to_string());
        json::print(&doc);
        return ExitCode::from(verdict.exit_code());
    }
    println!("\nchecked\n{}", describe(&model));
    println!("  not explored     {not_explored}");
    print_report(&report);
    if let Some((name, path)) = report.first_violation() {
        let trace = render::trace(path);
        println!("\nCounterexample to \"{name}\" ({} steps):", trace.len());
        for (i, line) in trace.iter().enumerate() {
            println!("  {:>3}. {line}", i + 1);
        }
        println!("\nFinal state:\n{:?}", path.last_state());
        println!("\nExplore it: {}", url(path));
        println!("  served by: {explore}");
    }
    if let Some(out) = &args.html {
        println!("\nWrote {}", out.display());
    }
    println!("\n{}", report.summary());
    ExitCode::from(verdict.exit_code())
}

fn write_page(out: &FilePath, model: &RaftModel, report: &CheckReport) -> std::io::Result<()> {
    std::fs::write(out, html::page(model, &describe(model), report))
}

/// The Explorer URL that opens `path` when `raftcheck explore` with the same flags serves on
/// `addr`, and only then (`raft_model::link`).
fn explorer_url(model: &RaftModel, path: &Path<State, Action>, addr: &str) -> String {
    Link::of(model, path).url(addr)
}

fn print_report(report: &CheckReport) {
    println!();
    println!(
        "{} unique states, {} total, max depth {}, {:.2} s, {:.0} unique states/s{}{}",
        report.unique_states,
        report.total_states,
        report.max_depth,
        report.elapsed.as_secs_f64(),
        report.states_per_second(),
        json::peak_rss_bytes().map_or(String::new(), |b| format!(
            ", peak RSS {} MB",
            b / 1_000_000
        )),
        if report.exhaustive {
            " (exhaustive)"
        } else {
            ""
        }
    );
    println!();
    let width = report
        .properties
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in &report.properties {
        let outcome = report.outcome_label(p);
        println!("  {:<9}  {:<width$}  {outcome}", p.kind(), p.name);
    }
    if report.removed_by_bound > 0 {
        println!(
            "\n{} steps were not taken: their sends (or a duplicate) did not fit under \
             --max-in-flight on a lossless network (counted as generated, so a step from a state \
             reached twice counts twice)",
            report.removed_by_bound
        );
    }
}

fn explore_command(args: &ExploreArgs) -> ExitCode {
    // The Explorer shows each state's fingerprint: symmetric states should not share one.
    let model = match args.model.model() {
        Ok((m, _)) => m
            .with_reductions(args.reductions.reductions())
            .without_symmetry(),
        Err(e) => return bad_args(e),
    };
    let addr: std::net::SocketAddr = match args.addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: --addr {}: {e}", args.addr);
            return ExitCode::from(2);
        }
    };
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    println!("raftcheck explore on http://{addr}");
    println!("{}", describe(&model));
    println!(
        "  served as        {}",
        link::explore_command(&model, &args.addr)
    );
    // Returns only if the Explorer cannot start.
    match explorer::serve(model, listener) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Args, Debug)]
struct SwarmArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Seed of the search family: with the shard, it decides every search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run shard I of N: the searches numbered I, I+N, I+2N, … (no coordination needed).
    #[arg(long, value_name = "I/N", default_value = "0/1")]
    shard: Shard,
    /// Searches run side by side.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    threads: u16,
    /// Stop after this many seconds (default 60 when no budget is given).
    #[arg(long)]
    seconds: Option<u64>,
    /// Stop after about this many states evaluated, over all searches.
    #[arg(long)]
    max_states: Option<u64>,
    /// Stop after this many searches of this shard (with no time budget, the same seed then
    /// gives the same result on any number of threads).
    #[arg(long)]
    searches: Option<u64>,
    /// Run only the search of this number (what a counterexample's replay command does).
    #[arg(long, value_name = "NUMBER")]
    search: Option<u64>,
    /// Longest depth limit of a search (each draws its own, from a quarter of this up to it).
    #[arg(long, default_value_t = 64)]
    max_depth: usize,
    /// Largest visited set of a depth-first search, in states (16 to 32 bytes each).
    #[arg(long, default_value_t = 1 << 20)]
    visited_cap: usize,
    /// Visited sets and sketches keep every state, not one per renaming of the server ids.
    #[arg(long)]
    no_symmetry: bool,
    /// Address printed in the Explorer URL of a counterexample.
    #[arg(long, default_value = "127.0.0.1:3000")]
    explorer_addr: String,
    /// Print one JSON document (docs/schema/swarm.schema.json) instead of the text report.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct MergeArgs {
    /// The reports: the --json output of raftcheck swarm runs.
    #[arg(required = true)]
    reports: Vec<PathBuf>,
    /// Print one JSON document (docs/schema/merge.schema.json) instead of the text report.
    #[arg(long)]
    json: bool,
}

fn swarm_command(args: &SwarmArgs) -> ExitCode {
    let (model, origin) = match args.model.model() {
        Ok((m, origin)) if args.no_symmetry => (m.without_symmetry(), origin),
        Ok(m) => m,
        Err(e) => return bad_args(e),
    };
    let given = args.seconds.is_some()
        || args.max_states.is_some()
        || args.searches.is_some()
        || args.search.is_some();
    let options = SwarmOptions {
        seed: args.seed,
        shard: args.shard,
        threads: args.threads.into(),
        budget: Budget {
            time: Some(Duration::from_secs(args.seconds.unwrap_or(60)))
                .filter(|_| args.seconds.is_some() || !given),
            states: args.max_states,
            searches: args.searches,
        },
        limits: Limits {
            max_depth: args.max_depth,
            cap: args.visited_cap,
        },
        only: args.search,
        sketch_k: sketch::DEFAULT_K,
        progress: Some(|searches, states, elapsed| {
            eprintln!(
                "  … {searches} searches, {states} states, {:.0} s",
                elapsed.as_secs_f64()
            )
        }),
    };
    let warnings: Vec<String> = (args.model.bugs.iter())
        .filter_map(|b| cannot_show(*b, &model))
        .collect();
    let not_explored = scope::not_explored(&model.bounds, &model.kv).join(", ");
    if !args.json {
        println!("raftcheck swarm");
        println!("  bounds from      {origin}");
        println!("{}", describe(&model));
        println!("  not explored     {not_explored}");
        println!(
            "  swarm            seed {}, shard {}, {} threads, symmetry {}",
            args.seed,
            args.shard,
            args.threads,
            if model.symmetry { "on" } else { "off" }
        );
        for why in &warnings {
            println!("warning: {why}");
        }
    }
    let report = swarm::run(&model, &options);
    let explore = link::explore_command(&model, &args.explorer_addr);
    let url = |path: &Path<State, Action>| explorer_url(&model, path, &args.explorer_addr);
    let symmetry = if model.symmetry { "" } else { " --no-symmetry" };
    let flags = link::config_text(&model);
    let replay = |number: u64| {
        format!(
            "raftcheck swarm {flags}{symmetry} --seed {} --max-depth {} --visited-cap {} --search {number}",
            args.seed,
            args.max_depth,
            args.visited_cap
        )
    };
    let code = report.verdict().exit_code();
    if args.json {
        let doc = SwarmDocument::new(
            &model, &options, &report, origin, warnings, &explore, url, replay,
        );
        json::print(&doc);
        return ExitCode::from(code);
    }
    println!(
        "\n{} searches ({} depth-first, {} of random walks), {} states evaluated, about {:.0} \
         distinct{}, deepest {}, {:.2} s{}",
        report.searches.len(),
        report.count(Kind::Dfs),
        report.count(Kind::Walk),
        report.states,
        report.sketch.estimate(),
        if report.sketch.exact() {
            ""
        } else {
            " (estimate)"
        },
        report.max_depth,
        report.elapsed.as_secs_f64(),
        json::peak_rss_bytes().map_or(String::new(), |b| format!(
            ", peak RSS {} MB",
            b / 1_000_000
        )),
    );
    println!();
    let width = (report.properties.iter())
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0);
    for p in &report.properties {
        let outcome = SwarmReport::outcome_label(p);
        println!("  {:<9}  {:<width$}  {outcome}", p.kind(), p.name);
    }
    if let Some((name, path, plan)) = report.first_violation() {
        let trace = render::trace(path);
        println!(
            "\nCounterexample to \"{name}\" ({} steps), found by {}:",
            trace.len(),
            plan.describe()
        );
        for (i, line) in trace.iter().enumerate() {
            println!("  {:>3}. {line}", i + 1);
        }
        println!("\nFinal state:\n{:?}", path.last_state());
        println!("\nExplore it: {}", url(path));
        println!("  served by: {explore}");
        println!("Replay the search alone: {}", replay(plan.number));
    }
    println!("\n{}", report.summary());
    ExitCode::from(code)
}

fn merge_command(args: &MergeArgs) -> ExitCode {
    match shards::merge(&args.reports) {
        Ok(doc) => {
            if args.json {
                json::print(&doc);
            } else {
                println!("{}", shards::text(&doc));
            }
            ExitCode::from(doc.exit_code)
        }
        Err(e) => {
            eprintln!("raftcheck merge: {e}");
            ExitCode::from(MergeError::EXIT_CODE)
        }
    }
}
