//! The tag index of a generation: one empty *marker* file per instance and tag,
//! `tags/<encoded tag key>/<encoded folded value>/<encoded instance key>`.
//!
//! Saving an instance creates the markers of its new tags and removes those of the tags it
//! lost: only what changed is touched, and nothing is held in memory. A query lists one folder
//! per tag and intersects the listings.
//!
//! Tag keys match exactly; values match without regard to case (they are folded to lower
//! case, as the original matched them). The index may over-approximate — markers are created
//! before the instance file that needs them and removed after the one that no longer does — so
//! a crash never leaves an instance missing from the index; every candidate is checked against
//! its instance file's own tags before it is returned.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use opossum_core::Tag;

use crate::Error;
use crate::files;
use crate::naming::encode_key;

/// A tag as the index compares it: the key, and the value folded to lower case.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct IndexTag {
    key: String,
    folded: String,
}

impl IndexTag {
    pub(crate) fn of(tag: &Tag) -> IndexTag {
        IndexTag {
            key: tag.key().to_owned(),
            folded: fold(tag.value()),
        }
    }

    /// The folder holding the markers of this tag.
    fn dir(&self, tags_dir: &Path) -> PathBuf {
        tags_dir
            .join(encode_key(&self.key))
            .join(encode_key(&self.folded))
    }
}

/// The value as the index compares it.
pub(crate) fn fold(value: &str) -> String {
    value.to_lowercase()
}

/// The distinct index tags of `tags`, sorted.
pub(crate) fn index_tags(tags: &[Tag]) -> Vec<IndexTag> {
    let set: BTreeSet<IndexTag> = tags.iter().map(IndexTag::of).collect();
    set.into_iter().collect()
}

/// True when `tags` carries every tag of `wanted` (values compared folded).
pub(crate) fn carries_all(tags: &[Tag], wanted: &[IndexTag]) -> bool {
    let have = index_tags(tags);
    wanted.iter().all(|w| have.binary_search(w).is_ok())
}

/// Creates the markers of `added` for the instance `stem`. Returns the marker files and the
/// folders whose entries changed, for the durability barrier.
pub(crate) fn add_markers(
    tags_dir: &Path,
    stem: &str,
    added: &[IndexTag],
    files_out: &mut Vec<PathBuf>,
    dirs_out: &mut BTreeSet<PathBuf>,
) -> Result<(), Error> {
    for tag in added {
        let dir = tag.dir(tags_dir);
        if !dir.is_dir() {
            files::create_dir_all(&dir)?;
            if let Some(parent) = dir.parent() {
                dirs_out.insert(parent.to_path_buf());
            }
            dirs_out.insert(tags_dir.to_path_buf());
        }
        let marker = dir.join(stem);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&marker)
            .map_err(|e| Error::io("create", &marker, e))?;
        files_out.push(marker);
        dirs_out.insert(dir);
    }
    Ok(())
}

/// Removes the markers of `removed` for the instance `stem`, and their folders once empty.
pub(crate) fn remove_markers(
    tags_dir: &Path,
    stem: &str,
    removed: &[IndexTag],
) -> Result<(), Error> {
    for tag in removed {
        let dir = tag.dir(tags_dir);
        files::remove_file(&dir.join(stem))?;
        // Fails (harmlessly) while other instances still carry the tag.
        if fs::remove_dir(&dir).is_ok() {
            if let Some(parent) = dir.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
    }
    Ok(())
}

/// The stems of the instances whose markers say they carry every tag of `wanted`, sorted.
pub(crate) fn candidates(tags_dir: &Path, wanted: &[IndexTag]) -> Result<Vec<String>, Error> {
    let mut result: Option<BTreeSet<String>> = None;
    for tag in wanted {
        let dir = tag.dir(tags_dir);
        let names: BTreeSet<String> = files::list_names(&dir)?.into_iter().collect();
        let narrowed = match result {
            None => names,
            Some(so_far) => so_far.intersection(&names).cloned().collect(),
        };
        if narrowed.is_empty() {
            return Ok(Vec::new());
        }
        result = Some(narrowed);
    }
    Ok(result.map(|s| s.into_iter().collect()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Tag {
        Tag::new(k, v).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn values_fold_keys_do_not() {
        let t = index_tags(&[tag("IsFull", "False"), tag("IsFull", "false")]);
        assert_eq!(t.len(), 1);
        assert!(carries_all(&[tag("IsFull", "FALSE")], &t));
        assert!(!carries_all(&[tag("isfull", "false")], &t));
    }

    #[test]
    fn candidates_intersect_and_markers_come_and_go() -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("create", "tempdir", e))?;
        let (mut f, mut d) = (Vec::new(), BTreeSet::new());
        let a = index_tags(&[tag("k", "A"), tag("x", "1")]);
        let b = index_tags(&[tag("k", "a")]);
        add_markers(dir.path(), "one", &a, &mut f, &mut d)?;
        add_markers(dir.path(), "two", &b, &mut f, &mut d)?;
        assert_eq!(
            candidates(dir.path(), &index_tags(&[tag("k", "a")]))?,
            ["one", "two"]
        );
        assert_eq!(candidates(dir.path(), &a)?, ["one"]);
        assert!(candidates(dir.path(), &index_tags(&[tag("k", "b")]))?.is_empty());
        remove_markers(dir.path(), "one", &a)?;
        assert_eq!(
            candidates(dir.path(), &index_tags(&[tag("k", "A")]))?,
            ["two"]
        );
        assert!(
            !dir.path().join("x").exists(),
            "empty tag folders are removed"
        );
        Ok(())
    }
}
