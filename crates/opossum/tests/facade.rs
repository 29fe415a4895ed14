//! The facade end to end: configuration sources, wiring, read-your-writes, shutdown, delete.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use opossum::{
    AppContext, AppStore, BoxError, Config, DomainEvent, Durability, Error, ErrorKind, EventStore,
    Handler, MediatorError, Message, NewEvent, Opossum, OpossumApp, OpossumBuilder, Projection,
    Query, ReadOptions, Role, SequencedEvent,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Noted {
    text: String,
}
impl DomainEvent for Noted {
    const EVENT_TYPE: &'static str = "Noted";
}

/// Every note, keyed by its `note` tag.
struct Notes;
impl Projection for Notes {
    type State = String;
    fn name(&self) -> &str {
        "Notes"
    }
    fn event_types(&self) -> Vec<&str> {
        vec![Noted::EVENT_TYPE]
    }
    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value("note").map(str::to_owned)
    }
    fn apply(
        &self,
        _: Option<String>,
        event: &SequencedEvent,
        _: &[SequencedEvent],
    ) -> Result<Option<String>, BoxError> {
        Ok(Some(event.decode::<Noted>()?.text))
    }
}

struct Note {
    key: String,
    text: String,
}
impl Message for Note {
    type Output = Result<u64, opossum::EventStoreError>;
}

struct NoteHandler {
    store: Arc<AppStore>,
}
impl Handler<Note> for NoteHandler {
    async fn handle(&self, note: Note) -> Result<u64, opossum::EventStoreError> {
        let event = NewEvent::from_typed(&Noted { text: note.text })
            .tag("note", note.key)
            .build()?;
        Ok(self.store.append(vec![event], None).await?.get())
    }
}

fn app(root: &Path) -> OpossumBuilder {
    Opossum::builder()
        .store_path(root.join("notes"))
        .durability(Durability::Eventual)
        .projection(Notes)
        .handler_with(|app: &AppContext| Ok(NoteHandler { store: app.store() }))
}

/// Sends a [`Note`] through `app`'s mediator; the position it was appended at.
async fn send(app: &OpossumApp, key: &str, text: &str) -> u64 {
    app.mediator().send(note(key, text)).await.unwrap().unwrap()
}

fn note(key: &str, text: &str) -> Note {
    Note {
        key: key.into(),
        text: text.into(),
    }
}

#[tokio::test]
async fn a_handler_appends_and_a_read_model_sees_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path())
        // A poll this slow would fail the test if the append did not wake the daemon.
        .polling_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    let notes = app.read_model::<Notes>().unwrap();
    for i in 0..5 {
        let position = app
            .mediator()
            .send(note(&format!("n{i}"), &format!("text {i}")))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(position, i + 1);
        // Read your own write, every time.
        let read = notes.read(move |s| s.get(&format!("n{i}"))).await.unwrap();
        assert_eq!(read.as_deref(), Some(format!("text {i}").as_str()));
    }
    assert_eq!(app.store().last_appended().map(|p| p.get()), Some(5));
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_closes_the_store_and_a_reopen_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let first = app(dir.path()).build().await.unwrap();
    first
        .mediator()
        .send(note("a", "kept"))
        .await
        .unwrap()
        .unwrap();
    first
        .wait_for_projections(Duration::from_secs(30))
        .await
        .unwrap();
    assert!(first.daemon_is_running());
    first.shutdown().await.unwrap();

    // The store lock and the projections lock are free again: a second app opens the folder.
    let second = app(dir.path()).build().await.unwrap();
    let events = second
        .store()
        .read(&Query::all(), ReadOptions::new())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    let notes = second.read_model::<Notes>().unwrap();
    assert_eq!(
        notes.read(|s| s.get("a")).await.unwrap().as_deref(),
        Some("kept")
    );
    assert_eq!(
        second
            .projections()
            .checkpoint("Notes")
            .unwrap()
            .map(|p| p.get()),
        Some(1)
    );
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn toml_environment_and_code_configure_the_same_app() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("notes").display().to_string();
    let from_toml = Config::from_toml_str(&format!(
        "[store]\npath = {folder:?}\ndurability = \"eventual\"\n\n\
         [projections]\nbatch_size = 10\ndurability = \"eventual\"\n"
    ))
    .unwrap();
    let from_env = Config::from_vars([
        ("OPOSSUM_STORE_PATH", folder.as_str()),
        ("OPOSSUM_STORE_DURABILITY", "eventual"),
        ("OPOSSUM_PROJECTIONS_BATCH_SIZE", "10"),
        ("OPOSSUM_PROJECTIONS_DURABILITY", "eventual"),
    ])
    .unwrap();
    let from_code = app(dir.path())
        .configure(|c| c.projections.batch_size = 10)
        .config()
        .clone();
    assert_eq!(from_toml, from_env);
    assert_eq!(from_toml, from_code);

    let built = Opossum::from_config(from_env)
        .projection(Notes)
        .build()
        .await
        .unwrap();
    assert_eq!(built.projections().options().get_batch_size(), 10);
    assert_eq!(
        built.store().file_store().map(|f| f.path().to_path_buf()),
        Some(dir.path().join("notes"))
    );
    built.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_source_is_refused_with_the_same_problems() {
    let from_code = Opossum::builder()
        .store_path("relative/a:b")
        .lock_timeout(Duration::ZERO)
        .configure(|c| c.projections.max_concurrent_rebuilds = 0)
        .build()
        .await
        .unwrap_err();
    let from_toml = Opossum::from_config(
        Config::from_toml_str(
            "[store]\npath = \"relative/a:b\"\nlock_timeout_ms = 0\n[projections]\nmax_concurrent_rebuilds = 0",
        )
        .unwrap(),
    )
    .build()
    .await
    .unwrap_err();
    let (Error::InvalidConfig { problems: a }, Error::InvalidConfig { problems: b }) =
        (from_code, from_toml)
    else {
        panic!("expected configuration errors");
    };
    assert_eq!(a, b);
    // The bad folder name, the zero lock timeout, the zero rebuilds (a relative path is fine).
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(
        a.iter().any(|p| p.contains("max_concurrent_rebuilds")),
        "{a:?}"
    );
}

