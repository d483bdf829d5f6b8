//! Adaptive polling of a request queue's available ring after a batch,
//! the way QEMU's iothreads poll (`poll-max-ns`, util/aio-posix.c
//! `adjust_polling_time`): a worker that has just emptied its queue keeps
//! looking at the available ring for a short window before it re-enables
//! notifications and sleeps in epoll. A chain found in the window costs the
//! guest no kick (no ioeventfd write from the vCPU thread) and the worker no
//! wake-up.
//!
//! The window adapts to how long the queue actually stayed quiet after a
//! batch: if the next chain came after the window but within the maximum,
//! the window doubles (from [`START`]); if it came after more than the
//! maximum (the guest is idle or thinks long), the window halves, down to
//! 0. So a quiet guest costs at most a few short windows, then none: the
//! worker sleeps in epoll as without polling. A maximum of 0 turns polling
//! off.
//!
//! Polling pays only with a CPU to spare. On a small host (2 cores under
//! TCG: the vCPU thread, QEMU's main loop, which delivers our interrupts
//! there, and this worker) a spinning worker takes the CPU the main loop
//! needs: 4 KiB QD1 reads fell to 0.47x of QEMU's scsi-hd with a spinning
//! 500 us window on a loaded host (issue 17). So the worker yields its CPU between looks at the ring
//! (`sched_yield`), and a look that comes [`PREEMPTED`] or more after the
//! previous one means another thread wanted this CPU: polling stops at
//! once and stays off for [`BACKOFF`].

use std::time::{Duration, Instant};

use log::info;

use super::{lock, ScsiBackend};

/// The first window after the queue went quiet for less than the maximum.
pub const START: Duration = Duration::from_micros(4);

/// A gap this long between two looks at the ring means the worker was off
/// its CPU (a yield that let another thread run, or a preemption): the
/// host has no CPU to spare for polling.
pub const PREEMPTED: Duration = Duration::from_micros(50);

/// How long polling stays off after a poll was preempted: the window is 0
/// and does not grow until then (then it starts again from [`START`]).
pub const BACKOFF: Duration = Duration::from_millis(20);

/// One queue's polling state (used by its worker only).
#[derive(Debug)]
pub struct PollWindow {
    max: Duration,
    cur: Duration,
    /// When the last batch ended and the queue went quiet.
    quiet_since: Option<Instant>,
    /// No polling before this (set by a preempted poll, see [`BACKOFF`]).
    hold_until: Option<Instant>,
    counts: PollCounts,
}

/// What one queue's polls came to, for the log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollCounts {
    /// Polls that looked at the ring at least once.
    pub polls: u64,
    /// Of them, those that found a chain (the guest's kick was saved).
    pub caught: u64,
    /// Of them, those ended by a preemption (polling then backed off).
    pub preempted: u64,
}

impl PollWindow {
    /// A window that never exceeds `max` (`Duration::ZERO`: no polling).
    pub fn new(max: Duration) -> Self {
        PollWindow {
            max,
            cur: Duration::ZERO,
            quiet_since: None,
            hold_until: None,
            counts: PollCounts::default(),
        }
    }

    /// What the polls came to so far.
    pub fn counts(&self) -> PollCounts {
        self.counts
    }

    /// The current window.
    pub fn window(&self) -> Duration {
        self.cur
    }

    /// The last batch ended at `now`: the queue is quiet from here on.
    pub fn quiet(&mut self, now: Instant) {
        self.quiet_since = Some(now);
    }

    /// A new chain was seen at `now` (found by polling, or the worker was
    /// kicked): adapt the window to how long the queue was quiet.
    pub fn busy(&mut self, now: Instant) {
        let Some(since) = self.quiet_since.take() else {
            return;
        };
        if self.hold_until.is_some_and(|h| now < h) {
            return;
        }
        self.hold_until = None;
        let quiet = now.saturating_duration_since(since);
        if self.max.is_zero() || quiet <= self.cur {
            // Caught in the window (or polling is off): nothing to adapt.
        } else if quiet > self.max {
            // Polling would have to last too long: poll less.
            self.cur /= 2;
            if self.cur < START {
                self.cur = Duration::ZERO;
            }
        } else {
            // Came soon after the window ended: poll longer.
            self.cur = if self.cur.is_zero() {
                START
            } else {
                self.cur * 2
            }
            .min(self.max);
        }
    }

