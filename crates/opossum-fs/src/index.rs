//! The in-memory index: where each event is, and which events have each type and tag.
//!
//! Positions are dense (1..=head), so per-event facts live in plain vectors indexed by
//! `position - 1`. Types are interned: few distinct names, exact lookup. Tags are keyed by a
//! 64-bit hash of (key, value): the index may then return a false candidate on a hash collision,
//! but never miss one, and every candidate is checked with [`Query::matches`] against the stored
//! event before it is returned or counted. The index narrows; the query decides.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use opossum_core::{Direction, Query, QueryItem};

use crate::record::ChainHash;
use crate::segment::Segment;

/// A hasher for keys that are already uniformly distributed 64-bit hashes.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used for these keys; fold anything else so the hasher stays total.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub(crate) type TagMap = HashMap<u64, Postings, BuildHasherDefault<PassThrough>>;

/// The stable 64-bit key of a tag. The key's length goes first so that no two (key, value)
/// pairs share an input: `("a_b","c")` and `("a","b_c")` hash different bytes.
pub(crate) fn tag_key(key: &str, value: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key.as_bytes());
    h.update(value.as_bytes());
    h.digest()
}

/// Sorted positions of the events with one tag. Most tags belong to one event (an id), so the
/// single case is kept inline and the list is boxed: 16 bytes per tag in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Postings {
    One([u64; 1]),
    // Boxed on purpose: the table holds millions of these, and the box halves the entry size.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<u64>>),
}

impl Postings {
    pub(crate) fn as_slice(&self) -> &[u64] {
        match self {
            Postings::One(p) => p,
            Postings::Many(v) => v,
        }
    }

    fn push(&mut self, position: u64) {
        match self {
            Postings::One([p]) => {
                if *p != position {
                    *self = Postings::Many(Box::new(vec![*p, position]));
                }
            }
            Postings::Many(v) => {
                if v.last() != Some(&position) {
                    v.push(position);
                }
            }
        }
    }
}

/// One event as the index learns it: from a line being scanned or written.
pub(crate) struct IndexEntry<'a> {
    pub(crate) position: u64,
    pub(crate) offset: u64,
    pub(crate) event_type: &'a str,
    pub(crate) tag_keys: &'a [u64],
    pub(crate) hash: ChainHash,
}

/// The index of one store: everything needed to find events without reading the log.
#[derive(Debug, Default)]
pub(crate) struct Index {
    /// Segment files in position order.
    pub(crate) segments: Vec<Segment>,
    /// Byte offset of each event's line in its segment, by `position - 1`.
    pub(crate) offsets: Vec<u64>,
    /// Type id of each event, by `position - 1`.
    pub(crate) type_of: Vec<u32>,
    /// Type names by id.
    pub(crate) type_names: Vec<Arc<str>>,
    type_ids: HashMap<Arc<str>, u32>,
    /// Positions of each type, by id.
    type_postings: Vec<Vec<u64>>,
    pub(crate) tags: TagMap,
    /// The hash of the last event (the chain head).
    pub(crate) head_hash: ChainHash,
    /// Set when the last indexed line may lack its newline (it was read without one, or the
    /// index came from a snapshot): the next writer checks before appending after it.
    pub(crate) tail_unchecked: bool,
    /// The highest position known to be on stable storage: what new lines record as
    /// `synced_to`. Not saved in snapshots; recovery sets it under the lock.
    pub(crate) durable: u64,
}

impl Index {
    /// The highest position indexed (0 when empty).
    pub(crate) fn head(&self) -> u64 {
        self.offsets.len() as u64
    }

