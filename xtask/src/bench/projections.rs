//! Projections on the file store: how fast a simple projection is rebuilt from the log, what an
//! incremental update costs, and how fast a big projection is read by key and by tag.
//!
//! The projection is *orders per customer*: one instance per `customer` tag value of the catalog
//! store (10 events each: 10,000 instances over 100,000 events, 100,000 over 1,000,000), its
//! state the number of events and the sum of their `amount_cents`, so every event's payload is
//! decoded. Each instance carries one tag, its `segment` (the customer number divided by 10),
//! so every segment is shared by exactly 10 instances and the tag index is written and read.
//! Default projection options (the files of each flush point and commit are synced) except
//! where a scenario says otherwise.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use opossum_benches::{CUSTOMER_TAG, EVENT_TYPES, EVENTS_PER_CUSTOMER, catalog_event, customer_id};
use opossum_core::{Durability, EventStore, NewEvent, SequencedEvent, Tag};
use opossum_projections::{
    BoxError, Page, Projection, ProjectionManager, ProjectionOptions, ProjectionStore,
};
use serde::{Deserialize, Serialize};

use super::fs_append::{Durability as StoreDurability, open_store};
use super::fs_query::load_catalog;
use super::measure::{self, memory};
use super::report::Figures;
use super::{Plan, QUERY_STORE_EVENTS};

const NAME: &str = "OrdersPerCustomer";

/// The tag of an instance's segment.
const SEGMENT_TAG: &str = "segment";

/// Instances per segment: what a tag query returns.
const INSTANCES_PER_SEGMENT: u64 = 10;

/// Events per timed batch of `projection_update_cpu_us`.
const UPDATE_BATCH: u64 = 1_000;

/// The size of the big rebuild that its JSON key (`rebuild_1m_…`) names.
const BIG_REBUILD_NOMINAL: u64 = 1_000_000;

/// One customer's orders.
#[derive(Debug, Serialize, Deserialize)]
struct Orders {
    segment: u64,
    events: u64,
    amount_cents: u64,
}

/// The part of a catalog payload the projection reads.
#[derive(Deserialize)]
struct Amount {
    amount_cents: u64,
}

struct OrdersPerCustomer;

impl Projection for OrdersPerCustomer {
    type State = Orders;

    fn name(&self) -> &str {
        NAME
    }

    fn event_types(&self) -> Vec<&str> {
        EVENT_TYPES.to_vec()
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value(CUSTOMER_TAG).map(str::to_owned)
    }

