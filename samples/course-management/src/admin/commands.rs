//! Admin commands and queries over the projection manager and the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use opossum::{
    AppContext, AppStore, Handler, Message, ProjectionFailure, ProjectionManager, ProjectionStats,
    RebuildReport, Role,
};
use serde::Serialize;

use crate::error::{AppError, AppResult};

/// Rebuild one projection by name, or all of them.
#[derive(Clone, Debug, Default)]
pub struct RebuildProjections {
    /// The projection; `None` for every one.
    pub name: Option<String>,
}

impl Message for RebuildProjections {
    type Output = AppResult<RebuildSummary>;
}

/// What a rebuild did.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebuildSummary {
    /// Rebuilt and live.
    pub rebuilt: Vec<RebuiltView>,
    /// Could not be rebuilt; their previous state stays live.
    pub failed: Vec<FailureView>,
}

/// One rebuilt projection.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RebuiltView {
    /// Its name.
    pub name: String,
    /// Events applied.
    pub events_applied: u64,
    /// Its checkpoint now.
    pub checkpoint: Option<u64>,
    /// How long it took.
    pub duration_ms: u64,
}

/// A projection that failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailureView {
    /// Its name.
    pub name: String,
    /// The event it stopped at, if one is to blame.
    pub position: Option<u64>,
    /// Why.
    pub reason: String,
}

impl From<&ProjectionFailure> for FailureView {
    fn from(f: &ProjectionFailure) -> Self {
        FailureView {
            name: f.name.clone(),
            position: f.position.map(|p| p.get()),
            reason: f.reason.clone(),
        }
    }
}

impl From<RebuildReport> for RebuildSummary {
    fn from(report: RebuildReport) -> Self {
        RebuildSummary {
            rebuilt: report
                .rebuilt
                .iter()
                .map(|r| RebuiltView {
                    name: r.name.clone(),
                    events_applied: r.events_applied,
                    checkpoint: r.checkpoint.map(|p| p.get()),
                    duration_ms: u64::try_from(r.duration.as_millis()).unwrap_or(u64::MAX),
                })
                .collect(),
            failed: report.failed.iter().map(FailureView::from).collect(),
        }
    }
}

/// Every projection's status and what the rebuilder is doing.
#[derive(Clone, Copy, Debug, Default)]
pub struct StatusView;

impl Message for StatusView {
    type Output = AppResult<ProjectionStatusView>;
}

/// The projections' status.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionStatusView {
    /// `maintainer` when this process keeps the projections current, `follower` when another
    /// process sharing the store does (this one reads them, and takes over when it stops).
    #[schema(value_type = String, example = "maintainer")]
    pub role: &'static str,
    /// One entry per projection, in registration order.
    pub projections: Vec<OneStatus>,
    /// Rebuilds running now.
    pub rebuilds_running: Vec<RunningRebuild>,
    /// Rebuilds waiting for a slot.
    pub rebuilds_queued: Vec<String>,
}

/// One projection's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OneStatus {
    /// Its name.
    pub name: String,
    /// Every event up to here is applied.
    pub checkpoint: Option<u64>,
    /// False until it was built or updated once.
    pub has_checkpoint: bool,
    /// True while it is being rebuilt.
    pub rebuilding: bool,
    /// Why it is stopped, if it is.
    pub failure: Option<FailureView>,
}

/// A rebuild in progress.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningRebuild {
    /// The projection.
    pub name: String,
    /// Events applied so far.
    pub events_applied: u64,
    /// Read up to this position.
    pub position: Option<u64>,
    /// The store's head it is heading for.
    pub head: Option<u64>,
    /// Events per second so far.
    pub events_per_second: f64,
}

/// Every projection's checkpoint, by name.
#[derive(Clone, Copy, Debug, Default)]
pub struct Checkpoints;

impl Message for Checkpoints {
    type Output = AppResult<BTreeMap<String, Option<u64>>>;
}

/// The store's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct StoreFigures;

impl Message for StoreFigures {
    type Output = AppResult<StoreView>;
}

/// The store's figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreView {
    /// The store folder, or `postgres` for a store in PostgreSQL.
    pub path: String,
    /// Events stored.
    pub event_count: u64,
    /// The last position.
    pub head: Option<u64>,
    /// Bytes on disk of the whole store folder: the events, their index and the projections
    /// (the sample keeps them in the store folder's `projections/`). For a store in
    /// PostgreSQL: the local read models only.
    pub size_on_disk: u64,
    /// Bytes on disk of every projection together (part of `size_on_disk`).
    pub projections_size_on_disk: u64,
    /// Files of every projection together: a few per projection, whatever their instances.
    pub projection_files: usize,
    /// Instances of every projection together.
    pub projection_instances: usize,
    /// Each projection's figures, in registration order.
    pub projections: Vec<ProjectionFigures>,
}

