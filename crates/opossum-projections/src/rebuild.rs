//! [`Rebuilder`]: rebuilding projections from the log into a new generation, with a journal
//! that lets a crashed rebuild resume from its last flush point, and an atomic commit.
//!
//! A rebuild reads the projection's events in batches of
//! [`rebuild_batch_size`](crate::ProjectionOptions::rebuild_batch_size) and applies them in one
//! session whose cache holds the instances touched since the last flush point. Every
//! [`rebuild_flush_interval`](crate::ProjectionOptions::rebuild_flush_interval) events it
//! flushes: the changed instances are written and made durable, then the generation's
//! checkpoint and the journal record the position, and the cache is emptied once it holds more
//! than the flush interval. Memory therefore stays bounded by the flush interval whatever the
//! number of instances. At the end the generation is made live by replacing `current.json`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use opossum_core::Timestamp;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::Error;
use crate::generation::{self, Generation, Journal};
use crate::manager::{Inner, Tracked};
use crate::report::{
    self, ProjectionFailure, RebuildProgress, RebuildReport, RebuildStatus, RebuiltProjection,
};
use crate::runner;
use crate::{read, update};
use opossum_core::Durability;

/// A long rebuild logs its progress this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// Rebuilds projections from the event log: one, several or all of them, up to
/// [`max_concurrent_rebuilds`](crate::ProjectionOptions::max_concurrent_rebuilds) at a time.
///
/// Get one from [`ProjectionManager::rebuilder`](crate::ProjectionManager::rebuilder). A
/// rebuild writes a new generation of the projection beside the live one, which keeps serving
/// reads until the new one is committed — atomically, by replacing one pointer file — so readers
/// never see a half-built projection. While a projection is rebuilt the daemon leaves it alone;
/// after the commit it brings it up to date with events appended during the rebuild.
///
/// If the process dies during a rebuild, the journal (`rebuild.json`) survives, and the daemon
/// resumes the rebuild from its last flush point when it next starts. An explicit
/// [`rebuild`](Self::rebuild) discards such an interrupted rebuild and starts afresh (the code
/// may have changed in between).
///
/// Dropping a rebuild's future stops it at its next batch; a later start resumes it.
#[derive(Clone)]
pub struct Rebuilder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Rebuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rebuilder").finish_non_exhaustive()
    }
}

impl Rebuilder {
    pub(crate) fn new(inner: Arc<Inner>) -> Rebuilder {
        Rebuilder { inner }
    }

    /// Rebuilds projection `name` from the first event.
    ///
    /// If the projection is being rebuilt already (for example by the daemon's automatic
    /// rebuild at start), this waits for that rebuild to end and then rebuilds it again, so the
    /// result always reflects every event appended before the call.
    ///
    /// # Errors
    /// [`Error::UnknownProjection`], or the error that stopped the rebuild (the live generation
    /// is then unchanged).
    pub async fn rebuild(&self, name: &str) -> Result<RebuiltProjection, Error> {
        let tracked = Arc::clone(self.inner.find(name)?);
        let reservation = loop {
            // Register for the wake-up before trying, so an end between the two is not missed.
            let ended = self.inner.rebuild_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if let Some(r) = Reservation::take(&self.inner, Arc::clone(&tracked), Start::Fresh) {
                break r;
            }
            ended.await;
        };
        run(Arc::clone(&self.inner), reservation, None).await
    }

