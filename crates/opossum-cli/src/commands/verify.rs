//! `opossum verify DIR`.

use std::path::Path;
use std::time::Instant;

use opossum_fs::{BreakKind, VerifyReport};
use serde::Serialize;

use crate::{Error, Outcome, Output};

/// What `verify` reports, and what the browser's banner shows.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Verified {
    pub(crate) store: String,
    pub(crate) intact: bool,
    pub(crate) events_checked: u64,
    pub(crate) head: Option<u64>,
    pub(crate) head_hash: Option<String>,
    pub(crate) uncommitted_bytes: u64,
    pub(crate) problem: Option<Problem>,
    pub(crate) verified_at: String,
    pub(crate) seconds: f64,
}

/// The first break.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Problem {
    pub(crate) position: u64,
    pub(crate) kind: &'static str,
    pub(crate) file: String,
    pub(crate) offset: u64,
    pub(crate) detail: String,
}

/// A short, stable name of a break kind.
pub(crate) fn kind_name(kind: BreakKind) -> &'static str {
    match kind {
        BreakKind::Edited => "edited",
        BreakKind::Missing => "missing",
        BreakKind::Reordered => "reordered",
        BreakKind::Truncated => "truncated",
        BreakKind::Unreadable => "unreadable",
        _ => "damaged",
    }
}

/// Verifies the store in `dir` without opening it: no lock, nothing written.
pub(crate) fn verify_dir(dir: &Path) -> Result<Verified, Error> {
    if !dir.join("events").is_dir() {
        return Err(Error::Store(opossum_fs::Error::NotAStore {
            path: dir.to_path_buf(),
        }));
    }
    let started = Instant::now();
    let report: VerifyReport = opossum_fs::verify_folder(dir)?;
    Ok(Verified {
        store: dir.display().to_string(),
        intact: report.is_intact(),
        events_checked: report.events_checked,
        head: report.head.map(|p| p.get()),
        head_hash: report.head_hash,
        uncommitted_bytes: report.uncommitted_bytes,
        problem: report.problem.map(|p| Problem {
            position: p.position,
            kind: kind_name(p.kind),
            file: p.file.display().to_string(),
            offset: p.offset,
            detail: p.detail,
        }),
        verified_at: jiff::Timestamp::now().to_string(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

pub(crate) fn run(dir: &Path, out: &mut Output) -> Result<Outcome, Error> {
    let spinner = super::progress(0, "verifying");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let verified = verify_dir(dir);
    spinner.finish_and_clear();
    let verified = verified?;
    out.emit(&verified, |w| {
        match &verified.problem {
            None => {
                writeln!(
                    w,
                    "intact: {} events checked, head {}",
                    verified.events_checked,
                    verified.head.map_or("none".to_owned(), |h| h.to_string())
                )?;
                if let Some(hash) = &verified.head_hash {
                    writeln!(w, "head hash {hash}")?;
                    writeln!(
                        w,
                        "(keep this hash somewhere else: a later rewrite of the history up to here is then detected too)"
                    )?;
                }
            }
            Some(p) => {
                writeln!(w, "BROKEN at position {}: {}", p.position, p.kind)?;
                writeln!(w, "  file   {}", p.file)?;
                writeln!(w, "  offset {}", p.offset)?;
                writeln!(w, "  {}", p.detail)?;
                writeln!(
                    w,
                    "{} events before it are intact",
                    verified.events_checked
                )?;
            }
        }
        if verified.uncommitted_bytes > 0 {
            writeln!(
                w,
                "{} bytes at the end of the log belong to no committed event (an append in progress, or one a crash cut short)",
                verified.uncommitted_bytes
            )?;
        }
        writeln!(w, "verified at {} in {:.2} s", verified.verified_at, verified.seconds)
    })?;
    Ok(if verified.intact {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}
