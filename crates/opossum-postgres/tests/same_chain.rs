//! The PostgreSQL store keeps the folder store's event lines and hash chain: both encode an
//! event into the same line (each with its own commit time), so `verify` and exports agree
//! whichever store holds the events, and lines copied from one to the other keep their hashes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use opossum_core::line::{ChainHash, encode_line};
use opossum_core::{EventStore, Metadata, NewEvent, Payload, Query, ReadOptions, SequencedEvent};
use opossum_fs::FileEventStore;
use opossum_postgres::{PgEventStore, PgOptions};
use support::{SchemaGuard, unique_schema};

fn events(i: u64) -> Vec<NewEvent> {
    let at: opossum_core::Timestamp = "2026-03-01T08:00:00Z".parse().unwrap();
    let mut metadata = Metadata::at(at);
    metadata.user_id = Some(format!("clerk-{}", i % 3));
    metadata.correlation_id = Some(format!("req-{i}"));
    (0..=(i % 3))
        .map(|k| {
            NewEvent::builder(
                if k == 0 {
                    "InvoiceCreated"
                } else {
                    "LineAdded"
                },
                Payload::from_json(&format!(
                    r#"{{"invoice": {i}, "line": {k}, "note": "ä \"q\" \\ {{}}"}}"#
                ))
                .unwrap(),
            )
            .tag("invoice", i.to_string())
            .tag("customer", format!("c/{}", i % 7))
            .metadata(metadata.clone())
            .build()
            .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_appends_give_the_same_chain_in_both_stores() {
    let Some(url) = support::database_url() else {
        return;
    };
    let schema = unique_schema("chain");
    let _guard = SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let pg = PgEventStore::connect(&url, PgOptions::new().schema(schema))
        .await
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let fs = FileEventStore::open(folder.path().join("store")).unwrap();
    for i in 1..=40 {
        let a = pg.append(events(i), None).await.unwrap();
        let b = fs.append(events(i), None).await.unwrap();
        assert_eq!(a, b);
    }
    let from_pg = pg.verify().await.unwrap();
    let from_fs = fs.verify().unwrap();
    assert!(from_pg.is_intact() && from_fs.is_intact());
    assert_eq!(from_pg.events_checked, from_fs.events_checked);
    // What reads return is the same, byte for byte in the payloads, but for each store's own
    // commit times.
    let a = pg.read(&Query::all(), ReadOptions::new()).await.unwrap();
    let b = fs.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert!(a.iter().chain(&b).all(|e| e.stored_at.is_some()));
    let without_time = |events: &[SequencedEvent]| -> Vec<SequencedEvent> {
        events
            .iter()
            .map(|e| SequencedEvent::new(e.position, e.event.clone()))
            .collect()
    };
    assert_eq!(without_time(&a), without_time(&b));
    // Each store's chain is the one the shared line encoding gives for its events and its
    // commit times: the two stores write the same lines.
    assert_eq!(
        from_pg.head_hash,
        Some(expected_chain(&a).to_hex()),
        "the PostgreSQL store's lines differ from the shared encoding"
    );
    assert_eq!(
        from_fs.head_hash,
        Some(expected_chain(&b).to_hex()),
        "the folder store's lines differ from the shared encoding"
    );
}

/// The chain of `events` as appended by this test: append `i` held `i % 3 + 1` events, and
/// each append was made after the previous one was durable.
fn expected_chain(events: &[SequencedEvent]) -> ChainHash {
    let mut prev = ChainHash::GENESIS;
    let mut next = 0usize;
    for i in 1..=40u64 {
        let batch = &events[next..next + (i % 3 + 1) as usize];
        let batch_last = batch.last().unwrap().position;
        let synced_to = batch[0].position.get() - 1;
        for e in batch {
            let mut buf = Vec::new();
            prev = encode_line(
                &mut buf,
                prev,
                e.position,
                batch_last,
                synced_to,
                e.stored_at,
                &e.event,
            )
            .unwrap();
        }
        next += batch.len();
    }
    assert_eq!(next, events.len());
    prev
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copied_lines_must_continue_the_chain() {
    let Some(url) = support::database_url() else {
        return;
    };
    let schema = unique_schema("import");
    let _guard = SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let folder = tempfile::tempdir().unwrap();
    let fs = FileEventStore::open(folder.path().join("store")).unwrap();
    for i in 1..=10 {
        fs.append(events(i), None).await.unwrap();
    }
    let lines: Vec<String> = fs
        .read_stored(&Query::all(), ReadOptions::new())
        .unwrap()
        .into_iter()
        .map(|e| e.line)
        .collect();
    let pg = PgEventStore::connect(&url, PgOptions::new().schema(schema))
        .await
        .unwrap();
    // Not the first position: refused, nothing copied.
    let refused = pg.import_lines(lines[1..].to_vec()).await.unwrap_err();
    assert!(
        matches!(
            refused,
            opossum_postgres::Error::ImportRejected { position: 1, .. }
        ),
        "{refused}"
    );
    // An edited line breaks the chain: refused with its position, and the batch is not copied.
    let mut edited = lines[..5].to_vec();
    edited[3] = edited[3].replacen("\"invoice\": ", "\"invoice\":  ", 1);
    assert_ne!(edited[3], lines[3]);
    let refused = pg.import_lines(edited).await.unwrap_err();
    assert!(
        matches!(
            refused,
            opossum_postgres::Error::ImportRejected { position: 4, .. }
        ),
        "{refused}"
    );
    assert_eq!(pg.head().await.unwrap(), None);
    // The real lines, in two batches: the same chain, and appends go on from it.
    pg.import_lines(lines[..7].to_vec()).await.unwrap();
    let head = pg.import_lines(lines[7..].to_vec()).await.unwrap();
    assert_eq!(head, fs.head().await.unwrap());
    assert_eq!(
        pg.verify().await.unwrap().head_hash,
        fs.verify().unwrap().head_hash
    );
    assert_eq!(
        pg.head_hash().await.unwrap().map(|(_, h)| h),
        fs.verify().unwrap().head_hash
    );
    let next = pg.append(events(11), None).await.unwrap();
    assert_eq!(next.get(), lines.len() as u64 + events(11).len() as u64);
    assert!(pg.verify().await.unwrap().is_intact());
}
