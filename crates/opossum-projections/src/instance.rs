//! One instance as stored: a record line of a generation file (see `packed.rs`).
//!
//! `position` is the position of the last event applied to the instance. Records and the
//! checkpoint that covers them are committed together, so after a crash the events after the
//! checkpoint are replayed onto states that have none of them; an event at or below an
//! instance's position is skipped all the same, as a second guard.

use std::path::Path;

use opossum_core::Tag;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::packed::RecordIn;

/// An instance as read from its record.
#[derive(Debug)]
pub(crate) struct Stored<S> {
    pub(crate) key: String,
    pub(crate) position: u64,
    pub(crate) tags: Vec<Tag>,
    pub(crate) state: S,
}

/// Decodes the record `line` of the file `path`, which must be the record of `key`.
pub(crate) fn decode<S: DeserializeOwned>(
    line: &[u8],
    key: &str,
    path: &Path,
) -> Result<Stored<S>, Error> {
    let record: RecordIn<'_> = serde_json::from_slice(line)
        .map_err(|e| Error::corrupt(path, format!("a record of {key:?} does not parse ({e})")))?;
    if record.key != key {
        return Err(Error::corrupt(
            path,
            format!(
                "the record indexed for {key:?} holds the instance {:?}",
                record.key
            ),
        ));
    }
    let (false, Some(state)) = (record.deleted, record.state) else {
        return Err(Error::corrupt(
            path,
            format!("the record indexed for {key:?} holds no state"),
        ));
    };
    let state = serde_json::from_str(state.get()).map_err(|e| {
        Error::corrupt(
            path,
            format!("the state of {key:?} does not decode into the projection's state type ({e})"),
        )
    })?;
    Ok(Stored {
        key: record.key.into_owned(),
        position: record.position,
        tags: record.tags,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::Pending;

    fn line(key: &str, state: Option<&serde_json::Value>) -> Vec<u8> {
        let mut pending = Pending::default();
        pending
            .record(key, 3, &[], state, Path::new("x"))
            .unwrap_or_else(|e| panic!("{e}"));
        let (bytes, _) = pending.seal(3, 0);
        let text = String::from_utf8(bytes).unwrap_or_default();
        text.lines().next().unwrap_or_default().as_bytes().to_vec()
    }

    #[test]
    fn a_null_state_is_a_state() -> Result<(), Error> {
        let stored: Stored<()> = decode(
            &line("k", Some(&serde_json::Value::Null)),
            "k",
            Path::new("x"),
        )?;
        assert_eq!((stored.position, stored.state), (3, ()));
        assert!(
            decode::<()>(&line("k", None), "k", Path::new("x")).is_err(),
            "a deletion has no state"
        );
        Ok(())
    }

    #[test]
    fn a_record_of_another_key_is_reported() {
        let one = serde_json::json!(1);
        assert!(matches!(
            decode::<u32>(&line("other", Some(&one)), "k", Path::new("x")),
            Err(Error::Corrupt { .. })
        ));
    }
}
