//! UmaDB (crates.io `umadb-core` and `umadb-dcb`), embedded the way its gRPC server embeds it:
//! one `Mvcc` with `StorageOptions::default()` (a single database file; the synchronous, not
//! the pipelined, writer), and the crate's group-commit writer thread
//! `writer_thread_blocking`, fed through a bounded channel of 1,024 requests with at most 2,000
//! events folded into one commit — the server's constants. An append sends its request and
//! waits for the reply, which comes after the commit's syncs. Reads go through
//! `DcbEventStoreSync::read` on an `UmaDb` over the same `Mvcc`, on the caller's thread.
//!
//! UmaDB tags are strings: an Opossum tag `key = value` becomes `key:value`. Payloads are the
//! same JSON bytes; the events carry no metadata. Opening a database prints a few lines of
//! UmaDB's own on standard output.

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow};
use opossum_benches::{CUSTOMER_TAG, SAMPLE_TYPE, customer_id, sample_payload, sample_tag};
use opossum_core::NewEvent;
use tokio::sync::{mpsc, oneshot, watch};
use umadb_core::db::is_integrity_error;
use umadb_core::mvcc::{Mvcc, StorageOptions};
use umadb_core::writer_thread_blocking::writer_thread_blocking;
use umadb_core::writer_thread_request::WriterThreadRequest;
use umadb_dcb::{
    DcbAppendCondition, DcbEvent, DcbEventStoreSync, DcbQuery, DcbQueryItem, DcbSequencedEvent,
};

use super::paired::QueryKeys;
use super::peers::{Appended, Peer};

/// Requests the writer thread's channel holds (the server's).
const REQUEST_QUEUE: usize = 1_024;

/// Most events the writer thread folds into one commit (the server's).
const APPEND_BATCH_MAX_EVENTS: usize = 2_000;

/// The UmaDB peer.
#[derive(Debug)]
pub(crate) struct UmaDb;

/// The writer thread of an open database.
pub(crate) struct Writer {
    thread: JoinHandle<()>,
    requests: mpsc::Sender<WriterThreadRequest>,
}

/// A handle to an open database: reads on the caller's thread, appends through the writer.
#[derive(Clone)]
pub(crate) struct Handle {
    db: Arc<umadb_core::db::UmaDb>,
    requests: mpsc::Sender<WriterThreadRequest>,
}

/// `key:value`, UmaDB's form of an Opossum tag.
fn tag(key: &str, value: &str) -> String {
    format!("{key}:{value}")
}

impl Peer for UmaDb {
    const NAME: &'static str = "umadb";
    const APPEND_KEYS: [&'static str; 4] = [
        "umadb_single_append_per_s",
        "umadb_batch1000_append_per_s",
        "umadb_conditional_append_per_s",
        "umadb_concurrent16_append_per_s",
    ];
    const QUERY_KEYS: QueryKeys = QueryKeys {
        tag: "umadb_tag_query_100k_us",
        by_type: "umadb_type_query_10k_us",
        last: "umadb_read_last_us",
    };
    type Store = Writer;
    type Handle = Handle;
    type Event = DcbEvent;
    type Query = DcbQuery;

    fn open(path: &Path) -> Result<(Writer, Handle)> {
        let mvcc = Arc::new(
            Mvcc::new(false, StorageOptions::default().db_path(path))
                .context("open the UmaDB database")?,
        );
        let head = umadb_core::db::UmaDb::from_arc(Arc::clone(&mvcc))
            .head()
            .context("read the UmaDB head")?;
        let (head_tx, _) = watch::channel(head);
        let (requests, request_rx) = mpsc::channel(REQUEST_QUEUE);
        let for_writer = Arc::clone(&mvcc);
        let thread = std::thread::Builder::new()
            .name("umadb-writer".to_owned())
            .spawn(move || {
                writer_thread_blocking(for_writer, request_rx, head_tx, APPEND_BATCH_MAX_EVENTS);
            })
            .context("start the UmaDB writer thread")?;
        let handle = Handle {
            db: Arc::new(umadb_core::db::UmaDb::from_arc(mvcc)),
            requests: requests.clone(),
        };
        Ok((Writer { thread, requests }, handle))
    }

