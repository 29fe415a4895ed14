//! Wiring: every feature's projections and handlers on one [`OpossumApp`].

use std::path::PathBuf;
use std::sync::Arc;

use opossum::records::KeyStore;
use opossum::{
    Clock, DomainEvent, Durability, EventStore, EventStoreError, Opossum, OpossumApp,
    OpossumBuilder, RequiredMetadata, SystemClock, Upcasters,
};

use crate::{
    admin, announcements, course_aggregate, course_books, courses, enrollment, exam_tokens, http,
    invoices, students,
};

/// The store's name, and so its folder's name inside the data directory.
pub const STORE_NAME: &str = "course-management";

/// How often the daemon of the process maintaining the read models wakes up unasked. Appends by
/// other processes (a second server, `seed`) wake it at once already — the file store reports
/// their commits — so this is the fallback, and the pace at which a following process tries
/// to take over the read models once the maintainer has gone. One `read_last` per poll.
const POLLING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// Where the sample keeps its data and how it runs.
#[derive(Clone)]
pub struct Settings {
    /// The data directory (absolute); the store is its `course-management` folder.
    pub data_dir: PathBuf,
    /// The clock every handler stamps events with and decides by.
    pub clock: Arc<dyn Clock>,
    /// Whether appends and projection files are on stable storage before they count
    /// ([`Durability::Immediate`], the default) or once the operating system has them (tests may
    /// choose [`Durability::Eventual`] for speed).
    pub durability: Durability,
    /// An event store to use instead of the folder store, such as one in PostgreSQL
    /// ([`connect_postgres`], [`Settings::on_postgres`]). The store folder then holds this
    /// server's read models only.
    pub event_store: Option<Arc<dyn EventStore>>,
    /// Where the students' keys live (their personal data is sealed with them): `None` for the
    /// store folder's `keys/`. Servers sharing one event store must share its keys too, or
    /// one cannot read the students another registered: on PostgreSQL, the store itself keeps
    /// them ([`Settings::on_postgres`]).
    pub key_store: Option<Arc<dyn KeyStore>>,
}

impl Settings {
    /// Settings for the data directory `data_dir`, with the system clock, with immediate
    /// durability.
    pub fn new(data_dir: impl Into<PathBuf>) -> Settings {
        Settings {
            data_dir: data_dir.into(),
            clock: Arc::new(SystemClock),
            durability: Durability::Immediate,
            event_store: None,
            key_store: None,
        }
    }

    /// The same settings with the events, and the students' keys, in the PostgreSQL store
    /// `store` (see [`connect_postgres`]): every server on the database seals and opens the
    /// students' personal data with the same keys, and a forget on one destroys the key for
    /// all.
    #[must_use]
    pub fn on_postgres(mut self, store: Arc<opossum_postgres::PgEventStore>) -> Settings {
        self.key_store = Some(Arc::clone(&store) as Arc<dyn KeyStore>);
        self.event_store = Some(store);
        self
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
            .field("durability", &self.durability)
            .field("event_store", &self.event_store.is_some())
            .field("key_store", &self.key_store.is_some())
            .finish_non_exhaustive()
    }
}

/// Opens the store and wires every feature: its projections and its command and query
/// handlers. Every message the HTTP routes send must have a handler, or the build fails.
///
/// # Errors
/// The facade's: invalid settings, a store that does not open, unreadable projection files,
/// [`opossum::MediatorError::MissingHandlers`] for a route's message that no feature handles.
pub async fn build_app(settings: &Settings) -> Result<OpossumApp, opossum::Error> {
    let builder = register_features(open(settings)?);
    http::require_handlers(builder).build().await
}

/// The store of `settings`, before any feature is registered: read through [`upcasters`],
/// requiring [`required_metadata`] on every append (the folder store; a PostgreSQL store is
/// given it by [`connect_postgres`]), and sealing personal data with the keys of
/// [`Settings::key_store`] — by default the store folder's `keys/` (for another event store
/// without a key store of its own: this server's data directory's `course-management/keys/`).
fn open(settings: &Settings) -> Result<OpossumBuilder, EventStoreError> {
    let builder = match &settings.event_store {
        Some(store) => Opossum::builder().event_store(Arc::clone(store)),
        None => Opossum::builder(),
    };
    let builder = match &settings.key_store {
        Some(keys) => builder.key_store(Arc::clone(keys)),
        None => builder.shred_personal_data(),
    };
    Ok(builder
        .store_path(settings.store_folder())
        .durability(settings.durability)
        // Several copies of the server (and `seed`) may share the store: the store wakes the
        // daemon of the one maintaining the read models on the others' appends; this is the
        // fallback.
        .polling_interval(POLLING_INTERVAL)
        .clock(Arc::clone(&settings.clock))
        .upcasters(upcasters()?)
        .require_metadata(required_metadata()?))
}

/// The schema evolution of the sample's events, applied to every read (decision models,
/// projections, read models, the live feed); the stored lines never change:
///
/// | event | from | to | change |
/// |---|---|---|---|
/// | `CourseCreated` | 1 | 2 | the key `maxStudentCount` became `capacity` ([`courses::course_created_v1_to_v2`]) |
///
/// # Errors
/// Never for these registrations; the signature carries the upcasters' validation.
pub fn upcasters() -> Result<Upcasters, EventStoreError> {
    Upcasters::new().upcast(
        courses::CourseCreated::EVENT_TYPE,
        1,
        courses::course_created_v1_to_v2,
    )
}

