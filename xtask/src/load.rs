//! `cargo xtask load`: drives a running course-management server (`samples/course-management`)
//! with concurrent HTTP clients for a while and reports throughput, latency percentiles and
//! status codes.
//!
//! The run has three steps:
//!
//! 1. **Discovery**: `GET /students?limit=500` and `GET /courses?limit=500` give the ids the
//!    requests use. Both answers of the sample's versions are accepted: a page
//!    `{"items": [...], "nextCursor": ...}` (the paged list routes) and a plain JSON array of all
//!    instances (the sample before its list routes were paged, which ignores `limit`).
//! 2. **Load**: `--clients` tokio tasks share one `reqwest` client (a connection pool with
//!    keep-alive, one connection per task at most in flight) and send requests back to back
//!    until `--duration` seconds have passed; a request in flight then is finished and counted.
//!    Each request is drawn from a mix (see [`Op`]): a share `1 - write-share` of reads spread
//!    evenly over four routes, the rest writes spread evenly over three. Each task draws from
//!    its own [`Rng`], seeded from `--seed` and its index, so a run is repeatable.
//! 3. **Report**: the latency of every request (sent until its whole body is read) is kept, and
//!    the percentiles are computed exactly from the sorted vector (nearest rank, see
//!    [`percentile`]), per class (read, write) and per route, with the status codes, the 5xx
//!    answers and the transport errors (no answer at all: refused, reset, timed out).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};

/// Options of `cargo xtask load`.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// The server's base address, for example `http://127.0.0.1:5179`.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:5179")]
    url: String,
    /// Concurrent clients (tokio tasks), each sending its next request when its last one is
    /// answered.
    #[arg(long, value_name = "N", default_value_t = 50)]
    clients: usize,
    /// How long to send requests, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    duration: u64,
    /// The share of writes in the mix, from 0 to 1; the rest are reads.
    #[arg(long, value_name = "SHARE", default_value_t = 0.2)]
    write_share: f64,
    /// The seed of the generators that draw the requests and their ids (the same seed, the same
    /// sequence per client).
    #[arg(long, value_name = "N", default_value_t = 0x5EED_0F_0BB0_5503)]
    seed: u64,
    /// Also write the figures to FILE as JSON (latencies in ms, throughput in requests/s).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Give up on a request after this many seconds (then it counts as a transport error).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
}

/// Runs `cargo xtask load`: discovery, the load, the report.
pub(crate) fn run(args: &LoadArgs) -> Result<()> {
    if args.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.write_share) {
        bail!(
            "--write-share must be between 0 and 1, not {}",
            args.write_share
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run_async(args))
}

