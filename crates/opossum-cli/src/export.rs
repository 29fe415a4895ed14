//! `opossum export`, `opossum verify-export` and `opossum keygen`: an audit copy of events that
//! can be checked without the store, optionally signed.
//!
//! An export folder holds:
//!
//! - one file per event, `<position>.json` with the position zero-padded to 20 digits (so that
//!   names sort like positions), holding the position, the event's chain hash, the chain hash
//!   of the event before it, the line exactly as the log stores it (a JSON string: what the
//!   hash covers), and the same line pretty-printed for people (`event`, every token kept, keys
//!   in the stored order);
//! - `manifest.json`, written last: what was exported from which store with which filters,
//!   the first and last position, the chain hashes at both ends, whether every position in
//!   between is there, and the SHA-256 of every event file;
//! - with `--sign`, `manifest.sig`: an Ed25519 signature over the exact bytes of
//!   `manifest.json`, and the signer's public key.
//!
//! Anyone can recompute an event's chain hash from its `previous_hash` and `line`
//! ([`opossum_fs::chain_hash`]; `docs/format.md` shows it in a few lines of Python), so an
//! export proves its events belong to one chain without the store.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use opossum_core::records::SubjectForgotten;
use opossum_core::{DomainEvent as _, Query};
use opossum_fs::StoredEvent;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cli::{ExportArgs, Filters, KeygenArgs, VerifyExportArgs};
use crate::{Error, Outcome, Output, Selection, open_read_only, pretty_json};

/// What `manifest.json` says it is.
const FORMAT: &str = "opossum-export";
/// The version of the export format this tool writes and reads.
const VERSION: u32 = 1;
/// The manifest's file name.
const MANIFEST: &str = "manifest.json";
/// The signature's file name.
const SIGNATURE: &str = "manifest.sig";
/// The one signature algorithm.
const ALGORITHM: &str = "ed25519";
/// Events read from the store per step, so that memory stays bounded for large exports.
const PAGE: usize = 1024;
/// Digits of the position in an event file's name.
const NAME_DIGITS: usize = 20;

// ---------------------------------------------------------------------------------------------
// The files

/// `manifest.json`.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// Always [`FORMAT`].
    format: String,
    /// Always [`VERSION`].
    version: u32,
    /// The store exported from.
    store: StoreInfo,
    /// When the export was made (RFC 3339).
    created_at: String,
    /// The filters, as given on the command line.
    filters: FiltersUsed,
    /// The first and last position exported; null for an empty export.
    range: Range,
    /// How many events.
    count: u64,
    /// The chain hash the first exported event follows (its `previous_hash`).
    from_hash: Option<String>,
    /// The chain hash of the last exported event.
    to_hash: Option<String>,
    /// True when every position from the first to the last is exported.
    contiguous: bool,
    /// Every event file, by position.
    files: Vec<FileEntry>,
}

/// The store an export comes from.
#[derive(Debug, Serialize, Deserialize)]
struct StoreInfo {
    /// Its folder, as the exporting machine saw it.
    path: String,
    /// Its identity from `head.json`, when it has one.
    identity: Option<String>,
    /// The folder's name.
    name: Option<String>,
}

/// The filters an export used, as given.
#[derive(Debug, Serialize, Deserialize)]
struct FiltersUsed {
    types: Vec<String>,
    tags: Vec<String>,
    after: Option<u64>,
    before: Option<u64>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<usize>,
}

/// The first and last position of an export.
#[derive(Debug, Serialize, Deserialize)]
struct Range {
    first: Option<u64>,
    last: Option<u64>,
}

/// One event file, as the manifest lists it.
#[derive(Debug, Serialize, Deserialize)]
struct FileEntry {
    name: String,
    position: u64,
    /// SHA-256 of the file's bytes, in lowercase hex.
    sha256: String,
}

/// `manifest.sig`.
#[derive(Debug, Serialize, Deserialize)]
struct SignatureFile {
    /// Always [`ALGORITHM`].
    algorithm: String,
    /// The signer's Ed25519 public key, 64 hex digits.
    public_key: String,
    /// The signature over the bytes of `manifest.json`, 128 hex digits.
    signature: String,
}

/// An event file, as `verify-export` reads it.
#[derive(Debug, Deserialize)]
struct EventFile {
    position: u64,
    hash: String,
    previous_hash: String,
    line: String,
    event: serde_json::Value,
}

/// The name of the event file of `position`.
fn file_name(position: u64) -> String {
    format!("{position:0width$}.json", width = NAME_DIGITS)
}

/// The position an event file's name stands for, when it is one.
fn position_of_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".json")?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What an export says of an event's sealed personal fields: whose they are, which, and
/// whether the subject was forgotten (`erased`: the key is destroyed, the ciphertext in the
/// line can no longer be opened) or not (`sealed`: the key store can still open them).
#[derive(Serialize)]
struct PersonalNote<'a> {
    subject: &'a str,
    fields: &'a [String],
    state: &'static str,
}

