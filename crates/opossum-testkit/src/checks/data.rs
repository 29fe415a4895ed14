//! Tags, type names, payloads and metadata are data: they round-trip exactly and never collide.

use opossum_core::{EventStore, Metadata, NewEvent, Payload, Query, ReadOptions, Tag, Timestamp};

use crate::fixtures::{
    EventRecord, event, numbered, positions, records, tag, tags_query, types_query,
};

/// Tags that a store encoding tags as text (file names, joined keys, case-folded or normalised
/// strings) would be tempted to confuse. Each pair must stay two different tags.
const LOOK_ALIKE_TAGS: &[(&str, &str)] = &[
    ("a_b", "c"),
    ("a", "b_c"),
    ("a", "b"),
    ("x/y", "v"),
    ("x_y", "v"),
    ("x", "y/v"),
    ("x\\y", "v"),
    ("Key", "v"),
    ("key", "v"),
    ("KEY", "v"),
    ("k", "a:b"),
    ("k:a", "b"),
    ("k", "a=b"),
    ("k=a", "b"),
    ("k", ""),
    ("k", " "),
    ("k", "v"),
    ("k", "v "),
    ("k", "V"),
    ("k", "."),
    ("k", ".."),
    ("k", "x%2Fy"),
    ("k", "x/y"),
    // "é" precomposed (NFC) and as "e" plus a combining accent (NFD).
    ("k", "\u{e9}"),
    ("k", "e\u{301}"),
];

/// Look-alike tags are distinct: each finds exactly its own event.
pub async fn look_alike_tags_never_collide<S: EventStore>(store: S) {
    let events: Vec<NewEvent> = (1..)
        .zip(LOOK_ALIKE_TAGS)
        .map(|(n, &(k, v))| numbered("Tagged", &[(k, v)], n))
        .collect();
    store.append(events.clone(), None).await.expect("append");

    for (p, (&(k, v), appended)) in (1..).zip(LOOK_ALIKE_TAGS.iter().zip(&events)) {
        let found = store
            .read(&tags_query(&[(k, v)]), ReadOptions::new())
            .await
            .expect("read");
        assert_eq!(
            records(&found),
            [EventRecord::expected(p, appended)],
            "tag {k:?}={v:?} must match only its own event"
        );
        let last = store
            .read_last(&tags_query(&[(k, v)]))
            .await
            .expect("read_last");
        assert_eq!(
            last.map(|e| e.position.get()),
            Some(p),
            "read_last of {k:?}={v:?}"
        );
    }
}