/// The body of [`run`], inside the tokio runtime.
async fn run_async(args: &LoadArgs) -> Result<()> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(args.timeout))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the HTTP client")?;

    let students = discover(&http, &base, "/students?limit=500", "studentId").await?;
    let courses = discover(&http, &base, "/courses?limit=500", "courseId").await?;
    for found in [&students, &courses] {
        println!(
            "discovery: GET {} -> {} ({}), {} ids, {} bytes in {:.1} ms",
            found.path,
            found.status,
            found.shape.describe(),
            found.ids.len(),
            found.bytes,
            ms(found.latency_us),
        );
    }
    if students.ids.is_empty() || courses.ids.is_empty() {
        bail!("the server has no students or no courses: seed it first (`seed --size large`)");
    }

    // Emails of new students must be unique across runs too, not only within one.
    let run_tag = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    let context = Arc::new(ClientContext {
        http,
        base: base.clone(),
        students: students.ids,
        courses: courses.ids,
        write_share: args.write_share,
        deadline: Instant::now() + Duration::from_secs(args.duration),
        run_tag: format!("{run_tag:x}"),
    });

    println!(
        "load: {} clients for {} s, write share {:.2}, seed {}, against {base}",
        args.clients, args.duration, args.write_share, args.seed
    );
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.clients)
        .map(|index| {
            let context = Arc::clone(&context);
            let rng = Rng::for_client(args.seed, index as u64);
            tokio::spawn(client_loop(context, index, rng))
        })
        .collect();
    let mut samples = Vec::new();
    let mut messages = Vec::new();
    for task in tasks {
        let outcome = task.await.context("a client task failed")?;
        samples.extend(outcome.samples);
        messages.extend(outcome.messages);
    }
    let elapsed = started.elapsed();

    let report = Report::new(&samples, elapsed);
    print!("{}", report.table());
    for message in messages.iter().take(MESSAGES_SHOWN) {
        eprintln!("  {message}");
    }
    if messages.len() > MESSAGES_SHOWN {
        eprintln!(
            "  ... and {} more like these",
            messages.len() - MESSAGES_SHOWN
        );
    }
    if let Some(path) = &args.json {
        let document = json!({
            "url": base,
            "clients": args.clients,
            "durationS": args.duration,
            "writeShare": args.write_share,
            "seed": args.seed,
            "latency": "exact: every request's latency in a sorted vector, nearest-rank percentiles",
            "figures": report.to_json(),
        });
        let text = serde_json::to_string_pretty(&document).context("cannot encode the figures")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

/// How many 5xx bodies and transport error messages the run prints at most.
const MESSAGES_SHOWN: usize = 10;

/// How many of each client's 5xx bodies and transport error messages it keeps.
const MESSAGES_KEPT: usize = 5;

/// What a discovery request found.
#[derive(Debug)]
struct Discovered {
    /// The path asked, with its query.
    path: &'static str,
    /// The answer's status code.
    status: u16,
    /// Whether the answer was a page or a plain array.
    shape: ListShape,
    /// The ids found, in the answer's order.
    ids: Vec<String>,
    /// The size of the answer's body.
    bytes: usize,
    /// How long the request took, in µs.
    latency_us: u64,
}

/// Asks `path` for a list and reads the `field` of each of its items.
async fn discover(
    http: &reqwest::Client,
    base: &str,
    path: &'static str,
    field: &str,
) -> Result<Discovered> {
    let started = Instant::now();
    let response = http
        .get(format!("{base}{path}"))
        .send()
        .await
        .with_context(|| format!("GET {base}{path}: no answer (is the server running?)"))?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("GET {path}: cannot read the body"))?;
    let latency_us = micros(started.elapsed());
    if !status.is_success() {
        bail!("GET {path} answered {status}: {}", snippet(&body));
    }
    let value: Value =
        serde_json::from_slice(&body).with_context(|| format!("GET {path}: not JSON"))?;
    let (shape, ids) = list_ids(&value, field).with_context(|| format!("GET {path}"))?;
    Ok(Discovered {
        path,
        status: status.as_u16(),
        shape,
        ids,
        bytes: body.len(),
        latency_us,
    })
}

/// The two shapes of a list answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListShape {
    /// `{"items": [...], "nextCursor": ...}`: one page.
    Page {
        /// Whether `nextCursor` names a further page (it is not `null`).
        more: bool,
    },
    /// `[...]`: every instance (the sample before paging).
    Array,
}

impl ListShape {
    /// A few words for the discovery line.
    fn describe(self) -> &'static str {
        match self {
            Self::Page { more: true } => "a page, more follow",
            Self::Page { more: false } => "a page, the last",
            Self::Array => "a plain array of all",
        }
    }
}

/// The string `field` of each item of a list answer of either shape; items without it are
/// skipped.
fn list_ids(value: &Value, field: &str) -> Result<(ListShape, Vec<String>)> {
    let (shape, items) = match value {
        Value::Array(items) => (ListShape::Array, items),
        Value::Object(object) => match object.get("items") {
            Some(Value::Array(items)) => {
                let more = object.get("nextCursor").is_some_and(|next| !next.is_null());
                (ListShape::Page { more }, items)
            }
            _ => bail!("an object without an `items` array"),
        },
        _ => bail!("neither a JSON array nor a page object"),
    };
    let ids = items
        .iter()
        .filter_map(|item| item.get(field).and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    Ok((shape, ids))
}

/// What every client shares.
#[derive(Debug)]
struct ClientContext {
    /// The one HTTP client, its connection pool shared by all tasks.
    http: reqwest::Client,
    /// The server's base address, without a trailing `/`.
    base: String,
    /// Existing student ids.
    students: Vec<String>,
    /// Existing course ids.
    courses: Vec<String>,
    /// The share of writes.
    write_share: f64,
    /// When to stop sending.
    deadline: Instant,
    /// Distinguishes this run's new students' emails from earlier runs'.
    run_tag: String,
}

/// The kinds of requests in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    /// `GET /students/{id}`.
    GetStudent,
    /// `GET /courses/{id}`.
    GetCourse,
    /// `GET /courses`: a list (a page of the default size, or all of them before paging).
    ListCourses,
    /// `GET /students?tier=Basic`: a filtered list.
    ListBasicStudents,
    /// `POST /courses/{courseId}/enrollments`: a random existing pair (201, and 400 for a broken
    /// rule, 404 and 409 are normal answers).
    Enroll,
    /// `POST /invoices` for an existing student.
    Invoice,
    /// `POST /students` with a new unique email.
    Register,
}