/// The text of the event file of `event`: pretty for people, exact for machines.
fn event_file_text(
    event: &StoredEvent,
    forgotten: &HashSet<String>,
) -> Result<String, serde_json::Error> {
    let line = &event.line;
    let mut text = String::with_capacity(line.len() * 3 + 256);
    text.push_str("{\n  \"position\": ");
    text.push_str(&event.event.position.get().to_string());
    text.push_str(",\n  \"hash\": ");
    text.push_str(&serde_json::to_string(&event.hash)?);
    text.push_str(",\n  \"previous_hash\": ");
    text.push_str(&serde_json::to_string(&event.previous_hash)?);
    text.push_str(",\n  \"line\": ");
    text.push_str(&serde_json::to_string(line)?);
    text.push_str(",\n  \"event\": ");
    text.push_str(&pretty_json(line, 1));
    if let Some(personal) = event.event.event.personal_data() {
        let note = PersonalNote {
            subject: &personal.subject,
            fields: &personal.fields,
            state: if forgotten.contains(&personal.subject) {
                "erased"
            } else {
                "sealed"
            },
        };
        text.push_str(",\n  \"personal\": ");
        text.push_str(&serde_json::to_string(&note)?);
    }
    text.push_str("\n}\n");
    Ok(text)
}

/// The subjects the store's `SubjectForgotten` events name.
fn forgotten_subjects(store: &opossum_fs::FileEventStore) -> Result<HashSet<String>, Error> {
    let query = Query::from_event_types([SubjectForgotten::EVENT_TYPE])?;
    let mut out = HashSet::new();
    for event in store.read_blocking(&query, opossum_core::ReadOptions::new())? {
        if let Ok(f) = event.decode::<SubjectForgotten>() {
            out.insert(f.subject);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Hex, hashes and keys

/// `bytes` in lowercase hex.
fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The bytes `text` spells in hex (either case), when it is exactly `N` bytes of hex.
fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.as_bytes();
    if text.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

/// SHA-256 of `bytes` in lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// True when `text` is 64 lowercase hex digits.
fn is_hash(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The 32 bytes a key file holds: one line of 64 hex digits.
fn read_key_file(path: &Path, what: &str) -> Result<[u8; 32], Error> {
    let key_error = |reason: String| Error::Key {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => key_error(format!(
            "it is not a {what} made by `opossum keygen` (not text)"
        )),
        _ => key_error(format!("cannot read it: {e}")),
    })?;
    from_hex::<32>(text.trim()).ok_or_else(|| {
        key_error(format!(
            "it is not a {what} made by `opossum keygen`: expected one line of 64 hexadecimal digits"
        ))
    })
}

/// The secret key `--sign` names.
fn read_signing_key(path: &Path) -> Result<SigningKey, Error> {
    if path.extension().is_some_and(|e| e == "pub") {
        return Err(Error::Key {
            path: path.to_path_buf(),
            reason: "this is a public key file (.pub); --sign needs the secret key file beside it"
                .to_owned(),
        });
    }
    let seed = read_key_file(path, "secret key")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// The public key `--public-key` names for checking the export in `dir`. Not every 32 bytes
/// are a public key: when these are not one but are the secret key of the export's own signer
/// (given by mistake for its `.pub` file), that is what the error says.
fn read_trusted_key(path: &Path, dir: &Path) -> Result<VerifyingKey, Error> {
    let bytes = read_key_file(path, "public key")?;
    if let Ok(key) = VerifyingKey::from_bytes(&bytes) {
        return Ok(key);
    }
    let signer = std::fs::read(dir.join(SIGNATURE))
        .ok()
        .and_then(|b| serde_json::from_slice::<SignatureFile>(&b).ok())
        .and_then(|sig| from_hex::<32>(&sig.public_key))
        .and_then(|k| VerifyingKey::from_bytes(&k).ok());
    let reason = if signer == Some(SigningKey::from_bytes(&bytes).verifying_key()) {
        "it is the signer's SECRET key, not its public key: give the .pub file beside it, and keep the secret key private"
    } else {
        "its 64 hexadecimal digits are not an Ed25519 public key"
    };
    Err(Error::Key {
        path: path.to_path_buf(),
        reason: reason.to_owned(),
    })
}

/// `key` with `.pub` appended: where `keygen` puts the public key.
fn public_key_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

// ---------------------------------------------------------------------------------------------
// Files on disk

/// Writes `bytes` to the new file `path` (refusing one that exists) and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let mut file = File::create_new(path).map_err(|e| Error::io("create", path, e))?;
    file.write_all(bytes)
        .map_err(|e| Error::io("write", path, e))?;
    file.sync_all().map_err(|e| Error::io("sync", path, e))
}

/// Makes the entries of the folder `dir` durable (where the platform can sync a folder).
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("sync", dir, e))
}

/// Makes the entries of the folder `dir` durable (where the platform can sync a folder: not
/// here; the files themselves are synced).
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), Error> {
    Ok(())
}

