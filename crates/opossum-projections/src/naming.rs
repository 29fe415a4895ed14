//! File names for data: instance keys and tag values become file names that are injective,
//! portable, and safe on case-insensitive file systems; projection names are checked to be
//! portable folder names.
//!
//! # The key encoding
//!
//! A key (any UTF-8 string) becomes a file-name stem, one token per character:
//!
//! - `a`–`z`, `0`–`9`, `_` and `-` stand for themselves;
//! - an upper-case `A`–`Z` is `^` followed by its lower-case letter (`Course` → `^course`);
//! - every other byte of the UTF-8 text is `%` and two upper-case hex digits (`/` → `%2F`,
//!   `é` → `%C3%A9`);
//! - the empty key is `^` alone, which no other key produces;
//! - a stem that reads as a Windows device name (`con`, `nul`, `com1`, …) has its first character
//!   escaped as `%XX` (`con` → `%63on`).
//!
//! `^` and `%` start every multi-character token and are never escaped themselves, so a stem
//! parses back into exactly one key (the encoding is injective). Letters outside hex escapes
//! are always lower case and hex digits always upper case, so two different keys never produce
//! stems that differ only in case: the encoding is safe on the case-insensitive file systems of
//! Windows and macOS.
//!
//! A stem longer than [`MAX_STEM`] bytes is cut, and the SHA-256 of the key is appended after a
//! `~` (a character the encoding otherwise escapes), which keeps file names within every file
//! system's limit. The key itself is always stored inside the file too.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

/// The longest stem written, in bytes (file systems allow 255 for a whole name).
pub(crate) const MAX_STEM: usize = 160;

/// The longest projection name accepted, in bytes.
const MAX_NAME_LEN: usize = 100;

