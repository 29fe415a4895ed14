//! Model-based test: random operation sequences — appends with and without conditions, reads
//! with every option, `read_last`, and disconnect-and-reconnect — give exactly the results of
//! the in-memory reference store, and leave an intact hash chain.
//!
//! 24 cases by default; set `PROPTEST_CASES` for more.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use opossum_core::{
    AppendCondition, Error, InMemoryEventStore, NewEvent, Position, Query, ReadOptions,
    SequencedEvent,
};
use opossum_postgres::{PgEventStore, PgOptions};
use opossum_testkit::model::{BlockingStore, check_sequence, config, operations};
use proptest::prelude::*;
use support::SchemaGuard;

/// The PostgreSQL store under test, in a schema of its own that it can reconnect to.
struct PgSubject {
    // Declared before the guard so the store disconnects before the schema is dropped.
    store: Option<PgEventStore>,
    guard: SchemaGuard,
}

impl PgSubject {
    fn new(url: String) -> PgSubject {
        let schema = support::unique_schema("m");
        let store = PgEventStore::connect_blocking(&url, PgOptions::new().schema(schema.clone()))
            .expect("connect");
        PgSubject {
            store: Some(store),
            guard: SchemaGuard { url, schema },
        }
    }

    fn store(&self) -> &PgEventStore {
        self.store.as_ref().expect("connected between operations")
    }
}

impl BlockingStore for PgSubject {
    fn append_blocking(
        &mut self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        self.store().append_blocking(events, condition)
    }

    fn read_blocking(
        &mut self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        self.store().read_blocking(query, options)
    }

    fn read_last_blocking(&mut self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        self.store().read_last_blocking(query)
    }

    /// Disconnects, then connects to the same schema again.
    fn reopen(&mut self) -> Result<(), Error> {
        drop(self.store.take());
        let options = PgOptions::new().schema(self.guard.schema.clone());
        self.store = Some(PgEventStore::connect_blocking(&self.guard.url, options)?);
        Ok(())
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn postgres_store_matches_the_in_memory_model(ops in operations(1..40)) {
        let Some(url) = support::database_url() else {
            return Ok(());
        };
        let mut reference = InMemoryEventStore::new();
        let mut subject = PgSubject::new(url);
        check_sequence(&ops, &mut reference, &mut subject)?;
        let report = opossum_testkit::block_on(subject.store().verify()).expect("verify");
        prop_assert!(report.is_intact(), "hash chain broken: {:?}", report.problem);
        let expected_head = reference
            .read_last_blocking(&Query::all())
            .expect("the reference store never fails")
            .map(|e| e.position);
        prop_assert_eq!(report.head, expected_head);
    }
}
