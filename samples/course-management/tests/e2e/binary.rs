//! The real binary: it prints its URL, serves, stops gracefully on SIGTERM, and `seed` fills
//! a store that the server then serves.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::items;

/// The sample's binary, as cargo built it for these tests.
pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_course-management");

/// A guard against a hang, never an expectation about speed.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(120);

/// The base URL a starting server prints as its first line of `lines` (its stdout).
pub(crate) async fn listening_on(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    let first = tokio::time::timeout(HANG_GUARD, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    first
        .strip_prefix("course-management listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned()
}

/// Sends SIGTERM to `child`.
pub(crate) async fn sigterm(child: &Child) {
    let pid = child.id().unwrap().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
}

struct Running {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    base: String,
}

async fn start(data_dir: &Path) -> Running {
    let mut child = Command::new(BINARY)
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = listening_on(&mut lines).await;
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    Running { child, lines, base }
}

impl Running {
    /// SIGTERM, then the exit status and the rest of stdout.
    async fn terminate(mut self) -> String {
        sigterm(&self.child).await;
        let mut rest = String::new();
        while let Some(line) = tokio::time::timeout(HANG_GUARD, self.lines.next_line())
            .await
            .unwrap()
            .unwrap()
        {
            rest.push_str(&line);
            rest.push('\n');
        }
        let status = tokio::time::timeout(HANG_GUARD, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status}: {rest}");
        rest
    }
}

/// Runs `course-management seed --size small` on `data_dir`; its standard output, once it
/// succeeded.
async fn seed_small(data_dir: &Path) -> String {
    let seeded = tokio::time::timeout(
        HANG_GUARD,
        Command::new(BINARY)
            .args([
                "seed",
                "--size",
                "small",
                "--data-dir",
                data_dir.to_str().unwrap(),
            ])
            .stderr(Stdio::null())
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    let out = String::from_utf8_lossy(&seeded.stdout).into_owned();
    assert!(seeded.status.success(), "{out}");
    out
}

async fn get(client: &reqwest::Client, url: String) -> Value {
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_its_url_serves_and_stops_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(HANG_GUARD)
        .build()
        .unwrap();

    let server = start(dir.path()).await;
    let created = client
        .post(format!("{}/students", server.base))
        .json(&json!({"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let rest = server.terminate().await;
    assert!(rest.contains("stopped; the store is closed"), "{rest}");

    // The same folder, a new process: the student is still there.
    let again = start(dir.path()).await;
    let students = get(&client, format!("{}/students", again.base)).await;
    assert_eq!(students["items"][0]["email"], "ada@example.com");
    again.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_small_creates_realistic_data_that_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let out = seed_small(dir.path()).await;
    let events: u64 = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output {out:?}"));
    assert!((150..2_000).contains(&events), "{out}");
    assert!(out.contains("40 students"), "{out}");

    let server = start(dir.path()).await;
    let client = reqwest::Client::builder()
        .timeout(HANG_GUARD)
        .build()
        .unwrap();
    let students = get(&client, format!("{}/students", server.base)).await;
    assert_eq!(items(&students).len(), 40);
    assert_eq!(
        students["nextCursor"],
        Value::Null,
        "40 fit the default page"
    );
    let courses = get(&client, format!("{}/courses", server.base)).await;
    assert_eq!(items(&courses).len(), 10);
    let enrolled: u64 = items(&courses)
        .iter()
        .map(|c| c["currentEnrollmentCount"].as_u64().unwrap())
        .sum();
    assert!(enrolled > 0);
    let invoices = get(&client, format!("{}/invoices", server.base)).await;
    let numbers: Vec<u64> = items(&invoices)
        .iter()
        .map(|i| i["invoiceNumber"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, (1..=30).collect::<Vec<u64>>());
    let books = get(&client, format!("{}/course-books", server.base)).await;
    assert_eq!(items(&books).len(), 15);
    let store = get(&client, format!("{}/admin/store", server.base)).await;
    assert_eq!(store["eventCount"].as_u64(), Some(events));
    assert_eq!(
        store["projections"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "StudentShortInfo")
            .map(|p| p["instances"].clone()),
        Some(json!(40)),
        "{store}"
    );
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_and_a_second_server_run_beside_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::builder()
        .timeout(HANG_GUARD)
        .build()
        .unwrap();
    let server = start(dir.path()).await;

    // `seed` is a second process on the same store: it follows the server's read models.
    let out = seed_small(dir.path()).await;
    assert!(out.contains("40 students"), "{out}");

    // The server's daemon finds the seed's events at its next poll.
    let started = std::time::Instant::now();
    loop {
        let students = get(&client, format!("{}/students", server.base)).await;
        if items(&students).len() == 40 {
            break;
        }
        assert!(started.elapsed() < HANG_GUARD, "hang guard: {students}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let status = get(&client, format!("{}/admin/projections/status", server.base)).await;
    assert_eq!(status["role"], "maintainer", "{status}");

    // A second server on the same folder serves the same read models, as a follower.
    let second = start(dir.path()).await;
    let status = get(&client, format!("{}/admin/projections/status", second.base)).await;
    assert_eq!(status["role"], "follower", "{status}");
    let students = get(&client, format!("{}/students", second.base)).await;
    assert_eq!(items(&students).len(), 40);
    let rebuild = client
        .post(format!(
            "{}/admin/projections/StudentShortInfo/rebuild",
            second.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(rebuild.status(), 409, "a follower does not rebuild");
    let delete = client
        .delete(format!("{}/admin/store?confirm=true", second.base))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 409, "a follower does not delete the store");
    let students = get(&client, format!("{}/students", second.base)).await;
    assert_eq!(items(&students).len(), 40, "and goes on serving");
    second.terminate().await;
    server.terminate().await;
}
