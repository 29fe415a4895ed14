//! The engine that applies events to one generation of one projection, behind a type-erased
//! [`Runner`] so that projections of different state types live side by side.
//!
//! A [`Session`] caches the instances it touches, applies events to them in position order,
//! and writes the changed ones when [`commit`] tells it to, before the checkpoint that covers
//! them. The daemon uses one session per batch; a rebuild keeps one for the whole run and
//! commits at every flush point.
//!
//! **The crash rule.** Every instance file records the position of the last event applied to
//! it, and every write (instance files, tag markers) is made durable before the checkpoint that
//! covers it. After a crash the events after the checkpoint are replayed, and an event at or
//! below its instance's recorded position is skipped: no event is applied twice, none is
//! skipped, whichever files the crash let through.

use std::any::{Any, TypeId};
use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use opossum_core::{EventType, Position, Query, QueryItem, SequencedEvent, Tag};

use opossum_core::Durability;

use crate::files;
use crate::generation::{self, Generation, Journal};
use crate::naming::{encode_key, projection_name_problem};
use crate::tags::{self, IndexTag};
use crate::{Error, Projection, instance};

/// An event ready to apply, with the related events its projection asked for.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    pub(crate) event: SequencedEvent,
    pub(crate) related: Vec<SequencedEvent>,
}

/// Where a batch stopped: the index of the event that failed, and why.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) index: usize,
    pub(crate) error: Error,
}

/// A registered projection, whatever its state type.
pub(crate) trait Runner: Send + Sync + 'static {
    /// The projection's name.
    fn name(&self) -> &str;
    /// The query for the events it consumes.
    fn query(&self) -> &Query;
    /// The state type, for stores asked for by name.
    fn state_type(&self) -> (TypeId, &'static str);
    /// The projection's own type, for typed stores.
    fn projection_type(&self) -> TypeId;
    /// The query for the related events of `event`, if the projection wants any.
    fn related_query(&self, event: &SequencedEvent) -> Result<Option<Query>, Error>;
    /// A session applying events to `generation`.
    fn session(
        self: Arc<Self>,
        generation: Arc<Generation>,
        durability: Durability,
        mode: WriteMode,
    ) -> Box<dyn Session>;
}

/// What a session's write left for the commit's barrier to make durable.
#[derive(Debug, Default)]
pub(crate) struct Written {
    /// Files whose bytes are not synced yet.
    pub(crate) files: Vec<PathBuf>,
    /// Folders whose entries changed.
    pub(crate) dirs: Vec<PathBuf>,
}

/// How a session writes instance files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteMode {
    /// Always a temporary file renamed into place: readers see whole files only. For the live
    /// generation.
    Replace,
    /// An instance that has no file yet is written in place (one file created, instead of a
    /// temporary file renamed over it); others are replaced. For a generation no reader sees
    /// until it is complete: a rebuild's. A file cut short by a crash is then treated as absent,
    /// which is exact because no checkpoint covers it yet.
    Direct,
}

/// Commits what `session` applied to `generation`: its instance files (durable before they are
/// renamed into place), then one barrier over what is left — new files, folders, the staged
/// checkpoint and journal — then the checkpoint installed. At most two barriers per commit,
/// however many files; one when every file is new (a rebuild, mostly).
pub(crate) fn commit(
    session: &mut dyn Session,
    generation: &Generation,
    checkpoint: u64,
    journal: Option<(&Path, &Journal)>,
    durability: Durability,
) -> Result<(), Error> {
    let Written { mut files, dirs } = session.write()?;
    let mut staged = vec![generation.stage_checkpoint(checkpoint)?];
    if let Some((dir, journal)) = journal {
        staged.push(generation::stage_journal(dir, journal)?);
    }
    files.extend(staged.iter().map(|s| s.tmp.clone()));
    files::barrier(durability, generation.dir(), &files, &dirs)?;
    for file in &staged {
        file.install()?;
    }
    generation.set_checkpoint(checkpoint);
    Ok(())
}

/// A session of one projection on one generation.
pub(crate) trait Session: Send {
    /// Applies `batch` in order. On a failure the events before it are applied, and the session
    /// must not be written (the failed instance's state is gone): start a new one.
    fn apply(&mut self, batch: &[Prepared]) -> Result<(), Failed>;
    /// Writes every changed instance and its tag markers: replacements made durable, then
    /// renamed into place. Returns what the barrier before the checkpoint must still cover
    /// (see [`commit`]).
    fn write(&mut self) -> Result<Written, Error>;
    /// How many instances are cached.
    fn cached(&self) -> usize;
    /// Drops every cached instance that is written.
    fn evict(&mut self);
}

