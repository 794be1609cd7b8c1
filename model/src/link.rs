//! The Explorer link of a path: a URL that opens a counterexample in `raftcheck explore`, and
//! only in an Explorer that serves the model the path was found in.
//!
//! Stateright's Explorer names a path by the position of each step's action in the list of
//! actions of the state before it (`#/steps/0/3/1`). Those positions depend on every bound and
//! bug: under other flags the same numbers pick other actions, and the Explorer, which never
//! sees the configuration, shows a different run without a word. The fragment after `#` never
//! reaches the server either, so an Explorer cannot check it. A link therefore carries, in its
//! query, what the server needs to check it: the configuration as flags, the steps, and the
//! fingerprint of the state the steps end in. `raftcheck explore` (`crate::explorer`) replays
//! the steps in its own model and redirects to the Explorer's `#/steps/…` view only when the
//! flags are its own and the steps end in that state; otherwise it names what differs.
//!
//! The flags name the likely cause (another `--servers`, a missing `--bug`); the fingerprint
//! catches what flags cannot: an edited link, or another build of raftcheck whose model lists
//! actions or hashes states differently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use stateright::{Model, Path};
use thiserror::Error;

use crate::action::Action;
use crate::catalog::{self, Flag};
use crate::model::RaftModel;
use crate::sketch;
use crate::state::State;

/// The route of a link on the Explorer's address; Stateright's own Explorer answers it with
/// 404, so a link opened there fails rather than showing another run.
pub const ROUTE: &str = "/path";

/// The query keys that are not flags.
const STEPS: &str = "steps";
const STATE: &str = "state";

/// A path as a link carries it: the configuration, the Explorer's step numbers and the
/// fingerprint of the last state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Flags as the query holds them: any name the link gives besides the steps and the state.
    flags: Vec<(String, Option<String>)>,
    /// The Explorer's numbering of the path: the initial state's position among the model's
    /// initial states...
    init: usize,
    /// ...then each step's action's position among the actions of the state before it.
    actions: Vec<usize>,
    /// [`fingerprint`] of the state the path ends in.
    state: u64,
}

/// Why a link's query cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LinkError {
    #[error("the link has no {0}= (it was cut short?)")]
    Missing(&'static str),
    #[error("the link gives {0}= twice")]
    Twice(&'static str),
    #[error("steps={0:?} is not a list of numbers separated by /")]
    Steps(String),
    #[error("state={0:?} is not a fingerprint (up to 16 hexadecimal digits)")]
    State(String),
}

/// Why a link does not open here: the first difference between the link and this Explorer.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Mismatch {
    /// The link was made under other flags (each differing flag: its name, its values in the
    /// link, its values here; no value for a switch is `""`, absence is an empty list).
    #[error("the link was made under other flags: {}", describe(.0))]
    Flags(Vec<(String, Vec<String>, Vec<String>)>),
    /// A step's position is past the end of the actions this model lists there.
    #[error("step {step} takes action {index}, but this model lists {count} there")]
    NoAction {
        step: usize,
        index: usize,
        count: usize,
    },
    /// A step's action changes nothing in this model (no path step does that).
    #[error("step {step} takes an action that changes nothing in this model")]
    Ignored { step: usize },
    /// The steps replay, but end in another state.
    #[error(
        "the steps end in state {here:016x} here, not in {link:016x} as recorded: the link was \
         edited, or made by another build of raftcheck"
    )]
    State { link: u64, here: u64 },
}

