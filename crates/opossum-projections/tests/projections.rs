//! The projection store: apply and delete semantics, related events, tag queries (also after a
//! restart), keys that are not file names, crash replay, failure isolation, and validation.
//! Driven by `catch_up`, so nothing here depends on timing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use opossum_core::{EventStore, InMemoryEventStore, NewEvent, Payload, Position, Tag};
use opossum_projections::{
    BoxError, Error, Page, Projection, ProjectionManager, ProjectionOptions,
};
use support::*;

fn memory_store() -> Arc<dyn EventStore> {
    Arc::new(InMemoryEventStore::new())
}

#[tokio::test]
async fn apply_creates_updates_and_deletes_instances() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = memory_store();
    let manager = manager(&store, options(dir.path()));
    append(
        &store,
        vec![registered("s-1", "Ada"), registered("s-2", "Grace")],
    )
    .await;
    append(
        &store,
        vec![course("c-1", "Rust", 2), enrolled("c-1", "s-1")],
    )
    .await;
    let head = append(&store, vec![left("s-2")]).await;

    let report = manager.catch_up().await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        report.events_applied,
        4 + 2,
        "Students consumes 4 events, CourseDetails 2"
    );

    let students = manager.store::<Students>()?;
    assert_eq!(
        students.get("s-1")?,
        Some(Student {
            id: "s-1".into(),
            name: "Ada".into(),
            courses: 1
        })
    );
    assert_eq!(
        students.get("s-2")?,
        None,
        "returning None deletes the instance"
    );
    assert_eq!(students.get("nobody")?, None);
    assert_eq!(students.get_all()?.len(), 1);
    assert_eq!(
        students.query(|s| s.courses == 1)?.len(),
        1,
        "query filters with a predicate"
    );
    assert_eq!(manager.checkpoint("Students")?, Some(head));
    assert_eq!(manager.checkpoint("CourseDetails")?, Some(head));

    // States are human-readable JSON lines: a record per instance, a deletion, a commit.
    let lines = live_lines(dir.path(), "Students");
    assert!(
        lines[0].starts_with("{\"opossum_projection\":1,"),
        "{lines:?}"
    );
    let ada = lines
        .iter()
        .find(|l| l.contains("\"key\":\"s-1\""))
        .unwrap();
    assert!(ada.contains("\"name\":\"Ada\""), "{ada}");
    let deletion = lines
        .iter()
        .find(|l| l.contains("\"key\":\"s-2\""))
        .unwrap();
    assert!(deletion.contains("\"deleted\":true"), "{deletion}");
    assert!(!deletion.contains("Grace"), "{deletion}");
    let commit = lines.last().unwrap();
    assert!(
        commit.starts_with(&format!("{{\"checkpoint\":{},", head.get())),
        "{commit}"
    );

    // A second catch-up has nothing to do.
    assert_eq!(manager.catch_up().await.events_applied, 0);
    append(&store, vec![registered("s-3", "Linus")]).await;
    assert_eq!(manager.catch_up().await.events_applied, 1);
    assert_eq!(students.count()?, 2);
    let generation = live_generation(dir.path(), "Students").unwrap();
    assert_eq!(
        projection_files(dir.path(), "Students"),
        [
            "current.json".to_owned(),
            format!("gen-{generation:06}.jsonl")
        ],
        "one file per generation, whatever the number of instances"
    );
    Ok(())
}

#[tokio::test]
async fn related_events_enrich_and_only_look_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = memory_store();
    let manager = manager(&store, options(dir.path()));
    append(
        &store,
        vec![registered("s-1", "Ada"), course("c-1", "Rust", 3)],
    )
    .await;
    append(&store, vec![enrolled("c-1", "s-1")]).await;
    // Enrolled before registering: the enrolment cannot see the later registration.
    append(
        &store,
        vec![enrolled("c-1", "s-2"), registered("s-2", "Grace")],
    )
    .await;
    assert!(manager.catch_up().await.is_success());

    let courses = manager.store::<CourseDetails>()?;
    let course = courses.get("c-1")?.unwrap();
    assert_eq!(course.students, ["Ada", "?"]);

    // A rebuild reads the related events the same way, whatever was appended since.
    manager.rebuilder().rebuild("CourseDetails").await?;
    assert_eq!(courses.get("c-1")?.unwrap().students, ["Ada", "?"]);
    Ok(())
}

