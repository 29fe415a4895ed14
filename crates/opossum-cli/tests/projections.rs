//! `opossum projections DIR status|rebuild`: status read from the folder without the
//! definitions, and a rebuild through an application's own `Tool`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use opossum_core::{EventStore, SequencedEvent};
use opossum_fs::FileEventStore;
use opossum_projections::{BoxError, Projection, ProjectionManager};
use support::{TestResult, arg, run, run_json, seeded_store};

/// Counts events per `group` tag.
struct Groups;

impl Projection for Groups {
    type State = u64;

    fn name(&self) -> &str {
        "Groups"
    }

    fn event_types(&self) -> Vec<&str> {
        support::TYPES.to_vec()
    }

    fn key(&self, event: &SequencedEvent) -> Option<String> {
        event.event.tag_value("group").map(str::to_owned)
    }

    fn apply(
        &self,
        state: Option<u64>,
        _event: &SequencedEvent,
        _related: &[SequencedEvent],
    ) -> Result<Option<u64>, BoxError> {
        Ok(Some(state.unwrap_or(0) + 1))
    }
}

/// Output captured from an in-process run.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.0.lock().unwrap()).unwrap()
    }
}

fn tool() -> opossum_cli::Tool {
    opossum_cli::Tool::new().projections(|builder| builder.register(Groups))
}

#[test]
fn status_reads_checkpoints_without_definitions_and_rebuild_uses_the_applications() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = seeded_store(tmp.path(), "records", 40);

    let (code, status) = run_json(&["projections", arg(&dir), "status"]);
    assert_eq!(code, 0, "{status}");
    assert_eq!(status["head"], 40);
    assert_eq!(status["projections"].as_array().map(Vec::len), Some(0));

    // The plain binary has no definitions: it says where to rebuild from.
    let output = run(&["projections", arg(&dir), "rebuild"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("definitions"));

    // The application's binary rebuilds.
    let out = Captured::default();
    let code = tool().run_with(
        [
            "opossum",
            "--json",
            "projections",
            arg(&dir),
            "rebuild",
            "Groups",
        ],
        out.clone(),
    );
    let rebuilt = out.json();
    assert_eq!(code, 0, "{rebuilt}");
    assert_eq!(rebuilt["rebuilt"][0]["name"], "Groups");
    assert_eq!(rebuilt["rebuilt"][0]["events_applied"], 40);
    assert_eq!(rebuilt["rebuilt"][0]["checkpoint"], 40);

    // More events: the status shows how far behind the read model is.
    let store = FileEventStore::open(&dir)?;
    store.append_blocking((41..=45).map(support::event).collect(), None)?;
    drop(store);
    let (code, status) = run_json(&["projections", arg(&dir), "status"]);
    assert_eq!(code, 0);
    let groups = &status["projections"][0];
    assert_eq!(groups["name"], "Groups");
    assert_eq!(groups["checkpoint"], 40);
    assert_eq!(groups["behind"], 5);
    assert_eq!(groups["instances"], 4);
    assert_eq!(groups["rebuild"], serde_json::Value::Null);
    let text = String::from_utf8(run(&["projections", arg(&dir), "status"]).stdout)?;
    assert!(text.contains("Groups"), "{text}");

    // Rebuilding all brings it to the head; the values are the application's.
    let out = Captured::default();
    let code = tool().run_with(
        ["opossum", "--json", "projections", arg(&dir), "rebuild"],
        out.clone(),
    );
    assert_eq!(code, 0, "{}", out.json());
    assert_eq!(out.json()["rebuilt"][0]["checkpoint"], 45);
    let store: Arc<dyn EventStore> = Arc::new(FileEventStore::open_with(
        &dir,
        opossum_fs::StoreOptions::new().read_only(true),
    )?);
    let manager = ProjectionManager::builder(store, dir.join("projections"))
        .register(Groups)
        .open()?;
    let groups = manager.store::<Groups>()?;
    // Group 1: i % 4 == 1 for i in 1..=45.
    assert_eq!(
        groups.get("1")?,
        Some((1..=45).filter(|i| i % 4 == 1).count() as u64)
    );
    drop(manager);

    // An unknown name is refused before anything runs.
    let out = Captured::default();
    let code = tool().run_with(
        ["opossum", "projections", arg(&dir), "rebuild", "Nope"],
        out,
    );
    assert_eq!(code, 2);
    Ok(())
}
