//! `opossum migrate DIR URL`: a folder store copied into a real PostgreSQL server, positions,
//! metadata and hashes kept, verified; continued after more appends; refused into a schema that
//! holds another history.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod support;

use opossum_core::{EventStore, Query, ReadOptions};
use opossum_fs::FileEventStore;
use opossum_postgres::{PgEventStore, PgOptions};
use support::{TestResult, arg, run, run_json, seeded_store};

const URL_VAR: &str = "OPOSSUM_TEST_DATABASE_URL";

/// The test database, or `None` after saying it skipped (a failure under `CI=true`).
fn database_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{URL_VAR} is not set: CI must run the migration test against a real server"
            );
            eprintln!("SKIPPED: {URL_VAR} is not set");
            None
        }
    }
}

#[test]
fn a_folder_store_moves_into_postgres_with_its_positions_and_hashes() -> TestResult {
    let Some(url) = database_url() else {
        return Ok(());
    };
    let schema = format!("migrate_{}", std::process::id());
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 2_345);

    let (code, report) = run_json(&["migrate", arg(&dir), &url, "--schema", &schema]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["copied"], 2_345);
    assert_eq!(report["already_there"], 0);
    assert_eq!(report["verified"], true);
    let (_, verified) = run_json(&["verify", arg(&dir)]);
    assert_eq!(report["postgres_head_hash"], verified["head_hash"]);

    // What the application reads is the same from both stores.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let pg = PgEventStore::connect(&url, PgOptions::new().schema(schema.clone())).await?;
        let folder =
            FileEventStore::open_with(&dir, opossum_fs::StoreOptions::new().read_only(true))?;
        let a = pg.read(&Query::all(), ReadOptions::new()).await?;
        let b = folder.read(&Query::all(), ReadOptions::new()).await?;
        assert_eq!(a, b);
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;

    // Run again after more appends: only what is new is copied.
    let store = FileEventStore::open(&dir)?;
    store.append_blocking((2_346..=2_400).map(support::event).collect(), None)?;
    drop(store);
    let (code, report) = run_json(&["migrate", arg(&dir), &url, "--schema", &schema]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["already_there"], 2_345);
    assert_eq!(report["copied"], 55);
    assert_eq!(report["head"], 2_400);

    // Another store's history is refused, and nothing is copied.
    let other = seeded_store(tmp.path(), "other", 10);
    let output = run(&["migrate", arg(&other), &url, "--schema", &schema]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("other events"));

    runtime.block_on(async {
        let pg = PgEventStore::connect(&url, PgOptions::new().schema(schema)).await?;
        assert_eq!(pg.head().await?.map(|p| p.get()), Some(2_400));
        pg.drop_schema().await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}

#[test]
fn sealed_personal_data_moves_with_its_keys_and_forgotten_subjects_stay_forgotten() -> TestResult {
    use std::sync::Arc;

    use opossum_core::records::{KeyStore, Records};
    use opossum_core::{Metadata, NewEvent, Payload, Timestamp};
    use opossum_fs::FileKeyStore;

    let Some(url) = database_url() else {
        return Ok(());
    };
    let schema = format!("migrate_keys_{}", std::process::id());
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("school");
    let registered = |id: &str, email: &str| {
        NewEvent::builder(
            "StudentRegistered",
            Payload::from_json(&format!(r#"{{"id":"{id}","email":"{email}"}}"#)).unwrap(),
        )
        .tag("studentId", id)
        .personal_data(id, ["email"])
        .build()
        .unwrap()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let folder = Records::new(FileEventStore::open(&dir)?)
            .with_key_store(Arc::new(FileKeyStore::for_store(&dir)));
        folder
            .append(vec![registered("s-1", "ada@example.org")], None)
            .await?;
        folder
            .append(vec![registered("s-2", "bo@example.org")], None)
            .await?;
        let mut by = Metadata::at(Timestamp::now());
        by.user_id = Some("dpo".into());
        folder.forget("s-2", "request 5", by).await?;
        folder.into_inner().close()?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;

    let (code, report) = run_json(&["migrate", arg(&dir), &url, "--schema", &schema]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["copied"], 3);
    assert_eq!(
        (
            report["keys_copied"].as_u64(),
            report["keys_destroyed"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // Again: nothing new to copy, the keys are there already.
    let (code, again) = run_json(&["migrate", arg(&dir), &url, "--schema", &schema]);
    assert_eq!(code, 0, "{again}");
    assert_eq!(
        (
            again["keys_copied"].as_u64(),
            again["keys_destroyed"].as_u64()
        ),
        (Some(0), Some(0))
    );

    runtime.block_on(async {
        let pg =
            Arc::new(PgEventStore::connect(&url, PgOptions::new().schema(schema.clone())).await?);
        let keys: Arc<dyn KeyStore> = pg.clone();
        let records = Records::new(Arc::clone(&pg)).with_key_store(keys);
        let read = records.read(&Query::all(), ReadOptions::new()).await?;
        assert!(
            read[0]
                .event
                .payload()
                .as_json()
                .contains("ada@example.org")
        );
        assert!(read[1].is_erased());
        assert!(!read[1].event.payload().as_json().contains("bo@example.org"));
        assert!(pg.get("s-2").await?.is_none());
        drop(records);
        Arc::try_unwrap(pg)
            .map_err(|_| "the store is still shared")?
            .drop_schema()
            .await?;
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
