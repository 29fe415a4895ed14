//! The figures of a run: progress lines while it runs, the table of figures beside their
//! baselines at the end, the performance goals, and the flat JSON object of `--json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::peers;

/// The figures of a run, in the order they were measured. Keys say their unit: `_per_s` is
/// events/s, `_us` microseconds, `_ms` milliseconds, `_files` and `_events` counts, and
/// `bytes_` / `_bytes` bytes.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    entries: Vec<(&'static str, f64)>,
    /// Scenario names of the table that say what a run measured when it differs from what the
    /// key names (a smaller size in a quick run).
    labels: Vec<(&'static str, String)>,
}

impl Figures {
    /// Keeps a figure and prints it as a progress line.
    pub(crate) fn record(&mut self, key: &'static str, value: f64) {
        eprintln!("  {key:<36} {}", format_value(key, value));
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, value));
    }

    /// Names the scenario of `key` in the table `label` instead of its usual name.
    pub(crate) fn relabel(&mut self, key: &'static str, label: String) {
        self.labels.retain(|(k, _)| *k != key);
        self.labels.push((key, label));
    }

    /// The scenario name `key` has in this run, when [`Figures::relabel`] changed it.
    fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find_map(|(k, l)| (*k == key).then_some(l.as_str()))
    }

    /// The figure recorded under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<f64> {
        self.entries
            .iter()
            .find_map(|(k, v)| (*k == key).then_some(*v))
    }

    /// The figures as one flat JSON object, in measuring order.
    pub(crate) fn to_json(&self) -> String {
        let mut json = String::from("{\n");
        for (i, (key, value)) in self.entries.iter().enumerate() {
            let comma = if i + 1 < self.entries.len() { "," } else { "" };
            let value = serde_json::Number::from_f64(round(key, *value))
                .map_or_else(|| "null".to_owned(), |n| n.to_string());
            let _ = writeln!(json, "  \"{key}\": {value}{comma}");
        }
        json.push_str("}\n");
        json
    }

    /// Writes [`Figures::to_json`] to `path`.
    pub(crate) fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(path, self.to_json()).with_context(|| format!("write {}", path.display()))
    }
}

