//! When to respawn a worker that died: at once the first time, after a growing delay when it
//! keeps dying soon after its start.
//!
//! A worker that panics on every connection (one client's input hitting a bug) would otherwise
//! be respawned in a hot loop. The policy is the crash-loop back-off operators know from
//! systemd's restart limits and Kubernetes' `CrashLoopBackOff`: a worker that ran for at least
//! [`STABLE_AFTER`] is respawned immediately; one that dies sooner than that after its previous
//! start waits [`FIRST_DELAY`], doubling on each further quick death up to [`MAX_DELAY`]; a run
//! of [`STABLE_AFTER`] resets it. Meanwhile its socket stays open in the supervisor, so
//! connections queue there and the respawned worker serves them.
//!
//! The policy ([`Respawns`]) is pure: the time is always passed in, nothing sleeps. Its users
//! never block on a back-off either: the worker set (`workers`) only records the deadline, and
//! the supervisor's event loop waits for its next event or the earliest pending respawn,
//! whichever comes first, so signals, reloads and the other workers are handled meanwhile, and a
//! SIGTERM during a back-off simply drains and exits.

use std::time::{Duration, Instant};

/// A worker that ran at least this long before dying is respawned immediately.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(10);
/// The delay after the first quick death.
pub(crate) const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The delay never grows beyond this.
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(5);

/// One worker's history: when it last started, how many deaths in a row came soon after the
/// previous one's respawn (counting the first death of the run), and the respawn it waits for.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    started: Option<Instant>,
    streak: u32,
    due: Option<Instant>,
}

/// The respawn schedule of every worker.
#[derive(Debug)]
pub(crate) struct Respawns {
    slots: Vec<Slot>,
}

impl Respawns {
    pub(crate) fn new(workers: usize) -> Self {
        Respawns {
            slots: vec![Slot::default(); workers],
        }
    }

    /// Worker `id` was started at `now`.
    pub(crate) fn started(&mut self, id: usize, now: Instant) {
        if let Some(slot) = self.slots.get_mut(id) {
            slot.started = Some(now);
            slot.due = None;
        }
    }

    /// Worker `id` died at `now`: returns how long to wait before respawning it, and remembers
    /// the deadline when that is not zero.
    pub(crate) fn died(&mut self, id: usize, now: Instant) -> Duration {
        let Some(slot) = self.slots.get_mut(id) else {
            return Duration::ZERO;
        };
        let quick = slot
            .started
            .is_some_and(|started| now.saturating_duration_since(started) < STABLE_AFTER);
        slot.streak = if quick && slot.streak > 0 {
            slot.streak.saturating_add(1)
        } else {
            1
        };
        let delay = delay_for(slot.streak);
        slot.due = (!delay.is_zero()).then(|| now + delay);
        delay
    }

    /// The earliest pending respawn, if any.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.due).min()
    }

    /// The workers whose respawn is due at `now`; each is returned once.
    pub(crate) fn take_due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for (id, slot) in self.slots.iter_mut().enumerate() {
            if slot.due.is_some_and(|at| at <= now) {
                slot.due = None;
                due.push(id);
            }
        }
        due
    }
}

/// The delay for the `streak`-th death in a row: none for the first, then [`FIRST_DELAY`]
/// doubling, at most [`MAX_DELAY`].
fn delay_for(streak: u32) -> Duration {
    match streak {
        0 | 1 => Duration::ZERO,
        n => FIRST_DELAY
            .saturating_mul(2u32.saturating_pow(n - 2))
            .min(MAX_DELAY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_delay_doubles_from_100ms_up_to_the_cap() {
        let delays: Vec<Duration> = (1..10).map(delay_for).collect();
        assert_eq!(
            delays,
            [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000].map(ms)
        );
        assert_eq!(delay_for(u32::MAX), MAX_DELAY, "no overflow");
    }

    #[test]
    fn quick_deaths_back_off_and_a_long_run_resets() {
        let t0 = Instant::now();
        let mut r = Respawns::new(2);
        r.started(0, t0);
        // First death, however soon: immediate.
        assert_eq!(r.died(0, t0 + ms(50)), Duration::ZERO);
        assert_eq!(r.next_due(), None);
        let mut now = t0 + ms(50);
        for want in [100, 200, 400] {
            r.started(0, now);
            now += ms(20);
            assert_eq!(r.died(0, now), ms(want));
            now += ms(want);
        }
        r.started(0, now);
        // Ran long enough: immediate again, and the next quick death starts over at 100 ms.
        now += STABLE_AFTER;
        assert_eq!(r.died(0, now), Duration::ZERO);
        r.started(0, now);
        assert_eq!(r.died(0, now + ms(1)), ms(100));
    }

    #[test]
    fn pending_respawns_come_due_in_order_and_once() {
        let t0 = Instant::now();
        let mut r = Respawns::new(3);
        for id in 0..3 {
            r.started(id, t0);
            assert_eq!(r.died(id, t0), Duration::ZERO);
            r.started(id, t0);
        }
        assert_eq!(r.died(2, t0), ms(100));
        r.started(1, t0);
        assert_eq!(r.died(1, t0), ms(100));
        r.started(1, t0 + ms(100));
        assert_eq!(
            r.next_due(),
            Some(t0 + ms(100)),
            "started: no longer pending"
        );
        assert_eq!(r.died(1, t0 + ms(150)), ms(200));
        assert_eq!(r.take_due(t0 + ms(99)), Vec::<usize>::new());
        assert_eq!(r.take_due(t0 + ms(100)), vec![2]);
        assert_eq!(r.next_due(), Some(t0 + ms(350)));
        assert_eq!(r.take_due(t0 + ms(1000)), vec![1]);
        assert_eq!(r.take_due(t0 + ms(1000)), Vec::<usize>::new(), "once");
        assert_eq!(r.next_due(), None);
        assert_eq!(r.died(9, t0), Duration::ZERO, "unknown worker: no panic");
    }
}
