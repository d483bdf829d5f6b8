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

use std::time::{Duration, Instant};

/// The first window after the queue went quiet for less than the maximum.
pub const START: Duration = Duration::from_micros(4);

/// One queue's polling state (used by its worker only).
#[derive(Debug)]
pub struct PollWindow {
    max: Duration,
    cur: Duration,
    /// When the last batch ended and the queue went quiet.
    quiet_since: Option<Instant>,
}

impl PollWindow {
    /// A window that never exceeds `max` (`Duration::ZERO`: no polling).
    pub fn new(max: Duration) -> Self {
        PollWindow {
            max,
            cur: Duration::ZERO,
            quiet_since: None,
        }
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

    /// Spin until `ready()` says a chain is available or the current
    /// window has passed since the queue went quiet; returns whether one
    /// came. Bounded by the window, which is at most the maximum.
    pub fn poll(&mut self, mut ready: impl FnMut() -> bool) -> bool {
        let Some(since) = self.quiet_since else {
            return false;
        };
        if self.cur.is_zero() {
            return false;
        }
        let end = since + self.cur;
        loop {
            if ready() {
                self.busy(Instant::now());
                return true;
            }
            if Instant::now() >= end {
                return false;
            }
            std::hint::spin_loop();
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

    #[test]
    fn poll_is_bounded_by_the_window_and_stops_on_a_chain() {
        let mut w = PollWindow::new(Duration::from_millis(2));
        gap(&mut w, Duration::from_millis(1));
        assert_eq!(w.window(), START);
        w.quiet(Instant::now());
        let t = Instant::now();
        assert!(!w.poll(|| false));
        let spent = t.elapsed();
        assert!(spent < Duration::from_millis(50), "spun {spent:?}");
        // A chain on the third look ends the poll and counts as caught.
        let mut looks = 0;
        w.quiet(Instant::now());
        let caught = w.poll(|| {
            looks += 1;
            looks == 3
        });
        assert!(caught);
        assert_eq!(looks, 3);
        // Caught in the window, or just after it on a slow machine.
        assert!(w.window() >= START);
    }
}
