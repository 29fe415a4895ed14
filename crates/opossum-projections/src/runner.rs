//! The engine that applies events to one generation of one projection, behind a type-erased
//! [`Runner`] so that projections of different state types live side by side.
//!
//! A [`Session`] caches the instances it touches, applies events to them in position order,
//! and hands the changed ones to [`commit`], which appends them with the checkpoint that
//! covers them. The daemon uses one session per batch; a rebuild keeps one for the whole run
//! and commits at every flush point.
//!
//! **The crash rule.** The changed instances' records and the checkpoint are one commit of the
//! generation file: a crash keeps all of it or none of it. After a crash the events after the
//! checkpoint are replayed onto states that hold none of them; every record also carries the
//! position of the last event applied to it, and an event at or below it is skipped.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Arc;

use opossum_core::{EventType, Position, Query, QueryItem, SequencedEvent, Tag};

use opossum_core::Durability;

use crate::generation::{self, Generation, Journal};
use crate::naming::projection_name_problem;
use crate::packed::Pending;
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
    fn session(self: Arc<Self>, generation: Arc<Generation>) -> Box<dyn Session>;
}

/// Commits what `session` applied to `generation`: its changed instances and the checkpoint,
/// appended in one write and made durable by one `fdatasync` (with
/// [`Durability::Immediate`]). A rebuild's flush point also records its `journal` (not synced:
/// the generation file, not the journal, says where a resumed rebuild starts).
pub(crate) fn commit(
    session: &mut dyn Session,
    generation: &Generation,
    checkpoint: u64,
    journal: Option<(&Path, &Journal)>,
    durability: Durability,
) -> Result<(), Error> {
    let pending = session.write()?;
    if pending.is_empty() && generation.checkpoint() == Some(checkpoint) {
        return Ok(());
    }
    generation.commit(pending, checkpoint, durability)?;
    if let Some((dir, journal)) = journal {
        generation::write_journal(dir, journal, Durability::Eventual)?;
    }
    Ok(())
}

/// A session of one projection on one generation.
pub(crate) trait Session: Send {
    /// Applies `batch` in order. On a failure the events before it are applied, and the session
    /// must not be written (the failed instance's state is gone): start a new one.
    fn apply(&mut self, batch: &[Prepared]) -> Result<(), Failed>;
    /// Encodes every changed instance, in key order, for [`commit`], and counts them as
    /// written.
    fn write(&mut self) -> Result<Pending, Error>;
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

    fn session(self: Arc<Self>, generation: Arc<Generation>) -> Box<dyn Session> {
        Box::new(SessionOf {
            runner: self,
            generation,
            cache: HashMap::new(),
        })
    }
}

/// A cached instance.
struct Slot<S> {
    /// The position of the last event applied (0: none).
    position: u64,
    /// `None`: the instance does not exist (or was deleted).
    state: Option<S>,
    /// The tags of `state`.
    tags: Vec<Tag>,
    dirty: bool,
}

struct SessionOf<P: Projection> {
    runner: Arc<Registered<P>>,
    generation: Arc<Generation>,
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
        let located = self.generation.table().get(key).map(|l| (l.offset, l.len));
        let Some(location) = located else {
            return Ok(Slot {
                position: 0,
                state: None,
                tags: Vec::new(),
                dirty: false,
            });
        };
        let lines = self.generation.read_lines(&[location])?;
        let line = lines.first().map_or(&[][..], Vec::as_slice);
        let stored = instance::decode::<P::State>(line, key, self.generation.path())?;
        Ok(Slot {
            position: stored.position,
            state: Some(stored.state),
            tags: stored.tags,
            dirty: false,
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

    fn write(&mut self) -> Result<Pending, Error> {
        let mut dirty: Vec<(&String, &mut Slot<P::State>)> =
            self.cache.iter_mut().filter(|(_, s)| s.dirty).collect();
        dirty.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut pending = Pending::default();
        for (key, slot) in dirty {
            pending.record(
                key,
                slot.position,
                &slot.tags,
                slot.state.as_ref(),
                self.generation.path(),
            )?;
            slot.dirty = false;
        }
        Ok(pending)
    }

    fn cached(&self) -> usize {
        self.cache.len()
    }

    fn evict(&mut self) {
        self.cache.retain(|_, slot| slot.dirty);
    }
}
