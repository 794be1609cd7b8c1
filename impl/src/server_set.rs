//! A set of servers of one cluster, by id: the votes a candidate was granted, the servers a
//! leader heard from. One word, `Copy` and `Hash`, so that it costs nothing in a model state.

use crate::types::NodeId;

/// A set of server ids below [`ServerSet::CAPACITY`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerSet(u32);

impl ServerSet {
    /// How many ids a set can hold, one bit each: the most servers a cluster may have.
    pub const CAPACITY: usize = u32::BITS as usize;

    /// No server.
    pub const EMPTY: ServerSet = ServerSet(0);

    /// The set of server `id` alone.
    pub fn only(id: NodeId) -> ServerSet {
        ServerSet::EMPTY.with(id)
    }

    /// This set and server `id`.
    pub fn with(self, id: NodeId) -> ServerSet {
        ServerSet(self.0 | 1 << id)
    }

    pub fn insert(&mut self, id: NodeId) {
        *self = self.with(id);
    }

    pub fn contains(self, id: NodeId) -> bool {
        u32::from(id) < u32::BITS && self.0 & 1 << id != 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The ids in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = NodeId> {
        (0..u32::BITS as NodeId).filter(move |id| self.contains(*id))
    }

    /// The same servers under the ids `rename` gives them (`rename[old] == new`), as a model
    /// checker renames a whole state for symmetry reduction.
    pub fn relabel(self, rename: &[NodeId]) -> ServerSet {
        self.iter().map(|old| rename[old as usize]).collect()
    }

    /// The set as a bit mask, bit `i` for server `i`: for a model checker's hash of a state.
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl FromIterator<NodeId> for ServerSet {
    fn from_iter<I: IntoIterator<Item = NodeId>>(iter: I) -> Self {
        iter.into_iter().fold(ServerSet::EMPTY, ServerSet::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_holds_what_was_inserted_once() {
        let mut set = ServerSet::only(2);
        set.insert(0);
        set.insert(2);
        set.insert(31);
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 2, 31]);
        assert_eq!(set.len(), 3);
        assert!(set.contains(31) && !set.contains(1) && !set.contains(200));
        assert!(ServerSet::EMPTY.is_empty() && !set.is_empty());
    }

    #[test]
    fn relabel_moves_each_member_to_its_new_id() {
        let set: ServerSet = [0, 2].into_iter().collect();
        assert_eq!(set.relabel(&[1, 2, 0]), [1, 0].into_iter().collect());
        assert_eq!(set.relabel(&[0, 1, 2]), set);
    }
}
