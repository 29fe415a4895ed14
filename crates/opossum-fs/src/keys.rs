//! [`FileKeyStore`]: the data subjects' keys for crypto-shredding, one small file per subject in
//! the store folder's `keys/` folder, apart from the append-only log.
//!
//! A key file is one line of JSON, `keys/<SHA-256 of the subject, 64 hex>.key`:
//!
//! ```text
//! {"subject":"s-1","key":"<64 hex>","check":"<16 hex>"}
//! ```
//!
//! `check` is the first 8 bytes of the SHA-256 of the key, so a damaged key is told from a
//! wrong one. A key is created in a temporary file that is synced and then published under its
//! final name with a hard link, which fails if another process published one first (then that
//! key is used): a final name never holds a partly written key, and two processes never seal
//! one subject's data under two keys. Destroying a key overwrites the file in place, every
//! byte, with
//!
//! ```text
//! {"subject":"s-1","destroyed":"<RFC 3339 time>"}
//! ```
//!
//! padded with spaces to at least the old length, and syncs it: the file stays as a tombstone,
//! so the subject's key is never created again. A file that holds neither (a destroy torn by a
//! crash) reads as no key, and destroying it again finishes the job. Temporary files a killed
//! process left behind (keys never published, so never used) are removed once they are a
//! minute old, by a sweep of the folder when a key store publishes its first key and then at
//! most once a minute (not for every key: the folder holds one file per subject).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use opossum_core::Timestamp;
use opossum_core::records::{KeyStore, SubjectKey};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Error;

/// The folder of a store that holds its key store.
pub const KEYS_FOLDER: &str = "keys";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How old a temporary key file must be before it counts as left behind by a killed process.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(60);

