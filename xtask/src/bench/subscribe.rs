//! Subscriptions and streaming reads on the file store.
//!
//! - [`latency`]: how long a subscriber takes to receive an event, from just before its append
//!   was called to the moment the subscription yields it. The appender makes single durable
//!   appends (`Durability::Immediate`, as the other durable scenarios), one at a time with a
//!   pause of 20–29 ms between them so that each is a wake-up of its own, and stamps each event
//!   with its send time (`SystemTime` nanoseconds in the payload: the same machine's clock). The
//!   appender is a task of the subscriber's process (woken by the store's own commit), or a
//!   child process appending to the same folder while the parent subscribes through a handle of
//!   its own, which learns of the appends by file-change notifications (`ChangeDetection::Watch`)
//!   or by reading the commit anchor every 100 ms (`ChangeDetection::Poll`, the default
//!   interval). The figure includes the append's own `fdatasync`; the child prints its median
//!   append time beside it.
//! - [`streaming`]: the growth of peak resident memory while a fresh process reads every event
//!   of a 1,000,000-event catalog store (quick: 200,000) with `read_stream`, against one `read`
//!   of everything at once, and how fast each goes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use futures_util::StreamExt;
use opossum_benches::sample_event;
use opossum_core::stream::subscribe;
use opossum_core::{
    EventStore, EventStream, NewEvent, Payload, Query, ReadOptions, SequencedEvent,
};
use opossum_fs::{CHANGE_POLL_INTERVAL, ChangeDetection, FileEventStore, StoreOptions};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use super::Plan;
use super::fs_append::{Durability, open_store};
use super::fs_query::load_catalog;
use super::measure::{self, memory};
use super::processes::ChildProcess;
use super::report::Figures;

/// The type of the stamped events.
const PROBE_TYPE: &str = "LatencyProbe";

/// The shortest pause between two stamped appends.
const PAUSE: Duration = Duration::from_millis(20);

/// How long a subscriber waits for the next event before it calls the subscription stalled.
const STALL: Duration = Duration::from_secs(5);

/// The size of the streamed store that the JSON keys are about.
const STREAM_NOMINAL: u64 = 1_000_000;

/// The payload of a stamped event.
#[derive(Debug, Serialize, Deserialize)]
struct Probe {
    /// Its number, from 0.
    seq: u64,
    /// When it was handed to `append`, in nanoseconds since the Unix epoch.
    sent_unix_nanos: u64,
}

/// The pause before stamped event `seq`: 20 ms and a few more, so that the appends do not keep
/// step with the poll interval.
fn pause(seq: u64) -> Duration {
    PAUSE + Duration::from_millis(seq * 7 % 10)
}

/// Now, in nanoseconds since the Unix epoch.
fn unix_nanos() -> Result<u64> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?;
    u64::try_from(since.as_nanos()).context("the clock is past 2554")
}

/// Stamped event `seq`, stamped now.
fn probe_event(seq: u64) -> Result<NewEvent> {
    let probe = Probe {
        seq,
        sent_unix_nanos: unix_nanos()?,
    };
    Ok(NewEvent::builder(PROBE_TYPE, Payload::from_value(&probe)?).build()?)
}

/// Records the subscription latencies, each the median over [`Plan::subscribe_events`] events:
/// `subscribe_local_latency_us` (the appender a task of this process),
/// `subscribe_cross_process_latency_us` (a child process, the subscriber's store watching the
/// folder) and `subscribe_poll_latency_us` (a child process, the subscriber's store polling
/// every 100 ms).
pub(crate) fn latency(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    let count = plan.subscribe_events;
    figures.record(
        "subscribe_local_latency_us",
        local(dir, &runtime, count).context("the in-process subscription")?,
    );
    figures.record(
        "subscribe_cross_process_latency_us",
        cross_process(dir, &runtime, count, ChangeDetection::Watch)
            .context("the cross-process subscription, watching")?,
    );
    figures.record(
        "subscribe_poll_latency_us",
        cross_process(dir, &runtime, count, ChangeDetection::Poll)
            .context("the cross-process subscription, polling")?,
    );
    Ok(())
}

/// The median latency in µs of a subscriber whose store handle also appends, from a task.
fn local(dir: &Path, runtime: &Runtime, count: u64) -> Result<f64> {
    let store = Arc::new(open_store(dir, "subscribe-local", Durability::Flush)?);
    // Warm up: creates the segment; the subscriber reads it before the clock matters.
    store
        .append_blocking(vec![sample_event(0)?], None)
        .context("append the warm-up event")?;
    let mut latencies = runtime.block_on(async {
        let mut live = subscribe(Arc::clone(&store), Query::all(), None);
        next(&mut live, "the warm-up event").await?;
        let appender = tokio::spawn(publish(Arc::clone(&store), count));
        let latencies = receive(&mut live, count).await;
        appender
            .await
            .map_err(|e| anyhow!("the appending task failed: {e}"))??;
        latencies
    })?;
    close(store)?;
    measure::median_micros(&mut latencies)
}

