//! Progress of a long run on stderr: on a terminal one live line
//! (`[2/6] smoke on 6.12  0:14 (run 0:41)`) redrawn every second; in CI logs
//! (stderr not a terminal, or `$CI` set) plain lines when a cell starts
//! and ends. The ticker thread is joined when the [`Tick`] ends.

use std::{
    io::{IsTerminal as _, Write as _},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

/// `m:ss`, or `h:mm:ss` past an hour.
pub fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// The live line's text.
pub fn line(n: usize, of: usize, what: &str, this: Duration, all: Duration) -> String {
    format!("[{n}/{of}] {what}  {} (run {})", clock(this), clock(all))
}

/// Progress over `total` steps.
#[derive(Debug)]
pub struct Progress {
    total: usize,
    started: Instant,
    live: bool,
}

impl Progress {
    /// `quiet_terminal`: never draw the live line (e.g. the console is
    /// being copied to the terminal with `--verbose`).
    pub fn new(total: usize, quiet_terminal: bool) -> Self {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        Progress {
            total,
            started: Instant::now(),
            live: !quiet_terminal && !ci && std::io::stderr().is_terminal(),
        }
    }

    /// Step `n` (1-based) starts; the returned tick ends it.
    pub fn step(&self, n: usize, what: &str) -> Tick {
        let (total, run_start) = (self.total, self.started);
        if !self.live {
            eprintln!(
                "[{n}/{total}] {what}: started (run {})",
                clock(run_start.elapsed())
            );
            return Tick {
                stop: Arc::new(AtomicBool::new(true)),
                thread: None,
                live: false,
                label: format!("[{n}/{total}] {what}"),
                started: Instant::now(),
                run_start,
            };
        }
        let stop = Arc::new(AtomicBool::new(false));
        let step_start = Instant::now();
        let thread = {
            let (stop, what) = (Arc::clone(&stop), what.to_owned());
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let l = line(n, total, &what, step_start.elapsed(), run_start.elapsed());
                        let mut e = std::io::stderr().lock();
                        let _ = write!(e, "\r\x1b[K{l}");
                        let _ = e.flush();
                        drop(e);
                        for _ in 0..10 {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                })
                .ok()
        };
        Tick {
            stop,
            thread,
            live: true,
            label: format!("[{n}/{total}] {what}"),
            started: step_start,
            run_start,
        }
    }
}

/// One running step; [`Tick::done`] (or drop) ends it.
#[derive(Debug)]
pub struct Tick {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    live: bool,
    label: String,
    started: Instant,
    run_start: Instant,
}

impl Tick {
    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
            if self.live {
                eprint!("\r\x1b[K");
            }
        }
    }

    /// Ends the step with its result word (`PASS`, `FAIL`).
    pub fn done(mut self, result: &str) {
        self.halt();
        if !self.live {
            eprintln!(
                "{}: {result} in {} (run {})",
                self.label,
                clock(self.started.elapsed()),
                clock(self.run_start.elapsed())
            );
        }
    }
}

impl Drop for Tick {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(clock(Duration::from_secs(7)), "0:07");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
        assert_eq!(
            line(
                2,
                6,
                "smoke on 6.12",
                Duration::from_secs(14),
                Duration::from_secs(61)
            ),
            "[2/6] smoke on 6.12  0:14 (run 1:01)"
        );
    }

    #[test]
    fn ticks_end_their_thread() {
        let p = Progress::new(1, true);
        let t = p.step(1, "x");
        assert!(t.thread.is_none());
        t.done("PASS");
    }
}
