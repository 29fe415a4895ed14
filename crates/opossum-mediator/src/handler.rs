//! [`Message`] and [`Handler`], and their type-erased form for storage.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;

/// A command or a query: something sent through the [`Mediator`](crate::Mediator) to exactly
/// one [`Handler`].
///
/// The output is tied to the message type, so [`Mediator::send`](crate::Mediator::send) is
/// typed: sending a `RegisterStudent` returns a `RegisterStudent::Output`. When handling can
/// fail, make the output a `Result`.
///
/// ```
/// use opossum_mediator::Message;
///
/// struct NextInvoiceNumber;
/// impl Message for NextInvoiceNumber {
///     type Output = u64;
/// }
/// ```
pub trait Message: Send + 'static {
    /// What the handler returns.
    type Output: Send + 'static;
}

/// Handles one message type `M`.
///
/// A handler gets what it needs through its own fields, set when it is constructed (a store,
/// a clock, a repository) — the mediator never looks anything up. One type may handle several
/// message types by implementing `Handler` for each.
///
/// Implement it with an `async fn`:
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use opossum_mediator::{Handler, Message};
///
/// struct NextInvoiceNumber;
/// impl Message for NextInvoiceNumber {
///     type Output = u64;
/// }
///
/// struct InvoiceNumbers {
///     last: Arc<AtomicU64>, // the dependency, injected by the constructor
/// }
///
/// impl Handler<NextInvoiceNumber> for InvoiceNumbers {
///     async fn handle(&self, _: NextInvoiceNumber) -> u64 {
///         self.last.fetch_add(1, Ordering::SeqCst) + 1
///     }
/// }
/// ```
pub trait Handler<M: Message>: Send + Sync + 'static {
    /// Handles `message`. The future must be `Send` so that sends can run on any runtime
    /// thread.
    ///
    /// When the mediator applies a timeout, the future is dropped at the deadline: write
    /// handlers whose effects are atomic (an event store append is) or idempotent.
    fn handle(&self, message: M) -> impl Future<Output = M::Output> + Send;
}

/// A boxed handler future.
pub(crate) type HandlerFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`Handler`] with its future boxed, so that a handler can be stored behind a pointer.
pub(crate) trait DynHandler<M: Message>: Send + Sync {
    fn handle_boxed(&self, message: M) -> HandlerFuture<'_, M::Output>;
}

impl<M: Message, H: Handler<M>> DynHandler<M> for H {
    fn handle_boxed(&self, message: M) -> HandlerFuture<'_, M::Output> {
        Box::pin(self.handle(message))
    }
}

/// The handler of message type `M`, as stored (behind `dyn Any`) in the mediator's table.
pub(crate) struct Slot<M: Message>(pub(crate) Box<dyn DynHandler<M>>);

/// One registration: the handler, erased, with the names errors report.
pub(crate) struct Registration {
    pub(crate) message: &'static str,
    pub(crate) handler: &'static str,
    /// Always a `Slot<M>` for the message type the registration is keyed by.
    pub(crate) slot: Box<dyn Any + Send + Sync>,
}