/// What a figure is compared with.
#[derive(Clone, Copy, Debug)]
enum Baseline {
    /// Another figure of the same run.
    Measured(&'static str, &'static str),
    /// A published figure of the original .NET Opossum (Windows SSD).
    Dotnet(&'static str, f64),
}

/// One line of the table: a figure and what it is compared with.
struct Line {
    scenario: &'static str,
    key: &'static str,
    baselines: &'static [Baseline],
}

use Baseline::{Dotnet, Measured};

const LINES: &[Line] = &[
    Line {
        scenario: "raw write + fdatasync (200 B), growing file",
        key: "raw_fsync_per_s",
        baselines: &[],
    },
    Line {
        scenario: "raw pwrite + fdatasync (200 B), written space",
        key: "raw_overwrite_fsync_per_s",
        baselines: &[Measured("raw fsync, growing file", "raw_fsync_per_s")],
    },
    Line {
        scenario: "single append, durable",
        key: "single_append_per_s",
        baselines: &[
            Measured("raw fsync", "raw_fsync_per_s"),
            Measured("raw overwrite fsync", "raw_overwrite_fsync_per_s"),
            Measured("SQLite single", "sqlite_single_append_per_s"),
            Measured("tephra single", "tephra_single_append_per_s"),
            Measured("UmaDB single", "umadb_single_append_per_s"),
            Dotnet(".NET durable single", 55.0),
        ],
    },
    Line {
        scenario: "single append, no flush",
        key: "no_flush_append_per_s",
        baselines: &[Dotnet(".NET no-flush", 185.0)],
    },
    Line {
        scenario: "batches of 1,000, durable",
        key: "batch1000_append_per_s",
        baselines: &[
            Measured("single append", "single_append_per_s"),
            Measured("tephra batches", "tephra_batch1000_append_per_s"),
            Measured("UmaDB batches", "umadb_batch1000_append_per_s"),
        ],
    },
    Line {
        scenario: "16 concurrent writers, durable",
        key: "concurrent16_append_per_s",
        baselines: &[
            Measured("single append", "single_append_per_s"),
            Measured("SQLite 16 connections", "sqlite_concurrent16_append_per_s"),
            Measured("tephra 16 threads", "tephra_concurrent16_append_per_s"),
            Measured("UmaDB 16 threads", "umadb_concurrent16_append_per_s"),
        ],
    },
    Line {
        scenario: "conditional append (invoices)",
        key: "conditional_append_per_s",
        baselines: &[
            Measured("SQLite conditional", "sqlite_conditional_append_per_s"),
            Measured("tephra conditional", "tephra_conditional_append_per_s"),
            Measured("UmaDB conditional", "umadb_conditional_append_per_s"),
        ],
    },
    Line {
        scenario: "4 processes, durable",
        key: "multiprocess4_append_per_s",
        baselines: &[Measured("single append", "single_append_per_s")],
    },
    Line {
        scenario: "SQLite single append",
        key: "sqlite_single_append_per_s",
        baselines: &[Measured("raw fsync", "raw_fsync_per_s")],
    },
    Line {
        scenario: "tephra single append",
        key: "tephra_single_append_per_s",
        baselines: &[Measured("raw overwrite fsync", "raw_overwrite_fsync_per_s")],
    },
    Line {
        scenario: "UmaDB single append",
        key: "umadb_single_append_per_s",
        baselines: &[Measured("raw overwrite fsync", "raw_overwrite_fsync_per_s")],
    },
    Line {
        scenario: "tag query, 10 of 100k events",
        key: "tag_query_100k_us",
        baselines: &[
            Measured("SQLite tag query", "sqlite_tag_query_100k_us"),
            Measured("tephra tag query", "tephra_tag_query_100k_us"),
            Measured("UmaDB tag query", "umadb_tag_query_100k_us"),
            Dotnet(".NET tag query (10k store)", 524.0),
        ],
    },
    Line {
        scenario: "type query, 10k of 100k events",
        key: "type_query_10k_us",
        baselines: &[
            Measured("SQLite type query", "sqlite_type_query_10k_us"),
            Measured("tephra type query", "tephra_type_query_10k_us"),
            Measured("UmaDB type query", "umadb_type_query_10k_us"),
            Dotnet(".NET read by type 10k", 206_000.0),
        ],
    },
    Line {
        scenario: "read_last by type, 100k store",
        key: "read_last_us",
        baselines: &[
            Measured("SQLite read_last", "sqlite_read_last_us"),
            Measured("tephra read_last", "tephra_read_last_us"),
            Measured("UmaDB read_last", "umadb_read_last_us"),
        ],
    },
    Line {
        scenario: "PostgreSQL single append",
        key: "pg_single_append_per_s",
        baselines: &[
            Measured("file store single", "single_append_per_s"),
            Measured("SQLite single", "sqlite_single_append_per_s"),
        ],
    },
    Line {
        scenario: "PostgreSQL conditional append (invoices)",
        key: "pg_conditional_append_per_s",
        baselines: &[
            Measured("file store conditional", "conditional_append_per_s"),
            Measured("SQLite conditional", "sqlite_conditional_append_per_s"),
        ],
    },
    Line {
        scenario: "PostgreSQL 16 concurrent writers",
        key: "pg_concurrent16_append_per_s",
        baselines: &[
            Measured("file store 16 writers", "concurrent16_append_per_s"),
            Measured("SQLite 16 connections", "sqlite_concurrent16_append_per_s"),
        ],
    },
    Line {
        scenario: "PostgreSQL tag query, 10 of 100k",
        key: "pg_tag_query_100k_us",
        baselines: &[
            Measured("file store tag query", "tag_query_100k_us"),
            Measured("SQLite tag query", "sqlite_tag_query_100k_us"),
        ],
    },
    Line {
        scenario: "PostgreSQL type query, 10k of 100k",
        key: "pg_type_query_10k_us",
        baselines: &[
            Measured("file store type query", "type_query_10k_us"),
            Measured("SQLite type query", "sqlite_type_query_10k_us"),
        ],
    },
    Line {
        scenario: "PostgreSQL read_last by type",
        key: "pg_read_last_us",
        baselines: &[
            Measured("file store read_last", "read_last_us"),
            Measured("SQLite read_last", "sqlite_read_last_us"),
        ],
    },
    Line {
        scenario: "open a closed store",
        key: "open_1m_ms",
        baselines: &[],
    },
    Line {
        scenario: "open a closed store",
        key: "open_100k_ms",
        baselines: &[],
    },
    Line {
        scenario: "verify the whole chain (events/s)",
        key: "verify_per_s",
        baselines: &[],
    },
    Line {
        scenario: "index memory per event",
        key: "bytes_per_event_in_memory",
        baselines: &[],
    },
    Line {
        scenario: "RSS growth per event at open",
        key: "rss_bytes_per_event",
        baselines: &[],
    },
    Line {
        scenario: "projection rebuild, 100k events",
        key: "rebuild_per_s",
        baselines: &[Dotnet(".NET rebuild (50 events in 4.5 ms)", 11_111.0)],
    },
    Line {
        scenario: "projection update, one event, durable",
        key: "incremental_update_us",
        baselines: &[],
    },
    Line {
        scenario: "projection update, 1,000-event batch, eventual: wall time per event",
        key: "projection_update_cpu_us",
        baselines: &[Measured("one event, durable", "incremental_update_us")],
    },
    Line {
        scenario: "projection rebuild, 1m events into 100k instances",
        key: "rebuild_1m_per_s",
        baselines: &[Measured("rebuild of 100k events", "rebuild_per_s")],
    },
    Line {
        scenario: "peak RSS growth, rebuild of 1m events",
        key: "rebuild_1m_rss_growth_bytes",
        baselines: &[],
    },
    Line {
        scenario: "projection get by key, 100k instances",
        key: "projection_get_us",
        baselines: &[],
    },
    Line {
        scenario: "projection tag query, 10 of 100k instances",
        key: "projection_tag_query_us",
        baselines: &[],
    },
    Line {
        scenario: "projection files, 100k instances",
        key: "projection_files",
        baselines: &[],
    },
    Line {
        scenario: "subscription latency, same process, durable appends",
        key: "subscribe_local_latency_us",
        baselines: &[],
    },
    Line {
        scenario: "subscription latency, other process (watch), durable appends",
        key: "subscribe_cross_process_latency_us",
        baselines: &[Measured("poll every 100 ms", "subscribe_poll_latency_us")],
    },
    Line {
        scenario: "subscription latency, other process (poll, 100 ms), durable appends",
        key: "subscribe_poll_latency_us",
        baselines: &[],
    },
    Line {
        scenario: "read_stream of 1m events",
        key: "read_stream_per_s",
        baselines: &[Measured("read() of all at once", "read_all_per_s")],
    },
    Line {
        scenario: "peak RSS growth, read_stream of 1m events",
        key: "read_stream_rss_bytes",
        baselines: &[],
    },
    Line {
        scenario: "read() of 1m events at once",
        key: "read_all_per_s",
        baselines: &[],
    },
    Line {
        scenario: "peak RSS growth, read() of 1m events at once",
        key: "read_all_rss_bytes",
        baselines: &[],
    },
    Line {
        scenario: "bulk load, no flush, 10k batches",
        key: "bulk_load_per_s",
        baselines: &[],
    },
];

/// Whether `key` is a figure of a peer store, measured only with the `peers` feature.
fn is_peer(key: &str) -> bool {
    key.starts_with("tephra_") || key.starts_with("umadb_")
}

/// What the report says of a figure that is absent.
fn not_measured(key: &str) -> &'static str {
    if is_peer(key) && !peers::BUILT {
        peers::NOT_BUILT
    } else {
        "not measured"
    }
}

