//! [`PgEventStore`]: the DCB event store on PostgreSQL.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use opossum_core::line::{ChainHash, decode_line, encode_line, split_hash};
use opossum_core::{
    AppendCondition, Direction, EventStore, NewEvent, Position, Query, ReadOptions, SequencedEvent,
    validate_append,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_postgres::NoTls;

use crate::sql::{self, Params};
use crate::{Error, PgOptions, schema};

/// Appends committed in one transaction at most.
const MAX_GROUP_APPENDS: usize = 256;
/// Events committed in one transaction at most (a larger single append is one transaction).
const MAX_GROUP_EVENTS: usize = 10_000;
/// Rows per `INSERT` statement (5 parameters each; PostgreSQL takes at most 65,535).
const INSERT_CHUNK: usize = 1_000;
/// Rows read per statement by [`PgEventStore::verify`].
const VERIFY_BATCH: i64 = 10_000;

/// The DCB event store on PostgreSQL: the same [`EventStore`] as the folder store, with the
/// same positions, the same event lines and the same hash chain (see `docs/adr/0016-…`).
///
/// - **Appends are serialized by the lock on the store's head row** (`SELECT … FOR UPDATE`),
///   taken before anything else and held to the commit: the condition check, the new positions
///   and the insert are one step against every other connection, process and server, and
///   positions commit in order, so a reader never sees position *n + 1* before *n*.
/// - **Group commit**: concurrent appends of one process share a transaction, each with its
///   own condition checked in order — against the table and against the appends before it in
///   the group.
/// - Type and tag queries use indexes (`(type, position)` and GIN on `tags`); `read_last` and
///   `head` are one index lookup.
/// - Subscribers are woken by `LISTEN/NOTIFY` and always re-read by position; a lost
///   notification is caught by reading the head every [`PgOptions::poll_interval`].
///
/// The store runs its connections on a small runtime of its own, so it can be used from any
/// tokio runtime, and from blocking code through the `…_blocking` methods.
///
/// ```no_run
/// use opossum_core::{EventStore, NewEvent, Payload, Query, ReadOptions};
/// use opossum_postgres::{PgEventStore, PgOptions};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = PgEventStore::connect("postgres://app@db.example/records", PgOptions::new()).await?;
/// let event = NewEvent::builder("InvoiceCreated", Payload::from_json(r#"{"number":1}"#)?)
///     .tag("invoice", "1")
///     .build()?;
/// store.append(vec![event], None).await?;
/// let all = store.read(&Query::all(), ReadOptions::new()).await?;
/// assert_eq!(all.len(), 1);
/// # Ok(())
/// # }
/// ```
pub struct PgEventStore {
    inner: Arc<Inner>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for PgEventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEventStore")
            .field("target", &self.inner.target)
            .field("schema", &self.inner.schema)
            .finish_non_exhaustive()
    }
}

/// What the store's tasks share.
pub(crate) struct Inner {
    pool: Pool,
    pub(crate) schema: String,
    target: String,
    options: PgOptions,
    config: tokio_postgres::Config,
    /// The highest position known committed: raised by this store's commits and by
    /// notifications of others'.
    head: watch::Sender<u64>,
    appends: mpsc::UnboundedSender<AppendRequest>,
}

/// One append waiting for the group commit.
struct AppendRequest {
    events: Vec<NewEvent>,
    condition: Option<AppendCondition>,
    reply: oneshot::Sender<Result<Position, Error>>,
}

/// What [`PgEventStore::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgVerifyReport {
    /// Events checked and found intact, up to the first problem.
    pub events_checked: u64,
    /// The last intact position.
    pub head: Option<Position>,
    /// Its chain hash, in hex (the same as the folder store's `verify` reports for the same
    /// events).
    pub head_hash: Option<String>,
    /// The first problem: its position and what is wrong. `None` when intact.
    pub problem: Option<(u64, String)>,
}