    /// Adds the next event. Entries must arrive in position order, starting at `head + 1`.
    pub(crate) fn push(&mut self, entry: &IndexEntry<'_>) {
        debug_assert_eq!(entry.position, self.head() + 1);
        let type_id = self.intern(entry.event_type);
        self.offsets.push(entry.offset);
        self.type_of.push(type_id);
        self.type_postings[type_id as usize].push(entry.position);
        for key in entry.tag_keys {
            self.tags
                .entry(*key)
                .and_modify(|p| p.push(entry.position))
                .or_insert(Postings::One([entry.position]));
        }
        self.head_hash = entry.hash;
    }

    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.type_ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.type_names.len()).unwrap_or(u32::MAX);
        let name: Arc<str> = Arc::from(name);
        self.type_names.push(Arc::clone(&name));
        self.type_ids.insert(name, id);
        self.type_postings.push(Vec::new());
        id
    }

    /// Rebuilds the per-type structures from `type_names` and `type_of` (after loading a
    /// snapshot, which stores only those).
    pub(crate) fn rebuild_type_postings(&mut self) {
        self.type_ids = self
            .type_names
            .iter()
            .enumerate()
            .map(|(id, name)| (Arc::clone(name), id as u32))
            .collect();
        self.type_postings = vec![Vec::new(); self.type_names.len()];
        for (i, t) in self.type_of.iter().enumerate() {
            if let Some(p) = self.type_postings.get_mut(*t as usize) {
                p.push(i as u64 + 1);
            }
        }
    }

    /// Each event type and how many events it has, in the order the types first appeared.
    pub(crate) fn type_counts(&self) -> Vec<(String, u64)> {
        self.type_names
            .iter()
            .zip(&self.type_postings)
            .map(|(name, postings)| (name.to_string(), postings.len() as u64))
            .collect()
    }

    /// The segment holding `position`, by index into `segments`.
    pub(crate) fn segment_of(&self, position: u64) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.first <= position);
        i.checked_sub(1)
    }

    /// Where the line of `position` lies: segment index, start offset and end offset (the end
    /// includes the newline).
    pub(crate) fn locate(&self, position: u64) -> Option<(usize, u64, u64)> {
        if position == 0 || position > self.head() {
            return None;
        }
        let seg = self.segment_of(position)?;
        let start = self.offsets[(position - 1) as usize];
        let next_in_same_segment = position < self.head()
            && self
                .segments
                .get(seg + 1)
                .is_none_or(|next| next.first > position + 1);
        let end = if next_in_same_segment {
            self.offsets[position as usize]
        } else {
            self.segments[seg].end
        };
        Some((seg, start, end))
    }

    /// Candidate positions for `query` strictly between `after` and `before`, in `direction`.
    /// Every match is among them; a tag-hash collision may add a non-match, which the caller
    /// filters with the query.
    pub(crate) fn candidates<'a>(
        &'a self,
        query: &'a Query,
        after: u64,
        before: u64,
        direction: Direction,
    ) -> Candidates<'a> {
        let bounds = Bounds {
            after,
            before: before.min(self.head() + 1),
        };
        let Some(items) = query.items() else {
            return Candidates::Range(RangeCursor::new(bounds, direction));
        };
        let cursors = items
            .iter()
            .map(|item| self.item_cursor(item, bounds, direction))
            .collect();
        Candidates::Union(UnionCursor { cursors, direction })
    }

    fn item_cursor<'a>(
        &'a self,
        item: &'a QueryItem,
        bounds: Bounds,
        direction: Direction,
    ) -> ItemCursor<'a> {
        if item.is_unconstrained() {
            return ItemCursor::Range(RangeCursor::new(bounds, direction));
        }
        let type_ids: Vec<u32> = item
            .types()
            .iter()
            .filter_map(|t| self.type_ids.get(t.as_str()).copied())
            .collect();
        if !item.types().is_empty() && type_ids.is_empty() {
            return ItemCursor::Empty;
        }
        if item.tags().is_empty() {
            let slices = type_ids
                .iter()
                .map(|id| {
                    SliceCursor::new(bounds.slice(&self.type_postings[*id as usize]), direction)
                })
                .collect();
            return ItemCursor::Types(UnionCursor {
                cursors: slices,
                direction,
            });
        }
        let mut lists: Vec<&[u64]> = Vec::with_capacity(item.tags().len());
        for tag in item.tags() {
            match self.tags.get(&tag_key(tag.key(), tag.value())) {
                Some(p) => lists.push(p.as_slice()),
                None => return ItemCursor::Empty,
            }
        }
        lists.sort_by_key(|l| l.len());
        let driver = SliceCursor::new(bounds.slice(lists[0]), direction);
        ItemCursor::Tags {
            driver,
            others: lists.split_off(1),
            type_ids: if item.types().is_empty() {
                None
            } else {
                Some(type_ids)
            },
            type_of: &self.type_of,
        }
    }

    /// Bytes the index holds on the heap, roughly: for the memory figure in benchmarks.
    pub(crate) fn heap_bytes(&self) -> usize {
        let tag_lists: usize = self
            .tags
            .values()
            .map(|p| match p {
                Postings::One(_) => 0,
                Postings::Many(v) => v.capacity() * 8 + std::mem::size_of::<Vec<u64>>(),
            })
            .sum();
        let tag_table = self.tags.capacity() * (8 + std::mem::size_of::<Postings>() + 1);
        let types: usize = self.type_postings.iter().map(|v| v.capacity() * 8).sum();
        self.offsets.capacity() * 8 + self.type_of.capacity() * 4 + tag_lists + tag_table + types
    }
}

