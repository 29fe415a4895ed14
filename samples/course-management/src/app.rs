//! Wiring: every feature's projections and handlers on one [`OpossumApp`].

use std::path::PathBuf;
use std::sync::Arc;

use opossum::{Clock, Opossum, OpossumApp, SystemClock};

use crate::{
    admin, announcements, course_aggregate, course_books, courses, enrollment, exam_tokens,
    invoices, students,
};

/// The store's name, and so its folder's name inside the data directory.
pub const STORE_NAME: &str = "course-management";

/// How often the process maintaining the read models looks for appends made by other processes
/// (a second server, `seed`): they see their own writes in the read models within about this
/// long. One `read_last` of the store per poll.
const POLLING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Where the sample keeps its data and how it runs.
#[derive(Clone)]
pub struct Settings {
    /// The data directory (absolute); the store is its `course-management` folder.
    pub data_dir: PathBuf,
    /// The clock every handler stamps events with and decides by.
    pub clock: Arc<dyn Clock>,
    /// Whether appends and projection files are synced to stable storage before they count
    /// (default `true`; tests may turn it off for speed).
    pub durable: bool,
}

impl Settings {
    /// Settings for the data directory `data_dir`, with the system clock, durable.
    pub fn new(data_dir: impl Into<PathBuf>) -> Settings {
        Settings {
            data_dir: data_dir.into(),
            clock: Arc::new(SystemClock),
            durable: true,
        }
    }

    /// The store folder.
    #[must_use]
    pub fn store_folder(&self) -> PathBuf {
        self.data_dir.join(STORE_NAME)
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("data_dir", &self.data_dir)
            .field("durable", &self.durable)
            .finish_non_exhaustive()
    }
}

/// Opens the store and wires every feature: its projections and its command and query
/// handlers.
///
/// # Errors
/// The facade's: invalid settings, a store that does not open, unreadable projection files.
pub async fn build_app(settings: &Settings) -> Result<OpossumApp, opossum::Error> {
    let builder = Opossum::builder()
        .store_path(&settings.data_dir)
        .store_name(STORE_NAME)
        .flush(settings.durable)
        .flush_projections(settings.durable)
        // Several copies of the server (and `seed`) may share the store: the one maintaining the
        // read models looks for the others' appends this often (one `read_last` per poll).
        .polling_interval(POLLING_INTERVAL)
        .clock(Arc::clone(&settings.clock));
    let builder = students::register(builder);
    let builder = courses::register(builder);
    let builder = enrollment::register(builder);
    let builder = invoices::register(builder);
    let builder = exam_tokens::register(builder);
    let builder = course_books::register(builder);
    let builder = announcements::register(builder);
    let builder = course_aggregate::register(builder);
    let builder = admin::register(builder);
    builder.build().await
}