/// The metadata every append must carry: [`store::HOST_FIELD`](crate::store::HOST_FIELD), the
/// machine it came from (every event the sample builds gets it from
/// [`Writer::event`](crate::store::Writer::event) or
/// [`Writer::metadata`](crate::store::Writer::metadata)). An append without it is refused,
/// with nothing written.
///
/// # Errors
/// Never for this name; the signature carries the names' validation.
pub fn required_metadata() -> Result<RequiredMetadata, EventStoreError> {
    RequiredMetadata::new([crate::store::HOST_FIELD])
}

/// The PostgreSQL schema the sample's events live in.
pub const POSTGRES_SCHEMA: &str = "course_management";

/// Connects to the sample's store in the PostgreSQL database at `url` (schema
/// [`POSTGRES_SCHEMA`], created on first use, with [`postgres_options`]), for
/// [`Settings::on_postgres`]. Every server on the database shares its events and the students'
/// keys (the schema's `subject_keys`); each keeps its read models in its own data directory,
/// rebuilt from the shared log when missing.
///
/// # Errors
/// The PostgreSQL store's: the URL does not parse, the server cannot be reached, the schema
/// cannot be created.
pub async fn connect_postgres(
    url: &str,
) -> Result<Arc<opossum_postgres::PgEventStore>, opossum_postgres::Error> {
    let store =
        opossum_postgres::PgEventStore::connect(url, postgres_options(POSTGRES_SCHEMA)?).await?;
    Ok(Arc::new(store))
}

/// The PostgreSQL store's options for the sample's events in `schema`: it requires
/// [`required_metadata`] on every append, as the folder store does.
///
/// # Errors
/// As [`required_metadata`].
pub fn postgres_options(schema: &str) -> Result<opossum_postgres::PgOptions, EventStoreError> {
    Ok(opossum_postgres::PgOptions::new()
        .schema(schema)
        .require_metadata(required_metadata()?))
}

/// Registers a feature's projections and handlers.
type Register = fn(OpossumBuilder) -> OpossumBuilder;

/// Every feature, by the module that registers it.
const FEATURES: &[(&str, Register)] = &[
    ("students", students::register),
    ("courses", courses::register),
    ("enrollment", enrollment::register),
    ("invoices", invoices::register),
    ("exam_tokens", exam_tokens::register),
    ("course_books", course_books::register),
    ("announcements", announcements::register),
    ("course_aggregate", course_aggregate::register),
    ("admin", admin::register),
];

/// Every feature's projections and handlers but those of the features named in `skip`.
fn register_features_except(builder: OpossumBuilder, skip: &[&str]) -> OpossumBuilder {
    FEATURES
        .iter()
        .filter(|(name, _)| !skip.contains(name))
        .fold(builder, |builder, (_, register)| register(builder))
}

/// Every feature's projections and handlers.
fn register_features(builder: OpossumBuilder) -> OpossumBuilder {
    register_features_except(builder, &[])
}

#[cfg(test)]
mod tests {
    use opossum::{MediatorError, OpossumBuilder};

    use super::*;

    fn settings(dir: &tempfile::TempDir) -> Settings {
        Settings {
            durability: Durability::Eventual,
            ..Settings::new(dir.path())
        }
    }

    /// Every feature but the enrolment, which handles the one message of its route.
    fn without_enrollment(builder: OpossumBuilder) -> OpossumBuilder {
        register_features_except(builder, &["enrollment"])
    }

    #[tokio::test]
    async fn a_route_whose_message_has_no_handler_fails_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let builder = without_enrollment(open(&settings(&dir)).unwrap());
        let error = http::require_handlers(builder).build().await.unwrap_err();
        let opossum::Error::Mediator(MediatorError::MissingHandlers { messages }) = &error else {
            panic!("not a missing handler: {error}");
        };
        assert_eq!(
            messages,
            &[std::any::type_name::<enrollment::EnrollStudent>()],
            "{error}"
        );
        // Without the requirement, the same app builds, and fails at the first enrolment.
        let dir = tempfile::tempdir().unwrap();
        let unchecked = without_enrollment(open(&settings(&dir)).unwrap())
            .build()
            .await
            .unwrap();
        assert!(!unchecked.mediator().handles::<enrollment::EnrollStudent>());
        unchecked.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn an_append_without_the_host_field_is_refused() {
        use opossum::{ErrorKind, NewEvent, Payload};

        let dir = tempfile::tempdir().unwrap();
        let app = build_app(&settings(&dir)).await.unwrap();
        let bare = NewEvent::builder("Probe", Payload::from_json("{}").unwrap())
            .build()
            .unwrap();
        let refused = app.store().append(vec![bare], None).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::InvalidInput, "{refused}");
        assert!(
            matches!(refused, EventStoreError::MissingMetadata { ref field, .. } if field == "host"),
            "{refused}"
        );
        let signed = NewEvent::builder("Probe", Payload::from_json("{}").unwrap())
            .field("host", "test")
            .build()
            .unwrap();
        app.store().append(vec![signed], None).await.unwrap();
        app.shutdown().await.unwrap();
    }

    #[tokio::test]
    async fn every_feature_handles_every_message_its_routes_send() {
        let dir = tempfile::tempdir().unwrap();
        let app = build_app(&settings(&dir)).await.unwrap();
        assert!(app.mediator().handles::<enrollment::EnrollStudent>());
        app.shutdown().await.unwrap();
    }
}
