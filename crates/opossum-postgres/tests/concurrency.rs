//! Concurrency against a real server: several processes, several connections and one
//! connection's group commit all append at once, with DCB conditions, and the store stays
//! gap-free, duplicate-free and chained.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use opossum_core::{
    AppendCondition, ErrorKind, EventStore, NewEvent, Payload, Query, QueryItem, ReadOptions, Tag,
};
use opossum_postgres::{PgEventStore, PgOptions};

/// The variable that makes [`child_invoicer`] run as a child process: the schema to append to.
const CHILD_VAR: &str = "OPOSSUM_PG_TEST_CHILD";
/// Child processes of [`invoice_numbers_from_four_processes_are_gap_free`].
const CHILDREN: usize = 4;
/// Invoices each child creates.
const INVOICES_PER_CHILD: u64 = 50;

fn event(event_type: &str, payload: serde_json::Value, tags: &[(&str, String)]) -> NewEvent {
    let mut builder = NewEvent::builder(
        event_type,
        Payload::from_json(&payload.to_string()).unwrap(),
    );
    for (key, value) in tags {
        builder = builder.tag(*key, value.clone());
    }
    builder.build().unwrap()
}

/// As a child process (with [`CHILD_VAR`] set): creates [`INVOICES_PER_CHILD`] invoices with
/// consecutive numbers, each decided on the last invoice and appended on the condition that no
/// invoice was created since. As a test of its own it does nothing.
#[test]
fn child_invoicer() {
    let Ok(schema) = std::env::var(CHILD_VAR) else {
        return;
    };
    let url = std::env::var(support::URL_VAR).expect("the parent passes the database URL");
    let store = PgEventStore::connect_blocking(&url, PgOptions::new().schema(schema).pool_size(2))
        .expect("the child connects");
    let invoices = Query::from_event_types(["InvoiceCreated"]).unwrap();
    let mut conflicts = 0_u64;
    for _ in 0..INVOICES_PER_CHILD {
        loop {
            let last = store.read_last_blocking(&invoices).unwrap();
            let number = last
                .as_ref()
                .map_or(0, |e| support::payload_u64(e, "number"))
                + 1;
            let invoice = event(
                "InvoiceCreated",
                serde_json::json!({ "number": number, "by": std::process::id() }),
                &[("invoice", number.to_string())],
            );
            let condition =
                AppendCondition::new(invoices.clone()).after(last.as_ref().map(|e| e.position));
            match store.append_blocking(vec![invoice], Some(condition)) {
                Ok(_) => break,
                Err(e) if e.kind() == ErrorKind::ConditionFailed => {
                    conflicts += 1;
                    std::thread::sleep(Duration::from_micros(support::jitter(2_000)));
                }
                Err(e) => panic!("child {}: append failed: {e}", std::process::id()),
            }
        }
    }
    eprintln!(
        "child {} created {INVOICES_PER_CHILD} invoices after {conflicts} conflicts",
        std::process::id()
    );
}