/// Keys and values holding path characters, spaces, quotes and unicode round-trip exactly, in
/// order, and each one finds its event.
pub async fn awkward_tag_text_round_trips<S: EventStore>(store: S) {
    let awkward: &[(&str, &str)] = &[
        ("path", "/etc/../passwd"),
        ("windows", "C:\\Users\\..\\x"),
        ("with space", " leading and trailing "),
        ("unicode 🦫", "Grüße — 日本語 ☃"),
        ("colon:key", "a:b:c"),
        ("dots..", ".."),
        ("empty", ""),
        ("quote\"", "it's \"quoted\""),
        ("json", "{\"a\":[1,2]}"),
        ("escape", "\\n is not a newline"),
        ("*", "?[]<>|"),
        ("CON", "NUL"),
    ];
    let decoy = event(
        "Decoy",
        &[("path", "/etc/passwd"), ("windows", "C:/Users/x")],
    );
    let subject = event("Awkward", awkward);
    store
        .append(vec![decoy, subject.clone()], None)
        .await
        .expect("append");

    let stored = store
        .read(&types_query(&["Awkward"]), ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(records(&stored), [EventRecord::expected(2, &subject)]);

    for &(k, v) in awkward {
        let found = store
            .read(&tags_query(&[(k, v)]), ReadOptions::new())
            .await
            .expect("read");
        assert_eq!(positions(&found), [2], "tag {k:?}={v:?}");
    }
    let all_of_them = store
        .read(&tags_query(awkward), ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(positions(&all_of_them), [2]);
}

/// Type names are exact, case-sensitive data, whatever characters they hold.
pub async fn event_type_names_are_exact<S: EventStore>(store: S) {
    let names = [
        "Course/Created",
        "Course_Created",
        "course/created",
        "CourseCreated",
        "Course Created",
        "..",
        "C:\\x",
        "Ünïcödé 类型 🦫",
    ];
    let events: Vec<NewEvent> = names.iter().map(|t| event(t, &[])).collect();
    store.append(events.clone(), None).await.expect("append");
    for (p, (name, appended)) in (1..).zip(names.iter().zip(&events)) {
        let found = store
            .read(&types_query(&[name]), ReadOptions::new())
            .await
            .expect("read");
        assert_eq!(
            records(&found),
            [EventRecord::expected(p, appended)],
            "type {name:?} must match only its own event"
        );
    }
}

/// Payload texts a store that re-encodes JSON would change: key order, spacing, escapes, number
/// spellings.
const PAYLOADS: &[&str] = &[
    "{}",
    "[]",
    "null",
    "true",
    "0",
    "-1.5e-7",
    "1.0",
    "1E2",
    "12345678901234567890123456789",
    r#""just a string""#,
    r#"{"b":1,"a":2}"#,
    r#"{"a" : 1 , "b" : [ 1 , 2 ] }"#,
    r#"{"s":"line\nbreak\ttab \"quote\" \\ backslash \u00e9 \ud83e\udd9b \/"}"#,
    r#"{"unicode":"Grüße 🦫 日本語","empty":"","nested":{"a":{"b":[{"c":null}]}}}"#,
];

/// Payloads round-trip byte for byte.
pub async fn payloads_round_trip_byte_for_byte<S: EventStore>(store: S) {
    let events: Vec<NewEvent> = PAYLOADS
        .iter()
        .map(|p| {
            let payload = Payload::from_json(p).expect("test payload must be JSON");
            NewEvent::builder("Payload", payload)
                .build()
                .expect("event")
        })
        .collect();
    store.append(events, None).await.expect("append");

    let stored = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(stored.len(), PAYLOADS.len());
    for (text, got) in PAYLOADS.iter().zip(&stored) {
        assert_eq!(
            got.event.payload().as_json(),
            *text,
            "payload must be stored verbatim"
        );
    }
    let last = store
        .read_last(&Query::all())
        .await
        .expect("read_last")
        .expect("an event");
    assert_eq!(last.event.payload().as_json(), PAYLOADS[PAYLOADS.len() - 1]);
}

/// A timestamp to the nanosecond; panics when out of range.
fn at(second: i64, nanosecond: i32) -> Timestamp {
    Timestamp::new(second, nanosecond).expect("test timestamp must be in range")
}

/// Metadata — timestamp to the nanosecond, every optional id and free fields — round-trips.
pub async fn metadata_round_trips<S: EventStore>(store: S) {
    let full = Metadata {
        timestamp: at(1_700_000_000, 123_456_789),
        correlation_id: Some("corr-1/2:3".to_owned()),
        causation_id: Some("cause \\ ünï 🦫".to_owned()),
        operation_id: Some(String::new()),
        user_id: Some("user@example.org".to_owned()),
        fields: [
            ("reason", "correction: \"typo\" ünï"),
            ("host", "PC-07"),
            ("client", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    };
    let metadata = [
        full,
        Metadata::at(at(0, 1)),
        Metadata::at(at(4_102_444_800, 0)),
        Metadata::at(at(-86_400, 500)),
        Metadata {
            user_id: Some("only the user".to_owned()),
            ..Metadata::at(at(1_234_567_890, 999_999_999))
        },
    ];
    let events: Vec<NewEvent> = metadata
        .iter()
        .map(|m| {
            let payload = Payload::from_json("{}").expect("json");
            let builder = NewEvent::builder("Timed", payload).metadata(m.clone());
            builder.build().expect("test metadata must be valid")
        })
        .collect();
    store.append(events, None).await.expect("append");

    let stored = store
        .read(&Query::all(), ReadOptions::new())
        .await
        .expect("read");
    let got: Vec<&Metadata> = stored.iter().map(|e| e.event.metadata()).collect();
    let want: Vec<&Metadata> = metadata.iter().collect();
    assert_eq!(got, want);
}

/// An event with 1,000 tags is stored whole and found by any one of them.
pub async fn event_with_a_thousand_tags_is_found_by_each<S: EventStore>(store: S) {
    let tags: Vec<Tag> = (0..1000)
        .map(|i| tag(&format!("k{i}"), &format!("v{i}")))
        .collect();
    let before = event("Before", &[("k0", "v0")]);
    let many = NewEvent::builder("ManyTags", Payload::from_json("{}").expect("json"))
        .tags(tags.clone())
        .build()
        .expect("event");
    let after = event("After", &[("k999", "v999"), ("k1000", "v1000")]);
    store.append(vec![before], None).await.expect("append");
    store
        .append(vec![many.clone()], None)
        .await
        .expect("append");
    store.append(vec![after], None).await.expect("append");

    let stored = store
        .read(&types_query(&["ManyTags"]), ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(
        records(&stored),
        [EventRecord::expected(2, &many)],
        "all 1,000 tags, in order"
    );

    let cases = [
        (tags_query(&[("k0", "v0")]), vec![1, 2]),
        (tags_query(&[("k1", "v1")]), vec![2]),
        (tags_query(&[("k500", "v500")]), vec![2]),
        (tags_query(&[("k999", "v999")]), vec![2, 3]),
        (tags_query(&[("k1000", "v1000")]), vec![3]),
        (tags_query(&[("k1", "v1"), ("k998", "v998")]), vec![2]),
        (tags_query(&[("k1", "v2")]), vec![]),
    ];
    for (query, expected) in cases {
        let found = store.read(&query, ReadOptions::new()).await.expect("read");
        assert_eq!(positions(&found), expected, "{query:?}");
    }
    for i in (0..1000).step_by(37) {
        let t = &tags[i];
        let found = store
            .read_last(&Query::from_tags([t.clone()]).expect("query"))
            .await
            .expect("read_last");
        let p = found.map(|e| e.position.get());
        // Event 3 carries k999 too, and is newer.
        let want = if i == 999 { 3 } else { 2 };
        assert_eq!(p, Some(want), "read_last of {t:?}");
    }
}

/// A payload of about 3 MB round-trips byte for byte.
pub async fn three_megabyte_payload_round_trips<S: EventStore>(store: S) {
    let chunk = "0123456789 abcdefghijklmnopqrstuvwxyz \\\" Grüße 🦫 ";
    let mut blob = String::with_capacity(3 * 1024 * 1024 + chunk.len());
    let mut i = 0u64;
    while blob.len() < 3 * 1024 * 1024 {
        blob.push_str(chunk);
        blob.push_str(&i.to_string());
        i += 1;
    }
    let text = format!(r#"{{"blob":"{blob}","chunks":{i}}}"#);
    let payload = Payload::from_json(&text).expect("the blob is valid JSON");
    let big = NewEvent::builder("Big", payload)
        .tag("size", "3MB")
        .build()
        .expect("event");

    store
        .append(vec![event("Small", &[])], None)
        .await
        .expect("append");
    store.append(vec![big], None).await.expect("append");
    store
        .append(vec![event("Small", &[])], None)
        .await
        .expect("append");

    let stored = store
        .read(&types_query(&["Big"]), ReadOptions::new())
        .await
        .expect("read");
    assert_eq!(positions(&stored), [2]);
    let got = stored[0].event.payload().as_json();
    // Compare without printing megabytes on failure.
    assert!(
        got == text,
        "a {}-byte payload came back as {} bytes, different",
        text.len(),
        got.len()
    );

    let by_tag = store
        .read_last(&tags_query(&[("size", "3MB")]))
        .await
        .expect("read_last");
    let by_tag = by_tag.expect("the big event is tagged");
    assert!(
        by_tag.event.payload().as_json() == text,
        "read_last must return the same payload"
    );
    let newest = store
        .read(&Query::all(), ReadOptions::new().descending().limit(2))
        .await
        .expect("read");
    assert_eq!(positions(&newest), [3, 2]);
}