impl PgVerifyReport {
    /// True when no problem was found.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// The notification channel of `schema`'s store.
fn channel(schema: &str) -> String {
    let mut name = format!("opossum_{schema}");
    name.truncate(63);
    name
}

/// `host:port/db` of `config`, without user or password.
fn target_of(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

impl PgEventStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`),
    /// creates or upgrades the store's tables in [`PgOptions::schema`], and starts the group
    /// commit and the notification listener.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] for bad options or a URL that does not parse,
    /// [`Error::Unavailable`] when the server cannot be reached, [`Error::Database`] when the
    /// schema cannot be created, [`Error::SchemaTooNew`].
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgEventStore, Error> {
        let (runtime, setup) = PgEventStore::prepare(url, options)?;
        let inner = setup_on(&runtime, setup).await;
        PgEventStore::started(runtime, inner)
    }

    /// [`connect`](Self::connect) for blocking code (it may also be called from inside a
    /// runtime: it blocks only the calling thread).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub fn connect_blocking(url: &str, options: PgOptions) -> Result<PgEventStore, Error> {
        let (runtime, setup) = PgEventStore::prepare(url, options)?;
        let inner = wait_blocking(runtime.handle(), setup);
        PgEventStore::started(runtime, inner)
    }

    /// The store on `runtime`, once its set-up succeeded; otherwise the runtime is shut down
    /// (dropping it inside an async context would panic; this does not) and the error returned.
    fn started(
        runtime: tokio::runtime::Runtime,
        setup: Result<Arc<Inner>, Error>,
    ) -> Result<PgEventStore, Error> {
        match setup {
            Ok(inner) => Ok(PgEventStore {
                inner,
                runtime: Some(runtime),
            }),
            Err(e) => {
                runtime.shutdown_background();
                Err(e)
            }
        }
    }

    fn prepare(
        url: &str,
        options: PgOptions,
    ) -> Result<
        (
            tokio::runtime::Runtime,
            impl Future<Output = Result<Arc<Inner>, Error>> + Send + 'static,
        ),
        Error,
    > {
        options.validate()?;
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e| Error::InvalidOptions {
                problems: vec![format!(
                    "the database URL does not parse ({e}); write it as postgres://user:password@host:port/database"
                )],
            })?;
        config.connect_timeout(options.get_connect_timeout());
        if config.get_application_name().is_none() {
            config.application_name("opossum");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("opossum-postgres")
            .enable_all()
            .build()
            .map_err(|e| Error::Unavailable {
                target: target_of(&config),
                source: Box::new(e),
            })?;
        Ok((runtime, setup(config, options)))
    }

    /// Runs `future` on the store's runtime and waits for it from any context.
    /// What the store's tasks share, for the key store's queries.
    pub(crate) fn shared(&self) -> Arc<Inner> {
        Arc::clone(&self.inner)
    }

    pub(crate) async fn on_runtime<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let Some(runtime) = &self.runtime else {
            return Err(Error::Closed);
        };
        runtime
            .handle()
            .spawn(future)
            .await
            .map_err(|_| Error::Closed)?
    }

    /// Runs `future` on the store's runtime and blocks the calling thread until it is done.
    fn blocking<T: Send + 'static>(
        &self,
        future: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let Some(runtime) = &self.runtime else {
            return Err(Error::Closed);
        };
        wait_blocking(runtime.handle(), future)
    }

    /// [`EventStore::append`] for blocking code.
    ///
    /// # Errors
    /// As [`EventStore::append`].
    pub fn append_blocking(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, opossum_core::Error> {
        validate_append(&events)?;
        self.inner.options.get_required_metadata().check(&events)?;
        let inner = Arc::clone(&self.inner);
        Ok(self.blocking(async move { inner.append(events, condition).await })?)
    }

    /// [`EventStore::read`] for blocking code.
    ///
    /// # Errors
    /// As [`EventStore::read`].
    pub fn read_blocking(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, opossum_core::Error> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        Ok(self.blocking(async move { inner.read(&query, options).await })?)
    }

    /// [`EventStore::read_last`] for blocking code.
    ///
    /// # Errors
    /// As [`EventStore::read_last`].
    pub fn read_last_blocking(
        &self,
        query: &Query,
    ) -> Result<Option<SequencedEvent>, opossum_core::Error> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        Ok(self.blocking(async move { inner.read_last(&query).await })?)
    }

    /// Walks every event in position order and checks the positions and the hash chain, as
    /// the folder store's `verify` does: the same events give the same head hash.
    ///
    /// # Errors
    /// [`Error::Unavailable`] or [`Error::Database`] when the rows cannot be read. Damage is not
    /// an error: it is [`PgVerifyReport::problem`].
    pub async fn verify(&self) -> Result<PgVerifyReport, Error> {
        let inner = Arc::clone(&self.inner);
        self.on_runtime(async move { inner.verify().await }).await
    }

    /// The head and its chain hash (hex), as the head row records them: what a copy into this
    /// store must continue from. `None` for an empty store.
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::Database`], [`Error::Corrupt`].
    pub async fn head_hash(&self) -> Result<Option<(Position, String)>, Error> {
        let inner = Arc::clone(&self.inner);
        self.on_runtime(async move {
            let client = inner.client().await?;
            let row = client
                .query_one(
                    &format!(
                        "SELECT position, hash FROM {}.head WHERE id = 1",
                        inner.schema
                    ),
                    &[],
                )
                .await
                .map_err(|source| Error::Database {
                    action: "read the head",
                    source,
                })?;
            let (position, hash) = head_of(&row)?;
            Ok(Position::new(position).ok().map(|p| (p, hash.to_hex())))
        })
        .await
    }