/// `path` made absolute with every symbolic link and `..` resolved, also when its last
/// components do not exist yet.
fn resolve(path: &Path) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let components: Vec<Component<'_>> = absolute.components().collect();
    // The longest part that exists, resolved by the file system.
    let mut found = None;
    for end in (1..=components.len()).rev() {
        let existing: PathBuf = components[..end].iter().collect();
        if let Ok(resolved) = std::fs::canonicalize(&existing) {
            found = Some((resolved, end));
            break;
        }
    }
    let Some((mut resolved, end)) = found else {
        return std::fs::canonicalize(&absolute);
    };
    // What does not exist holds no links, so `..` is resolved by name.
    for component in &components[end..] {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    Ok(resolved)
}

/// Checks the export folder `out` (new, or empty, and not inside the store in `store_dir`)
/// and creates it when missing.
fn prepare_out(out: &Path, store_dir: &Path) -> Result<(), Error> {
    let refuse = |reason: String| Error::ExportFolder {
        path: out.to_path_buf(),
        reason,
    };
    let store = std::fs::canonicalize(store_dir).map_err(|e| Error::io("resolve", store_dir, e))?;
    let target = resolve(out).map_err(|e| Error::io("resolve", out, e))?;
    if target.starts_with(&store) {
        return Err(refuse(
            "it is inside the store's folder; an export goes outside the store".to_owned(),
        ));
    }
    match std::fs::metadata(out) {
        Ok(meta) if !meta.is_dir() => Err(refuse(
            "it is a file; give a new or empty folder".to_owned(),
        )),
        Ok(_) => {
            let mut entries = std::fs::read_dir(out).map_err(|e| Error::io("read", out, e))?;
            if entries.next().is_some() {
                Err(refuse(
                    "it is not empty; give a new or empty folder, so that the export holds nothing else"
                        .to_owned(),
                ))
            } else {
                Ok(())
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(out).map_err(|e| Error::io("create", out, e))?;
            if let Some(parent) = target.parent() {
                // Best effort: the new folder's entry in its parent.
                let _ = sync_dir(parent);
            }
            Ok(())
        }
        Err(e) => Err(Error::io("read", out, e)),
    }
}

// ---------------------------------------------------------------------------------------------
// export

/// What `export` reports.
#[derive(Debug, Serialize)]
struct Exported {
    export: String,
    store: String,
    count: u64,
    first: Option<u64>,
    last: Option<u64>,
    from_hash: Option<String>,
    to_hash: Option<String>,
    contiguous: bool,
    signed: bool,
    public_key: Option<String>,
    manifest_sha256: String,
}

/// The filters of `args`, as the manifest records them.
fn filters_used(filters: &Filters, limit: Option<usize>) -> FiltersUsed {
    FiltersUsed {
        types: filters.types.clone(),
        tags: filters.tags.clone(),
        after: filters.after,
        before: filters.before,
        since: filters.since.clone(),
        until: filters.until.clone(),
        limit,
    }
}

/// `opossum export DIR OUT [filters] [--sign KEY]`.
pub(crate) fn export(args: &ExportArgs, out: &mut Output) -> Result<Outcome, Error> {
    let selection = Selection::new(&args.filters)?;
    // A bad key is refused before anything is written.
    let signing_key = args.sign.as_deref().map(read_signing_key).transpose()?;
    let store = open_read_only(&args.dir)?;
    prepare_out(&args.out, store.path())?;
    let forgotten = forgotten_subjects(&store)?;

    // The head when the export starts: events appended while it runs are not part of it.
    let head = store
        .read_last_blocking(&Query::all())?
        .map(|e| e.position.get());
    let mut page = selection.clone();
    let mut remaining = args.limit.unwrap_or(usize::MAX);
    if let Some(head) = head {
        let cap = head.saturating_add(1);
        page.before = Some(page.before.map_or(cap, |b| b.min(cap)));
    } else {
        remaining = 0;
    }
    let estimate = head.map_or(0, |head| {
        let low = args.filters.after.unwrap_or(0);
        let high = args
            .filters
            .before
            .map_or(head, |b| head.min(b.saturating_sub(1)));
        let span = high.saturating_sub(low);
        span.min(u64::try_from(remaining).unwrap_or(u64::MAX))
    });
    let bar = crate::commands::progress(estimate, "exporting");

    let mut files = Vec::new();
    let mut from_hash = None;
    let mut to_hash = None;
    let mut contiguous = true;
    let mut previous: Option<u64> = None;
    while remaining > 0 {
        let wanted = PAGE.min(remaining);
        let events = page.read(&store, Some(wanted), false)?;
        let read = events.len();
        for event in &events {
            let position = event.event.position.get();
            let name = file_name(position);
            let path = args.out.join(&name);
            let text = event_file_text(event, &forgotten)
                .map_err(|e| Error::io("encode", &path, io::Error::other(e)))?;
            write_new(&path, text.as_bytes())?;
            files.push(FileEntry {
                name,
                position,
                sha256: sha256_hex(text.as_bytes()),
            });
            if from_hash.is_none() {
                from_hash = Some(event.previous_hash.clone());
            }
            to_hash = Some(event.hash.clone());
            if previous.is_some_and(|p| p.checked_add(1) != Some(position)) {
                contiguous = false;
            }
            previous = Some(position);
            bar.inc(1);
        }
        remaining -= read;
        match events.last() {
            Some(last) if read == wanted => page.after = Some(last.event.position),
            _ => break,
        }
    }
    bar.finish_and_clear();

    let absolute_store = std::path::absolute(store.path()).unwrap_or_else(|_| store.path().into());
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        version: VERSION,
        store: StoreInfo {
            path: absolute_store.display().to_string(),
            identity: store.identity()?,
            name: absolute_store
                .file_name()
                .map(|n| n.to_string_lossy().into_owned()),
        },
        created_at: jiff::Timestamp::now().to_string(),
        filters: filters_used(&args.filters, args.limit),
        range: Range {
            first: files.first().map(|f| f.position),
            last: files.last().map(|f| f.position),
        },
        count: files.len() as u64,
        from_hash,
        to_hash,
        contiguous,
        files,
    };
    let manifest_path = args.out.join(MANIFEST);
    let mut manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| Error::io("encode", &manifest_path, io::Error::other(e)))?;
    manifest_bytes.push(b'\n');
    write_new(&manifest_path, &manifest_bytes)?;

    let public_key = match &signing_key {
        Some(key) => {
            let signature = key.sign(&manifest_bytes);
            let public_key = to_hex(key.verifying_key().as_bytes());
            let sig = SignatureFile {
                algorithm: ALGORITHM.to_owned(),
                public_key: public_key.clone(),
                signature: to_hex(&signature.to_bytes()),
            };
            let sig_path = args.out.join(SIGNATURE);
            let mut bytes = serde_json::to_vec_pretty(&sig)
                .map_err(|e| Error::io("encode", &sig_path, io::Error::other(e)))?;
            bytes.push(b'\n');
            write_new(&sig_path, &bytes)?;
            Some(public_key)
        }
        None => None,
    };
    sync_dir(&args.out)?;

    let report = Exported {
        export: args.out.display().to_string(),
        store: store.path().display().to_string(),
        count: manifest.count,
        first: manifest.range.first,
        last: manifest.range.last,
        from_hash: manifest.from_hash,
        to_hash: manifest.to_hash,
        contiguous: manifest.contiguous,
        signed: public_key.is_some(),
        public_key,
        manifest_sha256: sha256_hex(&manifest_bytes),
    };
    out.emit(&report, |w| {
        match (report.first, report.last) {
            (Some(first), Some(last)) => writeln!(
                w,
                "exported {} events (positions {first} to {last}{}) into {}",
                report.count,
                if report.contiguous {
                    ", every one"
                } else {
                    ", not every one"
                },
                report.export
            )?,
            _ => writeln!(
                w,
                "exported no events (none matched) into {}",
                report.export
            )?,
        }
        if let (Some(from), Some(to)) = (&report.from_hash, &report.to_hash) {
            writeln!(w, "chain from {from}")?;
            writeln!(w, "        to {to}")?;
        }
        writeln!(w, "manifest sha256 {}", report.manifest_sha256)?;
        match &report.public_key {
            Some(key) => {
                writeln!(w, "signed with the Ed25519 key {key}")?;
                writeln!(
                    w,
                    "check it with: opossum verify-export {} --public-key <the .pub file>",
                    report.export
                )
            }
            None => {
                writeln!(
                    w,
                    "not signed (sign with --sign KEY; make a key with opossum keygen)"
                )?;
                writeln!(w, "check it with: opossum verify-export {}", report.export)
            }
        }
    })?;
    Ok(Outcome::Done)
}