/// A [`KeyStore`] in a folder: by default `keys/` in the store folder
/// ([`FileKeyStore::for_store`]). See the [module documentation](self) for its files.
///
/// Back it up apart from the log, with a retention shorter than the erasure deadline: a copy
/// of this folder made before a `forget` can still open that subject's data in a copy of the
/// log (see `opossum_core::records`).
#[derive(Clone, Debug)]
pub struct FileKeyStore {
    dir: PathBuf,
    /// When this key store (or a clone) last swept stale temporaries: a sweep lists the whole
    /// folder, so it runs on the first key published and then at most once per
    /// [`STALE_TEMPORARY`], not on every key.
    swept: Arc<Mutex<Option<Instant>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveFile {
    subject: String,
    key: String,
    check: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DestroyedFile {
    subject: String,
    #[allow(dead_code)] // read so that a file with a damaged time is not taken for a tombstone
    destroyed: Timestamp,
}

/// What a key file holds.
enum KeyFile {
    Live(SubjectKey),
    Destroyed,
    Missing,
}

impl FileKeyStore {
    /// The key store of the store in `store_folder` (its `keys/` folder, created on the first
    /// key).
    pub fn for_store(store_folder: impl AsRef<Path>) -> FileKeyStore {
        FileKeyStore::in_folder(store_folder.as_ref().join(KEYS_FOLDER))
    }

    /// A key store in `dir` (created on the first key), for keeping keys apart from the store
    /// folder, for example on a volume that is not backed up with it.
    pub fn in_folder(dir: impl Into<PathBuf>) -> FileKeyStore {
        FileKeyStore {
            dir: dir.into(),
            swept: Arc::new(Mutex::new(None)),
        }
    }

    /// The folder that holds the key files.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that holds (or held) `subject`'s key.
    #[must_use]
    pub fn key_path(&self, subject: &str) -> PathBuf {
        let digest = Sha256::digest(subject.as_bytes());
        let name: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{name}.key"))
    }

    /// Every subject the key store holds, with its key, or `None` when the key was destroyed:
    /// what a copy of the key store to another one (`opossum migrate`) needs. The temporary
    /// files of keys being published are skipped.
    ///
    /// # Errors
    /// [`Error::DamagedKey`] for a file that holds neither a key nor a tombstone (a destroy a
    /// crash interrupted: opening the store's records first finishes it), I/O errors.
    pub fn entries(&self) -> Result<Vec<(String, Option<SubjectKey>)>, Error> {
        let listing = match fs::read_dir(&self.dir) {
            Ok(listing) => listing,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list", &self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in listing {
            let entry = entry.map_err(|e| Error::io("list", &self.dir, e))?;
            let path = entry.path();
            let is_key = path.extension().is_some_and(|x| x == "key")
                && !entry.file_name().to_string_lossy().starts_with('.');
            if !is_key {
                continue;
            }
            let text = fs::read_to_string(&path).map_err(|e| Error::io("read", &path, e))?;
            let subject =
                subject_of(text.trim_end()).ok_or_else(|| damaged(&path, "it names no subject"))?;
            if self.key_path(&subject) != path {
                return Err(damaged(&path, "its name is not the hash of its subject"));
            }
            match self.read(&subject)? {
                KeyFile::Live(key) => out.push((subject, Some(key))),
                KeyFile::Destroyed => out.push((subject, None)),
                KeyFile::Missing => {}
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn read(&self, subject: &str) -> Result<KeyFile, Error> {
        let path = self.key_path(subject);
        let mut text = String::new();
        match File::open(&path) {
            Ok(mut file) => {
                if let Err(e) = file.read_to_string(&mut text) {
                    if e.kind() != io::ErrorKind::InvalidData {
                        return Err(Error::io("read", &path, e));
                    }
                    return Err(damaged(&path, "not UTF-8 text"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(KeyFile::Missing),
            Err(e) => return Err(Error::io("open", &path, e)),
        }
        let line = text.trim_end();
        if let Ok(live) = serde_json::from_str::<LiveFile>(line) {
            let key = parse_key(&live.key)
                .ok_or_else(|| damaged(&path, "the key is not 64 hex digits"))?;
            if live.subject != subject || check_of(&key) != live.check {
                return Err(damaged(
                    &path,
                    "the key does not match its check or subject",
                ));
            }
            return Ok(KeyFile::Live(SubjectKey::from_bytes(key)));
        }
        match serde_json::from_str::<DestroyedFile>(line) {
            Ok(gone) if gone.subject == subject => Ok(KeyFile::Destroyed),
            _ => Err(damaged(&path, "it holds neither a key nor a destroyed key")),
        }
    }

    fn create(&self, subject: &str) -> Result<SubjectKey, Error> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
        let key = SubjectKey::generate().map_err(Error::Core)?;
        let text = format!(
            "{{\"subject\":{},\"key\":{:?},\"check\":{:?}}}\n",
            serde_json::to_string(subject).map_err(|e| damaged(&self.dir, &e.to_string()))?,
            hex(key.as_bytes()),
            check_of(key.as_bytes()),
        );
        let path = self.key_path(subject);
        match self.publish(&path, text.as_bytes())? {
            true => Ok(key),
            // Another process published a key first: use that one.
            false => match self.read(subject)? {
                KeyFile::Live(key) => Ok(key),
                KeyFile::Destroyed => Err(Error::Core(opossum_core::Error::SubjectForgotten {
                    subject: subject.to_owned(),
                })),
                KeyFile::Missing => Err(damaged(&path, "it vanished while being created")),
            },
        }
    }

    /// Writes `bytes` to a synced temporary file and links it to `path`; `false` when `path`
    /// already existed (nothing changed then).
    fn publish(&self, path: &Path, bytes: &[u8]) -> Result<bool, Error> {
        let temp = self.dir.join(format!(
            ".{}-{}-{}.tmp",
            std::process::id(),
            Timestamp::now().as_nanosecond(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(Error::io("write", &temp, e));
        }
        let linked = fs::hard_link(&temp, path);
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                self.sweep_temporaries();
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io("link", path, e)),
        }
    }

    /// Removes temporary files that a process killed while publishing left behind (older than
    /// [`STALE_TEMPORARY`]): each holds a key that was never published, so never used. Does
    /// nothing when this key store swept less than [`STALE_TEMPORARY`] ago.
    fn sweep_temporaries(&self) {
        if !self.sweep_due() {
            return;
        }
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with('.') && name.ends_with(".tmp")) {
                continue;
            }
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE_TEMPORARY);
            if stale {
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// True, and the sweep's time noted, when no sweep ran in the last [`STALE_TEMPORARY`].
    fn sweep_due(&self) -> bool {
        let mut last = self.swept.lock().unwrap_or_else(PoisonError::into_inner);
        match *last {
            Some(at) if at.elapsed() < STALE_TEMPORARY => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    fn destroy_now(&self, subject: &str) -> Result<bool, Error> {
        let path = self.key_path(subject);
        let had_key = match self.read(subject) {
            Ok(KeyFile::Live(_)) => true,
            Ok(KeyFile::Destroyed) => return Ok(false),
            Ok(KeyFile::Missing) => {
                fs::create_dir_all(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
                if self.publish(&path, tombstone(subject, 0)?.as_bytes())? {
                    return Ok(false);
                }
                // A key was created meanwhile: overwrite it below.
                true
            }
            // A destroy torn by a crash, or damage: overwrite it all the same.
            Err(Error::DamagedKey { .. }) => false,
            Err(e) => return Err(e),
        };
        let overwrite = || -> io::Result<()> {
            let mut file = OpenOptions::new().write(true).open(&path)?;
            let old_len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
            let text = tombstone(subject, old_len).map_err(io::Error::other)?;
            file.write_all(text.as_bytes())?;
            file.set_len(text.len() as u64)?;
            file.sync_all()
        };
        overwrite().map_err(|e| Error::io("overwrite", &path, e))?;
        Ok(had_key)
    }
}

/// The subject a key file or tombstone names.
fn subject_of(line: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Named {
        subject: String,
    }
    serde_json::from_str::<Named>(line).ok().map(|n| n.subject)
}

fn damaged(path: &Path, problem: &str) -> Error {
    Error::DamagedKey {
        path: path.to_path_buf(),
        problem: problem.to_owned(),
    }
}

/// The tombstone line, padded with spaces to at least `at_least` bytes.
fn tombstone(subject: &str, at_least: usize) -> Result<String, Error> {
    let subject = serde_json::to_string(subject)
        .map_err(|e| Error::Core(opossum_core::Error::InvalidPayload { source: e }))?;
    let mut text = format!(
        "{{\"subject\":{subject},\"destroyed\":\"{}\"}}",
        Timestamp::now()
    );
    while text.len() + 1 < at_least {
        text.push(' ');
    }
    text.push('\n');
    Ok(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_of(key: &[u8; 32]) -> String {
    hex(&Sha256::digest(key)[..8])
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("sync", dir, e))
    }
    #[cfg(windows)]
    {
        // NTFS journals directory changes itself, and the standard library cannot open a
        // directory handle to flush.
        let _ = dir;
        Ok(())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, opossum_core::Error> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(key_store_error),
        Err(e) => Err(opossum_core::Error::KeyStore(
            opossum_core::StorageError::new(
                opossum_core::ErrorKind::Other,
                format!("a key store task failed: {e}"),
            ),
        )),
    }
}

fn key_store_error(e: Error) -> opossum_core::Error {
    match e {
        Error::Core(core) => core,
        other => {
            opossum_core::Error::KeyStore(opossum_core::StorageError::new(other.kind(), other))
        }
    }
}

#[async_trait]
impl KeyStore for FileKeyStore {
    async fn get_or_create(&self, subject: &str) -> Result<SubjectKey, opossum_core::Error> {
        let (this, subject) = (self.clone(), subject.to_owned());
        blocking(move || match this.read(&subject)? {
            KeyFile::Live(key) => Ok(key),
            KeyFile::Destroyed => Err(Error::Core(opossum_core::Error::SubjectForgotten {
                subject,
            })),
            KeyFile::Missing => this.create(&subject),
        })
        .await
    }

    async fn get(&self, subject: &str) -> Result<Option<SubjectKey>, opossum_core::Error> {
        let (this, subject) = (self.clone(), subject.to_owned());
        blocking(move || match this.read(&subject) {
            Ok(KeyFile::Live(key)) => Ok(Some(key)),
            Ok(KeyFile::Destroyed | KeyFile::Missing) => Ok(None),
            Err(e @ Error::DamagedKey { .. }) => {
                tracing::warn!(error = %e, "a key file is damaged; its data reads as without a key");
                Ok(None)
            }
            Err(e) => Err(e),
        })
        .await
    }

    async fn destroy(&self, subject: &str) -> Result<bool, opossum_core::Error> {
        let (this, subject) = (self.clone(), subject.to_owned());
        blocking(move || this.destroy_now(&subject)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_published_key_sweeps_stale_temporaries_only() {
        let tmp = tempfile::tempdir().unwrap();
        let keys = FileKeyStore::for_store(tmp.path());
        fs::create_dir_all(keys.dir()).unwrap();
        let stale = keys.dir().join(".1-2-3.tmp");
        let fresh = keys.dir().join(".4-5-6.tmp");
        fs::write(&stale, "{}").unwrap();
        fs::write(&fresh, "{}").unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let key = keys.create("s-1").unwrap();
        assert!(!stale.exists() && fresh.exists());
        match keys.read("s-1").unwrap() {
            KeyFile::Live(read) => assert_eq!(read.as_bytes(), key.as_bytes()),
            _ => panic!("no live key"),
        }
        assert!(keys.destroy_now("s-1").unwrap());
        assert!(matches!(keys.read("s-1").unwrap(), KeyFile::Destroyed));
        assert!(!keys.destroy_now("s-1").unwrap());

        // The folder is listed once per interval, not for every key: a temporary left stale
        // now stays until the next interval's sweep (by this store or any other opened later).
        fs::write(&stale, "{}").unwrap();
        File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        keys.clone().create("s-2").unwrap();
        assert!(stale.exists());
        FileKeyStore::for_store(tmp.path()).create("s-3").unwrap();
        assert!(!stale.exists());
    }

    #[test]
    fn entries_list_live_and_destroyed_keys_by_subject() {
        let tmp = tempfile::tempdir().unwrap();
        let keys = FileKeyStore::for_store(tmp.path());
        assert!(keys.entries().unwrap().is_empty());
        let b = keys.create("b").unwrap();
        keys.create("a").unwrap();
        keys.destroy_now("a").unwrap();
        fs::write(keys.dir().join(".9-9-9.tmp"), "{}").unwrap();
        let entries = keys.entries().unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!((entries[0].0.as_str(), entries[0].1.is_none()), ("a", true));
        assert_eq!(entries[1].0, "b");
        assert_eq!(entries[1].1.as_ref().unwrap().as_bytes(), b.as_bytes());
    }

    #[test]
    fn a_torn_tombstone_reads_as_damage_and_destroying_again_repairs_it() {
        let tmp = tempfile::tempdir().unwrap();
        let keys = FileKeyStore::for_store(tmp.path());
        keys.create("s-1").unwrap();
        let path = keys.key_path("s-1");
        let text = fs::read_to_string(&path).unwrap();
        // The first bytes of the tombstone over the key's line: neither a key nor a tombstone.
        let torn = format!("{{\"subject\":\"s-1\",\"destr{}", &text[24..]);
        let torn_len = torn.len();
        fs::write(&path, torn).unwrap();
        assert!(matches!(keys.read("s-1"), Err(Error::DamagedKey { .. })));
        assert!(!keys.destroy_now("s-1").unwrap());
        assert!(matches!(keys.read("s-1").unwrap(), KeyFile::Destroyed));
        let after = fs::read_to_string(&path).unwrap();
        assert!(after.len() >= torn_len, "{after:?}");
        assert!(!after.contains("\"key\""), "{after:?}");
    }
}
