//! `course-management`: serve the sample's HTTP API over a store in a local folder, or seed
//! that store with realistic data.
//!
//! ```text
//! course-management [--data-dir DIR] [--bind ADDR]      serve (the default)
//! course-management seed --size small|medium|large       fill the store, then exit
//! ```

// The binary's job is to tell the user where it listens and what it did.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use course_management::http::{DEFAULT_READ_TIMEOUT, ServeOptions, serve_with};
use course_management::seed::{Size, seed};
use course_management::{AppState, Settings, build_app};
use indicatif::{ProgressBar, ProgressStyle};
use opossum::{ErrorKind, EventStore, Query, Role};
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

    /// How many seconds a client may take to send a request's headers (then the connection is
    /// closed) and, separately, its body (then the answer is 408).
    #[arg(
        long,
        global = true,
        value_name = "SECONDS",
        env = "COURSE_MANAGEMENT_READ_TIMEOUT",
        default_value_t = DEFAULT_READ_TIMEOUT.as_secs_f64(),
        value_parser = parse_seconds
    )]
    read_timeout: f64,

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
        // Colour for a person at a terminal, none for a log file or a collector.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let options = ServeOptions {
        read_timeout: Duration::from_secs_f64(cli.read_timeout),
    };
    let outcome = match settings(&cli).await {
        Ok(settings) => match cli.command {
            None | Some(Command::Serve) => run_server(settings, cli.bind, options).await,
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

/// A positive, finite number of seconds.
fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 => Ok(seconds),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

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

async fn run_server(
    settings: Settings,
    bind: SocketAddr,
    options: ServeOptions,
) -> Result<(), Failure> {
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
    println!(
        "  docs:    http://{address}{}",
        course_management::http::DOCS_PATH
    );
    println!(
        "  OpenAPI: http://{address}{}",
        course_management::http::OPENAPI_PATH
    );
    println!("  stop with Ctrl+C");
    std::io::stdout().flush()?;
    let watcher = tokio::spawn(watch_role(state.clone()));
    let served = serve_with(listener, state, stop_signal(), options).await;
    watcher.abort();
    served?;
    println!("course-management stopped; the store is closed");
    Ok(())
}

/// Logs, at `info`, whether this process maintains the read models or follows another process
/// that does, and when that changes: a follower takes over when the maintaining process ends.
async fn watch_role(state: AppState) {
    let mut known: Option<Role> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let role = match state.app().await {
            Ok(app) => app.projections().role(),
            // The store is being deleted and reopened; look again at the next tick.
            Err(_) => continue,
        };
        match (known, role) {
            (Some(before), now) if before == now => {}
            (Some(Role::Follower), Role::Maintainer) => tracing::info!(
                "took over maintaining the read models: the process that maintained them \
                 has stopped"
            ),
            (_, Role::Follower) => tracing::info!(
                "another process maintains the read models; this one follows it and takes \
                 over when it stops"
            ),
            (_, Role::Maintainer) => tracing::info!("this process maintains the read models"),
            _ => tracing::info!(?role, "read-model role changed"),
        }
        known = Some(role);
    }
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
    let app = build_app(&settings).await.map_err(|e| -> Failure {
        // Only a store held by another process is worth pointing at the server.
        if matches!(e.kind(), ErrorKind::Busy | ErrorKind::LockTimeout) {
            format!(
                "{e}\n(is the server running on this data directory? stop it, seed, then start \
                 it again)"
            )
            .into()
        } else {
            format!(
                "cannot open the store in {}: {e}",
                settings.store_folder().display()
            )
            .into()
        }
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
    let interrupted = |progress: &ProgressBar| {
        format!(
            "interrupted during {} ({}/{} of that phase)",
            progress.message(),
            progress.position(),
            progress.length().unwrap_or(0)
        )
    };
    let report = tokio::select! {
        report = seed(&app, size, &progress) => Some(report),
        _ = tokio::signal::ctrl_c() => None,
    };
    let Some(report) = report else {
        let at = interrupted(&progress);
        progress.finish_and_clear();
        return Err(stopped_seeding(app, &at).await.into());
    };
    if let Some(len) = progress.length() {
        progress.println(format!(
            "  {:<20} {}/{len}",
            progress.message(),
            progress.position()
        ));
    }
    // The last phase has no count of its own: the projection daemon applies what the seed
    // wrote, and the spinner says how far the slowest read model is.
    progress.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.reset_elapsed();
    let head = match app.store().read_last(&Query::all()).await {
        Ok(last) => last.map_or(0, |e| e.position.get()),
        Err(_) => 0,
    };
    let caught_up = {
        let mut wait = std::pin::pin!(app.wait_for_projections(Duration::from_secs(600)));
        let mut interrupt = std::pin::pin!(tokio::signal::ctrl_c());
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                caught_up = &mut wait => break Some(caught_up),
                _ = &mut interrupt => break None,
                _ = tick.tick() => progress.set_message(read_models_message(&app, head)),
            }
        }
    };
    let Some(caught_up) = caught_up else {
        progress.finish_and_clear();
        let at = "interrupted while the read models caught up (every event was written; the \
                  server will finish applying them)";
        return Err(stopped_seeding(app, at).await.into());
    };
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

/// What the read-model phase of `seed` waits for: the projections still behind the store's
/// `head`, and the slowest one's position.
fn read_models_message(app: &opossum::OpossumApp, head: u64) -> String {
    let manager = app.projections();
    let names = manager.projections();
    let positions: Vec<u64> = names
        .iter()
        .map(|name| {
            manager
                .checkpoint(name)
                .ok()
                .flatten()
                .map_or(0, |position| position.get())
        })
        .collect();
    let behind = positions
        .iter()
        .filter(|&&position| position < head)
        .count();
    let slowest = positions.iter().copied().min().unwrap_or(head);
    format!(
        "read models: waiting for {behind} of {} projections to apply the events up to {head} \
         (the slowest is at {slowest})",
        names.len()
    )
}

/// After a Ctrl+C: how far seeding got (`at`, and the events the store now holds), once the
/// store is closed.
async fn stopped_seeding(app: opossum::OpossumApp, at: &str) -> String {
    let events = match app.store().read_last(&Query::all()).await {
        Ok(last) => last.map_or(0, |e| e.position.get()).to_string(),
        Err(e) => format!("an unknown number of ({e})"),
    };
    let closed = match app.shutdown().await {
        Ok(()) => String::new(),
        Err(e) => format!("; closing the store failed: {e}"),
    };
    format!(
        "seeding {at}; the store now holds {events} events in all, and what was written stays \
         (seed again to add more){closed}"
    )
}
