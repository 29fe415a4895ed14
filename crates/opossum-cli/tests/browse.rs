//! `opossum browse`: the real binary serves a store, and a real headless Chromium loads its
//! pages, as an inspector's browser would.
//!
//! Without Chromium (`chromium` or `chromium-browser` on the `PATH`) the browser tests say that
//! they skipped, except under `CI=true`, where they fail instead.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    reason = "tests: a failed expectation is a test failure, and a skip is said on stderr"
)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use support::{TYPES, TestResult, arg, edit_payload_byte, opossum, run_json, seeded_store};

/// The running `opossum browse`, killed when dropped.
struct Server {
    child: Child,
    /// Its first line of output.
    first_line: String,
    /// The page's address, `http://127.0.0.1:PORT/`.
    url: String,
    /// `127.0.0.1:PORT`.
    address: String,
    /// Kept open so that the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// `opossum [--json] browse DIR --bind 127.0.0.1:0`, once it has said where it listens.
    fn start(dir: &Path, json: bool) -> Server {
        let mut command = opossum();
        if json {
            command.arg("--json");
        }
        let mut child = command
            .args(["browse", arg(dir), "--bind", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        stdout.read_line(&mut first_line).unwrap();
        let url = if json {
            let doc: serde_json::Value = serde_json::from_str(&first_line)
                .unwrap_or_else(|e| panic!("not one JSON line ({e}): {first_line:?}"));
            assert_eq!(doc["store"].as_str(), Some(arg(dir)), "{doc}");
            doc["url"].as_str().unwrap().to_owned()
        } else {
            let start = first_line
                .find("http://")
                .unwrap_or_else(|| panic!("no address in {first_line:?}"));
            first_line[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_owned()
        };
        let address = url
            .strip_prefix("http://")
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("not an address: {url}"))
            .to_owned();
        assert!(
            !address.ends_with(":0"),
            "the real port is printed: {address}"
        );
        Server {
            child,
            first_line,
            url,
            address,
            _stdout: stdout,
        }
    }

    /// The address of `path` (starting with `/`).
    fn at(&self, path: &str) -> String {
        format!("{}{}", self.url.trim_end_matches('/'), path)
    }

    /// Waits until the banner no longer says that the chain is being verified.
    fn wait_for_verification(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, _, body) = http(&self.address, "GET", "/");
            assert_eq!(status, 200, "{body}");
            if !body.contains("Verifying…") {
                return;
            }
            assert!(Instant::now() < deadline, "the chain was never verified");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A plain HTTP/1.1 request: the status, the headers (lowercased names) and the body.
fn http(address: &str, method: &str, path: &str) -> (u16, BTreeMap<String, String>, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status.parse().unwrap(), headers, body.to_owned())
}

/// Chromium on this machine, if there is one.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser"] {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// Chromium, or `None` after saying that the test skipped; under `CI=true` a missing Chromium
/// fails the test.
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{test}: Chromium (chromium or chromium-browser) is needed under CI=true"
        );
        eprintln!("{test}: SKIPPED, no chromium or chromium-browser on the PATH");
    }
    found
}

/// A headless Chromium, run once with `args` and then `url`, with a profile of its own;
/// returns its standard output.
fn run_chromium(browser: &Path, args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            // The console, where content-policy violations are reported, goes to stderr.
            "--enable-logging=stderr",
            "--v=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish loading {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = out.join().unwrap();
    let err = err.join().unwrap();
    assert!(status.success(), "chromium failed on {url}: {err}");
    // What the page's content policy blocked is logged on the console.
    let violations: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("CONSOLE"))
        .filter(|l| l.contains("Content Security Policy") || l.contains("Refused to"))
        .collect();
    assert!(
        violations.is_empty(),
        "the page broke its own content policy: {violations:#?}"
    );
    out
}

/// The DOM of `url` after Chromium loaded it.
fn dom(browser: &Path, url: &str) -> String {
    let dom = run_chromium(browser, &["--dump-dom"], url);
    assert!(dom.contains("</html>"), "no page from {url}: {dom}");
    dom
}

/// Text as a person reads it: tags left out, entities decoded, white space collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = decode(&out);
    let words: Vec<&str> = out.split_whitespace().collect();
    // Tags split words where the page has none: "(" <code>x</code> ")" reads "( x )".
    words
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")")
        .replace(" ,", ",")
        .replace(" :", ":")
        .replace(" .", ".")
}