    /// Look at the ring (`ready()`: a chain is available) until it says
    /// so or the current window has passed since the queue went quiet,
    /// yielding the CPU between looks; returns whether a chain came. A
    /// preempted poll (see [`PREEMPTED`]) ends at once and turns polling
    /// off for [`BACKOFF`]. Bounded by the window, which is at most the
    /// maximum.
    pub fn poll(&mut self, ready: impl FnMut() -> bool) -> bool {
        self.poll_with(ready, Instant::now, std::thread::yield_now)
    }

    /// [`poll`](Self::poll) with its clock and its pause between looks
    /// given (the tests' are simulated).
    fn poll_with(
        &mut self,
        mut ready: impl FnMut() -> bool,
        mut clock: impl FnMut() -> Instant,
        mut pause: impl FnMut(),
    ) -> bool {
        let Some(since) = self.quiet_since else {
            return false;
        };
        if self.cur.is_zero() {
            return false;
        }
        let end = since + self.cur;
        let mut last = clock();
        self.counts.polls += 1;
        loop {
            if ready() {
                self.counts.caught += 1;
                self.busy(clock());
                return true;
            }
            let now = clock();
            if now.saturating_duration_since(last) >= PREEMPTED {
                self.counts.preempted += 1;
                self.cur = Duration::ZERO;
                self.hold_until = Some(now + BACKOFF);
                return false;
            }
            if now >= end {
                return false;
            }
            last = now;
            pause();
        }
    }
}

