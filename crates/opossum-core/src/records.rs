//! Records kept for years: [`Records`] wraps any [`EventStore`] with the application's
//! [`Upcasters`] and, given a [`KeyStore`], **crypto-shredding** of personal data.
//!
//! # Crypto-shredding
//!
//! An event marks top-level payload fields as personal data of one data subject (a typed event
//! through [`DomainEvent::PERSONAL_FIELDS`] and [`DomainEvent::data_subject`], any event
//! through [`EventBuilder::personal_data`](crate::EventBuilder::personal_data)). When
//! [`Records`] appends it, each such field's JSON value is encrypted with XChaCha20-Poly1305
//! under the subject's own 256-bit key (created on first use, kept in the key store, never in
//! the log), and the stored line holds only the ciphertext, in base64. The hash chain covers
//! the ciphertext, so nothing about the log changes when a key is destroyed.
//!
//! [`Records::forget`] appends a [`SubjectForgotten`] event (who: the metadata's `user_id`;
//! when: its timestamp and the store's `stored_at`; why: its `reason`) and then destroys the
//! subject's key durably. From then on every read gives that subject's events without the
//! personal fields, with [`PersonalData::erased`] set ([`SequencedEvent::is_erased`]); a typed
//! [`decode`](SequencedEvent::decode) succeeds when the fields are `Option` or
//! `#[serde(default)]`, and is otherwise [`Error::Erased`]. `verify` stays intact.
//!
//! The event comes first and the key's destruction second: a crash between them leaves an event
//! whose key still exists, and every [`Records`] that sees the event (on its next operation, or
//! [`Records::recover`]) destroys the key before using any key, so no forgotten subject's key
//! is ever used again. Reads look for new `SubjectForgotten` events once per call; streams and
//! subscriptions at most every [`STREAM_LOOK_INTERVAL`]. New personal data of a forgotten subject is refused with
//! [`Error::SubjectForgotten`], also when a process had cached the key before another process
//! forgot the subject: each such append carries a condition that fails if a `SubjectForgotten`
//! for the subject was appended since the process last looked.
//!
//! ```
//! use std::sync::Arc;
//!
//! use opossum_core::records::{InMemoryKeyStore, Records};
//! use opossum_core::{DomainEvent, EventStore, InMemoryEventStore, Metadata, NewEvent, Query,
//!     ReadOptions, Timestamp};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct StudentRegistered {
//!     id: String,
//!     #[serde(default)]
//!     email: Option<String>,
//! }
//! impl DomainEvent for StudentRegistered {
//!     const EVENT_TYPE: &'static str = "StudentRegistered";
//!     const PERSONAL_FIELDS: &'static [&'static str] = &["email"];
//!     fn data_subject(&self) -> Option<String> { Some(self.id.clone()) }
//! }
//!
//! # async fn run() -> Result<(), opossum_core::Error> {
//! let store = Records::new(InMemoryEventStore::new())
//!     .with_key_store(Arc::new(InMemoryKeyStore::new()));
//! let ada = StudentRegistered { id: "s-1".into(), email: Some("ada@example.org".into()) };
//! store.append(vec![NewEvent::from_typed(&ada).build()?], None).await?;
//!
//! let students = Query::from_event_types(["StudentRegistered"])?;
//! let read = store.read(&students, ReadOptions::new()).await?;
//! assert_eq!(read[0].decode::<StudentRegistered>()?.email.as_deref(), Some("ada@example.org"));
//! // What the store itself keeps is ciphertext.
//! let raw = store.inner().read(&students, ReadOptions::new()).await?;
//! assert!(!raw[0].event.payload().as_json().contains("ada@example.org"));
//!
//! let mut by = Metadata::at(Timestamp::now());
//! by.user_id = Some("dpo".into());
//! store.forget("s-1", "erasure request 2026-117", by).await?;
//! let read = store.read(&students, ReadOptions::new()).await?;
//! assert!(read[0].is_erased());
//! assert_eq!(read[0].decode::<StudentRegistered>()?.email, None);
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(run()).unwrap();
//! ```
//!
//! # What it protects against, and what not
//!
//! Destroying a key makes the personal data in **every** copy of the log unreadable — the
//! store folder, its backups, exports of the stored lines — provided no copy of the key
//! survives. It does not reach copies of the key: a backup that holds the key store as it was
//! before the `forget` still opens the data, and so do file-system snapshots, a file server's
//! shadow copies, or blocks an SSD or a copy-on-write file system kept after the key file was
//! overwritten. Keep the key store out of long-lived backups, or back it up separately with a
//! retention shorter than the erasure deadline, and see the ADR for the deployment advice.
//! It does not hide what is not sealed: type, tags (use pseudonymous ids), metadata, and fields
//! not listed as personal stay readable.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use futures_util::StreamExt as _;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use zeroize::Zeroizing;

use crate::stream::EventStream;
use crate::tag::reject_control_characters;
use crate::{
    AppendCondition, DomainEvent, Error, ErrorKind, EventStore, Metadata, NewEvent, Payload,
    PersonalData, Position, Query, QueryItem, ReadOptions, SequencedEvent, Tag, Upcasters,
};

