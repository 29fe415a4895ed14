//! [`Mediator`] and [`MediatorBuilder`].

use std::any::{TypeId, type_name};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::MediatorError;
use crate::handler::{Registration, Slot};
use crate::{Handler, Message};

/// Collects handlers, then checks them and builds a [`Mediator`].
///
/// ```
/// use std::time::Duration;
/// use opossum_mediator::{Handler, Mediator, Message};
///
/// struct Ping;
/// impl Message for Ping { type Output = &'static str; }
/// struct Pong;
/// impl Handler<Ping> for Pong {
///     async fn handle(&self, _: Ping) -> &'static str { "pong" }
/// }
///
/// let mediator = Mediator::builder()
///     .handler(Pong)
///     .timeout(Duration::from_secs(5))
///     .build()?;
/// assert!(mediator.handles::<Ping>());
/// # Ok::<(), opossum_mediator::MediatorError>(())
/// ```
#[derive(Default)]
#[must_use = "call .build() to get the mediator"]
pub struct MediatorBuilder {
    registrations: Vec<(TypeId, Registration)>,
    required: Vec<(TypeId, &'static str)>,
    timeout: Option<Duration>,
}

impl MediatorBuilder {
    /// An empty builder: no handlers, no timeout.
    pub fn new() -> MediatorBuilder {
        MediatorBuilder::default()
    }

    /// Registers `handler` for message type `M`.
    ///
    /// `M` is inferred when the handler type handles one message type; otherwise name it:
    /// `.handler::<Ping, _>(handler)`. Registering a second handler for the same message type
    /// is reported by [`MediatorBuilder::build`].
    pub fn handler<M, H>(mut self, handler: H) -> MediatorBuilder
    where
        M: Message,
        H: Handler<M>,
    {
        self.registrations.push((
            TypeId::of::<M>(),
            Registration {
                message: type_name::<M>(),
                handler: type_name::<H>(),
                slot: Box::new(Slot::<M>(Box::new(handler))),
            },
        ));
        self
    }

    /// Requires a handler for message type `M`: [`build`](Self::build) fails with
    /// [`MediatorError::MissingHandlers`] when none was registered. Require every message the
    /// application sends, once at start-up, and a forgotten handler is found there rather than
    /// at the first send.
    pub fn require<M: Message>(mut self) -> MediatorBuilder {
        self.required.push((TypeId::of::<M>(), type_name::<M>()));
        self
    }

    /// [`require`](Self::require) for every message type of the tuple `L`, such as
    /// `.require_all::<(RegisterStudent, EnrollStudent, ListCourses)>()` (up to 16 types; call
    /// it again for more).
    ///
    /// ```
    /// use opossum_mediator::{Handler, Mediator, MediatorError, Message};
    ///
    /// struct Ping;
    /// impl Message for Ping { type Output = (); }
    /// struct Pong;
    /// impl Message for Pong { type Output = (); }
    /// struct Pinger;
    /// impl Handler<Ping> for Pinger {
    ///     async fn handle(&self, _: Ping) {}
    /// }
    ///
    /// let error = Mediator::builder()
    ///     .handler(Pinger)
    ///     .require_all::<(Ping, Pong)>()
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(error, MediatorError::MissingHandlers { messages } if messages.len() == 1));
    /// ```
    pub fn require_all<L: MessageList>(mut self) -> MediatorBuilder {
        L::each(&mut |id, name| self.required.push((id, name)));
        self
    }

    /// Cancels any send whose handler runs longer than `timeout` with
    /// [`MediatorError::Timeout`]. Without it, sends wait as long as their handler takes.
    ///
    /// Timeouts use Tokio's timer: with a timeout, send only inside a Tokio runtime with the
    /// time driver enabled.
    pub fn timeout(mut self, timeout: Duration) -> MediatorBuilder {
        self.timeout = Some(timeout);
        self
    }