    /// Rebuilds the named projections, in parallel up to the configured limit. Like
    /// [`rebuild`](Self::rebuild), it first waits for rebuilds of them that are already running.
    ///
    /// # Errors
    /// [`Error::UnknownProjection`] before anything starts. A projection whose rebuild fails is
    /// listed in [`RebuildReport::failed`].
    pub async fn rebuild_many(&self, names: &[&str]) -> Result<RebuildReport, Error> {
        let tracked = names
            .iter()
            .map(|n| self.inner.find(n).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        self.wait_until_idle(&tracked).await;
        Ok(self
            .run_all(
                tracked.into_iter().map(|t| (t, Start::Fresh)).collect(),
                None,
            )
            .await)
    }

    /// Rebuilds every registered projection, first waiting for rebuilds already running (such
    /// as the daemon's automatic ones at start).
    pub async fn rebuild_all(&self) -> RebuildReport {
        let all: Vec<Arc<Tracked>> = self.inner.projections.to_vec();
        self.wait_until_idle(&all).await;
        self.run_all(all.into_iter().map(|t| (t, Start::Fresh)).collect(), None)
            .await
    }

    /// Waits until none of `projections` is being rebuilt.
    async fn wait_until_idle(&self, projections: &[Arc<Tracked>]) {
        loop {
            // Register for the wake-up before looking, so an end between the two is not missed.
            let ended = self.inner.rebuild_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if !projections.iter().any(|t| t.is_rebuilding()) {
                return;
            }
            ended.await;
        }
    }

    /// Rebuilds the projections that have no checkpoint yet.
    pub async fn rebuild_missing(&self) -> RebuildReport {
        let missing = self
            .inner
            .projections
            .iter()
            .filter(|t| !t.has_checkpoint() && !t.is_interrupted())
            .cloned();
        self.run_all(missing.map(|t| (t, Start::Fresh)).collect(), None)
            .await
    }

    /// Resumes the rebuilds a crash interrupted, each from its last flush point. The daemon
    /// does this when it starts.
    pub async fn resume_interrupted(&self) -> RebuildReport {
        let interrupted = self
            .inner
            .projections
            .iter()
            .filter(|t| t.is_interrupted())
            .cloned();
        self.run_all(interrupted.map(|t| (t, Start::Resume)).collect(), None)
            .await
    }

    /// What is running, with its progress, and what is waiting for a slot.
    #[must_use]
    pub fn status(&self) -> RebuildStatus {
        self.inner.lock_board().status()
    }

    async fn run_all(
        &self,
        requests: Vec<(Arc<Tracked>, Start)>,
        stop: Option<watch::Receiver<bool>>,
    ) -> RebuildReport {
        let (reservations, busy) = reserve(&self.inner, requests);
        let mut report = run_reserved(Arc::clone(&self.inner), reservations, stop).await;
        report.failed.extend(busy);
        report.failed.sort_by(|a, b| a.name.cmp(&b.name));
        report
    }
}

/// How a rebuild starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// From the first event, discarding any interrupted rebuild.
    Fresh,
    /// From the journal of an interrupted rebuild.
    Resume,
}

/// A projection marked as being rebuilt; dropping it (when the rebuild ends, fails or is
/// dropped) clears the mark and its status entry.
pub(crate) struct Reservation {
    inner: Arc<Inner>,
    tracked: Arc<Tracked>,
    start: Start,
}

impl Reservation {
    fn take(inner: &Arc<Inner>, tracked: Arc<Tracked>, start: Start) -> Option<Reservation> {
        if !tracked.begin_rebuild() {
            return None;
        }
        inner
            .lock_board()
            .entries
            .insert(tracked.name().to_owned(), Entry::Queued);
        Some(Reservation {
            inner: Arc::clone(inner),
            tracked,
            start,
        })
    }

    fn name(&self) -> &str {
        self.tracked.name()
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.inner.lock_board().entries.remove(self.tracked.name());
        self.tracked.end_rebuild();
        // The daemon skipped this projection meanwhile; let it look again.
        self.inner.wake.notify_one();
        self.inner.rebuild_ended.notify_waiters();
    }
}

/// Marks the requested projections as rebuilding; those already rebuilding are returned as
/// failures.
pub(crate) fn reserve(
    inner: &Arc<Inner>,
    requests: Vec<(Arc<Tracked>, Start)>,
) -> (Vec<Reservation>, Vec<ProjectionFailure>) {
    let mut reservations = Vec::new();
    let mut busy = Vec::new();
    for (tracked, start) in requests {
        let name = tracked.name().to_owned();
        match Reservation::take(inner, tracked, start) {
            Some(r) => reservations.push(r),
            None => busy.push(ProjectionFailure {
                reason: Error::RebuildInProgress { name: name.clone() }.to_string(),
                name,
                position: None,
            }),
        }
    }
    (reservations, busy)
}

