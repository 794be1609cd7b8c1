//! raft-tests: the deterministic simulator and the 6.5840 suite (filled by the simulator issue).
