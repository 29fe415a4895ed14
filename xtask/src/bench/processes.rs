//! Scenarios that need processes of their own, made by running this binary again with the hidden
//! `bench-child` subcommand: four processes appending into one store, and opening a big store in
//! a fresh process (so that its memory growth is measured alone). The subscription and
//! streaming-read scenarios of [`super::subscribe`] start their children here too.
//!
//! The protocol with an appending child is three lines: the child prints `ready` once its store is
//! open, waits for a line on its stdin (`go`; end of input means abort), appends, and prints
//! `done N`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use clap::Subcommand;
use opossum_benches::sample_event;
use opossum_fs::FileEventStore;
use serde::{Deserialize, Serialize};

use super::fs_append::{Durability, open_store};
use super::fs_query::load_catalog;
use super::measure::Rate;
use super::report::Figures;
use super::{PROCESSES, Plan, subscribe};

/// What a `bench-child` process does.
#[derive(Debug, Subcommand)]
pub(crate) enum ChildRole {
    /// Append single durable events to a store, in step with the parent (see the module docs).
    Append {
        /// The folder that holds the store.
        #[arg(long)]
        root: PathBuf,
        /// The store's name.
        #[arg(long)]
        name: String,
        /// This child's number, which keeps its events apart from the others'.
        #[arg(long)]
        child: u64,
        /// How many events to append.
        #[arg(long)]
        count: u64,
        /// Stop early after this many seconds.
        #[arg(long)]
        seconds: f64,
    },
    /// Open a closed store and print one JSON line: open time and memory figures.
    Open {
        /// The folder that holds the store.
        #[arg(long)]
        root: PathBuf,
        /// The store's name.
        #[arg(long)]
        name: String,
    },
    /// Append single durable events stamped with their send time, a pause between them, for a
    /// subscriber in the parent (see [`super::subscribe`]).
    Publish {
        /// The folder that holds the store.
        #[arg(long)]
        root: PathBuf,
        /// The store's name.
        #[arg(long)]
        name: String,
        /// How many stamped events to append.
        #[arg(long)]
        count: u64,
    },
    /// Open a closed store, read every event once, and print one JSON line: the events, the
    /// time and the growth of the peak resident memory (see [`super::subscribe`]).
    Stream {
        /// The folder that holds the store.
        #[arg(long)]
        root: PathBuf,
        /// The store's name.
        #[arg(long)]
        name: String,
        /// Read everything with one `read` instead of `read_stream`.
        #[arg(long)]
        at_once: bool,
    },
}

/// What an `open` child prints.
#[derive(Debug, Serialize, Deserialize)]
struct OpenReport {
    /// Time `FileEventStore::open` took.
    open_micros: u64,
    /// Events in the store.
    events: u64,
    /// `stats().index_memory_bytes`.
    index_memory_bytes: u64,
    /// Growth of the resident set over the open, where the OS tells it.
    rss_delta_bytes: Option<u64>,
}

/// Runs a child role; its errors end the child process with a message on stderr.
pub(crate) fn run_child(role: ChildRole) -> Result<()> {
    match role {
        ChildRole::Append {
            root,
            name,
            child,
            count,
            seconds,
        } => append_child(&root, &name, child, count, Duration::from_secs_f64(seconds)),
        ChildRole::Open { root, name } => open_child(&root, &name),
        ChildRole::Publish { root, name, count } => subscribe::publish_child(&root, &name, count),
        ChildRole::Stream {
            root,
            name,
            at_once,
        } => subscribe::stream_child(&root, &name, at_once),
    }
}

fn append_child(root: &Path, name: &str, child: u64, count: u64, cap: Duration) -> Result<()> {
    let store = open_store(root, name, Durability::Flush)?;
    let first = child * 1_000_000_000;
    // Warm up: takes the lock file and opens the segment once.
    store.append_blocking(vec![sample_event(first)?], None)?;
    println!("ready");
    let mut go = String::new();
    if std::io::stdin().read_line(&mut go)? == 0 {
        return Ok(()); // The parent gave up.
    }
    let deadline = Instant::now() + cap;
    let mut done = 0;
    while done < count && Instant::now() < deadline {
        store.append_blocking(vec![sample_event(first + 1 + done)?], None)?;
        done += 1;
    }
    println!("done {done}");
    store.close()?;
    Ok(())
}

fn open_child(root: &Path, name: &str) -> Result<()> {
    let before = resident_bytes();
    let started = Instant::now();
    let store = FileEventStore::open(root.join(name))?;
    let open_micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let after = resident_bytes();
    let stats = store.stats()?;
    let report = OpenReport {
        open_micros,
        events: stats.event_count,
        index_memory_bytes: stats.index_memory_bytes as u64,
        rss_delta_bytes: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
    };
    println!("{}", serde_json::to_string(&report)?);
    store.close()?;
    Ok(())
}

/// The resident set size of this process, from `/proc/self/status` (Linux only).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// A `bench-child` process with its stdin and stdout.
pub(crate) struct ChildProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl ChildProcess {
    pub(crate) fn start(args: &[String]) -> Result<ChildProcess> {
        let exe = std::env::current_exe().context("find this program to run it again")?;
        let mut child = Command::new(&exe)
            .arg("bench-child")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("start {}", exe.display()))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the child process has no stdout"))?;
        Ok(ChildProcess {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    pub(crate) fn read_line(&mut self) -> Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            bail!("a child process ended early (its error is printed above)");
        }
        Ok(line.trim_end().to_owned())
    }

