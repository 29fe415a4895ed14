//! Projection options, with the original's defaults and ranges, and their validation.

use std::ops::RangeInclusive;
use std::time::Duration;

use opossum_core::Durability;
use serde::{Deserialize, Serialize};

use crate::Error;

const POLLING_INTERVAL: RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(3600);
const BATCH_SIZE: RangeInclusive<usize> = 1..=100_000;
const REBUILD_BATCH_SIZE: RangeInclusive<usize> = 100..=1_000_000;
const REBUILD_FLUSH_INTERVAL: RangeInclusive<u64> = 100..=1_000_000;
const MAX_CONCURRENT_REBUILDS: RangeInclusive<usize> = 1..=64;

/// What the daemon rebuilds when it starts.
///
/// Whatever the mode, a rebuild that a crash interrupted is resumed from its journal. In
/// configuration files it is written `"disabled"`, `"missing_checkpoints_only"` or
/// `"force_full"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AutoRebuild {
    /// Rebuild nothing. A projection without a checkpoint is brought up to date by the daemon
    /// from the first event, in ordinary batches.
    Disabled,
    /// Rebuild only the projections that have no checkpoint yet (new projections, or ones
    /// whose folder was deleted). The default.
    #[default]
    MissingCheckpointsOnly,
    /// Rebuild every projection at every start: for development, or after changing what a
    /// projection computes.
    ForceFull,
}

/// How projections are kept current. Their folder is given where the manager is built:
/// [`ProjectionManager::builder`](crate::ProjectionManager::builder).
///
/// Setters take and return the options; each has a getter named `get_…`. Defaults and ranges
/// are those of the original Opossum:
///
/// | option | default | range |
/// |---|---|---|
/// | [`polling_interval`](Self::polling_interval) | 5 s | 100 ms – 1 h |
/// | [`batch_size`](Self::batch_size) | 1,000 events | 1 – 100,000 |
/// | [`rebuild_batch_size`](Self::rebuild_batch_size) | 5,000 events | 100 – 1,000,000 |
/// | [`rebuild_flush_interval`](Self::rebuild_flush_interval) | 10,000 events | 100 – 1,000,000 |
/// | [`max_concurrent_rebuilds`](Self::max_concurrent_rebuilds) | 4 | 1 – 64 |
/// | [`auto_rebuild`](Self::auto_rebuild) | [`AutoRebuild::MissingCheckpointsOnly`] | |
/// | [`durability`](Self::durability) | [`Durability::Immediate`] | |
/// | [`compaction_min_garbage`](Self::compaction_min_garbage) | 4 MiB | any |
///
/// Options are checked when the [`ProjectionManager`](crate::ProjectionManager) opens, and
/// every problem is reported at once in [`Error::InvalidOptions`].
///
/// ```
/// use std::time::Duration;
/// use opossum_projections::{AutoRebuild, ProjectionOptions};
///
/// let options = ProjectionOptions::new()
///     .polling_interval(Duration::from_secs(1))
///     .auto_rebuild(AutoRebuild::ForceFull);
/// assert!(options.validate().is_ok());
/// assert_eq!(options.get_polling_interval(), Duration::from_secs(1));
/// assert!(ProjectionOptions::new().batch_size(0).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectionOptions {
    polling_interval: Duration,
    batch_size: usize,
    rebuild_batch_size: usize,
    rebuild_flush_interval: u64,
    max_concurrent_rebuilds: usize,
    auto_rebuild: AutoRebuild,
    durability: Durability,
    compaction_min_garbage: u64,
}

impl Default for ProjectionOptions {
    fn default() -> ProjectionOptions {
        ProjectionOptions::new()
    }
}

impl ProjectionOptions {
    /// The defaults (see the table above).
    #[must_use]
    pub fn new() -> ProjectionOptions {
        ProjectionOptions {
            polling_interval: Duration::from_secs(5),
            batch_size: 1_000,
            rebuild_batch_size: 5_000,
            rebuild_flush_interval: 10_000,
            max_concurrent_rebuilds: 4,
            auto_rebuild: AutoRebuild::MissingCheckpointsOnly,
            durability: Durability::Immediate,
            compaction_min_garbage: 4 << 20,
        }
    }

