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