/// Whether a goal was reached.
#[derive(Clone, Debug, PartialEq)]
enum Verdict {
    /// Every figure it needs was measured and it was reached.
    Met,
    /// It was not reached; the text says where.
    Missed(String),
    /// It was reached, but on a smaller run than the goal names; the text says what ran.
    MetSmaller(String),
    /// A figure it needs was not measured; the text says why.
    NotMeasured(&'static str),
}

/// A performance goal, checked against the figures.
struct Goal {
    text: &'static str,
    check: fn(&Figures) -> Verdict,
}

/// Every file-store append and query figure and the peer scenario it is compared with; a goal
/// ahead of a peer must beat each that was measured (SQLite has no batch scenario).
const AHEAD_OF: &[(&str, &str)] = &[
    ("single", "single_append_per_s"),
    ("16 writers", "concurrent16_append_per_s"),
    ("batch", "batch1000_append_per_s"),
    ("conditional", "conditional_append_per_s"),
    ("tag query", "tag_query_100k_us"),
    ("type query", "type_query_10k_us"),
    ("read_last", "read_last_us"),
];

/// The figure under `key`, or why it is absent.
fn need(f: &Figures, key: &str) -> Result<f64, Verdict> {
    f.get(key)
        .ok_or_else(|| Verdict::NotMeasured(not_measured(key)))
}

/// `ours` at least `factor` times as fast as `base`: for rates `ours >= factor * base`, for
/// times `ours * factor <= base`.
fn times_as_fast(f: &Figures, ours: &str, factor: f64, base: &str) -> Verdict {
    let (value, baseline) = match (need(f, ours), need(f, base)) {
        (Ok(v), Ok(b)) => (v, b),
        (Err(v), _) | (_, Err(v)) => return v,
    };
    let speedup = if is_time(ours) {
        baseline / value
    } else {
        value / baseline
    };
    if speedup >= factor {
        Verdict::Met
    } else {
        Verdict::Missed(format!("{speedup:.2}×"))
    }
}

/// `key` at least (rates) or at most (times) `limit`.
fn within(f: &Figures, key: &str, limit: f64) -> Verdict {
    match need(f, key) {
        Ok(v) if (is_time(key) && v <= limit) || (!is_time(key) && v >= limit) => Verdict::Met,
        Ok(v) => Verdict::Missed(format_value(key, v)),
        Err(v) => v,
    }
}

/// `key` at most `limit`, for figures where less is better that are not times (bytes, files).
fn at_most(f: &Figures, key: &str, limit: f64) -> Verdict {
    match need(f, key) {
        Ok(v) if v <= limit => Verdict::Met,
        Ok(v) => Verdict::Missed(format_value(key, v)),
        Err(v) => v,
    }
}

/// `key` at most `limit` over a store of `nominal` events, the size `events_key` records; met
/// on a smaller store says so.
fn at_most_over(f: &Figures, key: &str, limit: f64, events_key: &str, nominal: f64) -> Verdict {
    match (at_most(f, key, limit), f.get(events_key)) {
        (Verdict::Met, Some(events)) if events < nominal => Verdict::MetSmaller(format!(
            "{} events only, not {}",
            group_thousands(events),
            group_thousands(nominal)
        )),
        (verdict, _) => verdict,
    }
}

/// Every scenario of [`AHEAD_OF`] faster than the peer whose keys start with `prefix`.
fn ahead_of(f: &Figures, prefix: &str) -> Verdict {
    let mut behind = Vec::new();
    let mut absent = None;
    for (name, key) in AHEAD_OF {
        let base = format!("{prefix}{key}");
        if prefix == "sqlite_" && *key == "batch1000_append_per_s" {
            continue;
        }
        match times_as_fast(f, key, 1.0, &base) {
            Verdict::Met | Verdict::MetSmaller(_) => {}
            Verdict::Missed(ratio) => behind.push(format!("{name} {ratio}")),
            Verdict::NotMeasured(why) => absent = absent.or(Some(why)),
        }
    }
    match (behind.is_empty(), absent) {
        (false, _) => Verdict::Missed(behind.join(", ")),
        (true, Some(why)) => Verdict::NotMeasured(why),
        (true, None) => Verdict::Met,
    }
}

const GOALS: &[Goal] = &[
    Goal {
        text: "single durable append >= 1.1 x tephra",
        check: |f| times_as_fast(f, "single_append_per_s", 1.1, "tephra_single_append_per_s"),
    },
    Goal {
        text: "single durable append >= 0.85 x raw overwrite fsync",
        check: |f| times_as_fast(f, "single_append_per_s", 0.85, "raw_overwrite_fsync_per_s"),
    },
    Goal {
        text: "16 writers >= 1.1 x tephra",
        check: |f| {
            times_as_fast(
                f,
                "concurrent16_append_per_s",
                1.1,
                "tephra_concurrent16_append_per_s",
            )
        },
    },
    Goal {
        text: "16 writers >= 10 x single append",
        check: |f| times_as_fast(f, "concurrent16_append_per_s", 10.0, "single_append_per_s"),
    },
    Goal {
        text: "batch of 1,000 >= 1.1 x tephra",
        check: |f| {
            times_as_fast(
                f,
                "batch1000_append_per_s",
                1.1,
                "tephra_batch1000_append_per_s",
            )
        },
    },
    Goal {
        text: "batch of 1,000 >= 1,000,000 events/s",
        check: |f| within(f, "batch1000_append_per_s", 1_000_000.0),
    },
    Goal {
        text: "conditional append >= 1.1 x tephra",
        check: |f| {
            times_as_fast(
                f,
                "conditional_append_per_s",
                1.1,
                "tephra_conditional_append_per_s",
            )
        },
    },
    Goal {
        text: "tag query (10 of 100k) <= tephra's time",
        check: |f| times_as_fast(f, "tag_query_100k_us", 1.0, "tephra_tag_query_100k_us"),
    },
    Goal {
        text: "read_last <= 5 us",
        check: |f| within(f, "read_last_us", 5.0),
    },
    Goal {
        text: "type query (10,000 of 100k) <= 5 ms",
        check: |f| within(f, "type_query_10k_us", 5_000.0),
    },
    Goal {
        text: "open a 1,000,000-event store <= 50 ms",
        check: |f| within(f, "open_1m_ms", 50.0),
    },
    Goal {
        text: "index memory <= 100 bytes per event",
        check: |f| at_most(f, "bytes_per_event_in_memory", 100.0),
    },
    Goal {
        text: "every append and query scenario ahead of UmaDB",
        check: |f| ahead_of(f, "umadb_"),
    },
    Goal {
        text: "every append and query scenario ahead of SQLite",
        check: |f| ahead_of(f, "sqlite_"),
    },
    Goal {
        text: "projection rebuild >= 200,000 events/s",
        check: |f| within(f, "rebuild_per_s", 200_000.0),
    },
    Goal {
        text: "projection rebuild, 1m events >= 200,000 events/s",
        check: |f| within(f, "rebuild_1m_per_s", 200_000.0),
    },
    Goal {
        text: "projection get by key (100k instances) <= 10 us",
        check: |f| within(f, "projection_get_us", 10.0),
    },
    Goal {
        text: "projection tag query (10 of 100k) <= 50 us",
        check: |f| within(f, "projection_tag_query_us", 50.0),
    },
    Goal {
        text: "projection files <= 4, whatever the instances and tags",
        check: |f| at_most(f, "projection_files", 4.0),
    },
    Goal {
        text: "projection update, batch of 1,000 (eventual) <= 20 us per event",
        check: |f| within(f, "projection_update_cpu_us", 20.0),
    },
    Goal {
        text: "cross-process subscription latency (watch) <= 50 ms",
        check: |f| within(f, "subscribe_cross_process_latency_us", 50_000.0),
    },
    Goal {
        text: "cross-process subscription latency (poll, 100 ms) <= 100 ms",
        check: |f| within(f, "subscribe_poll_latency_us", 100_000.0),
    },
    Goal {
        text: "read_stream memory bounded (<= 64 MiB over 1m events)",
        check: |f| {
            at_most_over(
                f,
                "read_stream_rss_bytes",
                64.0 * 1024.0 * 1024.0,
                "read_stream_events",
                1_000_000.0,
            )
        },
    },
];

/// The table of figures beside their baselines, and the goals, as printed at the end of a run.
pub(crate) fn render(figures: &Figures) -> String {
    let mut rows: Vec<[String; 4]> = vec![[
        "scenario".to_owned(),
        "figure".to_owned(),
        "baseline".to_owned(),
        "ratio".to_owned(),
    ]];
    for line in LINES {
        let Some(value) = figures.get(line.key) else {
            continue;
        };
        let figure = format_value(line.key, value);
        let scenario = figures.label(line.key).unwrap_or(line.scenario);
        if line.baselines.is_empty() {
            rows.push([
                scenario.to_owned(),
                figure.clone(),
                String::new(),
                String::new(),
            ]);
        }
        for (i, baseline) in line.baselines.iter().enumerate() {
            let (label, base) = match *baseline {
                Measured(label, key) => (label, figures.get(key)),
                Dotnet(label, base) => (label, Some(base)),
            };
            let (base_text, ratio) = match base {
                Some(base) => (
                    format!("{label} {}", format_value(line.key, base)),
                    format_ratio(line.key, value, base),
                ),
                None => (
                    format!("{label}: {}", not_measured(key_of(baseline))),
                    String::new(),
                ),
            };
            let (scenario, figure) = if i == 0 {
                (scenario.to_owned(), figure.clone())
            } else {
                (String::new(), String::new())
            };
            rows.push([scenario, figure, base_text, ratio]);
        }
    }
    let mut widths = [0; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (r, row) in rows.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:<w2$}  {:>w3$}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        );
        if r == 0 {
            let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 6));
        }
    }
    out.push_str(
        "ratio: above 1 means faster than the baseline (figure / baseline for rates,\n\
         baseline / figure for times).\n\ngoals:\n",
    );
    let width = GOALS.iter().map(|g| g.text.len()).max().unwrap_or(0);
    for goal in GOALS {
        let verdict = match (goal.check)(figures) {
            Verdict::Met => "met".to_owned(),
            Verdict::Missed(detail) => format!("MISSED ({detail})"),
            Verdict::MetSmaller(ran) => format!("met, on {ran}"),
            Verdict::NotMeasured(why) => why.to_owned(),
        };
        let _ = writeln!(out, "  {:<width$} {verdict}", goal.text);
    }
    out
}

