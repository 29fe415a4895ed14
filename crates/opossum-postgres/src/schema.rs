//! The tables, versioned and created or upgraded on connect.

use deadpool_postgres::Client;

use crate::Error;

/// The newest schema version this crate writes.
pub(crate) const VERSION: i32 = 2;

/// The SQL of each migration, by the version it brings the schema to. `{s}` is the schema.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE {s}.events (
        position bigint PRIMARY KEY,
        type text NOT NULL,
        tags text[] NOT NULL,
        line text NOT NULL,
        hash bytea NOT NULL
    );
    CREATE INDEX events_type_position ON {s}.events (type, position);
    CREATE INDEX events_tags ON {s}.events USING gin (tags) WITH (fastupdate = off);
    CREATE TABLE {s}.head (
        id integer PRIMARY KEY CHECK (id = 1),
        position bigint NOT NULL,
        hash bytea NOT NULL
    );
    INSERT INTO {s}.head (id, position, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));",
    ),
    // The data subjects' keys for sealed personal data (ADR 0019): `key` is NULL once destroyed.
    (
        2,
        "CREATE TABLE {s}.subject_keys (
        subject text PRIMARY KEY,
        key bytea,
        destroyed_at timestamptz
    );",
    ),
];

/// Creates the schema or brings it to [`VERSION`], under a lock so that processes connecting
/// at once do not race.
pub(crate) async fn migrate(client: &mut Client, schema: &str) -> Result<(), Error> {
    let db = |action| move |source| Error::Database { action, source };
    let tx = client
        .transaction()
        .await
        .map_err(db("begin the schema migration"))?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("opossum-migrate:{schema}")],
    )
    .await
    .map_err(db("lock the schema migration"))?;
    tx.batch_execute(&format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.schema_version (version integer NOT NULL);"
    ))
    .await
    .map_err(db("create the schema"))?;
    let found: Option<i32> = tx
        .query_opt(
            &format!("SELECT max(version) FROM {schema}.schema_version"),
            &[],
        )
        .await
        .map_err(db("read the schema version"))?
        .and_then(|row| row.get(0));
    let found = found.unwrap_or(0);
    if found > VERSION {
        return Err(Error::SchemaTooNew {
            schema: schema.to_owned(),
            found,
            supported: VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tracing::info!(schema, version, "migrating the PostgreSQL schema");
        tx.batch_execute(&sql.replace("{s}", schema))
            .await
            .map_err(db("migrate the schema"))?;
        tx.execute(
            &format!("INSERT INTO {schema}.schema_version (version) VALUES ($1)"),
            &[version],
        )
        .await
        .map_err(db("record the schema version"))?;
    }
    tx.commit().await.map_err(db("commit the schema migration"))
}