/// How often a stream (a streaming read, a subscription) reads the log for new
/// `SubjectForgotten` events at most, before opening sealed events.
pub const STREAM_LOOK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// The tag key every [`SubjectForgotten`] event carries, with the subject as its value.
pub const SUBJECT_TAG: &str = "dataSubject";

/// The event [`Records::forget`] appends: the subject whose key was destroyed, and why. Who did
/// it is the event's `user_id`, when its timestamp and `stored_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectForgotten {
    /// The forgotten data subject.
    pub subject: String,
    /// Why (for example the reference of the erasure request).
    pub reason: String,
}

impl DomainEvent for SubjectForgotten {
    const EVENT_TYPE: &'static str = "SubjectForgotten";
}

/// The query for the `SubjectForgotten` events of one subject.
///
/// # Errors
/// The tag's validation error for an empty subject or one with control characters.
pub fn forgotten_query(subject: &str) -> Result<Query, Error> {
    Query::from_items([QueryItem::of_types([SubjectForgotten::EVENT_TYPE])?
        .with_tag(Tag::new(SUBJECT_TAG, subject)?)])
}

/// A subject's 256-bit key. Its bytes are wiped from memory when it is dropped, and never
/// printed.
#[derive(Clone)]
pub struct SubjectKey(Zeroizing<[u8; 32]>);

impl SubjectKey {
    /// A new random key from the operating system's generator.
    ///
    /// # Errors
    /// A storage error of kind [`ErrorKind::Other`] when the system has no randomness to give.
    pub fn generate() -> Result<SubjectKey, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        getrandom::fill(&mut *bytes).map_err(|e| {
            Error::storage(ErrorKind::Other, format!("no randomness for a key: {e}"))
        })?;
        Ok(SubjectKey(bytes))
    }

    /// A key from its bytes (as a key store reads them).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> SubjectKey {
        SubjectKey(Zeroizing::new(bytes))
    }

    /// The key's bytes (for a key store to write them).
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubjectKey(…)")
    }
}

/// Where the subjects' keys live, apart from the log.
///
/// Implementations: [`InMemoryKeyStore`] for tests, and the file store's key folder
/// (`opossum_fs::FileKeyStore`).
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug {
    /// The subject's key, created durably (on stable storage before this returns) when it has
    /// none.
    ///
    /// # Errors
    /// [`Error::SubjectForgotten`] when the subject's key was destroyed; the store's I/O errors.
    async fn get_or_create(&self, subject: &str) -> Result<SubjectKey, Error>;

    /// The subject's key; `None` when it has none or it was destroyed.
    ///
    /// # Errors
    /// The store's I/O errors.
    async fn get(&self, subject: &str) -> Result<Option<SubjectKey>, Error>;

    /// Destroys the subject's key durably, so that it cannot be read back from the store, and
    /// remembers that it was destroyed. Returns whether a key existed. Destroying again, or a
    /// subject without a key, is not an error.
    ///
    /// # Errors
    /// The store's I/O errors; the key may then still exist, and destroying it must be retried.
    async fn destroy(&self, subject: &str) -> Result<bool, Error>;
}

/// A [`KeyStore`] in memory, lost when dropped: for tests and examples.
#[derive(Debug, Default)]
pub struct InMemoryKeyStore {
    /// `None` marks a destroyed key.
    keys: Mutex<HashMap<String, Option<SubjectKey>>>,
}

