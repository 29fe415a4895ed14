//! Repository chores, reached through `cargo xtask <command>` (an alias in `.cargo/config.toml`
//! for a release build of this binary).
//!
//! - `cargo xtask bench [--quick] [--json FILE] [--dir DIR] [--only TEXT]` measures what the file store does on
//!   this disk, beside its baselines measured in the same run: the disk's raw
//!   `write + fdatasync` rates, the same DCB store on SQLite, and the peer embedded DCB stores
//!   tephra and UmaDB (with the `peers` feature, on in the alias). See `docs/benchmarks.md`.
//! - `cargo xtask load [--url URL] [--clients N] [--duration SECONDS] [--write-share SHARE]
//!   [--seed N] [--json FILE]` drives a running course-management server with concurrent HTTP
//!   clients and reports throughput, latency percentiles and status codes (see `load.rs`).

// Printing is this binary's job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod load;

use clap::{Parser, Subcommand};

/// Repository chores for Opossum.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure append throughput and query latency on this disk, each beside its baselines
    /// (raw write + fdatasync, an equivalent DCB store on SQLite, and tephra and UmaDB with the
    /// `peers` feature) measured in the same run.
    Bench(bench::BenchArgs),
    /// One child process of `bench`, which starts it by running this binary again.
    #[command(subcommand, hide = true)]
    BenchChild(bench::ChildRole),
    /// Drive a running course-management server with concurrent clients (a mix of reads and
    /// writes) and report throughput, latency percentiles and status codes.
    Load(load::LoadArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(&args),
        Command::BenchChild(role) => bench::run_child(role),
        Command::Load(args) => load::run(&args),
    }
}