// ---------------------------------------------------------------------------------------------
// verify-export

/// One problem `verify-export` found.
#[derive(Debug, Serialize)]
struct Problem {
    /// The file it is in (`manifest.json`, `manifest.sig`, an event file).
    file: String,
    /// What is wrong.
    problem: String,
}

/// What `verify-export` reports.
#[derive(Debug, Serialize)]
struct ExportCheck {
    export: String,
    intact: bool,
    files_checked: u64,
    count: Option<u64>,
    first: Option<u64>,
    last: Option<u64>,
    from_hash: Option<String>,
    to_hash: Option<String>,
    manifest_sha256: String,
    signed: bool,
    /// Null when there is no signature.
    signature_valid: Option<bool>,
    signer_public_key: Option<String>,
    /// Null without `--public-key`.
    trusted_key_matched: Option<bool>,
    /// What was not checked, when something was not.
    note: Option<String>,
    problems: Vec<Problem>,
}

/// The problems found so far.
#[derive(Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn add(&mut self, file: &str, problem: impl Into<String>) {
        self.0.push(Problem {
            file: file.to_owned(),
            problem: problem.into(),
        });
    }
}

/// An event file that was read and parsed.
struct Checked {
    name: String,
    file: EventFile,
}

/// Checks the contents of one event file, `name`, expected to hold `position`.
fn check_event_file(
    name: &str,
    position: u64,
    bytes: &[u8],
    problems: &mut Problems,
) -> Option<Checked> {
    let file: EventFile = match serde_json::from_slice(bytes) {
        Ok(file) => file,
        Err(e) => {
            problems.add(name, format!("it is not an event file of an export: {e}"));
            return None;
        }
    };
    if file.position != position {
        problems.add(
            name,
            format!(
                "it holds position {}, but its name and the manifest say {position}",
                file.position
            ),
        );
    }
    if !is_hash(&file.hash) {
        problems.add(name, "its hash is not 64 lowercase hexadecimal digits");
    }
    match opossum_fs::chain_hash(&file.previous_hash, &file.line) {
        Some(hash) if hash == file.hash => {}
        Some(hash) => problems.add(
            name,
            format!(
                "the chain link is broken: previous_hash and line hash to {hash}, not to the recorded hash {}",
                file.hash
            ),
        ),
        None if !is_hash(&file.previous_hash) => problems.add(
            name,
            "its previous_hash is not 64 lowercase hexadecimal digits",
        ),
        None => problems.add(name, "its line does not end with a hash field"),
    }
    match serde_json::from_str::<serde_json::Value>(&file.line) {
        Ok(line) => {
            match line.get("position").and_then(serde_json::Value::as_u64) {
                Some(p) if p == file.position => {}
                Some(p) => problems.add(
                    name,
                    format!("its line holds position {p}, not {}", file.position),
                ),
                None => problems.add(name, "its line holds no position"),
            }
            if trailing_hash(&file.line) != Some(file.hash.as_str()) {
                problems.add(name, "its line does not end with its recorded hash");
            }
            if line != file.event {
                problems.add(
                    name,
                    "its readable event does not say the same as its exact line",
                );
            }
        }
        Err(e) => problems.add(name, format!("its line is not JSON: {e}")),
    }
    Some(Checked {
        name: name.to_owned(),
        file,
    })
}

