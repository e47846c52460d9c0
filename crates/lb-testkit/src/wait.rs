//! The kit's one way to wait for something lb (or a backend, or a thread) reaches on its own
//! time: a health state in `/targets`, a line in the log, a port that accepts, a process that
//! exits, a counter that moves.
//!
//! Why one helper: a poll loop written at a call site tends to lose its deadline, to sleep a fixed
//! time instead of re-checking, or to fail with a message that does not say what it waited for.
//! Here every wait has a deadline, re-checks at a short interval (growing from 5 ms to 100 ms, so
//! a fast condition costs a few milliseconds and a slow one does not spin), and a timeout names
//! the condition and shows the last thing seen. Where an event can be waited for directly (a
//! stdout line, a recorded request), the kit uses a condition variable instead.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// Deadline for anything a healthy lb does at once; generous because CI machines are loaded.
pub const WAIT: Duration = Duration::from_secs(30);

/// First pause between two checks.
const FIRST_PAUSE: Duration = Duration::from_millis(5);

/// Longest pause between two checks.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// Calls `check` until it returns `Ok`, and returns that value; after `timeout`, the last `Err`
/// (the last observation). For callers that must clean up before they fail.
pub(crate) fn poll<T, O>(
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, O>,
) -> Result<T, O> {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        match check() {
            Ok(v) => return Ok(v),
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// Calls `check` until it returns `Ok`, and returns that value; panics with `what` and the last
/// observation (the last `Err`) after `timeout`.
pub fn poll_until<T, O: Debug>(
    timeout: Duration,
    what: &str,
    check: impl FnMut() -> Result<T, O>,
) -> T {
    poll(timeout, check).unwrap_or_else(|last| {
        panic!("{what}: not reached within {timeout:?}; last seen: {last:?}")
    })
}

/// Waits until `condition` holds; panics with `what` after `timeout`. Use [`poll_until`] when
/// the panic message should show what was observed instead.
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    poll_until(timeout, what, || {
        condition().then_some(()).ok_or("still false")
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn returns_the_value_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let v = poll_until(WAIT, "the third call", || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n >= 3 {
                Ok(n)
            } else {
                Err(n)
            }
        });
        assert_eq!(v, 3);
        wait_until(WAIT, "the fourth call", || {
            calls.fetch_add(1, Ordering::SeqCst) >= 3
        });
    }

    #[test]
    fn times_out_with_the_last_observation() {
        let started = Instant::now();
        let last = poll(Duration::from_millis(50), || {
            Err::<(), _>(started.elapsed())
        });
        let last = last.expect_err("never true");
        assert!(last >= Duration::from_millis(50), "gave up early: {last:?}");
        let panic = std::panic::catch_unwind(|| {
            wait_until(Duration::from_millis(20), "the impossible", || false);
        })
        .expect_err("must panic");
        let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.starts_with("the impossible: not reached within 20ms"),
            "{msg}"
        );
    }
}
