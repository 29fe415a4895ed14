//! `opossum projections DIR status` and `opossum projections DIR rebuild [NAME]`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opossum_core::{EventStore, Query};
use opossum_projections::{ProjectionManager, RebuildReport};
use serde::Serialize;

use crate::cli::{ProjectionsAction, ProjectionsArgs};
use crate::output::{Table, human_bytes};
use crate::{Error, Outcome, Output, Tool, open_read_only};

/// The projections folder inside a store folder, where the facade keeps read models.
const PROJECTIONS_FOLDER: &str = "projections";

pub(crate) fn run(tool: &Tool, args: &ProjectionsArgs, out: &mut Output) -> Result<Outcome, Error> {
    match &args.action {
        ProjectionsAction::Status => status(&args.dir, out),
        ProjectionsAction::Rebuild { name } => rebuild(tool, &args.dir, name.as_deref(), out),
    }
}

/// What `projections status` reports.
#[derive(Debug, Serialize)]
struct Status {
    store: String,
    head: Option<u64>,
    projections: Vec<Folder>,
}

#[derive(Debug, Serialize)]
struct Folder {
    name: String,
    generation: Option<u64>,
    checkpoint: Option<u64>,
    /// Events of the store not applied yet.
    behind: u64,
    instances: usize,
    live_bytes: u64,
    size_on_disk: u64,
    files: usize,
    rebuild: Option<Rebuild>,
}

#[derive(Debug, Serialize)]
struct Rebuild {
    generation: u64,
    started_at: String,
    flushed_position: Option<u64>,
    resumed: u32,
}

fn status(dir: &Path, out: &mut Output) -> Result<Outcome, Error> {
    let store = open_read_only(dir)?;
    let head = store
        .read_last_blocking(&Query::all())?
        .map(|e| e.position.get());
    let found = opossum_projections::inspect(&store.path().join(PROJECTIONS_FOLDER))?;
    let report = Status {
        store: store.path().display().to_string(),
        head,
        projections: found
            .into_iter()
            .map(|f| {
                let checkpoint = f.checkpoint.map(|p| p.get());
                Folder {
                    behind: head.unwrap_or(0).saturating_sub(checkpoint.unwrap_or(0)),
                    name: f.name,
                    generation: f.generation,
                    checkpoint,
                    instances: f.instances,
                    live_bytes: f.live_bytes,
                    size_on_disk: f.size_on_disk,
                    files: f.files,
                    rebuild: f.rebuild.map(|r| Rebuild {
                        generation: r.generation,
                        started_at: r.started_at.to_string(),
                        flushed_position: r.flushed_position.map(|p| p.get()),
                        resumed: r.resumed,
                    }),
                }
            })
            .collect(),
    };
    out.emit(&report, |w| {
        writeln!(
            w,
            "store {} (head {})",
            report.store,
            report.head.map_or("none".to_owned(), |h| h.to_string())
        )?;
        if report.projections.is_empty() {
            return writeln!(w, "no projections in {PROJECTIONS_FOLDER}/");
        }
        let mut table = Table::new(
            &[
                "projection",
                "checkpoint",
                "behind",
                "instances",
                "size",
                "rebuild",
            ],
            &["checkpoint", "behind", "instances", "size"],
        );
        for p in &report.projections {
            table.row(vec![
                p.name.clone(),
                p.checkpoint.map_or("-".to_owned(), |c| c.to_string()),
                p.behind.to_string(),
                p.instances.to_string(),
                human_bytes(p.size_on_disk),
                p.rebuild.as_ref().map_or(String::new(), |r| {
                    format!(
                        "in progress since {} (at {})",
                        r.started_at,
                        r.flushed_position.unwrap_or(0)
                    )
                }),
            ]);
        }
        table.write(w)
    })?;
    Ok(Outcome::Done)
}

