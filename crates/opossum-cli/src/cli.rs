//! The command line: every command, its arguments and its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The `opossum` command line.
#[derive(Debug, Parser)]
#[command(
    name = "opossum",
    version,
    about = "Inspect, verify, export and back up Opossum event stores.",
    long_about = "Inspect, verify, export and back up Opossum event stores: folders that hold a \
tamper-evident event log. Every command takes the store's folder and never needs the \
application that wrote it. Commands that only read (stats, verify, query, tail, export, \
restore-check, browse, projections status) open the store read-only, take no lock and change \
nothing, so they work on a read-only share, on a copy, and while other processes write.",
    after_help = "Exit codes: 0 success (a check passed), 1 a check ran and failed (a broken \
chain, a tampered export, an unsuitable folder), 2 the command could not run (bad arguments, \
no store, an I/O error)."
)]
pub struct Cli {
    /// Print one JSON document (JSON lines for `tail --follow`) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Events, head, segments, size on disk, time span and event types of a store.
    Stats(StoreArg),
    /// Walk the whole hash chain; exit 0 intact, 1 broken (first break reported), 2 could not run.
    Verify(StoreArg),
    /// List the events that match filters, oldest first (or newest first with --desc).
    Query(QueryArgs),
    /// Show the last events, and with --follow every new one as it is written.
    Tail(TailArgs),
    /// Copy events into a folder, one pretty-printed file each, with a manifest of hashes.
    Export(ExportArgs),
    /// Check an export: every file's hash, the chain links, the manifest and its signature.
    VerifyExport(VerifyExportArgs),
    /// Make an Ed25519 key pair for signing exports.
    Keygen(KeygenArgs),
    /// Copy a store consistently while other processes go on writing to it.
    Backup(BackupArgs),
    /// Open a backup read-only and verify it, as restoring it would need.
    RestoreCheck(StoreArg),
    /// Check whether a folder is fit to hold a store: locks, sync, free space, permissions.
    Doctor(DoctorArgs),
    /// The read models kept in the store folder: their status, or a rebuild.
    Projections(ProjectionsArgs),
    /// Serve a read-only web page for browsing and inspecting the events.
    Browse(BrowseArgs),
    /// Copy a folder store into PostgreSQL, keeping positions, metadata and hashes, then verify.
    Migrate(MigrateArgs),
}

/// A store folder.
#[derive(Debug, Args)]
pub struct StoreArg {
    /// The store's folder (the one holding `events/` and `head.json`).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Which events: the filters `query`, `export` and `browse` share.
#[derive(Clone, Debug, Default, Args)]
pub struct Filters {
    /// Only events of this type; repeat for any of several types.
    #[arg(long = "type", value_name = "TYPE")]
    pub types: Vec<String>,
    /// Only events with this tag (`key=value`); repeat to require all of several tags.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Only events after this position.
    #[arg(long, value_name = "N")]
    pub after: Option<u64>,
    /// Only events before this position.
    #[arg(long, value_name = "N")]
    pub before: Option<u64>,
    /// Only events whose timestamp is at or after this time (RFC 3339, such as
    /// 2026-01-31T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only events whose timestamp is before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

/// `opossum query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The store's folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Which events.
    #[command(flatten)]
    pub filters: Filters,
    /// At most this many events.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Newest first.
    #[arg(long)]
    pub desc: bool,
}

/// `opossum tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The store's folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// How many of the last events to show first.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 10)]
    pub lines: usize,
    /// Keep running and show each new event as it is committed, until interrupted.
    #[arg(short, long)]
    pub follow: bool,
}

/// `opossum export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The store's folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The folder to write the export into (created; must be empty if it exists).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// Which events.
    #[command(flatten)]
    pub filters: Filters,
    /// At most this many events.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Sign the manifest with this Ed25519 secret key (made by `opossum keygen`).
    #[arg(long, value_name = "KEY")]
    pub sign: Option<PathBuf>,
}

/// `opossum verify-export`.
#[derive(Debug, Args)]
pub struct VerifyExportArgs {
    /// The export's folder.
    #[arg(value_name = "OUT")]
    pub dir: PathBuf,
    /// Require a signature by this Ed25519 public key (made by `opossum keygen`).
    #[arg(long, value_name = "PUB")]
    pub public_key: Option<PathBuf>,
}

/// `opossum keygen`.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// The secret key file to write; the public key goes beside it, with `.pub` appended.
    #[arg(value_name = "KEY")]
    pub key: PathBuf,
}

/// `opossum backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The store's folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The new folder for the copy (absolute, or relative to the current folder; it must not
    /// exist yet, or be empty).
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
}

/// `opossum doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The folder to check: a store's folder, or the folder that is to hold stores.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// `opossum projections`.
#[derive(Debug, Args)]
pub struct ProjectionsArgs {
    /// The store's folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: ProjectionsAction,
}

/// What `opossum projections` does.
#[derive(Debug, Subcommand)]
pub enum ProjectionsAction {
    /// Each read model's checkpoint, size and rebuild state, read without changing anything.
    Status,
    /// Rebuild one read model, or all of them, from the event log (needs the application's
    /// projection definitions: see the README).
    Rebuild {
        /// The projection to rebuild; all when left out.
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
}

/// `opossum browse`.
#[derive(Debug, Args)]
pub struct BrowseArgs {
    /// The store's folder.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The address to serve on; keep it on 127.0.0.1 unless the page is meant for the network.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub bind: String,
}

/// `opossum migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The folder store to copy (read only; it may go on being written: run again to copy
    /// what came since).
    #[arg(value_name = "DIR")]
    pub dir: std::path::PathBuf,
    /// The PostgreSQL database (`postgres://user:password@host:port/database`).
    #[arg(value_name = "URL")]
    pub url: String,
    /// The schema to copy into (created when missing).
    #[arg(long, value_name = "SCHEMA", default_value = "opossum")]
    pub schema: String,
}