impl Op {
    /// The reads, drawn evenly.
    const READS: [Self; 4] = [
        Self::GetStudent,
        Self::GetCourse,
        Self::ListCourses,
        Self::ListBasicStudents,
    ];
    /// The writes, drawn evenly.
    const WRITES: [Self; 3] = [Self::Enroll, Self::Invoice, Self::Register];

    /// Draws the next request's kind: a write with probability `write_share`.
    fn draw(rng: &mut Rng, write_share: f64) -> Self {
        if rng.unit() < write_share {
            Self::WRITES[rng.below(Self::WRITES.len())]
        } else {
            Self::READS[rng.below(Self::READS.len())]
        }
    }

    /// Whether this is a write.
    fn is_write(self) -> bool {
        Self::WRITES.contains(&self)
    }

    /// The route, for the report.
    fn label(self) -> &'static str {
        match self {
            Self::GetStudent => "GET /students/{id}",
            Self::GetCourse => "GET /courses/{id}",
            Self::ListCourses => "GET /courses",
            Self::ListBasicStudents => "GET /students?tier=Basic",
            Self::Enroll => "POST /courses/{id}/enrollments",
            Self::Invoice => "POST /invoices",
            Self::Register => "POST /students",
        }
    }
}

/// One request's outcome.
#[derive(Debug, Clone)]
struct Sample {
    /// What was asked.
    op: Op,
    /// The status code, or `None` for a transport error (no complete answer).
    status: Option<u16>,
    /// From sending until the whole body was read (or the error), in µs.
    latency_us: u64,
    /// The size of the body read.
    bytes: usize,
}

/// What one client task hands back.
#[derive(Debug, Default)]
struct ClientOutcome {
    /// Every request it sent.
    samples: Vec<Sample>,
    /// Its first few 5xx bodies and transport error messages.
    messages: Vec<String>,
}

/// One client: sends requests back to back until the deadline.
async fn client_loop(context: Arc<ClientContext>, index: usize, mut rng: Rng) -> ClientOutcome {
    let mut outcome = ClientOutcome::default();
    let mut sent = 0_u64;
    while Instant::now() < context.deadline {
        let op = Op::draw(&mut rng, context.write_share);
        let request = build_request(&context, op, &mut rng, index, sent);
        sent += 1;
        let started = Instant::now();
        let (status, bytes, message) = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.bytes().await {
                    Ok(body) => {
                        let message = (status >= 500)
                            .then(|| format!("{} -> {status}: {}", op.label(), snippet(&body)));
                        (Some(status), body.len(), message)
                    }
                    Err(error) => (
                        None,
                        0,
                        Some(format!("{} -> {status}, body lost: {error}", op.label())),
                    ),
                }
            }
            Err(error) => (
                None,
                0,
                Some(format!("{}: {}", op.label(), error_chain(&error))),
            ),
        };
        let latency_us = micros(started.elapsed());
        if outcome.messages.len() < MESSAGES_KEPT {
            outcome.messages.extend(message);
        }
        outcome.samples.push(Sample {
            op,
            status,
            latency_us,
            bytes,
        });
    }
    outcome
}

/// The request for `op`, with ids drawn from the discovered ones.
fn build_request(
    context: &ClientContext,
    op: Op,
    rng: &mut Rng,
    client: usize,
    sent: u64,
) -> reqwest::RequestBuilder {
    let base = &context.base;
    let student = rng.pick(&context.students);
    let course = rng.pick(&context.courses);
    let http = &context.http;
    match op {
        Op::GetStudent => http.get(format!("{base}/students/{student}")),
        Op::GetCourse => http.get(format!("{base}/courses/{course}")),
        Op::ListCourses => http.get(format!("{base}/courses")),
        Op::ListBasicStudents => http.get(format!("{base}/students?tier=Basic")),
        Op::Enroll => http
            .post(format!("{base}/courses/{course}/enrollments"))
            .json(&json!({ "studentId": student })),
        Op::Invoice => http
            .post(format!("{base}/invoices"))
            .json(&json!({ "customerId": student, "amount": 12.5 })),
        Op::Register => http.post(format!("{base}/students")).json(&json!({
            "firstName": "Load",
            "lastName": "Client",
            "email": format!("load-{}-{client}-{sent}@load.example", context.run_tag),
        })),
    }
}