/// The hash a stored line ends with: `,"hash":"` + 64 hex digits + `"}`.
fn trailing_hash(line: &str) -> Option<&str> {
    let rest = line.strip_suffix("\"}")?;
    let start = rest.len().checked_sub(64)?;
    let hash = rest.get(start..)?;
    rest.get(..start)?.ends_with(",\"hash\":\"").then_some(hash)
}

/// Reads `manifest.json`: its bytes and, when it parses, the manifest.
fn read_manifest(
    dir: &Path,
    problems: &mut Problems,
) -> Result<(Vec<u8>, Option<Manifest>), Error> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::ExportFolder {
                path: dir.to_path_buf(),
                reason: format!(
                    "it holds no {MANIFEST}; is it a folder written by `opossum export` (which writes the manifest last)?"
                ),
            });
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let value: serde_json::Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(e) => {
            problems.add(MANIFEST, format!("it is not JSON: {e}"));
            return Ok((bytes, None));
        }
    };
    let format = value.get("format").and_then(serde_json::Value::as_str);
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if format != Some(FORMAT) || version != Some(u64::from(VERSION)) {
        problems.add(
            MANIFEST,
            format!(
                "it is not a manifest this tool reads: format {} version {}, expected {FORMAT} version {VERSION}",
                format.unwrap_or("(none)"),
                version.map_or_else(|| "(none)".to_owned(), |v| v.to_string()),
            ),
        );
    }
    match serde_json::from_value::<Manifest>(value) {
        Ok(manifest) => Ok((bytes, Some(manifest))),
        Err(e) => {
            problems.add(MANIFEST, format!("it is not a valid manifest: {e}"));
            Ok((bytes, None))
        }
    }
}

/// What the signature check found.
#[derive(Default)]
struct SignatureCheck {
    signed: bool,
    valid: Option<bool>,
    signer: Option<String>,
    trusted_matched: Option<bool>,
    note: Option<String>,
}

