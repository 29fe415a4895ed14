//! What the manager, the daemon and the rebuilder report: outcomes, failures and status.

use std::time::Duration;

use opossum_core::Position;

/// A projection that stopped at an event, or could not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionFailure {
    /// The projection's name.
    pub name: String,
    /// The event it stopped at, when one event is to blame.
    pub position: Option<Position>,
    /// What went wrong.
    pub reason: String,
}

/// The outcome of [`ProjectionManager::catch_up`](crate::ProjectionManager::catch_up).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatchUpReport {
    /// Events applied, over every projection.
    pub events_applied: u64,
    /// Projections that stopped at an event or could not read or write; the others are
    /// current.
    pub failures: Vec<ProjectionFailure>,
}

impl CatchUpReport {
    /// True when no projection failed.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One projection's size, from [`ProjectionManager::stats`](crate::ProjectionManager::stats).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionStats {
    /// The projection's name.
    pub name: String,
    /// How many instances its live generation holds.
    pub instances: usize,
    /// Bytes of every file in its folder: the live generation, and a rebuild's or a
    /// compaction's while one runs.
    pub size_on_disk: u64,
    /// Bytes of the live generation's newest records: what a compaction would keep.
    pub live_bytes: u64,
    /// How many files its folder holds (a small constant, whatever the number of instances).
    pub files: usize,
}

/// One projection's state, from [`ProjectionManager::status`](crate::ProjectionManager::status).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// The projection's name.
    pub name: String,
    /// Every event up to this position is applied (`None`: nothing yet, or no checkpoint).
    pub checkpoint: Option<Position>,
    /// True when the projection has a checkpoint (it was built or updated at least once).
    pub has_checkpoint: bool,
    /// True while a rebuild of it is running or queued.
    pub rebuilding: bool,
    /// Why it is stopped, if it is.
    pub failure: Option<ProjectionFailure>,
}

/// One projection rebuilt.
#[derive(Clone, Debug, PartialEq)]
pub struct RebuiltProjection {
    /// The projection's name.
    pub name: String,
    /// Events applied by this run (a resumed rebuild does not count what it resumed from).
    pub events_applied: u64,
    /// The checkpoint of the new generation.
    pub checkpoint: Option<Position>,
    /// When resumed after an interruption: the flush point it resumed from.
    pub resumed_from: Option<Position>,
    /// How long this run took.
    pub duration: Duration,
}

impl RebuiltProjection {
    /// Events applied per second by this run.
    #[must_use]
    pub fn events_per_second(&self) -> f64 {
        rate(self.events_applied, self.duration)
    }
}

/// The outcome of a rebuild request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RebuildReport {
    /// The projections rebuilt and now live.
    pub rebuilt: Vec<RebuiltProjection>,
    /// The projections that could not be rebuilt; their previous generation stays live.
    pub failed: Vec<ProjectionFailure>,
}

impl RebuildReport {
    /// True when every requested projection was rebuilt.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.failed.is_empty()
    }
}

/// A rebuild that is running.
#[derive(Clone, Debug, PartialEq)]
pub struct RebuildProgress {
    /// The projection's name.
    pub name: String,
    /// Events applied by this run so far.
    pub events_applied: u64,
    /// The position read up to.
    pub position: Option<Position>,
    /// The store's head when the last batch was read: where the rebuild is going.
    pub head: Option<Position>,
    /// How long this run has been going.
    pub elapsed: Duration,
    /// Events applied per second so far.
    pub events_per_second: f64,
    /// When resumed after an interruption: the flush point it resumed from.
    pub resumed_from: Option<Position>,
}

/// What the rebuilder is doing, from [`Rebuilder::status`](crate::Rebuilder::status).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RebuildStatus {
    /// Rebuilds running now, by name.
    pub running: Vec<RebuildProgress>,
    /// Rebuilds waiting for a slot (see
    /// [`max_concurrent_rebuilds`](crate::ProjectionOptions::max_concurrent_rebuilds)), by name.
    pub queued: Vec<String>,
}

impl RebuildStatus {
    /// True when nothing runs or waits.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.queued.is_empty()
    }
}

pub(crate) fn rate(events: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        events as f64 / seconds
    } else {
        0.0
    }
}

pub(crate) fn position(value: u64) -> Option<Position> {
    Position::new(value).ok()
}
