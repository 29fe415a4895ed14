//! The honest competitor: the same DCB store on SQLite (rusqlite with its bundled SQLite, WAL,
//! `synchronous=FULL`), and the workloads that [`super::paired`] runs on it beside the file store.
//!
//! Events live in an `events` table (the position is the rowid; type, tags, payload and metadata
//! as text) and their tags again in a `tags` table keyed by (key, value, position). An append is
//! one `BEGIN IMMEDIATE` transaction that checks the DCB condition and writes, so the check and the
//! write are atomic with respect to every other connection, in any process. Reads return the same
//! [`SequencedEvent`]s the file store returns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use opossum_benches::{
    catalog_event, invoice_event, invoices_query, next_invoice_number, sample_event,
};
use opossum_core::{
    AppendCondition, EventType, NewEvent, Payload, Position, Query, QueryItem, SequencedEvent,
};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, TransactionBehavior, params, params_from_iter};

use super::measure::{self, Rate};
use super::{BULK_BATCH, CONCURRENT_WRITERS, QUERY_STORE_EVENTS};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    type     TEXT NOT NULL,
    tags     TEXT NOT NULL,
    payload  TEXT NOT NULL,
    metadata TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position);
CREATE TABLE IF NOT EXISTS tags (
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (key, value, position)
) WITHOUT ROWID;
";

/// The columns a read selects, in the order [`event_from_row`] expects.
const COLUMNS: &str = "e.position, e.type, e.tags, e.payload, e.metadata";

/// How long a connection waits for another one's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Appends made before the clock starts.
const WARM_UP: u64 = 16;

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Appended {
    /// The events were written; the first one at this position.
    At(Position),
    /// The condition matched an event: nothing was written.
    ConditionFailed,
}

/// One connection to a DCB store in a SQLite database file.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating) the database at `path` in WAL mode with `synchronous=FULL`.
    pub(crate) fn open(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open(path).with_context(|| format!("open {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "SQLite refused WAL mode ({mode})"
        );
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore { conn })
    }

    /// Appends `events` atomically, unless `condition` matches an event after its `after`.
    pub(crate) fn append(
        &mut self,
        events: &[NewEvent],
        condition: Option<&AppendCondition>,
    ) -> Result<Appended> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(condition) = condition
            && violates(&tx, condition)?
        {
            return Ok(Appended::ConditionFailed); // Dropping `tx` rolls back.
        }
        let head: i64 = tx.query_row("SELECT coalesce(max(position), 0) FROM events", [], |r| {
            r.get(0)
        })?;
        {
            let mut insert_event = tx.prepare_cached(
                "INSERT INTO events (position, type, tags, payload, metadata) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            let mut insert_tag =
                tx.prepare_cached("INSERT INTO tags (key, value, position) VALUES (?1, ?2, ?3)")?;
            let mut position = head;
            for event in events {
                position += 1;
                insert_event.execute(params![
                    position,
                    event.event_type().as_str(),
                    serde_json::to_string(event.tags())?,
                    event.payload().as_json(),
                    serde_json::to_string(event.metadata())?,
                ])?;
                for tag in event.tags() {
                    insert_tag.execute(params![tag.key(), tag.value(), position])?;
                }
            }
        }
        tx.commit()?;
        Ok(Appended::At(Position::new(u64::try_from(head + 1)?)?))
    }

    /// The events `query` matches, in position order.
    pub(crate) fn read(&self, query: &Query) -> Result<Vec<SequencedEvent>> {
        let mut params = Vec::new();
        let sql = read_sql(query, &mut params);
        let mut statement = self.conn.prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(params))?;
        let mut events = Vec::new();
        while let Some(row) = rows.next()? {
            events.push(event_from_row(row)?);
        }
        Ok(events)
    }

    /// The last event `query` matches.
    pub(crate) fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>> {
        let mut params = Vec::new();
        let sql = read_last_sql(query, &mut params);
        let mut statement = self.conn.prepare_cached(&sql)?;
        let mut rows = statement.query(params_from_iter(params))?;
        match rows.next()? {
            Some(row) => Ok(Some(event_from_row(row)?)),
            None => Ok(None),
        }
    }
}

