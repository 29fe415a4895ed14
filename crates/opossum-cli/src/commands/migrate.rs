//! `opossum migrate DIR URL`: the folder store's lines, copied into PostgreSQL.

use std::sync::Arc;
use std::time::Instant;

use opossum_core::{Query, ReadOptions};
use opossum_fs::FileEventStore;
use opossum_postgres::{PgEventStore, PgOptions};
use serde::Serialize;

use crate::cli::MigrateArgs;
use crate::{Error, Outcome, Output, open_read_only};

/// Lines copied per transaction.
const BATCH: usize = 2_000;

/// What `migrate` reports.
#[derive(Debug, Serialize)]
struct Migrated {
    store: String,
    schema: String,
    /// Events already in PostgreSQL before this run (an earlier, interrupted or older copy).
    already_there: u64,
    copied: u64,
    head: Option<u64>,
    folder_head_hash: Option<String>,
    postgres_head_hash: Option<String>,
    /// Subjects' keys (for sealed personal data) copied from `keys/`, and destroyed ones.
    keys_copied: u64,
    keys_destroyed: u64,
    verified: bool,
    seconds: f64,
}

pub(crate) fn run(args: &MigrateArgs, out: &mut Output) -> Result<Outcome, Error> {
    let store = Arc::new(open_read_only(&args.dir)?);
    let options = PgOptions::new().schema(args.schema.clone());
    let migrated = super::block_on(migrate(Arc::clone(&store), &args.url, options), None)?;
    let Some(report) = migrated else {
        // Interrupted: what was committed stays; running again continues from it.
        return Ok(Outcome::Failed);
    };
    out.emit(&report, |w| {
        writeln!(
            w,
            "copied {} events into schema {} ({} were there already) in {:.1} s",
            report.copied, report.schema, report.already_there, report.seconds
        )?;
        if report.keys_copied + report.keys_destroyed > 0 {
            writeln!(
                w,
                "copied {} subject keys and {} destroyed ones",
                report.keys_copied, report.keys_destroyed
            )?;
        }
        match (&report.folder_head_hash, report.verified) {
            (Some(hash), true) => writeln!(
                w,
                "verified: both stores end at position {} with hash {hash}",
                report.head.unwrap_or(0)
            ),
            (None, true) => writeln!(w, "verified: both stores are empty"),
            _ => writeln!(
                w,
                "NOT VERIFIED: the folder store's head hash is {}, PostgreSQL's {}",
                report.folder_head_hash.as_deref().unwrap_or("none"),
                report.postgres_head_hash.as_deref().unwrap_or("none")
            ),
        }
    })?;
    Ok(if report.verified {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

/// Reads `store` on a blocking thread (its reads are file I/O).
async fn read_after(
    store: &Arc<FileEventStore>,
    after: u64,
) -> Result<Vec<opossum_fs::StoredEvent>, Error> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let mut options = ReadOptions::new().limit(BATCH);
        if let Ok(after) = opossum_core::Position::new(after) {
            options = options.after(after);
        }
        store.read_stored(&Query::all(), options)
    })
    .await
    .map_err(|e| Error::io("read", "the folder store", std::io::Error::other(e)))?
    .map_err(Error::from)
}

async fn migrate(
    store: Arc<FileEventStore>,
    url: &str,
    options: PgOptions,
) -> Result<Option<Migrated>, Error> {
    let started = Instant::now();
    let schema = options.get_schema().to_owned();
    let pg = PgEventStore::connect(url, options).await?;
    let mut head = 0;
    // The folder store's hash of the last event in PostgreSQL.
    let mut last_hash = None;
    if let Some((position, found)) = pg.head_hash().await? {
        // Continue an earlier copy only if PostgreSQL holds this store's history.
        let mine = read_after(&store, position.get() - 1).await?;
        let expected = mine
            .first()
            .filter(|e| e.event.position == position)
            .map(|e| e.hash.clone());
        if expected.as_deref() != Some(found.as_str()) {
            return Err(Error::Diverged {
                position: position.get(),
                found,
                expected: expected.unwrap_or_else(|| "none".to_owned()),
            });
        }
        head = position.get();
        last_hash = Some(found);
    }
    let already_there = head;
    let total = store.stats()?.event_count;
    let bar = super::progress(total, "copying");
    bar.set_position(head);
    loop {
        let batch = read_after(&store, head).await?;
        let Some((last, hash)) = batch
            .last()
            .map(|e| (e.event.position.get(), e.hash.clone()))
        else {
            break;
        };
        let lines = batch.into_iter().map(|e| e.line).collect();
        pg.import_lines(lines).await?;
        head = last;
        last_hash = Some(hash);
        bar.set_position(head);
    }
    bar.finish_and_clear();
    // The keys of sealed personal data, so that PostgreSQL opens what the folder sealed, and
    // destroyed keys, so that a subject forgotten in the folder stays forgotten.
    let (mut keys_copied, mut keys_destroyed) = (0, 0);
    let keys = {
        let keys = opossum_fs::FileKeyStore::for_store(store.path());
        tokio::task::spawn_blocking(move || keys.entries())
            .await
            .map_err(|e| Error::io("read", "the key store", std::io::Error::other(e)))??
    };
    for (subject, key) in &keys {
        let changed = pg.import_key(subject, key.as_ref()).await?;
        match (key, changed) {
            (Some(_), true) => keys_copied += 1,
            (None, true) => keys_destroyed += 1,
            _ => {}
        }
    }
    let folder = {
        let dir = store.path().to_path_buf();
        tokio::task::spawn_blocking(move || opossum_fs::verify_folder(&dir))
            .await
            .map_err(|e| Error::io("verify", "the folder store", std::io::Error::other(e)))??
    };
    let copy = pg.verify().await?;
    // Both chains intact, and PostgreSQL's ending where the folder store's chain was when the
    // copy ended (the folder may have grown since, by other processes' appends).
    let verified = folder.is_intact()
        && copy.is_intact()
        && copy.head.map_or(0, |p| p.get()) == head
        && copy.head_hash == last_hash;
    Ok(Some(Migrated {
        store: store.path().display().to_string(),
        schema,
        already_there,
        copied: head - already_there,
        head: copy.head.map(|p| p.get()),
        folder_head_hash: folder.head_hash,
        postgres_head_hash: copy.head_hash,
        keys_copied,
        keys_destroyed,
        verified,
        seconds: started.elapsed().as_secs_f64(),
    }))
}
