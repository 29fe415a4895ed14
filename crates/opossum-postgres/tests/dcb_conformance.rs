//! The shared DCB conformance suite (`opossum-testkit`) against the PostgreSQL store: every case
//! runs on a fresh store in a schema of its own, through the `EventStore` trait only.

mod support;

opossum_testkit::dcb_conformance_tests!(support::fresh_store, when = support::available);
