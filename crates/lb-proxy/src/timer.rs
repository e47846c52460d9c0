//! One timer per client connection, shared by the waits of its exchanges.
//!
//! A `tokio::time::timeout` per wait builds a timer entry, takes the clock, and inserts the entry
//! into the timer wheel and removes it again whenever the wait does not end at once: the idle
//! wait and the wait for the upstream's answer do that on every request. A connection's own
//! `Sleep` reset to a later deadline costs a store (tokio extends a registered entry in place and
//! moves it only when the old deadline comes), and a wait whose I/O is ready at the first poll
//! never touches the timer or the clock.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::Poll;
use tokio::time::{Instant, Sleep};

/// Runs `io` until it completes (`Some`) or `deadline` passes (`None`). The deadline is asked
/// for, and `timer` reset to it, only if `io` is not ready at once.
pub(crate) async fn within<F: Future>(
    mut timer: Pin<&mut Sleep>,
    deadline: impl FnOnce() -> Instant,
    io: F,
) -> Option<F::Output> {
    let mut io = pin!(io);
    let mut deadline = Some(deadline);
    poll_fn(move |cx| {
        if let Poll::Ready(out) = io.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if let Some(deadline) = deadline.take() {
            timer.as_mut().reset(deadline());
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::pending;
    use std::time::Duration;
    use tokio::time::sleep_until;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn ready_io_never_asks_for_a_deadline() {
        runtime().block_on(async {
            let mut timer = pin!(sleep_until(Instant::now()));
            let out = within(
                timer.as_mut(),
                || unreachable!("no deadline needed"),
                async { 7 },
            );
            assert_eq!(out.await, Some(7));
        });
    }

    #[test]
    fn the_deadline_ends_a_wait_and_the_timer_serves_again() {
        runtime().block_on(async {
            let start = Instant::now();
            let mut timer = pin!(sleep_until(start));
            let waited = within(
                timer.as_mut(),
                || start + Duration::from_secs(5),
                pending::<()>(),
            );
            assert_eq!(waited.await, None);
            assert_eq!(start.elapsed(), Duration::from_secs(5));
            // Later and earlier deadlines on the same timer both hold.
            for secs in [60, 2] {
                let begin = Instant::now();
                let deadline = begin + Duration::from_secs(secs);
                assert_eq!(
                    within(timer.as_mut(), || deadline, pending::<()>()).await,
                    None
                );
                assert_eq!(begin.elapsed(), Duration::from_secs(secs));
            }
            // I/O that completes before the deadline wins.
            let io = tokio::time::sleep(Duration::from_secs(1));
            let deadline = Instant::now() + Duration::from_secs(3);
            assert_eq!(within(timer.as_mut(), || deadline, io).await, Some(()));
        });
    }
}
