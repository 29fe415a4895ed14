//! `opossum query DIR [filters]` and `opossum tail DIR [--follow]`.

use opossum_core::{EventStore, Position, Query, ReadOptions};
use opossum_fs::{FileEventStore, StoredEvent};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::cli::{QueryArgs, TailArgs};
use crate::output::Table;
use crate::{Error, Outcome, Output, Selection, open_read_only};

/// The longest payload shown in a table cell, in characters.
const PAYLOAD_CELL: usize = 60;

/// What `query --json` prints.
#[derive(Serialize)]
struct Events {
    store: String,
    count: usize,
    /// Each event exactly as the log stores it.
    events: Vec<Box<RawValue>>,
}

/// The line of `event` as a JSON value, byte for byte.
pub(crate) fn raw(event: &StoredEvent) -> Result<Box<RawValue>, Error> {
    RawValue::from_string(event.line.clone()).map_err(|e| {
        Error::Store(opossum_fs::Error::CorruptLog {
            file: event.file.clone(),
            offset: event.offset,
            reason: format!("the line is not JSON: {e}"),
        })
    })
}

pub(crate) fn query(args: &QueryArgs, out: &mut Output) -> Result<Outcome, Error> {
    let selection = Selection::new(&args.filters)?;
    let store = open_read_only(&args.dir)?;
    let events = selection.read(&store, args.limit, args.desc)?;
    if out.is_json() {
        let report = Events {
            store: store.path().display().to_string(),
            count: events.len(),
            events: events.iter().map(raw).collect::<Result<_, _>>()?,
        };
        out.json_line(&report, true)?;
    } else {
        let w = out.writer();
        event_table(&events).write(w).map_err(Error::Output)?;
        writeln!(w, "{} events", events.len()).map_err(Error::Output)?;
    }
    Ok(Outcome::Done)
}

/// A table of `events`: position, time, type, tags, user and the start of the payload.
fn event_table(events: &[StoredEvent]) -> Table {
    let mut table = Table::new(
        &["position", "time", "type", "tags", "user", "payload"],
        &["position"],
    );
    for e in events {
        table.row(cells(e));
    }
    table
}

/// The table cells of one event.
fn cells(e: &StoredEvent) -> Vec<String> {
    let event = &e.event.event;
    let tags = event
        .tags()
        .iter()
        .map(|t| format!("{}={}", t.key(), t.value()))
        .collect::<Vec<_>>()
        .join(" ");
    let payload = event.payload().as_json();
    let payload = if payload.chars().count() > PAYLOAD_CELL {
        let cut: String = payload.chars().take(PAYLOAD_CELL - 1).collect();
        format!("{cut}…")
    } else {
        payload.to_owned()
    };
    vec![
        e.event.position.to_string(),
        event.metadata().timestamp.to_string(),
        event.event_type().to_string(),
        tags,
        event.metadata().user_id.clone().unwrap_or_default(),
        payload,
    ]
}

/// One event on one line, for `tail`: JSON lines with `--json`, tab-separated cells otherwise.
fn print_event(out: &mut Output, e: &StoredEvent) -> Result<(), Error> {
    if out.is_json() {
        return out.json_line(&raw(e)?, false);
    }
    let w = out.writer();
    let line = cells(e).join("  ");
    writeln!(w, "{}", line.trim_end()).map_err(Error::Output)?;
    w.flush().map_err(Error::Output)
}

pub(crate) fn tail(args: &TailArgs, out: &mut Output) -> Result<Outcome, Error> {
    let store = open_read_only(&args.dir)?;
    let mut last = store.read_stored(
        &Query::all(),
        ReadOptions::new().descending().limit(args.lines),
    )?;
    last.reverse();
    for e in &last {
        print_event(out, e)?;
    }
    if !args.follow {
        return Ok(Outcome::Done);
    }
    let mut seen: Option<Position> = match last.last() {
        Some(e) => Some(e.event.position),
        None => store.read_last_blocking(&Query::all())?.map(|e| e.position),
    };
    super::block_on(follow(&store, &mut seen, out), Outcome::Done)
}

/// Prints every event committed after `seen`, as it is committed, until interrupted.
async fn follow(
    store: &FileEventStore,
    seen: &mut Option<Position>,
    out: &mut Output<'_>,
) -> Result<Outcome, Error> {
    loop {
        // What subscriptions wait on: the store's change detection (watch or poll).
        store.wait_for_append(*seen).await?;
        loop {
            let mut options = ReadOptions::new().limit(1024);
            if let Some(p) = *seen {
                options = options.after(p);
            }
            let batch = store.read_stored(&Query::all(), options)?;
            for e in &batch {
                print_event(out, e)?;
                *seen = Some(e.event.position);
            }
            if batch.len() < 1024 {
                break;
            }
        }
    }
}