impl InMemoryKeyStore {
    /// An empty key store.
    #[must_use]
    pub fn new() -> InMemoryKeyStore {
        InMemoryKeyStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Option<SubjectKey>>> {
        // Every update is one insert: a panic cannot leave the map half-changed.
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl KeyStore for InMemoryKeyStore {
    async fn get_or_create(&self, subject: &str) -> Result<SubjectKey, Error> {
        let mut keys = self.lock();
        match keys.get(subject) {
            Some(Some(key)) => Ok(key.clone()),
            Some(None) => Err(Error::SubjectForgotten {
                subject: subject.to_owned(),
            }),
            None => {
                let key = SubjectKey::generate()?;
                keys.insert(subject.to_owned(), Some(key.clone()));
                Ok(key)
            }
        }
    }

    async fn get(&self, subject: &str) -> Result<Option<SubjectKey>, Error> {
        Ok(self.lock().get(subject).cloned().flatten())
    }

    async fn destroy(&self, subject: &str) -> Result<bool, Error> {
        let old = self.lock().insert(subject.to_owned(), None);
        Ok(matches!(old, Some(Some(_))))
    }
}

/// A JSON object's members in their stored order, each value's text kept byte for byte.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Members, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl Serialize for Members {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

fn members(event: &NewEvent, subject: &str) -> Result<Members, Error> {
    serde_json::from_str(event.payload().as_json()).map_err(|e| Error::InvalidPersonalData {
        problem: format!(
            "the {:?} event names personal fields of subject {subject:?}, but its payload is \
             not a JSON object: {e}",
            event.event_type().as_str()
        ),
    })
}

fn to_payload(members: &Members) -> Result<Payload, Error> {
    Payload::from_value(members)
}

fn aad(subject: &str, field: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + subject.len() + field.len());
    out.extend_from_slice(b"opossum sealed field v1\0");
    out.extend_from_slice(subject.as_bytes());
    out.push(0);
    out.extend_from_slice(field.as_bytes());
    out
}

/// Seals the personal fields of `event` with `key`: each listed field's JSON text becomes a
/// base64 string of a random 24-byte nonce followed by the XChaCha20-Poly1305 ciphertext (the
/// subject and field name are authenticated with it). Listed fields the payload lacks are
/// dropped from the list; an event left with none carries no personal data.
///
/// # Errors
/// [`Error::InvalidPersonalData`] when the payload is not an object or names a personal field
/// twice (the second would otherwise be stored in plain text); a storage error when the system
/// has no randomness.
pub fn seal(event: NewEvent, key: &SubjectKey) -> Result<NewEvent, Error> {
    let Some(personal) = event.personal_data().cloned() else {
        return Ok(event);
    };
    if event.is_sealed() {
        return Ok(event);
    }
    let mut members = members(&event, &personal.subject)?;
    for field in &personal.fields {
        if members.0.iter().filter(|(k, _)| k == field).count() > 1 {
            return Err(Error::InvalidPersonalData {
                problem: format!(
                    "the payload of the {:?} event names its personal field {field:?} more than \
                     once; give each member once",
                    event.event_type().as_str()
                ),
            });
        }
    }
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    // One draw from the system's generator for every field's nonce.
    let mut nonces = vec![0u8; 24 * personal.fields.len()];
    getrandom::fill(&mut nonces)
        .map_err(|e| Error::storage(ErrorKind::Other, format!("no randomness for a nonce: {e}")))?;
    let mut sealed = Vec::new();
    for (field, nonce) in personal.fields.iter().zip(nonces.chunks_exact(24)) {
        let Some((_, value)) = members.0.iter_mut().find(|(k, _)| k == field) else {
            continue;
        };
        let aad = aad(&personal.subject, field);
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(nonce),
                AeadPayload {
                    msg: value.get().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::storage(ErrorKind::Other, "encryption failed"))?;
        let mut blob = Vec::with_capacity(24 + ciphertext.len());
        blob.extend_from_slice(nonce);
        blob.extend_from_slice(&ciphertext);
        *value = serde_json::value::to_raw_value(&BASE64.encode(blob))
            .map_err(|source| Error::InvalidPayload { source })?;
        sealed.push(field.clone());
    }
    let mut event = event.with_payload(to_payload(&members)?);
    if sealed.is_empty() {
        *event.personal_data_mut() = None;
        return Ok(event);
    }
    *event.personal_data_mut() = Some(PersonalData {
        subject: personal.subject,
        fields: sealed,
        erased: false,
    });
    event.set_sealed(true);
    Ok(event)
}

/// Opens the sealed fields of a stored event with its subject's key, or, with `None` (the
/// subject was forgotten), removes them and marks the event erased.
///
/// # Errors
/// [`Error::SealBroken`] when a field does not open with the key (the line or the key was
/// altered).
pub fn open(mut stored: SequencedEvent, key: Option<&SubjectKey>) -> Result<SequencedEvent, Error> {
    let Some(personal) = stored.event.personal_data().cloned() else {
        return Ok(stored);
    };
    if !stored.event.is_sealed() {
        return Ok(stored);
    }
    let broken = |field: &str| Error::SealBroken {
        position: stored.position,
        subject: personal.subject.clone(),
        field: field.to_owned(),
    };
    let mut members = members(&stored.event, &personal.subject)?;
    match key {
        Some(key) => {
            let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
            for field in &personal.fields {
                let Some((_, value)) = members.0.iter_mut().find(|(k, _)| k == field) else {
                    return Err(broken(field));
                };
                let text: String = serde_json::from_str(value.get()).map_err(|_| broken(field))?;
                let blob = BASE64.decode(text).map_err(|_| broken(field))?;
                if blob.len() < 24 {
                    return Err(broken(field));
                }
                let (nonce, ciphertext) = blob.split_at(24);
                let aad = aad(&personal.subject, field);
                let plain = cipher
                    .decrypt(
                        XNonce::from_slice(nonce),
                        AeadPayload {
                            msg: ciphertext,
                            aad: &aad,
                        },
                    )
                    .map_err(|_| broken(field))?;
                let plain = String::from_utf8(plain).map_err(|_| broken(field))?;
                *value = RawValue::from_string(plain).map_err(|_| broken(field))?;
            }
        }
        None => members.0.retain(|(k, _)| !personal.fields.contains(k)),
    }
    stored.event = stored.event.with_payload(to_payload(&members)?);
    if let Some(p) = stored.event.personal_data_mut() {
        p.erased = key.is_none();
    }
    stored.event.set_sealed(false);
    Ok(stored)
}

/// What [`Records::forget`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forgotten {
    /// The position of the subject's `SubjectForgotten` event.
    pub position: Position,
    /// True when the subject had been forgotten before (the existing event's position is
    /// given, and no new event was appended).
    pub already: bool,
    /// True when this call destroyed a key (false when the subject had none left).
    pub key_destroyed: bool,
}

#[derive(Default)]
struct Shredding {
    /// The last `SubjectForgotten` position read from the log.
    checked_to: Option<Position>,
    /// When the log was last read for `SubjectForgotten` events.
    looked_at: Option<std::time::Instant>,
    forgotten: HashSet<String>,
    cache: HashMap<String, SubjectKey>,
}

/// An [`EventStore`] that keeps the application's record rules on top of any store: every read
/// is brought up to date by the [`Upcasters`] (type renames also widen queries and append
/// conditions), and, given a [`KeyStore`], personal data is sealed on append, opened on read,
/// and erased by [`forget`](Records::forget). See the [module documentation](self).
///
/// Appends, reads, streams and subscriptions all go through it, so decision models and
/// projections built on a `Records` see current versions and erased fields the same way.
pub struct Records<S> {
    inner: S,
    upcasters: Upcasters,
    keys: Option<Arc<dyn KeyStore>>,
    state: Mutex<Shredding>,
}

impl<S: fmt::Debug> fmt::Debug for Records<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("inner", &self.inner)
            .field("upcasters", &self.upcasters)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl<S: EventStore> Records<S> {
    /// Wraps `inner` with no upcasters and no key store (personal data is then refused).
    pub fn new(inner: S) -> Records<S> {
        Records {
            inner,
            upcasters: Upcasters::new(),
            keys: None,
            state: Mutex::new(Shredding::default()),
        }
    }

    /// Reads through `upcasters`.
    #[must_use]
    pub fn with_upcasters(mut self, upcasters: Upcasters) -> Records<S> {
        self.upcasters = upcasters;
        self
    }

    /// Seals personal data with keys from `keys`, and allows [`forget`](Records::forget).
    #[must_use]
    pub fn with_key_store(mut self, keys: Arc<dyn KeyStore>) -> Records<S> {
        self.keys = Some(keys);
        self
    }

    /// The wrapped store, which reads events as stored (sealed, not upcast).
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped store, taken back (for example to close it).
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The upcasters reads go through.
    pub fn upcasters(&self) -> &Upcasters {
        &self.upcasters
    }

    fn state(&self) -> MutexGuard<'_, Shredding> {
        // Each update is a few inserts that cannot panic half-way.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn key_store(&self) -> Result<&Arc<dyn KeyStore>, Error> {
        self.keys
            .as_ref()
            .ok_or_else(|| Error::InvalidPersonalData {
                problem: "this store has no key store: give Records one (with_key_store) to keep \
                      or forget personal data"
                    .into(),
            })
    }

