//! Which seeds a test runs on, and the command that replays a failing one.
//!
//! - `RAFT_SEEDS=N` runs seeds `0..N` (default [`DEFAULT_SEEDS`], what CI runs);
//! - `RAFT_SEED=S` runs seed `S` alone (the replay of a failure);
//! - `RAFT_TRACE=1` prints the event trace of every run to stderr (use with `RAFT_SEED` and
//!   `--nocapture`).

use std::env;
use std::fmt;

use raft_impl::MutationSet;

use crate::suite;
use crate::trace::TraceEvent;

/// Seeds per test when `RAFT_SEEDS` is not set.
pub const DEFAULT_SEEDS: u64 = 20;

/// The name of the integration test binary that holds the suite, for the replay command.
const TEST_BINARY: &str = "mit_suite";

/// A seed variable that does not hold a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{var}={value:?} is not a non-negative integer")]
pub struct BadSeedVar {
    pub var: &'static str,
    pub value: String,
}

fn parse_var(var: &'static str, value: Option<String>) -> Result<Option<u64>, BadSeedVar> {
    value
        .map(|value| value.trim().parse().map_err(|_| BadSeedVar { var, value }))
        .transpose()
}

/// The seeds that `RAFT_SEED` and `RAFT_SEEDS` (their values, if set) ask for.
pub fn seeds_from(seed: Option<String>, count: Option<String>) -> Result<Vec<u64>, BadSeedVar> {
    seeds_or(seed, count, DEFAULT_SEEDS)
}

/// As [`seeds_from`], with `default` seeds when `RAFT_SEEDS` is not set.
fn seeds_or(
    seed: Option<String>,
    count: Option<String>,
    default: u64,
) -> Result<Vec<u64>, BadSeedVar> {
    if let Some(seed) = parse_var("RAFT_SEED", seed)? {
        return Ok(vec![seed]);
    }
    let count = parse_var("RAFT_SEEDS", count)?.unwrap_or(default);
    Ok((0..count).collect())
}

/// The seeds the environment asks for.
pub fn seeds_from_env() -> Result<Vec<u64>, BadSeedVar> {
    seeds_from_env_or(DEFAULT_SEEDS)
}

/// The seeds the environment asks for, `default` of them unless `RAFT_SEEDS` says otherwise
/// (for tests whose runs are cheap enough to take more seeds than the suite's).
pub fn seeds_from_env_or(default: u64) -> Result<Vec<u64>, BadSeedVar> {
    seeds_or(
        env::var("RAFT_SEED").ok(),
        env::var("RAFT_SEEDS").ok(),
        default,
    )
}

/// Whether `RAFT_TRACE` asks for event traces.
pub fn trace_requested() -> bool {
    env::var("RAFT_TRACE").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The one command that replays scenario `name` on `seed`, printing its trace.
pub fn replay_command(name: &str, seed: u64) -> String {
    replay_command_in(TEST_BINARY, name, seed)
}

/// The one command that replays test `name` of integration test binary `binary` on `seed`.
pub fn replay_command_in(binary: &str, name: &str, seed: u64) -> String {
    format!(
        "RAFT_SEED={seed} RAFT_TRACE=1 cargo test -p raft-tests --release --test {binary} \
         -- --exact {name} --nocapture"
    )
}

/// Prints the event trace of scenario `name`'s run on `seed` to stderr.
pub fn print_trace<C: fmt::Debug>(name: &str, seed: u64, trace: &[TraceEvent<C>]) {
    eprintln!("==== {name}, seed {seed} ====");
    for event in trace {
        eprintln!("{event}");
    }
}

/// Runs scenario `name` on every seed the environment asks for ([`DEFAULT_SEEDS`] unless it
/// says), with the correct core.
///
/// # Panics
///
/// On the first failing seed, with the failure and the command that replays it; also on an
/// unknown scenario or a malformed seed variable.
pub fn check_scenario(name: &str) {
    check_scenario_or(name, DEFAULT_SEEDS);
}

/// As [`check_scenario`], on `default` seeds unless the environment says otherwise.
pub fn check_scenario_or(name: &str, default: u64) {
    let scenario = suite::find(name).unwrap_or_else(|e| panic!("{e}"));
    let seeds = seeds_from_env_or(default).unwrap_or_else(|e| panic!("{e}"));
    let trace = trace_requested();
    for seed in seeds {
        let run = scenario.run(seed, MutationSet::NONE, trace);
        if trace {
            print_trace(name, seed, &run.trace);
        }
        if let Err(failure) = run.outcome {
            panic!(
                "{name} failed on seed {seed} at {:.3} s of virtual time: {failure}\n\
                 replay: {}",
                run.elapsed.as_secs_f64(),
                replay_command(name, seed)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_twenty_seeds_from_zero() {
        assert_eq!(seeds_from(None, None), Ok((0..DEFAULT_SEEDS).collect()));
    }

    #[test]
    fn the_default_count_can_be_chosen_and_overridden() {
        assert_eq!(seeds_or(None, None, 3), Ok(vec![0, 1, 2]));
        assert_eq!(seeds_or(None, Some("2".into()), 200), Ok(vec![0, 1]));
    }

    #[test]
    fn one_seed_overrides_the_count() {
        assert_eq!(
            seeds_from(Some("42".into()), Some("1000".into())),
            Ok(vec![42])
        );
        assert_eq!(seeds_from(None, Some("3".into())), Ok(vec![0, 1, 2]));
    }

    #[test]
    fn a_malformed_variable_is_an_error_naming_it() {
        let err = seeds_from(None, Some("many".into())).unwrap_err();
        assert_eq!(err.var, "RAFT_SEEDS");
        assert!(err.to_string().contains("many"));
    }

    #[test]
    fn the_replay_command_names_seed_and_test() {
        let cmd = replay_command("figure8_3c", 17);
        assert!(cmd.starts_with("RAFT_SEED=17 "));
        assert!(cmd.contains("--test mit_suite -- --exact figure8_3c"));
    }
}