/// The open interval of positions `(after, before)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    after: u64,
    before: u64,
}

impl Bounds {
    /// The part of a sorted slice inside the bounds.
    fn slice(self, list: &[u64]) -> &[u64] {
        let from = list.partition_point(|p| *p <= self.after);
        let to = list.partition_point(|p| *p < self.before);
        list.get(from..to).unwrap_or_default()
    }
}

/// The positions inside some bounds, in a direction.
pub(crate) struct RangeCursor {
    /// Next position to yield, as an offset into the open interval: the interval is walked
    /// with `remaining` steps left.
    next: u64,
    remaining: u64,
    direction: Direction,
}

impl RangeCursor {
    fn new(bounds: Bounds, direction: Direction) -> RangeCursor {
        let remaining = bounds.before.saturating_sub(bounds.after).saturating_sub(1);
        let next = match direction {
            Direction::Ascending => bounds.after + 1,
            Direction::Descending => bounds.before.saturating_sub(1),
        };
        RangeCursor {
            next,
            remaining,
            direction,
        }
    }

    fn peek(&self) -> Option<u64> {
        (self.remaining > 0).then_some(self.next)
    }

    fn advance(&mut self) {
        if self.remaining == 0 {
            return;
        }
        self.remaining -= 1;
        match self.direction {
            Direction::Ascending => self.next += 1,
            Direction::Descending => self.next -= 1,
        }
    }
}

/// A sorted slice walked in a direction.
pub(crate) struct SliceCursor<'a> {
    slice: &'a [u64],
    direction: Direction,
}

impl<'a> SliceCursor<'a> {
    fn new(slice: &'a [u64], direction: Direction) -> SliceCursor<'a> {
        SliceCursor { slice, direction }
    }

    fn peek(&self) -> Option<u64> {
        match self.direction {
            Direction::Ascending => self.slice.first().copied(),
            Direction::Descending => self.slice.last().copied(),
        }
    }

    fn advance(&mut self) {
        self.slice = match self.direction {
            Direction::Ascending => self.slice.get(1..).unwrap_or_default(),
            Direction::Descending => &self.slice[..self.slice.len().saturating_sub(1)],
        };
    }
}

/// The candidates of one query item.
pub(crate) enum ItemCursor<'a> {
    Empty,
    Range(RangeCursor),
    Types(UnionCursor<SliceCursor<'a>>),
    Tags {
        driver: SliceCursor<'a>,
        others: Vec<&'a [u64]>,
        type_ids: Option<Vec<u32>>,
        type_of: &'a [u32],
    },
}

/// A cursor over positions in one direction.
pub(crate) trait Cursor {
    fn peek(&mut self) -> Option<u64>;
    fn advance(&mut self);
}

impl Cursor for RangeCursor {
    fn peek(&mut self) -> Option<u64> {
        RangeCursor::peek(self)
    }
    fn advance(&mut self) {
        RangeCursor::advance(self);
    }
}

impl Cursor for SliceCursor<'_> {
    fn peek(&mut self) -> Option<u64> {
        SliceCursor::peek(self)
    }
    fn advance(&mut self) {
        SliceCursor::advance(self);
    }
}