    /// Copies event lines exactly as another Opossum store keeps them (the folder store's
    /// `read_stored` lines, without their newline) into this store, keeping their positions,
    /// metadata and hashes: the first must be the position after this store's head, each must
    /// follow the one before it, and each must hold the hash its bytes and its predecessor's
    /// hash give. One transaction, under the append lock, so nothing is copied in half, and an
    /// interrupted copy continues from the head. Returns the new head.
    ///
    /// # Errors
    /// [`Error::ImportRejected`] naming the first line that does not continue the chain (nothing
    /// of the batch is copied then); [`Error::Unavailable`], [`Error::Database`].
    pub async fn import_lines(&self, lines: Vec<String>) -> Result<Option<Position>, Error> {
        let inner = Arc::clone(&self.inner);
        self.on_runtime(async move {
            let head = import(&inner, &lines).await?;
            inner.raise_head(head);
            Ok(Position::new(head).ok())
        })
        .await
    }

    /// The PostgreSQL schema the store lives in.
    #[must_use]
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The options the store was connected with.
    #[must_use]
    pub fn options(&self) -> &PgOptions {
        &self.inner.options
    }

    /// Removes the store: drops its schema and everything in it. For tests and for
    /// decommissioning; other handles of the store fail from their next operation on.
    ///
    /// # Errors
    /// [`Error::Unavailable`], [`Error::Database`].
    pub async fn drop_schema(self) -> Result<(), Error> {
        let inner = Arc::clone(&self.inner);
        self.on_runtime(async move {
            let client = inner.client().await?;
            client
                .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", inner.schema))
                .await
                .map_err(|source| Error::Database {
                    action: "drop the schema",
                    source,
                })
        })
        .await
    }
}

impl Drop for PgEventStore {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Allowed from inside another runtime, unlike dropping it.
            runtime.shutdown_background();
        }
    }
}

/// Waits for `future`, run on `handle`, from a thread that may belong to another runtime.
fn wait_blocking<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    future: impl Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    let (tx, rx) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv().map_err(|_| Error::Closed)?
}

/// Runs the set-up on `runtime` and waits for it.
async fn setup_on(
    runtime: &tokio::runtime::Runtime,
    setup: impl Future<Output = Result<Arc<Inner>, Error>> + Send + 'static,
) -> Result<Arc<Inner>, Error> {
    runtime
        .handle()
        .spawn(setup)
        .await
        .map_err(|_| Error::Closed)?
}

/// Connects, migrates, and starts the writer and the listener.
async fn setup(config: tokio_postgres::Config, options: PgOptions) -> Result<Arc<Inner>, Error> {
    let target = target_of(&config);
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(options.get_pool_size() + 1)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .create_timeout(Some(options.get_connect_timeout()))
        .wait_timeout(Some(options.get_connect_timeout()))
        .build()
        .map_err(|e| Error::InvalidOptions {
            problems: vec![format!("the connection pool cannot be built: {e}")],
        })?;
    let schema = options.get_schema().to_owned();
    let (appends, requests) = mpsc::unbounded_channel();
    let inner = Arc::new(Inner {
        pool,
        schema: schema.clone(),
        target,
        options,
        config,
        head: watch::Sender::new(0),
        appends,
    });
    {
        let mut client = inner.client().await?;
        schema::migrate(&mut client, &schema).await?;
    }
    let head = inner.read_head().await?;
    inner.raise_head(head);
    tokio::spawn(writer(Arc::downgrade(&inner), requests));
    tokio::spawn(listener(Arc::downgrade(&inner)));
    tracing::info!(target = %inner.target, schema = %inner.schema, head, "connected to the PostgreSQL store");
    Ok(inner)
}

