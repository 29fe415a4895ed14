//! Live updates: bringing the live generation of each projection up to the store's head, one
//! bounded batch at a time, each committed with its checkpoint.

use std::sync::Arc;
use std::time::Instant;

use opossum_core::Position;
use tokio::sync::watch;
use tracing::Instrument;

use crate::Error;
use crate::generation::Generation;
use crate::manager::{Inner, Tracked};
use crate::read::{self, Batch};
use crate::report::{CatchUpReport, ProjectionFailure};
use crate::runner::{self, Failed, Runner};
use opossum_core::Durability;

/// Brings every projection that is not being rebuilt up to the head, one batch per projection
/// in turn, until all are current, have failed, or `stop` says to stop.
pub(crate) async fn catch_up(
    inner: &Arc<Inner>,
    stop: Option<&watch::Receiver<bool>>,
) -> CatchUpReport {
    let mut report = CatchUpReport::default();
    if inner.is_following() {
        // Another process applies the events; this one only reads its files.
        return report;
    }
    let mut active: Vec<Arc<Tracked>> = inner.projections.clone();
    while !active.is_empty() {
        if stop.is_some_and(|s| *s.borrow()) {
            break;
        }
        let head = match read::head(inner.store.as_ref()).await {
            Ok(head) => head,
            Err(error) => {
                for tracked in &active {
                    record(inner, tracked, &error, None, &mut report);
                }
                break;
            }
        };
        let mut unfinished = Vec::with_capacity(active.len());
        for tracked in active {
            if tracked.is_rebuilding() {
                continue;
            }
            match step(inner, &tracked, head).await {
                Ok((applied, reached_end)) => {
                    report.events_applied += applied;
                    if tracked.clear_failure() {
                        tracing::info!(projection = tracked.name(), "projection recovered");
                        inner.bump();
                    }
                    if !reached_end {
                        unfinished.push(tracked);
                    }
                }
                Err((error, position)) => record(inner, &tracked, &error, position, &mut report),
            }
        }
        active = unfinished;
    }
    report
}

fn record(
    inner: &Inner,
    tracked: &Tracked,
    error: &Error,
    position: Option<Position>,
    report: &mut CatchUpReport,
) {
    let failure = ProjectionFailure {
        name: tracked.name().to_owned(),
        position,
        reason: error.to_string(),
    };
    if tracked.set_failure(failure.clone()) {
        tracing::warn!(projection = tracked.name(), position = position.map(Position::get), error = %error, "projection stopped; the other projections go on");
    } else {
        tracing::debug!(projection = tracked.name(), error = %error, "projection still failing");
    }
    inner.bump();
    report.failures.push(failure);
}

/// Reads, applies and commits one batch of `tracked`. Returns the events applied and whether
/// the batch reached the end of the store; on failure, the error and the event it stopped at.
async fn step(
    inner: &Arc<Inner>,
    tracked: &Arc<Tracked>,
    head: u64,
) -> Result<(u64, bool), (Error, Option<Position>)> {
    let _writer = tracked.writer.lock().await;
    let generation = tracked
        .live_generation(inner.durability)
        .map_err(|e| (e, None))?;
    let from = generation.checkpoint();
    if from.is_some_and(|from| head <= from) {
        return Ok((0, true));
    }
    let from = from.unwrap_or(0);
    let span = tracing::debug_span!("apply_batch", projection = tracked.name(), from);
    async {
        let started = Instant::now();
        let batch = read::batch(
            inner.store.as_ref(),
            tracked.runner.as_ref(),
            from,
            inner.options.get_batch_size(),
            head,
        )
        .await
        .map_err(|e| (e, None))?;
        let reached_end = batch.reached_end;
        let (events, checkpoint) = (batch.events.len(), batch.checkpoint);
        let runner = Arc::clone(&tracked.runner);
        let durability = inner.durability;
        let min_garbage = inner.options.get_compaction_min_garbage();
        let compacting = Arc::clone(tracked);
        let committed = tokio::task::spawn_blocking(move || {
            let applied = commit(runner, &generation, durability, batch)?;
            if generation.wants_compaction(min_garbage) {
                // A failed compaction loses nothing: the live generation stays as it is.
                if let Err(e) = compact(&compacting, generation, durability) {
                    tracing::warn!(error = %e, "could not compact the projection; it is tried again after the next batch");
                }
            }
            Ok(applied)
        })
        .await
                .map_err(|e| {
                    let error = Error::Task {
                        what: "apply",
                        reason: e.to_string(),
                    };
                    (error, None)
                })?;
        inner.bump();
        let applied = committed?;
        tracing::debug!(
            events,
            checkpoint,
            micros = started.elapsed().as_micros() as u64,
            "applied a batch"
        );
        Ok((applied, reached_end))
    }
    .instrument(span)
    .await
}

/// Applies `batch` to `generation` and commits it with its checkpoint. When an event fails, the
/// events before it are committed (with the checkpoint just before it) and the failure is
/// returned with its position.
fn commit(
    runner: Arc<dyn Runner>,
    generation: &Arc<Generation>,
    durability: Durability,
    batch: Batch,
) -> Result<u64, (Error, Option<Position>)> {
    let session = |runner: &Arc<dyn Runner>| Arc::clone(runner).session(Arc::clone(generation));
    let mut first = session(&runner);
    match first.apply(&batch.events) {
        Ok(()) => {
            runner::commit(
                first.as_mut(),
                generation,
                batch.checkpoint,
                None,
                durability,
            )
            .map_err(|e| (e, None))?;
            Ok(batch.events.len() as u64)
        }
        Err(Failed { index, error }) => {
            drop(first);
            let position = batch.events.get(index).map(|p| p.event.position);
            if let Some(before) = index.checked_sub(1).and_then(|i| batch.events.get(i)) {
                // The failed session lost the failing instance's state; replay the good prefix
                // in a fresh one (deterministic) and commit it.
                let mut again = session(&runner);
                again
                    .apply(&batch.events[..index])
                    .map_err(|f| (f.error, position))?;
                runner::commit(
                    again.as_mut(),
                    generation,
                    before.event.position.get(),
                    None,
                    durability,
                )
                .map_err(|e| (e, position))?;
            }
            Err((error, position))
        }
    }
}

/// Replaces the live generation of `tracked` by a compacted copy: the newest record of every
/// live instance, in key order, with the same checkpoint, made live by replacing
/// `current.json`. The caller holds the projection's writer lock.
pub(crate) fn compact(
    tracked: &Tracked,
    live: Arc<Generation>,
    durability: Durability,
) -> Result<(), Error> {
    let started = Instant::now();
    let number = tracked.allocate_generation();
    let target = Generation::open(&tracked.dir, number, durability)?;
    let copied = live
        .compact_into(&target, durability)
        .and_then(|()| crate::generation::write_current(&tracked.dir, number, durability));
    if let Err(e) = copied {
        drop(target);
        let _ = crate::generation::remove_generation(&tracked.dir, number);
        return Err(e);
    }
    let (before, after) = (live.file_len(), target.file_len());
    drop(live);
    if let Some(replaced) = tracked.replace_current(target) {
        // Deleted now unless a reader still holds it (then when the last one lets go).
        if let Ok(replaced) = Arc::try_unwrap(replaced) {
            replaced.delete_now();
        }
    }
    tracing::info!(
        projection = tracked.name(),
        generation = number,
        bytes_before = before,
        bytes_after = after,
        millis = started.elapsed().as_millis() as u64,
        "compacted projection"
    );
    Ok(())
}