#[tokio::test]
async fn tag_queries_match_values_in_any_case_and_survive_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = memory_store();
    let manager = manager(&store, options(dir.path()));
    append(
        &store,
        vec![
            course("c-1", "Rust", 1),
            course("c-2", "Go", 2),
            course("c-3", "Zig", 1),
            registered("s-1", "Ada"),
        ],
    )
    .await;
    append(&store, vec![enrolled("c-1", "s-1"), enrolled("c-2", "s-1")]).await;
    assert!(manager.catch_up().await.is_success());

    let names = |courses: Vec<Course>| courses.into_iter().map(|c| c.id).collect::<Vec<_>>();
    let all = Page::all();
    let is_full = |v: &str| Tag::new("IsFull", v).unwrap();
    let courses = manager.store::<CourseDetails>()?;
    assert_eq!(
        names(courses.query_by_tag(&is_full("True"), &all)?.into_states()),
        ["c-1"]
    );
    assert_eq!(
        names(courses.query_by_tag(&is_full("true"), &all)?.into_states()),
        ["c-1"]
    );
    assert_eq!(
        names(courses.query_by_tag(&is_full("FALSE"), &all)?.into_states()),
        ["c-2", "c-3"]
    );
    let one = Tag::new("size", "1")?;
    assert_eq!(
        names(
            courses
                .query_by_tags(&[is_full("false"), one.clone()], &all)?
                .into_states()
        ),
        ["c-2"],
        "tags are ANDed"
    );
    assert!(
        courses
            .query_by_tag(&Tag::new("isfull", "true")?, &all)?
            .items
            .is_empty(),
        "keys match exactly"
    );
    assert!(matches!(
        courses.query_by_tags(&[], &all),
        Err(Error::EmptyTagQuery)
    ));
    drop(courses);
    drop(manager);

    // Reopen: the index is read back from the file, nothing needs rebuilding or replaying.
    let manager = support::manager(&store, options(dir.path()));
    let courses = manager.store::<CourseDetails>()?;
    assert_eq!(
        names(courses.query_by_tag(&is_full("TRUE"), &all)?.into_states()),
        ["c-1"]
    );
    let students = manager.store::<Students>()?;
    assert_eq!(
        students
            .query_by_tag(&Tag::new("active", "yes")?, &all)?
            .items
            .len(),
        1
    );

    // The index follows changes: c-2 fills up, and one student leaves.
    append(
        &store,
        vec![registered("s-2", "Grace"), enrolled("c-2", "s-2")],
    )
    .await;
    append(&store, vec![left("s-1")]).await;
    assert!(manager.catch_up().await.is_success());
    assert_eq!(
        names(courses.query_by_tag(&is_full("True"), &all)?.into_states()),
        ["c-1", "c-2"]
    );
    assert_eq!(
        names(
            courses
                .query_by_tags(&[is_full("false"), one], &all)?
                .into_states()
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        students
            .query_by_tag(&Tag::new("active", "YES")?, &all)?
            .into_states()
            .into_iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        ["s-2"]
    );
    Ok(())
}

/// A projection keyed by the payload's `key` field, to try keys that are not file names.
struct ByKey;

impl Projection for ByKey {
    type State = String;
    fn name(&self) -> &str {
        "ByKey"
    }
    fn event_types(&self) -> Vec<&str> {
        vec!["Keyed"]
    }
    fn key(&self, event: &opossum_core::SequencedEvent) -> Option<String> {
        event
            .event
            .payload()
            .decode::<(String, String)>()
            .ok()
            .map(|(k, _)| k)
    }
    fn apply(
        &self,
        _state: Option<String>,
        event: &opossum_core::SequencedEvent,
        _related: &[opossum_core::SequencedEvent],
    ) -> Result<Option<String>, BoxError> {
        Ok(Some(event.event.payload().decode::<(String, String)>()?.1))
    }
}