impl Inner {
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Client, Error> {
        self.pool.get().await.map_err(|e| Error::Unavailable {
            target: self.target.clone(),
            source: Box::new(e),
        })
    }

    fn raise_head(&self, head: u64) {
        self.head.send_if_modified(|seen| {
            let moved = *seen < head;
            *seen = head.max(*seen);
            moved
        });
    }

    async fn read_head(&self) -> Result<u64, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!("SELECT position FROM {}.head WHERE id = 1", self.schema),
                &[],
            )
            .await
            .map_err(|source| Error::Database {
                action: "read the head",
                source,
            })?;
        let head: i64 = row.get(0);
        Ok(u64::try_from(head).unwrap_or(0))
    }

    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        let (reply, answer) = oneshot::channel();
        self.appends
            .send(AppendRequest {
                events,
                condition,
                reply,
            })
            .map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        if options.limit == Some(0) {
            return Ok(Vec::new());
        }
        let mut params = Params::default();
        // Only the bounds that bound something: a range over the whole table makes the
        // planner intersect with the primary key instead of using the type or tag index alone.
        let mut conditions = Vec::new();
        if let Some(after) = options.after {
            conditions.push(format!("position > {}", params.push(sql_position(after))));
        }
        if let Some(until) = options.until {
            conditions.push(format!("position <= {}", params.push(sql_position(until))));
        }
        if let Some(filter) = sql::filter(query, &mut params) {
            conditions.push(filter);
        }
        let mut sql = format!("SELECT position, line FROM {}.events", self.schema);
        if !conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conditions.join(" AND "));
        }
        sql.push_str(match options.direction {
            Direction::Ascending => " ORDER BY position ASC",
            Direction::Descending => " ORDER BY position DESC",
        });
        if let Some(limit) = options.limit {
            let limit = params.push(i64::try_from(limit).unwrap_or(i64::MAX));
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        let client = self.client().await?;
        let rows = client
            .query(&sql, &params.refs())
            .await
            .map_err(|source| Error::Database {
                action: "read",
                source,
            })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let event = decode_row(row.get(0), row.get(1))?;
            if query.matches(&event.event) {
                out.push(event);
            }
        }
        Ok(out)
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        let mut found = self
            .read(query, ReadOptions::new().descending().limit(1))
            .await?;
        Ok(found.pop())
    }

    async fn verify(&self) -> Result<PgVerifyReport, Error> {
        let client = self.client().await?;
        let mut report = PgVerifyReport {
            events_checked: 0,
            head: None,
            head_hash: None,
            problem: None,
        };
        let mut prev = ChainHash::GENESIS;
        let mut expected: u64 = 1;
        let sql = format!(
            "SELECT position, line, hash FROM {}.events WHERE position > $1 ORDER BY position LIMIT $2",
            self.schema
        );
        loop {
            let rows = client
                .query(&sql, &[&((expected - 1) as i64), &VERIFY_BATCH])
                .await
                .map_err(|source| Error::Database {
                    action: "read for verify",
                    source,
                })?;
            let done = (rows.len() as i64) < VERIFY_BATCH;
            for row in rows {
                let position: i64 = row.get(0);
                let line: &str = row.get(1);
                let stored: &[u8] = row.get(2);
                let position = position as u64;
                let problem = if position != expected {
                    Some(format!(
                        "found position {position} where {expected} belongs"
                    ))
                } else {
                    match split_hash(line.as_bytes()) {
                        Err(reason) => Some(format!("not an event line: {reason}")),
                        Ok((hashed, hash)) if ChainHash::chain(prev, hashed) != hash => Some(
                            "its hash does not match its content and its predecessor's hash"
                                .to_owned(),
                        ),
                        Ok((_, hash)) if hash.0.as_slice() != stored => {
                            Some("the hash column differs from the line's hash".to_owned())
                        }
                        Ok((_, hash)) => {
                            prev = hash;
                            None
                        }
                    }
                };
                if let Some(reason) = problem {
                    report.problem = Some((expected, reason));
                    return Ok(report);
                }
                report.events_checked += 1;
                report.head = Position::new(position).ok();
                report.head_hash = Some(prev.to_hex());
                expected += 1;
            }
            if done {
                return Ok(report);
            }
        }
    }
}

