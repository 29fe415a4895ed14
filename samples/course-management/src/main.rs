//! `course-management`: serve the sample's HTTP API over a store in a local folder, or seed
//! that store with realistic data.
//!
//! ```text
//! course-management [--data-dir DIR] [--bind ADDR]      serve (the default)
//! course-management seed --size small|medium|large       fill the store, then exit
//! ```

// The binary's job is to tell the user where it listens and what it did.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use course_management::seed::{Size, seed};
use course_management::{AppState, Settings, build_app, serve};
use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

/// The Opossum course-management sample: all seven DCB examples over HTTP.
#[derive(Parser, Debug)]
#[command(name = "course-management", version)]
struct Cli {
    /// The data directory; the store is its `course-management` folder.
    #[arg(long, global = true, value_name = "DIR", default_value = "data")]
    data_dir: PathBuf,

    /// The address to serve on.
    #[arg(
        long,
        global = true,
        value_name = "ADDR",
        default_value = "127.0.0.1:5179"
    )]
    bind: SocketAddr,

    /// Keep the events in this PostgreSQL database instead of the data directory's folder
    /// (`postgres://user:password@host:port/database`; schema `course_management`), and the
    /// students' keys with them. The data directory then holds this server's read models only.
    #[arg(long, global = true, value_name = "URL", env = "OPOSSUM_DATABASE_URL")]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API (what runs without a subcommand).
    Serve,
    /// Fill the store with realistic data through the application's commands, then exit.
    Seed {
        /// How much: small ≈ hundreds of events, medium ≈ thousands, large ≈ tens of thousands.
        #[arg(long, value_enum, default_value_t = Size::Small)]
        size: Size,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("warn,course_management=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let outcome = match settings(&cli).await {
        Ok(settings) => match cli.command {
            None | Some(Command::Serve) => run_server(settings, cli.bind).await,
            Some(Command::Seed { size }) => run_seed(settings, size).await,
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// The settings the command line asks for: the data directory, and the PostgreSQL store when a
/// database URL is given.
async fn settings(cli: &Cli) -> Result<Settings, Failure> {
    let data_dir = std::path::absolute(&cli.data_dir)
        .map_err(|e| format!("cannot resolve {}: {e}", cli.data_dir.display()))?;
    let settings = Settings::new(data_dir);
    Ok(match &cli.database_url {
        Some(url) => settings.on_postgres(course_management::connect_postgres(url).await?),
        None => settings,
    })
}

async fn run_server(settings: Settings, bind: SocketAddr) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    let address = listener.local_addr()?;
    let app = build_app(&settings).await?;
    let state = AppState::new(app, settings.clone());
    println!("course-management listening on http://{address}");
    if settings.event_store.is_some() {
        println!(
            "  store:   PostgreSQL (schema {}); read models in {}",
            course_management::POSTGRES_SCHEMA,
            settings.store_folder().display()
        );
    } else {
        println!("  store:   {}", settings.store_folder().display());
    }
    println!("  OpenAPI: http://{address}/openapi.json");
    println!("  stop with Ctrl+C");
    std::io::stdout().flush()?;
    serve(listener, state, stop_signal()).await?;
    println!("course-management stopped; the store is closed");
    Ok(())
}

/// Ctrl+C, or SIGTERM on Unix.
async fn stop_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

async fn run_seed(settings: Settings, size: Size) -> Result<(), Failure> {
    let app = build_app(&settings).await.map_err(|e| {
        format!("{e}\n(is the server running on this data directory? stop it, seed, then start it again)")
    })?;
    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg:<20} [{bar:32}] {pos}/{len} ({per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(120));
    let report = seed(&app, size, &progress).await;
    progress.set_message("read models");
    let caught_up = app.wait_for_projections(Duration::from_secs(600)).await;
    progress.finish_and_clear();
    let report = report?;
    caught_up?;
    app.shutdown().await?;
    println!(
        "seeded {} events in {:.1} s into {}",
        report.events,
        report.elapsed.as_secs_f64(),
        settings.store_folder().display()
    );
    println!("  {}", report.summary());
    if report.refused > 0 {
        println!(
            "  {} commands were refused by the rules (full courses, tier limits), as in real life",
            report.refused
        );
    }
    Ok(())
}
