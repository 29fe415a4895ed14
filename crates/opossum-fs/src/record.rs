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
use std::fmt;

use opossum_core::{EventType, Metadata, NewEvent, Payload, Position, SequencedEvent, Tag};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The bytes that close every line after the hashed part: `,"hash":"` + 64 hex digits + `"}`.
const HASH_FIELD: &[u8] = b",\"hash\":\"";
/// Length of the unhashed suffix of a line (without the newline).
pub(crate) const SUFFIX_LEN: usize = HASH_FIELD.len() + 64 + 2;

/// A SHA-256 chain hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct ChainHash(pub(crate) [u8; 32]);

impl ChainHash {
    /// The hash every chain starts from.
    pub(crate) const GENESIS: ChainHash = ChainHash([0; 32]);

    /// The lowercase hex form.
    pub(crate) fn to_hex(self) -> String {
        self.hex_bytes().iter().map(|b| char::from(*b)).collect()
    }

    /// The lowercase hex form as ASCII bytes, without allocating: what every event line ends
    /// with, written straight into the line's buffer.
    pub(crate) fn hex_bytes(self) -> [u8; 64] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        out
    }

    /// Parses 64 hex digits (either case).
    pub(crate) fn from_hex(text: &[u8]) -> Option<ChainHash> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.chunks_exact(2).enumerate() {
            out[i] = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
        }
        Some(ChainHash(out))
    }

    /// The hash of a line's hashed part following `prev`.
    pub(crate) fn chain(prev: ChainHash, hashed_part: &[u8]) -> ChainHash {
        let mut h = Sha256::new();
        h.update(prev.0);
        h.update(hashed_part);
        ChainHash(h.finalize().into())
    }
}

impl fmt::Debug for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[derive(Serialize)]
struct LineOut<'a> {
    position: u64,
    #[serde(rename = "type")]
    event_type: &'a str,
    tags: &'a [Tag],
    payload: &'a Payload,
    metadata: &'a Metadata,
    batch_last: u64,
    synced_to: u64,
}

/// Appends the line for `event` to `buf` and returns its hash. `synced_to` is the highest
/// position known durable before this line is written.
pub(crate) fn encode(
    buf: &mut Vec<u8>,
    prev: ChainHash,
    position: Position,
    batch_last: Position,
    synced_to: u64,
    event: &NewEvent,
) -> Result<ChainHash, serde_json::Error> {
    let start = buf.len();
    serde_json::to_writer(
        &mut *buf,
        &LineOut {
            position: position.get(),
            event_type: event.event_type().as_str(),
            tags: event.tags(),
            payload: event.payload(),
            metadata: event.metadata(),
            batch_last: batch_last.get(),
            synced_to,
        },
    )?;
    // Drop the closing brace: the hash field goes inside the object.
    buf.pop();
    let hash = ChainHash::chain(prev, &buf[start..]);
    buf.extend_from_slice(HASH_FIELD);
    buf.extend_from_slice(&hash.hex_bytes());
    buf.extend_from_slice(b"\"}\n");
    Ok(hash)
}

/// Splits a line (without its newline) into the hashed part and the stored hash.
pub(crate) fn split_hash(line: &[u8]) -> Result<(&[u8], ChainHash), &'static str> {
    if line.len() <= SUFFIX_LEN {
        return Err("line too short to hold an event");
    }
    let (hashed, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    if !suffix.starts_with(HASH_FIELD) || !suffix.ends_with(b"\"}") {
        return Err("line does not end with the hash field");
    }
    let hex = &suffix[HASH_FIELD.len()..HASH_FIELD.len() + 64];
    let hash = ChainHash::from_hex(hex).ok_or("hash field is not 64 hex digits")?;
    Ok((hashed, hash))
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    position: Position,
    #[serde(rename = "type")]
    event_type: EventType,
    tags: Vec<Tag>,
    payload: Payload,
    metadata: Metadata,
    #[allow(dead_code)]
    batch_last: u64,
    #[allow(dead_code)]
    #[serde(default)]
    synced_to: Option<u64>,
    #[allow(dead_code)]
    hash: IgnoredAny,
}

/// Parses a whole line (without its newline) into the event it stores.
pub(crate) fn decode_event(line: &[u8]) -> Result<SequencedEvent, String> {
    let l: LineIn = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let event = NewEvent::from_parts(l.event_type, l.tags, l.payload, l.metadata)
        .map_err(|e| e.to_string())?;
    Ok(SequencedEvent {
        position: l.position,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        encode(&mut buf, ChainHash::GENESIS, p, p, 0, &sample()).unwrap();
        insta::assert_snapshot!(String::from_utf8(buf).unwrap());
    }

    #[test]
    fn lines_decode_to_the_event_they_encode() {
        let mut buf = Vec::new();
        let p = Position::new(3).unwrap();
        let hash = encode(&mut buf, ChainHash::GENESIS, p, p.next(), 2, &sample()).unwrap();
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
        let h1 = encode(&mut a, ChainHash::GENESIS, p, p, 0, &sample()).unwrap();
        let h2 = encode(&mut b, h1, p, p, 0, &sample()).unwrap();
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
        encode(&mut buf, ChainHash::GENESIS, p, p, 0, &sample()).unwrap();
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
        encode(&mut buf, ChainHash::GENESIS, p, p, 5, &sample()).unwrap();
        assert!(decode_header(&buf[..buf.len() - 1]).is_err());
    }
}
