//! `cargo xtask bench`: what the file store does on this disk, each figure beside its baselines
//! measured in the same run (see `docs/benchmarks.md`).
//!
//! Scenario groups, one module each:
//!
//! - [`paired`]: durable appends measured in rounds with their baselines — the disk's raw
//!   `write + fdatasync` rates, growing a file and over written space ([`raw`]), the same DCB
//!   store on SQLite ([`sqlite`]) and the peer embedded DCB stores tephra and UmaDB ([`peers`],
//!   with the `peers` feature) — driving the file store's append workloads of [`fs_append`];
//! - [`fs_append`]: also the append without a baseline (flush off);
//! - [`processes`]: several processes on one store, and opening a big store in a fresh process;
//! - [`paired`] again for queries, on the catalog stores of [`fs_query`], [`sqlite`] and
//!   [`peers`];
//! - [`projections`]: rebuilding a projection from the log (100,000 and 1,000,000 events),
//!   incremental updates, and reads of a 100,000-instance projection (by key, by tag);
//! - [`subscribe`]: how soon a subscriber receives an event appended in its own process or
//!   another (file-change notifications, polling), and the memory of a streaming read of
//!   1,000,000 events beside one `read` of them all.
//!
//! [`measure`] holds the timing helpers and [`report`] prints the table and writes the JSON.

mod fs_append;
mod fs_query;
mod measure;
mod paired;
mod peers;
mod postgres;
mod processes;
mod projections;
mod raw;
mod report;
mod sqlite;
mod subscribe;
#[cfg(feature = "peers")]
mod tephra_peer;
#[cfg(feature = "peers")]
mod umadb_peer;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;

pub(crate) use processes::{ChildRole, run_child};
use report::Figures;

/// Writers in the concurrent scenarios: tokio tasks for the file store, threads with a
/// connection each for SQLite, threads with a handle each for tephra and UmaDB.
const CONCURRENT_WRITERS: usize = 16;

/// Processes in the multi-process scenario.
const PROCESSES: usize = 4;

/// Events in the store of the query scenarios.
const QUERY_STORE_EVENTS: u64 = 100_000;

/// Events per append when building big stores (flush off).
const BULK_BATCH: u64 = 10_000;

/// A group of scenarios: runs in the folder it is given and records its figures.
type Group = fn(&Path, &Plan, &mut Figures) -> Result<()>;

/// Options of `cargo xtask bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Smaller sizes and shorter runs: under 2 minutes on a 2-core machine (the full run takes
    /// under 15).
    #[arg(long)]
    quick: bool,
    /// Also write the figures to FILE as one flat JSON object (rates in events/s, latencies in
    /// µs, open time in ms).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Run in a temporary folder inside DIR, which must be on the disk to measure.
    #[arg(long, value_name = "DIR", default_value = "target/bench-tmp")]
    dir: PathBuf,
    /// Run only the groups whose name contains TEXT (case-insensitive), for example
    /// `--only projections`; the report then lists the other figures as not measured.
    #[arg(long, value_name = "TEXT")]
    only: Option<String>,
    /// Also measure this store beside the file store and SQLite, in the same rounds and turns:
    /// `postgres` (needs `--database-url`).
    #[arg(long, value_name = "BACKEND", value_parser = ["postgres"])]
    backend: Option<String>,
    /// The PostgreSQL server for `--backend postgres`; each scenario uses a schema of its own,
    /// dropped at the end.
    #[arg(long, value_name = "URL", env = "OPOSSUM_BENCH_DATABASE_URL")]
    database_url: Option<String>,
}

