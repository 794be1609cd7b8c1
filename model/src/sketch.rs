//! A bottom-k sketch of a set of state fingerprints: the `k` smallest fingerprints of the set.
//!
//! Swarm searches each keep their own visited set, and shards run on different machines, so no
//! one holds the union of what they explored. A bottom-k sketch (a "KMV" sketch) answers the two
//! questions `raftcheck merge` asks, from `k` numbers per report:
//!
//! - how many distinct states a set holds: exactly its size when it has fewer than `k`
//!   fingerprints, else `(k - 1) / (m / 2^64)` where `m` is the `k`-th smallest fingerprint
//!   (unbiased; relative standard error about `1 / sqrt(k - 2)`, 1.6 % for `k = 4096`);
//! - how many distinct states a union of sets holds: the bottom-k sketch of a union is the
//!   bottom-k of the union of the sketches, so shards merge without seeing each other's states.
//!
//! Fingerprints are treated as uniform 64-bit numbers, which they are: each is a hash of the
//! state ([`fingerprint`]), taken through the state's `Hash`, which hashes the symmetry
//! representative when symmetry reduction is on.

use std::collections::BTreeSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::state::State;

/// The default `k`: 4096 fingerprints, 64 KiB in memory, about 70 KiB in a JSON report, and
/// 1.6 % relative error on a cardinality.
pub const DEFAULT_K: usize = 4096;

/// How fingerprints are computed, written into every report so that `merge` refuses to compare
/// fingerprints of two schemes (another build of the model may hash states differently).
pub const FINGERPRINT_SCHEME: &str = concat!(
    "std DefaultHasher (SipHash-1-3, zero keys) over State's Hash, raft-model ",
    env!("CARGO_PKG_VERSION")
);

/// The 64-bit fingerprint of `state`, its identity across threads, shards and processes (the
/// distributed search routes states by it): the same for a state and its renamings when it is
/// symmetric ([`crate::symmetry`]). `DefaultHasher::new()` has fixed keys, so one build gives the
/// same fingerprint in every process, which merging shards' sketches needs.
pub fn fingerprint(state: &State) -> u64 {
    let mut h = DefaultHasher::new();
    state.hash(&mut h);
    h.finish()
}

/// The `k` smallest fingerprints seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sketch {
    k: usize,
    values: BTreeSet<u64>,
}

impl Sketch {
    /// An empty sketch keeping the `k` smallest fingerprints (`k >= 2`).
    pub fn new(k: usize) -> Sketch {
        Sketch {
            k: k.max(2),
            values: BTreeSet::new(),
        }
    }

    /// A sketch of `k` holding `values` (as read back from a report): the `k` smallest of them.
    pub fn from_values(k: usize, values: impl IntoIterator<Item = u64>) -> Sketch {
        let mut sketch = Sketch::new(k);
        for v in values {
            sketch.insert(v);
        }
        sketch
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// The fingerprints kept, smallest first.
    pub fn values(&self) -> impl Iterator<Item = u64> + '_ {
        self.values.iter().copied()
    }

    /// Adds one fingerprint (a state seen again changes nothing).
    pub fn insert(&mut self, fingerprint: u64) {
        if self.values.len() < self.k {
            self.values.insert(fingerprint);
        } else if self.values.last().is_some_and(|&max| fingerprint < max)
            && self.values.insert(fingerprint)
        {
            self.values.pop_last();
        }
    }

    /// Adds every fingerprint of `other`: the sketch of the union of both sets.
    pub fn merge(&mut self, other: &Sketch) {
        self.k = self.k.min(other.k);
        for v in other.values() {
            self.insert(v);
        }
        while self.values.len() > self.k {
            self.values.pop_last();
        }
    }

    /// Whether [`Sketch::estimate`] is an exact count: the set had fewer than `k` fingerprints.
    pub fn exact(&self) -> bool {
        self.values.len() < self.k
    }

    /// The number of distinct fingerprints in the set (see the module doc).
    pub fn estimate(&self) -> f64 {
        match self.values.last() {
            Some(&max) if !self.exact() => {
                (self.k - 1) as f64 / ((max as f64 + 1.0) / 18_446_744_073_709_551_616.0)
            }
            _ => self.values.len() as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of uniform 64-bit numbers (SplitMix64).
    fn uniform(seed: u64) -> impl Iterator<Item = u64> {
        let mut x = seed;
        std::iter::repeat_with(move || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
    }

    #[test]
    fn small_sets_are_counted_exactly() {
        let values: Vec<u64> = uniform(1).take(100).collect();
        let mut s = Sketch::new(128);
        for &v in values.iter().chain(&values) {
            s.insert(v);
        }
        assert!(s.exact());
        assert_eq!(s.estimate(), 100.0);
    }

    /// 100 000 distinct values in two halves that share 20 000: each half and the union are
    /// estimated within 5 % (three standard errors of k = 4096), and merging the halves'
    /// sketches gives the union's sketch.
    #[test]
    fn estimates_and_merges() {
        let values: Vec<u64> = uniform(7).take(100_000).collect();
        let (a, b) = (&values[..60_000], &values[40_000..]);
        let sketch = |vs: &[u64]| Sketch::from_values(DEFAULT_K, vs.iter().copied());
        let (sa, sb, all) = (sketch(a), sketch(b), sketch(&values));
        let mut union = sa.clone();
        union.merge(&sb);
        assert_eq!(union, all);
        for (s, n) in [(&sa, 60_000.0), (&sb, 60_000.0), (&all, 100_000.0)] {
            assert!(!s.exact());
            assert!(
                (s.estimate() / n - 1.0).abs() < 0.05,
                "{} vs {n}",
                s.estimate()
            );
        }
    }
}