#[tokio::test]
async fn any_utf8_key_round_trips_without_collisions() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = memory_store();
    let manager = options(dir.path())
        .builder(Arc::clone(&store))
        .register(ByKey)
        .open()?;
    let long = "L".repeat(500);
    let keys = [
        "plain",
        "Plain",
        "PLAIN",
        "a/b",
        "a\\b",
        "..",
        ".",
        "",
        " ",
        "CON",
        "con",
        "nul.txt",
        "x:y*z?",
        "ünï ✓",
        "%41",
        "^a",
        &long,
    ];
    let events = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            NewEvent::builder(
                "Keyed",
                Payload::from_value(&(k.to_string(), format!("value {i}"))).unwrap(),
            )
            .build()
            .unwrap()
        })
        .collect();
    append(&store, events).await;
    assert!(manager.catch_up().await.is_success());
    let values = manager.store::<ByKey>()?;
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(values.get(key)?, Some(format!("value {i}")), "{key:?}");
    }
    assert_eq!(values.count()?, keys.len(), "no two keys collide");
    let listed: Vec<String> = values.entries()?.into_iter().map(|(k, _)| k).collect();
    let mut sorted: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    sorted.sort();
    assert_eq!(listed, sorted, "keys come back as they were, ordered");
    assert_eq!(projection_files(dir.path(), "ByKey").len(), 2);
    Ok(())
}

#[tokio::test]
async fn replay_after_a_crash_before_the_checkpoint_applies_nothing_twice() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = memory_store();
    let first = append(
        &store,
        vec![registered("s-1", "Ada"), registered("s-2", "Grace")],
    )
    .await;
    {
        let manager = manager(&store, options(dir.path()));
        assert!(manager.catch_up().await.is_success());
    }
    // A batch whose records reached the file but whose commit line did not: simulated by
    // cutting the commit line off after the batch.
    let file = live_file(dir.path(), "Students");
    append(
        &store,
        vec![
            course("c-1", "Rust", 9),
            enrolled("c-1", "s-1"),
            enrolled("c-1", "s-1"),
            left("s-2"),
            registered("s-3", "Linus"),
        ],
    )
    .await;
    {
        let manager = manager(&store, options(dir.path()).batch_size(100));
        assert!(manager.catch_up().await.is_success());
    }
    let text = std::fs::read_to_string(&file)?;
    let without_commit = text
        .trim_end_matches('\n')
        .rsplit_once('\n')
        .map(|(kept, _)| format!("{kept}\n"))
        .unwrap();
    assert!(without_commit.ends_with("}\n"));
    std::fs::write(&file, without_commit)?;

    let manager = manager(&store, options(dir.path()));
    assert_eq!(manager.checkpoint("Students")?, Some(first));
    assert!(manager.catch_up().await.is_success());
    let students = manager.store::<Students>()?;
    assert_eq!(
        students.get("s-1")?.unwrap().courses,
        2,
        "enrolments applied once"
    );
    assert_eq!(students.get("s-2")?, None, "the deletion holds");
    assert_eq!(students.get("s-3")?.unwrap().name, "Linus");
    Ok(())
}

#[tokio::test]
async fn a_failing_projection_does_not_stop_the_others() -> TestResult {
    for panics in [false, true] {
        let dir = tempfile::tempdir()?;
        let store = memory_store();
        let manager = options(dir.path())
            .builder(Arc::clone(&store))
            .register(Fragile { panics })
            .register(Students)
            .open()?;
        append(
            &store,
            vec![registered("s-1", "Ada"), enrolled("c-1", "s-1")],
        )
        .await;
        let before = append(&store, vec![enrolled("c-2", "s-1")]).await;
        let poison = append(&store, vec![poisoned_enrolment("c-1", "s-1")]).await;
        let head = append(&store, vec![enrolled("c-1", "s-1")]).await;

        let report = manager.catch_up().await;
        assert_eq!(report.failures.len(), 1, "{report:?}");
        let failure = &report.failures[0];
        assert_eq!(
            (failure.name.as_str(), failure.position),
            ("Fragile", Some(poison))
        );
        assert!(failure.reason.contains("poisoned enrolment"), "{failure:?}");

        // The events before the poison are applied and checkpointed …
        assert_eq!(manager.checkpoint("Fragile")?, Some(before));
        assert_eq!(manager.store::<Fragile>()?.get("c-1")?, Some(1));
        // … and the other projection is current.
        assert_eq!(manager.checkpoint("Students")?, Some(head));
        assert_eq!(manager.store::<Students>()?.get("s-1")?.unwrap().courses, 4);

        let status = manager.status();
        assert_eq!(
            status[0].failure.as_ref().map(|f| f.position),
            Some(Some(poison))
        );
        assert_eq!(status[1].failure, None);
        assert!(matches!(
            manager.wait_for("Fragile", head).await,
            Err(Error::Failing { position, .. }) if position == poison
        ));
        manager.wait_for("Students", head).await?;
        // Retrying fails at the same event and applies nothing twice.
        let again = manager.catch_up().await;
        assert_eq!(again.failures.len(), 1);
        assert_eq!(manager.store::<Fragile>()?.get("c-1")?, Some(1));
    }
    Ok(())
}

