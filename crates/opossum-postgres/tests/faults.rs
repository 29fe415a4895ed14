//! Faults against a real server: the server restarted mid-run, connections killed inside an
//! append's transaction, a server that cannot be reached. Appends fail with a typed error or
//! succeed; what was acknowledged is stored exactly once, batches are whole, positions stay
//! contiguous and the chain intact.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use opossum_core::{
    AppendCondition, ErrorKind, EventStore, NewEvent, Payload, Query, ReadOptions, SequencedEvent,
    Tag,
};
use opossum_postgres::{Error, PgEventStore, PgOptions};

/// The restart test takes it for writing, every other test that uses the server for reading:
/// a restart must not break the other tests of this binary.
static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

/// The longest a single append is retried before the test gives up.
const RETRY_FOR: Duration = Duration::from_secs(30);

/// What the writers of a fault test saw.
#[derive(Default)]
struct Outcomes {
    /// `(id, position of its last event)` of every acknowledged append.
    acknowledged: Vec<(u64, u64)>,
    /// Ids whose first attempt failed but whose retry found them stored: committed, with the
    /// acknowledgement lost (a kill or restart between the commit and its answer).
    committed_unacknowledged: Vec<u64>,
    /// The kind of every failed attempt.
    failures: Vec<ErrorKind>,
    /// When the last append was acknowledged.
    last_acknowledged_at: Option<Instant>,
}

/// The distinct kinds in `kinds`.
fn distinct(kinds: &[ErrorKind]) -> Vec<ErrorKind> {
    let mut out: Vec<ErrorKind> = Vec::new();
    for kind in kinds {
        if !out.contains(kind) {
            out.push(*kind);
        }
    }
    out
}

fn batch(kind: &str, id: u64, size: u64) -> Vec<NewEvent> {
    (0..size)
        .map(|part| {
            NewEvent::builder(
                kind,
                Payload::from_json(&serde_json::json!({ "id": id, "part": part }).to_string())
                    .unwrap(),
            )
            .tag("id", id.to_string())
            .build()
            .unwrap()
        })
        .collect()
}

