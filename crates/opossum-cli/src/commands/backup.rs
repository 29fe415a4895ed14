//! `opossum backup DIR DEST` and `opossum restore-check DEST`.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::verify::{Verified, verify_dir};
use crate::cli::BackupArgs;
use crate::output::human_bytes;
use crate::{Error, Outcome, Output, open_read_only};

/// What `backup` reports.
#[derive(Debug, Serialize)]
struct BackedUp {
    store: String,
    backup: String,
    events: u64,
    head: Option<u64>,
    head_hash: Option<String>,
    bytes: u64,
    seconds: f64,
}

pub(crate) fn backup(args: &BackupArgs, out: &mut Output) -> Result<Outcome, Error> {
    let dest = std::path::absolute(&args.dest).map_err(|e| Error::io("resolve", &args.dest, e))?;
    let started = Instant::now();
    // A read-only handle is enough: the backup reads what is committed and takes no lock.
    let store = open_read_only(&args.dir)?;
    let report = store.backup(&dest)?;
    let done = BackedUp {
        store: store.path().display().to_string(),
        backup: report.path.display().to_string(),
        events: report.events,
        head: report.head.map(|p| p.get()),
        head_hash: report.head_hash,
        bytes: report.bytes,
        seconds: started.elapsed().as_secs_f64(),
    };
    out.emit(&done, |w| {
        writeln!(
            w,
            "backed up {} events ({}) into {} in {:.2} s",
            done.events,
            human_bytes(done.bytes),
            done.backup,
            done.seconds
        )?;
        if let Some(hash) = &done.head_hash {
            writeln!(w, "head {} hash {hash}", done.head.unwrap_or(0))?;
        }
        writeln!(w, "check it with: opossum restore-check {}", done.backup)?;
        writeln!(
            w,
            "(read models are not copied: the application rebuilds them from the events)"
        )
    })?;
    Ok(Outcome::Done)
}

/// What `restore-check` reports.
#[derive(Debug, Serialize)]
struct RestoreCheck {
    backup: String,
    /// The copy opens as a store without any repair.
    opens: bool,
    /// Why it does not, or which repairs opening it would need.
    open_problem: Option<String>,
    identity: Option<String>,
    events: u64,
    verify: Option<Verified>,
    restorable: bool,
}

pub(crate) fn restore_check(dir: &Path, out: &mut Output) -> Result<Outcome, Error> {
    let (opens, open_problem, identity, events) = match open_read_only(dir) {
        Ok(store) => {
            let repairs = store.recovery();
            let problem = (!repairs.is_clean()).then(|| {
                let needed: Vec<String> =
                    repairs.repairs.iter().map(|r| format!("{r:?}")).collect();
                format!("it would need repairs: {}", needed.join("; "))
            });
            (
                problem.is_none(),
                problem,
                store.identity()?,
                store.stats()?.event_count,
            )
        }
        Err(e @ Error::Store(opossum_fs::Error::NotAStore { .. })) => return Err(e),
        Err(e) => (false, Some(e.to_string()), None, 0),
    };
    let verify = verify_dir(dir).ok();
    let restorable = opens && verify.as_ref().is_some_and(|v| v.intact);
    let report = RestoreCheck {
        backup: dir.display().to_string(),
        opens,
        open_problem,
        identity,
        events,
        verify,
        restorable,
    };
    out.emit(&report, |w| {
        if report.restorable {
            writeln!(
                w,
                "restorable: {} opens as a store without repair and its chain is intact",
                report.backup
            )?;
        } else {
            writeln!(w, "NOT RESTORABLE: {}", report.backup)?;
        }
        if let Some(problem) = &report.open_problem {
            writeln!(w, "  opening it: {problem}")?;
        }
        writeln!(w, "  events     {}", report.events)?;
        if let Some(id) = &report.identity {
            writeln!(w, "  identity   {id}")?;
        }
        if let Some(v) = &report.verify {
            match &v.problem {
                None => writeln!(
                    w,
                    "  chain      intact, head {} hash {}",
                    v.head.unwrap_or(0),
                    v.head_hash.as_deref().unwrap_or("-")
                )?,
                Some(p) => writeln!(
                    w,
                    "  chain      BROKEN at position {} ({}): {}",
                    p.position, p.kind, p.detail
                )?,
            }
        }
        Ok(())
    })?;
    Ok(if report.restorable {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}
