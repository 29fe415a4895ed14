//! `read_stream`: what `read` returns, in bounded batches, pinned to the head it started at.

use opossum_core::stream::{self, STREAM_BATCH};
use opossum_core::{ErrorKind, EventStore, NewEvent, Query, ReadOptions};

use super::seed_course_history;
use crate::fixtures::{
    item, items_query, numbered, pos, positions, records, tags_query, types_query,
};
use crate::probe::Probe;
use crate::streams::{collect_events, next_event, next_item};

/// Events in the store of the batch checks: more than two batches of [`STREAM_BATCH`].
const LARGE: u64 = 1300;

/// Appends [`LARGE`] events in batches of 100: types `A`, `B`, `C` in turn, tag `seven` = the
/// position modulo 7, payload `{"n":<position>}`.
async fn seed_large<S: EventStore + ?Sized>(store: &S) {
    let event = |n: u64| -> NewEvent {
        let event_type = ["A", "B", "C"][usize::try_from(n % 3).expect("small")];
        numbered(event_type, &[("seven", &(n % 7).to_string())], n)
    };
    for start in (1..=LARGE).step_by(100) {
        let batch = (start..start + 100).map(event).collect();
        let last = store.append(batch, None).await.expect("append");
        assert_eq!(
            last.get(),
            start + 99,
            "seed batch ends at the wrong position"
        );
    }
}

/// Read options around the batch boundaries of a [`LARGE`] store.
fn large_options() -> Vec<ReadOptions> {
    let o = ReadOptions::new();
    vec![
        o,
        o.after(pos(511)),
        o.after(pos(512)),
        o.until(pos(512)),
        o.until(pos(513)),
        o.after(pos(100)).until(pos(1100)),
        o.limit(512),
        o.limit(600),
        o.after(pos(700)).limit(513),
        o.until(pos(1030)).limit(1025),
        o.limit(5),
        o.after(pos(LARGE)),
    ]
}

/// Streams `query` with `options` to its end and returns the records, panicking on an error.
async fn streamed(
    stream: &mut opossum_core::EventStream<'_>,
    what: &str,
) -> Vec<crate::EventRecord> {
    let events = collect_events(stream, what)
        .await
        .unwrap_or_else(|e| panic!("{what}: the stream failed: {e:?}"));
    records(&events)
}

/// For every kind of query and every combination of `after`, `until` and `limit`, the stream
/// yields exactly the events `read` returns, in the same order — through the trait method and
/// through [`stream::read_stream`].
pub async fn read_stream_returns_what_read_returns<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let queries = [
        Query::all(),
        tags_query(&[("course", "c1")]),
        types_query(&["StudentEnrolled"]),
        items_query([
            item(&["CourseCreated"], &[("course", "c3")]),
            item(&[], &[("student", "s1")]),
        ]),
        types_query(&["Unknown"]),
    ];
    let o = ReadOptions::new();
    let options = [
        o,
        o.after(pos(3)),
        o.until(pos(7)),
        o.after(pos(2)).until(pos(9)),
        o.limit(2),
        o.after(pos(4)).limit(3),
        o.until(pos(5)).limit(10),
        o.limit(0),
        o.after(pos(10)),
        o.after(pos(20)),
        o.until(pos(1)),
        o.after(pos(7)).until(pos(3)),
    ];
    for query in &queries {
        for options in options {
            let want = records(&store.read(query, options).await.expect("read"));
            let what = format!("read_stream({query:?}, {options:?})");
            let got = streamed(&mut store.read_stream(query, options), &what).await;
            assert_eq!(got, want, "{what} must return what read returns");
            let got = streamed(
                &mut stream::read_stream(&store, query.clone(), options),
                &what,
            )
            .await;
            assert_eq!(got, want, "stream::{what} must return what read returns");
        }
    }
}