impl Drop for ScsiBackend {
    /// Logs what adaptive polling came to on this connection (its
    /// backend ends with it).
    fn drop(&mut self) {
        for (q, p) in self.polls.iter().enumerate() {
            let c = lock(p).counts();
            if c.polls > 0 {
                info!(
                    "queue {q}: {} polls, {} found a request, {} preempted (polling backed off)",
                    c.polls, c.caught, c.preempted
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_micros(64);

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// Quiet for `d`, then a chain arrives (by a kick).
    fn gap(w: &mut PollWindow, d: Duration) {
        let t = Instant::now();
        w.quiet(t);
        w.busy(t + d);
    }

    #[test]
    fn grows_while_chains_come_soon_and_stays_within_the_maximum() {
        let mut w = PollWindow::new(MAX);
        assert_eq!(w.window(), Duration::ZERO);
        gap(&mut w, us(50));
        assert_eq!(w.window(), START);
        let mut seen = vec![w.window()];
        for _ in 0..10 {
            gap(&mut w, us(60));
            seen.push(w.window());
        }
        assert_eq!(&seen[..5], &[us(4), us(8), us(16), us(32), us(64)]);
        assert!(seen.iter().all(|&d| d <= MAX));
        // Caught inside the window: unchanged.
        gap(&mut w, us(10));
        assert_eq!(w.window(), MAX);
    }

    #[test]
    fn shrinks_to_nothing_when_the_guest_is_idle() {
        let mut w = PollWindow::new(MAX);
        for _ in 0..5 {
            gap(&mut w, us(60));
        }
        assert_eq!(w.window(), MAX);
        let mut n = 0;
        while !w.window().is_zero() {
            gap(&mut w, Duration::from_millis(10));
            n += 1;
            assert!(n < 10, "window never reached 0");
        }
        // 64 -> 32 -> 16 -> 8 -> 4 -> 0.
        assert_eq!(n, 5);
        // No window: polling returns at once, without asking.
        w.quiet(Instant::now());
        assert!(!w.poll(|| panic!("polled with a zero window")));
    }

    #[test]
    fn off_never_polls() {
        let mut w = PollWindow::new(Duration::ZERO);
        for _ in 0..5 {
            gap(&mut w, us(1));
        }
        assert_eq!(w.window(), Duration::ZERO);
        w.quiet(Instant::now());
        assert!(!w.poll(|| true));
    }

    /// A clock that starts at `t0` and moves `step` per reading; `jump`
    /// more on reading number `at` (a preemption).
    fn sim_clock(
        t0: Instant,
        step: Duration,
        at: usize,
        jump: Duration,
    ) -> impl FnMut() -> Instant {
        let mut n = 0;
        let mut t = t0;
        move || {
            n += 1;
            t += step;
            if n == at {
                t += jump;
            }
            t
        }
    }

    #[test]
    fn poll_is_bounded_by_the_window_and_stops_on_a_chain() {
        let mut w = PollWindow::new(Duration::from_millis(2));
        gap(&mut w, Duration::from_millis(1));
        assert_eq!(w.window(), START);
        let t0 = Instant::now();
        w.quiet(t0);
        // 1 us per reading, the first at +1 us: the 4 us window ends at
        // the reading after the third look.
        let mut looks = 0;
        let mut pauses = 0;
        let caught = w.poll_with(
            || {
                looks += 1;
                false
            },
            sim_clock(t0, us(1), 0, Duration::ZERO),
            || pauses += 1,
        );
        assert!(!caught);
        assert_eq!((looks, pauses), (3, 2));
        assert_eq!(w.window(), START);
        // A chain on the third look ends the poll and counts as caught.
        let mut looks = 0;
        w.quiet(t0);
        let caught = w.poll_with(
            || {
                looks += 1;
                looks == 3
            },
            sim_clock(t0, us(1), 0, Duration::ZERO),
            || {},
        );
        assert!(caught);
        assert_eq!(looks, 3);
        assert_eq!(w.window(), START);
        let c = PollCounts {
            polls: 2,
            caught: 1,
            preempted: 0,
        };
        assert_eq!(w.counts(), c);
        // The real clock and pause: bounded too.
        w.quiet(Instant::now());
        let t = Instant::now();
        assert!(!w.poll(|| false));
        let spent = t.elapsed();
        assert!(spent < Duration::from_millis(50), "spun {spent:?}");
    }

    #[test]
    fn a_preempted_poll_stops_and_polling_stays_off_for_the_backoff() {
        let mut w = PollWindow::new(Duration::from_millis(5));
        for _ in 0..12 {
            gap(&mut w, Duration::from_millis(3));
        }
        // Grown until the 3 ms gaps fall inside it.
        assert_eq!(w.window(), us(4096));
        // The third reading of the clock comes PREEMPTED late: the worker
        // was off its CPU between the second and third look.
        let t0 = Instant::now();
        w.quiet(t0);
        let mut looks = 0;
        let caught = w.poll_with(
            || {
                looks += 1;
                false
            },
            sim_clock(t0, us(1), 3, PREEMPTED),
            || {},
        );
        assert!(!caught);
        assert_eq!(looks, 2);
        assert_eq!(w.window(), Duration::ZERO);
        let c = PollCounts {
            polls: 1,
            caught: 0,
            preempted: 1,
        };
        assert_eq!(w.counts(), c);
        // Chains that come soon do not grow the window during the backoff.
        let t1 = t0 + us(3) + PREEMPTED;
        for i in 1..=5 {
            w.quiet(t1 + BACKOFF * i / 10);
            w.busy(t1 + BACKOFF * i / 10 + us(100));
        }
        assert_eq!(w.window(), Duration::ZERO);
        w.quiet(t1);
        assert!(!w.poll(|| panic!("polled during the backoff")));
        // After it, the window grows again from START.
        w.quiet(t1 + BACKOFF);
        w.busy(t1 + BACKOFF + us(100));
        assert_eq!(w.window(), START);
    }
}
