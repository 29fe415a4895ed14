//! Index lookups on a store of 100,000 catalog events (written with flush off): a tag `read`
//! returning 10 events, `read_last` by type and `read_last` of everything.
//!
//! Building the store takes a few seconds, also in `cargo test`'s quick check of this bench.
//!
//! Run with `cargo bench -p opossum-benches --bench index_lookup`.

// A benchmark whose setup fails has nothing to measure: failing loudly is the right answer.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::Criterion;
use opossum_benches::{
    EVENT_TYPES, EVENTS_PER_CUSTOMER, catalog_event, customer_query, type_query,
};
use opossum_core::{Durability, NewEvent, Query, ReadOptions};
use opossum_fs::{FileEventStore, StoreOptions};

const EVENTS: u64 = 100_000;
const BATCH: u64 = 10_000;

fn index_lookup(c: &mut Criterion) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let store = FileEventStore::open_with(
        folder.path().join("catalog"),
        StoreOptions::new().durability(Durability::Eventual),
    )
    .expect("open store");
    for start in (0..EVENTS).step_by(BATCH as usize) {
        let batch: Vec<NewEvent> = (start..start + BATCH)
            .map(|i| catalog_event(i).expect("catalog event"))
            .collect();
        store.append_blocking(batch, None).expect("append batch");
    }

    let customers = EVENTS / EVENTS_PER_CUSTOMER;
    let queries: Vec<Query> = (0..64)
        .map(|k| customer_query((k * 7_919) % customers).expect("query"))
        .collect();
    let by_type = type_query(EVENT_TYPES[4]).expect("query");
    let all = Query::all();

    let mut group = c.benchmark_group("index_100k");
    let mut k = 0;
    group.bench_function("read_by_tag_10_events", |b| {
        b.iter(|| {
            k = (k + 1) % queries.len();
            let events = store
                .read_blocking(black_box(&queries[k]), ReadOptions::new())
                .expect("read");
            assert_eq!(events.len() as u64, EVENTS_PER_CUSTOMER);
        });
    });
    group.bench_function("read_last_by_type", |b| {
        b.iter(|| {
            store
                .read_last_blocking(black_box(&by_type))
                .expect("read_last")
        });
    });
    group.bench_function("read_last_all", |b| {
        b.iter(|| {
            store
                .read_last_blocking(black_box(&all))
                .expect("read_last")
        });
    });
    group.finish();
    store.close().expect("close store");
}

/// Runs the benchmarks with criterion's command-line options: what `criterion_group!` and
/// `criterion_main!` generate, written out because their `pub fn` cannot carry a doc comment.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    index_lookup(&mut criterion);
    criterion.final_summary();
}