fn describe(differ: &[(String, Vec<String>, Vec<String>)]) -> String {
    (differ.iter())
        .map(|(name, link, here)| {
            let (link, here) = (values_text(link), values_text(here));
            format!("--{name} {link} in the link, {here} here")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A flag's values as a reader is told them: "absent", "given" for a switch, or the values.
pub fn values_text(values: &[String]) -> String {
    match values {
        [] => "absent".to_string(),
        [one] if one.is_empty() => "given".to_string(),
        _ => values.join(", "),
    }
}

/// The configuration of `model` as flags: its bounds ([`catalog::flag_list`]) and its bugs.
/// Symmetry reduction is not among them: it changes which states a search visits, not the
/// actions of a state, so a path found with it opens in the Explorer, which runs without.
pub fn config(model: &RaftModel) -> Vec<Flag> {
    let mut flags = catalog::flag_list(&model.bounds, &model.kv);
    flags.extend((model.bounds.mutations.iter()).map(|m| ("bug", Some(m.name().to_string()))));
    // The loss, timing and stale reductions change which actions a state offers, so the
    // positions of a path's steps; symmetry does not (it only merges states), and the Explorer runs
    // without it anyway.
    let reductions = model.reductions();
    for (on, name) in [
        (reductions.loss, "no-loss-reduction"),
        (reductions.timing, "no-timing-reduction"),
        (reductions.stale, "no-stale-reduction"),
    ] {
        if !on {
            flags.push((name, None));
        }
    }
    flags
}

/// The `raftcheck explore` command that serves `model` on `addr`, every bound and bug spelled
/// out, so that it does not depend on a preset or on the CLI's defaults.
pub fn explore_command(model: &RaftModel, addr: &str) -> String {
    format!("raftcheck explore --addr {addr} {}", config_text(model))
}

/// [`config`] as a command line spells it.
pub fn config_text(model: &RaftModel) -> String {
    let flags = config(model);
    catalog::command_line(flags.iter().map(|(n, v)| (*n, v.as_deref())))
}

/// The fingerprint a link records for `state`: its hash as a model without symmetry reduction
/// (the Explorer's) computes it, whichever model reached it.
fn fingerprint(state: &State) -> u64 {
    let mut state = state.clone();
    state.symmetric = false;
    sketch::fingerprint(&state)
}

impl Link {
    /// The link of `path`, found in `model`.
    pub fn of(model: &RaftModel, path: &Path<State, Action>) -> Link {
        let mut link = Link::parse(&format!(
            "{STEPS}={}&{STATE}={:x}",
            path.encode(model),
            fingerprint(path.last_state())
        ))
        .expect("Path::encode writes numbers separated by /");
        link.flags = (config(model).into_iter())
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        link
    }

    /// The URL that opens the link in `raftcheck explore` serving on `addr`. Every value is
    /// a number or a lowercase name, so the query needs no escaping.
    pub fn url(&self, addr: &str) -> String {
        let mut q = String::new();
        for (name, value) in &self.flags {
            let _ = write!(q, "{name}");
            if let Some(v) = value {
                let _ = write!(q, "={v}");
            }
            q.push('&');
        }
        let _ = write!(
            q,
            "{STEPS}={}&{STATE}={:016x}",
            self.steps_text(),
            self.state
        );
        format!("http://{addr}{ROUTE}?{q}")
    }

    /// The Explorer's own view of the path, where `raftcheck explore` sends a link it accepts.
    pub fn fragment(&self) -> String {
        format!("#/steps/{}", self.steps_text())
    }

    fn steps_text(&self) -> String {
        let mut s = self.init.to_string();
        for a in &self.actions {
            let _ = write!(s, "/{a}");
        }
        s
    }

    /// The `raftcheck explore` command that serves the link's configuration on `addr`.
    pub fn explore_command(&self, addr: &str) -> String {
        let flags = (self.flags.iter()).map(|(n, v)| (n.as_str(), v.as_deref()));
        format!(
            "raftcheck explore --addr {addr} {}",
            catalog::command_line(flags)
        )
    }

    /// Reads a link from the query of its URL (what follows `?`). Keys other than `steps` and
    /// `state` are flags; a key without `=` is a switch. No value is decoded: a link holds
    /// only numbers, lowercase names and `/`, and anything else does not match any model.
    pub fn parse(query: &str) -> Result<Link, LinkError> {
        let (mut flags, mut steps, mut state) = (Vec::new(), None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (pair, None),
            };
            match name {
                STEPS | STATE => {
                    let (key, slot) = if name == STEPS {
                        (STEPS, &mut steps)
                    } else {
                        (STATE, &mut state)
                    };
                    if slot.replace(value.unwrap_or("")).is_some() {
                        return Err(LinkError::Twice(key));
                    }
                }
                _ => flags.push((name.to_string(), value.map(str::to_string))),
            }
        }
        let steps = steps.ok_or(LinkError::Missing(STEPS))?;
        let state = state.ok_or(LinkError::Missing(STATE))?;
        let numbers: Option<Vec<usize>> = (steps.split('/')).map(|n| n.parse().ok()).collect();
        let (init, actions) = (numbers.as_deref())
            .and_then(<[usize]>::split_first)
            .ok_or_else(|| LinkError::Steps(steps.to_string()))?;
        Ok(Link {
            flags,
            init: *init,
            actions: actions.to_vec(),
            state: (state.len() <= 16)
                .then(|| u64::from_str_radix(state, 16).ok())
                .flatten()
                .ok_or_else(|| LinkError::State(state.to_string()))?,
        })
    }

    /// Whether the link opens the path it was made for in `model`: the same flags, and steps
    /// that replay to a state of the recorded fingerprint. Flags first, since they name the
    /// cause the reader can fix.
    pub fn check(&self, model: &RaftModel) -> Result<(), Mismatch> {
        let differ = differing_flags(&self.flags, &config(model));
        if !differ.is_empty() {
            return Err(Mismatch::Flags(differ));
        }
        let here = fingerprint(&self.replay(model)?);
        if here != self.state {
            return Err(Mismatch::State {
                link: self.state,
                here,
            });
        }
        Ok(())
    }
}

/// Each name's values, sorted (a switch's value is `""`), so that order does not matter.
fn values_by_name<'a>(
    flags: impl Iterator<Item = (&'a str, Option<&'a str>)>,
) -> BTreeMap<&'a str, Vec<String>> {
    let mut by_name: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in flags {
        let values = by_name.entry(name).or_default();
        values.push(value.unwrap_or("").to_string());
        values.sort();
    }
    by_name
}

