//! Schema evolution: [`Upcasters`] bring stored events of older versions (and older type names)
//! up to the version the code reads, without touching the stored bytes.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use crate::{DomainEvent, Error, EventType, Payload, Query, QueryItem, SequencedEvent};

type Step = Arc<dyn Fn(Value) -> Result<Value, String> + Send + Sync>;

/// The application's upcasters: pure functions from the stored JSON payload of version *n* of
/// an event type to version *n + 1*, and renames of event types.
///
/// Reading an event through them (as [`Records`](crate::records::Records) does for every read,
/// and therefore for decision models, projections and subscriptions built on it) follows every
/// rename and every step from the stored version on, so a typed
/// [`decode`](SequencedEvent::decode) sees the version the code reads. The stored line is never
/// changed: the hash chain and `verify` see the original bytes, and an auditor the original
/// record. An event whose steps stop short of the version the code reads is
/// [`Error::EventVersion`], naming the type and both versions.
///
/// Steps also run on events whose subject was forgotten, after the erased personal fields were
/// removed: a step must accept a payload without them (as the one below does), or reads of
/// such events fail with [`Error::Upcast`].
///
/// ```
/// use opossum_core::{DomainEvent, NewEvent, Payload, Position, SequencedEvent, Upcasters};
/// use serde::{Deserialize, Serialize};
/// use serde_json::{Value, json};
///
/// /// Version 2 split the name in two.
/// #[derive(Serialize, Deserialize)]
/// struct StudentRegistered { first_name: String, last_name: String }
/// impl DomainEvent for StudentRegistered {
///     const EVENT_TYPE: &'static str = "StudentRegistered";
///     const VERSION: u32 = 2;
/// }
///
/// let upcasters = Upcasters::new()
///     // Early releases called the event "StudentSignedUp".
///     .rename("StudentSignedUp", "StudentRegistered")?
///     .upcast("StudentRegistered", 1, |mut v: Value| {
///         // `name` is absent when the student's personal data was erased.
///         let name = v["name"].as_str().unwrap_or_default().to_owned();
///         let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
///         v["first_name"] = json!(first);
///         v["last_name"] = json!(last);
///         Ok(v)
///     })?;
///
/// let old = NewEvent::builder("StudentSignedUp", Payload::from_json(r#"{"name":"Ada Lovelace"}"#)?)
///     .build()?;
/// let read = upcasters.apply(SequencedEvent::new(Position::FIRST, old))?;
/// assert_eq!(read.event.event_type().as_str(), "StudentRegistered");
/// assert_eq!(read.event.version(), 2);
/// assert_eq!(read.decode::<StudentRegistered>()?.last_name, "Lovelace");
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct Upcasters {
    steps: HashMap<(String, u32), Step>,
    /// Old type name → the name it was renamed to.
    renames: HashMap<String, String>,
    /// Type name → every older name that leads to it, directly or through other renames.
    aliases: HashMap<String, Vec<String>>,
}

impl fmt::Debug for Upcasters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut steps: Vec<_> = self.steps.keys().collect();
        steps.sort();
        f.debug_struct("Upcasters")
            .field("steps", &steps)
            .field("renames", &self.renames)
            .finish()
    }
}

impl Upcasters {
    /// No upcasters: every event is read as stored.
    #[must_use]
    pub fn new() -> Upcasters {
        Upcasters::default()
    }

