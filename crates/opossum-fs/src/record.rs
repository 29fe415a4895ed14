//! One event as one line of a segment file, and the hash chain that links the lines.
//!
//! A line is the event's JSON object with two store fields appended, and a newline:
//!
//! ```text
//! {"position":7,"type":"T","tags":[…],"payload":…,"metadata":{…},"batch_last":8,"synced_to":6,"hash":"<64 hex>"}
//! ```
//!
//! `batch_last` is the position of the last event of the append the line belongs to (an append
//! is committed once its last line is whole). `synced_to` is the highest position the writer
//! knew to be on stable storage when it wrote the line: everything up to it was durable before
//! this line existed. Recovery uses it to tell a torn, never-acknowledged tail from damage to
//! acknowledged events. Lines of format 1 have no `synced_to`; they are read as before.
//!
//! `hash` is SHA-256 over the previous event's hash (32 bytes; zeros before position 1)
//! followed by the line's bytes up to, not including, `,"hash":`. Because it hashes the exact
//! stored bytes, verifying never depends on how a JSON library re-encodes a value.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

pub(crate) use opossum_core::line::{
    ChainHash, decode_line as decode_event, encode_line as encode, split_hash,
};

/// What the index needs from a line; the payload and metadata are skipped, not parsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header<'a> {
    pub(crate) position: u64,
    #[serde(rename = "type", borrow)]
    pub(crate) event_type: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) tags: Vec<TagRef<'a>>,
    #[allow(dead_code)] // present so a line missing it is rejected
    payload: IgnoredAny,
    #[allow(dead_code)]
    metadata: IgnoredAny,
    pub(crate) batch_last: u64,
    /// Absent in lines of format 1.
    #[serde(default)]
    pub(crate) synced_to: Option<u64>,
    #[allow(dead_code)]
    hash: IgnoredAny,
}

/// A tag as borrowed from a line.
#[derive(Deserialize)]
pub(crate) struct TagRef<'a> {
    #[serde(borrow)]
    pub(crate) key: Cow<'a, str>,
    #[serde(borrow)]
    pub(crate) value: Cow<'a, str>,
}

