//! `opossum doctor DIR`.

use std::path::Path;

use opossum_fs::{FileSystemKind, Outcome as ProbeOutcome};
use serde::Serialize;

use crate::output::human_bytes;
use crate::{Error, Outcome, Output};

/// What `doctor` reports.
#[derive(Debug, Serialize)]
struct Doctor {
    folder: String,
    suitable: bool,
    file_system: String,
    network: bool,
    available_bytes: Option<u64>,
    holds_store: bool,
    /// `store.lease` exists: a process is appending right now, or one died while appending
    /// (the next writer takes it over once it is stale).
    lease_present: bool,
    read_only: bool,
    probes: Vec<ProbeReport>,
    warnings: Vec<String>,
    several_pcs: String,
}

#[derive(Debug, Serialize)]
struct ProbeReport {
    name: &'static str,
    required: bool,
    outcome: &'static str,
    detail: String,
}

fn outcome_name(outcome: ProbeOutcome) -> &'static str {
    match outcome {
        ProbeOutcome::Passed => "passed",
        ProbeOutcome::Failed => "failed",
        ProbeOutcome::Unsupported => "unsupported",
        ProbeOutcome::NotRun => "not run",
    }
}

pub(crate) fn run(dir: &Path, out: &mut Output) -> Result<Outcome, Error> {
    let check = opossum_fs::check_folder(dir)?;
    let holds_store = dir.join("events").is_dir();
    let read_only = std::fs::metadata(dir)
        .map(|m| m.permissions().readonly())
        .unwrap_or(false);
    let network = matches!(
        check.file_system(),
        FileSystemKind::Network(_) | FileSystemKind::UserSpace | FileSystemKind::Unknown
    );
    let several_pcs = if !check.is_suitable() {
        "Do not put a store here: a behaviour the store relies on failed (see above). Appends \
         could be lost or the log damaged."
            .to_owned()
    } else if network {
        "Several PCs may write here only if every one of them reaches the folder through the same \
         kind of share and the server honours locks across clients. The store takes a lease file \
         (store.lease) by exclusive create for every commit and re-reads the log under it, so two \
         PCs never append at once; a PC that loses power while appending leaves a lease that the \
         next writer takes over after stale_lock_after (10 s by default). Try it: append from two \
         PCs at once and run `opossum verify` on the folder."
            .to_owned()
    } else {
        "This is a local file system: processes of this PC may share the store. Other PCs can \
         share it only through a network share of this folder; run `opossum doctor` on the share \
         from each of them."
            .to_owned()
    };
    let report = Doctor {
        folder: check.path().display().to_string(),
        suitable: check.is_suitable(),
        file_system: check.file_system().to_string(),
        network,
        available_bytes: check.available_bytes(),
        holds_store,
        lease_present: dir.join("store.lease").exists(),
        read_only,
        probes: check
            .probes()
            .iter()
            .map(|p| ProbeReport {
                name: p.name.as_str(),
                required: p.name.is_required(),
                outcome: outcome_name(p.outcome),
                detail: p.detail.clone(),
            })
            .collect(),
        warnings: check.warnings(),
        several_pcs,
    };
    out.emit(&report, |w| {
        let verdict = if report.suitable {
            "suitable"
        } else {
            "NOT SUITABLE"
        };
        writeln!(w, "{}: {verdict} for a store", report.folder)?;
        writeln!(w, "file system  {}", report.file_system)?;
        if let Some(free) = report.available_bytes {
            writeln!(w, "free space   {}", human_bytes(free))?;
        }
        if report.holds_store {
            writeln!(w, "store        present")?;
            if report.lease_present {
                writeln!(
                    w,
                    "lease        store.lease present: a process is appending now, or one stopped while appending"
                )?;
            }
        }
        writeln!(w)?;
        for p in check.probes() {
            writeln!(w, "{p}")?;
        }
        for note in &report.warnings {
            writeln!(w)?;
            writeln!(w, "note: {note}")?;
        }
        writeln!(w)?;
        writeln!(w, "several PCs: {}", report.several_pcs)
    })?;
    Ok(if report.suitable {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}
