//! `opossum`: the command-line tool for the people around an Opossum store — an office's IT
//! staff and the auditors who inspect its records.
//!
//! Every command works on a store folder by path and never needs the application that wrote
//! it:
//!
//! | command | what it does |
//! |---|---|
//! | `opossum stats DIR` | events, head, segments, size on disk, time span, event types |
//! | `opossum verify DIR` | walks the hash chain: exit 0 intact, 1 broken, 2 could not run |
//! | `opossum query DIR [--type T]… [--tag k=v]… [--after N] [--before N] [--limit N] [--desc]` | the matching events |
//! | `opossum tail DIR [--follow]` | the last events, then each new one as it is committed |
//! | `opossum export DIR OUT [filters] [--sign KEY]` | one file per event and a manifest of hashes, optionally signed |
//! | `opossum verify-export OUT [--public-key PUB]` | checks every exported file, the chain links and the signature |
//! | `opossum keygen KEY` | an Ed25519 key pair for signing exports |
//! | `opossum backup DIR DEST` | a consistent copy while writers go on |
//! | `opossum restore-check DEST` | opens a backup read-only and verifies it |
//! | `opossum doctor DIR` | whether a folder can hold a store that several PCs write |
//! | `opossum projections DIR status\|rebuild [NAME]` | the read models kept in the store folder |
//! | `opossum browse DIR [--bind 127.0.0.1:8080]` | a read-only web page to browse and inspect events |
//! | `opossum migrate DIR postgres://… [--schema S]` | copies a folder store into PostgreSQL, keeping positions and hashes, and verifies |
//!
//! Commands print text for people, or one JSON document with `--json`, and end with an exit
//! code a script can rely on: [`EXIT_OK`] (0), [`EXIT_FAILED`] (1: a check ran and found a
//! problem), [`EXIT_NOT_RUN`] (2: bad arguments, no store, an I/O error). Commands that only
//! read open the store read-only: no lock, no repair, nothing written.
//!
//! The binary is [`Tool::new`]`().run()`. An application that defines projections runs the
//! same tool from its own binary with [`Tool::projections`], so that `projections rebuild` knows
//! them:
//!
//! ```
//! use opossum_cli::{EXIT_OK, Tool};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let folder = tempfile::tempdir()?;
//! let store = opossum_fs::FileEventStore::open(folder.path().join("records"))?;
//! let event = opossum_core::NewEvent::builder("Checked", opossum_core::Payload::from_json("{}")?).build()?;
//! store.append_blocking(vec![event], None)?;
//! let dir = store.path().to_path_buf();
//! drop(store);
//!
//! let mut out = Vec::new();
//! let code = Tool::new().run_with(["opossum", "verify", "--json", dir.to_str().unwrap()], &mut out);
//! assert_eq!(code, EXIT_OK);
//! let report: serde_json::Value = serde_json::from_slice(&out)?;
//! assert_eq!(report["intact"], true);
//! assert_eq!(report["events_checked"], 1);
//! # Ok(())
//! # }
//! ```

mod browse;
mod cli;
mod commands;
mod error;
mod export;
mod output;
mod select;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use opossum_projections::ProjectionManagerBuilder;

pub use cli::{
    BackupArgs, BrowseArgs, Cli, Command, DoctorArgs, ExportArgs, Filters, KeygenArgs, MigrateArgs,
    ProjectionsAction, ProjectionsArgs, QueryArgs, StoreArg, TailArgs, VerifyExportArgs,
};
pub use error::Error;
pub use output::{Output, pretty_json};
pub use select::{Selection, open_read_only};

/// The exit code of a command that did its work, and of a check that passed.
pub const EXIT_OK: u8 = 0;
/// The exit code of a check that ran and failed: a broken chain, a tampered export, a backup
/// that does not verify, a folder unfit for a store.
pub const EXIT_FAILED: u8 = 1;
/// The exit code of a command that could not run: bad arguments, no store, an I/O error.
pub const EXIT_NOT_RUN: u8 = 2;

/// How a command that ran ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It did its work; a check passed. Exit code [`EXIT_OK`].
    Done,
    /// A check ran and found a problem (reported in the output). Exit code [`EXIT_FAILED`].
    Failed,
}

/// Registers an application's projections on a manager builder: see [`Tool::projections`].
pub type RegisterProjections =
    dyn Fn(ProjectionManagerBuilder) -> ProjectionManagerBuilder + Send + Sync;

/// The `opossum` tool: parses a command line and runs it.
#[derive(Clone, Default)]
pub struct Tool {
    projections: Option<Arc<RegisterProjections>>,
}

impl std::fmt::Debug for Tool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tool")
            .field("projections", &self.projections.is_some())
            .finish()
    }
}

impl Tool {
    /// The tool as the `opossum` binary runs it: without projection definitions, so
    /// `projections rebuild` is refused with [`Error::NoDefinitions`].
    #[must_use]
    pub fn new() -> Tool {
        Tool::default()
    }

    /// The tool with an application's projections: `register` registers them on the builder
    /// (as the application does at start-up), and `projections DIR rebuild [NAME]` rebuilds
    /// them from the store's log.
    #[must_use]
    pub fn projections(
        mut self,
        register: impl Fn(ProjectionManagerBuilder) -> ProjectionManagerBuilder + Send + Sync + 'static,
    ) -> Tool {
        self.projections = Some(Arc::new(register));
        self
    }

    /// Runs the command line of this process, printing to standard output, and returns its
    /// exit code. Logs (warnings and errors, more with `RUST_LOG`) go to standard error.
    #[must_use]
    pub fn run(&self) -> ExitCode {
        init_logging();
        let code = self.run_with(std::env::args_os(), std::io::stdout());
        ExitCode::from(code)
    }

    /// Runs the command line `args` (the first is the program's name), writing its output to
    /// `out`, and returns the exit code. Usage errors and `--help` are printed by the parser
    /// (to standard error and `out` respectively), as for the binary.
    pub fn run_with<I, T>(&self, args: I, out: impl Write + Send) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut out = Output::new(false, Box::new(out));
        let cli = match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) => {
                let code = if e.use_stderr() {
                    EXIT_NOT_RUN
                } else {
                    EXIT_OK
                };
                if e.use_stderr() {
                    let _ = e.print();
                } else {
                    let _ = write!(out.writer(), "{}", e.render());
                }
                return code;
            }
        };
        let mut out = Output::new(cli.json, out.into_inner());
        match commands::run(self, cli.command, &mut out) {
            Ok(Outcome::Done) => EXIT_OK,
            Ok(Outcome::Failed) => EXIT_FAILED,
            // The reader of a pipe stopped reading (`opossum query … | head`): not a failure.
            Err(Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => EXIT_OK,
            Err(e) => {
                report_error(&e, &mut out);
                EXIT_NOT_RUN
            }
        }
    }

    pub(crate) fn registered_projections(&self) -> Option<&Arc<RegisterProjections>> {
        self.projections.as_ref()
    }
}

/// Tells why the command could not run: on standard error, and as a JSON document with
/// `--json` so that a script reading the output still gets one.
fn report_error(error: &Error, out: &mut Output) {
    #[allow(clippy::print_stderr)] // the binary's own diagnostics
    {
        eprintln!("error: {error}");
    }
    if out.is_json() {
        let doc = serde_json::json!({
            "error": {
                "kind": error.kind().to_string(),
                "message": error.to_string(),
            }
        });
        let _ = out.json_line(&doc, true);
    }
}

/// Warnings and errors to standard error (`RUST_LOG` for more), without colours when it is not
/// a terminal.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