/// Each flag whose values differ between a link and a model's configuration, by name: the
/// link's values and the model's.
fn differing_flags(
    link: &[(String, Option<String>)],
    here: &[Flag],
) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut link = values_by_name(link.iter().map(|(n, v)| (n.as_str(), v.as_deref())));
    let mut here = values_by_name(here.iter().map(|(n, v)| (*n, v.as_deref())));
    let names: BTreeSet<&str> = link.keys().chain(here.keys()).copied().collect();
    (names.into_iter())
        .filter_map(|name| {
            let (l, h) = (link.remove(name), here.remove(name));
            (l != h).then(|| {
                (
                    name.to_string(),
                    l.unwrap_or_default(),
                    h.unwrap_or_default(),
                )
            })
        })
        .collect()
}

impl Link {
    /// The state the link's steps lead to in `model`, as the Explorer numbers them. Steps are
    /// counted from 1; step 0 picks the initial state.
    fn replay(&self, model: &RaftModel) -> Result<State, Mismatch> {
        let init = model.init_states();
        let count = init.len();
        let mut state = (init.into_iter().nth(self.init)).ok_or(Mismatch::NoAction {
            step: 0,
            index: self.init,
            count,
        })?;
        let mut actions = Vec::new();
        for (n, &index) in self.actions.iter().enumerate() {
            let step = n + 1;
            actions.clear();
            model.actions(&state, &mut actions);
            let count = actions.len();
            let action =
                (actions.drain(..).nth(index)).ok_or(Mismatch::NoAction { step, index, count })?;
            state = (model.next_state(&state, action)).ok_or(Mismatch::Ignored { step })?;
        }
        Ok(state)
    }
}