/// 4 processes × 50 conditional invoice appends: positions 1..=200 and invoice numbers
/// 1..=200, each once, and an intact chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invoice_numbers_from_four_processes_are_gap_free() {
    let Some(url) = support::database_url() else {
        return;
    };
    let schema = support::unique_schema("procs");
    let _guard = support::SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    // Create the schema first so the children do not all migrate at once (they could: the
    // migration takes a lock, but this keeps the children's work to the appends).
    let store = PgEventStore::connect(&url, PgOptions::new().schema(schema.clone()).pool_size(2))
        .await
        .unwrap();

    let exe = std::env::current_exe().unwrap();
    let mut children = Vec::new();
    for _ in 0..CHILDREN {
        let child = tokio::process::Command::new(&exe)
            .args([
                "--exact",
                "child_invoicer",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_VAR, &schema)
            .env(support::URL_VAR, &url)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn a child test process");
        children.push(child);
    }
    for child in children {
        let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .expect("a child finishes within 60 s")
            .unwrap();
        assert!(
            output.status.success(),
            "a child failed ({:?}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let all = store.read(&Query::all(), ReadOptions::new()).await.unwrap();
    let total = CHILDREN as u64 * INVOICES_PER_CHILD;
    assert_eq!(all.len() as u64, total);
    support::assert_contiguous(&all.iter().map(|e| e.position.get()).collect::<Vec<_>>());
    let numbers: Vec<u64> = all
        .iter()
        .map(|e| support::payload_u64(e, "number"))
        .collect();
    assert_eq!(
        numbers,
        (1..=total).collect::<Vec<_>>(),
        "each invoice number once, in position order"
    );
    for e in &all {
        let number = support::payload_u64(e, "number").to_string();
        assert_eq!(e.event.tag_value("invoice"), Some(number.as_str()));
    }
    let writers: BTreeSet<u64> = all.iter().map(|e| support::payload_u64(e, "by")).collect();
    assert_eq!(writers.len(), CHILDREN, "every child wrote invoices");
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.map(|p| p.get()), Some(total));
    assert_eq!(report.events_checked, total);
}

/// 20 students try to enrol, on 4 connections, into a course of 10 seats: exactly 10 get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn course_capacity_holds_under_concurrent_enrolments() {
    let Some(url) = support::database_url() else {
        return;
    };
    let schema = support::unique_schema("course");
    let _guard = support::SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let mut stores = Vec::new();
    for _ in 0..4 {
        stores.push(Arc::new(
            PgEventStore::connect(&url, PgOptions::new().schema(schema.clone()).pool_size(2))
                .await
                .unwrap(),
        ));
    }
    stores[0]
        .append(
            vec![event(
                "CourseCreated",
                serde_json::json!({ "capacity": 10 }),
                &[("course", "c1".to_owned())],
            )],
            None,
        )
        .await
        .unwrap();

    let course = Query::from_items([QueryItem::of_types(["CourseCreated", "StudentEnrolled"])
        .unwrap()
        .with_tag(Tag::new("course", "c1").unwrap())])
    .unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for student in 0..20_usize {
        let store = Arc::clone(&stores[student % 4]);
        let course = course.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut conflicts = 0_u32;
            loop {
                let events = store.read(&course, ReadOptions::new()).await.unwrap();
                let capacity = events
                    .iter()
                    .find(|e| e.event.event_type().as_str() == "CourseCreated")
                    .map(|e| support::payload_u64(e, "capacity"))
                    .expect("the course exists");
                let enrolled = events
                    .iter()
                    .filter(|e| e.event.event_type().as_str() == "StudentEnrolled")
                    .count() as u64;
                if enrolled >= capacity {
                    return (false, conflicts);
                }
                let enrolment = event(
                    "StudentEnrolled",
                    serde_json::json!({ "student": student }),
                    &[
                        ("course", "c1".to_owned()),
                        ("student", format!("s{student}")),
                    ],
                );
                let condition =
                    AppendCondition::new(course.clone()).after(events.last().map(|e| e.position));
                match store.append(vec![enrolment], Some(condition)).await {
                    Ok(_) => return (true, conflicts),
                    Err(e) if e.kind() == ErrorKind::ConditionFailed => {
                        conflicts += 1;
                        tokio::time::sleep(Duration::from_micros(support::jitter(1_000))).await;
                    }
                    Err(e) => panic!("student {student}: append failed: {e}"),
                }
            }
        }));
    }
    let mut admitted = 0;
    let mut conflicts = 0;
    for task in tasks {
        let (admitted_one, conflicts_one) = task.await.unwrap();
        admitted += usize::from(admitted_one);
        conflicts += conflicts_one;
    }
    assert_eq!(admitted, 10, "exactly 10 students report success");
    assert!(conflicts > 0, "the students did contend");

    let enrolments = stores[0]
        .read(
            &Query::from_event_types(["StudentEnrolled"]).unwrap(),
            ReadOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(enrolments.len(), 10, "exactly 10 enrolments are stored");
    let students: BTreeSet<&str> = enrolments
        .iter()
        .map(|e| e.event.tag_value("student").unwrap())
        .collect();
    assert_eq!(students.len(), 10, "10 different students");
    let report = stores[0].verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.map(|p| p.get()), Some(11));
}