/// Appends `count` stamped events, durably, a [`pause`] before each.
async fn publish(store: Arc<FileEventStore>, count: u64) -> Result<()> {
    for seq in 0..count {
        tokio::time::sleep(pause(seq)).await;
        store
            .append(vec![probe_event(seq)?], None)
            .await
            .context("append a stamped event")?;
    }
    Ok(())
}

/// The median latency in µs of a subscriber in this process when a child process appends, the
/// subscriber's store learning of the appends as `detection` says.
fn cross_process(
    dir: &Path,
    runtime: &Runtime,
    count: u64,
    detection: ChangeDetection,
) -> Result<f64> {
    let name = match detection {
        ChangeDetection::Poll => "subscribe-poll",
        _ => "subscribe-watch",
    };
    // Create the store, so that the child only opens it.
    open_store(dir, name, Durability::Flush)?
        .close()
        .context("close the store")?;
    let path = dir.join(name);
    let options = StoreOptions::new()
        .change_detection(detection)
        .change_poll_interval(CHANGE_POLL_INTERVAL);
    let store = Arc::new(
        FileEventStore::open_with(&path, options)
            .with_context(|| format!("open the store {}", path.display()))?,
    );
    let mut child = ChildProcess::start(&[
        "publish".to_owned(),
        "--root".to_owned(),
        dir.display().to_string(),
        "--name".to_owned(),
        name.to_owned(),
        "--count".to_owned(),
        count.to_string(),
    ])?;
    let line = child.read_line()?;
    ensure!(
        line == "ready",
        "the appending child said {line:?} instead of ready"
    );
    let mut latencies = runtime.block_on(async {
        let mut live = subscribe(Arc::clone(&store), Query::all(), None);
        // The child's warm-up event: once it is in, the subscriber waits at the head (and its
        // store has set up the folder watcher) before the first stamped event is appended.
        next(&mut live, "the child's warm-up event").await?;
        child.send("go")?;
        receive(&mut live, count).await
    })?;
    let line = child.read_line()?;
    let (done, append_us) = line
        .strip_prefix("done ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(n, us)| Some((n.parse::<u64>().ok()?, us.parse::<f64>().ok()?)))
        .ok_or_else(|| anyhow!("the appending child said {line:?} instead of done N US"))?;
    child.finish()?;
    ensure!(
        done == count,
        "the child appended {done} events, not {count}"
    );
    eprintln!("  ({name}: the child's durable appends took a median of {append_us:.0} µs)");
    let used = store.change_detection();
    ensure!(
        used == detection,
        "the subscriber's store used {used:?} instead of {detection:?}"
    );
    close(store)?;
    measure::median_micros(&mut latencies)
}

/// Closes a store once the streams that shared it are gone.
fn close(store: Arc<FileEventStore>) -> Result<()> {
    Arc::into_inner(store)
        .ok_or_else(|| anyhow!("the store is still shared"))?
        .close()
        .context("close the store")
}

/// The next event of `live`, or an error when none comes within [`STALL`].
async fn next(live: &mut EventStream<'_>, what: &str) -> Result<SequencedEvent> {
    match tokio::time::timeout(STALL, live.next()).await {
        Err(_) => bail!("{what} did not come within {STALL:?}: the subscription did not wake"),
        Ok(None) => bail!("the subscription ended before {what}"),
        Ok(Some(event)) => event.with_context(|| format!("the subscription failed at {what}")),
    }
}

/// Receives stamped events `0..count` from `live`, in order, and returns how long each took from
/// its stamp to here.
async fn receive(live: &mut EventStream<'_>, count: u64) -> Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(usize::try_from(count)?);
    for seq in 0..count {
        let event = next(live, &format!("stamped event {seq}")).await?;
        let received = unix_nanos()?;
        let probe: Probe = event
            .event
            .payload()
            .decode()
            .with_context(|| format!("decode the stamped event at {}", event.position.get()))?;
        ensure!(
            probe.seq == seq,
            "the subscription yielded stamped event {} where {seq} was due",
            probe.seq
        );
        latencies.push(Duration::from_nanos(
            received.saturating_sub(probe.sent_unix_nanos),
        ));
    }
    Ok(latencies)
}

/// The `publish` child: opens the store, appends a warm-up event, prints `ready`, waits for a
/// line on stdin (end of input means abort), appends `count` stamped events durably with a
/// [`pause`] before each, and prints `done N US` (US: the median append time in µs).
pub(crate) fn publish_child(root: &Path, name: &str, count: u64) -> Result<()> {
    let store = open_store(root, name, Durability::Flush)?;
    // Warm up: takes the lock file and opens the segment once.
    store
        .append_blocking(vec![sample_event(0)?], None)
        .context("append the warm-up event")?;
    println!("ready");
    let mut go = String::new();
    if std::io::stdin().read_line(&mut go)? == 0 {
        return Ok(()); // The parent gave up.
    }
    let mut appends = Vec::with_capacity(usize::try_from(count)?);
    for seq in 0..count {
        std::thread::sleep(pause(seq));
        let event = probe_event(seq)?;
        let started = Instant::now();
        store
            .append_blocking(vec![event], None)
            .context("append a stamped event")?;
        appends.push(started.elapsed());
    }
    let append_us = if appends.is_empty() {
        0.0
    } else {
        measure::median_micros(&mut appends)?
    };
    println!("done {count} {append_us:.1}");
    store.close().context("close the store")?;
    Ok(())
}

/// What a `stream` child prints.
#[derive(Debug, Serialize, Deserialize)]
struct StreamReport {
    /// Events read.
    events: u64,
    /// Time the read took.
    micros: u64,
    /// Growth of the peak resident memory over the read, where the OS tells it.
    peak_growth_bytes: Option<u64>,
}

/// The `stream` child: opens the store, reads every event once — with `read_stream`, or one
/// `read` when `at_once` — and prints a [`StreamReport`] as one JSON line. The peak resident
/// memory is reset after the open, so the index the open builds is not counted.
pub(crate) fn stream_child(root: &Path, name: &str, at_once: bool) -> Result<()> {
    let path = root.join(name);
    let store = FileEventStore::open(&path)
        .with_context(|| format!("open the store {}", path.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    // Starts the blocking thread that reads run on, so that it is not counted either.
    runtime
        .block_on(store.head())
        .context("read the store's head")?;
    let memory = memory::Before::take();
    let started = Instant::now();
    let events = runtime.block_on(async {
        if at_once {
            let all = store
                .read(&Query::all(), ReadOptions::new())
                .await
                .context("read every event")?;
            return Ok::<_, anyhow::Error>(all.len() as u64);
        }
        let mut events = store.read_stream(&Query::all(), ReadOptions::new());
        let mut count = 0_u64;
        let mut last = None;
        while let Some(event) = events.next().await {
            let event = event.context("stream every event")?;
            ensure!(
                last < Some(event.position),
                "the stream went back from {last:?} to {}",
                event.position.get()
            );
            last = Some(event.position);
            count += 1;
        }
        Ok(count)
    })?;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    let report = StreamReport {
        events,
        micros,
        peak_growth_bytes: memory.peak_growth(),
    };
    println!("{}", serde_json::to_string(&report)?);
    drop(runtime);
    store.close().context("close the store")?;
    Ok(())
}

/// Records, on a catalog store of 1,000,000 events (quick: 200,000), each read in a fresh
/// process: `read_stream_per_s` and `read_stream_rss_bytes` (the growth of peak resident memory
/// while `read_stream` yields every event), `read_all_per_s` and `read_all_rss_bytes` (the same
/// for one `read` of every event), and `read_stream_events`, the size of the store.
pub(crate) fn streaming(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let name = "streamed";
    let events = plan.stream_store_events;
    let store = open_store(dir, name, Durability::NoFlush)?;
    load_catalog(&store, events)?;
    store.close().context("close the store")?;
    if events != STREAM_NOMINAL {
        let size = format!("{}k events", events / 1_000);
        figures.relabel("read_stream_per_s", format!("read_stream of {size}"));
        figures.relabel(
            "read_stream_rss_bytes",
            format!("peak RSS growth, read_stream of {size}"),
        );
        figures.relabel("read_all_per_s", format!("read() of {size} at once"));
        figures.relabel(
            "read_all_rss_bytes",
            format!("peak RSS growth, read() of {size} at once"),
        );
    }
    let streamed = stream_report(dir, name, false, events)?;
    figures.record("read_stream_events", events as f64);
    figures.record("read_stream_per_s", per_second(&streamed));
    if let Some(bytes) = streamed.peak_growth_bytes {
        figures.record("read_stream_rss_bytes", bytes as f64);
    }
    let all = stream_report(dir, name, true, events)?;
    figures.record("read_all_per_s", per_second(&all));
    if let Some(bytes) = all.peak_growth_bytes {
        figures.record("read_all_rss_bytes", bytes as f64);
    }
    Ok(())
}

/// Runs a `stream` child on the store `dir/name` and checks that it read `events` events.
fn stream_report(dir: &Path, name: &str, at_once: bool, events: u64) -> Result<StreamReport> {
    let mut args = vec![
        "stream".to_owned(),
        "--root".to_owned(),
        dir.display().to_string(),
        "--name".to_owned(),
        name.to_owned(),
    ];
    if at_once {
        args.push("--at-once".to_owned());
    }
    let mut child = ChildProcess::start(&args)?;
    let line = child.read_line()?;
    child.finish()?;
    let report: StreamReport = serde_json::from_str(&line)
        .with_context(|| format!("read a stream report from {line:?}"))?;
    ensure!(
        report.events == events,
        "the child read {} events, expected {events}",
        report.events
    );
    Ok(report)
}

fn per_second(report: &StreamReport) -> f64 {
    report.events as f64 / (report.micros as f64 / 1e6).max(1e-9)
}
