//! [`RequiredMetadata`]: metadata fields a store insists on for every event it appends.

use crate::event::FIXED_METADATA_NAMES;
use crate::{Error, NewEvent};

/// The metadata fields that every appended event must carry, non-empty: fixed ids
/// (`user_id`, `correlation_id`, `causation_id`, `operation_id`) and free
/// [`fields`](crate::Metadata::fields) (`reason`, `host`, …) alike.
///
/// A store given one (for example through the file store's options) refuses an append in
/// which any event lacks one of them, with [`Error::MissingMetadata`] and nothing written, so
/// an application cannot forget who did something, or why.
///
/// ```
/// use opossum_core::{Error, NewEvent, Payload, RequiredMetadata};
///
/// let rules = RequiredMetadata::new(["user_id", "reason"])?;
/// let signed = NewEvent::builder("DeviationRecorded", Payload::from_json("{}")?)
///     .user_id("qa-lead")
///     .field("reason", "temperature above limit")
///     .build()?;
/// let unsigned = NewEvent::builder("DeviationRecorded", Payload::from_json("{}")?)
///     .user_id("qa-lead")
///     .build()?;
/// assert!(rules.check(&[signed.clone()]).is_ok());
/// assert!(matches!(
///     rules.check(&[signed, unsigned]),
///     Err(Error::MissingMetadata { index: 1, ref field, .. }) if field == "reason"
/// ));
/// # Ok::<(), opossum_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequiredMetadata {
    names: Vec<String>,
}

impl RequiredMetadata {
    /// Requires each of `names` on every event.
    ///
    /// # Errors
    /// [`Error::InvalidMetadataField`] for an empty name, or one that no event can set
    /// (`timestamp`, which is always set, and the names the store itself writes).
    pub fn new<I, N>(names: I) -> Result<RequiredMetadata, Error>
    where
        I: IntoIterator<Item = N>,
        N: Into<String>,
    {
        let mut out: Vec<String> = Vec::new();
        for name in names {
            let name = name.into();
            let settable = matches!(
                name.as_str(),
                "correlation_id" | "causation_id" | "operation_id" | "user_id"
            ) || !FIXED_METADATA_NAMES.contains(&name.as_str());
            if name.is_empty() || !settable {
                return Err(Error::InvalidMetadataField { name });
            }
            if !out.contains(&name) {
                out.push(name);
            }
        }
        Ok(RequiredMetadata { names: out })
    }

    /// Nothing required (the default).
    #[must_use]
    pub fn none() -> RequiredMetadata {
        RequiredMetadata::default()
    }

    /// The required names, in the order given.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// True when nothing is required.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Checks every event of an append.
    ///
    /// # Errors
    /// [`Error::MissingMetadata`] for the first event that lacks a required field (or has it
    /// empty).
    pub fn check(&self, events: &[NewEvent]) -> Result<(), Error> {
        for (index, event) in events.iter().enumerate() {
            for name in &self.names {
                if event.metadata().get(name).is_none_or(str::is_empty) {
                    return Err(Error::MissingMetadata {
                        index,
                        event_type: event.event_type().as_str().to_owned(),
                        field: name.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;

    fn event() -> crate::EventBuilder {
        NewEvent::builder("T", Payload::from_json("{}").unwrap())
    }

    #[test]
    fn fixed_ids_and_free_fields_can_be_required() {
        let rules = RequiredMetadata::new(["operation_id", "host", "host"]).unwrap();
        assert_eq!(rules.names(), ["operation_id", "host"]);
        let ok = event()
            .operation_id("op")
            .field("host", "pc-3")
            .build()
            .unwrap();
        rules.check(&[ok]).unwrap();
        let empty = event()
            .operation_id("op")
            .field("host", "")
            .build()
            .unwrap();
        assert!(matches!(
            rules.check(&[empty]),
            Err(Error::MissingMetadata { ref field, .. }) if field == "host"
        ));
        let no_op = event().field("host", "pc-3").build().unwrap();
        assert!(matches!(
            rules.check(&[no_op]),
            Err(Error::MissingMetadata { ref field, ref event_type, index: 0 })
                if field == "operation_id" && event_type == "T"
        ));
        assert!(
            RequiredMetadata::none()
                .check(&[event().build().unwrap()])
                .is_ok()
        );
    }

    #[test]
    fn names_no_event_can_set_are_refused() {
        for bad in [
            "",
            "timestamp",
            "stored_at",
            "version",
            "personal",
            "fields",
        ] {
            assert!(
                matches!(
                    RequiredMetadata::new([bad]),
                    Err(Error::InvalidMetadataField { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn free_fields_may_not_take_fixed_names() {
        for bad in ["", "user_id", "timestamp", "stored_at"] {
            assert!(
                matches!(
                    event().field(bad, "x").build(),
                    Err(Error::InvalidMetadataField { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            event().field("reason", "a\nb").build(),
            Err(Error::ControlCharacter { .. })
        ));
    }
}