    /// Checks the registrations and builds the mediator.
    ///
    /// # Errors
    /// [`MediatorError::DuplicateHandler`] when two handlers were registered for one message
    /// type; [`MediatorError::MissingHandlers`] when a [required](Self::require) message type
    /// has none.
    pub fn build(self) -> Result<Mediator, MediatorError> {
        let mut handlers = HashMap::with_capacity(self.registrations.len());
        for (id, registration) in self.registrations {
            match handlers.entry(id) {
                Entry::Vacant(slot) => {
                    slot.insert(registration);
                }
                Entry::Occupied(first) => {
                    let first: &Registration = first.get();
                    return Err(MediatorError::DuplicateHandler {
                        message: registration.message,
                        first: first.handler,
                        second: registration.handler,
                    });
                }
            }
        }
        let mut missing: Vec<&'static str> = Vec::new();
        for (id, name) in self.required {
            if !handlers.contains_key(&id) && !missing.contains(&name) {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            return Err(MediatorError::MissingHandlers { messages: missing });
        }
        tracing::debug!(handlers = handlers.len(), "mediator built");
        Ok(Mediator {
            inner: Arc::new(Inner {
                handlers,
                timeout: self.timeout,
            }),
        })
    }
}

impl fmt::Debug for MediatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediatorBuilder")
            .field(
                "messages",
                &self
                    .registrations
                    .iter()
                    .map(|(_, r)| r.message)
                    .collect::<Vec<_>>(),
            )
            .field(
                "required",
                &self.required.iter().map(|(_, m)| *m).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A tuple of [`Message`] types, for [`MediatorBuilder::require_all`]: implemented for tuples
/// of 1 to 16 message types.
pub trait MessageList {
    /// Calls `visit` with the type id and the type name of each message type.
    fn each(visit: &mut dyn FnMut(TypeId, &'static str));
}

macro_rules! message_list {
    ($($m:ident),+) => {
        impl<$($m: Message),+> MessageList for ($($m,)+) {
            fn each(visit: &mut dyn FnMut(TypeId, &'static str)) {
                $(visit(TypeId::of::<$m>(), type_name::<$m>());)+
            }
        }
    };
}

message_list!(A);
message_list!(A, B);
message_list!(A, B, C);
message_list!(A, B, C, D);
message_list!(A, B, C, D, E);
message_list!(A, B, C, D, E, F);
message_list!(A, B, C, D, E, F, G);
message_list!(A, B, C, D, E, F, G, H);
message_list!(A, B, C, D, E, F, G, H, I);
message_list!(A, B, C, D, E, F, G, H, I, J);
message_list!(A, B, C, D, E, F, G, H, I, J, K);
message_list!(A, B, C, D, E, F, G, H, I, J, K, L);
message_list!(A, B, C, D, E, F, G, H, I, J, K, L, M);
message_list!(A, B, C, D, E, F, G, H, I, J, K, L, M, N);
message_list!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O);
message_list!(A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P);

/// Dispatches each message to the one handler registered for its type.
///
/// Cheap to clone (clones share the handlers), and `Send + Sync`: share one mediator across an
/// application's tasks.
#[derive(Clone)]
pub struct Mediator {
    inner: Arc<Inner>,
}

struct Inner {
    handlers: HashMap<TypeId, Registration>,
    timeout: Option<Duration>,
}

impl Mediator {
    /// Starts a [`MediatorBuilder`].
    pub fn builder() -> MediatorBuilder {
        MediatorBuilder::new()
    }

    /// True when a handler is registered for message type `M`.
    #[must_use]
    pub fn handles<M: Message>(&self) -> bool {
        self.inner.handlers.contains_key(&TypeId::of::<M>())
    }

    /// Sends `message` to its handler and returns the handler's output, within the builder's
    /// timeout if one was set.
    ///
    /// Each send runs in a `tracing` span named `mediator_send` with the message type.
    ///
    /// # Errors
    /// [`MediatorError::NoHandler`] when no handler is registered for `M`;
    /// [`MediatorError::Timeout`] when the handler outran the timeout (its future is dropped).
    pub async fn send<M: Message>(&self, message: M) -> Result<M::Output, MediatorError> {
        self.dispatch(message, self.inner.timeout).await
    }

    /// [`Mediator::send`] with `timeout` for this call, in place of the builder's.
    ///
    /// # Errors
    /// As [`Mediator::send`].
    pub async fn send_with_timeout<M: Message>(
        &self,
        message: M,
        timeout: Duration,
    ) -> Result<M::Output, MediatorError> {
        self.dispatch(message, Some(timeout)).await
    }

    async fn dispatch<M: Message>(
        &self,
        message: M,
        timeout: Option<Duration>,
    ) -> Result<M::Output, MediatorError> {
        let name = type_name::<M>();
        let slot = self
            .inner
            .handlers
            .get(&TypeId::of::<M>())
            // Registrations are keyed by `TypeId::of::<M>()` and hold a `Slot<M>`, so the
            // downcast succeeds whenever the lookup does.
            .and_then(|r| r.slot.downcast_ref::<Slot<M>>())
            .ok_or(MediatorError::NoHandler { message: name })?;
        let span = tracing::debug_span!("mediator_send", message = name);
        let handling = slot.0.handle_boxed(message).instrument(span.clone());
        let Some(after) = timeout else {
            return Ok(handling.await);
        };
        match tokio::time::timeout(after, handling).await {
            Ok(output) => Ok(output),
            Err(_elapsed) => {
                tracing::warn!(parent: &span, ?after, "handler timed out and was cancelled");
                Err(MediatorError::Timeout {
                    message: name,
                    after,
                })
            }
        }
    }
}

impl fmt::Debug for Mediator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut messages: Vec<&str> = self.inner.handlers.values().map(|r| r.message).collect();
        messages.sort_unstable();
        f.debug_struct("Mediator")
            .field("messages", &messages)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ping;
    impl Message for Ping {
        type Output = u8;
    }
    struct Other;
    impl Message for Other {
        type Output = ();
    }

    struct One;
    impl Handler<Ping> for One {
        async fn handle(&self, _: Ping) -> u8 {
            1
        }
    }
    struct Two;
    impl Handler<Ping> for Two {
        async fn handle(&self, _: Ping) -> u8 {
            2
        }
    }

    #[test]
    fn the_first_duplicate_is_reported_with_both_handlers() {
        let err = Mediator::builder()
            .handler(One)
            .handler(Two)
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            MediatorError::DuplicateHandler {
                message: type_name::<Ping>(),
                first: type_name::<One>(),
                second: type_name::<Two>(),
            }
        );
    }

    #[test]
    fn required_messages_without_a_handler_are_all_reported_at_build() {
        let err = Mediator::builder()
            .handler(One)
            .require::<Ping>()
            .require::<Other>()
            .require_all::<(Ping, Other)>()
            .build()
            .unwrap_err();
        assert_eq!(
            err,
            MediatorError::MissingHandlers {
                messages: vec![type_name::<Other>()],
            }
        );
        assert!(
            Mediator::builder()
                .handler(One)
                .require_all::<(Ping,)>()
                .build()
                .is_ok()
        );
    }

    #[test]
    fn handles_reports_registrations() {
        let m = Mediator::builder().handler(One).build().unwrap();
        assert!(m.handles::<Ping>());
        assert!(!m.handles::<Other>());
        let shown = format!("{m:?}");
        assert!(
            shown.contains("Ping") && !shown.contains("Other"),
            "{shown}"
        );
    }
}
