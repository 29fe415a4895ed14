//! [`AppError`]: the one error type of every command and query in the sample.

use opossum::{ConditionFailure, DecisionError, EventStoreError, MediatorError};

/// Why a command or query did not succeed. The HTTP layer turns each variant into one status
/// code and a problem+json body (see `http::problem`).
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

    /// The store, a decision, or — when every retry failed — a DCB append condition (409).
    #[error(transparent)]
    Decision(#[from] DecisionError),

    /// The facade: a read model that is behind or failing, an unavailable store.
    #[error(transparent)]
    App(#[from] opossum::Error),

    /// The mediator could not deliver the message (a wiring bug).
    #[error(transparent)]
    Mediator(#[from] MediatorError),
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

    /// True when this is a DCB append condition that failed (after retries, if any).
    #[must_use]
    pub fn is_condition_failed(&self) -> bool {
        match self {
            AppError::Decision(e) => e.is_condition_failed(),
            AppError::App(e) => e.is_condition_failed(),
            _ => false,
        }
    }
}

impl From<EventStoreError> for AppError {
    fn from(e: EventStoreError) -> AppError {
        AppError::Decision(DecisionError::from(e))
    }
}

impl From<opossum::ProjectionError> for AppError {
    fn from(e: opossum::ProjectionError) -> AppError {
        AppError::App(opossum::Error::from(e))
    }
}

/// `execute_decision` decides again exactly when the append condition failed.
impl ConditionFailure for AppError {
    fn is_condition_failure(&self) -> bool {
        self.is_condition_failed()
    }
}

/// What every command and query returns.
pub type AppResult<T> = Result<T, AppError>;
