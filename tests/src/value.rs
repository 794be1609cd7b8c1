//! The command type the 6.5840 suite replicates.
//!
//! The Go suite hands `Start` plain integers, except RPCBytes which sends 5 000-byte strings to
//! measure what the encoding costs. One small enum covers both while keeping traces readable.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A command as the tester proposes it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Value {
    Int(u64),
    Text(String),
}

impl fmt::Debug for Value {
    /// Integers print as themselves; text prints its length, since RPCBytes' 5 000-byte strings
    /// would drown a trace.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(x) => write!(f, "{x}"),
            Value::Text(s) => write!(f, "text({} bytes)", s.len()),
        }
    }
}

impl From<u64> for Value {
    fn from(x: u64) -> Value {
        Value::Int(x)
    }
}