    pub(crate) fn send(&mut self, line: &str) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| anyhow!("the child process has no stdin"))?;
        writeln!(stdin, "{line}").context("signal a child process")
    }

    pub(crate) fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait().context("wait for a child process")?;
        ensure!(status.success(), "a child process failed: {status}");
        Ok(())
    }
}

/// Records `multiprocess4_append_per_s`: [`PROCESSES`] processes appending single durable events
/// into one store at once, counted together.
pub(crate) fn multiprocess(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let name = "multiprocess4";
    // Create the store once, so the children only open it.
    open_store(dir, name, Durability::Flush)?
        .close()
        .context("close the store")?;
    let mut children = (0..PROCESSES as u64)
        .map(|child| {
            ChildProcess::start(&[
                "append".to_owned(),
                "--root".to_owned(),
                dir.display().to_string(),
                "--name".to_owned(),
                name.to_owned(),
                "--child".to_owned(),
                child.to_string(),
                "--count".to_owned(),
                plan.per_process.to_string(),
                "--seconds".to_owned(),
                plan.process_cap.as_secs_f64().to_string(),
            ])
        })
        .collect::<Result<Vec<_>>>()?;
    for child in &mut children {
        let line = child.read_line()?;
        ensure!(
            line == "ready",
            "a child process said {line:?} instead of ready"
        );
    }
    let started = Instant::now();
    for child in &mut children {
        child.send("go")?;
    }
    let mut events = 0;
    for child in &mut children {
        let line = child.read_line()?;
        let done = line
            .strip_prefix("done ")
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| anyhow!("a child process said {line:?} instead of done N"))?;
        events += done;
    }
    let rate = Rate {
        events,
        elapsed: started.elapsed(),
    };
    for child in children {
        child.finish()?;
    }
    let store = open_store(dir, name, Durability::Flush)?;
    let stored = store.stats()?.event_count;
    let warm_up = PROCESSES as u64;
    ensure!(
        stored == warm_up + events,
        "the multi-process store holds {stored} events, expected {}",
        warm_up + events
    );
    ensure!(
        store.verify()?.is_intact(),
        "the multi-process store does not verify"
    );
    store.close()?;
    figures.record("multiprocess4_append_per_s", rate.per_second());
    Ok(())
}

/// Records `open_1m_ms` (or `open_100k_ms`), `verify_per_s` (the whole chain of that store
/// walked and hashed, as `opossum verify` does; median of 3), `bytes_per_event_in_memory`,
/// `rss_bytes_per_event`, and `bulk_load_per_s`, the rate at which the store was written (flush
/// off, batches of 10,000).
pub(crate) fn open(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let name = "open";
    let store = open_store(dir, name, Durability::NoFlush)?;
    let load = load_catalog(&store, plan.open_store_events)?;
    store.close().context("close the store")?;
    figures.record("bulk_load_per_s", load.per_second());

    let mut reports = Vec::with_capacity(plan.open_runs);
    for _ in 0..plan.open_runs {
        let mut child = ChildProcess::start(&[
            "open".to_owned(),
            "--root".to_owned(),
            dir.display().to_string(),
            "--name".to_owned(),
            name.to_owned(),
        ])?;
        let line = child.read_line()?;
        child.finish()?;
        let report: OpenReport = serde_json::from_str(&line)
            .with_context(|| format!("read an open report from {line:?}"))?;
        ensure!(
            report.events == plan.open_store_events,
            "the opened store holds {} events, expected {}",
            report.events,
            plan.open_store_events
        );
        reports.push(report);
    }
    // What `opossum verify` does: walk and hash the whole chain, without opening the store.
    let folder = dir.join(name);
    let mut verifies = Vec::with_capacity(3);
    for _ in 0..3 {
        let started = Instant::now();
        let report = opossum_fs::verify_folder(&folder)?;
        verifies.push(started.elapsed().as_micros() as u64);
        ensure!(
            report.is_intact() && report.events_checked == plan.open_store_events,
            "the store does not verify: {report:?}"
        );
    }
    let verify_micros = median(&mut verifies).max(1);
    figures.record(
        "verify_per_s",
        plan.open_store_events as f64 * 1e6 / verify_micros as f64,
    );
    let events = plan.open_store_events as f64;
    let mut opens: Vec<u64> = reports.iter().map(|r| r.open_micros).collect();
    figures.record(plan.open_key, median(&mut opens) as f64 / 1e3);
    let index_bytes = reports.first().map_or(0, |r| r.index_memory_bytes);
    figures.record("bytes_per_event_in_memory", index_bytes as f64 / events);
    let mut rss: Vec<u64> = reports.iter().filter_map(|r| r.rss_delta_bytes).collect();
    if !rss.is_empty() {
        figures.record("rss_bytes_per_event", median(&mut rss) as f64 / events);
    }
    Ok(())
}

/// The median of a non-empty list (the lower middle for an even count).
fn median(values: &mut [u64]) -> u64 {
    values.sort_unstable();
    values
        .get(values.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}
