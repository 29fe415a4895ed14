//! [`AppError`]: the one error type of every command and query in the sample.

use opossum::{DecisionError, ErrorKind, EventStoreError, MediatorError, ProjectionError};

/// Why a command or query did not succeed. The HTTP layer turns each into one status code and
/// a problem+json body (see `http::problem`): the sample's own variants by their variant, an
/// Opossum error by its [`kind`](opossum::Error::kind).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request itself is malformed: a missing or empty field, a negative amount (400).
    #[error("{0}")]
    Invalid(String),

    /// A business rule forbids it: the course is full, the email is taken (400).
    #[error("{0}")]
    Rule(String),

    /// Something it refers to does not exist (404).
    #[error("{0}")]
    NotFound(String),

    /// It conflicts with work in progress, such as a rebuild already running (409).
    #[error("{0}")]
    Busy(String),

    /// The store is not open (it is being deleted and recreated, or failed to reopen) (503).
    #[error("{0}")]
    Unavailable(String),

    /// Opossum failed: the store, a decision (a DCB append condition that failed on every
    /// retry among them), a projection or read model, the mediator. The error is kept whole,
    /// whichever crate it came from; its kind says what it means for the request.
    #[error(transparent)]
    Opossum(#[from] opossum::Error),
}

impl AppError {
    /// A rule violation with this message.
    pub fn rule(message: impl Into<String>) -> AppError {
        AppError::Rule(message.into())
    }

    /// A missing-thing error with this message.
    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::NotFound(message.into())
    }

    /// An invalid-request error with this message.
    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::Invalid(message.into())
    }

    /// What kind of error this is. The sample's own variants have the nearest kind (a broken
    /// rule, like a malformed request, is [`ErrorKind::InvalidInput`]; an unavailable store is
    /// [`ErrorKind::Closed`]); an Opossum error has its own.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            AppError::Invalid(_) | AppError::Rule(_) => ErrorKind::InvalidInput,
            AppError::NotFound(_) => ErrorKind::NotFound,
            AppError::Busy(_) => ErrorKind::Busy,
            AppError::Unavailable(_) => ErrorKind::Closed,
            AppError::Opossum(e) => e.kind(),
        }
    }

    /// True when this is a DCB append condition that failed (after retries, if any).
    #[must_use]
    pub fn is_condition_failed(&self) -> bool {
        self.kind() == ErrorKind::ConditionFailed
    }
}

/// What `decide` needs of a decision's error type; the facade's error keeps it whole.
impl From<DecisionError> for AppError {
    fn from(e: DecisionError) -> AppError {
        AppError::Opossum(e.into())
    }
}

impl From<EventStoreError> for AppError {
    fn from(e: EventStoreError) -> AppError {
        AppError::Opossum(e.into())
    }
}

impl From<ProjectionError> for AppError {
    fn from(e: ProjectionError) -> AppError {
        AppError::Opossum(e.into())
    }
}

impl From<MediatorError> for AppError {
    fn from(e: MediatorError) -> AppError {
        AppError::Opossum(e.into())
    }
}

/// What every command and query returns.
pub type AppResult<T> = Result<T, AppError>;

/// The longest name or title of any route (courses, course books, announcements, a forget's
/// reason and requester), in characters.
pub const MAX_NAME: usize = 200;
/// The longest name of a person (a student's first and last name), in characters.
pub const MAX_PERSON_NAME: usize = 100;
/// The longest email address, in characters.
pub const MAX_EMAIL: usize = 254;
/// The longest description or body of any route, in characters.
pub const MAX_BODY: usize = 2000;
/// How many characters of an offending value an error message quotes at most.
pub const QUOTE_CHARS: usize = 64;

/// `value` for an error message: its first [`QUOTE_CHARS`] characters, quoted and escaped (a
/// control character shows as its escape), with `…` after the quote when it was cut, so that a
/// huge input is never echoed back whole.
#[must_use]
pub fn quote(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(QUOTE_CHARS).collect();
    if chars.next().is_some() {
        format!("{head:?}…")
    } else {
        format!("{head:?}")
    }
}

/// A one-line text field that must not be empty: trimmed, 1 to `max` characters, without
/// control characters (tabs and newlines among them). `field` is the JSON name the error names.
///
/// # Errors
/// [`AppError::Invalid`] naming `field` when it is empty, too long or holds a control character.
pub fn required_line(field: &str, value: &str, max: usize) -> AppResult<String> {
    let value = optional_line(field, value, max)?;
    if value.is_empty() {
        return Err(AppError::invalid(format!("{field} must not be empty.")));
    }
    Ok(value)
}

/// A one-line text field that may be empty: trimmed, at most `max` characters, without control
/// characters.
///
/// # Errors
/// As [`required_line`], except that an empty value is accepted.
pub fn optional_line(field: &str, value: &str, max: usize) -> AppResult<String> {
    checked(field, value, max, |_| false)
}

/// A multi-line text field that may be empty (a description, an announcement's body):
/// trimmed, at most `max` characters, without control characters other than newlines
/// (`\n`, `\r`) and tabs.
///
/// # Errors
/// As [`optional_line`].
pub fn optional_body(field: &str, value: &str, max: usize) -> AppResult<String> {
    checked(field, value, max, |c| matches!(c, '\n' | '\r' | '\t'))
}

/// The trimmed `value`, when it is at most `max` characters long and holds no control
/// character except those `allowed`.
fn checked(
    field: &str,
    value: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> AppResult<String> {
    let value = value.trim();
    if value.chars().nth(max).is_some() {
        return Err(AppError::invalid(format!(
            "{field} is longer than {max} characters."
        )));
    }
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(AppError::invalid(format!(
            "{field} must not hold control characters (such as NUL): {}.",
            quote(value)
        )));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_bounded_and_clean() {
        assert_eq!(required_line("name", " Rust ", 200).unwrap(), "Rust");
        assert!(required_line("name", "  ", 200).is_err());
        assert!(required_line("name", &"x".repeat(200), 200).is_ok());
        assert!(required_line("name", &"é".repeat(201), 200).is_err());
        assert!(required_line("name", "a\u{0}b", 200).is_err());
        assert!(required_line("name", "a\tb", 200).is_err());
        assert_eq!(optional_line("isbn", "", 200).unwrap(), "");
        assert_eq!(
            optional_body("body", "line 1\n\tline 2", 2000).unwrap(),
            "line 1\n\tline 2"
        );
        assert!(optional_body("body", "a\u{0}b", 2000).is_err());
        assert!(optional_body("body", "a\u{1b}b", 2000).is_err());
    }

    #[test]
    fn a_quote_is_cut_at_64_characters() {
        assert_eq!(quote("ab"), "\"ab\"");
        let long = quote(&"x".repeat(100_000));
        assert_eq!(long, format!("{:?}…", "x".repeat(64)));
        assert_eq!(quote("a\u{0}"), "\"a\\0\"");
    }
}