#[tokio::test]
async fn registration_options_and_the_folder_lock_are_checked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = memory_store();

    let bad = ProjectionOptions::new()
        .batch_size(0)
        .max_concurrent_rebuilds(0);
    match ProjectionManager::builder(Arc::clone(&store), dir.path().join("projections"))
        .options(bad)
        .register(Students)
        .open()
    {
        Err(Error::InvalidOptions { problems }) => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => panic!("expected invalid options, got {other:?}"),
    }

    struct Shouting;
    impl Projection for Shouting {
        type State = u8;
        fn name(&self) -> &str {
            "STUDENTS"
        }
        fn event_types(&self) -> Vec<&str> {
            vec!["X"]
        }
        fn key(&self, _: &opossum_core::SequencedEvent) -> Option<String> {
            None
        }
        fn apply(
            &self,
            s: Option<u8>,
            _: &opossum_core::SequencedEvent,
            _: &[opossum_core::SequencedEvent],
        ) -> Result<Option<u8>, BoxError> {
            Ok(s)
        }
    }
    let duplicate = options(dir.path())
        .builder(Arc::clone(&store))
        .register(Students)
        .register(Shouting)
        .open();
    assert!(matches!(duplicate, Err(Error::DuplicateProjection { .. })));

    let manager = manager(&store, options(dir.path()));
    assert!(matches!(
        manager.store_by_name::<Student>("Nope"),
        Err(Error::UnknownProjection { .. })
    ));
    assert!(matches!(
        manager.store_by_name::<u64>("Students"),
        Err(Error::StateTypeMismatch { .. })
    ));
    // By type: the state type is the compiler's business; only registration is checked.
    assert!(manager.store::<Students>().is_ok());
    let unregistered = manager.store::<Fragile>().unwrap_err();
    assert!(
        matches!(&unregistered, Error::UnknownProjection { name, .. } if name.ends_with("Fragile")),
        "{unregistered}"
    );
    assert_eq!(unregistered.kind(), opossum_core::ErrorKind::NotFound);
    assert_eq!(manager.projections(), ["Students", "CourseDetails"]);

    let second = options(dir.path())
        .builder(Arc::clone(&store))
        .register(Students)
        .open();
    assert!(matches!(second, Err(Error::Locked { .. })), "{second:?}");
    drop(manager);
    drop(support::manager(&store, options(dir.path())));
    Ok(())
}

#[tokio::test]
async fn checkpoints_advance_past_events_a_projection_does_not_consume() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = memory_store();
    let manager = manager(&store, options(dir.path()));
    append(&store, vec![registered("s-1", "Ada")]).await;
    let head = append(
        &store,
        (0..20)
            .map(|i| {
                NewEvent::builder("Unrelated", Payload::from_json(&i.to_string()).unwrap())
                    .build()
                    .unwrap()
            })
            .collect(),
    )
    .await;
    assert!(manager.catch_up().await.is_success());
    assert_eq!(manager.checkpoint("CourseDetails")?, Some(head));
    assert_eq!(manager.checkpoint("Students")?, Some(head));
    assert_eq!(manager.checkpoint("Students")?.map(Position::get), Some(21));
    Ok(())
}

