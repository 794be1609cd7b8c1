//! The Wing–Gong–Lowe search for a linearization of one key's operations.
//!
//! Lowe's improvement of Wing and Gong: call and return entries in one time-ordered doubly
//! linked list; the earliest remaining entries that are calls are the operations that may
//! take effect next; reaching a return means that operation had to be placed already, so the
//! search backtracks. Configurations (set of linearized operations, register value) already seen
//! are not explored again, which turns the exponential tree into a search over distinct
//! configurations.
//!
//! Operations that never returned have no return entry: they are tried at a step only after
//! the completed candidates (any of them invoked before the first remaining return may be
//! placed there), and the search succeeds once every completed operation is placed.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Instant;

use raft_impl::kv::KvOp;

use super::history::Operation;

/// The answer for one key.
pub(super) enum Search {
    Linearizable,
    OutOfTime,
    /// No linearization; `linearized` is the partial one placing the most completed operations
    /// (indices into the key's operations).
    Stuck {
        linearized: Vec<usize>,
    },
}

/// What an operation does to the register, with values shared so that a Put's new state and
/// the memo entries cost no copy.
enum Effect {
    Put(Rc<str>),
    Append(Rc<str>),
    Get(Rc<str>),
}

impl Effect {
    /// The register value after the operation, or `None` if it cannot happen in `state`.
    fn apply(&self, state: &Rc<str>) -> Option<Rc<str>> {
        match self {
            Effect::Put(v) => Some(Rc::clone(v)),
            Effect::Append(v) => Some(Rc::from(format!("{state}{v}"))),
            Effect::Get(v) => (**v == **state).then(|| Rc::clone(state)),
        }
    }
}

/// How often (in search steps) the deadline is looked at: reading the clock every step would
/// cost more than the step.
const CLOCK_EVERY: u32 = 1024;
const NIL: usize = usize::MAX;

/// The time-ordered entry list, as arrays; a sentinel head sits after the last entry. Removal
/// keeps an entry's own links, so removals undone in reverse order restore the list exactly
/// (dancing links).
struct EntryList {
    next: Vec<usize>,
    prev: Vec<usize>,
}

impl EntryList {
    /// Links entries in `order`, after a sentinel at index `order.len()`.
    fn new(order: &[usize]) -> EntryList {
        let head = order.len();
        let mut next = vec![NIL; head + 1];
        let mut prev = vec![NIL; head + 1];
        let mut last = head;
        for &e in order {
            next[last] = e;
            prev[e] = last;
            last = e;
        }
        EntryList { next, prev }
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }
}

/// Where the search looks for the next operation to place.
enum Cursor {
    /// At an entry of the list of completed operations (`NIL`: the list is empty).
    Entry(usize),
    /// The completed candidates are exhausted; trying pending writes from the `next`-th,
    /// among those invoked no later than `barrier`, the first return left in the list.
    Pending { next: usize, barrier: u64 },
}

/// One placed operation on the search stack, with what is needed to undo it and resume.
struct Placed {
    candidate: usize,
    /// For a pending candidate, the barrier it was tried under.
    barrier: u64,
    before: Rc<str>,
}