/// The event a row holds; its line must be the event at `position`.
fn decode_row(position: i64, line: &str) -> Result<SequencedEvent, Error> {
    let position = position as u64;
    let event =
        decode_line(line.as_bytes()).map_err(|reason| Error::Corrupt { position, reason })?;
    if event.position.get() != position {
        return Err(Error::Corrupt {
            position,
            reason: format!("its line holds position {}", event.position),
        });
    }
    Ok(event)
}

/// The group commit: takes the queued appends and commits them in transactions of up to
/// [`MAX_GROUP_APPENDS`], until the store is dropped.
async fn writer(
    inner: std::sync::Weak<Inner>,
    mut requests: mpsc::UnboundedReceiver<AppendRequest>,
) {
    while let Some(first) = requests.recv().await {
        let mut group = vec![first];
        let mut events = group[0].events.len();
        while group.len() < MAX_GROUP_APPENDS && events < MAX_GROUP_EVENTS {
            match requests.try_recv() {
                Ok(next) => {
                    events += next.events.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        commit_group(&inner, group).await;
    }
}

/// The outcome of one append of a group, before the commit.
enum Planned {
    Accepted(Position),
    Refused(Error),
}

/// Commits `group` in one transaction, answering each append.
async fn commit_group(inner: &Inner, group: Vec<AppendRequest>) {
    match try_commit(inner, &group).await {
        Ok((outcomes, head)) => {
            inner.raise_head(head);
            for (request, outcome) in group.into_iter().zip(outcomes) {
                let _ = request.reply.send(match outcome {
                    Planned::Accepted(p) => Ok(p),
                    Planned::Refused(e) => Err(e),
                });
            }
        }
        Err(error) => {
            tracing::warn!(error = %error, appends = group.len(), "a group commit failed; nothing of it was acknowledged");
            for request in group {
                let _ = request.reply.send(Err(error.duplicate()));
            }
        }
    }
}

/// One transaction: the lock, the head, each condition, the rows, the notification.
async fn try_commit(inner: &Inner, group: &[AppendRequest]) -> Result<(Vec<Planned>, u64), Error> {
    let db = |action| move |source| Error::Database { action, source };
    let s = &inner.schema;
    let mut client = inner.client().await?;
    let tx = client.transaction().await.map_err(db("begin an append"))?;
    let (mut head, mut prev) = lock_head(&tx, s).await?;
    let synced_to = head;
    // One commit time for the group, by this process's clock.
    let stored_at = Some(opossum_core::Timestamp::now());
    let mut outcomes = Vec::with_capacity(group.len());
    // Every accepted event's row, in order.
    let mut rows: Vec<NewRow> = Vec::new();
    let mut accepted: Vec<(Position, &NewEvent)> = Vec::new();
    for request in group {
        if let Some(condition) = &request.condition {
            let earlier = accepted
                .iter()
                .any(|(p, e)| condition.is_violated_by(*p, e));
            if earlier || violated(&tx, s, condition).await? {
                outcomes.push(Planned::Refused(Error::Core(
                    opossum_core::Error::ConditionFailed {
                        after: condition.after,
                    },
                )));
                continue;
            }
        }
        let first = head + 1;
        let last = head + request.events.len() as u64;
        let batch_last = position(last)?;
        for (i, event) in request.events.iter().enumerate() {
            let p = position(first + i as u64)?;
            let mut buf = Vec::new();
            let hash = encode_line(&mut buf, prev, p, batch_last, synced_to, stored_at, event)
                .map_err(|e| Error::Core(opossum_core::Error::InvalidPayload { source: e }))?;
            buf.pop(); // the newline
            let line = String::from_utf8(buf).map_err(|_| Error::Corrupt {
                position: p.get(),
                reason: "the encoded line is not UTF-8".to_owned(),
            })?;
            rows.push(NewRow {
                position: p.get() as i64,
                event_type: event.event_type().as_str().to_owned(),
                tags: event.tags().iter().map(sql::tag_text).collect(),
                line,
                hash: hash.0.to_vec(),
            });
            accepted.push((p, event));
            prev = hash;
        }
        head = last;
        outcomes.push(Planned::Accepted(batch_last));
    }
    write_rows(&tx, s, &rows, head, prev).await?;
    tx.commit().await.map_err(db("commit the append"))?;
    Ok((outcomes, head))
}

/// The position and hash of the head row.
fn head_of(row: &tokio_postgres::Row) -> Result<(u64, ChainHash), Error> {
    let position: i64 = row.get(0);
    let hash: &[u8] = row.get(1);
    let hash: [u8; 32] = hash.try_into().map_err(|_| Error::Corrupt {
        position: u64::try_from(position).unwrap_or(0),
        reason: "the head row's hash is not 32 bytes".to_owned(),
    })?;
    Ok((u64::try_from(position).unwrap_or(0), ChainHash(hash)))
}

/// Checks that `lines` continue the chain from the head, and inserts them; the new head.
async fn import(inner: &Inner, lines: &[String]) -> Result<u64, Error> {
    let db = |action| move |source| Error::Database { action, source };
    let s = &inner.schema;
    let mut client = inner.client().await?;
    let tx = client.transaction().await.map_err(db("begin a copy"))?;
    let (mut head, mut prev) = lock_head(&tx, s).await?;
    let mut rows = Vec::with_capacity(lines.len());
    for line in lines {
        let line = line.strip_suffix('\n').unwrap_or(line);
        let rejected = |reason: String| Error::ImportRejected {
            position: head + 1,
            reason,
        };
        let event = decode_line(line.as_bytes())
            .map_err(|r| rejected(format!("not an event line: {r}")))?;
        if event.position.get() != head + 1 {
            return Err(rejected(format!(
                "the line holds position {}, and this store's next position is {}",
                event.position,
                head + 1
            )));
        }
        let (hashed, hash) = split_hash(line.as_bytes()).map_err(|r| rejected(r.to_owned()))?;
        if ChainHash::chain(prev, hashed) != hash {
            return Err(rejected(
                "its hash does not follow from its bytes and this store's head hash: it does not continue this store's chain".to_owned(),
            ));
        }
        rows.push(NewRow {
            position: sql_position(event.position),
            event_type: event.event.event_type().as_str().to_owned(),
            tags: event.event.tags().iter().map(sql::tag_text).collect(),
            line: line.to_owned(),
            hash: hash.0.to_vec(),
        });
        head += 1;
        prev = hash;
    }
    write_rows(&tx, s, &rows, head, prev).await?;
    tx.commit().await.map_err(db("commit the copy"))?;
    Ok(head)
}

/// Locks the head row and reads it. The lock serializes every writer of the store: held to the
/// commit, so the conditions, the new positions and the rows are one step against every other
/// connection, process and server.
async fn lock_head(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
) -> Result<(u64, ChainHash), Error> {
    let row = tx
        .query_one(
            &format!("SELECT position, hash FROM {schema}.head WHERE id = 1 FOR UPDATE"),
            &[],
        )
        .await
        .map_err(|source| Error::Database {
            action: "lock the head",
            source,
        })?;
    head_of(&row)
}

/// Inserts `rows`, moves the head to `head` (with hash `prev`) and notifies the subscribers —
/// delivered at the commit, to every listening connection.
async fn write_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    rows: &[NewRow],
    head: u64,
    prev: ChainHash,
) -> Result<(), Error> {
    let db = |action| move |source| Error::Database { action, source };
    if rows.is_empty() {
        return Ok(());
    }
    insert_rows(tx, schema, rows).await?;
    tx.execute(
        &format!("UPDATE {schema}.head SET position = $1, hash = $2 WHERE id = 1"),
        &[&(head as i64), &prev.0.as_slice()],
    )
    .await
    .map_err(db("move the head"))?;
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&channel(schema), &head.to_string()],
    )
    .await
    .map_err(db("notify the subscribers"))?;
    Ok(())
}

