//! Encoding and decoding one event through the public API: `serde_json` of [`NewEvent`] and
//! [`SequencedEvent`] (the shape of a line in the log), sealing and opening its personal fields
//! and upcasting it (what `Records` adds to an append and a read), and a whole append-then-read
//! of one event on a store that does not flush.
//!
//! The store's own line codec is private; its cost shows in the round trip.
//!
//! Run with `cargo bench -p opossum-benches --bench codec`.

// A benchmark whose setup fails has nothing to measure: failing loudly is the right answer.
#![allow(clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, Throughput};
use opossum_benches::sample_event;
use opossum_core::records::{SubjectKey, open, seal};
use opossum_core::{Durability, NewEvent, Payload, Position, Query, SequencedEvent, Upcasters};
use opossum_fs::{FileEventStore, StoreOptions};

fn json_codec(c: &mut Criterion) {
    let event = sample_event(42).expect("sample event");
    let sequenced = SequencedEvent::new(Position::new(1_234_567).expect("position"), event.clone());
    let new_json = serde_json::to_string(&event).expect("encode");
    let sequenced_json = serde_json::to_string(&sequenced).expect("encode");

    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Bytes(sequenced_json.len() as u64));
    group.bench_function("encode_new_event", |b| {
        b.iter(|| serde_json::to_vec(black_box(&event)));
    });
    group.bench_function("decode_new_event", |b| {
        b.iter(|| serde_json::from_str::<NewEvent>(black_box(&new_json)));
    });
    group.bench_function("encode_sequenced_event", |b| {
        b.iter(|| serde_json::to_vec(black_box(&sequenced)));
    });
    group.bench_function("decode_sequenced_event", |b| {
        b.iter(|| serde_json::from_str::<SequencedEvent>(black_box(&sequenced_json)));
    });
    group.finish();
}

/// A registration with three personal fields, as the sample stores one.
fn personal_event() -> NewEvent {
    NewEvent::builder(
        "StudentRegistered",
        Payload::from_json(
            r#"{"studentId":"0e69ca40-1665-4a05-b7e0-a25ab8cb8474","firstName":"Ada","lastName":"Lovelace","email":"ada@example.com"}"#,
        )
        .expect("payload"),
    )
    .tag("studentId", "0e69ca40-1665-4a05-b7e0-a25ab8cb8474")
    .personal_data("0e69ca40-1665-4a05-b7e0-a25ab8cb8474", ["firstName", "lastName", "email"])
    .build()
    .expect("event")
}

fn records(c: &mut Criterion) {
    let key = SubjectKey::generate().expect("key");
    let event = personal_event();
    let sealed = SequencedEvent::new(Position::FIRST, seal(event.clone(), &key).expect("seal"));
    let upcasters = Upcasters::new()
        .upcast("StudentRegistered", 1, |mut v| {
            let email = v["email"].take();
            v["mail"] = email;
            Ok(v)
        })
        .expect("upcaster");
    let plain = SequencedEvent::new(Position::FIRST, event.clone());

    let mut group = c.benchmark_group("records");
    group.bench_function("seal_3_fields", |b| {
        b.iter(|| seal(black_box(event.clone()), &key));
    });
    group.bench_function("open_3_fields", |b| {
        b.iter(|| open(black_box(sealed.clone()), Some(&key)));
    });
    group.bench_function("erase_3_fields", |b| {
        b.iter(|| open(black_box(sealed.clone()), None));
    });
    group.bench_function("upcast_one_step", |b| {
        b.iter(|| upcasters.apply(black_box(plain.clone())));
    });
    group.bench_function("clone_baseline", |b| {
        b.iter(|| black_box(plain.clone()));
    });
    group.finish();
}

fn store_round_trip(c: &mut Criterion) {
    let folder = tempfile::tempdir().expect("temporary folder");
    let store = FileEventStore::open_with(
        folder.path().join("codec"),
        StoreOptions::new().durability(Durability::Eventual),
    )
    .expect("open store");
    let all = Query::all();
    let mut i = 0;
    c.bench_function("append_then_read_last_no_flush", |b| {
        b.iter(|| {
            i += 1;
            let event = sample_event(i).expect("sample event");
            let position = store.append_blocking(vec![event], None).expect("append");
            let read = store.read_last_blocking(&all).expect("read_last");
            assert_eq!(read.map(|e| e.position), Some(position));
        });
    });
    store.close().expect("close store");
}

/// Runs the benchmarks with criterion's command-line options: what `criterion_group!` and
/// `criterion_main!` generate, written out because their `pub fn` cannot carry a doc comment.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    json_codec(&mut criterion);
    records(&mut criterion);
    store_round_trip(&mut criterion);
    criterion.final_summary();
}
