//! Damage-fuzzing of the log reader: whatever happens to the bytes of a store, opening it,
//! reading it and verifying it never panics, and every read event is either exactly the event
//! appended at that position or `verify` reports the damage. (Reads check structure and
//! positions, not hashes; the hash chain is for `verify`, the audit.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use opossum_core::{NewEvent, Payload, Query, ReadOptions, SequencedEvent};
use opossum_fs::FileEventStore;
use proptest::prelude::*;

/// One way to damage a file.
#[derive(Clone, Debug)]
enum Damage {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, len: usize },
    AppendGarbage { bytes: Vec<u8> },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..40))
            .prop_map(|(at, bytes)| Damage::Insert { at, bytes }),
        (any::<usize>(), 1..200usize).prop_map(|(at, len)| Damage::Remove { at, len }),
        prop::collection::vec(any::<u8>(), 1..300)
            .prop_map(|bytes| Damage::AppendGarbage { bytes }),
    ]
}

fn apply(path: &Path, damage: &Damage) {
    let mut bytes = fs::read(path).unwrap();
    let len = bytes.len().max(1);
    match damage {
        Damage::Flip { at, mask } => {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= mask;
            }
        }
        Damage::Truncate { at } => bytes.truncate(at % len),
        Damage::Insert { at, bytes: extra } => {
            let i = at % len;
            bytes.splice(
                i.min(bytes.len())..i.min(bytes.len()),
                extra.iter().copied(),
            );
        }
        Damage::Remove { at, len: n } => {
            let i = (at % len).min(bytes.len());
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Damage::AppendGarbage { bytes: extra } => bytes.extend_from_slice(extra),
    }
    fs::write(path, bytes).unwrap();
}

fn event(i: usize) -> NewEvent {
    NewEvent::builder(
        if i % 2 == 0 { "Even" } else { "Odd" },
        Payload::from_json(&format!(r#"{{"i":{i},"s":"x\ny\u00e9"}}"#)).unwrap(),
    )
    .tag("i", i.to_string())
    .tag("group", (i % 3).to_string())
    .build()
    .unwrap()
}

/// Which files to damage.
#[derive(Clone, Copy, Debug)]
enum Target {
    Segment,
    Anchor,
    Snapshot,
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn damaged_stores_never_panic_or_invent_events(
        batches in prop::collection::vec(1..4usize, 1..8),
        target in prop_oneof![Just(Target::Segment), Just(Target::Anchor), Just(Target::Snapshot)],
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("s");
        let appended: Vec<SequencedEvent>;
        {
            let store = FileEventStore::open(&folder).unwrap();
            let mut i = 0;
            for n in batches {
                let events: Vec<NewEvent> = (i..i + n).map(event).collect();
                i += n;
                store.append_blocking(events, None).unwrap();
            }
            appended = store.read_blocking(&Query::all(), ReadOptions::new()).unwrap();
            store.close().unwrap();
        }
        let store_dir = dir.path().join("s");
        let file = match target {
            Target::Segment => store_dir.join("events/00000000000000000001.jsonl"),
            Target::Anchor => store_dir.join("head.json"),
            Target::Snapshot => store_dir.join("index/snapshot.bin"),
        };
        for d in &damages {
            apply(&file, d);
        }

        // Whatever the damage: no panic, and anything read is the appended event at its own
        // position, unless verify reports the damage.
        let intact = opossum_fs::verify_folder(&store_dir).unwrap().is_intact();
        if let Ok(store) = FileEventStore::open(&folder) {
            for query in [Query::all(), Query::from_event_types(["Even"]).unwrap()] {
                if let Ok(events) = store.read_blocking(&query, ReadOptions::new()) {
                    for e in events {
                        let original = appended.get((e.position.get() - 1) as usize);
                        prop_assert!(
                            original == Some(&e) || !intact,
                            "read {:?} where {:?} was appended, and verify saw nothing", e, original
                        );
                    }
                }
            }
            let _ = store.read_last_blocking(&Query::all());
            let _ = store.verify();
        }
    }
}
