//! Taking events from an [`EventStream`] in tests, every wait under a hang guard: a stream that
//! stops delivering fails the test after [`HANG_GUARD`] instead of blocking the run. The guard
//! is never a timing assertion — a healthy run takes a fraction of it.

use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use opossum_core::{Error, EventStream, SequencedEvent};

/// How long any single wait of these helpers may take before the test fails as hung.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

/// Awaits `future`, panicking with `what` when it takes longer than [`HANG_GUARD`].
///
/// # Panics
/// When the guard runs out.
pub async fn guarded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(HANG_GUARD, future).await {
        Ok(output) => output,
        Err(_) => panic!("hung for {HANG_GUARD:?}: {what}"),
    }
}

/// The stream's next item as it comes: `None` at its end.
///
/// # Panics
/// When nothing comes within [`HANG_GUARD`].
pub async fn next_item(
    stream: &mut EventStream<'_>,
    what: &str,
) -> Option<Result<SequencedEvent, Error>> {
    guarded(what, stream.next()).await
}

/// The stream's next event.
///
/// # Panics
/// When the stream yields an error or ends, or nothing comes within [`HANG_GUARD`].
pub async fn next_event(stream: &mut EventStream<'_>, what: &str) -> SequencedEvent {
    match next_item(stream, what).await {
        Some(Ok(event)) => event,
        Some(Err(e)) => panic!("{what}: the stream failed: {e:?}"),
        None => panic!("{what}: the stream ended"),
    }
}

/// The stream's next `n` events.
///
/// # Panics
/// As [`next_event`], for each of them.
pub async fn take_events(
    stream: &mut EventStream<'_>,
    n: usize,
    what: &str,
) -> Vec<SequencedEvent> {
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        events.push(next_event(stream, &format!("{what} (event {} of {n})", i + 1)).await);
    }
    events
}

/// Every item up to the end of the stream: the events, or the first error (after which a
/// stream ends).
///
/// # Panics
/// When an item does not come within [`HANG_GUARD`].
pub async fn collect_events(
    stream: &mut EventStream<'_>,
    what: &str,
) -> Result<Vec<SequencedEvent>, Error> {
    let mut events = Vec::new();
    while let Some(item) = next_item(stream, what).await {
        events.push(item?);
    }
    Ok(events)
}

/// Returns once `condition` holds, looking every millisecond: for a state another task
/// reaches, never for a duration.
///
/// # Panics
/// When `condition` does not hold within [`HANG_GUARD`].
pub async fn until_true(what: &str, mut condition: impl FnMut() -> bool) {
    guarded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}