    /// True when nothing is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty() && self.renames.is_empty()
    }

    /// Registers the step from version `from_version` of `event_type` to `from_version + 1`:
    /// a pure function of the stored JSON payload. Returning `Err(text)` makes reading such an
    /// event fail with [`Error::Upcast`] carrying the text.
    ///
    /// # Errors
    /// [`Error::InvalidUpcaster`] when the step is already registered, the version is 0 or the
    /// last one, or the type name is invalid.
    pub fn upcast<F>(
        mut self,
        event_type: impl AsRef<str>,
        from_version: u32,
        step: F,
    ) -> Result<Upcasters, Error>
    where
        F: Fn(Value) -> Result<Value, String> + Send + Sync + 'static,
    {
        let name = EventType::new(event_type.as_ref())?.as_str().to_owned();
        if from_version == 0 || from_version == u32::MAX {
            return Err(Error::InvalidUpcaster {
                problem: format!(
                    "{name:?}: a step reads version 1 or later and leads to the next version, \
                     not from version {from_version}"
                ),
            });
        }
        let key = (name, from_version);
        if self.steps.contains_key(&key) {
            return Err(Error::InvalidUpcaster {
                problem: format!(
                    "{:?}: the step from version {from_version} is registered twice",
                    key.0
                ),
            });
        }
        self.steps.insert(key, Arc::new(step));
        Ok(self)
    }

    /// Registers a step between two Rust types of the same event: `From` is version *n*,
    /// `To` version *n + 1* (both [`DomainEvent`]s with the same type name).
    ///
    /// # Errors
    /// [`Error::InvalidUpcaster`] when the types' names differ, `To::VERSION` is not
    /// `From::VERSION + 1`, or the step is already registered.
    pub fn upcast_typed<From, To, F>(self, step: F) -> Result<Upcasters, Error>
    where
        From: DomainEvent,
        To: DomainEvent,
        F: Fn(From) -> To + Send + Sync + 'static,
    {
        if From::EVENT_TYPE != To::EVENT_TYPE || From::VERSION.checked_add(1) != Some(To::VERSION) {
            return Err(Error::InvalidUpcaster {
                problem: format!(
                    "a typed step leads from {:?} version {} to the same type's next version, \
                     not to {:?} version {} (use rename for a new type name)",
                    From::EVENT_TYPE,
                    From::VERSION,
                    To::EVENT_TYPE,
                    To::VERSION
                ),
            });
        }
        self.upcast(From::EVENT_TYPE, From::VERSION, move |value| {
            let old: From = serde_json::from_value(value).map_err(|e| e.to_string())?;
            serde_json::to_value(step(old)).map_err(|e| e.to_string())
        })
    }

    /// Registers a rename: events stored as `old` are read as `new`, at the version they were
    /// stored with (then `new`'s steps apply). Queries for `new` also match events stored as
    /// `old`, in reads and in append conditions made through [`Records`](crate::records::Records).
    ///
    /// # Errors
    /// [`Error::InvalidUpcaster`] when `old` is already renamed, the names are equal, or the
    /// rename would close a loop of renames.
    pub fn rename(
        mut self,
        old: impl AsRef<str>,
        new: impl AsRef<str>,
    ) -> Result<Upcasters, Error> {
        let old = EventType::new(old.as_ref())?.as_str().to_owned();
        let new = EventType::new(new.as_ref())?.as_str().to_owned();
        if old == new || self.renames.contains_key(&old) {
            return Err(Error::InvalidUpcaster {
                problem: format!("{old:?} is renamed twice, or to itself"),
            });
        }
        // Following the renames from `new` must not come back to `old`.
        let mut at = new.as_str();
        while let Some(next) = self.renames.get(at) {
            if *next == old {
                return Err(Error::InvalidUpcaster {
                    problem: format!("renaming {old:?} to {new:?} closes a loop of renames"),
                });
            }
            at = next;
        }
        self.renames.insert(old, new);
        self.aliases = self.compute_aliases();
        Ok(self)
    }

    fn compute_aliases(&self) -> HashMap<String, Vec<String>> {
        let mut aliases: HashMap<String, Vec<String>> = HashMap::new();
        for old in self.renames.keys() {
            let mut at = old.as_str();
            while let Some(next) = self.renames.get(at) {
                aliases.entry(next.clone()).or_default().push(old.clone());
                at = next;
            }
        }
        for list in aliases.values_mut() {
            list.sort();
        }
        aliases
    }

    /// The type name `event_type` is read as, after every rename.
    #[must_use]
    pub fn current_name<'a>(&'a self, event_type: &'a str) -> &'a str {
        let mut at = event_type;
        while let Some(next) = self.renames.get(at) {
            at = next;
        }
        at
    }

    /// Brings one event up to date: every rename, then every step from its version on.
    ///
    /// # Errors
    /// [`Error::Upcast`] when a step fails or its result is not a JSON payload.
    pub fn apply(&self, mut event: SequencedEvent) -> Result<SequencedEvent, Error> {
        if self.is_empty() {
            return Ok(event);
        }
        let original = event.event.event_type().as_str().to_owned();
        let name = self.current_name(&original).to_owned();
        let mut version = event.event.version();
        if !self.steps.contains_key(&(name.clone(), version)) {
            if name != original {
                let event_type = EventType::new(&name)?;
                event.event = event.event.retyped(event_type, version);
            }
            return Ok(event);
        }
        let mut value: Value =
            serde_json::from_str(event.event.payload().as_json()).map_err(|e| Error::Upcast {
                event_type: name.clone(),
                version,
                problem: format!(
                    "the stored payload at position {} is not JSON: {e}",
                    event.position
                ),
            })?;
        while let Some(step) = self.steps.get(&(name.clone(), version)) {
            value = step(value).map_err(|problem| Error::Upcast {
                event_type: name.clone(),
                version,
                problem: format!("at position {}: {problem}", event.position),
            })?;
            version += 1;
        }
        let payload = Payload::from_value(&value).map_err(|e| Error::Upcast {
            event_type: name.clone(),
            version,
            problem: e.to_string(),
        })?;
        let event_type = EventType::new(&name)?;
        event.event = event
            .event
            .with_payload(payload)
            .retyped(event_type, version);
        Ok(event)
    }

    /// The query that also matches events stored under older names of the types it names.
    #[must_use]
    pub fn expand(&self, query: &Query) -> Query {
        let Some(items) = query.items() else {
            return query.clone();
        };
        if self.aliases.is_empty()
            || !items.iter().any(|i| {
                i.types()
                    .iter()
                    .any(|t| self.aliases.contains_key(t.as_str()))
            })
        {
            return query.clone();
        }
        let expanded = items.iter().map(|item| {
            let mut out = QueryItem::of_tags(item.tags().iter().cloned());
            for t in item.types() {
                out = out.with_event_type(t.clone());
                for old in self.aliases.get(t.as_str()).into_iter().flatten() {
                    if let Ok(old) = EventType::new(old) {
                        out = out.with_event_type(old);
                    }
                }
            }
            out
        });
        Query::from_items(expanded).unwrap_or_else(|_| query.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewEvent, Position, Tag};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V1 {
        name: String,
    }
    impl DomainEvent for V1 {
        const EVENT_TYPE: &'static str = "Registered";
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V2 {
        name: String,
        email: Option<String>,
    }
    impl DomainEvent for V2 {
        const EVENT_TYPE: &'static str = "Registered";
        const VERSION: u32 = 2;
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V3 {
        full_name: String,
        email: Option<String>,
    }
    impl DomainEvent for V3 {
        const EVENT_TYPE: &'static str = "Registered";
        const VERSION: u32 = 3;
    }

    fn stored(event_type: &str, version: u32, json: &str) -> SequencedEvent {
        let e = NewEvent::builder(event_type, Payload::from_json(json).unwrap())
            .version(version)
            .build()
            .unwrap();
        SequencedEvent::new(Position::FIRST, e)
    }

    fn two_steps() -> Upcasters {
        Upcasters::new()
            .upcast_typed::<V1, V2, _>(|v1| V2 {
                name: v1.name,
                email: None,
            })
            .unwrap()
            .upcast("Registered", 2, |mut v| {
                let name = v["name"].take();
                v["full_name"] = name;
                Ok(v)
            })
            .unwrap()
    }

    #[test]
    fn two_steps_bring_version_1_to_3() {
        let read = two_steps()
            .apply(stored("Registered", 1, r#"{"name":"Ada"}"#))
            .unwrap();
        assert_eq!(read.event.version(), 3);
        assert_eq!(
            read.decode::<V3>().unwrap(),
            V3 {
                full_name: "Ada".into(),
                email: None
            }
        );
        // A current event is read as it is.
        let v3 = stored("Registered", 3, r#"{"full_name":"Bo","email":"b@x"}"#);
        assert_eq!(two_steps().apply(v3.clone()).unwrap(), v3);
    }

    #[test]
    fn a_missing_step_names_the_type_and_versions() {
        let only_second = Upcasters::new().upcast("Registered", 2, Ok).unwrap();
        let read = only_second
            .apply(stored("Registered", 1, r#"{"name":"Ada"}"#))
            .unwrap();
        match read.decode::<V3>() {
            Err(Error::EventVersion {
                event_type,
                found: 1,
                expected: 3,
                ..
            }) => assert_eq!(event_type, "Registered"),
            other => panic!("unexpected {other:?}"),
        }
        // Without any upcaster, the raw event is refused the same way.
        assert!(matches!(
            stored("Registered", 1, "{}").decode::<V3>(),
            Err(Error::EventVersion {
                found: 1,
                expected: 3,
                ..
            })
        ));
    }

    #[test]
    fn a_failing_step_is_a_typed_error() {
        let u = Upcasters::new()
            .upcast("Registered", 1, |_| Err("no name".into()))
            .unwrap();
        assert!(matches!(
            u.apply(stored("Registered", 1, "{}")),
            Err(Error::Upcast { version: 1, ref problem, .. }) if problem.contains("no name")
        ));
    }

    #[test]
    fn renames_are_followed_and_expand_queries() {
        let u = two_steps()
            .rename("SignedUp", "Enrolled")
            .unwrap()
            .rename("Enrolled", "Registered")
            .unwrap();
        let read = u.apply(stored("SignedUp", 1, r#"{"name":"Ada"}"#)).unwrap();
        assert_eq!(read.event.event_type().as_str(), "Registered");
        assert_eq!(read.decode::<V3>().unwrap().full_name, "Ada");

        let q = Query::from_items([QueryItem::of_types(["Registered"])
            .unwrap()
            .with_tag(Tag::new("id", "1").unwrap())])
        .unwrap();
        let expanded = u.expand(&q);
        let item = &expanded.items().unwrap()[0];
        let names: Vec<&str> = item.types().iter().map(EventType::as_str).collect();
        assert_eq!(names, ["Registered", "Enrolled", "SignedUp"]);
        assert_eq!(item.tags(), q.items().unwrap()[0].tags());
        assert_eq!(u.expand(&Query::all()), Query::all());
        let other = Query::from_event_types(["Other"]).unwrap();
        assert_eq!(u.expand(&other), other);
    }

    #[test]
    fn bad_registrations_are_refused() {
        let u = two_steps();
        assert!(matches!(
            u.clone().upcast("Registered", 1, Ok),
            Err(Error::InvalidUpcaster { .. })
        ));
        assert!(matches!(
            Upcasters::new().upcast("Registered", 0, Ok),
            Err(Error::InvalidUpcaster { .. })
        ));
        assert!(matches!(
            Upcasters::new().upcast_typed::<V1, V3, _>(|v| V3 {
                full_name: v.name,
                email: None
            }),
            Err(Error::InvalidUpcaster { .. })
        ));
        let looped = Upcasters::new()
            .rename("A", "B")
            .unwrap()
            .rename("B", "C")
            .unwrap();
        assert!(matches!(
            looped.clone().rename("C", "A"),
            Err(Error::InvalidUpcaster { .. })
        ));
        assert!(matches!(
            looped.rename("A", "D"),
            Err(Error::InvalidUpcaster { .. })
        ));
        assert!(matches!(
            Upcasters::new().rename("A", "A"),
            Err(Error::InvalidUpcaster { .. })
        ));
    }
}