    fn close(store: Writer, handle: Handle) -> Result<()> {
        drop(handle);
        store
            .requests
            .blocking_send(WriterThreadRequest::Shutdown)
            .map_err(|_| anyhow!("the UmaDB writer thread stopped early"))?;
        drop(store.requests);
        store
            .thread
            .join()
            .map_err(|_| anyhow!("the UmaDB writer thread panicked"))
    }

    fn event(e: &NewEvent) -> Result<DcbEvent> {
        Ok(DcbEvent {
            event_type: e.event_type().as_str().to_owned(),
            tags: e.tags().iter().map(|t| tag(t.key(), t.value())).collect(),
            data: e.payload().as_json().as_bytes().to_vec(),
            uuid: None,
            metadata: Vec::new(),
        })
    }

    fn sample(i: u64) -> Result<DcbEvent> {
        let (key, value) = sample_tag(i);
        Ok(DcbEvent {
            event_type: SAMPLE_TYPE.to_owned(),
            tags: vec![tag(key, &value)],
            data: sample_payload(i).into_bytes(),
            uuid: None,
            metadata: Vec::new(),
        })
    }

    fn query(query: &opossum_core::Query) -> Result<DcbQuery> {
        // An UmaDB query without items matches every event.
        let items = query.items().unwrap_or_default();
        Ok(DcbQuery {
            items: items
                .iter()
                .map(|item| DcbQueryItem {
                    types: item.types().iter().map(|t| t.as_str().to_owned()).collect(),
                    tags: item
                        .tags()
                        .iter()
                        .map(|t| tag(t.key(), t.value()))
                        .collect(),
                })
                .collect(),
        })
    }

    fn customer_query(customer: u64) -> Result<DcbQuery> {
        Ok(DcbQuery {
            items: vec![DcbQueryItem {
                types: Vec::new(),
                tags: vec![tag(CUSTOMER_TAG, &customer_id(customer))],
            }],
        })
    }

    fn append(
        handle: &Handle,
        events: Vec<DcbEvent>,
        guard: Option<(&DcbQuery, u64)>,
    ) -> Result<Appended> {
        let condition = guard.map(|(query, after)| DcbAppendCondition {
            fail_if_events_match: query.clone(),
            after: (after > 0).then_some(after),
        });
        let (response_tx, response_rx) = oneshot::channel();
        handle
            .requests
            .blocking_send(WriterThreadRequest::Append {
                events,
                condition,
                tracking_info: None,
                response_tx,
                cancel: None,
            })
            .map_err(|_| anyhow!("the UmaDB writer thread stopped"))?;
        match response_rx
            .blocking_recv()
            .map_err(|_| anyhow!("the UmaDB writer thread dropped an append"))?
        {
            Ok(_) => Ok(Appended::Written),
            Err(e) if is_integrity_error(&e) => Ok(Appended::ConditionFailed),
            Err(e) => Err(e).context("UmaDB append"),
        }
    }

    fn read_count(handle: &Handle, query: &DcbQuery) -> Result<usize> {
        let events = handle
            .db
            .read(Some(query.clone()), None, false, None)
            .context("UmaDB read")?
            .collect::<Result<Vec<DcbSequencedEvent>, _>>()
            .context("UmaDB read")?;
        Ok(events.len())
    }

    fn read_last(handle: &Handle, query: &DcbQuery) -> Result<Option<(u64, Vec<u8>)>> {
        let mut found = handle
            .db
            .read(Some(query.clone()), None, true, Some(1))
            .context("UmaDB read backwards")?;
        match found.next() {
            Some(event) => {
                let event = event.context("UmaDB read backwards")?;
                Ok(Some((event.position, event.event.data)))
            }
            None => Ok(None),
        }
    }

    fn event_count(handle: &Handle) -> Result<u64> {
        Ok(handle
            .db
            .head()
            .context("read the UmaDB head")?
            .unwrap_or(0))
    }
}