/// Runs reserved rebuilds in parallel (up to the limit) and collects their outcomes.
pub(crate) async fn run_reserved(
    inner: Arc<Inner>,
    reservations: Vec<Reservation>,
    stop: Option<watch::Receiver<bool>>,
) -> RebuildReport {
    let mut tasks = JoinSet::new();
    for reservation in reservations {
        let name = reservation.name().to_owned();
        let (inner, stop) = (Arc::clone(&inner), stop.clone());
        tasks.spawn(async move { (name, run(inner, reservation, stop).await) });
    }
    let mut report = RebuildReport::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(rebuilt))) => report.rebuilt.push(rebuilt),
            Ok((name, Err(error))) => report.failed.push(ProjectionFailure {
                name,
                position: match &error {
                    Error::Apply { position, .. } | Error::Panicked { position, .. } => {
                        Some(*position)
                    }
                    _ => None,
                },
                reason: error.to_string(),
            }),
            Err(e) => report.failed.push(ProjectionFailure {
                name: "(unknown)".to_owned(),
                position: None,
                reason: format!("a rebuild task ended unexpectedly: {e}"),
            }),
        }
    }
    report.rebuilt.sort_by(|a, b| a.name.cmp(&b.name));
    report.failed.sort_by(|a, b| a.name.cmp(&b.name));
    report
}

/// One rebuild, from waiting for a slot to the commit.
async fn run(
    inner: Arc<Inner>,
    reservation: Reservation,
    stop: Option<watch::Receiver<bool>>,
) -> Result<RebuiltProjection, Error> {
    if inner.is_following() {
        return Err(inner.not_maintainer(format!("rebuild projection {:?}", reservation.name())));
    }
    let _permit = Arc::clone(&inner.rebuild_slots)
        .acquire_owned()
        .await
        .map_err(|e| Error::Task {
            what: "rebuild",
            reason: e.to_string(),
        })?;
    let tracked = Arc::clone(&reservation.tracked);
    let durability = inner.durability;
    let (generation, mut journal, resumed_from) = begin(&tracked, reservation.start, durability)?;
    let span = tracing::info_span!(
        "rebuild",
        projection = tracked.name(),
        generation = generation.number()
    );
    let result = build(
        &inner,
        &tracked,
        &generation,
        &mut journal,
        resumed_from,
        stop,
    )
    .instrument(span.clone())
    .await;
    match result {
        Ok(rebuilt) => {
            commit(&inner, &tracked, generation, durability)
                .instrument(span)
                .await?;
            Ok(rebuilt)
        }
        Err(error) => {
            span.in_scope(|| abandon(&tracked, generation, journal, &error))?;
            Err(error)
        }
    }
}

/// After a failed rebuild: a projection that cannot be rebuilt as it is loses the new
/// generation (resuming would fail again); anything else (the disk, the store) keeps it for the
/// next start to resume.
fn abandon(
    tracked: &Tracked,
    generation: Arc<Generation>,
    journal: Journal,
    error: &Error,
) -> Result<(), Error> {
    if error.is_projection_failure() {
        tracing::warn!(error = %error, "rebuild failed; the live generation stays");
        let number = generation.number();
        drop(generation);
        generation::remove_journal(&tracked.dir)?;
        generation::remove_generation(&tracked.dir, number)
    } else {
        tracing::warn!(error = %error, "rebuild stopped; the next start resumes it from its last flush point");
        tracked.set_interrupted(journal);
        Ok(())
    }
}

/// Opens the generation to build, with its journal.
fn begin(
    tracked: &Tracked,
    start: Start,
    durability: Durability,
) -> Result<(Arc<Generation>, Journal, Option<u64>), Error> {
    let interrupted = tracked.take_interrupted();
    if start == Start::Resume {
        if let Some(mut journal) = interrupted {
            let generation = Generation::open(&tracked.dir, journal.generation, durability)?;
            let from = generation.checkpoint().unwrap_or(0);
            journal.resumed += 1;
            journal.flushed_position = from;
            generation::write_journal(&tracked.dir, &journal, durability)?;
            tracing::info!(
                projection = tracked.name(),
                from,
                "resuming an interrupted rebuild"
            );
            return Ok((generation, journal, Some(from)));
        }
    } else if let Some(journal) = interrupted {
        generation::remove_generation(&tracked.dir, journal.generation)?;
    }
    let number = tracked.allocate_generation();
    let journal = Journal {
        generation: number,
        started_at: Timestamp::now(),
        flushed_position: 0,
        events_applied: 0,
        resumed: 0,
    };
    // The journal first: a crash right after it leaves a generation the next start resumes.
    generation::write_journal(&tracked.dir, &journal, durability)?;
    let generation = Generation::open(&tracked.dir, number, durability)?;
    Ok((generation, journal, None))
}