    /// Reads the `SubjectForgotten` events appended since the last look, stops using those
    /// subjects' keys, and destroys any that a crash left behind. Every operation that seals or
    /// opens does this first; call it after opening a store to finish an interrupted `forget`
    /// at once. Returns how many new subjects were found.
    ///
    /// # Errors
    /// The store's read errors and the key store's errors.
    pub async fn recover(&self) -> Result<usize, Error> {
        let Some(keys) = &self.keys else {
            return Ok(0);
        };
        let after = {
            let mut state = self.state();
            state.looked_at = Some(std::time::Instant::now());
            state.checked_to
        };
        let mut options = ReadOptions::new();
        if let Some(after) = after {
            options = options.after(after);
        }
        let all = Query::from_event_types([SubjectForgotten::EVENT_TYPE])?;
        let found = self.inner.read(&all, options).await?;
        let Some(last) = found.last().map(|e| e.position) else {
            return Ok(0);
        };
        let mut subjects = Vec::with_capacity(found.len());
        for event in &found {
            subjects.push(event.decode::<SubjectForgotten>()?.subject);
        }
        {
            let mut state = self.state();
            for subject in &subjects {
                state.cache.remove(subject);
                state.forgotten.insert(subject.clone());
            }
        }
        for subject in &subjects {
            if keys.destroy(subject).await? {
                tracing::info!(subject = %subject, "destroyed the key of a forgotten subject");
            }
        }
        let mut state = self.state();
        state.checked_to = state.checked_to.max(Some(last));
        Ok(subjects.len())
    }

    /// [`recover`](Records::recover), unless it ran within [`STREAM_LOOK_INTERVAL`]: what a
    /// stream does before opening each event, so that a long read does not query the log once
    /// per event.
    async fn recover_now_and_then(&self) -> Result<(), Error> {
        let recent = self
            .state()
            .looked_at
            .is_some_and(|at| at.elapsed() < STREAM_LOOK_INTERVAL);
        if !recent {
            self.recover().await?;
        }
        Ok(())
    }

