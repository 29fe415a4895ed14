//! One instance file: `state/<encoded key>.json`.
//!
//! ```json
//! {
//!   "key": "c-1",
//!   "position": 17,
//!   "tags": [ { "key": "IsFull", "value": "False" } ],
//!   "state": { "name": "Rust for auditors", "enrolled": 12 }
//! }
//! ```
//!
//! `position` is the position of the last event applied to this instance. It is what makes
//! replaying a batch after a crash exact: an event at or below it is already in `state` and is
//! skipped, an event above it is applied. A deleted instance is a *tombstone* —
//! `"deleted": true` and no state — kept until the checkpoint covers it, for the same reason;
//! readers treat it as absent.

use std::path::{Path, PathBuf};

use opossum_core::Tag;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::Error;
use crate::files;
use crate::naming::encode_key;

/// The shape written.
#[derive(Serialize)]
pub(crate) struct InstanceOut<'a, S> {
    pub(crate) key: &'a str,
    pub(crate) position: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) deleted: bool,
    #[serde(skip_serializing_if = "<[Tag]>::is_empty")]
    pub(crate) tags: &'a [Tag],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<&'a S>,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if takes a reference"
)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// The shape read; the state is decoded in a second step, so that a state type whose JSON is
/// `null` is still told apart from a tombstone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceIn<'a> {
    key: String,
    position: u64,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(borrow, default, deserialize_with = "present")]
    state: Option<&'a RawValue>,
}

/// A state that is present, even as `null` (which `Option` alone would read as absent).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// An instance as read from its file.
#[derive(Debug)]
pub(crate) struct Stored<S> {
    pub(crate) key: String,
    pub(crate) position: u64,
    pub(crate) tags: Vec<Tag>,
    /// `None` for a tombstone.
    pub(crate) state: Option<S>,
}

/// The instance file of `key` in the folder `state_dir`.
pub(crate) fn path(state_dir: &Path, stem: &str) -> PathBuf {
    state_dir.join(format!("{stem}.json"))
}

/// Reads the instance `key` of the folder `state_dir`; `None` when it has no file.
pub(crate) fn read<S: DeserializeOwned>(
    state_dir: &Path,
    key: &str,
) -> Result<Option<Stored<S>>, Error> {
    let file = path(state_dir, &encode_key(key));
    let Some(stored) = read_file::<S>(&file)? else {
        return Ok(None);
    };
    if stored.key != key {
        return Err(Error::corrupt(
            &file,
            format!("it holds the instance {:?}, not {key:?}", stored.key),
        ));
    }
    Ok(Some(stored))
}

/// Reads one instance file; `None` when it does not exist.
pub(crate) fn read_file<S: DeserializeOwned>(file: &Path) -> Result<Option<Stored<S>>, Error> {
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", file, e)),
    };
    let raw: InstanceIn<'_> = serde_json::from_slice(&bytes)
        .map_err(|e| Error::corrupt(file, format!("not an instance file ({e})")))?;
    let state = match (raw.deleted, raw.state) {
        (true, _) => None,
        (false, Some(state)) => Some(serde_json::from_str(state.get()).map_err(|e| {
            Error::corrupt(
                file,
                format!("its state does not decode into the projection's state type ({e})"),
            )
        })?),
        (false, None) => {
            return Err(Error::corrupt(
                file,
                "it has neither a state nor \"deleted\"",
            ));
        }
    };
    Ok(Some(Stored {
        key: raw.key,
        position: raw.position,
        tags: raw.tags,
        state,
    }))
}

/// True when the file at `path` is empty or ends in the middle of its JSON: a write that a
/// crash cut short, as opposed to a file damaged or edited into something else.
pub(crate) fn is_cut_short(path: &Path) -> bool {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
            .err()
            .is_some_and(|e| e.is_eof()),
        Err(_) => false,
    }
}

/// Encodes an instance for its file.
pub(crate) fn encode<S: Serialize>(
    key: &str,
    position: u64,
    tags: &[Tag],
    state: Option<&S>,
    file: &Path,
) -> Result<Vec<u8>, Error> {
    files::to_pretty_json(
        &InstanceOut {
            key,
            position,
            deleted: state.is_none(),
            tags: if state.is_some() { tags } else { &[] },
            state,
        },
        file,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unit_state_is_not_a_tombstone() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let file = path(dir.path(), "k");
        files::write_file(&file, &encode("k", 3, &[], Some(&()), &file)?)?;
        let stored =
            read::<()>(dir.path(), "k")?.ok_or_else(|| Error::corrupt(&file, "missing"))?;
        assert_eq!((stored.position, stored.state), (3, Some(())));
        files::write_file(&file, &encode::<()>("k", 4, &[], None, &file)?)?;
        let stored =
            read::<()>(dir.path(), "k")?.ok_or_else(|| Error::corrupt(&file, "missing"))?;
        assert_eq!((stored.position, stored.state), (4, None));
        Ok(())
    }

    #[test]
    fn a_file_of_another_key_is_reported() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let file = path(dir.path(), "k");
        files::write_file(&file, &encode("other", 3, &[], Some(&1), &file)?)?;
        assert!(matches!(
            read::<u32>(dir.path(), "k"),
            Err(Error::Corrupt { .. })
        ));
        Ok(())
    }
}