/// Checks `manifest.sig` over `manifest`'s bytes, and the signer against `trusted`.
fn check_signature(
    dir: &Path,
    manifest: &[u8],
    trusted: Option<(&Path, VerifyingKey)>,
    problems: &mut Problems,
) -> Result<SignatureCheck, Error> {
    let path = dir.join(SIGNATURE);
    let mut check = SignatureCheck::default();
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if trusted.is_some() {
                check.trusted_matched = Some(false);
                problems.add(
                    SIGNATURE,
                    "it is missing: the export is not signed, but --public-key requires a signature",
                );
            }
            return Ok(check);
        }
        Err(e) => return Err(Error::io("read", path, e)),
    };
    check.signed = true;
    let sig: SignatureFile = match serde_json::from_slice(&bytes) {
        Ok(sig) => sig,
        Err(e) => {
            check.valid = Some(false);
            check.trusted_matched = trusted.map(|_| false);
            problems.add(SIGNATURE, format!("it is not a signature file: {e}"));
            return Ok(check);
        }
    };
    check.signer = Some(sig.public_key.clone());
    if sig.algorithm != ALGORITHM {
        problems.add(
            SIGNATURE,
            format!("its algorithm is {:?}, not {ALGORITHM}", sig.algorithm),
        );
    }
    let signer = from_hex::<32>(&sig.public_key).and_then(|b| VerifyingKey::from_bytes(&b).ok());
    let signature = from_hex::<64>(&sig.signature).map(|b| Signature::from_bytes(&b));
    match (signer, signature) {
        (None, _) => {
            check.valid = Some(false);
            problems.add(
                SIGNATURE,
                "its public_key is not an Ed25519 public key in hex",
            );
        }
        (_, None) => {
            check.valid = Some(false);
            problems.add(SIGNATURE, "its signature is not 128 hexadecimal digits");
        }
        (Some(signer), Some(signature)) => {
            let valid = signer.verify_strict(manifest, &signature).is_ok();
            check.valid = Some(valid);
            if !valid {
                problems.add(
                    SIGNATURE,
                    format!("the signature does not match the bytes of {MANIFEST}: it was changed after signing, or the signature was"),
                );
            }
        }
    }
    match trusted {
        Some((trusted_path, trusted)) => {
            let matched = signer.is_some_and(|s| s == trusted);
            check.trusted_matched = Some(matched);
            if !matched {
                // The signer's own secret key, given by mistake for its public key.
                if signer.is_some_and(|s| {
                    SigningKey::from_bytes(trusted.as_bytes()).verifying_key() == s
                }) {
                    return Err(Error::Key {
                        path: trusted_path.to_path_buf(),
                        reason: "it is the signer's SECRET key, not its public key: give the .pub file beside it, and keep the secret key private".to_owned(),
                    });
                }
                problems.add(
                    SIGNATURE,
                    format!(
                        "it is signed by the key {}, not by the trusted key {} given with --public-key",
                        sig.public_key,
                        to_hex(trusted.as_bytes())
                    ),
                );
            }
        }
        None => {
            check.note = Some(
                "signed, but the signer's key was not checked against a trusted one (give --public-key)"
                    .to_owned(),
            );
        }
    }
    Ok(check)
}