/// A subscriber on one connection sees every event of 4 other connections' appends (single
/// events and batches), in position order, without a gap or a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscriber_sees_every_event_in_order_while_four_connections_append() {
    let Some(url) = support::database_url() else {
        return;
    };
    let schema = support::unique_schema("subs");
    let _guard = support::SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    const WRITERS: u64 = 4;
    const PER_WRITER: u64 = 100;
    let total = WRITERS * PER_WRITER;
    let reader = PgEventStore::connect(
        &url,
        PgOptions::new()
            .schema(schema.clone())
            .pool_size(2)
            .poll_interval(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    let mut stream = reader.subscribe_all(None);

    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let store =
            PgEventStore::connect(&url, PgOptions::new().schema(schema.clone()).pool_size(2))
                .await
                .unwrap();
        writers.push(tokio::spawn(async move {
            let mut seq = 0_u64;
            let mut batch_size = 1_u64;
            let mut acknowledged = Vec::new();
            while seq < PER_WRITER {
                let n = batch_size.min(PER_WRITER - seq);
                let batch: Vec<NewEvent> = (0..n)
                    .map(|i| {
                        event(
                            "Written",
                            serde_json::json!({ "writer": writer, "seq": seq + i, "batch": n }),
                            &[("writer", writer.to_string())],
                        )
                    })
                    .collect();
                let last = store.append(batch, None).await.unwrap();
                acknowledged.push((last.get(), seq + n - 1));
                seq += n;
                batch_size = batch_size % 4 + 1;
            }
            acknowledged
        }));
    }

    let mut seen = Vec::new();
    let collect = async {
        while (seen.len() as u64) < total {
            match stream.next().await {
                Some(Ok(e)) => seen.push(e),
                Some(Err(e)) => panic!("the subscription failed: {e}"),
                None => panic!("the subscription ended"),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .is_err()
    {
        panic!("only {} of {total} events arrived within 30 s", seen.len());
    }
    // Nothing more arrives: no duplicate comes after the last.
    let extra = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
    assert!(extra.is_err(), "an event after the last: {extra:?}");
    drop(stream);

    let positions: Vec<u64> = seen.iter().map(|e| e.position.get()).collect();
    support::assert_contiguous(&positions);
    assert_eq!(positions.len() as u64, total);

    // Each writer's events arrive in its order, at the positions its appends acknowledged, and
    // batches are contiguous.
    let by_position: BTreeMap<u64, &opossum_core::SequencedEvent> =
        seen.iter().map(|e| (e.position.get(), e)).collect();
    for (writer, task) in writers.into_iter().enumerate() {
        let acknowledged = task.await.unwrap();
        for (last, seq_of_last) in acknowledged {
            let e = by_position[&last];
            assert_eq!(support::payload_u64(e, "writer"), writer as u64);
            assert_eq!(support::payload_u64(e, "seq"), seq_of_last);
            let n = support::payload_u64(e, "batch");
            for back in 0..n {
                let member = by_position[&(last - back)];
                assert_eq!(support::payload_u64(member, "writer"), writer as u64);
                assert_eq!(support::payload_u64(member, "seq"), seq_of_last - back);
            }
        }
        let seqs: Vec<u64> = seen
            .iter()
            .filter(|e| support::payload_u64(e, "writer") == writer as u64)
            .map(|e| support::payload_u64(e, "seq"))
            .collect();
        assert_eq!(seqs, (0..PER_WRITER).collect::<Vec<_>>());
    }
    let stored = reader
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(stored, seen, "the subscription saw what is stored");
    let report = reader.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.map(|p| p.get()), Some(total));
}

/// 200 concurrent appends through one store share group commits, each with its own
/// condition: 100 on tags of their own all succeed, 100 racing for one seat let exactly one in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_checks_each_condition() {
    let Some(url) = support::database_url() else {
        return;
    };
    let schema = support::unique_schema("group");
    let _guard = support::SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let store = Arc::new(
        PgEventStore::connect(&url, PgOptions::new().schema(schema.clone()))
            .await
            .unwrap(),
    );
    let barrier = Arc::new(tokio::sync::Barrier::new(200));
    let mut tasks = Vec::new();
    for k in 0..200_u64 {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let (tag, kind) = if k % 2 == 0 {
                (Tag::new("unique", k.to_string()).unwrap(), "Unique")
            } else {
                (Tag::new("seat", "1").unwrap(), "SeatTaken")
            };
            let e = event(
                kind,
                serde_json::json!({ "k": k }),
                &[(tag.key(), tag.value().to_owned())],
            );
            let condition = AppendCondition::new(Query::from_tags([tag]).unwrap());
            barrier.wait().await;
            (k, store.append(vec![e], Some(condition)).await)
        }));
    }
    let mut accepted = BTreeMap::new();
    let mut refused = Vec::new();
    for task in tasks {
        let (k, result) = task.await.unwrap();
        match result {
            Ok(position) => {
                assert!(
                    accepted.insert(position.get(), k).is_none(),
                    "position {position} acknowledged twice"
                );
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::ConditionFailed, "append {k}: {e}");
                refused.push(k);
            }
        }
    }
    assert_eq!(accepted.len(), 101, "100 unique appends and one seat");
    assert_eq!(refused.len(), 99);
    assert!(
        refused.iter().all(|k| k % 2 == 1),
        "only seat appends are refused"
    );
    assert_eq!(
        accepted.values().filter(|k| *k % 2 == 1).count(),
        1,
        "one seat winner"
    );

    let all = store.read(&Query::all(), ReadOptions::new()).await.unwrap();
    support::assert_contiguous(&all.iter().map(|e| e.position.get()).collect::<Vec<_>>());
    assert_eq!(all.len(), 101);
    for e in &all {
        assert_eq!(
            accepted.get(&e.position.get()),
            Some(&support::payload_u64(e, "k")),
            "the event at {} is the append acknowledged there",
            e.position
        );
    }
    let seats = store
        .read(
            &Query::from_tags([Tag::new("seat", "1").unwrap()]).unwrap(),
            ReadOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(seats.len(), 1);
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.map(|p| p.get()), Some(101));
}