/// Reads and applies every event into `generation`, flushing as configured. The next batch is
/// read while the current one is applied, so reading and applying run on two threads.
async fn build(
    inner: &Arc<Inner>,
    tracked: &Arc<Tracked>,
    generation: &Arc<Generation>,
    journal: &mut Journal,
    resumed_from: Option<u64>,
    stop: Option<watch::Receiver<bool>>,
) -> Result<RebuiltProjection, Error> {
    let started = Instant::now();
    let durability = inner.durability;
    let flush_every = inner.options.get_rebuild_flush_interval();
    let mut session = Arc::clone(&tracked.runner).session(Arc::clone(generation));
    let (mut applied, mut since_flush) = (0_u64, 0_u64);
    let mut from = resumed_from.unwrap_or(0);
    let mut last_log = Instant::now();
    inner.lock_board().run(tracked.name(), resumed_from);
    let mut next = Some(fetch(inner, tracked, from).await?);
    while let Some((batch, head)) = next.take() {
        if stop.as_ref().is_some_and(|s| *s.borrow()) {
            return Err(Error::RebuildStopped {
                name: tracked.name().to_owned(),
            });
        }
        let count = batch.events.len() as u64;
        since_flush += count;
        let flush = since_flush >= flush_every || batch.reached_end;
        let (reached_end, checkpoint) = (batch.reached_end, batch.checkpoint);
        let mut flushed = journal.clone();
        if flush {
            flushed.flushed_position = checkpoint;
            flushed.events_applied = journal.events_applied + count;
        }
        let (dir, generation) = (tracked.dir.clone(), Arc::clone(generation));
        let applying = tokio::task::spawn_blocking(move || {
            session.apply(&batch.events).map_err(|f| f.error)?;
            if flush {
                let journal = Some((dir.as_path(), &flushed));
                runner::commit(
                    session.as_mut(),
                    &generation,
                    checkpoint,
                    journal,
                    durability,
                )?;
                if session.cached() as u64 > flush_every {
                    session.evict();
                }
            }
            Ok::<_, Error>((session, flushed))
        });
        let (applied_batch, fetched) = if reached_end {
            (applying.await, None)
        } else {
            let (applied_batch, fetched) =
                tokio::join!(applying, fetch(inner, tracked, checkpoint));
            (applied_batch, Some(fetched))
        };
        let (returned, flushed) = applied_batch.map_err(|e| Error::Task {
            what: "rebuild",
            reason: e.to_string(),
        })??;
        session = returned;
        if flush {
            *journal = flushed;
            since_flush = 0;
        } else {
            journal.events_applied += count;
        }
        applied += count;
        from = checkpoint;
        inner
            .lock_board()
            .progress(tracked.name(), applied, from, head);
        if last_log.elapsed() >= PROGRESS_EVERY {
            last_log = Instant::now();
            tracing::info!(
                events = applied,
                position = from,
                head,
                events_per_s = report::rate(applied, started.elapsed()) as u64,
                "rebuild progress"
            );
        }
        next = fetched.transpose()?;
    }
    let duration = started.elapsed();
    tracing::info!(
        events = applied,
        checkpoint = from,
        millis = duration.as_millis() as u64,
        events_per_s = report::rate(applied, duration) as u64,
        "rebuilt projection"
    );
    Ok(RebuiltProjection {
        name: tracked.name().to_owned(),
        events_applied: applied,
        checkpoint: report::position(from),
        resumed_from: resumed_from.and_then(report::position),
        duration,
    })
}

/// Reads the batch after `from`, with the head it was read against.
async fn fetch(inner: &Inner, tracked: &Tracked, from: u64) -> Result<(read::Batch, u64), Error> {
    let head = read::head(inner.store.as_ref()).await?;
    let batch = read::batch(
        inner.store.as_ref(),
        tracked.runner.as_ref(),
        from,
        inner.options.get_rebuild_batch_size(),
        head,
    )
    .await?;
    Ok((batch, head))
}