/// A descending streaming read is refused with an invalid-input error, and the stream ends.
pub async fn read_stream_refuses_a_descending_read<S: EventStore>(store: S) {
    seed_course_history(&store).await;
    let descending = ReadOptions::new().descending();
    let mut events = store.read_stream(&Query::all(), descending);
    match next_item(&mut events, "a descending read_stream").await {
        Some(Err(e)) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e:?}"),
        other => panic!("a descending read_stream must fail, got {other:?}"),
    }
    assert!(
        next_item(&mut events, "the end after the error")
            .await
            .is_none(),
        "the stream ends after its error"
    );
}

/// On a store of 1300 events (more than two batches of [`STREAM_BATCH`]), the stream yields
/// what `read` returns, also across batch boundaries with `after`, `until` and `limit`; no step
/// of the shared cursor asks the store for more than [`STREAM_BATCH`] events, and reading the
/// whole store takes more than one step.
pub async fn read_stream_of_a_large_store_reads_in_batches<S: EventStore>(store: S) {
    let probe = Probe::new(store);
    seed_large(&probe).await;
    let queries = [
        Query::all(),
        types_query(&["B"]),
        tags_query(&[("seven", "3")]),
    ];
    for query in &queries {
        for options in large_options() {
            let want = records(&probe.inner().read(query, options).await.expect("read"));
            let what = format!("read_stream({query:?}, {options:?})");
            let own = streamed(&mut probe.inner().read_stream(query, options), &what).await;
            assert_eq!(
                own, want,
                "the store's {what} must return what read returns"
            );
            let shared = streamed(&mut probe.read_stream(query, options), &what).await;
            assert_eq!(shared, want, "{what} through the cursor");
        }
    }
    let limit = probe.largest_read_limit();
    assert!(
        limit.is_some_and(|l| l <= STREAM_BATCH),
        "a step of a streaming read asks for at most {STREAM_BATCH} events, one asked for {limit:?}"
    );

    let before = probe.reads_started();
    let all = streamed(
        &mut probe.read_stream(&Query::all(), ReadOptions::new()),
        "the whole store",
    )
    .await;
    assert_eq!(all.len(), usize::try_from(LARGE).expect("small"));
    let steps = probe.reads_started() - before;
    assert!(
        steps
            >= usize::try_from(LARGE)
                .expect("small")
                .div_ceil(STREAM_BATCH),
        "{LARGE} events are read in batches of {STREAM_BATCH}: {steps} reads"
    );
}

/// Without `until`, a streaming read returns what a read returned when it started: events
/// appended while it runs (here after its first event) are not part of it, so it ends however
/// fast writers append. A new stream sees them.
pub async fn read_stream_ends_at_the_head_it_started_at<S: EventStore>(store: S) {
    seed_large(&store).await;
    let cases = [
        (Query::all(), ReadOptions::new()),
        (types_query(&["A"]), ReadOptions::new().after(pos(7))),
        (
            tags_query(&[("seven", "0")]),
            ReadOptions::new().limit(1000),
        ),
    ];
    let mut head = LARGE;
    for (query, options) in &cases {
        let want = records(&store.read(query, *options).await.expect("read"));
        let mut events = store.read_stream(query, *options);
        let first = next_event(&mut events, "the first streamed event").await;
        // 21 more, of every type and every tag value: each query above would match some.
        let more = (head + 1..=head + 21).map(|n| {
            let event_type = ["A", "B", "C"][usize::try_from(n % 3).expect("small")];
            numbered(event_type, &[("seven", &(n % 7).to_string())], n)
        });
        head = store
            .append(more.collect(), None)
            .await
            .expect("append")
            .get();
        let mut got = vec![crate::EventRecord::of(&first)];
        got.extend(streamed(&mut events, "the rest of the stream").await);
        assert_eq!(
            got, want,
            "read_stream({query:?}, {options:?}) returns what read returned when it started"
        );
    }
    let all = collect_events(
        &mut store.read_stream(&Query::all(), ReadOptions::new()),
        "a new stream",
    )
    .await
    .expect("read_stream");
    assert_eq!(positions(&all), (1..=head).collect::<Vec<_>>());
}