/// Inserts `rows`, [`INSERT_CHUNK`] per statement.
async fn insert_rows(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    rows: &[NewRow],
) -> Result<(), Error> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        let mut params = Params::default();
        let mut values = Vec::with_capacity(chunk.len());
        for row in chunk {
            values.push(format!(
                "({}, {}, {}::text[], {}, {})",
                params.push(row.position),
                params.push(row.event_type.clone()),
                params.push(row.tags.clone()),
                params.push(row.line.clone()),
                params.push(row.hash.clone()),
            ));
        }
        tx.execute(
            &format!(
                "INSERT INTO {schema}.events (position, type, tags, line, hash) VALUES {}",
                values.join(", ")
            ),
            &params.refs(),
        )
        .await
        .map_err(|source| Error::Database {
            action: "insert the events",
            source,
        })?;
    }
    Ok(())
}

/// The columns of one event to insert.
struct NewRow {
    position: i64,
    event_type: String,
    tags: Vec<String>,
    line: String,
    hash: Vec<u8>,
}

/// True when an event matching `condition` was committed after its `after`.
async fn violated(
    tx: &deadpool_postgres::Transaction<'_>,
    schema: &str,
    condition: &AppendCondition,
) -> Result<bool, Error> {
    let mut params = Params::default();
    let after = params.push(condition.after.map_or(0, sql_position));
    let mut sql = format!("SELECT position, line FROM {schema}.events WHERE position > {after}");
    if let Some(filter) = sql::filter(&condition.fail_if_events_match, &mut params) {
        sql.push_str(" AND ");
        sql.push_str(&filter);
    }
    sql.push_str(" ORDER BY position LIMIT 1");
    let found = tx
        .query_opt(&sql, &params.refs())
        .await
        .map_err(|source| Error::Database {
            action: "check the append condition",
            source,
        })?;
    Ok(found.is_some())
}

