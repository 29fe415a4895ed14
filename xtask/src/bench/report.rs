//! The figures of a run: progress lines while it runs, the table of figures beside their
//! baselines at the end, the performance goals, and the flat JSON object of `--json`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

/// The figures of a run, in the order they were measured. Keys say their unit: `_per_s` is
/// events/s, `_us` microseconds, `_ms` milliseconds, and `bytes_` / `_bytes_` bytes.
#[derive(Debug, Default)]
pub(crate) struct Figures {
    entries: Vec<(&'static str, f64)>,
}

impl Figures {
    /// Keeps a figure and prints it as a progress line.
    pub(crate) fn record(&mut self, key: &'static str, value: f64) {
        eprintln!("  {key:<36} {}", format_value(key, value));
        self.entries.retain(|(k, _)| *k != key);
        self.entries.push((key, value));
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
        scenario: "raw write + fdatasync (200 B)",
        key: "raw_fsync_per_s",
        baselines: &[],
    },
    Line {
        scenario: "single append, durable",
        key: "single_append_per_s",
        baselines: &[
            Measured("raw fsync", "raw_fsync_per_s"),
            Measured("SQLite single", "sqlite_single_append_per_s"),
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
        baselines: &[Measured("single append", "single_append_per_s")],
    },
    Line {
        scenario: "16 concurrent tasks, durable",
        key: "concurrent16_append_per_s",
        baselines: &[
            Measured("single append", "single_append_per_s"),
            Measured("SQLite 16 connections", "sqlite_concurrent16_append_per_s"),
        ],
    },
    Line {
        scenario: "conditional append (invoices)",
        key: "conditional_append_per_s",
        baselines: &[Measured(
            "SQLite conditional",
            "sqlite_conditional_append_per_s",
        )],
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
        scenario: "tag query, 10 of 100k events",
        key: "tag_query_100k_us",
        baselines: &[
            Measured("SQLite tag query", "sqlite_tag_query_100k_us"),
            Dotnet(".NET tag query (10k store)", 524.0),
        ],
    },
    Line {
        scenario: "type query, 10k of 100k events",
        key: "type_query_10k_us",
        baselines: &[
            Measured("SQLite type query", "sqlite_type_query_10k_us"),
            Dotnet(".NET read by type 10k", 206_000.0),
        ],
    },
    Line {
        scenario: "read_last by type, 100k store",
        key: "read_last_us",
        baselines: &[Measured("SQLite read_last", "sqlite_read_last_us")],
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
        scenario: "bulk load, no flush, 10k batches",
        key: "bulk_load_per_s",
        baselines: &[],
    },
];

/// A performance goal of `PRODUCT.md`, checked against the figures.
struct Goal {
    text: &'static str,
    met: fn(&Figures) -> Option<bool>,
}

const GOALS: &[Goal] = &[
    Goal {
        text: "durable single append >= 0.5 x raw fsync",
        met: |f| Some(f.get("single_append_per_s")? >= 0.5 * f.get("raw_fsync_per_s")?),
    },
    Goal {
        text: "16 concurrent tasks >= 10 x single append",
        met: |f| Some(f.get("concurrent16_append_per_s")? >= 10.0 * f.get("single_append_per_s")?),
    },
    Goal {
        text: "16 concurrent tasks ahead of SQLite",
        met: |f| {
            Some(f.get("concurrent16_append_per_s")? > f.get("sqlite_concurrent16_append_per_s")?)
        },
    },
    Goal {
        text: "durable batch of 1,000 >= 100,000 events/s",
        met: |f| Some(f.get("batch1000_append_per_s")? >= 100_000.0),
    },
    Goal {
        text: "tag query (<= 10 of 100k) <= 50 us",
        met: |f| Some(f.get("tag_query_100k_us")? <= 50.0),
    },
    Goal {
        text: "read_last <= 20 us",
        met: |f| Some(f.get("read_last_us")? <= 20.0),
    },
    Goal {
        text: "open a 1,000,000-event store <= 1 s",
        met: |f| Some(f.get("open_1m_ms")? <= 1_000.0),
    },
    Goal {
        text: "projection rebuild >= 200,000 events/s",
        met: |f| Some(f.get("rebuild_per_s")? >= 200_000.0),
    },
    Goal {
        text: "index memory <= 100 bytes per event",
        met: |f| Some(f.get("bytes_per_event_in_memory")? <= 100.0),
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
        if line.baselines.is_empty() {
            rows.push([
                line.scenario.to_owned(),
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
                None => (format!("{label}: not measured"), String::new()),
            };
            let (scenario, figure) = if i == 0 {
                (line.scenario.to_owned(), figure.clone())
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
         baseline / figure for times).\n\ngoals (docs/PRODUCT.md):\n",
    );
    for goal in GOALS {
        let verdict = match (goal.met)(figures) {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let _ = writeln!(out, "  {:<44} {verdict}", goal.text);
    }
    out
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

/// A figure with its unit: `12,345 ev/s`, `8.4 µs`, `310.2 ms`, `52.1 B`.
fn format_value(key: &str, value: f64) -> String {
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
}