    /// True when `subject` has been forgotten (as far as the log says now).
    ///
    /// # Errors
    /// As [`recover`](Records::recover).
    pub async fn is_forgotten(&self, subject: &str) -> Result<bool, Error> {
        self.recover().await?;
        Ok(self.state().forgotten.contains(subject))
    }

    /// Forgets a data subject: appends a [`SubjectForgotten`] event (with `metadata`: set its
    /// `user_id` to who asked; `reason` is added to its fields unless given) and then destroys
    /// the subject's key durably. Forgetting a subject again returns the first event's position
    /// with [`Forgotten::already`] set (and destroys any key left behind).
    ///
    /// # Errors
    /// [`Error::InvalidPersonalData`] without a key store or with an empty subject; the
    /// store's append errors (for example a required metadata field missing); the key store's
    /// errors (the event is then stored, and the key is destroyed by the next operation that
    /// sees it, or by calling `forget` again).
    pub async fn forget(
        &self,
        subject: &str,
        reason: &str,
        mut metadata: Metadata,
    ) -> Result<Forgotten, Error> {
        let keys = self.key_store()?;
        if subject.is_empty() {
            return Err(Error::InvalidPersonalData {
                problem: "the subject to forget is empty".into(),
            });
        }
        reject_control_characters("data subject", subject)?;
        let guard = forgotten_query(subject)?;
        let existing = self.inner.read_last(&guard).await?;
        let (position, already) = match existing {
            Some(e) => (e.position, true),
            None => {
                metadata
                    .fields
                    .entry("reason".to_owned())
                    .or_insert_with(|| reason.to_owned());
                let event = NewEvent::from_typed(&SubjectForgotten {
                    subject: subject.to_owned(),
                    reason: reason.to_owned(),
                })
                .tag(SUBJECT_TAG, subject)
                .metadata(metadata)
                .build()?;
                match self
                    .inner
                    .append(vec![event], Some(AppendCondition::new(guard.clone())))
                    .await
                {
                    Ok(p) => (p, false),
                    Err(e) if e.is_condition_failed() => {
                        // Another process forgot the subject at the same time.
                        let first = self.inner.read_last(&guard).await?.ok_or(e)?;
                        (first.position, true)
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        {
            let mut state = self.state();
            state.cache.remove(subject);
            state.forgotten.insert(subject.to_owned());
        }
        let key_destroyed = keys.destroy(subject).await?;
        tracing::info!(subject = %subject, %position, already, key_destroyed, "forgot a data subject");
        Ok(Forgotten {
            position,
            already,
            key_destroyed,
        })
    }

    async fn key_for_sealing(&self, subject: &str) -> Result<SubjectKey, Error> {
        {
            let state = self.state();
            if state.forgotten.contains(subject) {
                return Err(Error::SubjectForgotten {
                    subject: subject.to_owned(),
                });
            }
            if let Some(key) = state.cache.get(subject) {
                return Ok(key.clone());
            }
        }
        let key = self.key_store()?.get_or_create(subject).await?;
        self.state().cache.insert(subject.to_owned(), key.clone());
        Ok(key)
    }

    async fn key_for_opening(
        &self,
        subject: &str,
        position: Position,
    ) -> Result<Option<SubjectKey>, Error> {
        {
            let state = self.state();
            if state.forgotten.contains(subject) {
                return Ok(None);
            }
            if let Some(key) = state.cache.get(subject) {
                return Ok(Some(key.clone()));
            }
        }
        if let Some(key) = self.key_store()?.get(subject).await? {
            let mut state = self.state();
            if state.forgotten.contains(subject) {
                return Ok(None);
            }
            state.cache.insert(subject.to_owned(), key.clone());
            return Ok(Some(key));
        }
        // No key: forgotten since the last look (the key goes after the event), or lost.
        self.recover().await?;
        if self.state().forgotten.contains(subject) {
            return Ok(None);
        }
        Err(Error::KeyStore(crate::StorageError::new(
            ErrorKind::NotFound,
            format!(
                "the key of subject {subject:?} (needed for the event at position {position}) is \
                 missing from the key store, though the subject was never forgotten: restore \
                 the key store that belongs to this log"
            ),
        )))
    }

    /// Opens and upcasts one stored event.
    async fn present(&self, event: SequencedEvent) -> Result<SequencedEvent, Error> {
        let event = if event.event.is_sealed() && self.keys.is_some() {
            let subject = event
                .event
                .personal_data()
                .map(|p| p.subject.clone())
                .unwrap_or_default();
            let key = self.key_for_opening(&subject, event.position).await?;
            open(event, key.as_ref())?
        } else {
            event
        };
        self.upcasters.apply(event)
    }

    async fn present_one(&self, event: SequencedEvent) -> Result<SequencedEvent, Error> {
        if self.keys.is_some() && event.event.is_sealed() {
            self.recover().await?;
        }
        self.present(event).await
    }

    async fn present_streamed(&self, event: SequencedEvent) -> Result<SequencedEvent, Error> {
        if self.keys.is_some() && event.event.is_sealed() {
            self.recover_now_and_then().await?;
        }
        self.present(event).await
    }

    async fn present_all(&self, events: Vec<SequencedEvent>) -> Result<Vec<SequencedEvent>, Error> {
        let sealed = self.keys.is_some() && events.iter().any(|e| e.event.is_sealed());
        if !sealed && self.upcasters.is_empty() {
            return Ok(events);
        }
        if sealed {
            self.recover().await?;
        }
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            out.push(self.present(event).await?);
        }
        Ok(out)
    }

    fn expand_condition(&self, condition: Option<AppendCondition>) -> Option<AppendCondition> {
        condition.map(|c| AppendCondition {
            fail_if_events_match: self.upcasters.expand(&c.fail_if_events_match),
            after: c.after,
        })
    }
}

#[async_trait]
impl<S: EventStore> EventStore for Records<S> {
    async fn append(
        &self,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    ) -> Result<Position, Error> {
        if events.is_empty() {
            return Err(Error::EmptyAppend);
        }
        let condition = self.expand_condition(condition);
        let mut subjects: Vec<String> = events
            .iter()
            .filter(|e| !e.is_sealed())
            .filter_map(|e| e.personal_data().map(|p| p.subject.clone()))
            .collect();
        if subjects.is_empty() {
            return self.inner.append(events, condition).await;
        }
        subjects.sort();
        subjects.dedup();
        self.key_store()?;
        self.recover().await?;
        let mut keys = HashMap::new();
        for subject in &subjects {
            keys.insert(subject.clone(), self.key_for_sealing(subject).await?);
        }
        let mut sealed = Vec::with_capacity(events.len());
        for event in events {
            let key = event.personal_data().and_then(|p| keys.get(&p.subject));
            sealed.push(match key {
                Some(key) => seal(event, key)?,
                None => event,
            });
        }
        // Fail if any of the subjects was forgotten since this process last looked: a key
        // cached before another process's `forget` is never used for data that lands after it.
        let mut guard = Vec::with_capacity(subjects.len());
        for subject in &subjects {
            guard.push(
                QueryItem::of_types([SubjectForgotten::EVENT_TYPE])?
                    .with_tag(Tag::new(SUBJECT_TAG, subject.as_str())?),
            );
        }
        let guard = Query::from_items(guard)?;
        let checked_to = self.state().checked_to;
        let condition = match condition {
            Some(c) => AppendCondition {
                fail_if_events_match: c.fail_if_events_match.union(&guard),
                after: c.after,
            },
            None => AppendCondition::new(guard).after(checked_to),
        };
        self.inner.append(sealed, Some(condition)).await
    }

    async fn read(
        &self,
        query: &Query,
        options: ReadOptions,
    ) -> Result<Vec<SequencedEvent>, Error> {
        let query = self.upcasters.expand(query);
        let events = self.inner.read(&query, options).await?;
        self.present_all(events).await
    }

    async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
        let query = self.upcasters.expand(query);
        match self.inner.read_last(&query).await? {
            Some(e) => Ok(Some(self.present_one(e).await?)),
            None => Ok(None),
        }
    }

    async fn head(&self) -> Result<Option<Position>, Error> {
        self.inner.head().await
    }

    async fn wait_for_append(&self, beyond: Option<Position>) -> Result<(), Error> {
        self.inner.wait_for_append(beyond).await
    }

    fn read_stream(&self, query: &Query, options: ReadOptions) -> EventStream<'_> {
        let query = self.upcasters.expand(query);
        Box::pin(
            self.inner
                .read_stream(&query, options)
                .then(move |item| self.present_item(item)),
        )
    }

    fn subscribe(&self, query: &Query, after: Option<Position>) -> EventStream<'_> {
        let query = self.upcasters.expand(query);
        Box::pin(
            self.inner
                .subscribe(&query, after)
                .then(move |item| self.present_item(item)),
        )
    }

