//! The commands, each in its own module; [`run`] dispatches.

mod backup;
mod doctor;
mod migrate;
mod projections;
pub(crate) mod query;
mod stats;
pub(crate) mod verify;

use std::future::Future;

use crate::cli::Command;
use crate::{Error, Outcome, Output, Tool};

/// Runs `command`, writing its result to `out`.
pub(crate) fn run(tool: &Tool, command: Command, out: &mut Output) -> Result<Outcome, Error> {
    match command {
        Command::Stats(args) => stats::run(&args.dir, out),
        Command::Verify(args) => verify::run(&args.dir, out),
        Command::Query(args) => query::query(&args, out),
        Command::Tail(args) => query::tail(&args, out),
        Command::Export(args) => crate::export::export(&args, out),
        Command::VerifyExport(args) => crate::export::verify_export(&args, out),
        Command::Keygen(args) => crate::export::keygen(&args, out),
        Command::Backup(args) => backup::backup(&args, out),
        Command::RestoreCheck(args) => backup::restore_check(&args.dir, out),
        Command::Doctor(args) => doctor::run(&args.dir, out),
        Command::Projections(args) => projections::run(tool, &args, out),
        Command::Browse(args) => crate::browse::browse(&args, out),
        Command::Migrate(args) => migrate::run(&args, out),
    }
}

/// Runs `future` to completion on a runtime of its own, ending early (as success) when the user
/// interrupts the process (Ctrl+C).
pub(crate) fn block_on<T>(
    future: impl Future<Output = Result<T, Error>>,
    interrupted: T,
) -> Result<T, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the runtime for", "the command", e))?;
    runtime.block_on(async {
        tokio::select! {
            result = future => result,
            _ = tokio::signal::ctrl_c() => Ok(interrupted),
        }
    })
}

/// A progress bar on standard error for `len` steps of `what`, drawn only when standard error
/// is a terminal.
pub(crate) fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(len),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}