/// Appends `size`-event batches with fresh ids until `stop`, retrying each until it is
/// stored. The condition "no event with this id exists" makes a retry safe: an append whose
/// answer was lost is found stored (`ConditionFailed`), not appended twice.
async fn write_until(
    store: Arc<PgEventStore>,
    ids: Arc<AtomicU64>,
    size: u64,
    stop: Arc<AtomicBool>,
    outcomes: Arc<Mutex<Outcomes>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let condition = AppendCondition::new(
            Query::from_tags([Tag::new("id", id.to_string()).unwrap()]).unwrap(),
        );
        let started = Instant::now();
        let mut attempt = 0;
        loop {
            let result = store
                .append(batch("Written", id, size), Some(condition.clone()))
                .await;
            let error = {
                let mut o = outcomes.lock().unwrap();
                match result {
                    Ok(position) => {
                        o.acknowledged.push((id, position.get()));
                        o.last_acknowledged_at = Some(Instant::now());
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::ConditionFailed => {
                        assert!(
                            attempt > 0,
                            "append {id} failed its condition on its first attempt: {e}"
                        );
                        o.committed_unacknowledged.push(id);
                        break;
                    }
                    Err(e) => {
                        o.failures.push(e.kind());
                        e
                    }
                }
            };
            assert!(
                started.elapsed() < RETRY_FOR,
                "append {id} still fails after {RETRY_FOR:?}: {error} ({:?})",
                error.kind()
            );
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Checks the store after a fault: positions 1..=n, every `size`-event batch whole and stored
/// once, every acknowledged append at its position, every committed-unacknowledged one
/// present, and an intact chain. Returns the events.
async fn check_after_fault(
    store: &PgEventStore,
    outcomes: &Outcomes,
    size: u64,
) -> Vec<SequencedEvent> {
    let all = store.read(&Query::all(), ReadOptions::new()).await.unwrap();
    let positions: Vec<u64> = all.iter().map(|e| e.position.get()).collect();
    support::assert_contiguous(&positions);

    // id -> (part, position) of its events, in position order.
    let mut batches: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for e in &all {
        let id = support::payload_u64(e, "id");
        assert_eq!(e.event.tag_value("id"), Some(id.to_string().as_str()));
        batches
            .entry(id)
            .or_default()
            .push((support::payload_u64(e, "part"), e.position.get()));
    }
    for (id, events) in &batches {
        assert_eq!(
            events.len() as u64,
            size,
            "batch {id} is not whole (or stored twice): {events:?}"
        );
        let first = events[0].1;
        for (i, (part, position)) in events.iter().enumerate() {
            assert_eq!(*part, i as u64, "batch {id} is out of order: {events:?}");
            assert_eq!(
                *position,
                first + i as u64,
                "batch {id} is split: {events:?}"
            );
        }
    }
    for (id, last) in &outcomes.acknowledged {
        let events = batches
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged append {id} (at {last}) is missing"));
        assert_eq!(
            events.last().map(|(_, p)| *p),
            Some(*last),
            "append {id} is not where it was acknowledged"
        );
    }
    for id in &outcomes.committed_unacknowledged {
        assert!(batches.contains_key(id), "append {id} is missing");
    }
    let acknowledged: BTreeSet<u64> = outcomes.acknowledged.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        acknowledged.len(),
        outcomes.acknowledged.len(),
        "an id acknowledged twice"
    );
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.map(|p| p.get()), positions.last().copied());
    assert_eq!(report.events_checked, all.len() as u64);
    all
}

/// The server restarts while a writer appends: appends fail with an I/O error while it is
/// down, succeed again once it is back, and everything acknowledged is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_survive_a_server_restart() {
    let Some(url) = support::database_url() else {
        return;
    };
    let Some(folder) = support::pg_folder() else {
        return;
    };
    let _server = SERVER.write().await;
    let schema = support::unique_schema("restart");
    let _guard = support::SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let store = Arc::new(
        PgEventStore::connect(
            &url,
            PgOptions::new()
                .schema(schema.clone())
                .pool_size(2)
                .connect_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap(),
    );
    // A subscriber on a connection of its own that never polls: after the restart only its
    // listener, reconnected, can wake it. Its stream ends with the error of a failed read; it
    // subscribes again after the last event it got.
    let follower = Arc::new(
        PgEventStore::connect(
            &url,
            PgOptions::new()
                .schema(schema.clone())
                .pool_size(2)
                .poll_interval(Duration::from_secs(3600))
                .connect_timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap(),
    );
    let followed = Arc::new(Mutex::new(Vec::<SequencedEvent>::new()));
    let follower_errors = Arc::new(Mutex::new(Vec::<ErrorKind>::new()));
    let subscriber = tokio::spawn({
        let follower = Arc::clone(&follower);
        let followed = Arc::clone(&followed);
        let follower_errors = Arc::clone(&follower_errors);
        async move {
            let mut after = None;
            loop {
                let mut stream = follower.subscribe_all(after);
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(e) => {
                            after = Some(e.position);
                            followed.lock().unwrap().push(e);
                        }
                        Err(e) => {
                            follower_errors.lock().unwrap().push(e.kind());
                            break;
                        }
                    }
                }
                drop(stream);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });

    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let writer = tokio::spawn(write_until(
        Arc::clone(&store),
        Arc::new(AtomicU64::new(1)),
        1,
        Arc::clone(&stop),
        Arc::clone(&outcomes),
    ));
    let acknowledged = || outcomes.lock().unwrap().acknowledged.len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while acknowledged() < 50 {
        assert!(Instant::now() < deadline, "the writer does not get going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let before_restart = acknowledged();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/pg-cluster");
    let status = tokio::task::spawn_blocking(move || {
        std::process::Command::new(script)
            .args(["restart", folder.as_str()])
            .status()
    })
    .await
    .unwrap()
    .expect("run .ci/pg-cluster restart");
    assert!(status.success(), "the restart failed: {status}");
    let restarted_at = Instant::now();
    let after_restart = acknowledged();

    // Back: appends succeed again, well within 30 s.
    let deadline = restarted_at + Duration::from_secs(30);
    while acknowledged() < after_restart + 50 {
        assert!(
            Instant::now() < deadline,
            "appends do not succeed again after the restart ({} acknowledged since)",
            acknowledged() - after_restart
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    eprintln!(
        "restart: {} acknowledged ({before_restart} before the restart began, {after_restart} when it ended), {} committed without an answer, {} failed attempts: {:?}",
        outcomes.acknowledged.len(),
        outcomes.committed_unacknowledged.len(),
        outcomes.failures.len(),
        distinct(&outcomes.failures)
    );
    assert!(
        !outcomes.failures.is_empty(),
        "no append failed while the server restarted"
    );
    for kind in &outcomes.failures {
        assert_eq!(
            *kind,
            ErrorKind::Io,
            "an append failed during the restart with {kind:?}, not Io"
        );
    }
    assert!(
        outcomes.last_acknowledged_at.unwrap() > restarted_at,
        "nothing acknowledged after the restart"
    );
    let all = check_after_fault(&store, &outcomes, 1).await;

    // The subscriber got every event once, in order, across the restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    while followed.lock().unwrap().len() < all.len() {
        assert!(
            Instant::now() < deadline,
            "the subscriber got {} of {} events: its listener did not come back",
            followed.lock().unwrap().len(),
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    subscriber.abort();
    let followed = std::mem::take(&mut *followed.lock().unwrap());
    let errors = follower_errors.lock().unwrap().clone();
    eprintln!(
        "restart: the subscriber resubscribed after {} errors: {:?}",
        errors.len(),
        distinct(&errors)
    );
    for kind in &errors {
        assert_eq!(
            *kind,
            ErrorKind::Io,
            "the subscription failed with {kind:?}, not Io"
        );
    }
    assert_eq!(followed, all, "the subscriber saw exactly what is stored");
}

/// Connections are killed (`pg_terminate_backend`) while two writers append 3-event batches,
/// many of them inside an append's transaction: appends fail with an I/O error or succeed,
/// nothing is half-stored, everything acknowledged is stored once, and once the kills stop the
/// pool recovers and appends succeed at the first attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_connections_leave_no_partial_batch() {
    let Some(url) = support::database_url() else {
        return;
    };
    let _server = SERVER.read().await;
    let schema = support::unique_schema("kill");
    let _guard = support::SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    // Its own application name, so that its connections (and only they) can be found.
    let app = schema.clone();
    let store = Arc::new(
        PgEventStore::connect(
            &support::with_application_name(&url, &app),
            PgOptions::new()
                .schema(schema.clone())
                .pool_size(4)
                .connect_timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap(),
    );
    let admin = support::admin_client(&url).await;

    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let ids = Arc::new(AtomicU64::new(1));
    let writers: Vec<_> = (0..2)
        .map(|_| {
            tokio::spawn(write_until(
                Arc::clone(&store),
                Arc::clone(&ids),
                3,
                Arc::clone(&stop),
                Arc::clone(&outcomes),
            ))
        })
        .collect();

    // Kill every connection of the store but the listener's, again and again, for 3 s.
    let kill = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                WHERE application_name = $1 AND pid <> pg_backend_pid() \
                AND query NOT LIKE 'LISTEN%'";
    let mut kills = 0_usize;
    let mut in_transaction = 0_usize;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let rows = admin
            .query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                 AND state IN ('active', 'idle in transaction') AND query NOT LIKE 'LISTEN%'",
                &[&app],
            )
            .await
            .unwrap();
        in_transaction += usize::from(rows[0].get::<_, i64>(0) > 0);
        let rows = admin.query(kill, &[&app]).await.unwrap();
        kills += rows.iter().filter(|r| r.get::<_, bool>(0)).count();
        tokio::time::sleep(Duration::from_millis(2 + support::jitter(18))).await;
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    eprintln!(
        "kill: {kills} connections killed ({in_transaction} looks found one at work), {} acknowledged, {} committed without an answer, {} failed attempts: {:?}",
        outcomes.acknowledged.len(),
        outcomes.committed_unacknowledged.len(),
        outcomes.failures.len(),
        distinct(&outcomes.failures)
    );
    assert!(kills > 0, "no connection was killed");
    assert!(!outcomes.failures.is_empty(), "no append failed");
    assert!(
        !outcomes.acknowledged.is_empty(),
        "no append succeeded while connections were killed"
    );
    for kind in &outcomes.failures {
        assert_eq!(
            *kind,
            ErrorKind::Io,
            "an append failed with {kind:?}, not Io"
        );
    }
    check_after_fault(&store, &outcomes, 3).await;

    // The pool recovers: with the kills over, appends succeed at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let head = store.head().await.unwrap().map_or(0, |p| p.get());
    let next_id = ids.load(Ordering::Relaxed);
    for i in 0..20 {
        let position = store
            .append(batch("Written", next_id + i, 3), None)
            .await
            .unwrap_or_else(|e| panic!("append {i} after the kills failed: {e}"));
        assert_eq!(position.get(), head + 3 * (i + 1));
    }
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.head.map(|p| p.get()), Some(head + 60));
}

/// A server that accepts connections but never answers, on a loopback port of its own, for as
/// long as the test runs.
fn silent_server() -> u16 {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in silent.incoming() {
            match stream {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    port
}

/// Nothing listens on port 1.
const REFUSING: &str = "postgres://opossum@127.0.0.1:1/postgres";

/// Checks that `error`, from connecting to a server that refuses or does not answer, is
/// `Unavailable` (kind Io) and that it took about as long as `expected` says.
fn assert_unavailable(
    what: &str,
    error: &Error,
    took: Duration,
    expected: std::ops::Range<Duration>,
) {
    assert!(
        matches!(error, Error::Unavailable { .. }),
        "{what}: {error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Io, "{what}: {error:?}");
    assert!(
        expected.contains(&took),
        "{what}: failed after {took:?}, not within {expected:?}"
    );
    assert!(
        error.to_string().contains("127.0.0.1:"),
        "{what}: the message names the server: {error}"
    );
}

/// A server that cannot be reached is `Error::Unavailable` (kind Io), quickly: refused at
/// once, or silent until the connect timeout. Connecting from async code, and from blocking
/// code on a runtime's thread (which `connect_blocking` allows).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreachable_server_is_unavailable() {
    let Some(_url) = support::database_url() else {
        return;
    };
    let options = PgOptions::new().connect_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let refused = PgEventStore::connect(REFUSING, options.clone())
        .await
        .unwrap_err();
    assert_unavailable(
        "refused",
        &refused,
        started.elapsed(),
        Duration::ZERO..Duration::from_secs(5),
    );

    let silent = format!("postgres://opossum@127.0.0.1:{}/postgres", silent_server());
    let started = Instant::now();
    let error = PgEventStore::connect(&silent, options.clone())
        .await
        .unwrap_err();
    assert_unavailable(
        "silent",
        &error,
        started.elapsed(),
        Duration::from_millis(1500)..Duration::from_secs(6),
    );

    let started = Instant::now();
    let error = PgEventStore::connect_blocking(REFUSING, options).unwrap_err();
    assert_unavailable(
        "refused, blocking on a runtime thread",
        &error,
        started.elapsed(),
        Duration::ZERO..Duration::from_secs(5),
    );
}

/// The same from blocking code outside any runtime.
#[test]
fn unreachable_server_is_unavailable_from_blocking_code() {
    let Some(_url) = support::database_url() else {
        return;
    };
    let options = PgOptions::new().connect_timeout(Duration::from_secs(2));
    let started = Instant::now();
    let error = PgEventStore::connect_blocking(REFUSING, options.clone()).unwrap_err();
    assert_unavailable(
        "refused",
        &error,
        started.elapsed(),
        Duration::ZERO..Duration::from_secs(5),
    );

    let silent = format!("postgres://opossum@127.0.0.1:{}/postgres", silent_server());
    let started = Instant::now();
    let error = PgEventStore::connect_blocking(&silent, options).unwrap_err();
    assert_unavailable(
        "silent",
        &error,
        started.elapsed(),
        Duration::from_millis(1500)..Duration::from_secs(6),
    );
}

/// A URL that does not parse is `Error::InvalidOptions` (kind InvalidInput), before anything
/// is connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unparsable_url_is_invalid_options() {
    let Some(_url) = support::database_url() else {
        return;
    };
    for bad in [
        "postgres://opossum@127.0.0.1:notaport/postgres",
        "postgres://opossum@127.0.0.1:54329/postgres?sslmode=sometimes",
        "mysql://opossum@127.0.0.1/postgres",
    ] {
        let invalid = PgEventStore::connect(bad, PgOptions::new())
            .await
            .unwrap_err();
        assert!(
            matches!(invalid, Error::InvalidOptions { .. }),
            "{bad}: {invalid:?}"
        );
        assert_eq!(invalid.kind(), ErrorKind::InvalidInput);
        assert!(invalid.to_string().contains("does not parse"), "{invalid}");
        let invalid = PgEventStore::connect_blocking(bad, PgOptions::new()).unwrap_err();
        assert!(
            matches!(invalid, Error::InvalidOptions { .. }),
            "{bad}: {invalid:?}"
        );
    }
}

/// An append the server refuses (here: a check constraint added to the table) fails with the
/// kind of the server's error — not as if the server could not be reached, which would tell
/// the caller to retry an append that can never succeed — and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_append_keeps_the_servers_error_kind() {
    let Some(url) = support::database_url() else {
        return;
    };
    let _server = SERVER.read().await;
    let schema = support::unique_schema("refuse");
    let _guard = support::SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let store = PgEventStore::connect(&url, PgOptions::new().schema(schema.clone()).pool_size(2))
        .await
        .unwrap();
    store.append(batch("Allowed", 1, 1), None).await.unwrap();
    let admin = support::admin_client(&url).await;
    admin
        .batch_execute(&format!(
            "ALTER TABLE {schema}.events ADD CONSTRAINT no_forbidden CHECK (type <> 'Forbidden')"
        ))
        .await
        .unwrap();

    let refused = store
        .append(batch("Forbidden", 2, 3), None)
        .await
        .unwrap_err();
    let own = Error::from(refused);
    assert_ne!(
        own.kind(),
        ErrorKind::Io,
        "a refused statement is reported as a lost connection: {own:?}"
    );
    assert!(
        !matches!(own, Error::Unavailable { .. }),
        "a refused statement is reported as an unreachable server: {own}"
    );
    assert_eq!(own.kind(), ErrorKind::Other, "{own:?}");

    // Nothing of it was stored, and the store goes on.
    let all = store.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        store
            .append(batch("Allowed", 3, 2), None)
            .await
            .unwrap()
            .get(),
        3
    );
    let report = store.verify().await.unwrap();
    assert!(report.is_intact(), "{report:?}");
}