#[tokio::test]
async fn two_handlers_for_one_message_and_unknown_read_models_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let twice = app(dir.path())
        .handler_with(|app: &AppContext| Ok(NoteHandler { store: app.store() }))
        .build()
        .await
        .unwrap_err();
    assert!(matches!(twice, Error::Mediator(_)), "{twice}");
    assert_eq!(twice.kind(), ErrorKind::InvalidInput);

    // A message the application sends but nobody handles is found at build, not at the send.
    struct Unhandled;
    impl Message for Unhandled {
        type Output = ();
    }
    let incomplete = app(dir.path())
        .require_all::<(Note, Unhandled)>()
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(&incomplete, Error::Mediator(MediatorError::MissingHandlers { messages })
            if messages.len() == 1 && messages[0].ends_with("Unhandled")),
        "{incomplete}"
    );

    let app = app(dir.path()).require::<Note>().build().await.unwrap();
    let unknown = app.read_model_by_name::<String>("Nope").unwrap_err();
    assert!(matches!(unknown, Error::Projections(_)), "{unknown}");
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    assert!(matches!(
        app.read_model_by_name::<u64>("Notes"),
        Err(Error::Projections(_))
    ));
    struct NotRegistered;
    impl Projection for NotRegistered {
        type State = u64;
        fn name(&self) -> &str {
            "NotRegistered"
        }
        fn event_types(&self) -> Vec<&str> {
            vec!["Noted"]
        }
        fn key(&self, _: &SequencedEvent) -> Option<String> {
            None
        }
        fn apply(
            &self,
            _: Option<u64>,
            _: &SequencedEvent,
            _: &[SequencedEvent],
        ) -> Result<Option<u64>, BoxError> {
            Ok(None)
        }
    }
    assert_eq!(
        app.read_model::<NotRegistered>().unwrap_err().kind(),
        ErrorKind::NotFound
    );
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn delete_store_removes_the_folder_unless_a_handle_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("notes");

    let kept = app(dir.path()).build().await.unwrap();
    kept.mediator().send(note("a", "x")).await.unwrap().unwrap();
    let mediator = kept.mediator().clone();
    assert!(matches!(
        kept.delete_store().await,
        Err(Error::InUse { .. })
    ));
    assert!(folder.join("events").is_dir(), "nothing is deleted");
    drop(mediator);

    let app = app(dir.path()).build().await.unwrap();
    app.mediator().send(note("b", "y")).await.unwrap().unwrap();
    app.delete_store().await.unwrap();
    assert!(!folder.exists());

    // A new app starts afresh in the same place.
    let fresh = self::app(dir.path()).build().await.unwrap();
    let position = fresh
        .mediator()
        .send(note("c", "z"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(position, 1);
    fresh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_app_on_the_same_store_follows_the_first_and_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let open = || async {
        app(dir.path())
            .polling_interval(Duration::from_millis(100))
            .build()
            .await
            .unwrap()
    };
    let first = open().await;
    // A second app on the same folder (as another process or PC would open it) follows.
    let second = open().await;
    assert_eq!(first.projections().role(), Role::Maintainer);
    assert_eq!(second.projections().role(), Role::Follower);

    // The second app's writes reach its read models through the first app's daemon.
    let notes = second.read_model::<Notes>().unwrap();
    send(&second, "b", "from the second").await;
    let read = notes.read(|s| s.get("b")).await.unwrap();
    assert_eq!(read.as_deref(), Some("from the second"));
    send(&first, "a", "from the first").await;
    first
        .wait_for_projections(Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        notes.read(|s| s.get("a")).await.unwrap().as_deref(),
        Some("from the first")
    );

    // The follower may not delete the store the first app has open.
    let second = match second.delete_store().await {
        Err(Error::OpenElsewhere { .. }) => open().await,
        other => panic!("expected OpenElsewhere, got {other:?}"),
    };
    assert_eq!(second.projections().role(), Role::Follower);

    // When the first app stops, the second takes over and keeps its read models current.
    first.shutdown().await.unwrap();
    let notes = second.read_model::<Notes>().unwrap();
    send(&second, "c", "after the hand-over").await;
    let read = notes.read(|s| s.get("c")).await.unwrap();
    assert_eq!(read.as_deref(), Some("after the hand-over"));
    assert_eq!(second.projections().role(), Role::Maintainer);
    second.shutdown().await.unwrap();
}

/// Opened by the test: until then the gated projection cannot apply anything.
static GATE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `Notes`, under another name, whose fold waits for [`GATE`].
struct GatedNotes;
impl Projection for GatedNotes {
    type State = String;
    fn name(&self) -> &str {
        "GatedNotes"
    }
    fn event_types(&self) -> Vec<&str> {
        vec![Noted::EVENT_TYPE]
    }
    fn key(&self, event: &SequencedEvent) -> Option<String> {
        Notes.key(event)
    }
    fn apply(
        &self,
        state: Option<String>,
        event: &SequencedEvent,
        related: &[SequencedEvent],
    ) -> Result<Option<String>, BoxError> {
        while !GATE.load(std::sync::atomic::Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Notes.apply(state, event, related)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_models_wait_for_what_the_store_held_at_open() {
    let dir = tempfile::tempdir().unwrap();
    // Events written before the app exists (another process, an import, a previous run).
    let root = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let raw = opossum::FileEventStore::open(root.join("notes")).unwrap();
        let event = NewEvent::from_typed(&Noted {
            text: "before".into(),
        })
        .tag("note", "a")
        .build()
        .unwrap();
        raw.append_blocking(vec![event], None).unwrap();
        raw.close().unwrap();
    })
    .await
    .unwrap();

    let app = Opossum::builder()
        .store_path(dir.path().join("notes"))
        .projection(GatedNotes)
        .build()
        .await
        .unwrap();
    assert_eq!(
        app.store().last_appended(),
        None,
        "this process appended nothing"
    );
    let notes = app.read_model::<GatedNotes>().unwrap();
    let read = notes.read(|s| s.get("a"));
    tokio::pin!(read);
    // The projection cannot have applied the event yet. A read that did not wait would answer
    // `None` now; one that waits answers once the gate opens.
    let text = tokio::select! {
        early = &mut read => early.unwrap(),
        () = tokio::time::sleep(Duration::from_millis(200)) => {
            GATE.store(true, std::sync::atomic::Ordering::Release);
            read.await.unwrap()
        }
    };
    GATE.store(true, std::sync::atomic::Ordering::Release);
    assert_eq!(text.as_deref(), Some("before"));
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_app_runs_on_a_store_of_its_own_with_its_read_models_in_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let shared: Arc<dyn EventStore> = Arc::new(opossum::InMemoryEventStore::new());
    let app = app(dir.path())
        .event_store(Arc::clone(&shared))
        .polling_interval(Duration::from_secs(3600))
        .build()
        .await
        .unwrap();
    assert!(app.store().file_store().is_none());
    assert_eq!(send(&app, "a", "on the shared store").await, 1);
    let notes = app.read_model::<Notes>().unwrap();
    let read = notes.read(|s| s.get("a")).await.unwrap();
    assert_eq!(read.as_deref(), Some("on the shared store"));
    // The events are in the store given, not in a folder store.
    assert_eq!(
        shared
            .read(&Query::all(), ReadOptions::new())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(!dir.path().join("notes").join("events").exists());
    // The read models are in the folder.
    assert!(
        dir.path()
            .join("notes")
            .join("projections")
            .join("Notes")
            .exists()
    );
    // Deleting is the folder store's alone.
    let refused = app.delete_store().await.unwrap_err();
    assert!(
        matches!(refused, Error::NotAFolderStore { .. }),
        "{refused}"
    );
    assert_eq!(refused.kind(), ErrorKind::Unsupported);
    assert_eq!(
        shared
            .read(&Query::all(), ReadOptions::new())
            .await
            .unwrap()
            .len(),
        1
    );
}