/// The key of a measured baseline (empty for a published one).
fn key_of(baseline: &Baseline) -> &'static str {
    match *baseline {
        Measured(_, key) => key,
        Dotnet(..) => "",
    }
}

/// True for keys whose figure is a time (smaller is better).
fn is_time(key: &str) -> bool {
    key.ends_with("_us") || key.ends_with("_ms")
}

fn round(key: &str, value: f64) -> f64 {
    if key.ends_with("_per_s") {
        value.round()
    } else {
        (value * 100.0).round() / 100.0
    }
}

/// A figure with its unit: `12,345 ev/s`, `8.4 µs`, `310.2 ms`, `3 files`, `52.1 B`,
/// `648.0 KiB`, `48.5 MiB`.
fn format_value(key: &str, value: f64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if key.ends_with("_per_s") {
        format!("{} ev/s", group_thousands(value.round()))
    } else if key.ends_with("_us") {
        match value {
            v if v >= 10_000.0 => format!("{} µs", group_thousands(v.round())),
            v if v >= 100.0 => format!("{v:.0} µs"),
            v => format!("{v:.1} µs"),
        }
    } else if key.ends_with("_ms") {
        format!("{value:.1} ms")
    } else if key.ends_with("_files") {
        format!("{} files", group_thousands(value.round()))
    } else if key.ends_with("_events") {
        format!("{} events", group_thousands(value.round()))
    } else if value >= MIB {
        format!("{:.1} MiB", value / MIB)
    } else if value >= 1024.0 {
        format!("{:.1} KiB", value / 1024.0)
    } else {
        format!("{value:.1} B")
    }
}