pub(super) fn search(operations: &[Operation], deadline: Option<Instant>) -> Search {
    // Candidates: completed operations first, then the pending writes that may matter, by
    // invoke time. Pending writes are kept out of the entry list and tried only after the
    // completed candidates: they may take effect at any point or never, so trying them first
    // would explore subsets of them at every step before the operations that explain reads.
    let (mut candidates, returned): (Vec<usize>, Vec<u64>) = operations
        .iter()
        .enumerate()
        .filter_map(|(i, op)| op.returned.as_ref().map(|r| (i, r.time)))
        .unzip();
    let completed_count = candidates.len();
    let reads: Vec<&str> = operations
        .iter()
        .filter_map(Operation::read_value)
        .collect();
    let mut pending: Vec<usize> = (0..operations.len())
        .filter(|&i| operations[i].returned.is_none() && may_matter(&operations[i].op, &reads))
        .collect();
    pending.sort_by_key(|&i| operations[i].invoked);
    candidates.extend(&pending);
    let effects: Vec<Effect> = candidates
        .iter()
        .map(|&i| {
            let op = &operations[i];
            match &op.op {
                KvOp::Put { value, .. } => Effect::Put(Rc::from(value.as_str())),
                KvOp::Append { value, .. } => Effect::Append(Rc::from(value.as_str())),
                KvOp::Get { .. } => Effect::Get(Rc::from(op.read_value().unwrap_or_default())),
            }
        })
        .collect();
    let invoked: Vec<u64> = candidates.iter().map(|&i| operations[i].invoked).collect();

    // Entry 2c is the call of completed candidate c, 2c + 1 its return. Ordered by time, calls
    // before returns at equal times, so operations that merely touch are concurrent.
    let mut order: Vec<usize> = (0..2 * completed_count).collect();
    order.sort_by_key(|&e| {
        let c = e / 2;
        if e % 2 == 0 {
            (invoked[c], 0)
        } else {
            (returned[c], 1)
        }
    });
    let head = order.len();
    let mut list = EntryList::new(&order);

    let mut linearized = vec![0u64; candidates.len().div_ceil(64)];
    let is_set = |bits: &[u64], c: usize| bits[c / 64] & (1 << (c % 64)) != 0;
    let mut seen: HashSet<(Box<[u64]>, Rc<str>)> = HashSet::new();
    let mut state: Rc<str> = Rc::from("");
    let mut stack: Vec<Placed> = Vec::new();
    let mut longest = LongestPrefix::default();
    let mut completed = 0;
    let mut steps = 0u32;

    let mut cursor = Cursor::Entry(list.next[head]);
    loop {
        steps += 1;
        if steps == CLOCK_EVERY {
            steps = 0;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Search::OutOfTime;
            }
        }
        // The candidate to try now and the barrier it is tried under, or `None` to backtrack.
        let attempt = match cursor {
            // Every completed operation is placed; the pending ones may never take effect.
            Cursor::Entry(NIL) => return Search::Linearizable,
            Cursor::Entry(e) if e % 2 == 0 => Some((e / 2, 0)),
            Cursor::Entry(e) => {
                cursor = Cursor::Pending {
                    next: 0,
                    barrier: returned[e / 2],
                };
                continue;
            }
            Cursor::Pending { next, barrier } => {
                let c = completed_count + next;
                if c == candidates.len() || invoked[c] > barrier {
                    None
                } else if is_set(&linearized, c) {
                    cursor = Cursor::Pending {
                        next: next + 1,
                        barrier,
                    };
                    continue;
                } else {
                    Some((c, barrier))
                }
            }
        };
        let Some((c, barrier)) = attempt else {
            let Some(placed) = stack.pop() else {
                let linearized = longest.best.iter().map(|&c| candidates[c]).collect();
                return Search::Stuck { linearized };
            };
            let c = placed.candidate;
            linearized[c / 64] &= !(1 << (c % 64));
            state = placed.before;
            longest.pop(stack.len());
            cursor = if c < completed_count {
                completed -= 1;
                list.relink(2 * c + 1);
                list.relink(2 * c);
                Cursor::Entry(list.next[2 * c])
            } else {
                Cursor::Pending {
                    next: c - completed_count + 1,
                    barrier: placed.barrier,
                }
            };
            continue;
        };
        if let Some(after) = effects[c].apply(&state) {
            linearized[c / 64] |= 1 << (c % 64);
            if seen.insert((linearized.clone().into_boxed_slice(), Rc::clone(&after))) {
                stack.push(Placed {
                    candidate: c,
                    barrier,
                    before: std::mem::replace(&mut state, after),
                });
                if c < completed_count {
                    completed += 1;
                    list.unlink(2 * c);
                    list.unlink(2 * c + 1);
                }
                longest.push(&stack, c, completed);
                cursor = Cursor::Entry(list.next[head]);
                continue;
            }
            linearized[c / 64] &= !(1 << (c % 64));
        }
        cursor = match cursor {
            Cursor::Entry(e) => Cursor::Entry(list.next[e]),
            Cursor::Pending { next, barrier } => Cursor::Pending {
                next: next + 1,
                barrier,
            },
        };
    }
}

/// Whether a pending operation can change the answer. A pending Get cannot: it changes
/// nothing and constrains nothing. Neither can a pending write whose value no read contains:
/// had it taken effect, every value until the next Put would contain its value, so no read
/// can lie in that window, and after the Put nothing depends on it. Dropping such writes
/// matters because each one kept doubles the configurations the search must tell apart
/// (placed or not), and a crashed client's write is usually never seen.
fn may_matter(op: &KvOp, reads: &[&str]) -> bool {
    match op {
        KvOp::Get { .. } => false,
        KvOp::Put { value, .. } | KvOp::Append { value, .. } => {
            reads.iter().any(|read| read.contains(value.as_str()))
        }
    }
}

/// The best stack of linearized operations seen, scored by how many *completed* operations it
/// places: a pending write may always be placed, so counting it would pad the explanation with
/// writes that never explain a read. Maintained incrementally: `agree` is how much of the
/// current stack equals the start of `best`, so a new record copies only the part that differs.
///
/// At the best stack every completed operation that is due next is a read that cannot be
/// placed: a write could always be placed, and a read that could be placed would make a
/// better record (a memo hit would mean that record was already made).
#[derive(Default)]
struct LongestPrefix {
    best: Vec<usize>,
    best_completed: usize,
    agree: usize,
}

impl LongestPrefix {
    /// Called after `candidate` was pushed as the last element of `stack`, which now places
    /// `completed` completed operations.
    fn push(&mut self, stack: &[Placed], candidate: usize, completed: usize) {
        let depth = stack.len();
        if self.agree + 1 == depth && self.best.get(depth - 1) == Some(&candidate) {
            self.agree = depth;
        } else if completed > self.best_completed {
            self.best.truncate(self.agree);
            self.best
                .extend(stack[self.agree..].iter().map(|p| p.candidate));
            self.agree = depth;
            self.best_completed = completed;
        }
    }

    /// Called after the stack shrank to `depth`.
    fn pop(&mut self, depth: usize) {
        self.agree = self.agree.min(depth);
    }
}