fn read_sql(query: &Query, params: &mut Vec<Value>) -> String {
    let filter = filter(query, params);
    format!("SELECT {COLUMNS} FROM events e WHERE {filter} ORDER BY e.position")
}

fn read_last_sql(query: &Query, params: &mut Vec<Value>) -> String {
    let filter = filter(query, params);
    format!("SELECT {COLUMNS} FROM events e WHERE {filter} ORDER BY e.position DESC LIMIT 1")
}

fn violates_sql(condition: &AppendCondition, params: &mut Vec<Value>) -> Result<String> {
    let filter = filter(&condition.fail_if_events_match, params);
    let after = condition.after.map_or(0, Position::get);
    params.push(Value::Integer(i64::try_from(after)?));
    Ok(format!(
        "SELECT EXISTS (SELECT 1 FROM events e WHERE ({filter}) AND e.position > ?)"
    ))
}

/// True when an event matching the condition's query exists after its `after`.
fn violates(conn: &Connection, condition: &AppendCondition) -> Result<bool> {
    let mut params = Vec::new();
    let sql = violates_sql(condition, &mut params)?;
    let found = conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(params), |r| r.get(0))?;
    Ok(found)
}

/// The SQL condition on `e` (the events table) that `query` matches, pushing its parameters.
///
/// Items are ORed; within an item the type is one of its types and every tag is present.
fn filter(query: &Query, params: &mut Vec<Value>) -> String {
    let Some(items) = query.items() else {
        return "1".to_owned();
    };
    let items: Vec<String> = items.iter().map(|item| item_filter(item, params)).collect();
    match items.as_slice() {
        [one] => one.clone(),
        many => format!("({})", many.join(") OR (")),
    }
}

/// One item's condition, written so that SQLite's planner starts from the most selective index
/// it can: with types, the `(type, position)` index, checking tags per event (so `ORDER BY
/// position DESC LIMIT 1` stops at the first hit); with tags only, the tags table, through
/// `position IN (…)`.
fn item_filter(item: &QueryItem, params: &mut Vec<Value>) -> String {
    let mut parts = Vec::new();
    if !item.types().is_empty() {
        let marks = vec!["?"; item.types().len()].join(", ");
        parts.push(format!("e.type IN ({marks})"));
        params.extend(
            item.types()
                .iter()
                .map(|t| Value::Text(t.as_str().to_owned())),
        );
    }
    for tag in item.tags() {
        parts.push(if parts.is_empty() {
            "e.position IN (SELECT t.position FROM tags t WHERE t.key = ? AND t.value = ?)"
        } else {
            "EXISTS (SELECT 1 FROM tags t WHERE t.key = ? AND t.value = ? AND t.position = e.position)"
        }
        .to_owned());
        params.push(Value::Text(tag.key().to_owned()));
        params.push(Value::Text(tag.value().to_owned()));
    }
    if parts.is_empty() {
        "1".to_owned()
    } else {
        parts.join(" AND ")
    }
}

/// Decodes a row of [`COLUMNS`] into the event the file store would return.
fn event_from_row(row: &Row<'_>) -> Result<SequencedEvent> {
    let position: i64 = row.get(0)?;
    let event_type: String = row.get(1)?;
    let tags: String = row.get(2)?;
    let payload: String = row.get(3)?;
    let metadata: String = row.get(4)?;
    let event = NewEvent::from_parts(
        EventType::new(event_type)?,
        serde_json::from_str(&tags)?,
        Payload::from_json(&payload)?,
        serde_json::from_str(&metadata)?,
    )?;
    Ok(SequencedEvent::new(
        Position::new(u64::try_from(position)?)?,
        event,
    ))
}

/// One connection appending one event per transaction.
#[derive(Debug)]
pub(crate) struct Single {
    store: SqliteStore,
    appended: u64,
}