fn format_ratio(key: &str, value: f64, base: f64) -> String {
    let ratio = if is_time(key) {
        base / value
    } else {
        value / base
    };
    if !ratio.is_finite() {
        return String::new();
    }
    if ratio >= 100.0 {
        format!("{ratio:.0}×")
    } else {
        format!("{ratio:.2}×")
    }
}

/// `1234567` as `1,234,567`.
fn group_thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if value < 0.0 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_units() {
        assert_eq!(format_value("single_append_per_s", 12_345.4), "12,345 ev/s");
        assert_eq!(format_value("tag_query_100k_us", 8.44), "8.4 µs");
        assert_eq!(format_value("type_query_10k_us", 206_000.0), "206,000 µs");
        assert_eq!(format_value("open_1m_ms", 310.25), "310.2 ms");
        assert_eq!(format_value("bytes_per_event_in_memory", 52.14), "52.1 B");
        assert_eq!(
            format_value("rebuild_1m_rss_growth_bytes", 50_855_936.0),
            "48.5 MiB"
        );
        assert_eq!(
            format_value("read_stream_rss_bytes", 663_552.0),
            "648.0 KiB"
        );
        assert_eq!(format_value("projection_files", 3.0), "3 files");
        assert_eq!(
            format_value("rebuild_1m_events", 200_000.0),
            "200,000 events"
        );
    }

    #[test]
    fn ratios_above_one_mean_faster() {
        assert_eq!(format_ratio("single_append_per_s", 200.0, 100.0), "2.00×");
        assert_eq!(format_ratio("tag_query_100k_us", 10.0, 524.0), "52.40×");
    }

    #[test]
    fn json_is_one_flat_object_in_measuring_order() -> Result<()> {
        let mut f = Figures::default();
        f.record("raw_fsync_per_s", 5_000.4);
        f.record("tag_query_100k_us", 7.256);
        let value: serde_json::Value = serde_json::from_str(&f.to_json())?;
        assert_eq!(value["raw_fsync_per_s"], 5_000.0);
        assert_eq!(value["tag_query_100k_us"], 7.26);
        assert!(f.to_json().find("raw").lt(&f.to_json().find("tag")));
        Ok(())
    }

    #[test]
    fn the_table_shows_each_baseline_and_skips_what_was_not_measured() {
        let mut f = Figures::default();
        f.record("raw_fsync_per_s", 1_000.0);
        f.record("single_append_per_s", 800.0);
        let table = render(&f);
        assert!(table.contains("0.80×"), "{table}");
        assert!(table.contains("SQLite single: not measured"), "{table}");
        assert!(table.contains("14.55×"), "{table}");
        assert!(!table.contains("open a closed store"), "{table}");
    }

    #[test]
    fn a_relabelled_scenario_says_what_ran() {
        let mut f = Figures::default();
        f.relabel(
            "rebuild_1m_per_s",
            "projection rebuild, 200k events into 20k instances".to_owned(),
        );
        f.record("rebuild_1m_per_s", 250_000.0);
        f.record("projection_files", 3.0);
        let table = render(&f);
        assert!(table.contains("rebuild, 200k events into 20k"), "{table}");
        assert!(!table.contains("rebuild, 1m events into"), "{table}");
        let files = table.lines().find(|l| l.contains("projection files <= 4"));
        assert!(files.is_some_and(|l| l.ends_with("met")), "{table}");
    }

    #[test]
    fn goals_say_met_missed_or_why_not_measured() {
        let mut f = Figures::default();
        f.record("single_append_per_s", 1_200.0);
        f.record("tephra_single_append_per_s", 1_000.0);
        f.record("umadb_single_append_per_s", 1_300.0);
        f.record("read_last_us", 4.0);
        f.record("umadb_read_last_us", 40.0);
        let table = render(&f);
        let goal = |text: &str| {
            table
                .lines()
                .find(|l| l.trim_start().starts_with(text))
                .map(|l| l[2 + text.len()..].trim().to_owned())
        };
        assert_eq!(
            goal("single durable append >= 1.1 x tephra").as_deref(),
            Some("met")
        );
        assert_eq!(goal("read_last <= 5 us").as_deref(), Some("met"));
        assert_eq!(
            goal("every append and query scenario ahead of UmaDB").as_deref(),
            Some("MISSED (single 0.92×)")
        );
        assert_eq!(
            goal("type query (10,000 of 100k) <= 5 ms").as_deref(),
            Some("not measured")
        );
    }

    #[test]
    fn a_goal_met_on_a_smaller_store_says_so() {
        let goal = "read_stream memory bounded";
        let mut f = Figures::default();
        f.record("read_stream_events", 200_000.0);
        f.record("read_stream_rss_bytes", 3_000_000.0);
        let table = render(&f);
        let line = table.lines().find(|l| l.contains(goal));
        assert!(
            line.is_some_and(|l| l.ends_with("met, on 200,000 events only, not 1,000,000")),
            "{table}"
        );
        f.record("read_stream_events", 1_000_000.0);
        let table = render(&f);
        let line = table.lines().find(|l| l.contains(goal));
        assert!(line.is_some_and(|l| l.ends_with(" met")), "{table}");
    }

    #[test]
    fn peer_baselines_say_when_the_build_leaves_them_out() {
        let mut f = Figures::default();
        f.record("single_append_per_s", 800.0);
        let table = render(&f);
        assert!(table.contains("tephra single: not measured"), "{table}");
        assert_eq!(
            table.contains(&format!("tephra single: {}", peers::NOT_BUILT)),
            !peers::BUILT,
            "{table}"
        );
    }
}