/// The entities Chromium writes when it serializes text and attributes.
fn decode(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The element with `id`: its opening tag and what follows up to the element's end (for
/// elements that hold no element of the same name).
fn element<'a>(dom: &'a str, id: &str) -> Option<&'a str> {
    let at = dom.find(&format!(" id=\"{id}\""))?;
    let start = dom[..at].rfind('<')?;
    let name: String = dom[start + 1..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    let close = format!("</{name}>");
    let end = dom[start..].find(&close)? + start + close.len();
    Some(&dom[start..end])
}

/// The `href` of the element with `id`, decoded.
fn link(dom: &str, id: &str) -> Option<String> {
    let element = element(dom, id)?;
    let tag = &element[..element.find('>')?];
    let start = tag.find("href=\"")? + "href=\"".len();
    let end = tag[start..].find('"')? + start;
    Some(decode(&tag[start..end]))
}

/// The text of the element with `id`.
fn text_of(dom: &str, id: &str) -> String {
    text(element(dom, id).unwrap_or_else(|| panic!("no element {id} in {dom}")))
}

/// The raw content of the `<pre>` (or other leaf element) with `id`, decoded.
fn content_of(dom: &str, id: &str) -> String {
    let element = element(dom, id).unwrap_or_else(|| panic!("no element {id} in {dom}"));
    let inner = &element[element.find('>').unwrap() + 1..element.rfind("</").unwrap()];
    decode(inner)
}

/// The positions of the table's rows, top to bottom.
fn rows(dom: &str) -> Vec<u64> {
    dom.split("<tr id=\"event-")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].parse().unwrap())
        .collect()
}

/// The stored line of `position` in the store's segment files.
fn stored_line(store: &Path, position: u64) -> String {
    let prefix = format!("{{\"position\":{position},");
    for entry in std::fs::read_dir(store.join("events")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.starts_with(&prefix)) {
            return line.to_owned();
        }
    }
    panic!("no line for position {position}");
}

/// The hash a stored line records.
fn hash_of(line: &str) -> String {
    let doc: serde_json::Value = serde_json::from_str(line).unwrap();
    doc["hash"].as_str().unwrap().to_owned()
}

