//! Catching a panic inside one step of the model, so that a core that panics is reported like
//! any other bug (a violation of "no step panics" with the path to the step) instead of killing
//! the checker's threads with a backtrace and exit code 101.
//!
//! A person changing the core more often gets an index out of range than a wrong but quiet
//! state. The model runs every step through [`catch`]; a step that panics yields the state it
//! started from marked with the [`StepPanic`] (`State::with_panic`), which has no successors,
//! so the checker reports the shortest path to it under breadth-first search, as for any
//! violation.
//!
//! Where the panic happened is only known to the panic hook (`catch_unwind` hands back the
//! payload alone), so a hook records it. The hook is installed once per process and never
//! removed: it keeps quiet only for a panic inside [`catch`] on the same thread and passes every
//! other panic to the hook it replaced. Installing and restoring a hook around each run would
//! race between runs on several threads of one process (parallel tests), and one run could put
//! back the hook another had just replaced.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::panic::{self, AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

/// A panic caught in a step: its message and where in the source it was raised.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StepPanic {
    pub message: String,
    /// `file:line:column` of the panic, as the panic hook reports it.
    pub location: String,
}

impl fmt::Display for StepPanic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked at {}: {}", self.location, self.message)
    }
}

thread_local! {
    /// How many calls of [`catch`] this thread is inside: the hook keeps quiet only then.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    /// The last panic the hook kept quiet on this thread, for [`catch`] to pick up.
    static CAUGHT: RefCell<Option<StepPanic>> = const { RefCell::new(None) };
}

/// Runs `f`, returning what it panicked with instead of unwinding further.
///
/// `AssertUnwindSafe` is sound here because a step only reads the model and the state it
/// starts from and builds its successor in fresh copies (`Arc::make_mut` copies anything
/// shared): a panic leaves nothing half-changed that anyone else can see.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, StepPanic> {
    install_hook();
    CATCHING.with(|c| c.set(c.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    result.map_err(|payload| {
        // Another hook set after ours would leave nothing recorded: the payload still says
        // what happened, if not where.
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| StepPanic {
                message: message(payload.as_ref()),
                location: "unknown location".to_string(),
            })
    })
}

/// Installs, once per process, the hook that records a panic inside [`catch`] and hands any
/// other to the hook installed before it.
fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            if CATCHING.with(Cell::get) == 0 {
                return previous(info);
            }
            let caught = StepPanic {
                message: message(info.payload()),
                location: info
                    .location()
                    .map_or_else(|| "unknown location".to_string(), |l| l.to_string()),
            };
            CAUGHT.with(|c| *c.borrow_mut() = Some(caught));
        }));
    });
}

/// The text of a panic payload: `panic!` with a literal gives a `&str`, with formatting a
/// `String`; anything else (`panic_any`) has no text.
fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_returned_with_its_message_and_location() {
        let line = line!() + 1;
        let caught = catch(|| -> u8 { panic!("index {} out of range", 3) }).unwrap_err();
        assert_eq!(caught.message, "index 3 out of range");
        assert!(
            caught.location.starts_with(&format!("{}:{line}:", file!())),
            "{caught}"
        );
    }

    #[test]
    fn a_step_that_does_not_panic_returns_its_value() {
        assert_eq!(catch(|| 7), Ok(7));
    }

    #[test]
    fn nested_catches_each_see_their_own_panic() {
        let outer = catch(|| {
            let inner = catch(|| -> () { panic!("inner") }).unwrap_err();
            assert_eq!(inner.message, "inner");
            panic!("outer")
        });
        assert_eq!(outer.unwrap_err().message, "outer");
    }
}
