//! `Query::matches`: the one definition of DCB matching, which every store runs on every
//! candidate event it reads.
//!
//! Run with `cargo bench -p opossum-benches --bench query_matching`.

// A benchmark whose setup fails has nothing to measure: failing loudly is the right answer.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::Criterion;
use opossum_benches::{CUSTOMER_TAG, EVENT_TYPES, catalog_event, customer_query, type_query};
use opossum_core::{Query, QueryItem, Tag};

fn query_matching(c: &mut Criterion) {
    // Event 1231 is an "OrderConfirmed" (type 1) of customer 123.
    let event = catalog_event(1_231).expect("catalog event");
    let same_customer = customer_query(123).expect("query");
    let other_customer = customer_query(124).expect("query");
    let by_type = type_query(EVENT_TYPES[1]).expect("query");
    let type_and_tag = Query::from_items([QueryItem::of_types([EVENT_TYPES[1]])
        .expect("item")
        .with_tag(Tag::new(CUSTOMER_TAG, "C-0000123").expect("tag"))])
    .expect("query");
    // A decision model's query: several items, only the last of which matches.
    let three_items =
        Query::from_items([EVENT_TYPES[5], EVENT_TYPES[7], EVENT_TYPES[1]].map(|t| {
            QueryItem::of_types([t])
                .expect("item")
                .with_tag(Tag::new(CUSTOMER_TAG, "C-0000123").expect("tag"))
        }))
        .expect("query");

    let mut group = c.benchmark_group("query_matches");
    let cases = [
        ("tag_hit", &same_customer, true),
        ("tag_miss", &other_customer, false),
        ("type_hit", &by_type, true),
        ("type_and_tag_hit", &type_and_tag, true),
        ("three_items_last_hits", &three_items, true),
    ];
    for (name, query, expected) in cases {
        assert_eq!(query.matches(&event), expected, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| black_box(query).matches(black_box(&event)));
        });
    }
    group.finish();
}

/// Runs the benchmarks with criterion's command-line options: what `criterion_group!` and
/// `criterion_main!` generate, written out because their `pub fn` cannot carry a doc comment.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    query_matching(&mut criterion);
    criterion.final_summary();
}