/// `opossum verify-export OUT [--public-key PUB]`.
pub(crate) fn verify_export(args: &VerifyExportArgs, out: &mut Output) -> Result<Outcome, Error> {
    let dir = &args.dir;
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Error::ExportFolder {
                path: dir.clone(),
                reason: "it is a file, not an export's folder".to_owned(),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::ExportFolder {
                path: dir.clone(),
                reason: "it does not exist".to_owned(),
            });
        }
        Err(e) => return Err(Error::io("read", dir, e)),
    }
    let trusted = args
        .public_key
        .as_deref()
        .map(|p| read_trusted_key(p, dir).map(|k| (p, k)))
        .transpose()?;

    let mut problems = Problems::default();
    let (manifest_bytes, manifest) = read_manifest(dir, &mut problems)?;

    let mut present = BTreeSet::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("read", dir, e))? {
        let entry = entry.map_err(|e| Error::io("read", dir, e))?;
        present.insert(entry.file_name().to_string_lossy().into_owned());
    }

    // The event files to read: as listed, or (without a readable manifest) as found.
    let mut to_read: Vec<(String, u64)> = Vec::new();
    let mut listed = HashSet::new();
    match &manifest {
        Some(manifest) => {
            let mut positions = HashSet::new();
            for entry in &manifest.files {
                if entry.name != file_name(entry.position) {
                    problems.add(
                        MANIFEST,
                        format!(
                            "it lists {:?} for position {}; that file would be {}",
                            entry.name,
                            entry.position,
                            file_name(entry.position)
                        ),
                    );
                    continue;
                }
                if !positions.insert(entry.position) {
                    problems.add(
                        MANIFEST,
                        format!("it lists position {} more than once", entry.position),
                    );
                    continue;
                }
                listed.insert(entry.name.clone());
                if present.contains(&entry.name) {
                    to_read.push((entry.name.clone(), entry.position));
                } else {
                    problems.add(&entry.name, "it is listed in the manifest but missing");
                }
            }
        }
        None => {
            for name in &present {
                if let Some(position) = position_of_name(name) {
                    to_read.push((name.clone(), position));
                    listed.insert(name.clone());
                }
            }
        }
    }
    for name in &present {
        let is_json = Path::new(name)
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json && name != MANIFEST && !listed.contains(name) {
            problems.add(name, "it is not listed in the manifest");
        }
    }

    // Every listed file: its bytes against the manifest, then its contents.
    let sha_of: BTreeMap<&str, &str> = manifest
        .as_ref()
        .map(|m| {
            m.files
                .iter()
                .map(|f| (f.name.as_str(), f.sha256.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let bar = crate::commands::progress(to_read.len() as u64, "checking");
    let mut checked: BTreeMap<u64, Checked> = BTreeMap::new();
    let mut files_checked = 0u64;
    for (name, position) in &to_read {
        let path = dir.join(name);
        let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
        files_checked += 1;
        if let Some(expected) = sha_of.get(name.as_str()) {
            let actual = sha256_hex(&bytes);
            if !actual.eq_ignore_ascii_case(expected) {
                problems.add(
                    name,
                    format!("its SHA-256 is {actual}, but the manifest records {expected}"),
                );
            }
        }
        if let Some(file) = check_event_file(name, *position, &bytes, &mut problems) {
            checked.insert(*position, file);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();

    // The chain links between consecutive positions.
    let mut before: Option<(&u64, &Checked)> = None;
    for (position, file) in &checked {
        if let Some((p, prev)) = before {
            if p.checked_add(1) == Some(*position) && file.file.previous_hash != prev.file.hash {
                problems.add(
                    &file.name,
                    format!(
                        "the chain link is broken: its previous_hash {} is not the hash {} of {}",
                        file.file.previous_hash, prev.file.hash, prev.name
                    ),
                );
            }
        }
        before = Some((position, file));
    }

    // The manifest's summary against the files.
    if let Some(m) = &manifest {
        let listed_positions: BTreeSet<u64> = m.files.iter().map(|f| f.position).collect();
        if m.count != m.files.len() as u64 {
            problems.add(
                MANIFEST,
                format!(
                    "its count is {}, but it lists {} files",
                    m.count,
                    m.files.len()
                ),
            );
        }
        let first = listed_positions.first().copied();
        let last = listed_positions.last().copied();
        if m.range.first != first || m.range.last != last {
            let show = |p: Option<u64>| p.map_or_else(|| "none".to_owned(), |p| p.to_string());
            problems.add(
                MANIFEST,
                format!(
                    "its range is {} to {}, but the files it lists are {} to {}",
                    show(m.range.first),
                    show(m.range.last),
                    show(first),
                    show(last)
                ),
            );
        }
        let first_file = first.and_then(|p| checked.get(&p));
        if let Some(file) = first_file {
            if m.from_hash.as_deref() != Some(file.file.previous_hash.as_str()) {
                problems.add(
                    MANIFEST,
                    format!(
                        "its from_hash {} is not the previous_hash {} of {}",
                        m.from_hash.as_deref().unwrap_or("(none)"),
                        file.file.previous_hash,
                        file.name
                    ),
                );
            }
        }
        let last_file = last.and_then(|p| checked.get(&p));
        if let Some(file) = last_file {
            if m.to_hash.as_deref() != Some(file.file.hash.as_str()) {
                problems.add(
                    MANIFEST,
                    format!(
                        "its to_hash {} is not the hash {} of {}",
                        m.to_hash.as_deref().unwrap_or("(none)"),
                        file.file.hash,
                        file.name
                    ),
                );
            }
        }
        if first.is_none() && (m.from_hash.is_some() || m.to_hash.is_some()) {
            problems.add(MANIFEST, "it lists no files but records chain hashes");
        }
        if m.contiguous {
            if let (Some(first), Some(last)) = (first, last) {
                let expected = last - first + 1;
                if listed_positions.len() as u64 != expected {
                    problems.add(
                        MANIFEST,
                        format!(
                            "it says every position from {first} to {last} is exported, but {} of them are missing",
                            expected - listed_positions.len() as u64
                        ),
                    );
                }
            }
        }
    }

    let signature = check_signature(dir, &manifest_bytes, trusted, &mut problems)?;

    let report = ExportCheck {
        export: dir.display().to_string(),
        intact: problems.0.is_empty(),
        files_checked,
        count: manifest.as_ref().map(|m| m.count),
        first: manifest.as_ref().and_then(|m| m.range.first),
        last: manifest.as_ref().and_then(|m| m.range.last),
        from_hash: manifest.as_ref().and_then(|m| m.from_hash.clone()),
        to_hash: manifest.as_ref().and_then(|m| m.to_hash.clone()),
        manifest_sha256: sha256_hex(&manifest_bytes),
        signed: signature.signed,
        signature_valid: signature.valid,
        signer_public_key: signature.signer,
        trusted_key_matched: signature.trusted_matched,
        note: signature.note,
        problems: problems.0,
    };
    out.emit(&report, |w| {
        if report.intact {
            write!(
                w,
                "intact: {}: {} event files",
                report.export, report.files_checked
            )?;
            if let (Some(first), Some(last)) = (report.first, report.last) {
                write!(w, ", positions {first} to {last}")?;
            }
            writeln!(w)?;
            if let (Some(from), Some(to)) = (&report.from_hash, &report.to_hash) {
                writeln!(w, "chain from {from}")?;
                writeln!(w, "        to {to}")?;
            }
        } else {
            writeln!(
                w,
                "TAMPERED: {} problem{} in {}",
                report.problems.len(),
                if report.problems.len() == 1 { "" } else { "s" },
                report.export
            )?;
            for p in &report.problems {
                writeln!(w, "  {}: {}", p.file, p.problem)?;
            }
        }
        writeln!(w, "manifest sha256 {}", report.manifest_sha256)?;
        match (&report.signer_public_key, report.signature_valid) {
            (Some(key), Some(true)) => {
                writeln!(w, "signature valid, by the Ed25519 key {key}")?;
            }
            (_, Some(_)) => writeln!(w, "signature NOT valid")?,
            _ => writeln!(w, "not signed")?,
        }
        if report.trusted_key_matched == Some(true) {
            writeln!(w, "the signer is the trusted key given with --public-key")?;
        }
        if let Some(note) = &report.note {
            writeln!(w, "note: {note}")?;
        }
        Ok(())
    })?;
    Ok(if report.intact {
        Outcome::Done
    } else {
        Outcome::Failed
    })
}

// ---------------------------------------------------------------------------------------------
// keygen

/// What `keygen` reports.
#[derive(Debug, Serialize)]
struct KeyPair {
    secret_key_file: String,
    public_key_file: String,
    public_key: String,
}

/// Creates the new file `path` for a secret key: readable by its owner only.
#[cfg(unix)]
fn create_secret(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Creates the new file `path` for a secret key (on Windows it inherits the folder's access
/// rules, which for a user's own folders let only that user and administrators read it).
#[cfg(not(unix))]
fn create_secret(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// `opossum keygen KEY`.
pub(crate) fn keygen(args: &KeygenArgs, out: &mut Output) -> Result<Outcome, Error> {
    let secret_path = &args.key;
    let public_path = public_key_path(secret_path);
    for path in [secret_path, &public_path] {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::Key {
                path: path.clone(),
                reason: "it exists already; keygen never overwrites a key (move it away, or choose another name)".to_owned(),
            });
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Key {
        path: secret_path.clone(),
        reason: format!("the operating system gave no random bytes for it: {e}"),
    })?;
    let key = SigningKey::from_bytes(&seed);
    let secret_text = format!("{}\n", to_hex(&seed));
    seed.fill(0);
    let public_key = to_hex(key.verifying_key().as_bytes());

    let exists = |path: &Path, e: io::Error| {
        if e.kind() == io::ErrorKind::AlreadyExists {
            Error::Key {
                path: path.to_path_buf(),
                reason: "it exists already; keygen never overwrites a key".to_owned(),
            }
        } else {
            Error::io("create", path, e)
        }
    };
    let mut file = create_secret(secret_path).map_err(|e| exists(secret_path, e))?;
    file.write_all(secret_text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", secret_path, e))?;
    drop(file);
    let written = File::create_new(&public_path)
        .map_err(|e| exists(&public_path, e))
        .and_then(|mut file| {
            file.write_all(format!("{public_key}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io("write", &public_path, e))
        });
    if let Err(e) = written {
        // No half a pair: a secret key without its public key is of no use to anyone.
        let _ = std::fs::remove_file(secret_path);
        return Err(e);
    }
    if let Some(parent) = std::path::absolute(secret_path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        let _ = sync_dir(&parent);
    }

    let report = KeyPair {
        secret_key_file: secret_path.display().to_string(),
        public_key_file: public_path.display().to_string(),
        public_key,
    };
    out.emit(&report, |w| {
        writeln!(
            w,
            "secret key: {} (sign exports with --sign; keep it private)",
            report.secret_key_file
        )?;
        writeln!(
            w,
            "public key: {} (give it to whoever checks exports, for --public-key)",
            report.public_key_file
        )?;
        writeln!(w, "            {}", report.public_key)
    })?;
    Ok(Outcome::Done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0x7f, 0x80, 0xab, 0xff];
        assert_eq!(to_hex(&bytes), "00017f80abff");
        assert_eq!(from_hex::<6>("00017F80abff"), Some(bytes));
        assert_eq!(from_hex::<6>("00017f80abf"), None);
        assert_eq!(from_hex::<6>("00017f80abfg"), None);
        assert_eq!(from_hex::<1>("+f"), None);
    }

    #[test]
    fn names_sort_like_positions() {
        assert_eq!(file_name(12), "00000000000000000012.json");
        assert_eq!(position_of_name("00000000000000000012.json"), Some(12));
        assert_eq!(position_of_name("12.json"), None);
        assert_eq!(position_of_name("manifest.json"), None);
        assert!(file_name(9) < file_name(10));
    }

    #[test]
    fn the_trailing_hash_is_the_last_field() {
        let hash = "a".repeat(64);
        let line = format!(r#"{{"position":1,"hash":"{hash}"}}"#);
        assert_eq!(trailing_hash(&line), Some(hash.as_str()));
        assert_eq!(trailing_hash(r#"{"position":1}"#), None);
    }

    #[test]
    fn missing_folders_resolve_with_their_parents() {
        let folder = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(folder.path()).unwrap();
        let resolved = resolve(&folder.path().join("a/../b/c")).unwrap();
        assert_eq!(resolved, base.join("b").join("c"));
    }
}
