//! The shared cursor behind `read_stream` and `subscribe` (`opossum_core::stream`), on stores
//! that implement only what the trait requires: the default `head` and `wait_for_append` are
//! enough for a subscription; a store error ends a stream; a small limit is read in one small
//! step; a stream that owns its store is `'static`; a stream asked again after its end says
//! `None` again. The DCB conformance of streams and subscriptions on every store is in
//! `opossum-testkit`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests: a failed expectation is a test failure"
)]

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use opossum_core::stream::{self, STREAM_BATCH};
use opossum_core::{
    AppendCondition, Error, ErrorKind, EventStore, EventStream, InMemoryEventStore, NewEvent,
    Payload, Position, Query, ReadOptions, SequencedEvent,
};

/// Turns a hang into a failure; never a timing assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

async fn next(stream: &mut EventStream<'_>) -> Option<Result<SequencedEvent, Error>> {
    tokio::time::timeout(HANG_GUARD, stream.next())
        .await
        .expect("the stream hung")
}

async fn next_position(stream: &mut EventStream<'_>) -> u64 {
    next(stream)
        .await
        .expect("the stream ended")
        .expect("the stream failed")
        .position
        .get()
}

fn ping() -> NewEvent {
    NewEvent::builder("Ping", Payload::from_json("{}").unwrap())
        .build()
        .unwrap()
}

fn pings(n: usize) -> Vec<NewEvent> {
    (0..n).map(|_| ping()).collect()
}

/// The in-memory store behind only the three required methods — so `head` and
/// `wait_for_append` are the trait's defaults — with reads counted (and, from a given read on,
/// failing) and each read's limit recorded.
struct Minimal {
    inner: InMemoryEventStore,
    reads: AtomicUsize,
    fail_from_read: usize,
    limits: Mutex<Vec<Option<usize>>>,
}

impl Minimal {
    fn new() -> Minimal {
        Minimal::failing_from(usize::MAX)
    }

    /// Reads number `n` (counting from 1) and every later one fail.
    fn failing_from(n: usize) -> Minimal {
        Minimal {
            inner: InMemoryEventStore::new(),
            reads: AtomicUsize::new(0),
            fail_from_read: n,
            limits: Mutex::new(Vec::new()),
        }
    }

    fn limits(&self) -> Vec<Option<usize>> {
        self.limits.lock().unwrap().clone()
    }
}

#[async_trait]
impl EventStore for Minimal {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.inner.append(events, condition).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        let n = self.reads.fetch_add(1, Ordering::SeqCst) + 1;
        self.limits.lock().unwrap().push(options.limit);
        if n >= self.fail_from_read {
            return Err(Error::storage(
                ErrorKind::Io,
                std::io::Error::other("the disk went away"),
            ));
        }
        self.inner.read(query, options).await
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.inner.read_last(query).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_head_and_wait_are_enough_for_a_subscription() {
    let store = Arc::new(Minimal::new());
    assert_eq!(store.head().await.unwrap(), None);
    store.append(pings(3), None).await.unwrap();
    assert_eq!(store.head().await.unwrap().map(Position::get), Some(3));

    let mut live = stream::subscribe(Arc::clone(&store), Query::all(), None);
    for want in 1..=3 {
        assert_eq!(next_position(&mut live).await, want);
    }
    let appender = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            for _ in 0..3 {
                store.append(pings(1), None).await.unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    for want in 4..=6 {
        assert_eq!(next_position(&mut live).await, want, "live events in order");
    }
    appender.await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_error_ends_a_streaming_read_after_the_events_before_it() {
    // The first read (a whole batch) succeeds, the second fails.
    let store = Minimal::failing_from(2);
    store.append(pings(STREAM_BATCH + 10), None).await.unwrap();
    let mut events = store.read_stream(&Query::all(), ReadOptions::new());
    for want in 1..=STREAM_BATCH as u64 {
        assert_eq!(next_position(&mut events).await, want);
    }
    let failed = next(&mut events).await.expect("an item after the batch");
    assert_eq!(failed.unwrap_err().kind(), ErrorKind::Io);
    assert!(
        next(&mut events).await.is_none(),
        "the error ends the stream"
    );
    assert!(next(&mut events).await.is_none(), "and it stays ended");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_error_ends_a_subscription() {
    let store = Minimal::failing_from(2);
    store.append(pings(2), None).await.unwrap();
    let mut live = store.subscribe_all(None);
    assert_eq!(next_position(&mut live).await, 1);
    assert_eq!(next_position(&mut live).await, 2);
    store.append(pings(1), None).await.unwrap();
    let failed = next(&mut live).await.expect("an item after the catch-up");
    assert_eq!(failed.unwrap_err().kind(), ErrorKind::Io);
    assert!(
        next(&mut live).await.is_none(),
        "the error ends the subscription"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_limit_is_read_in_one_step_of_its_size() {
    let store = Minimal::new();
    store.append(pings(STREAM_BATCH * 2), None).await.unwrap();
    let mut three = store.read_stream(&Query::all(), ReadOptions::new().limit(3));
    for want in 1..=3 {
        assert_eq!(next_position(&mut three).await, want);
    }
    assert!(next(&mut three).await.is_none());
    assert_eq!(store.limits(), [Some(3)], "one read, of the limit's size");

    let mut none = store.read_stream(&Query::all(), ReadOptions::new().limit(0));
    assert!(next(&mut none).await.is_none(), "limit 0 streams nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streaming_read_asks_for_at_most_a_batch_at_a_time() {
    let store = Minimal::new();
    store
        .append(pings(STREAM_BATCH * 2 + 1), None)
        .await
        .unwrap();
    let mut all = store.read_stream(&Query::all(), ReadOptions::new().limit(STREAM_BATCH + 1));
    let mut count = 0;
    while let Some(event) = next(&mut all).await {
        event.unwrap();
        count += 1;
    }
    assert_eq!(count, STREAM_BATCH + 1);
    assert_eq!(
        store.limits(),
        [Some(STREAM_BATCH), Some(STREAM_BATCH)],
        "two batches for one more than a batch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_owns_its_store_is_static() {
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    store.append(pings(2), None).await.unwrap();
    let mut live: EventStream<'static> = stream::subscribe(Arc::clone(&store), Query::all(), None);
    let mut read: EventStream<'static> =
        stream::read_stream(Arc::clone(&store), Query::all(), ReadOptions::new());
    let follower = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            got.push(next_position(&mut live).await);
        }
        got
    });
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(event) = next(&mut read).await {
            got.push(event.unwrap().position.get());
        }
        got
    });
    assert_eq!(reader.await.unwrap(), [1, 2]);
    store.append(pings(1), None).await.unwrap();
    assert_eq!(follower.await.unwrap(), [1, 2, 3]);
    assert_eq!(
        Arc::strong_count(&store),
        1,
        "the finished tasks let go of the store"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streaming_read_of_an_empty_store_ends_and_stays_ended() {
    let store = InMemoryEventStore::new();
    let mut events = store.read_stream(&Query::all(), ReadOptions::new());
    assert!(next(&mut events).await.is_none());
    assert!(
        next(&mut events).await.is_none(),
        "asked again after the end"
    );
    let mut refused = store.read_stream(&Query::all(), ReadOptions::new().descending());
    let error = next(&mut refused).await.expect("an item").unwrap_err();
    assert!(
        matches!(error, Error::InvalidReadOptions { .. }),
        "{error:?}"
    );
    assert!(next(&mut refused).await.is_none());
    assert!(next(&mut refused).await.is_none());
}