/// A projection with what registering it checked and derived.
pub(crate) struct Registered<P: Projection> {
    projection: P,
    name: String,
    query: Query,
}

impl<P: Projection> Registered<P> {
    /// Checks the definition.
    pub(crate) fn new(projection: P) -> Result<Registered<P>, Error> {
        let name = projection.name().to_owned();
        let invalid = |problem: String| Error::InvalidDefinition {
            name: name.clone(),
            problem,
        };
        if let Some(problem) = projection_name_problem(&name) {
            return Err(invalid(problem));
        }
        let types = projection.event_types();
        if types.is_empty() {
            return Err(invalid(
                "it consumes no event types; list at least one in event_types()".to_owned(),
            ));
        }
        let types = types
            .into_iter()
            .map(EventType::new)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("an event type is invalid: {e}")))?;
        let query = Query::from_items([QueryItem::of_types(types)?])?;
        Ok(Registered {
            projection,
            name,
            query,
        })
    }

    fn guarded<T>(&self, position: Position, f: impl FnOnce() -> T) -> Result<T, Error> {
        catch_unwind(AssertUnwindSafe(f)).map_err(|payload| Error::Panicked {
            name: self.name.clone(),
            position,
            message: panic_message(payload.as_ref()),
        })
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

impl<P: Projection> Runner for Registered<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn query(&self) -> &Query {
        &self.query
    }

    fn state_type(&self) -> (TypeId, &'static str) {
        (TypeId::of::<P::State>(), std::any::type_name::<P::State>())
    }

    fn projection_type(&self) -> TypeId {
        TypeId::of::<P>()
    }

    fn related_query(&self, event: &SequencedEvent) -> Result<Option<Query>, Error> {
        self.guarded(event.position, || self.projection.related_events(event))
    }

    fn session(
        self: Arc<Self>,
        generation: Arc<Generation>,
        durability: Durability,
        mode: WriteMode,
    ) -> Box<dyn Session> {
        Box::new(SessionOf {
            runner: self,
            state_dir: generation.state_dir(),
            tags_dir: generation.tags_dir(),
            tmp_dir: generation.tmp_dir(),
            generation,
            durability,
            mode,
            cache: HashMap::new(),
        })
    }
}

/// A cached instance.
struct Slot<S> {
    stem: String,
    /// The position of the last event applied (0: none).
    position: u64,
    /// `None`: the instance does not exist (or was deleted).
    state: Option<S>,
    /// The tags of `state`.
    tags: Vec<Tag>,
    /// The index tags its file on disk is indexed under.
    disk_tags: Vec<IndexTag>,
    /// True when the instance has a file in this generation (a state or a tombstone).
    on_disk: bool,
    dirty: bool,
}

struct SessionOf<P: Projection> {
    runner: Arc<Registered<P>>,
    generation: Arc<Generation>,
    state_dir: PathBuf,
    tags_dir: PathBuf,
    tmp_dir: PathBuf,
    durability: Durability,
    mode: WriteMode,
    cache: HashMap<String, Slot<P::State>>,
}

impl<P: Projection> SessionOf<P> {
    fn apply_one(&mut self, prepared: &Prepared) -> Result<(), Error> {
        let runner = Arc::clone(&self.runner);
        let event = &prepared.event;
        let position = event.position;
        let Some(key) = runner.guarded(position, || runner.projection.key(event))? else {
            return Ok(());
        };
        if !self.cache.contains_key(&key) {
            let slot = self.load(&key)?;
            self.cache.insert(key.clone(), slot);
        }
        let Some(slot) = self.cache.get_mut(&key) else {
            return Ok(());
        };
        if slot.position >= position.get() {
            // Applied before a crash that came before the checkpoint: the file already has it.
            return Ok(());
        }
        let state = slot.state.take();
        let applied = runner.guarded(position, || {
            runner.projection.apply(state, event, &prepared.related)
        })?;
        let state = applied.map_err(|source| Error::Apply {
            name: runner.name.clone(),
            position,
            source,
        })?;
        slot.tags = match &state {
            Some(s) => runner.guarded(position, || runner.projection.tags(s))?,
            None => Vec::new(),
        };
        slot.state = state;
        slot.position = position.get();
        slot.dirty = true;
        Ok(())
    }

