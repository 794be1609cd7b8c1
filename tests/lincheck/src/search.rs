//! The Wing–Gong–Lowe search for a linearization of one partition's operations.
//!
//! Lowe's improvement of Wing and Gong: call and return entries in one time-ordered doubly
//! linked list; the earliest remaining entries that are calls are the operations that may
//! take effect next; reaching a return means that operation had to be placed already, so the
//! search backtracks. Configurations (set of linearized operations, state) already seen
//! are not explored again, which turns the exponential tree into a search over distinct
//! configurations.
//!
//! Operations that never returned have no return entry: they are tried at a step only after
//! the completed candidates (any of them invoked before the first remaining return may be
//! placed there), and the search succeeds once every completed operation is placed. Those the
//! specification says cannot matter ([`Specification::pending_may_matter`]) are left out.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Instant;

use crate::history::Operation;
use crate::spec::Specification;

/// The answer for one partition.
pub(crate) enum Search {
    Linearizable,
    OutOfTime,
    /// No linearization; `linearized` is the partial one placing the most completed operations
    /// (indices into the key's operations).
    Stuck {
        linearized: Vec<usize>,
    },
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

/// The operations the search places, by candidate number: the completed ones first, then the
/// pending ones that may matter, by invoke time. Pending ones are kept out of the entry list
/// and tried only after the completed candidates: they may take effect at any point or never,
/// so trying them first would explore subsets of them at every step before the operations
/// that explain the replies.
struct Candidates<'a, S: Specification> {
    /// Index of each candidate among the partition's operations.
    index: Vec<usize>,
    op: Vec<&'a S::Op>,
    /// The recorded reply; `None` for a pending candidate, which may return anything.
    reply: Vec<Option<&'a S::Reply>>,
    invoked: Vec<u64>,
    /// The return time of each completed candidate (so its length is their number).
    returned: Vec<u64>,
}

impl<'a, S: Specification> Candidates<'a, S> {
    fn new(operations: &'a [Operation<S>]) -> Self {
        let (mut index, returned): (Vec<usize>, Vec<u64>) = operations
            .iter()
            .enumerate()
            .filter_map(|(i, op)| op.returned.as_ref().map(|r| (i, r.time)))
            .unzip();
        let replies: Vec<&S::Reply> = operations.iter().filter_map(Operation::reply).collect();
        let mut pending: Vec<usize> = (0..operations.len())
            .filter(|&i| {
                operations[i].returned.is_none()
                    && S::pending_may_matter(&operations[i].op, &replies)
            })
            .collect();
        pending.sort_by_key(|&i| operations[i].invoked);
        index.extend(&pending);
        Candidates {
            op: index.iter().map(|&i| &operations[i].op).collect(),
            reply: index.iter().map(|&i| operations[i].reply()).collect(),
            invoked: index.iter().map(|&i| operations[i].invoked).collect(),
            index,
            returned,
        }
    }

    fn completed(&self) -> usize {
        self.returned.len()
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    /// The completed candidates' call and return entries, linked in time order: entry 2c is
    /// the call of candidate c, 2c + 1 its return. Calls come before returns at equal times,
    /// so operations that merely touch are concurrent.
    fn entries(&self) -> EntryList {
        let mut order: Vec<usize> = (0..2 * self.completed()).collect();
        order.sort_by_key(|&e| {
            let c = e / 2;
            if e % 2 == 0 {
                (self.invoked[c], 0)
            } else {
                (self.returned[c], 1)
            }
        });
        EntryList::new(&order)
    }

    /// The state after candidate `c` takes effect in `state`, or `None` if it would not give
    /// its recorded reply there.
    fn apply(&self, c: usize, state: &S::State) -> Option<S::State> {
        let (reply, after) = S::step(state, self.op[c]);
        self.reply[c].is_none_or(|r| *r == reply).then_some(after)
    }
}

/// One placed operation on the search stack, with what is needed to undo it and resume.
struct Placed<S: Specification> {
    candidate: usize,
    /// For a pending candidate, the barrier it was tried under.
    barrier: u64,
    before: Rc<S::State>,
}

/// What to do at the cursor.
enum Attempt {
    /// Every completed operation is placed (the pending ones may never take effect).
    Done,
    /// The cursor moved without trying anything.
    Moved,
    /// Nothing more to try at this depth.
    Backtrack,
    /// Try to place `candidate` under `barrier`.
    Try { candidate: usize, barrier: u64 },
}

/// A configuration explored: the placed candidates (as a bit set) and the state after them,
/// shared so that a memo entry costs no copy of it.
type Configuration<S> = (Box<[u64]>, Rc<<S as Specification>::State>);

/// The search's whole state: the placed operations (as a stack, a bit set and the remaining
/// entry list), the object's state after them, and the configurations already explored.
struct Searcher<'a, S: Specification> {
    candidates: Candidates<'a, S>,
    list: EntryList,
    /// The sentinel of `list`.
    head: usize,
    linearized: Vec<u64>,
    seen: HashSet<Configuration<S>>,
    state: Rc<S::State>,
    stack: Vec<Placed<S>>,
    longest: LongestPrefix,
    /// Completed operations on the stack.
    completed: usize,
}

/// Searches for a linearization of one partition's `operations` (sorted by invoke time),
/// giving up at `deadline`.
pub(crate) fn search<S: Specification>(
    operations: &[Operation<S>],
    deadline: Option<Instant>,
) -> Search {
    let candidates = Candidates::new(operations);
    let list = candidates.entries();
    Searcher {
        head: 2 * candidates.completed(),
        linearized: vec![0u64; candidates.len().div_ceil(64)],
        candidates,
        list,
        seen: HashSet::new(),
        state: Rc::new(S::initial()),
        stack: Vec::new(),
        longest: LongestPrefix::default(),
        completed: 0,
    }
    .run(deadline)
}