    fn subscribe_all(&self, after: Option<Position>) -> EventStream<'_> {
        Box::pin(
            self.inner
                .subscribe_all(after)
                .then(move |item| self.present_item(item)),
        )
    }
}

impl<S: EventStore> Records<S> {
    async fn present_item(
        &self,
        item: Result<SequencedEvent, Error>,
    ) -> Result<SequencedEvent, Error> {
        match item {
            Ok(event) => self.present_streamed(event).await,
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::InMemoryEventStore;
    use jiff::Timestamp;

    fn registered(subject: &str, email: &str) -> NewEvent {
        NewEvent::builder(
            "Registered",
            Payload::from_json(&format!(
                r#"{{"id":"{subject}","email":"{email}","name":"N {subject}","n":1.50}}"#
            ))
            .unwrap(),
        )
        .tag("id", subject)
        .personal_data(subject, ["email", "name", "absent"])
        .build()
        .unwrap()
    }

    fn officer() -> Metadata {
        let mut m = Metadata::at(Timestamp::now());
        m.user_id = Some("dpo".into());
        m
    }

    #[test]
    fn sealing_keeps_other_members_and_their_order_and_opening_restores_them() {
        let key = SubjectKey::generate().unwrap();
        let event = registered("s-1", "a@x.org");
        let sealed = seal(event.clone(), &key).unwrap();
        assert!(sealed.is_sealed());
        let json = sealed.payload().as_json();
        assert!(
            !json.contains("a@x.org") && !json.contains("N s-1"),
            "{json}"
        );
        assert!(json.starts_with(r#"{"id":"s-1","email":""#) && json.ends_with(r#","n":1.50}"#));
        // Only the fields present are listed as sealed.
        assert_eq!(sealed.personal_data().unwrap().fields, ["email", "name"]);
        let opened = open(SequencedEvent::new(Position::FIRST, sealed), Some(&key)).unwrap();
        assert_eq!(opened.event.payload(), event.payload());
        assert!(!opened.event.is_sealed() && !opened.is_erased());
    }

    #[test]
    fn a_changed_ciphertext_a_wrong_key_or_a_moved_field_does_not_open() {
        let key = SubjectKey::generate().unwrap();
        let sealed = seal(registered("s-1", "a@x.org"), &key).unwrap();
        let other = SubjectKey::generate().unwrap();
        let at = |e: NewEvent| SequencedEvent::new(Position::FIRST, e);
        assert!(matches!(
            open(at(sealed.clone()), Some(&other)),
            Err(Error::SealBroken { ref field, .. }) if field == "email"
        ));
        // Swap the two sealed values: each is bound to its own field name.
        let v: serde_json::Value = serde_json::from_str(sealed.payload().as_json()).unwrap();
        let swapped = format!(
            r#"{{"id":"s-1","email":{},"name":{},"n":1.50}}"#,
            v["name"], v["email"]
        );
        let moved = sealed
            .clone()
            .with_payload(Payload::from_json(&swapped).unwrap());
        assert!(matches!(
            open(at(moved), Some(&key)),
            Err(Error::SealBroken { .. })
        ));
        // Without a key (forgotten), the sealed fields are left out and the event is marked.
        let erased = open(at(sealed), None).unwrap();
        assert!(erased.is_erased());
        assert_eq!(erased.event.payload().as_json(), r#"{"id":"s-1","n":1.50}"#);
    }

    #[test]
    fn a_personal_field_named_twice_is_refused_and_a_sealed_event_does_not_decode() {
        let key = SubjectKey::generate().unwrap();
        let twice = NewEvent::builder(
            "Registered",
            Payload::from_json(r#"{"email":"a@x.org","email":"b@x.org"}"#).unwrap(),
        )
        .personal_data("s-1", ["email"])
        .build()
        .unwrap();
        assert!(matches!(
            seal(twice, &key),
            Err(Error::InvalidPersonalData { .. })
        ));

        #[derive(Serialize, Deserialize)]
        struct Registered {
            email: String,
        }
        impl DomainEvent for Registered {
            const EVENT_TYPE: &'static str = "Registered";
        }
        let sealed = seal(registered("s-1", "a@x.org"), &key).unwrap();
        let stored = SequencedEvent::new(Position::FIRST, sealed);
        assert!(matches!(
            stored.decode::<Registered>(),
            Err(Error::Sealed { ref subject, .. }) if subject == "s-1"
        ));
        let opened = open(stored, Some(&key)).unwrap();
        assert_eq!(opened.decode::<Registered>().unwrap().email, "a@x.org");
    }

    #[tokio::test]
    async fn a_plain_store_refuses_unsealed_personal_data() {
        let store = InMemoryEventStore::new();
        assert!(matches!(
            store.append(vec![registered("s-1", "a@x.org")], None).await,
            Err(Error::UnsealedPersonalData { index: 0, .. })
        ));
        assert!(store.is_empty());
        let without_keys = Records::new(InMemoryEventStore::new());
        assert!(matches!(
            without_keys
                .append(vec![registered("s-1", "a@x.org")], None)
                .await,
            Err(Error::InvalidPersonalData { .. })
        ));
    }

    #[tokio::test]
    async fn forget_erases_in_every_handle_and_refuses_new_data() {
        let store = Arc::new(InMemoryEventStore::new());
        let keys: Arc<dyn KeyStore> = Arc::new(InMemoryKeyStore::new());
        let a = Records::new(Arc::clone(&store)).with_key_store(Arc::clone(&keys));
        let b = Records::new(Arc::clone(&store)).with_key_store(Arc::clone(&keys));
        a.append(vec![registered("s-1", "a@x.org")], None)
            .await
            .unwrap();
        a.append(vec![registered("s-2", "b@x.org")], None)
            .await
            .unwrap();
        // `a` caches s-1's key by reading.
        let all = a.read(&Query::all(), ReadOptions::new()).await.unwrap();
        assert!(all[0].event.payload().as_json().contains("a@x.org"));

        let done = b.forget("s-1", "request 17", officer()).await.unwrap();
        assert!(!done.already && done.key_destroyed);
        let last = store
            .read_last(&forgotten_query("s-1").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(last.event.metadata().user_id.as_deref(), Some("dpo"));
        assert_eq!(last.event.metadata().get("reason"), Some("request 17"));

        let all = a.read(&Query::all(), ReadOptions::new()).await.unwrap();
        assert!(all[0].is_erased());
        assert!(!all[0].event.payload().as_json().contains("a@x.org"));
        assert!(all[1].event.payload().as_json().contains("b@x.org"));
        assert!(matches!(
            a.append(vec![registered("s-1", "new@x.org")], None).await,
            Err(Error::SubjectForgotten { .. })
        ));
        let again = a.forget("s-1", "twice", officer()).await.unwrap();
        assert_eq!((again.position, again.already), (done.position, true));
    }

    /// A store that lets another handle forget a subject just before the first append reaches
    /// it: the moment after the appending handle last looked for forgotten subjects.
    struct ForgetsFirst {
        inner: Arc<InMemoryEventStore>,
        keys: Arc<dyn KeyStore>,
        armed: AtomicBool,
    }

    #[async_trait]
    impl EventStore for ForgetsFirst {
        async fn append(
            &self,
            events: Vec<NewEvent>,
            condition: Option<AppendCondition>,
        ) -> Result<Position, Error> {
            if self.armed.swap(false, Ordering::SeqCst) {
                let other =
                    Records::new(Arc::clone(&self.inner)).with_key_store(Arc::clone(&self.keys));
                other.forget("s-1", "meanwhile", officer()).await?;
            }
            self.inner.append(events, condition).await
        }
        async fn read(
            &self,
            query: &Query,
            options: ReadOptions,
        ) -> Result<Vec<SequencedEvent>, Error> {
            self.inner.read(query, options).await
        }
        async fn read_last(&self, query: &Query) -> Result<Option<SequencedEvent>, Error> {
            self.inner.read_last(query).await
        }
    }

    #[tokio::test]
    async fn a_key_cached_before_another_handles_forget_never_seals_data_after_it() {
        let inner = Arc::new(InMemoryEventStore::new());
        let keys: Arc<dyn KeyStore> = Arc::new(InMemoryKeyStore::new());
        let store = ForgetsFirst {
            inner: Arc::clone(&inner),
            keys: Arc::clone(&keys),
            armed: AtomicBool::new(false),
        };
        let records = Records::new(store).with_key_store(Arc::clone(&keys));
        records
            .append(vec![registered("s-1", "a@x.org")], None)
            .await
            .unwrap();
        records.inner().armed.store(true, Ordering::SeqCst);
        // The key is cached and the handle has seen no forget: only the condition stops it.
        let raced = records
            .append(vec![registered("s-1", "late@x.org")], None)
            .await;
        assert!(
            matches!(raced, Err(ref e) if e.is_condition_failed()),
            "{raced:?}"
        );
        // Retried, as a decision would be, it is refused outright.
        assert!(matches!(
            records
                .append(vec![registered("s-1", "late@x.org")], None)
                .await,
            Err(Error::SubjectForgotten { .. })
        ));
        assert_eq!(
            inner.len(),
            2,
            "the registration and the forget, nothing after"
        );
    }

    #[tokio::test]
    async fn an_interrupted_forget_is_finished_by_the_next_handle() {
        let store = Arc::new(InMemoryEventStore::new());
        let keys: Arc<dyn KeyStore> = Arc::new(InMemoryKeyStore::new());
        let a = Records::new(Arc::clone(&store)).with_key_store(Arc::clone(&keys));
        a.append(vec![registered("s-1", "a@x.org")], None)
            .await
            .unwrap();
        // The event lands, then the process dies before destroying the key.
        let event = NewEvent::from_typed(&SubjectForgotten {
            subject: "s-1".into(),
            reason: "r".into(),
        })
        .tag(SUBJECT_TAG, "s-1")
        .build()
        .unwrap();
        store.append(vec![event], None).await.unwrap();
        assert!(keys.get("s-1").await.unwrap().is_some());
        let b = Records::new(Arc::clone(&store)).with_key_store(Arc::clone(&keys));
        assert_eq!(b.recover().await.unwrap(), 1);
        assert!(keys.get("s-1").await.unwrap().is_none());
        assert!(b.read(&Query::all(), ReadOptions::new()).await.unwrap()[0].is_erased());
    }

    #[tokio::test]
    async fn a_key_lost_without_a_forget_is_an_error_not_an_erasure() {
        let store = Arc::new(InMemoryEventStore::new());
        let a = Records::new(Arc::clone(&store)).with_key_store(Arc::new(InMemoryKeyStore::new()));
        a.append(vec![registered("s-1", "a@x.org")], None)
            .await
            .unwrap();
        let other_keys =
            Records::new(Arc::clone(&store)).with_key_store(Arc::new(InMemoryKeyStore::new()));
        assert!(matches!(
            other_keys.read(&Query::all(), ReadOptions::new()).await,
            Err(Error::KeyStore(ref e)) if e.kind() == ErrorKind::NotFound
        ));
    }
}