    fn load(&self, key: &str) -> Result<Slot<P::State>, Error> {
        let stem = encode_key(key);
        let stored = match instance::read::<P::State>(&self.state_dir, key) {
            Err(Error::Corrupt { path, reason })
                if self.mode == WriteMode::Direct && instance::is_cut_short(&path) =>
            {
                tracing::debug!(file = %path.display(), %reason, "an instance file being written when a rebuild was interrupted is cut short; it is rewritten");
                None
            }
            other => other?,
        };
        Ok(match stored {
            Some(stored) => Slot {
                stem,
                position: stored.position,
                disk_tags: if stored.state.is_some() {
                    tags::index_tags(&stored.tags)
                } else {
                    Vec::new()
                },
                tags: stored.tags,
                state: stored.state,
                on_disk: true,
                dirty: false,
            },
            None => Slot {
                stem,
                position: 0,
                state: None,
                tags: Vec::new(),
                disk_tags: Vec::new(),
                on_disk: false,
                dirty: false,
            },
        })
    }
}

impl<P: Projection> Session for SessionOf<P> {
    fn apply(&mut self, batch: &[Prepared]) -> Result<(), Failed> {
        for (index, prepared) in batch.iter().enumerate() {
            self.apply_one(prepared)
                .map_err(|error| Failed { index, error })?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<Written, Error> {
        let mut synced: Vec<PathBuf> = Vec::new();
        let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
        let mut renames = Vec::new();
        let mut removals = Vec::new();
        let mut tombstones = Vec::new();
        for (key, slot) in self.cache.iter_mut().filter(|(_, s)| s.dirty) {
            let new_tags = if slot.state.is_some() {
                tags::index_tags(&slot.tags)
            } else {
                Vec::new()
            };
            let added: Vec<IndexTag> = new_tags
                .iter()
                .filter(|t| slot.disk_tags.binary_search(t).is_err())
                .cloned()
                .collect();
            let removed: Vec<IndexTag> = slot
                .disk_tags
                .iter()
                .filter(|t| new_tags.binary_search(t).is_err())
                .cloned()
                .collect();
            // Markers before the instance that needs them: the index never misses an instance.
            tags::add_markers(&self.tags_dir, &slot.stem, &added, &mut synced, &mut dirs)?;
            let target = instance::path(&self.state_dir, &slot.stem);
            let bytes =
                instance::encode(key, slot.position, &slot.tags, slot.state.as_ref(), &target)?;
            if self.mode == WriteMode::Direct && !slot.on_disk {
                files::write_new_file(&target, &bytes)?;
                synced.push(target);
            } else {
                let tmp = self.tmp_dir.join(format!("{}.json", slot.stem));
                files::write_file(&tmp, &bytes)?;
                synced.push(tmp.clone());
                renames.push((tmp, target));
            }
            if !removed.is_empty() {
                removals.push((slot.stem.clone(), removed));
            }
            if slot.state.is_none() {
                tombstones.push(slot.stem.clone());
            }
            slot.disk_tags = new_tags;
            slot.on_disk = true;
            slot.dirty = false;
        }
        if synced.is_empty() {
            return Ok(Written::default());
        }
        dirs.insert(self.state_dir.clone());
        let anchor = self.generation.dir();
        let pending = self.generation.take_tombstones();
        if renames.is_empty() && pending.is_empty() {
            // Only new files, written in place: nothing is renamed, so their bytes only need to
            // be durable before the checkpoint, which the commit's one barrier ensures.
            return Ok(Written {
                files: synced,
                dirs: Vec::from_iter(dirs),
            });
        }
        if !pending.is_empty() {
            // Syncing the generation folder makes the previous commit's checkpoint durable,
            // which is what lets that commit's tombstones go now.
            dirs.insert(anchor.to_path_buf());
        }
        // The replacements' bytes are durable before they are renamed over the old files.
        files::barrier(self.durability, anchor, &synced, &Vec::from_iter(dirs))?;
        for stem in pending {
            // A tombstone written again by this commit stays (it is being replaced).
            if !tombstones.contains(&stem) {
                let file = instance::path(&self.state_dir, &stem);
                if !renames.iter().any(|(_, target)| *target == file) {
                    files::remove_file(&file)?;
                }
            }
        }
        for (tmp, target) in &renames {
            files::rename(tmp, target)?;
        }
        // Markers after the instance that no longer needs them.
        for (stem, removed) in &removals {
            tags::remove_markers(&self.tags_dir, stem, removed)?;
        }
        self.generation.add_tombstones(tombstones);
        Ok(Written {
            files: Vec::new(),
            dirs: vec![self.state_dir.clone()],
        })
    }

    fn cached(&self) -> usize {
        self.cache.len()
    }

    fn evict(&mut self) {
        self.cache.retain(|_, slot| slot.dirty);
    }
}
