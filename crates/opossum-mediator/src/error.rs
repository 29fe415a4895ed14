//! The one error type of `opossum-mediator`.

use std::time::Duration;

use opossum_core::ErrorKind;

/// What can go wrong building a [`Mediator`](crate::Mediator) or sending through it.
///
/// Message and handler names are Rust type names, as given by [`std::any::type_name`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediatorError {
    /// [`Mediator::send`](crate::Mediator::send) was given a message no handler is registered
    /// for.
    #[error(
        "no handler is registered for message `{message}`: register one with \
         MediatorBuilder::handler before build()"
    )]
    NoHandler {
        /// The message type.
        message: &'static str,
    },

    /// [`MediatorBuilder::build`](crate::MediatorBuilder::build) found two handlers for one
    /// message type. Every message has exactly one handler, so which one should run would be
    /// ambiguous.
    #[error(
        "two handlers are registered for message `{message}`: `{first}` and `{second}`; \
         register exactly one"
    )]
    DuplicateHandler {
        /// The message type.
        message: &'static str,
        /// The handler type registered first.
        first: &'static str,
        /// The handler type registered second.
        second: &'static str,
    },

    /// [`MediatorBuilder::build`](crate::MediatorBuilder::build) found message types that were
    /// [required](crate::MediatorBuilder::require) but have no handler.
    #[error(
        "no handler is registered for the required message{} {}: register one for each with \
         MediatorBuilder::handler before build()",
        if messages.len() == 1 { "" } else { "s" },
        messages.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
    )]
    MissingHandlers {
        /// The required message types without a handler, in the order they were required.
        messages: Vec<&'static str>,
    },

    /// A handler did not finish within the timeout; its future was dropped.
    #[error(
        "the handler for message `{message}` did not finish within {after:?}; it was cancelled"
    )]
    Timeout {
        /// The message type.
        message: &'static str,
        /// The timeout that elapsed.
        after: Duration,
    },
}

impl MediatorError {
    /// What kind of error this is: the case a caller acts on, shared by every Opossum crate.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        match self {
            MediatorError::NoHandler { .. } => ErrorKind::NotFound,
            MediatorError::DuplicateHandler { .. } | MediatorError::MissingHandlers { .. } => {
                ErrorKind::InvalidInput
            }
            MediatorError::Timeout { .. } => ErrorKind::Timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_types_and_the_fix() {
        let no = MediatorError::NoHandler {
            message: "app::Ping",
        }
        .to_string();
        assert!(
            no.contains("app::Ping") && no.contains("MediatorBuilder::handler"),
            "{no}"
        );
        let dup = MediatorError::DuplicateHandler {
            message: "app::Ping",
            first: "app::A",
            second: "app::B",
        }
        .to_string();
        assert!(dup.contains("app::A") && dup.contains("app::B"), "{dup}");
        let late = MediatorError::Timeout {
            message: "app::Ping",
            after: Duration::from_millis(250),
        }
        .to_string();
        assert!(late.contains("250ms"), "{late}");
        let missing = MediatorError::MissingHandlers {
            messages: vec!["app::Ping", "app::Pong"],
        };
        assert_eq!(missing.kind(), ErrorKind::InvalidInput);
        let text = missing.to_string();
        assert!(text.contains("messages `app::Ping`, `app::Pong`"), "{text}");
        assert_eq!(
            MediatorError::NoHandler { message: "m" }.kind(),
            ErrorKind::NotFound
        );
    }
}
