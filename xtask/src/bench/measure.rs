//! Timing helpers: serial runs for a while, fixed-count runs on several threads, medians; and
//! the process's peak resident memory over a scenario.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

/// Events written in a span of time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Rate {
    /// Events written.
    pub(crate) events: u64,
    /// The wall-clock time they took.
    pub(crate) elapsed: Duration,
}

impl Rate {
    /// Events per second.
    pub(crate) fn per_second(self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::ops::AddAssign for Rate {
    fn add_assign(&mut self, other: Rate) {
        self.events += other.events;
        self.elapsed += other.elapsed;
    }
}

/// Calls `step(0)`, `step(1)`, … until `duration` has passed; each call returns how many events
/// it wrote.
pub(crate) fn for_duration(
    duration: Duration,
    mut step: impl FnMut(u64) -> Result<u64>,
) -> Result<Rate> {
    let started = Instant::now();
    let mut events = 0;
    let mut i = 0;
    while started.elapsed() < duration {
        events += step(i)?;
        i += 1;
    }
    Ok(Rate {
        events,
        elapsed: started.elapsed(),
    })
}

/// Runs each worker on its own thread, all released at once: worker `w` calls its step with
/// `0..per_worker`, one event each, and stops early once `cap` has passed. The rate counts every
/// event of every worker over the time until the last one finished.
pub(crate) fn on_threads<W>(workers: Vec<W>, per_worker: u64, cap: Duration) -> Result<Rate>
where
    W: FnMut(u64) -> Result<()> + Send,
{
    let start = Barrier::new(workers.len() + 1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|mut step| {
                let start = &start;
                scope.spawn(move || -> Result<u64> {
                    start.wait();
                    let deadline = Instant::now() + cap;
                    let mut done = 0;
                    while done < per_worker && Instant::now() < deadline {
                        step(done)?;
                        done += 1;
                    }
                    Ok(done)
                })
            })
            .collect();
        start.wait();
        let started = Instant::now();
        let mut events = 0;
        for handle in handles {
            events += handle
                .join()
                .map_err(|_| anyhow!("a benchmark thread panicked"))??;
        }
        Ok(Rate {
            events,
            elapsed: started.elapsed(),
        })
    })
}

/// Times `runs` rounds in which each of `contenders` runs `op(contender, round)` once, so that
/// every contender sees the same load; returns each contender's median in microseconds.
pub(crate) fn medians_in_turns(
    runs: usize,
    contenders: usize,
    mut op: impl FnMut(usize, usize) -> Result<()>,
) -> Result<Vec<f64>> {
    let mut samples = vec![Vec::with_capacity(runs); contenders];
    for round in 0..runs {
        for (contender, times) in samples.iter_mut().enumerate() {
            let started = Instant::now();
            op(contender, round)?;
            times.push(started.elapsed());
        }
    }
    samples
        .iter_mut()
        .map(|times| median_micros(times))
        .collect()
}

/// The median of `samples` in microseconds.
pub(crate) fn median_micros(samples: &mut [Duration]) -> Result<f64> {
    samples.sort_unstable();
    let mid = samples.len() / 2;
    let median = match samples.len() {
        0 => return Err(anyhow!("no runs to take a median of")),
        n if n % 2 == 1 => samples[mid],
        _ => (samples[mid - 1] + samples[mid]) / 2,
    };
    Ok(median.as_secs_f64() * 1e6)
}

/// The process's resident memory, from `/proc/self/status` (Linux only).
pub(crate) mod memory {
    /// What the process held before a scenario.
    pub(crate) struct Before {
        resident: Option<u64>,
        peak: Option<u64>,
        peak_reset: bool,
    }

    impl Before {
        /// Resets the peak resident size to the current one where the kernel allows it
        /// (`/proc/self/clear_refs`, Linux 4.0 and later) and notes both.
        pub(crate) fn take() -> Before {
            let peak_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
            Before {
                resident: status_bytes("VmRSS:"),
                peak: status_bytes("VmHWM:"),
                peak_reset,
            }
        }

        /// How far the peak resident size rose above the resident size before, or `None` when
        /// it is not known: not on Linux, or the peak could not be reset and did not rise above
        /// the earlier peak (so the scenario's own peak is hidden).
        pub(crate) fn peak_growth(&self) -> Option<u64> {
            let peak = status_bytes("VmHWM:")?;
            let before = self.resident?;
            (self.peak_reset || self.peak.is_some_and(|p| peak > p))
                .then(|| peak.saturating_sub(before))
        }
    }

    /// A `kB` field of `/proc/self/status`, in bytes.
    fn status_bytes(field: &str) -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}
