//! The one error type of `opossum-decision`.

use opossum_core::{ErrorKind, Position};

/// What can go wrong while building a decision model or running a decision.
///
/// It converts from [`opossum_core::Error`], so a decision operation that both builds a model
/// and appends can use `?` on both and return this type; [`execute_decision`] then retries it
/// when it wraps a failed append condition.
///
/// [`execute_decision`]: crate::execute_decision
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`build_decision_model_many`](crate::build_decision_model_many) was given an empty list.
    /// A decision needs at least one projection to say which events it depends on.
    #[error(
        "build_decision_model_many was given no projections: pass at least one (an empty \
         decision has no consistency boundary)"
    )]
    NoProjections,

    /// The event store failed, or an append's condition failed
    /// ([`opossum_core::Error::ConditionFailed`]): re-read and decide again.
    #[error(transparent)]
    Store(#[from] opossum_core::Error),

    /// A fallible fold (see [`DecisionProjection::try_new`](crate::DecisionProjection::try_new))
    /// rejected an event, typically because its payload does not decode into the expected type.
    #[error("a decision projection could not fold the event at position {position}: {source}")]
    Fold {
        /// The position of the event the fold rejected.
        position: Position,
        /// What the fold reported.
        #[source]
        source: opossum_core::Error,
    },
}

impl Error {
    /// What kind of error this is: the case a caller acts on, shared by every Opossum crate.
    /// A store error has the store's kind; a fold's rejection the kind of what the fold
    /// reported (usually [`ErrorKind::Decode`]).
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NoProjections => ErrorKind::InvalidInput,
            Error::Store(e) => e.kind(),
            // A fold that reports a failed condition did not append anything: that is not the
            // DCB signal to decide again.
            Error::Fold { source, .. } => match source.kind() {
                ErrorKind::ConditionFailed => ErrorKind::Other,
                kind => kind,
            },
        }
    }

    /// True when this is a failed DCB append condition, the only error a decision retries.
    #[must_use]
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, Error::Store(e) if e.is_condition_failed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_wrapped_condition_failure_counts() {
        let failed = Error::from(opossum_core::Error::ConditionFailed { after: None });
        assert!(failed.is_condition_failed());
        assert!(!Error::from(opossum_core::Error::EmptyAppend).is_condition_failed());
        assert!(!Error::NoProjections.is_condition_failed());
        let fold = Error::Fold {
            position: Position::FIRST,
            source: opossum_core::Error::ConditionFailed { after: None },
        };
        assert!(!fold.is_condition_failed());
        assert_eq!(fold.kind(), ErrorKind::Other);
        assert_eq!(Error::NoProjections.kind(), ErrorKind::InvalidInput);
        assert_eq!(failed.kind(), ErrorKind::ConditionFailed);
    }
}
