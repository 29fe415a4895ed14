//! Records kept for years on PostgreSQL: required metadata refused with nothing written, the
//! store's commit time, and crypto-shredding with the keys in the database, shared by two
//! servers on one schema.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use opossum_core::records::{KeyStore, Records, forgotten_query};
use opossum_core::{
    Error, EventStore, Metadata, NewEvent, Payload, Query, ReadOptions, RequiredMetadata, Timestamp,
};
use opossum_postgres::{PgEventStore, PgOptions};
use support::{SchemaGuard, unique_schema};

fn registered(subject: &str, email: &str) -> NewEvent {
    NewEvent::builder(
        "StudentRegistered",
        Payload::from_json(&format!(r#"{{"id":"{subject}","email":"{email}"}}"#)).unwrap(),
    )
    .tag("studentId", subject)
    .user_id("registrar")
    .field("reason", "enrolment form")
    .personal_data(subject, ["email"])
    .build()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_metadata_is_refused_before_anything_is_written() {
    let Some(url) = support::database_url() else {
        return;
    };
    let schema = unique_schema("required");
    let _guard = SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let required = RequiredMetadata::new(["user_id", "reason"]).unwrap();
    let pg = PgEventStore::connect(
        &url,
        PgOptions::new().schema(schema).require_metadata(required),
    )
    .await
    .unwrap();
    let unsigned = NewEvent::builder("Checked", Payload::from_json("{}").unwrap())
        .user_id("qa")
        .build()
        .unwrap();
    let signed = NewEvent::builder("Checked", Payload::from_json("{}").unwrap())
        .user_id("qa")
        .field("reason", "weekly check")
        .build()
        .unwrap();
    assert!(matches!(
        pg.append(vec![signed.clone(), unsigned], None).await,
        Err(Error::MissingMetadata { index: 1, ref field, .. }) if field == "reason"
    ));
    assert_eq!(pg.head().await.unwrap(), None);
    let before = Timestamp::now();
    pg.append(vec![signed.clone()], None).await.unwrap();
    let after = Timestamp::now();
    let read = pg.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert_eq!(read[0].event, signed);
    let stored_at = read[0].stored_at.unwrap();
    assert!(before <= stored_at && stored_at <= after, "{stored_at}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_the_keys_and_a_forget_erases_for_both() {
    let Some(url) = support::database_url() else {
        return;
    };
    let schema = unique_schema("shred");
    let _guard = SchemaGuard {
        url: url.clone(),
        schema: schema.clone(),
    };
    let connect = || async {
        let pg = Arc::new(
            PgEventStore::connect(&url, PgOptions::new().schema(schema.clone()))
                .await
                .unwrap(),
        );
        let keys: Arc<dyn KeyStore> = pg.clone();
        Records::new(pg).with_key_store(keys)
    };
    let a = connect().await;
    let b = connect().await;
    a.append(vec![registered("s-1", "ada@example.org")], None)
        .await
        .unwrap();
    a.append(vec![registered("s-2", "bo@example.org")], None)
        .await
        .unwrap();
    // The other server opens what the first sealed.
    let seen = b.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert!(
        seen[0]
            .event
            .payload()
            .as_json()
            .contains("ada@example.org")
    );
    let raw = a
        .inner()
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap();
    assert!(
        raw.iter()
            .all(|e| !e.event.payload().as_json().contains("example.org"))
    );

    let mut by = Metadata::at(Timestamp::now());
    by.user_id = Some("dpo".into());
    let done = b.forget("s-1", "erasure request 9", by).await.unwrap();
    assert!(done.key_destroyed);
    let after = a.read(&Query::all(), ReadOptions::new()).await.unwrap();
    assert!(after[0].is_erased());
    assert!(!after[0].event.payload().as_json().contains("example.org"));
    assert!(
        after[1]
            .event
            .payload()
            .as_json()
            .contains("bo@example.org")
    );
    assert!(matches!(
        a.append(vec![registered("s-1", "again@example.org")], None)
            .await,
        Err(Error::SubjectForgotten { .. })
    ));
    assert!(a.inner().get("s-1").await.unwrap().is_none());
    let forgot = a
        .inner()
        .read_last(&forgotten_query("s-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        forgot.event.metadata().get("reason"),
        Some("erasure request 9")
    );
    assert!(a.inner().verify().await.unwrap().is_intact());
}