/// Names Windows reserves for devices, even with an extension.
const RESERVED_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters that are path separators or invalid in Windows file names.
const FORBIDDEN_CHARACTERS: [char; 9] = ['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

/// The file-name stem of `key` (see the module documentation).
pub(crate) fn encode_key(key: &str) -> String {
    if key.is_empty() {
        return "^".to_owned();
    }
    let mut stem = String::with_capacity(key.len() + 8);
    for c in key.chars() {
        match c {
            'a'..='z' | '0'..='9' | '_' | '-' => stem.push(c),
            'A'..='Z' => {
                stem.push('^');
                stem.push(c.to_ascii_lowercase());
            }
            _ => {
                let mut buf = [0; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(stem, "%{b:02X}");
                }
            }
        }
    }
    if is_reserved(&stem) {
        let first = stem.remove(0);
        stem.insert_str(0, &format!("%{:02X}", u32::from(first)));
    }
    if stem.len() > MAX_STEM {
        let digest = Sha256::digest(key.as_bytes());
        let mut cut = MAX_STEM - 65;
        while !stem.is_char_boundary(cut) {
            cut -= 1;
        }
        stem.truncate(cut);
        stem.push('~');
        for b in digest {
            let _ = write!(stem, "{b:02x}");
        }
    }
    stem
}

/// The key a stem stands for, or `None` when the stem is not one [`encode_key`] writes, or was
/// shortened with a hash.
#[cfg(test)]
pub(crate) fn decode_key(stem: &str) -> Option<String> {
    if stem == "^" {
        return Some(String::new());
    }
    let mut bytes = Vec::with_capacity(stem.len());
    let mut chars = stem.bytes();
    while let Some(b) = chars.next() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => bytes.push(b),
            b'^' => match chars.next()? {
                c @ b'a'..=b'z' => bytes.push(c.to_ascii_uppercase()),
                _ => return None,
            },
            b'%' => {
                let hi = hex(chars.next()?)?;
                let lo = hex(chars.next()?)?;
                bytes.push(hi << 4 | lo);
            }
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn is_reserved(stem: &str) -> bool {
    RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(stem))
}

/// Why `name` cannot be a projection's folder name, if it cannot.
pub(crate) fn projection_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some(
            "the name is empty; name the projection, for example \"CourseDetails\"".into(),
        );
    }
    if name == "." || name == ".." || name.starts_with('.') {
        return Some("the name starts with a dot, which is kept for the crate's own files".into());
    }
    if let Some(c) = name.chars().find(|c| FORBIDDEN_CHARACTERS.contains(c)) {
        return Some(format!(
            "the name contains {c:?}; a projection name is a folder name and cannot hold any of / \\ : * ? \" < > |"
        ));
    }
    if name.chars().any(char::is_control) {
        return Some("the name contains a control character".into());
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if is_reserved(stem) {
        return Some("the name is reserved by Windows for a device; choose another".into());
    }
    if name.ends_with(['.', ' ']) || name.starts_with(' ') {
        return Some(
            "the name starts with a space or ends with a dot or space, which Windows drops".into(),
        );
    }
    if name.len() > MAX_NAME_LEN {
        return Some(format!(
            "the name is {} bytes long; keep it at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn readable_keys_stay_readable() {
        assert_eq!(encode_key("c-1_2"), "c-1_2");
        assert_eq!(encode_key("Course"), "^course");
        assert_eq!(encode_key("a/b"), "a%2Fb");
        assert_eq!(encode_key("x/../y"), "x%2F%2E%2E%2Fy");
        assert_eq!(encode_key("é"), "%C3%A9");
        assert_eq!(encode_key(""), "^");
        assert_eq!(encode_key("^"), "%5E");
        assert_eq!(encode_key("con"), "%63on");
        assert_eq!(encode_key("Nul"), "^nul");
        assert_eq!(encode_key("com1"), "%63om1");
    }

    #[test]
    fn keys_differing_in_case_never_collide_on_case_insensitive_file_systems() {
        let keys = [
            "abc", "ABC", "Abc", "aBC", "%41bc", "^abc", "", "^", "A", "a",
        ];
        let mut seen: HashMap<String, &str> = HashMap::new();
        for key in keys {
            let folded = encode_key(key).to_lowercase();
            assert!(
                seen.insert(folded, key).is_none(),
                "{key:?} collides with another key"
            );
        }
    }

    #[test]
    fn long_keys_are_shortened_with_their_hash() {
        let a = "K".repeat(400);
        let b = format!("{}L", "K".repeat(399));
        let (ea, eb) = (encode_key(&a), encode_key(&b));
        assert!(ea.len() <= MAX_STEM, "{}", ea.len());
        assert_ne!(ea, eb);
        assert!(ea.contains('~'));
        assert_eq!(decode_key(&ea), None);
        let multibyte = "é".repeat(200);
        assert!(encode_key(&multibyte).len() <= MAX_STEM);
    }

    #[test]
    fn projection_names_must_be_portable_folder_names() {
        for bad in [
            "", ".hidden", "a/b", "a\\b", "c:", "CON", "con.x", "x.", " x", "a\tb",
        ] {
            assert!(projection_name_problem(bad).is_some(), "{bad:?}");
        }
        assert!(projection_name_problem(&"x".repeat(101)).is_some());
        for good in [
            "CourseDetails",
            "course-details_2",
            "Ünïcode",
            "a.b",
            "console",
        ] {
            assert_eq!(projection_name_problem(good), None, "{good:?}");
        }
    }

    proptest! {
        #[test]
        fn encoding_round_trips_and_is_case_safe(a in ".{0,40}", b in ".{0,40}") {
            let (ea, eb) = (encode_key(&a), encode_key(&b));
            if ea.contains('~') {
                prop_assert!(ea.len() <= MAX_STEM);
            } else {
                prop_assert_eq!(decode_key(&ea), Some(a.clone()));
            }
            prop_assert!(ea.bytes().all(|c| c.is_ascii_graphic()));
            if a != b {
                prop_assert_ne!(ea.to_lowercase(), eb.to_lowercase());
            }
        }
    }
}