impl Cursor for ItemCursor<'_> {
    fn peek(&mut self) -> Option<u64> {
        match self {
            ItemCursor::Empty => None,
            ItemCursor::Range(r) => r.peek(),
            ItemCursor::Types(u) => u.peek(),
            ItemCursor::Tags {
                driver,
                others,
                type_ids,
                type_of,
            } => {
                // Skip driver positions that lack another tag or have the wrong type.
                while let Some(p) = driver.peek() {
                    let type_ok = type_ids.as_ref().is_none_or(|ids| {
                        type_of
                            .get((p - 1) as usize)
                            .is_some_and(|t| ids.contains(t))
                    });
                    if type_ok && others.iter().all(|l| l.binary_search(&p).is_ok()) {
                        return Some(p);
                    }
                    driver.advance();
                }
                None
            }
        }
    }

    fn advance(&mut self) {
        match self {
            ItemCursor::Empty => {}
            ItemCursor::Range(r) => r.advance(),
            ItemCursor::Types(u) => u.advance(),
            ItemCursor::Tags { driver, .. } => driver.advance(),
        }
    }
}

/// The merged, de-duplicated output of several cursors that run in `direction`.
pub(crate) struct UnionCursor<C> {
    cursors: Vec<C>,
    direction: Direction,
}

impl<C: Cursor> Cursor for UnionCursor<C> {
    fn peek(&mut self) -> Option<u64> {
        let heads = self.cursors.iter_mut().filter_map(Cursor::peek);
        match self.direction {
            Direction::Ascending => heads.min(),
            Direction::Descending => heads.max(),
        }
    }

    fn advance(&mut self) {
        if let Some(best) = self.peek() {
            for c in &mut self.cursors {
                if c.peek() == Some(best) {
                    c.advance();
                }
            }
        }
    }
}

/// Candidates for a whole query.
pub(crate) enum Candidates<'a> {
    Range(RangeCursor),
    Union(UnionCursor<ItemCursor<'a>>),
}

