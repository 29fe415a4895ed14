//! tephra (crates.io `tephra`), driven through its embedded API: `SegmentSet::open` with
//! 256 MiB segments (the size its README uses), `WriteCoordinator::start` with
//! `WriterConfig::default()`, and the `WriteHandle` it returns — `append` blocks until the
//! writer thread has group-committed the request under one sync; reads run on the caller's
//! thread over the published snapshot. tephra has a single, durable write mode.
//!
//! A tephra tag is one string; an Opossum tag `key = value` becomes `key:value`. Payloads are
//! the same JSON bytes; tephra has no metadata (the benchmark events carry none).

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use opossum_benches::{CUSTOMER_TAG, SAMPLE_TYPE, customer_id, sample_payload, sample_tag};
use opossum_core::NewEvent;
use tephra::{
    AppendCondition, AppendError, Event, EventType, Position, Query, QueryItem, SegmentConfig,
    SegmentSet, Tag, Tags, WriteCoordinator, WriteHandle, WriterConfig,
};

use super::paired::QueryKeys;
use super::peers::{Appended, Peer};

/// Bytes per segment file (each is allocated in full when created).
const SEGMENT_BYTES: usize = 256 << 20;

/// The tephra peer.
#[derive(Debug)]
pub(crate) struct Tephra;

/// `key:value`, tephra's form of an Opossum tag.
fn tag(key: &str, value: &str) -> Result<Tag> {
    Tag::new(format!("{key}:{value}")).map_err(|e| anyhow!("tephra tag {key}:{value}: {e}"))
}

/// A tephra tag set from `(key, value)` pairs.
fn tags<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Tags> {
    let tags = pairs
        .into_iter()
        .map(|(k, v)| tag(k, v))
        .collect::<Result<Vec<_>>>()?;
    Tags::new(tags).map_err(|e| anyhow!("tephra tags: {e}"))
}

/// A tephra event type.
fn event_type(name: &str) -> Result<EventType> {
    EventType::new(name).map_err(|e| anyhow!("tephra event type {name}: {e}"))
}

/// Encodes one tephra event.
fn event(event_type: &EventType, tags: &Tags, payload: &[u8]) -> Result<Event> {
    Event::new(event_type, tags, payload).map_err(|e| anyhow!("encode a tephra event: {e}"))
}

impl Peer for Tephra {
    const NAME: &'static str = "tephra";
    const APPEND_KEYS: [&'static str; 4] = [
        "tephra_single_append_per_s",
        "tephra_batch1000_append_per_s",
        "tephra_conditional_append_per_s",
        "tephra_concurrent16_append_per_s",
    ];
    const QUERY_KEYS: QueryKeys = QueryKeys {
        tag: "tephra_tag_query_100k_us",
        by_type: "tephra_type_query_10k_us",
        last: "tephra_read_last_us",
    };
    type Store = WriteCoordinator;
    type Handle = WriteHandle;
    type Event = Event;
    type Query = Query;

    fn open(path: &Path) -> Result<(WriteCoordinator, WriteHandle)> {
        let set = SegmentSet::open(path, SegmentConfig::new(SEGMENT_BYTES))
            .context("open the tephra segment set")?;
        WriteCoordinator::start(set, WriterConfig::default())
            .context("start the tephra write coordinator")
    }

    fn close(store: WriteCoordinator, handle: WriteHandle) -> Result<()> {
        drop(handle);
        drop(store.shutdown());
        Ok(())
    }

    fn event(e: &NewEvent) -> Result<Event> {
        let tags = tags(e.tags().iter().map(|t| (t.key(), t.value())))?;
        event(
            &event_type(e.event_type().as_str())?,
            &tags,
            e.payload().as_json().as_bytes(),
        )
    }

    fn sample(i: u64) -> Result<Event> {
        let (key, value) = sample_tag(i);
        event(
            &event_type(SAMPLE_TYPE)?,
            &tags([(key, value.as_str())])?,
            sample_payload(i).as_bytes(),
        )
    }

    fn query(query: &opossum_core::Query) -> Result<Query> {
        let Some(items) = query.items() else {
            return Ok(Query::all());
        };
        let items = items
            .iter()
            .map(|item| {
                let types = item
                    .types()
                    .iter()
                    .map(|t| event_type(t.as_str()))
                    .collect::<Result<Vec<_>>>()?;
                let tags = tags(item.tags().iter().map(|t| (t.key(), t.value())))?;
                Ok(QueryItem::new(types, tags))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Query::items(items))
    }

    fn customer_query(customer: u64) -> Result<Query> {
        let id = customer_id(customer);
        Ok(Query::item(QueryItem::with_tags(tags([(
            CUSTOMER_TAG,
            id.as_str(),
        )])?)))
    }

    fn append(
        handle: &WriteHandle,
        events: Vec<Event>,
        guard: Option<(&Query, u64)>,
    ) -> Result<Appended> {
        let condition = guard
            .map(|(query, after)| AppendCondition::new(query.clone()).after(Position::new(after)));
        match handle.append(events, condition) {
            Ok(_) => Ok(Appended::Written),
            Err(AppendError::Conflict { .. }) => Ok(Appended::ConditionFailed),
            Err(e) => bail!("tephra append: {e}"),
        }
    }

    fn read_count(handle: &WriteHandle, query: &Query) -> Result<usize> {
        let events = handle
            .read(query, Position::ZERO, None)
            .collect_owned()
            .map_err(|e| anyhow!("tephra read: {e}"))?;
        Ok(events.len())
    }

    fn read_last(handle: &WriteHandle, query: &Query) -> Result<Option<(u64, Vec<u8>)>> {
        let mut reads = handle.read_back(query, Position::MAX, Some(1));
        match reads.next() {
            Some(item) => {
                let found = item.map_err(|e| anyhow!("tephra read_back: {e}"))?;
                Ok(Some((found.position.get(), found.event.data().to_vec())))
            }
            None => Ok(None),
        }
    }

    fn event_count(handle: &WriteHandle) -> Result<u64> {
        Ok(handle.head().get())
    }
}
