//! The HTTP layer itself: status codes for bodies that cannot be read, time limits for slow
//! clients, and the request log of the real binary.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::binary::{BINARY, HANG_GUARD, listening_on, sigterm};
use crate::support::Server;

async fn problem_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json", "{status}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    (status, body)
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_naming_the_limit() {
    let Some(server) = Server::start().await else {
        return;
    };
    let huge = "x".repeat(course_management::http::BODY_LIMIT + 1);
    let response = reqwest::Client::new()
        .post(format!("{}/students", server.base))
        .json(&json!({"firstName": huge, "lastName": "L", "email": "big@example.com"}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem_of(response).await;
    assert_eq!(status, 413, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("2097152 bytes"), "{detail}");
    server.stop().await;
}

#[tokio::test]
async fn a_json_route_without_the_json_content_type_is_415() {
    let Some(server) = Server::start().await else {
        return;
    };
    let client = reqwest::Client::new();
    let body = r#"{"firstName": "Ada", "lastName": "Lovelace", "email": "ada@example.com"}"#;
    let wrong = client
        .post(format!("{}/students", server.base))
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    let missing = client
        .post(format!("{}/students", server.base))
        .body(body)
        .send()
        .await
        .unwrap();
    for response in [wrong, missing] {
        let (status, problem) = problem_of(response).await;
        assert_eq!(status, 415, "{problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains("application/json"), "{detail}");
    }
    // A malformed JSON body is still a 400.
    let malformed = client
        .post(format!("{}/students", server.base))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(problem_of(malformed).await.0, 400);
    server.stop().await;
}

/// The binary on `data_dir` with `--read-timeout 1`, its base URL, and its standard error as
/// it comes.
struct Binary {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

async fn start(data_dir: &Path) -> Binary {
    let mut child = Command::new(BINARY)
        .args([
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--read-timeout",
            "1",
        ])
        .env("RUST_LOG", "warn,course_management=info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    let sink = Arc::clone(&stderr);
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            let mut all = sink.lock().unwrap();
            all.push_str(&line);
            all.push('\n');
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = listening_on(&mut lines).await;
    // Keep reading stdout so that the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Binary {
        child,
        base,
        stderr,
    }
}

impl Binary {
    /// SIGTERM, then checks that it exited successfully.
    async fn terminate(&mut self) {
        sigterm(&self.child).await;
        let status = tokio::time::timeout(HANG_GUARD, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{status}");
        // Let the reader drain what is left of the pipe.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// Its standard error so far.
    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until its standard error holds `text`; panics after the hang guard.
    async fn wait_for_log(&self, text: &str) {
        let started = Instant::now();
        while !self.log().contains(text) {
            assert!(
                started.elapsed() < HANG_GUARD,
                "no {text:?} in {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// What the server sends on `stream` until it closes the connection, and how long that took;
/// panics if it is still open after the hang guard.
fn read_until_closed(mut stream: TcpStream) -> (String, Duration) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0_u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            // A reset is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!(
                "the connection is still open after {:?}: {e}",
                started.elapsed()
            ),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_every_request_is_logged_without_its_body() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path()).await;
    let address = server.base.strip_prefix("http://").unwrap().to_owned();

    // A partial request line: the server closes the connection after the 1 s read timeout.
    let partial = address.clone();
    let (_, waited) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&partial).unwrap();
        stream.write_all(b"GET /stud").unwrap();
        read_until_closed(stream)
    })
    .await
    .unwrap();
    assert!(waited < Duration::from_secs(20), "{waited:?}");

    // Headers that announce more body than comes: a 408 problem, then the connection closes.
    let short = address.clone();
    let (reply, waited) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&short).unwrap();
        stream
            .write_all(
                b"POST /students HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                  Content-Length: 100\r\n\r\n{\"firstName\":",
            )
            .unwrap();
        read_until_closed(stream)
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("application/problem+json"), "{reply}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");

    // A request that arrives in time is served, and logged: method, path, status, latency,
    // but not the body.
    let client = reqwest::Client::builder()
        .timeout(HANG_GUARD)
        .build()
        .unwrap();
    let created = client
        .post(format!("{}/students", server.base))
        .json(&json!({"firstName": "Zyxwvut", "lastName": "Lovelace", "email": "secret-address@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);

    // The log is read from the server's pipe by a task of this test: wait until it has the
    // lines (under load they arrive after the replies).
    server.wait_for_log("status=201").await;
    server.wait_for_log("status=408").await;
    server.terminate().await;
    let log = server.log();
    let line = log
        .lines()
        .find(|line| line.contains("method=POST") && line.contains("status=201"))
        .unwrap_or_else(|| panic!("no request line in {log}"));
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("path=/students"), "{line}");
    assert!(line.contains("latency_ms="), "{line}");
    assert!(log.contains("status=408"), "{log}");
    assert!(
        !log.contains("Zyxwvut"),
        "the log holds a request body: {log}"
    );
    assert!(
        !log.contains("secret-address"),
        "the log holds a request body: {log}"
    );
    // Standard error is a pipe here, not a terminal: no colour codes.
    assert!(!log.contains('\u{1b}'), "ANSI codes in {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_logs_when_it_takes_over_the_read_models() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start(dir.path()).await;
    first
        .wait_for_log("this process maintains the read models")
        .await;
    let mut second = start(dir.path()).await;
    second
        .wait_for_log("another process maintains the read models")
        .await;
    first.terminate().await;
    second
        .wait_for_log("took over maintaining the read models")
        .await;
    second.terminate().await;
    assert!(!first.log().contains("took over"), "{}", first.log());
}