/// Every file of the store and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn an_inspector_sees_the_events_filters_them_pages_and_opens_one() -> TestResult {
    let Some(browser) = chromium_or_skip("browse pages") else {
        return Ok(());
    };
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "records", 120);
    let server = Server::start(&store, true);
    server.wait_for_verification();
    let (code, verified) = run_json(&["verify", arg(&store)]);
    assert_eq!(code, 0, "{verified}");
    let head_hash = verified["head_hash"].as_str().unwrap();

    // The start page: the newest 50 events, the banner, the store, the count.
    let index = dom(&browser, &server.url);
    assert_eq!(rows(&index), (71..=120).rev().collect::<Vec<_>>());
    let banner = text_of(&index, "chain");
    assert!(
        banner.starts_with("Chain intact: 120 events verified at "),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("head hash {head_hash}")),
        "{banner}"
    );
    let page = text(&index);
    assert!(page.contains(&format!("Store {}", arg(&store))), "{page}");
    assert_eq!(
        text_of(&index, "count"),
        "50 events on this page (positions 120 down to 71), newest first. The store holds 120 events."
    );
    assert!(page.contains("Filters: none (every event)"), "{page}");
    // A row as a person reads it: position, time, type, tags, user.
    let row = text_of(&index, "event-100");
    assert_eq!(
        row,
        format!(
            "100 2026-01-01T01:40:00Z {} n=100 group=0 user-0",
            TYPES[99 % 3]
        )
    );
    assert!(index.contains("href=\"/events/100\""));
    assert!(
        link(&index, "newer").is_none(),
        "the newest page has no newer page"
    );

    // Paging: older, older again to the first event, and back.
    let older = link(&index, "older").expect("an older page");
    assert_eq!(older, "/?older_than=71");
    let second = dom(&browser, &server.at(&older));
    assert_eq!(rows(&second), (21..=70).rev().collect::<Vec<_>>());
    let third = dom(&browser, &server.at(&link(&second, "older").unwrap()));
    assert_eq!(rows(&third), (1..=20).rev().collect::<Vec<_>>());
    assert!(
        link(&third, "older").is_none(),
        "nothing is older than event 1"
    );
    let back = dom(&browser, &server.at(&link(&second, "newer").unwrap()));
    assert_eq!(rows(&back), (71..=120).rev().collect::<Vec<_>>());

    // Filters: a type and a tag, exactly the matching events.
    let filtered = dom(&browser, &server.at("/?type=CourseCreated&tag=group=1"));
    let expected: Vec<u64> = (1..=120u64)
        .rev()
        .filter(|i| TYPES[((i - 1) % 3) as usize] == "CourseCreated" && i % 4 == 1)
        .collect();
    assert_eq!(expected, [113, 101, 89, 77, 65, 53, 41, 29, 17, 5]);
    assert_eq!(rows(&filtered), expected);
    let page = text(&filtered);
    assert!(
        page.contains("Filters: type CourseCreated tag group=1"),
        "{page}"
    );
    assert!(page.contains("10 events on this page"), "{page}");
    assert!(
        filtered.contains("value=\"CourseCreated\""),
        "the form keeps the filter"
    );

    // A filtered page of 7, paged: the link keeps the filter and the page size.
    let first = dom(&browser, &server.at("/?type=StudentRegistered&limit=7"));
    let registered: Vec<u64> = (1..=120u64).rev().filter(|i| (i - 1) % 3 == 0).collect();
    assert_eq!(rows(&first), registered[..7]);
    let older = link(&first, "older").unwrap();
    assert_eq!(
        older,
        format!(
            "/?type=StudentRegistered&limit=7&older_than={}",
            registered[6]
        )
    );
    assert_eq!(rows(&dom(&browser, &server.at(&older))), registered[7..14]);

    // A time range: minutes 60 to 69.
    let timed = dom(
        &browser,
        &server.at("/?since=2026-01-01T01:00:00Z&until=2026-01-01T01:10:00Z"),
    );
    assert_eq!(rows(&timed), (60..70).rev().collect::<Vec<_>>());

    // A filter that is not valid: a 400 page that says what is wrong.
    let bad = text(&dom(&browser, &server.at("/?since=yesterday")));
    assert!(bad.contains("These filters do not work"), "{bad}");
    assert!(
        bad.contains("since: \"yesterday\" is not an RFC 3339 time"),
        "{bad}"
    );
    for query in [
        "/?since=yesterday",
        "/?after=abc",
        "/?tag=nogroup",
        "/?limit=501",
        "/?after=5&before=6",
    ] {
        let (status, _, body) = http(&server.address, "GET", query);
        assert_eq!(status, 400, "{query}: {body}");
    }

    // An event: its facts, metadata, payload, the stored line and its chain links.
    let detail = dom(&browser, &server.at("/events/57"));
    let page = text(&detail);
    assert!(
        page.contains(&format!("Event 57 {}", TYPES[56 % 3])),
        "{page}"
    );
    assert!(page.contains("Tags n=57 group=1"), "{page}");
    assert!(page.contains("User id user-1"), "{page}");
    assert!(page.contains("Time 2026-01-01T00:57:00Z"), "{page}");
    assert!(page.contains("Correlation id —"), "{page}");
    let line = stored_line(&store, 57);
    assert_eq!(content_of(&detail, "stored-line"), line);
    assert_eq!(text_of(&detail, "hash"), hash_of(&line));
    assert_eq!(
        text_of(&detail, "previous-hash"),
        hash_of(&stored_line(&store, 56))
    );
    assert!(
        text_of(&detail, "recomputed").starts_with("matches"),
        "{page}"
    );
    assert!(
        content_of(&detail, "payload").contains("\"name\": \"student 57\""),
        "{page}"
    );
    assert_eq!(link(&detail, "previous").as_deref(), Some("/events/56"));
    assert_eq!(link(&detail, "next").as_deref(), Some("/events/58"));
    let first_event = dom(&browser, &server.at("/events/1"));
    assert!(link(&first_event, "previous").is_none());
    assert!(text(&first_event).contains("64 zeros: the start of the chain"));
    assert_eq!(text_of(&first_event, "previous-hash"), "0".repeat(64));
    assert!(link(&dom(&browser, &server.at("/events/120")), "next").is_none());
    let missing = text(&dom(&browser, &server.at("/events/121")));
    assert!(
        missing.contains(
            "There is no event at position 121: the store's events are at positions 1 to 120."
        ),
        "{missing}"
    );
    assert_eq!(http(&server.address, "GET", "/events/121").0, 404);
    assert_eq!(http(&server.address, "GET", "/events/0").0, 404);
    assert_eq!(http(&server.address, "GET", "/events/abc").0, 400);
    assert_eq!(http(&server.address, "GET", "/elsewhere").0, 404);

    // What a person sees: a screenshot of the start page.
    let shots = tempfile::tempdir()?;
    let shot = shots.path().join("index.png");
    run_chromium(
        &browser,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,900",
            "--hide-scrollbars",
        ],
        &server.url,
    );
    let png = std::fs::read(&shot)?;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 10_000,
        "an empty screenshot: {} bytes",
        png.len()
    );
    let _ = std::fs::copy(&shot, "/tmp/opossum-browse.png");
    Ok(())
}

