//! `/docs`: the page for people, in a real headless Chromium that can reach nothing but the
//! loopback server, so the page can only render from the files the binary serves.
//!
//! Without Chromium (`chromium` or `chromium-browser` on the `PATH`) the test says that it
//! skipped; under `CI=true` it fails instead.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::Server;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = ["chromium", "chromium-browser"]
        .into_iter()
        .find_map(|name| {
            std::env::split_paths(&path)
                .chain([PathBuf::from("/usr/bin")])
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
        });
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "the docs page test needs Chromium (chromium or chromium-browser) under CI=true"
        );
        #[allow(clippy::print_stderr)] // Where a skipped test says so.
        {
            eprintln!("docs page: SKIPPED, no chromium or chromium-browser on the PATH");
        }
    }
    found
}

/// The DOM of `url` once Chromium ran its scripts, with every host name but the loopback
/// address unresolvable; and Chromium's log.
fn rendered(browser: PathBuf, url: String) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-extensions",
            "--enable-logging=stderr",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            // Time for Swagger UI to fetch the document and render it.
            "--virtual-time-budget=15000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "chromium failed on {url}: {log}");
    (String::from_utf8_lossy(&output.stdout).into_owned(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_docs_page_renders_every_operation_offline() {
    let Some(browser) = chromium() else {
        return;
    };
    let Some(server) = Server::start().await else {
        return;
    };
    // The page and its start-up script name only the server's own files.
    let page = server.get("/docs/").await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.content_type.starts_with("text/html"), "{page:?}");
    let html = page.body.as_str().unwrap().to_owned();
    let initializer = server.get("/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status, 200, "{initializer:?}");
    let script = initializer.body.as_str().unwrap().to_owned();
    for (name, text) in [("the page", &html), ("its initializer", &script)] {
        assert!(
            !text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"),
            "{name} loads something from elsewhere:\n{text}"
        );
    }
    assert!(script.contains("/openapi.json"), "{script}");
    // `/docs` itself leads to the page.
    let redirect = server.get("/docs").await;
    assert!(redirect.status < 400, "{redirect:?}");

    let url = format!("{}/docs/", server.base);
    let (dom, log) = tokio::task::spawn_blocking(move || rendered(browser, url))
        .await
        .unwrap();
    assert!(dom.contains("swagger-ui"), "no Swagger UI in:\n{dom}");
    assert!(
        dom.contains("Opossum course management"),
        "the title is missing:\n{dom}"
    );
    let document = server.get("/openapi.json").await.expect(200);
    let mut operations = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let summary = operation["summary"].as_str().unwrap();
            assert!(
                dom.contains(summary),
                "{method} {path} ({summary}) is not on the page; Chromium said:\n{log}"
            );
            operations += 1;
        }
    }
    assert!(operations >= 39, "{operations}");
    server.stop().await;
}
