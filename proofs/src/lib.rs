//! raft-proofs: the safety argument (filled once the model exists).