/// An error with its sources, which say what actually failed (refused, reset, timed out).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// The start of a body, for messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut short: String = text.chars().take(200).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

/// A duration in whole µs.
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// µs as ms.
fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// The `p`-th percentile (0 < p ≤ 100) of ascending `sorted` values by nearest rank: the
/// smallest value with at least `p`% of the values at or below it. `None` when empty.
fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The figures of a group of requests (a class or a route).
#[derive(Debug, Clone, PartialEq)]
struct Stats {
    /// Requests.
    count: usize,
    /// Requests per second of the run.
    rate: f64,
    /// Latency percentiles and maximum in µs (`None` when there were no requests).
    p50: Option<u64>,
    /// See `p50`.
    p90: Option<u64>,
    /// See `p50`.
    p99: Option<u64>,
    /// See `p50`.
    max: Option<u64>,
    /// Mean body size in bytes.
    mean_bytes: f64,
    /// Requests per status code; transport errors are not here.
    statuses: BTreeMap<u16, usize>,
    /// Answers with a 5xx status.
    server_errors: usize,
    /// Requests without a complete answer.
    transport_errors: usize,
}

impl Stats {
    /// The figures of the samples `include` selects, over a run of `elapsed`.
    fn of(samples: &[Sample], elapsed: Duration, include: impl Fn(&Sample) -> bool) -> Self {
        let chosen: Vec<&Sample> = samples.iter().filter(|sample| include(sample)).collect();
        let mut latencies: Vec<u64> = chosen.iter().map(|sample| sample.latency_us).collect();
        latencies.sort_unstable();
        let mut statuses = BTreeMap::new();
        let mut transport_errors = 0;
        for sample in &chosen {
            match sample.status {
                Some(status) => *statuses.entry(status).or_insert(0) += 1,
                None => transport_errors += 1,
            }
        }
        let server_errors = statuses
            .iter()
            .filter(|(status, _)| **status >= 500)
            .map(|(_, count)| count)
            .sum();
        let count = chosen.len();
        let total_bytes: usize = chosen.iter().map(|sample| sample.bytes).sum();
        Self {
            count,
            rate: count as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            p50: percentile(&latencies, 50.0),
            p90: percentile(&latencies, 90.0),
            p99: percentile(&latencies, 99.0),
            max: latencies.last().copied(),
            mean_bytes: if count == 0 {
                0.0
            } else {
                total_bytes as f64 / count as f64
            },
            statuses,
            server_errors,
            transport_errors,
        }
    }

    /// One line of the table.
    fn row(&self, name: &str) -> String {
        let cell = |micros: Option<u64>| {
            micros.map_or_else(|| "-".to_owned(), |v| format!("{:.1}", ms(v)))
        };
        let statuses: Vec<String> = self
            .statuses
            .iter()
            .map(|(status, count)| format!("{status}:{count}"))
            .collect();
        format!(
            "{name:<34} {:>8} {:>8.1} {:>8} {:>8} {:>8} {:>8} {:>9.1} {:>5} {:>6}  {}\n",
            self.count,
            self.rate,
            cell(self.p50),
            cell(self.p90),
            cell(self.p99),
            cell(self.max),
            self.mean_bytes / 1024.0,
            self.server_errors,
            self.transport_errors,
            statuses.join(" "),
        )
    }

    /// The figures as JSON (latencies in ms).
    fn to_json(&self) -> Value {
        let ms_or_null = |micros: Option<u64>| micros.map(ms);
        let statuses: serde_json::Map<String, Value> = self
            .statuses
            .iter()
            .map(|(status, count)| (status.to_string(), json!(count)))
            .collect();
        json!({
            "count": self.count,
            "throughputRps": self.rate,
            "p50Ms": ms_or_null(self.p50),
            "p90Ms": ms_or_null(self.p90),
            "p99Ms": ms_or_null(self.p99),
            "maxMs": ms_or_null(self.max),
            "meanBytes": self.mean_bytes,
            "statuses": statuses,
            "serverErrors5xx": self.server_errors,
            "transportErrors": self.transport_errors,
        })
    }
}

