//! The database the tests run against: `OPOSSUM_TEST_DATABASE_URL` (`.ci/run` starts a
//! throw-away cluster and sets it). Without it a test says it skipped — and with `CI=true` it
//! fails instead, so CI can never pass by skipping.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
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
            eprintln!("SKIPPED: {URL_VAR} is not set; start a server with `.ci/pg-cluster start /tmp/opossum-pg` and export the URL it prints");
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
                if let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
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
