//! Tags as the projection index compares them.
//!
//! Tag keys match exactly; values match without regard to case (they are folded to lower
//! case, as the original matched them). Any UTF-8 is data: nothing is escaped, because the
//! index lives in memory and in the records' JSON, not in file names.

use std::collections::BTreeSet;

use opossum_core::Tag;

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
        assert_eq!(index_tags(&[tag("IsFull", "FALSE")]), t);
        assert_ne!(index_tags(&[tag("isfull", "false")]), t);
        assert_eq!(
            index_tags(&[tag("Name", "ÄRZTIN")]),
            index_tags(&[tag("Name", "ärztin")])
        );
    }
}