/// What `projections rebuild` reports.
#[derive(Debug, Serialize)]
struct Rebuilt {
    rebuilt: Vec<RebuiltOne>,
    failed: Vec<FailedOne>,
}

#[derive(Debug, Serialize)]
struct RebuiltOne {
    name: String,
    events_applied: u64,
    checkpoint: Option<u64>,
    seconds: f64,
}

#[derive(Debug, Serialize)]
struct FailedOne {
    name: String,
    position: Option<u64>,
    reason: String,
}

fn rebuild(
    tool: &Tool,
    dir: &Path,
    name: Option<&str>,
    out: &mut Output,
) -> Result<Outcome, Error> {
    let Some(register) = tool.registered_projections() else {
        return Err(Error::NoDefinitions);
    };
    // Rebuilding reads the log only: the store itself stays untouched.
    let store = open_read_only(dir)?;
    let root = store.path().join(PROJECTIONS_FOLDER);
    let store: Arc<dyn EventStore> = Arc::new(store);
    let manager = register(ProjectionManager::builder(store, root)).open()?;
    let report = super::block_on(run_rebuild(&manager, name), None)?;
    let Some(report) = report else {
        // Interrupted: the rebuild's journal lets the next maintainer resume it.
        return Ok(Outcome::Failed);
    };
    let result = Rebuilt {
        rebuilt: report
            .rebuilt
            .iter()
            .map(|r| RebuiltOne {
                name: r.name.clone(),
                events_applied: r.events_applied,
                checkpoint: r.checkpoint.map(|p| p.get()),
                seconds: r.duration.as_secs_f64(),
            })
            .collect(),
        failed: report
            .failed
            .iter()
            .map(|f| FailedOne {
                name: f.name.clone(),
                position: f.position.map(|p| p.get()),
                reason: f.reason.clone(),
            })
            .collect(),
    };
    out.emit(&result, |w| {
        for r in &result.rebuilt {
            writeln!(
                w,
                "rebuilt {}: {} events in {:.2} s, checkpoint {}",
                r.name,
                r.events_applied,
                r.seconds,
                r.checkpoint.map_or("none".to_owned(), |c| c.to_string())
            )?;
        }
        for f in &result.failed {
            writeln!(w, "FAILED {}: {}", f.name, f.reason)?;
        }
        Ok(())
    })?;
    Ok(if result.failed.is_empty() {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

/// Rebuilds `name` (all when `None`), showing progress on a terminal.
async fn run_rebuild(
    manager: &ProjectionManager,
    name: Option<&str>,
) -> Result<Option<RebuildReport>, Error> {
    let rebuilder = manager.rebuilder();
    let bar = super::progress(0, "rebuilding");
    let watcher = {
        let rebuilder = manager.rebuilder();
        let bar = bar.clone();
        tokio::spawn(async move {
            loop {
                let status = rebuilder.status();
                let (done, total) = status.running.iter().fold((0, 0), |(d, t), p| {
                    (
                        d + p.position.map_or(0, |p| p.get()),
                        t + p.head.map_or(0, |p| p.get()),
                    )
                });
                bar.set_length(total);
                bar.set_position(done);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let report = match name {
        Some(name) => {
            let rebuilt = rebuilder.rebuild(name).await;
            match rebuilt {
                Ok(one) => RebuildReport {
                    rebuilt: vec![one],
                    failed: Vec::new(),
                },
                Err(e @ opossum_projections::Error::UnknownProjection { .. }) => {
                    watcher.abort();
                    bar.finish_and_clear();
                    return Err(e.into());
                }
                Err(e) => RebuildReport {
                    rebuilt: Vec::new(),
                    failed: vec![opossum_projections::ProjectionFailure {
                        name: name.to_owned(),
                        position: None,
                        reason: e.to_string(),
                    }],
                },
            }
        }
        None => rebuilder.rebuild_all().await,
    };
    watcher.abort();
    bar.finish_and_clear();
    Ok(Some(report))
}
