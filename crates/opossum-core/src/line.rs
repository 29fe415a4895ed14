//! The canonical line of an event and the hash chain that links lines: the bytes every Opossum
//! store keeps for an event, whatever holds them (a segment file, a database row), so that
//! `verify`, exports and copies between stores work on the same bytes.
//!
//! A line is the event's JSON object with the store fields appended, and (in a file) a newline:
//!
//! ```text
//! {"position":7,"type":"T","tags":[…],"payload":…,"metadata":{…},"batch_last":8,"synced_to":6,"hash":"<64 hex>"}
//! ```
//!
//! The `metadata` object holds the client's `timestamp`, the store's `stored_at`, the fixed
//! ids, the free `fields`, and, when they differ from the default, the payload's `version` and
//! the `personal` data marking. Readers of format 2 ignore metadata keys they do not know.
//!
//! `batch_last` is the position of the last event of the append the line belongs to.
//! `synced_to` is the highest position known to be durable when the line was written. `hash` is
//! SHA-256 over the previous event's hash (32 bytes; zeros before position 1) followed by the
//! line's bytes up to, not including, `,"hash":`. Hashing the exact stored bytes means verifying
//! never depends on how a JSON library re-encodes a value.
//!
//! ```
//! use opossum_core::line::{ChainHash, decode_line, encode_line, split_hash};
//! use opossum_core::{NewEvent, Payload, Position};
//!
//! let event = NewEvent::builder("Checked", Payload::from_json("{}")?).build()?;
//! let mut buf = Vec::new();
//! let p = Position::FIRST;
//! let hash = encode_line(&mut buf, ChainHash::GENESIS, p, p, 0, None, &event)?;
//! let line = &buf[..buf.len() - 1]; // without the newline
//! let (hashed, stored) = split_hash(line).map_err(|r| r.to_owned())?;
//! assert_eq!(stored, hash);
//! assert_eq!(ChainHash::chain(ChainHash::GENESIS, hashed), hash);
//! assert_eq!(decode_line(line)?.event, event);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use std::collections::BTreeMap;

use jiff::Timestamp;

use crate::event::{first_version, is_first_version};
use crate::{EventType, Metadata, NewEvent, Payload, PersonalData, Position, SequencedEvent, Tag};

/// The bytes that close every line after the hashed part: `,"hash":"` + 64 hex digits + `"}`.
const HASH_FIELD: &[u8] = b",\"hash\":\"";
/// Length of the unhashed suffix of a line (without the newline).
pub const SUFFIX_LEN: usize = HASH_FIELD.len() + 64 + 2;

/// A SHA-256 chain hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ChainHash(pub [u8; 32]);

impl ChainHash {
    /// The hash every chain starts from.
    pub const GENESIS: ChainHash = ChainHash([0; 32]);

    /// The lowercase hex form.
    pub fn to_hex(self) -> String {
        self.hex_bytes().iter().map(|b| char::from(*b)).collect()
    }

    /// The lowercase hex form as ASCII bytes, without allocating: what every event line ends
    /// with, written straight into the line's buffer.
    pub fn hex_bytes(self) -> [u8; 64] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        out
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(text: &[u8]) -> Option<ChainHash> {
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
    pub fn chain(prev: ChainHash, hashed_part: &[u8]) -> ChainHash {
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
    metadata: MetadataOut<'a>,
    batch_last: u64,
    synced_to: u64,
}

/// The line's `metadata` object: the event's metadata, the store's commit time, and the
/// event's version and personal-data marking, in this order.
#[derive(Serialize)]
struct MetadataOut<'a> {
    timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    stored_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    operation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    fields: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "is_first_version")]
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    personal: Option<PersonalOut<'a>>,
}

/// What a line records of personal data: whose it is and which fields are sealed (never the
/// read-side `erased` flag).
#[derive(Serialize)]
struct PersonalOut<'a> {
    subject: &'a str,
    fields: &'a [String],
}

/// Appends the line for `event` to `buf` and returns its hash. `synced_to` is the highest
/// position known durable before this line is written; `stored_at` is the store's commit time
/// (`None` only to reproduce lines of stores that did not record it).
pub fn encode_line(
    buf: &mut Vec<u8>,
    prev: ChainHash,
    position: Position,
    batch_last: Position,
    synced_to: u64,
    stored_at: Option<Timestamp>,
    event: &NewEvent,
) -> Result<ChainHash, serde_json::Error> {
    let start = buf.len();
    let m = event.metadata();
    serde_json::to_writer(
        &mut *buf,
        &LineOut {
            position: position.get(),
            event_type: event.event_type().as_str(),
            tags: event.tags(),
            payload: event.payload(),
            metadata: MetadataOut {
                timestamp: m.timestamp,
                stored_at,
                correlation_id: m.correlation_id.as_deref(),
                causation_id: m.causation_id.as_deref(),
                operation_id: m.operation_id.as_deref(),
                user_id: m.user_id.as_deref(),
                fields: &m.fields,
                version: event.version(),
                personal: event.personal_data().map(|p| PersonalOut {
                    subject: &p.subject,
                    fields: &p.fields,
                }),
            },
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
pub fn split_hash(line: &[u8]) -> Result<(&[u8], ChainHash), &'static str> {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    position: Position,
    #[serde(rename = "type")]
    event_type: EventType,
    tags: Vec<Tag>,
    payload: Payload,
    metadata: MetadataIn,
    #[allow(dead_code)]
    batch_last: u64,
    #[allow(dead_code)]
    #[serde(default)]
    synced_to: Option<u64>,
    #[allow(dead_code)]
    hash: IgnoredAny,
}

/// The line's `metadata` object as read. Unknown keys are ignored, as format-2 readers ignore
/// the keys added since.
#[derive(Deserialize)]
struct MetadataIn {
    timestamp: Timestamp,
    #[serde(default)]
    stored_at: Option<Timestamp>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    causation_id: Option<String>,
    #[serde(default)]
    operation_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default = "first_version")]
    version: u32,
    #[serde(default)]
    personal: Option<PersonalIn>,
}

#[derive(Deserialize)]
struct PersonalIn {
    subject: String,
    fields: Vec<String>,
}

/// Parses a whole line (without its newline) into the event it stores.
pub fn decode_line(line: &[u8]) -> Result<SequencedEvent, String> {
    let l: LineIn = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    let m = l.metadata;
    let metadata = Metadata {
        timestamp: m.timestamp,
        correlation_id: m.correlation_id,
        causation_id: m.causation_id,
        operation_id: m.operation_id,
        user_id: m.user_id,
        fields: m.fields,
    };
    let personal = m.personal.map(|p| PersonalData {
        subject: p.subject,
        fields: p.fields,
        erased: false,
    });
    let mut event = NewEvent::from_parts(l.event_type, l.tags, l.payload, metadata)
        .and_then(|e| e.with_version(m.version))
        .and_then(|e| e.with_personal_data(personal))
        .map_err(|e| e.to_string())?;
    // A line marks personal data only once it is sealed.
    let sealed = event.personal_data().is_some();
    event.set_sealed(sealed);
    Ok(SequencedEvent {
        position: l.position,
        event,
        stored_at: m.stored_at,
    })
}