impl Iterator for Candidates<'_> {
    type Item = u64;
    fn next(&mut self) -> Option<u64> {
        match self {
            Candidates::Range(r) => {
                let p = r.peek()?;
                r.advance();
                Some(p)
            }
            Candidates::Union(u) => {
                let p = u.peek()?;
                u.advance();
                Some(p)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opossum_core::Tag;

    /// An index of events 1..=n where event p has type "T{p % 3}" and tags "mod2={p % 2}" and
    /// "id={p}".
    fn sample(n: u64) -> Index {
        let mut index = Index::default();
        for p in 1..=n {
            let keys = [
                tag_key("mod2", &(p % 2).to_string()),
                tag_key("id", &p.to_string()),
            ];
            index.push(&IndexEntry {
                position: p,
                offset: p * 100,
                event_type: &format!("T{}", p % 3),
                tag_keys: &keys,
                hash: ChainHash::GENESIS,
            });
        }
        index
    }

    fn tags(pairs: &[(&str, &str)]) -> QueryItem {
        QueryItem::of_tags(pairs.iter().map(|(k, v)| Tag::new(*k, *v).unwrap()))
    }

    fn run(index: &Index, query: &Query, after: u64, before: u64, d: Direction) -> Vec<u64> {
        index.candidates(query, after, before, d).collect()
    }

    #[test]
    fn postings_stay_small() {
        assert_eq!(std::mem::size_of::<Postings>(), 16);
    }

    #[test]
    fn all_walks_the_bounds_both_ways() {
        let index = sample(5);
        let all = Query::all();
        assert_eq!(
            run(&index, &all, 0, u64::MAX, Direction::Ascending),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(run(&index, &all, 1, 5, Direction::Descending), [4, 3, 2]);
        assert!(run(&index, &all, 5, u64::MAX, Direction::Ascending).is_empty());
        assert!(run(&index, &all, 3, 4, Direction::Descending).is_empty());
    }

    #[test]
    fn types_are_merged_in_order() {
        let index = sample(9);
        let q = Query::from_event_types(["T0", "T1", "Unknown"]).unwrap();
        let expected: Vec<u64> = (1..=9).filter(|p| p % 3 != 2).collect();
        assert_eq!(run(&index, &q, 0, u64::MAX, Direction::Ascending), expected);
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(
            run(&index, &q, 0, u64::MAX, Direction::Descending),
            reversed
        );
        assert!(
            run(
                &index,
                &Query::from_event_types(["Nope"]).unwrap(),
                0,
                99,
                Direction::Ascending
            )
            .is_empty()
        );
    }

    #[test]
    fn tags_intersect_and_filter_by_type() {
        let index = sample(12);
        let q = Query::from_items([tags(&[("mod2", "0")])]).unwrap();
        assert_eq!(run(&index, &q, 4, 11, Direction::Ascending), [6, 8, 10]);
        let both = Query::from_items([tags(&[("mod2", "0"), ("id", "8")])]).unwrap();
        assert_eq!(run(&index, &both, 0, u64::MAX, Direction::Ascending), [8]);
        let typed = Query::from_items([tags(&[("mod2", "0")]).with_type("T0").unwrap()]).unwrap();
        assert_eq!(
            run(&index, &typed, 0, u64::MAX, Direction::Descending),
            [12, 6]
        );
        let missing = Query::from_items([tags(&[("mod2", "0"), ("id", "nope")])]).unwrap();
        assert!(run(&index, &missing, 0, u64::MAX, Direction::Ascending).is_empty());
    }

    #[test]
    fn items_union_without_duplicates() {
        let index = sample(6);
        let q = Query::from_items([
            tags(&[("id", "2")]),
            QueryItem::of_types(["T2"]).unwrap(),
            tags(&[("id", "5")]),
        ])
        .unwrap();
        // T2 is 2 and 5, the same events the tag items name.
        assert_eq!(run(&index, &q, 0, u64::MAX, Direction::Ascending), [2, 5]);
        assert_eq!(run(&index, &q, 0, u64::MAX, Direction::Descending), [5, 2]);
    }

    #[test]
    fn locate_uses_the_next_offset_or_the_segment_end() {
        let mut index = sample(3);
        let sim = crate::vfs::sim::SimFs::new(1);
        let file = crate::vfs::Vfs::open(
            &sim,
            std::path::Path::new("/x"),
            crate::vfs::OpenMode::ReadWrite,
        )
        .unwrap();
        index.segments.push(Segment {
            first: 1,
            end: 350,
            path: std::path::PathBuf::from("x"),
            file,
        });
        assert_eq!(index.locate(1), Some((0, 100, 200)));
        assert_eq!(index.locate(3), Some((0, 300, 350)));
        assert_eq!(index.locate(4), None);
        assert_eq!(index.locate(0), None);
    }

    #[test]
    fn tag_keys_separate_look_alikes() {
        assert_ne!(tag_key("a_b", "c"), tag_key("a", "b_c"));
        assert_ne!(tag_key("ab", ""), tag_key("a", "b"));
        assert_ne!(tag_key("Key", "v"), tag_key("key", "v"));
    }
}
