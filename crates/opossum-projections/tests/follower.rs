//! A second manager on a folder that another manager maintains: it follows (reads what the
//! maintainer writes, through rebuilds), refuses to write, and its daemon takes over when the
//! maintainer goes. Two managers in one process hold the folder's lock file like two processes
//! would (the lock belongs to the open file); `processes.rs` does the same across processes.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed expectation is a test failure"
)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use opossum_core::{EventStore, InMemoryEventStore, Tag};
use opossum_projections::{Error, Page, ProjectionManager, Role};
use support::*;

const HANG_GUARD: Duration = Duration::from_secs(60);

fn follower(store: &Arc<dyn EventStore>, options: Opts) -> ProjectionManager {
    options
        .builder(Arc::clone(store))
        .register(Students)
        .register(CourseDetails)
        .open_or_follow()
        .unwrap()
}

#[tokio::test]
async fn a_second_manager_follows_and_reads_what_the_maintainer_writes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    append(
        &store,
        vec![registered("s-1", "Ada"), registered("s-2", "Bob")],
    )
    .await;
    let maintainer = manager(&store, options(dir.path()));
    assert_eq!(maintainer.role(), Role::Maintainer);

    // Nothing built yet: the follower sees empty projections, not an error.
    let following = follower(&store, options(dir.path()));
    assert_eq!(following.role(), Role::Follower);
    assert_eq!(following.checkpoint("Students")?, None);
    assert!(following.store::<Students>()?.get_all()?.is_empty());

    // `open` still refuses a folder another manager maintains.
    let refused = options(dir.path())
        .builder(Arc::clone(&store))
        .register(Students)
        .open();
    assert!(matches!(refused, Err(Error::Locked { .. })), "{refused:?}");

    assert!(maintainer.catch_up().await.is_success());
    let students = following.store::<Students>()?;
    assert_eq!(
        students.get_all()?,
        maintainer.store::<Students>()?.get_all()?
    );
    assert_eq!(students.get("s-1")?.map(|s| s.name), Some("Ada".to_owned()));
    assert_eq!(
        following.checkpoint("Students")?,
        maintainer.checkpoint("Students")?
    );

    // Updates of the live generation show at once; so do deletions and the tag index.
    let head = append(
        &store,
        vec![
            left("s-2"),
            course("c-1", "Maths", 10),
            enrolled("c-1", "s-1"),
        ],
    )
    .await;
    assert!(maintainer.catch_up().await.is_success());
    assert_eq!(students.get("s-2")?, None);
    assert_eq!(students.get("s-1")?.map(|s| s.courses), Some(1));
    let active = students
        .query_by_tag(&Tag::new("active", "yes")?, &Page::all())?
        .into_states();
    assert_eq!(
        active.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s-1"]
    );
    assert_eq!(following.checkpoint("Students")?, Some(head));
    let status = following.status();
    assert!(
        status.iter().all(|s| s.checkpoint == Some(head)),
        "{status:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_follower_applies_nothing_and_may_not_rebuild() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let _maintainer = manager(&store, options(dir.path()));
    let following = follower(&store, options(dir.path()));
    append(&store, vec![registered("s-1", "Ada")]).await;

    let report = following.catch_up().await;
    assert_eq!(report.events_applied, 0);
    assert_eq!(following.checkpoint("Students")?, None);

    let refused = following.rebuilder().rebuild("Students").await;
    assert!(
        matches!(refused, Err(Error::NotMaintainer { .. })),
        "{refused:?}"
    );
    let all = following.rebuilder().rebuild_all().await;
    assert!(all.rebuilt.is_empty());
    assert_eq!(all.failed.len(), 2, "{all:?}");
    assert!(
        all.failed
            .iter()
            .all(|f| f.reason.contains("another process maintains"))
    );
    // Nothing was written by the follower: no generation exists.
    assert!(
        !dir.path()
            .join("projections")
            .join("Students")
            .join("current.json")
            .exists()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_reads_across_the_maintainers_rebuild_and_waits_for_positions() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let events = (0..300)
        .map(|i| registered(&format!("s-{i:03}"), &format!("name-{i}")))
        .collect();
    let head = append(&store, events).await;
    let maintainer = manager(&store, options(dir.path()));
    let following = follower(&store, options(dir.path()));

    // The follower waits for a position by watching the maintainer's checkpoint.
    let waiting = {
        let following = following.clone();
        tokio::spawn(async move { following.wait_for("Students", head).await })
    };
    assert!(maintainer.catch_up().await.is_success());
    tokio::time::timeout(HANG_GUARD, waiting).await???;

    let students = following.store::<Students>()?;
    let before = students.entries()?;
    assert_eq!(before.len(), 300);

    // Rebuilds replace the generation (and delete the old one) while the follower reads, on a
    // thread of its own, as fast as it can.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = {
        let (students, done) = (students.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut reads = 0_u32;
            while !done.load(std::sync::atomic::Ordering::Acquire) || reads == 0 {
                assert_eq!(students.get_all().unwrap().len(), 300);
                assert_eq!(
                    students.get("s-123").unwrap().map(|s| s.name),
                    Some("name-123".to_owned())
                );
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..4 {
        maintainer.rebuilder().rebuild("Students").await?;
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    let reads = tokio::task::spawn_blocking(move || reading.join())
        .await?
        .map_err(|_| "the reading thread failed")?;
    assert!(reads > 0);
    assert_eq!(students.entries()?, before);
    assert_eq!(following.checkpoint("Students")?, Some(head));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_following_daemon_takes_over_when_the_maintainer_goes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    let first = append(&store, vec![registered("s-1", "Ada")]).await;
    let polling = options(dir.path()).polling_interval(Duration::from_millis(100));
    let maintainer = manager(&store, polling.clone());
    let maintaining = maintainer.start_daemon();
    tokio::time::timeout(HANG_GUARD, maintainer.wait_for("Students", first)).await??;

    let following = follower(&store, polling);
    let daemon = following.start_daemon();
    tokio::time::timeout(HANG_GUARD, following.wait_for("Students", first)).await??;
    assert_eq!(following.role(), Role::Follower);

    // The maintainer stops; the follower's daemon takes the folder over and goes on.
    maintaining.shutdown().await?;
    drop(maintainer);
    let next = append(
        &store,
        vec![registered("s-2", "Bob"), enrolled("c-9", "s-1")],
    )
    .await;
    tokio::time::timeout(HANG_GUARD, following.wait_for("Students", next)).await??;
    assert_eq!(following.role(), Role::Maintainer);
    let students = following.store::<Students>()?;
    assert_eq!(students.get("s-2")?.map(|s| s.name), Some("Bob".to_owned()));
    assert_eq!(students.get("s-1")?.map(|s| s.courses), Some(1));

    // As maintainer it may rebuild, and a new manager on the folder now follows it.
    let rebuilt = following.rebuilder().rebuild("Students").await?;
    assert_eq!(rebuilt.checkpoint, Some(next));
    assert_eq!(follower(&store, options(dir.path())).role(), Role::Follower);
    daemon.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn a_follower_reads_one_generation_while_the_maintainer_replaces_it() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn EventStore> = Arc::new(InMemoryEventStore::new());
    append(
        &store,
        vec![
            registered("s-1", "Ada"),
            registered("s-2", "Bob"),
            registered("s-3", "Cy"),
        ],
    )
    .await;
    let maintainer = manager(&store, options(dir.path()));
    assert!(maintainer.catch_up().await.is_success());
    let following = follower(&store, options(dir.path()));
    let students = following.store::<Students>()?;
    let first = live_generation(dir.path(), "Students").unwrap();

    // A page read by the follower, then the maintainer replaces the generation (a rebuild,
    // after Bob left) and deletes the old one while the follower still holds it.
    let page = students.list(&Page::first(2))?;
    assert_eq!(page.items.len(), 2);
    append(&store, vec![left("s-2")]).await;
    maintainer.rebuilder().rebuild("Students").await?;
    let second = live_generation(dir.path(), "Students").unwrap();
    assert!(second > first);
    let old_file = dir
        .path()
        .join("projections/Students")
        .join(format!("gen-{first:06}.jsonl"));
    assert!(!old_file.exists(), "the replaced generation is deleted");

    // The next page comes from the new generation, after the cursor: nobody twice, Bob gone.
    let rest = students.list(&Page::first(2).after_opt(page.next))?;
    let mut seen: Vec<String> = page.items.into_iter().map(|(k, _)| k).collect();
    seen.extend(rest.items.into_iter().map(|(k, _)| k));
    assert_eq!(
        seen,
        ["s-1", "s-2", "s-3"],
        "s-2 came with the first page, before it left"
    );
    assert!(rest.next.is_none());
    // A whole read sees exactly the new generation.
    let names: Vec<String> = students.get_all()?.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["Ada", "Cy"]);
    assert_eq!(students.count()?, 2);
    drop(maintainer);
    Ok(())
}