impl Single {
    /// Opens a fresh database and makes the warm-up appends.
    pub(crate) fn open(dir: &Path) -> Result<Single> {
        let mut single = Single {
            store: SqliteStore::open(&dir.join("sqlite-single.db"))?,
            appended: 0,
        };
        for _ in 0..WARM_UP {
            single.append()?;
        }
        Ok(single)
    }

    /// Appends one event; returns the events appended (one).
    pub(crate) fn append(&mut self) -> Result<u64> {
        self.store.append(&[sample_event(self.appended)?], None)?;
        self.appended += 1;
        Ok(1)
    }
}

/// The gap-free invoice pattern on SQLite: `read_last`, then the condition check and the insert
/// in one `BEGIN IMMEDIATE` transaction.
#[derive(Debug)]
pub(crate) struct InvoiceClerk {
    store: SqliteStore,
    invoices: Query,
}

impl InvoiceClerk {
    /// Opens a fresh database and issues the warm-up invoices.
    pub(crate) fn open(dir: &Path) -> Result<InvoiceClerk> {
        let mut clerk = InvoiceClerk {
            store: SqliteStore::open(&dir.join("sqlite-conditional.db"))?,
            invoices: invoices_query()?,
        };
        for _ in 0..WARM_UP {
            clerk.issue_next()?;
        }
        Ok(clerk)
    }

    /// One `read_last` and one conditional append; returns the events appended (one).
    pub(crate) fn issue_next(&mut self) -> Result<u64> {
        let last = self.store.read_last(&self.invoices)?;
        let number = next_invoice_number(last.as_ref())?;
        let guard = AppendCondition::new(self.invoices.clone()).after(last.map(|e| e.position));
        match self.store.append(&[invoice_event(number)?], Some(&guard))? {
            Appended::At(_) => Ok(1),
            Appended::ConditionFailed => {
                bail!("invoice {number}: the condition failed although nobody else appends")
            }
        }
    }
}

/// [`CONCURRENT_WRITERS`] threads, each with its own connection, appending single events to one
/// database.
#[derive(Debug)]
pub(crate) struct Concurrent {
    path: PathBuf,
    check: SqliteStore,
    appended: u64,
}

impl Concurrent {
    /// Creates a fresh database and makes the warm-up appends.
    pub(crate) fn open(dir: &Path) -> Result<Concurrent> {
        let path = dir.join("sqlite-concurrent16.db");
        let mut check = SqliteStore::open(&path)?;
        for i in 0..WARM_UP {
            check.append(&[sample_event(i)?], None)?;
        }
        Ok(Concurrent {
            path,
            check,
            appended: WARM_UP,
        })
    }

