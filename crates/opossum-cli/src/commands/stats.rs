//! `opossum stats DIR`.

use std::path::Path;

use opossum_core::{Query, ReadOptions};
use serde::Serialize;

use crate::output::{Table, human_bytes};
use crate::{Error, Outcome, Output, open_read_only};

/// What `stats` reports.
#[derive(Debug, Serialize)]
struct Stats {
    store: String,
    identity: Option<String>,
    events: u64,
    head: Option<u64>,
    segments: usize,
    size_on_disk: Sizes,
    first_timestamp: Option<String>,
    last_timestamp: Option<String>,
    event_types: Vec<TypeCount>,
}

#[derive(Debug, Serialize)]
struct Sizes {
    total: u64,
    events: u64,
    index: u64,
    projections: u64,
    other: u64,
}

#[derive(Debug, Serialize)]
struct TypeCount {
    #[serde(rename = "type")]
    event_type: String,
    events: u64,
}

pub(crate) fn run(dir: &Path, out: &mut Output) -> Result<Outcome, Error> {
    let store = open_read_only(dir)?;
    let stats = store.stats()?;
    let mut types: Vec<TypeCount> = store
        .event_types()?
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(event_type, events)| TypeCount { event_type, events })
        .collect();
    types.sort_by(|a, b| {
        b.events
            .cmp(&a.events)
            .then(a.event_type.cmp(&b.event_type))
    });
    let first = store.read_blocking(&Query::all(), ReadOptions::new().limit(1))?;
    let last = store.read_last_blocking(&Query::all())?;
    let root = store.path();
    let events = tree_size(&root.join("events"))?;
    let index = tree_size(&root.join("index"))?;
    let projections = tree_size(&root.join("projections"))?;
    let report = Stats {
        store: root.display().to_string(),
        identity: store.identity()?,
        events: stats.event_count,
        head: stats.head.map(|p| p.get()),
        segments: stats.segments,
        size_on_disk: Sizes {
            total: stats.size_on_disk,
            events,
            index,
            projections,
            other: stats
                .size_on_disk
                .saturating_sub(events + index + projections),
        },
        first_timestamp: first
            .first()
            .map(|e| e.event.metadata().timestamp.to_string()),
        last_timestamp: last.map(|e| e.event.metadata().timestamp.to_string()),
        event_types: types,
    };
    out.emit(&report, |w| {
        writeln!(w, "store        {}", report.store)?;
        if let Some(id) = &report.identity {
            writeln!(w, "identity     {id}")?;
        }
        writeln!(w, "events       {}", report.events)?;
        let head = report.head.map_or("none".to_owned(), |h| h.to_string());
        writeln!(w, "head         {head}")?;
        writeln!(w, "segments     {}", report.segments)?;
        let s = &report.size_on_disk;
        writeln!(
            w,
            "size         {} (events {}, index {}, projections {}, other {})",
            human_bytes(s.total),
            human_bytes(s.events),
            human_bytes(s.index),
            human_bytes(s.projections),
            human_bytes(s.other)
        )?;
        if let (Some(first), Some(last)) = (&report.first_timestamp, &report.last_timestamp) {
            writeln!(w, "first event  {first}")?;
            writeln!(w, "last event   {last}")?;
        }
        if !report.event_types.is_empty() {
            writeln!(w)?;
            let mut table = Table::new(&["type", "events"], &["events"]);
            for t in &report.event_types {
                table.row(vec![t.event_type.clone(), t.events.to_string()]);
            }
            table.write(w)?;
        }
        Ok(())
    })?;
    Ok(Outcome::Done)
}

/// The bytes of every file under `dir` (0 when it does not exist); a file that disappears
/// during the walk (another process's temporary file) is not counted.
pub(crate) fn tree_size(dir: &Path) -> Result<u64, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let path = entry.path();
        match entry.metadata() {
            Ok(meta) if meta.is_dir() => total += tree_size(&path)?,
            Ok(meta) => total += meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("inspect", path, e)),
        }
    }
    Ok(total)
}
