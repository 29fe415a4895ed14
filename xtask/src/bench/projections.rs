//! Projections on the file store: how fast a simple projection is rebuilt from the log, and what
//! one incremental update costs.
//!
//! The projection is *orders per customer*: one instance per `customer` tag value of the catalog
//! store (10,000 instances over 100,000 events), its state the number of events and the sum of
//! their `amount_cents`, so every event's payload is decoded. Default projection options: the
//! files of each flush point are synced.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use opossum_benches::{CUSTOMER_TAG, EVENT_TYPES, catalog_event};
use opossum_core::{EventStore, SequencedEvent};
use opossum_projections::{BoxError, Projection, ProjectionManager};
use serde::{Deserialize, Serialize};

use super::fs_append::{Durability, open_store};
use super::fs_query::load_catalog;
use super::measure;
use super::report::Figures;
use super::{Plan, QUERY_STORE_EVENTS};

const NAME: &str = "OrdersPerCustomer";

/// One customer's orders.
#[derive(Debug, Serialize, Deserialize)]
struct Orders {
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
        let orders = state.unwrap_or(Orders {
            events: 0,
            amount_cents: 0,
        });
        Ok(Some(Orders {
            events: orders.events + 1,
            amount_cents: orders.amount_cents + amount,
        }))
    }
}

/// Records `rebuild_per_s` (a full rebuild of the projection over the catalog store) and
/// `incremental_update_us` (the median time for the projection to take in one newly appended
/// event: read it, apply it, write the instance and the checkpoint, durably).
pub(crate) fn projections(dir: &Path, plan: &Plan, figures: &mut Figures) -> Result<()> {
    let store = open_store(dir, "projected", Durability::NoFlush)?;
    load_catalog(&store, QUERY_STORE_EVENTS)?;
    let projections_root = store.path().join("projections");
    let store: Arc<dyn EventStore> = Arc::new(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")?;
    runtime.block_on(async {
        let manager = ProjectionManager::builder(Arc::clone(&store), &projections_root)
            .register(OrdersPerCustomer)
            .open()
            .context("open the projections")?;

        let started = Instant::now();
        let rebuilt = manager
            .rebuilder()
            .rebuild(NAME)
            .await
            .context("rebuild the projection")?;
        let elapsed = started.elapsed();
        ensure!(
            rebuilt.events_applied == QUERY_STORE_EVENTS,
            "the rebuild applied {} events, not {QUERY_STORE_EVENTS}",
            rebuilt.events_applied
        );
        figures.record(
            "rebuild_per_s",
            rebuilt.events_applied as f64 / elapsed.as_secs_f64().max(1e-9),
        );

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
        Ok(())
    })
}
