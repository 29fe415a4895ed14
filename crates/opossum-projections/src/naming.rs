//! Projection names are folder names: checked to be portable (Windows, macOS, Linux) before
//! anything is written. Instance keys and tag values are data inside the files, never names.

/// The longest projection name accepted, in bytes.
const MAX_NAME_LEN: usize = 100;

/// Names Windows reserves for devices, even with an extension.
const RESERVED_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Characters that are path separators or invalid in Windows file names.
const FORBIDDEN_CHARACTERS: [char; 9] = ['/', '\\', ':', '*', '?', '"', '<', '>', '|'];

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
    use super::*;

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
}