    /// How often the daemon wakes up without being told of new events. It is woken at once by
    /// the store when an event is committed past the head it caught up to
    /// ([`EventStore::wait_for_append`](opossum_core::EventStore::wait_for_append), which
    /// also covers other processes sharing a file store) and by
    /// [`ProjectionDaemon::notify_appended`](crate::ProjectionDaemon::notify_appended); this
    /// interval is the fallback for a store that cannot tell, and the pace at which a
    /// follower's daemon tries to take over the folder. Default 5 s; between 100 ms and
    /// 1 hour. Each look is one `read_last` of the store.
    #[must_use]
    pub fn polling_interval(mut self, interval: Duration) -> ProjectionOptions {
        self.polling_interval = interval;
        self
    }

    /// At most this many events are read and applied per projection in one step of the daemon,
    /// and committed together with one checkpoint. Default 1,000; between 1 and 100,000.
    #[must_use]
    pub fn batch_size(mut self, events: usize) -> ProjectionOptions {
        self.batch_size = events;
        self
    }

    /// Events read per step during a rebuild. Lower means less memory for events in flight.
    /// Default 5,000; between 100 and 1,000,000.
    #[must_use]
    pub fn rebuild_batch_size(mut self, events: usize) -> ProjectionOptions {
        self.rebuild_batch_size = events;
        self
    }

    /// Events applied between two flush points of a rebuild. At a flush point the states built
    /// so far are written, made durable and recorded in the rebuild's journal, and at most this
    /// many states stay in memory; after a crash the rebuild resumes from the last flush point.
    /// Default 10,000; between 100 and 1,000,000.
    #[must_use]
    pub fn rebuild_flush_interval(mut self, events: u64) -> ProjectionOptions {
        self.rebuild_flush_interval = events;
        self
    }

    /// How many projections are rebuilt at the same time. Default 4; between 1 and 64.
    #[must_use]
    pub fn max_concurrent_rebuilds(mut self, rebuilds: usize) -> ProjectionOptions {
        self.max_concurrent_rebuilds = rebuilds;
        self
    }

    /// What the daemon rebuilds when it starts. Default
    /// [`AutoRebuild::MissingCheckpointsOnly`].
    #[must_use]
    pub fn auto_rebuild(mut self, mode: AutoRebuild) -> ProjectionOptions {
        self.auto_rebuild = mode;
        self
    }

    /// When projection writes count as done. Default [`Durability::Immediate`]: every commit
    /// (a batch of changed instances with its checkpoint, or a rebuild's flush point) is
    /// synced to stable storage with one `fdatasync`. With [`Durability::Eventual`], commits
    /// are still atomic and a process crash loses nothing, but after a power loss a projection
    /// may go back to an earlier checkpoint and apply the events after it again.
    #[must_use]
    pub fn durability(mut self, durability: Durability) -> ProjectionOptions {
        self.durability = durability;
        self
    }

    /// A projection's file is compacted — its live instances copied into a fresh generation
    /// that replaces it — once the records of replaced and deleted instances take more room
    /// than the live ones and at least this many bytes. Default 4 MiB. Lower values keep the
    /// file smaller at the cost of more copying; `0` compacts whenever dead records outweigh
    /// live ones.
    #[must_use]
    pub fn compaction_min_garbage(mut self, bytes: u64) -> ProjectionOptions {
        self.compaction_min_garbage = bytes;
        self
    }

    /// See [`ProjectionOptions::compaction_min_garbage`].
    #[must_use]
    pub fn get_compaction_min_garbage(&self) -> u64 {
        self.compaction_min_garbage
    }

    /// See [`ProjectionOptions::polling_interval`].
    #[must_use]
    pub fn get_polling_interval(&self) -> Duration {
        self.polling_interval
    }

    /// See [`ProjectionOptions::batch_size`].
    #[must_use]
    pub fn get_batch_size(&self) -> usize {
        self.batch_size
    }

    /// See [`ProjectionOptions::rebuild_batch_size`].
    #[must_use]
    pub fn get_rebuild_batch_size(&self) -> usize {
        self.rebuild_batch_size
    }