/// Makes `generation` live: replaces `current.json`, then forgets the journal.
async fn commit(
    inner: &Arc<Inner>,
    tracked: &Arc<Tracked>,
    generation: Arc<Generation>,
    durability: Durability,
) -> Result<(), Error> {
    let _writer = tracked.writer.lock().await;
    // The states and checkpoint were made durable at the last flush point; this rename is the
    // commit. A crash before it resumes (and finds nothing left to do); after it, the next
    // start finds the journal naming the live generation and removes it.
    generation::write_current(&tracked.dir, generation.number(), durability)?;
    let live = Arc::clone(&generation);
    let replaced = tracked.replace_current(generation);
    generation::remove_journal(&tracked.dir)?;
    tracked.clear_failure();
    // A rebuild rewrites an instance at every flush point it was touched in: compact the result
    // when that left more dead records than live ones. Deleting the replaced generation's file
    // is not for an async worker either.
    let min_garbage = inner.options.get_compaction_min_garbage();
    let compacting = Arc::clone(tracked);
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(replaced) = replaced {
            if let Ok(replaced) = Arc::try_unwrap(replaced) {
                replaced.delete_now();
            }
        }
        if live.wants_compaction(min_garbage) {
            if let Err(e) = update::compact(&compacting, live, durability) {
                tracing::warn!(error = %e, "could not compact the rebuilt projection; the daemon tries again after its next batch");
            }
        }
    })
    .await;
    drop(_writer);
    inner.bump();
    inner.wake.notify_one();
    Ok(())
}

/// What the rebuilder is doing, by projection.
#[derive(Debug, Default)]
pub(crate) struct Board {
    pub(crate) entries: BTreeMap<String, Entry>,
}

/// One projection on the board.
#[derive(Debug)]
pub(crate) enum Entry {
    Queued,
    Running {
        started: Instant,
        applied: u64,
        position: u64,
        head: u64,
        resumed_from: Option<u64>,
    },
}

impl Board {
    fn run(&mut self, name: &str, resumed_from: Option<u64>) {
        self.entries.insert(
            name.to_owned(),
            Entry::Running {
                started: Instant::now(),
                applied: 0,
                position: resumed_from.unwrap_or(0),
                head: 0,
                resumed_from,
            },
        );
    }

    fn progress(&mut self, name: &str, events: u64, at: u64, store_head: u64) {
        if let Some(Entry::Running {
            applied,
            position,
            head,
            ..
        }) = self.entries.get_mut(name)
        {
            (*applied, *position, *head) = (events, at, store_head);
        }
    }

    fn status(&self) -> RebuildStatus {
        let mut status = RebuildStatus::default();
        for (name, entry) in &self.entries {
            match entry {
                Entry::Queued => status.queued.push(name.clone()),
                Entry::Running {
                    started,
                    applied,
                    position,
                    head,
                    resumed_from,
                } => status.running.push(RebuildProgress {
                    name: name.clone(),
                    events_applied: *applied,
                    position: report::position(*position),
                    head: report::position(*head),
                    elapsed: started.elapsed(),
                    events_per_second: report::rate(*applied, started.elapsed()),
                    resumed_from: resumed_from.and_then(report::position),
                }),
            }
        }
        status
    }
}

/// Used by the daemon: the projections to rebuild at start, by mode, plus every interrupted
/// rebuild.
pub(crate) fn at_start(inner: &Arc<Inner>) -> Vec<(Arc<Tracked>, Start)> {
    use crate::AutoRebuild;
    let mode = inner.options.get_auto_rebuild();
    inner
        .projections
        .iter()
        .filter_map(|t| {
            if t.is_interrupted() {
                return Some((Arc::clone(t), Start::Resume));
            }
            let rebuild = match mode {
                AutoRebuild::Disabled => false,
                AutoRebuild::MissingCheckpointsOnly => !t.has_checkpoint(),
                AutoRebuild::ForceFull => true,
            };
            rebuild.then(|| (Arc::clone(t), Start::Fresh))
        })
        .collect()
}
