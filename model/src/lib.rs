//! raft-model: the Stateright model over the raft-impl core (filled by the model issue).