    /// See [`ProjectionOptions::rebuild_flush_interval`].
    #[must_use]
    pub fn get_rebuild_flush_interval(&self) -> u64 {
        self.rebuild_flush_interval
    }

    /// See [`ProjectionOptions::max_concurrent_rebuilds`].
    #[must_use]
    pub fn get_max_concurrent_rebuilds(&self) -> usize {
        self.max_concurrent_rebuilds
    }

    /// See [`ProjectionOptions::auto_rebuild`].
    #[must_use]
    pub fn get_auto_rebuild(&self) -> AutoRebuild {
        self.auto_rebuild
    }

    /// See [`ProjectionOptions::durability`].
    #[must_use]
    pub fn get_durability(&self) -> Durability {
        self.durability
    }

    /// Checks every option.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] listing every problem found.
    pub fn validate(&self) -> Result<(), Error> {
        let mut problems = Vec::new();
        if !POLLING_INTERVAL.contains(&self.polling_interval) {
            problems.push(format!(
                "polling_interval {:?} is out of range; use between 100 ms and 1 hour",
                self.polling_interval
            ));
        }
        check(&mut problems, "batch_size", &BATCH_SIZE, self.batch_size);
        check(
            &mut problems,
            "rebuild_batch_size",
            &REBUILD_BATCH_SIZE,
            self.rebuild_batch_size,
        );
        check(
            &mut problems,
            "rebuild_flush_interval",
            &REBUILD_FLUSH_INTERVAL,
            self.rebuild_flush_interval,
        );
        check(
            &mut problems,
            "max_concurrent_rebuilds",
            &MAX_CONCURRENT_REBUILDS,
            self.max_concurrent_rebuilds,
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidOptions { problems })
        }
    }
}

fn check<T>(problems: &mut Vec<String>, name: &str, range: &RangeInclusive<T>, value: T)
where
    T: PartialOrd + std::fmt::Display,
{
    if !range.contains(&value) {
        problems.push(format!(
            "{name} {value} is out of range; use between {} and {}",
            range.start(),
            range.end()
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(options: &ProjectionOptions) -> Vec<String> {
        match options.validate() {
            Ok(()) => Vec::new(),
            Err(Error::InvalidOptions { problems }) => problems,
            Err(other) => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn defaults_are_the_originals() {
        let o = ProjectionOptions::default();
        assert_eq!(o.get_polling_interval(), Duration::from_secs(5));
        assert_eq!(o.get_batch_size(), 1_000);
        assert_eq!(o.get_rebuild_batch_size(), 5_000);
        assert_eq!(o.get_rebuild_flush_interval(), 10_000);
        assert_eq!(o.get_max_concurrent_rebuilds(), 4);
        assert_eq!(o.get_auto_rebuild(), AutoRebuild::MissingCheckpointsOnly);
        assert_eq!(o.get_durability(), Durability::Immediate);
        assert!(problems(&o).is_empty());
    }

    #[test]
    fn every_problem_is_listed() {
        let o = ProjectionOptions::new()
            .polling_interval(Duration::from_millis(99))
            .batch_size(0)
            .rebuild_batch_size(99)
            .rebuild_flush_interval(1_000_001)
            .max_concurrent_rebuilds(65);
        let found = problems(&o);
        assert_eq!(found.len(), 5, "{found:?}");
        assert!(found[0].contains("polling_interval"), "{found:?}");
        assert!(found[1].contains("batch_size 0"), "{found:?}");
    }

    #[test]
    fn range_ends_are_accepted() {
        let low = ProjectionOptions::new()
            .polling_interval(Duration::from_millis(100))
            .batch_size(1)
            .rebuild_batch_size(100)
            .rebuild_flush_interval(100)
            .max_concurrent_rebuilds(1);
        assert!(problems(&low).is_empty());
        let high = ProjectionOptions::new()
            .polling_interval(Duration::from_secs(3600))
            .batch_size(100_000)
            .rebuild_batch_size(1_000_000)
            .rebuild_flush_interval(1_000_000)
            .max_concurrent_rebuilds(64);
        assert!(problems(&high).is_empty());
    }
}