/// One projection's figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionFigures {
    /// Its name.
    pub name: String,
    /// Instances in its live state.
    pub instances: usize,
    /// Bytes of every file in its folder, a rebuild's or a compaction's included while one
    /// runs.
    pub size_on_disk: u64,
    /// Bytes of its live records: what a compaction would keep of `size_on_disk`.
    pub live_bytes: u64,
    /// Files in its folder.
    pub files: usize,
}

impl From<ProjectionStats> for ProjectionFigures {
    fn from(stats: ProjectionStats) -> ProjectionFigures {
        ProjectionFigures {
            name: stats.name,
            instances: stats.instances,
            size_on_disk: stats.size_on_disk,
            live_bytes: stats.live_bytes,
            files: stats.files,
        }
    }
}

/// Handles the admin messages.
#[derive(Clone)]
pub struct AdminHandlers {
    projections: ProjectionManager,
    store: Arc<AppStore>,
}

impl AdminHandlers {
    /// The projections and store of the app being built.
    ///
    /// # Errors
    /// Never; the signature fits `OpossumBuilder::handler_with`.
    pub fn from_context(app: &AppContext) -> Result<AdminHandlers, opossum::Error> {
        Ok(AdminHandlers {
            projections: app.projections().clone(),
            store: app.store(),
        })
    }
}

impl Handler<RebuildProjections> for AdminHandlers {
    async fn handle(&self, command: RebuildProjections) -> AppResult<RebuildSummary> {
        let rebuilder = self.projections.rebuilder();
        match command.name {
            None => Ok(rebuilder.rebuild_all().await.into()),
            Some(name) => {
                let rebuilt = rebuilder.rebuild(&name).await?;
                Ok(RebuildReport {
                    rebuilt: vec![rebuilt],
                    failed: Vec::new(),
                }
                .into())
            }
        }
    }
}

impl Handler<StatusView> for AdminHandlers {
    async fn handle(&self, _: StatusView) -> AppResult<ProjectionStatusView> {
        let rebuilds = self.projections.rebuilder().status();
        Ok(ProjectionStatusView {
            role: match self.projections.role() {
                Role::Follower => "follower",
                _ => "maintainer",
            },
            projections: self
                .projections
                .status()
                .into_iter()
                .map(|s| OneStatus {
                    failure: s.failure.as_ref().map(FailureView::from),
                    name: s.name,
                    checkpoint: s.checkpoint.map(|p| p.get()),
                    has_checkpoint: s.has_checkpoint,
                    rebuilding: s.rebuilding,
                })
                .collect(),
            rebuilds_running: rebuilds
                .running
                .into_iter()
                .map(|r| RunningRebuild {
                    name: r.name,
                    events_applied: r.events_applied,
                    position: r.position.map(|p| p.get()),
                    head: r.head.map(|p| p.get()),
                    events_per_second: r.events_per_second,
                })
                .collect(),
            rebuilds_queued: rebuilds.queued,
        })
    }
}

impl Handler<Checkpoints> for AdminHandlers {
    async fn handle(&self, _: Checkpoints) -> AppResult<BTreeMap<String, Option<u64>>> {
        let mut checkpoints = BTreeMap::new();
        for name in self.projections.projections() {
            let checkpoint = self.projections.checkpoint(&name)?;
            checkpoints.insert(name, checkpoint.map(|p| p.get()));
        }
        Ok(checkpoints)
    }
}

impl Handler<StoreFigures> for AdminHandlers {
    async fn handle(&self, _: StoreFigures) -> AppResult<StoreView> {
        let store = Arc::clone(&self.store);
        let projections = self.projections.clone();
        let head = opossum::EventStore::head(&*store)
            .await
            .map_err(opossum::Error::from)?;
        // Both walk folders on disk: a blocking thread's work, not an async worker's.
        tokio::task::spawn_blocking(move || store_view(&store, &projections, head))
            .await
            .map_err(|e| AppError::Unavailable(format!("the statistics task failed: {e}")))?
    }
}

/// The figures of the store and of its projections, read from disk.
fn store_view(
    store: &AppStore,
    projections: &ProjectionManager,
    head: Option<opossum::Position>,
) -> AppResult<StoreView> {
    let projections: Vec<ProjectionFigures> = projections
        .stats()?
        .into_iter()
        .map(ProjectionFigures::from)
        .collect();
    let projections_size: u64 = projections.iter().map(|p| p.size_on_disk).sum();
    let (path, event_count, head, size_on_disk) = match store.file_store() {
        Some(file) => {
            let stats = file.stats().map_err(opossum::Error::from)?;
            (
                file.path().display().to_string(),
                stats.event_count,
                stats.head.map(|p| p.get()),
                stats.size_on_disk,
            )
        }
        None => {
            let head = head.map(|p| p.get());
            (
                "postgres".to_owned(),
                head.unwrap_or(0),
                head,
                projections_size,
            )
        }
    };
    Ok(StoreView {
        path,
        event_count,
        head,
        size_on_disk,
        projections_size_on_disk: projections_size,
        projection_files: projections.iter().map(|p| p.files).sum(),
        projection_instances: projections.iter().map(|p| p.instances).sum(),
        projections,
    })
}
