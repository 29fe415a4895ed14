//! The DCB conformance suite against the in-memory reference store.

use opossum_core::InMemoryEventStore;

opossum_testkit::dcb_conformance_tests!(InMemoryEventStore::new);
