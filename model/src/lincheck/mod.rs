//! Linearizability checking of recorded KV histories (Wing–Gong–Lowe), filled by the linearizability issue.