impl<S: Specification> Searcher<'_, S> {
    fn run(mut self, deadline: Option<Instant>) -> Search {
        let mut cursor = self.first();
        let mut steps = 0u32;
        loop {
            steps += 1;
            if steps == CLOCK_EVERY {
                steps = 0;
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Search::OutOfTime;
                }
            }
            match self.attempt(&mut cursor) {
                Attempt::Done => return Search::Linearizable,
                Attempt::Moved => {}
                Attempt::Backtrack => match self.backtrack() {
                    Some(resume) => cursor = resume,
                    None => return self.stuck(),
                },
                Attempt::Try { candidate, barrier } => {
                    cursor = if self.place(candidate, barrier) {
                        self.first()
                    } else {
                        self.advance(cursor)
                    };
                }
            }
        }
    }

    /// The cursor at the earliest remaining entry.
    fn first(&self) -> Cursor {
        Cursor::Entry(self.list.next[self.head])
    }

    /// The cursor after one that pointed at a candidate that could not be placed.
    fn advance(&self, cursor: Cursor) -> Cursor {
        match cursor {
            Cursor::Entry(e) => Cursor::Entry(self.list.next[e]),
            Cursor::Pending { next, barrier } => Cursor::Pending {
                next: next + 1,
                barrier,
            },
        }
    }

    fn is_placed(&self, c: usize) -> bool {
        self.linearized[c / 64] & (1 << (c % 64)) != 0
    }

    fn flip(&mut self, c: usize) {
        self.linearized[c / 64] ^= 1 << (c % 64);
    }

    /// What the cursor points at; moves it along when that is not a candidate to try.
    fn attempt(&self, cursor: &mut Cursor) -> Attempt {
        match *cursor {
            Cursor::Entry(NIL) => Attempt::Done,
            Cursor::Entry(e) if e % 2 == 0 => Attempt::Try {
                candidate: e / 2,
                barrier: 0,
            },
            // A return: that operation had to be placed already; only pending candidates
            // invoked by then remain to try at this depth.
            Cursor::Entry(e) => {
                *cursor = Cursor::Pending {
                    next: 0,
                    barrier: self.candidates.returned[e / 2],
                };
                Attempt::Moved
            }
            Cursor::Pending { next, barrier } => {
                let c = self.candidates.completed() + next;
                if c == self.candidates.len() || self.candidates.invoked[c] > barrier {
                    Attempt::Backtrack
                } else if self.is_placed(c) {
                    *cursor = Cursor::Pending {
                        next: next + 1,
                        barrier,
                    };
                    Attempt::Moved
                } else {
                    Attempt::Try {
                        candidate: c,
                        barrier,
                    }
                }
            }
        }
    }

    /// Places candidate `c` if it gives its reply in the current state and the configuration
    /// it leads to is new.
    fn place(&mut self, c: usize, barrier: u64) -> bool {
        let Some(after) = self.candidates.apply(c, &self.state) else {
            return false;
        };
        let after = Rc::new(after);
        self.flip(c);
        if !self.seen.insert((
            self.linearized.clone().into_boxed_slice(),
            Rc::clone(&after),
        )) {
            self.flip(c);
            return false;
        }
        self.stack.push(Placed {
            candidate: c,
            barrier,
            before: std::mem::replace(&mut self.state, after),
        });
        if c < self.candidates.completed() {
            self.completed += 1;
            self.list.unlink(2 * c);
            self.list.unlink(2 * c + 1);
        }
        self.longest.push(&self.stack, c, self.completed);
        true
    }

    /// Undoes the last placement; the cursor after it, or `None` if nothing was placed.
    fn backtrack(&mut self) -> Option<Cursor> {
        let placed = self.stack.pop()?;
        let c = placed.candidate;
        self.flip(c);
        self.state = placed.before;
        self.longest.pop(self.stack.len());
        Some(if c < self.candidates.completed() {
            self.completed -= 1;
            self.list.relink(2 * c + 1);
            self.list.relink(2 * c);
            Cursor::Entry(self.list.next[2 * c])
        } else {
            Cursor::Pending {
                next: c - self.candidates.completed() + 1,
                barrier: placed.barrier,
            }
        })
    }

    /// No linearization: the longest partial one, as indices into the partition's operations.
    fn stuck(self) -> Search {
        let linearized = self
            .longest
            .best
            .iter()
            .map(|&c| self.candidates.index[c])
            .collect();
        Search::Stuck { linearized }
    }
}

/// The best stack of linearized operations seen, scored by how many *completed* operations it
/// places: a pending operation may be placed or not, so counting it would pad the explanation
/// with operations that explain no reply. Maintained incrementally: `agree` is how much of the
/// current stack equals the start of `best`, so a new record copies only the part that differs.
///
/// At the best stack no completed operation that is due next can be placed: one that could
/// would make a better record (a memo hit would mean that record was already made).
#[derive(Default)]
struct LongestPrefix {
    best: Vec<usize>,
    best_completed: usize,
    agree: usize,
}

impl LongestPrefix {
    /// Called after `candidate` was pushed as the last element of `stack`, which now places
    /// `completed` completed operations.
    fn push<S: Specification>(&mut self, stack: &[Placed<S>], candidate: usize, completed: usize) {
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
