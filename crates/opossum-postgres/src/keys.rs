//! The PostgreSQL store as a [`KeyStore`]: the data subjects' keys in the table
//! `subject_keys` of the store's schema, shared by every server on the database.

use async_trait::async_trait;
use opossum_core::records::{KeyStore, SubjectKey};

use crate::{Error, PgEventStore};

fn to_key(bytes: &[u8]) -> Result<SubjectKey, Error> {
    let array: [u8; 32] = bytes.try_into().map_err(|_| Error::Corrupt {
        position: 0,
        reason: format!(
            "a subject key in subject_keys holds {} bytes, not 32",
            bytes.len()
        ),
    })?;
    Ok(SubjectKey::from_bytes(array))
}

fn key_store_error(e: Error) -> opossum_core::Error {
    match e {
        Error::Core(core) => core,
        other => {
            opossum_core::Error::KeyStore(opossum_core::StorageError::new(other.kind(), other))
        }
    }
}

impl PgEventStore {
    /// Copies one subject's key from another key store (`opossum migrate` copies the folder
    /// store's `keys/`): `Some(key)` adds it unless the subject already has one here, `None`
    /// records it as destroyed (and destroys a copy made before). Returns whether the table
    /// changed.
    ///
    /// # Errors
    /// [`Error::ImportRejected`] when the subject already has another key here (two stores'
    /// keys for one subject: the data of one of them would not open); database errors.
    pub async fn import_key(&self, subject: &str, key: Option<&SubjectKey>) -> Result<bool, Error> {
        let inner = self.shared();
        let subject = subject.to_owned();
        let key: Option<Vec<u8>> = key.map(|k| k.as_bytes().to_vec());
        self.on_runtime(async move {
            let db = |action| move |source| Error::Database { action, source };
            let s = &inner.schema;
            let client = inner.client().await?;
            match key {
                Some(key) => {
                    let added = client
                        .execute(
                            &format!(
                                "INSERT INTO {s}.subject_keys (subject, key) VALUES ($1, $2) \
                                 ON CONFLICT (subject) DO NOTHING"
                            ),
                            &[&subject, &key],
                        )
                        .await
                        .map_err(db("copy a subject key"))?;
                    if added == 1 {
                        return Ok(true);
                    }
                    let row = client
                        .query_one(
                            &format!("SELECT key FROM {s}.subject_keys WHERE subject = $1"),
                            &[&subject],
                        )
                        .await
                        .map_err(db("read a subject key"))?;
                    match row.get::<_, Option<Vec<u8>>>(0) {
                        // Destroyed here already: it stays destroyed.
                        None => Ok(false),
                        Some(existing) if existing == key => Ok(false),
                        Some(_) => Err(Error::ImportRejected {
                            position: 0,
                            reason: format!(
                                "subject {subject:?} already has another key in this schema"
                            ),
                        }),
                    }
                }
                None => {
                    let changed = client
                        .execute(
                            &format!(
                                "INSERT INTO {s}.subject_keys (subject, key, destroyed_at) \
                                 VALUES ($1, NULL, now()) ON CONFLICT (subject) DO UPDATE \
                                 SET key = NULL, destroyed_at = now() \
                                 WHERE {s}.subject_keys.key IS NOT NULL"
                            ),
                            &[&subject],
                        )
                        .await
                        .map_err(db("copy a destroyed key"))?;
                    Ok(changed == 1)
                }
            }
        })
        .await
    }
}

/// Keys live beside the events, in `subject_keys`, so that every server of a deployment seals
/// and opens with the same key. A destroyed key's row keeps the subject with a NULL key, so the
/// key is never created again. PostgreSQL keeps a destroyed key's old row version until
/// `VACUUM` reclaims it, and in its write-ahead log and base backups: see ADR 0019 for what
/// that means for archives.
#[async_trait]
impl KeyStore for PgEventStore {
    async fn get_or_create(&self, subject: &str) -> Result<SubjectKey, opossum_core::Error> {
        let fresh = SubjectKey::generate()?;
        let inner = self.shared();
        let subject = subject.to_owned();
        self.on_runtime(async move {
            let db = |action| move |source| Error::Database { action, source };
            let s = &inner.schema;
            let client = inner.client().await?;
            client
                .execute(
                    &format!(
                        "INSERT INTO {s}.subject_keys (subject, key) VALUES ($1, $2) \
                         ON CONFLICT (subject) DO NOTHING"
                    ),
                    &[&subject, &fresh.as_bytes().as_slice()],
                )
                .await
                .map_err(db("create a subject key"))?;
            let row = client
                .query_one(
                    &format!("SELECT key FROM {s}.subject_keys WHERE subject = $1"),
                    &[&subject],
                )
                .await
                .map_err(db("read a subject key"))?;
            match row.get::<_, Option<&[u8]>>(0) {
                Some(bytes) => to_key(bytes),
                None => Err(Error::Core(opossum_core::Error::SubjectForgotten {
                    subject,
                })),
            }
        })
        .await
        .map_err(key_store_error)
    }

    async fn get(&self, subject: &str) -> Result<Option<SubjectKey>, opossum_core::Error> {
        let inner = self.shared();
        let subject = subject.to_owned();
        self.on_runtime(async move {
            let s = &inner.schema;
            let client = inner.client().await?;
            let row = client
                .query_opt(
                    &format!("SELECT key FROM {s}.subject_keys WHERE subject = $1"),
                    &[&subject],
                )
                .await
                .map_err(|source| Error::Database {
                    action: "read a subject key",
                    source,
                })?;
            match row.and_then(|r| r.get::<_, Option<Vec<u8>>>(0)) {
                Some(bytes) => Ok(Some(to_key(&bytes)?)),
                None => Ok(None),
            }
        })
        .await
        .map_err(key_store_error)
    }

    async fn destroy(&self, subject: &str) -> Result<bool, opossum_core::Error> {
        let inner = self.shared();
        let subject = subject.to_owned();
        self.on_runtime(async move {
            let db = |action| move |source| Error::Database { action, source };
            let s = &inner.schema;
            let mut client = inner.client().await?;
            let tx = client.transaction().await.map_err(db("begin destroying a key"))?;
            let had = tx
                .query_opt(
                    &format!(
                        "SELECT key IS NOT NULL FROM {s}.subject_keys WHERE subject = $1 FOR UPDATE"
                    ),
                    &[&subject],
                )
                .await
                .map_err(db("lock a subject key"))?
                .is_some_and(|row| row.get::<_, bool>(0));
            tx.execute(
                &format!(
                    "INSERT INTO {s}.subject_keys (subject, key, destroyed_at) VALUES ($1, NULL, now()) \
                     ON CONFLICT (subject) DO UPDATE SET key = NULL, \
                     destroyed_at = COALESCE({s}.subject_keys.destroyed_at, now())"
                ),
                &[&subject],
            )
            .await
            .map_err(db("destroy a subject key"))?;
            tx.commit().await.map_err(db("commit destroying a key"))?;
            Ok(had)
        })
        .await
        .map_err(key_store_error)
    }
}