#[tokio::test]
async fn paging_returns_every_instance_once_while_writes_and_compactions_go_on() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = memory_store();
    let mut opts = options(dir.path());
    opts.options = opts.options.compaction_min_garbage(0);
    let manager = manager(&store, opts);
    let students: Vec<NewEvent> = (0..50)
        .map(|i| registered(&format!("s-{i:02}"), &format!("name-{i}")))
        .collect();
    append(&store, students).await;
    assert!(manager.catch_up().await.is_success());
    let store_of = manager.store::<Students>()?;
    let first = live_generation(dir.path(), "Students").unwrap();

    let mut page = Page::first(8);
    let mut seen = Vec::new();
    let mut step = 0;
    loop {
        let paged = store_of.list(&page)?;
        assert!(paged.items.len() <= 8);
        seen.extend(paged.items.into_iter().map(|(k, _)| k));
        // Between pages: new students before and after the cursor, updates of everyone seen
        // so far (which compacts the file: a new generation), and one student leaves.
        step += 1;
        append(
            &store,
            vec![
                registered(&format!("a-{step}"), "new, before every s-"),
                registered(&format!("z-{step}"), "new, after every s-"),
                course(&format!("c-{step}"), "Maths", 100),
            ],
        )
        .await;
        let enrolments: Vec<NewEvent> = (0..50)
            .map(|i| enrolled(&format!("c-{step}"), &format!("s-{i:02}")))
            .collect();
        append(&store, enrolments).await;
        assert!(manager.catch_up().await.is_success());
        let Some(next) = paged.next else { break };
        page = page.after(next);
    }
    let stable: Vec<String> = seen
        .iter()
        .filter(|k| k.starts_with("s-"))
        .cloned()
        .collect();
    let expected: Vec<String> = (0..50).map(|i| format!("s-{i:02}")).collect();
    assert_eq!(
        stable, expected,
        "every student that existed throughout, exactly once"
    );
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "nobody twice");
    assert!(
        live_generation(dir.path(), "Students").unwrap() > first,
        "the file was compacted into new generations meanwhile"
    );
    // A replaced generation may still be on its way out (renamed, then deleted by a thread).
    let files: Vec<String> = projection_files(dir.path(), "Students")
        .into_iter()
        .filter(|f| !f.starts_with(".trash-"))
        .collect();
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(matches!(
        store_of.list(&Page::first(0)),
        Err(Error::InvalidPage { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn inspect_reads_the_folders_as_the_manager_left_them_without_changing_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("projections");
    assert!(opossum_projections::inspect(&root)?.is_empty());
    let store = memory_store();
    let manager = manager(&store, options(dir.path()));
    append(
        &store,
        vec![registered("s-1", "Ada"), registered("s-2", "Grace")],
    )
    .await;
    append(&store, vec![course("c-1", "Rust", 2)]).await;
    assert!(manager.catch_up().await.is_success());
    let stats = manager.stats()?;

    let before: Vec<(String, Vec<u8>)> = ["Students", "CourseDetails"]
        .iter()
        .flat_map(|p| {
            projection_files(dir.path(), p)
                .into_iter()
                .map(move |f| (*p, f))
        })
        .map(|(p, f)| {
            let bytes = std::fs::read(root.join(p).join(&f)).unwrap();
            (format!("{p}/{f}"), bytes)
        })
        .collect();
    let found = opossum_projections::inspect(&root)?;
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, vec!["CourseDetails", "Students"], "in name order");
    let students = &found[1];
    assert_eq!(students.instances, 2);
    assert_eq!(
        students.checkpoint.map(|p| p.get()),
        Some(3),
        "every event is applied"
    );
    assert!(students.generation.is_some());
    assert!(students.rebuild.is_none());
    let from_manager = stats.iter().find(|s| s.name == "Students").unwrap();
    assert_eq!(students.size_on_disk, from_manager.size_on_disk);
    assert_eq!(students.files, from_manager.files);
    assert_eq!(students.live_bytes, from_manager.live_bytes);
    assert_eq!(found[0].checkpoint.map(|p| p.get()), Some(3));
    // A folder that is not a projection's is left out.
    std::fs::create_dir(root.join("notes"))?;
    assert_eq!(opossum_projections::inspect(&root)?.len(), 2);
    let after: Vec<(String, Vec<u8>)> = before
        .iter()
        .map(|(name, _)| (name.clone(), std::fs::read(root.join(name)).unwrap()))
        .collect();
    assert_eq!(before, after);
    Ok(())
}