    /// Each thread appends `per_writer` events, or fewer if `cap` passes first.
    pub(crate) fn round(&mut self, per_writer: u64, cap: Duration) -> Result<Rate> {
        let first = self.appended;
        let workers = (0..CONCURRENT_WRITERS as u64)
            .map(|writer| {
                let mut store = SqliteStore::open(&self.path)?;
                Ok(move |i| -> Result<()> {
                    let event = sample_event(first + writer * per_writer + i)?;
                    store.append(&[event], None)?;
                    Ok(())
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rate = measure::on_threads(workers, per_writer, cap)?;
        self.appended += rate.events;
        Ok(rate)
    }

    /// Checks the event count.
    pub(crate) fn close(self) -> Result<()> {
        let stored: i64 = self
            .check
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
        ensure!(
            u64::try_from(stored)? == self.appended,
            "the concurrent SQLite store holds {stored} events, expected {}",
            self.appended
        );
        Ok(())
    }
}

/// A fresh SQLite database holding the same catalog of [`QUERY_STORE_EVENTS`] events as the
/// file store's, analysed after the load.
pub(crate) fn build_catalog(dir: &Path) -> Result<SqliteStore> {
    let mut store = SqliteStore::open(&dir.join("sqlite-catalog.db"))?;
    let mut start = 0;
    while start < QUERY_STORE_EVENTS {
        let end = (start + BULK_BATCH).min(QUERY_STORE_EVENTS);
        let batch = (start..end)
            .map(catalog_event)
            .collect::<Result<Vec<NewEvent>, _>>()?;
        store.append(&batch, None)?;
        start = end;
    }
    // What a careful SQLite user does after a bulk load: give the planner statistics.
    store.conn.execute_batch("ANALYZE")?;
    Ok(store)
}

#[cfg(test)]
mod tests {
    use opossum_benches::{customer_query, type_query};

    use super::*;
    use crate::bench::fs_query::QUERIED_TYPE;

    /// The plan SQLite chooses for `sql`.
    fn plan(store: &SqliteStore, sql: &str, params: Vec<Value>) -> Result<String> {
        let mut statement = store.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let details = statement
            .query_map(params_from_iter(params), |r| r.get::<_, String>(3))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(details.join("; "))
    }

    fn read_plan(store: &SqliteStore, query: &Query) -> Result<String> {
        let mut params = Vec::new();
        let sql = read_sql(query, &mut params);
        plan(store, &sql, params)
    }

    /// The baseline is only honest if SQLite answers from its indexes.
    #[test]
    fn queries_use_the_indexes() -> Result<()> {
        let folder = tempfile::tempdir()?;
        let mut store = SqliteStore::open(&folder.path().join("plan.db"))?;
        let batch = (0..200)
            .map(catalog_event)
            .collect::<Result<Vec<NewEvent>, _>>()?;
        store.append(&batch, None)?;
        store.conn.execute_batch("ANALYZE")?;

        let by_tag = read_plan(&store, &customer_query(3)?)?;
        assert!(
            by_tag.contains("USING PRIMARY KEY (key=? AND value=?)"),
            "{by_tag}"
        );
        assert!(!by_tag.contains("SCAN"), "{by_tag}");
        let by_type = read_plan(&store, &type_query(QUERIED_TYPE)?)?;
        assert!(by_type.contains("USING INDEX events_by_type"), "{by_type}");
        assert!(!by_type.contains("SCAN"), "{by_type}");

        // The invoice pattern: the last invoice, then whether one came after it.
        let invoices = invoices_query()?;
        let mut params = Vec::new();
        let sql = read_last_sql(&invoices, &mut params);
        let last = plan(&store, &sql, params)?;
        assert!(last.contains("USING INDEX events_by_type"), "{last}");
        assert!(
            !last.contains("SCAN") && !last.contains("LIST SUBQUERY"),
            "{last}"
        );
        let mut params = Vec::new();
        let guard = AppendCondition::new(invoices).after(Position::new(100).ok());
        let sql = violates_sql(&guard, &mut params)?;
        let check = plan(&store, &sql, params)?;
        assert!(check.contains("position>?)"), "{check}");
        assert!(
            !check.contains("SCAN e") && !check.contains("LIST SUBQUERY"),
            "{check}"
        );

        assert_eq!(store.read(&customer_query(3)?)?.len(), 10);
        let last = store.read_last(&type_query(QUERIED_TYPE)?)?;
        assert_eq!(last.map(|e| e.position.get()), Some(195));
        Ok(())
    }

    #[test]
    fn a_condition_that_matches_appends_nothing() -> Result<()> {
        let folder = tempfile::tempdir()?;
        let mut store = SqliteStore::open(&folder.path().join("dcb.db"))?;
        let invoices = invoices_query()?;
        let guard = AppendCondition::new(invoices.clone());
        assert!(matches!(
            store.append(&[invoice_event(1)?], Some(&guard))?,
            Appended::At(_)
        ));
        assert_eq!(
            store.append(&[invoice_event(2)?], Some(&guard))?,
            Appended::ConditionFailed
        );
        let last = store.read_last(&invoices)?;
        let after = guard.after(last.map(|e| e.position));
        assert!(matches!(
            store.append(&[invoice_event(2)?], Some(&after))?,
            Appended::At(p) if p.get() == 2
        ));
        assert_eq!(store.read(&invoices)?.len(), 2);
        Ok(())
    }
}