/// The figures of a run: all requests, per class and per route.
#[derive(Debug)]
struct Report {
    /// How long the load ran, until the last request in flight at the deadline was answered.
    elapsed: Duration,
    /// All requests.
    all: Stats,
    /// Reads.
    reads: Stats,
    /// Writes.
    writes: Stats,
    /// Per route, in the order of [`Op`].
    ops: Vec<(Op, Stats)>,
}

impl Report {
    /// Computes the figures of `samples`, a run of `elapsed`.
    fn new(samples: &[Sample], elapsed: Duration) -> Self {
        let ops = Op::READS
            .iter()
            .chain(Op::WRITES.iter())
            .map(|&op| (op, Stats::of(samples, elapsed, |sample| sample.op == op)))
            .collect();
        Self {
            elapsed,
            all: Stats::of(samples, elapsed, |_| true),
            reads: Stats::of(samples, elapsed, |sample| !sample.op.is_write()),
            writes: Stats::of(samples, elapsed, |sample| sample.op.is_write()),
            ops,
        }
    }

    /// The table printed at the end of the run.
    fn table(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "\n{} requests in {:.2} s: {:.1} req/s; 5xx answers: {}; transport errors: {}{}",
            self.all.count,
            self.elapsed.as_secs_f64(),
            self.all.rate,
            self.all.server_errors,
            self.all.transport_errors,
            if self.all.server_errors + self.all.transport_errors > 0 {
                "   <-- ERRORS"
            } else {
                ""
            },
        );
        let _ = writeln!(
            text,
            "latency in ms, exact (every request's latency sorted, nearest rank), request sent until body read\n"
        );
        let _ = writeln!(
            text,
            "{:<34} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>5} {:>6}  statuses",
            "class / route",
            "count",
            "req/s",
            "p50",
            "p90",
            "p99",
            "max",
            "avg KiB",
            "5xx",
            "t.err"
        );
        text.push_str(&self.all.row("all"));
        text.push_str(&self.reads.row("read"));
        for (op, stats) in self.ops.iter().filter(|(op, _)| !op.is_write()) {
            text.push_str(&stats.row(&format!("  {}", op.label())));
        }
        text.push_str(&self.writes.row("write"));
        for (op, stats) in self.ops.iter().filter(|(op, _)| op.is_write()) {
            text.push_str(&stats.row(&format!("  {}", op.label())));
        }
        for (op, stats) in &self.ops {
            if stats.transport_errors > 0 || stats.server_errors > 0 {
                let _ = writeln!(
                    text,
                    "!! {}: {} 5xx answers, {} transport errors",
                    op.label(),
                    stats.server_errors,
                    stats.transport_errors
                );
            }
        }
        text
    }

    /// The figures as one JSON object.
    fn to_json(&self) -> Value {
        let ops: serde_json::Map<String, Value> = self
            .ops
            .iter()
            .map(|(op, stats)| (op.label().to_owned(), stats.to_json()))
            .collect();
        json!({
            "elapsedS": self.elapsed.as_secs_f64(),
            "all": self.all.to_json(),
            "read": self.reads.to_json(),
            "write": self.writes.to_json(),
            "routes": ops,
        })
    }
}

/// A small seeded generator (xorshift64*): not for secrets, only for a repeatable mix.
#[derive(Debug, Clone)]
struct Rng {
    /// The state, never 0.
    state: u64,
}