    fn apply(
        &self,
        state: Option<Orders>,
        event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<Orders>, BoxError> {
        let amount = event.event.payload().decode::<Amount>()?.amount_cents;
        let orders = match state {
            Some(orders) => orders,
            None => {
                let customer = event
                    .event
                    .tag_value(CUSTOMER_TAG)
                    .and_then(customer_number)
                    .ok_or("a catalog event without a customer number")?;
                Orders {
                    segment: customer / INSTANCES_PER_SEGMENT,
                    events: 0,
                    amount_cents: 0,
                }
            }
        };
        Ok(Some(Orders {
            events: orders.events + 1,
            amount_cents: orders.amount_cents + amount,
            ..orders
        }))
    }

    fn tags(&self, orders: &Orders) -> Vec<Tag> {
        segment_tag(orders.segment).into_iter().collect()
    }
}

/// The number of a [`customer_id`].
fn customer_number(id: &str) -> Option<u64> {
    id.strip_prefix("C-")?.parse().ok()
}

/// The tag of segment number `segment`.
fn segment_tag(segment: u64) -> Result<Tag, opossum_core::Error> {
    Tag::new(SEGMENT_TAG, format!("G-{segment:06}"))
}

/// Records the figures of both projection stores: see [`catalog_100k`] and [`catalog_big`].
pub(crate) fn projections(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    // The stores are written outside the runtime: `load_catalog` blocks on each append.
    let (store, root) = catalog(dir, "projected", QUERY_STORE_EVENTS)?;
    runtime.block_on(catalog_100k(&store, &root, plan, figures))?;
    drop(store);
    let (store, root) = catalog(dir, "projected-big", plan.big_rebuild_events)?;
    runtime.block_on(catalog_big(&store, &root, plan, figures))
}

/// A fresh catalog store of `events` events named `name`, and the folder of its projections.
fn catalog(dir: &Path, name: &str, events: u64) -> Result<(Arc<dyn EventStore>, PathBuf)> {
    let store = open_store(dir, name, StoreDurability::NoFlush)?;
    load_catalog(&store, events)?;
    let root = store.path().join("projections");
    Ok((Arc::new(store), root))
}

/// Records, on the 100,000-event catalog store, `rebuild_per_s` (a full rebuild of the
/// projection), `incremental_update_us` (the median time for the projection to take in one newly
/// appended event: read it, apply it, write the instance and the checkpoint, durably) and
/// `projection_update_cpu_us` (the median wall time per event of taking in a batch of 1,000
/// events for 1,000 existing instances, with durability eventual: no sync, so it is the
/// processing cost — read, decode, apply, encode, write — not the disk's).
async fn catalog_100k(
    store: &Arc<dyn EventStore>,
    root: &Path,
    plan: &Plan,
    figures: &mut Figures,
) -> Result<()> {
    let manager = open_manager(store, root, ProjectionOptions::new())?;
    let rebuild = timed_rebuild(&manager, QUERY_STORE_EVENTS).await?;
    figures.record("rebuild_per_s", per_second(QUERY_STORE_EVENTS, rebuild));

    let mut samples = Vec::with_capacity(usize::try_from(plan.incremental_updates)?);
    let updates = QUERY_STORE_EVENTS..QUERY_STORE_EVENTS + plan.incremental_updates;
    for i in updates {
        store
            .append(vec![catalog_event(i)?], None)
            .await
            .context("append one event")?;
        let started = Instant::now();
        let report = manager.catch_up().await;
        samples.push(started.elapsed());
        ensure!(
            report.is_success() && report.events_applied == 1,
            "the update did not apply the event: {report:?}"
        );
    }
    figures.record(
        "incremental_update_us",
        measure::median_micros(&mut samples)?,
    );

    // The same folder, opened again with durability eventual (one process maintains it at a
    // time, so the first manager goes first).
    drop(manager);
    let options = ProjectionOptions::new().durability(Durability::Eventual);
    let manager = open_manager(store, root, options)?;
    let mut per_event = Vec::with_capacity(plan.update_batches);
    for round in 0..plan.update_batches {
        let batch = (0..UPDATE_BATCH)
            .map(|k| update_event(round as u64, k))
            .collect::<Result<Vec<NewEvent>, _>>()?;
        store
            .append(batch, None)
            .await
            .context("append a batch of events")?;
        let started = Instant::now();
        let report = manager.catch_up().await;
        let elapsed = started.elapsed();
        ensure!(
            report.is_success() && report.events_applied == UPDATE_BATCH,
            "the update did not apply the batch of {UPDATE_BATCH}: {report:?}"
        );
        per_event.push(elapsed / u32::try_from(UPDATE_BATCH)?);
    }
    figures.record(
        "projection_update_cpu_us",
        measure::median_micros(&mut per_event)?,
    );
    Ok(())
}

/// Event `k` of update batch `round`: an order of one of 1,000 customers of the 100,000-event
/// catalog, spread over all of them, a different one for each `k` (so a batch changes 1,000
/// instances, as many as it has events).
fn update_event(round: u64, k: u64) -> Result<NewEvent> {
    let customers = QUERY_STORE_EVENTS / EVENTS_PER_CUSTOMER;
    let stride = customers / UPDATE_BATCH;
    let customer = k * stride + round % stride;
    Ok(catalog_event(
        customer * EVENTS_PER_CUSTOMER + round % EVENTS_PER_CUSTOMER,
    )?)
}

/// Records, on a catalog store of 1,000,000 events (quick: 200,000) and so 100,000 instances
/// (quick: 20,000):
///
/// - `rebuild_1m_per_s`, a full rebuild, with `rebuild_1m_events` the events it took in and
///   `rebuild_1m_rss_growth_bytes` how far the process's peak resident memory rose above what it
///   held before (Linux only);
/// - `projection_get_us`, the median time of one `ProjectionStore::get` by key, over keys spread
///   across all instances;
/// - `projection_tag_query_us`, the median time of one `query_by_tags` for one segment (10
///   instances);
/// - `projection_files`, the files in the projection's folder after the rebuild.
async fn catalog_big(
    store: &Arc<dyn EventStore>,
    root: &Path,
    plan: &Plan,
    figures: &mut Figures,
) -> Result<()> {
    let events = plan.big_rebuild_events;
    let instances = events / EVENTS_PER_CUSTOMER;
    let manager = open_manager(store, root, ProjectionOptions::new())?;

    if events != BIG_REBUILD_NOMINAL {
        let size = format!(
            "{}k events into {}k instances",
            events / 1_000,
            instances / 1_000
        );
        figures.relabel("rebuild_1m_per_s", format!("projection rebuild, {size}"));
        figures.relabel(
            "rebuild_1m_rss_growth_bytes",
            format!("peak RSS growth, rebuild of {size}"),
        );
        let of = format!("{}k instances", instances / 1_000);
        figures.relabel("projection_get_us", format!("projection get by key, {of}"));
        figures.relabel(
            "projection_tag_query_us",
            format!("projection tag query, 10 of {of}"),
        );
        figures.relabel("projection_files", format!("projection files, {of}"));
    }
    let memory = memory::Before::take();
    let rebuild = timed_rebuild(&manager, events).await?;
    let growth = memory.peak_growth();
    figures.record("rebuild_1m_per_s", per_second(events, rebuild));
    figures.record("rebuild_1m_events", events as f64);
    if let Some(bytes) = growth {
        figures.record("rebuild_1m_rss_growth_bytes", bytes as f64);
    }

    let orders = manager
        .store::<OrdersPerCustomer>()
        .context("open the projection's store")?;
    let count = orders.count().context("count the instances")?;
    ensure!(
        u64::try_from(count)? == instances,
        "the projection holds {count} instances, not {instances}"
    );
    figures.record("projection_get_us", median_get(&orders, plan, instances)?);
    figures.record(
        "projection_tag_query_us",
        median_tag_query(&orders, plan, instances / INSTANCES_PER_SEGMENT)?,
    );

    let stats = manager.stats().context("read the projections' stats")?;
    let ours = stats
        .iter()
        .find(|s| s.name == NAME)
        .ok_or_else(|| anyhow!("no stats for {NAME}"))?;
    figures.record("projection_files", ours.files as f64);
    Ok(())
}

/// The median time of `get` over [`Plan::projection_reads`] keys spread across `instances`.
fn median_get(orders: &ProjectionStore<Orders>, plan: &Plan, instances: u64) -> Result<f64> {
    let keys: Vec<String> = (0..plan.projection_reads)
        .map(|i| customer_id(spread(i as u64, instances)))
        .collect();
    let mut samples = Vec::with_capacity(keys.len());
    for key in &keys {
        let started = Instant::now();
        let found = orders
            .get(key)
            .with_context(|| format!("get instance {key}"))?;
        samples.push(started.elapsed());
        ensure!(
            found.is_some_and(|o| o.events == EVENTS_PER_CUSTOMER),
            "instance {key} is missing or incomplete"
        );
    }
    measure::median_micros(&mut samples)
}

/// The median time of `query_by_tags` for one segment, over [`Plan::projection_reads`]
/// segments spread across `segments`.
fn median_tag_query(orders: &ProjectionStore<Orders>, plan: &Plan, segments: u64) -> Result<f64> {
    let tags = (0..plan.projection_reads)
        .map(|i| segment_tag(spread(i as u64, segments)).map(|t| [t]))
        .collect::<Result<Vec<[Tag; 1]>, _>>()?;
    let page = Page::all();
    let mut samples = Vec::with_capacity(tags.len());
    for tag in &tags {
        let started = Instant::now();
        let found = orders
            .query_by_tags(tag, &page)
            .with_context(|| format!("query the instances tagged {tag:?}"))?;
        samples.push(started.elapsed());
        ensure!(
            found.items.len() as u64 == INSTANCES_PER_SEGMENT && found.next.is_none(),
            "the query for {tag:?} returned {} instances, not {INSTANCES_PER_SEGMENT}",
            found.items.len()
        );
    }
    measure::median_micros(&mut samples)
}

/// Number `i` of a sequence that visits `0..n` in a scattered order, each once per `n` steps
/// (for `n` up to a billion without the factor 2,654,435,761, a prime).
fn spread(i: u64, n: u64) -> u64 {
    (i % n) * 2_654_435_761 % n
}

fn open_manager(
    store: &Arc<dyn EventStore>,
    root: &Path,
    options: ProjectionOptions,
) -> Result<ProjectionManager> {
    ProjectionManager::builder(Arc::clone(store), root)
        .options(options)
        .register(OrdersPerCustomer)
        .open()
        .with_context(|| format!("open the projections in {}", root.display()))
}

/// Rebuilds the projection, checks that it took in `events` events, and returns the time it
/// took.
async fn timed_rebuild(manager: &ProjectionManager, events: u64) -> Result<Duration> {
    let started = Instant::now();
    let rebuilt = manager
        .rebuilder()
        .rebuild(NAME)
        .await
        .context("rebuild the projection")?;
    let elapsed = started.elapsed();
    ensure!(
        rebuilt.events_applied == events,
        "the rebuild applied {} events, not {events}",
        rebuilt.events_applied
    );
    Ok(elapsed)
}

fn per_second(events: u64, elapsed: Duration) -> f64 {
    events as f64 / elapsed.as_secs_f64().max(1e-9)
}
