#!/usr/bin/env bash
# Model-check the Raft core of this repository in CI: what examples/ci/github-workflow.yml runs,
# and .ci/run too. Writes the JSON documents and the HTML page of the check to the directory
# given (default raftcheck-out/), prints each run's one-line verdict, and exits non-zero when
# either fails (exit codes: 1 fail, 3 incomplete, 4 vacuous; see the README).
#
# To check your own core: make impl/src/node.rs (the model drives it through raft_impl::Node)
# your implementation, then run this. Add bounds to the check line for a longer run.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:-raftcheck-out}
mkdir -p "$out"

cargo build --release --locked -p raft-model --bin raftcheck || exit 2
status=0
# Every property on the default bounds; on a failure the page draws the counterexample.
target/release/raftcheck check --json --html "$out/check.html" >"$out/check.json" || status=$?
# Every deliberate bug of the catalog is still caught: the properties can fail.
target/release/raftcheck bugs --run --json >"$out/bugs.json" || { [ "$status" -ne 0 ] || status=$?; }
grep -ho '"summary":"[^"]*"' "$out/check.json" "$out/bugs.json"
exit "$status"
