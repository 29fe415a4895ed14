//! Event types and tags: validated text that is always data, never a file name.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// Rejects text holding a control character (`\n`, `\t`, NUL, …).
pub(crate) fn reject_control_characters(what: &'static str, text: &str) -> Result<(), Error> {
    match text.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(Error::ControlCharacter {
            what,
            text: text.to_owned(),
            code: u32::from(c),
        }),
    }
}

/// The type name of an event, such as `"CourseCreated"`: non-empty, without control characters.
///
/// Cloning is cheap (a reference count), because stores keep one copy per distinct type.
///
/// ```
/// use opossum_core::EventType;
///
/// let t = EventType::new("StudentRegistered")?;
/// assert_eq!(t.as_str(), "StudentRegistered");
/// assert!(EventType::new("").is_err());
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventType(Arc<str>);

impl EventType {
    /// Validates and wraps a type name.
    ///
    /// # Errors
    /// [`Error::EmptyEventType`] or [`Error::ControlCharacter`].
    pub fn new(name: impl AsRef<str>) -> Result<EventType, Error> {
        let name = name.as_ref();
        if name.is_empty() {
            return Err(Error::EmptyEventType);
        }
        reject_control_characters("event type", name)?;
        Ok(EventType(Arc::from(name)))
    }

    /// The name as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for EventType {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for EventType {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for EventType {
    type Error = Error;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        EventType::new(value)
    }
}

impl TryFrom<String> for EventType {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        EventType::new(value)
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        EventType::new(text).map_err(serde::de::Error::custom)
    }
}

/// A `key`/`value` pair attached to an event, used to select events across entities.
///
/// Keys and values are data: any UTF-8 round-trips exactly, including `/`, `\`, `:`, `..` and
/// spaces, and comparison is exact and case-sensitive. The key must be non-empty; the value may
/// be empty. Neither may contain control characters.
///
/// ```
/// use opossum_core::Tag;
///
/// let a = Tag::new("a_b", "c")?;
/// let b = Tag::new("a", "b_c")?;
/// assert_ne!(a, b);
/// assert_ne!(Tag::new("Key", "v")?, Tag::new("key", "v")?);
/// assert_eq!(Tag::new("path", "x/../y")?.value(), "x/../y");
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "UncheckedTag")]
pub struct Tag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
struct UncheckedTag {
    key: String,
    value: String,
}

impl TryFrom<UncheckedTag> for Tag {
    type Error = Error;
    fn try_from(t: UncheckedTag) -> Result<Self, Self::Error> {
        Tag::new(t.key, t.value)
    }
}

impl Tag {
    /// Validates and builds a tag.
    ///
    /// # Errors
    /// [`Error::EmptyTagKey`] or [`Error::ControlCharacter`].
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Result<Tag, Error> {
        let key = key.into();
        let value = value.into();
        if key.is_empty() {
            return Err(Error::EmptyTagKey { value });
        }
        reject_control_characters("tag key", &key)?;
        reject_control_characters("tag value", &value)?;
        Ok(Tag { key, value })
    }

    /// The key.
    #[must_use]
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The value.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({:?}={:?})", self.key, self.value)
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Rejects the same tag given twice on one event.
pub(crate) fn reject_duplicate_tags(tags: &[Tag]) -> Result<(), Error> {
    // Events usually carry a handful of tags, where a quadratic scan beats hashing; past that, sort
    // references instead.
    if tags.len() <= 16 {
        for (i, tag) in tags.iter().enumerate() {
            if tags[..i].contains(tag) {
                return Err(duplicate(tag));
            }
        }
        return Ok(());
    }
    let mut sorted: Vec<&Tag> = tags.iter().collect();
    sorted.sort_unstable();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(duplicate(w[0])),
        None => Ok(()),
    }
}

fn duplicate(tag: &Tag) -> Error {
    Error::DuplicateTag {
        key: tag.key.clone(),
        value: tag.value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_type_and_key_are_rejected() {
        assert!(matches!(EventType::new(""), Err(Error::EmptyEventType)));
        assert!(matches!(Tag::new("", "v"), Err(Error::EmptyTagKey { .. })));
        assert!(Tag::new("k", "").is_ok());
    }

    #[test]
    fn control_characters_are_rejected_everywhere() {
        for bad in ["a\nb", "\0", "tab\there", "\u{7f}", "\u{85}"] {
            assert!(
                matches!(
                    EventType::new(bad),
                    Err(Error::ControlCharacter {
                        what: "event type",
                        ..
                    })
                ),
                "{bad:?}"
            );
            assert!(matches!(
                Tag::new(bad, "v"),
                Err(Error::ControlCharacter {
                    what: "tag key",
                    ..
                })
            ));
            assert!(matches!(
                Tag::new("k", bad),
                Err(Error::ControlCharacter {
                    what: "tag value",
                    ..
                })
            ));
        }
    }

    #[test]
    fn tags_that_look_alike_are_different() {
        let pairs = [
            (("a_b", "c"), ("a", "b_c")),
            (("x/y", "v"), ("x_y", "v")),
            (("Key", "v"), ("key", "v")),
            (("k", "x/y"), ("k", "x_y")),
            (("k", "a:b"), ("k:a", "b")),
        ];
        for ((k1, v1), (k2, v2)) in pairs {
            assert_ne!(Tag::new(k1, v1).unwrap(), Tag::new(k2, v2).unwrap());
        }
    }

    #[test]
    fn awkward_text_round_trips_through_json() {
        let tag = Tag::new("dir\\..\\x: y", "/etc/../ passwd ü 🦫").unwrap();
        let json = serde_json::to_string(&tag).unwrap();
        assert_eq!(serde_json::from_str::<Tag>(&json).unwrap(), tag);
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<Tag>(r#"{"key":"","value":"x"}"#).is_err());
        assert!(serde_json::from_str::<EventType>(r#""a\nb""#).is_err());
    }

    #[test]
    fn duplicate_tags_are_found_in_short_and_long_lists() {
        let mut tags: Vec<Tag> = (0..40)
            .map(|i| Tag::new("k", i.to_string()).unwrap())
            .collect();
        assert!(reject_duplicate_tags(&tags).is_ok());
        assert!(reject_duplicate_tags(&tags[..3]).is_ok());
        tags.push(Tag::new("k", "7").unwrap());
        assert!(matches!(
            reject_duplicate_tags(&tags),
            Err(Error::DuplicateTag { .. })
        ));
        let short = [Tag::new("a", "1").unwrap(), Tag::new("a", "1").unwrap()];
        assert!(matches!(
            reject_duplicate_tags(&short),
            Err(Error::DuplicateTag { .. })
        ));
    }
}
