//! Concurrent appenders: the condition check and the write are one atomic step.

use std::sync::Arc;

use opossum_core::{AppendCondition, EventStore, NewEvent, Query, ReadOptions};

use crate::fixtures::{event_with_payload, positions, tags_query};

/// Concurrent appending tasks.
const TASKS: u64 = 16;
/// Increments per task in the counter check.
const INCREMENTS_PER_TASK: u64 = 4;
/// Bound on retries of one increment, so a store whose conditions always fail ends the test
/// instead of hanging it.
const MAX_ATTEMPTS: u32 = 10_000;

/// The counter value an event carries, read from its `{"value":n}` payload.
fn counter_value(event: &NewEvent) -> u64 {
    let payload: serde_json::Value = event.payload().decode().expect("counter payload is JSON");
    payload["value"]
        .as_u64()
        .expect("counter payload holds a value")
}

/// Increments the counter once: read the last value, append the next one on the condition that
/// no counter event arrived since, and retry on `ConditionFailed`.
async fn increment<S: EventStore>(store: &S, writer: u64) {
    let counter = tags_query(&[("counter", "invoices")]);
    for _ in 0..MAX_ATTEMPTS {
        let last = store.read_last(&counter).await.expect("read_last");
        let next = last.as_ref().map_or(1, |e| counter_value(&e.event) + 1);
        let event = event_with_payload(
            "CounterIncremented",
            &[("counter", "invoices"), ("writer", &writer.to_string())],
            &format!(r#"{{"value":{next}}}"#),
        );
        let condition = AppendCondition::new(counter.clone()).after(last.map(|e| e.position));
        match store.append(vec![event], Some(condition)).await {
            Ok(_) => return,
            Err(e) if e.is_condition_failed() => tokio::task::yield_now().await,
            Err(e) => panic!("writer {writer}: unexpected append error {e:?}"),
        }
    }
    panic!("writer {writer}: no increment succeeded in {MAX_ATTEMPTS} attempts");
}

/// 16 tasks each increment a counter 4 times by read_last + conditional append (retrying on
/// `ConditionFailed`), while 2 more tasks append unrelated events. The counter ends at exactly
/// 1..=64 in position order — no duplicate, no gap — and all positions are contiguous.
pub async fn concurrent_conditional_appends_are_gap_free<S: EventStore + 'static>(store: S) {
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for writer in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for _ in 0..INCREMENTS_PER_TASK {
                increment(&store, writer).await;
            }
        }));
    }
    let noise_events = 8u64;
    for noise in 0..2u64 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for n in 0..noise_events {
                let e = event_with_payload(
                    "Noise",
                    &[("counter", "other"), ("noise", &noise.to_string())],
                    &format!(r#"{{"value":{n}}}"#),
                );
                store.append(vec![e], None).await.expect("noise append");
                tokio::task::yield_now().await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a writer task panicked");
    }

    let total = TASKS * INCREMENTS_PER_TASK;
    let counter = tags_query(&[("counter", "invoices")]);
    let events = store
        .read(&counter, ReadOptions::new())
        .await
        .expect("read");
    let values: Vec<u64> = events.iter().map(|e| counter_value(&e.event)).collect();
    assert_eq!(
        values,
        (1..=total).collect::<Vec<_>>(),
        "counter values in position order"
    );

    let all = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    let expected: Vec<u64> = (1..=total + 2 * noise_events).collect();
    assert_eq!(positions(&all), expected, "positions must be contiguous");
}

/// 16 tasks append batches of 1 to 3 events without conditions. Every append gets its own
/// position range, the positions are contiguous, and every batch is stored contiguously and in
/// order (batches never interleave).
pub async fn concurrent_batches_stay_whole<S: EventStore + 'static>(store: S) {
    const BATCHES_PER_TASK: u64 = 6;
    let store = Arc::new(store);
    let mut tasks = Vec::new();
    for writer in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut appended = Vec::new();
            for batch in 0..BATCHES_PER_TASK {
                let size = 1 + (writer + batch) % 3;
                let id = format!("{writer}-{batch}");
                let events = (0..size)
                    .map(|i| {
                        let payload = format!(r#"{{"batch":"{id}","index":{i}}}"#);
                        event_with_payload("Batched", &[("writer", &writer.to_string())], &payload)
                    })
                    .collect();
                let last = store.append(events, None).await.expect("append");
                appended.push((id, size, last.get()));
                tokio::task::yield_now().await;
            }
            appended
        }));
    }
    let mut batches = Vec::new();
    for task in tasks {
        batches.extend(task.await.expect("a writer task panicked"));
    }

    let all = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    let total: u64 = batches.iter().map(|(_, size, _)| size).sum();
    assert_eq!(
        positions(&all),
        (1..=total).collect::<Vec<_>>(),
        "positions must be contiguous"
    );

    for (id, size, last) in batches {
        let first = last + 1 - size;
        for (i, p) in (first..=last).enumerate() {
            let stored = &all[usize::try_from(p - 1).expect("position fits usize")];
            let payload: serde_json::Value = stored
                .event
                .payload()
                .decode()
                .expect("batch payload is JSON");
            assert_eq!(
                (payload["batch"].as_str(), payload["index"].as_u64()),
                (Some(id.as_str()), Some(i as u64)),
                "position {p} must hold event {i} of batch {id} (which ended at {last})"
            );
        }
    }
}