/// A position as the `bigint` column holds it; positions past `i64::MAX` cannot exist, so they
/// bound like `i64::MAX`.
fn sql_position(position: Position) -> i64 {
    i64::try_from(position.get()).unwrap_or(i64::MAX)
}

fn position(value: u64) -> Result<Position, Error> {
    Position::new(value).map_err(Error::Core)
}

/// Listens for other connections' commits and raises the head, reconnecting when the
/// connection is lost, until the store is dropped.
async fn listener(inner: std::sync::Weak<Inner>) {
    use futures_util::StreamExt;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let config = strong.config.clone();
        let channel_name = channel(&strong.schema);
        let target = strong.target.clone();
        drop(strong);
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let pump = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let tokio_postgres::AsyncMessage::Notification(n) = message {
                            if tx.send(n.payload().to_owned()).is_err() {
                                break;
                            }
                        }
                    }
                });
                if let Err(e) = client
                    .batch_execute(&format!("LISTEN \"{channel_name}\""))
                    .await
                {
                    tracing::warn!(error = %e, %target, "cannot listen for notifications; subscribers poll");
                } else {
                    // Commits made while not listening: one look at the head.
                    if let Some(strong) = inner.upgrade() {
                        if let Ok(head) = strong.read_head().await {
                            strong.raise_head(head);
                        }
                    }
                    while let Some(payload) = rx.recv().await {
                        let Some(strong) = inner.upgrade() else {
                            pump.abort();
                            return;
                        };
                        if let Ok(head) = payload.parse::<u64>() {
                            strong.raise_head(head);
                        }
                    }
                }
                pump.abort();
                drop(client);
            }
            Err(e) => {
                tracing::debug!(error = %e, %target, "the listening connection could not be made; retrying");
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[async_trait]
impl EventStore for PgEventStore {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, opossum_core::Error> {
        validate_append(&events)?;
        self.inner.options.get_required_metadata().check(&events)?;
        let inner = Arc::clone(&self.inner);
        Ok(self
            .on_runtime(async move { inner.append(events, condition).await })
            .await?)
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, opossum_core::Error> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        Ok(self
            .on_runtime(async move { inner.read(&query, options).await })
            .await?)
    }

    async fn read_last(
        &self,
        query: &Query,
    ) -> Result<Option<SequencedEvent>, opossum_core::Error> {
        let inner = Arc::clone(&self.inner);
        let query = query.clone();
        Ok(self
            .on_runtime(async move { inner.read_last(&query).await })
            .await?)
    }

    async fn head(&self) -> Result<Option<Position>, opossum_core::Error> {
        let inner = Arc::clone(&self.inner);
        let head = self
            .on_runtime(async move {
                let head = inner.read_head().await?;
                inner.raise_head(head);
                Ok(head)
            })
            .await?;
        Ok(Position::new(head).ok())
    }

    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), opossum_core::Error> {
        let beyond = beyond.map_or(0, Position::get);
        let inner = Arc::clone(&self.inner);
        Ok(self
            .on_runtime(async move {
                let mut seen = inner.head.subscribe();
                loop {
                    if *seen.borrow_and_update() > beyond {
                        return Ok(());
                    }
                    tokio::select! {
                        changed = seen.changed() => {
                            if changed.is_err() {
                                return Err(Error::Closed);
                            }
                        }
                        () = tokio::time::sleep(inner.options.get_poll_interval()) => {
                            let head = inner.read_head().await?;
                            inner.raise_head(head);
                        }
                    }
                }
            })
            .await?)
    }
}