impl Rng {
    /// A generator from `seed` (any value, 0 included).
    fn new(seed: u64) -> Self {
        // splitmix64 spreads close seeds apart and never leaves the state at 0 in practice;
        // the `| 1` makes sure.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self {
            state: (z ^ (z >> 31)) | 1,
        }
    }

    /// The generator of client `index` in a run seeded with `seed`.
    fn for_client(seed: u64, index: u64) -> Self {
        Self::new(seed ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03))
    }

    /// The next 64 random bits.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// A number in `0..n` (`n` > 0; the modulo bias is negligible for small `n`).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A random item of a non-empty slice (`""` for an empty one).
    fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        items
            .get(self.below(items.len()))
            .map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(50));
        assert_eq!(percentile(&sorted, 90.0), Some(90));
        assert_eq!(percentile(&sorted, 99.0), Some(99));
        assert_eq!(percentile(&sorted, 100.0), Some(100));
        assert_eq!(percentile(&sorted, 0.1), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[1, 2, 3], 50.0), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), Some(2));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn stats_count_statuses_5xx_and_transport_errors() {
        let sample = |op, status, latency_us| Sample {
            op,
            status,
            latency_us,
            bytes: 10,
        };
        let samples = vec![
            sample(Op::GetStudent, Some(200), 1_000),
            sample(Op::GetStudent, Some(500), 3_000),
            sample(Op::Enroll, Some(409), 2_000),
            sample(Op::Enroll, None, 4_000),
        ];
        let report = Report::new(&samples, Duration::from_secs(2));
        assert_eq!(report.all.count, 4);
        assert!((report.all.rate - 2.0).abs() < 1e-9);
        assert_eq!(report.all.server_errors, 1);
        assert_eq!(report.all.transport_errors, 1);
        assert_eq!(report.reads.count, 2);
        assert_eq!(report.reads.p50, Some(1_000));
        assert_eq!(report.reads.max, Some(3_000));
        assert_eq!(report.writes.statuses, BTreeMap::from([(409, 1)]));
        assert_eq!(report.writes.transport_errors, 1);
        let json = report.to_json();
        assert_eq!(json["all"]["serverErrors5xx"], 1);
        assert_eq!(json["write"]["transportErrors"], 1);
        assert!(report.table().contains("<-- ERRORS"));
    }

    #[test]
    fn a_page_and_a_plain_array_both_give_ids() {
        let page = json!({
            "items": [{"studentId": "a", "firstName": "A"}, {"studentId": "b"}],
            "nextCursor": "6263"
        });
        let (shape, ids) = list_ids(&page, "studentId").unwrap();
        assert_eq!(shape, ListShape::Page { more: true });
        assert_eq!(ids, ["a", "b"]);

        let last_page = json!({"items": [{"courseId": "c"}], "nextCursor": null});
        let (shape, ids) = list_ids(&last_page, "courseId").unwrap();
        assert_eq!(shape, ListShape::Page { more: false });
        assert_eq!(ids, ["c"]);

        let array = json!([{"courseId": "c"}, {"courseId": "d"}, {"other": 1}]);
        let (shape, ids) = list_ids(&array, "courseId").unwrap();
        assert_eq!(shape, ListShape::Array);
        assert_eq!(ids, ["c", "d"]);

        assert!(list_ids(&json!({"type": "about:blank"}), "courseId").is_err());
        assert!(list_ids(&json!("text"), "courseId").is_err());
    }

    #[test]
    fn the_mix_follows_the_write_share_and_spreads_evenly() {
        let draws = 200_000;
        let mut rng = Rng::new(42);
        let mut counts: BTreeMap<Op, usize> = BTreeMap::new();
        for _ in 0..draws {
            *counts.entry(Op::draw(&mut rng, 0.2)).or_insert(0) += 1;
        }
        let share = |op: Op| counts.get(&op).copied().unwrap_or(0) as f64 / draws as f64;
        let writes: f64 = Op::WRITES.iter().map(|&op| share(op)).sum();
        assert!((writes - 0.2).abs() < 0.005, "writes {writes}");
        for op in Op::READS {
            assert!(
                (share(op) - 0.8 / 4.0).abs() < 0.005,
                "{op:?} {}",
                share(op)
            );
        }
        for op in Op::WRITES {
            assert!(
                (share(op) - 0.2 / 3.0).abs() < 0.005,
                "{op:?} {}",
                share(op)
            );
        }

        let mut rng = Rng::new(1);
        assert!((0..1_000).all(|_| !Op::draw(&mut rng, 0.0).is_write()));
        assert!((0..1_000).all(|_| Op::draw(&mut rng, 1.0).is_write()));
    }

    #[test]
    fn the_generator_is_repeatable_per_seed_and_client() {
        let run = |seed, client| {
            let mut rng = Rng::for_client(seed, client);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(run(7, 3), run(7, 3));
        assert_ne!(run(7, 3), run(7, 4));
        assert_ne!(run(7, 3), run(8, 3));
        let mut zero = Rng::new(0);
        assert_ne!(zero.next_u64(), 0);
        let mut rng = Rng::new(5);
        assert!((0..10_000).all(|_| {
            let unit = rng.unit();
            (0.0..1.0).contains(&unit)
        }));
    }
}