#[test]
fn the_banner_names_the_position_where_the_chain_breaks() -> TestResult {
    let Some(browser) = chromium_or_skip("browse banner") else {
        return Ok(());
    };
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "records", 120);
    edit_payload_byte(&store, 57);
    let server = Server::start(&store, true);
    server.wait_for_verification();

    let index = dom(&browser, &server.url);
    let banner = text_of(&index, "chain");
    assert!(
        banner.starts_with("CHAIN BROKEN at position 57 (edited): "),
        "{banner}"
    );
    assert!(banner.contains(" — verified at "), "{banner}");
    assert!(
        banner.contains("56 events before it verified intact"),
        "{banner}"
    );
    assert!(
        element(&index, "chain")
            .unwrap()
            .contains("href=\"/events/57\""),
        "the banner links to the broken event"
    );
    // The events are still listed: the browser shows what is there.
    assert_eq!(rows(&index).len(), 50);

    // The edited event's page shows that its hash no longer matches its line.
    let detail = dom(&browser, &server.at("/events/57"));
    let recomputed = text_of(&detail, "recomputed");
    assert!(recomputed.starts_with("DOES NOT MATCH"), "{recomputed}");
    assert_eq!(content_of(&detail, "stored-line"), stored_line(&store, 57));
    assert!(text_of(&dom(&browser, &server.at("/events/58")), "recomputed").starts_with("matches"));
    Ok(())
}

#[test]
fn only_get_and_head_are_answered_and_nothing_is_written() -> TestResult {
    let folder = tempfile::tempdir()?;
    let store = seeded_store(folder.path(), "records", 12);
    let before = snapshot(&store);
    {
        let server = Server::start(&store, false);
        assert_eq!(
            server.first_line,
            format!(
                "browsing {} at {} (read-only; Ctrl+C to stop)\n",
                arg(&store),
                server.url
            )
        );
        server.wait_for_verification();

        for method in ["POST", "PUT", "DELETE", "PATCH"] {
            for path in ["/", "/events/1", "/style.css", "/nowhere"] {
                let (status, headers, body) = http(&server.address, method, path);
                assert_eq!(status, 405, "{method} {path}: {body}");
                assert_eq!(
                    headers.get("allow").map(String::as_str),
                    Some("GET, HEAD"),
                    "{method} {path}"
                );
                assert!(body.contains("read-only"), "{body}");
            }
        }

        let (status, headers, body) = http(&server.address, "GET", "/");
        assert_eq!(status, 200);
        assert!(body.contains("<tr id=\"event-12\">"), "{body}");
        assert!(!body.contains("<script"), "no JavaScript");
        assert_eq!(
            headers.get("content-type").map(String::as_str),
            Some("text/html; charset=utf-8")
        );
        let csp = &headers["content-security-policy"];
        assert!(
            csp.starts_with("default-src 'none'; style-src 'self'; img-src 'self'"),
            "{csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["cache-control"], "no-store");

        let (status, headers, body) = http(&server.address, "HEAD", "/events/3");
        assert_eq!(status, 200);
        assert!(body.is_empty(), "{body}");
        assert_eq!(headers["cache-control"], "no-store");

        let (status, headers, body) = http(&server.address, "GET", "/style.css");
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "text/css; charset=utf-8");
        assert!(body.contains("table.events"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    assert!(before == snapshot(&store), "the store's files changed");
    Ok(())
}

#[test]
fn an_address_in_use_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    let store = seeded_store(folder.path(), "records", 1);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = opossum()
        .args(["browse", arg(&store), "--bind", &address])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
    let output = opossum()
        .args([
            "browse",
            arg(&folder.path().join("none")),
            "--bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "no store, no server");
}
