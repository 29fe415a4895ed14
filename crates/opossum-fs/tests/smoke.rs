//! End-to-end basics of the file store: append, read, reopen, verify.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use opossum_core::{AppendCondition, NewEvent, Payload, Query, ReadOptions, Tag};
use opossum_fs::FileEventStore;

fn event(t: &str, tags: &[(&str, &str)]) -> NewEvent {
    tags.iter()
        .fold(
            NewEvent::builder(t, Payload::from_json(r#"{"n":1}"#).unwrap()),
            |b, (k, v)| b.tag(*k, *v),
        )
        .build()
        .unwrap()
}

#[test]
fn append_read_reopen_verify() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("s");
    {
        let store = FileEventStore::open(&folder).unwrap();
        assert!(store.recovery().is_clean(), "{:?}", store.recovery());
        let p = store
            .append_blocking(
                vec![event("A", &[("k", "1")]), event("B", &[("k", "2")])],
                None,
            )
            .unwrap();
        assert_eq!(p.get(), 2);
        let q = Query::from_tags([Tag::new("k", "2").unwrap()]).unwrap();
        let got = store.read_blocking(&q, ReadOptions::new()).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].position.get(), 2);
        let cond = AppendCondition::new(q.clone());
        let err = store
            .append_blocking(vec![event("C", &[])], Some(cond))
            .unwrap_err();
        assert!(err.is_condition_failed(), "{err}");
        store.close().unwrap();
    }
    let store = FileEventStore::open(&folder).unwrap();
    assert!(store.recovery().is_clean(), "{:?}", store.recovery());
    let all = store
        .read_blocking(&Query::all(), ReadOptions::new())
        .unwrap();
    assert_eq!(all.len(), 2);
    let last = store
        .read_last_blocking(&Query::from_event_types(["A"]).unwrap())
        .unwrap();
    assert_eq!(last.unwrap().position.get(), 1);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events_checked, 2);
}
