//! The database the tests run against: `OPOSSUM_TEST_DATABASE_URL` (`.ci/run` starts a
//! throw-away cluster and sets it). Without it a test says it skipped — and with `CI=true` it
//! fails instead, so CI can never pass by skipping.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    dead_code,
    unreachable_pub,
    reason = "test helpers: a failed expectation is a test failure; not every test uses every helper"
)]

use std::sync::atomic::{AtomicU64, Ordering};

use opossum_postgres::{PgEventStore, PgOptions};

/// The variable that holds the test database's URL.
pub const URL_VAR: &str = "OPOSSUM_TEST_DATABASE_URL";

/// The test database's URL; `None` (after saying so) when there is none outside CI.
///
/// # Panics
/// With `CI=true` and no URL.
pub fn database_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{URL_VAR} is not set: CI must run the PostgreSQL tests against a real server (.ci/run starts one with .ci/pg-cluster)"
            );
            eprintln!(
                "SKIPPED: {URL_VAR} is not set; start a server with `.ci/pg-cluster start /tmp/opossum-pg` and export the URL it prints"
            );
            None
        }
    }
}

/// True when the test database is there (see [`database_url`]).
pub fn available() -> bool {
    database_url().is_some()
}

/// A schema name no other test uses.
pub fn unique_schema(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Drops its schema when dropped (from any thread, inside a runtime or not).
pub struct SchemaGuard {
    pub url: String,
    pub schema: String,
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let url = self.url.clone();
        let schema = self.schema.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A new, empty store in a schema of its own, dropped after the test.
pub fn fresh_store() -> opossum_testkit::Guarded<PgEventStore, SchemaGuard> {
    let url = database_url().expect("the database is available");
    let schema = unique_schema("t");
    let store = PgEventStore::connect_blocking(&url, PgOptions::new().schema(schema.clone()))
        .expect("connect to the test database");
    opossum_testkit::Guarded::new(store, SchemaGuard { url, schema })
}

// ---- Helpers of the concurrency and fault tests (appended). ----

/// The variable that names the test cluster's folder (`.ci/pg-cluster start FOLDER`), so that
/// the fault tests can restart the server.
pub const FOLDER_VAR: &str = "OPOSSUM_TEST_PG_FOLDER";

/// The test cluster's folder; `None` (after saying so) when it is not set outside CI.
///
/// # Panics
/// With `CI=true` and no folder.
pub fn pg_folder() -> Option<String> {
    match std::env::var(FOLDER_VAR) {
        Ok(folder) if !folder.is_empty() => Some(folder),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{FOLDER_VAR} is not set: CI must run the fault tests against a cluster it can restart (.ci/pg-cluster)"
            );
            eprintln!(
                "SKIPPED: {FOLDER_VAR} is not set; set it to the folder given to `.ci/pg-cluster start`"
            );
            None
        }
    }
}

/// `url` with `application_name=name`, so that a test can find its store's connections in
/// `pg_stat_activity` (the store sets `opossum` only when the URL names none).
pub fn with_application_name(url: &str, name: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={name}")
}

/// A plain client connection of the test's own (not through the store), for administration.
pub async fn admin_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect the admin client");
    tokio::spawn(connection);
    client
}

/// Panics unless `positions` are exactly 1, 2, …, n in order.
pub fn assert_contiguous(positions: &[u64]) {
    for (i, p) in positions.iter().enumerate() {
        assert_eq!(
            *p,
            i as u64 + 1,
            "positions are not 1..=n in order: {}th is {p} (all: {positions:?})",
            i + 1
        );
    }
}

/// The unsigned integer field `field` of `event`'s JSON payload.
pub fn payload_u64(event: &opossum_core::SequencedEvent, field: &str) -> u64 {
    let value: serde_json::Value =
        serde_json::from_str(event.event.payload().as_json()).expect("the payload is JSON");
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("payload {value} has no unsigned field {field:?}"))
}

/// A small pseudo-random number (for backoffs and kill timing), different per call and
/// process; not for anything that needs real randomness.
pub fn jitter(below: u64) -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ STATE.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    // xorshift64*
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    x.wrapping_mul(0x2545_f491_4f6c_dd1d) % below.max(1)
}