/// Parses the index header of a line (without its newline).
pub(crate) fn decode_header(line: &[u8]) -> Result<Header<'_>, String> {
    let header: Header<'_> = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    if header.position == 0 || header.batch_last < header.position {
        return Err(format!(
            "position {} / batch_last {} are inconsistent",
            header.position, header.batch_last
        ));
    }
    if header.synced_to.is_some_and(|s| s >= header.position) {
        return Err(format!(
            "position {} claims that it was already durable (synced_to {})",
            header.position,
            header.synced_to.unwrap_or_default()
        ));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opossum_core::{NewEvent, Payload, Position};

    fn sample() -> NewEvent {
        NewEvent::builder(
            "CourseCreated",
            Payload::from_json(r#"{"name":"Rust 101","max":10}"#).unwrap(),
        )
        .tag("courseId", "c/1")
        .tag("term", "2026 \\ spring: ..")
        .timestamp("2026-11-24T10:00:00Z".parse().unwrap())
        .correlation_id("req-1")
        .build()
        .unwrap()
    }

    #[test]
    fn a_line_is_what_the_format_document_says() {
        let mut buf = Vec::new();
        let p = Position::new(1).unwrap();
        encode(&mut buf, ChainHash::GENESIS, p, p, 0, None, &sample()).unwrap();
        insta::assert_snapshot!(String::from_utf8(buf).unwrap());
    }

    /// A line with everything format 3 adds to `metadata`: the store's commit time, free
    /// fields, a payload version, and the personal-data marking of sealed fields.
    fn format_3_sample() -> NewEvent {
        NewEvent::builder(
            "StudentRegistered",
            Payload::from_json(r#"{"studentId":"s-1","email":"c2VhbGVk"}"#).unwrap(),
        )
        .tag("studentId", "s-1")
        .timestamp("2026-11-24T10:00:00Z".parse().unwrap())
        .user_id("registrar")
        .field("reason", "enrolment form 2026/117")
        .field("host", "PC-07")
        .version(2)
        .personal_data("s-1", ["email"])
        .build()
        .unwrap()
    }

    #[test]
    fn a_format_3_line_is_what_the_format_document_says() {
        let mut buf = Vec::new();
        let p = Position::new(1).unwrap();
        let stored_at = "2026-11-24T10:00:00.25Z".parse().unwrap();
        encode(
            &mut buf,
            ChainHash::GENESIS,
            p,
            p,
            0,
            Some(stored_at),
            &format_3_sample(),
        )
        .unwrap();
        insta::assert_snapshot!(String::from_utf8(buf.clone()).unwrap());
        let read = decode_event(&buf[..buf.len() - 1]).unwrap();
        assert_eq!(read.stored_at, Some(stored_at));
        assert_eq!(read.event.version(), 2);
        assert_eq!(
            read.event.metadata().get("reason"),
            Some("enrolment form 2026/117")
        );
        let personal = read.event.personal_data().unwrap();
        assert_eq!(
            (personal.subject.as_str(), &personal.fields[..]),
            ("s-1", &["email".to_owned()][..])
        );
        assert!(read.event.is_sealed());
        // The index reads the header of such a line as before.
        assert_eq!(
            decode_header(&buf[..buf.len() - 1]).unwrap().event_type,
            "StudentRegistered"
        );
    }

    #[test]
    fn format_2_lines_read_as_version_1_without_a_commit_time() {
        // The line of the format-2 snapshot, byte for byte.
        let line = br#"{"position":1,"type":"CourseCreated","tags":[{"key":"courseId","value":"c/1"},{"key":"term","value":"2026 \\ spring: .."}],"payload":{"name":"Rust 101","max":10},"metadata":{"timestamp":"2026-11-24T10:00:00Z","correlation_id":"req-1"},"batch_last":1,"synced_to":0,"hash":"ded98d5888f9d5d11a0a3fbf3cf87f89650fcb26627e99aefb24900006aa01dc"}"#;
        let (hashed, stored) = split_hash(line).unwrap();
        assert_eq!(ChainHash::chain(ChainHash::GENESIS, hashed), stored);
        let read = decode_event(line).unwrap();
        assert_eq!(read.stored_at, None);
        assert_eq!(read.event.version(), 1);
        assert!(read.event.metadata().fields.is_empty());
        assert_eq!(read.event, sample());
    }

    #[test]
    fn lines_decode_to_the_event_they_encode() {
        let mut buf = Vec::new();
        let p = Position::new(3).unwrap();
        let hash = encode(
            &mut buf,
            ChainHash::GENESIS,
            p,
            p.next(),
            2,
            None,
            &sample(),
        )
        .unwrap();
        let line = &buf[..buf.len() - 1];
        let (hashed, stored) = split_hash(line).unwrap();
        assert_eq!(stored, hash);
        assert_eq!(ChainHash::chain(ChainHash::GENESIS, hashed), hash);
        let header = decode_header(line).unwrap();
        assert_eq!((header.position, header.batch_last), (3, 4));
        assert_eq!(header.synced_to, Some(2));
        assert_eq!(header.event_type, "CourseCreated");
        assert_eq!(header.tags[1].value, "2026 \\ spring: ..");
        let event = decode_event(line).unwrap();
        assert_eq!(event.position, p);
        assert_eq!(event.event, sample());
    }

    #[test]
    fn the_chain_depends_on_the_previous_hash() {
        let p = Position::FIRST;
        let mut a = Vec::new();
        let mut b = Vec::new();
        let h1 = encode(&mut a, ChainHash::GENESIS, p, p, 0, None, &sample()).unwrap();
        let h2 = encode(&mut b, h1, p, p, 0, None, &sample()).unwrap();
        assert_ne!(h1, h2);
    }

    #[test]
    fn hex_round_trips() {
        let h = ChainHash::chain(ChainHash::GENESIS, b"x");
        assert_eq!(ChainHash::from_hex(h.to_hex().as_bytes()), Some(h));
        assert_eq!(ChainHash::from_hex(b"zz"), None);
    }

    #[test]
    fn damaged_lines_are_rejected() {
        assert!(split_hash(b"{}").is_err());
        let mut buf = Vec::new();
        encode(
            &mut buf,
            ChainHash::GENESIS,
            Position::FIRST,
            Position::FIRST,
            0,
            None,
            &sample(),
        )
        .unwrap();
        let line = &buf[..buf.len() - 1];
        assert!(split_hash(&line[..line.len() - 1]).is_err());
        assert!(decode_header(&line[..40]).is_err());
    }

    #[test]
    fn format_1_lines_without_synced_to_still_decode() {
        let mut buf = Vec::new();
        let p = Position::FIRST;
        encode(&mut buf, ChainHash::GENESIS, p, p, 0, None, &sample()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let old = text.replace(",\"synced_to\":0", "");
        let line = old.trim_end().as_bytes();
        let header = decode_header(line).unwrap();
        assert_eq!((header.position, header.synced_to), (1, None));
        assert_eq!(decode_event(line).unwrap().event, sample());
    }

    #[test]
    fn a_line_cannot_vouch_for_itself() {
        let mut buf = Vec::new();
        let p = Position::new(5).unwrap();
        encode(&mut buf, ChainHash::GENESIS, p, p, 5, None, &sample()).unwrap();
        assert!(decode_header(&buf[..buf.len() - 1]).is_err());
    }
}