/// Sizes and durations of a run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// How long each serial append scenario runs in all.
    serial_run: Duration,
    /// How many rounds the durable append scenarios take turns in.
    rounds: u32,
    /// Events each concurrent writer appends …
    concurrent_per_writer: u64,
    /// … unless this much time passes first.
    concurrent_cap: Duration,
    /// Events each process of the multi-process scenario appends …
    per_process: u64,
    /// … unless this much time passes first.
    process_cap: Duration,
    /// Timed runs of the tag query (the median is reported).
    tag_query_runs: usize,
    /// Timed runs of the type query.
    type_query_runs: usize,
    /// Timed runs of `read_last`.
    read_last_runs: usize,
    /// Events in the store that is opened.
    open_store_events: u64,
    /// The JSON key of the open time.
    open_key: &'static str,
    /// Fresh processes that open it (the median is reported).
    open_runs: usize,
    /// Timed single-event projection updates (the median is reported).
    incremental_updates: u64,
    /// Timed projection updates of a batch of 1,000 events, durability eventual (the median is
    /// reported).
    update_batches: usize,
    /// Events in the store of the big projection rebuild (`rebuild_1m_per_s`), 10 per instance.
    big_rebuild_events: u64,
    /// Timed `get`s and tag queries on the big projection (the medians are reported).
    projection_reads: usize,
    /// Stamped events each subscription latency scenario appends (the median is reported).
    subscribe_events: u64,
    /// Events in the store that is read whole with `read_stream` and with `read`.
    stream_store_events: u64,
    /// The PostgreSQL server measured beside the file store (`--backend postgres`).
    postgres: Option<String>,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            serial_run: Duration::from_secs(10),
            rounds: 20,
            concurrent_per_writer: 5_000,
            concurrent_cap: Duration::from_secs(30),
            per_process: 5_000,
            process_cap: Duration::from_secs(20),
            tag_query_runs: 5_000,
            type_query_runs: 25,
            read_last_runs: 10_000,
            open_store_events: 1_000_000,
            open_key: "open_1m_ms",
            open_runs: 5,
            incremental_updates: 1_000,
            update_batches: 10,
            big_rebuild_events: 1_000_000,
            projection_reads: 10_000,
            subscribe_events: 200,
            stream_store_events: 1_000_000,
            postgres: None,
        }
    }

    fn quick() -> Plan {
        Plan {
            serial_run: Duration::from_secs(2),
            rounds: 4,
            concurrent_per_writer: 1_000,
            concurrent_cap: Duration::from_secs(8),
            per_process: 1_000,
            process_cap: Duration::from_secs(5),
            tag_query_runs: 500,
            type_query_runs: 7,
            read_last_runs: 1_000,
            open_store_events: 100_000,
            open_key: "open_100k_ms",
            open_runs: 3,
            incremental_updates: 200,
            update_batches: 5,
            big_rebuild_events: 200_000,
            projection_reads: 2_000,
            subscribe_events: 50,
            stream_store_events: 200_000,
            postgres: None,
        }
    }
}

/// Runs every scenario in a temporary folder inside `args.dir`, prints the table and writes the
/// JSON.
pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    let mut plan = if args.quick {
        Plan::quick()
    } else {
        Plan::full()
    };
    if args.backend.as_deref() == Some("postgres") {
        let Some(url) = &args.database_url else {
            anyhow::bail!(
                "--backend postgres needs the server: --database-url postgres://… (or OPOSSUM_BENCH_DATABASE_URL)"
            );
        };
        plan.postgres = Some(url.clone());
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let base = args
        .dir
        .canonicalize()
        .with_context(|| format!("find {}", args.dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&base)
        .with_context(|| format!("create a temporary folder in {}", base.display()))?;
    let dir = work.path();
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    eprintln!(
        "opossum bench ({}) in {} ({cores} cores)",
        if args.quick { "quick" } else { "full" },
        dir.display()
    );

    let started = Instant::now();
    let mut figures = Figures::default();
    let groups: [(&str, Group); 8] = [
        (
            "durable appends, in rounds: raw file, file store, SQLite, tephra, UmaDB",
            paired::durable_appends,
        ),
        ("file store: no flush", fs_append::no_flush),
        ("file store: 4 processes", processes::multiprocess),
        (
            "queries, in turns: file store, SQLite, tephra, UmaDB",
            paired::queries,
        ),
        ("file store: open", processes::open),
        ("projections", projections::projections),
        (
            "subscriptions: latency, same process and other processes (watch, poll)",
            subscribe::latency,
        ),
        (
            "subscriptions: streaming read of a whole store",
            subscribe::streaming,
        ),
    ];
    let only = args.only.as_deref().map(str::to_lowercase);
    let selected = groups.into_iter().filter(|(name, _)| {
        only.as_ref()
            .is_none_or(|o| name.to_lowercase().contains(o))
    });
    for (name, group) in selected {
        eprintln!("{name}");
        group(dir, &plan, &mut figures).with_context(|| format!("benchmark group {name:?}"))?;
    }
    work.close().context("remove the temporary folder")?;

    println!();
    print!("{}", report::render(&figures));
    println!("\nfinished in {:.0} s", started.elapsed().as_secs_f64());
    if let Some(path) = &args.json {
        figures.write_json(path)?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}
